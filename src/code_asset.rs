//! Code assets: a local folder uploaded once per content (azure-ai-ml's flow): content hash →
//! existing version? → startPendingUpload (a SAS) → block upload → PUT the version.

use std::path::{Path, PathBuf};

use clara_azure::Secret;
use clara_azure::blob::{BlobClient, BlobCredential};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::client::ClaraClient;
use crate::ids::WorkspaceId;

/// A folder's files (relative path, local path) and the SHA-256 over paths and contents.
pub struct Folder {
    pub files: Vec<(String, PathBuf)>,
    pub hash: String,
}

pub fn hash_folder(dir: &Path) -> Result<Folder, String> {
    let mut files = Vec::new();
    collect(dir, dir, &mut files)?;
    files.sort();
    let mut h = Sha256::new();
    for (rel, path) in &files {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(Sha256::digest(&bytes));
    }
    let hash = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Folder { files, hash })
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> Result<(), String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name == ".git" || name == ".terraform" || name == "__pycache__" {
            continue;
        }
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_dir() {
            collect(root, &path, out)?;
        } else if kind.is_file() {
            let rel = path
                .strip_prefix(root)
                .map_err(|e| e.to_string())?
                .to_string_lossy()
                .replace('\\', "/");
            out.push((rel, path));
        }
    }
    Ok(())
}

/// The code version holding a folder's content, uploading it if Azure does not have it yet.
pub async fn ensure(
    client: &ClaraClient,
    ws: &WorkspaceId,
    folder: &Folder,
) -> Result<String, String> {
    let name = format!("clara-code-{}", &folder.hash[..12]);
    let id = format!("{}/versions/1", ws.child("codes", &name));
    if client
        .arm
        .get_json(&id)
        .await
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Ok(id);
    }
    let upload = client
        .arm
        .post_json_idempotent(
            &format!("{id}/startPendingUpload"),
            Some(&json!({"pendingUploadType": "TemporaryBlobReference"})),
        )
        .await
        .map_err(|e| format!("startPendingUpload: {e}"))?
        .into_json();
    let reference = &upload["blobReferenceForConsumption"];
    let blob_uri = reference["blobUri"]
        .as_str()
        .ok_or("startPendingUpload returned no blobUri")?
        .to_string();
    let sas_uri = reference["credential"]["sasUri"]
        .as_str()
        .ok_or("startPendingUpload returned no SAS")?;
    let sas = sas_uri
        .split_once('?')
        .map(|(_, q)| q.to_string())
        .ok_or("the upload SAS has no query")?;
    let (account_url, container, prefix) = split_blob_uri(&blob_uri)?;
    let blob = BlobClient::new(
        account_url,
        BlobCredential::Sas(Secret::new(sas)),
        client.http.clone(),
        Default::default(),
    )
    .map_err(|e| e.to_string())?;
    for (rel, path) in &folder.files {
        blob.upload_file(
            &container,
            &format!("{prefix}/{rel}"),
            path,
            &Default::default(),
        )
        .await
        .map_err(|e| format!("uploading {rel}: {e}"))?;
    }
    let body = json!({"properties": {
        "codeUri": blob_uri,
        "isAnonymous": false,
        "properties": {"hash_sha256": folder.hash, "hash_version": "202208"},
    }});
    client
        .arm
        .put_json(&id, &body)
        .await
        .map_err(|e| format!("registering the code version: {e}"))?;
    tracing::info!(code = %name, files = folder.files.len(), "code uploaded");
    Ok(id)
}

/// `https://acct.blob.core.windows.net/<container>/<prefix>` or the path-style
/// `http://127.0.0.1:10000/<account>/<container>/<prefix>` of emulators.
fn split_blob_uri(uri: &str) -> Result<(url::Url, String, String), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("blobUri {uri}: {e}"))?;
    let segs: Vec<&str> = url.path().trim_matches('/').split('/').collect();
    let path_style = matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)))
        || url.host_str() == Some("localhost");
    let skip = usize::from(path_style);
    if segs.len() < skip + 2 {
        return Err(format!("blobUri {uri} names no container and folder"));
    }
    let mut account = url.clone();
    account.set_query(None);
    account.set_path(&segs[..skip].join("/"));
    Ok((account, segs[skip].to_string(), segs[skip + 1..].join("/")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn splits_host_and_path_style_uris() {
        let (a, c, p) = super::split_blob_uri(
            "https://acct.blob.core.windows.net/azureml-blobstore-x/LocalUpload/abc",
        )
        .unwrap();
        assert_eq!(
            (a.as_str(), c.as_str(), p.as_str()),
            (
                "https://acct.blob.core.windows.net/",
                "azureml-blobstore-x",
                "LocalUpload/abc"
            )
        );
        let (a, c, p) =
            super::split_blob_uri("http://127.0.0.1:10000/devstoreaccount1/cont/LocalUpload/abc")
                .unwrap();
        assert_eq!(
            (a.as_str(), c.as_str(), p.as_str()),
            (
                "http://127.0.0.1:10000/devstoreaccount1",
                "cont",
                "LocalUpload/abc"
            )
        );
    }
}
