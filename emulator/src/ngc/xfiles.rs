//! The object store behind NGC file downloads (like `xfiles.ngc.nvidia.com`): a second listener,
//! so a different origin than the API. File routes of the API redirect here with a signed URL
//! (`Expires` + HMAC `Signature`, CloudFront style). Bytes are streamed with Range support;
//! body faults (drop after N bytes, corrupt byte K, stall) apply here and to `/zip`.
//!
//! Path: `/org/{org}[/team/{team}]/{models|resources}/{name}/versions/{v}/files/{path}`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value, json};

use super::api::segments;
use super::archive;
use super::auth;
use super::catalog::{Asset, Kind};
use super::content::{CHUNK, Content};
use super::errors::{NgcError, xml_error};
use super::faults::{NgcFault, NgcFaultKind, Target};
use super::{StreamLog, annotate, fault_response};
use crate::app::AppState;
use crate::pipeline::OpTag;
use crate::util::now_ms;

const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

const LAST_MODIFIED: &str = "Tue, 01 Sep 2020 12:00:00 GMT";

/// Router of the object-store listener (request log included; no admin routes).
pub fn router(app: &AppState) -> Router {
    Router::new()
        .route("/{*rest}", get(handle))
        .fallback(not_found)
        .layer(from_fn_with_state(app.clone(), crate::log::middleware))
        .with_state(app.clone())
}

async fn not_found() -> Response {
    let mut r = xml_error(
        StatusCode::NOT_FOUND,
        "NoSuchKey",
        "The specified key does not exist.",
    );
    r.extensions_mut().insert(OpTag("ngc.download"));
    r
}

fn canonical(kind: Kind, asset_id: &str, version: &str, path: &str, expires: u64) -> String {
    format!(
        "GET\n{}\n{asset_id}\n{version}\n{path}\n{expires}",
        kind.segment()
    )
}

fn object_path(
    kind: Kind,
    org: &str,
    team: Option<&str>,
    name: &str,
    version: &str,
    path: &str,
) -> String {
    let enc = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
    let mut p = format!("/org/{}", enc(org));
    if let Some(t) = team {
        p.push_str(&format!("/team/{}", enc(t)));
    }
    p.push_str(&format!(
        "/{}/{}/versions/{}/files",
        kind.segment(),
        enc(name),
        enc(version)
    ));
    for seg in path.split('/') {
        p.push('/');
        p.push_str(&enc(seg));
    }
    p
}

/// A signed, expiring object-store URL for one file.
pub fn signed_url(app: &AppState, asset: &Asset, version: &str, path: &str) -> String {
    let ngc = &app.ngc;
    let expires = now_ms() / 1000 + ngc.config.signed_url_ttl_s;
    let sig = auth::sign(
        &ngc.secret,
        &canonical(asset.kind, &asset.id(), version, path, expires),
    );
    format!(
        "{}{}?Expires={expires}&Signature={sig}&Key-Pair-Id=clara-emulator",
        ngc.xfiles_url,
        object_path(
            asset.kind,
            &asset.org,
            asset.team.as_deref(),
            &asset.name,
            version,
            path
        )
    )
}

struct ObjectRef {
    kind: Kind,
    org: String,
    team: Option<String>,
    name: String,
    version: String,
    path: String,
}

impl ObjectRef {
    fn asset_id(&self) -> String {
        match &self.team {
            Some(t) => format!("{}/{t}/{}", self.org, self.name),
            None => format!("{}/{}", self.org, self.name),
        }
    }
}

fn parse_object(path: &str) -> Option<ObjectRef> {
    let segs = segments(path);
    let s = |i: usize| segs.get(i).map(String::as_str);
    if s(0)? != "org" {
        return None;
    }
    let org = s(1)?.to_string();
    let (team, i) = if s(2) == Some("team") {
        (Some(s(3)?.to_string()), 4)
    } else {
        (None, 2)
    };
    let kind = Kind::parse(s(i)?)?;
    let name = s(i + 1)?.to_string();
    if s(i + 2)? != "versions" || s(i + 4)? != "files" || segs.len() <= i + 5 {
        return None;
    }
    Some(ObjectRef {
        kind,
        org,
        team,
        name,
        version: s(i + 3)?.to_string(),
        path: segs[i + 5..].join("/"),
    })
}

fn query_map(req: &Parts) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// `GET` (and `HEAD`) of a signed object URL.
async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let (req, _body) = req.into_parts();
    let mut fields = Map::new();
    let range_header = req
        .headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fields.insert("range".into(), json!(range_header));
    let mut resp = serve(&app, &req, range_header.as_deref(), &mut fields).await;
    resp.extensions_mut().insert(OpTag("ngc.download"));
    resp.headers_mut().insert(
        "x-amz-request-id",
        HeaderValue::from_str(&crate::util::new_guid().replace('-', "")[..16])
            .unwrap_or(HeaderValue::from_static("0")),
    );
    annotate(&app, resp, fields)
}

async fn serve(
    app: &AppState,
    req: &Parts,
    range_header: Option<&str>,
    fields: &mut Map<String, Value>,
) -> Response {
    let ngc = &app.ngc;
    if ngc.config.xfiles_reject_authorization && req.headers.contains_key(header::AUTHORIZATION) {
        fields.insert("leaked_authorization".into(), json!(true));
        return xml_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Only one auth mechanism allowed; only the Signature query string parameter or the Authorization header should be specified. (The NGC credential must not be sent to the object store.)",
        );
    }
    let Some(obj) = parse_object(req.uri.path()) else {
        return xml_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let asset_id = obj.asset_id();
    fields.insert("asset".into(), json!(asset_id));
    fields.insert("kind".into(), json!(obj.kind.segment()));
    fields.insert("version".into(), json!(obj.version));
    fields.insert("file".into(), json!(obj.path));
    let q = query_map(req);
    let (Some(expires), Some(sig)) = (
        q.get("Expires").and_then(|e| e.parse::<u64>().ok()),
        q.get("Signature"),
    ) else {
        return xml_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Missing Key-Pair-Id, Expires or Signature query parameter.",
        );
    };
    let data = canonical(obj.kind, &asset_id, &obj.version, &obj.path, expires);
    if !auth::verify(&ngc.secret, &data, sig) {
        return xml_error(
            StatusCode::FORBIDDEN,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        );
    }
    if expires <= now_ms() / 1000 {
        return xml_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let target = Target {
        op: "ngc.download",
        path: req.uri.path(),
        asset: Some(&asset_id),
        file: Some(&obj.path),
    };
    if let Some(f) = ngc.faults.take_early(&target) {
        return fault_response(&f);
    }
    let Some(asset) = ngc
        .catalog
        .find(obj.kind, &obj.org, obj.team.as_deref(), &obj.name)
    else {
        return xml_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    let Some(content) = asset
        .version(&obj.version)
        .and_then(|v| v.file(&obj.path))
        .map(|f| f.content.clone())
    else {
        return xml_error(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        );
    };
    // Build lazily generated content (archives) off the async threads.
    let size = {
        let c = content.clone();
        tokio::task::spawn_blocking(move || c.len())
            .await
            .unwrap_or(0)
    };
    let (status, start, end) = match parse_range(range_header, size) {
        RangeSpec::Full => (StatusCode::OK, 0, size),
        RangeSpec::Partial(a, b) => (StatusCode::PARTIAL_CONTENT, a, b + 1),
        RangeSpec::Unsatisfiable => {
            let mut r = xml_error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range is not satisfiable",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let len = end - start;
    let faults = BodyFaults::take(ngc, &target, start, len);
    for (k, v) in faults.describe() {
        fields.insert(k, v);
    }
    fields.insert("status".into(), json!(status.as_u16()));
    fields.insert("bytes".into(), json!(0));
    fields.insert("complete".into(), json!(len == 0));
    let log = StreamLog::new(app, std::mem::take(fields));
    let source = RangeSource {
        content,
        pos: start,
        end,
    };
    let mut resp = Response::new(faulty_body(source, start, Some(len), faults, log.clone()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::LAST_MODIFIED,
        HeaderValue::from_static(LAST_MODIFIED),
    );
    let etag = format!(
        "\"{:016x}\"",
        super::content::fnv1a64(
            format!("{asset_id}:{}/{}:{size}", obj.version, obj.path).as_bytes()
        )
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{size}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp.extensions_mut().insert(log.hook());
    resp
}

#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    Full,
    /// Inclusive bounds.
    Partial(u64, u64),
    Unsatisfiable,
}

/// One `bytes=` range (multiple ranges or malformed headers are ignored: full body, as S3).
pub fn parse_range(header: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') || size == 0 {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    match (a.trim(), b.trim()) {
        ("", n) => match n.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(n) => RangeSpec::Partial(size.saturating_sub(n), size - 1),
            Err(_) => RangeSpec::Full,
        },
        (a, b) => {
            let Ok(a) = a.parse::<u64>() else {
                return RangeSpec::Full;
            };
            let b = if b.is_empty() {
                size - 1
            } else {
                match b.parse::<u64>() {
                    Ok(b) if b >= a => b.min(size - 1),
                    _ => return RangeSpec::Full,
                }
            };
            if a >= size {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Partial(a, b)
            }
        }
    }
}

// ---- streamed bodies with faults ------------------------------------------------------------

/// Where bytes come from: at most `max` bytes per call, `None` at the end.
pub trait Source: Send + 'static {
    fn next_chunk(&mut self, max: usize) -> Option<Bytes>;
}

struct RangeSource {
    content: Content,
    pos: u64,
    end: u64,
}

impl Source for RangeSource {
    fn next_chunk(&mut self, max: usize) -> Option<Bytes> {
        if self.pos >= self.end {
            return None;
        }
        let n = (self.end - self.pos).min(max as u64) as usize;
        let b = self.content.read(self.pos, n);
        self.pos += b.len() as u64;
        Some(b)
    }
}

/// Body faults drawn for one response.
#[derive(Default)]
pub struct BodyFaults {
    drop_after: Option<u64>,
    stall: Option<(u64, u64)>,
    /// Absolute offset (file offset for downloads, body offset for `/zip`).
    corrupt: Option<u64>,
}

impl BodyFaults {
    /// Takes the armed body faults that apply to a body covering `[base, base + len)`.
    fn take(ngc: &super::NgcState, t: &Target<'_>, base: u64, len: u64) -> BodyFaults {
        let mut out = BodyFaults::default();
        if let Some(f) = ngc.faults.take(t, |f| {
            f.kind == NgcFaultKind::BodyDrop && f.after_bytes.unwrap_or(0) < len
        }) {
            out.drop_after = Some(f.after_bytes.unwrap_or(0));
        }
        if let Some(f) = ngc.faults.take(t, |f| {
            f.kind == NgcFaultKind::Stall && f.after_bytes.unwrap_or(0) < len.max(1)
        }) {
            out.stall = Some((f.after_bytes.unwrap_or(0), f.stall_ms.unwrap_or(5000)));
        }
        if let Some(f) = ngc.faults.take(t, |f: &NgcFault| {
            let k = f.offset.unwrap_or(0);
            f.kind == NgcFaultKind::Corrupt && k >= base && k < base + len
        }) {
            out.corrupt = Some(f.offset.unwrap_or(0));
        }
        out
    }

    fn describe(&self) -> Vec<(String, Value)> {
        let mut labels = Vec::new();
        let mut out = Vec::new();
        if let Some(n) = self.drop_after {
            labels.push(NgcFaultKind::BodyDrop.label());
            out.push(("drop_after_bytes".to_string(), json!(n)));
        }
        if let Some((n, ms)) = self.stall {
            labels.push(NgcFaultKind::Stall.label());
            out.push(("stall".to_string(), json!({"after_bytes": n, "ms": ms})));
        }
        if let Some(k) = self.corrupt {
            labels.push(NgcFaultKind::Corrupt.label());
            out.push(("corrupt_offset".to_string(), json!(k)));
        }
        if !labels.is_empty() {
            out.push(("fault".to_string(), json!(labels.join(","))));
        }
        out
    }
}

struct Streaming<S: Source> {
    source: S,
    base: u64,
    sent: u64,
    /// Body length when known (clients stop reading at Content-Length, so the end is marked
    /// when it is reached, not when the source says so).
    expected: Option<u64>,
    faults: BodyFaults,
    log: Arc<StreamLog>,
    failed: bool,
}

impl<S: Source> Drop for Streaming<S> {
    fn drop(&mut self) {
        self.log.finish();
    }
}

#[derive(Debug)]
struct InjectedDrop;

impl std::fmt::Display for InjectedDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("download dropped by NGC fault injection")
    }
}

impl std::error::Error for InjectedDrop {}

/// A streamed body: pulls from `source`, counts bytes into the log line and applies the body
/// faults (the connection is closed at `drop_after`, the byte at `corrupt` is flipped, the
/// stream pauses at `stall`).
pub fn faulty_body<S: Source>(
    source: S,
    base: u64,
    expected: Option<u64>,
    faults: BodyFaults,
    log: Arc<StreamLog>,
) -> Body {
    let state = Streaming {
        source,
        base,
        sent: 0,
        expected,
        faults,
        log,
        failed: false,
    };
    let stream = futures_util::stream::unfold(state, |mut st| async move {
        if st.failed {
            return None;
        }
        if let Some((at, ms)) = st.faults.stall
            && st.sent == at
        {
            st.faults.stall = None;
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        if st.faults.drop_after == Some(st.sent) {
            st.failed = true;
            st.log.set("dropped", json!(true));
            // Let hyper flush what was sent so far (as a real network would deliver it).
            tokio::time::sleep(Duration::from_millis(50)).await;
            return Some((Err(InjectedDrop), st));
        }
        let mut max = CHUNK as u64;
        if let Some(at) = st.faults.drop_after {
            max = max.min(at - st.sent);
        }
        if let Some((at, _)) = st.faults.stall {
            max = max.min(at - st.sent);
        }
        let Some(chunk) = st.source.next_chunk(max as usize) else {
            st.log.set("complete", json!(true));
            return None;
        };
        let start = st.base + st.sent;
        let n = chunk.len() as u64;
        let chunk = match st.faults.corrupt {
            Some(k) if k >= start && k < start + n => {
                let mut v = chunk.to_vec();
                v[(k - start) as usize] ^= 0xFF;
                Bytes::from(v)
            }
            _ => chunk,
        };
        st.sent += n;
        st.log.add_bytes(n);
        if st.expected == Some(st.sent) {
            st.log.set("complete", json!(true));
        }
        Some((Ok::<Bytes, InjectedDrop>(chunk), st))
    });
    Body::from_stream(stream)
}

// ---- /zip -----------------------------------------------------------------------------------

/// Streams every file of the version as one zip (stored entries, sizes and CRCs in data
/// descriptors, no Content-Length) — like NGC's `/zip`, which also has no length or checksum.
pub fn zip_response(
    app: &AppState,
    asset: Arc<Asset>,
    version: String,
    path: &str,
) -> Result<Response, NgcError> {
    let ver = asset.version(&version).expect("version checked");
    let overhead: u64 = ver
        .files
        .iter()
        .map(|f| 30 + 16 + 46 + 2 * f.path.len() as u64)
        .sum::<u64>()
        + 22;
    if ver.files.iter().map(|f| f.size()).sum::<u64>() + overhead >= u64::from(u32::MAX)
        || ver.files.len() >= usize::from(u16::MAX)
    {
        return Err(NgcError::not_found(
            "The zip of this version is not available (over 4 GiB); download the files one by one.",
        ));
    }
    let asset_id = asset.id();
    let target = Target {
        op: "ngc.zip",
        path,
        asset: Some(&asset_id),
        file: None,
    };
    let faults = BodyFaults::take(&app.ngc, &target, 0, u64::MAX / 2);
    let mut fields = Map::new();
    for (k, v) in faults.describe() {
        fields.insert(k, v);
    }
    fields.insert("asset".into(), json!(asset_id));
    fields.insert("kind".into(), json!(asset.kind.segment()));
    fields.insert("version".into(), json!(version));
    fields.insert("bytes".into(), json!(0));
    fields.insert("complete".into(), json!(false));
    let log = StreamLog::new(app, fields);
    let source = ZipSource {
        asset,
        version,
        index: 0,
        phase: Phase::Header,
        pending: Bytes::new(),
        offset: 0,
        crc: crc32fast::Hasher::new(),
        file_pos: 0,
        central: Vec::new(),
        entry_offset: 0,
    };
    let mut resp = Response::new(faulty_body(source, 0, None, faults, log.clone()));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"files.zip\""),
    );
    resp.extensions_mut().insert(log.hook());
    Ok(resp)
}

enum Phase {
    Header,
    Data,
    Descriptor,
    Central,
    Done,
}

struct ZipSource {
    asset: Arc<Asset>,
    version: String,
    index: usize,
    phase: Phase,
    pending: Bytes,
    offset: u64,
    crc: crc32fast::Hasher,
    file_pos: u64,
    central: Vec<u8>,
    entry_offset: u32,
}

impl ZipSource {
    /// Produces the next piece of the archive into `pending`; false at the end.
    fn produce(&mut self) -> bool {
        let ver = self.asset.version(&self.version).expect("version checked");
        loop {
            match self.phase {
                Phase::Header => {
                    let Some(f) = ver.files.get(self.index) else {
                        self.phase = Phase::Central;
                        continue;
                    };
                    self.entry_offset = self.offset as u32;
                    self.crc = crc32fast::Hasher::new();
                    self.file_pos = 0;
                    self.pending = Bytes::from(archive::local_header(&archive::Header {
                        name: &f.path,
                        method: 0,
                        flags: 0x0808,
                        crc: 0,
                        csize: 0,
                        usize: 0,
                        mode: archive::S_IFREG | 0o644,
                    }));
                    self.phase = Phase::Data;
                    return true;
                }
                Phase::Data => {
                    let f = &ver.files[self.index];
                    let chunk = f.content.read(self.file_pos, CHUNK);
                    if chunk.is_empty() {
                        self.phase = Phase::Descriptor;
                        continue;
                    }
                    self.crc.update(&chunk);
                    self.file_pos += chunk.len() as u64;
                    self.pending = chunk;
                    return true;
                }
                Phase::Descriptor => {
                    let f = &ver.files[self.index];
                    let crc = std::mem::take(&mut self.crc).finalize();
                    let size = self.file_pos as u32;
                    self.central.extend_from_slice(&archive::central_header(
                        &archive::Header {
                            name: &f.path,
                            method: 0,
                            flags: 0x0808,
                            crc,
                            csize: size,
                            usize: size,
                            mode: archive::S_IFREG | 0o644,
                        },
                        self.entry_offset,
                    ));
                    self.pending = Bytes::from(archive::data_descriptor(crc, size, size));
                    self.index += 1;
                    self.phase = Phase::Header;
                    return true;
                }
                Phase::Central => {
                    let cd_offset = self.offset as u32;
                    let mut out = std::mem::take(&mut self.central);
                    let cd_size = out.len() as u32;
                    out.extend_from_slice(&archive::end_of_central_directory(
                        ver.files.len(),
                        cd_size,
                        cd_offset,
                    ));
                    self.pending = Bytes::from(out);
                    self.phase = Phase::Done;
                    return true;
                }
                Phase::Done => return false,
            }
        }
    }
}

impl Source for ZipSource {
    fn next_chunk(&mut self, max: usize) -> Option<Bytes> {
        if self.pending.is_empty() && !self.produce() {
            return None;
        }
        let n = self.pending.len().min(max.max(1));
        let out = self.pending.split_to(n);
        self.offset += out.len() as u64;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=0-"), 10), RangeSpec::Partial(0, 9));
        assert_eq!(parse_range(Some("bytes=3-5"), 10), RangeSpec::Partial(3, 5));
        assert_eq!(
            parse_range(Some("bytes=3-50"), 10),
            RangeSpec::Partial(3, 9)
        );
        assert_eq!(parse_range(Some("bytes=-4"), 10), RangeSpec::Partial(6, 9));
        assert_eq!(parse_range(Some("bytes=10-"), 10), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeSpec::Full);
        assert_eq!(parse_range(Some("bytes=5-3"), 10), RangeSpec::Full);
    }

    #[test]
    fn object_paths_roundtrip() {
        let p = object_path(Kind::Model, "nvidia", Some("med"), "m", "1", "dir/a b.txt");
        assert_eq!(
            p,
            "/org/nvidia/team/med/models/m/versions/1/files/dir/a%20b.txt"
        );
        let o = parse_object(&p).unwrap();
        assert_eq!(
            (o.path.as_str(), o.team.as_deref()),
            ("dir/a b.txt", Some("med"))
        );
    }
}
