//! Blob REST requests: URL building, Shared Key / SAS / Entra ID authorization, retries and
//! error mapping, and the small operations (containers, small blobs, listing,
//! deletion). Large uploads are in `upload.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use time::OffsetDateTime;
use url::Url;

use super::error::BlobError;
use super::sign::{SharedKey, http_date, percent_encode, string_to_sign};
use super::xml;
use azure_core::credentials::TokenCredential;

use crate::Secret;
use crate::arm::RetryPolicy;
use crate::auth::ForceRefresh;

/// `x-ms-version` sent with every request. Supported by Azure and by every
/// Azurite 3.x release of the last years, and later than 2017-11-09, the first
/// version that accepts Entra ID (OAuth) bearer tokens.
pub const BLOB_API_VERSION: &str = "2021-08-06";

/// Token scope for Blob Storage: tokens for the `https://storage.azure.com` audience.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// Default block size for [`BlobClient::upload_file`]: 8 MiB.
pub const DEFAULT_BLOCK_SIZE: usize = 8 * 1024 * 1024;
/// Largest block the service accepts (API 2019-12-12 and later): 4000 MiB.
pub const MAX_BLOCK_SIZE: usize = 4000 * 1024 * 1024;
/// Most blocks one blob may have.
pub const MAX_BLOCKS: u64 = 50_000;

/// Stops a runaway `NextMarker` chain (5000 blobs per page).
const MAX_LIST_PAGES: usize = 100_000;

/// How requests to the Blob service are authorized.
#[derive(Clone)]
pub enum BlobCredential {
    /// Storage account name and base64 account key (Shared Key).
    SharedKey { account: String, key: Secret },
    /// A SAS token: the query string without the leading `?`
    /// (`sv=...&sp=...&sig=...`).
    Sas(Secret),
    /// Microsoft Entra ID: `Authorization: Bearer` with a token for
    /// [`STORAGE_SCOPE`], over https only (the service refuses bearer tokens over
    /// http). Access is what the principal's Storage Blob Data roles allow.
    Bearer(Arc<dyn TokenCredential>),
}

impl std::fmt::Debug for BlobCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SharedKey { account, .. } => write!(f, "SharedKey({account}, <redacted>)"),
            Self::Sas(_) => f.write_str("Sas(<redacted>)"),
            Self::Bearer(_) => f.write_str("Bearer(Entra ID)"),
        }
    }
}

impl PartialEq for BlobCredential {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                Self::SharedKey { account, key },
                Self::SharedKey {
                    account: a2,
                    key: k2,
                },
            ) => account == a2 && key == k2,
            (Self::Sas(a), Self::Sas(b)) => a == b,
            (Self::Bearer(a), Self::Bearer(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BlobOptions {
    /// Block size for [`BlobClient::upload_file`]; files up to this size go in
    /// one Put Blob. Memory used by one upload is at most
    /// `parallelism × block_size`.
    pub block_size: usize,
    /// Blocks uploaded (or blobs deleted) concurrently.
    pub parallelism: usize,
    /// Retries of 408/429/5xx and connection failures; `Retry-After` is
    /// honoured up to `max_retry_after`. The poll fields are unused here.
    pub retry: RetryPolicy,
}

impl Default for BlobOptions {
    fn default() -> Self {
        Self {
            block_size: DEFAULT_BLOCK_SIZE,
            parallelism: 4,
            retry: RetryPolicy::default(),
        }
    }
}

/// A blob as listed (or read with a HEAD request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobItem {
    pub name: String,
    pub size: u64,
    /// The blob's `Content-MD5` property, when it has one.
    pub md5: Option<[u8; 16]>,
    /// User metadata. Keys come back lower-case (they are sent as HTTP headers).
    pub metadata: BTreeMap<String, String>,
}

pub(crate) enum Auth {
    SharedKey(SharedKey),
    Sas(Secret),
    Bearer(Arc<dyn TokenCredential>),
}

pub(crate) struct Inner {
    /// Account URL with its path trimmed of a trailing `/`; no query.
    pub base: Url,
    pub auth: Auth,
    pub http: reqwest::Client,
    pub opts: BlobOptions,
}

/// Blob Storage REST client for one account, authorized with Shared Key or a
/// SAS. Works with `https://{account}.blob.core.windows.net` and with path-style
/// emulator URLs such as Azurite's `http://127.0.0.1:10000/devstoreaccount1`.
/// Cheap to clone.
#[derive(Clone)]
pub struct BlobClient {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match &self.inner.auth {
            Auth::SharedKey(k) => format!("SharedKey({})", k.account),
            Auth::Sas(_) => "Sas(<redacted>)".to_owned(),
            Auth::Bearer(_) => "Bearer(Entra ID)".to_owned(),
        };
        f.debug_struct("BlobClient")
            .field("account_url", &self.inner.base.as_str())
            .field("auth", &auth)
            .finish_non_exhaustive()
    }
}

/// One request; sent (and re-sent) by [`BlobClient::send`].
pub(crate) struct Request<'a> {
    /// Operation name for errors and logs, e.g. "Put Block".
    pub op: &'static str,
    pub method: Method,
    pub container: &'a str,
    pub blob: Option<&'a str>,
    /// Decoded query parameters (the SAS is added separately).
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

impl<'a> Request<'a> {
    pub fn new(
        op: &'static str,
        method: Method,
        container: &'a str,
        blob: Option<&'a str>,
    ) -> Self {
        Self {
            op,
            method,
            container,
            blob,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub fn query(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_owned(), v.into()));
        self
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Result<Self, BlobError> {
        let value = HeaderValue::from_str(value).map_err(|_| {
            BlobError::invalid_input(format!("{name}: value is not a valid HTTP header value"))
        })?;
        self.headers.insert(HeaderName::from_static(name), value);
        Ok(self)
    }

    pub fn metadata(mut self, metadata: &BTreeMap<String, String>) -> Result<Self, BlobError> {
        for (k, v) in validate_metadata(metadata)? {
            let name = HeaderName::from_bytes(format!("x-ms-meta-{k}").as_bytes())
                .map_err(|_| BlobError::invalid_input(format!("bad metadata key {k:?}")))?;
            let value = HeaderValue::from_str(&v)
                .map_err(|_| BlobError::invalid_input(format!("bad metadata value for {k:?}")))?;
            self.headers.insert(name, value);
        }
        Ok(self)
    }

    pub fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }
}

/// A successful (2xx) response.
pub(crate) struct Response {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }
}

impl BlobClient {
    /// `account_url`: `https://{account}.blob.core.windows.net`, or a path-style
    /// emulator URL like `http://127.0.0.1:10000/devstoreaccount1`. Fails on a
    /// malformed key, a URL that is not http(s) or carries a query (pass a SAS
    /// as [`BlobCredential::Sas`]), or out-of-range options.
    pub fn new(
        account_url: Url,
        credential: BlobCredential,
        http: reqwest::Client,
        opts: BlobOptions,
    ) -> Result<Self, BlobError> {
        if !matches!(account_url.scheme(), "http" | "https") || account_url.host().is_none() {
            return Err(BlobError::invalid_input(format!(
                "blob account URL {} must be http(s)://host[/path]",
                account_url.origin().ascii_serialization()
            )));
        }
        if account_url.query().is_some() || account_url.fragment().is_some() {
            return Err(BlobError::invalid_input(
                "blob account URL must not carry a query or fragment; pass a SAS as BlobCredential::Sas",
            ));
        }
        if opts.block_size == 0 || opts.block_size > MAX_BLOCK_SIZE {
            return Err(BlobError::invalid_input(format!(
                "block_size must be between 1 and {MAX_BLOCK_SIZE} bytes, not {}",
                opts.block_size
            )));
        }
        if opts.parallelism == 0 {
            return Err(BlobError::invalid_input("parallelism must be at least 1"));
        }
        let auth = match credential {
            BlobCredential::SharedKey { account, key } => {
                Auth::SharedKey(SharedKey::new(&account, &key)?)
            }
            BlobCredential::Sas(sas) => {
                let token = sas.expose().trim().trim_start_matches('?');
                if token.is_empty() || !token.contains('=') {
                    return Err(BlobError::invalid_input(
                        "the SAS token is empty or not a query string (sv=...&sig=...)",
                    ));
                }
                Auth::Sas(Secret::new(token))
            }
            BlobCredential::Bearer(credential) => {
                if account_url.scheme() != "https" {
                    return Err(BlobError::invalid_input(format!(
                        "Entra ID bearer tokens are sent only over https, and {} is http; \
                         use an https blob endpoint",
                        account_url.origin().ascii_serialization()
                    )));
                }
                Auth::Bearer(credential)
            }
        };
        let mut base = account_url;
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&path);
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                auth,
                http,
                opts,
            }),
        })
    }

    /// Whether requests carry an Entra ID bearer token.
    pub fn uses_entra_id(&self) -> bool {
        matches!(self.inner.auth, Auth::Bearer(_))
    }

    /// The account URL as given (without a trailing `/`).
    pub fn account_url(&self) -> &Url {
        &self.inner.base
    }

    pub fn options(&self) -> &BlobOptions {
        &self.inner.opts
    }

    /// The blob's URL, without any SAS: what Azure ML expects in e.g. `codeUri`.
    pub fn blob_url(&self, container: &str, blob_name: &str) -> Result<Url, BlobError> {
        let mut url = self.inner.base.clone();
        url.set_path(&self.path(container, Some(blob_name))?);
        Ok(url)
    }

    /// Creates `container` if it does not exist (an existing one is fine).
    pub async fn ensure_container(&self, container: &str) -> Result<(), BlobError> {
        let req = Request::new("Create Container", Method::PUT, container, None)
            .query("restype", "container");
        match self.send(req).await {
            Ok(_) => {
                tracing::debug!(container, "created blob container");
                Ok(())
            }
            Err(e) if e.is_conflict() && e.code == "ContainerAlreadyExists" => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Checks, without changing anything, that this client may read (`write: false`: List
    /// Blobs with `maxresults=1`) or write (`write: true`: Set Blob Metadata on a blob name
    /// nobody uses, with an `If-Match` no blob can satisfy) in `container`. The service
    /// authorizes before it looks the resource up, so 404 (no such container or blob) and 412
    /// (the blob exists; nothing was changed) both mean "allowed"; a principal without the
    /// needed Storage Blob Data role gets 403 `AuthorizationPermissionMismatch`.
    pub async fn probe_access(&self, container: &str, write: bool) -> Result<(), BlobError> {
        let req = if write {
            Request::new(
                "Set Blob Metadata (access probe)",
                Method::PUT,
                container,
                Some(".clara-access-probe"),
            )
            .query("comp", "metadata")
            .header("if-match", "\"0x0-clara-access-probe\"")?
        } else {
            Request::new("List Blobs (access probe)", Method::GET, container, None)
                .query("restype", "container")
                .query("comp", "list")
                .query("maxresults", "1")
        };
        match self.send(req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() || e.status == Some(412) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Size, `Content-MD5` and metadata of a blob (Get Blob Properties); 404 → `None`.
    pub async fn properties(
        &self,
        container: &str,
        blob_name: &str,
    ) -> Result<Option<BlobItem>, BlobError> {
        let req = Request::new(
            "Get Blob Properties",
            Method::HEAD,
            container,
            Some(blob_name),
        );
        let resp = match self.send(req).await {
            Ok(resp) => resp,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let size = resp
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                BlobError::new(
                    BlobError::INVALID_RESPONSE,
                    format!("Get Blob Properties {container}/{blob_name}: no Content-Length"),
                )
            })?;
        Ok(Some(BlobItem {
            name: blob_name.to_owned(),
            size,
            md5: resp.header("content-md5").and_then(xml::decode_md5),
            metadata: metadata_from_headers(&resp.headers),
        }))
    }

    /// Uploads a small object in one Put Blob (with `Content-MD5`), replacing
    /// any existing blob. For files, use [`upload_file`](Self::upload_file).
    pub async fn put_bytes(
        &self,
        container: &str,
        blob_name: &str,
        bytes: impl Into<Bytes>,
        content_type: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), BlobError> {
        let bytes = bytes.into();
        let md5 = md5_of(&bytes);
        self.put_blob(container, blob_name, bytes, &md5, content_type, metadata)
            .await
    }

    pub(crate) async fn put_blob(
        &self,
        container: &str,
        blob_name: &str,
        bytes: Bytes,
        md5: &[u8; 16],
        content_type: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), BlobError> {
        let req = Request::new("Put Blob", Method::PUT, container, Some(blob_name))
            .header("x-ms-blob-type", "BlockBlob")?
            .header("content-type", content_type)?
            .header("content-md5", &B64.encode(md5))?
            .metadata(metadata)?
            .body(bytes);
        self.send(req).await.map(drop)
    }

    /// Downloads a whole (small) blob into memory; 404 → `None`. Checked
    /// against the blob's `Content-MD5` when it has one.
    pub async fn get_bytes(
        &self,
        container: &str,
        blob_name: &str,
    ) -> Result<Option<Vec<u8>>, BlobError> {
        let req = Request::new("Get Blob", Method::GET, container, Some(blob_name));
        let resp = match self.send(req).await {
            Ok(resp) => resp,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        if let Some(expected) = resp.header("content-md5").and_then(xml::decode_md5)
            && md5_of(&resp.body) != expected
        {
            return Err(BlobError::new(
                BlobError::MD5_MISMATCH,
                format!(
                    "Get Blob {container}/{blob_name}: downloaded {} bytes do not match the blob's Content-MD5",
                    resp.body.len()
                ),
            ));
        }
        Ok(Some(resp.body.to_vec()))
    }

    /// Every blob whose name starts with `prefix` (List Blobs with metadata,
    /// following `NextMarker`), in name order. `prefix` is a plain string
    /// prefix: use `dir/` rather than `dir` to stay inside a "directory".
    pub async fn list(&self, container: &str, prefix: &str) -> Result<Vec<BlobItem>, BlobError> {
        let mut items = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let mut req = Request::new("List Blobs", Method::GET, container, None)
                .query("restype", "container")
                .query("comp", "list")
                .query("include", "metadata");
            if !prefix.is_empty() {
                req = req.query("prefix", prefix);
            }
            if let Some(m) = &marker {
                req = req.query("marker", m.clone());
            }
            let resp = self.send(req).await?;
            let page = xml::parse_list(&resp.body).map_err(|e| {
                BlobError::new(
                    BlobError::INVALID_RESPONSE,
                    format!("List Blobs {container}: {e}"),
                )
            })?;
            items.extend(page.items);
            match page.next_marker {
                None => return Ok(items),
                Some(next) if marker.as_ref() == Some(&next) => {
                    return Err(BlobError::new(
                        BlobError::INVALID_RESPONSE,
                        format!("List Blobs {container}: the service repeated marker {next:?}"),
                    ));
                }
                Some(next) => marker = Some(next),
            }
        }
        Err(BlobError::new(
            BlobError::INVALID_RESPONSE,
            format!("List Blobs {container}: more than {MAX_LIST_PAGES} pages"),
        ))
    }

    /// Deletes a blob and its snapshots. Returns `false` if it did not exist.
    pub async fn delete(&self, container: &str, blob_name: &str) -> Result<bool, BlobError> {
        let req = Request::new("Delete Blob", Method::DELETE, container, Some(blob_name))
            .header("x-ms-delete-snapshots", "include")?;
        match self.send(req).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Deletes every blob whose name starts with `prefix` (`parallelism` at a
    /// time) and returns how many this call deleted. An empty prefix is
    /// refused: it would empty the container.
    pub async fn delete_prefix(&self, container: &str, prefix: &str) -> Result<usize, BlobError> {
        if prefix.is_empty() {
            return Err(BlobError::invalid_input(format!(
                "refusing to delete every blob in container {container}: empty prefix"
            )));
        }
        let items = self.list(container, prefix).await?;
        let total = items.len();
        let deleted = futures::stream::iter(items)
            .map(|item| async move { self.delete(container, &item.name).await })
            .buffer_unordered(self.inner.opts.parallelism)
            .try_fold(0usize, |n, gone| async move { Ok(n + usize::from(gone)) })
            .await?;
        tracing::debug!(
            container,
            prefix,
            listed = total,
            deleted,
            "deleted blobs by prefix"
        );
        Ok(deleted)
    }

    /// Replaces a blob's user metadata (Set Blob Metadata).
    pub async fn set_metadata(
        &self,
        container: &str,
        blob_name: &str,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), BlobError> {
        let req = Request::new("Set Blob Metadata", Method::PUT, container, Some(blob_name))
            .query("comp", "metadata")
            .metadata(metadata)?;
        self.send(req).await.map(drop)
    }

    /// `{account path}/{container}[/{blob}]`, percent-encoded.
    pub(crate) fn path(&self, container: &str, blob: Option<&str>) -> Result<String, BlobError> {
        validate_container_name(container)?;
        let mut path = format!(
            "{}/{}",
            self.inner.base.path().trim_end_matches('/'),
            percent_encode(container, false)
        );
        if let Some(blob) = blob {
            validate_blob_name(blob)?;
            path.push('/');
            path.push_str(&percent_encode(blob, true));
        }
        Ok(path)
    }

    /// Sends `req`, retrying throttling, transient server errors and connection
    /// failures (all blob operations used here are idempotent). Each attempt is
    /// freshly dated and signed. Non-2xx responses become [`BlobError`]s.
    pub(crate) async fn send(&self, req: Request<'_>) -> Result<Response, BlobError> {
        let inner = &*self.inner;
        let context = match req.blob {
            Some(b) => format!("{} {}/{}", req.op, req.container, b),
            None => format!("{} {}", req.op, req.container),
        };
        let path = self.path(req.container, req.blob)?;
        let mut url = inner.base.clone();
        url.set_path(&path);
        if url.path() != path {
            // The URL parser normalized the path; the signature would not match.
            return Err(BlobError::invalid_input(format!(
                "{context}: unsupported name"
            )));
        }
        let mut query: Vec<String> = req
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k, false), percent_encode(v, false)))
            .collect();
        if let Auth::Sas(sas) = &inner.auth {
            query.push(sas.expose().to_owned());
        }
        if !query.is_empty() {
            url.set_query(Some(&query.join("&")));
        }

        let policy = &inner.opts.retry;
        let max_attempts = policy.max_attempts.max(1);
        let mut attempt = 0u32;
        let mut rejected_token: Option<String> = None;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let bearer = match &inner.auth {
                Auth::Bearer(credential) => {
                    let options = rejected_token
                        .as_deref()
                        .map(|r| ForceRefresh::options(Some(r)));
                    let token = credential
                        .get_token(&[STORAGE_SCOPE], options)
                        .await
                        .map_err(|e| {
                            BlobError::new(
                                BlobError::AUTHENTICATION_FAILED,
                                format!("{context}: getting an Entra ID token for storage: {e}"),
                            )
                        })?;
                    Some(token.token.secret().to_owned())
                }
                _ => None,
            };
            let started = Instant::now();
            let mut headers = req.headers.clone();
            headers.insert("x-ms-version", HeaderValue::from_static(BLOB_API_VERSION));
            headers.insert(
                "x-ms-date",
                HeaderValue::from_str(&http_date(OffsetDateTime::now_utc())).expect("ASCII date"),
            );
            match &req.body {
                Some(body) => {
                    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
                }
                None if req.method == Method::PUT || req.method == Method::POST => {
                    headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
                }
                None => {}
            }
            if let Some(token) = &bearer {
                let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| BlobError::invalid_input("the access token is not ASCII"))?;
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            if let Auth::SharedKey(key) = &inner.auth {
                let sts = string_to_sign(&req.method, &key.account, &path, &req.query, &headers);
                let mut value =
                    HeaderValue::from_str(&key.authorization(&sts)).expect("ASCII authorization");
                value.set_sensitive(true);
                headers.insert(AUTHORIZATION, value);
            }
            let mut builder = inner
                .http
                .request(req.method.clone(), url.clone())
                .headers(headers);
            if let Some(body) = &req.body {
                builder = builder.body(body.clone());
            }
            let outcome = match builder.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|body| (status, headers, body))
                }
                Err(e) => Err(e),
            };
            let (err, retry_headers) = match outcome {
                Ok((status, headers, body)) if (200..300).contains(&status) => {
                    tracing::debug!(
                        op = req.op,
                        container = req.container,
                        blob = req.blob,
                        status,
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "blob request"
                    );
                    return Ok(Response { headers, body });
                }
                Ok((status, headers, body)) => {
                    let err = BlobError::from_response(status, &headers, &body, &context);
                    if status == 401 && bearer.is_some() && !refreshed {
                        // An expired or revoked token: sign in again once, then retry.
                        refreshed = true;
                        rejected_token = bearer;
                        attempt -= 1;
                        tracing::debug!(
                            op = req.op,
                            "storage rejected the access token; refreshing it"
                        );
                        continue;
                    }
                    if !is_retryable_status(status) {
                        tracing::debug!(op = req.op, status, code = %err.code, "blob request failed");
                        return Err(err);
                    }
                    (err, Some(headers))
                }
                Err(e) => {
                    let retryable = !e.is_builder();
                    let err = BlobError::transport(e, &context);
                    if !retryable {
                        return Err(err);
                    }
                    (err, None)
                }
            };
            if attempt >= max_attempts {
                return Err(err);
            }
            let delay = policy.retry_delay(attempt, retry_headers.as_ref());
            tracing::warn!(
                op = req.op,
                container = req.container,
                blob = req.blob,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying blob request"
            );
            tokio::time::sleep(delay).await;
        }
    }
}

/// Throttling and transient server errors.
fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

pub(crate) fn md5_of(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

fn metadata_from_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("x-ms-meta-")?;
            Some((key.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect()
}

/// Checks metadata and returns it with lower-case keys (what the service
/// stores, since keys travel as HTTP header names). Keys must be C#
/// identifiers, unique ignoring case; values printable ASCII.
pub(crate) fn validate_metadata(
    metadata: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, BlobError> {
    let mut out = BTreeMap::new();
    for (k, v) in metadata {
        let mut chars = k.chars();
        let ok_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !ok_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(BlobError::invalid_input(format!(
                "metadata key {k:?} must start with a letter or '_' and hold only letters, digits and '_'"
            )));
        }
        if !v.bytes().all(|b| (0x20..0x7f).contains(&b)) || v.trim() != v {
            return Err(BlobError::invalid_input(format!(
                "metadata value for {k:?} must be printable ASCII without leading or trailing spaces"
            )));
        }
        if out.insert(k.to_ascii_lowercase(), v.clone()).is_some() {
            return Err(BlobError::invalid_input(format!(
                "metadata key {k:?} is repeated (keys ignore case)"
            )));
        }
    }
    Ok(out)
}

/// Azure's container naming rules: 3-63 characters, lower-case letters, digits
/// and single hyphens, starting and ending with a letter or digit; or one of
/// the special containers `$root`, `$web`, `$logs`.
pub(crate) fn validate_container_name(name: &str) -> Result<(), BlobError> {
    if matches!(name, "$root" | "$web" | "$logs") {
        return Ok(());
    }
    let b = name.as_bytes();
    let ok = (3..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
        && !name.contains("--");
    if ok {
        Ok(())
    } else {
        Err(BlobError::invalid_input(format!(
            "invalid container name {name:?}: use 3-63 lower-case letters, digits and single \
             hyphens, starting and ending with a letter or digit"
        )))
    }
}

/// Rejects names the service or the URL would change: empty, over 1024
/// characters, `.`/`..` segments (URL parsers resolve them), control characters.
pub(crate) fn validate_blob_name(name: &str) -> Result<(), BlobError> {
    let bad = |why: &str| {
        Err(BlobError::invalid_input(format!(
            "blob name {name:?} {why}"
        )))
    };
    if name.is_empty() {
        return bad("is empty");
    }
    if name.chars().count() > 1024 {
        return bad("is longer than 1024 characters");
    }
    if name.split('/').any(|seg| seg == "." || seg == "..") {
        return bad("has a '.' or '..' path segment");
    }
    if name.chars().any(char::is_control) {
        return bad("has a control character");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(url: &str, cred: BlobCredential) -> BlobClient {
        BlobClient::new(
            Url::parse(url).unwrap(),
            cred,
            reqwest::Client::new(),
            BlobOptions::default(),
        )
        .unwrap()
    }

    fn dev_key() -> BlobCredential {
        BlobCredential::SharedKey {
            account: "devstoreaccount1".into(),
            key: Secret::new(
                "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
            ),
        }
    }

    #[test]
    fn urls_for_azure_and_azurite() {
        let azure = client("https://acct.blob.core.windows.net", dev_key());
        assert_eq!(
            azure.blob_url("data", "dir/a b+c.bin").unwrap().as_str(),
            "https://acct.blob.core.windows.net/data/dir/a%20b%2Bc.bin"
        );
        let azurite = client("http://127.0.0.1:10000/devstoreaccount1/", dev_key());
        assert_eq!(
            azurite.blob_url("data", "x/ü.txt").unwrap().as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/data/x/%C3%BC.txt"
        );
        assert_eq!(
            azurite.path("data", None).unwrap(),
            "/devstoreaccount1/data"
        );
        assert!(azurite.blob_url("data", "a/../b").is_err());
        assert!(azurite.blob_url("data", "").is_err());
        assert!(azurite.blob_url("a/b", "x").is_err());
        for bad in ["ab", "Data", "a--b", "-ab", "ab-", &"a".repeat(64), "a_b"] {
            assert!(validate_container_name(bad).is_err(), "{bad}");
        }
        for good in [
            "abc",
            "a-b-c",
            "azureml-blobstore-0a1b",
            "$root",
            &"a".repeat(63),
        ] {
            assert!(validate_container_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn constructor_validates() {
        let url = Url::parse("https://acct.blob.core.windows.net").unwrap();
        let http = reqwest::Client::new();
        let new = |url: &str, cred, opts| {
            BlobClient::new(Url::parse(url).unwrap(), cred, http.clone(), opts)
        };
        assert!(new("ftp://x/", dev_key(), BlobOptions::default()).is_err());
        assert!(new("https://x/?sv=1", dev_key(), BlobOptions::default()).is_err());
        assert!(
            new(
                url.as_str(),
                BlobCredential::Sas(Secret::new("")),
                BlobOptions::default()
            )
            .is_err()
        );
        let zero = BlobOptions {
            block_size: 0,
            ..BlobOptions::default()
        };
        assert!(new(url.as_str(), dev_key(), zero).is_err());
        let sas = new(
            url.as_str(),
            BlobCredential::Sas(Secret::new("?sv=2021&sig=secret")),
            BlobOptions::default(),
        )
        .unwrap();
        let dbg = format!("{sas:?}");
        assert!(!dbg.contains("secret"), "{dbg}");
    }

    #[test]
    fn metadata_rules() {
        let m = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert_eq!(
            validate_metadata(&m(&[("Source", "ngc"), ("_v2", "a b")])).unwrap(),
            m(&[("source", "ngc"), ("_v2", "a b")])
        );
        assert!(validate_metadata(&m(&[("a-b", "x")])).is_err());
        assert!(validate_metadata(&m(&[("1a", "x")])).is_err());
        assert!(validate_metadata(&m(&[("a", "é")])).is_err());
        assert!(validate_metadata(&m(&[("a", " x")])).is_err());
        assert!(validate_metadata(&m(&[("A", "x"), ("a", "y")])).is_err());
    }
}
