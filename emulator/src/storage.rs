//! The workspace's blob storage as far as the emulator needs it: the `storage` config, the
//! container SAS handed out by code `startPendingUpload`, and best-effort Shared Key uploads
//! of simulated job outputs (to Azurite or any Blob endpoint), hand-written on reqwest.
//!
//! The emulator never serves blobs itself. Without `storage.blob_endpoint` it still answers
//! `startPendingUpload` with an Azurite-style URL (`http://127.0.0.1:10000/devstoreaccount1/…`)
//! and a SAS signed with the well-known Azurite key, and it uploads nothing.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::util::rfc3339;

pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub const DEFAULT_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";
pub const STORAGE_VERSION: &str = "2021-08-06";

/// `storage` section of the config (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Blob service URL including the account for path-style endpoints, e.g.
    /// `http://127.0.0.1:10000/devstoreaccount1` (Azurite) or
    /// `https://acct.blob.core.windows.net`. When set, completed jobs' outputs are uploaded
    /// there (best effort) and `startPendingUpload` makes sure the container exists.
    pub blob_endpoint: Option<String>,
    /// Default `devstoreaccount1`.
    pub account_name: Option<String>,
    /// Base64 account key (default: the well-known Azurite key). Signs SAS tokens and
    /// Shared Key requests.
    pub account_key: Option<String>,
    /// Container (default `azureml-blobstore-<workspaceId>` per workspace).
    pub container: Option<String>,
    /// A fixed SAS query string (without `?`) to hand out instead of a signed one.
    pub sas_token: Option<String>,
    /// Identity-based datastores: every datastore shows `credentials: {"credentialsType":
    /// "None"}` and has no secrets (the storage account refuses Shared Key, e.g. Azurite in
    /// OAuth mode standing for an account with shared key access disabled). The emulator then
    /// writes nothing to storage itself (no job outputs, no container creation).
    pub identity_based: bool,
}

impl StorageConfig {
    pub fn check(&self) -> Result<(), String> {
        if let Some(e) = &self.blob_endpoint {
            url::Url::parse(e).map_err(|err| format!("blob_endpoint '{e}': {err}"))?;
        }
        if let Some(k) = &self.account_key {
            B64.decode(k)
                .map_err(|err| format!("account_key is not base64: {err}"))?;
        }
        Ok(())
    }

    /// Whether uploads are enabled (an endpoint was configured, and the account takes the
    /// account key the emulator signs with).
    pub fn uploads_enabled(&self) -> bool {
        self.blob_endpoint.is_some() && !self.identity_based
    }

    pub fn endpoint(&self) -> String {
        self.blob_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_BLOB_ENDPOINT)
            .trim_end_matches('/')
            .to_string()
    }

    pub fn account(&self) -> &str {
        self.account_name.as_deref().unwrap_or(AZURITE_ACCOUNT)
    }

    fn key(&self) -> Vec<u8> {
        let k = self.account_key.as_deref().unwrap_or(AZURITE_KEY);
        B64.decode(k).unwrap_or_default()
    }

    /// The container of a workspace (`workspace_guid` is its `workspaceId`).
    pub fn container(&self, workspace_guid: &str) -> String {
        self.container
            .clone()
            .unwrap_or_else(|| format!("azureml-blobstore-{workspace_guid}"))
    }

    /// A container SAS (`sr=c`, read/add/create/write/list) valid from `now_ms` - 5 min to
    /// `expiry_ms`, or the configured fixed token.
    pub fn container_sas(&self, container: &str, now_ms: u64, expiry_ms: u64) -> String {
        if let Some(t) = &self.sas_token {
            return t.trim_start_matches('?').to_string();
        }
        let st = rfc3339(now_ms.saturating_sub(300_000) / 1000 * 1000);
        let se = rfc3339(expiry_ms / 1000 * 1000);
        let (sp, spr, sr) = ("racwl", "https,http", "c");
        let resource = format!("/blob/{}/{container}", self.account());
        let to_sign = [
            sp,
            &st,
            &se,
            &resource,
            "",
            "",
            spr,
            STORAGE_VERSION,
            sr,
            "",
            "",
            "",
            "",
            "",
            "",
            "",
        ]
        .join("\n");
        let sig = self.sign(&to_sign);
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("sv", STORAGE_VERSION)
            .append_pair("spr", spr)
            .append_pair("st", &st)
            .append_pair("se", &se)
            .append_pair("sr", sr)
            .append_pair("sp", sp)
            .append_pair("sig", &sig)
            .finish()
    }

    fn sign(&self, to_sign: &str) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.key());
        B64.encode(aws_lc_rs::hmac::sign(&key, to_sign.as_bytes()).as_ref())
    }

    /// `Authorization: SharedKey …` for a request without conditional/range headers.
    fn shared_key(
        &self,
        method: &str,
        url: &url::Url,
        content_length: usize,
        content_type: &str,
        ms_headers: &[(&str, String)],
    ) -> String {
        let len = if content_length == 0 {
            String::new()
        } else {
            content_length.to_string()
        };
        let mut headers: Vec<(String, String)> = ms_headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        headers.sort();
        let canon_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let mut query: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
            .collect();
        query.sort();
        let mut resource = format!("/{}{}", self.account(), url.path());
        for (k, v) in query {
            resource.push_str(&format!("\n{k}:{v}"));
        }
        let to_sign =
            format!("{method}\n\n\n{len}\n\n{content_type}\n\n\n\n\n\n\n{canon_headers}{resource}");
        format!("SharedKey {}:{}", self.account(), self.sign(&to_sign))
    }

    /// Creates the container if missing (201 or 409 are both fine).
    pub async fn ensure_container(
        &self,
        client: &reqwest::Client,
        container: &str,
    ) -> Result<(), String> {
        let url = url::Url::parse(&format!(
            "{}/{container}?restype=container",
            self.endpoint()
        ))
        .map_err(|e| e.to_string())?;
        let ms = ms_headers();
        let auth = self.shared_key("PUT", &url, 0, "", &ms);
        let mut req = client
            .put(url.clone())
            .header("authorization", auth)
            .header("content-length", "0");
        for (k, v) in &ms {
            req = req.header(*k, v);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        match resp.status().as_u16() {
            201 | 409 => Ok(()),
            s => Err(format!("create container {container}: HTTP {s}")),
        }
    }

    /// Put Blob (block blob) with Shared Key.
    pub async fn put_blob(
        &self,
        client: &reqwest::Client,
        container: &str,
        blob: &str,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), String> {
        let url = url::Url::parse(&format!("{}/{container}/{blob}", self.endpoint()))
            .map_err(|e| e.to_string())?;
        let mut ms = ms_headers();
        ms.push(("x-ms-blob-type", "BlockBlob".to_string()));
        let auth = self.shared_key("PUT", &url, bytes.len(), content_type, &ms);
        let mut req = client
            .put(url.clone())
            .header("authorization", auth)
            .header("content-type", content_type)
            .header("content-length", bytes.len().to_string())
            .body(bytes);
        for (k, v) in &ms {
            req = req.header(*k, v);
        }
        let resp = req.send().await.map_err(|e| e.to_string())?;
        if resp.status().as_u16() == 201 {
            Ok(())
        } else {
            Err(format!(
                "put blob {container}/{blob}: HTTP {}",
                resp.status().as_u16()
            ))
        }
    }
}

/// HTTP client for storage calls (short timeout, no proxy: Azurite is local).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

fn ms_headers() -> Vec<(&'static str, String)> {
    vec![
        ("x-ms-date", http_date(OffsetDateTime::now_utc())),
        ("x-ms-version", STORAGE_VERSION.to_string()),
    ]
}

/// RFC 1123 date, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(t: OffsetDateTime) -> String {
    let fmt = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sas_is_signed_and_deterministic() {
        let cfg = StorageConfig::default();
        let a = cfg.container_sas("c", 1_700_000_000_000, 1_700_003_600_000);
        let b = cfg.container_sas("c", 1_700_000_000_000, 1_700_003_600_000);
        assert_eq!(a, b);
        assert!(a.contains("sv=2021-08-06") && a.contains("sr=c") && a.contains("sig="));
        assert!(a.contains("se=2023-11-14T23%3A13%3A20Z"), "{a}");
        let fixed = StorageConfig {
            sas_token: Some("?sv=x&sig=y".into()),
            ..Default::default()
        };
        assert_eq!(fixed.container_sas("c", 0, 0), "sv=x&sig=y");
    }

    #[test]
    fn http_dates() {
        let t = OffsetDateTime::from_unix_timestamp(784_111_777).unwrap();
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
