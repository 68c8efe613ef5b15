//! TLS material: a local CA and a server certificate for `localhost`, `127.0.0.1` and `::1`
//! signed by it, generated once with rcgen and persisted in the state dir:
//! `ca.pem` (trust this, e.g. via `SSL_CERT_FILE`), `ca.key.pem`, `server.pem` (leaf + CA),
//! `server.key.pem`.

use std::path::Path;
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::{Duration, OffsetDateTime};

use crate::util::write_atomic;

pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca.key.pem";
const SERVER_CERT_FILE: &str = "server.pem";
const SERVER_KEY_FILE: &str = "server.key.pem";

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Loads the persisted certificates, generating them on first use.
pub fn server_config(dir: &Path) -> Result<Arc<ServerConfig>, BoxError> {
    let all_present = [CA_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE]
        .iter()
        .all(|f| dir.join(f).exists());
    if !all_present {
        generate(dir)?;
    }
    let chain_pem = std::fs::read(dir.join(SERVER_CERT_FILE))?;
    let chain = CertificateDer::pem_slice_iter(&chain_pem).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(&std::fs::read(dir.join(SERVER_KEY_FILE))?)?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn generate(dir: &Path) -> Result<(), BoxError> {
    let now = OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "clara-emulator local CA");
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "clara-emulator");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params.not_before = now - Duration::days(1);
    ca_params.not_after = now + Duration::days(3650);
    let ca_key_pem = ca_key.serialize_pem();
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key)?;

    let server_key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(825);
    let server_cert = params.signed_by(&server_key, &ca)?;

    write_atomic(&dir.join(CA_KEY_FILE), ca_key_pem.as_bytes())?;
    restrict_permissions(&dir.join(CA_KEY_FILE));
    write_atomic(
        &dir.join(SERVER_KEY_FILE),
        server_key.serialize_pem().as_bytes(),
    )?;
    restrict_permissions(&dir.join(SERVER_KEY_FILE));
    write_atomic(
        &dir.join(SERVER_CERT_FILE),
        format!("{}{}", server_cert.pem(), ca.pem()).as_bytes(),
    )?;
    write_atomic(&dir.join(CA_FILE), ca.pem().as_bytes())?;
    Ok(())
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) {}
