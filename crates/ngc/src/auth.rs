//! NGC credentials: which `Authorization` header an API call carries.
//!
//! - No key: no header (public assets only).
//! - Personal/service keys (`nvapi-…`) and already-issued JWTs: `Authorization: Bearer <key>`.
//! - Legacy keys: exchanged at `{auth_url}/token?service=ngc&scope=group/ngc:{org}[&scope=group/ngc:{org}/{team}]`
//!   with `Basic base64("$oauthtoken:<key>")` for a JWT, cached per scope and renewed 300 s
//!   before it expires (ngcsdk `RENEW_TOKEN_BEFORE_EXPIRATION`). After a 401 the caller asks
//!   for a fresh token once ([`Auth::renew`]).
//!
//! The key and tokens live in [`Secret`]s and in header values marked sensitive; no log
//! line or error carries them.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use clara_azure::Secret;
use reqwest::header::HeaderValue;
use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;
use url::Url;

use crate::error::{NgcError, redact_url};
use crate::retry::Retry;

/// ngcsdk `SCOPED_KEY_PREFIX`: keys sent as Bearer without an exchange.
const PERSONAL_KEY_PREFIX: &str = "nvapi-";
/// Renew this long before a token expires, so it never expires mid-request.
const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
/// Assumed lifetime when authn gives no `expires_in` (NGC tokens last about 15 minutes).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// The org/team a token is scoped to (the asset's, as ngcsdk does).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Scope {
    pub org: String,
    pub team: Option<String>,
}

enum Key {
    None,
    /// Sent as is: `nvapi-…` keys and JWTs.
    Bearer(Secret),
    /// Exchanged for a token at authn.
    Legacy(Secret),
}

struct Cached {
    header: HeaderValue,
    renew_at: Instant,
}

pub(crate) struct Auth {
    key: Key,
    auth_url: Url,
    http: reqwest::Client,
    retry: Retry,
    tokens: Mutex<HashMap<Scope, Cached>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

impl Auth {
    pub(crate) fn new(
        key: Option<Secret>,
        auth_url: Url,
        http: reqwest::Client,
        retry: Retry,
    ) -> Self {
        let key = match key {
            Some(k) if !k.is_empty() => {
                let trimmed = Secret::new(k.expose().trim());
                if trimmed.expose().starts_with(PERSONAL_KEY_PREFIX)
                    || looks_like_jwt(trimmed.expose())
                {
                    Key::Bearer(trimmed)
                } else {
                    Key::Legacy(trimmed)
                }
            }
            _ => Key::None,
        };
        Auth {
            key,
            auth_url,
            http,
            retry,
            tokens: Mutex::new(HashMap::new()),
        }
    }

    /// Whether any key is configured (decides org-scoped vs guest API paths).
    pub(crate) fn has_key(&self) -> bool {
        !matches!(self.key, Key::None)
    }

    /// Whether a 401 can be cured by fetching a fresh token.
    pub(crate) fn can_renew(&self) -> bool {
        matches!(self.key, Key::Legacy(_))
    }

    /// The `Authorization` value for an API call in `scope`, if any.
    pub(crate) async fn header(&self, scope: &Scope) -> Result<Option<HeaderValue>, NgcError> {
        match &self.key {
            Key::None => Ok(None),
            Key::Bearer(key) => Ok(Some(bearer(key.expose(), "the API key")?)),
            Key::Legacy(key) => {
                let mut tokens = self.tokens.lock().await;
                if let Some(c) = tokens.get(scope)
                    && Instant::now() < c.renew_at
                {
                    return Ok(Some(c.header.clone()));
                }
                let fresh = self.exchange(key, scope).await?;
                let header = fresh.header.clone();
                tokens.insert(scope.clone(), fresh);
                Ok(Some(header))
            }
        }
    }

    /// After a 401 with `stale`: a fresh token, unless another request already renewed it.
    pub(crate) async fn renew(
        &self,
        scope: &Scope,
        stale: &HeaderValue,
    ) -> Result<Option<HeaderValue>, NgcError> {
        {
            let mut tokens = self.tokens.lock().await;
            if tokens.get(scope).is_some_and(|c| c.header == stale) {
                tokens.remove(scope);
            }
        }
        self.header(scope).await
    }

    async fn exchange(&self, key: &Secret, scope: &Scope) -> Result<Cached, NgcError> {
        let mut url = self.auth_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("token");
        }
        // Written out rather than form-encoded so it is byte-for-byte what ngcsdk sends;
        // org and team were validated to letters, digits, '.', '_' and '-'.
        let mut query = format!("service=ngc&scope=group/ngc:{}", scope.org);
        if let Some(team) = &scope.team {
            query.push_str(&format!("&scope=group/ngc:{}/{team}", scope.org));
        }
        url.set_query(Some(&query));

        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("$oauthtoken:{}", key.expose()));
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
            NgcError::ApiKeyRejected {
                what: "an NGC token (the key contains characters not allowed in an HTTP header)"
                    .to_owned(),
            }
        })?;
        auth.set_sensitive(true);

        tracing::debug!(auth_url = %redact_url(&url), org = %scope.org, team = ?scope.team, "exchanging NGC API key for a token");
        let what = format!("NGC token for org {}", scope.org);
        let resp = self
            .retry
            .send(&what, &url, || {
                self.http
                    .get(url.clone())
                    .header(reqwest::header::AUTHORIZATION, auth.clone())
            })
            .await?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => {}
            401 | 403 => return Err(NgcError::ApiKeyRejected { what }),
            _ => {
                return Err(NgcError::Http {
                    what,
                    status,
                    url: redact_url(&url),
                    detail: String::new(),
                });
            }
        }
        let body: TokenResponse = resp.json().await.map_err(|e| NgcError::Protocol {
            what: what.clone(),
            url: redact_url(&url),
            message: format!(
                "token response is not the expected JSON: {}",
                crate::retry::without_url(&e)
            ),
        })?;
        let lifetime = match body.expires_in {
            Some(s) if s > 0 => Duration::from_secs(s as u64),
            _ => DEFAULT_TOKEN_LIFETIME,
        };
        let renew_at = Instant::now() + lifetime.saturating_sub(RENEW_BEFORE_EXPIRY);
        tracing::debug!(org = %scope.org, expires_in_s = lifetime.as_secs(), "got NGC token");
        Ok(Cached {
            header: bearer(&body.token, "the token from NGC")?,
            renew_at,
        })
    }
}

fn bearer(token: &str, what: &str) -> Result<HeaderValue, NgcError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
        NgcError::ApiKeyRejected {
            what: format!("NGC assets ({what} contains characters not allowed in an HTTP header)"),
        }
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Three base64url parts starting with `{"` encoded: an already-issued token, sent as is.
fn looks_like_jwt(key: &str) -> bool {
    key.starts_with("eyJ") && key.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(key: Option<&str>) -> Auth {
        Auth::new(
            key.map(Secret::new),
            Url::parse("http://127.0.0.1:9").unwrap(),
            reqwest::Client::new(),
            Retry::new(1, Duration::from_millis(1)),
        )
    }

    #[tokio::test]
    async fn key_kinds() {
        let scope = Scope {
            org: "nvidia".into(),
            team: None,
        };
        assert!(auth(None).header(&scope).await.unwrap().is_none());
        assert!(auth(Some("  ")).header(&scope).await.unwrap().is_none());
        let h = auth(Some("nvapi-abc"))
            .header(&scope)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(h.to_str().unwrap(), "Bearer nvapi-abc");
        assert!(h.is_sensitive());
        assert!(!auth(Some("nvapi-abc")).can_renew());
        assert!(auth(Some("legacykey")).can_renew());
        assert!(
            auth(Some("eyJa.eyJb.sig"))
                .header(&scope)
                .await
                .unwrap()
                .is_some()
        );
    }
}
