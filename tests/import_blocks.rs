//! `import {}` blocks with `terraform plan -generate-config-out` for all four resource types
//! (asset, cluster, environment, run): the configuration Terraform
//! writes from what the provider reads back plans clean (imports only), applies without
//! touching Azure beyond reads, and then plans "No changes".

mod support;

use serde_json::json;
use support::*;

const STACK: &str = r#"
resource "ngc_asset" "mmar" {
  provider       = clara
  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/covid"
}

resource "azureml_gpu_cluster" "c" {
  provider    = clara
  name        = "imported-ct"
  vm_size     = "Standard_NC6s_v3"
  max_nodes   = 2
  description = "fine-tune nodes"
  tags        = { team = "radiology" }
}

resource "azureml_environment" "e" {
  provider       = clara
  name           = "clara_env"
  image          = "nvcr.io/nvidia/clara-train-sdk:v3.0"
  conda_packages = ["matplotlib"]
  pip_packages   = ["jupyterlab"]
  description    = "Clara Train"
}

resource "clara_training_run" "r" {
  compute      = azureml_gpu_cluster.c.id
  environment  = azureml_environment.e.id
  command      = "bash $${{inputs.mmar}}/train.sh --out $${{outputs.model}}"
  display_name = "fine-tune"
  description  = "imported later"
  tags         = { stage = "train" }
  environment_variables = { MMAR_ROOT = "/mmar" }
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

fn folded(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn import_blocks_generate_configuration_that_plans_clean() {
    let mut c = emulator_config();
    c["jobs"] = json!({"phase_ms": 100});
    let mut ws = Workspace::inline(STACK, c);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.apply(&[]);
    let state: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    let ids: Vec<(String, String)> = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["address"].as_str().unwrap().to_string(),
                r["values"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ids.len(), 4, "{ids:?}");

    // A new state with only import blocks; Terraform writes the resource blocks.
    let dir = ws.tmp.path().join("importing");
    std::fs::create_dir_all(&dir).unwrap();
    let mut imports = String::from(HEADER);
    for (address, id) in &ids {
        let provider = if address.starts_with("clara_") {
            ""
        } else {
            "\n  provider = clara"
        };
        imports.push_str(&format!(
            "\nimport {{\n  to = {address}\n  id = \"{id}\"{provider}\n}}\n"
        ));
    }
    std::fs::write(dir.join("main.tf"), imports).unwrap();
    let tf = |args: &[&str]| {
        let out = ws.command(args).current_dir(&dir).output().unwrap();
        (out.status.code().unwrap_or(-1), combined(&out))
    };
    let writes_before = ws.emulator.writes().len();
    let (code, text) = tf(&[
        "plan",
        "-input=false",
        "-no-color",
        "-generate-config-out=generated.tf",
    ]);
    assert_eq!(code, 0, "{text}");
    let generated = std::fs::read_to_string(dir.join("generated.tf")).unwrap();
    println!("generated.tf:\n{generated}");
    for ty in [
        "azureml_gpu_cluster",
        "azureml_environment",
        "clara_training_run",
    ] {
        assert!(
            generated.contains(&format!("resource \"{ty}\"")),
            "{generated}"
        );
    }

    // The generated configuration plans clean: imports only, nothing to create or change.
    let (code, text) = tf(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert!(code == 0 || code == 2, "{text}");
    assert!(
        folded(&text).contains("Plan: 4 to import, 0 to add, 0 to change, 0 to destroy."),
        "{text}"
    );
    let (code, text) = tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("4 imported, 0 added, 0 changed, 0 destroyed"),
        "{text}"
    );
    let (code, text) = tf(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
    assert_eq!(code, 0, "after the import, \"No changes\":\n{text}");
    assert!(text.contains("No changes."), "{text}");
    let writes: Vec<_> = ws
        .emulator
        .writes()
        .into_iter()
        .skip(writes_before)
        // listSecrets is a POST that reads the datastore key (to read the asset's marker).
        .filter(|w| w["op"] != "datastore.listSecrets")
        .collect();
    assert!(writes.is_empty(), "importing wrote to Azure: {writes:?}");
    assert_eq!(
        ws.emulator.count_ops("job.create", true),
        1,
        "nothing re-ran"
    );
}
