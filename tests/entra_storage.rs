//! Blob storage through Microsoft Entra ID with the real Terraform: identity-based
//! datastores (no account key or SAS) on Azurite in OAuth mode over https, a principal
//! limited to Reader + Storage Blob Data Reader planning, and plan/refresh never calling
//! `datastores/listSecrets`.
//!
//! Azurite in OAuth mode still accepts Shared Key and SAS and checks no data role (see
//! `clara_testkit`). So the provider reaches it through [`RbacFront`], which refuses keys and
//! SAS (an account with shared-key access disabled) or the tokens of a principal without a data
//! role; "no key used" is also read from Azurite's auth log, and "no secret read" from the
//! emulator's request log.

mod support;

use reqwest::Method;
use serde_json::json;
use support::*;

const READER_ID: &str = "22222222-2222-2222-2222-222222222222";
const READER_SECRET: &str = "reader-secret-do-not-log";

/// A principal with Reader on the subscription and Storage Blob Data Reader.
fn with_reader(mut config: serde_json::Value) -> serde_json::Value {
    config["principals"] = json!([{
        "client_id": READER_ID,
        "client_secret": READER_SECRET,
        "roles": ["Reader", "Storage Blob Data Reader"],
    }]);
    config
}

fn list_secrets(ws: &Workspace) -> usize {
    ws.emulator.count_ops("datastore.listSecrets", false)
}

/// Token requests made with a client id.
fn token_requests(ws: &Workspace, client_id: &str) -> usize {
    ws.emulator
        .requests()
        .iter()
        .filter(|r| r["op"] == "token" && r["body"]["client_id"] == client_id)
        .count()
}

/// Terraform wraps diagnostics: compare on single-spaced text.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn auth_log(ws: &Workspace) -> clara_testkit::AuthLog {
    ws.azurite.as_ref().unwrap().auth_log()
}

fn sign_in_as_reader(ws: &mut Workspace) {
    ws.set_env("ARM_CLIENT_ID", READER_ID);
    ws.set_env("ARM_CLIENT_SECRET", READER_SECRET);
}

const MMAR: &str = r#"
resource "ngc_asset" "mmar" {
  provider       = clara
  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/covid"
}
"#;

#[test]
fn identity_based_walkthrough_applies_with_entra_tokens_and_a_reader_plans_without_secrets() {
    let mut config = with_reader(emulator_config());
    config["jobs"] = json!({"phase_ms": 100});
    config["storage"] = json!({"identity_based": true});
    let mut ws = Workspace::with_oauth_storage("covid19-ct-finetune", config);
    // The provider reaches storage through a front that refuses Shared Key and SAS.
    let front = RbacFront::start(ws.azurite.as_ref().unwrap(), &[], true);
    ws.set_env(
        "CLARA_STORAGE_BLOB_ENDPOINT",
        &format!("https://127.0.0.1:{}/{{account}}", front.port),
    );
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.emulator.admin(
        Method::PUT,
        "ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    );
    ws.ok(&["get", "-no-color"]);
    let ds = ws.emulator.arm_get(&format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}/datastores/workspaceblobstore"
    ));
    assert_eq!(
        ds["properties"]["credentials"]["credentialsType"], "None",
        "{ds}"
    );

    // The walkthrough applies, every blob written with an Entra ID token.
    let text = ws.apply(&[]);
    assert!(
        text.contains("Apply complete! Resources: 9 added"),
        "{text}"
    );
    let applied = auth_log(&ws);
    let uploaded = ws.blob_names("clara/");
    println!(
        "identity-based apply: {} blobs under clara/, Azurite accepted {} bearer / {} shared key / {} SAS requests, {} listSecrets calls",
        uploaded.len(),
        applied.bearer,
        applied.shared_key,
        applied.sas,
        list_secrets(&ws)
    );
    assert!(uploaded.len() > 10, "{uploaded:?}");
    assert!(applied.bearer > uploaded.len(), "{applied:?}");
    assert_eq!((applied.shared_key, applied.sas), (0, 0), "{applied:?}");
    assert_eq!(list_secrets(&ws), 0, "identity-based: no secrets to list");
    ws.assert_no_changes(&[]);

    // A principal with only Reader + Storage Blob Data Reader plans, blobs verified.
    sign_in_as_reader(&mut ws);
    let before = ws.emulator.requests().len();
    let before_blobs = auth_log(&ws).bearer;
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 0, "the reader's plan: exit {code}\n{text}");
    assert!(text.contains("No changes."), "{text}");
    assert!(!text.contains("not verified"), "{text}");
    let requests = ws.emulator.requests();
    let reader_part = &requests[before..];
    let refused = reader_part
        .iter()
        .filter(|r| r["status"] == 403 || r["status"] == 401)
        .count();
    let blob_reads = auth_log(&ws).bearer - before_blobs;
    println!(
        "reader plan: {} emulator requests ({} token requests by the reader, {} refused), {} blob reads with its token, {} listSecrets calls in the whole run",
        reader_part.len(),
        token_requests(&ws, READER_ID),
        refused,
        blob_reads,
        list_secrets(&ws)
    );
    assert!(token_requests(&ws, READER_ID) >= 1, "the reader signed in");
    assert_eq!(refused, 0, "nothing the reader may not do was asked");
    assert!(
        blob_reads >= 3,
        "each asset's blobs were read: {blob_reads}"
    );
    assert_eq!(list_secrets(&ws), 0);

    // Its tokens and secret stay out of the most verbose logs.
    let out = ws
        .command(&["plan", "-input=false", "-no-color"])
        .env("TF_LOG", "trace")
        .output()
        .unwrap();
    let logs = combined(&out);
    assert!(out.status.success(), "{logs}");
    assert!(
        logs.contains("blob access with Microsoft Entra ID"),
        "the provider's debug logs are there"
    );
    for secret in ["eyJ", READER_SECRET, CLIENT_SECRET] {
        assert!(!logs.contains(secret), "{secret} in TF_LOG=trace output");
    }

    // The reader's plan really looks at the blobs: one deleted behind Terraform's back plans
    // that asset's re-creation.
    let victim = ws
        .blob_names("clara/azuremlclarablogquicklaunch/")
        .into_iter()
        .find(|b| !b.ends_with(".clara-asset.json"))
        .expect("the quick-launch resource has files");
    ws.delete_blob(&victim);
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("will be created"), "{text}");
    assert_eq!(list_secrets(&ws), 0);

    // Back as the main principal: the asset is restored, then everything destroyed, with
    // Entra ID tokens throughout.
    ws.set_env("ARM_CLIENT_ID", CLIENT_ID);
    ws.set_env("ARM_CLIENT_SECRET", CLIENT_SECRET);
    ws.apply(&[]);
    assert!(
        ws.blob_names("clara/azuremlclarablogquicklaunch/")
            .contains(&victim)
    );
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    let left = ws.blob_names("clara/");
    assert!(left.is_empty(), "destroy leaves no blob: {left:?}");
    let end = auth_log(&ws);
    println!(
        "whole run: {} bearer / {} shared key / {} SAS requests, {} listSecrets",
        end.bearer,
        end.shared_key,
        end.sas,
        list_secrets(&ws)
    );
    assert_eq!((end.shared_key, end.sas), (0, 0), "{end:?}");
    assert_eq!(front.denied(), 0, "no request used a key or SAS");
    assert_eq!(list_secrets(&ws), 0);

    // The front does refuse the account key.
    let http = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(
                &std::fs::read(ws.azurite.as_ref().unwrap().ca_file().unwrap()).unwrap(),
            )
            .unwrap(),
        )
        .build()
        .unwrap();
    let keyed = clara_azure::blob::BlobClient::new(
        url::Url::parse(&format!(
            "https://127.0.0.1:{}/{}",
            front.port,
            clara_testkit::ACCOUNT
        ))
        .unwrap(),
        clara_azure::blob::BlobCredential::SharedKey {
            account: clara_testkit::ACCOUNT.into(),
            key: clara_azure::Secret::new(clara_testkit::KEY),
        },
        http,
        Default::default(),
    )
    .unwrap();
    let err = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(keyed.list("any", ""))
        .unwrap_err();
    assert!(err.is_key_auth_refused(), "{err}");
    assert_eq!(front.denied(), 1);
}

#[test]
fn key_datastores_prefer_entra_id_and_plans_never_list_secrets() {
    // https storage, datastore holding an account key: the main principal (Storage Blob Data
    // Owner) uses its token anyway; the key is never fetched.
    let mut ws = Workspace::inline_oauth(MMAR, with_reader(emulator_config()));
    ws.apply(&[]);
    let log = auth_log(&ws);
    println!(
        "key datastore over https: {} bearer / {} shared key / {} SAS, {} listSecrets",
        log.bearer,
        log.shared_key,
        log.sas,
        list_secrets(&ws)
    );
    assert!(log.bearer > 0, "{log:?}");
    assert_eq!((log.shared_key, log.sas), (0, 0), "{log:?}");
    assert_eq!(list_secrets(&ws), 0);
    sign_in_as_reader(&mut ws);
    ws.assert_no_changes(&[]);
    assert_eq!(list_secrets(&ws), 0, "the reader's plan lists no secrets");

    // http storage (plain Azurite): no token is sent over http, so apply falls back to the
    // datastore's key; plan and refresh still never read it and say what they skipped.
    let ws = Workspace::inline(MMAR, emulator_config());
    ws.apply(&[]);
    let at_apply = list_secrets(&ws);
    assert!(at_apply >= 1, "apply used the key datastore's secret");
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Uploaded blobs not verified"), "{text}");
    ws.ok(&["refresh", "-no-color"]);
    println!(
        "key datastore over http: {at_apply} listSecrets at apply, {} during plan and refresh",
        list_secrets(&ws) - at_apply
    );
    assert_eq!(
        list_secrets(&ws),
        at_apply,
        "plan and refresh list no secrets"
    );
}

/// A principal with Contributor on the subscription and no Storage Blob Data role.
const CONTRIBUTOR_ID: &str = "33333333-3333-3333-3333-333333333333";
const CONTRIBUTOR_SECRET: &str = "contributor-secret-do-not-log";

/// Azure Storage's data-plane RBAC, which Azurite lacks: a front (https, Azurite's own
/// certificate) that answers a bearer token of `denied` app ids with 403
/// `AuthorizationPermissionMismatch` and the message Azure sends ("This request is not
/// authorized to perform this operation using this permission.", the documented answer to a
/// principal without a Storage Blob Data role: Azure/azure-sdk-for-js#7009, fixed by assigning
/// Storage Blob Data Contributor; Azure/azure-storage-azcopy#120 for List Blobs), and
/// forwards everything else (tokens, Shared Key, SAS) to Azurite unchanged.
struct RbacFront {
    _rt: tokio::runtime::Runtime,
    port: u16,
    denied: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl RbacFront {
    /// `refuse_keys`: also answer Shared Key and SAS with 403
    /// `KeyBasedAuthenticationNotPermitted`, as an account with `allowSharedKeyAccess: false`
    /// does ("Key based authentication is not permitted on this storage account.",
    /// Azure/AI-Landing-Zones#64, microsoft/AzureStorageExplorer#8090).
    fn start(
        azurite: &clara_testkit::Azurite,
        denied_app_ids: &[&str],
        refuse_keys: bool,
    ) -> RbacFront {
        use axum::body::Body;
        use axum::http::{Request, Response, StatusCode};
        use base64::Engine;
        use rustls_pki_types::pem::PemObject;
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        let dir = azurite.ca_file().unwrap().parent().unwrap().to_path_buf();
        let certs: Vec<_> =
            rustls_pki_types::CertificateDer::pem_file_iter(dir.join("azurite.pem"))
                .unwrap()
                .map(Result::unwrap)
                .collect();
        let key =
            rustls_pki_types::PrivateKeyDer::from_pem_file(dir.join("azurite.key.pem")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let upstream_base = format!("https://127.0.0.1:{}", azurite.port);
        let ca = std::fs::read(azurite.ca_file().unwrap()).unwrap();
        let upstream = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap();
        let denied_ids: Arc<Vec<String>> =
            Arc::new(denied_app_ids.iter().map(|s| s.to_string()).collect());
        let denied = Arc::new(AtomicUsize::new(0));
        let counter = denied.clone();

        let app = axum::Router::new().fallback(move |req: Request<Body>| {
            let (upstream, upstream_base, denied_ids, counter) = (
                upstream.clone(),
                upstream_base.clone(),
                denied_ids.clone(),
                counter.clone(),
            );
            async move {
                let appid = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .and_then(|jwt| jwt.split('.').nth(1))
                    .and_then(|claims| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(claims)
                            .ok()
                    })
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|c| c["appid"].as_str().map(str::to_string));
                let key_based = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("SharedKey"))
                    || req
                        .uri()
                        .query()
                        .is_some_and(|q| q.split('&').any(|p| p.starts_with("sig=")));
                if refuse_keys && key_based {
                    counter.fetch_add(1, Ordering::SeqCst);
                    return Response::builder()
                        .status(StatusCode::FORBIDDEN)
                        .header("x-ms-error-code", "KeyBasedAuthenticationNotPermitted")
                        .header("content-type", "application/xml")
                        .body(Body::from(
                            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>KeyBasedAuthenticationNotPermitted</Code><Message>Key based authentication is not permitted on this storage account.\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2025-06-01T12:00:00.0000000Z</Message></Error>",
                        ))
                        .unwrap();
                }
                if appid.is_some_and(|a| denied_ids.contains(&a)) {
                    counter.fetch_add(1, Ordering::SeqCst);
                    return Response::builder()
                        .status(StatusCode::FORBIDDEN)
                        .header("x-ms-error-code", "AuthorizationPermissionMismatch")
                        .header("content-type", "application/xml")
                        .body(Body::from(
                            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.\nRequestId:00000000-0000-0000-0000-000000000000\nTime:2025-06-01T12:00:00.0000000Z</Message></Error>",
                        ))
                        .unwrap();
                }
                let (parts, body) = req.into_parts();
                let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
                let path = parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let mut forward =
                    upstream.request(parts.method.clone(), format!("{upstream_base}{path}"));
                for (k, v) in &parts.headers {
                    if !matches!(k.as_str(), "host" | "content-length" | "transfer-encoding") {
                        forward = forward.header(k, v);
                    }
                }
                let answer = forward.body(body).send().await.unwrap();
                let mut response = Response::builder().status(answer.status());
                for (k, v) in answer.headers() {
                    if !matches!(k.as_str(), "transfer-encoding" | "connection") {
                        response = response.header(k, v);
                    }
                }
                response
                    .body(Body::from(answer.bytes().await.unwrap()))
                    .unwrap()
            }
        });

        let rt = tokio::runtime::Runtime::new().unwrap();
        let tcp = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let port = tcp.local_addr().unwrap().port();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = tcp.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else {
                        return;
                    };
                    let service = hyper_util_service(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        RbacFront {
            _rt: rt,
            port,
            denied,
        }
    }

    fn denied(&self) -> usize {
        self.denied.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn hyper_util_service(app: axum::Router) -> hyper_util::service::TowerToHyperService<axum::Router> {
    hyper_util::service::TowerToHyperService::new(app)
}

/// Storage behind [`RbacFront`], for a principal with Contributor and no data role.
fn rbac_workspace(config: serde_json::Value) -> (Workspace, RbacFront) {
    let mut config = config;
    config["principals"] = json!([{
        "client_id": CONTRIBUTOR_ID,
        "client_secret": CONTRIBUTOR_SECRET,
        "roles": ["Contributor"],
    }]);
    let mut ws = Workspace::inline_oauth(MMAR, config);
    let front = RbacFront::start(ws.azurite.as_ref().unwrap(), &[CONTRIBUTOR_ID], false);
    ws.set_env(
        "CLARA_STORAGE_BLOB_ENDPOINT",
        &format!("https://127.0.0.1:{}/{{account}}", front.port),
    );
    ws.set_env("ARM_CLIENT_ID", CONTRIBUTOR_ID);
    ws.set_env("ARM_CLIENT_SECRET", CONTRIBUTOR_SECRET);
    (ws, front)
}

#[test]
fn a_principal_without_a_data_role_falls_back_to_the_key_at_apply_only() {
    // Key datastore: storage refuses the token, so apply fetches the key (listSecrets) and
    // uses Shared Key; plan and refresh do not, and warn that blobs were not verified.
    let (ws, front) = rbac_workspace(emulator_config());
    ws.apply(&[]);
    let applied = auth_log(&ws);
    let at_apply = list_secrets(&ws);
    println!(
        "no data role, key datastore: {} token requests refused by storage, {at_apply} listSecrets at apply, Azurite: {} bearer / {} shared key",
        front.denied(),
        applied.bearer,
        applied.shared_key
    );
    assert!(front.denied() >= 1, "the token was tried first");
    assert_eq!(at_apply, 1, "one listSecrets for the apply");
    assert!(applied.shared_key > 0 && applied.bearer == 0, "{applied:?}");
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 0, "{text}");
    let text = flat(&text);
    assert!(
        text.contains("Uploaded blobs not verified") && text.contains("Storage Blob Data Reader"),
        "{text}"
    );
    assert_eq!(list_secrets(&ws), at_apply, "plan lists no secrets");

    // Identity-based datastore: no key to fall back to; apply fails on `datastore`, naming
    // the role to assign, and asks for no secret.
    let mut config = emulator_config();
    config["storage"] = json!({"identity_based": true});
    let (ws, front) = rbac_workspace(config);
    let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(code, 0, "{text}");
    let text = flat(&text);
    assert!(
        text.contains("No data access to the datastore's storage")
            && text.contains("Storage Blob Data Contributor")
            && text.contains("identity-based"),
        "{text}"
    );
    assert!(front.denied() >= 1);
    assert_eq!(list_secrets(&ws), 0);
    let log = auth_log(&ws);
    assert_eq!((log.bearer, log.shared_key, log.sas), (0, 0, 0), "{log:?}");
}
