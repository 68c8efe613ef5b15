//! NGC authentication: the auth service's `GET /token` (legacy key → JWT, HTTP Basic
//! `$oauthtoken:KEY`), and the credential check of API routes (`Bearer <token>` issued here, or
//! `Bearer nvapi-…` personal keys directly).

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::NgcState;
use super::errors::NgcError;
use crate::app::AppState;
use crate::pipeline::OpTag;
use crate::util::now_ms;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Who is calling, after a successful credential check.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Orgs whose private assets this caller may read (`*` = all).
    pub orgs: Vec<String>,
    /// `token` (exchanged JWT) or `nvapi` (personal key as bearer).
    pub via: &'static str,
}

impl Principal {
    pub fn can_read_org(&self, org: &str) -> bool {
        self.orgs.iter().any(|o| o == "*" || o == org)
    }
}

/// Short, non-reversible id of a key (for tokens and logs; never the key itself).
pub fn fingerprint(key: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, key.as_bytes());
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::sign(&key, data).as_ref().to_vec()
}

pub fn sign(secret: &[u8], data: &str) -> String {
    B64URL.encode(hmac(secret, data.as_bytes()))
}

pub fn verify(secret: &[u8], data: &str, signature: &str) -> bool {
    let Ok(sig) = B64URL.decode(signature) else {
        return false;
    };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    aws_lc_rs::hmac::verify(&key, data.as_bytes(), &sig).is_ok()
}

// ---- tokens -----------------------------------------------------------------------------------

fn issue_token(ngc: &NgcState, key: &str, scopes: &[String], now_s: u64) -> String {
    let header = json!({ "alg": "HS256", "typ": "JWT", "kid": "clara-emulator" });
    let payload = json!({
        "iss": "clara-emulator-authn",
        "aud": "ngc",
        "sub": fingerprint(key),
        "iat": now_s,
        "exp": now_s + ngc.config.token_expires_in_s,
        "scopes": scopes,
    });
    let signing_input = format!(
        "{}.{}",
        B64URL.encode(header.to_string()),
        B64URL.encode(payload.to_string())
    );
    let sig = sign(&ngc.secret, &signing_input);
    format!("{signing_input}.{sig}")
}

enum TokenCheck {
    Valid(Principal),
    Expired,
    Invalid,
}

fn check_token(ngc: &NgcState, token: &str, now_s: u64) -> TokenCheck {
    let mut parts = token.rsplitn(2, '.');
    let (Some(sig), Some(signing_input)) = (parts.next(), parts.next()) else {
        return TokenCheck::Invalid;
    };
    if signing_input.matches('.').count() != 1 || !verify(&ngc.secret, signing_input, sig) {
        return TokenCheck::Invalid;
    }
    let Some(payload) = signing_input
        .split('.')
        .nth(1)
        .and_then(|p| B64URL.decode(p).ok())
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return TokenCheck::Invalid;
    };
    if payload["exp"].as_u64().unwrap_or(0) <= now_s {
        return TokenCheck::Expired;
    }
    let sub = payload["sub"].as_str().unwrap_or_default();
    let Some(key_orgs) = ngc
        .config
        .api_keys
        .iter()
        .find(|(k, _)| fingerprint(k) == sub)
        .map(|(_, orgs)| orgs.clone())
    else {
        // the key was removed from the config
        return TokenCheck::Invalid;
    };
    let scoped: Vec<String> = payload["scopes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter_map(|s| s.strip_prefix("group/ngc:"))
                .map(|s| s.split('/').next().unwrap_or(s).to_string())
                .collect()
        })
        .unwrap_or_default();
    let orgs = if scoped.is_empty() {
        key_orgs
    } else {
        scoped
            .into_iter()
            .filter(|o| key_orgs.iter().any(|k| k == "*" || k == o))
            .collect()
    };
    TokenCheck::Valid(Principal { orgs, via: "token" })
}

/// The caller of an API route: `Ok(None)` without credentials, `Err(401)` for bad ones.
pub fn principal(ngc: &NgcState, headers: &HeaderMap) -> Result<Option<Principal>, NgcError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().unwrap_or_default();
    let Some(cred) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return Err(NgcError::unauthorized(
            "Invalid authorization header: use 'Bearer <token or nvapi- key>'.",
        ));
    };
    if cred.starts_with("nvapi-") {
        return match ngc.config.api_keys.get(cred) {
            Some(orgs) => Ok(Some(Principal {
                orgs: orgs.clone(),
                via: "nvapi",
            })),
            None => Err(NgcError::unauthorized("Invalid or revoked API key.")),
        };
    }
    let now_s = now_ms() / 1000;
    match check_token(ngc, cred, now_s) {
        TokenCheck::Valid(p) => Ok(Some(p)),
        TokenCheck::Expired => Err(NgcError::unauthorized("Token has expired.")),
        TokenCheck::Invalid if ngc.config.api_keys.contains_key(cred) => {
            Err(NgcError::unauthorized(
                "Invalid token: a legacy API key must be exchanged for a token at the auth service first.",
            ))
        }
        TokenCheck::Invalid => Err(NgcError::unauthorized("Invalid token.")),
    }
}

// ---- GET /token -----------------------------------------------------------------------------

fn basic_key(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, key) = text.split_once(':')?;
    Some((user.to_string(), key.to_string()))
}

fn valid_scope(scope: &str) -> bool {
    let Some(rest) = scope.strip_prefix("group/ngc:") else {
        return false;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    (1..=2).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty())
}

/// `GET /token?service=ngc&scope=group/ngc:{org}[&scope=group/ngc:{org}/{team}]` with
/// `Authorization: Basic base64("$oauthtoken:KEY")` → `{"token","expires_in"}`.
pub async fn token(
    State(app): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let ngc = &app.ngc;
    let mut resp = token_inner(ngc, query.as_deref().unwrap_or(""), &headers);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.extensions_mut().insert(OpTag("ngc.token"));
    super::annotate(&app, resp, serde_json::Map::new())
}

fn token_inner(ngc: &NgcState, query: &str, headers: &HeaderMap) -> Response {
    if let Some(f) = ngc.faults.take_early(&super::faults::Target {
        op: "ngc.token",
        path: "/token",
        asset: None,
        file: None,
    }) {
        return super::fault_response(&f);
    }
    let mut service = None;
    let mut scopes = Vec::new();
    let mut unknown: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "service" => service = Some(v.into_owned()),
            "scope" => scopes.push(v.into_owned()),
            _ => {
                unknown.insert(k.into_owned(), v.into_owned());
            }
        }
    }
    let Some((user, key)) = basic_key(headers) else {
        return NgcError::unauthorized(
            "Missing credentials: use HTTP Basic with username '$oauthtoken' and the API key as password.",
        )
        .with_header("www-authenticate", "Basic realm=\"ngc\"")
        .into_response();
    };
    if user != "$oauthtoken" || !ngc.config.api_keys.contains_key(&key) {
        return NgcError::unauthorized("Invalid apikey")
            .with_header("www-authenticate", "Basic realm=\"ngc\"")
            .into_response();
    }
    if service.as_deref() != Some("ngc") {
        return NgcError::bad_request("The 'service' query parameter must be 'ngc'.")
            .into_response();
    }
    if let Some(k) = unknown.keys().next() {
        return NgcError::bad_request(format!(
            "Unknown query parameter '{k}'. Each scope needs its own 'scope=' parameter, e.g. scope=group/ngc:ORG&scope=group/ngc:ORG/TEAM."
        ))
        .into_response();
    }
    if let Some(bad) = scopes.iter().find(|s| !valid_scope(s)) {
        return NgcError::bad_request(format!(
            "Invalid scope '{bad}': expected group/ngc:ORG or group/ngc:ORG/TEAM."
        ))
        .into_response();
    }
    let now_s = now_ms() / 1000;
    let token = issue_token(ngc, &key, &scopes, now_s);
    (
        StatusCode::OK,
        axum::Json(json!({ "token": token, "expires_in": ngc.config.token_expires_in_s })),
    )
        .into_response()
}

// ---- POST /v3/keys/get-caller-info ----------------------------------------------------------

/// The one org a personal (`nvapi-`) key belongs to: the first org configured for it, or
/// `nvidia` for a key configured with `*` (a personal key is always issued in one org).
pub fn key_org(orgs: &[String]) -> String {
    orgs.iter()
        .find(|o| o.as_str() != "*")
        .cloned()
        .unwrap_or_else(|| "nvidia".to_string())
}

/// `POST /v3/keys/get-caller-info`, form `credentials=<nvapi- key>`, no `Authorization`
/// (ngcsdk `ngcbase/api/authentication.py` `get_sak_key_details`): the key's type, org and
/// user with roles (`organization/data/uis/SakCallerInfoResponse.py`). Unknown or legacy keys
/// → 401.
pub async fn caller_info(State(app): State<AppState>, body: axum::body::Bytes) -> Response {
    let ngc = &app.ngc;
    let mut resp = match ngc.faults.take_early(&super::faults::Target {
        op: "ngc.caller_info",
        path: "/v3/keys/get-caller-info",
        asset: None,
        file: None,
    }) {
        Some(f) => super::fault_response(&f),
        None => caller_info_inner(ngc, &body),
    };
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp.extensions_mut().insert(OpTag("ngc.caller_info"));
    super::annotate(&app, resp, serde_json::Map::new())
}

fn caller_info_inner(ngc: &NgcState, body: &[u8]) -> Response {
    let cred = url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "credentials")
        .map(|(_, v)| v.into_owned());
    let Some(cred) = cred.filter(|c| !c.is_empty()) else {
        return NgcError::bad_request("Missing form field 'credentials'.").into_response();
    };
    let orgs = match ngc.config.api_keys.get(&cred) {
        Some(orgs) if cred.starts_with("nvapi-") => orgs,
        _ => return NgcError::unauthorized("Invalid or revoked API key.").into_response(),
    };
    let org = key_org(orgs);
    let user_id = fingerprint(&cred);
    let mut roles = vec![json!({
        "org": { "name": org, "displayName": org },
        "orgRoles": ["REGISTRY_READ", "REGISTRY_USER"],
    })];
    for team in ngc.catalog.teams(&org) {
        roles.push(json!({
            "org": { "name": org, "displayName": org },
            "team": { "name": team },
            "teamRoles": ["REGISTRY_READ", "REGISTRY_USER"],
        }));
    }
    (
        StatusCode::OK,
        axum::Json(json!({
            "type": "PERSONAL_KEY",
            "orgName": org,
            "userId": user_id,
            "user": {
                "id": user_id,
                "name": format!("clara-emulator user {user_id}"),
                "email": format!("{user_id}@users.emulator.ngc.local"),
                "isActive": true,
                "roles": roles,
            },
            "requestStatus": { "statusCode": "SUCCESS", "requestId": crate::util::new_guid() },
        })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert!(valid_scope("group/ngc:nvidia"));
        assert!(valid_scope("group/ngc:nvidia/med"));
        assert!(!valid_scope("group/ngc:"));
        assert!(!valid_scope("group/ngc:a/b/c"));
        assert!(!valid_scope("nvidia"));
    }

    #[test]
    fn hmac_roundtrip() {
        let s = sign(b"k", "data");
        assert!(verify(b"k", "data", &s));
        assert!(!verify(b"k", "datb", &s));
        assert!(!verify(b"j", "data", &s));
    }
}
