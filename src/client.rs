//! What `configure` hands every resource: API clients plus provider-level defaults.

use std::sync::Arc;

use clara_azure::Secret;
use clara_azure::arm::ArmClient;
use clara_framework::{AttrPath, Diagnostics, Value};

use crate::ids::WorkspaceId;

pub struct NgcSettings {
    pub api_key: Option<Secret>,
    pub org: Option<String>,
    pub team: Option<String>,
    pub endpoint: Option<String>,
    pub auth_endpoint: Option<String>,
}

pub struct ClaraClient {
    pub arm: Arc<ArmClient>,
    /// The signed-in principal; also asked for storage tokens (Entra ID access to blobs).
    pub credential: Arc<dyn clara_azure::TokenCredential>,
    pub default_workspace: Option<WorkspaceId>,
    pub ngc: NgcSettings,
    /// Shared HTTPS client (trusts SSL_CERT_FILE roots) for NGC and blob storage.
    pub http: reqwest::Client,
    /// `{account}` template overriding datastores' blob endpoints (Azurite, private endpoints).
    pub storage_blob_endpoint: Option<String>,
    /// The Azure cloud (`environment` / `metadata_host`): token scopes, storage suffix, studio.
    pub cloud: Arc<clara_azure::Cloud>,
    pub cache_directory: std::path::PathBuf,
    pub lookups: crate::azureml::Lookups,
    /// Long-running waits end when the framework drops their future (Stop, timeouts);
    /// this token is for callers that must cancel explicitly.
    pub cancel: clara_azure::CancellationToken,
}

impl ClaraClient {
    /// The workspace a resource lives in: its own `workspace_id`, else the provider default.
    pub fn workspace(&self, workspace_id: &Value, diags: &mut Diagnostics) -> Option<WorkspaceId> {
        if let Some(id) = workspace_id.as_str() {
            return match WorkspaceId::parse(id) {
                Ok(ws) => Some(ws),
                Err(e) => {
                    diags.attr_error(AttrPath::root("workspace_id"), "Invalid workspace_id", e);
                    None
                }
            };
        }
        if self.default_workspace.is_none() {
            diags.attr_error(
                AttrPath::root("workspace_id"),
                "No workspace",
                "Set workspace_id on this resource, or subscription_id, resource_group_name and workspace_name on the clara provider \
                 (or ARM_SUBSCRIPTION_ID, CLARA_RESOURCE_GROUP_NAME and CLARA_WORKSPACE_NAME).",
            );
        }
        if let Some(Err(e)) = self.default_workspace.as_ref().map(WorkspaceId::check) {
            diags.error(
                "Invalid provider workspace",
                format!("The clara provider's subscription_id / resource_group_name / workspace_name: {e}."),
            );
            return None;
        }
        self.default_workspace.clone()
    }
}
