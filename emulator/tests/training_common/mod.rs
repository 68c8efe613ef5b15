//! Helpers shared by the environment/code/job/MLflow tests (on top of `common`).

#![allow(dead_code)]

use std::time::Duration;

use clara_emulator::{Config, JobsConfig, PhaseDurations};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Emu, Resp, cluster_body};

/// Fast jobs: every phase 60 ms, cancel/delete 150 ms, time scale 1.
pub fn jobs_config() -> Config {
    Config {
        lro_delay_ms: 50,
        jobs: JobsConfig {
            phase_ms: PhaseDurations::all(60),
            cancel_ms: 150,
            delete_ms: 150,
            ..JobsConfig::default()
        },
        ..Config::default()
    }
}

pub fn env_path(emu: &Emu, name: &str, version: &str) -> String {
    format!("{}/environments/{name}/versions/{version}", emu.ws_path())
}

pub fn code_path(emu: &Emu, name: &str, version: &str) -> String {
    format!("{}/codes/{name}/versions/{version}", emu.ws_path())
}

pub fn job_path(emu: &Emu, name: &str) -> String {
    format!("{}/jobs/{name}", emu.ws_path())
}

pub fn env_body(image: &str) -> Value {
    json!({"properties": {
        "description": "Clara Train SDK",
        "tags": {"team": "clara"},
        "image": image,
        "condaFile": "name: clara\ndependencies:\n  - python=3.8\n",
        "osType": "Linux",
    }})
}

/// Creates compute `gpu` (waits for it) and environment `clara:1`.
pub async fn setup(emu: &Emu, token: &str) {
    let put = emu
        .arm(
            token,
            Method::PUT,
            &emu.compute_path("gpu"),
            Some(cluster_body("Standard_NC6s_v3", 0, 2)),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    emu.wait_op(token, &put.header("azure-asyncoperation").unwrap())
        .await;
    let env = emu
        .arm(
            token,
            Method::PUT,
            &env_path(emu, "clara", "1"),
            Some(env_body("nvcr.io/nvidia/clara-train-sdk:v3.0")),
        )
        .await;
    assert_eq!(env.status, StatusCode::CREATED, "{}", env.body);
}

pub fn compute_id(emu: &Emu) -> String {
    emu.compute_path("gpu")
}

/// A Command job body like the provider sends.
pub fn job_body(emu: &Emu, command: &str) -> Value {
    json!({"properties": {
        "jobType": "Command",
        "displayName": "clara fine-tune",
        "description": "fine-tune the COVID-19 classifier",
        "experimentName": "clara",
        "command": command,
        "computeId": compute_id(emu),
        "environmentId": format!("{}/environments/clara/versions/1", emu.ws_path()),
        "environmentVariables": {"MMAR_ROOT": "/mnt/mmar"},
        "inputs": {
            "mmar": {"jobInputType": "uri_folder", "uri": "azureml://datastores/workspaceblobstore/paths/ngc/clara/mmar/", "mode": "ReadOnlyMount"}
        },
        "outputs": {
            "model": {"jobOutputType": "custom_model", "mode": "ReadWriteMount"}
        },
        "services": {
            "jupyter": {"jobServiceType": "JupyterLab"},
            "ssh": {"jobServiceType": "SSH", "properties": {"sshPublicKeys": "ssh-rsa AAAA test"}}
        },
        "tags": {"team": "clara"},
        "resources": {"instanceCount": 1, "shmSize": "8g"},
        "limits": {"jobLimitsType": "Command", "timeout": "PT2H"}
    }})
}

pub async fn put_job(emu: &Emu, token: &str, name: &str, body: Value) -> Resp {
    emu.arm(token, Method::PUT, &job_path(emu, name), Some(body))
        .await
}

pub async fn get_job(emu: &Emu, token: &str, name: &str) -> Resp {
    emu.arm(token, Method::GET, &job_path(emu, name), None)
        .await
}

pub fn status(r: &Resp) -> String {
    r.body["properties"]["status"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Polls the job every `every` until it is terminal; returns the distinct statuses seen, in
/// order, and the last body.
pub async fn wait_job(emu: &Emu, token: &str, name: &str, every: Duration) -> (Vec<String>, Value) {
    let mut seen: Vec<String> = Vec::new();
    for _ in 0..2000 {
        let r = get_job(emu, token, name).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let s = status(&r);
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if ["Completed", "Failed", "Canceled"].contains(&s.as_str()) {
            return (seen, r.body);
        }
        tokio::time::sleep(every).await;
    }
    panic!("job {name} did not finish: {seen:?}");
}

/// Absolute MLflow base URL from the workspace's `mlFlowTrackingUri`.
pub async fn mlflow_base(emu: &Emu, token: &str) -> String {
    let ws = emu.arm(token, Method::GET, &emu.ws_path(), None).await;
    let uri = ws.body["properties"]["mlFlowTrackingUri"]
        .as_str()
        .unwrap()
        .to_string();
    let scheme = emu.running.base_url.split("://").next().unwrap();
    uri.replacen("azureml", scheme, 1)
}

pub async fn mlflow(emu: &Emu, token: &str, path_and_query: &str) -> Resp {
    let base = mlflow_base(emu, token).await;
    emu.send(
        token,
        Method::GET,
        &format!("{base}/api/2.0/mlflow/{path_and_query}"),
        None,
    )
    .await
}

/// Latest value of an MLflow metric of a run.
pub fn run_metric(run: &Value, key: &str) -> Option<f64> {
    run["run"]["data"]["metrics"]
        .as_array()?
        .iter()
        .find(|m| m["key"] == key)
        .and_then(|m| m["value"].as_f64())
}

pub async fn stats(emu: &Emu) -> Value {
    emu.admin(Method::GET, "/_emulator/stats", None).await.body
}
