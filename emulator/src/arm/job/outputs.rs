//! Best-effort upload of a completed job's simulated outputs to the configured blob endpoint
//! (`storage.blob_endpoint`, e.g. Azurite). Triggered the first time a request observes the
//! job `Completed`; runs in the background; the outcome is kept in the job record
//! (`outputs_upload`: `pending`, `done`, `failed: …`) and printed to stderr on failure.
//!
//! For each declared output `<out>` it writes `azureml/<job>/<out>/metrics.json` and, for
//! model outputs (`custom_model`, `mlflow_model`, `triton_model`, or a name containing
//! `model`), `azureml/<job>/<out>/model.ts` — placeholders, not real models.

use serde_json::{Value, json};

use crate::app::AppState;
use crate::util::{now_ms, stable_guid};

pub fn maybe_upload(app: &AppState, key: &str) {
    if !app.config.storage.uploads_enabled() {
        return;
    }
    let now = now_ms();
    let due = app.store.read(|d| {
        d.training
            .jobs
            .get(key)
            .is_some_and(|j| j.outputs_upload.is_none() && j.state_at(now).status == "Completed")
    });
    if !due {
        return;
    }
    let plan = app.store.write(|d| {
        let j = d.training.jobs.get_mut(key)?;
        if j.outputs_upload.is_some() {
            return None;
        }
        j.outputs_upload = Some("pending".into());
        Some(blobs(j))
    });
    let Some((container, blobs)) = plan.map(|(ws_id, b)| {
        (
            app.config
                .storage
                .container(&stable_guid(&ws_id.to_ascii_lowercase())),
            b,
        )
    }) else {
        return;
    };
    let app = app.clone();
    let key = key.to_string();
    tokio::spawn(async move {
        let storage = app.config.storage.clone();
        let client = crate::storage::client();
        let mut result = storage.ensure_container(&client, &container).await;
        for (path, bytes, content_type) in blobs {
            if result.is_err() {
                break;
            }
            result = storage
                .put_blob(&client, &container, &path, bytes, content_type)
                .await;
        }
        let status = match result {
            Ok(()) => "done".to_string(),
            Err(e) => {
                eprintln!("clara-emulator: uploading outputs of {key}: {e}");
                format!("failed: {e}")
            }
        };
        app.store.write(|d| {
            if let Some(j) = d.training.jobs.get_mut(&key) {
                j.outputs_upload = Some(status);
            }
        });
    });
}

type Blob = (String, Vec<u8>, &'static str);

/// (workspace id, blobs to write).
fn blobs(j: &crate::arm::job::model::JobRecord) -> (String, Vec<Blob>) {
    let metrics: Vec<Value> = j
        .clara
        .as_ref()
        .map(|c| {
            c.metrics
                .iter()
                .map(|m| json!({"key": m.key, "value": m.value, "step": m.step}))
                .collect()
        })
        .unwrap_or_default();
    let params = j
        .clara
        .as_ref()
        .map(|c| json!(c.params))
        .unwrap_or(json!({}));
    let mut out = Vec::new();
    if let Some(outputs) = j.properties["outputs"].as_object() {
        for (name, spec) in outputs {
            if spec.get("uri").and_then(Value::as_str).is_some() {
                continue; // the client chose the destination; the emulator only fills defaults
            }
            let prefix = format!("azureml/{}/{name}", j.name);
            let doc = json!({
                "simulated": true,
                "job": j.name,
                "output": name,
                "params": params,
                "metrics": metrics,
            });
            out.push((
                format!("{prefix}/metrics.json"),
                serde_json::to_vec_pretty(&doc).unwrap_or_default(),
                "application/json",
            ));
            let ty = spec["jobOutputType"].as_str().unwrap_or_default();
            if ty.ends_with("_model") || name.contains("model") {
                out.push((
                    format!("{prefix}/model.ts"),
                    format!(
                        "SIMULATED TorchScript model written by clara-emulator for job {}\n",
                        j.name
                    )
                    .into_bytes(),
                    "application/octet-stream",
                ));
            }
        }
    }
    (j.workspace_id(), out)
}
