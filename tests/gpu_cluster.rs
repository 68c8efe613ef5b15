//! `azureml_gpu_cluster` and `azureml_vm_sizes` with the real Terraform CLI against the emulator.

mod support;

use support::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs.iter().map(|(k, v)| format!("-var={k}={v}")).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// apply → empty plan → scale change in place → vm_size change replaces → import → destroy.
fn lifecycle(ws: &Workspace) {
    let base = vars(&[("max_nodes", "1")]);
    ws.apply(&refs(&base));
    ws.assert_no_changes(&refs(&base));
    let computes = ws.emulator.computes();
    assert_eq!(computes.len(), 1, "{computes:?}");

    let scaled = vars(&[("max_nodes", "2")]);
    let (code, text) = ws.plan(&refs(&scaled));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("updated in-place"), "{text}");
    assert!(
        text.contains("0 to add, 1 to change, 0 to destroy"),
        "{text}"
    );
    ws.apply(&refs(&scaled));
    ws.assert_no_changes(&refs(&scaled));

    let resized = vars(&[("max_nodes", "2"), ("vm_size", "Standard_NC24s_v3")]);
    let (code, text) = ws.plan(&refs(&resized));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("must be replaced"), "{text}");
    let forcing: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("# forces replacement"))
        .collect();
    assert!(
        forcing.len() == 1 && forcing[0].contains("vm_size"),
        "replacement reason should name vm_size only: {forcing:?}\n{text}"
    );
    ws.apply(&refs(&resized));
    ws.assert_no_changes(&refs(&resized));

    let state: serde_json::Value = serde_json::from_str(&ws.state_file()).unwrap();
    let id = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "azureml_gpu_cluster")
        .unwrap()["instances"][0]["attributes"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.ends_with("/computes/clara-ct"), "{id}");
    ws.ok(&["state", "rm", "azureml_gpu_cluster.clara_ct"]);
    let mut import = vec!["import", "-input=false", "-no-color"];
    import.extend(refs(&resized));
    import.extend(["azureml_gpu_cluster.clara_ct", id.as_str()]);
    ws.ok(&import);
    // Azure answers STANDARD_NC24S_V3; import records the region's spelling.
    assert!(
        ws.state_file()
            .contains("\"vm_size\": \"Standard_NC24s_v3\""),
        "{}",
        ws.state_file()
    );
    ws.assert_no_changes(&refs(&resized));

    let mut destroy = vec!["destroy", "-auto-approve", "-input=false", "-no-color"];
    destroy.extend(refs(&resized));
    ws.ok(&destroy);
    assert!(
        ws.emulator.computes().is_empty(),
        "emulator still holds {:?}",
        ws.emulator.computes()
    );
}

#[test]
fn lifecycle_with_real_terraform() {
    let ws = Workspace::new("gpu-cluster");
    lifecycle(&ws);
    // Exactly one creation per apply that created a cluster: the first apply and the replacement.
    assert_eq!(ws.emulator.count_ops("compute.create", true), 2);
}

#[test]
fn lifecycle_survives_throttling_errors_and_dropped_connections() {
    let mut config = emulator_config();
    // drop_after applies a write and then drops the response: the retry must adopt, not duplicate.
    config["faults"] = serde_json::json!({"seed": 7, "rate": 0.2, "kinds": ["429", "503", "drop", "drop_after"], "retry_after_s": 1});
    let ws = Workspace::with_config("gpu-cluster", config);
    lifecycle(&ws);
    let requests = ws.emulator.requests();
    let faulted = requests.iter().filter(|r| !r["fault"].is_null()).count();
    println!("fault run: {} requests, {faulted} faulted", requests.len());
    assert!(
        faulted >= 5,
        "expected the emulator to inject faults, saw {faulted}"
    );
    assert_eq!(
        ws.emulator.count_ops("compute.create", true),
        2,
        "one creation per creating apply despite retries"
    );
}

#[test]
fn invalid_input_fails_before_any_write() {
    let ws = Workspace::new("gpu-cluster");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("cluster_name", "9starts-with-digit")], "name"),
        (&[("cluster_name", "ab")], "name"),
        (&[("cluster_name", "has_underscore")], "name"),
        (
            &[("cluster_name", "a-name-that-is-far-too-long-for-azure-ml")],
            "name",
        ),
        (&[("max_nodes", "0")], "max_nodes"),
        (&[("vm_size", "Standard_DS3_v2")], "vm_size"),
        (&[("vm_size", "Standard_Imaginary_v9")], "vm_size"),
    ];
    for (vs, attr) in cases {
        let v = vars(vs);
        let (code, text) = ws.plan(&refs(&v));
        assert_eq!(code, 1, "{vs:?} should fail:\n{text}");
        assert!(
            text.contains(&"with azureml_gpu_cluster.clara_ct,".to_string()) || text.contains(attr),
            "{vs:?}: {text}"
        );
        assert!(
            text.contains(attr),
            "diagnostic for {vs:?} should name {attr}:\n{text}"
        );
    }
    let gpu_list = ws.plan(&refs(&vars(&[("vm_size", "Standard_DS3_v2")]))).1;
    assert!(
        gpu_list.contains("Standard_NC12s_v3"),
        "the vm_size diagnostic lists GPU sizes:\n{gpu_list}"
    );

    // Cross-attribute and enum checks, in a configuration of their own.
    let bad = [
        ("min_nodes = 3\n  max_nodes = 1", "min_nodes"),
        (
            "max_nodes = 1\n  idle_seconds_before_scaledown = -5",
            "idle_seconds_before_scaledown",
        ),
        ("max_nodes = 1\n  vm_priority = \"Spot\"", "vm_priority"),
    ];
    for (body, attr) in bad {
        let hcl = format!(
            "resource \"azureml_gpu_cluster\" \"bad\" {{\n  provider = clara\n  name = \"bad-cluster\"\n  vm_size = \"Standard_NC12s_v3\"\n  {body}\n}}\n"
        );
        std::fs::write(ws.dir.join("bad.tf"), hcl).unwrap();
        let (code, text) = ws.tf(&["validate", "-no-color"]);
        assert_eq!(code, 1, "{body} should fail validate:\n{text}");
        assert!(
            text.contains(attr),
            "diagnostic for {body} should name {attr}:\n{text}"
        );
    }
    std::fs::remove_file(ws.dir.join("bad.tf")).unwrap();
    assert!(
        ws.emulator.writes().is_empty(),
        "no write may reach Azure: {:?}",
        ws.emulator.writes()
    );
}

#[test]
fn secrets_never_reach_state_plan_or_logs() {
    let mut ws = Workspace::new("gpu-cluster");
    let password = "Sup3r-Secret-Node-Passw0rd!";
    ws.set_env("TF_VAR_admin_password", password);
    let log = ws.tmp.path().join("trace.log");
    let mut cmd = ws.command(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-var=admin_username=clara",
    ]);
    cmd.env("TF_LOG", "trace").env("TF_LOG_PATH", &log);
    let out = cmd.output().unwrap();
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    let plan_out = ws.ok(&[
        "plan",
        "-no-color",
        "-var=admin_username=clara",
        "-out=tfplan",
    ]);
    let show_plan = ws.ok(&["show", "-json", "tfplan"]);
    let show_state = ws.ok(&["show", "-json"]);
    let trace = std::fs::read_to_string(&log).unwrap();
    assert!(
        trace.len() > 10_000,
        "trace log should be substantial, got {} bytes",
        trace.len()
    );
    assert!(
        trace.contains("azureml_gpu_cluster"),
        "trace log should cover the provider"
    );
    for (what, text) in [
        ("terraform.tfstate", ws.state_file()),
        ("show -json", show_state),
        ("plan -json", show_plan),
        ("plan output", plan_out),
        ("apply output", text),
        ("TF_LOG=trace", trace),
    ] {
        assert!(
            !text.contains(password),
            "admin_password_wo leaked into {what}"
        );
        assert!(
            !text.contains(CLIENT_SECRET),
            "client secret leaked into {what}"
        );
    }
    // The password did reach Azure: the emulator saw a credential (redacted in its own log).
    let creates: Vec<_> = ws
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r["op"] == "compute.create")
        .collect();
    assert_eq!(
        creates[0]["body"]["properties"]["properties"]["userAccountCredentials"]["adminUserPassword"],
        "<redacted>"
    );
}

#[test]
fn drift_is_detected_and_repaired() {
    let ws = Workspace::new("gpu-cluster");
    ws.apply(&[]);
    // Delete out of band: the plan re-creates.
    let id = ws.emulator.computes()[0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ws.emulator.delete_arm(&id);
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("will be created"), "{text}");
    ws.apply(&[]);
    // Scale changed out of band: the plan updates in place.
    ws.emulator.patch_arm(&id, serde_json::json!({"properties": {"properties": {"scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT300S"}}}}));
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("updated in-place") && text.contains("max_nodes"),
        "{text}"
    );
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

#[test]
fn vm_sizes_data_source_lists_gpu_sizes_with_prices() {
    let ws = Workspace::new("gpu-cluster");
    ws.apply(&[]);
    let out: serde_json::Value = serde_json::from_str(&ws.ok(&["output", "-json"])).unwrap();
    assert_eq!(out["gpus_per_node"]["value"], 2);
    assert!(out["max_hourly_cost"]["value"].as_f64().unwrap() > 0.0);
    let state = ws.ok(&["show", "-json"]);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let ds = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "azureml_vm_sizes")
        .unwrap()
        .clone();
    let sizes = ds["values"]["sizes"].as_array().unwrap();
    assert!(
        sizes.iter().all(|s| s["gpus"].as_i64().unwrap() > 0),
        "gpu_only keeps GPU sizes only"
    );
    assert!(
        sizes
            .iter()
            .any(|s| s["name"] == "Standard_ND40rs_v2" && s["gpus"] == 8)
    );
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

#[test]
fn interrupted_create_is_adopted_on_the_next_apply() {
    let mut config = emulator_config();
    config["lro_delay_ms"] = serde_json::json!(5_000);
    let ws = Workspace::with_config("gpu-cluster", config);
    let mut apply = ws.command(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let child = apply
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once Azure has accepted the cluster and the provider is waiting on it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ws.emulator.count_ops("compute.create", true) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "apply never created the cluster"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let text = combined(&out);
    assert!(
        !out.status.success(),
        "interrupted apply should fail:\n{text}"
    );
    assert!(text.contains("interrupted"), "{text}");
    // No resource was recorded yet (outputs may be: the cluster's id is known at plan time).
    let recorded = ws.state_file();
    assert!(
        recorded.is_empty()
            || serde_json::from_str::<serde_json::Value>(&recorded).unwrap()["resources"]
                .as_array()
                .is_none_or(|r| r.iter().all(|r| r["type"] != "azureml_gpu_cluster")),
        "nothing was recorded yet: {recorded}"
    );

    // Re-apply while Azure is still creating: the cluster is adopted and awaited, not created again.
    assert_eq!(
        ws.emulator.computes()[0]["resource"]["properties"]["provisioningState"],
        "Creating"
    );
    let text = ws.apply(&[]);
    assert!(text.contains("1 added"), "{text}");
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        folded.contains("Adopted the cluster an interrupted apply created"),
        "the adoption is announced:\n{text}"
    );
    ws.assert_no_changes(&[]);
    assert_eq!(
        ws.emulator.count_ops("compute.create", true),
        1,
        "exactly one creation"
    );
    assert_eq!(ws.emulator.computes().len(), 1);
}

const WITH_RUN: &str = r#"
variable "vm_size" {
  type    = string
  default = "Standard_NC6s_v3"
}

resource "azureml_gpu_cluster" "c" {
  provider  = clara
  name      = "run-ct"
  vm_size   = var.vm_size
  max_nodes = 2
}

resource "azureml_environment" "e" {
  provider       = clara
  name           = "clara_env"
  image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  conda_packages = ["matplotlib"]
}

resource "clara_training_run" "r" {
  compute     = azureml_gpu_cluster.c.id
  environment = azureml_environment.e.id
  command     = "bash run.sh"
}

output "cost" {
  value = azureml_gpu_cluster.c.estimated_max_cost_usd_per_hour
}
"#;

fn run_config() -> serde_json::Value {
    let mut c = emulator_config();
    c["jobs"] = serde_json::json!({"phase_ms": 100});
    c
}

/// A new vm_size replaces the cluster, and the finished run on it is not re-run: the
/// cluster's id is known at plan time, also across the replacement.
#[test]
fn replacing_the_cluster_re_runs_no_finished_job() {
    let mut ws = Workspace::inline(WITH_RUN, run_config());
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    let (code, first) = ws.plan(&[]);
    assert_eq!(code, 2, "{first}");
    // Known at plan time: the id (so the run's compute) and the cost bound (NC6s_v3 $3.06 × 2).
    assert!(
        first.contains("/computes/run-ct\"") && first.contains("6.12"),
        "{first}"
    );
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    let out: serde_json::Value = serde_json::from_str(&ws.ok(&["output", "-json"])).unwrap();
    assert_eq!(out["cost"]["value"], 6.12);

    let v = ["-var=vm_size=Standard_NC12s_v3"];
    let (code, text) = ws.plan(&v);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("azureml_gpu_cluster.c must be replaced"),
        "{text}"
    );
    assert!(
        !text.contains("# clara_training_run.r"),
        "the run must not change:\n{text}"
    );
    assert!(
        text.contains("Plan: 1 to add, 0 to change, 1 to destroy."),
        "{text}"
    );
    assert!(
        text.contains("12.24"),
        "cost of 2 × NC12s_v3 planned:\n{text}"
    );
    ws.apply(&v);
    ws.assert_no_changes(&v);
    assert_eq!(
        ws.emulator.count_ops("job.create", true),
        1,
        "one job, never re-run"
    );
    assert_eq!(ws.emulator.count_ops("compute.create", true), 2);

    // Azure's spelling of the same size changes nothing.
    ws.assert_no_changes(&["-var=vm_size=STANDARD_NC12S_V3"]);
    ws.assert_no_changes(&["-var=vm_size=standard_nc12s_v3"]);
    ws.ok(&["destroy", "-auto-approve", "-no-color", v[0]]);
}

/// With the emulator's "same-name recreate keeps the old size" quirk on, the replacement's
/// apply fails naming vm_size and both sizes, and the next plan replaces the cluster again.
#[test]
fn a_recreated_cluster_of_another_size_is_caught() {
    let mut config = emulator_config();
    config["computes"] = serde_json::json!({"recreate_keeps_old_vm_size": true});
    let ws = Workspace::with_config("gpu-cluster", config);
    ws.apply(&[]);
    let v = ["-var=vm_size=Standard_NC24s_v3"];
    let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color", v[0]]);
    assert_eq!(code, 1, "{text}");
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        folded.contains("Azure created another VM size")
            && folded.contains("vm_size = \"Standard_NC24s_v3\" was asked")
            && folded.contains("STANDARD_NC12S_V3"),
        "{text}"
    );
    assert!(
        folded.contains("with azureml_gpu_cluster.clara_ct"),
        "{text}"
    );
    let (code, text) = ws.plan(&v);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("must be replaced"), "{text}");
    // Switched off, the next replacement gets the asked size.
    ws.emulator.admin(
        reqwest::Method::PUT,
        "computes",
        Some(serde_json::json!({"recreate_keeps_old_vm_size": false})),
    );
    ws.apply(&v);
    ws.assert_no_changes(&v);
    ws.ok(&["destroy", "-auto-approve", "-no-color", v[0]]);
}

#[test]
fn hostile_and_unknown_values_are_refused_naming_the_attribute() {
    let ws = Workspace::new("gpu-cluster");
    let cases = [
        ("subnet_id = \"subnet-1\"", "subnet_id", "Invalid subnet_id"),
        (
            "subnet_id = \"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/../../x\"",
            "subnet_id",
            "Invalid subnet_id",
        ),
        ("location = \"nowhere\"", "location", "Unknown location"),
        ("location = \"east/../us\"", "location", "Invalid location"),
        (
            "workspace_id = \"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws/computes/victim\"",
            "workspace_id",
            "Invalid workspace_id",
        ),
        (
            "workspace_id = \"/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg%2Fx/providers/Microsoft.MachineLearningServices/workspaces/clara-ws\"",
            "workspace_id",
            "Invalid workspace_id",
        ),
    ];
    for (line, attr, summary) in cases {
        let hcl = format!(
            "resource \"azureml_gpu_cluster\" \"bad\" {{\n  provider = clara\n  name = \"bad-cluster\"\n  vm_size = \"Standard_NC12s_v3\"\n  max_nodes = 1\n  {line}\n}}\n"
        );
        std::fs::write(ws.dir.join("bad.tf"), hcl).unwrap();
        let (code, text) = ws.plan(&[]);
        assert_eq!(code, 1, "{line} should fail:\n{text}");
        assert!(
            text.contains(summary) && text.contains(&format!("{attr} ")),
            "{line}: the diagnostic should say {summary} and name {attr}:\n{text}"
        );
        assert!(!text.contains("GPU sizes there: ."), "{text}");
    }
    // The data source: an unknown region is an error on `location`, not an empty list.
    std::fs::write(
        ws.dir.join("bad.tf"),
        "data \"azureml_vm_sizes\" \"nowhere\" {\n  provider = clara\n  location = \"nowhere\"\n}\n",
    )
    .unwrap();
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("Unknown location") && text.contains("nowhere"),
        "{text}"
    );
    std::fs::remove_file(ws.dir.join("bad.tf")).unwrap();
    // An import id never reaches another object.
    let ws_id = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws";
    for bad in [
        format!("{ws_id}/computes/.."),
        format!("{ws_id}/computes/x%2F..%2Fother"),
        format!("{ws_id}/computes/a?b=1"),
    ] {
        let (code, text) = ws.tf(&[
            "import",
            "-input=false",
            "-no-color",
            "azureml_gpu_cluster.clara_ct",
            &bad,
        ]);
        assert_eq!(code, 1, "{bad}: {text}");
        assert!(text.contains("Invalid import id"), "{bad}: {text}");
    }
    assert!(
        ws.emulator.writes().is_empty(),
        "no write may reach Azure: {:?}",
        ws.emulator.writes()
    );
}

#[test]
fn identity_type_is_spelled_as_the_api_spells_it() {
    let ws = Workspace::new("gpu-cluster");
    let uai = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-clara/providers/Microsoft.ManagedIdentity/userAssignedIdentities/clara-uai";
    let block = |t: &str| {
        format!(
            "resource \"azureml_gpu_cluster\" \"id\" {{\n  provider = clara\n  name = \"id-cluster\"\n  vm_size = \"Standard_NC6s_v3\"\n  max_nodes = 1\n  identity {{\n    type = \"{t}\"\n    identity_ids = [\"{uai}\"]\n  }}\n}}\n"
        )
    };
    std::fs::write(ws.dir.join("id.tf"), block("SystemAssigned, UserAssigned")).unwrap();
    let (code, text) = ws.tf(&["validate", "-no-color"]);
    assert_eq!(code, 1, "the old spelling is refused:\n{text}");
    assert!(text.contains("SystemAssigned,UserAssigned"), "{text}");
    std::fs::write(ws.dir.join("id.tf"), block("SystemAssigned,UserAssigned")).unwrap();
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    let sent: Vec<_> = ws
        .emulator
        .requests()
        .into_iter()
        .filter(|r| {
            r["op"] == "compute.create" && r["path"].as_str().unwrap().ends_with("/id-cluster")
        })
        .collect();
    assert_eq!(
        sent[0]["body"]["identity"]["type"],
        "SystemAssigned,UserAssigned"
    );
    // State written by an older version, with the space, plans no change.
    let state = ws.state_file().replace(
        "\"type\": \"SystemAssigned,UserAssigned\"",
        "\"type\": \"SystemAssigned, UserAssigned\"",
    );
    assert!(state.contains("SystemAssigned, UserAssigned"));
    std::fs::write(ws.dir.join("terraform.tfstate"), state).unwrap();
    ws.assert_no_changes(&["-refresh=false"]);
    ws.assert_no_changes(&[]);
    // An in-place scale change keeps the identity's principal and tenant known.
    let principal = |ws: &Workspace| {
        let state: serde_json::Value = serde_json::from_str(&ws.state_file()).unwrap();
        state["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "id")
            .unwrap()["instances"][0]["attributes"]["identity"]["principal_id"]
            .clone()
    };
    let before = principal(&ws);
    assert!(before.is_string(), "{}", ws.state_file());
    std::fs::write(
        ws.dir.join("id.tf"),
        block("SystemAssigned,UserAssigned").replace("max_nodes = 1", "max_nodes = 2"),
    )
    .unwrap();
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("updated in-place"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| (l.contains("principal_id") || l.contains("tenant_id"))
                && l.contains("known after apply")),
        "{text}"
    );
    ws.apply(&[]);
    assert_eq!(principal(&ws), before);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

const SPELLED: &str = r#"
variable "vm_size" {
  type    = string
  default = "standard_nc6s_v3"
}

variable "location" {
  type    = string
  default = "East US"
}

variable "workspace_id" {
  type    = string
  default = "/SUBSCRIPTIONS/00000000-0000-0000-0000-000000000001/RESOURCEGROUPS/RG-CLARA/PROVIDERS/MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/CLARA-WS"
}

resource "azureml_gpu_cluster" "s" {
  provider     = clara
  name         = "spell-ct"
  vm_size      = var.vm_size
  location     = var.location
  workspace_id = var.workspace_id
  max_nodes    = 1
}
"#;

/// Azure compares VM sizes, regions and ARM ids without case (and regions without spaces):
/// each spelling plans "No changes" against the others, the configured one stays in state,
/// and an import read in Azure's spelling plans clean against the user's.
#[test]
fn spellings_azure_treats_as_the_same_plan_no_changes() {
    let ws = Workspace::inline(SPELLED, emulator_config());
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    let attrs = || {
        let state: serde_json::Value = serde_json::from_str(&ws.state_file()).unwrap();
        state["resources"][0]["instances"][0]["attributes"].clone()
    };
    let a = attrs();
    assert_eq!(a["vm_size"], "standard_nc6s_v3");
    assert_eq!(a["location"], "East US");
    assert!(
        a["workspace_id"]
            .as_str()
            .unwrap()
            .contains("/RESOURCEGROUPS/RG-CLARA/"),
        "{a}"
    );
    // Azure itself answers with the size upper-cased.
    let body = ws.emulator.arm_get(a["id"].as_str().unwrap());
    assert_eq!(
        body["properties"]["properties"]["vmSize"],
        "STANDARD_NC6S_V3"
    );

    let canonical = [
        "-var=vm_size=Standard_NC6s_v3",
        "-var=location=eastus",
        "-var=workspace_id=/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws",
    ];
    ws.assert_no_changes(&canonical);
    ws.assert_no_changes(&["-var=vm_size=STANDARD_NC6S_V3", "-var=location=EASTUS"]);
    // A real change still shows.
    let (code, text) = ws.plan(&["-var=vm_size=Standard_NC12s_v3"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("must be replaced"), "{text}");

    // Import by the canonical id, then plan with the user's spelling.
    let id = a["id"].as_str().unwrap().to_string();
    ws.ok(&["state", "rm", "azureml_gpu_cluster.s"]);
    ws.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "azureml_gpu_cluster.s",
        &id,
    ]);
    ws.assert_no_changes(&[]);
    let writes = ws.emulator.writes().len();
    ws.apply(&[]);
    assert_eq!(
        ws.emulator.writes().len(),
        writes,
        "nothing sent after import"
    );
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ws.emulator.computes().is_empty());
}

/// `import {}` with `-generate-config-out`: Terraform writes the cluster's configuration from
/// what the provider read, and that configuration plans clean (no write follows).
#[test]
fn generated_import_configuration_plans_clean() {
    let ws = Workspace::inline(SPELLED, emulator_config());
    ws.apply(&[]);
    let state: serde_json::Value = serde_json::from_str(&ws.state_file()).unwrap();
    let id = state["resources"][0]["instances"][0]["attributes"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ws.ok(&["state", "rm", "azureml_gpu_cluster.s"]);
    let header = std::fs::read_to_string(ws.dir.join("main.tf")).unwrap();
    let header = &header[..header.find("variable \"vm_size\"").unwrap()];
    std::fs::write(
        ws.dir.join("main.tf"),
        format!("{header}import {{\n  to       = azureml_gpu_cluster.s\n  id       = \"{id}\"\n  provider = clara\n}}\n"),
    )
    .unwrap();
    let (code, text) = ws.tf(&[
        "plan",
        "-input=false",
        "-no-color",
        "-generate-config-out=generated.tf",
    ]);
    assert!(code == 0 || code == 2, "{text}");
    let generated = std::fs::read_to_string(ws.dir.join("generated.tf")).unwrap();
    // Azure answers STANDARD_NC6S_V3; the configuration gets the region's spelling.
    assert!(
        generated.contains("vm_size") && generated.contains("\"Standard_NC6s_v3\""),
        "{generated}"
    );
    let writes = ws.emulator.writes().len();
    ws.apply(&[]);
    assert_eq!(
        ws.emulator.writes().len(),
        writes,
        "the import wrote nothing"
    );
    let (code, text) = ws.plan(&[]);
    assert_eq!(
        code, 0,
        "generated config plans clean:\n{generated}\n{text}"
    );
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ws.emulator.computes().is_empty());
}

const PRICED: &str = r#"
variable "priority" {
  type    = string
  default = "Dedicated"
}

variable "max_nodes" {
  type    = number
  default = 2
}

resource "azureml_gpu_cluster" "p" {
  provider    = clara
  name        = "priced-ct"
  vm_size     = "Standard_NC6s_v3"
  vm_priority = var.priority
  max_nodes   = var.max_nodes
}
"#;

/// `estimated_max_cost_usd_per_hour` = the region's Linux price of one node (the LowPriority
/// tier for low-priority clusters) × `max_nodes`, planned before anything exists and
/// re-planned in place when `max_nodes` changes. The emulator lists Standard_NC6s_v3 at
/// $3.06/h (LowPriority $0.612/h).
#[test]
fn the_cost_bound_is_price_times_max_nodes_at_plan_time() {
    let ws = Workspace::inline(PRICED, emulator_config());
    let (code, text) = ws.plan(&["-var=priority=LowPriority"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("estimated_max_cost_usd_per_hour = 1.224"),
        "2 × $0.612:\n{text}"
    );
    ws.apply(&[]);
    let state: serde_json::Value = serde_json::from_str(&ws.state_file()).unwrap();
    assert_eq!(
        state["resources"][0]["instances"][0]["attributes"]["estimated_max_cost_usd_per_hour"],
        6.12
    );
    let (code, text) = ws.plan(&["-var=max_nodes=3"]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("updated in-place")
            && text.contains("estimated_max_cost_usd_per_hour = 6.12 -> 9.18"),
        "3 × $3.06, in place:\n{text}"
    );
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// A user-assigned identity has no principal or tenant of its own: planned null, not
/// "(known after apply)"; a system-assigned one's are unknown until Azure makes them.
#[test]
fn identity_principal_is_planned_null_for_user_assigned() {
    let uai = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-clara/providers/Microsoft.ManagedIdentity/userAssignedIdentities/clara-uai";
    for (kind, unknown) in [("UserAssigned", false), ("SystemAssigned", true)] {
        let hcl = format!(
            "resource \"azureml_gpu_cluster\" \"u\" {{\n  provider = clara\n  name = \"uai-cluster\"\n  vm_size = \"Standard_NC6s_v3\"\n  max_nodes = 1\n  identity {{\n    type = \"{kind}\"\n    identity_ids = {}\n  }}\n}}\n",
            if kind == "UserAssigned" {
                format!("[\"{uai}\"]")
            } else {
                "null".into()
            }
        );
        let ws = Workspace::inline(&hcl, emulator_config());
        ws.ok(&["plan", "-input=false", "-no-color", "-out=tfplan"]);
        let plan: serde_json::Value =
            serde_json::from_str(&ws.ok(&["show", "-json", "tfplan"])).unwrap();
        let change = &plan["resource_changes"][0]["change"];
        for attr in ["principal_id", "tenant_id"] {
            assert_eq!(
                change["after_unknown"]["identity"][attr] == true,
                unknown,
                "{kind} {attr}: {change}"
            );
            if !unknown {
                assert!(change["after"]["identity"][attr].is_null(), "{change}");
            }
        }
    }
}

const TAGGED: &str = r#"
variable "tags" {
  type    = map(string)
  default = {}
}

resource "azureml_gpu_cluster" "t" {
  provider  = clara
  name      = "tagged-ct"
  vm_size   = "Standard_NC6s_v3"
  max_nodes = 1
  tags      = var.tags
}
"#;

/// `tags = {}` and no tags are the same to Azure: switching between them applies with no
/// request and plans clean; a real tag still travels.
#[test]
fn empty_tags_equal_no_tags() {
    let ws = Workspace::inline(TAGGED, emulator_config());
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    let writes = ws.emulator.writes().len();
    for v in ["-var=tags=null", "-var=tags={}"] {
        ws.apply(&[v]);
        ws.assert_no_changes(&[v]);
    }
    assert_eq!(
        ws.emulator.writes().len(),
        writes,
        "{{}} ↔ no tags sends nothing"
    );
    ws.apply(&["-var=tags={team=\"ct\"}"]);
    assert!(ws.emulator.writes().len() > writes, "a real tag is sent");
    let id = ws.emulator.computes()[0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ws.emulator.arm_get(&id)["tags"]["team"], "ct");
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// The cluster's instance in a state file, parsed.
fn cluster_instance(state: &str) -> serde_json::Value {
    let state: serde_json::Value = serde_json::from_str(state).unwrap();
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "azureml_gpu_cluster")
        .unwrap()["instances"][0]
        .clone()
}

/// Schema version 1 renamed `admin_password`/`admin_password_version` to
/// `admin_password_wo`/`admin_password_wo_version` (azurerm's and aws's spelling). State
/// written with the old names (schema version 0) upgrades and plans "No changes", without a
/// request that writes; the old names are refused naming them; rotating the version
/// re-creates the cluster with one PUT that carries the new password, which is in no state,
/// plan JSON or trace log.
#[test]
fn old_password_names_upgrade_and_rotating_the_version_resends_the_password() {
    let mut ws = Workspace::new("gpu-cluster");
    let first = "F1rst-Node-Passw0rd!";
    let second = "S3cond-Node-Passw0rd!";
    ws.set_env("TF_VAR_admin_password", first);
    let v = |n: &str| {
        vec![
            "-var=admin_username=clara".to_string(),
            format!("-var=admin_password_version={n}"),
        ]
    };
    ws.apply(&refs(&v("1")));
    let with_password = |ws: &Workspace| {
        ws.emulator
            .requests()
            .into_iter()
            .filter(|r| {
                r["op"] == "compute.create"
                    && r["body"]["properties"]["properties"]["userAccountCredentials"]
                        ["adminUserPassword"]
                        == "<redacted>"
            })
            .count()
    };
    assert_eq!(ws.emulator.count_ops("compute.create", true), 1);
    assert_eq!(with_password(&ws), 1, "the create carries the password");

    // Rewrite the state as schema version 0 wrote it: the old names, the password a null.
    let mut state: serde_json::Value = serde_json::from_str(&ws.state_file()).unwrap();
    let inst = state["resources"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|r| r["type"] == "azureml_gpu_cluster")
        .unwrap()["instances"][0]
        .as_object_mut()
        .unwrap();
    assert_eq!(inst["schema_version"], 1, "the current schema is version 1");
    inst.insert("schema_version".into(), 0.into());
    let attrs = inst["attributes"].as_object_mut().unwrap();
    assert_eq!(attrs["admin_password_wo_version"], 1);
    attrs.remove("admin_password_wo_version");
    attrs.remove("admin_password_wo");
    attrs.insert("admin_password".into(), serde_json::Value::Null);
    attrs.insert("admin_password_version".into(), 1.into());
    std::fs::write(
        ws.dir.join("terraform.tfstate"),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();
    let writes_before = ws.emulator.writes().len();
    ws.assert_no_changes(&refs(&[v("1"), vec!["-refresh=false".into()]].concat()));
    ws.assert_no_changes(&refs(&v("1")));
    // An apply with nothing to do records the upgraded state.
    let out = ws.apply(&refs(&v("1")));
    assert!(out.contains("0 added, 0 changed, 0 destroyed"), "{out}");
    assert_eq!(
        ws.emulator.writes().len(),
        writes_before,
        "the upgrade sends nothing to Azure: {:?}",
        &ws.emulator.writes()[writes_before..]
    );
    let inst = cluster_instance(&ws.state_file());
    assert_eq!(inst["schema_version"], 1);
    assert_eq!(inst["attributes"]["admin_password_wo_version"], 1);
    assert!(
        inst["attributes"].get("admin_password_version").is_none()
            && inst["attributes"].get("admin_password").is_none(),
        "{inst}"
    );

    // The old names are refused, naming them; a version without a password names the password.
    let bad = |body: &str| {
        format!(
            "resource \"azureml_gpu_cluster\" \"bad\" {{\n  provider = clara\n  name = \"bad-cluster\"\n  vm_size = \"Standard_NC12s_v3\"\n  max_nodes = 1\n  admin_username = \"clara\"\n  {body}\n}}\n"
        )
    };
    for (body, attr) in [
        ("admin_password = \"x\"", "\"admin_password\""),
        ("admin_password_version = 1", "\"admin_password_version\""),
        ("admin_password_wo_version = 1", "admin_password_wo"),
    ] {
        std::fs::write(ws.dir.join("bad.tf"), bad(body)).unwrap();
        let (code, text) = ws.tf(&["validate", "-no-color"]);
        assert_eq!(code, 1, "{body} should fail validate:\n{text}");
        assert!(text.contains(attr), "{body}: should name {attr}:\n{text}");
    }
    std::fs::remove_file(ws.dir.join("bad.tf")).unwrap();

    // Rotate: a new password and version 2 replace the cluster with one PUT carrying it.
    ws.set_env("TF_VAR_admin_password", second);
    let (code, plan_text) = ws.plan(&refs(&[v("2"), vec!["-out=tfplan".into()]].concat()));
    assert_eq!(code, 2, "{plan_text}");
    assert!(
        plan_text.contains("must be replaced")
            && plan_text.lines().any(
                |l| l.contains("admin_password_wo_version") && l.contains("forces replacement")
            ),
        "{plan_text}"
    );
    let plan_json = ws.ok(&["show", "-json", "tfplan"]);
    let log = ws.tmp.path().join("rotate-trace.log");
    let mut cmd = ws.command(
        &[
            vec!["apply", "-auto-approve", "-input=false", "-no-color"],
            refs(&v("2")),
        ]
        .concat(),
    );
    cmd.env("TF_LOG", "trace").env("TF_LOG_PATH", &log);
    let out = cmd.output().unwrap();
    let apply_text = combined(&out);
    assert!(out.status.success(), "{apply_text}");
    assert!(
        apply_text.contains("1 added, 0 changed, 1 destroyed"),
        "{apply_text}"
    );
    assert_eq!(ws.emulator.count_ops("compute.create", true), 2);
    assert_eq!(
        with_password(&ws),
        2,
        "the new create re-sends the password"
    );
    assert_eq!(ws.emulator.count_ops("compute.delete", true), 1);
    let trace = std::fs::read_to_string(&log).unwrap();
    assert!(
        trace.len() > 10_000 && trace.contains("azureml_gpu_cluster"),
        "the trace covers the cluster ({} bytes)",
        trace.len()
    );
    let state_json = ws.ok(&["show", "-json"]);
    for (what, text) in [
        ("terraform.tfstate", ws.state_file()),
        ("show -json", state_json),
        ("plan -json", plan_json),
        ("plan output", plan_text),
        ("apply output", apply_text),
        ("TF_LOG=trace", trace),
    ] {
        for secret in [first, second] {
            assert!(!text.contains(secret), "a password leaked into {what}");
        }
    }
    assert_eq!(
        cluster_instance(&ws.state_file())["attributes"]["admin_password_wo_version"],
        2
    );
    ws.assert_no_changes(&refs(&v("2")));
    ws.ok(&[
        "destroy",
        "-auto-approve",
        "-no-color",
        "-var=admin_username=clara",
    ]);
}
