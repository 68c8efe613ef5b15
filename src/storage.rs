//! Workspace datastores: which storage account and container a datastore names, and a blob
//! client signed with the credential Azure ML holds for it. The credential is fetched with
//! listSecrets at apply time and never stored.

use clara_azure::Secret;
use clara_azure::blob::{BlobClient, BlobCredential, BlobOptions};
use clara_framework::{AttrPath, Diagnostics};

use crate::client::ClaraClient;
use crate::ids::WorkspaceId;

pub struct Datastore {
    pub name: String,
    pub container: String,
    pub blob: BlobClient,
    /// Base URL of the container, for `blob_url` attributes.
    pub container_url: String,
    /// Whether the credential may create the container if it is missing.
    pub owns_account: bool,
}

/// The datastore's name: as given, else the workspace's default datastore.
pub async fn datastore_name(
    client: &ClaraClient,
    ws: &WorkspaceId,
    name: Option<&str>,
    diags: &mut Diagnostics,
) -> Option<String> {
    if let Some(n) = name {
        return Some(n.to_string());
    }
    match client.arm.list_json(&format!("{ws}/datastores")).await {
        Ok(all) => {
            let default = all
                .iter()
                .find(|d| d["properties"]["isDefault"].as_bool() == Some(true));
            match default.and_then(|d| d["name"].as_str()) {
                Some(n) => Some(n.to_string()),
                None => {
                    diags.attr_error(
                        AttrPath::root("datastore"),
                        "No default datastore",
                        format!("Workspace {ws} has no default datastore; set datastore."),
                    );
                    None
                }
            }
        }
        Err(e) => {
            diags.error("Cannot list datastores", e.to_string());
            None
        }
    }
}

pub async fn open(
    client: &ClaraClient,
    ws: &WorkspaceId,
    name: &str,
    diags: &mut Diagnostics,
) -> Option<Datastore> {
    let id = ws.child("datastores", name);
    let body = match client.arm.get_json(&id).await {
        Ok(Some(b)) => b,
        Ok(None) => {
            diags.attr_error(
                AttrPath::root("datastore"),
                "Datastore not found",
                format!("Workspace {ws} has no datastore \"{name}\"."),
            );
            return None;
        }
        Err(e) => {
            diags.error("Cannot read the datastore", e.to_string());
            return None;
        }
    };
    let p = &body["properties"];
    if p["datastoreType"].as_str() != Some("AzureBlob") {
        diags.attr_error(
            AttrPath::root("datastore"),
            "Unsupported datastore",
            format!(
                "Datastore \"{name}\" is {}, only AzureBlob datastores are supported.",
                p["datastoreType"].as_str().unwrap_or("of unknown type")
            ),
        );
        return None;
    }
    let account = p["accountName"].as_str().unwrap_or_default().to_string();
    let container = p["containerName"].as_str().unwrap_or_default().to_string();
    let account_url = match &client.storage_blob_endpoint {
        Some(template) => template.replace("{account}", &account),
        None => format!(
            "{}://{account}.blob.{}",
            p["protocol"].as_str().unwrap_or("https"),
            p["endpoint"].as_str().unwrap_or("core.windows.net")
        ),
    };
    let secrets = match client
        .arm
        .post_json_idempotent(&format!("{id}/listSecrets"), Some(&serde_json::json!({})))
        .await
    {
        Ok(r) => r.into_json(),
        Err(e) => {
            diags.error(
                "Cannot read the datastore's credential",
                format!("listSecrets on datastore \"{name}\": {e}"),
            );
            return None;
        }
    };
    let credential = match (
        secrets["secretsType"].as_str(),
        secrets["key"].as_str(),
        secrets["sasToken"].as_str(),
    ) {
        (_, Some(key), _) => BlobCredential::SharedKey {
            account: account.clone(),
            key: Secret::new(key),
        },
        (_, None, Some(sas)) => BlobCredential::Sas(Secret::new(sas.trim_start_matches('?'))),
        (kind, _, _) => {
            diags.error(
                "Unsupported datastore credential",
                format!("Datastore \"{name}\" holds a {} credential; account key and SAS are supported.", kind.unwrap_or("unknown")),
            );
            return None;
        }
    };
    let url = match url::Url::parse(&account_url) {
        Ok(u) => u,
        Err(e) => {
            diags.error("Invalid blob endpoint", format!("{account_url}: {e}"));
            return None;
        }
    };
    // A container-scoped SAS cannot create containers; an account key can.
    let owns_account = matches!(credential, BlobCredential::SharedKey { .. });
    let blob = match BlobClient::new(url, credential, client.http.clone(), BlobOptions::default()) {
        Ok(b) => b,
        Err(e) => {
            diags.error("Cannot use the datastore's storage account", e.to_string());
            return None;
        }
    };
    Some(Datastore {
        name: name.to_string(),
        container_url: format!("{}/{container}", account_url.trim_end_matches('/')),
        container,
        blob,
        owns_account,
    })
}
