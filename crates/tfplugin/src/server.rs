//! The gRPC server: our own accept loop (so TLS is ours, see `tls.rs`) feeding tonic.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::pb::plugin::grpc_stdio_server::GrpcStdioServer;
use crate::pb::plugin::{
    grpc_broker_server::GrpcBrokerServer, grpc_controller_server::GrpcControllerServer,
};
use crate::pb::tfplugin5::provider_server::{Provider, ProviderServer};
use crate::plugin_services::{Broker, Controller, Stdio};
use crate::tls::{TlsError, TlsSetup};

/// Same limit as terraform-plugin-go; tonic's default of 4 MiB is too small for big schemas/states.
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;
/// A client that connects but never finishes TLS must not pin a task forever.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After shutdown is requested, how long in-flight calls may take before we return anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("gRPC transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// Serves the provider and go-plugin's services on `listener` until `shutdown` is
/// cancelled (by the caller or by `GRPCController/Shutdown`).
///
/// With `tls`, every connection must complete mTLS with the pinned client certificate;
/// failed handshakes are logged and dropped. Without it, connections are plaintext.
pub async fn serve_on<P: Provider>(
    listener: TcpListener,
    tls: Option<TlsSetup>,
    provider: P,
    shutdown: CancellationToken,
) -> Result<(), ServeError> {
    let acceptor = tls
        .as_ref()
        .map(TlsSetup::server_config)
        .transpose()?
        .map(TlsAcceptor::from);
    let (tx, rx) = mpsc::channel::<io::Result<Conn>>(16);
    let accept_task = tokio::spawn(accept_loop(listener, acceptor, tx, shutdown.clone()));

    let router = Server::builder()
        .add_service(
            ProviderServer::new(provider)
                .max_decoding_message_size(MAX_MESSAGE_SIZE)
                .max_encoding_message_size(MAX_MESSAGE_SIZE),
        )
        .add_service(GrpcControllerServer::new(Controller {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcStdioServer::new(Stdio {
            shutdown: shutdown.clone(),
        }))
        .add_service(GrpcBrokerServer::new(Broker {
            shutdown: shutdown.clone(),
        }));
    let serve = router
        .serve_with_incoming_shutdown(ReceiverStream::new(rx), shutdown.clone().cancelled_owned());
    let grace = async {
        shutdown.cancelled().await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };

    let result = tokio::select! {
        r = serve => r.map_err(ServeError::from),
        () = grace => {
            tracing::warn!("connections still open {SHUTDOWN_GRACE:?} after shutdown; exiting anyway");
            Ok(())
        }
    };
    accept_task.abort();
    tracing::debug!("server stopped");
    result
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    tx: mpsc::Sender<io::Result<Conn>>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // e.g. EMFILE: back off instead of spinning; the listener stays usable.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Some(acceptor) = acceptor.clone() else {
            if tx.send(Ok(Conn::Plain(tcp))).await.is_err() {
                return;
            }
            continue;
        };
        let tx = tx.clone();
        // Handshake off the accept loop so one slow or hostile client cannot block others.
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    tracing::debug!(%peer, "mTLS connection accepted");
                    let _ = tx.send(Ok(Conn::Tls(Box::new(stream)))).await;
                }
                Ok(Err(e)) => {
                    tracing::warn!(%peer, "TLS handshake failed, dropping connection: {e}")
                }
                Err(_) => tracing::warn!(%peer, "TLS handshake timed out, dropping connection"),
            }
        });
    }
}

/// A served connection, plaintext or TLS, as one type for tonic.
pub enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;
    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Conn::Plain(s) => s.connect_info(),
            Conn::Tls(s) => s.get_ref().0.connect_info(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(s) => s.is_write_vectored(),
            Conn::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
