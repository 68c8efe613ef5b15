//! Azure clouds: which Resource Manager, sign-in authority, token scopes, storage suffix and
//! Azure ML studio host a configuration talks to.
//!
//! A cloud comes from its name (`public`, `usgovernment`, `china`: the names the `azurerm`
//! provider's `environment` / `ARM_ENVIRONMENT` accepts) or from the ARM cloud metadata
//! document a metadata host serves (`metadata_host` / `ARM_METADATA_HOSTNAME`), read the way
//! hashicorp/go-azure-sdk does (`sdk/environments`, `RefreshMetaDataFromEndpoint` /
//! `updateFromMetaData`):
//!
//! - Resource Manager: `resourceManager`; its token scope is that URL + `/.default`
//!   (go-azure-sdk `ResourceManagerAPI`: "endpoint and resource ID are the same").
//! - Authority: `authentication.loginEndpoint`.
//! - Storage: suffix `suffixes.storage`; the token scope is `https://storage.azure.com/.default`
//!   in every cloud (go-azure-sdk `StorageAPI`'s resource identifier, the same for all clouds).
//! - Azure ML data plane (MLflow, run history) and studio: `https://ml.azure.<suffix>` where
//!   the suffix follows `portal.azure.` (azure-ai-ml 1.35.2
//!   `_azure_environments._convert_arm_to_cli`); the built-in clouds' values are azure-ai-ml's
//!   `_environments` table (`aml_resource_id`).

use serde_json::Value;
use url::Url;

/// The names `environment` accepts (azurerm's, case-insensitive).
pub const ENVIRONMENTS: &[&str] = &["public", "usgovernment", "china"];

/// The api-version go-azure-sdk asks the metadata host for; it answers one object.
pub const METADATA_API_VERSION: &str = "2022-09-01";

/// Where a configuration's requests go and which tokens they carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cloud {
    /// `public`, `usgovernment`, `china`, or the metadata document's `name`.
    pub name: String,
    pub resource_manager: Url,
    /// Microsoft Entra authority host (login endpoint).
    pub authority: Url,
    pub arm_scope: String,
    pub storage_scope: String,
    /// Azure ML data plane (MLflow tracking, run history).
    pub ml_scope: String,
    /// Blob endpoints are `https://<account>.blob.<storage_suffix>`.
    pub storage_suffix: String,
    /// Azure ML studio, e.g. `ml.azure.com`.
    pub studio_host: String,
}

const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

fn scope_of(resource: &str) -> String {
    format!("{}/.default", resource.trim_end_matches('/'))
}

fn url(s: &str) -> Url {
    Url::parse(s).expect("valid built-in cloud URL")
}

impl Cloud {
    fn built_in(name: &str, rm: &str, login: &str, storage: &str, ml_host: &str) -> Cloud {
        Cloud {
            name: name.to_owned(),
            resource_manager: url(rm),
            authority: url(login),
            arm_scope: scope_of(rm),
            storage_scope: STORAGE_SCOPE.to_owned(),
            ml_scope: scope_of(&format!("https://{ml_host}")),
            storage_suffix: storage.to_owned(),
            studio_host: ml_host.to_owned(),
        }
    }

    pub fn public() -> Cloud {
        Self::built_in(
            "public",
            "https://management.azure.com/",
            "https://login.microsoftonline.com/",
            "core.windows.net",
            "ml.azure.com",
        )
    }

    /// A cloud by its `environment` name (case-insensitive); the error lists the valid ones.
    pub fn from_name(name: &str) -> Result<Cloud, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Self::public()),
            "usgovernment" => Ok(Self::built_in(
                "usgovernment",
                "https://management.usgovcloudapi.net/",
                "https://login.microsoftonline.us/",
                "core.usgovcloudapi.net",
                "ml.azure.us",
            )),
            "china" => Ok(Self::built_in(
                "china",
                "https://management.chinacloudapi.cn/",
                "https://login.chinacloudapi.cn/",
                "core.chinacloudapi.cn",
                "ml.azure.cn",
            )),
            _ => Err(format!(
                "\"{name}\" is not an Azure cloud; use one of {} (or metadata_host for another cloud).",
                ENVIRONMENTS
                    .iter()
                    .map(|e| format!("\"{e}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// The cloud an ARM metadata document (api-version 2022-09-01: one object) describes.
    /// `resourceManager` and `authentication.loginEndpoint` are required; a missing storage
    /// suffix or portal falls back to public Azure's (as go-azure-sdk keeps a value the
    /// document does not set).
    pub fn from_metadata(doc: &Value) -> Result<Cloud, String> {
        let doc = match doc {
            // 2019-05-01 shape: an array of clouds; a single-cloud host sends one.
            Value::Array(a) if a.len() == 1 => &a[0],
            other => other,
        };
        if !doc.is_object() {
            return Err("the cloud metadata document is not a JSON object".into());
        }
        let https = |field: &str, v: Option<&str>| -> Result<Url, String> {
            let s = v
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| format!("the cloud metadata document has no {field}"))?;
            let u = Url::parse(s).map_err(|e| format!("{field} \"{s}\" is not a URL: {e}"))?;
            if u.scheme() != "https" {
                return Err(format!("{field} \"{s}\" is not an https:// URL"));
            }
            Ok(u)
        };
        let resource_manager = https("resourceManager", doc["resourceManager"].as_str())?;
        let authority = https(
            "authentication.loginEndpoint",
            doc["authentication"]["loginEndpoint"].as_str(),
        )?;
        let public = Self::public();
        let storage_suffix = doc["suffixes"]["storage"]
            .as_str()
            .map(|s| s.trim().trim_start_matches('.').to_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or(public.storage_suffix);
        // azure-ai-ml: cloud_suffix = ".".join(portal.split(".")[2:]).replace("/", "").
        let ml_host = doc["portal"]
            .as_str()
            .map(|p| {
                p.split('.')
                    .skip(2)
                    .collect::<Vec<_>>()
                    .join(".")
                    .replace('/', "")
            })
            .filter(|s| !s.is_empty())
            .map(|suffix| format!("ml.azure.{suffix}"))
            .unwrap_or(public.studio_host);
        Ok(Cloud {
            name: doc["name"].as_str().unwrap_or("custom").to_owned(),
            arm_scope: scope_of(resource_manager.as_str()),
            resource_manager,
            authority,
            storage_scope: STORAGE_SCOPE.to_owned(),
            ml_scope: scope_of(&format!("https://{ml_host}")),
            storage_suffix,
            studio_host: ml_host,
        })
    }

    /// `https://<host>/metadata/endpoints?api-version=2022-09-01`. `host` is a host name
    /// with an optional port, nothing else: no scheme, path, query or credentials.
    pub fn metadata_url(host: &str) -> Result<Url, String> {
        let host = host.trim();
        if host.is_empty()
            || host
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '/' | '\\' | '?' | '#' | '@' | '%'))
        {
            return Err(format!(
                "\"{host}\" is not a host name: give the host (and port), e.g. management.azure.com, without https:// or a path."
            ));
        }
        let u = Url::parse(&format!("https://{host}/metadata/endpoints"))
            .map_err(|e| format!("\"{host}\" is not a host name: {e}"))?;
        if u.host_str().is_none() || u.path() != "/metadata/endpoints" {
            return Err(format!("\"{host}\" is not a host name"));
        }
        let mut u = u;
        u.query_pairs_mut()
            .append_pair("api-version", METADATA_API_VERSION);
        Ok(u)
    }

    /// Reads the cloud a metadata host describes.
    pub async fn fetch(http: &reqwest::Client, host: &str) -> Result<Cloud, String> {
        let url = Self::metadata_url(host)?;
        let resp = http
            .get(url.clone())
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url} failed: {e}"))?;
        let status = resp.status();
        let body = resp
            .text()
            .await
            .map_err(|e| format!("GET {url}: reading the answer failed: {e}"))?;
        if !status.is_success() {
            let snippet: String = body.chars().take(300).collect();
            return Err(format!("GET {url} answered {status}: {snippet}"));
        }
        let doc: Value = serde_json::from_str(&body)
            .map_err(|e| format!("GET {url}: the answer is not JSON: {e}"))?;
        Self::from_metadata(&doc).map_err(|e| format!("{url}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn built_in_clouds() {
        let p = Cloud::from_name("public").unwrap();
        assert_eq!(p.resource_manager.as_str(), "https://management.azure.com/");
        assert_eq!(p.arm_scope, "https://management.azure.com/.default");
        assert_eq!(p.arm_scope, crate::DEFAULT_ARM_SCOPE);
        assert_eq!(p.authority.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(p.ml_scope, "https://ml.azure.com/.default");
        assert_eq!(p.storage_suffix, "core.windows.net");

        let g = Cloud::from_name("USGovernment").unwrap();
        assert_eq!(g.arm_scope, "https://management.usgovcloudapi.net/.default");
        assert_eq!(g.authority.as_str(), "https://login.microsoftonline.us/");
        assert_eq!(g.storage_suffix, "core.usgovcloudapi.net");
        assert_eq!(g.ml_scope, "https://ml.azure.us/.default");
        assert_eq!(g.studio_host, "ml.azure.us");
        assert_eq!(g.storage_scope, "https://storage.azure.com/.default");

        let c = Cloud::from_name("china").unwrap();
        assert_eq!(
            c.resource_manager.as_str(),
            "https://management.chinacloudapi.cn/"
        );
        assert_eq!(c.authority.as_str(), "https://login.chinacloudapi.cn/");
        assert_eq!(c.storage_suffix, "core.chinacloudapi.cn");
        assert_eq!(c.ml_scope, "https://ml.azure.cn/.default");
    }

    #[test]
    fn unknown_name_lists_the_valid_ones() {
        let e = Cloud::from_name("german").unwrap_err();
        assert!(e.contains("\"german\""), "{e}");
        assert!(e.contains("\"usgovernment\""), "{e}");
    }

    fn usgov_doc() -> Value {
        // The shape management.usgovcloudapi.net serves (go-azure-sdk `AzureUSGovernment`).
        json!({
            "name": "AzureUSGovernment",
            "portal": "https://portal.azure.us",
            "resourceManager": "https://management.usgovcloudapi.net/",
            "authentication": {
                "loginEndpoint": "https://login.microsoftonline.us",
                "audiences": ["https://management.core.usgovcloudapi.net", "https://management.usgovcloudapi.net"],
                "tenant": "common",
                "identityProvider": "AAD"
            },
            "suffixes": {"storage": "core.usgovcloudapi.net", "keyVaultDns": "vault.usgovcloudapi.net"}
        })
    }

    #[test]
    fn metadata_document_gives_the_same_cloud_as_the_name() {
        let m = Cloud::from_metadata(&usgov_doc()).unwrap();
        let g = Cloud::from_name("usgovernment").unwrap();
        assert_eq!(m.name, "AzureUSGovernment");
        assert_eq!(m.resource_manager, g.resource_manager);
        assert_eq!(m.arm_scope, g.arm_scope);
        assert_eq!(m.authority.host_str(), g.authority.host_str());
        assert_eq!(m.storage_suffix, g.storage_suffix);
        assert_eq!(m.ml_scope, g.ml_scope);
        assert_eq!(m.studio_host, g.studio_host);
        // The 2019-05-01 shape (an array of one cloud) reads the same.
        let arr = Cloud::from_metadata(&json!([usgov_doc()])).unwrap();
        assert_eq!(arr, m);
    }

    #[test]
    fn custom_cloud_scopes_follow_its_resource_manager() {
        let mut doc = usgov_doc();
        doc["resourceManager"] = json!("https://127.0.0.1:8443/");
        doc["authentication"]["loginEndpoint"] = json!("https://127.0.0.1:8443/");
        let c = Cloud::from_metadata(&doc).unwrap();
        assert_eq!(c.arm_scope, "https://127.0.0.1:8443/.default");
        assert_eq!(c.resource_manager.as_str(), "https://127.0.0.1:8443/");
        assert_eq!(c.ml_scope, "https://ml.azure.us/.default");
    }

    #[test]
    fn incomplete_documents_are_refused() {
        let mut doc = usgov_doc();
        doc.as_object_mut().unwrap().remove("resourceManager");
        let e = Cloud::from_metadata(&doc).unwrap_err();
        assert!(e.contains("resourceManager"), "{e}");
        let mut doc = usgov_doc();
        doc["authentication"]["loginEndpoint"] = json!("http://login.example");
        let e = Cloud::from_metadata(&doc).unwrap_err();
        assert!(e.contains("loginEndpoint"), "{e}");
        assert!(Cloud::from_metadata(&json!("x")).is_err());
        assert!(Cloud::from_metadata(&json!([usgov_doc(), usgov_doc()])).is_err());
    }

    #[test]
    fn metadata_url_takes_only_a_host() {
        assert_eq!(
            Cloud::metadata_url("management.azure.com")
                .unwrap()
                .as_str(),
            "https://management.azure.com/metadata/endpoints?api-version=2022-09-01"
        );
        assert_eq!(
            Cloud::metadata_url("127.0.0.1:8443").unwrap().as_str(),
            "https://127.0.0.1:8443/metadata/endpoints?api-version=2022-09-01"
        );
        for bad in [
            "",
            "https://management.azure.com",
            "host/path",
            "host?x=1",
            "user@host",
            "host#f",
            "a b",
        ] {
            assert!(Cloud::metadata_url(bad).is_err(), "{bad}");
        }
    }
}
