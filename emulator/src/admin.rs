//! Admin API under `/_emulator/` (no auth, never faulted, not in the request log).

use std::collections::{BTreeMap, HashMap};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::arm::error::ArmError;
use crate::faults::{FaultConfig, FaultEngine};
use crate::log::redact;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_emulator/health", get(health))
        .route("/_emulator/state", get(state))
        .route("/_emulator/requests", get(requests))
        .route("/_emulator/faults", get(get_faults).put(put_faults))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/advance", post(advance))
        .route("/_emulator/stats", get(stats))
        .merge(crate::arm::job::admin::routes())
        .merge(crate::arm::compute::admin_routes())
}

async fn health(State(app): State<AppState>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "base_url": app.base_url,
        "tenant_id": app.config.tenant_id,
        "subscription_id": app.config.subscription_id,
    }))
    .into_response()
}

/// All resources (rendered as ARM would return them, plus internal fields), operations and
/// the workspaces; secrets redacted, tokens omitted.
async fn state(State(app): State<AppState>) -> Response {
    let (computes, operations) = app.store.read(|d| {
        let computes: Vec<Value> = d
            .computes
            .iter()
            .map(|(key, c)| {
                let mut spec = c.spec_body();
                redact(&mut spec);
                json!({ "key": key, "resource": c.render(&app), "request": spec, "pending_op": c.pending_op })
            })
            .collect();
        let operations: Vec<Value> = d.operations.values().map(|o| json!(o)).collect();
        (computes, operations)
    });
    let workspaces: Vec<Value> = app
        .config
        .workspaces
        .iter()
        .map(|w| crate::arm::workspace::render(&app, w))
        .collect();
    axum::Json(json!({ "workspaces": workspaces, "computes": computes, "operations": operations }))
        .into_response()
}

/// The request log as a JSON array; optional filters `?op=`, `?method=`.
async fn requests(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let entries: Vec<Value> = app
        .log
        .entries()
        .into_iter()
        .filter(|e| q.get("op").is_none_or(|op| e["op"] == json!(op)))
        .filter(|e| {
            q.get("method").is_none_or(|m| {
                e["method"]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(m))
            })
        })
        .collect();
    axum::Json(Value::Array(entries)).into_response()
}

async fn get_faults(State(app): State<AppState>) -> Response {
    let faults = app.faults();
    let mut cfg = faults.config().clone();
    cfg.next = faults.pending_scripts();
    axum::Json(json!(cfg)).into_response()
}

/// Replaces the fault configuration (and re-seeds the RNG).
async fn put_faults(State(app): State<AppState>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<FaultConfig>(&body).map_err(|e| e.to_string());
    let engine = parsed.and_then(|cfg| FaultEngine::new(cfg, app.config.seed));
    match engine {
        Ok(engine) => {
            let cfg = engine.config().clone();
            *app.faults() = engine;
            axum::Json(json!(cfg)).into_response()
        }
        Err(e) => {
            ArmError::bad_request(format!("Invalid fault configuration: {e}")).into_response()
        }
    }
}

/// Clears resources, operations, the request log and the rate-limit counters. Tokens and the
/// fault configuration are kept.
async fn reset(State(app): State<AppState>) -> Response {
    app.store.reset();
    app.log.clear();
    app.rate_limits.reset();
    StatusCode::NO_CONTENT.into_response()
}

/// Completes every in-progress operation now (as if `lro_delay_ms` had elapsed).
async fn advance(State(app): State<AppState>) -> Response {
    let completed = app.store.write(|d| {
        let now = crate::util::now_ms();
        let pending: Vec<String> = d
            .operations
            .values()
            .filter(|o| o.status == crate::arm::lro::OpStatus::InProgress)
            .map(|o| o.id.clone())
            .collect();
        for id in &pending {
            if let Some(op) = d.operations.get_mut(id) {
                op.deadline_ms = op.deadline_ms.min(now);
            }
        }
        crate::arm::lro::advance(d, now);
        pending
    });
    axum::Json(json!({ "completed": completed })).into_response()
}

/// Aggregates of the request log (`reads`/`writes` count ARM requests only).
async fn stats(State(app): State<AppState>) -> Response {
    let entries = app.log.entries();
    let mut by_op: BTreeMap<String, u64> = BTreeMap::new();
    let mut by_op_status: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let mut faults: BTreeMap<String, u64> = BTreeMap::new();
    let (mut reads, mut writes) = (0u64, 0u64);
    for e in &entries {
        let op = e["op"].as_str().unwrap_or("unknown").to_string();
        let status = match &e["status"] {
            Value::Null => "dropped".to_string(),
            s => s.to_string(),
        };
        *by_op.entry(op.clone()).or_default() += 1;
        *by_op_status
            .entry(op)
            .or_default()
            .entry(status)
            .or_default() += 1;
        if let Some(f) = e["fault"].as_str() {
            *faults.entry(f.to_string()).or_default() += 1;
        }
        if e["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/subscriptions/"))
        {
            match e["method"].as_str() {
                Some("GET" | "HEAD") => reads += 1,
                Some(_) => writes += 1,
                None => {}
            }
        }
    }
    axum::Json(json!({
        "total": entries.len(),
        "reads": reads,
        "writes": writes,
        "by_op": by_op,
        "by_op_status": by_op_status,
        "faults": faults,
        "ngc": crate::ngc::stats(&entries),
    }))
    .into_response()
}

// ---- seeded raw ARM objects (conformance tests) ---------------------------------------------
//
// `PUT /_emulator/raw {"path", "body"}` makes every authenticated `GET <path>?api-version=…`
// answer 200 with `body` verbatim (e.g. one of Microsoft's published example responses);
// `{"path", "merge"}` instead applies `merge` as a JSON merge patch (RFC 7386) to what the
// emulator itself answers (200 only), e.g. a real-world shape such as an upper-cased `vmSize`.
// Paths match case-insensitively. `GET` lists them, `DELETE` clears them. Kept in memory per
// emulator instance (keyed by base URL), not persisted, cleared by neither reset nor restart
// of another instance.

/// `/_emulator/raw` (GET lists, PUT seeds, DELETE clears).
pub fn raw_routes() -> Router<AppState> {
    Router::new().route(
        "/_emulator/raw",
        get(get_raw).put(put_raw).delete(delete_raw),
    )
}

#[derive(Clone, serde::Deserialize, serde::Serialize)]
struct RawEntry {
    path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    merge: Option<Value>,
}

type RawTable = std::sync::Mutex<HashMap<String, BTreeMap<String, RawEntry>>>;

fn raw_table() -> &'static RawTable {
    static RAW: std::sync::OnceLock<RawTable> = std::sync::OnceLock::new();
    RAW.get_or_init(Default::default)
}

fn raw_lookup(app: &AppState, path: &str) -> Option<RawEntry> {
    let table = raw_table().lock().unwrap_or_else(|e| e.into_inner());
    table
        .get(&app.base_url)
        .and_then(|m| m.get(&path.trim_end_matches('/').to_ascii_lowercase()))
        .cloned()
}

async fn get_raw(State(app): State<AppState>) -> Response {
    let table = raw_table().lock().unwrap_or_else(|e| e.into_inner());
    let entries: Vec<Value> = table
        .get(&app.base_url)
        .map(|m| m.values().map(|e| json!(e)).collect())
        .unwrap_or_default();
    axum::Json(Value::Array(entries)).into_response()
}

async fn put_raw(State(app): State<AppState>, body: Bytes) -> Response {
    let entry = match serde_json::from_slice::<RawEntry>(&body) {
        Ok(e)
            if e.path.starts_with("/subscriptions/") && (e.body.is_some() != e.merge.is_some()) =>
        {
            e
        }
        Ok(_) => {
            return ArmError::bad_request(
                "A raw entry needs a path under /subscriptions/ and exactly one of body or merge.",
            )
            .into_response();
        }
        Err(e) => return ArmError::bad_request(format!("Invalid raw entry: {e}")).into_response(),
    };
    let key = entry.path.trim_end_matches('/').to_ascii_lowercase();
    raw_table()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(app.base_url.clone())
        .or_default()
        .insert(key, entry.clone());
    axum::Json(json!(entry)).into_response()
}

async fn delete_raw(State(app): State<AppState>) -> Response {
    raw_table()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&app.base_url);
    StatusCode::NO_CONTENT.into_response()
}

/// RFC 7386 JSON merge patch.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

/// Serves seeded raw objects (see above); inside the request log, so they are logged.
pub async fn raw_middleware(
    State(app): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if req.method() != axum::http::Method::GET {
        return next.run(req).await;
    }
    let Some(entry) = raw_lookup(&app, req.uri().path()) else {
        return next.run(req).await;
    };
    if let Some(body) = entry.body {
        // As for the emulator's own ARM routes: an ARM token, an api-version, the role.
        let caller =
            match crate::auth::check_bearer(&app, req.headers(), crate::auth::RouteFamily::Arm) {
                Ok(c) => c,
                Err(e) => return e.into_response(),
            };
        if let Err(e) = crate::arm::require_api_version(req.uri()) {
            return e.into_response();
        }
        if let Err(e) = crate::auth::authorize(&app, &caller, "GET", req.uri().path()) {
            return e.into_response();
        }
        let mut resp = axum::Json(body).into_response();
        resp.extensions_mut()
            .insert(crate::pipeline::OpTag("raw.get"));
        return resp;
    }
    let resp = next.run(req).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 << 20).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    if let Some(patch) = &entry.merge {
        merge_patch(&mut value, patch);
    }
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    let out = serde_json::to_vec(&value).unwrap_or_default();
    Response::from_parts(parts, axum::body::Body::from(out))
}
