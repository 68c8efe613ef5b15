//! Request log: one JSON line per request appended to `DIR/requests.jsonl` (admin routes
//! under `/_emulator/` are not logged). Secret-bearing request fields are redacted.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::arm::error::ArmError;
use crate::headers::RequestIds;
use crate::pipeline::{DropConnection, FaultTag, HandlerStatus, OpTag};
use crate::util::{now_ms, rfc3339};

pub const LOG_FILE: &str = "requests.jsonl";
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
const REDACTED: &str = "<redacted>";

/// Response extension: the handler takes over the finished log line instead of it being
/// appended now (e.g. a streamed download appends it when its body ends, with the bytes sent).
#[derive(Clone)]
pub struct LogHook(pub std::sync::Arc<dyn Fn(Value) + Send + Sync>);

/// JSON keys whose values are replaced by `"<redacted>"` (case-insensitive).
const SECRET_KEYS: &[&str] = &[
    "adminuserpassword",
    "client_secret",
    "client_assertion",
    "key",
    "sastoken",
    "password",
    "accountkey",
    "primarykey",
    "secondarykey",
    "connectionstring",
    "access_token",
    // NGC `POST /v3/keys/get-caller-info` sends the key as the form field `credentials`.
    "credentials",
];

pub struct RequestLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl RequestLog {
    pub fn open(dir: &Path) -> std::io::Result<RequestLog> {
        let path = dir.join(LOG_FILE);
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok(RequestLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, entry: &Value) {
        let mut line = entry.to_string();
        line.push('\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|_| file.flush()) {
            eprintln!(
                "clara-emulator: failed to append to {}: {e}",
                self.path.display()
            );
        }
    }

    /// All entries, oldest first (unparseable lines are skipped).
    pub fn entries(&self) -> Vec<Value> {
        let _guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let Ok(file) = File::open(&self.path) else {
            return Vec::new();
        };
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str(&l).ok())
            .collect()
    }

    pub fn clear(&self) {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        match OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)
        {
            Ok(_) => match OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
            {
                Ok(f) => *file = f,
                Err(e) => eprintln!("clara-emulator: reopening {}: {e}", self.path.display()),
            },
            Err(e) => eprintln!("clara-emulator: truncating {}: {e}", self.path.display()),
        }
    }
}

/// Outer middleware: buffers the request body (for the log), runs the request, appends the
/// log line.
pub async fn middleware(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/_emulator") {
        return next.run(req).await;
    }
    let started = Instant::now();
    let ts = rfc3339(now_ms());
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ArmError::new(
                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                "The request body is too large.",
            )
            .into_response();
        }
    };
    let logged_body = body_for_log(&parts.headers, &bytes);
    let method = parts.method.to_string();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().map(str::to_string);
    let request_id = parts
        .extensions
        .get::<RequestIds>()
        .map(|r| r.request_id.clone());
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;

    let dropped = resp.extensions().get::<DropConnection>().is_some();
    let status = if dropped {
        resp.extensions()
            .get::<HandlerStatus>()
            .map_or(Value::Null, |s| json!(s.0))
    } else {
        json!(resp.status().as_u16())
    };
    let entry = json!({
        "ts": ts,
        "method": method,
        "path": path,
        "query": query,
        "status": status,
        "op": resp.extensions().get::<OpTag>().map_or("unknown", |o| o.0),
        "fault": resp.extensions().get::<FaultTag>().map(|f| f.0.as_str()),
        "dropped": dropped,
        "request_id": request_id,
        "user_agent": user_agent,
        "duration_ms": started.elapsed().as_millis() as u64,
        "body": logged_body,
    });
    match resp.extensions().get::<LogHook>() {
        Some(hook) => (hook.0)(entry),
        None => app.log.append(&entry),
    }
    resp
}

/// The request body as JSON for the log: JSON bodies as-is, form bodies as an object,
/// anything else as its size only; secrets redacted.
pub fn body_for_log(headers: &HeaderMap, bytes: &Bytes) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // JSON first, whatever the content type claims (so a mislabelled JSON body is still
    // redacted field by field); raw text is never logged.
    let mut value = if let Ok(v) = serde_json::from_slice::<Value>(bytes) {
        v
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Value::Object(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                .collect(),
        )
    } else {
        json!({ "_unparsed_bytes": bytes.len() })
    };
    redact(&mut value);
    value
}

/// Replaces secret fields (see `SECRET_KEYS`) anywhere in `value`.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => redact_map(map),
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn redact_map(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str()) && !v.is_null() {
            *v = Value::String(REDACTED.into());
        } else {
            redact(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_nested_secrets_but_keeps_ssh_public_key() {
        let mut v = json!({"properties":{"properties":{"userAccountCredentials":{
            "adminUserName":"azureuser","adminUserPassword":"hunter2","adminUserSshPublicKey":"ssh-rsa AAA"}}},
            "secrets":[{"key":"k","sasToken":"s"}]});
        redact(&mut v);
        let creds = &v["properties"]["properties"]["userAccountCredentials"];
        assert_eq!(creds["adminUserPassword"], REDACTED);
        assert_eq!(creds["adminUserSshPublicKey"], "ssh-rsa AAA");
        assert_eq!(v["secrets"][0]["key"], REDACTED);
        assert_eq!(v["secrets"][0]["sasToken"], REDACTED);
    }

    #[test]
    fn form_bodies_are_parsed_and_redacted() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        let v = body_for_log(
            &h,
            &Bytes::from_static(b"grant_type=client_credentials&client_secret=s3cr3t&client_id=a"),
        );
        assert_eq!(v["client_secret"], REDACTED);
        assert_eq!(v["client_id"], "a");
        let v = body_for_log(
            &h,
            &Bytes::from_static(br#"{"properties":{"adminUserPassword":"pw"}}"#),
        );
        assert_eq!(v["properties"]["adminUserPassword"], REDACTED);
    }
}
