//! The whole COVID-19 CT walkthrough, imported: apply → plan empty → every resource imported
//! into an empty state (ngc_asset by its datastore URI, the others by their ARM id) → plan empty
//! with no write to Azure → destroy, and the workspace holds nothing the walkthrough made.
//! The emulator answers with its default real-world shapes (upper-cased vmSize, ISO 8601
//! durations, the system `default` output), so an import that reads back differently plans a
//! replacement or a GPU re-run and this test fails. Storage is Azurite over https with Entra
//! ID, as a real storage account is reached: import and plan read it without listSecrets.

mod support;

use reqwest::Method;
use serde_json::{Value as Json, json};
use support::*;

/// (address, import id) of every managed resource in `terraform show -json`.
fn importable(module: &Json, out: &mut Vec<(String, String)>) {
    for r in module["resources"].as_array().into_iter().flatten() {
        if r["mode"] != "managed" {
            continue;
        }
        let values = &r["values"];
        let id = if r["type"] == "ngc_asset" {
            &values["datastore_uri"]
        } else {
            &values["id"]
        };
        let id = id
            .as_str()
            .unwrap_or_else(|| panic!("{} has no import id: {values}", r["address"]));
        out.push((r["address"].as_str().unwrap().to_string(), id.to_string()));
    }
    for child in module["child_modules"].as_array().into_iter().flatten() {
        importable(child, out);
    }
}

#[test]
fn whole_walkthrough_imports_into_empty_state_and_plans_no_changes() {
    let mut config = emulator_config();
    config["jobs"] = json!({"phase_ms": 100});
    let ws = Workspace::walkthrough(config, true);
    ws.apply(&[]);
    ws.assert_no_changes(&[]);

    let shown: Json = serde_json::from_str(&ws.ok(&["show", "-json", "-no-color"])).unwrap();
    let mut resources = vec![];
    importable(&shown["values"]["root_module"], &mut resources);
    let types: Vec<&str> = resources
        .iter()
        .map(|(a, _)| a.rsplit('.').nth(1).unwrap_or(a))
        .collect();
    for t in [
        "ngc_asset",
        "azureml_gpu_cluster",
        "azureml_environment",
        "clara_training_run",
    ] {
        assert!(
            resources.iter().any(|(a, _)| a.contains(&format!("{t}."))),
            "the walkthrough has a {t}: {types:?}"
        );
    }
    println!("importing {} resources", resources.len());

    // An empty state, as a teammate without the state file would start from.
    std::fs::rename(
        ws.dir.join("terraform.tfstate"),
        ws.dir.join("applied.tfstate"),
    )
    .unwrap();
    let writes_before = ws.emulator.writes().len();
    // One `terraform import` per resource, as the CLI takes them. Import evaluates the module's
    // configuration, and the module indexes its MMAR asset, so the MMAR must be in state before
    // its siblings: passes repeat until every resource is in or a pass makes no progress.
    let mut pending = resources.clone();
    let mut passes = 0;
    let mut last_errors = vec![];
    while !pending.is_empty() {
        passes += 1;
        last_errors.clear();
        let before = pending.len();
        pending.retain(|(address, id)| {
            let (code, text) = ws.tf(&["import", "-no-color", "-input=false", address, id]);
            if code != 0 {
                last_errors.push(format!("{address} ({id}):\n{text}"));
            }
            code != 0
        });
        assert!(
            pending.len() < before,
            "imports made no progress:\n{}",
            last_errors.join("\n")
        );
    }
    println!("imported in {passes} passes");
    let (code, plan) = ws.plan(&[]);
    assert_eq!(code, 0, "imported state should plan no changes:\n{plan}");
    assert!(plan.contains("No changes."), "{plan}");
    let writes: Vec<Json> = ws.emulator.writes()[writes_before..].to_vec();
    assert!(
        writes.is_empty(),
        "import and plan must neither write to Azure nor read datastore secrets: {writes:#?}"
    );

    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ws.emulator.computes().is_empty(), "no cluster left");
    let jobs = ws.emulator.admin(Method::GET, "jobs", None)["jobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(jobs.len(), 4, "four runs' history kept: {jobs:#?}");
    assert!(
        jobs.iter()
            .all(|j| j["resource"]["properties"]["isArchived"] == true),
        "every job archived: {jobs:#?}"
    );
    assert_eq!(
        ws.emulator.count_ops("job.delete", false),
        0,
        "no job deleted"
    );
    assert!(
        ws.blob_names("clara/").is_empty(),
        "assets' blobs removed: {:?}",
        ws.blob_names("clara/")
    );
}
