//! Conformance: what Azure really answers, served to the provider, through `terraform import`
//! into an empty state and `terraform plan` with the configuration the user wrote (in the
//! user's spelling). Each resource type must plan "No changes".
//!
//! Two sources of responses:
//! - Microsoft's published example responses (../shared/reference/azureml-examples/, from
//!   Azure/azure-rest-api-specs), served verbatim except for what names our resource (ids,
//!   names, the region and a VM size the emulator's region offers) through the emulator's
//!   `PUT /_emulator/raw {"path","body"}`;
//! - real-world shapes laid over the emulator's own answers (`{"path","merge"}`): `vmSize`
//!   upper-cased (azure-rest-api-specs#20216, azurerm#17562), ISO 8601 durations (`PT5M`,
//!   `PT4H`), and the system output `outputs.default` that Azure adds to every command job
//!   (`azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.<job>`, as `az ml job
//!   show` prints it), the system properties bag and services (Studio, Tracking), and the
//!   resource and queue defaults (`shmSize` 2g, `jobTier` Null).
//!
//! A case whose provider fix is on another branch, not yet on main, may list the differences
//! it still plans in `Awaits` (with the fix and its commit; none today) and runs in full: it fails on any
//! other difference and on an awaited one that no longer shows; once the fix's commit is
//! merged (in HEAD's history), its awaits excuse nothing and the case demands "No changes". Each verdict is printed as a
//! `CONFORMANCE <case>: No changes | AWAITS …` line (`--nocapture`).

mod support;

use reqwest::Method;
use serde_json::{Value as Json, json};
use support::*;

fn ws_id() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}"
    )
}

fn example(file: &str) -> Json {
    let dir = repo_root().join("../shared/reference/azureml-examples");
    let text = std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading Microsoft's example {file}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn seed(ws: &Workspace, entry: Json) {
    ws.emulator.admin(Method::PUT, "raw", Some(entry));
}

fn conformance_workspace(hcl: &str) -> Workspace {
    let mut config = emulator_config();
    config["jobs"] = json!({"phase_ms": 100});
    let mut ws = Workspace::inline(hcl, config);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws
}

/// A difference the provider still plans against a conformance case, and the fix (not yet
/// on main; its text names the commit) that is meant to remove it. Once that commit is in
/// the checkout's history (the branch merged), the await no longer excuses anything. `what` is an attribute (one that forces replacement, or
/// one an in-place update changes), `error: <summary>` for a planning error, or `create` /
/// `delete`. The case still runs in full: it fails on any difference not listed here, and on
/// a listed one that no longer shows (the fix has landed: drop its line, so the case then
/// demands "No changes" outright).
#[derive(Clone, Copy)]
struct Awaits {
    addr: &'static str,
    what: &'static str,
    fix: &'static str,
}

/// Whether the commit a fix names (`(<hash>)`) is in the history of this checkout's HEAD
/// (`git merge-base --is-ancestor`); not when git, the repository or the commit is missing.
fn fix_is_merged(fix: &str) -> bool {
    let Some(commit) = regex::Regex::new(r"\(([0-9a-f]{7,40})\)")
        .unwrap()
        .captures(fix)
        .map(|c| c[1].to_string())
    else {
        return false;
    };
    std::process::Command::new("git")
        .arg("-C")
        .arg(repo_root())
        .args(["merge-base", "--is-ancestor", &commit, "HEAD"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether an `after_unknown` member marks anything unknown.
fn any_true(v: &Json) -> bool {
    match v {
        Json::Bool(b) => *b,
        Json::Array(a) => a.iter().any(any_true),
        Json::Object(o) => o.values().any(any_true),
        _ => false,
    }
}

/// What a plan shows, as `(address, what)` pairs (see [`Awaits`]); empty = "No changes".
fn plan_differences(ws: &Workspace) -> (Vec<(String, String)>, String) {
    let (code, text) = ws.tf(&[
        "plan",
        "-detailed-exitcode",
        "-input=false",
        "-no-color",
        "-out=conformance.tfplan",
    ]);
    match code {
        0 => {
            assert!(text.contains("No changes."), "{text}");
            (vec![], text)
        }
        2 => {
            let plan: Json = serde_json::from_str(&ws.ok(&["show", "-json", "conformance.tfplan"]))
                .expect("terraform show -json");
            let mut found = Vec::new();
            for rc in plan["resource_changes"].as_array().into_iter().flatten() {
                let addr = rc["address"].as_str().unwrap_or("?").to_string();
                let change = &rc["change"];
                let actions: Vec<&str> = change["actions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Json::as_str)
                    .collect();
                match actions.as_slice() {
                    ["no-op"] | ["read"] => {}
                    ["create"] => found.push((addr, "create".into())),
                    ["delete"] => found.push((addr, "delete".into())),
                    ["update"] => {
                        let empty = serde_json::Map::new();
                        let before = change["before"].as_object().unwrap_or(&empty);
                        let after = change["after"].as_object().unwrap_or(&empty);
                        let unknown = change["after_unknown"].as_object().unwrap_or(&empty);
                        let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
                        keys.sort();
                        keys.dedup();
                        // What the configuration changes; computed attributes that go
                        // unknown because of it are its consequence, listed only when
                        // nothing else changes.
                        let changed: Vec<String> = keys
                            .iter()
                            .filter(|k| !unknown.get(**k).is_some_and(any_true))
                            .filter(|k| before.get(**k) != after.get(**k))
                            .map(|k| k.to_string())
                            .collect();
                        let to_unknown: Vec<String> = keys
                            .iter()
                            .filter(|k| unknown.get(**k).is_some_and(any_true))
                            .map(|k| format!("{k} (unknown)"))
                            .collect();
                        let list = if changed.is_empty() {
                            to_unknown
                        } else {
                            changed
                        };
                        found.extend(list.into_iter().map(|k| (addr.clone(), k)));
                    }
                    _ => {
                        // A replacement: the attributes that force it.
                        let mut paths: Vec<String> = change["replace_paths"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|p| p[0].as_str().map(str::to_string))
                            .collect();
                        paths.sort();
                        paths.dedup();
                        if paths.is_empty() {
                            paths.push(format!("replace ({actions:?})"));
                        }
                        found.extend(paths.into_iter().map(|p| (addr.clone(), p)));
                    }
                }
            }
            assert!(!found.is_empty(), "exit 2 but no change found:\n{text}");
            (found, text)
        }
        _ => {
            let mut found = Vec::new();
            let lines: Vec<&str> = text.lines().collect();
            for (i, l) in lines.iter().enumerate() {
                let Some(summary) = l.strip_prefix("Error: ") else {
                    continue;
                };
                let addr = lines[i + 1..]
                    .iter()
                    .take(4)
                    .find_map(|w| w.trim().strip_prefix("with "))
                    .map(|w| w.trim_end_matches(',').to_string())
                    .unwrap_or_else(|| "?".into());
                found.push((addr, format!("error: {summary}")));
            }
            assert!(!found.is_empty(), "plan failed without an error:\n{text}");
            (found, text)
        }
    }
}

/// The plan must be empty, but for the differences `awaits` lists (see [`Awaits`]).
fn assert_plans_no_changes(ws: &Workspace, case: &str, awaits: &[Awaits]) {
    let (found, text) = plan_differences(ws);
    judge(case, found, &text, awaits);
}

/// Every difference found must be awaited, and every awaited one found (see [`Awaits`]).
fn judge(case: &str, found: Vec<(String, String)>, text: &str, awaits: &[Awaits]) {
    // An await whose fix commit is in this checkout's history excuses nothing any more.
    let (merged, awaits): (Vec<Awaits>, Vec<Awaits>) =
        awaits.iter().copied().partition(|x| fix_is_merged(x.fix));
    for x in &merged {
        println!(
            "CONFORMANCE {case}: {} — `{}` no longer excused: {} is merged",
            x.addr, x.what, x.fix
        );
    }
    let awaits = &awaits[..];
    let listed = |a: &str, w: &str| awaits.iter().any(|x| x.addr == a && x.what == w);
    let unexpected: Vec<String> = found
        .iter()
        .filter(|(a, w)| !listed(a, w))
        .map(|(a, w)| format!("{a}: {w}"))
        .collect();
    let landed: Vec<String> = awaits
        .iter()
        .filter(|x| !found.iter().any(|(a, w)| a == x.addr && w == x.what))
        .map(|x| format!("{}: {} — {}", x.addr, x.what, x.fix))
        .collect();
    if found.is_empty() {
        println!("CONFORMANCE {case}: No changes");
    }
    for x in awaits {
        if found.iter().any(|(a, w)| a == x.addr && w == x.what) {
            println!(
                "CONFORMANCE {case}: AWAITS {} — plans `{}` until {}",
                x.addr, x.what, x.fix
            );
        }
    }
    assert!(
        unexpected.is_empty(),
        "{case}: the plan is not empty, and not for the awaited reasons: {unexpected:?}\n{text}"
    );
    assert!(
        landed.is_empty(),
        "{case}: awaited differences no longer show (their fix has landed: drop these lines from the case's awaits, so it demands \"No changes\" outright): {landed:?}\n{text}"
    );
}

/// `terraform import ADDR ID` into an empty state, then a plan that must be empty.
/// An import that fails counts as `import error: <summary>` on `addr` (and no plan follows).
fn import_then_no_changes(ws: &Workspace, case: &str, addr: &str, id: &str, awaits: &[Awaits]) {
    let _ = std::fs::remove_file(ws.dir.join("terraform.tfstate"));
    let _ = std::fs::remove_file(ws.dir.join("terraform.tfstate.backup"));
    if let Some(found) = import(ws, addr, id) {
        judge(case, found, "(the import failed)", awaits);
        return;
    }
    assert_plans_no_changes(ws, case, awaits);
}

/// `terraform import`; on failure, its errors as differences.
fn import(ws: &Workspace, addr: &str, id: &str) -> Option<Vec<(String, String)>> {
    let (code, text) = ws.tf(&["import", "-input=false", "-no-color", addr, id]);
    if code == 0 {
        return None;
    }
    println!("terraform import {addr} failed:\n{text}");
    let found: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.strip_prefix("Error: "))
        .map(|e| (addr.to_string(), format!("import error: {e}")))
        .collect();
    assert!(!found.is_empty(), "import failed without an error:\n{text}");
    Some(found)
}

/// An output of the current state (read from the state file: `terraform output` would mix
/// CLI warnings into the text).
fn output(ws: &Workspace, name: &str) -> String {
    let state: Json = serde_json::from_str(&ws.state_file()).expect("a state file");
    state["outputs"][name]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("output {name} missing: {state}"))
        .to_string()
}

fn forget(ws: &Workspace, addr: &str) {
    ws.ok(&["state", "rm", "-no-color", addr]);
}

const CLUSTER: &str = r#"
resource "azureml_gpu_cluster" "c" {
  provider                      = clara
  name                          = "clara-ct"
  vm_size                       = "Standard_NC12s_v3"
  min_nodes                     = 0
  max_nodes                     = 1
  idle_seconds_before_scaledown = 300
}
"#;

/// Azure's answer for a cluster the provider created: `vmSize` upper-cased
/// (azure-rest-api-specs#20216, azurerm#17562) and the idle time in ISO 8601.
fn azure_cluster_shapes(ws: &Workspace, id: &str) {
    seed(
        ws,
        json!({"path": id, "merge": {"properties": {"properties": {
            "vmSize": "STANDARD_NC12S_V3",
            "scaleSettings": {"nodeIdleTimeBeforeScaleDown": "PT5M"}}}}}),
    );
    let got = ws.emulator.arm_get(id);
    assert_eq!(
        got["properties"]["properties"]["vmSize"],
        "STANDARD_NC12S_V3"
    );
    assert_eq!(
        got["properties"]["properties"]["scaleSettings"]["nodeIdleTimeBeforeScaleDown"],
        "PT5M"
    );
}

/// The configured spelling of `vm_size` in state after a refresh, as a difference when lost.
fn vm_size_spelling(ws: &Workspace, want: &str) -> Vec<(String, String)> {
    let state: Json = serde_json::from_str(&ws.state_file()).expect("a state file");
    let got = state["resources"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["type"] == "azureml_gpu_cluster")
        .map(|r| r["instances"][0]["attributes"]["vm_size"].clone())
        .unwrap_or(Json::Null);
    if got == want {
        vec![]
    } else {
        println!("vm_size in state: {got} (configured {want})");
        vec![(
            "azureml_gpu_cluster.c".into(),
            "vm_size in state not as configured".into(),
        )]
    }
}

#[test]
fn gpu_cluster_with_azures_real_shapes_plans_no_changes() {
    let case = "gpu_cluster real shapes";
    let ws = conformance_workspace(CLUSTER);
    ws.apply(&[]);
    let id = format!("{}/computes/clara-ct", ws_id());
    azure_cluster_shapes(&ws, &id);
    // Refresh of the managed cluster: no change, and the user's spelling stays in state.
    let (mut found, text) = plan_differences(&ws);
    found.extend(vm_size_spelling(&ws, "Standard_NC12s_v3"));
    judge(&format!("{case}, refresh"), found, &text, &[]);
    // Import into an empty state.
    forget(&ws, "azureml_gpu_cluster.c");
    import_then_no_changes(
        &ws,
        &format!("{case}, import"),
        "azureml_gpu_cluster.c",
        &id,
        &[],
    );
    // Nothing was re-created behind the plans.
    assert_eq!(ws.emulator.count_ops("compute.create", true), 1);
}

#[test]
fn gpu_cluster_from_microsofts_example_response_plans_no_changes() {
    let subnet = format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default"
    );
    let hcl = format!(
        r#"
resource "azureml_gpu_cluster" "c" {{
  provider                      = clara
  name                          = "clara-ct"
  vm_size                       = "Standard_NC6s_v3"
  min_nodes                     = 0
  max_nodes                     = 1
  idle_seconds_before_scaledown = 300
  subnet_id                     = "{subnet}"
  description                   = "some compute"
}}
"#
    );
    let ws = conformance_workspace(&hcl);
    let id = format!("{}/computes/clara-ct", ws_id());
    // Compute/get/AmlCompute.json verbatim, but for what names our resource: the ids, the
    // region (eastus2 → the workspace's eastus), the subnet id (the example's is a
    // placeholder) and the size (STANDARD_NC6 is not offered; another GPU size, still in
    // Azure's upper case).
    let mut body = example("Compute/get/AmlCompute.json")["responses"]["200"]["body"].clone();
    assert_eq!(body["properties"]["properties"]["vmSize"], "STANDARD_NC6");
    body["id"] = json!(id);
    body["name"] = json!("clara-ct");
    body["location"] = json!("eastus");
    body["properties"]["properties"]["subnet"]["id"] = json!(subnet);
    body["properties"]["properties"]["vmSize"] = json!("STANDARD_NC6S_V3");
    seed(&ws, json!({"path": id, "body": body}));
    import_then_no_changes(
        &ws,
        "gpu_cluster Microsoft's Compute_Get example",
        "azureml_gpu_cluster.c",
        &id,
        &[],
    );
    assert!(
        ws.emulator.count_ops("raw.get", true) >= 2,
        "the example was served"
    );
}

#[test]
fn environment_from_microsofts_example_response_plans_no_changes() {
    // EnvironmentVersion/createOrUpdate.json's 200 response, as a GET would return it.
    let ex = example("Workspace/EnvironmentVersion/createOrUpdate.json");
    let mut body = ex["responses"]["200"]["body"].clone();
    let id = format!("{}/environments/string/versions/string", ws_id());
    body["id"] = json!(id);
    body["name"] = json!("string");
    body["type"] = json!("Microsoft.MachineLearningServices/workspaces/environments/versions");
    let hcl = r#"
resource "azureml_environment" "e" {
  provider    = clara
  name        = "string"
  version     = "string"
  image       = "docker.io/tensorflow/serving:latest"
  conda_file  = "string"
  description = "string"
  tags        = { string = "string" }
}
"#;
    let ws = conformance_workspace(hcl);
    seed(&ws, json!({"path": id, "body": body}));
    import_then_no_changes(
        &ws,
        "environment Microsoft's EnvironmentVersions example",
        "azureml_environment.e",
        &id,
        &[],
    );
    assert!(
        ws.emulator.count_ops("raw.get", true) >= 2,
        "the example was served"
    );
}

#[test]
fn environment_created_then_imported_plans_no_changes() {
    let hcl = r#"
resource "azureml_environment" "e" {
  provider       = clara
  name           = "clara_env"
  image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  conda_packages = ["numpy", "monai==0.8.1"]
  pip_packages   = ["pydicom"]
  description    = "Clara Train"
  tags           = { team = "radiology" }
}
output "id" { value = azureml_environment.e.id }
"#;
    let ws = conformance_workspace(hcl);
    ws.apply(&[]);
    let id = output(&ws, "id");
    forget(&ws, "azureml_environment.e");
    import_then_no_changes(
        &ws,
        "environment with packages, import",
        "azureml_environment.e",
        &id,
        &[],
    );
    assert_eq!(ws.emulator.count_ops("environment.create", true), 1);
}

#[test]
fn training_run_with_azures_real_shapes_plans_no_changes() {
    let case = "training_run real shapes";
    let hcl = format!(
        r#"{CLUSTER}
resource "azureml_environment" "e" {{
  provider       = clara
  name           = "clara_env"
  image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  conda_packages = ["numpy"]
}}

resource "clara_training_run" "r" {{
  compute         = azureml_gpu_cluster.c.id
  environment     = azureml_environment.e.id
  experiment_name = "conformance"
  command         = "echo $${{{{inputs.epochs}}}} > $${{{{outputs.model}}}}/epochs"
  input {{
    name  = "epochs"
    type  = "literal"
    value = "5"
  }}
  output {{
    name = "model"
  }}
  timeout = "4h"
}}

output "run_id" {{ value = clara_training_run.r.id }}
output "env_id" {{ value = azureml_environment.e.id }}
"#
    );
    let ws = conformance_workspace(&hcl);
    ws.apply(&[]);
    let id = output(&ws, "run_id");
    let env_id = output(&ws, "env_id");
    let job = id.rsplit('/').next().unwrap().to_string();
    let cluster = format!("{}/computes/clara-ct", ws_id());
    azure_cluster_shapes(&ws, &cluster);
    // What Azure adds to every command job (see emulator/README.md, Jobs): the system output
    // `default`, the timeout in ISO 8601, the system properties bag, the system services
    // Studio and Tracking, the resource and queue defaults. Sources: Azure PowerShell
    // `New-AzMLWorkspaceJob` example output (a job at Starting: `_azureml.ComputeTargetType`,
    // `_azureml.ClusterName`, `outputs.default`); the azure.azcollection `azure_rm_ml_job_info`
    // RETURN sample (a completed job through azure-ai-ml: the whole bag, services Studio and
    // Tracking, `shm_size: 2g`, `queue_settings.job_tier`).
    let wsid = ws_id();
    seed(
        &ws,
        json!({"path": id, "merge": {"properties": {
            "limits": {"jobLimitsType": "Command", "timeout": "PT4H"},
            "outputs": {"default": {
                "jobOutputType": "uri_folder",
                "mode": "ReadWriteMount",
                "uri": format!("azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{job}")
            }},
            "properties": {
                "_azureml.ComputeTargetType": "amlctrain",
                "_azureml.ClusterName": "clara-ct",
                "ProcessInfoFile": "azureml-logs/process_info.json",
                "ProcessStatusFile": "azureml-logs/process_status.json",
                "StartTimeUtc": "2026-03-31 18:14:56",
                "EndTimeUtc": "2026-03-31 18:18:41"
            },
            "services": {
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": format!("https://ml.azure.com/runs/{job}?wsid={}&tid={TENANT}", wsid.replace("resourceGroups", "resourcegroups").replace("/providers/Microsoft.MachineLearningServices", ""))
                },
                "Tracking": {
                    "jobServiceType": "Tracking",
                    "endpoint": format!("azureml://eastus.api.azureml.ms/mlflow/v1.0{wsid}?")
                }
            },
            "resources": {"instanceCount": 1, "shmSize": "2g", "properties": {}},
            "queueSettings": {"jobTier": "Null"}
        }}}),
    );
    let got = ws.emulator.arm_get(&id);
    assert!(got["properties"]["outputs"]["default"].is_object(), "{got}");
    assert_eq!(
        got["properties"]["services"]["Studio"]["jobServiceType"],
        "Studio"
    );
    // Refresh of what this state manages: no change.
    assert_plans_no_changes(&ws, &format!("{case}, refresh"), &[]);
    // Every resource imported into an empty state.
    let _ = std::fs::remove_file(ws.dir.join("terraform.tfstate"));
    let _ = std::fs::remove_file(ws.dir.join("terraform.tfstate.backup"));
    for (addr, rid) in [
        ("azureml_gpu_cluster.c", &cluster),
        ("azureml_environment.e", &env_id),
        ("clara_training_run.r", &id),
    ] {
        assert!(import(&ws, addr, rid).is_none(), "import {addr} failed");
    }
    assert_plans_no_changes(&ws, &format!("{case}, import"), &[]);
    // Neither the plans nor the imports submitted anything: still one job.
    assert_eq!(ws.emulator.count_ops("job.create", true), 1);
}

#[test]
fn training_run_from_microsofts_example_response_plans_no_changes() {
    let hcl_ws = ws_id();
    let hcl = format!(
        r#"
resource "clara_training_run" "r" {{
  name                  = "example-job"
  compute               = "{hcl_ws}/computes/clara-ct"
  environment           = "azureml:clara_env:1"
  command               = "string"
  experiment_name       = "string"
  display_name          = "string"
  description           = "string"
  tags                  = {{ string = "string" }}
  environment_variables = {{ string = "string" }}
  instance_count        = 1
  timeout               = "5m"
  distribution {{
    type                   = "TensorFlow"
    worker_count           = 1
    parameter_server_count = 1
  }}
  input {{
    name  = "string"
    type  = "literal"
    value = "string"
  }}
  output {{
    name = "string"
    type = "uri_file"
  }}
  service {{
    name = "string"
    type = "JupyterLab"
    port = 1
  }}
}}
"#
    );
    let ws = conformance_workspace(&hcl);
    // What the job refers to exists, created out of band (as in the portal).
    let cluster = format!("{}/computes/clara-ct", ws_id());
    ws.emulator.arm(
        Method::PUT,
        &cluster,
        "",
        Some(json!({"properties": {"computeType": "AmlCompute", "properties": {
            "vmSize": "Standard_NC6s_v3", "scaleSettings": {"minNodeCount": 0, "maxNodeCount": 1}}}})),
    );
    ws.emulator.arm(
        Method::PUT,
        &format!("{}/environments/clara_env/versions/1", ws_id()),
        "",
        Some(json!({"properties": {"image": "nvcr.io/nvidia/clara-train-sdk:v3.0"}})),
    );
    // Microsoft's Command job request example submits the job, and its Jobs_Get example
    // response is what reads of it return. Substituted: what names our objects (ids, the
    // compute and environment references), the placeholder service type (`"string"` is not a
    // service type) and no codeId (no code asset here). The request's parentJobName (in no
    // definition of the spec) is dropped.
    let id = format!("{}/jobs/example-job", ws_id());
    let mut req = example("Job/CommandJob/createOrUpdate.json")["parameters"]["body"].clone();
    let mut body = example("Job/CommandJob/get.json")["responses"]["200"]["body"].clone();
    assert_eq!(body["properties"]["limits"]["timeout"], "PT5M");
    for b in [&mut req, &mut body] {
        let p = b["properties"].as_object_mut().unwrap();
        p.remove("codeId");
        p.remove("parentJobName");
        p.insert("computeId".into(), json!(cluster));
        p.insert("environmentId".into(), json!("azureml:clara_env:1"));
        p.insert(
            "services".into(),
            json!({"string": {"jobServiceType": "JupyterLab", "port": 1}}),
        );
    }
    ws.emulator.arm(Method::PUT, &id, "", Some(req));
    body["id"] = json!(id);
    body["name"] = json!("example-job");
    body["type"] = json!("Microsoft.MachineLearningServices/workspaces/jobs");
    seed(&ws, json!({"path": id, "body": body}));
    // The import reads back `distribution`, `service` and `timeout` (PT5M = 5m) by meaning.
    import_then_no_changes(
        &ws,
        "training_run Microsoft's Jobs_Get example",
        "clara_training_run.r",
        &id,
        &[],
    );
    assert_eq!(
        ws.emulator.count_ops("job.create", true),
        1,
        "the test's own PUT only"
    );
}

const MMAR: &str = r#"
resource "ngc_asset" "mmar" {
  provider       = clara
  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/covid"

  data_asset {
    name = "covid-mmar"
  }
}

output "uri" { value = ngc_asset.mmar.id }
output "data_asset" { value = ngc_asset.mmar.data_asset_id }
"#;

#[test]
fn ngc_asset_imported_by_datastore_uri_plans_no_changes() {
    let ws = conformance_workspace(MMAR);
    ws.apply(&[]);
    let uri = output(&ws, "uri");
    let data_asset = output(&ws, "data_asset");
    let ngc_fetches = |ws: &Workspace| -> usize {
        ["ngc.download", "ngc.file", "ngc.zip"]
            .iter()
            .map(|op| ws.emulator.count_ops(op, false))
            .sum()
    };
    let downloads = ngc_fetches(&ws);
    assert!(downloads > 0, "the apply fetched the MMAR from NGC");
    // The registered data asset as Microsoft's DataVersionBase example shows one: its
    // system data, `isAnonymous` and a properties bag laid over the emulator's answer.
    let ex = example("Workspace/DataVersionBase/createOrUpdate.json")["responses"]["200"]["body"]
        .clone();
    seed(
        &ws,
        json!({"path": data_asset, "merge": {
            "systemData": ex["systemData"],
            "properties": {"isAnonymous": ex["properties"]["isAnonymous"],
                           "properties": ex["properties"]["properties"]}}}),
    );
    assert_eq!(
        ws.emulator.arm_get(&data_asset)["systemData"]["createdByType"],
        "User"
    );
    assert_plans_no_changes(&ws, "ngc_asset, refresh", &[]);
    forget(&ws, "ngc_asset.mmar");
    import_then_no_changes(&ws, "ngc_asset, import", "ngc_asset.mmar", &uri, &[]);
    assert_eq!(
        ngc_fetches(&ws),
        downloads,
        "neither plan nor import downloaded anything"
    );
}
