//! Keeps docs/ honest: every attribute of every schema has a description and appears in its
//! registry page.

use clara_framework::{Block, Provider};

use crate::provider::ClaraProvider;

fn missing(block: &Block, page: &str, prefix: &str, out: &mut Vec<String>) {
    for a in &block.attributes {
        if a.description.trim().is_empty() {
            out.push(format!("{prefix}{}: no description", a.name));
        }
        if !page.contains(&format!("`{}`", a.name)) {
            out.push(format!("{prefix}{}: not in docs", a.name));
        }
    }
    for b in &block.blocks {
        if !page.contains(&format!("`{}`", b.name)) {
            out.push(format!("{prefix}{}: block not in docs", b.name));
        }
        missing(&b.block, page, &format!("{prefix}{}.", b.name), out);
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|_| panic!("{path} is missing"))
}

#[test]
fn every_attribute_is_described_and_documented() {
    let p = ClaraProvider;
    let mut gaps = Vec::new();
    missing(
        &p.schema().block,
        &read("docs/index.md"),
        "provider.",
        &mut gaps,
    );
    for r in p.resources() {
        let page = read(&format!("docs/resources/{}.md", r.type_name()));
        assert!(
            std::path::Path::new(&format!(
                "{}/examples/resources/{}/resource.tf",
                env!("CARGO_MANIFEST_DIR"),
                r.type_name()
            ))
            .exists()
        );
        missing(
            &r.schema().block,
            &page,
            &format!("{}.", r.type_name()),
            &mut gaps,
        );
        if let Some(identity) = r.identity() {
            if !page.contains("identity = {") {
                gaps.push(format!("{}: no import-by-identity example", r.type_name()));
            }
            for a in identity.identity_schema().attributes {
                if !page.contains(&format!("`{}`", a.name)) {
                    gaps.push(format!(
                        "{}: identity {} not in docs",
                        r.type_name(),
                        a.name
                    ));
                }
            }
        }
    }
    for d in p.data_sources() {
        let page = read(&format!("docs/data-sources/{}.md", d.type_name()));
        missing(
            &d.schema().block,
            &page,
            &format!("{}.", d.type_name()),
            &mut gaps,
        );
    }
    assert!(
        gaps.is_empty(),
        "undocumented attributes:\n{}",
        gaps.join("\n")
    );
}

/// HCL type-constraint spelling of a function's parameter or return type.
fn hcl_type(ty: &clara_framework::Type) -> String {
    use clara_framework::Type;
    match ty {
        Type::String => "string".into(),
        Type::Number => "number".into(),
        Type::Bool => "bool".into(),
        Type::Dynamic => "any".into(),
        Type::List(e) => format!("list({})", hcl_type(e)),
        Type::Set(e) => format!("set({})", hcl_type(e)),
        Type::Map(e) => format!("map({})", hcl_type(e)),
        Type::Object(attrs) => format!(
            "object({{{}}})",
            attrs
                .iter()
                .map(|(k, t)| format!("{k}={}", hcl_type(t)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Type::Tuple(es) => format!(
            "tuple([{}])",
            es.iter().map(hcl_type).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Each function's page carries the signature, parameters and summary the provider serves,
/// and embeds its example file verbatim.
#[test]
fn every_function_has_a_page_matching_its_definition() {
    let mut gaps = Vec::new();
    let functions = ClaraProvider.functions();
    assert_eq!(functions.len(), 4);
    for f in functions {
        let name = f.name();
        let page = read(&format!("docs/functions/{name}.md"));
        let params = f.parameters();
        let signature = format!(
            "{name}({}) {}",
            params
                .iter()
                .map(|p| format!("{} {}", p.name, hcl_type(&p.ty)))
                .collect::<Vec<_>>()
                .join(", "),
            hcl_type(&f.return_type())
        );
        if !page.contains(&signature) {
            gaps.push(format!("{name}: signature {signature} not in its page"));
        }
        if !page.contains(&format!("  {}\n", f.summary())) {
            gaps.push(format!("{name}: summary not in the page's description"));
        }
        for (i, p) in params.iter().enumerate() {
            let nullable = if p.allow_null { ", Nullable" } else { "" };
            let line = format!(
                "{}. `{}` (String{nullable}) {}",
                i + 1,
                p.name,
                p.description
            );
            if !page.contains(&line) {
                gaps.push(format!("{name}: argument line {line:?} not in its page"));
            }
        }
        let example = read(&format!("examples/functions/{name}/function.tf"));
        if !page.contains(example.trim_end()) {
            gaps.push(format!(
                "{name}: examples/functions/{name}/function.tf not embedded as is"
            ));
        }
    }
    assert!(gaps.is_empty(), "stale function docs:\n{}", gaps.join("\n"));
}
