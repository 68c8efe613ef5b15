//! The one `reqwest::Client` shared by ARM calls and `azure_identity` sign-in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// `terraform-provider-clara/<version>`.
pub const USER_AGENT: &str = concat!("terraform-provider-clara/", env!("CARGO_PKG_VERSION"));

/// Standard environment variable naming a PEM bundle of extra trusted roots.
pub const SSL_CERT_FILE_ENV: &str = "SSL_CERT_FILE";

/// Where common Linux distributions keep the system CA bundle. Used only when
/// extra roots are given: the platform verifier then reads `SSL_CERT_FILE`
/// *instead of* the system store, so we merge the system bundle back in.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot read CA bundle {path}: {source}")]
    ReadCaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA bundle {path} holds no usable PEM certificate{detail}")]
    NoCertificates { path: PathBuf, detail: String },
    #[error("cannot build HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

#[derive(Debug, Clone)]
pub struct HttpClientOptions {
    pub user_agent: String,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response; not a whole-request limit, so
    /// large downloads still work.
    pub read_timeout: Duration,
    /// PEM bundle whose certificates are trusted in addition to the normal roots.
    pub extra_roots_pem: Option<PathBuf>,
}

impl Default for HttpClientOptions {
    fn default() -> Self {
        Self {
            user_agent: USER_AGENT.to_owned(),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(120),
            extra_roots_pem: None,
        }
    }
}

impl HttpClientOptions {
    /// Defaults plus `SSL_CERT_FILE` (if set and non-empty) as extra roots.
    pub fn from_env() -> Self {
        let extra = std::env::var_os(SSL_CERT_FILE_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        Self {
            extra_roots_pem: extra,
            ..Self::default()
        }
    }
}

/// Builds the shared client (rustls). Redirects are disabled: ARM signals
/// long-running operations with `Location`, which we must see, not follow.
pub fn build_http_client(options: &HttpClientOptions) -> Result<reqwest::Client, HttpError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(options.user_agent.clone())
        .connect_timeout(options.connect_timeout)
        .read_timeout(options.read_timeout)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &options.extra_roots_pem {
        let mut roots = load_pem_certificates(path)?;
        roots.extend(system_bundle_certificates());
        tracing::debug!(ca_file = %path.display(), roots = roots.len(), "trusting extra CA roots");
        builder = builder.tls_certs_merge(roots);
    }
    Ok(builder.build()?)
}

/// Reads every PEM certificate in `path`. Errors if the file cannot be read, or
/// holds no certificate usable as a trust anchor.
pub fn load_pem_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let pem = std::fs::read(path).map_err(|source| HttpError::ReadCaFile {
        path: path.to_owned(),
        source,
    })?;
    let mut certs = Vec::new();
    let mut skipped = 0usize;
    for der in CertificateDer::pem_slice_iter(&pem) {
        match der {
            Ok(der) if is_trust_anchor(&der) => certs.push(der),
            _ => skipped += 1,
        }
    }
    if certs.is_empty() {
        let detail = if skipped > 0 {
            format!(" ({skipped} unparseable)")
        } else {
            String::new()
        };
        return Err(HttpError::NoCertificates {
            path: path.to_owned(),
            detail,
        });
    }
    if skipped > 0 {
        tracing::warn!(ca_file = %path.display(), skipped, "ignored unusable certificates in CA bundle");
    }
    to_reqwest(certs)
}

/// The first system CA bundle found, minus anything rustls would reject (one
/// bad system certificate must not make the whole client unbuildable).
fn system_bundle_certificates() -> Vec<reqwest::Certificate> {
    for path in SYSTEM_BUNDLES {
        let Ok(pem) = std::fs::read(path) else {
            continue;
        };
        let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
            .filter_map(Result::ok)
            .filter(is_trust_anchor)
            .collect();
        if !certs.is_empty() {
            return to_reqwest(certs).unwrap_or_default();
        }
    }
    Vec::new()
}

fn is_trust_anchor(der: &CertificateDer<'static>) -> bool {
    rustls::RootCertStore::empty().add(der.clone()).is_ok()
}

fn to_reqwest(certs: Vec<CertificateDer<'static>>) -> Result<Vec<reqwest::Certificate>, HttpError> {
    certs
        .iter()
        .map(|der| reqwest::Certificate::from_der(der.as_ref()).map_err(HttpError::Build))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_names_provider() {
        assert!(USER_AGENT.starts_with("terraform-provider-clara/"));
    }

    #[test]
    fn missing_ca_file_is_a_clear_error() {
        let err = load_pem_certificates(Path::new("/nonexistent/ca.pem")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn ca_file_without_certs_is_an_error() {
        let dir = std::env::temp_dir().join(format!("clara-azure-empty-{}", std::process::id()));
        std::fs::write(&dir, "not a certificate\n").unwrap();
        let err = load_pem_certificates(&dir).unwrap_err();
        std::fs::remove_file(&dir).ok();
        assert!(matches!(err, HttpError::NoCertificates { .. }), "{err}");
    }
}
