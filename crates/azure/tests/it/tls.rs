//! Extra trusted roots (the SSL_CERT_FILE mechanism) with a generated CA.

use axum::Router;
use axum::routing::get;
use clara_azure::{HttpClientOptions, build_http_client, load_pem_certificates};
use serde_json::json;

use crate::common::{arm_client_with, generation_credential, serve_tls, test_pki};

#[tokio::test]
async fn extra_ca_file_is_trusted() {
    let pki = test_pki();
    let router = Router::new().route("/ping", get(|| async { axum::Json(json!({"pong": true})) }));
    let base = serve_tls(router, &pki).await;

    let options = HttpClientOptions {
        extra_roots_pem: Some(pki.ca_path.clone()),
        ..HttpClientOptions::default()
    };
    let trusting = build_http_client(&options).unwrap();
    let body: serde_json::Value = trusting
        .get(format!("{base}/ping"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"pong": true}));

    // The ARM client over the same TLS connection setup.
    let arm = arm_client_with(&base, generation_credential(), trusting);
    assert_eq!(
        arm.get_json("/ping").await.unwrap(),
        Some(json!({"pong": true}))
    );

    // Without the CA the handshake fails, reported as a connection error.
    let plain = build_http_client(&HttpClientOptions::default()).unwrap();
    assert!(plain.get(format!("{base}/ping")).send().await.is_err());
    let arm = arm_client_with(&base, generation_credential(), plain);
    let err = arm.get_json("/ping").await.unwrap_err();
    assert_eq!(err.code, "ConnectionError");
    assert!(err.message.to_lowercase().contains("certificate"), "{err}");
}

#[test]
fn loads_every_certificate_in_a_bundle() {
    let a = test_pki();
    let b = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, format!("# comment\n{}\n{}", a.ca_pem, b.ca_pem)).unwrap();
    assert_eq!(load_pem_certificates(&bundle).unwrap().len(), 2);
}
