//! Logs at TRACE never carry tokens, secrets or secret-looking body fields.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{post, put};
use clara_azure::{AuthSettings, Secret, credential};
use serde_json::json;
use url::Url;

use crate::common::{arm_client_with, serve_tls, test_pki};

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn trace_logs_hold_no_secrets() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // #[tokio::test] runs on one thread, so this covers the server tasks too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let pki = test_pki();
    let router = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(|| async { axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "eyJ-access-token"})) }),
        )
        .route(
            "/c",
            put(|| async {
                (StatusCode::OK, axum::Json(json!({"properties": {"adminUserPassword": "echoed-pw", "name": "c"}})))
            }),
        );
    let base = serve_tls(router, &pki).await;
    let http = clara_azure::build_http_client(&clara_azure::HttpClientOptions {
        extra_roots_pem: Some(pki.ca_path.clone()),
        ..Default::default()
    })
    .unwrap();
    let settings = AuthSettings {
        tenant_id: Some("00000000-0000-0000-0000-0000000000aa".into()),
        client_id: Some("app-id".into()),
        client_secret: Some(Secret::new("client-s3cret")),
        authority_host: Some(Url::parse(&base).unwrap()),
        ..AuthSettings::default()
    };
    tracing::debug!(?settings, "settings");
    let cred = credential(&settings, &http).await.unwrap();
    let arm = arm_client_with(&base, cred, http);
    arm.put_json("/c", &json!({"properties": {"adminUserPassword": "hunter2", "sshKey": "ssh-rsa AAA", "name": "c"}}))
        .await
        .unwrap();

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("ARM request"),
        "expected request logs:\n{logs}"
    );
    assert!(
        logs.contains("<redacted>"),
        "expected redacted bodies:\n{logs}"
    );
    for secret in [
        "client-s3cret",
        "eyJ-access-token",
        "hunter2",
        "echoed-pw",
        "ssh-rsa",
    ] {
        assert!(!logs.contains(secret), "{secret} leaked into logs:\n{logs}");
    }
}
