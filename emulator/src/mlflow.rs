//! The MLflow tracking REST API of a workspace, as much as the provider reads:
//! `{base}/api/2.0/mlflow/runs/get?run_id=<job>` and
//! `{base}/api/2.0/mlflow/metrics/get-history?run_id=<job>&metric_key=<key>`, where `{base}`
//! is the workspace's `mlFlowTrackingUri` with `azureml://` replaced by the emulator's scheme
//! (`/mlflow/v1.0{WS}`; `/mlflow/v2.0{WS}` works too). `run_id` is the job name.
//!
//! Auth: any unexpired bearer token issued by the emulator (whatever its scope); no
//! `api-version`. Errors use MLflow's shape `{"error_code","message"}`.
//!
//! Run status: NotStarted…Queued → `SCHEDULED`; Running, Finalizing, CancelRequested →
//! `RUNNING`; Completed → `FINISHED`; Failed → `FAILED`; Canceled → `KILLED`. Times and
//! metric timestamps follow the job's simulated clock (see `arm::job::model`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::arm::job::model::{JobRecord, JobState, job_key};
use crate::arm::{ArmPath, ReqCtx, resolve_workspace};
use crate::pipeline::RouteExt;
use crate::util::now_ms;

const BASE: &str = "/mlflow/{ver}/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}/api/2.0/mlflow";

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{BASE}/runs/get"),
            get(run_get).bearer(app, "mlflow.run.get"),
        )
        .route(
            &format!("{BASE}/metrics/get-history"),
            get(metric_history).bearer(app, "mlflow.metric.history"),
        )
}

#[derive(Deserialize)]
struct WsPath {
    ver: String,
    sub: String,
    rg: String,
    ws: String,
}

struct MlError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for MlError {
    fn into_response(self) -> Response {
        (
            self.status,
            axum::Json(json!({ "error_code": self.code, "message": self.message })),
        )
            .into_response()
    }
}

fn not_found(message: String) -> MlError {
    MlError {
        status: StatusCode::NOT_FOUND,
        code: "RESOURCE_DOES_NOT_EXIST",
        message,
    }
}

fn invalid(message: String) -> MlError {
    MlError {
        status: StatusCode::BAD_REQUEST,
        code: "INVALID_PARAMETER_VALUE",
        message,
    }
}

/// Workspace check + the job named by `run_id` (or `run_uuid`).
fn find_run(app: &AppState, p: &WsPath, ctx: &ReqCtx) -> Result<(JobRecord, u64), MlError> {
    if p.ver != "v1.0" && p.ver != "v2.0" {
        return Err(not_found(format!(
            "Unknown MLflow API version '{}'.",
            p.ver
        )));
    }
    resolve_workspace(app, &p.sub, &p.rg, &p.ws).map_err(|e| not_found(e.message))?;
    let run_id = ctx
        .param("run_id")
        .or_else(|| ctx.param("run_uuid"))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Missing value for required parameter 'run_id'.".into()))?;
    let now = now_ms();
    let key = job_key(&p.sub, &p.rg, &p.ws, run_id);
    app.store
        .read(|d| {
            d.training
                .jobs
                .get(&key)
                .filter(|j| !j.is_deleted_at(now))
                .cloned()
        })
        .map(|j| (j, now))
        .ok_or_else(|| not_found(format!("Run '{run_id}' not found.")))
}

fn mlflow_status(state: &JobState) -> &'static str {
    match state.status {
        "Running" | "Finalizing" | "CancelRequested" => "RUNNING",
        "Completed" => "FINISHED",
        "Failed" => "FAILED",
        "Canceled" => "KILLED",
        _ => "SCHEDULED",
    }
}

/// Metrics logged so far: `(key, value, timestamp, step)` in logging order.
fn visible_metrics(job: &JobRecord, state: &JobState) -> Vec<(String, f64, u64, i64)> {
    let (Some(plan), Some(start)) = (&job.clara, state.sim_start) else {
        return Vec::new();
    };
    plan.metrics
        .iter()
        .filter_map(|m| {
            let offset = (m.at * state.sim_total as f64).round() as u64;
            let visible = if m.is_final {
                state.status == "Completed"
            } else {
                offset <= state.sim_elapsed
            };
            visible.then(|| (m.key.clone(), m.value, start + offset, m.step))
        })
        .collect()
}

fn metric_json(m: &(String, f64, u64, i64)) -> Value {
    json!({ "key": m.0, "value": m.1, "timestamp": m.2, "step": m.3 })
}

async fn run_get(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<WsPath>,
    ctx: ReqCtx,
) -> Result<Response, MlError> {
    let (job, now) = find_run(&app, &p, &ctx)?;
    let state = job.state_at(now);
    let all = visible_metrics(&job, &state);
    // Latest value per key (largest step, then timestamp).
    let mut latest: Vec<&(String, f64, u64, i64)> = Vec::new();
    for m in &all {
        match latest.iter_mut().find(|l| l.0 == m.0) {
            Some(l) if (m.3, m.2) >= (l.3, l.2) => *l = m,
            Some(_) => {}
            None => latest.push(m),
        }
    }
    let mut params: Vec<Value> = Vec::new();
    if let Some(plan) = &job.clara {
        params.extend(
            plan.params
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v})),
        );
    }
    if let Some(inputs) = job.properties["inputs"].as_object() {
        for (k, i) in inputs {
            let taken = params.iter().any(|p| p["key"] == json!(k));
            if i["jobInputType"] == "literal" && !taken {
                params.push(json!({"key": k, "value": i["value"]}));
            }
        }
    }
    let run_name = job.properties["displayName"]
        .as_str()
        .unwrap_or(&job.name)
        .to_string();
    let mut tags: Vec<Value> = vec![
        json!({"key": "mlflow.runName", "value": run_name}),
        json!({"key": "mlflow.user", "value": job.created_by}),
        json!({"key": "mlflow.source.type", "value": "JOB"}),
        json!({"key": "azureml.jobStatus", "value": state.status}),
    ];
    if let Some(user_tags) = job.properties["tags"].as_object() {
        tags.extend(user_tags.iter().map(|(k, v)| json!({"key": k, "value": v})));
    }
    if let Some(plan) = &job.clara {
        tags.push(json!({"key": "clara-emulator.simulated", "value": "true"}));
        tags.push(json!({"key": "clara-emulator.scripts", "value": plan.scripts.join(",")}));
    }
    if let Some(err) = &state.error {
        tags.push(json!({"key": "azureml.error.code", "value": err.code}));
        tags.push(json!({"key": "azureml.error.message", "value": err.message}));
    }
    let mut info = json!({
        "run_id": job.name,
        "run_uuid": job.name,
        "run_name": run_name,
        "experiment_id": job.experiment_id(),
        "user_id": job.created_by,
        "status": mlflow_status(&state),
        "lifecycle_stage": if job.is_archived() { "deleted" } else { "active" },
        "artifact_uri": format!("azureml://experiments/{}/runs/{}/artifacts", job.experiment_name(), job.name),
    });
    if let Some(s) = state.sim_start {
        info["start_time"] = json!(s);
    }
    if let Some(e) = state.sim_end {
        info["end_time"] = json!(e);
    }
    let body = json!({
        "run": {
            "info": info,
            "data": {
                "metrics": latest.into_iter().map(metric_json).collect::<Vec<_>>(),
                "params": params,
                "tags": tags,
            },
        }
    });
    Ok(axum::Json(body).into_response())
}

async fn metric_history(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<WsPath>,
    ctx: ReqCtx,
) -> Result<Response, MlError> {
    let (job, now) = find_run(&app, &p, &ctx)?;
    let key = ctx
        .param("metric_key")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("Missing value for required parameter 'metric_key'.".into()))?
        .to_string();
    let max =
        match ctx.param("max_results") {
            None => usize::MAX,
            Some(m) => m.parse::<usize>().ok().filter(|m| *m > 0).ok_or_else(|| {
                invalid(format!("Invalid value '{m}' for parameter 'max_results'."))
            })?,
        };
    let offset = match ctx.param("page_token").filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .map_err(|_| invalid(format!("Invalid page_token '{t}'.")))?,
    };
    let state = job.state_at(now);
    let mut series: Vec<(String, f64, u64, i64)> = visible_metrics(&job, &state)
        .into_iter()
        .filter(|m| m.0 == key)
        .collect();
    series.sort_by_key(|m| (m.3, m.2));
    let page: Vec<Value> = series
        .iter()
        .skip(offset)
        .take(max)
        .map(metric_json)
        .collect();
    let mut body = json!({ "metrics": page });
    if offset.saturating_add(max) < series.len() {
        body["next_page_token"] = json!((offset + max).to_string());
    }
    Ok(axum::Json(body).into_response())
}
