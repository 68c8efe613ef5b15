//! Entra ID sign-in following the azurerm provider's conventions.
//!
//! Precedence, in azurerm's documented order: client secret → client certificate → OIDC
//! (token, token file / AKS workload identity, Azure DevOps or GitHub Actions token request)
//! → managed identity → Azure CLI. The method chosen is logged (`Azure sign-in method chosen`,
//! method name only).
//! A method is chosen when its settings are present (secret) or it is enabled
//! (`use_oidc`, `use_msi`, `use_cli`); the first chosen method wins and later ones
//! are not tried. A chosen method is used or fails with an error naming it: a
//! client secret that is set but empty, or `use_oidc` without a token, is an error,
//! never a silent fall-back to the Azure CLI. All token requests go through the shared reqwest client, so
//! extra trusted roots (SSL_CERT_FILE) apply to sign-in too.

mod certificate;
mod client_credentials;
mod imds;
mod refreshing;

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};

use client_credentials::{ClientAuth, ClientCredentials, DEFAULT_AUTHORITY};
use url::Url;

pub use refreshing::{ForceRefresh, RefreshingCredential};

use crate::secret::Secret;

/// Sign-in settings. The provider fills these from its configuration and the
/// `ARM_*` environment variables; this crate reads no environment itself
/// (except where `azure_identity` does, e.g. for App Service managed identity).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// PKCS#12 (PFX) or PEM client certificate with an RSA key (see `auth/certificate.rs`).
    pub client_certificate_path: Option<String>,
    pub client_certificate_password: Option<Secret>,
    pub use_cli: bool,
    pub use_msi: bool,
    /// IMDS-style endpoint; `None` lets `azure_identity` pick (IMDS / App Service).
    pub msi_endpoint: Option<String>,
    pub use_oidc: bool,
    pub oidc_token: Option<Secret>,
    pub oidc_token_file_path: Option<String>,
    /// GitHub Actions / Azure DevOps: the bearer token and URL of the job's OIDC token service
    /// (`ARM_OIDC_REQUEST_TOKEN`/`ACTIONS_ID_TOKEN_REQUEST_TOKEN`/`SYSTEM_ACCESSTOKEN`,
    /// `ARM_OIDC_REQUEST_URL`/`ACTIONS_ID_TOKEN_REQUEST_URL`/`SYSTEM_OIDCREQUESTURI`).
    pub oidc_request_token: Option<Secret>,
    pub oidc_request_url: Option<String>,
    /// Azure DevOps service connection; when set the request flow is Azure DevOps', else GitHub's.
    pub ado_pipeline_service_connection_id: Option<String>,
    /// AKS workload identity: the provider has filled tenant, client and token file from
    /// `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_FEDERATED_TOKEN_FILE`; names the method.
    pub use_aks_workload_identity: bool,
    /// Entra ID authority, default `https://login.microsoftonline.com`. Must be
    /// https and have no path: `azure_identity` posts to `{host}/{tenant}/oauth2/v2.0/token`.
    pub authority_host: Option<Url>,
}

impl Default for AuthSettings {
    /// azurerm defaults: only the Azure CLI is enabled.
    fn default() -> Self {
        Self {
            tenant_id: None,
            client_id: None,
            client_secret: None,
            client_certificate_path: None,
            client_certificate_password: None,
            use_cli: true,
            use_msi: false,
            msi_endpoint: None,
            use_oidc: false,
            oidc_token: None,
            oidc_token_file_path: None,
            oidc_request_token: None,
            oidc_request_url: None,
            ado_pipeline_service_connection_id: None,
            use_aks_workload_identity: false,
            authority_host: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{method} authentication needs {}", describe_missing(missing))]
    MissingSettings {
        method: &'static str,
        missing: Vec<&'static str>,
    },
    #[error("invalid {setting}: {reason}")]
    InvalidSetting {
        setting: &'static str,
        reason: String,
    },
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "no Azure authentication method is configured{}. Set client_id, client_secret and tenant_id \
         (ARM_CLIENT_ID, ARM_CLIENT_SECRET, ARM_TENANT_ID), or enable use_oidc, use_msi or use_cli",
        describe_notes(notes)
    )]
    NoMethod { notes: Vec<String> },
    #[error("cannot set up {method} authentication: {source}")]
    Identity {
        method: &'static str,
        source: azure_core::Error,
    },
}

fn env_name(setting: &str) -> &'static str {
    match setting {
        "tenant_id" => "ARM_TENANT_ID",
        "client_id" => "ARM_CLIENT_ID",
        "client_secret" => "ARM_CLIENT_SECRET",
        "oidc_token" => "ARM_OIDC_TOKEN",
        "oidc_token_file_path" => "ARM_OIDC_TOKEN_FILE_PATH",
        "oidc_request_token" => "ARM_OIDC_REQUEST_TOKEN",
        "oidc_request_url" => "ARM_OIDC_REQUEST_URL",
        "msi_endpoint" => "ARM_MSI_ENDPOINT",
        "authority_host" => "ARM_AUTHORITY_HOST",
        _ => "",
    }
}

fn describe_missing(missing: &[&'static str]) -> String {
    let names: Vec<String> = missing
        .iter()
        .map(|m| match env_name(m) {
            "" => m.to_string(),
            env => format!("{m} ({env})"),
        })
        .collect();
    format!(
        "{}, which {} not set",
        names.join(" and "),
        if names.len() == 1 { "is" } else { "are" }
    )
}

fn describe_notes(notes: &[String]) -> String {
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join("; "))
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn non_empty_secret(v: &Option<Secret>) -> Option<&Secret> {
    v.as_ref().filter(|s| !s.is_empty())
}

/// Tenant and client id, or an error naming whichever is missing.
fn tenant_and_client(
    s: &AuthSettings,
    method: &'static str,
) -> Result<(String, String), AuthError> {
    match (non_empty(&s.tenant_id), non_empty(&s.client_id)) {
        (Some(t), Some(c)) => Ok((t.to_owned(), c.to_owned())),
        (t, c) => {
            let mut missing = Vec::new();
            if t.is_none() {
                missing.push("tenant_id");
            }
            if c.is_none() {
                missing.push("client_id");
            }
            Err(AuthError::MissingSettings { method, missing })
        }
    }
}

fn validate_authority(authority: &Option<Url>) -> Result<(), AuthError> {
    let Some(url) = authority else { return Ok(()) };
    let invalid = |reason: &str| AuthError::InvalidSetting {
        setting: "authority_host",
        reason: format!("{url}: {reason}"),
    };
    if url.scheme() != "https" {
        return Err(invalid("must use https"));
    }
    if !matches!(url.path(), "" | "/") || url.query().is_some() {
        return Err(invalid(
            "must be a bare https://host[:port] (the tenant path is added)",
        ));
    }
    Ok(())
}

/// `azure_identity` pipeline options: our reqwest client as transport (so
/// SSL_CERT_FILE roots and our User-Agent apply) and the custom authority.
fn client_options(http: &reqwest::Client, authority: &Option<Url>) -> ClientOptions {
    let mut options = ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        ..ClientOptions::default()
    };
    if let Some(url) = authority {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = url.as_str().trim_end_matches('/').to_owned();
        options.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
    }
    options
}

fn wrap(
    method: &'static str,
    factory: impl Fn() -> azure_core::Result<Arc<dyn TokenCredential>> + Send + Sync + 'static,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let credential = RefreshingCredential::new(method, factory)
        .map_err(|source| AuthError::Identity { method, source })?;
    // Only the method's name: never a secret, token or the request URL's query.
    tracing::info!(method, "Azure sign-in method chosen: {method}");
    Ok(credential)
}

fn wrap_client_credentials(
    method: &'static str,
    tenant_id: String,
    client_id: String,
    auth: ClientAuth,
    http: &reqwest::Client,
    authority: &Option<Url>,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let authority = authority
        .clone()
        .unwrap_or_else(|| Url::parse(DEFAULT_AUTHORITY).expect("valid constant URL"));
    let http = http.clone();
    wrap(method, move || {
        Ok(Arc::new(ClientCredentials {
            method,
            authority: authority.clone(),
            tenant_id: tenant_id.clone(),
            client_id: client_id.clone(),
            auth: auth.clone(),
            http: http.clone(),
        }) as Arc<dyn TokenCredential>)
    })
}

/// Chooses and builds the credential for `settings`. The result caches tokens,
/// refreshes them before expiry, and honours [`ForceRefresh`].
pub async fn credential(
    settings: &AuthSettings,
    http: &reqwest::Client,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    validate_authority(&settings.authority_host)?;
    let authority = settings.authority_host.clone();
    let http = http.clone();

    if let Some(secret) = &settings.client_secret {
        if secret.is_empty() {
            return Err(AuthError::InvalidSetting {
                setting: "client_secret",
                reason: "is set but empty; give the service principal's secret value (ARM_CLIENT_SECRET), \
                         or remove client_secret to use another sign-in method"
                    .into(),
            });
        }
        let (tenant, client) = tenant_and_client(settings, "client secret")?;
        let auth = ClientAuth::Secret(secret.clone());
        return wrap_client_credentials("client secret", tenant, client, auth, &http, &authority);
    }

    if let Some(path) = non_empty(&settings.client_certificate_path) {
        let (tenant, client) = tenant_and_client(settings, "client certificate")?;
        let cert = certificate::ClientCertificate::load(
            path,
            non_empty_secret(&settings.client_certificate_password),
        )
        .map_err(|reason| AuthError::InvalidSetting {
            setting: "client_certificate_path",
            reason: format!("client certificate sign-in: {reason}"),
        })?;
        let auth = ClientAuth::Certificate(cert);
        return wrap_client_credentials(
            "client certificate",
            tenant,
            client,
            auth,
            &http,
            &authority,
        );
    }

    if settings.use_oidc || settings.use_aks_workload_identity {
        return oidc(settings, &http, &authority);
    }
    let notes: Vec<String> = Vec::new();

    if settings.use_msi {
        // azurerm passes client_id to select a user-assigned identity.
        let client_id = non_empty(&settings.client_id).map(str::to_owned);
        if let Some(endpoint) = non_empty(&settings.msi_endpoint) {
            let endpoint = Url::parse(endpoint).map_err(|e| AuthError::InvalidSetting {
                setting: "msi_endpoint",
                reason: format!("{endpoint}: {e}"),
            })?;
            return wrap("managed identity", move || {
                Ok(Arc::new(imds::ImdsCredential {
                    endpoint: endpoint.clone(),
                    client_id: client_id.clone(),
                    http: http.clone(),
                }) as Arc<dyn TokenCredential>)
            });
        }
        return wrap("managed identity", move || {
            let options = ManagedIdentityCredentialOptions {
                client_options: client_options(&http, &None),
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
            };
            Ok(ManagedIdentityCredential::new(Some(options))? as Arc<dyn TokenCredential>)
        });
    }

    if settings.use_cli {
        let tenant = non_empty(&settings.tenant_id).map(str::to_owned);
        return wrap("Azure CLI", move || {
            let options = AzureCliCredentialOptions {
                tenant_id: tenant.clone(),
                ..Default::default()
            };
            Ok(AzureCliCredential::new(Some(options))? as Arc<dyn TokenCredential>)
        });
    }

    Err(AuthError::NoMethod { notes })
}

/// The federated (OIDC) methods in go-azure-sdk's order: a given token, a token file (AKS
/// workload identity's projected token), then the CI request flows, Azure DevOps when a
/// service connection is named, else GitHub Actions. The first one whose settings are present
/// is used; half a request flow is an error naming what is missing.
fn oidc(
    settings: &AuthSettings,
    http: &reqwest::Client,
    authority: &Option<Url>,
) -> Result<Arc<dyn TokenCredential>, AuthError> {
    let aks = settings.use_aks_workload_identity;
    let token = non_empty_secret(&settings.oidc_token).cloned();
    let file = non_empty(&settings.oidc_token_file_path).map(str::to_owned);
    let req_token = non_empty_secret(&settings.oidc_request_token).cloned();
    let req_url = non_empty(&settings.oidc_request_url).map(str::to_owned);
    let ado = non_empty(&settings.ado_pipeline_service_connection_id).map(str::to_owned);
    if aks && token.is_none() && file.is_none() {
        return Err(AuthError::InvalidSetting {
            setting: "use_aks_workload_identity",
            reason:
                "is true, but AZURE_FEDERATED_TOKEN_FILE (or oidc_token_file_path) is not set: \
                     AKS workload identity reads the projected service account token from it \
                     (the Azure CLI is not tried instead)"
                    .into(),
        });
    }
    if token.is_none() && file.is_none() && req_token.is_none() && req_url.is_none() {
        return Err(AuthError::InvalidSetting {
            setting: "use_oidc",
            reason: format!(
                "is true, but neither oidc_token (ARM_OIDC_TOKEN) nor oidc_token_file_path \
                 (ARM_OIDC_TOKEN_FILE_PATH) nor a token request ({}) is set: OIDC sign-in \
                 needs one of them (the Azure CLI is not tried instead)",
                if ado.is_some() {
                    "SYSTEM_ACCESSTOKEN and SYSTEM_OIDCREQUESTURI for Azure DevOps"
                } else {
                    "ARM_OIDC_REQUEST_TOKEN and ARM_OIDC_REQUEST_URL, or GitHub Actions' \
                     ACTIONS_ID_TOKEN_REQUEST_TOKEN and ACTIONS_ID_TOKEN_REQUEST_URL"
                }
            ),
        });
    }
    if let Some(token) = token {
        let (tenant, client) = tenant_and_client(settings, "OIDC token")?;
        let auth = ClientAuth::Assertion(token);
        return wrap_client_credentials("OIDC token", tenant, client, auth, http, authority);
    }
    if let Some(file) = file {
        let method = if aks {
            "AKS workload identity"
        } else {
            "OIDC token file"
        };
        let (tenant, client) = tenant_and_client(settings, method)?;
        if !std::path::Path::new(&file).is_file() {
            return Err(AuthError::InvalidSetting {
                setting: if aks {
                    "AZURE_FEDERATED_TOKEN_FILE"
                } else {
                    "oidc_token_file_path"
                },
                reason: format!("{file} is not a readable file"),
            });
        }
        let auth = ClientAuth::AssertionFile(file.into());
        return wrap_client_credentials(method, tenant, client, auth, http, authority);
    }
    let method = if ado.is_some() {
        "Azure DevOps OIDC"
    } else {
        "GitHub Actions OIDC"
    };
    let (req_token, req_url) = match (req_token, req_url) {
        (Some(t), Some(u)) => (t, u),
        (t, _) => {
            return Err(AuthError::MissingSettings {
                method,
                missing: vec![if t.is_none() {
                    "oidc_request_token"
                } else {
                    "oidc_request_url"
                }],
            });
        }
    };
    let url = Url::parse(&req_url)
        .ok()
        .filter(|u| u.scheme() == "https" || u.scheme() == "http")
        .ok_or_else(|| AuthError::InvalidSetting {
            setting: "oidc_request_url",
            reason: "is not an http(s) URL".into(),
        })?;
    let (tenant, client) = tenant_and_client(settings, method)?;
    let auth = ClientAuth::Requested {
        url,
        token: req_token,
        ado_service_connection_id: ado,
    };
    wrap_client_credentials(method, tenant, client, auth, http, authority)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> reqwest::Client {
        reqwest::Client::new()
    }

    fn none() -> AuthSettings {
        AuthSettings {
            use_cli: false,
            ..AuthSettings::default()
        }
    }

    #[tokio::test]
    async fn secret_without_ids_names_missing_settings() {
        let s = AuthSettings {
            client_secret: Some("x".into()),
            ..none()
        };
        let err = credential(&s, &http()).await.unwrap_err().to_string();
        assert_eq!(
            err,
            "client secret authentication needs tenant_id (ARM_TENANT_ID) and client_id (ARM_CLIENT_ID), which are not set"
        );
    }

    #[tokio::test]
    async fn oidc_without_client_id() {
        let s = AuthSettings {
            use_oidc: true,
            oidc_token: Some("jwt".into()),
            tenant_id: Some("t".into()),
            ..none()
        };
        let err = credential(&s, &http()).await.unwrap_err().to_string();
        assert!(
            err.contains(
                "OIDC token authentication needs client_id (ARM_CLIENT_ID), which is not set"
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn nothing_enabled_explains_options() {
        let err = credential(&none(), &http()).await.unwrap_err().to_string();
        assert!(
            err.starts_with("no Azure authentication method is configured. Set client_id"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_configured_method_never_falls_back_to_the_cli() {
        // use_cli is on (the default) in both cases.
        let s = AuthSettings {
            use_oidc: true,
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            ..AuthSettings::default()
        };
        let err = credential(&s, &http()).await.unwrap_err().to_string();
        assert!(
            err.starts_with(
                "invalid use_oidc: is true, but neither oidc_token (ARM_OIDC_TOKEN) nor"
            ),
            "{err}"
        );
        let s = AuthSettings {
            client_secret: Some("".into()),
            tenant_id: Some("t".into()),
            client_id: Some("c".into()),
            ..AuthSettings::default()
        };
        let err = credential(&s, &http()).await.unwrap_err().to_string();
        assert!(
            err.starts_with("invalid client_secret: is set but empty"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn precedence_secret_over_oidc_msi_cli() {
        let s = AuthSettings {
            tenant_id: Some("00000000-0000-0000-0000-000000000001".into()),
            client_id: Some("c".into()),
            client_secret: Some("s".into()),
            use_oidc: true,
            oidc_token: Some("jwt".into()),
            use_msi: true,
            ..AuthSettings::default()
        };
        let cred = credential(&s, &http()).await.unwrap();
        assert!(format!("{cred:?}").contains("client secret"), "{cred:?}");

        let s = AuthSettings {
            client_secret: None,
            ..s
        };
        let cred = credential(&s, &http()).await.unwrap();
        assert!(format!("{cred:?}").contains("OIDC token"), "{cred:?}");

        let s = AuthSettings {
            use_oidc: false,
            ..s
        };
        let cred = credential(&s, &http()).await.unwrap();
        assert!(format!("{cred:?}").contains("managed identity"), "{cred:?}");

        let s = AuthSettings {
            use_msi: false,
            ..s
        };
        let cred = credential(&s, &http()).await.unwrap();
        assert!(format!("{cred:?}").contains("Azure CLI"), "{cred:?}");
    }

    #[tokio::test]
    async fn authority_must_be_bare_https() {
        for bad in ["http://login.example", "https://login.example/prefix"] {
            let s = AuthSettings {
                authority_host: Some(Url::parse(bad).unwrap()),
                ..AuthSettings::default()
            };
            let err = credential(&s, &http()).await.unwrap_err();
            assert!(
                matches!(
                    err,
                    AuthError::InvalidSetting {
                        setting: "authority_host",
                        ..
                    }
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn settings_debug_redacts_secrets() {
        let s = AuthSettings {
            client_secret: Some("topsecret".into()),
            oidc_token: Some("jwt-value".into()),
            ..AuthSettings::default()
        };
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("topsecret") && !dbg.contains("jwt-value"),
            "{dbg}"
        );
    }
}
