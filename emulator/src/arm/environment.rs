//! Environment versions: `{WS}/environments/{name}/versions/{version}` PUT/GET/DELETE,
//! `{WS}/environments/{name}/versions` (list), `{WS}/environments/{name}` (container with
//! `latestVersion`/`nextVersion`) and `{WS}/environments` (containers).
//!
//! Content (image, condaFile, build, osType, inferenceConfig, autoRebuild, isAnonymous) is
//! immutable: a PUT that changes it → 409 `Conflict` naming the field. description, tags,
//! properties, stage and isArchived (archive = PUT with `isArchived: true`) may change → 200.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::asset::{AssetKind, AssetVersion, NamePath, VersionPath, WsPath, version_key};
use super::error::{ArmError, ArmResult};
use super::{ArmPath, ReqCtx, WS_PATH};
use crate::app::AppState;
use crate::pipeline::{OpName, PathParams, RouteExt};

pub static KIND: AssetKind = AssetKind {
    segment: "environments",
    model: "EnvironmentVersion",
    label: "Environment",
    mutable: &["description", "tags", "properties", "isArchived", "stage"],
    normalize,
    conflict,
    render_extra,
    map: |d| &d.environments,
    map_mut: |d| &mut d.environments,
};

pub fn routes(app: &AppState) -> Router<AppState> {
    let base = format!("{WS_PATH}/environments");
    let one = format!("{base}/{{name}}/versions/{{version}}");
    Router::new()
        .route(
            &base,
            get(list_containers).arm(app, "environment.container.list"),
        )
        .route(
            &format!("{base}/{{name}}"),
            get(get_container).arm(app, "environment.container.get"),
        )
        .route(
            &format!("{base}/{{name}}/versions"),
            get(list_versions).arm(app, "environment.list"),
        )
        .route(&one, get(get_version).arm(app, "environment.get"))
        .route(
            &one,
            axum::routing::put(put_version).arm(app, OpName::Dynamic(put_op_name)),
        )
        .route(
            &one,
            axum::routing::delete(delete_version).arm(app, "environment.delete"),
        )
}

fn put_op_name(app: &AppState, p: &PathParams) -> &'static str {
    let key = version_key(
        p.get("sub"),
        p.get("rg"),
        p.get("ws"),
        p.get("name"),
        p.get("version"),
    );
    if app
        .store
        .read(|d| d.training.environments.contains_key(&key))
    {
        "environment.update"
    } else {
        "environment.create"
    }
}

async fn list_containers(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<WsPath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    KIND.list_containers(&app, &p, &ctx)
}

async fn get_container(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<NamePath>,
) -> ArmResult<Response> {
    KIND.get_container(&app, &p)
}

async fn list_versions(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<NamePath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    KIND.list_versions(&app, &p, &ctx, &|_| true)
}

async fn get_version(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<VersionPath>,
) -> ArmResult<Response> {
    KIND.get_version(&app, &p)
}

async fn put_version(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<VersionPath>,
    body: Bytes,
) -> ArmResult<Response> {
    KIND.put_version(&app, &p, &body)
}

async fn delete_version(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<VersionPath>,
) -> ArmResult<Response> {
    KIND.delete_version(&app, &p)
}

/// Rules beyond the schema, and defaults (osType Linux, autoRebuild Disabled,
/// isAnonymous/isArchived false).
fn normalize(props: &Value) -> ArmResult<Value> {
    let mut p = props.as_object().cloned().unwrap_or_default();
    p.retain(|_, v| !v.is_null());
    let image = p.get("image").and_then(Value::as_str);
    let has_build = p.contains_key("build");
    match (image, has_build) {
        (Some(i), _) if i.trim().is_empty() => {
            return Err(ArmError::bad_request("The image must not be empty.")
                .with_target("properties.image"));
        }
        (Some(_), true) => {
            return Err(ArmError::bad_request(
                "Docker image or build context should be provided, not both.",
            )
            .with_target("properties.build"));
        }
        (None, false) => {
            return Err(ArmError::bad_request(
                "An environment needs either an image (properties.image) or a build context (properties.build).",
            )
            .with_target("properties.image"));
        }
        _ => {}
    }
    if has_build && p.contains_key("condaFile") {
        return Err(ArmError::bad_request(
            "A conda file cannot be combined with a build context; put the conda setup into the Dockerfile.",
        )
        .with_target("properties.condaFile"));
    }
    if let Some(ctx) = p
        .get("build")
        .and_then(|b| b.get("contextUri"))
        .and_then(Value::as_str)
        && ctx.trim().is_empty()
    {
        return Err(ArmError::bad_request("build.contextUri must not be empty.")
            .with_target("properties.build.contextUri"));
    }
    p.entry("osType").or_insert_with(|| json!("Linux"));
    p.entry("autoRebuild").or_insert_with(|| json!("Disabled"));
    p.entry("isAnonymous").or_insert_with(|| json!(false));
    p.entry("isArchived").or_insert_with(|| json!(false));
    Ok(Value::Object(p))
}

fn conflict(existing: &AssetVersion, field: &str) -> ArmError {
    ArmError::conflict(format!(
        "Environment '{}' version '{}' already exists with different content ('{field}' differs). Environment versions are immutable: only description, tags, properties, stage and isArchived can be updated. Create a new version instead (see nextVersion on the environment container).",
        existing.name, existing.version
    ))
    .with_target(field)
}

fn render_extra(p: &mut Map<String, Value>) {
    p.insert("environmentType".into(), json!("UserCreated"));
    p.entry("stage").or_insert_with(|| json!("Development"));
}
