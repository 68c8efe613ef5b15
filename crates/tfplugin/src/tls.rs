//! go-plugin auto-mTLS, server side.
//!
//! Terraform puts a freshly generated client certificate (ECDSA P-521, self-signed,
//! CA:TRUE) in `PLUGIN_CLIENT_CERT` and trusts exactly the server certificate we print
//! in the handshake line. webpki refuses a CA:TRUE certificate as an end entity
//! (`CaUsedAsEndEntity`), so instead of chain validation the client is authenticated by
//! pinning: its certificate must be byte-identical to the one Terraform gave us, and
//! its handshake signature is checked with aws-lc-rs (which, unlike ring, does P-521).

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("PLUGIN_CLIENT_CERT holds no usable PEM certificate: {0}")]
    ClientCertPem(String),
    #[error("generating the server certificate failed: {0}")]
    CertGen(#[from] rcgen::Error),
    #[error("TLS configuration failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The server's self-signed certificate and key, generated per process like go-plugin does.
pub struct ServerIdentity {
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl ServerIdentity {
    /// P-256 self-signed cert for `localhost`, CA:TRUE, EKU serverAuth+clientAuth: the
    /// Go client uses it both as the trust root and as the leaf it verifies.
    pub fn generate() -> Result<Self, TlsError> {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
        };
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        params
            .distinguished_name
            .push(DnType::OrganizationName, "HashiCorp");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyAgreement,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        // Same window as go-plugin: tolerate small clock skew, effectively never expire.
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::seconds(30);
        params.not_after = now + time::Duration::days(365 * 30);
        let cert = params.self_signed(&key)?;
        Ok(ServerIdentity {
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        })
    }

    /// DER of the certificate; the handshake line carries it base64-encoded.
    pub fn cert_der(&self) -> &[u8] {
        self.cert.as_ref()
    }
}

/// The one client certificate this server accepts.
#[derive(Clone, Debug)]
pub struct PinnedClientCert(CertificateDer<'static>);

impl PinnedClientCert {
    /// From the PEM in `PLUGIN_CLIENT_CERT` (the first CERTIFICATE block).
    pub fn from_pem(pem: &str) -> Result<Self, TlsError> {
        let first = CertificateDer::pem_slice_iter(pem.as_bytes())
            .next()
            .ok_or_else(|| TlsError::ClientCertPem("no CERTIFICATE block".into()))?;
        first
            .map(PinnedClientCert)
            .map_err(|e| TlsError::ClientCertPem(e.to_string()))
    }

    pub fn from_der(der: Vec<u8>) -> Self {
        PinnedClientCert(CertificateDer::from(der))
    }

    pub fn der(&self) -> &[u8] {
        self.0.as_ref()
    }
}

/// Everything needed to serve auto-mTLS.
pub struct TlsSetup {
    pub identity: ServerIdentity,
    pub client: PinnedClientCert,
}

impl TlsSetup {
    /// Generates a server identity that will accept only `client`.
    pub fn generate(client: PinnedClientCert) -> Result<Self, TlsError> {
        Ok(TlsSetup {
            identity: ServerIdentity::generate()?,
            client,
        })
    }

    pub fn server_cert_der(&self) -> &[u8] {
        self.identity.cert_der()
    }

    /// rustls server config: aws-lc-rs, pinned client cert required, ALPN h2
    /// (grpc-go refuses a TLS connection without a negotiated ALPN).
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = PinnedCertVerifier::new(self.client.clone(), &provider);
        let mut cfg = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(
                vec![self.identity.cert.clone()],
                PrivateKeyDer::Pkcs8(self.identity.key.clone_key()),
            )?;
        cfg.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(cfg))
    }
}

/// Accepts exactly one client certificate, compared byte for byte.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pinned: PinnedClientCert,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    pub fn new(pinned: PinnedClientCert, provider: &CryptoProvider) -> Self {
        PinnedCertVerifier {
            pinned,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PinnedCertVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    // No CA hints: the Go client then offers its only certificate unconditionally.
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.der() {
            tracing::debug!("pinned client cert matched");
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_identity_is_self_signed_localhost_ca() {
        let id = ServerIdentity::generate().unwrap();
        assert!(!id.cert_der().is_empty());
        // Building a config proves the key matches the certificate.
        let client = ServerIdentity::generate().unwrap();
        let setup = TlsSetup {
            identity: id,
            client: PinnedClientCert::from_der(client.cert_der().to_vec()),
        };
        let cfg = setup.server_config().unwrap();
        assert_eq!(cfg.alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn pem_parsing() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let pinned = PinnedClientCert::from_pem(&cert.pem()).unwrap();
        assert_eq!(pinned.der(), cert.der().as_ref());
        assert!(PinnedClientCert::from_pem("").is_err());
        assert!(
            PinnedClientCert::from_pem(
                "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"
            )
            .is_err()
        );
    }

    #[test]
    fn p521_sha512_is_supported() {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let v = PinnedCertVerifier::new(PinnedClientCert::from_der(vec![1]), &provider);
        assert!(
            v.supported_verify_schemes()
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
        );
    }
}
