//! Managed identity via an explicit IMDS-style endpoint (`msi_endpoint`).
//!
//! `azure_identity`'s `ManagedIdentityCredential` only learns endpoints from
//! environment variables, so an endpoint given in configuration needs this.

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_core::time::{Duration, OffsetDateTime};
use serde::Deserialize;
use url::Url;

const IMDS_API_VERSION: &str = "2018-02-01";

#[derive(Debug)]
pub(crate) struct ImdsCredential {
    pub(crate) endpoint: Url,
    pub(crate) client_id: Option<String>,
    pub(crate) http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_on: Option<serde_json::Value>,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

fn as_i64(v: &Option<serde_json::Value>) -> Option<i64> {
    match v.as_ref()? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn credential_error(message: String) -> Error {
    Error::with_message(
        ErrorKind::Credential,
        format!("managed identity: {message}"),
    )
}

#[async_trait::async_trait]
impl TokenCredential for ImdsCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(credential_error("exactly one scope is required".into()));
        };
        // IMDS speaks the v1 "resource" dialect.
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("api-version", IMDS_API_VERSION)
            .append_pair("resource", resource);
        if let Some(id) = &self.client_id {
            url.query_pairs_mut().append_pair("client_id", id);
        }
        let response = self
            .http
            .get(url)
            .header("Metadata", "true")
            .send()
            .await
            .map_err(|e| credential_error(format!("request to {} failed: {e}", self.endpoint)))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| credential_error(format!("reading response failed: {e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            return Err(credential_error(format!(
                "endpoint returned {status}: {text}"
            )));
        }
        let parsed: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| credential_error(format!("unexpected token response: {e}")))?;
        let expires_on = as_i64(&parsed.expires_on)
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
            .or_else(|| {
                as_i64(&parsed.expires_in).map(|s| OffsetDateTime::now_utc() + Duration::seconds(s))
            })
            .unwrap_or_else(|| OffsetDateTime::now_utc() + Duration::minutes(10));
        Ok(AccessToken::new(parsed.access_token, expires_on))
    }
}
