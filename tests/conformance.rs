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
//!   show` prints it).

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

/// `terraform import ADDR ID` into an empty state, then a plan that must be empty.
fn import_then_no_changes(ws: &Workspace, addr: &str, id: &str) {
    let _ = std::fs::remove_file(ws.dir.join("terraform.tfstate"));
    ws.ok(&["import", "-input=false", "-no-color", addr, id]);
    ws.assert_no_changes(&[]);
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

#[test]
fn gpu_cluster_with_azures_real_shapes_plans_no_changes() {
    let ws = conformance_workspace(CLUSTER);
    ws.apply(&[]);
    let id = format!("{}/computes/clara-ct", ws_id());
    // Azure upper-cases vmSize and answers durations in ISO 8601.
    seed(
        &ws,
        json!({"path": id, "merge": {"properties": {"properties": {
            "vmSize": "STANDARD_NC12S_V3",
            "scaleSettings": {"nodeIdleTimeBeforeScaleDown": "PT5M"}}}}}),
    );
    assert_eq!(
        ws.emulator.arm_get(&id)["properties"]["properties"]["vmSize"],
        "STANDARD_NC12S_V3"
    );
    // Refresh of the managed cluster, then import into an empty state.
    ws.assert_no_changes(&[]);
    forget(&ws, "azureml_gpu_cluster.c");
    import_then_no_changes(&ws, "azureml_gpu_cluster.c", &id);
    let state = ws.state_file();
    assert!(
        state.contains("\"vm_size\": \"Standard_NC12s_v3\""),
        "the user's spelling stays in state:\n{state}"
    );
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
  name                          = "compute123"
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
    let id = format!("{}/computes/compute123", ws_id());
    // Compute/get/AmlCompute.json verbatim, but for what names our resource: the ids, the
    // region (eastus2 → the workspace's eastus), the subnet id (the example's is a
    // placeholder) and the size (STANDARD_NC6 is not offered; another GPU size, still in
    // Azure's upper case).
    let mut body = example("Compute/get/AmlCompute.json")["responses"]["200"]["body"].clone();
    body["id"] = json!(id);
    body["location"] = json!("eastus");
    body["properties"]["properties"]["subnet"]["id"] = json!(subnet);
    body["properties"]["properties"]["vmSize"] = json!("STANDARD_NC6S_V3");
    seed(&ws, json!({"path": id, "body": body}));
    import_then_no_changes(&ws, "azureml_gpu_cluster.c", &id);
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
    import_then_no_changes(&ws, "azureml_environment.e", &id);
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
    import_then_no_changes(&ws, "azureml_environment.e", &id);
}

#[test]
fn training_run_with_azures_real_shapes_plans_no_changes() {
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
    seed(
        &ws,
        json!({"path": cluster, "merge": {"properties": {"properties": {"vmSize": "STANDARD_NC12S_V3"}}}}),
    );
    // Azure adds the system output `default` to every command job, and answers the timeout
    // in ISO 8601.
    seed(
        &ws,
        json!({"path": id, "merge": {"properties": {
        "limits": {"jobLimitsType": "Command", "timeout": "PT4H"},
        "outputs": {"default": {
            "jobOutputType": "uri_folder",
            "mode": "ReadWriteMount",
            "uri": format!("azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{job}")
        }}}}}),
    );
    let got = ws.emulator.arm_get(&id);
    assert!(got["properties"]["outputs"]["default"].is_object(), "{got}");
    // Refresh of what this state manages, then every resource imported into an empty state.
    ws.assert_no_changes(&[]);
    let _ = std::fs::remove_file(ws.dir.join("terraform.tfstate"));
    let _ = std::fs::remove_file(ws.dir.join("terraform.tfstate.backup"));
    ws.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "azureml_gpu_cluster.c",
        &cluster,
    ]);
    ws.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "azureml_environment.e",
        &env_id,
    ]);
    ws.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "clara_training_run.r",
        &id,
    ]);
    ws.assert_no_changes(&[]);
    // Import submitted nothing: still one job.
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
  wait_for_completion = false
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
    import_then_no_changes(&ws, "clara_training_run.r", &id);
}
