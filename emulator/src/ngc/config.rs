//! The `ngc` section of the emulator config (every field optional).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::faults::NgcFault;

pub const DEFAULT_LEGACY_KEY: &str = "ngc-legacy-key-do-not-log";
pub const DEFAULT_NVAPI_KEY: &str = "nvapi-emulator-key-do-not-log";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NgcConfig {
    /// API key -> orgs it may read private assets of (`"*"`: every org). Keys starting with
    /// `nvapi-` are also accepted directly as `Authorization: Bearer`; the others must be
    /// exchanged at `GET /token`.
    pub api_keys: BTreeMap<String, Vec<String>>,
    /// `expires_in` of tokens issued by `GET /token` (seconds).
    pub token_expires_in_s: u64,
    /// Lifetime of the signed object-store URLs the file routes redirect to (seconds).
    pub signed_url_ttl_s: u64,
    /// Address of the object-store ("xfiles") listener; default: the main listener's IP,
    /// port 0.
    pub xfiles_listen: Option<std::net::SocketAddr>,
    /// Host name written into signed URLs (default: the xfiles listener's IP), e.g.
    /// `localhost` to make the object store a different host, not only a different port.
    pub xfiles_host: Option<String>,
    /// The object store refuses (400) requests that carry an `Authorization` header, as S3
    /// does for presigned URLs; this catches clients that leak the NGC credential across
    /// the redirect.
    pub xfiles_reject_authorization: bool,
    /// Page size of file listings when the request has no `page-size`.
    pub default_page_size: usize,
    /// Largest accepted `page-size`.
    pub max_page_size: usize,
    /// Extra assets served next to the built-in ones.
    pub assets: Vec<AssetConfig>,
    /// Download faults armed at start (see `ngc::faults`).
    pub faults: Vec<NgcFault>,
}

impl Default for NgcConfig {
    fn default() -> Self {
        let all = vec!["*".to_string()];
        NgcConfig {
            api_keys: BTreeMap::from([
                (DEFAULT_LEGACY_KEY.to_string(), all.clone()),
                (DEFAULT_NVAPI_KEY.to_string(), all),
            ]),
            token_expires_in_s: 900,
            signed_url_ttl_s: 3600,
            xfiles_listen: None,
            xfiles_host: None,
            xfiles_reject_authorization: true,
            default_page_size: 100,
            max_page_size: 1000,
            assets: Vec::new(),
            faults: Vec::new(),
        }
    }
}

/// An asset added by the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetConfig {
    /// `model` or `resource`.
    pub kind: String,
    pub org: String,
    #[serde(default)]
    pub team: Option<String>,
    pub name: String,
    #[serde(default = "yes")]
    pub public: bool,
    #[serde(default)]
    pub eula_required: bool,
    #[serde(default)]
    pub description: Option<String>,
    pub versions: Vec<VersionConfig>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VersionConfig {
    pub version: String,
    /// `UPLOAD_COMPLETE` (default) or `UPLOAD_PENDING`.
    #[serde(default)]
    pub status: Option<String>,
    pub files: Vec<FileConfig>,
}

/// One file: exactly one of `text`, `base64` or `size` (deterministic pseudo-random bytes).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub path: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub base64: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
}

fn yes() -> bool {
    true
}

impl NgcConfig {
    pub fn check(&self) -> Result<(), String> {
        for (key, orgs) in &self.api_keys {
            if key.is_empty() {
                return Err("api_keys: empty key".into());
            }
            if orgs.iter().any(String::is_empty) {
                return Err("api_keys: empty org name".into());
            }
        }
        if self.default_page_size == 0 || self.max_page_size == 0 {
            return Err("page sizes must be positive".into());
        }
        for a in &self.assets {
            if a.kind != "model" && a.kind != "resource" {
                return Err(format!(
                    "assets: kind must be model or resource, got {:?}",
                    a.kind
                ));
            }
            for v in &a.versions {
                for f in &v.files {
                    let n = usize::from(f.text.is_some())
                        + usize::from(f.base64.is_some())
                        + usize::from(f.size.is_some());
                    if n != 1 {
                        return Err(format!(
                            "assets: file {:?} needs exactly one of text, base64, size",
                            f.path
                        ));
                    }
                    if let Some(b) = &f.base64 {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD
                            .decode(b)
                            .map_err(|e| format!("assets: file {:?}: base64: {e}", f.path))?;
                    }
                }
            }
        }
        for (i, f) in self.faults.iter().enumerate() {
            f.check().map_err(|e| format!("faults[{i}]: {e}"))?;
        }
        Ok(())
    }
}
