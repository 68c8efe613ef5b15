//! Azure Resource Manager (Microsoft.MachineLearningServices) routes.
//!
//! Each resource family lives in its own module and contributes a `routes()` router;
//! shared pieces (error shape, api-version check, workspace lookup, extractors, response
//! helpers) are here.

pub mod asset;
pub mod code;
pub mod compute;
pub mod data;
pub mod datastore;
pub mod environment;
pub mod error;
pub mod job;
pub mod lro;
pub mod vm_sizes;
pub mod workspace;

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::app::AppState;
use crate::config::WorkspaceConfig;
use crate::pipeline::LroFailRequested;
use crate::schema::{Violation, ViolationKind};
use error::{ArmError, ArmResult};

pub const PROVIDER: &str = "Microsoft.MachineLearningServices";
/// Prefix of every workspace-scoped route.
pub const WS_PATH: &str = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}";

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .merge(workspace::routes(app))
        .merge(vm_sizes::routes(app))
        .merge(compute::routes(app))
        .merge(lro::routes(app))
        .merge(environment::routes(app))
        .merge(code::routes(app))
        .merge(job::routes(app))
        .merge(crate::mlflow::routes(app))
        .merge(crate::runhistory::routes(app))
        .merge(datastore::routes(app))
        .merge(data::routes(app))
}

/// Every ARM call needs `?api-version=YYYY-MM-DD[-preview]`.
pub fn require_api_version(uri: &Uri) -> ArmResult<()> {
    let query = uri.query().unwrap_or("");
    let version = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned());
    match version {
        None => Err(ArmError::bad_request(
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
        .with_code("MissingApiVersionParameter")),
        Some(v) if is_api_version(&v) => Ok(()),
        Some(v) => Err(ArmError::bad_request(format!(
            "The api-version '{v}' is invalid. The supported versions are of the form 'YYYY-MM-DD' or 'YYYY-MM-DD-preview', e.g. '2025-12-01'."
        ))
        .with_code("InvalidApiVersionParameter")),
    }
}

fn is_api_version(v: &str) -> bool {
    let date = v.strip_suffix("-preview").unwrap_or(v);
    let b = date.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Checks subscription, resource group and workspace, with ARM's 404 codes.
pub fn resolve_workspace(
    app: &AppState,
    sub: &str,
    rg: &str,
    ws: &str,
) -> ArmResult<WorkspaceConfig> {
    check_subscription(app, sub)?;
    if !app.config.has_resource_group(rg) {
        return Err(ArmError::not_found(
            "ResourceGroupNotFound",
            format!("Resource group '{rg}' could not be found."),
        ));
    }
    app.config.workspace(rg, ws).cloned().ok_or_else(|| {
        ArmError::not_found(
            "ResourceNotFound",
            format!("The Resource '{PROVIDER}/workspaces/{ws}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
        )
    })
}

pub fn check_subscription(app: &AppState, sub: &str) -> ArmResult<()> {
    if sub.eq_ignore_ascii_case(&app.config.subscription_id) {
        Ok(())
    } else {
        Err(ArmError::not_found(
            "SubscriptionNotFound",
            format!("The subscription '{sub}' could not be found."),
        ))
    }
}

/// `Path<T>` whose rejection is an ARM 400 instead of axum's plain-text error.
pub struct ArmPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ArmPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ArmError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ArmPath(v))
            .map_err(|e| ArmError::bad_request(format!("Invalid request path: {e}")))
    }
}

/// Query parameters and pipeline flags of the current ARM request.
pub struct ReqCtx {
    pub query: HashMap<String, String>,
    pub lro_fail: bool,
}

impl ReqCtx {
    pub fn api_version(&self) -> &str {
        self.query
            .get("api-version")
            .map_or("2025-12-01", String::as_str)
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReqCtx {
    type Rejection = ArmError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Ok(ReqCtx {
            query,
            lro_fail: parts.extensions.get::<LroFailRequested>().is_some(),
        })
    }
}

/// Parses a JSON object request body (400 `InvalidRequestContent` otherwise).
pub fn parse_json_object(body: &Bytes) -> ArmResult<Value> {
    if body.is_empty() {
        return Err(ArmError::invalid_content(
            "The request content was invalid and could not be deserialized: the request body is empty.",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ArmError::invalid_content(format!(
            "The request content was invalid and could not be deserialized: {e}."
        ))
    })?;
    if !value.is_object() {
        return Err(ArmError::invalid_content(
            "The request content was invalid and could not be deserialized: expected a JSON object.",
        ));
    }
    Ok(value)
}

/// Turns schema violations into one ARM 400 (first violation on top, all in `details`).
pub fn violations_error(violations: Vec<Violation>) -> ArmResult<()> {
    let mut errors: Vec<ArmError> = violations
        .into_iter()
        .map(|v| {
            let code = match v.kind {
                ViolationKind::UnknownMember | ViolationKind::WrongType => "InvalidRequestContent",
                ViolationKind::ReadOnly | ViolationKind::Required | ViolationKind::InvalidEnum => {
                    "BadRequest"
                }
            };
            ArmError::bad_request(v.message)
                .with_code(code)
                .with_target(v.target)
        })
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let first = errors.remove(0);
    if errors.is_empty() {
        return Err(first);
    }
    let mut all = vec![first.clone()];
    all.extend(errors);
    Err(first.with_details(all))
}

/// A JSON (or empty) response with extra headers.
pub fn respond(status: StatusCode, body: Option<Value>, headers: &[(&str, String)]) -> Response {
    let mut resp = match body {
        Some(v) => (status, axum::Json(v)).into_response(),
        None => status.into_response(),
    };
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(*name), HeaderValue::from_str(value)) {
            resp.headers_mut().insert(n, v);
        }
    }
    resp
}

/// ARM-style 404/405 for everything no route matched.
pub async fn fallback(uri: Uri) -> Response {
    let path = uri.path();
    if path.to_ascii_lowercase().starts_with("/subscriptions/") {
        ArmError::not_found(
            "InvalidResourceType",
            format!("The resource type for '{path}' could not be found in the namespace '{PROVIDER}' of the emulator."),
        )
        .into_response()
    } else {
        ArmError::not_found("NotFound", format!("No route for '{path}'.")).into_response()
    }
}

pub async fn method_not_allowed(method: axum::http::Method, uri: Uri) -> Response {
    ArmError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "HttpMethodNotAllowed",
        format!(
            "The HTTP method '{method}' is not supported for '{}'.",
            uri.path()
        ),
    )
    .into_response()
}

/// Canonical casing for the fixed segments of ARM paths (ARM paths are case-insensitive;
/// the router is not). Applied before routing.
pub fn canonicalize_path(path: &str) -> Option<String> {
    const SEGMENTS: &[&str] = &[
        "subscriptions",
        "resourceGroups",
        "providers",
        "Microsoft.MachineLearningServices",
        "workspaces",
        "computes",
        "locations",
        "vmSizes",
        "computeOperationsStatus",
        "computeOperationsResults",
        "environments",
        "codes",
        "versions",
        "startPendingUpload",
        "jobs",
        "cancel",
        "mfeOperationResults",
        "datastores",
        "listSecrets",
        "data",
    ];
    if !path
        .get(..15)
        .is_some_and(|p| p.eq_ignore_ascii_case("/subscriptions/"))
    {
        return None;
    }
    let mut changed = false;
    let canonical: Vec<&str> = path
        .split('/')
        .enumerate()
        .map(|(i, seg)| {
            // Only even positions after the leading empty segment are fixed names
            // (`/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/...`), except the
            // namespace right after `providers`.
            match SEGMENTS.iter().find(|s| s.eq_ignore_ascii_case(seg)) {
                Some(s) if *s != seg && (i % 2 == 1 || s.starts_with("Microsoft.")) => {
                    changed = true;
                    *s
                }
                _ => seg,
            }
        })
        .collect();
    changed.then(|| canonical.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions() {
        assert!(is_api_version("2025-12-01"));
        assert!(is_api_version("2024-10-01-preview"));
        assert!(!is_api_version("latest"));
        assert!(!is_api_version("2025-1-01"));
    }

    #[test]
    fn canonical_paths() {
        assert_eq!(
            canonicalize_path("/subscriptions/s/resourcegroups/rg/providers/microsoft.machinelearningservices/workspaces/w/computes/c").as_deref(),
            Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c")
        );
        // names equal to a fixed segment keep their case
        assert_eq!(
            canonicalize_path(
                "/subscriptions/s/resourceGroups/Computes/providers/Microsoft.MachineLearningServices/workspaces/w"
            ),
            None
        );
        assert_eq!(canonicalize_path("/other"), None);
    }
}
