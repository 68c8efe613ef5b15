//! Run history, the workspace service (discovery key `history`, also `api`) where Azure ML
//! keeps what the ARM job model does not carry, notably why a run failed. Routes as
//! azure-ai-ml 1.35.2 calls them (`_restclient/runhistory/operations/_runs_operations.py`):
//!
//! - `GET /history/v1.0{WS}/runs/{runId}/details` (`RunOperations.get_run_details`)
//! - `GET /history/v1.0{WS}/experiments/{experimentName}/runs/{runId}/details`
//! - `GET /history/v1.0{WS}/experimentids/{experimentId}/runs/{runId}/details`
//!
//! The body is the SDK's `RunDetails` model (`runId`, `runUuid`, `status`, `target`,
//! `createdTimeUtc`, `startTimeUtc`, `endTimeUtc`, `error` = `ErrorResponse {error: RootError
//! {code, message, …}, time}`, `warnings`, `tags`, `properties`, `services`, `logFiles`, …).
//! Auth: any unexpired bearer token of this emulator; no api-version.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::arm::job::model::{JobRecord, job_key};
use crate::arm::{ArmPath, resolve_workspace};
use crate::pipeline::RouteExt;
use crate::util::{now_ms, rfc3339, stable_guid};

const WS: &str = "/history/v1.0/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}";

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{WS}/runs/{{run}}/details"),
            get(details).bearer(app, "history.run.details"),
        )
        .route(
            &format!("{WS}/experiments/{{exp}}/runs/{{run}}/details"),
            get(details).bearer(app, "history.run.details"),
        )
        .route(
            &format!("{WS}/experimentids/{{exp}}/runs/{{run}}/details"),
            get(details).bearer(app, "history.run.details"),
        )
}

#[derive(Deserialize)]
struct RunPath {
    sub: String,
    rg: String,
    ws: String,
    #[serde(default)]
    exp: Option<String>,
    run: String,
}

fn error(status: StatusCode, code: &str, inner: &str, message: String) -> Response {
    (
        status,
        axum::Json(json!({
            "error": {"code": code, "message": message, "innerError": {"code": inner}},
        })),
    )
        .into_response()
}

async fn details(State(app): State<AppState>, ArmPath(p): ArmPath<RunPath>) -> Response {
    if let Err(e) = resolve_workspace(&app, &p.sub, &p.rg, &p.ws) {
        return error(
            StatusCode::NOT_FOUND,
            "UserError",
            "NotFoundError",
            e.message,
        );
    }
    let now = now_ms();
    let key = job_key(&p.sub, &p.rg, &p.ws, &p.run);
    let job = app.store.read(|d| {
        d.training
            .jobs
            .get(&key)
            .filter(|j| !j.is_deleted_at(now))
            .cloned()
    });
    let missing = || {
        error(
            StatusCode::NOT_FOUND,
            "UserError",
            "NotFoundError",
            format!("Run {} was not found", p.run),
        )
    };
    let Some(job) = job else {
        return missing();
    };
    // The experiment in the path must be the run's (by name, or by id).
    if let Some(exp) = &p.exp
        && exp != job.experiment_name()
        && *exp != job.experiment_id()
    {
        return missing();
    }
    axum::Json(run_details(&job, now)).into_response()
}

/// `RunDetails` of a job at `now`.
pub fn run_details(job: &JobRecord, now: u64) -> Value {
    let state = job.state_at(now);
    let uuid = stable_guid(&format!("{}/run", job.arm_id().to_ascii_lowercase()));
    let target = job.properties["computeId"]
        .as_str()
        .map(|c| c.rsplit(['/', ':']).next().unwrap_or(c).to_string());
    let tags: Map<String, Value> = job.properties["tags"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut body = json!({
        "runId": job.name,
        "runUuid": uuid,
        "parentRunUuid": null,
        "rootRunUuid": uuid,
        "target": target,
        "status": state.status,
        "parentRunId": null,
        "createdTimeUtc": rfc3339(job.created_ms),
        "startTimeUtc": state.sim_start.map(rfc3339),
        "endTimeUtc": state.sim_end.map(rfc3339),
        "error": null,
        "warnings": [],
        "tags": tags,
        "properties": Value::Object(job.system_properties(&state)),
        "parameters": {},
        "services": {},
        "inputDatasets": [],
        "outputDatasets": [],
        "logFiles": {},
        "revision": 1 + (job.modified_ms > job.created_ms) as u64,
    });
    if let Some(err) = &state.error {
        body["error"] = json!({
            "error": {"code": err.code, "message": err.message},
            "time": state.sim_end.map(rfc3339),
        });
    }
    body
}
