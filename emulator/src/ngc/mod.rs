//! NVIDIA NGC emulation, served by the same process:
//!
//! - the catalog API (`/v2/...`, models and resources, org-scoped and public forms) and the
//!   auth service (`GET /token`) on the main listener;
//! - an "object store" (like `xfiles.ngc.nvidia.com`) on a second listener, a different origin,
//!   that serves the bytes behind expiring HMAC-signed URLs, with Range support;
//! - deterministic download faults, per-file byte accounting in the request log and stats.
//!
//! See README.md ("NGC").

pub mod api;
pub mod archive;
pub mod auth;
pub mod catalog;
pub mod config;
pub mod content;
pub mod errors;
pub mod faults;
pub mod mmar;
pub mod xfiles;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::log::LogHook;
use crate::pipeline::DropConnection;
use catalog::Catalog;
use config::NgcConfig;
use errors::NgcError;
use faults::{NgcFault, NgcFaultKind, NgcFaults};

/// File in the state dir holding the object store's base URL.
pub const XFILES_ENDPOINT_FILE: &str = "ngc_xfiles_endpoint";
/// File in the state dir holding the HMAC key of tokens and signed URLs (0600).
pub const SECRET_FILE: &str = "ngc_signing.key";

pub struct NgcState {
    pub config: NgcConfig,
    pub catalog: Catalog,
    pub faults: NgcFaults,
    /// HMAC key for issued tokens and signed URLs (persisted, so both survive restarts).
    pub secret: Vec<u8>,
    /// Base URL of the object-store listener, e.g. `https://127.0.0.1:40123`.
    pub xfiles_url: String,
    /// `org[/team]/name` of licence-gated assets whose terms were accepted.
    pub eula_accepted: Mutex<BTreeSet<String>>,
}

impl NgcState {
    pub fn new(
        config: &NgcConfig,
        state_dir: &Path,
        xfiles_url: String,
    ) -> Result<NgcState, String> {
        config.check().map_err(|e| format!("config.ngc: {e}"))?;
        Ok(NgcState {
            catalog: Catalog::new(&config.assets),
            faults: NgcFaults::new(&config.faults)
                .map_err(|e| format!("config.ngc.faults: {e}"))?,
            secret: load_secret(state_dir)?,
            xfiles_url,
            eula_accepted: Mutex::new(BTreeSet::new()),
            config: config.clone(),
        })
    }

    pub fn eula_ok(&self, asset: &catalog::Asset) -> bool {
        !asset.eula_required
            || self
                .eula_accepted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&asset.id())
    }
}

fn load_secret(dir: &Path) -> Result<Vec<u8>, String> {
    let path = dir.join(SECRET_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(s.trim().as_bytes().to_vec()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    }
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    crate::util::write_atomic(&path, hex.as_bytes())
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
    }
    Ok(hex.into_bytes())
}

/// NGC routes of the main listener: API, auth service and the NGC admin routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/token", get(auth::token))
        .route("/v2/{*rest}", get(api::handle))
        .route("/v3/keys/get-caller-info", post(auth::caller_info))
        .route("/_emulator/ngc", get(admin_info))
        .route(
            "/_emulator/ngc/faults",
            get(admin_get_faults)
                .put(admin_put_faults)
                .post(admin_post_fault),
        )
        .route("/_emulator/ngc/eula", put(admin_put_eula))
}

// ---- request-log helpers --------------------------------------------------------------------

/// Response extension: the NGC fault that produced this response (log `fault` field).
#[derive(Debug, Clone, Copy)]
pub struct NgcFaultTag(pub &'static str);

/// Redacts the signature of signed URLs in a logged query string.
fn redact_query(entry: &mut Value) {
    if let Some(q) = entry["query"].as_str()
        && q.contains("Signature=")
    {
        let redacted: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("Signature", _)) => "Signature=<redacted>".to_string(),
                _ => kv.to_string(),
            })
            .collect();
        entry["query"] = Value::String(redacted.join("&"));
    }
}

fn merge(entry: &mut Value, fields: &Map<String, Value>) {
    if let Some(obj) = entry.as_object_mut() {
        for (k, v) in fields {
            obj.insert(k.clone(), v.clone());
        }
    }
    redact_query(entry);
}

/// Adds `fields` (and the fault tag, if any) to the response's log line, unless a streamed
/// body already owns the line.
pub fn annotate(app: &AppState, mut resp: Response, mut fields: Map<String, Value>) -> Response {
    if resp.extensions().get::<LogHook>().is_some() {
        return resp;
    }
    if let Some(tag) = resp.extensions().get::<NgcFaultTag>() {
        fields.insert("fault".into(), json!(tag.0));
    }
    let app = app.clone();
    resp.extensions_mut()
        .insert(LogHook(Arc::new(move |mut entry: Value| {
            merge(&mut entry, &fields);
            app.log.append(&entry);
        })));
    resp
}

/// The log line of a streamed download: written when the body ends (or is abandoned), with
/// the bytes actually sent.
pub struct StreamLog {
    app: AppState,
    state: Mutex<StreamLogState>,
}

struct StreamLogState {
    entry: Option<Value>,
    done: bool,
    fields: Map<String, Value>,
}

impl StreamLog {
    pub fn new(app: &AppState, fields: Map<String, Value>) -> Arc<StreamLog> {
        Arc::new(StreamLog {
            app: app.clone(),
            state: Mutex::new(StreamLogState {
                entry: None,
                done: false,
                fields,
            }),
        })
    }

    pub fn hook(self: &Arc<Self>) -> LogHook {
        let me = self.clone();
        LogHook(Arc::new(move |entry: Value| {
            let mut s = me.state.lock().unwrap_or_else(|e| e.into_inner());
            s.entry = Some(entry);
            if s.done {
                me.flush(&mut s);
            }
        }))
    }

    pub fn set(&self, key: &str, value: Value) {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fields
            .insert(key.into(), value);
    }

    pub fn add_bytes(&self, n: u64) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let cur = s.fields.get("bytes").and_then(Value::as_u64).unwrap_or(0);
        s.fields.insert("bytes".into(), json!(cur + n));
    }

    /// The body ended (completely or not).
    pub fn finish(&self) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.done {
            return;
        }
        s.done = true;
        if s.entry.is_some() {
            self.flush(&mut s);
        }
    }

    fn flush(&self, s: &mut StreamLogState) {
        if let Some(mut entry) = s.entry.take() {
            merge(&mut entry, &s.fields);
            self.app.log.append(&entry);
        }
    }
}

/// Response of a `status` / `drop` fault.
pub fn fault_response(f: &NgcFault) -> Response {
    let mut resp = match f.kind {
        NgcFaultKind::Drop => {
            let mut r = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            r.extensions_mut().insert(DropConnection);
            r
        }
        _ => {
            let status = StatusCode::from_u16(f.status.unwrap_or(503))
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            let code = match status.as_u16() {
                429 => "TOO_MANY_REQUESTS",
                500 => "INTERNAL_ERROR",
                503 => "SERVICE_UNAVAILABLE",
                401 => "UNAUTHORIZED",
                403 => "FORBIDDEN",
                404 => "NOT_FOUND",
                _ => "UNKNOWN",
            };
            let mut e = NgcError::new(status, code, "Injected by clara-emulator (NGC fault).");
            if matches!(status.as_u16(), 429 | 503) {
                e = e.with_header("retry-after", f.retry_after_s.unwrap_or(1).to_string());
            }
            e.into_response()
        }
    };
    resp.extensions_mut().insert(NgcFaultTag(f.kind.label()));
    resp
}

// ---- stats ----------------------------------------------------------------------------------

/// `ngc` part of `GET /_emulator/stats`: bytes served per file, from the request log.
pub fn stats(entries: &[Value]) -> Value {
    let mut by_file: BTreeMap<String, (u64, u64, u64)> = BTreeMap::new();
    let mut by_asset: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let (mut total, mut downloads, mut complete) = (0u64, 0u64, 0u64);
    for e in entries {
        let op = e["op"].as_str().unwrap_or_default();
        if op != "ngc.download" && op != "ngc.zip" {
            continue;
        }
        let bytes = e["bytes"].as_u64().unwrap_or(0);
        let asset = e["asset"].as_str().unwrap_or("?");
        let version = e["version"].as_str().unwrap_or("?");
        let file = if op == "ngc.zip" {
            "<zip>"
        } else {
            e["file"].as_str().unwrap_or("?")
        };
        let done = e["complete"].as_bool().unwrap_or(false);
        total += bytes;
        downloads += 1;
        complete += u64::from(done);
        let f = by_file
            .entry(format!("{asset}:{version}/{file}"))
            .or_default();
        f.0 += 1;
        f.1 += bytes;
        f.2 += u64::from(done);
        let a = by_asset.entry(format!("{asset}:{version}")).or_default();
        a.0 += 1;
        a.1 += bytes;
    }
    json!({
        "bytes_served": total,
        "downloads": downloads,
        "complete_downloads": complete,
        "by_file": by_file.into_iter().map(|(k, (n, b, c))| (k, json!({"requests": n, "bytes": b, "complete": c}))).collect::<Map<_, _>>(),
        "by_asset": by_asset.into_iter().map(|(k, (n, b))| (k, json!({"requests": n, "bytes": b}))).collect::<Map<_, _>>(),
    })
}

// ---- admin ----------------------------------------------------------------------------------

async fn admin_info(State(app): State<AppState>) -> Response {
    let ngc = &app.ngc;
    let keys: Vec<Value> = ngc
        .config
        .api_keys
        .iter()
        .map(|(k, orgs)| {
            json!({
                "fingerprint": auth::fingerprint(k),
                "type": if k.starts_with("nvapi-") { "nvapi" } else { "legacy" },
                "orgs": orgs,
            })
        })
        .collect();
    let assets: Vec<Value> = ngc
        .catalog
        .fixed()
        .iter()
        .map(|a| {
            json!({
                "kind": a.kind.segment(),
                "id": a.id(),
                "public": a.public,
                "eula_required": a.eula_required,
                "versions": a.versions.iter().map(|v| json!({"version": v.id, "status": v.status, "files": v.files.len(), "bytes": v.total_size()})).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(json!({
        "api_url": app.base_url,
        "auth_url": app.base_url,
        "xfiles_url": ngc.xfiles_url,
        "keys": keys,
        "assets": assets,
        "synthetic": ["nvidia/synthetic/size-<bytes>[-files-<n>]", "nvidia/synthetic/zip-files-<n>[-size-<bytes>][-root]"],
        "hostile": catalog::HOSTILE_NAMES.iter().map(|n| format!("nvidia/hostile/{n}")).collect::<Vec<_>>(),
        "eula_accepted": *ngc.eula_accepted.lock().unwrap_or_else(|e| e.into_inner()),
    }))
    .into_response()
}

async fn admin_get_faults(State(app): State<AppState>) -> Response {
    axum::Json(json!(app.ngc.faults.pending())).into_response()
}

/// Replaces the armed NGC faults with the body (a JSON array).
async fn admin_put_faults(State(app): State<AppState>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<Vec<NgcFault>>(&body).map_err(|e| e.to_string());
    match parsed.and_then(|f| app.ngc.faults.replace(f)) {
        Ok(()) => axum::Json(json!(app.ngc.faults.pending())).into_response(),
        Err(e) => NgcError::bad_request(format!("Invalid NGC fault list: {e}")).into_response(),
    }
}

/// Arms one more NGC fault (body: one fault object).
async fn admin_post_fault(State(app): State<AppState>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<NgcFault>(&body).map_err(|e| e.to_string());
    match parsed.and_then(|f| app.ngc.faults.push(f)) {
        Ok(()) => axum::Json(json!(app.ngc.faults.pending())).into_response(),
        Err(e) => NgcError::bad_request(format!("Invalid NGC fault: {e}")).into_response(),
    }
}

/// `{"asset":"org[/team]/name","accepted":true|false}`: records (or withdraws) licence
/// acceptance for a gated asset.
async fn admin_put_eula(State(app): State<AppState>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return NgcError::bad_request("expected {\"asset\":\"org[/team]/name\",\"accepted\":bool}")
            .into_response();
    };
    let (Some(asset), Some(accepted)) = (v["asset"].as_str(), v["accepted"].as_bool()) else {
        return NgcError::bad_request("expected {\"asset\":\"org[/team]/name\",\"accepted\":bool}")
            .into_response();
    };
    let mut set = app
        .ngc
        .eula_accepted
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if accepted {
        set.insert(asset.to_string());
    } else {
        set.remove(asset);
    }
    axum::Json(json!({ "eula_accepted": *set })).into_response()
}
