//! Code assets: `{WS}/codes/{name}/versions/{version}` PUT/GET/DELETE, version lists (with
//! the SDK's `?hash=&hashVersion=` lookup), the container, and
//! `POST …/versions/{version}/startPendingUpload` (a container SAS for the upload).
//!
//! `codeUri` is immutable: changing it → 409 `UserError` "Asset paths cannot be updated."
//! (the service's text that azure-ai-ml matches). The emulator does not check uploads.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::asset::{
    AssetKind, AssetVersion, NamePath, VersionPath, WsPath, check_name, version_key,
};
use super::error::{ArmError, ArmResult};
use super::{
    ArmPath, ReqCtx, WS_PATH, parse_json_object, resolve_workspace, respond, violations_error,
};
use crate::app::AppState;
use crate::pipeline::{OpName, PathParams, RouteExt};
use crate::schema::{Mode, catalog};
use crate::util::{new_guid, now_ms, stable_guid};

pub static KIND: AssetKind = AssetKind {
    segment: "codes",
    model: "CodeVersion",
    label: "Code",
    mutable: &["description", "tags", "properties", "isArchived"],
    normalize,
    conflict,
    render_extra: |_| {},
    map: |d| &d.codes,
    map_mut: |d| &mut d.codes,
};

/// How long a pending-upload SAS is valid.
const SAS_VALIDITY_MS: u64 = 24 * 3600 * 1000;

pub fn routes(app: &AppState) -> Router<AppState> {
    let base = format!("{WS_PATH}/codes");
    let one = format!("{base}/{{name}}/versions/{{version}}");
    Router::new()
        .route(&base, get(list_containers).arm(app, "code.container.list"))
        .route(
            &format!("{base}/{{name}}"),
            get(get_container).arm(app, "code.container.get"),
        )
        .route(
            &format!("{base}/{{name}}/versions"),
            get(list_versions).arm(app, "code.list"),
        )
        .route(&one, get(get_version).arm(app, "code.get"))
        .route(
            &one,
            axum::routing::put(put_version).arm(app, OpName::Dynamic(put_op_name)),
        )
        .route(
            &one,
            axum::routing::delete(delete_version).arm(app, "code.delete"),
        )
        .route(
            &format!("{one}/startPendingUpload"),
            post(start_pending_upload).arm(app, "code.upload.start"),
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
    if app.store.read(|d| d.training.codes.contains_key(&key)) {
        "code.update"
    } else {
        "code.create"
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

/// `?hash=<sha256>&hashVersion=202208` finds versions by content hash
/// (`properties.properties.hash_sha256` / `hash_version`).
async fn list_versions(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<NamePath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    let hash = ctx.param("hash").map(str::to_string);
    let hash_version = ctx.param("hashVersion").map(str::to_string);
    KIND.list_versions(&app, &p, &ctx, &|v: &AssetVersion| {
        let props = &v.properties["properties"];
        hash.as_ref()
            .is_none_or(|h| props["hash_sha256"].as_str() == Some(h))
            && hash_version
                .as_ref()
                .is_none_or(|h| props["hash_version"].as_str() == Some(h))
    })
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

fn normalize(props: &Value) -> ArmResult<Value> {
    let mut p = props.as_object().cloned().unwrap_or_default();
    p.retain(|_, v| !v.is_null());
    match p.get("codeUri").and_then(Value::as_str) {
        Some(u) if !u.trim().is_empty() => {}
        _ => {
            return Err(ArmError::bad_request("The 'codeUri' field is required.")
                .with_target("properties.codeUri"));
        }
    }
    p.entry("isAnonymous").or_insert_with(|| json!(false));
    p.entry("isArchived").or_insert_with(|| json!(false));
    Ok(Value::Object(p))
}

fn conflict(_existing: &AssetVersion, field: &str) -> ArmError {
    ArmError::conflict("Asset paths cannot be updated.")
        .with_code("UserError")
        .with_target(field)
}

/// `POST …/startPendingUpload` `{"pendingUploadType":"TemporaryBlobReference"|"None",
/// "pendingUploadId"?}` → 200 with a blob URI under `LocalUpload/<id>` and a container SAS.
async fn start_pending_upload(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<VersionPath>,
    body: Bytes,
) -> ArmResult<Response> {
    let ws = resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    check_name(&p.name, "name")?;
    let req = if body.is_empty() {
        Value::Object(Map::new())
    } else {
        parse_json_object(&body)?
    };
    violations_error(catalog().validate("PendingUploadRequestDto", &req, Mode::Create, ""))?;
    let upload_id = req["pendingUploadId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map_or_else(new_guid, str::to_string);
    let upload_type = req["pendingUploadType"]
        .as_str()
        .unwrap_or("TemporaryBlobReference");
    let storage = &app.config.storage;
    let ws_id = super::workspace::workspace_id(&p.sub, &ws);
    let container = storage.container(&stable_guid(&ws_id.to_ascii_lowercase()));
    if storage.uploads_enabled() {
        // Best effort: the client is about to upload into this container.
        let client = crate::storage::client();
        if let Err(e) = storage.ensure_container(&client, &container).await {
            eprintln!("clara-emulator: storage: {e}");
        }
    }
    let blob_uri = format!("{}/{container}/LocalUpload/{upload_id}", storage.endpoint());
    let now = now_ms();
    let sas = storage.container_sas(&container, now, now + SAS_VALIDITY_MS);
    let short: String = ws
        .name
        .to_ascii_lowercase()
        .replace(['-', '_'], "")
        .chars()
        .take(12)
        .collect();
    let body = json!({
        "blobReferenceForConsumption": {
            "blobUri": blob_uri,
            "storageAccountArmId": format!(
                "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Storage/storageAccounts/st{short}",
                p.sub, ws.resource_group
            ),
            "credential": { "credentialType": "SAS", "sasUri": format!("{blob_uri}?{sas}") },
        },
        "pendingUploadId": upload_id,
        "pendingUploadType": upload_type,
    });
    Ok(respond(StatusCode::OK, Some(body), &[]))
}
