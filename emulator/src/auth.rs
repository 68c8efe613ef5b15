//! Entra ID (AAD v2 endpoint) token endpoint emulation, the access tokens it issues, and the
//! checks every protected route makes: signature, lifetime, audience per route family, and the
//! caller's Azure RBAC roles on ARM routes.
//!
//! Only the client-credentials grant is supported. Access tokens are RS256 JWTs shaped like
//! the v1.0 tokens Entra issues to Microsoft's first-party resources (ARM, Storage, Azure ML):
//! `aud` is the resource of the requested scope, `iss` is `https://sts.windows.net/{tid}/`.
//! The signing key is generated once per state dir (`DIR/entra_signing.pk8`), so tokens
//! survive a restart; its public half is served as the tenant's JWKS.

use crate::metadata::CloudShape;
use std::path::Path as FsPath;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, KeyPair as _, RsaKeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::{Deserialize, Serialize};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;

use crate::app::AppState;
use crate::arm::error::ArmError;
use crate::pipeline::RouteExt;
use crate::util::{new_guid, now_ms, rfc3339, stable_guid, write_atomic};

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(token).token(app, "token"),
        )
        .route(
            "/metadata/identity/oauth2/token",
            get(imds_token).token(app, "imds.token"),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration).token(app, "discovery.openid"),
        )
        .route(
            "/{tenant}/discovery/v2.0/keys",
            get(jwks).token(app, "discovery.keys"),
        )
        .route(
            "/{tenant}/discovery/keys",
            get(jwks).token(app, "discovery.keys"),
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
    let Some(principal) = app.config.principal(field("client_id")) else {
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
    };
    let assertion_type = field("client_assertion_type");
    if !assertion_type.is_empty() || !field("client_assertion").is_empty() {
        if let Err(resp) =
            check_federated_assertion(&principal, assertion_type, field("client_assertion"))
        {
            return resp;
        }
    } else if field("client_secret") != principal.client_secret {
        return aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                principal.client_id
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
    // Everything before the last '/' of a scope is the resource; a v1.0 token's `aud` is that
    // resource as written (so `https://management.azure.com//.default` gives a trailing '/').
    let mut resources: Vec<&str> = scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(|s| s.rsplit_once('/').map_or(s, |(r, _)| r))
        .collect();
    resources.dedup();
    if resources.len() != 1 {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            28000,
            &format!(
                "AADSTS28000: Provided value for the input parameter scope is not valid because it contains more than one resource. Scope {scope} is not valid."
            ),
        );
    }
    let resource = resources[0];
    if Audience::in_cloud(resource, &app.base_url, app.config.cloud).is_none() {
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                app.config.tenant_id
            ),
        );
    }

    let ttl = app.config.token_expires_in_s;
    let access_token = app
        .entra
        .issue(&app.config.tenant_id, &principal, resource, ttl);
    let body = json!({
        "token_type": "Bearer",
        "expires_in": ttl,
        "ext_expires_in": ttl,
        "access_token": access_token,
    });
    no_store((StatusCode::OK, axum::Json(body)).into_response())
}

/// A client assertion from an external identity provider (GitHub Actions, Azure DevOps,
/// Kubernetes), checked against the app's federated identity credentials with the AADSTS codes
/// Entra documents for each failure (learn.microsoft.com "Microsoft Entra authentication and
/// authorization error codes": AADSTS50027 malformed JWT, AADSTS700211/700212/700213 no matching
/// federated identity record for the issuer/audience/subject, AADSTS700024 assertion outside its
/// valid time range). Gap, listed under Limitations: the assertion's signature is not checked
/// against the issuer's published keys (the emulator does not fetch OIDC discovery documents).
fn check_federated_assertion(
    principal: &Principal,
    assertion_type: &str,
    assertion: &str,
) -> Result<(), Response> {
    let bad =
        |status, error: &str, code: u64, text: String| Err(aad_error(status, error, code, &text));
    if assertion_type != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            format!(
                "AADSTS50027: JWT token is invalid or malformed. client_assertion_type '{assertion_type}' is not supported."
            ),
        );
    }
    let claims: Option<Value> = {
        let parts: Vec<&str> = assertion.split('.').collect();
        (parts.len() == 3)
            .then(|| B64URL.decode(parts[1].trim_end_matches('=')).ok())
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
    };
    let Some(claims) = claims else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            50027,
            "AADSTS50027: JWT token is invalid or malformed.".into(),
        );
    };
    let iss = claims["iss"].as_str().unwrap_or("");
    let sub = claims["sub"].as_str().unwrap_or("");
    if iss.eq_ignore_ascii_case(&principal.client_id) {
        return check_certificate_assertion(principal, assertion, &claims);
    }
    let auds: Vec<&str> = match &claims["aud"] {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let by_issuer: Vec<&FederatedCredential> = principal
        .federated_credentials
        .iter()
        .filter(|f| f.issuer == iss)
        .collect();
    if by_issuer.is_empty() {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700211,
            format!(
                "AADSTS700211: No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        );
    }
    let Some(fic) = by_issuer.iter().find(|f| f.subject == sub) else {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700213,
            format!(
                "AADSTS700213: No matching federated identity record found for presented assertion subject '{sub}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion."
            ),
        );
    };
    if !auds.iter().any(|a| fic.audiences.iter().any(|f| f == a)) {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            700212,
            format!(
                "AADSTS700212: No matching federated identity record found for presented assertion audience '{}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion.",
                auds.join(",")
            ),
        );
    }
    let now = now_ms() / 1000;
    let exp = claims["exp"].as_u64().unwrap_or(0);
    if exp <= now {
        return bad(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            700024,
            "AADSTS700024: Client assertion is not within its valid time range.".into(),
        );
    }
    Ok(())
}

/// A client assertion the app signed itself (`iss` = `sub` = client id): certificate
/// credentials (learn.microsoft.com/entra/identity-platform/certificate-credentials). The
/// header's `x5t` (base64url SHA-1 of the certificate) picks a registered certificate, whose
/// RSA key must verify the RS256 signature. Codes as Entra answers them: unknown thumbprint
/// AADSTS700027 ("The key was not found"), bad signature AADSTS700027 ("Signature
/// verification failed"), `sub` not the client AADSTS50027, expired AADSTS700024.
/// Not checked: `aud` against the token endpoint URL (listed under Limitations).
fn check_certificate_assertion(
    principal: &Principal,
    assertion: &str,
    claims: &Value,
) -> Result<(), Response> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let header: Value = B64URL
        .decode(parts[0])
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let bad = |code: u64, text: String| {
        Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            code,
            &text,
        ))
    };
    if !claims["sub"]
        .as_str()
        .is_some_and(|s| s.eq_ignore_ascii_case(&principal.client_id))
    {
        return bad(
            50027,
            "AADSTS50027: JWT token is invalid or malformed.".into(),
        );
    }
    let x5t = header["x5t"].as_str().unwrap_or("");
    let cert = principal.client_certificates.iter().find_map(|pem| {
        let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
        let thumb = B64URL.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            &pem.contents,
        ));
        (thumb == x5t).then_some(pem.contents)
    });
    let Some(der) = cert else {
        return bad(
            700027,
            format!(
                "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{x5t}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                principal.client_id
            ),
        );
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return bad(
            700027,
            "AADSTS700027: Client assertion contains an invalid signature.".into(),
        );
    };
    let public_key = cert.public_key().subject_public_key.data.to_vec();
    let sig = B64URL.decode(parts[2]).unwrap_or_default();
    let signed = format!("{}.{}", parts[0], parts[1]);
    let ok = header["alg"] == "RS256"
        && UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &public_key)
            .verify(signed.as_bytes(), &sig)
            .is_ok();
    if !ok {
        return bad(
            700027,
            format!(
                "AADSTS700027: Client assertion contains an invalid signature. [Reason - Signature verification failed., Thumbprint of key used by client: '{x5t}']"
            ),
        );
    }
    if claims["exp"].as_u64().unwrap_or(0) <= now_ms() / 1000 {
        return bad(
            700024,
            "AADSTS700024: Client assertion is not within its valid time range.".into(),
        );
    }
    Ok(())
}

/// The Azure Instance Metadata Service's managed identity token endpoint, as Microsoft
/// documents it ("How to use managed identities for Azure resources on an Azure VM to acquire
/// an access token", learn.microsoft.com/entra/identity/managed-identities-azure-resources/
/// how-to-use-vm-token): `GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…`
/// with `Metadata: true`, optional `client_id` picking a user-assigned identity. Without
/// `client_id` the identity is the config's main client (the VM's one identity). Errors from
/// the doc's table: no Metadata header → 400 "Required metadata header not specified"; an
/// identity the VM does not have → 400 "Identity not found".
async fn imds_token(
    State(app): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let err = |error: &str, description: &str| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": error, "error_description": description})),
        )
            .into_response()
    };
    if headers.get("metadata").and_then(|v| v.to_str().ok()) != Some("true") {
        return err("invalid_request", "Required metadata header not specified");
    }
    let resource = q.get("resource").map(String::as_str).unwrap_or("");
    if resource.is_empty() {
        return err(
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    }
    let client_id = q
        .get("client_id")
        .map(String::as_str)
        .unwrap_or(&app.config.client_id);
    let Some(principal) = app.config.principal(client_id) else {
        return err("invalid_request", "Identity not found");
    };
    let resource = resource.trim_end_matches('/');
    if Audience::in_cloud(resource, &app.base_url, app.config.cloud).is_none() {
        return err(
            "invalid_resource",
            &format!(
                "AADSTS500011: The resource principal named {resource} was not found in the tenant named {}.",
                app.config.tenant_id
            ),
        );
    }
    let ttl = app.config.token_expires_in_s;
    let access_token = app
        .entra
        .issue(&app.config.tenant_id, &principal, resource, ttl);
    let now = now_ms() / 1000;
    let body = json!({
        "access_token": access_token,
        "client_id": principal.client_id,
        "expires_in": ttl.to_string(),
        "expires_on": (now + ttl).to_string(),
        "ext_expires_in": ttl.to_string(),
        "not_before": now.to_string(),
        "resource": resource,
        "token_type": "Bearer",
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

async fn jwks(State(app): State<AppState>) -> Response {
    axum::Json(json!({ "keys": [app.entra.jwk()] })).into_response()
}

// ---- principals and roles ------------------------------------------------------------------

/// Built-in Azure role names the emulator knows (see README, "Principals and roles").
pub const KNOWN_ROLES: &[&str] = &[
    "Owner",
    "Contributor",
    "Reader",
    "AzureML Data Scientist",
    "Storage Blob Data Owner",
    "Storage Blob Data Contributor",
    "Storage Blob Data Reader",
];

/// An extra service principal (`principals` in the config): its credentials and the role
/// names assigned to it over the subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    pub client_id: String,
    pub client_secret: String,
    /// Object id of the service principal (`oid`); default derived from `client_id`.
    #[serde(default)]
    pub object_id: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub federated_credentials: Vec<FederatedCredential>,
    #[serde(default)]
    pub client_certificates: Vec<String>,
}

/// A federated identity credential on an app registration: Entra accepts a client assertion
/// whose `iss` and `sub` equal these and whose `aud` is one of `audiences` (Microsoft identity
/// platform, "Workload identity federation" / "Create a trust relationship"; the default
/// audience `api://AzureADTokenExchange` is the one Microsoft recommends).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
    #[serde(default = "default_fic_audiences")]
    pub audiences: Vec<String>,
}

fn default_fic_audiences() -> Vec<String> {
    vec!["api://AzureADTokenExchange".into()]
}

/// A principal that may sign in: the config's own client (roles `Owner` and
/// `Storage Blob Data Owner`) or one of `principals`.
#[derive(Debug, Clone)]
pub struct Principal {
    pub client_id: String,
    pub client_secret: String,
    pub object_id: String,
    pub roles: Vec<String>,
    pub federated_credentials: Vec<FederatedCredential>,
    pub client_certificates: Vec<String>,
}

pub fn object_id_for(client_id: &str) -> String {
    stable_guid(&format!(
        "service-principal/{}",
        client_id.to_ascii_lowercase()
    ))
}

pub fn check_principals(list: &[PrincipalConfig], main_client: &str) -> Result<(), String> {
    let mut seen = vec![main_client.to_ascii_lowercase()];
    for p in list {
        if p.client_id.trim().is_empty() || p.client_secret.is_empty() {
            return Err("every principal needs client_id and client_secret".into());
        }
        if seen.contains(&p.client_id.to_ascii_lowercase()) {
            return Err(format!("client_id '{}' is listed twice", p.client_id));
        }
        seen.push(p.client_id.to_ascii_lowercase());
        for r in &p.roles {
            if !KNOWN_ROLES.iter().any(|k| k.eq_ignore_ascii_case(r)) {
                return Err(format!(
                    "principal '{}': unknown role '{r}' (known: {})",
                    p.client_id,
                    KNOWN_ROLES.join(", ")
                ));
            }
        }
    }
    Ok(())
}

impl Principal {
    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }

    /// Whether one of the principal's roles grants the ARM `action`
    /// (`Microsoft.MachineLearningServices/workspaces/computes/write`, …), following the
    /// built-in role definitions' `actions` / `notActions`.
    pub fn may(&self, action: &str) -> bool {
        let a = action.to_ascii_lowercase();
        if self.has("Owner") || self.has("Contributor") {
            return true;
        }
        if self.has("Reader") && a.ends_with("/read") {
            return true;
        }
        if self.has("AzureML Data Scientist") {
            const WS: &str = "microsoft.machinelearningservices/workspaces/";
            let allowed = a.strip_prefix(WS).is_some_and(|rest| {
                ["/read", "/action", "/delete", "/write"]
                    .iter()
                    .any(|v| rest.ends_with(v))
            });
            let denied = [
                "microsoft.machinelearningservices/workspaces/delete",
                "microsoft.machinelearningservices/workspaces/write",
                "microsoft.machinelearningservices/workspaces/computes/listkeys/action",
                "microsoft.machinelearningservices/workspaces/listkeys/action",
                "microsoft.machinelearningservices/workspaces/hubs/write",
                "microsoft.machinelearningservices/workspaces/hubs/delete",
                "microsoft.machinelearningservices/workspaces/featurestores/write",
                "microsoft.machinelearningservices/workspaces/featurestores/delete",
            ]
            .contains(&a.as_str())
                || (a.starts_with("microsoft.machinelearningservices/workspaces/computes/")
                    && (a.ends_with("/write") || a.ends_with("/delete")));
            if allowed && !denied {
                return true;
            }
        }
        false
    }

    /// Storage data access from the `Storage Blob Data *` roles: `None`, `Some(false)` read
    /// only, `Some(true)` read and write.
    pub fn blob_data_access(&self) -> Option<bool> {
        if self.has("Storage Blob Data Owner") || self.has("Storage Blob Data Contributor") {
            Some(true)
        } else if self.has("Storage Blob Data Reader") {
            Some(false)
        } else {
            None
        }
    }
}

impl crate::config::Config {
    /// The principal signing in with `client_id` (case-insensitive, as Entra compares GUIDs).
    pub fn principal(&self, client_id: &str) -> Option<Principal> {
        if client_id.eq_ignore_ascii_case(&self.client_id) && !client_id.is_empty() {
            return Some(Principal {
                client_id: self.client_id.clone(),
                client_secret: self.client_secret.clone(),
                object_id: object_id_for(&self.client_id),
                roles: vec!["Owner".into(), "Storage Blob Data Owner".into()],
                federated_credentials: self.federated_credentials.clone(),
                client_certificates: self.client_certificates.clone(),
            });
        }
        self.principals
            .iter()
            .find(|p| p.client_id.eq_ignore_ascii_case(client_id))
            .map(|p| Principal {
                client_id: p.client_id.clone(),
                client_secret: p.client_secret.clone(),
                object_id: p
                    .object_id
                    .clone()
                    .unwrap_or_else(|| object_id_for(&p.client_id)),
                roles: p.roles.clone(),
                federated_credentials: p.federated_credentials.clone(),
                client_certificates: p.client_certificates.clone(),
            })
    }

    /// The principal whose service principal has object id `oid`.
    pub fn principal_by_oid(&self, oid: &str) -> Option<Principal> {
        std::iter::once(self.client_id.clone())
            .chain(self.principals.iter().map(|p| p.client_id.clone()))
            .filter_map(|c| self.principal(&c))
            .find(|p| p.object_id.eq_ignore_ascii_case(oid))
    }
}

// ---- audiences -----------------------------------------------------------------------------

/// The resource a token was issued for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// `https://management.azure.com[/]`, `https://management.core.windows.net[/]`.
    Arm,
    /// `https://storage.azure.com[/]`.
    Storage,
    /// `https://ml.azure.com[/]` (Azure ML data plane).
    Ml,
}

impl Audience {
    /// Public Azure's resources (the default cloud shape).
    pub fn of(resource: &str) -> Option<Audience> {
        Audience::of_in(resource, CloudShape::Public)
    }

    /// The resources of the real cloud whose names the emulator wears (config `cloud`, see
    /// metadata.rs): ARM's two audiences as that cloud's metadata lists them, the storage
    /// resource (`https://storage.azure.com`, the same in every cloud: go-azure-sdk
    /// `StorageAPI`) and the Azure ML data plane (azure-ai-ml 1.35.2 `_environments`,
    /// `aml_resource_id`). A US Government tenant does not know public Azure's ARM.
    pub fn of_in(resource: &str, cloud: CloudShape) -> Option<Audience> {
        let r = resource.trim_end_matches('/').to_ascii_lowercase();
        if cloud
            .arm_audiences()
            .iter()
            .any(|a| a.trim_end_matches('/') == r)
        {
            Some(Audience::Arm)
        } else if r == "https://storage.azure.com" {
            Some(Audience::Storage)
        } else if r == cloud.ml_audience() {
            Some(Audience::Ml)
        } else {
            None
        }
    }

    /// [`Audience::of_in`], plus the emulator's own cloud: its `resourceManager` URL (`<base>/`,
    /// see metadata.rs, also listed in the document's `authentication.audiences`) names ARM,
    /// as `https://management.azure.com/` does in AzureCloud. azure-ai-ml 1.35.2 asks for
    /// exactly that: `_azure_environments._get_cloud_information_from_metadata` sets
    /// `credential_scopes = [resourceManager.strip("/") + "/.default"]`; so does
    /// go-azure-sdk (`ResourceManagerAPI`: "endpoint and resource ID are the same").
    pub fn in_cloud(resource: &str, base_url: &str, cloud: CloudShape) -> Option<Audience> {
        if resource
            .trim_end_matches('/')
            .eq_ignore_ascii_case(base_url.trim_end_matches('/'))
        {
            return Some(Audience::Arm);
        }
        Audience::of_in(resource, cloud)
    }
}

/// Which audiences a family of routes accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteFamily {
    /// Azure Resource Manager: ARM tokens only.
    Arm,
    /// Azure ML data plane (MLflow, run history): ML or ARM tokens.
    MlDataPlane,
}

impl RouteFamily {
    fn accepts(self, aud: Audience) -> bool {
        match self {
            RouteFamily::Arm => aud == Audience::Arm,
            RouteFamily::MlDataPlane => matches!(aud, Audience::Ml | Audience::Arm),
        }
    }
}

// ---- signing key and tokens ----------------------------------------------------------------

const SIGNING_KEY_FILE: &str = "entra_signing.pk8";

/// The tenant's token signing key (RSA 2048, persisted in the state dir).
pub struct Entra {
    key: RsaKeyPair,
    kid: String,
}

/// What a valid token says about its caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub oid: String,
    pub appid: String,
    pub audience: Audience,
}

impl Entra {
    pub fn open(dir: &FsPath) -> Result<Entra, String> {
        let path = dir.join(SIGNING_KEY_FILE);
        let der = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = RsaKeyPair::generate(KeySize::Rsa2048)
                    .map_err(|_| "generating the Entra signing key failed".to_string())?;
                let der = key
                    .as_der()
                    .map_err(|_| "encoding the Entra signing key failed".to_string())?
                    .as_ref()
                    .to_vec();
                write_atomic(&path, &der).map_err(|e| format!("{}: {e}", path.display()))?;
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
                }
                der
            }
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let key = RsaKeyPair::from_pkcs8(&der)
            .map_err(|e| format!("{}: not an RSA key: {e}", path.display()))?;
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY,
            key.public_key().as_ref(),
        );
        let kid = B64URL.encode(digest.as_ref());
        Ok(Entra { key, kid })
    }

    /// The public key as a JWK (`kty`, `use`, `kid`, `x5t`, `n`, `e`), as in Entra's
    /// `discovery/v2.0/keys`.
    pub fn jwk(&self) -> Value {
        let public = self.key.public_key();
        let n = public.modulus().big_endian_without_leading_zero();
        let e = public.exponent().big_endian_without_leading_zero();
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": B64URL.encode(n),
            "e": B64URL.encode(e),
        })
    }

    /// A v1.0 access token for `resource` (the scope without `/.default`).
    pub fn issue(&self, tenant: &str, p: &Principal, resource: &str, ttl_s: u64) -> String {
        let now = now_ms() / 1000;
        let header = json!({ "typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid });
        let issuer = format!("https://sts.windows.net/{tenant}/");
        let nonce = |n: usize| {
            let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
            B64URL.encode(bytes)
        };
        let claims = json!({
            "aud": resource,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + ttl_s,
            "aio": nonce(36),
            "appid": p.client_id,
            "appidacr": "1",
            "idp": issuer,
            "idtyp": "app",
            "oid": p.object_id,
            "rh": format!("0.{}.", nonce(40)),
            "sub": p.object_id,
            "tid": tenant,
            "uti": nonce(16),
            "ver": "1.0",
        });
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let mut sig = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("RSA signing with a valid key");
        format!("{signing_input}.{}", B64URL.encode(sig))
    }

    /// The claims of a token this tenant signed, or `None` (forged, malformed, other key).
    fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let header: Value = serde_json::from_slice(&B64URL.decode(h).ok()?).ok()?;
        if header["alg"] != "RS256" {
            return None;
        }
        let sig = B64URL.decode(s).ok()?;
        let public = UnparsedPublicKey::new(
            &signature::RSA_PKCS1_2048_8192_SHA256,
            self.key.public_key().as_ref(),
        );
        public.verify(format!("{h}.{c}").as_bytes(), &sig).ok()?;
        serde_json::from_slice(&B64URL.decode(c).ok()?).ok()
    }
}

// ---- bearer check --------------------------------------------------------------------------

/// Accepts only `Authorization: Bearer <token signed by this tenant, not expired>` whose
/// audience the route family accepts.
pub fn check_bearer(
    app: &AppState,
    headers: &HeaderMap,
    family: RouteFamily,
) -> Result<Caller, ArmError> {
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
    let Some(claims) = app.entra.verify(token) else {
        return Err(ArmError::unauthorized(
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )
        .with_header("www-authenticate", challenge));
    };
    let exp_ms = claims["exp"].as_u64().unwrap_or(0) * 1000;
    if exp_ms <= now_ms() {
        return Err(ArmError::unauthorized(
            "ExpiredAuthenticationToken",
            format!(
                "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                rfc3339(exp_ms),
                rfc3339(now_ms())
            ),
        )
        .with_header("www-authenticate", challenge));
    }
    let aud = claims["aud"].as_str().unwrap_or_default();
    let audience =
        Audience::in_cloud(aud, &app.base_url, app.config.cloud).filter(|a| family.accepts(*a));
    let Some(audience) = audience else {
        let cloud = app.config.cloud;
        let both = |a: &str| format!("'{a}/','{a}'");
        let [core, arm] = cloud.arm_audiences().map(|a| a.trim_end_matches('/'));
        let allowed = match family {
            RouteFamily::Arm => format!("{},{}", both(core), both(arm)),
            RouteFamily::MlDataPlane => format!("{},'{core}/','{arm}/'", both(cloud.ml_audience())),
        };
        return Err(ArmError::unauthorized(
            "InvalidAuthenticationTokenAudience",
            format!(
                "The access token has been obtained for wrong audience or resource '{aud}'. It should exactly match with one of the allowed audiences {allowed}."
            ),
        )
        .with_header("www-authenticate", challenge));
    };
    Ok(Caller {
        oid: claims["oid"].as_str().unwrap_or_default().to_string(),
        appid: claims["appid"].as_str().unwrap_or_default().to_string(),
        audience,
    })
}

/// The ARM action a request performs, e.g. `Microsoft.MachineLearningServices/workspaces/
/// computes/write`, and its scope (the resource id); `None` for paths outside a provider.
pub fn arm_action(method: &str, path: &str) -> Option<(String, String)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let p = segs
        .iter()
        .position(|s| s.eq_ignore_ascii_case("providers"))?;
    let namespace = *segs.get(p + 1)?;
    let rest = &segs[p + 2..];
    let mut types = Vec::new();
    let mut i = 0;
    let mut scope_end = p + 2;
    let mut trailing_action = None;
    while i < rest.len() {
        match rest.get(i + 1) {
            Some(_) => {
                types.push(rest[i]);
                i += 2;
                scope_end = p + 2 + i;
            }
            None => {
                if method == "POST" {
                    trailing_action = Some(rest[i]);
                } else {
                    types.push(rest[i]);
                    scope_end = p + 2 + i + 1;
                }
                i += 1;
            }
        }
    }
    let verb = match (method, trailing_action) {
        (_, Some(a)) => format!("{a}/action"),
        ("GET" | "HEAD", _) => "read".into(),
        ("DELETE", _) => "delete".into(),
        _ => "write".into(),
    };
    let mut action = namespace.to_string();
    for t in &types {
        action.push('/');
        action.push_str(t);
    }
    action.push('/');
    action.push_str(&verb);
    let scope = format!("/{}", segs[..scope_end.min(segs.len())].join("/"));
    Some((action, scope))
}

/// 403 `AuthorizationFailed` unless the caller's roles grant the request's ARM action.
pub fn authorize(
    app: &AppState,
    caller: &Caller,
    method: &str,
    path: &str,
) -> Result<(), ArmError> {
    let Some((action, scope)) = arm_action(method, path) else {
        return Ok(());
    };
    let allowed = app
        .config
        .principal_by_oid(&caller.oid)
        .is_some_and(|p| p.may(&action));
    if allowed {
        return Ok(());
    }
    Err(ArmError::new(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        format!(
            "The client '{}' with object id '{}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
            caller.appid, caller.oid
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_from_paths() {
        let ws = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws";
        assert_eq!(
            arm_action("PUT", &format!("{ws}/computes/gpu")).unwrap(),
            (
                "Microsoft.MachineLearningServices/workspaces/computes/write".into(),
                format!("{ws}/computes/gpu")
            )
        );
        assert_eq!(
            arm_action(
                "POST",
                &format!("{ws}/datastores/workspaceblobstore/listSecrets")
            )
            .unwrap(),
            (
                "Microsoft.MachineLearningServices/workspaces/datastores/listSecrets/action".into(),
                format!("{ws}/datastores/workspaceblobstore")
            )
        );
        assert_eq!(
            arm_action("GET", &format!("{ws}/computes")).unwrap().0,
            "Microsoft.MachineLearningServices/workspaces/computes/read"
        );
        assert_eq!(
            arm_action("GET", ws).unwrap().0,
            "Microsoft.MachineLearningServices/workspaces/read"
        );
        assert!(arm_action("GET", "/subscriptions/s/resourceGroups/rg").is_none());
    }

    #[test]
    fn role_definitions() {
        let p = |roles: &[&str]| Principal {
            client_id: "c".into(),
            client_secret: "s".into(),
            object_id: "o".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            federated_credentials: vec![],
            client_certificates: vec![],
        };
        let ml = "Microsoft.MachineLearningServices/workspaces";
        let reader = p(&["Reader", "Storage Blob Data Reader"]);
        assert!(reader.may(&format!("{ml}/computes/read")));
        assert!(!reader.may(&format!("{ml}/computes/write")));
        assert!(!reader.may(&format!("{ml}/datastores/listSecrets/action")));
        assert_eq!(reader.blob_data_access(), Some(false));
        let ds = p(&["AzureML Data Scientist"]);
        assert!(ds.may(&format!("{ml}/jobs/write")));
        assert!(ds.may(&format!("{ml}/datastores/listSecrets/action")));
        assert!(!ds.may(&format!("{ml}/computes/write")));
        assert!(!ds.may(&format!("{ml}/computes/delete")));
        assert!(!ds.may(&format!("{ml}/write")));
        assert!(p(&["Contributor"]).may(&format!("{ml}/computes/delete")));
        assert!(!p(&["Storage Blob Data Contributor"]).may(&format!("{ml}/read")));
    }

    #[test]
    fn audiences_follow_the_scope_resource() {
        assert_eq!(
            Audience::of("https://management.azure.com"),
            Some(Audience::Arm)
        );
        assert_eq!(
            Audience::of("https://management.azure.com/"),
            Some(Audience::Arm)
        );
        assert_eq!(
            Audience::of("https://storage.azure.com"),
            Some(Audience::Storage)
        );
        assert_eq!(Audience::of("https://ml.azure.com"), Some(Audience::Ml));
        assert_eq!(Audience::of("https://vault.azure.net"), None);
        // The emulator's cloud: its resourceManager URL is ARM's resource there.
        let base = "https://127.0.0.1:8443";
        assert_eq!(
            Audience::in_cloud(base, base, CloudShape::Public),
            Some(Audience::Arm)
        );
        assert_eq!(
            Audience::in_cloud("https://127.0.0.1:8443/", base, CloudShape::Public),
            Some(Audience::Arm)
        );
        assert_eq!(
            Audience::in_cloud("https://127.0.0.1:9999", base, CloudShape::Public),
            None
        );
        assert_eq!(
            Audience::in_cloud("https://ml.azure.com", base, CloudShape::Public),
            Some(Audience::Ml)
        );
        // Wearing US Government's names: its ARM and ML audiences, not public Azure's.
        let gov = CloudShape::UsGovernment;
        assert_eq!(
            Audience::of_in("https://management.usgovcloudapi.net/", gov),
            Some(Audience::Arm)
        );
        assert_eq!(
            Audience::of_in("https://management.core.usgovcloudapi.net", gov),
            Some(Audience::Arm)
        );
        assert_eq!(
            Audience::of_in("https://ml.azure.us", gov),
            Some(Audience::Ml)
        );
        assert_eq!(
            Audience::of_in("https://storage.azure.com", gov),
            Some(Audience::Storage)
        );
        assert_eq!(Audience::of_in("https://management.azure.com", gov), None);
        assert_eq!(Audience::of_in("https://ml.azure.com", gov), None);
        assert_eq!(Audience::in_cloud(base, base, gov), Some(Audience::Arm));
        assert!(RouteFamily::MlDataPlane.accepts(Audience::Arm));
        assert!(!RouteFamily::Arm.accepts(Audience::Storage));
        assert!(!RouteFamily::MlDataPlane.accepts(Audience::Storage));
    }

    #[test]
    fn tokens_verify_and_carry_v1_claims() {
        let dir = tempfile::tempdir().unwrap();
        let entra = Entra::open(dir.path()).unwrap();
        let p = Principal {
            client_id: "app".into(),
            client_secret: "s".into(),
            object_id: "oid-1".into(),
            roles: vec![],
            federated_credentials: vec![],
            client_certificates: vec![],
        };
        let t = entra.issue("tid", &p, "https://storage.azure.com", 60);
        let claims = entra.verify(&t).unwrap();
        assert_eq!(claims["aud"], "https://storage.azure.com");
        assert_eq!(claims["iss"], "https://sts.windows.net/tid/");
        assert_eq!(claims["ver"], "1.0");
        assert_eq!(claims["idtyp"], "app");
        assert_eq!(claims["oid"], "oid-1");
        let mut forged = t.clone();
        forged.pop();
        forged.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(entra.verify(&forged).is_none());
        // the same key after a restart
        let again = Entra::open(dir.path()).unwrap();
        assert!(again.verify(&t).is_some());
    }
}
