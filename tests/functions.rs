//! Provider functions through the real Terraform CLI (functions need Terraform >= 1.8): each
//! function evaluated in outputs, round-trips in both directions, and every error case shown
//! by Terraform as a diagnostic naming the offending parameter. Functions need no
//! configuration and make no API calls, so no emulator runs here.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{Value as Json, json};
use support::{PROVIDER_SOURCE, bin_dir, combined, terraform_bin};

const WS: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws";

struct Dir {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    rc: PathBuf,
}

fn workdir(outputs: &str) -> Dir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    clara = {{ source = \"clara-ml/clara\" }}\n  }}\n}}\n\n{outputs}"
        ),
    )
    .unwrap();
    let rc = tmp.path().join("terraformrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            bin_dir().display()
        ),
    )
    .unwrap();
    Dir { _tmp: tmp, dir, rc }
}

fn terraform(d: &Dir, args: &[&str], stdin: Option<&str>) -> (i32, String) {
    let mut c = Command::new(terraform_bin());
    c.current_dir(&d.dir)
        .args(args)
        .env("TF_CLI_CONFIG_FILE", &d.rc)
        .env("CHECKPOINT_DISABLE", "1")
        .env("TF_IN_AUTOMATION", "1")
        .env_remove("TF_LOG")
        .env_remove("TF_LOG_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("run terraform");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), combined(&out))
}

fn outputs(d: &Dir) -> Json {
    let (code, text) = terraform(
        d,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        None,
    );
    assert_eq!(code, 0, "apply failed:\n{text}");
    let (code, text) = terraform(d, &["output", "-json"], None);
    assert_eq!(code, 0, "output failed:\n{text}");
    let start = text.find('{').expect("JSON in output");
    let all: Json = serde_json::from_str(&text[start..]).unwrap();
    let mut flat = serde_json::Map::new();
    for (k, v) in all.as_object().unwrap() {
        flat.insert(k.clone(), v["value"].clone());
    }
    Json::Object(flat)
}

fn console(d: &Dir, expr: &str) -> (i32, String) {
    terraform(d, &["console"], Some(&format!("{expr}\n")))
}

/// Terraform's console output without colours or box drawing, on one line.
fn plain(text: &str) -> String {
    let no_ansi = regex::Regex::new("\x1b\\[[0-9;]*m")
        .unwrap()
        .replace_all(text, "");
    no_ansi
        .replace(['│', '╷', '╵'], " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn skip_if_old(d: &Dir) -> bool {
    let (_, v) = terraform(d, &["version", "-json"], None);
    let start = v.find('{').unwrap_or(0);
    let version =
        serde_json::from_str::<Json>(&v[start..]).unwrap_or_default()["terraform_version"]
            .as_str()
            .unwrap_or("0.0")
            .to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (1, 8) {
        eprintln!("SKIP: Terraform {version} has no provider functions (needs >= 1.8)");
        return true;
    }
    false
}

#[test]
fn functions_evaluate_and_round_trip() {
    let d = workdir(&format!(
        r#"
locals {{
  covid = provider::clara::ngc_url("model", "nvidia", "med", "clara_train_covid19_3d_ct_classification", "1")
  p     = provider::clara::parse_ngc_url(local.covid)
}}
output "covid"       {{ value = local.covid }}
output "parsed"      {{ value = local.p }}
output "rebuilt_eq"  {{ value = provider::clara::ngc_url(local.p.kind, local.p.org, local.p.team, local.p.name, local.p.version) == local.covid }}
output "org_null"    {{ value = provider::clara::ngc_url("resource", "nvidia", null, "clara_mmars", "4.1+cu12") }}
output "org_empty"   {{ value = provider::clara::ngc_url("resource", "nvidia", "", "clara_mmars", "4.1+cu12") }}
output "org_parsed"  {{ value = provider::clara::parse_ngc_url(provider::clara::ngc_url("resource", "nvidia", null, "clara_mmars", "4.1+cu12")) }}
output "scoped"      {{ value = provider::clara::parse_ngc_url("https://api.ngc.nvidia.com/v2/org/nvidia/team/med/models/x/versions/2/files") }}
output "ds"          {{ value = provider::clara::datastore_uri("workspaceblobstore", "/clara/models/covid/") }}
output "env_id"      {{ value = provider::clara::parse_id("{WS}/environments/clara-train/versions/4") }}
output "compute_id"  {{ value = provider::clara::parse_id(lower("{WS}/Computes/gpu-cluster")) }}
output "ws_id"       {{ value = provider::clara::parse_id("{WS}") }}
"#
    ));
    if skip_if_old(&d) {
        return;
    }
    let o = outputs(&d);
    assert_eq!(
        o["covid"],
        "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip"
    );
    // parse(ngc_url(inputs)) == inputs, and ngc_url(parse(url)) == url (checked by Terraform).
    assert_eq!(
        o["parsed"],
        json!({"kind": "model", "org": "nvidia", "team": "med",
               "name": "clara_train_covid19_3d_ct_classification", "version": "1"})
    );
    assert_eq!(o["rebuilt_eq"], true);
    assert_eq!(
        o["org_null"],
        "https://api.ngc.nvidia.com/v2/resources/nvidia/clara_mmars/versions/4.1+cu12/zip"
    );
    assert_eq!(o["org_empty"], o["org_null"]);
    assert_eq!(
        o["org_parsed"],
        json!({"kind": "resource", "org": "nvidia", "team": null,
               "name": "clara_mmars", "version": "4.1+cu12"})
    );
    assert_eq!(
        o["scoped"],
        json!({"kind": "model", "org": "nvidia", "team": "med", "name": "x", "version": "2"})
    );
    assert_eq!(
        o["ds"],
        "azureml://datastores/workspaceblobstore/paths/clara/models/covid/"
    );
    let ids = |sub: &str, rg: &str, ws: &str, ty: &str, name: &str, version: Json| {
        json!({"subscription_id": sub, "resource_group_name": rg, "workspace_name": ws,
               "type": ty, "name": name, "version": version})
    };
    let sub = "00000000-0000-0000-0000-000000000001";
    assert_eq!(
        o["env_id"],
        ids(
            sub,
            "rg-clara",
            "clara-ws",
            "environments",
            "clara-train",
            json!("4")
        )
    );
    assert_eq!(
        o["compute_id"],
        ids(
            sub,
            "rg-clara",
            "clara-ws",
            "computes",
            "gpu-cluster",
            Json::Null
        )
    );
    assert_eq!(
        o["ws_id"],
        ids(
            sub,
            "rg-clara",
            "clara-ws",
            "workspaces",
            "clara-ws",
            Json::Null
        )
    );
    assert_eq!(o.as_object().unwrap().len(), 11);
}

#[test]
fn bad_arguments_are_diagnostics_naming_the_parameter() {
    let d = workdir("");
    if skip_if_old(&d) {
        return;
    }
    let cases: Vec<(String, &str, &str)> = vec![
        (r#"provider::clara::ngc_url("container", "nvidia", "med", "x", "1")"#.into(), "kind", "must be \"model\" or \"resource\""),
        (r#"provider::clara::ngc_url("model", "nv/idia", "med", "x", "1")"#.into(), "org", "contains '/'"),
        (r#"provider::clara::ngc_url("model", "nvidia", "..", "x", "1")"#.into(), "team", "must start with a letter"),
        (r#"provider::clara::ngc_url("model", "nvidia", "med", "x y", "1")"#.into(), "name", "contains ' '"),
        (r#"provider::clara::ngc_url("model", "nvidia", "med", "x", "1/../2")"#.into(), "version", "contains '/'"),
        (r#"provider::clara::ngc_url("model", "nvidia", "med", "x", "")"#.into(), "version", "must not be empty"),
        (r#"provider::clara::ngc_url("model", null, "med", "x", "1")"#.into(), "org", "null"),
        (r#"provider::clara::parse_ngc_url("https://api.ngc.nvidia.com/v2/models/nvidia/x/versions/1/files/a.txt")"#.into(), "url", "is not an NGC API URL"),
        (r#"provider::clara::parse_ngc_url("not a url")"#.into(), "url", "is not a URL"),
        (r#"provider::clara::parse_ngc_url("ftp://api.ngc.nvidia.com/v2/models/nvidia/x/versions/1/zip")"#.into(), "url", "must be https"),
        (r#"provider::clara::datastore_uri("work/space", "a")"#.into(), "datastore", "must be 1-255 letters"),
        (r#"provider::clara::datastore_uri("workspaceblobstore", "clara/../../secrets")"#.into(), "path", "climbs out of the datastore with '..'"),
        (r#"provider::clara::datastore_uri("workspaceblobstore", "a//b")"#.into(), "path", "empty or '.' segment"),
        (r#"provider::clara::parse_id("not-an-id")"#.into(), "arm_id", "is not an Azure ML id"),
        (format!(r#"provider::clara::parse_id("{WS}/widgets/x")"#), "arm_id", "is not a workspace collection"),
        (format!(r#"provider::clara::parse_id("{WS}/computes/gpu/versions/1")"#), "arm_id", "computes have no versions"),
        (format!(r#"provider::clara::parse_id("{WS}/jobs/..")"#), "arm_id", "may hold only letters"),
    ];
    for (expr, param, why) in &cases {
        let (code, text) = console(&d, expr);
        assert_ne!(code, 0, "{expr} should fail:\n{text}");
        let flat = plain(&text);
        assert!(
            flat.contains(&format!("Invalid value for \"{param}\" parameter")),
            "{expr}: expected a diagnostic naming {param}:\n{text}"
        );
        assert!(flat.contains(why), "{expr}: expected {why:?} in:\n{text}");
    }
    // And a good call through the same console works (the failures are the arguments').
    let (code, text) = console(
        &d,
        r#"provider::clara::datastore_uri("workspaceblobstore", "a/b")"#,
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("azureml://datastores/workspaceblobstore/paths/a/b/"),
        "{text}"
    );
    eprintln!(
        "{} error cases each failed naming their parameter",
        cases.len()
    );
}

/// The standalone documentation examples evaluate to what their comments say.
#[test]
fn documentation_examples_evaluate() {
    let d = workdir("");
    if skip_if_old(&d) {
        return;
    }
    let examples = support::repo_root().join("examples/functions");
    // ngc_url's example carries the terraform block; replace the generated one with it.
    std::fs::copy(examples.join("ngc_url/function.tf"), d.dir.join("main.tf")).unwrap();
    std::fs::copy(
        examples.join("datastore_uri/function.tf"),
        d.dir.join("datastore_uri.tf"),
    )
    .unwrap();
    let o = outputs(&d);
    assert_eq!(
        o["covid_ct_url"],
        "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip"
    );
    assert_eq!(
        o["covid_model_folder"],
        "azureml://datastores/workspaceblobstore/paths/clara/models/covid/"
    );
}
