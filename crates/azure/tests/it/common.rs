//! Shared helpers: fake credentials, fast retry policy, plain and TLS servers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use clara_azure::{ArmClient, ArmOptions, RefreshingCredential, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

/// Returns `gen{N}` where N counts rebuilds, like azure_identity's sticky caches.
#[derive(Debug)]
pub struct GenerationCredential {
    pub generation: usize,
}

#[async_trait::async_trait]
impl TokenCredential for GenerationCredential {
    async fn get_token(
        &self,
        _: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            format!("gen{}", self.generation),
            OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// A credential whose token is `gen0` until a forced refresh makes it `gen1`, ...
pub fn generation_credential() -> Arc<dyn TokenCredential> {
    let builds = Arc::new(AtomicUsize::new(0));
    RefreshingCredential::new("test", move || {
        let generation = builds.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(GenerationCredential { generation }) as Arc<dyn TokenCredential>)
    })
    .unwrap()
}

pub fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_retry_after: Duration::from_secs(5),
        poll_default: Duration::from_millis(10),
        poll_min: Duration::from_millis(10),
        poll_max: Duration::from_millis(200),
    }
}

pub fn arm_client(base: &str) -> ArmClient {
    arm_client_with(base, generation_credential(), reqwest::Client::new())
}

pub fn arm_client_with(
    base: &str,
    credential: Arc<dyn TokenCredential>,
    http: reqwest::Client,
) -> ArmClient {
    let mut options = ArmOptions::new(Url::parse(base).unwrap(), "2025-12-01", credential, http);
    options.retry = fast_policy();
    ArmClient::new(options)
}

/// Serves `router` over plain HTTP on 127.0.0.1; returns the base URL.
pub async fn serve(router: Router) -> String {
    serve_with(|_| router).await
}

/// Like `serve`, for routers that need their own base URL (absolute LRO links).
pub async fn serve_with(make: impl FnOnce(&str) -> Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = make(&base);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    base
}

pub type Scripted = (
    axum::http::StatusCode,
    Vec<(&'static str, String)>,
    Option<serde_json::Value>,
);

/// A handler answering its n-th call with `responses[n]` (the last one repeats),
/// and counting calls.
pub fn sequence(responses: Vec<Scripted>) -> (axum::routing::MethodRouter, Arc<AtomicUsize>) {
    sequence_on(axum::routing::MethodFilter::GET.or(WRITES), responses)
}

pub const WRITES: axum::routing::MethodFilter = axum::routing::MethodFilter::PUT
    .or(axum::routing::MethodFilter::PATCH)
    .or(axum::routing::MethodFilter::DELETE)
    .or(axum::routing::MethodFilter::POST);

/// `sequence` restricted to some methods, so GET and writes can differ on one path.
pub fn sequence_on(
    filter: axum::routing::MethodFilter,
    responses: Vec<Scripted>,
) -> (axum::routing::MethodRouter, Arc<AtomicUsize>) {
    use axum::response::IntoResponse;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let responses = Arc::new(responses);
    let handler = move || {
        let n = c.fetch_add(1, Ordering::SeqCst);
        let (status, headers, body) = responses[n.min(responses.len() - 1)].clone();
        async move {
            let mut h = axum::http::HeaderMap::new();
            for (k, v) in headers {
                h.insert(k, v.parse().unwrap());
            }
            match body {
                Some(b) => (status, h, axum::Json(b)).into_response(),
                None => (status, h).into_response(),
            }
        }
    };
    (axum::routing::on(filter, handler), calls)
}

/// A test CA and a server certificate for 127.0.0.1/localhost signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
    _dir: tempfile::TempDir,
    pub ca_path: PathBuf,
}

pub fn test_pki() -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "clara-azure test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut server_params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    server_params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_cert = server_params.signed_by(&server_key, &ca).unwrap();

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![server_cert.der().clone()],
            rustls_pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        )
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        server_config: Arc::new(server_config),
        _dir: dir,
        ca_path,
    }
}

struct TlsListener {
    tcp: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that rejects our certificate just fails its handshake.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// Serves `router` over HTTPS with the test PKI; returns `https://127.0.0.1:port`.
pub async fn serve_tls(router: Router, pki: &TestPki) -> String {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(pki.server_config.clone()),
    };
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("https://{addr}")
}

/// Reads one HTTP/1.1 request (headers + Content-Length body); returns its head.
pub async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_string();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return head;
        }
    }
    String::from_utf8_lossy(&buf).to_string()
}

pub async fn write_json(stream: &mut TcpStream, status: &str, body: &str) {
    let resp = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(resp.as_bytes()).await.unwrap();
    stream.shutdown().await.ok();
}
