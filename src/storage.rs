//! Workspace datastores: which storage account and container a datastore names, and a blob
//! client for it.
//!
//! How blobs are reached (see docs/index.md, "Storage access"):
//! - Microsoft Entra ID first: the signed-in principal's token for
//!   `https://storage.azure.com/.default`, over https. It is used when a probe says the
//!   principal's Storage Blob Data role allows what the operation needs (read at plan/refresh,
//!   write at apply).
//! - Identity-based datastores (`credentials.credentialsType: "None"`) have no secrets: Entra
//!   ID is the only way, and a refusal at apply is an error naming the missing role.
//! - Datastores holding an account key or SAS: only at apply, and only when storage answers
//!   the probe with 403 `AuthorizationPermissionMismatch` (no data role) or the endpoint is
//!   http (bearer tokens are never sent over http), the secret is fetched with listSecrets,
//!   used for that apply and never stored.
//! - Plan and refresh never call listSecrets: when Entra ID access is not possible there,
//!   the uploaded blobs are not verified and a warning says so.

use clara_azure::Secret;
use clara_azure::blob::{BlobClient, BlobCredential, BlobError, BlobOptions};
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

/// What the caller is about to do with the datastore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Apply (create, update, delete): writes; listSecrets allowed as a fallback.
    Write,
    /// Plan and refresh: reads only; never listSecrets.
    Read,
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

/// The datastore for apply (create, update, delete): Entra ID when the principal may write,
/// else (key or SAS datastores only) the secret from listSecrets.
pub async fn open(
    client: &ClaraClient,
    ws: &WorkspaceId,
    name: &str,
    diags: &mut Diagnostics,
) -> Option<Datastore> {
    open_with(client, ws, name, Access::Write, diags).await
}

/// The datastore for plan and refresh: Entra ID only, never listSecrets. `None` with a
/// warning when the principal cannot read the blobs that way (the caller keeps its state).
pub async fn open_for_read(
    client: &ClaraClient,
    ws: &WorkspaceId,
    name: &str,
    diags: &mut Diagnostics,
) -> Option<Datastore> {
    open_with(client, ws, name, Access::Read, diags).await
}

fn no_data_role(name: &str, account: &str, access: Access, e: &BlobError) -> String {
    let role = match access {
        Access::Write => "Storage Blob Data Contributor",
        Access::Read => "Storage Blob Data Reader",
    };
    format!(
        "The signed-in principal may not {} blobs of datastore \"{name}\" (storage account {account}) with Microsoft Entra ID: \
         assign it {role} on the account or container. ({e})",
        if access == Access::Write {
            "write"
        } else {
            "read"
        }
    )
}

async fn open_with(
    client: &ClaraClient,
    ws: &WorkspaceId,
    name: &str,
    access: Access,
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
            p["endpoint"]
                .as_str()
                .filter(|e| !e.is_empty())
                .unwrap_or(&client.cloud.storage_suffix)
        ),
    };
    let url = match url::Url::parse(&account_url) {
        Ok(u) => u,
        Err(e) => {
            diags.error("Invalid blob endpoint", format!("{account_url}: {e}"));
            return None;
        }
    };
    let identity_based = p["credentials"]["credentialsType"].as_str() == Some("None");
    let new_client = |credential: BlobCredential, diags: &mut Diagnostics| {
        BlobClient::new(
            url.clone(),
            credential,
            client.http.clone(),
            BlobOptions::default(),
        )
        .map_err(|e| diags.error("Cannot use the datastore's storage account", e.to_string()))
        .ok()
    };
    let datastore = |blob: BlobClient, owns_account: bool| Datastore {
        name: name.to_string(),
        container_url: format!("{}/{container}", account_url.trim_end_matches('/')),
        container: container.clone(),
        blob,
        owns_account,
    };

    // 1. Microsoft Entra ID, when the endpoint is https.
    let refusal = if url.scheme() == "https" {
        let blob = new_client(BlobCredential::Bearer(client.credential.clone()), diags)?;
        match blob.probe_access(&container, access == Access::Write).await {
            Ok(()) => {
                tracing::debug!(datastore = name, "blob access with Microsoft Entra ID");
                // A data role that allows writing blobs also allows creating the container.
                return Some(datastore(blob, access == Access::Write));
            }
            // Plan and refresh by a principal without a data role (e.g. a reviewer with only
            // Reader) warn below instead of failing; apply needs the role or the key.
            Err(e) if e.is_permission_mismatch() && (!identity_based || access == Access::Read) => {
                e
            }
            Err(e) if e.is_permission_mismatch() => {
                diags.attr_error(
                    AttrPath::root("datastore"),
                    "No data access to the datastore's storage",
                    format!(
                        "{}\nDatastore \"{name}\" is identity-based (it holds no account key or SAS), so there is no other way in.",
                        no_data_role(name, &account, access, &e)
                    ),
                );
                return None;
            }
            Err(e) => {
                diags.error(
                    "Cannot reach the datastore's storage",
                    format!("Datastore \"{name}\" (storage account {account}): {e}"),
                );
                return None;
            }
        }
    } else {
        if identity_based {
            diags.attr_error(
                AttrPath::root("datastore"),
                "Identity-based datastore needs https",
                format!(
                    "Datastore \"{name}\" is identity-based (no account key or SAS) and its blob endpoint {} is http, \
                     where Microsoft Entra ID tokens are never sent. Use an https endpoint.",
                    url.origin().ascii_serialization()
                ),
            );
            return None;
        }
        BlobError::new(
            "HttpEndpoint",
            format!(
                "the blob endpoint {} is http, where Microsoft Entra ID tokens are never sent",
                url.origin().ascii_serialization()
            ),
        )
    };

    // 2. Plan and refresh stop here: they never read datastore secrets.
    if access == Access::Read {
        diags.warning(
            "Uploaded blobs not verified",
            format!(
                "Datastore \"{name}\": {}. Plan and refresh never read datastore secrets (listSecrets), so the \
                 blobs were not checked against state; apply will check them. Give the principal Storage Blob Data Reader \
                 (and an https endpoint) to verify them at plan time.",
                if refusal.is_permission_mismatch() {
                    no_data_role(name, &account, access, &refusal)
                } else {
                    refusal.message.clone()
                }
            ),
        );
        return None;
    }

    // 3. Apply on a key or SAS datastore: the secret Azure ML holds, for this apply only.
    tracing::info!(datastore = name, reason = %refusal, "using the datastore's own credential (listSecrets)");
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
    // A container-scoped SAS cannot create containers; an account key can.
    let owns_account = matches!(credential, BlobCredential::SharedKey { .. });
    let blob = new_client(credential, diags)?;
    Some(datastore(blob, owns_account))
}
