//! go-plugin's housekeeping services that Terraform's client calls on every process.

use futures::StreamExt as _;
use tokio_util::sync::CancellationToken;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

use crate::pb::plugin::{
    ConnInfo, Empty, StdioData, grpc_broker_server, grpc_controller_server, grpc_stdio_server,
};

/// `GRPCController/Shutdown`: without it every process exit costs Terraform a 2 s wait
/// and a SIGKILL. Cancelling the token makes the server drain and return.
pub struct Controller {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _req: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("GRPCController/Shutdown received");
        self.shutdown.cancel();
        Ok(Response::new(Empty {}))
    }
}

/// A stream that yields nothing and ends when the server shuts down, so graceful
/// shutdown is not held up by it.
fn idle_until<T: Send + 'static>(shutdown: CancellationToken) -> BoxStream<T> {
    Box::pin(futures::stream::once(shutdown.cancelled_owned()).filter_map(|()| async { None }))
}

/// `GRPCStdio/StreamStdio`: we never write to stdout/stderr through it (logs go to
/// stderr directly), so the stream just stays open. Reattached Terraform calls it once
/// per walk; every call gets its own idle stream.
pub struct Stdio {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl grpc_stdio_server::GrpcStdio for Stdio {
    async fn stream_stdio(
        &self,
        _req: Request<()>,
    ) -> Result<Response<BoxStream<StdioData>>, Status> {
        Ok(Response::new(idle_until(self.shutdown.clone())))
    }
}

/// `GRPCBroker/StartStream`: Terraform opens it but never brokers connections to
/// providers; accept, log what arrives, and idle.
pub struct Broker {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl grpc_broker_server::GrpcBroker for Broker {
    async fn start_stream(
        &self,
        req: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<BoxStream<ConnInfo>>, Status> {
        let mut incoming = req.into_inner();
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    msg = incoming.next() => match msg {
                        Some(Ok(info)) => tracing::debug!(?info, "ignoring broker ConnInfo"),
                        _ => break,
                    },
                }
            }
        });
        Ok(Response::new(idle_until(self.shutdown.clone())))
    }
}
