//! Errors worded for the person running `terraform apply`.

use std::path::PathBuf;

use url::Url;

/// Where to put the key, repeated in every authentication message.
const KEY_HINT: &str =
    "set ngc.api_key in the provider block or the NGC_CLI_API_KEY environment variable";

#[derive(Debug, thiserror::Error)]
pub enum NgcError {
    #[error("invalid NGC source: {0}")]
    InvalidSource(String),

    /// 401 and no key configured: the asset is not public.
    #[error("NGC {what} needs an API key: {KEY_HINT}")]
    ApiKeyRequired { what: String },

    /// 401 (or a refused token exchange) with a key configured.
    #[error(
        "NGC rejected the API key while fetching {what}: check ngc.api_key / NGC_CLI_API_KEY \
         (the key may be mistyped, revoked or expired)"
    )]
    ApiKeyRejected { what: String },

    /// 403: the key is valid but its user is not in the org/team.
    #[error(
        "the NGC API key has no access to {what} (org {org}{team_part}); use a key of a user \
         who belongs to that org/team, or ask its admin for access",
        team_part = team.as_deref().map(|t| format!(", team {t}")).unwrap_or_default()
    )]
    Forbidden {
        what: String,
        org: String,
        team: Option<String>,
    },

    /// 404 on the asset, the version or a file.
    #[error("NGC {what} not found{hint}")]
    NotFound { what: String, hint: String },

    /// 412: NGC wants the licence (EULA) accepted in its web catalog first.
    #[error(
        "the licence of NGC {asset} has not been accepted: open {catalog_url}, sign in, accept \
         the licence terms, then run terraform apply again"
    )]
    LicenseNotAccepted { asset: String, catalog_url: String },

    #[error("NGC {asset} is not ready to download: its status is {status}, not UPLOAD_COMPLETE")]
    VersionNotReady { asset: String, status: String },

    #[error("NGC {asset} has no version whose upload is complete (status UPLOAD_COMPLETE)")]
    NoCompleteVersion { asset: String },

    #[error(
        "checksum mismatch for {file}: expected sha256 {expected}, downloaded data has {actual}; \
         the bad file was deleted, so the next run downloads it afresh"
    )]
    Checksum {
        file: String,
        expected: String,
        actual: String,
    },

    #[error(
        "size mismatch for {file}: the NGC file listing says {listed} bytes, but the download \
         server serves {served} bytes (seen on {attempts} tries, with backoff); the asset's \
         listing is inconsistent, so downloading it again will not help until NGC fixes it"
    )]
    SizeDisagrees {
        file: String,
        listed: u64,
        served: u64,
        attempts: u32,
    },

    #[error("size mismatch for {file}: expected {expected} bytes, got {actual}")]
    Size {
        file: String,
        expected: u64,
        actual: u64,
    },

    /// An HTTP status the client has no specific meaning for (or retries ran out on 5xx/429).
    #[error("{what}: HTTP {status} from {url}{detail}")]
    Http {
        what: String,
        status: u16,
        url: String,
        detail: String,
    },

    /// Connection failures and broken bodies, after all retries.
    #[error("{what}: request to {url} failed after {attempts} attempt(s): {message}")]
    Transport {
        what: String,
        url: String,
        attempts: u32,
        message: String,
    },

    /// A response that does not look like NGC's API (bad JSON, bad Content-Range, …).
    #[error("{what}: unexpected response from {url}: {message}")]
    Protocol {
        what: String,
        url: String,
        message: String,
    },

    /// A manifest path that would escape the download directory.
    #[error("NGC {asset} lists an unsafe file path {path:?}: {reason}")]
    UnsafePath {
        asset: String,
        path: String,
        reason: String,
    },

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl NgcError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> NgcError {
        let path = path.into();
        move |source| NgcError::Io {
            action,
            path,
            source,
        }
    }
}

/// A URL fit for messages and logs: scheme, host, port and path only. Signed object-store
/// URLs carry their credentials in the query, so the query never leaves this crate.
pub fn redact_url(url: &Url) -> String {
    let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or(""));
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    if url.query().is_some() {
        shown.push_str("?…");
    }
    shown
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 0xf) as usize] as char);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_signed_query() {
        let u =
            Url::parse("https://xfiles.ngc.nvidia.com:8443/org/a/f.bin?Signature=s3cr3t&Expires=1")
                .unwrap();
        let shown = redact_url(&u);
        assert_eq!(shown, "https://xfiles.ngc.nvidia.com:8443/org/a/f.bin?…");
        assert!(!shown.contains("s3cr3t"));
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }

    #[test]
    fn messages_point_at_the_fix() {
        let e = NgcError::ApiKeyRequired {
            what: "model nvidia/x:1".into(),
        };
        assert!(e.to_string().contains("NGC_CLI_API_KEY"), "{e}");
        let e = NgcError::Forbidden {
            what: "model a/b/c:1".into(),
            org: "a".into(),
            team: Some("b".into()),
        };
        assert!(e.to_string().contains("org a, team b"), "{e}");
    }
}
