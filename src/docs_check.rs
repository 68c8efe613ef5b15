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
