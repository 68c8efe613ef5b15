//! Long-running operations (Azure-AsyncOperation pattern, plus a Location-pattern result URL).
//!
//! An operation is `InProgress` until its absolute deadline (`start + lro_delay_ms`), then it
//! completes lazily on the next store access: its effect on the resource is applied by the
//! owning resource module (see `complete`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{ArmError, ArmResult};
use super::{ArmPath, PROVIDER, ReqCtx, check_subscription, respond};
use crate::app::AppState;
use crate::pipeline::RouteExt;
use crate::store::Data;
use crate::util::{new_guid, rfc3339};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpKind {
    ComputeCreate,
    ComputeUpdate,
    ComputeDelete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpStatus {
    InProgress,
    Succeeded,
    Failed,
    Canceled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Operation {
    pub id: String,
    pub kind: OpKind,
    /// Store key of the resource (e.g. a compute key).
    pub resource_key: String,
    pub subscription: String,
    /// Normalized location used in the status URL.
    pub location: String,
    pub start_ms: u64,
    pub deadline_ms: u64,
    pub end_ms: Option<u64>,
    pub status: OpStatus,
    /// Fault injection: end `Failed` instead of `Succeeded`.
    pub fail: bool,
    pub error: Option<Value>,
}

/// Outcome reported to the owning module when an operation comes due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
}

pub struct NewOp<'a> {
    pub kind: OpKind,
    pub resource_key: &'a str,
    pub subscription: &'a str,
    pub location: &'a str,
    pub now_ms: u64,
    pub delay_ms: u64,
    pub fail: bool,
}

/// Registers a new in-progress operation and returns its id.
pub fn start(data: &mut Data, op: NewOp<'_>) -> String {
    let id = new_guid();
    data.operations.insert(
        id.clone(),
        Operation {
            id: id.clone(),
            kind: op.kind,
            resource_key: op.resource_key.to_string(),
            subscription: op.subscription.to_string(),
            location: op.location.to_string(),
            start_ms: op.now_ms,
            deadline_ms: op.now_ms + op.delay_ms,
            end_ms: None,
            status: OpStatus::InProgress,
            fail: op.fail,
            error: None,
        },
    );
    id
}

/// Completes every due operation, oldest deadline first. Returns true if anything changed.
pub fn advance(data: &mut Data, now: u64) -> bool {
    let mut due: Vec<(u64, String)> = data
        .operations
        .values()
        .filter(|o| o.status == OpStatus::InProgress && o.deadline_ms <= now)
        .map(|o| (o.deadline_ms, o.id.clone()))
        .collect();
    due.sort();
    for (deadline, id) in &due {
        complete(data, id, *deadline);
    }
    !due.is_empty()
}

fn complete(data: &mut Data, id: &str, at_ms: u64) {
    let Some(op) = data.operations.get(id).cloned() else {
        return;
    };
    let outcome = if op.fail {
        Outcome::Failed
    } else {
        Outcome::Succeeded
    };
    let error = op.fail.then(|| failure_error(&op));
    let status = match op.kind {
        OpKind::ComputeCreate | OpKind::ComputeUpdate | OpKind::ComputeDelete => {
            super::compute::complete_operation(data, &op, outcome, error.as_ref(), at_ms)
        }
    };
    if let Some(stored) = data.operations.get_mut(id) {
        stored.status = status;
        stored.end_ms = Some(at_ms);
        stored.error = if status == OpStatus::Failed {
            error
        } else {
            None
        };
    }
}

fn failure_error(op: &Operation) -> Value {
    let what = match op.kind {
        OpKind::ComputeCreate => "create",
        OpKind::ComputeUpdate => "update",
        OpKind::ComputeDelete => "delete",
    };
    json!({
        "code": "ComputeOperationFailed",
        "message": format!("The compute {what} operation failed (emulator fault injection: lro_fail)."),
    })
}

/// Absolute URL of the `Azure-AsyncOperation` status resource.
pub fn status_url(
    app: &AppState,
    op_id: &str,
    subscription: &str,
    location: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/subscriptions/{subscription}/providers/{PROVIDER}/locations/{location}/computeOperationsStatus/{op_id}?api-version={api_version}&service=new",
        app.base_url
    )
}

/// Absolute URL of the `Location` (operation result) resource.
pub fn result_url(
    app: &AppState,
    op_id: &str,
    subscription: &str,
    location: &str,
    api_version: &str,
) -> String {
    format!(
        "{}/subscriptions/{subscription}/providers/{PROVIDER}/locations/{location}/computeOperationsResults/{op_id}?api-version={api_version}&service=new",
        app.base_url
    )
}

// ---- routes --------------------------------------------------------------------------------

const OPS_PREFIX: &str =
    "/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}";

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{OPS_PREFIX}/computeOperationsStatus/{{op}}"),
            get(get_status).arm(app, "opstatus"),
        )
        .route(
            &format!("{OPS_PREFIX}/computeOperationsResults/{{op}}"),
            get(get_result).arm(app, "opresult"),
        )
}

#[derive(Deserialize)]
struct OpPath {
    sub: String,
    #[allow(dead_code)]
    loc: String,
    op: String,
}

fn find(app: &AppState, p: &OpPath) -> ArmResult<Operation> {
    check_subscription(app, &p.sub)?;
    app.store
        .read(|d| d.operations.get(&p.op).cloned())
        .ok_or_else(|| {
            ArmError::not_found(
                "OperationNotFound",
                format!("The operation '{}' could not be found.", p.op),
            )
        })
}

/// Azure-AsyncOperation status: always 200 with `status`.
async fn get_status(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<OpPath>,
) -> ArmResult<Response> {
    let op = find(&app, &p)?;
    let mut body = json!({
        "id": format!("/subscriptions/{}/providers/{PROVIDER}/locations/{}/computeOperationsStatus/{}", op.subscription, op.location, op.id),
        "name": op.id,
        "status": op.status,
        "startTime": rfc3339(op.start_ms),
    });
    if let Some(end) = op.end_ms {
        body["endTime"] = json!(rfc3339(end));
        body["percentComplete"] = json!(100.0);
    }
    if let Some(err) = &op.error {
        body["error"] = err.clone();
    }
    let headers = if op.status == OpStatus::InProgress {
        vec![("retry-after", "1".to_string())]
    } else {
        Vec::new()
    };
    Ok(respond(StatusCode::OK, Some(body), &headers))
}

/// Location-pattern result: 202 while running, then 204 (delete) / 200 (resource) / error.
async fn get_result(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<OpPath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    let op = find(&app, &p)?;
    match op.status {
        OpStatus::InProgress => {
            let location = result_url(
                &app,
                &op.id,
                &op.subscription,
                &op.location,
                ctx.api_version(),
            );
            Ok(respond(
                StatusCode::ACCEPTED,
                None,
                &[("location", location), ("retry-after", "1".to_string())],
            ))
        }
        OpStatus::Failed => {
            let err = op.error.unwrap_or_else(
                || json!({"code": "OperationFailed", "message": "The operation failed."}),
            );
            let code = err["code"]
                .as_str()
                .unwrap_or("OperationFailed")
                .to_string();
            let message = err["message"]
                .as_str()
                .unwrap_or("The operation failed.")
                .to_string();
            Err(ArmError::new(StatusCode::BAD_REQUEST, code, message))
        }
        OpStatus::Succeeded | OpStatus::Canceled => {
            let resource = app
                .store
                .read(|d| d.computes.get(&op.resource_key).map(|c| c.render(&app)));
            match (op.kind, resource) {
                (OpKind::ComputeDelete, _) | (_, None) => {
                    Ok(respond(StatusCode::NO_CONTENT, None, &[]))
                }
                (_, Some(body)) => Ok(respond(StatusCode::OK, Some(body), &[])),
            }
        }
    }
}
