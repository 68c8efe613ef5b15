//! Datastores: `GET {WS}/datastores[/{name}]` and `POST {WS}/datastores/{name}/listSecrets`.
//!
//! Every workspace has the four datastores Azure creates with it (read-only here):
//! `workspaceblobstore` (default, AzureBlob, container `azureml-blobstore-<workspace guid>`),
//! `workspaceartifactstore` (AzureBlob, container `azureml`), `workspacefilestore` and
//! `workspaceworkingdirectory` (AzureFile). All use account-key credentials of the account in
//! the `storage` config (`crate::storage`; default Azurite's `devstoreaccount1` and its
//! well-known key). GET never returns secrets; listSecrets returns
//! `{"secretsType":"AccountKey","key":…}`, or for a blob datastore asked with
//! `{"expirableSecret":true}` a container SAS `{"secretsType":"Sas","sasToken":…}`.
//! With `storage.identity_based` they are identity-based (`credentialsType: "None"`) and
//! listSecrets has nothing to return (400).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ArmError, ArmResult};
use super::{
    ArmPath, ReqCtx, WS_PATH, parse_json_object, resolve_workspace, respond, violations_error,
};
use crate::app::AppState;
use crate::config::WorkspaceConfig;
use crate::pipeline::RouteExt;
use crate::schema::{Mode, catalog};
use crate::storage::AZURITE_KEY;
use crate::util::{now_ms, stable_guid};

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(
            &format!("{WS_PATH}/datastores"),
            get(list).arm(app, "datastore.list"),
        )
        .route(
            &format!("{WS_PATH}/datastores/{{name}}"),
            get(get_one).arm(app, "datastore.get"),
        )
        .route(
            &format!("{WS_PATH}/datastores/{{name}}/listSecrets"),
            post(list_secrets).arm(app, "datastore.listSecrets"),
        )
        .route("/_emulator/storage", get(admin_storage))
}

#[derive(Deserialize)]
struct WsPath {
    sub: String,
    rg: String,
    ws: String,
}

#[derive(Deserialize)]
struct DsPath {
    sub: String,
    rg: String,
    ws: String,
    name: String,
}

struct Seed {
    name: &'static str,
    blob: bool,
    default: bool,
}

const SEEDS: &[Seed] = &[
    Seed {
        name: "workspaceblobstore",
        blob: true,
        default: true,
    },
    Seed {
        name: "workspaceartifactstore",
        blob: true,
        default: false,
    },
    Seed {
        name: "workspacefilestore",
        blob: false,
        default: false,
    },
    Seed {
        name: "workspaceworkingdirectory",
        blob: false,
        default: false,
    },
];

fn find(name: &str) -> Option<&'static Seed> {
    SEEDS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// The workspace GUID (`properties.workspaceId` of the workspace).
fn workspace_guid(app: &AppState, ws: &WorkspaceConfig) -> String {
    let id = super::workspace::workspace_id(&app.config.subscription_id, ws);
    stable_guid(&id.to_ascii_lowercase())
}

/// The blob container of a blob datastore (`workspaceblobstore`: the `storage` config's,
/// default `azureml-blobstore-<workspace guid>`).
fn container(app: &AppState, seed: &Seed, guid: &str) -> String {
    match seed.name {
        "workspaceblobstore" => app.config.storage.container(guid),
        _ => "azureml".to_string(),
    }
}

/// The blob container of `workspaceblobstore` for a workspace.
pub fn default_container(app: &AppState, ws: &WorkspaceConfig) -> String {
    app.config.storage.container(&workspace_guid(app, ws))
}

fn render(app: &AppState, ws: &WorkspaceConfig, seed: &Seed) -> Value {
    let ws_id = super::workspace::workspace_id(&app.config.subscription_id, ws);
    let guid = workspace_guid(app, ws);
    let mut props = json!({
        "description": null,
        "tags": {},
        "properties": {},
        "isDefault": seed.default,
        "credentials": credentials(app),
        "accountName": app.config.storage.account(),
        "endpoint": app.config.cloud.storage_suffix(),
        "protocol": "https",
        "serviceDataAccessAuthIdentity": "None",
        "resourceGroup": ws.resource_group,
        "subscriptionId": app.config.subscription_id,
    });
    if seed.blob {
        props["datastoreType"] = json!("AzureBlob");
        props["containerName"] = json!(container(app, seed, &guid));
    } else {
        props["datastoreType"] = json!("AzureFile");
        props["fileShareName"] = json!(match seed.name {
            "workspacefilestore" => format!("azureml-filestore-{guid}"),
            _ => format!("code-{guid}"),
        });
    }
    json!({
        "id": format!("{ws_id}/datastores/{}", seed.name),
        "name": seed.name,
        "type": "Microsoft.MachineLearningServices/workspaces/datastores",
        "properties": props,
        "systemData": {
            "createdAt": "2025-01-01T00:00:00.0000000Z",
            "createdBy": app.config.client_id,
            "createdByType": "Application",
            "lastModifiedAt": "2025-01-01T00:00:00.0000000Z",
            "lastModifiedBy": app.config.client_id,
            "lastModifiedByType": "Application",
        },
    })
}

/// `AccountKeyDatastoreCredentials` (GET shows the secrets' type, never their value), or
/// `NoneDatastoreCredentials` for identity-based datastores (spec: "Empty/none datastore
/// credentials", discriminator value `None`, no other members).
fn credentials(app: &AppState) -> Value {
    if app.config.storage.identity_based {
        json!({ "credentialsType": "None" })
    } else {
        json!({
            "credentialsType": "AccountKey",
            "secrets": { "secretsType": "AccountKey" },
        })
    }
}

fn not_found(p: &DsPath) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!(
            "The Resource 'Microsoft.MachineLearningServices/workspaces/{}/datastores/{}' under resource group '{}' was not found.",
            p.ws, p.name, p.rg
        ),
    )
}

async fn list(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<WsPath>,
    ctx: ReqCtx,
) -> ArmResult<Response> {
    let ws = resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let only_default = match ctx.param("isDefault") {
        None => None,
        Some(v) if v.eq_ignore_ascii_case("true") => Some(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Some(false),
        Some(v) => {
            return Err(ArmError::bad_request(format!(
                "The value '{v}' is not valid for 'isDefault'."
            ))
            .with_target("isDefault"));
        }
    };
    let names: Option<Vec<String>> = ctx.param("names").map(|n| {
        n.split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .collect()
    });
    let value: Vec<Value> = SEEDS
        .iter()
        .filter(|s| only_default.is_none_or(|d| s.default == d))
        .filter(|s| {
            names
                .as_ref()
                .is_none_or(|n| n.contains(&s.name.to_string()))
        })
        .map(|s| render(&app, &ws, s))
        .collect();
    Ok(respond(
        StatusCode::OK,
        Some(json!({ "value": value })),
        &[],
    ))
}

async fn get_one(State(app): State<AppState>, ArmPath(p): ArmPath<DsPath>) -> ArmResult<Response> {
    let ws = resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let seed = find(&p.name).ok_or_else(|| not_found(&p))?;
    Ok(respond(StatusCode::OK, Some(render(&app, &ws, seed)), &[]))
}

/// `POST …/listSecrets` with an optional `SecretExpiry` body: the account key, or for a blob
/// datastore with `expirableSecret: true` a container SAS valid `expireAfterHours` (default 1).
async fn list_secrets(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<DsPath>,
    body: Bytes,
) -> ArmResult<Response> {
    let ws = resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let mut expiry = None;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let v = parse_json_object(&body)?;
        violations_error(catalog().validate("SecretExpiry", &v, Mode::Create, ""))?;
        if v["expirableSecret"].as_bool() == Some(true) {
            let hours = v["expireAfterHours"].as_u64().unwrap_or(1).clamp(1, 24 * 7);
            expiry = Some(hours);
        }
    }
    let seed = find(&p.name).ok_or_else(|| not_found(&p))?;
    let storage = &app.config.storage;
    if storage.identity_based {
        // The spec's DatastoreSecrets has no variant for `None` credentials, so no 200 body
        // can describe them; azure-ai-ml never asks (`_fetch_and_populate_secret` skips
        // NoneDatastoreCredentials). The real error text is not published.
        return Err(ArmError::bad_request(format!(
            "Datastore '{}' uses identity-based access (credentialsType None) and has no secrets to list.",
            seed.name
        ))
        .with_code("UserError"));
    }
    let body = match expiry {
        Some(hours) if seed.blob => {
            let now = now_ms();
            let c = container(&app, seed, &workspace_guid(&app, &ws));
            json!({
                "secretsType": "Sas",
                "sasToken": storage.container_sas(&c, now, now + hours * 3_600_000),
            })
        }
        _ => json!({
            "secretsType": "AccountKey",
            "key": storage.account_key.as_deref().unwrap_or(AZURITE_KEY),
        }),
    };
    Ok(respond(StatusCode::OK, Some(body), &[]))
}

async fn admin_storage(State(app): State<AppState>) -> Response {
    let s = &app.config.storage;
    axum::Json(json!({
        "account_name": s.account(),
        "blob_endpoint": s.blob_endpoint,
        "datastores": SEEDS.iter().map(|d| d.name).collect::<Vec<_>>(),
        "default_containers": app.config.workspaces.iter().map(|w| json!({
            "workspace": w.name, "resource_group": w.resource_group, "container": default_container(&app, w)
        })).collect::<Vec<_>>(),
    }))
    .into_response()
}
