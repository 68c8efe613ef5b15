//! Clouds (real Terraform): the provider configured with only `ARM_METADATA_HOSTNAME` (plus
//! credentials and the subscription) finds Resource Manager, the authority and every token
//! scope in the emulator's cloud metadata, here wearing US Government's names (emulator
//! config `cloud: "usgovernment"`, see emulator/README.md "Cloud metadata"); a bad
//! `environment` or `metadata_host` fails naming the attribute.

mod support;

use serde_json::{Value, json};
use support::*;

const CONFIG: &str = r#"
resource "azureml_gpu_cluster" "gpu" {
  provider  = clara
  name      = "gpu"
  vm_size   = "Standard_NC6s_v3"
  min_nodes = 0
  max_nodes = 1
}

resource "azureml_environment" "env" {
  provider = clara
  name     = "clara_env"
  image    = "nvcr.io/nvidia/clara-train-sdk:v3.0"
}

resource "clara_training_run" "ft" {
  compute     = azureml_gpu_cluster.gpu.id
  environment = azureml_environment.env.id
  command     = "bash ./commands/train_finetune.sh --epochs 2"
}
"#;

fn us_gov_config() -> Value {
    let mut c = emulator_config();
    c["jobs"] = json!({"phase_ms": 100});
    c["cloud"] = json!("usgovernment");
    c
}

/// The emulator's `host:port`, what `ARM_METADATA_HOSTNAME` names.
fn host_of(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
}

/// Only the metadata host: no endpoint, authority or environment variables.
fn metadata_only(ws: &mut Workspace) {
    for k in [
        "ARM_RESOURCE_MANAGER_ENDPOINT",
        "ARM_AUTHORITY_HOST",
        "AZURE_AUTHORITY_HOST",
        "ARM_ENVIRONMENT",
    ] {
        ws.remove_env(k);
        assert!(
            std::env::var_os(k).is_none(),
            "{k} is set in the test's environment"
        );
    }
    let host = host_of(&ws.emulator.url);
    ws.set_env("ARM_METADATA_HOSTNAME", &host);
}

#[test]
fn metadata_host_alone_sets_endpoints_and_every_token_scope() {
    let mut ws = Workspace::inline(CONFIG, us_gov_config());
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    metadata_only(&mut ws);
    let text = ws.apply(&[]);
    assert!(
        text.contains("Apply complete! Resources: 3 added"),
        "{text}"
    );

    let log = ws.emulator.requests();
    let metadata: Vec<&Value> = log
        .iter()
        .filter(|r| r["op"] == "metadata.endpoints")
        .collect();
    assert!(
        !metadata.is_empty(),
        "the provider never read the cloud metadata"
    );
    assert!(metadata.iter().all(|r| r["status"] == 200), "{metadata:?}");
    let tokens: Vec<&Value> = log.iter().filter(|r| r["op"] == "token").collect();
    let mut scopes: std::collections::BTreeMap<String, usize> = Default::default();
    for t in &tokens {
        assert_eq!(t["status"], 200, "{t}");
        *scopes
            .entry(t["body"]["scope"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    eprintln!(
        "{} metadata read(s), {} token request(s) by scope: {scopes:?}",
        metadata.len(),
        tokens.len()
    );
    // The cloud's scopes: ARM = its resourceManager + /.default (go-azure-sdk), the ML data
    // plane = https://ml.azure.<suffix of portal.azure.us> (azure-ai-ml). Nothing public.
    let arm = format!("{}/.default", ws.emulator.url);
    let ml = "https://ml.azure.us/.default".to_string();
    assert!(scopes.get(&arm).is_some_and(|n| *n >= 1), "{scopes:?}");
    assert!(
        scopes.get(&ml).is_some_and(|n| *n >= 1),
        "MLflow metrics were read with the cloud's ML scope: {scopes:?}"
    );
    assert!(
        scopes.keys().all(|s| *s == arm || *s == ml),
        "every token request asks for a scope this cloud defines: {scopes:?}"
    );
    // ARM calls all carried the cloud's token (none refused for its audience).
    let refused = log.iter().filter(|r| r["status"] == 401).count();
    assert_eq!(refused, 0, "no request was refused for its token");
    let state: Value = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    let run = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == "clara_training_run.ft")
        .unwrap()["values"]
        .clone();
    assert_eq!(run["status"], "Completed");
    assert!(
        run["metrics"]["best_val_auc"].as_f64().is_some(),
        "metrics from MLflow: {}",
        run["metrics"]
    );
    assert!(
        run["studio_url"]
            .as_str()
            .is_some_and(|u| u.starts_with("https://ml.azure.us/runs/")),
        "{}",
        run["studio_url"]
    );
    ws.assert_no_changes(&[]);
}

#[test]
fn public_scopes_are_refused_by_that_cloud() {
    // The same cloud reached through the endpoint overrides but without metadata_host: the
    // provider keeps public Azure's scopes, which this tenant does not know (AADSTS500011).
    let ws = Workspace::inline(CONFIG, us_gov_config());
    let (code, text) = ws.tf(&["plan", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("AADSTS500011"), "{text}");
    let scopes: Vec<String> = ws
        .emulator
        .requests()
        .iter()
        .filter(|r| r["op"] == "token")
        .map(|r| r["body"]["scope"].as_str().unwrap_or_default().to_string())
        .collect();
    assert!(!scopes.is_empty());
    assert!(
        scopes
            .iter()
            .all(|s| s == "https://management.azure.com/.default"),
        "{scopes:?}"
    );
}

#[test]
fn bad_environment_or_metadata_host_names_the_attribute() {
    let mut ws = Workspace::inline(CONFIG, emulator_config());
    ws.set_env("ARM_ENVIRONMENT", "germany");
    let (code, text) = ws.tf(&["plan", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Unknown Azure environment"), "{text}");
    assert!(flat.contains("environment (ARM_ENVIRONMENT)"), "{text}");
    assert!(flat.contains("\"usgovernment\""), "{text}");

    // In the configuration: caught by validate.
    let main = ws.dir.join("main.tf");
    let hcl = std::fs::read_to_string(&main).unwrap();
    std::fs::write(
        &main,
        hcl.replace(
            "provider \"clara\" {}",
            "provider \"clara\" {\n  environment = \"mars\"\n}",
        ),
    )
    .unwrap();
    ws.remove_env("ARM_ENVIRONMENT");
    let (code, text) = ws.tf(&["validate", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    assert!(text.contains("environment"), "{text}");
    assert!(text.contains("\"mars\" is not an Azure cloud"), "{text}");

    // A metadata host with a path, and one that serves no metadata.
    std::fs::write(&main, &hcl).unwrap();
    ws.set_env("ARM_METADATA_HOSTNAME", "https://example.invalid/x");
    let (code, text) = ws.tf(&["plan", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("metadata_host (ARM_METADATA_HOSTNAME)"),
        "{text}"
    );
    assert!(flat.contains("is not a host name"), "{text}");
    let azurite = ws.azurite.as_ref().unwrap().port;
    ws.set_env("ARM_METADATA_HOSTNAME", &format!("127.0.0.1:{azurite}"));
    let (code, text) = ws.tf(&["plan", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("Cannot read the cloud metadata"), "{text}");
    assert_eq!(
        ws.emulator.count_ops("token", false),
        0,
        "no sign-in without a cloud"
    );
}

#[test]
fn environment_usgovernment_with_endpoint_overrides_keeps_that_clouds_scopes() {
    // ARM_ENVIRONMENT picks the built-in cloud; ARM_RESOURCE_MANAGER_ENDPOINT and
    // ARM_AUTHORITY_HOST (the harness points them at the emulator) win for the endpoints,
    // and the tokens keep US Government's scopes, which the gov-shaped emulator accepts.
    let mut ws = Workspace::inline(CONFIG, us_gov_config());
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.set_env("ARM_ENVIRONMENT", "USGovernment");
    let text = ws.apply(&[]);
    assert!(
        text.contains("Apply complete! Resources: 3 added"),
        "{text}"
    );
    let log = ws.emulator.requests();
    assert_eq!(
        log.iter()
            .filter(|r| r["op"] == "metadata.endpoints")
            .count(),
        0,
        "a named cloud needs no metadata"
    );
    let mut scopes: std::collections::BTreeMap<String, usize> = Default::default();
    for t in log.iter().filter(|r| r["op"] == "token") {
        assert_eq!(t["status"], 200, "{t}");
        *scopes
            .entry(t["body"]["scope"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    eprintln!("environment=USGovernment: token requests by scope: {scopes:?}");
    let arm = "https://management.usgovcloudapi.net/.default";
    let ml = "https://ml.azure.us/.default";
    assert!(
        scopes.contains_key(arm) && scopes.contains_key(ml),
        "{scopes:?}"
    );
    assert_eq!(scopes.len(), 2, "{scopes:?}");
}
