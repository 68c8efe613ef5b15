//! ARM cloud metadata endpoint: `GET /metadata/endpoints?api-version=…`, the document a
//! client reads to learn a cloud's Resource Manager URL, sign-in authority, token audiences
//! and DNS suffixes. It describes the emulator as a cloud named [`CLOUD_NAME`].
//!
//! Shapes (see emulator/README.md, "Cloud metadata"), from the public clients that read them:
//! - `2022-09-01` and later: **one object** for the cloud that serves it
//!   (hashicorp/go-azure-sdk `sdk/internal/metadata/client.go`, `metaDataResponse20220901`,
//!   decoded as a single struct; the field list below is that struct's).
//! - `2019-05-01` (up to before 2022-09-01): **an array** of cloud objects
//!   (kubernetes-sigs/cloud-provider-azure `pkg/azclient/cloud.go`, `AzureCloudConfigFromURL`,
//!   decodes `[]struct{…}` and takes element 0; azure-ai-ml 1.35.2
//!   `_azure_environments._convert_arm_to_cli` accepts both and reads `name`, `portal`,
//!   `resourceManager`, `authentication.loginEndpoint`, `suffixes.storage`).
//!
//! No authentication (clients call it before they hold a token); `api-version` is required.

use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::arm::error::ArmError;
use crate::pipeline::RouteExt;

/// The emulated cloud's name. Not `AzureCloud`: azure-ai-ml resolves that name from its
/// built-in table (public Azure) instead of from the metadata document.
pub const CLOUD_NAME: &str = "ClaraEmulator";

pub fn routes(app: &AppState) -> Router<AppState> {
    Router::new().route(
        "/metadata/endpoints",
        get(endpoints).token(app, "metadata.endpoints"),
    )
}

async fn endpoints(State(app): State<AppState>, uri: Uri) -> Response {
    if let Err(e) = crate::arm::require_api_version(&uri) {
        return e.into_response();
    }
    let version = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "api-version")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    // ISO dates compare as strings.
    let date = version.get(..10).unwrap_or("");
    if date >= "2022-09-01" {
        axum::Json(document(&app)).into_response()
    } else if date >= "2019-05-01" {
        axum::Json(Value::Array(vec![document(&app)])).into_response()
    } else {
        ArmError::bad_request(format!(
            "The api-version '{version}' is not supported for the cloud metadata endpoint. Supported versions: 2019-05-01 (array of clouds), 2022-09-01 and later (this cloud)."
        ))
        .with_code("InvalidApiVersionParameter")
        .into_response()
    }
}

/// Which real cloud's service names the emulator wears (config `cloud`): its metadata
/// document's `portal`, ARM `audiences`, service URLs and `suffixes`, and the token audiences
/// its Entra ID issues and its routes accept (auth.rs, `Audience::of_in`). The emulator's own
/// endpoints (`resourceManager`, `loginEndpoint`) stay its base URL either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudShape {
    /// AzureCloud's names (default).
    #[default]
    Public,
    /// AzureUSGovernment's names (hashicorp/go-azure-sdk `sdk/environments/azure_gov.go`;
    /// azure-ai-ml 1.35.2 `_environments[AzureUSGovernment]` for the ML resource and portal).
    UsGovernment,
}

impl CloudShape {
    /// `authentication.audiences` of that cloud's metadata (go-azure-sdk
    /// `Authorization.Audiences`), each with the trailing slash the documents carry.
    pub fn arm_audiences(self) -> [&'static str; 2] {
        match self {
            CloudShape::Public => [
                "https://management.core.windows.net/",
                "https://management.azure.com/",
            ],
            CloudShape::UsGovernment => [
                "https://management.core.usgovcloudapi.net/",
                "https://management.usgovcloudapi.net/",
            ],
        }
    }

    /// `suffixes.storage`, also a blob datastore's `endpoint`.
    pub fn storage_suffix(self) -> &'static str {
        match self {
            CloudShape::Public => "core.windows.net",
            CloudShape::UsGovernment => "core.usgovcloudapi.net",
        }
    }

    /// Azure ML studio's host (azure-ai-ml `_environments`: `ml.azure.com` / `ml.azure.us`).
    pub fn studio_host(self) -> &'static str {
        &self.ml_audience()["https://".len()..]
    }

    /// The Azure ML data plane's resource, no trailing slash (azure-ai-ml `aml_resource_id`).
    pub fn ml_audience(self) -> &'static str {
        match self {
            CloudShape::Public => "https://ml.azure.com",
            CloudShape::UsGovernment => "https://ml.azure.us",
        }
    }
}

/// The cloud document. Endpoints the emulator serves point at it; services it does not
/// emulate keep the values of the cloud it wears (config `cloud`, public Azure by default),
/// so a client that derives names from them (e.g. azure-ai-ml's `https://ml.azure.<suffix
/// of portal>` data-plane audience) gets that cloud's, which the emulator accepts.
pub fn document(app: &AppState) -> Value {
    let base = format!("{}/", app.base_url);
    let cloud = app.config.cloud;
    let [core, arm] = cloud.arm_audiences();
    // That cloud's audiences, then this cloud's resourceManager (AzureCloud lists its
    // resourceManager, `https://management.azure.com/`, among its audiences too).
    let audiences = json!([core, arm, base]);
    let mut doc = match cloud {
        CloudShape::Public => public_services(),
        CloudShape::UsGovernment => us_government_services(),
    };
    doc["name"] = json!(CLOUD_NAME);
    doc["resourceManager"] = json!(base);
    doc["authentication"] = json!({
        "loginEndpoint": base,
        "audiences": audiences,
        "tenant": "common",
        "identityProvider": "AAD",
    });
    doc
}

fn public_services() -> Value {
    json!({
        "portal": "https://portal.azure.com",
        "media": "https://rest.media.azure.net",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "batch": "https://batch.core.windows.net/",
        "vmImageAliasDoc": "https://raw.githubusercontent.com/Azure/azure-rest-api-specs/main/arm-compute/quickstart-templates/aliases.json",
        "activeDirectoryDataLake": "https://datalake.azure.net/",
        "sqlManagement": "https://management.core.windows.net:8443/",
        "microsoftGraphResourceId": "https://graph.microsoft.com/",
        "appInsightsResourceId": "https://api.applicationinsights.io",
        "appInsightsTelemetryChannelResourceId": "https://dc.applicationinsights.azure.com/v2/track",
        "attestationResourceId": "https://attest.azure.net",
        "synapseAnalyticsResourceId": "https://dev.azuresynapse.net",
        "logAnalyticsResourceId": "https://api.loganalytics.io",
        "ossrDbmsResourceId": "https://ossrdbms-aad.database.windows.net",
        "suffixes": {
            "acrLoginServer": "azurecr.io",
            "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net",
            "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
            "azureFrontDoorEndpointSuffix": "azurefd.net",
            "keyVaultDns": "vault.azure.net",
            "mariadbServerEndpoint": "mariadb.database.azure.com",
            "mhsmDns": "managedhsm.azure.net",
            "mysqlServerEndpoint": "mysql.database.azure.com",
            "postgresqlServerEndpoint": "postgres.database.azure.com",
            "sqlServerHostname": "database.windows.net",
            "storage": CloudShape::Public.storage_suffix(),
            "storageSyncEndpointSuffix": "afs.azure.net",
            "synapseAnalytics": "dev.azuresynapse.net",
            "attestationEndpoint": "attest.azure.net",
        },
    })
}

/// go-azure-sdk `AzureUSGovernment()` values; it lists no Attestation, Front Door or Data
/// Lake there ("Services not currently available"), so neither does this document.
fn us_government_services() -> Value {
    json!({
        "portal": "https://portal.azure.us",
        "graphAudience": "https://graph.windows.net/",
        "graph": "https://graph.windows.net/",
        "batch": "https://batch.core.usgovcloudapi.net/",
        "microsoftGraphResourceId": "https://graph.microsoft.us/",
        "logAnalyticsResourceId": "https://api.loganalytics.us",
        "ossrDbmsResourceId": "https://ossrdbms-aad.database.usgovcloudapi.net",
        "synapseAnalyticsResourceId": "https://dev.azuresynapse.usgovcloudapi.net",
        "suffixes": {
            "acrLoginServer": "azurecr.us",
            "keyVaultDns": "vault.usgovcloudapi.net",
            "mariadbServerEndpoint": "mariadb.database.usgovcloudapi.net",
            "mhsmDns": "managedhsm.usgovcloudapi.net",
            "mysqlServerEndpoint": "mysql.database.usgovcloudapi.net",
            "postgresqlServerEndpoint": "postgres.database.usgovcloudapi.net",
            "sqlServerHostname": "database.usgovcloudapi.net",
            "storage": CloudShape::UsGovernment.storage_suffix(),
            "synapseAnalytics": "dev.azuresynapse.usgovcloudapi.net",
        },
    })
}
