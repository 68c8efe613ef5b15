//! A tiny in-test NGC: token endpoint and catalog API on one port, the "signed URL"
//! object store on another, with counters and fault switches.

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const LEGACY_KEY: &str = "legacy-key-123";
pub const PERSONAL_KEY: &str = "nvapi-personal-456";

#[derive(Default)]
pub struct Config {
    /// (path, content) of the one version served.
    pub files: Vec<(String, Vec<u8>)>,
    /// Server-side page size of the files listing.
    pub page_size: usize,
    /// (versionId, status, createdDate).
    pub versions: Vec<(String, String, String)>,
    /// Whether API calls need credentials (a private asset).
    pub private: bool,
    pub token_expires_in: i64,
    /// Status to answer every API call (not /token) with, e.g. 403.
    pub api_status: Option<u16>,
    /// Status for the files listing only (404 → zip fallback, 412 → licence).
    pub listing_status: Option<u16>,
    /// Paths listed with a different path than served (unsafe path tests).
    pub listed_path_override: Option<String>,
    /// Object store: serve these paths with one byte flipped.
    pub corrupt: HashSet<String>,
    /// Object store: break off these paths' bodies halfway, once each.
    pub truncate_once: HashSet<String>,
    /// Object store: answer Range requests with 200 and the whole file.
    pub ignore_range: bool,
    /// API: answer the first listing request with 503.
    pub listing_503_once: bool,
    /// Bytes of the `/zip` answer.
    pub zip_body: Vec<u8>,
    /// Added to every listed `sizeInBytes` (a listing larger than what is served).
    pub listed_size_extra: u64,
    /// The paged download manifest hands out URLs the object store refuses (403, as an
    /// expired signature); `?path=` answers good ones.
    pub stale_manifest_urls: bool,
}

#[derive(Default)]
pub struct Seen {
    pub token_requests: u32,
    pub token_queries: Vec<String>,
    /// (path+query, Authorization) of every API call except /token.
    pub api_requests: Vec<(String, Option<String>)>,
    /// Headers of every object-store request.
    pub object_requests: Vec<HeaderMap>,
    pub object_bytes_served: u64,
}

#[derive(Default)]
pub struct Inner {
    pub config: Config,
    pub seen: Seen,
    pub valid_tokens: HashSet<String>,
    pub token_counter: u32,
    pub object_port: u16,
    pub truncated: HashSet<String>,
}

#[derive(Clone)]
pub struct Fake(pub Arc<Mutex<Inner>>);

impl Fake {
    pub fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }
}

pub struct Servers {
    pub fake: Fake,
    pub api_url: url::Url,
}

pub async fn start(config: Config) -> Servers {
    let fake = Fake(Arc::new(Mutex::new(Inner {
        config,
        ..Inner::default()
    })));
    let objects = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let object_port = objects.local_addr().unwrap().port();
    fake.with(|i| i.object_port = object_port);
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_port = api.local_addr().unwrap().port();
    let object_app = Router::new()
        .fallback(object_handler)
        .with_state(fake.clone());
    let api_app = Router::new().fallback(api_handler).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(objects, object_app).await.unwrap() });
    tokio::spawn(async move { axum::serve(api, api_app).await.unwrap() });
    Servers {
        fake,
        api_url: url::Url::parse(&format!("http://127.0.0.1:{api_port}")).unwrap(),
    }
}

pub fn sha256_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(data))
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn status_response(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap();
    json_response(
        status,
        json!({"requestStatus": {"statusCode": status.canonical_reason(), "statusDescription": format!("fake {code}")}}),
    )
}

async fn api_handler(State(fake): State<Fake>, uri: Uri, headers: HeaderMap) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = uri.path().to_owned();
    let query = uri.query().unwrap_or("").to_owned();
    let mut inner = fake.0.lock().unwrap();

    if path == "/token" {
        inner.seen.token_requests += 1;
        inner.seen.token_queries.push(query);
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("$oauthtoken:{LEGACY_KEY}"))
        );
        if auth.as_deref() != Some(expected.as_str()) {
            return status_response(401);
        }
        inner.token_counter += 1;
        let token = format!("tok-{}", inner.token_counter);
        inner.valid_tokens.insert(token.clone());
        return json_response(
            StatusCode::OK,
            json!({"token": token, "expires_in": inner.config.token_expires_in}),
        );
    }

    inner
        .seen
        .api_requests
        .push((format!("{path}?{query}"), auth.clone()));
    if let Some(code) = inner.config.api_status {
        return status_response(code);
    }
    let authorized = match auth.as_deref().and_then(|a| a.strip_prefix("Bearer ")) {
        Some(PERSONAL_KEY) => true,
        Some(token) => inner.valid_tokens.contains(token),
        None => !inner.config.private,
    };
    if !authorized {
        return status_response(401);
    }

    // Accept both path families; find the kind and what follows the asset name.
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let page: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("page-number="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if !segs.contains(&"versions") && segs.last() == Some(&"files") {
        // The presigned download manifest: `{"urls","filepath"}` per page, or one URL.
        if let Some(code) = inner.config.listing_status {
            return status_response(code);
        }
        let port = inner.object_port;
        let url = |file: &str, sig: &str| {
            format!("http://127.0.0.1:{port}/xfiles/{file}?Signature={sig}&Expires=9999999999")
        };
        if let Some(p) = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "path")
            .map(|(_, v)| v.into_owned())
        {
            if !inner.config.files.iter().any(|(f, _)| *f == p) {
                return status_response(404);
            }
            return json_response(StatusCode::OK, json!({"urls": [url(&p, "sig")]}));
        }
        let sig = if inner.config.stale_manifest_urls {
            "stale"
        } else {
            "sig"
        };
        let size = inner.config.page_size.max(1);
        let total = inner.config.files.len();
        let files: Vec<&String> = inner
            .config
            .files
            .iter()
            .skip(page * size)
            .take(size)
            .map(|(p, _)| p)
            .collect();
        return json_response(
            StatusCode::OK,
            json!({
                "urls": files.iter().map(|p| url(p, sig)).collect::<Vec<_>>(),
                "filepath": files,
                "paginationInfo": {"index": page, "size": size, "totalPages": total.div_ceil(size).max(1), "totalResults": total}
            }),
        );
    }
    let Some(vpos) = segs.iter().position(|s| *s == "versions") else {
        return status_response(404);
    };
    let prefix = if segs.contains(&"resources") {
        "recipe"
    } else {
        "model"
    };
    let rest = &segs[vpos + 1..];
    match rest {
        [] => {
            let list: Vec<Value> = inner
                .config
                .versions
                .iter()
                .map(|(id, status, created)| json!({"versionId": id, "status": status, "createdDate": created}))
                .collect();
            json_response(
                StatusCode::OK,
                json!({format!("{prefix}Versions"): list, "paginationInfo": {"index": 0, "size": 1000, "totalPages": 1}}),
            )
        }
        [v] => match inner.config.versions.iter().find(|(id, _, _)| id == v) {
            Some((id, status, _)) => json_response(
                StatusCode::OK,
                json!({format!("{prefix}Version"): {"versionId": id, "status": status}}),
            ),
            None => status_response(404),
        },
        [_, "files"] => {
            if let Some(code) = inner.config.listing_status {
                return status_response(code);
            }
            if inner.config.listing_503_once {
                inner.config.listing_503_once = false;
                return status_response(503);
            }
            let size = inner.config.page_size.max(1);
            let total = inner.config.files.len();
            let total_pages = total.div_ceil(size).max(1);
            let files: Vec<Value> = inner
                .config
                .files
                .iter()
                .skip(page * size)
                .take(size)
                .map(|(p, data)| {
                    let listed = inner.config.listed_path_override.clone().unwrap_or_else(|| p.clone());
                    json!({"path": listed, "sizeInBytes": data.len() as u64 + inner.config.listed_size_extra, "sha256_base64": sha256_b64(data)})
                })
                .collect();
            json_response(
                StatusCode::OK,
                json!({
                    format!("{prefix}Files"): files,
                    "paginationInfo": {"index": page, "size": size, "totalPages": total_pages, "totalResults": total}
                }),
            )
        }
        [_, "zip"] => {
            if inner.config.zip_body.is_empty() {
                return status_response(404);
            }
            (StatusCode::OK, inner.config.zip_body.clone()).into_response()
        }
        [_, "files", file @ ..] => {
            let file = file.join("/");
            if !inner.config.files.iter().any(|(p, _)| *p == file) {
                return status_response(404);
            }
            let location = format!(
                "http://127.0.0.1:{}/xfiles/{file}?Signature=sig&Expires=9999999999",
                inner.object_port
            );
            (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
        }
        _ => status_response(404),
    }
}

async fn object_handler(State(fake): State<Fake>, uri: Uri, headers: HeaderMap) -> Response {
    let mut inner = fake.0.lock().unwrap();
    inner.seen.object_requests.push(headers.clone());
    if !uri.query().unwrap_or("").contains("Signature=sig") {
        return StatusCode::FORBIDDEN.into_response();
    }
    let path = uri.path().trim_start_matches("/xfiles/").to_owned();
    let Some((_, data)) = inner.config.files.iter().find(|(p, _)| *p == path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut data = data.clone();
    if inner.config.corrupt.contains(&path) {
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
    }
    let len = data.len() as u64;
    let range_start = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|_| !inner.config.ignore_range);
    let (status, start) = match range_start {
        Some(s) if s >= len => {
            return (
                StatusCode::RANGE_NOT_SATISFIABLE,
                [(header::CONTENT_RANGE, format!("bytes */{len}"))],
            )
                .into_response();
        }
        Some(s) => (StatusCode::PARTIAL_CONTENT, s),
        None => (StatusCode::OK, 0),
    };
    let body = data[start as usize..].to_vec();
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_LENGTH, body.len());
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", len - 1),
        );
    }
    if inner.config.truncate_once.contains(&path) && !inner.truncated.contains(&path) {
        inner.truncated.insert(path.clone());
        let half = body[..body.len() / 2].to_vec();
        inner.seen.object_bytes_served += half.len() as u64;
        // Send the first half, give it time to reach the client, then break the connection.
        use futures::StreamExt;
        let first = futures::stream::iter([Ok::<_, std::io::Error>(half)]);
        let broken = futures::stream::once(async {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            Err(std::io::Error::other("connection dropped by fake"))
        });
        return builder
            .body(Body::from_stream(first.chain(broken)))
            .unwrap();
    }
    inner.seen.object_bytes_served += body.len() as u64;
    builder.body(Body::from(body)).unwrap()
}

/// Deterministic, incompressible-ish test content.
pub fn content(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ seed as u32;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect()
}

pub fn files_map(files: &[(String, Vec<u8>)]) -> HashMap<String, Vec<u8>> {
    files.iter().cloned().collect()
}
