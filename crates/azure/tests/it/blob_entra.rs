//! Blob Storage with Microsoft Entra ID bearer tokens: against Azurite in OAuth mode
//! (`--oauth basic`, https), and against in-process servers for the refusals Azurite does
//! not produce (403 AuthorizationPermissionMismatch, 401 on an expired token).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::{Duration, OffsetDateTime};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use clara_azure::blob::{BlobClient, BlobCredential, BlobOptions, STORAGE_SCOPE};
use url::Url;

use crate::common::{TestPki, serve_tls, test_pki};

/// A token shaped like Entra's v1.0 storage tokens (Azurite's basic OAuth level checks
/// `aud`, `iss`, `nbf`, `exp`, `iat`, not the signature). Records the scopes asked for.
#[derive(Debug, Default)]
struct StorageTokens {
    scopes: Mutex<Vec<String>>,
    issued: AtomicUsize,
}

fn jwt(aud: &str, n: usize) -> String {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let header = B64URL.encode(r#"{"typ":"JWT","alg":"RS256"}"#);
    let claims = B64URL.encode(
        serde_json::json!({
            "aud": aud, "iss": "https://sts.windows.net/00000000-0000-0000-0000-0000000000aa/",
            "iat": now, "nbf": now, "exp": now + 3600, "appid": "app", "oid": "oid",
            "tid": "00000000-0000-0000-0000-0000000000aa", "ver": "1.0", "uti": n.to_string(),
        })
        .to_string(),
    );
    format!("{header}.{claims}.c2ln")
}

#[async_trait::async_trait]
impl TokenCredential for StorageTokens {
    async fn get_token(
        &self,
        scopes: &[&str],
        _: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.scopes.lock().unwrap().push(scopes.join(" "));
        let n = self.issued.fetch_add(1, Ordering::SeqCst);
        Ok(AccessToken::new(
            jwt("https://storage.azure.com", n),
            OffsetDateTime::now_utc() + Duration::hours(1),
        ))
    }
}

fn trusting(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn bearer_tokens_against_azurite_in_oauth_mode_send_no_key() {
    let azurite = clara_testkit::Azurite::start_oauth();
    let ca = std::fs::read(azurite.ca_file().unwrap()).unwrap();
    let tokens = Arc::new(StorageTokens::default());
    let client = BlobClient::new(
        Url::parse(&azurite.account_url()).unwrap(),
        BlobCredential::Bearer(tokens.clone()),
        trusting(&ca),
        BlobOptions::default(),
    )
    .unwrap();
    assert!(client.uses_entra_id());
    client.ensure_container("data").await.unwrap();
    let meta = BTreeMap::from([("source".to_string(), "test".to_string())]);
    client
        .put_bytes("data", "dir/a.txt", b"hello".to_vec(), "text/plain", &meta)
        .await
        .unwrap();
    assert_eq!(
        client
            .get_bytes("data", "dir/a.txt")
            .await
            .unwrap()
            .unwrap(),
        b"hello"
    );
    let listed = client.list("data", "dir/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(client.delete("data", "dir/a.txt").await.unwrap());

    let log = azurite.auth_log();
    assert!(log.bearer >= 5, "{log:?}");
    assert_eq!((log.shared_key, log.sas), (0, 0), "{log:?}");
    let scopes = tokens.scopes.lock().unwrap().clone();
    assert!(
        !scopes.is_empty() && scopes.iter().all(|s| s == STORAGE_SCOPE),
        "{scopes:?}"
    );

    // A token for another audience is refused by the service.
    #[derive(Debug)]
    struct ArmTokens;
    #[async_trait::async_trait]
    impl TokenCredential for ArmTokens {
        async fn get_token(
            &self,
            _: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            Ok(AccessToken::new(
                jwt("https://management.azure.com", 0),
                OffsetDateTime::now_utc() + Duration::hours(1),
            ))
        }
    }
    let wrong = BlobClient::new(
        Url::parse(&azurite.account_url()).unwrap(),
        BlobCredential::Bearer(Arc::new(ArmTokens)),
        trusting(&ca),
        BlobOptions::default(),
    )
    .unwrap();
    let err = wrong.list("data", "").await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    assert!(err.message.contains("Invalid token audience"), "{err}");
}

#[test]
fn bearer_tokens_are_refused_over_http() {
    let err = BlobClient::new(
        Url::parse("http://127.0.0.1:10000/devstoreaccount1").unwrap(),
        BlobCredential::Bearer(Arc::new(StorageTokens::default())),
        reqwest::Client::new(),
        BlobOptions::default(),
    )
    .unwrap_err();
    assert!(err.message.contains("only over https"), "{err}");
}

async fn storage_double(
    pki: &TestPki,
    status: u16,
    code: &'static str,
) -> (String, Arc<Mutex<Vec<String>>>) {
    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    let router = Router::new().fallback(move |headers: HeaderMap| {
        let seen = s2.clone();
        async move {
            let auth = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let first = {
                let mut s = seen.lock().unwrap();
                s.push(auth);
                s.len() == 1
            };
            let status = if status == 401 && !first { 200 } else { status };
            if status == 200 {
                return (
                    StatusCode::OK,
                    [("x-ms-error-code", ""), ("content-type", "application/xml")],
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><EnumerationResults><Blobs/><NextMarker/></EnumerationResults>".to_string(),
                );
            }
            (
                StatusCode::from_u16(status).unwrap(),
                [("x-ms-error-code", code), ("content-type", "application/xml")],
                format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>This request is not authorized to perform this operation using this permission.\nRequestId:r-1\nTime:2025-06-01T12:00:00.0000000Z</Message></Error>"),
            )
        }
    });
    (serve_tls(router, pki).await, seen)
}

#[tokio::test]
async fn permission_mismatch_is_recognised_and_an_expired_token_is_refreshed_once() {
    let pki = test_pki();
    let http = clara_azure::build_http_client(&clara_azure::HttpClientOptions {
        extra_roots_pem: Some(pki.ca_path.clone()),
        ..Default::default()
    })
    .unwrap();
    let (base, seen) = storage_double(&pki, 403, "AuthorizationPermissionMismatch").await;
    let tokens = Arc::new(StorageTokens::default());
    let client = BlobClient::new(
        Url::parse(&format!("{base}/acct")).unwrap(),
        BlobCredential::Bearer(tokens.clone()),
        http.clone(),
        BlobOptions::default(),
    )
    .unwrap();
    let err = client.list("data", "").await.unwrap_err();
    assert!(err.is_permission_mismatch(), "{err:?}");
    assert_eq!(seen.lock().unwrap().len(), 1, "a 403 is not retried");
    assert!(seen.lock().unwrap()[0].starts_with("Bearer "));
    assert!(
        !err.to_string()
            .contains(&jwt("https://storage.azure.com", 0))
    );

    let (base, seen) = storage_double(&pki, 401, "InvalidAuthenticationInfo").await;
    let tokens = Arc::new(StorageTokens::default());
    let client = BlobClient::new(
        Url::parse(&format!("{base}/acct")).unwrap(),
        BlobCredential::Bearer(tokens.clone()),
        http,
        BlobOptions::default(),
    )
    .unwrap();
    client.list("data", "").await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        tokens.issued.load(Ordering::SeqCst),
        2,
        "one new token after the 401"
    );
}

#[tokio::test]
async fn access_probe_reads_403_as_no_data_role_and_404_or_412_as_allowed() {
    let pki = test_pki();
    let http = clara_azure::build_http_client(&clara_azure::HttpClientOptions {
        extra_roots_pem: Some(pki.ca_path.clone()),
        ..Default::default()
    })
    .unwrap();
    for (status, code, allowed) in [
        (403, "AuthorizationPermissionMismatch", false),
        (404, "ContainerNotFound", true),
        (404, "BlobNotFound", true),
        (412, "ConditionNotMet", true),
        (200, "", true),
    ] {
        for write in [false, true] {
            let (base, seen) = storage_double(&pki, status, code).await;
            let client = BlobClient::new(
                Url::parse(&format!("{base}/acct")).unwrap(),
                BlobCredential::Bearer(Arc::new(StorageTokens::default())),
                http.clone(),
                BlobOptions::default(),
            )
            .unwrap();
            let outcome = client.probe_access("data", write).await;
            assert_eq!(
                outcome.is_ok(),
                allowed,
                "{status} {code} write={write}: {outcome:?}"
            );
            if let Err(e) = outcome {
                assert!(e.is_permission_mismatch(), "{e:?}");
            }
            assert_eq!(seen.lock().unwrap().len(), 1, "one probe request");
        }
    }
}
