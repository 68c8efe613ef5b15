//! Test support shared by the workspace: a private Azurite (Microsoft's blob storage
//! emulator, the pinned npm package under `.tools/`) per test, either plain (http, Shared
//! Key and SAS) or in OAuth mode (`--oauth basic` over https with a certificate generated
//! here, so Entra ID bearer tokens are accepted).
//!
//! Azurite 3.37 in OAuth mode still accepts Shared Key and SAS
//! (`dist/src/blob/BlobRequestListenerFactory.js` tries the Shared Key and SAS
//! authenticators before the token one), so a test that must prove no key was used reads
//! [`Azurite::auth_log`]: Azurite's debug log (`--debug`) names which authenticator
//! accepted each request.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Azurite's development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's fixed, publicly documented development key.
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    pub port: u16,
    /// OAuth mode: https, and the PEM file of the CA that signed Azurite's certificate.
    ca_file: Option<PathBuf>,
    debug_log: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

/// How Azurite authenticated requests, read from its debug log.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuthLog {
    /// Requests accepted with an Entra ID bearer token.
    pub bearer: usize,
    /// Requests whose Shared Key signature matched.
    pub shared_key: usize,
    /// Requests accepted with an account or service SAS.
    pub sas: usize,
}

/// `$AZURITE_BLOB_BIN`, else `${CLARA_TOOLS_DIR:-<repo>/.tools}/node_modules/.bin/azurite-blob`.
fn azurite_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("AZURITE_BLOB_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let tools = std::env::var_os("CLARA_TOOLS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(".tools")
        });
    tools.join("node_modules/.bin/azurite-blob")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Writes a CA and a leaf certificate for `127.0.0.1` / `localhost` signed by it into
/// `dir`; returns (CA file, leaf cert file, leaf key file).
fn make_certificates(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let now = time::OffsetDateTime::now_utc();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "clara-testkit Azurite CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(30);
    let ca = CertifiedIssuer::self_signed(ca, ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(30);
    let cert = leaf.signed_by(&key, &ca).unwrap();
    let (ca_file, cert_file, key_file) = (
        dir.join("ca.pem"),
        dir.join("azurite.pem"),
        dir.join("azurite.key.pem"),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, key.serialize_pem()).unwrap();
    (ca_file, cert_file, key_file)
}

impl Azurite {
    /// Plain Azurite: http, Shared Key and SAS.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Azurite in OAuth mode: `--oauth basic` over https (certificate from a CA this
    /// kit generates, see [`Azurite::ca_file`]) with a debug log for [`Azurite::auth_log`].
    /// Bearer tokens must carry `aud` `https://storage.azure.com` and an
    /// `https://sts.windows.net/…` issuer; Azurite does not check their signature.
    pub fn start_oauth() -> Self {
        Self::launch(true)
    }

    fn launch(oauth: bool) -> Self {
        let bin = azurite_bin();
        assert!(
            bin.exists(),
            "Azurite is not installed ({} is missing): run `make tools-azurite` \
             (scripts/tools.sh azurite) first, or set AZURITE_BLOB_BIN",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("azurite.log");
        let debug_log = dir.path().join("azurite-debug.log");
        let certs = oauth.then(|| make_certificates(dir.path()));
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut command = Command::new(&bin);
            command
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(dir.path().join("data"))
                .args(["--loose", "--skipApiVersionCheck", "--disableTelemetry"]);
            // The debug log is what `auth_log` and `blob_requests` read.
            command.arg("--debug").arg(&debug_log);
            if let Some((_, cert, key)) = &certs {
                command
                    .args(["--oauth", "basic", "--cert"])
                    .arg(cert)
                    .arg("--key")
                    .arg(key);
            }
            let mut child = command
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {} ({e}); Azurite needs Node.js >= 20 on PATH \
                         (`make tools-azurite`)",
                        bin.display()
                    )
                });
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                if last_log.contains("successfully listens") {
                    return Self {
                        child,
                        port,
                        ca_file: certs.as_ref().map(|(ca, _, _)| ca.clone()),
                        debug_log: Some(debug_log.clone()),
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    child.kill().ok();
                    child.wait().ok();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !last_log.contains("EADDRINUSE") {
                break;
            }
        }
        panic!("Azurite did not start:\n{last_log}");
    }

    /// Path-style account URL, `http://127.0.0.1:PORT/devstoreaccount1` (`https://` in
    /// OAuth mode).
    pub fn account_url(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}/{ACCOUNT}", self.port)
    }

    /// OAuth mode: the PEM file of the CA clients must trust.
    pub fn ca_file(&self) -> Option<&std::path::Path> {
        self.ca_file.as_deref()
    }

    /// Every request Azurite received so far, in order: (method, URL path and query), from
    /// its debug log (`BlobStorageContextMiddleware: RequestMethod=PUT RequestURL=…`).
    pub fn blob_requests(&self) -> Vec<(String, String)> {
        let text = self.settled_debug_log();
        text.lines()
            .filter_map(|line| {
                let rest = line
                    .split("BlobStorageContextMiddleware: RequestMethod=")
                    .nth(1)?;
                let (method, rest) = rest.split_once(' ')?;
                let url = rest.strip_prefix("RequestURL=")?.split(' ').next()?;
                let path = url
                    .split_once("://")
                    .map(|(_, r)| r.find('/').map_or("/", |i| &r[i..]))
                    .unwrap_or(url);
                Some((method.to_string(), path.to_string()))
            })
            .collect()
    }

    /// The debug log once it stops growing (Azurite writes it asynchronously).
    fn settled_debug_log(&self) -> String {
        let read = || {
            self.debug_log
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default()
        };
        let mut text = read();
        for _ in 0..50 {
            std::thread::sleep(Duration::from_millis(100));
            let again = read();
            if again.len() == text.len() {
                break;
            }
            text = again;
        }
        text
    }

    /// How many requests each authenticator accepted so far, from Azurite's
    /// debug log (`BlobTokenAuthenticator … Validation against token authentication
    /// successfully`, `BlobSharedKeyAuthenticator … Signature 1|2 matched`, `Account SAS
    /// validation successfully` / `Blob service SAS validation successfully`).
    pub fn auth_log(&self) -> AuthLog {
        let text = self.settled_debug_log();
        let mut log = AuthLog::default();
        for line in text.lines() {
            if line.contains(
                "BlobTokenAuthenticator:authenticateBasic() Validation against token authentication successfully",
            ) {
                log.bearer += 1;
            } else if line.contains("BlobSharedKeyAuthenticator")
                && (line.contains("Signature 1 matched") || line.contains("Signature 2 matched"))
            {
                log.shared_key += 1;
            } else if line.contains("Account SAS validation successfully")
                || line.contains("Blob service SAS validation successfully")
            {
                log.sas += 1;
            }
        }
        log
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
