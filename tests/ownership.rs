//! Ownership with the real Terraform: what one state created is never silently taken over by
//! another, and an interrupted apply of the same state is still resumed.

mod support;

use std::path::{Path, PathBuf};

use serde_json::json;
use support::*;

const STACK: &str = r#"
resource "azureml_gpu_cluster" "c" {
  provider  = clara
  name      = "owned-ct"
  vm_size   = "Standard_NC6s_v3"
  max_nodes = 1
}

resource "azureml_environment" "e" {
  provider       = clara
  name           = "clara_env"
  image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  conda_file     = "name: clara\ndependencies:\n  - matplotlib\n"
}

variable "tags" {
  type    = map(string)
  default = null
}

resource "clara_training_run" "r" {
  compute     = azureml_gpu_cluster.c.id
  environment = azureml_environment.e.id
  command     = "bash run.sh"
  tags        = var.tags
}
"#;

fn config() -> serde_json::Value {
    let mut c = emulator_config();
    c["jobs"] = json!({"phase_ms": 100});
    c
}

/// A second Terraform working directory (its own state) over the same configuration.
fn second_directory(ws: &Workspace, name: &str) -> PathBuf {
    let dir = ws.tmp.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(ws.dir.join("main.tf"), dir.join("main.tf")).unwrap();
    dir
}

fn tf_in(ws: &Workspace, dir: &Path, args: &[&str]) -> (i32, String) {
    let out = ws
        .command(args)
        .current_dir(dir)
        .output()
        .expect("run terraform");
    (out.status.code().unwrap_or(-1), combined(&out))
}

fn folded(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn arm(kind: &str) -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}/{kind}"
    )
}

#[test]
fn a_second_state_fails_with_the_import_hint_and_touches_nothing() {
    let mut ws = Workspace::inline(STACK, config());
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.apply(&[]);
    let cluster_id = arm("computes/owned-ct");
    let cluster = ws.emulator.arm_get(&cluster_id);
    let marker = cluster["tags"]["clara-owner"]
        .as_str()
        .expect("the cluster carries an owner marker")
        .to_string();
    assert_eq!(marker.len(), 32, "{marker}");
    let state: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .clone();
    let value = |t: &str, k: &str| {
        resources
            .iter()
            .find(|r| r["type"] == t)
            .map(|r| r["values"][k].clone())
            .unwrap()
    };
    assert!(
        value("azureml_gpu_cluster", "tags")
            .as_object()
            .is_some_and(|t| t.is_empty()),
        "the marker is not one of the user's tags"
    );
    let env_id = value("azureml_environment", "id")
        .as_str()
        .unwrap()
        .to_string();
    let job_id = value("clara_training_run", "id")
        .as_str()
        .unwrap()
        .to_string();
    for id in [&env_id, &job_id] {
        let body = ws.emulator.arm_get(id);
        assert!(
            body["properties"]["properties"]["clara-owner"].is_string(),
            "{id} carries an owner marker: {body}"
        );
    }
    // The first state's journal is settled once its objects are in state.
    ws.assert_no_changes(&[]);
    let journal = ws.dir.join(".terraform/clara-journal/default");
    let pending = std::fs::read_dir(&journal).map(|d| d.count()).unwrap_or(0);
    assert_eq!(pending, 0, "no create is pending in {}", journal.display());

    // Another state, same configuration, same workspace.
    let writes_before = ws.emulator.writes().len();
    let other = second_directory(&ws, "other-state");
    let (code, text) = tf_in(
        &ws,
        &other,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(code, 1, "{text}");
    let f = folded(&text);
    assert!(f.contains("Cluster already exists — import it"), "{text}");
    assert!(
        f.contains("Environment version already exists — import it"),
        "{text}"
    );
    assert!(
        f.contains(&format!("terraform import <address> '{cluster_id}'")),
        "{text}"
    );
    assert!(
        f.contains("with azureml_gpu_cluster.c"),
        "the address is named:\n{text}"
    );
    assert!(f.contains("another Terraform state"), "{text}");
    let writes: Vec<_> = ws
        .emulator
        .writes()
        .into_iter()
        .skip(writes_before)
        .collect();
    assert!(writes.is_empty(), "the second state wrote: {writes:?}");
    println!(
        "second state: exit {code}, {} writes to the workspace",
        writes.len()
    );
    assert_eq!(
        ws.emulator.arm_get(&cluster_id)["tags"]["clara-owner"],
        marker,
        "still the first state's"
    );
    ws.assert_no_changes(&[]);

    // The second state takes them over only by importing them; the run then plans clean too.
    for (address, id) in [
        ("azureml_gpu_cluster.c", cluster_id.as_str()),
        ("azureml_environment.e", env_id.as_str()),
        ("clara_training_run.r", job_id.as_str()),
    ] {
        let (code, text) = tf_in(
            &ws,
            &other,
            &["import", "-input=false", "-no-color", address, id],
        );
        assert_eq!(code, 0, "import {address}:\n{text}");
    }
    let (code, text) = tf_in(
        &ws,
        &other,
        &["plan", "-detailed-exitcode", "-input=false", "-no-color"],
    );
    assert_eq!(code, 0, "imported, the second state plans clean:\n{text}");

    // A tags edit from the importing state keeps the marker (it is not the user's tag).
    let (code, text) = tf_in(
        &ws,
        &other,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var=tags={team=\"radiology\"}",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let job = ws.emulator.arm_get(&job_id);
    assert_eq!(job["properties"]["tags"]["team"], "radiology");
    assert!(
        job["properties"]["properties"]["clara-owner"].is_string(),
        "{job}"
    );
    assert_eq!(
        ws.emulator.count_ops("job.create", true),
        1,
        "one job over both states"
    );
}

#[test]
fn killed_apply_is_resumed_from_the_same_directory_but_not_from_a_fresh_checkout() {
    let mut c = config();
    c["jobs"]["time_scale"] = json!(0.05);
    let mut ws = Workspace::inline(STACK, c);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    // The job declares 2 simulated minutes (6 s here), so the kill lands while waiting.
    let tags = "-var=tags={\"clara-emulator/duration-s\"=\"120\"}";
    let mut child = ws
        .command(&["apply", "-auto-approve", "-input=false", "-no-color", tags])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while ws.emulator.count_ops("job.create", true) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job was never submitted"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    std::process::Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    let _ = child.wait();
    // The provider outlives a SIGKILLed Terraform for a moment; let it go.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        !ws.state_file().contains("clara_training_run"),
        "the run was not saved to state"
    );

    // A fresh checkout with the same state (here: a copy of it) has no journal: it does not
    // take over the job it cannot tell from another state's.
    let fresh = second_directory(&ws, "fresh-checkout");
    std::fs::copy(
        ws.dir.join("terraform.tfstate"),
        fresh.join("terraform.tfstate"),
    )
    .unwrap();
    let (code, text) = tf_in(
        &ws,
        &fresh,
        &["apply", "-auto-approve", "-input=false", "-no-color", tags],
    );
    assert_eq!(code, 1, "{text}");
    assert!(
        folded(&text).contains("Job already exists — import it"),
        "{text}"
    );
    assert_eq!(ws.emulator.count_ops("job.create", true), 1);

    // The directory that was interrupted resumes: the job is adopted, with a warning.
    let text = ws.apply(&[tags]);
    let f = folded(&text);
    assert!(
        f.contains("Adopted the job an interrupted apply created"),
        "{text}"
    );
    ws.assert_no_changes(&[tags]);
    let creates = ws.emulator.count_ops("job.create", true);
    println!("killed apply, then the same directory: {creates} job submission(s)");
    assert_eq!(creates, 1, "0 duplicate jobs");
    let jobs = ws.emulator.admin(reqwest::Method::GET, "jobs", None)["jobs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(jobs, 1);
}

#[test]
fn the_walkthrough_applied_from_a_second_state_touches_nothing_of_the_first() {
    let mut c = config();
    c["jobs"]["phase_ms"] = json!(100);
    let mut ws = Workspace::with_storage("covid19-ct-finetune", c);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.emulator.admin(
        reqwest::Method::PUT,
        "ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    );
    ws.ok(&["get", "-no-color"]);
    ws.apply(&[]);
    let markers = |ws: &Workspace| {
        let mut names: Vec<String> = ws
            .blob_names("clara/")
            .into_iter()
            .filter(|n| n.ends_with(".clara-asset.json"))
            .collect();
        names.sort();
        names
    };
    let assets = markers(&ws);
    assert_eq!(assets.len(), 3, "{assets:?}");
    let blobs_before = ws.blob_names("").len();

    let other = ws.tmp.path().join("other-state");
    copy_dir(&repo_root().join("examples/covid19-ct-finetune"), &other);
    let (code, text) = tf_in(&ws, &other, &["get", "-no-color"]);
    assert_eq!(code, 0, "{text}");
    let writes_before = ws.emulator.writes().len();
    let (code, text) = tf_in(
        &ws,
        &other,
        &["apply", "-auto-approve", "-input=false", "-no-color"],
    );
    assert_eq!(code, 1, "{text}");
    let f = folded(&text);
    let hints = f.matches("already exists — import it").count();
    println!("second state over the walkthrough: {hints} import hints");
    assert!(f.contains("Cluster already exists — import it"), "{text}");
    assert!(
        f.contains("Environment version already exists — import it"),
        "{text}"
    );
    assert_eq!(
        f.matches("Asset already exists — import it").count(),
        3,
        "each of the 3 assets:\n{text}"
    );
    let writes: Vec<_> = ws
        .emulator
        .writes()
        .into_iter()
        .skip(writes_before)
        // listSecrets is a POST that reads the datastore key (to read the asset markers).
        .filter(|w| w["op"] != "datastore.listSecrets")
        .collect();
    assert!(
        writes.is_empty(),
        "the second state wrote to Azure ML: {writes:?}"
    );
    assert_eq!(ws.blob_names("").len(), blobs_before, "no blob added");
    let state = ws.state_file();
    assert!(state.contains("clara_training_run"));
    // The first state is intact: nothing to do, and its four jobs ran once each.
    ws.assert_no_changes(&[]);
    assert_eq!(ws.emulator.count_ops("job.create", true), 4);
}
