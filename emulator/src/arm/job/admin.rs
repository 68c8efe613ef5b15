//! Admin routes for the training families (no auth, never faulted, not logged):
//!
//! - `GET /_emulator/jobs` → `{"switches", "switches_source", "jobs":[{key,name,status,
//!   failure,clara,outputs_upload,resource}], "environments":[…], "codes":[…],
//!   "operations":[…]}`
//! - `PUT /_emulator/jobs` `{"fail_when_command_contains","fail_job_names","fail_message"}`
//!   replaces the config's failure switches for jobs created from now on (`null` restores
//!   the config's); not persisted.
//! - `POST /_emulator/jobs/advance` → every unfinished job, cancel and delete reaches its end
//!   now (timelines are shifted into the past) → `{"advanced":[names]}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::arm::error::ArmError;
use crate::arm::{code, environment};
use crate::training::JobFailSwitches;
use crate::util::now_ms;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_emulator/jobs", get(get_jobs).put(put_switches))
        .route("/_emulator/jobs/advance", post(advance))
}

async fn get_jobs(State(app): State<AppState>) -> Response {
    let now = now_ms();
    let body = app.store.read(|d| {
        let jobs: Vec<Value> = d
            .training
            .jobs
            .iter()
            .filter(|(_, j)| !j.is_deleted_at(now))
            .map(|(k, j)| {
                json!({
                    "key": k,
                    "name": j.name,
                    "status": j.state_at(now).status,
                    "failure": j.failure,
                    "clara": j.clara,
                    "outputs_upload": j.outputs_upload,
                    "resource": j.render(&app, now),
                })
            })
            .collect();
        let envs: Vec<Value> = d
            .training
            .environments
            .values()
            .map(|v| environment::KIND.render(v))
            .collect();
        let codes: Vec<Value> = d
            .training
            .codes
            .values()
            .map(|v| code::KIND.render(v))
            .collect();
        let ops: Vec<Value> = d.training.job_ops.values().map(|o| json!(o)).collect();
        json!({
            "switches": super::switches(&app, d),
            "switches_source": if d.training.overrides.is_some() { "admin" } else { "config" },
            "jobs": jobs,
            "environments": envs,
            "codes": codes,
            "operations": ops,
        })
    });
    axum::Json(body).into_response()
}

async fn put_switches(State(app): State<AppState>, body: Bytes) -> Response {
    let parsed: Result<Option<JobFailSwitches>, String> = serde_json::from_slice(&body)
        .map_err(|e| e.to_string())
        .and_then(|sw: Option<JobFailSwitches>| match &sw {
            Some(s) => s.check().map(|_| sw),
            None => Ok(sw),
        });
    match parsed {
        Ok(sw) => {
            let effective = app.store.write(|d| {
                d.training.overrides = sw;
                super::switches(&app, d)
            });
            axum::Json(json!(effective)).into_response()
        }
        Err(e) => ArmError::bad_request(format!("Invalid job switches: {e}")).into_response(),
    }
}

async fn advance(State(app): State<AppState>) -> Response {
    let now = now_ms();
    let advanced = app.store.write(|d| {
        let mut names = Vec::new();
        for j in d.training.jobs.values_mut() {
            let mut changed = false;
            if let Some(del) = j.deleting.as_mut().filter(|del| del.done_ms > now) {
                del.done_ms = now;
                changed = true;
            }
            if !j.state_at(now).is_terminal() {
                // An open-ended hold (Paused, Unknown, ...) ends now: drop it, then shift.
                if let Some(int) = j.schedule.interrupt.as_mut().filter(|i| i.ms.is_none()) {
                    int.ms = Some(0);
                }
                let delta = j.terminal_wall_ms().saturating_sub(now);
                j.created_ms = j.created_ms.saturating_sub(delta);
                if let Some(c) = j.cancel_requested_ms.as_mut() {
                    *c = c.saturating_sub(delta);
                }
                changed = true;
            }
            if changed {
                names.push(j.name.clone());
            }
        }
        names
    });
    axum::Json(json!({ "advanced": advanced })).into_response()
}
