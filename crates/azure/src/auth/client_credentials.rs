//! The OAuth 2.0 client-credentials grant against Entra ID's v2.0 token endpoint, with a
//! client secret or a client assertion (OIDC token, given or read from a file).
//!
//! Hand-written rather than `azure_identity`'s `ClientSecretCredential` /
//! `ClientAssertionCredential`: those parse Entra's error body into borrowed strings, so a real
//! `error_description` (which holds `\r\n` escapes before its Trace ID) fails to deserialize
//! and the user sees a serde error ("invalid type: string … expected a borrowed string")
//! wrapped around the AADSTS text, losing the HTTP status and error code (both credentials go
//! through `azure_identity::handle_entra_response`, whose `EntraIdErrorResponse` has
//! `error_description: &'a str`). Here the error names the sign-in method and carries the
//! AADSTS code and message as Entra sent them. The test
//! `tests/it/auth_flows.rs::azure_identity_turns_a_real_entra_error_into_a_serde_error` shows
//! both answers to the same body and fails once `azure_identity` is fixed, so this flow can go.
//!
//! Managed identity (IMDS / App Service, via `ManagedIdentityCredential`) and the Azure CLI
//! (`AzureCliCredential`) stay on `azure_identity`; only an explicit `msi_endpoint`, which
//! `ManagedIdentityCredential` cannot be given (it reads its endpoint from the environment),
//! uses the small IMDS client in `imds.rs`.

use std::path::PathBuf;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error, ErrorKind};
use azure_core::time::{Duration, OffsetDateTime};
use serde::Deserialize;
use url::Url;

use crate::secret::Secret;

pub(crate) const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com";

#[derive(Debug, Clone)]
pub(crate) enum ClientAuth {
    Secret(Secret),
    Assertion(Secret),
    AssertionFile(PathBuf),
    /// A JWT signed with the client certificate, made afresh for each token request.
    Certificate(super::certificate::ClientCertificate),
    /// Asked for at each sign-in from a CI job's OIDC token service (GitHub Actions, or Azure
    /// DevOps when a service connection is named), as go-azure-sdk's GitHubOIDCAuthorizer /
    /// ADOPipelineOIDCAuthorizer do.
    Requested {
        url: Url,
        token: Secret,
        ado_service_connection_id: Option<String>,
    },
}

/// The audience go-azure-sdk (and Microsoft's docs for federated credentials) ask the CI token
/// service for.
const FEDERATED_AUDIENCE: &str = "api://AzureADTokenExchange";

/// A JWT is three base64url parts; anything else is reported here instead of as Entra's
/// AADSTS50027 or a parse error.
fn check_jwt_shape(token: &str) -> Result<(), String> {
    let parts: Vec<&str> = token.split('.').collect();
    let b64url = |p: &str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
    };
    if parts.len() == 3 && b64url(parts[0]) && b64url(parts[1]) {
        Ok(())
    } else {
        Err(format!(
            "the OIDC token is not a JWT (expected three base64url parts separated by '.', got {} part(s), {} characters)",
            parts.len(),
            token.len()
        ))
    }
}

#[derive(Debug)]
pub(crate) struct ClientCredentials {
    /// "client secret", "OIDC token", "OIDC token file": named in every error.
    pub(crate) method: &'static str,
    pub(crate) authority: Url,
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    pub(crate) auth: ClientAuth,
    pub(crate) http: reqwest::Client,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

#[derive(Deserialize, Default)]
struct EntraError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
    #[serde(default)]
    error_codes: Vec<i64>,
}

/// `AADSTS7000215: Invalid client secret provided. … (invalid_client, HTTP 401, Trace ID: …)`
/// from an Entra error body; the description's own Trace/Correlation/Timestamp lines are
/// folded into the parenthesis.
pub(crate) fn describe_entra_error(status: u16, body: &[u8]) -> String {
    let parsed: EntraError = serde_json::from_slice(body).unwrap_or_default();
    if parsed.error.is_empty() && parsed.error_description.is_empty() {
        let text: String = String::from_utf8_lossy(body).chars().take(300).collect();
        return format!("the token endpoint answered HTTP {status}: {}", text.trim());
    }
    let mut lines = parsed
        .error_description
        .split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty());
    let mut summary = lines.next().unwrap_or("").to_string();
    if summary.is_empty() {
        summary = match parsed.error_codes.first() {
            Some(code) => format!("AADSTS{code}"),
            None => "no error description".into(),
        };
    } else if !summary.starts_with("AADSTS")
        && let Some(code) = parsed.error_codes.first()
    {
        summary = format!("AADSTS{code}: {summary}");
    }
    let trace = lines
        .find(|l| l.starts_with("Trace ID:"))
        .map(|l| format!(", {l}"))
        .unwrap_or_default();
    format!("{summary} ({}, HTTP {status}{trace})", parsed.error)
}

impl ClientCredentials {
    fn fail(&self, message: impl std::fmt::Display) -> Error {
        Error::with_message(
            ErrorKind::Credential,
            format!("Azure sign-in with {} failed: {message}", self.method),
        )
    }

    fn token_url(&self) -> Result<Url, Error> {
        let base = self.authority.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/{}/oauth2/v2.0/token", self.tenant_id))
            .map_err(|e| self.fail(format!("invalid token endpoint: {e}")))
    }
}

impl ClientCredentials {
    /// GitHub Actions: `GET {url}&audience=api://AzureADTokenExchange` → `{"value": jwt}`.
    /// Azure DevOps: `POST {url}?api-version=7.1&serviceConnectionId=…` → `{"oidcToken": jwt}`.
    /// Both with the job's token as bearer; neither token nor URL query is ever logged.
    async fn request_assertion(
        &self,
        url: &Url,
        token: &Secret,
        ado: Option<&str>,
    ) -> Result<String, Error> {
        let mut url = url.clone();
        let (request, field) = match ado {
            Some(id) => {
                url.query_pairs_mut()
                    .append_pair("api-version", "7.1")
                    .append_pair("serviceConnectionId", id);
                (
                    self.http
                        .post(url.clone())
                        .header("content-type", "application/json"),
                    "oidcToken",
                )
            }
            None => {
                url.query_pairs_mut()
                    .append_pair("audience", FEDERATED_AUDIENCE);
                (self.http.get(url.clone()), "value")
            }
        };
        let origin = url.origin().ascii_serialization();
        let response = request
            .bearer_auth(token.expose())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| {
                self.fail(format!(
                    "cannot reach the OIDC token request URL {origin}: {}",
                    e.without_url()
                ))
            })?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| {
            self.fail(format!(
                "reading the OIDC token from {origin} failed: {}",
                e.without_url()
            ))
        })?;
        if !(200..300).contains(&status) {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
            return Err(self.fail(format!(
                "the OIDC token request to {origin} answered HTTP {status}: {}",
                text.trim()
            )));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        match value.get(field).and_then(|v| v.as_str()).map(str::trim) {
            Some(t) if !t.is_empty() => Ok(t.to_owned()),
            _ => Err(self.fail(format!(
                "the OIDC token request to {origin} answered HTTP {status} without a `{field}` token"
            ))),
        }
    }
}

#[async_trait::async_trait]
impl TokenCredential for ClientCredentials {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let url = self.token_url()?;
        let scope = scopes.join(" ");
        let mut form = vec![
            ("grant_type", "client_credentials".to_string()),
            ("client_id", self.client_id.clone()),
            ("scope", scope),
        ];
        let assertion = match &self.auth {
            ClientAuth::Secret(s) => {
                form.push(("client_secret", s.expose().to_owned()));
                None
            }
            ClientAuth::Assertion(a) => Some(a.expose().trim().to_owned()),
            ClientAuth::Certificate(cert) => Some(
                cert.assertion(&self.client_id, url.as_str())
                    .map_err(|e| self.fail(e))?,
            ),
            ClientAuth::AssertionFile(path) => {
                let token = std::fs::read_to_string(path)
                    .map_err(|e| self.fail(format!("reading {}: {e}", path.display())))?;
                if token.trim().is_empty() {
                    return Err(self.fail(format!("{} is empty", path.display())));
                }
                Some(token.trim().to_owned())
            }
            ClientAuth::Requested {
                url,
                token,
                ado_service_connection_id,
            } => Some(
                self.request_assertion(url, token, ado_service_connection_id.as_deref())
                    .await?,
            ),
        };
        if let Some(assertion) = assertion {
            check_jwt_shape(&assertion).map_err(|e| self.fail(e))?;
            form.push((
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
            ));
            form.push(("client_assertion", assertion));
        }
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(k, v)| (*k, v.as_str())))
            .finish();
        let response = self
            .http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                self.fail(format!(
                    "cannot reach the token endpoint {}: {e}",
                    url.origin().ascii_serialization()
                ))
            })?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.fail(format!("reading the token response failed: {e}")))?;
        if !(200..300).contains(&status) {
            return Err(self.fail(describe_entra_error(status, &bytes)));
        }
        let parsed: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|_| self.fail("the token endpoint's answer has no access_token"))?;
        let expires_in = match parsed.expires_in {
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            Some(serde_json::Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .unwrap_or(3599);
        Ok(AccessToken::new(
            parsed.access_token,
            OffsetDateTime::now_utc() + Duration::seconds(expires_in),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_errors_keep_code_message_and_trace() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2025-06-01 12:00:00Z","error_codes":[7000215]}"#;
        assert_eq!(
            describe_entra_error(401, body),
            "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value. (invalid_client, HTTP 401, Trace ID: t-1)"
        );
        assert_eq!(
            describe_entra_error(502, b"<html>bad gateway</html>"),
            "the token endpoint answered HTTP 502: <html>bad gateway</html>"
        );
    }
}
