//! Entra ID (AAD v2) token endpoint emulation and bearer-token checks for ARM routes.
//!
//! Only the client-credentials grant is supported. Tokens are random opaque strings (not
//! JWTs); they are persisted with their expiry so they survive a restart.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use std::collections::HashMap;

use crate::app::AppState;
use crate::arm::error::ArmError;
use crate::pipeline::RouteExt;
use crate::util::{new_guid, now_ms, random_token, rfc3339};

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(token).token(app, "token"),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration).token(app, "discovery.openid"),
        )
        .route(
            "/common/discovery/instance",
            get(instance_discovery).token(app, "discovery.instance"),
        )
        .route(
            "/{tenant}/discovery/instance",
            get(instance_discovery).token(app, "discovery.instance"),
        )
}

// ---- token endpoint ------------------------------------------------------------------------

async fn token(
    State(app): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !tenant.eq_ignore_ascii_case(&app.config.tenant_id) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
    }
    let mut form: HashMap<String, String> =
        url::form_urlencoded::parse(&body).into_owned().collect();
    // client_secret_basic: credentials in `Authorization: Basic base64(id:secret)`.
    if let Some((id, secret)) = basic_credentials(&headers) {
        form.entry("client_id".into()).or_insert(id);
        form.entry("client_secret".into()).or_insert(secret);
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");

    match field("grant_type") {
        "" => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                900144,
                "AADSTS900144: The request body must contain the following parameter: 'grant_type'.",
            );
        }
        "client_credentials" => {}
        other => {
            return aad_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                70003,
                &format!(
                    "AADSTS70003: The app requested an unsupported grant type '{other}'. The emulator supports only client_credentials."
                ),
            );
        }
    }
    if field("client_id") != app.config.client_id {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700016,
            &format!(
                "AADSTS700016: Application with identifier '{}' was not found in the directory '{}'.",
                field("client_id"),
                app.config.tenant_id
            ),
        );
    }
    if field("client_secret") != app.config.client_secret {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                app.config.client_id
            ),
        );
    }
    let scope = field("scope");
    if scope.is_empty() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90014,
            "AADSTS90014: The required field 'scope' is missing from the credential.",
        );
    }
    if !scope.split(' ').all(|s| s.ends_with("/.default")) {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "AADSTS1002012: The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        );
    }

    let access_token = random_token();
    let ttl = app.config.token_expires_in_s;
    let expires_at = now_ms() + ttl * 1000;
    app.store.write(|d| {
        let now = now_ms();
        d.tokens.retain(|_, exp| *exp > now);
        d.tokens.insert(access_token.clone(), expires_at);
    });
    let body = json!({
        "token_type": "Bearer",
        "expires_in": ttl,
        "ext_expires_in": ttl,
        "access_token": access_token,
    });
    no_store((StatusCode::OK, axum::Json(body)).into_response())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value
        .strip_prefix("Basic ")
        .or_else(|| value.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn aad_error(status: StatusCode, error: &str, code: u64, description: &str) -> Response {
    let trace_id = new_guid();
    let correlation_id = new_guid();
    let body = json!({
        "error": error,
        "error_description": format!("{description}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {}", rfc3339(now_ms())),
        "error_codes": [code],
        "timestamp": rfc3339(now_ms()),
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": "https://login.microsoftonline.com/error?code=".to_string() + &code.to_string(),
    });
    no_store((status, axum::Json(body)).into_response())
}

fn no_store(mut resp: Response) -> Response {
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    resp
}

// ---- discovery documents -------------------------------------------------------------------

async fn openid_configuration(State(app): State<AppState>, Path(tenant): Path<String>) -> Response {
    if !tenant.eq_ignore_ascii_case(&app.config.tenant_id)
        && tenant != "common"
        && tenant != "organizations"
    {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90002,
            &format!("AADSTS90002: Tenant '{tenant}' not found."),
        );
    }
    let base = &app.base_url;
    let t = &app.config.tenant_id;
    axum::Json(json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{t}/v2.0"),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
    }))
    .into_response()
}

async fn instance_discovery(
    State(app): State<AppState>,
    Query(_q): Query<HashMap<String, String>>,
) -> Response {
    let host = app.authority().to_string();
    axum::Json(json!({
        "tenant_discovery_endpoint": format!("{}/{}/v2.0/.well-known/openid-configuration", app.base_url, app.config.tenant_id),
        "api-version": "1.1",
        "metadata": [{ "preferred_network": host, "preferred_cache": host, "aliases": [host] }],
    }))
    .into_response()
}

// ---- bearer check for ARM routes -----------------------------------------------------------

/// Accepts only `Authorization: Bearer <token issued by this emulator, not expired>`.
pub fn check_bearer(app: &AppState, headers: &HeaderMap) -> Result<(), ArmError> {
    let challenge = format!(
        "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header.\"",
        app.base_url, app.config.tenant_id
    );
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ArmError::unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        )
        .with_header("www-authenticate", challenge));
    };
    let Some(token) = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
    else {
        return Err(ArmError::unauthorized(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        )
        .with_header("www-authenticate", challenge));
    };
    let expiry = app.store.read(|d| d.tokens.get(token).copied());
    match expiry {
        None => Err(ArmError::unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )
        .with_header("www-authenticate", challenge)),
        Some(exp) if exp <= now_ms() => Err(ArmError::unauthorized(
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                rfc3339(exp),
                rfc3339(now_ms())
            ),
        )
        .with_header("www-authenticate", challenge)),
        Some(_) => Ok(()),
    }
}
