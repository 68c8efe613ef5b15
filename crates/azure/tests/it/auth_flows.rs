//! Sign-in flows against fake Entra ID / IMDS endpoints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use azure_core::credentials::TokenCredential;
use clara_azure::{AuthSettings, HttpClientOptions, Secret, build_http_client, credential};
use serde_json::json;
use url::Url;

use crate::common::{TestPki, arm_client_with, serve, serve_tls, test_pki};

const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
const SCOPE: &str = "https://management.azure.com/.default";

type Seen = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

/// Fake Entra ID token endpoint (`tok-1`, `tok-2`, ... per request) plus an ARM
/// resource that rejects `tok-1`.
async fn fake_entra(pki: &TestPki) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let s = seen.clone();
    let router = Router::new()
        .route(
            "/{tenant}/oauth2/v2.0/token",
            post(move |Path(tenant): Path<String>, headers: HeaderMap, Form(form): Form<HashMap<String, String>>| {
                let mut seen = s.lock().unwrap();
                assert_eq!(headers.get("content-type").unwrap(), "application/x-www-form-urlencoded");
                seen.push((tenant, form));
                let token = format!("tok-{}", seen.len());
                async move {
                    axum::Json(json!({"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token}))
                }
            }),
        )
        .route(
            "/subscriptions/s",
            get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer tok-1") => (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": "InvalidAuthenticationToken", "message": "revoked"}}))),
                    Some(_) => (StatusCode::OK, axum::Json(json!({"subscriptionId": "s"}))),
                    None => (StatusCode::UNAUTHORIZED, axum::Json(json!({}))),
                }
            }),
        );
    (serve_tls(router, pki).await, seen)
}

fn trusting_client(pki: &TestPki) -> reqwest::Client {
    build_http_client(&HttpClientOptions {
        extra_roots_pem: Some(pki.ca_path.clone()),
        ..Default::default()
    })
    .unwrap()
}

fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn client_secret_uses_custom_authority_and_refreshes_after_401() {
    let pki = test_pki();
    let (base, seen) = fake_entra(&pki).await;
    let http = trusting_client(&pki);
    let settings = AuthSettings {
        tenant_id: Some(TENANT.into()),
        client_id: Some("app-id".into()),
        client_secret: Some(Secret::new("s3cret value&=")),
        authority_host: Some(Url::parse(&base).unwrap()),
        ..AuthSettings::default()
    };
    let cred = credential(&settings, &http).await.unwrap();
    let token = cred.get_token(&[SCOPE], None).await.unwrap();
    assert_eq!(token.token.secret(), "tok-1");
    // Cached: no second request.
    cred.get_token(&[SCOPE], None).await.unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].0, TENANT);
        assert_eq!(
            seen[0].1,
            form(&[
                ("grant_type", "client_credentials"),
                ("client_id", "app-id"),
                ("client_secret", "s3cret value&="),
                ("scope", SCOPE),
            ])
        );
    }

    // ARM rejects tok-1: the client signs in again once and retries with tok-2.
    let arm = arm_client_with(&base, cred, http);
    assert_eq!(
        arm.get_json("/subscriptions/s").await.unwrap(),
        Some(json!({"subscriptionId": "s"}))
    );
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn oidc_token_and_token_file_send_client_assertion() {
    let pki = test_pki();
    let (base, seen) = fake_entra(&pki).await;
    let http = trusting_client(&pki);
    let expected = |jwt: &str| {
        form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "app-id"),
            ("client_assertion", jwt),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("scope", SCOPE),
        ])
    };
    let settings = AuthSettings {
        tenant_id: Some(TENANT.into()),
        client_id: Some("app-id".into()),
        use_oidc: true,
        oidc_token: Some(Secret::new("header.payload.sig")),
        authority_host: Some(Url::parse(&base).unwrap()),
        ..AuthSettings::default()
    };
    let cred: Arc<dyn TokenCredential> = credential(&settings, &http).await.unwrap();
    assert_eq!(
        cred.get_token(&[SCOPE], None).await.unwrap().token.secret(),
        "tok-1"
    );
    assert_eq!(seen.lock().unwrap()[0].1, expected("header.payload.sig"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("oidc-token");
    std::fs::write(&file, "file.jwt.sig").unwrap();
    let settings = AuthSettings {
        oidc_token: None,
        oidc_token_file_path: Some(file.display().to_string()),
        ..settings
    };
    let cred = credential(&settings, &http).await.unwrap();
    assert_eq!(
        cred.get_token(&[SCOPE], None).await.unwrap().token.secret(),
        "tok-2"
    );
    assert_eq!(seen.lock().unwrap()[1].1, expected("file.jwt.sig"));

    let missing = AuthSettings {
        oidc_token_file_path: Some("/nonexistent/token".into()),
        ..settings
    };
    let err = credential(&missing, &http).await.unwrap_err();
    assert!(err.to_string().contains("oidc_token_file_path"), "{err}");
}

#[tokio::test]
async fn managed_identity_with_custom_endpoint() {
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    let router = Router::new().route(
        "/metadata/identity/oauth2/token",
        get(move |Query(q): Query<HashMap<String, String>>, headers: HeaderMap| {
            *s.lock().unwrap() = Some((q, headers.get("metadata").map(|v| v.to_str().unwrap().to_owned())));
            let expires_on = (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 3600).to_string();
            async move { axum::Json(json!({"access_token": "msi-token", "expires_on": expires_on, "token_type": "Bearer"})) }
        }),
    );
    let base = serve(router).await;
    let settings = AuthSettings {
        use_msi: true,
        client_id: Some("uami-client".into()),
        msi_endpoint: Some(format!("{base}/metadata/identity/oauth2/token")),
        ..AuthSettings::default()
    };
    let cred = credential(&settings, &reqwest::Client::new())
        .await
        .unwrap();
    assert_eq!(
        cred.get_token(&[SCOPE], None).await.unwrap().token.secret(),
        "msi-token"
    );
    let (q, metadata) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(metadata.as_deref(), Some("true"));
    assert_eq!(
        q.get("resource").map(String::as_str),
        Some("https://management.azure.com")
    );
    assert_eq!(q.get("client_id").map(String::as_str), Some("uami-client"));
    assert_eq!(q.get("api-version").map(String::as_str), Some("2018-02-01"));
}

#[tokio::test]
async fn token_endpoint_errors_are_reported_without_secrets() {
    let pki = test_pki();
    let router = Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        post(|| async {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 0000aaaa-0000-0000-0000-000000000000\r\nCorrelation ID: 0000bbbb-0000-0000-0000-000000000000\r\nTimestamp: 2025-06-01 12:00:00Z", "error_codes": [7000215], "timestamp": "2025-06-01 12:00:00Z", "trace_id": "0000aaaa-0000-0000-0000-000000000000", "correlation_id": "0000bbbb-0000-0000-0000-000000000000", "error_uri": "https://login.microsoftonline.com/error?code=7000215"})),
            )
        }),
    );
    let base = serve_tls(router, &pki).await;
    let settings = AuthSettings {
        tenant_id: Some(TENANT.into()),
        client_id: Some("app-id".into()),
        client_secret: Some(Secret::new("wrong-secret")),
        authority_host: Some(Url::parse(&base).unwrap()),
        ..AuthSettings::default()
    };
    let http = trusting_client(&pki);
    let cred = credential(&settings, &http).await.unwrap();
    let arm = arm_client_with(&base, cred, http);
    let err = arm.get_json("/subscriptions/s").await.unwrap_err();
    assert_eq!(err.code, "AuthenticationFailed");
    assert_eq!(
        err.message,
        "Azure sign-in with client secret failed: AADSTS7000215: Invalid client secret provided. \
         Ensure the secret being sent in the request is the client secret value. \
         (invalid_client, HTTP 401, Trace ID: 0000aaaa-0000-0000-0000-000000000000)",
        "the method, the AADSTS code and Entra's message, and no parser error around them"
    );
    assert!(!err.to_string().contains("wrong-secret"));
}

/// Why the client-secret and OIDC flows are hand-written (`auth/client_credentials.rs`) while
/// managed identity and the Azure CLI stay on `azure_identity`: given the same real Entra
/// error body, `azure_identity` 1.0's `ClientSecretCredential` (like its
/// `ClientAssertionCredential`, both through `handle_entra_response`) deserializes
/// `error_description` into a borrowed `&str`, which cannot hold the `\r\n` escapes Entra
/// puts before the Trace ID; the user gets a serde error instead of the HTTP status and
/// AADSTS code. If this test starts failing, `azure_identity` has fixed it and the
/// hand-written flow can go.
#[tokio::test]
async fn azure_identity_turns_a_real_entra_error_into_a_serde_error() {
    use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
    use azure_core::http::{ClientOptions, Transport};
    use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
    let pki = test_pki();
    let router = Router::new().route(
        "/{tenant}/oauth2/v2.0/token",
        post(|| async {
            (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value.\r\nTrace ID: 0000aaaa-0000-0000-0000-000000000000\r\nCorrelation ID: 0000bbbb-0000-0000-0000-000000000000\r\nTimestamp: 2025-06-01 12:00:00Z", "error_codes": [7000215]})),
            )
        }),
    );
    let base = serve_tls(router, &pki).await;
    let http = trusting_client(&pki);
    let mut custom = CustomConfiguration::default();
    custom.authority_host = base.clone();
    let options = ClientSecretCredentialOptions {
        client_options: ClientOptions {
            transport: Some(Transport::new(Arc::new(http.clone()))),
            cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
            ..ClientOptions::default()
        },
    };
    let theirs = ClientSecretCredential::new(
        TENANT,
        "app-id".into(),
        "wrong-secret".to_string().into(),
        Some(options),
    )
    .unwrap();
    let err = theirs.get_token(&[SCOPE], None).await.unwrap_err();
    let text = err.to_string();
    println!("azure_identity ClientSecretCredential: {text}");
    assert!(
        !matches!(
            err.kind(),
            azure_core::error::ErrorKind::HttpResponse { .. }
        ),
        "azure_identity now keeps the HTTP status: {:?}",
        err.kind()
    );
    assert!(text.contains("borrowed string"), "{text}");

    let settings = AuthSettings {
        tenant_id: Some(TENANT.into()),
        client_id: Some("app-id".into()),
        client_secret: Some(Secret::new("wrong-secret")),
        authority_host: Some(Url::parse(&base).unwrap()),
        ..AuthSettings::default()
    };
    let ours = credential(&settings, &http).await.unwrap();
    let text = ours
        .get_token(&[SCOPE], None)
        .await
        .unwrap_err()
        .to_string();
    println!("clara_azure client secret: {text}");
    assert!(
        text.starts_with(
            "Azure sign-in with client secret failed: AADSTS7000215: Invalid client secret provided."
        ) && text.contains("(invalid_client, HTTP 401"),
        "{text}"
    );
}
