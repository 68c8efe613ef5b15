//! Listener, TLS, router assembly and the connection loop.
//!
//! Connections are served by hyper-util's auto builder (HTTP/1.1 and h2; h2 via ALPN on TLS).
//! A response carrying the `DropConnection` marker is turned into a service error, so hyper
//! closes the connection without writing any response (HTTP/1.1: the socket is closed; h2:
//! the stream is reset) — the client sees a transport error, as with a real dropped request.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::Uri;
use axum::middleware::from_fn_with_state;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::app::{AppState, Inner, RateLimits};
use crate::config::Config;
use crate::faults::FaultEngine;
use crate::log::RequestLog;
use crate::pipeline::DropConnection;
use crate::store::Store;
use crate::tls::BoxError;
use crate::util::write_atomic;
use crate::{admin, arm, auth, headers, log, tls};

pub const ENDPOINT_FILE: &str = "endpoint";

pub struct Options {
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    pub config: Config,
    pub plain_http: bool,
}

impl Options {
    pub fn new(state_dir: impl Into<PathBuf>) -> Self {
        Options {
            state_dir: state_dir.into(),
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            config: Config::default(),
            plain_http: false,
        }
    }
}

/// A started emulator. Dropping it leaves the server running until the runtime ends; call
/// `shutdown` to stop it.
pub struct Running {
    pub base_url: String,
    /// Base URL of the NGC object store (second listener; also in `DIR/ngc_xfiles_endpoint`).
    pub xfiles_url: String,
    pub state_dir: PathBuf,
    pub local_addr: SocketAddr,
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Running {
    /// Path of the CA certificate clients must trust (HTTPS mode).
    pub fn ca_pem(&self) -> PathBuf {
        self.state_dir.join(tls::CA_FILE)
    }

    /// Stops accepting, closes open connections and waits for the loop to end.
    pub async fn shutdown(&self) {
        let tx = self
            .shutdown
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(tx) = tx {
            let _ = tx.send(());
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// Binds, prepares the state dir (certificates, state, log), writes `DIR/endpoint` and
/// starts serving in the background.
pub async fn start(opts: Options) -> Result<Running, BoxError> {
    opts.config.validate()?;
    std::fs::create_dir_all(&opts.state_dir)?;
    let listener = TcpListener::bind(opts.listen).await?;
    let local_addr = listener.local_addr()?;
    let scheme = if opts.plain_http { "http" } else { "https" };
    let base_url = format!(
        "{scheme}://{}",
        SocketAddr::new(advertised_ip(local_addr.ip()), local_addr.port())
    );
    let tls = if opts.plain_http {
        None
    } else {
        Some(TlsAcceptor::from(tls::server_config(&opts.state_dir)?))
    };
    // The NGC object store ("xfiles") is a second listener: a different origin than the API.
    let xfiles_listener = TcpListener::bind(
        opts.config
            .ngc
            .xfiles_listen
            .unwrap_or(SocketAddr::new(local_addr.ip(), 0)),
    )
    .await?;
    let xfiles_addr = xfiles_listener.local_addr()?;
    let xfiles_host = match &opts.config.ngc.xfiles_host {
        Some(h) => h.clone(),
        None => match advertised_ip(xfiles_addr.ip()) {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        },
    };
    let xfiles_url = format!("{scheme}://{xfiles_host}:{}", xfiles_addr.port());

    let app = AppState::new(Inner {
        faults: std::sync::Mutex::new(FaultEngine::new(
            opts.config.faults.clone(),
            opts.config.seed,
        )?),
        store: Store::open(&opts.state_dir, arm::lro::advance)?,
        log: RequestLog::open(&opts.state_dir)?,
        entra: crate::auth::Entra::open(&opts.state_dir)?,
        ngc: crate::ngc::NgcState::new(&opts.config.ngc, &opts.state_dir, xfiles_url.clone())?,
        config: opts.config,
        base_url: base_url.clone(),
        state_dir: opts.state_dir.clone(),
        rate_limits: RateLimits::default(),
    });
    let router = router(&app);
    let xfiles_router = crate::ngc::xfiles::router(&app);
    write_atomic(
        &opts.state_dir.join(crate::ngc::XFILES_ENDPOINT_FILE),
        xfiles_url.as_bytes(),
    )?;
    write_atomic(&opts.state_dir.join(ENDPOINT_FILE), base_url.as_bytes())?;

    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let (xfiles_tx, xfiles_rx) = oneshot::channel();
        let xfiles = tokio::spawn(accept_loop(
            xfiles_listener,
            tls.clone(),
            xfiles_router,
            xfiles_rx,
        ));
        accept_loop(listener, tls, router, rx).await;
        let _ = xfiles_tx.send(());
        let _ = xfiles.await;
    });
    Ok(Running {
        base_url,
        xfiles_url,
        state_dir: opts.state_dir,
        local_addr,
        shutdown: Mutex::new(Some(tx)),
        task: Mutex::new(Some(task)),
    })
}

fn advertised_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        other => other,
    }
}

/// The whole application: token endpoint, ARM routes, admin API, fallbacks, and the
/// outer layers (common headers, request log).
pub fn router(app: &AppState) -> Router {
    Router::new()
        .merge(auth::routes(app))
        .merge(arm::routes(app))
        .merge(crate::ngc::routes())
        .merge(admin::routes())
        .merge(admin::raw_routes())
        .merge(crate::metadata::routes(app))
        .fallback(arm::fallback)
        .method_not_allowed_fallback(arm::method_not_allowed)
        .layer(from_fn_with_state(app.clone(), admin::raw_middleware))
        .layer(from_fn_with_state(app.clone(), log::middleware))
        .layer(from_fn_with_state(app.clone(), headers::middleware))
        .with_state(app.clone())
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: oneshot::Receiver<()>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (router, tls) = (router.clone(), tls.clone());
                conns.spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_connection(stream, router).await;
                            }
                        }
                        None => serve_connection(stream, router).await,
                    }
                });
                while conns.try_join_next().is_some() {}
            }
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

#[derive(Debug)]
struct DroppedByFaultInjection;

impl std::fmt::Display for DroppedByFaultInjection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for DroppedByFaultInjection {}

async fn serve_connection<I>(io: I, router: Router)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let router = router.clone();
        async move {
            let req = canonicalize(req.map(Body::new));
            let resp = match router.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            if resp.extensions().get::<DropConnection>().is_some() {
                Err(DroppedByFaultInjection)
            } else {
                Ok(resp)
            }
        }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Rewrites case-variant ARM path segments to their canonical casing before routing.
fn canonicalize(mut req: Request) -> Request {
    let Some(path) = arm::canonicalize_path(req.uri().path()) else {
        return req;
    };
    let pq = match req.uri().query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = req.uri().clone().into_parts();
    if let Ok(pq) = pq.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
    req
}

/// Reads `DIR/endpoint` written by a running emulator.
pub fn read_endpoint(state_dir: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(state_dir.join(ENDPOINT_FILE)).map(|s| s.trim().to_string())
}
