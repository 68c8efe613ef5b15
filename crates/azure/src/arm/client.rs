//! ARM requests: URL building, bearer auth, retries and error mapping.

use std::sync::Arc;
use std::time::Instant;

use azure_core::credentials::TokenCredential;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use super::error::{ArmError, request_id};
use super::redact::loggable_body;
use super::retry::{RetryPolicy, is_retryable_status};
use crate::auth::ForceRefresh;

pub const DEFAULT_ARM_ENDPOINT: &str = "https://management.azure.com";
pub const DEFAULT_API_VERSION: &str = "2025-12-01";
/// Token scope for ARM. Independent of `endpoint` so an emulator endpoint still
/// asks for real ARM tokens.
pub const DEFAULT_ARM_SCOPE: &str = "https://management.azure.com/.default";

/// Stops a runaway `nextLink` chain.
const MAX_PAGES: usize = 1000;

#[derive(Clone)]
pub struct ArmOptions {
    pub endpoint: Url,
    pub api_version: String,
    pub scope: String,
    pub credential: Arc<dyn TokenCredential>,
    pub http: reqwest::Client,
    pub retry: RetryPolicy,
}

impl ArmOptions {
    /// Options for `endpoint` (e.g. [`DEFAULT_ARM_ENDPOINT`] or an emulator)
    /// and `api_version` (e.g. [`DEFAULT_API_VERSION`]), with the ARM token
    /// scope and default retries.
    pub fn new(
        endpoint: Url,
        api_version: impl Into<String>,
        credential: Arc<dyn TokenCredential>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            endpoint,
            api_version: api_version.into(),
            scope: DEFAULT_ARM_SCOPE.to_owned(),
            credential,
            http,
            retry: RetryPolicy::default(),
        }
    }

    /// Public-cloud endpoint and api-version 2025-12-01.
    pub fn public_cloud(credential: Arc<dyn TokenCredential>, http: reqwest::Client) -> Self {
        let endpoint = Url::parse(DEFAULT_ARM_ENDPOINT).expect("valid constant URL");
        Self::new(endpoint, DEFAULT_API_VERSION, credential, http)
    }
}

/// A successful (2xx) ARM response.
#[derive(Debug, Clone)]
pub struct ArmResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// Parsed JSON body; `None` when empty or not JSON.
    pub body: Option<Value>,
    pub request_id: Option<String>,
}

impl ArmResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    }

    /// The body, or `Value::Null` when there was none.
    pub fn into_json(self) -> Value {
        self.body.unwrap_or(Value::Null)
    }
}

/// Which failures may be retried without risking a duplicated side effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// GET/PUT/PATCH/DELETE and POSTs the caller declared idempotent: retry
    /// every transient failure, including a dropped connection mid-request.
    Idempotent,
    /// Other POSTs: retry only when the request surely was not processed
    /// (429, or the connection could not be established).
    NotProcessed,
}

/// ARM REST client. Cheap to clone; share one per provider configuration.
#[derive(Clone)]
pub struct ArmClient {
    pub(crate) opts: Arc<ArmOptions>,
}

impl std::fmt::Debug for ArmClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArmClient")
            .field("endpoint", &self.opts.endpoint.as_str())
            .field("api_version", &self.opts.api_version)
            .finish_non_exhaustive()
    }
}

impl ArmClient {
    pub fn new(options: ArmOptions) -> Self {
        Self {
            opts: Arc::new(options),
        }
    }

    pub fn endpoint(&self) -> &Url {
        &self.opts.endpoint
    }

    /// The same credential, scope and retries against another Azure service endpoint that
    /// accepts ARM tokens, such as a workspace's MLflow tracking endpoint. The token is sent
    /// only to that endpoint's origin.
    pub fn with_endpoint(&self, endpoint: Url) -> Self {
        let opts = ArmOptions {
            endpoint,
            api_version: self.opts.api_version.clone(),
            scope: self.opts.scope.clone(),
            credential: self.opts.credential.clone(),
            http: self.opts.http.clone(),
            retry: self.opts.retry.clone(),
        };
        Self::new(opts)
    }

    /// The same client asking for tokens of another scope (e.g. the Azure ML data plane's).
    pub fn with_scope(&self, scope: impl Into<String>) -> Self {
        let mut opts = (*self.opts).clone();
        opts.scope = scope.into();
        Self::new(opts)
    }

    pub fn scope(&self) -> &str {
        &self.opts.scope
    }

    pub fn api_version(&self) -> &str {
        &self.opts.api_version
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.opts.retry
    }

    /// Resolves an ARM id path (`/subscriptions/...`, may carry a query) or an
    /// absolute URL from a `nextLink`/LRO header, adding `api-version` when
    /// absent. Absolute URLs must share the endpoint's origin so the bearer
    /// token never goes elsewhere.
    pub fn url(&self, path: &str) -> Result<Url, ArmError> {
        let invalid = |m: String| ArmError::new("InvalidRequest", m);
        let mut url = if path.starts_with("https://") || path.starts_with("http://") {
            let url = Url::parse(path).map_err(|e| invalid(format!("bad URL {path}: {e}")))?;
            let base = &self.opts.endpoint;
            if url.origin() != base.origin() {
                return Err(invalid(format!(
                    "refusing to send ARM credentials to {}, which is not the ARM endpoint {}",
                    url.origin().ascii_serialization(),
                    base.origin().ascii_serialization()
                )));
            }
            url
        } else {
            // Concatenate rather than `join` so an endpoint path prefix survives.
            let base = self.opts.endpoint.as_str().trim_end_matches('/');
            let path = path.trim_start_matches('/');
            Url::parse(&format!("{base}/{path}"))
                .map_err(|e| invalid(format!("bad ARM path {path}: {e}")))?
        };
        if !url.query_pairs().any(|(k, _)| k == "api-version") {
            url.query_pairs_mut()
                .append_pair("api-version", &self.opts.api_version);
        }
        Ok(url)
    }

    /// GET; 404 → `None`.
    pub async fn get_json(&self, path: &str) -> Result<Option<Value>, ArmError> {
        match self
            .request(Method::GET, path, None, Retry::Idempotent)
            .await
        {
            Ok(resp) => Ok(Some(resp.into_json())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// GET a list and follow `nextLink`s; returns all `value` items.
    pub async fn list_json(&self, path: &str) -> Result<Vec<Value>, ArmError> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        for _ in 0..MAX_PAGES {
            let Some(page_path) = next.take() else {
                return Ok(items);
            };
            let page = self
                .request(Method::GET, &page_path, None, Retry::Idempotent)
                .await?
                .into_json();
            if let Some(values) = page.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            next = page
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
        }
        Err(ArmError::new(
            ArmError::INVALID_RESPONSE,
            format!("more than {MAX_PAGES} pages listing {path}"),
        ))
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Result<ArmResponse, ArmError> {
        self.request(Method::PUT, path, Some(body), Retry::Idempotent)
            .await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Result<ArmResponse, ArmError> {
        self.request(Method::PATCH, path, Some(body), Retry::Idempotent)
            .await
    }

    /// DELETE with extra query parameters (e.g. `underlyingResourceAction`).
    /// A 404 is returned as an error; see `delete_and_wait` for "already gone".
    pub async fn delete(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<ArmResponse, ArmError> {
        let mut url = self.url(path)?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(Method::DELETE, url, None, Retry::Idempotent)
            .await
    }

    /// POST an action. Not assumed idempotent: retried only on 429 or when the
    /// connection could not be opened, never after the request may have been
    /// processed (5xx, timeout, dropped connection).
    pub async fn post_json(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ArmResponse, ArmError> {
        self.request(Method::POST, path, body, Retry::NotProcessed)
            .await
    }

    /// POST an action the caller knows is idempotent (e.g. `listKeys`,
    /// `listSecrets`, `cancel`): retried like GET.
    pub async fn post_json_idempotent(
        &self,
        path: &str,
        body: Option<&Value>,
    ) -> Result<ArmResponse, ArmError> {
        self.request(Method::POST, path, body, Retry::Idempotent)
            .await
    }

    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<ArmResponse, ArmError> {
        let url = self.url(path)?;
        self.send(method, url, body, retry).await
    }

    async fn token(&self, rejected: Option<&str>) -> Result<String, ArmError> {
        let options = rejected.map(|r| ForceRefresh::options(Some(r)));
        self.opts
            .credential
            .get_token(&[self.opts.scope.as_str()], options)
            .await
            .map(|t| t.token.secret().to_owned())
            .map_err(|e| ArmError::new(ArmError::AUTHENTICATION_FAILED, e.to_string()))
    }

    /// One logical request: retries transient failures per `retry` and the
    /// policy, and after a 401 refreshes the token once and tries again.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        retry: Retry,
    ) -> Result<ArmResponse, ArmError> {
        let policy = &self.opts.retry;
        let max_attempts = policy.max_attempts.max(1);
        let body_bytes =
            body.map(|b| serde_json::to_vec(b).expect("serde_json::Value always serializes"));
        if let Some(b) = &body_bytes {
            tracing::trace!(method = %method, path = url.path(), body = %loggable_body(b), "ARM request body");
        }
        let mut attempt = 0u32;
        let mut rejected_token: Option<String> = None;
        let mut refreshed = false;
        loop {
            attempt += 1;
            let token = self.token(rejected_token.as_deref()).await?;
            let mut req = self
                .opts
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(&token)
                .header(
                    reqwest::header::ACCEPT,
                    HeaderValue::from_static("application/json"),
                );
            if let Some(b) = &body_bytes {
                req = req
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    )
                    .body(b.clone());
            }
            let started = Instant::now();
            let outcome = match req.send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    resp.bytes().await.map(|b| (status, headers, b))
                }
                Err(e) => Err(e),
            };
            let elapsed_ms = started.elapsed().as_millis() as u64;

            let (status, headers, bytes) = match outcome {
                Ok(parts) => parts,
                Err(err) => {
                    // Connect errors mean nothing reached the server.
                    let safe = retry == Retry::Idempotent || err.is_connect();
                    tracing::debug!(method = %method, path = url.path(), attempt, elapsed_ms, error = %err, "ARM request failed");
                    if safe && attempt < max_attempts {
                        let delay = policy.retry_delay(attempt, None);
                        tracing::warn!(method = %method, path = url.path(), attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying ARM request after connection error");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    let mut e = ArmError::transport(&err);
                    if attempt > 1 {
                        e.message
                            .push_str(&format!(" (gave up after {attempt} attempts)"));
                    }
                    return Err(e);
                }
            };
            let request_id = request_id(&headers);
            tracing::debug!(
                method = %method, path = url.path(), status, attempt, elapsed_ms,
                request_id = request_id.as_deref().unwrap_or(""), "ARM request"
            );
            tracing::trace!(method = %method, path = url.path(), status, body = %loggable_body(&bytes), "ARM response body");

            if status == StatusCode::UNAUTHORIZED.as_u16() && !refreshed {
                // A revoked or prematurely expired token: sign in again once.
                // This retry does not count as an attempt.
                refreshed = true;
                rejected_token = Some(token);
                attempt -= 1;
                tracing::info!(method = %method, path = url.path(), "ARM returned 401; refreshing the access token and retrying once");
                continue;
            }
            rejected_token = None;

            let retryable =
                is_retryable_status(status) && (retry == Retry::Idempotent || status == 429);
            if retryable && attempt < max_attempts {
                let delay = policy.retry_delay(attempt, Some(&headers));
                tracing::warn!(method = %method, path = url.path(), status, attempt, delay_ms = delay.as_millis() as u64, "retrying ARM request");
                tokio::time::sleep(delay).await;
                continue;
            }

            if (200..300).contains(&status) {
                let body = if bytes.is_empty() {
                    None
                } else {
                    serde_json::from_slice(&bytes).ok()
                };
                return Ok(ArmResponse {
                    status,
                    headers,
                    body,
                    request_id,
                });
            }
            let mut e = ArmError::from_response(status, &headers, &bytes);
            if retryable {
                e.message
                    .push_str(&format!(" (gave up after {attempt} attempts)"));
            }
            return Err(e);
        }
    }
}
