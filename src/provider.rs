//! The `clara` provider block: Azure sign-in (azurerm conventions), the default workspace,
//! endpoint overrides and NGC credentials.

use std::sync::Arc;
use std::time::Duration;

use clara_azure::Secret;
use clara_azure::arm::{ArmClient, ArmOptions, RetryPolicy};
use clara_azure::auth::AuthSettings;
use clara_framework::validators::Matches;
use clara_framework::{
    Attribute, Block, DataSource, Diagnostics, NestedBlock, Provider, Resource, Schema, Value,
    async_trait,
};

use crate::client::{ClaraClient, NgcSettings};
use crate::ids::WorkspaceId;
use crate::{data_sources, resources};

pub const API_VERSION: &str = "2025-12-01";

#[derive(Default)]
pub struct ClaraProvider;

/// `environment` accepts azurerm's names in any case (`Public`, `USGovernment`).
struct OneOfIgnoreCase(&'static [&'static str]);

impl clara_framework::validators::Validator for OneOfIgnoreCase {
    fn validate(&self, value: &Value, path: &clara_framework::AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str()
            && !self.0.iter().any(|e| e.eq_ignore_ascii_case(s.trim()))
        {
            diags.attr_error(
                path.clone(),
                "Unknown Azure environment",
                format!(
                    "{path}: {}",
                    clara_azure::Cloud::from_name(s).err().unwrap_or_default()
                ),
            );
        }
    }

    fn describe(&self) -> String {
        format!("one of {} (any case)", self.0.join(", "))
    }
}

/// The cloud from `metadata_host` / `ARM_METADATA_HOSTNAME` (its metadata document), else
/// `environment` / `ARM_ENVIRONMENT`, else public Azure; and whether one was chosen.
async fn cloud(
    config: &Value,
    http: &reqwest::Client,
    diags: &mut Diagnostics,
) -> Option<(clara_azure::Cloud, bool)> {
    if let Some(host) = setting(config, "metadata_host", &["ARM_METADATA_HOSTNAME"]) {
        return match clara_azure::Cloud::fetch(http, &host).await {
            Ok(c) => Some((c, true)),
            Err(e) => {
                diags.attr_error(
                    clara_framework::AttrPath::root("metadata_host"),
                    "Cannot read the cloud metadata",
                    format!("metadata_host (ARM_METADATA_HOSTNAME) \"{host}\": {e}"),
                );
                None
            }
        };
    }
    match setting(config, "environment", &["ARM_ENVIRONMENT"]) {
        None => Some((clara_azure::Cloud::public(), false)),
        Some(name) => match clara_azure::Cloud::from_name(&name) {
            Ok(c) => Some((c, true)),
            Err(e) => {
                diags.attr_error(
                    clara_framework::AttrPath::root("environment"),
                    "Unknown Azure environment",
                    format!("environment (ARM_ENVIRONMENT): {e}"),
                );
                None
            }
        },
    }
}

/// A string setting from the provider block, else the first set environment variable.
fn setting(config: &Value, name: &str, env: &[&str]) -> Option<String> {
    config
        .get(name)
        .as_str()
        .map(str::to_string)
        // An empty variable counts as unset, so the next name in the list is read.
        .or_else(|| {
            env.iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        })
        .filter(|s| !s.is_empty())
}

fn flag(config: &Value, name: &str, env: &str, default: bool) -> bool {
    config
        .get(name)
        .as_bool()
        .or_else(|| {
            std::env::var(env)
                .ok()
                .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        })
        .unwrap_or(default)
}

/// Downloads are kept here between runs so an interrupted transfer resumes.
fn default_cache_dir() -> std::path::PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("terraform-provider-clara")
}

/// Retry/poll tuning from the environment, for fast local emulators; Azure's own
/// `Retry-After` still wins when it asks for longer.
fn retry_policy() -> RetryPolicy {
    let ms = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
    };
    let mut p = RetryPolicy::default();
    if let Some(d) = ms("CLARA_ARM_RETRY_BASE_MS") {
        p.base_delay = d;
    }
    if let Some(d) = ms("CLARA_ARM_POLL_MIN_MS") {
        p.poll_min = d;
    }
    p
}

#[async_trait]
impl Provider for ClaraProvider {
    type Client = ClaraClient;

    fn schema(&self) -> Schema {
        let uuid = || {
            Matches::new(
                "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
                "must be a UUID",
            )
        };
        let https = || Matches::new("https://.+", "must be an https:// URL");
        Schema::new(
            0,
            Block::new(
                "Runs NVIDIA Clara fine-tuning pipelines on Azure Machine Learning. Sign-in follows the `azurerm` provider's \
                 conventions and `ARM_*` environment variables.",
            )
            .attribute(Attribute::string("subscription_id").optional().validate(uuid()).describe("Azure subscription id. Env: `ARM_SUBSCRIPTION_ID`."))
            .attribute(Attribute::string("tenant_id").optional().validate(uuid()).describe("Microsoft Entra tenant id. Env: `ARM_TENANT_ID`."))
            .attribute(Attribute::string("client_id").optional().describe("Client (application) id of a service principal or user-assigned identity. Env: `ARM_CLIENT_ID`."))
            .attribute(
                Attribute::string("client_secret")
                    .optional()
                    .sensitive()
                    .describe("Client secret of the service principal. Env: `ARM_CLIENT_SECRET`. Never stored in state."),
            )
            .attribute(Attribute::bool("use_cli").optional().describe("Sign in with the Azure CLI's account (default when nothing else is set). Env: `ARM_USE_CLI`."))
            .attribute(Attribute::bool("use_msi").optional().describe("Sign in with a managed identity. Env: `ARM_USE_MSI`."))
            .attribute(Attribute::string("msi_endpoint").optional().describe("Managed identity endpoint override. Env: `ARM_MSI_ENDPOINT`."))
            .attribute(Attribute::bool("use_oidc").optional().describe("Sign in with an OIDC / workload identity federation token. Env: `ARM_USE_OIDC`."))
            .attribute(Attribute::string("oidc_token").optional().sensitive().describe("OIDC token to exchange. Env: `ARM_OIDC_TOKEN`."))
            .attribute(Attribute::string("oidc_token_file_path").optional().describe("File holding the OIDC token. Env: `ARM_OIDC_TOKEN_FILE_PATH`, `AZURE_FEDERATED_TOKEN_FILE`."))
            .attribute(Attribute::string("oidc_request_token").optional().sensitive().describe("Bearer token for the CI job's OIDC token service. Env: `ARM_OIDC_REQUEST_TOKEN`, `ACTIONS_ID_TOKEN_REQUEST_TOKEN`, `SYSTEM_ACCESSTOKEN`."))
            .attribute(Attribute::string("oidc_request_url").optional().describe("URL of the CI job's OIDC token service (GitHub Actions or Azure DevOps). Env: `ARM_OIDC_REQUEST_URL`, `ACTIONS_ID_TOKEN_REQUEST_URL`, `SYSTEM_OIDCREQUESTURI`."))
            .attribute(Attribute::string("ado_pipeline_service_connection_id").optional().describe("Azure DevOps service connection whose OIDC token is requested. Env: `ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID`, `ARM_OIDC_AZURE_SERVICE_CONNECTION_ID`."))
            .attribute(Attribute::bool("use_aks_workload_identity").optional().describe("Sign in with AKS workload identity (`AZURE_FEDERATED_TOKEN_FILE`, `AZURE_CLIENT_ID`, `AZURE_TENANT_ID`). Env: `ARM_USE_AKS_WORKLOAD_IDENTITY`."))
            .attribute(Attribute::string("client_certificate_path").optional().describe("Client certificate of the service principal: a PFX (PKCS#12, with `client_certificate_password`) or a PEM with the certificate and its unencrypted RSA key. Env: `ARM_CLIENT_CERTIFICATE_PATH`."))
            .attribute(Attribute::string("client_certificate_password").optional().sensitive().describe("Password of the client certificate. Env: `ARM_CLIENT_CERTIFICATE_PASSWORD`."))
            .attribute(
                Attribute::string("environment")
                    .optional()
                    .validate(OneOfIgnoreCase(clara_azure::cloud::ENVIRONMENTS))
                    .describe(
                        "Azure cloud: `public` (default), `usgovernment` or `china`. Sets the Resource Manager, \
                         the sign-in authority, the token scopes (ARM, storage, Azure ML data plane), the storage \
                         suffix and the studio host. Env: `ARM_ENVIRONMENT`.",
                    ),
            )
            .attribute(
                Attribute::string("metadata_host")
                    .optional()
                    .describe(
                        "Host name (and port) serving the ARM cloud metadata document \
                         (`https://<host>/metadata/endpoints?api-version=2022-09-01`), for a custom cloud such \
                         as Azure Stack or a local emulator; wins over `environment`. Env: `ARM_METADATA_HOSTNAME`.",
                    ),
            )
            .attribute(
                Attribute::string("resource_manager_endpoint")
                    .optional()
                    .validate(https())
                    .describe("Azure Resource Manager endpoint; overrides the cloud's (`environment` / `metadata_host`), keeping its token scope. Default `https://management.azure.com`. Env: `ARM_RESOURCE_MANAGER_ENDPOINT`."),
            )
            .attribute(
                Attribute::string("authority_host")
                    .optional()
                    .validate(https())
                    .describe("Microsoft Entra authority host; overrides the cloud's. Default `https://login.microsoftonline.com`. Env: `ARM_AUTHORITY_HOST`, `AZURE_AUTHORITY_HOST`."),
            )
            .attribute(Attribute::string("resource_group_name").optional().describe("Resource group of the default Azure ML workspace. Env: `CLARA_RESOURCE_GROUP_NAME`."))
            .attribute(
                Attribute::string("workspace_name")
                    .optional()
                    .validate(Matches::new("[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}", "must be 3-33 letters, digits, '-' or '_', starting with a letter or digit"))
                    .describe("Default Azure ML workspace for every resource without `workspace_id`. Env: `CLARA_WORKSPACE_NAME`."),
            )
            .attribute(
                Attribute::string("storage_blob_endpoint")
                    .optional()
                    .validate(Matches::new("https?://.+", "must be an http:// or https:// URL"))
                    .describe(
                        "Blob service URL for datastores, with `{account}` standing for the storage account, e.g. \
                         `http://127.0.0.1:10000/{account}` for Azurite. Default: the datastore's own \
                         `https://{account}.blob.<endpoint>`. Env: `CLARA_STORAGE_BLOB_ENDPOINT`.",
                    ),
            )
            .attribute(
                Attribute::string("cache_directory")
                    .optional()
                    .describe(
                        "Where downloads are kept between runs so an interrupted transfer resumes. Default \
                         `$XDG_CACHE_HOME/terraform-provider-clara` (or `~/.cache/...`). Env: `CLARA_CACHE_DIR`.",
                    ),
            )
            .block(
                NestedBlock::list(
                    "ngc",
                    Block::new("NVIDIA NGC catalog access, used by `ngc_asset`.")
                        .attribute(Attribute::string("api_key").optional().sensitive().describe("NGC API key (legacy or `nvapi-`). Env: `NGC_CLI_API_KEY`, `NGC_API_KEY`. Public assets need none."))
                        .attribute(Attribute::string("org").optional().describe("NGC org. Env: `NGC_CLI_ORG`."))
                        .attribute(Attribute::string("team").optional().describe("NGC team. Env: `NGC_CLI_TEAM`."))
                        .attribute(
                            Attribute::string("endpoint")
                                .optional()
                                .validate(https())
                                .describe("NGC API endpoint, default `https://api.ngc.nvidia.com`. Env: `NGC_CLI_API_URL`."),
                        )
                        .attribute(
                            Attribute::string("auth_endpoint")
                                .optional()
                                .validate(https())
                                .describe("NGC token service, default `https://authn.nvidia.com`. Env: `NGC_CLI_AUTH_URL`."),
                        ),
                )
                .max_items(1),
            ),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(host) = config.get("metadata_host").as_str() {
            if let Err(e) = clara_azure::Cloud::metadata_url(host) {
                diags.attr_error(
                    clara_framework::AttrPath::root("metadata_host"),
                    "Invalid metadata_host",
                    e,
                );
            }
        }
        let ws = config.get("workspace_name");
        let rg = config.get("resource_group_name");
        if ws.is_null() != rg.is_null() && !ws.is_unknown() && !rg.is_unknown() {
            let missing = if ws.is_null() {
                "workspace_name"
            } else {
                "resource_group_name"
            };
            diags.attr_error(
                clara_framework::AttrPath::root(missing),
                "Incomplete default workspace",
                "Set both resource_group_name and workspace_name, or neither (and give each resource a workspace_id).",
            );
        }
    }

    async fn configure(
        &self,
        config: &Value,
        terraform_version: &str,
        diags: &mut Diagnostics,
    ) -> Option<ClaraClient> {
        tracing::debug!(terraform_version, "configuring provider");
        let subscription_id = setting(config, "subscription_id", &["ARM_SUBSCRIPTION_ID"]);
        let http = match clara_azure::http::build_http_client(
            &clara_azure::http::HttpClientOptions::from_env(),
        ) {
            Ok(h) => h,
            Err(e) => {
                diags.error("Cannot set up HTTPS", e.to_string());
                return None;
            }
        };
        let (cloud, custom_cloud) = cloud(config, &http, diags).await?;
        let endpoint = match setting(
            config,
            "resource_manager_endpoint",
            &["ARM_RESOURCE_MANAGER_ENDPOINT"],
        )
        .map(|s| url::Url::parse(&s))
        {
            Some(Ok(u)) => u,
            Some(Err(e)) => {
                diags.attr_error(
                    clara_framework::AttrPath::root("resource_manager_endpoint"),
                    "Invalid endpoint",
                    e.to_string(),
                );
                return None;
            }
            None => cloud.resource_manager.clone(),
        };
        let authority_host = match setting(
            config,
            "authority_host",
            &["ARM_AUTHORITY_HOST", "AZURE_AUTHORITY_HOST"],
        )
        .map(|s| url::Url::parse(&s))
        {
            Some(Err(e)) => {
                diags.attr_error(
                    clara_framework::AttrPath::root("authority_host"),
                    "Invalid authority host",
                    e.to_string(),
                );
                return None;
            }
            Some(Ok(u)) => Some(u),
            // Public Azure is azure_identity's own default.
            None => custom_cloud.then(|| cloud.authority.clone()),
        };
        // azurerm: use_aks_workload_identity reads tenant, client and token file from the
        // variables AKS injects into a workload-identity pod.
        let aks = flag(
            config,
            "use_aks_workload_identity",
            "ARM_USE_AKS_WORKLOAD_IDENTITY",
            false,
        );
        let (tenant_env, client_env): (&[&str], &[&str]) = if aks {
            (
                &["ARM_TENANT_ID", "AZURE_TENANT_ID"],
                &["ARM_CLIENT_ID", "AZURE_CLIENT_ID"],
            )
        } else {
            (&["ARM_TENANT_ID"], &["ARM_CLIENT_ID"])
        };
        let auth = AuthSettings {
            tenant_id: setting(config, "tenant_id", tenant_env),
            client_id: setting(config, "client_id", client_env),
            client_certificate_path: setting(
                config,
                "client_certificate_path",
                &["ARM_CLIENT_CERTIFICATE_PATH"],
            ),
            client_certificate_password: setting(
                config,
                "client_certificate_password",
                &["ARM_CLIENT_CERTIFICATE_PASSWORD"],
            )
            .map(Secret::new),
            oidc_request_token: setting(
                config,
                "oidc_request_token",
                &[
                    "ARM_OIDC_REQUEST_TOKEN",
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                    "SYSTEM_ACCESSTOKEN",
                ],
            )
            .map(Secret::new),
            oidc_request_url: setting(
                config,
                "oidc_request_url",
                &[
                    "ARM_OIDC_REQUEST_URL",
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    "SYSTEM_OIDCREQUESTURI",
                ],
            ),
            ado_pipeline_service_connection_id: setting(
                config,
                "ado_pipeline_service_connection_id",
                &[
                    "ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID",
                    "ARM_OIDC_AZURE_SERVICE_CONNECTION_ID",
                ],
            ),
            use_aks_workload_identity: aks,
            // An empty client_secret written in the configuration is a mistake to report, not
            // a reason to try the next method (an empty ARM_CLIENT_SECRET counts as unset).
            client_secret: match config.get("client_secret").as_str() {
                Some(s) if s.trim().is_empty() => Some(Secret::new("")),
                _ => setting(config, "client_secret", &["ARM_CLIENT_SECRET"]).map(Secret::new),
            },
            use_cli: flag(config, "use_cli", "ARM_USE_CLI", true),
            use_msi: flag(config, "use_msi", "ARM_USE_MSI", false),
            msi_endpoint: setting(config, "msi_endpoint", &["ARM_MSI_ENDPOINT"]),
            use_oidc: flag(config, "use_oidc", "ARM_USE_OIDC", false),
            oidc_token: setting(config, "oidc_token", &["ARM_OIDC_TOKEN"]).map(Secret::new),
            oidc_token_file_path: setting(
                config,
                "oidc_token_file_path",
                &["ARM_OIDC_TOKEN_FILE_PATH", "AZURE_FEDERATED_TOKEN_FILE"],
            ),
            authority_host,
            ..Default::default()
        };
        let default_workspace = match (
            setting(
                config,
                "resource_group_name",
                &["CLARA_RESOURCE_GROUP_NAME"],
            ),
            setting(config, "workspace_name", &["CLARA_WORKSPACE_NAME"]),
            subscription_id,
        ) {
            (Some(resource_group), Some(name), Some(subscription_id)) => Some(WorkspaceId {
                subscription_id,
                resource_group,
                name,
            }),
            _ => None,
        };
        let ngc_block = config
            .get("ngc")
            .as_elements()
            .and_then(|e| e.first())
            .cloned()
            .unwrap_or_default();
        let ngc = NgcSettings {
            api_key: setting(&ngc_block, "api_key", &["NGC_CLI_API_KEY", "NGC_API_KEY"])
                .map(Secret::new),
            org: setting(&ngc_block, "org", &["NGC_CLI_ORG"]),
            team: setting(&ngc_block, "team", &["NGC_CLI_TEAM"]),
            endpoint: setting(&ngc_block, "endpoint", &["NGC_CLI_API_URL"]),
            auth_endpoint: setting(&ngc_block, "auth_endpoint", &["NGC_CLI_AUTH_URL"]),
        };
        let storage_blob_endpoint = setting(
            config,
            "storage_blob_endpoint",
            &["CLARA_STORAGE_BLOB_ENDPOINT"],
        );
        let cache_directory = setting(config, "cache_directory", &["CLARA_CACHE_DIR"])
            .map(std::path::PathBuf::from)
            .unwrap_or_else(default_cache_dir);
        let credential = match clara_azure::auth::credential(&auth, &http).await {
            Ok(c) => c,
            Err(e) => {
                diags.error("Azure sign-in is not configured", e.to_string());
                return None;
            }
        };
        let mut options = ArmOptions::new(endpoint, API_VERSION, credential.clone(), http.clone());
        options.retry = retry_policy();
        options.scope = cloud.arm_scope.clone();
        tracing::debug!(
            cloud = %cloud.name,
            resource_manager = %options.endpoint,
            arm_scope = %cloud.arm_scope,
            "Azure cloud"
        );
        let arm = ArmClient::new(options);
        Some(ClaraClient {
            arm: Arc::new(arm),
            credential,
            default_workspace,
            ngc,
            http,
            storage_blob_endpoint,
            cloud: Arc::new(cloud),
            cache_directory,
            lookups: Default::default(),
            cancel: Default::default(),
        })
    }

    fn resources(&self) -> Vec<Arc<dyn Resource<ClaraClient>>> {
        vec![
            Arc::new(resources::azureml_gpu_cluster::GpuCluster),
            Arc::new(resources::ngc_asset::NgcAsset),
            Arc::new(resources::azureml_environment::Environment),
            Arc::new(resources::clara_training_run::TrainingRun),
        ]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource<ClaraClient>>> {
        vec![Arc::new(data_sources::azureml_vm_sizes::VmSizes)]
    }
}
