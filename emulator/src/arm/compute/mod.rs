//! AmlCompute clusters: `{WS}/computes[/{name}]` GET, list, PUT, PATCH, DELETE.
//!
//! PUT (new) → 201 + `Azure-AsyncOperation`, provisioningState `Creating`.
//! PUT (existing) → 200; only `description`, `scaleSettings` and `tags` may change (then an
//! `Updating` operation starts); any other change → 400 `PropertyChangeNotAllowed`.
//! PATCH (`ClusterUpdateParameters` + tags) → 200 + `Azure-AsyncOperation`, `Updating`.
//! DELETE `?underlyingResourceAction=Delete|Detach` → 202 + `Azure-AsyncOperation` +
//! `Location`, or 204 when absent. A write while another operation is in progress → 409.
//!
//! Admin: `GET /_emulator/computes` → the effective switches; `PUT /_emulator/computes`
//! `{"recreate_keeps_old_vm_size": bool}` overrides the config's (`null` restores them).

pub mod model;
pub mod validate;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ArmError, ArmResult};
use super::lro::{self, NewOp, OpKind, OpStatus, Operation, Outcome};
use super::{ArmPath, ReqCtx, WS_PATH, parse_json_object, resolve_workspace, respond};
use crate::app::AppState;
use crate::faults::FaultKind;
use crate::pipeline::{FaultTag, OpName, PathParams, RouteExt};
use crate::store::Data;
use crate::util::{normalize_location, now_ms};
use model::{ComputeRecord, ComputesConfig, compute_key, state};
use validate::ComputeSpec;

pub fn routes(app: &AppState) -> Router<AppState> {
    let one = format!("{WS_PATH}/computes/{{name}}");
    Router::new()
        .route(
            &format!("{WS_PATH}/computes"),
            get(list).arm(app, "compute.list"),
        )
        .route(&one, get(get_one).arm(app, "compute.get"))
        .route(
            &one,
            axum::routing::put(put_one).arm(app, OpName::Dynamic(put_op_name)),
        )
        .route(
            &one,
            axum::routing::patch(patch_one).arm(app, "compute.update"),
        )
        .route(
            &one,
            axum::routing::delete(delete_one).arm(app, "compute.delete"),
        )
}

/// `/_emulator/computes`: the compute switches (no auth, never faulted, not logged).
pub fn admin_routes() -> Router<AppState> {
    Router::new().route("/_emulator/computes", get(get_switches).put(put_switches))
}

/// The switches in force: the admin override, else the config's.
pub fn switches(app: &AppState, d: &Data) -> ComputesConfig {
    d.compute_extra
        .overrides
        .clone()
        .unwrap_or_else(|| app.config.computes.clone())
}

fn switches_body(app: &AppState, d: &Data) -> Value {
    json!({
        "switches": switches(app, d),
        "switches_source": if d.compute_extra.overrides.is_some() { "admin" } else { "config" },
        "deleted_vm_sizes": d.compute_extra.deleted_vm_sizes,
    })
}

async fn get_switches(State(app): State<AppState>) -> Response {
    let body = app.store.read(|d| switches_body(&app, d));
    respond(StatusCode::OK, Some(body), &[])
}

async fn put_switches(State(app): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Option<ComputesConfig>>(&body) {
        Ok(sw) => {
            let body = app.store.write(|d| {
                d.compute_extra.overrides = sw;
                switches_body(&app, d)
            });
            respond(StatusCode::OK, Some(body), &[])
        }
        Err(e) => axum::response::IntoResponse::into_response(ArmError::bad_request(format!(
            "Invalid compute switches: {e}"
        ))),
    }
}

/// PUT is `compute.create` for a new compute and `compute.update` for an existing one.
fn put_op_name(app: &AppState, p: &PathParams) -> &'static str {
    let key = compute_key(p.get("sub"), p.get("rg"), p.get("ws"), p.get("name"));
    if app.store.read(|d| d.computes.contains_key(&key)) {
        "compute.update"
    } else {
        "compute.create"
    }
}

#[derive(Deserialize)]
struct WsPath {
    sub: String,
    rg: String,
    ws: String,
}

#[derive(Deserialize)]
struct ComputePath {
    sub: String,
    rg: String,
    ws: String,
    name: String,
}

impl ComputePath {
    fn key(&self) -> String {
        compute_key(&self.sub, &self.rg, &self.ws, &self.name)
    }
}

fn not_found(p: &ComputePath) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.MachineLearningServices/workspaces/{}/computes/{}' under resource group '{}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            p.ws, p.name, p.rg
        ),
    )
}

fn busy(record: &ComputeRecord) -> ArmError {
    ArmError::conflict(format!(
        "Compute '{}' is in provisioning state '{}'; wait for the current operation to finish before sending another change.",
        record.name, record.provisioning_state
    ))
}

// ---- reads ---------------------------------------------------------------------------------

async fn get_one(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<ComputePath>,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let body = app
        .store
        .read(|d| d.computes.get(&p.key()).map(|c| c.render(&app)));
    body.map(|b| respond(StatusCode::OK, Some(b), &[]))
        .ok_or_else(|| not_found(&p))
}

async fn list(State(app): State<AppState>, ArmPath(p): ArmPath<WsPath>) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let prefix = compute_key(&p.sub, &p.rg, &p.ws, "");
    let value: Vec<Value> = app.store.read(|d| {
        d.computes
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, c)| c.render(&app))
            .collect()
    });
    Ok(respond(
        StatusCode::OK,
        Some(json!({ "value": value })),
        &[],
    ))
}

// ---- writes --------------------------------------------------------------------------------

/// Everything a write needs besides the store.
struct WriteCtx<'a> {
    app: &'a AppState,
    ctx: &'a ReqCtx,
    now: u64,
}

impl WriteCtx<'_> {
    fn start_op(&self, d: &mut Data, kind: OpKind, record: &ComputeRecord, key: &str) -> String {
        lro::start(
            d,
            NewOp {
                kind,
                resource_key: key,
                subscription: &record.subscription,
                location: &normalize_location(&record.location),
                now_ms: self.now,
                delay_ms: self.app.config.lro_delay_ms,
                fail: self.ctx.lro_fail,
            },
        )
    }

    fn status_url(&self, record: &ComputeRecord, op_id: &str) -> String {
        lro::status_url(
            self.app,
            op_id,
            &record.subscription,
            &normalize_location(&record.location),
            self.ctx.api_version(),
        )
    }

    fn result_url(&self, record: &ComputeRecord, op_id: &str) -> String {
        lro::result_url(
            self.app,
            op_id,
            &record.subscription,
            &normalize_location(&record.location),
            self.ctx.api_version(),
        )
    }

    /// 200/201 with the resource body and the operation's status URL.
    fn lro_response(&self, status: StatusCode, record: &ComputeRecord, op_id: &str) -> Response {
        let headers = [
            ("azure-asyncoperation", self.status_url(record, op_id)),
            ("retry-after", "1".to_string()),
        ];
        self.tag_lro_fail(respond(status, Some(record.render(self.app)), &headers))
    }

    fn tag_lro_fail(&self, mut resp: Response) -> Response {
        if self.ctx.lro_fail {
            resp.extensions_mut().insert(FaultTag(FaultKind::LroFail));
        }
        resp
    }
}

async fn put_one(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<ComputePath>,
    ctx: ReqCtx,
    body: Bytes,
) -> ArmResult<Response> {
    let ws = resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    validate::compute_name(&p.name)?;
    let body = parse_json_object(&body)?;
    let spec = validate::create_body(&app, &ws, &body)?;
    let w = WriteCtx {
        app: &app,
        ctx: &ctx,
        now: now_ms(),
    };
    let key = p.key();
    app.store.write(|d| match d.computes.get(&key).cloned() {
        None => Ok(create(&w, d, &p, &key, spec)),
        Some(existing) => replace(&w, d, existing, &key, spec),
    })
}

fn create(
    w: &WriteCtx<'_>,
    d: &mut Data,
    p: &ComputePath,
    key: &str,
    spec: ComputeSpec,
) -> Response {
    let mut record = ComputeRecord {
        subscription: p.sub.clone(),
        resource_group: p.rg.clone(),
        workspace: p.ws.clone(),
        name: p.name.clone(),
        location: spec.location,
        tags: spec.tags,
        sku: spec.sku,
        identity: spec.identity,
        properties: spec.properties,
        provisioning_state: state::CREATING.into(),
        provisioning_errors: None,
        created_ms: w.now,
        modified_ms: w.now,
        allocation_changed_ms: w.now,
        current_node_count: 0,
        pending_op: None,
        created_by: w.app.config.client_id.clone(),
    };
    let op_id = w.start_op(d, OpKind::ComputeCreate, &record, key);
    record.pending_op = Some(op_id.clone());
    // The 201 acknowledges the size that was asked for...
    let resp = w.lro_response(StatusCode::CREATED, &record, &op_id);
    // ...but with the switch on, a compute re-created under the name of one just deleted
    // keeps the deleted one's size (azure-rest-api-specs#18889).
    if let Some(old) = d.compute_extra.deleted_vm_sizes.remove(key)
        && switches(w.app, d).recreate_keeps_old_vm_size
    {
        record.aml_mut().insert("vmSize".into(), json!(old));
    }
    d.computes.insert(key.to_string(), record);
    resp
}

fn replace(
    w: &WriteCtx<'_>,
    d: &mut Data,
    mut record: ComputeRecord,
    key: &str,
    spec: ComputeSpec,
) -> ArmResult<Response> {
    if record.provisioning_state == state::DELETING {
        return Err(busy(&record));
    }
    let new_body = spec.body();
    if let Some(path) = model::first_immutable_change(&record.spec_body(), &new_body) {
        return Err(ArmError::bad_request(format!(
            "Property '{path}' of compute '{}' cannot be changed. Only description, scaleSettings and tags of an AmlCompute cluster can be updated; delete and re-create the compute to change anything else.",
            record.name
        ))
        .with_code("PropertyChangeNotAllowed")
        .with_target(path));
    }
    if model::mutable_fields(&record.spec_body()) == model::mutable_fields(&new_body) {
        return Ok(unchanged(w, &record));
    }
    if record.is_busy() {
        return Err(busy(&record));
    }
    record.properties = spec.properties;
    record.tags = spec.tags;
    Ok(start_update(w, d, record, key))
}

/// A write that changes nothing (typically a client retrying after a lost response): report
/// the current state and the in-flight operation, if any, instead of a conflict.
fn unchanged(w: &WriteCtx<'_>, record: &ComputeRecord) -> Response {
    match &record.pending_op {
        Some(op_id) => respond(
            StatusCode::OK,
            Some(record.render(w.app)),
            &[
                ("azure-asyncoperation", w.status_url(record, op_id)),
                ("retry-after", "1".into()),
            ],
        ),
        None => respond(StatusCode::OK, Some(record.render(w.app)), &[]),
    }
}

fn start_update(w: &WriteCtx<'_>, d: &mut Data, mut record: ComputeRecord, key: &str) -> Response {
    let op_id = w.start_op(d, OpKind::ComputeUpdate, &record, key);
    record.provisioning_state = state::UPDATING.into();
    record.modified_ms = w.now;
    record.pending_op = Some(op_id.clone());
    let resp = w.lro_response(StatusCode::OK, &record, &op_id);
    d.computes.insert(key.to_string(), record);
    resp
}

async fn patch_one(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<ComputePath>,
    ctx: ReqCtx,
    body: Bytes,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let body = parse_json_object(&body)?;
    let patch = validate::patch_body(&body)?;
    let w = WriteCtx {
        app: &app,
        ctx: &ctx,
        now: now_ms(),
    };
    let key = p.key();
    app.store.write(|d| {
        let current = d.computes.get(&key).cloned().ok_or_else(|| not_found(&p))?;
        let mut record = current.clone();
        if let Some(sent) = patch.scale_settings {
            let aml = record.aml_mut();
            let mut scale = aml
                .get("scaleSettings")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            scale.extend(sent);
            validate::check_scale(&scale)?;
            aml.insert("scaleSettings".into(), Value::Object(scale));
        }
        if let Some(tags) = patch.tags {
            record.tags = if tags.is_null() { None } else { Some(tags) };
        }
        if model::mutable_fields(&current.spec_body()) == model::mutable_fields(&record.spec_body())
        {
            return Ok(unchanged(&w, &current));
        }
        if current.is_busy() {
            return Err(busy(&current));
        }
        Ok(start_update(&w, d, record, &key))
    })
}

async fn delete_one(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<ComputePath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    match ctx.param("underlyingResourceAction") {
        Some("Delete" | "Detach") => {}
        Some(other) => {
            return Err(ArmError::bad_request(format!(
                "The value '{other}' is not valid for 'underlyingResourceAction'. Allowed values: Delete, Detach."
            ))
            .with_target("underlyingResourceAction"));
        }
        None => {
            return Err(ArmError::bad_request(
                "The 'underlyingResourceAction' query parameter is required (Delete or Detach).",
            )
            .with_code("MissingRequiredQueryParameter")
            .with_target("underlyingResourceAction"));
        }
    }
    let w = WriteCtx {
        app: &app,
        ctx: &ctx,
        now: now_ms(),
    };
    let key = p.key();
    Ok(app.store.write(|d| {
        let Some(mut record) = d.computes.get(&key).cloned() else {
            return respond(StatusCode::NO_CONTENT, None, &[]);
        };
        let op_id = match (&record.pending_op, record.provisioning_state.as_str()) {
            (Some(op_id), state::DELETING) => op_id.clone(),
            _ => {
                let op_id = w.start_op(d, OpKind::ComputeDelete, &record, &key);
                record.provisioning_state = state::DELETING.into();
                record.modified_ms = w.now;
                record.pending_op = Some(op_id.clone());
                d.computes.insert(key.clone(), record.clone());
                op_id
            }
        };
        let headers = [
            ("azure-asyncoperation", w.status_url(&record, &op_id)),
            ("location", w.result_url(&record, &op_id)),
            ("retry-after", "1".to_string()),
        ];
        w.tag_lro_fail(respond(StatusCode::ACCEPTED, None, &headers))
    }))
}

// ---- operation completion ------------------------------------------------------------------

/// Applies a due compute operation; returns its final status. An operation that no longer
/// owns the compute (superseded by a delete) ends `Canceled`.
pub fn complete_operation(
    d: &mut Data,
    op: &Operation,
    outcome: Outcome,
    error: Option<&Value>,
    at_ms: u64,
) -> OpStatus {
    let Some(record) = d.computes.get_mut(&op.resource_key) else {
        return if op.kind == OpKind::ComputeDelete {
            OpStatus::Succeeded
        } else {
            OpStatus::Canceled
        };
    };
    if record.pending_op.as_deref() != Some(op.id.as_str()) {
        return OpStatus::Canceled;
    }
    record.pending_op = None;
    record.modified_ms = at_ms;
    match (op.kind, outcome) {
        (_, Outcome::Failed) => {
            record.provisioning_state = state::FAILED.into();
            record.provisioning_errors =
                Some(json!([{ "error": error.cloned().unwrap_or(Value::Null) }]));
            OpStatus::Failed
        }
        (OpKind::ComputeDelete, Outcome::Succeeded) => {
            // Remembered whatever the switch says; a create consults the switch.
            if let Some(gone) = d.computes.remove(&op.resource_key) {
                let size = gone
                    .aml()
                    .and_then(|a| a.get("vmSize"))
                    .and_then(Value::as_str)
                    .unwrap_or(model::DEFAULT_VM_SIZE)
                    .to_string();
                d.compute_extra
                    .deleted_vm_sizes
                    .insert(op.resource_key.clone(), size);
            }
            OpStatus::Succeeded
        }
        (_, Outcome::Succeeded) => {
            record.provisioning_state = state::SUCCEEDED.into();
            record.provisioning_errors = None;
            record.current_node_count = record.target_node_count();
            record.allocation_changed_ms = at_ms;
            OpStatus::Succeeded
        }
    }
}
