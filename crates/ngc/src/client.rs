//! The NGC client: options, authenticated API calls, and resolving an asset to a manifest.

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use clara_azure::Secret;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use url::Url;

use crate::auth::{Auth, Scope};
use crate::error::{NgcError, redact_url};
use crate::manifest::{ManifestFile, ResolvedAsset, SingleFile, safe_rel_path};
use crate::retry::Retry;
use crate::source::{AssetRef, api_url};

pub const DEFAULT_API_URL: &str = "https://api.ngc.nvidia.com";
pub const DEFAULT_AUTH_URL: &str = "https://authn.nvidia.com";
/// Key variables in the order ngcsdk reads them (`NGC_APP_KEY` is deprecated).
pub const API_KEY_ENV: [&str; 3] = ["NGC_CLI_API_KEY", "NGC_API_KEY", "NGC_APP_KEY"];
/// The only status in which NGC lets a version be downloaded.
const UPLOAD_COMPLETE: &str = "UPLOAD_COMPLETE";
/// Entries per listing page (ngcsdk uses 1000 for files).
const PAGE_SIZE: usize = 1000;
/// Stop paging after this many pages: a listing that never ends is a broken server.
const MAX_PAGES: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct NgcOptions {
    /// NGC API base, default [`DEFAULT_API_URL`]. May carry a path prefix (emulators).
    pub api_url: Url,
    /// authn base, default [`DEFAULT_AUTH_URL`]; tokens come from `{auth_url}/token`.
    pub auth_url: Url,
    /// `None`: public assets only, no `Authorization` is ever sent.
    pub api_key: Option<Secret>,
    /// The caller's NGC org/team, sent as `nv-ngc-org` / `nv-ngc-team` to the API as
    /// ngcsdk does. Token scopes use the *asset's* org/team (also as ngcsdk does).
    pub org: Option<String>,
    pub team: Option<String>,
    /// Use `clara_azure::http::build_http_client`: it must not follow redirects (the
    /// client follows them itself so `Authorization` never leaves the API origin).
    pub http: reqwest::Client,
    /// Files downloaded at once (at least 1).
    pub parallelism: usize,
    /// Tries per request and per file without progress, the first included.
    pub retry_attempts: u32,
    /// First backoff between tries; doubles each time, jittered, capped at 30 s.
    pub retry_base_delay: Duration,
}

impl NgcOptions {
    /// Production hosts, no key, 4 files at once, 5 tries (ngcsdk's download retries).
    pub fn new(http: reqwest::Client) -> Self {
        NgcOptions {
            api_url: Url::parse(DEFAULT_API_URL).expect("constant URL"),
            auth_url: Url::parse(DEFAULT_AUTH_URL).expect("constant URL"),
            api_key: None,
            org: None,
            team: None,
            http,
            parallelism: 4,
            retry_attempts: 5,
            retry_base_delay: Duration::from_millis(500),
        }
    }
}

/// The key from `NGC_CLI_API_KEY`, `NGC_API_KEY` or `NGC_APP_KEY`: the first non-empty one.
pub fn api_key_from_env() -> Option<Secret> {
    API_KEY_ENV
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .map(Secret::new)
        .find(|s| !s.is_empty())
}

pub struct NgcClient {
    pub(crate) options: NgcOptions,
    pub(crate) auth: Auth,
    pub(crate) retry: Retry,
}

impl std::fmt::Debug for NgcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NgcClient")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl NgcClient {
    pub fn new(mut options: NgcOptions) -> Self {
        options.parallelism = options.parallelism.max(1);
        let retry = Retry::new(options.retry_attempts, options.retry_base_delay);
        let auth = Auth::new(
            options.api_key.take(),
            options.auth_url.clone(),
            options.http.clone(),
            retry.clone(),
        );
        NgcClient {
            options,
            auth,
            retry,
        }
    }

    /// Looks the asset up: picks the newest complete version when none is given, refuses
    /// versions not `UPLOAD_COMPLETE`, and lists every file with size and sha256. When the
    /// listing is unavailable (404 or empty) it falls back to the version's `/zip`.
    pub async fn resolve(&self, asset: &AssetRef) -> Result<ResolvedAsset, NgcError> {
        let version = match &asset.version {
            Some(v) => v.clone(),
            None => self.latest_version(asset).await?,
        };
        let asset = asset.with_version(version.clone());
        self.check_version(&asset, &version).await?;
        match self.list_files(&asset, &version).await? {
            Some(files) if !files.is_empty() => Ok(ResolvedAsset::from_manifest(asset, files)),
            _ => {
                tracing::warn!(asset = %asset, "NGC gave no file listing; falling back to the unverified /zip download");
                let url = api_url(
                    &self.options.api_url,
                    &asset.zip_segments(&version, self.scoped()),
                    &[],
                );
                let single = SingleFile {
                    url,
                    file_name: format!("{}_v{}.zip", asset.name, version),
                    ngc_api: true,
                    expected_sha256: None,
                };
                Ok(ResolvedAsset::from_single(Some(asset), single))
            }
        }
    }

    /// An https URL: an NGC asset URL (see [`AssetRef::from_url`]) resolves as that asset,
    /// with the API configured in the options rather than the URL's host; any other URL
    /// is one file fetched without NGC credentials, verified against `expected_sha256`
    /// when given. Plain http is accepted only for loopback hosts (tests, emulators).
    pub async fn resolve_url(
        &self,
        url: &Url,
        expected_sha256: Option<[u8; 32]>,
    ) -> Result<ResolvedAsset, NgcError> {
        if let Some(asset) = AssetRef::from_url(url) {
            return self.resolve(&asset).await;
        }
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            other => {
                return Err(NgcError::InvalidSource(format!(
                    "{}: only https URLs can be downloaded (got {other})",
                    redact_url(url)
                )));
            }
        }
        let file_name = url
            .path_segments()
            .and_then(|mut s| s.rfind(|p| !p.is_empty()))
            .and_then(crate::source::decode)
            .filter(|n| safe_rel_path(n).is_ok_and(|p| p == *n && !p.contains('/')))
            .unwrap_or_else(|| "download".to_owned());
        Ok(ResolvedAsset::from_single(
            None,
            SingleFile {
                url: url.clone(),
                file_name,
                ngc_api: false,
                expected_sha256,
            },
        ))
    }

    pub(crate) fn scoped(&self) -> bool {
        self.auth.has_key()
    }

    pub(crate) fn scope(asset: &AssetRef) -> Scope {
        Scope {
            org: asset.org.clone(),
            team: asset.team.clone(),
        }
    }

    /// Newest version with status `UPLOAD_COMPLETE`, by `createdDate` (ISO 8601, so it
    /// sorts as text); ties and missing dates keep the server's order (newest semver first).
    async fn latest_version(&self, asset: &AssetRef) -> Result<String, NgcError> {
        let what = format!("{} {}", asset.kind, asset);
        let key = format!("{}Versions", asset.kind.json_prefix());
        let segments = asset.versions_segments(self.scoped());
        let pages = self
            .get_pages(
                asset,
                &segments,
                &[("sort-order", "SEMVER_DESC".to_owned())],
                &what,
            )
            .await?
            .ok_or_else(|| not_found(&what, self.scoped()))?;
        let mut best: Option<(String, String)> = None; // (createdDate, versionId)
        for page in &pages {
            for v in page
                .get(&key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if v.get("status").and_then(Value::as_str) != Some(UPLOAD_COMPLETE) {
                    continue;
                }
                let Some(id) = v.get("versionId").and_then(Value::as_str) else {
                    continue;
                };
                let created = v
                    .get("createdDate")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                if best.as_ref().is_none_or(|(d, _)| created > *d) {
                    best = Some((created, id.to_owned()));
                }
            }
        }
        let (_, version) = best.ok_or(NgcError::NoCompleteVersion { asset: what })?;
        tracing::info!(asset = %asset, version = %version, "no version given; using the newest complete one");
        Ok(version)
    }

    async fn check_version(&self, asset: &AssetRef, version: &str) -> Result<(), NgcError> {
        let what = format!("{} {}", asset.kind, asset);
        let url = api_url(
            &self.options.api_url,
            &asset.version_segments(version, self.scoped()),
            &[],
        );
        let resp = self.api_get(asset, &url, &what).await?;
        let resp = match resp.status() {
            s if s.is_success() => resp,
            StatusCode::NOT_FOUND => return Err(not_found(&what, self.scoped())),
            _ => return Err(self.status_error(asset, &what, &url, resp).await),
        };
        let body = json_body(resp, &what, &url).await?;
        let key = format!("{}Version", asset.kind.json_prefix());
        let status = body
            .get(&key)
            .and_then(|v| v.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("missing");
        if status != UPLOAD_COMPLETE {
            return Err(NgcError::VersionNotReady {
                asset: what,
                status: status.to_owned(),
            });
        }
        Ok(())
    }

    /// Every page of the files listing; `None` when NGC has no listing for it (404).
    async fn list_files(
        &self,
        asset: &AssetRef,
        version: &str,
    ) -> Result<Option<Vec<ManifestFile>>, NgcError> {
        let what = format!("file list of {} {}", asset.kind, asset);
        let key = format!("{}Files", asset.kind.json_prefix());
        let segments = asset.files_segments(version, self.scoped());
        let Some(pages) = self.get_pages(asset, &segments, &[], &what).await? else {
            return Ok(None);
        };
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        for page in &pages {
            for f in page
                .get(&key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let file = manifest_file(asset, f)?;
                if !seen.insert(file.path.clone()) {
                    return Err(unsafe_path(asset, &file.path, "it is listed twice"));
                }
                files.push(file);
            }
        }
        // `x.part` would collide with the temporary file of `x`.
        for f in &files {
            if let Some(stem) = f.path.strip_suffix(".part")
                && seen.contains(stem)
            {
                return Err(unsafe_path(
                    asset,
                    &f.path,
                    "it collides with the partial download of another file",
                ));
            }
        }
        Ok(Some(files))
    }

    /// The presigned object-store URL of every file of `asset` at `version`, from the
    /// manifest ngcsdk downloads with ([`AssetRef::download_urls_segments`]), paged like the
    /// files listing. Files the pages leave out are asked for one by one (`?path=`).
    pub(crate) async fn signed_urls(
        &self,
        asset: &AssetRef,
        version: &str,
        paths: &[String],
    ) -> Result<std::collections::HashMap<String, Url>, NgcError> {
        let what = format!("download URLs of {} {}", asset.kind, asset);
        let segments = asset.download_urls_segments(version, self.scoped());
        let pages = self
            .get_pages(asset, &segments, &[], &what)
            .await?
            .ok_or_else(|| not_found(&what, self.scoped()))?;
        let mut urls = std::collections::HashMap::new();
        for page in &pages {
            let list = |k: &str| -> Vec<String> {
                page.get(k)
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            };
            for (path, url) in list("filepath").into_iter().zip(list("urls")) {
                let Ok(path) = safe_rel_path(&path) else {
                    continue; // never used: only listed (and checked) paths are fetched
                };
                urls.insert(path, self.signed_url(&what, &url)?);
            }
        }
        for path in paths {
            if !urls.contains_key(path) {
                let url = self.signed_url_for(asset, version, path).await?;
                urls.insert(path.clone(), url);
            }
        }
        Ok(urls)
    }

    /// One file's presigned URL (`?path=P`), e.g. again after the first one expired.
    pub(crate) async fn signed_url_for(
        &self,
        asset: &AssetRef,
        version: &str,
        path: &str,
    ) -> Result<Url, NgcError> {
        let what = format!("download URL of file {path} of {} {}", asset.kind, asset);
        let url = api_url(
            &self.options.api_url,
            &asset.download_urls_segments(version, self.scoped()),
            &[("path", path.to_owned())],
        );
        let resp = self.api_get(asset, &url, &what).await?;
        if !resp.status().is_success() {
            return Err(self.status_error(asset, &what, &url, resp).await);
        }
        let body = json_body(resp, &what, &url).await?;
        let first = body
            .get("urls")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(Value::as_str)
            .ok_or_else(|| NgcError::Protocol {
                what: what.clone(),
                url: redact_url(&url),
                message: "the answer has no \"urls\"".to_owned(),
            })?;
        self.signed_url(&what, first)
    }

    /// Parses a presigned URL: https, or http only when the API itself is plain http (an
    /// emulator); never a downgrade.
    fn signed_url(&self, what: &str, raw: &str) -> Result<Url, NgcError> {
        let url = self
            .options
            .api_url
            .join(raw)
            .map_err(|e| NgcError::Protocol {
                what: what.to_owned(),
                url: redact_url(&self.options.api_url),
                message: format!("unusable download URL: {e}"),
            })?;
        match url.scheme() {
            "https" => Ok(url),
            "http" if self.options.api_url.scheme() == "http" => Ok(url),
            other => Err(NgcError::Protocol {
                what: what.to_owned(),
                url: redact_url(&url),
                message: format!("refusing a {other} download URL from an https API"),
            }),
        }
    }

    /// GETs `segments` page by page: page 0 without `page-number`, then `1..totalPages`.
    /// `None` on 404.
    async fn get_pages(
        &self,
        asset: &AssetRef,
        segments: &[String],
        extra_query: &[(&str, String)],
        what: &str,
    ) -> Result<Option<Vec<Value>>, NgcError> {
        let mut pages = Vec::new();
        let mut total_pages = 1u64;
        let mut page = 0u64;
        while page < total_pages.min(MAX_PAGES) {
            let mut query: Vec<(&str, String)> = vec![("page-size", PAGE_SIZE.to_string())];
            query.extend(extra_query.iter().cloned());
            if page > 0 {
                query.push(("page-number", page.to_string()));
            }
            let url = api_url(&self.options.api_url, segments, &query);
            let resp = self.api_get(asset, &url, what).await?;
            match resp.status() {
                s if s.is_success() => {}
                StatusCode::NOT_FOUND if page == 0 => return Ok(None),
                _ => return Err(self.status_error(asset, what, &url, resp).await),
            }
            let body = json_body(resp, what, &url).await?;
            if page == 0 {
                total_pages = body
                    .get("paginationInfo")
                    .and_then(|p| p.get("totalPages"))
                    .and_then(Value::as_u64)
                    .unwrap_or(1);
            }
            pages.push(body);
            page += 1;
        }
        Ok(Some(pages))
    }

    /// One API GET with credentials (renewing the token once after a 401) and retries.
    pub(crate) async fn api_get(
        &self,
        asset: &AssetRef,
        url: &Url,
        what: &str,
    ) -> Result<Response, NgcError> {
        let scope = Self::scope(asset);
        let mut auth = self.auth.header(&scope).await?;
        let mut renewed = false;
        loop {
            tracing::debug!(url = %redact_url(url), "NGC API request");
            let resp = self
                .retry
                .send(what, url, || self.api_request(url, auth.as_ref()))
                .await?;
            if resp.status() == StatusCode::UNAUTHORIZED
                && !renewed
                && self.auth.can_renew()
                && let Some(stale) = &auth
            {
                tracing::debug!(url = %redact_url(url), "NGC answered 401; renewing the token once");
                auth = self.auth.renew(&scope, stale).await?;
                renewed = true;
                continue;
            }
            return Ok(resp);
        }
    }

    /// A GET to the NGC API origin, with its credentials and org/team headers.
    pub(crate) fn api_request(
        &self,
        url: &Url,
        auth: Option<&HeaderValue>,
    ) -> reqwest::RequestBuilder {
        let mut rb = self.options.http.get(url.clone());
        if let Some(h) = auth {
            rb = rb.header(AUTHORIZATION, h.clone());
        }
        if let Some(org) = &self.options.org {
            rb = rb.header("nv-ngc-org", org);
            if let Some(team) = &self.options.team {
                rb = rb.header("nv-ngc-team", team);
            }
        }
        rb
    }

    /// Whether `url` is on the NGC API origin (the only place credentials may go).
    pub(crate) fn is_api_origin(&self, url: &Url) -> bool {
        url.origin() == self.options.api_url.origin()
    }

    /// Words a failed API answer for a Terraform user.
    pub(crate) async fn status_error(
        &self,
        asset: &AssetRef,
        what: &str,
        url: &Url,
        resp: Response,
    ) -> NgcError {
        let status = resp.status().as_u16();
        match status {
            401 if self.auth.has_key() => NgcError::ApiKeyRejected {
                what: what.to_owned(),
            },
            401 => NgcError::ApiKeyRequired {
                what: what.to_owned(),
            },
            403 => NgcError::Forbidden {
                what: what.to_owned(),
                org: asset.org.clone(),
                team: asset.team.clone(),
            },
            404 => not_found(what, self.auth.has_key()),
            412 => NgcError::LicenseNotAccepted {
                asset: format!("{} {}", asset.kind, asset),
                catalog_url: asset.catalog_url(),
            },
            _ => NgcError::Http {
                what: what.to_owned(),
                status,
                url: redact_url(url),
                detail: error_detail(resp).await,
            },
        }
    }
}

fn not_found(what: &str, has_key: bool) -> NgcError {
    let hint = if has_key {
        String::new()
    } else {
        " (if it is not public, set ngc.api_key or NGC_CLI_API_KEY)".to_owned()
    };
    NgcError::NotFound {
        what: what.to_owned(),
        hint,
    }
}

fn unsafe_path(asset: &AssetRef, path: &str, reason: &str) -> NgcError {
    NgcError::UnsafePath {
        asset: format!("{} {}", asset.kind, asset),
        path: path.to_owned(),
        reason: reason.to_owned(),
    }
}

/// One `modelFiles`/`recipeFiles` entry: `path`, `sizeInBytes`, `sha256_base64`.
fn manifest_file(asset: &AssetRef, f: &Value) -> Result<ManifestFile, NgcError> {
    let raw = f.get("path").and_then(Value::as_str).unwrap_or("");
    let path = safe_rel_path(raw).map_err(|reason| unsafe_path(asset, raw, reason))?;
    let size = f
        .get("sizeInBytes")
        .and_then(Value::as_u64)
        .ok_or_else(|| unsafe_path(asset, &path, "it has no valid sizeInBytes"))?;
    let sha256 = match f
        .get("sha256_base64")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(b64) => Some(decode_sha256(b64).ok_or_else(|| {
            unsafe_path(
                asset,
                &path,
                "its sha256_base64 is not the base64 of a 32-byte digest",
            )
        })?),
        None => {
            tracing::warn!(asset = %asset, file = %path, "NGC lists no sha256 for this file; it will be downloaded unverified");
            None
        }
    };
    Ok(ManifestFile { path, size, sha256 })
}

fn decode_sha256(b64: &str) -> Option<[u8; 32]> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    bytes.try_into().ok()
}

async fn json_body(resp: Response, what: &str, url: &Url) -> Result<Value, NgcError> {
    resp.json().await.map_err(|e| NgcError::Protocol {
        what: what.to_owned(),
        url: redact_url(url),
        message: format!("not the expected JSON ({})", crate::retry::without_url(&e)),
    })
}

/// NGC's `requestStatus.statusDescription`, or the start of the body.
async fn error_detail(resp: Response) -> String {
    let Ok(text) = resp.text().await else {
        return String::new();
    };
    let described = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
        v.get("requestStatus")
            .and_then(|s| s.get("statusDescription"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let detail = described.unwrap_or(text);
    let detail: String = detail.trim().chars().take(300).collect();
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}
