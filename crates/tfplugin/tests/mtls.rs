//! In-process server with go-plugin-style auto-mTLS: only the pinned client cert gets in.

mod common;

use std::time::Duration;

use clara_tfplugin::pb::plugin::Empty;
use clara_tfplugin::pb::plugin::grpc_controller_client::GrpcControllerClient;
use clara_tfplugin::pb::plugin::grpc_stdio_client::GrpcStdioClient;
use clara_tfplugin::pb::tfplugin5::provider_client::ProviderClient;
use clara_tfplugin::pb::tfplugin5::{
    DynamicValue, get_provider_schema, prepare_provider_config, stop,
};
use clara_tfplugin::{PinnedClientCert, TlsSetup, serve_on};
use common::*;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Running {
    addr: std::net::SocketAddr,
    server_cert: Vec<u8>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), clara_tfplugin::server::ServeError>>,
}

async fn start(client: &ClientCert) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = TlsSetup::generate(PinnedClientCert::from_pem(&client.pem).unwrap()).unwrap();
    let server_cert = tls.server_cert_der().to_vec();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_on(
        listener,
        Some(tls),
        TestProvider,
        shutdown.clone(),
    ));
    Running {
        addr,
        server_cert,
        shutdown,
        task,
    }
}

/// Connects and makes one Provider call; Err if TLS or the call fails.
async fn try_call(r: &Running, client: Option<&ClientCert>) -> Result<(), String> {
    let fut = async {
        let ch = tls_channel(r.addr, client_tls(&r.server_cert, client))
            .await
            .map_err(|e| e.to_string())?;
        ProviderClient::new(ch)
            .stop(stop::Request {})
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .map_err(|_| "timed out".to_string())?
}

#[tokio::test]
async fn pinned_client_cert_is_accepted_and_shutdown_stops_server() {
    let client = go_plugin_client_cert();
    let r = start(&client).await;

    let ch = tls_channel(r.addr, client_tls(&r.server_cert, Some(&client)))
        .await
        .unwrap();
    let mut provider = ProviderClient::new(ch.clone()).max_encoding_message_size(64 << 20);
    let resp = provider.stop(stop::Request {}).await.unwrap().into_inner();
    assert_eq!(resp.error, "");

    // Unimplemented RPCs come back as Unimplemented, not a transport error.
    let err = provider
        .get_schema(get_provider_schema::Request {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);

    // A 5 MiB request passes tonic's 4 MiB default: the 256 MiB limit is in effect.
    let big = prepare_provider_config::Request {
        config: Some(DynamicValue {
            msgpack: vec![0xc0; 5 << 20],
            json: vec![],
        }),
    };
    let err = provider.prepare_provider_config(big).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err}");

    // StreamStdio may be called repeatedly; each stream stays open.
    let mut stdio = GrpcStdioClient::new(ch.clone());
    let _s1 = stdio.stream_stdio(()).await.unwrap();
    let _s2 = stdio.stream_stdio(()).await.unwrap();

    GrpcControllerClient::new(ch)
        .shutdown(Empty {})
        .await
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), r.task)
        .await
        .expect("server did not stop");
    res.unwrap().unwrap();
    assert!(r.shutdown.is_cancelled());
}

#[tokio::test]
async fn client_without_cert_is_rejected() {
    let client = go_plugin_client_cert();
    let r = start(&client).await;
    let err = try_call(&r, None).await.unwrap_err();
    assert!(err.contains("CertificateRequired"), "{err}");
    // The failed handshake did not take the server down.
    try_call(&r, Some(&client)).await.unwrap();
    r.shutdown.cancel();
}

#[tokio::test]
async fn client_with_other_cert_is_rejected() {
    let client = go_plugin_client_cert();
    let stranger = go_plugin_client_cert();
    let r = start(&client).await;
    let err = try_call(&r, Some(&stranger)).await.unwrap_err();
    assert!(err.contains("AccessDenied"), "{err}");
    try_call(&r, Some(&client)).await.unwrap();
    r.shutdown.cancel();
}

#[tokio::test]
async fn plaintext_when_no_tls() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(serve_on(listener, None, TestProvider, shutdown.clone()));
    let ch = plain_channel(addr).await.unwrap();
    ProviderClient::new(ch.clone())
        .stop(stop::Request {})
        .await
        .unwrap();
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
