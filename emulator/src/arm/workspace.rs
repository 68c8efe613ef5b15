//! Workspace GET/list (workspaces come from the config; they are not created through the
//! API) and the workspace discovery document.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ArmError, ArmResult};
use super::{ArmPath, PROVIDER, WS_PATH, check_subscription, resolve_workspace, respond};
use crate::app::AppState;
use crate::config::WorkspaceConfig;
use crate::pipeline::RouteExt;
use crate::util::stable_guid;

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new()
        .route(WS_PATH, get(get_workspace).arm(app, "workspace.get"))
        .route(
            "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces",
            get(list_workspaces).arm(app, "workspace.list"),
        )
        .route("/discovery", get(discovery).token(app, "workspace.discovery"))
}

#[derive(Deserialize)]
struct WsPath {
    sub: String,
    rg: String,
    ws: String,
}

#[derive(Deserialize)]
struct RgPath {
    sub: String,
    rg: String,
}

async fn get_workspace(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<WsPath>,
) -> ArmResult<Response> {
    let ws = resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    Ok(respond(StatusCode::OK, Some(render(&app, &ws)), &[]))
}

async fn list_workspaces(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<RgPath>,
) -> ArmResult<Response> {
    check_subscription(&app, &p.sub)?;
    if !app.config.has_resource_group(&p.rg) {
        return Err(ArmError::not_found(
            "ResourceGroupNotFound",
            format!("Resource group '{}' could not be found.", p.rg),
        ));
    }
    let value: Vec<Value> = app
        .config
        .workspaces
        .iter()
        .filter(|w| w.resource_group.eq_ignore_ascii_case(&p.rg))
        .map(|w| render(&app, w))
        .collect();
    Ok(respond(
        StatusCode::OK,
        Some(json!({ "value": value })),
        &[],
    ))
}

/// ARM id of a workspace.
pub fn workspace_id(sub: &str, ws: &WorkspaceConfig) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{}/providers/{PROVIDER}/workspaces/{}",
        ws.resource_group, ws.name
    )
}

/// Workspace body shaped like `Workspace/get.json`; service URLs point at this emulator.
pub fn render(app: &AppState, ws: &WorkspaceConfig) -> Value {
    let sub = &app.config.subscription_id;
    let rg = &ws.resource_group;
    let id = workspace_id(sub, ws);
    let rg_id = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers");
    let short = ws.name.to_ascii_lowercase().replace(['-', '_'], "");
    let short: String = short.chars().take(12).collect();
    let workspace_guid = stable_guid(&id.to_ascii_lowercase());
    let mut body = json!({
        "id": id,
        "name": ws.name,
        "type": format!("{PROVIDER}/workspaces"),
        "location": ws.location,
        "tags": {},
        "kind": "Default",
        "sku": { "name": "Basic", "tier": "Basic" },
        "identity": {
            "type": "SystemAssigned",
            "principalId": stable_guid(&format!("{id}/identity")),
            "tenantId": app.config.tenant_id,
        },
        "systemData": {
            "createdAt": "2025-01-01T00:00:00.0000000Z",
            "createdBy": app.config.client_id,
            "createdByType": "Application",
            "lastModifiedAt": "2025-01-01T00:00:00.0000000Z",
            "lastModifiedBy": app.config.client_id,
            "lastModifiedByType": "Application",
        },
        "properties": {
            "friendlyName": ws.name,
            "description": "Azure ML workspace served by clara-emulator",
            "workspaceId": workspace_guid,
            "provisioningState": "Succeeded",
            "tenantId": app.config.tenant_id,
            "storageAccount": format!("{rg_id}/Microsoft.Storage/storageAccounts/st{short}"),
            "keyVault": format!("{rg_id}/Microsoft.KeyVault/vaults/kv-{short}"),
            "applicationInsights": format!("{rg_id}/microsoft.insights/components/appi-{short}"),
            "containerRegistry": format!("{rg_id}/Microsoft.ContainerRegistry/registries/cr{short}"),
            "discoveryUrl": format!("{}/discovery", app.base_url),
            "mlFlowTrackingUri": format!("azureml://{}/mlflow/v1.0{id}", app.authority()),
            "hbiWorkspace": false,
            "publicNetworkAccess": "Enabled",
            "allowPublicAccessWhenBehindVnet": false,
            "storageHnsEnabled": false,
            "serviceProvisionedResourceGroup": format!("{}_{}", ws.name, workspace_guid.replace('-', "")),
            "privateLinkCount": 0,
            "privateEndpointConnections": [],
            "sharedPrivateLinkResources": [],
            "v1LegacyMode": false,
        }
    });
    if !ws.mlflow {
        // Config `mlflow: false`: a workspace without an MLflow tracking URI.
        body["properties"]
            .as_object_mut()
            .map(|p| p.remove("mlFlowTrackingUri"));
    }
    body
}

/// `GET <discoveryUrl>`: every service base URL is this emulator.
async fn discovery(State(app): State<AppState>) -> Response {
    let base = app.base_url.clone();
    let keys = [
        "api",
        "catalog",
        "experimentation",
        "gallery",
        "history",
        "hyperdrive",
        "labeling",
        "modelmanagement",
        "pipelines",
        "studio",
    ];
    let body: serde_json::Map<String, Value> =
        keys.iter().map(|k| (k.to_string(), json!(base))).collect();
    respond(StatusCode::OK, Some(Value::Object(body)), &[])
}
