//! Emulator configuration (JSON file, every field optional).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::faults::FaultConfig;

pub const DEFAULT_TENANT_ID: &str = "00000000-0000-0000-0000-0000000000aa";
pub const DEFAULT_CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const DEFAULT_CLIENT_SECRET: &str = "emulator-client-secret-do-not-log";
pub const DEFAULT_SUBSCRIPTION_ID: &str = "00000000-0000-0000-0000-000000000001";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: String,
    pub subscription_id: String,
    pub workspaces: Vec<WorkspaceConfig>,
    /// How long a long-running operation reports `InProgress`.
    pub lro_delay_ms: u64,
    /// `expires_in` of issued tokens (seconds); tokens are rejected after it.
    pub token_expires_in_s: u64,
    pub faults: FaultConfig,
    /// Default seed of the fault RNG when `faults.seed` is absent.
    pub seed: u64,
    /// Job simulation (phase durations, time scale, failure switches).
    pub jobs: crate::training::JobsConfig,
    /// Blob storage for code uploads and simulated job outputs (optional).
    pub storage: crate::storage::StorageConfig,
    /// NGC emulation: API keys, token and signed-URL lifetimes, extra assets, download faults.
    pub ngc: crate::ngc::config::NgcConfig,
    /// Switchable AmlCompute quirks (see `arm::compute::model::ComputesConfig`).
    pub computes: crate::arm::compute::model::ComputesConfig,
    /// Extra service principals with their role names (see README, "Principals and roles").
    pub principals: Vec<crate::auth::PrincipalConfig>,
    /// Federated identity credentials of the main client (OIDC / workload identity sign-in).
    pub federated_credentials: Vec<crate::auth::FederatedCredential>,
    /// Certificates (PEM) registered on the main client (certificate credentials).
    pub client_certificates: Vec<String>,
    /// Whose service names the cloud metadata and token audiences wear: `public` (default)
    /// or `usgovernment` (see README, "Cloud metadata").
    pub cloud: crate::metadata::CloudShape,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceConfig {
    pub resource_group: String,
    pub name: String,
    #[serde(default = "default_location")]
    pub location: String,
    /// `false`: the workspace has no `mlFlowTrackingUri` (see README "MLflow").
    #[serde(default = "default_true")]
    pub mlflow: bool,
}

fn default_location() -> String {
    "eastus".to_string()
}

fn default_true() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            tenant_id: DEFAULT_TENANT_ID.into(),
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret: DEFAULT_CLIENT_SECRET.into(),
            subscription_id: DEFAULT_SUBSCRIPTION_ID.into(),
            workspaces: vec![WorkspaceConfig {
                resource_group: "rg-clara".into(),
                name: "clara-ws".into(),
                location: default_location(),
                mlflow: true,
            }],
            lro_delay_ms: 300,
            token_expires_in_s: 3599,
            faults: FaultConfig::default(),
            seed: 0,
            jobs: Default::default(),
            storage: Default::default(),
            ngc: Default::default(),
            computes: Default::default(),
            principals: Vec::new(),
            federated_credentials: Vec::new(),
            client_certificates: Vec::new(),
            cloud: Default::default(),
        }
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let cfg: Config =
            serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.workspaces.is_empty() {
            return Err("config: at least one workspace is required".into());
        }
        self.jobs.check().map_err(|e| format!("config.jobs: {e}"))?;
        self.storage
            .check()
            .map_err(|e| format!("config.storage: {e}"))?;
        self.ngc.check().map_err(|e| format!("config.ngc: {e}"))?;
        crate::auth::check_principals(&self.principals, &self.client_id)
            .map_err(|e| format!("config.principals: {e}"))?;
        self.faults
            .check()
            .map_err(|e| format!("config.faults: {e}"))
    }

    /// Looks a workspace up case-insensitively (ARM names are case-insensitive).
    pub fn workspace(&self, resource_group: &str, name: &str) -> Option<&WorkspaceConfig> {
        self.workspaces.iter().find(|w| {
            w.resource_group.eq_ignore_ascii_case(resource_group)
                && w.name.eq_ignore_ascii_case(name)
        })
    }

    pub fn has_resource_group(&self, resource_group: &str) -> bool {
        self.workspaces
            .iter()
            .any(|w| w.resource_group.eq_ignore_ascii_case(resource_group))
    }

    /// Locations served: those of the configured workspaces (normalized).
    pub fn serves_location(&self, location: &str) -> bool {
        let loc = crate::util::normalize_location(location);
        self.workspaces
            .iter()
            .any(|w| crate::util::normalize_location(&w.location) == loc)
    }
}
