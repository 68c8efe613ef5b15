//! Client certificate credential: the service principal proves itself with a JWT client
//! assertion signed by the certificate's private key, as the Microsoft identity platform
//! documents in "Microsoft identity platform application authentication certificate
//! credentials" (learn.microsoft.com/entra/identity-platform/certificate-credentials): header
//! `alg` RS256, `typ` JWT, `x5t` the base64url SHA-1 thumbprint of the certificate's DER;
//! claims `aud` the token endpoint, `iss` = `sub` = the client id, `jti` unique, `nbf`/`iat`
//! now, `exp` a few minutes later. It is sent as `client_assertion` with
//! `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
//!
//! Hand-written rather than `azure_identity`'s `ClientCertificateCredential`: azure_identity
//! 1.0 has none (its certificate credential was removed before 1.0), and the token request goes
//! through the same error handling as the secret flow (see `client_credentials.rs`).
//! Accepted files, as azurerm: PKCS#12 (`.pfx`/`.p12`, with `client_certificate_password`) or
//! PEM holding the certificate and an unencrypted PKCS#8 or PKCS#1 RSA key.

use std::sync::Arc;

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;

use crate::secret::Secret;

/// A loaded client certificate: signing key and SHA-1 thumbprint (`x5t`).
#[derive(Clone)]
pub(crate) struct ClientCertificate {
    key: Arc<RsaKeyPair>,
    x5t: String,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Reads a PFX or PEM file. Errors say what is wrong without echoing file content.
    pub(crate) fn load(path: &str, password: Option<&Secret>) -> Result<Self, String> {
        let data = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        let (key_der, cert_der) = if data.starts_with(b"-----BEGIN")
            || data.trim_ascii_start().starts_with(b"-----BEGIN")
        {
            Self::from_pem(&data, path)?
        } else {
            let password = password.map(|p| p.expose()).unwrap_or("");
            let store = p12_keystore::KeyStore::from_pkcs12(&data, password).map_err(|e| {
                format!(
                    "{path} is not a PKCS#12 (PFX) file this password opens ({e}); check \
                     client_certificate_password (ARM_CLIENT_CERTIFICATE_PASSWORD)"
                )
            })?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| format!("{path} holds no private key with its certificate"))?;
            let cert = chain
                .chain()
                .first()
                .ok_or_else(|| format!("{path} holds a key but no certificate"))?;
            (chain.key().to_vec(), cert.as_der().to_vec())
        };
        let key = RsaKeyPair::from_pkcs8(&key_der)
            .or_else(|_| RsaKeyPair::from_der(&key_der))
            .map_err(|_| format!("the private key in {path} is not an RSA key (Entra certificate credentials use RS256)"))?;
        let x5t = B64URL.encode(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &cert_der));
        Ok(Self {
            key: Arc::new(key),
            x5t,
        })
    }

    fn from_pem(data: &[u8], path: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
        if data.windows(23).any(|w| w == b"ENCRYPTED PRIVATE KEY--") {
            return Err(format!(
                "{path} holds an encrypted PEM key, which is not supported; give a PFX with \
                 client_certificate_password instead"
            ));
        }
        let (mut key, mut cert) = (None, None);
        for item in rustls_pemfile::read_all(&mut &data[..]) {
            match item.map_err(|e| format!("{path} is not valid PEM: {e}"))? {
                rustls_pemfile::Item::X509Certificate(c) if cert.is_none() => {
                    cert = Some(c.to_vec())
                }
                rustls_pemfile::Item::Pkcs8Key(k) if key.is_none() => {
                    key = Some(k.secret_pkcs8_der().to_vec())
                }
                rustls_pemfile::Item::Pkcs1Key(k) if key.is_none() => {
                    key = Some(k.secret_pkcs1_der().to_vec())
                }
                _ => {}
            }
        }
        match (key, cert) {
            (Some(k), Some(c)) => Ok((k, c)),
            (None, _) => Err(format!("{path} holds no PRIVATE KEY block")),
            (_, None) => Err(format!("{path} holds no CERTIFICATE block")),
        }
    }

    /// The signed client assertion for `client_id` at token endpoint `aud`.
    pub(crate) fn assertion(&self, client_id: &str, aud: &str) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": self.x5t});
        let jti: [u8; 16] = rand::random();
        let claims = serde_json::json!({
            "aud": aud, "iss": client_id, "sub": client_id,
            "jti": B64URL.encode(jti), "nbf": now, "iat": now, "exp": now + 600,
        });
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let mut sig = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| "signing the client assertion failed".to_string())?;
        Ok(format!("{signing_input}.{}", B64URL.encode(sig)))
    }
}
