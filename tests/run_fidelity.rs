//! `clara_training_run` against the emulator's realistic job shapes (real Terraform): the
//! system output `default`, ISO 8601 durations, the properties bag, failure reasons kept in
//! run history, and every status of the spec.

mod support;

use serde_json::{Value, json};
use support::*;

const BASE: &str = r#"
resource "azureml_gpu_cluster" "gpu" {
  provider  = clara
  name      = "gpu"
  vm_size   = "Standard_NC6s_v3"
  min_nodes = 0
  max_nodes = 2
}

resource "azureml_environment" "env" {
  provider = clara
  name     = "clara_env"
  image    = "nvcr.io/nvidia/clara-train-sdk:v3.0"
}
"#;

fn config() -> Json {
    let mut c = emulator_config();
    c["jobs"] = json!({"phase_ms": 100});
    c
}

type Json = Value;

fn workspace(runs: &str, config: Json) -> Workspace {
    let mut ws = Workspace::inline(&format!("{BASE}\n{runs}"), config);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws
}

/// A run with the given extra HCL lines.
fn run(name: &str, extra: &str) -> String {
    format!(
        r#"
resource "clara_training_run" "{name}" {{
  compute     = azureml_gpu_cluster.gpu.id
  environment = azureml_environment.env.id
  command     = "bash ./commands/train_finetune.sh --epochs 2 --out $${{{{outputs.model}}}}"
  output {{
    name = "model"
  }}
{extra}
}}
"#
    )
}

fn show(ws: &Workspace) -> Value {
    serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap()
}

fn run_attrs(ws: &Workspace, name: &str) -> Value {
    show(ws)["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == format!("clara_training_run.{name}"))
        .unwrap_or_else(|| panic!("clara_training_run.{name} in state"))["values"]
        .clone()
}

#[test]
fn applied_with_realistic_defaults_then_plans_no_changes() {
    let ws = workspace(&run("ft", "  timeout = \"4h\"\n"), config());
    let text = ws.apply(&[]);
    assert!(
        text.contains("Apply complete! Resources: 3 added"),
        "{text}"
    );
    let attrs = run_attrs(&ws, "ft");
    assert_eq!(attrs["status"], "Completed");
    // The service added its system output; state keeps only the declared one.
    let job = ws.emulator.arm_get(attrs["id"].as_str().unwrap());
    let p = &job["properties"];
    assert_eq!(
        p["outputs"]["default"]["uri"],
        format!(
            "azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{}",
            attrs["name"].as_str().unwrap()
        )
    );
    assert_eq!(p["limits"]["timeout"], "PT4H");
    assert_eq!(p["properties"]["_azureml.ComputeTargetType"], "amlctrain");
    assert!(p.get("error").is_none());
    let outputs = attrs["outputs"].as_object().unwrap();
    assert_eq!(outputs.keys().collect::<Vec<_>>(), ["model"], "{outputs:?}");
    assert!(
        attrs["metrics"]["best_val_auc"].as_f64().is_some(),
        "{}",
        attrs["metrics"]
    );
    ws.assert_no_changes(&[]);
    ws.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
    ws.assert_no_changes(&[]);

    // Imported from the real shape (shmSize "2g", jobTier "Null", outputs.default): nothing
    // the configuration leaves unset reads back set.
    let id = attrs["id"].as_str().unwrap().to_string();
    ws.ok(&["state", "rm", "-no-color", "clara_training_run.ft"]);
    ws.ok(&["import", "-no-color", "clara_training_run.ft", &id]);
    let imported = run_attrs(&ws, "ft");
    assert!(imported["shm_size"].is_null(), "{imported}");
    assert_eq!(imported["outputs"], attrs["outputs"]);
    ws.assert_no_changes(&[]);
    // Writing Azure's default out, or the compute id in other casing, re-runs nothing.
    let main = ws.dir.join("main.tf");
    let hcl = std::fs::read_to_string(&main).unwrap();
    let compute = "compute     = azureml_gpu_cluster.gpu.id";
    assert!(hcl.contains(compute));
    std::fs::write(
        &main,
        hcl.replace(
            compute,
            "compute     = lower(azureml_gpu_cluster.gpu.id)\n  shm_size    = \"2048m\"",
        ),
    )
    .unwrap();
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("clara_training_run.ft will be updated in-place"),
        "{text}"
    );
    assert!(!text.contains("must be replaced"), "{text}");
    assert_eq!(ws.emulator.count_ops("job.create", true), 1);
}

#[test]
fn imported_run_plans_no_changes() {
    let extra = r#"
  timeout      = "4h"
  shm_size     = "8g"
  instance_count = 2
  environment_variables = { MMAR_EPOCHS = "2", NCCL_DEBUG = "INFO" }
  tags = { team = "imaging" }
  input {
    name  = "epochs"
    type  = "literal"
    value = "2"
  }
  distribution {
    type                       = "PyTorch"
    process_count_per_instance = 2
  }
  service {
    name = "jupyter"
    type = "JupyterLab"
  }
  service {
    name = "ssh"
    type = "SSH"
    port = 22
    ssh_public_keys = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmulatorKeyOnlyForTests clara@test"
  }
  service {
    name    = "tensorboard"
    type    = "TensorBoard"
    log_dir = "outputs/tblogs"
  }
"#;
    let ws = workspace(&run("ft", extra), config());
    ws.apply(&[]);
    let before = run_attrs(&ws, "ft");
    let id = before["id"].as_str().unwrap().to_string();
    let creates = ws.emulator.count_ops("job.create", true);
    assert_eq!(creates, 1);

    ws.ok(&["state", "rm", "-no-color", "clara_training_run.ft"]);
    let text = ws.ok(&["import", "-no-color", "clara_training_run.ft", &id]);
    assert!(text.contains("Import successful"), "{text}");
    let imported = run_attrs(&ws, "ft");
    assert_eq!(imported["timeout"], "4h", "PT4H reads back as 4h");
    assert_eq!(imported["shm_size"], "8g");
    assert_eq!(imported["distribution"]["type"], "PyTorch");
    assert_eq!(imported["service"].as_array().unwrap().len(), 3);
    assert_eq!(imported["outputs"], before["outputs"]);
    ws.assert_no_changes(&[]);
    assert_eq!(
        ws.emulator.count_ops("job.create", true),
        creates,
        "nothing re-submitted"
    );

    // Respelling the timeout (4h → 240m) is an in-place change of the state only; another
    // duration (5h) re-runs the job.
    let main = ws.dir.join("main.tf");
    let hcl = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        hcl.replace("timeout      = \"4h\"", "timeout      = \"240m\""),
    )
    .unwrap();
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("clara_training_run.ft will be updated in-place"),
        "{text}"
    );
    assert!(!text.contains("must be replaced"), "{text}");
    let writes_before = ws.emulator.writes().len();
    ws.apply(&[]);
    assert_eq!(
        ws.emulator.writes().len(),
        writes_before,
        "a respelling sends nothing"
    );
    assert_eq!(run_attrs(&ws, "ft")["timeout"], "240m");
    ws.assert_no_changes(&[]);
    ws.ok(&["apply", "-refresh-only", "-auto-approve", "-no-color"]);
    assert_eq!(
        run_attrs(&ws, "ft")["timeout"],
        "240m",
        "refresh keeps the spelling"
    );
    std::fs::write(
        &main,
        hcl.replace("timeout      = \"4h\"", "timeout      = \"5h\""),
    )
    .unwrap();
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("clara_training_run.ft must be replaced"),
        "{text}"
    );
    assert_eq!(ws.emulator.count_ops("job.create", true), creates);
}

#[test]
fn failing_job_reports_the_run_history_reason_and_studio_url() {
    let reason = "CUDA out of memory: tried to allocate 2.00 GiB on node 0";
    let ws = workspace(
        &run(
            "ft",
            &format!("  tags = {{ \"clara-emulator/fail\" = \"{reason}\" }}\n"),
        ),
        config(),
    );
    let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("failed"), "{text}");
    assert!(flat.contains(reason), "the run history reason: {text}");
    assert!(flat.contains("(UserError, from run history)"), "{text}");
    assert!(
        flat.contains("Studio: https://ml.azure.com/runs/"),
        "{text}"
    );
    let details = ws.emulator.count_ops("history.run.details", true);
    assert!(details >= 1, "the reason came from run history");
    eprintln!(
        "failing job: {details} run-history details read(s), {} job GET(s)",
        ws.emulator.count_ops("job.get", true)
    );
    // The job body itself has no error member.
    let jobs = ws.emulator.admin(reqwest::Method::GET, "jobs", None);
    let job = &jobs["jobs"][0]["resource"];
    assert_eq!(job["properties"]["status"], "Failed");
    assert!(job["properties"].get("error").is_none(), "{job}");
}

#[test]
fn not_responding_that_recovers_does_not_end_the_wait() {
    // NotResponding without an end: the test sees the provider keep polling through it,
    // then lets the job recover (admin advance) and the apply completes.
    let ws = workspace(
        &run(
            "ft",
            "  tags = { \"clara-emulator/interrupt\" = \"NotResponding\" }\n",
        ),
        config(),
    );
    let mut apply = ws
        .command(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let mut polls_at_start = None;
    loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the job never stalled"
        );
        let jobs = ws.emulator.admin(reqwest::Method::GET, "jobs", None);
        let polls = ws.emulator.count_ops("job.get", true);
        if jobs["jobs"][0]["status"] == "NotResponding" {
            let start = *polls_at_start.get_or_insert(polls);
            if polls >= start + 2 {
                eprintln!("NotResponding: job GETs {start} -> {polls}, apply still waiting");
                break; // two polls answered NotResponding, and the wait goes on
            }
        }
        assert!(
            apply.try_wait().unwrap().is_none(),
            "apply ended while the job was not responding"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ws.emulator
        .admin(reqwest::Method::POST, "jobs/advance", None);
    let out = apply.wait_with_output().unwrap();
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    let attrs = run_attrs(&ws, "ft");
    assert_eq!(attrs["status"], "Completed");
    assert!(attrs["metrics"]["best_val_auc"].as_f64().is_some());
    ws.assert_no_changes(&[]);
}

#[test]
fn paused_and_unknown_are_reported_not_waited_on() {
    let runs = format!(
        "{}{}",
        run(
            "paused",
            "  tags = { \"clara-emulator/interrupt\" = \"Paused\" }\n"
        ),
        run(
            "unknown",
            "  tags = { \"clara-emulator/interrupt\" = \"Unknown\" }\n  environment_variables = { X = \"1\" }\n",
        ),
    );
    let ws = workspace(&runs, config());
    let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("paused"), "{text}");
    assert!(flat.contains("The job is Paused in Azure ML"), "{text}");
    assert!(
        flat.contains("reports the job's status as Unknown"),
        "{text}"
    );
    assert!(
        flat.contains("Studio: https://ml.azure.com/runs/"),
        "{text}"
    );
    let jobs = ws.emulator.admin(reqwest::Method::GET, "jobs", None);
    let statuses: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert!(
        statuses.contains(&"Paused") && statuses.contains(&"Unknown"),
        "{statuses:?}"
    );
}

#[test]
fn metrics_that_cannot_be_read_are_a_warning() {
    let mut c = config();
    c["workspaces"][0]["mlflow"] = json!(false);
    let ws = workspace(&run("ft", ""), c);
    let text = ws.apply(&[]);
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("Warning: Run metrics cannot be read"),
        "{text}"
    );
    assert!(flat.contains("has no MLflow tracking URI"), "{text}");
    let attrs = run_attrs(&ws, "ft");
    assert_eq!(attrs["status"], "Completed");
    assert_eq!(attrs["metrics"], json!({}));
    assert_eq!(ws.emulator.count_ops("mlflow.run.get", false), 0);
    eprintln!("no MLflow: 0 mlflow.run.get, metrics {{}}, warning shown");
}

#[test]
fn provisioning_is_waited_through() {
    // On-demand compute being created: a status of the spec the plain timeline never shows.
    let ws = workspace(
        &run(
            "ft",
            "  tags = { \"clara-emulator/interrupt\" = \"Provisioning:1500\" }\n",
        ),
        config(),
    );
    let text = ws.apply(&[]);
    assert!(
        text.contains("Apply complete! Resources: 3 added"),
        "{text}"
    );
    let attrs = run_attrs(&ws, "ft");
    assert_eq!(attrs["status"], "Completed");
    let polls = ws.emulator.count_ops("job.get", true);
    // 1.5 s of Provisioning at this poll scale spans several polls
    assert!(polls >= 4, "{polls} job GETs");
    eprintln!("Provisioning:1500 waited through with {polls} job GETs");
    ws.assert_no_changes(&[]);
}
