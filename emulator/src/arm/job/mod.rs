//! Command jobs: `{WS}/jobs[/{id}]` PUT (synchronous 201/200), GET, list, DELETE (202 +
//! Location), `POST {WS}/jobs/{id}/cancel` (202 + Location), and the Location resource
//! `…/locations/{loc}/mfeOperationResults/{op}` (202 while running, then 200 for a cancel and
//! 204 for a delete).
//!
//! The status advances with the clock (see `model`); failures, durations and Clara metrics
//! are simulated (see README "Jobs").

pub mod admin;
pub mod model;
mod outputs;
pub mod validate;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::asset::{check_name, list_view};
use super::error::{ArmError, ArmResult};
use super::{
    ArmPath, PROVIDER, ReqCtx, WS_PATH, check_subscription, parse_json_object, resolve_workspace,
    respond,
};
use crate::app::AppState;
use crate::clara_sim;
use crate::pipeline::{OpName, PathParams, RouteExt};
use crate::store::Data;
use crate::training::JobFailSwitches;
use crate::util::{new_guid, normalize_location, now_ms};
use model::{Deleting, Failure, JobOp, JobOpKind, JobRecord, Schedule, job_key};
use validate::Ws;

/// Tag (or environment variable `CLARA_EMULATOR_DURATION_S`): simulated running seconds.
pub const DURATION_TAG: &str = "clara-emulator/duration-s";
pub const DURATION_ENV: &str = "CLARA_EMULATOR_DURATION_S";
/// Tag (or environment variable `CLARA_EMULATOR_FAIL`): the job fails with this message.
pub const FAIL_TAG: &str = "clara-emulator/fail";
pub const FAIL_ENV: &str = "CLARA_EMULATOR_FAIL";
/// Tag (or environment variable `CLARA_EMULATOR_INTERRUPT`): `<Status>[:<ms>][@<phase>]`,
/// a spec status (NotResponding, Paused, Unknown, Provisioning) the job passes through.
pub const INTERRUPT_TAG: &str = "clara-emulator/interrupt";
pub const INTERRUPT_ENV: &str = "CLARA_EMULATOR_INTERRUPT";

const OPS_PATH: &str = "/subscriptions/{sub}/providers/Microsoft.MachineLearningServices/locations/{loc}/mfeOperationResults/{op}";

pub fn routes(app: &AppState) -> Router<AppState> {
    let base = format!("{WS_PATH}/jobs");
    let one = format!("{base}/{{id}}");
    Router::new()
        .route(&base, get(list).arm(app, "job.list"))
        .route(&one, get(get_one).arm(app, "job.get"))
        .route(
            &one,
            axum::routing::put(put_one).arm(app, OpName::Dynamic(put_op_name)),
        )
        .route(
            &one,
            axum::routing::delete(delete_one).arm(app, "job.delete"),
        )
        .route(
            &format!("{one}/cancel"),
            post(cancel).arm(app, "job.cancel"),
        )
        .route(OPS_PATH, get(poll).arm(app, OpName::Dynamic(poll_op_name)))
}

fn put_op_name(app: &AppState, p: &PathParams) -> &'static str {
    let key = job_key(p.get("sub"), p.get("rg"), p.get("ws"), p.get("id"));
    let now = now_ms();
    let exists = app.store.read(|d| {
        d.training
            .jobs
            .get(&key)
            .is_some_and(|j| !j.is_deleted_at(now))
    });
    if exists { "job.update" } else { "job.create" }
}

fn poll_op_name(app: &AppState, p: &PathParams) -> &'static str {
    match app
        .store
        .read(|d| d.training.job_ops.get(p.get("op")).map(|o| o.kind))
    {
        Some(JobOpKind::Cancel) => "job.cancel.poll",
        Some(JobOpKind::Delete) => "job.delete.poll",
        None => "job.op.poll",
    }
}

#[derive(Deserialize)]
struct WsPath {
    sub: String,
    rg: String,
    ws: String,
}

#[derive(Deserialize)]
struct JobPath {
    sub: String,
    rg: String,
    ws: String,
    id: String,
}

impl JobPath {
    fn key(&self) -> String {
        job_key(&self.sub, &self.rg, &self.ws, &self.id)
    }
}

#[derive(Deserialize)]
struct OpPath {
    sub: String,
    #[allow(dead_code)]
    loc: String,
    op: String,
}

fn not_found(p: &JobPath) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!("Job '{}' was not found in workspace '{}'.", p.id, p.ws),
    )
}

/// The job at `key` unless it is absent or its delete has completed.
fn live<'a>(d: &'a Data, key: &str, now: u64) -> Option<&'a JobRecord> {
    d.training.jobs.get(key).filter(|j| !j.is_deleted_at(now))
}

/// Drops jobs whose delete has completed.
fn purge(d: &mut Data, now: u64) {
    d.training.jobs.retain(|_, j| !j.is_deleted_at(now));
}

/// The failure switches in force (admin override, else config).
pub fn switches(app: &AppState, d: &Data) -> JobFailSwitches {
    d.training
        .overrides
        .clone()
        .unwrap_or_else(|| app.config.jobs.fail_switches())
}

// ---- reads ---------------------------------------------------------------------------------

async fn get_one(State(app): State<AppState>, ArmPath(p): ArmPath<JobPath>) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let now = now_ms();
    let key = p.key();
    let body = app
        .store
        .read(|d| live(d, &key, now).map(|j| j.render(&app, now)));
    let body = body.ok_or_else(|| not_found(&p))?;
    outputs::maybe_upload(&app, &key);
    Ok(respond(StatusCode::OK, Some(body), &[]))
}

/// `?listViewType=ActiveOnly|ArchivedOnly|All` (default ActiveOnly), `?jobType=Command`,
/// `?tag=<key>` (jobs that have the tag). Newest first, no paging.
async fn list(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<WsPath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let view = list_view(&ctx)?;
    let job_type = ctx.param("jobType").map(str::to_string);
    let tag = ctx.param("tag").map(str::to_string);
    let prefix = job_key(&p.sub, &p.rg, &p.ws, "");
    let now = now_ms();
    let value: Vec<Value> = app.store.read(|d| {
        let mut jobs: Vec<&JobRecord> = d
            .training
            .jobs
            .iter()
            .filter(|(k, j)| k.starts_with(&prefix) && !j.is_deleted_at(now))
            .map(|(_, j)| j)
            .filter(|j| view.admits(j.is_archived()))
            .filter(|j| {
                job_type
                    .as_ref()
                    .is_none_or(|t| j.properties["jobType"].as_str() == Some(t))
            })
            .filter(|j| {
                tag.as_ref()
                    .is_none_or(|t| j.properties["tags"].get(t).is_some())
            })
            .collect();
        jobs.sort_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then_with(|| a.name.cmp(&b.name))
        });
        jobs.iter().map(|j| j.render(&app, now)).collect()
    });
    Ok(respond(
        StatusCode::OK,
        Some(json!({ "value": value })),
        &[],
    ))
}

// ---- PUT -----------------------------------------------------------------------------------

async fn put_one(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<JobPath>,
    body: Bytes,
) -> ArmResult<Response> {
    let ws_cfg = resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    check_name(&p.id, "id")?;
    let body = parse_json_object(&body)?;
    let props = validate::body(&body)?;
    let declared = declared_duration(&props)?;
    let interrupt = declared_interrupt(&props)?;
    let now = now_ms();
    let key = p.key();
    app.store.write(|d| {
        purge(d, now);
        if let Some(existing) = d.training.jobs.get(&key) {
            if existing.deleting.is_some() {
                return Err(ArmError::conflict(format!(
                    "Job '{}' is being deleted; wait for the delete to finish before submitting it again.",
                    p.id
                )));
            }
            validate::check_unchanged(existing, &props)?;
            let mut rec = existing.clone();
            let mut obj = rec.properties.as_object().cloned().unwrap_or_default();
            validate::apply_mutable(&mut obj, &props);
            let obj = Value::Object(obj);
            if obj != rec.properties {
                rec.properties = obj;
                rec.modified_ms = now;
            }
            let out = rec.render(&app, now);
            d.training.jobs.insert(key.clone(), rec);
            return Ok(respond(StatusCode::OK, Some(out), &[]));
        }
        let w = Ws { sub: &p.sub, rg: &p.rg, ws: &p.ws };
        validate::references(d, &w, &props)?;
        let mut rec = new_record(&app, d, &p, &normalize_location(&ws_cfg.location), props, declared, now);
        rec.schedule.interrupt = interrupt.or_else(|| {
            switches(&app, d)
                .interrupt_for(&p.id)
                .and_then(|spec| model::Interrupt::parse(spec).ok())
        });
        let out = rec.render(&app, now);
        d.training.jobs.insert(key.clone(), rec);
        Ok(respond(StatusCode::CREATED, Some(out), &[]))
    })
}

/// Simulated running seconds from the tag or the environment variable.
fn declared_duration(props: &Value) -> ArmResult<Option<f64>> {
    let (raw, target) = match (
        props["tags"].get(DURATION_TAG).and_then(Value::as_str),
        props["environmentVariables"]
            .get(DURATION_ENV)
            .and_then(Value::as_str),
    ) {
        (Some(t), _) => (t, format!("properties.tags['{DURATION_TAG}']")),
        (None, Some(e)) => (e, format!("properties.environmentVariables.{DURATION_ENV}")),
        (None, None) => return Ok(None),
    };
    match raw.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(Some(s)),
        _ => Err(ArmError::bad_request(format!(
            "'{raw}' is not a valid simulated duration in seconds (emulator tag/variable {DURATION_TAG} / {DURATION_ENV})."
        ))
        .with_target(target)),
    }
}

/// The interrupt a job declares with the tag or the environment variable.
fn declared_interrupt(props: &Value) -> ArmResult<Option<model::Interrupt>> {
    let (raw, target) = match (
        props["tags"].get(INTERRUPT_TAG).and_then(Value::as_str),
        props["environmentVariables"]
            .get(INTERRUPT_ENV)
            .and_then(Value::as_str),
    ) {
        (Some(t), _) => (t, format!("properties.tags['{INTERRUPT_TAG}']")),
        (None, Some(e)) => (
            e,
            format!("properties.environmentVariables.{INTERRUPT_ENV}"),
        ),
        (None, None) => return Ok(None),
    };
    model::Interrupt::parse(raw).map(Some).map_err(|e| {
        ArmError::bad_request(format!(
            "Invalid emulator interrupt '{raw}' ({INTERRUPT_TAG} / {INTERRUPT_ENV}): {e}."
        ))
        .with_target(target)
    })
}

fn new_record(
    app: &AppState,
    d: &Data,
    p: &JobPath,
    location: &str,
    props: Value,
    declared: Option<f64>,
    now: u64,
) -> JobRecord {
    let cfg = &app.config.jobs;
    let phase = &cfg.phase_ms;
    let (running_wall_ms, running_sim_ms) = match declared {
        Some(s) => (
            (s * 1000.0 * cfg.time_scale).round() as u64,
            (s * 1000.0).round() as u64,
        ),
        None => (phase.get("Running"), phase.get("Running")),
    };
    let schedule = Schedule {
        pre_ms: [
            phase.get("NotStarted"),
            phase.get("Starting"),
            phase.get("Preparing"),
            phase.get("Queued"),
        ],
        running_wall_ms,
        running_sim_ms,
        finalizing_ms: phase.get("Finalizing"),
        timeout_sim_ms: props["limits"]["timeout"]
            .as_str()
            .and_then(model::duration_ms),
        declared: declared.is_some(),
        interrupt: None,
    };
    let empty = Map::new();
    let env = props["environmentVariables"].as_object().unwrap_or(&empty);
    let inputs = props["inputs"].as_object().unwrap_or(&empty);
    let command = props["command"].as_str().unwrap_or_default();
    let produced_by = |job: &str| {
        live(d, &job_key(&p.sub, &p.rg, &p.ws, job), now)
            .and_then(|j| j.clara.as_ref())
            .and_then(|c| c.produces.clone())
    };
    let clara = clara_sim::plan(command, env, inputs, &produced_by);
    let failure = decide_failure(&switches(app, d), d, p, &props, now);
    JobRecord {
        subscription: p.sub.clone(),
        resource_group: p.rg.clone(),
        workspace: p.ws.clone(),
        name: p.id.clone(),
        location: location.to_string(),
        properties: props,
        created_ms: now,
        modified_ms: now,
        created_by: app.config.client_id.clone(),
        schedule,
        failure,
        cancel_requested_ms: None,
        cancel_op: None,
        cancel_ms: cfg.cancel_ms,
        deleting: None,
        clara,
        outputs_upload: None,
    }
}

/// Whether (and why) a new job will fail: the `clara-emulator/fail` tag or
/// `CLARA_EMULATOR_FAIL` variable, the name/command switches, or an input that points at
/// the output of a job that fails.
fn decide_failure(
    sw: &JobFailSwitches,
    d: &Data,
    p: &JobPath,
    props: &Value,
    now: u64,
) -> Option<Failure> {
    let user = |message: String| {
        Some(Failure {
            code: "UserError".into(),
            message,
        })
    };
    let explicit = props["tags"]
        .get(FAIL_TAG)
        .or_else(|| props["environmentVariables"].get(FAIL_ENV))
        .and_then(Value::as_str);
    if let Some(msg) = explicit {
        let msg = if msg.trim().is_empty() {
            "Simulated failure (clara-emulator).".to_string()
        } else {
            msg.to_string()
        };
        return user(msg);
    }
    let switch_message = |why: &str| {
        sw.fail_message
            .clone()
            .unwrap_or_else(|| format!("Simulated failure (clara-emulator): {why}."))
    };
    if sw.fail_job_names.iter().any(|n| n == &p.id) {
        return user(switch_message(
            "the job name is listed in jobs.fail_job_names",
        ));
    }
    let command = props["command"].as_str().unwrap_or_default();
    if let Some(needle) = sw
        .fail_when_command_contains
        .as_deref()
        .filter(|n| !n.is_empty())
        && command.contains(needle)
    {
        return user(switch_message(&format!(
            "the command contains '{needle}' (jobs.fail_when_command_contains)"
        )));
    }
    let inputs = props["inputs"].as_object()?;
    inputs.iter().find_map(|(name, input)| {
        let job = clara_sim::referenced_job(input["uri"].as_str()?)?;
        let upstream = live(d, &job_key(&p.sub, &p.rg, &p.ws, &job), now)?;
        upstream.failure.as_ref().map(|_| Failure {
            code: "UserError".into(),
            message: format!(
                "Input '{name}' could not be mounted: job '{job}' failed and did not write its outputs."
            ),
        })
    })
}

// ---- cancel / delete -----------------------------------------------------------------------

fn location_url(app: &AppState, op: &JobOp, api_version: &str) -> String {
    format!(
        "{}/subscriptions/{}/providers/{PROVIDER}/locations/{}/mfeOperationResults/{}?api-version={api_version}",
        app.base_url, op.subscription, op.location, op.id
    )
}

fn accepted(app: &AppState, op: &JobOp, ctx: &ReqCtx, extra: &[(&str, String)]) -> Response {
    let mut headers = vec![
        ("location", location_url(app, op, ctx.api_version())),
        ("retry-after", "1".to_string()),
    ];
    headers.extend(extra.iter().cloned());
    respond(StatusCode::ACCEPTED, None, &headers)
}

fn start_op(d: &mut Data, kind: JobOpKind, key: &str, rec: &JobRecord, now: u64) -> JobOp {
    let op = JobOp {
        id: new_guid(),
        kind,
        job_key: key.to_string(),
        subscription: rec.subscription.clone(),
        location: rec.location.clone(),
        start_ms: now,
    };
    d.training.job_ops.insert(op.id.clone(), op.clone());
    op
}

/// 202 + Location while the job moves through CancelRequested to Canceled; 200 when the job
/// is already terminal. Repeated cancels return the same operation.
async fn cancel(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<JobPath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let now = now_ms();
    let key = p.key();
    app.store.write(|d| {
        purge(d, now);
        let rec = d
            .training
            .jobs
            .get(&key)
            .cloned()
            .ok_or_else(|| not_found(&p))?;
        if rec.state_at(now).is_terminal() {
            return Ok(respond(StatusCode::OK, None, &[]));
        }
        if let Some(op) = rec
            .cancel_op
            .as_ref()
            .and_then(|id| d.training.job_ops.get(id))
        {
            return Ok(accepted(&app, op, &ctx, &[]));
        }
        let op = start_op(d, JobOpKind::Cancel, &key, &rec, now);
        if let Some(j) = d.training.jobs.get_mut(&key) {
            j.cancel_requested_ms = Some(now);
            j.cancel_op = Some(op.id.clone());
            j.modified_ms = now;
        }
        Ok(accepted(&app, &op, &ctx, &[]))
    })
}

/// 202 + Location (+ Retry-After, x-ms-async-operation-timeout); the job is gone after
/// `jobs.delete_ms`. Absent → 204. Repeated deletes return the same operation.
async fn delete_one(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<JobPath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let now = now_ms();
    let key = p.key();
    let timeout = [("x-ms-async-operation-timeout", "PT1H".to_string())];
    Ok(app.store.write(|d| {
        purge(d, now);
        let Some(rec) = d.training.jobs.get(&key).cloned() else {
            return respond(StatusCode::NO_CONTENT, None, &[]);
        };
        if let Some(op) = rec
            .deleting
            .as_ref()
            .and_then(|del| d.training.job_ops.get(&del.op_id))
        {
            return accepted(&app, op, &ctx, &timeout);
        }
        let op = start_op(d, JobOpKind::Delete, &key, &rec, now);
        if let Some(j) = d.training.jobs.get_mut(&key) {
            j.deleting = Some(Deleting {
                op_id: op.id.clone(),
                done_ms: now + app.config.jobs.delete_ms,
            });
        }
        accepted(&app, &op, &ctx, &timeout)
    }))
}

/// Location resource of a cancel/delete.
async fn poll(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<OpPath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    check_subscription(&app, &p.sub)?;
    let now = now_ms();
    let (op, done) = app
        .store
        .read(|d| {
            let op = d.training.job_ops.get(&p.op).cloned()?;
            let job = live(d, &op.job_key, now);
            let done = match op.kind {
                JobOpKind::Cancel => job.is_none_or(|j| j.state_at(now).is_terminal()),
                JobOpKind::Delete => job.is_none(),
            };
            Some((op, done))
        })
        .ok_or_else(|| {
            ArmError::not_found(
                "OperationNotFound",
                format!("The operation '{}' could not be found.", p.op),
            )
        })?;
    Ok(match (done, op.kind) {
        (false, _) => accepted(&app, &op, &ctx, &[]),
        (true, JobOpKind::Cancel) => respond(StatusCode::OK, None, &[]),
        (true, JobOpKind::Delete) => respond(StatusCode::NO_CONTENT, None, &[]),
    })
}
