//! Blob retries and secret hygiene against scripted in-process servers.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::any;
use clara_azure::Secret;
use clara_azure::blob::{BlobClient, BlobCredential, BlobError, BlobOptions};
use url::Url;

use crate::blob_azurite::{Azurite, fast_retry};
use crate::common::serve;

const SAS: &str = "sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2099-01-01T00%3A00%3A00Z&sig=c2VjcmV0LXNhcy1zaWduYXR1cmU%3D";

fn client(base: &str, credential: BlobCredential) -> BlobClient {
    BlobClient::new(
        Url::parse(&format!("{base}/devstoreaccount1")).unwrap(),
        credential,
        reqwest::Client::new(),
        BlobOptions {
            retry: fast_retry(),
            ..BlobOptions::default()
        },
    )
    .unwrap()
}

/// Answers the n-th request with `statuses[n]` (the last repeats), recording
/// each request's headers and query.
type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

fn scripted(
    statuses: Vec<(StatusCode, Vec<(&'static str, &'static str)>)>,
) -> (Router, Arc<AtomicUsize>, Seen) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (c, s) = (calls.clone(), seen.clone());
    let statuses = Arc::new(statuses);
    let router = Router::new().fallback(any(move |headers: HeaderMap, uri: axum::http::Uri| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        s.lock()
            .unwrap()
            .push((headers, uri.query().unwrap_or_default().to_owned()));
        let (status, extra) = statuses[n.min(statuses.len() - 1)].clone();
        async move {
            let mut h = HeaderMap::new();
            for (k, v) in extra {
                h.insert(k, v.parse().unwrap());
            }
            (status, h).into_response()
        }
    }));
    (router, calls, seen)
}

#[tokio::test]
async fn retries_503_honouring_retry_after_and_signs_each_attempt() {
    let (router, calls, seen) = scripted(vec![
        (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![("retry-after", "1"), ("x-ms-error-code", "ServerBusy")],
        ),
        (StatusCode::CREATED, vec![]),
    ]);
    let base = serve(router).await;
    let c = client(&base, Azurite::shared_key());
    let t0 = Instant::now();
    c.put_bytes(
        "ccc",
        "b",
        b"hello".to_vec(),
        "text/plain",
        &BTreeMap::new(),
    )
    .await
    .unwrap();
    assert!(
        t0.elapsed() >= Duration::from_millis(950),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let seen = seen.lock().unwrap();
    for (h, _) in seen.iter() {
        let auth = h["authorization"].to_str().unwrap();
        assert!(auth.starts_with("SharedKey devstoreaccount1:"), "{auth}");
        assert_eq!(h["x-ms-version"], clara_azure::blob::BLOB_API_VERSION);
        assert_eq!(h["content-md5"], "XUFAKrxLKna5cZ2REBfFkg==");
        assert_eq!(h["content-length"], "5");
        assert_eq!(h["x-ms-blob-type"], "BlockBlob");
    }
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_does_not_retry_client_errors() {
    let (router, calls, _) = scripted(vec![(
        StatusCode::INTERNAL_SERVER_ERROR,
        vec![("x-ms-error-code", "InternalError")],
    )]);
    let base = serve(router).await;
    let err = client(&base, Azurite::shared_key())
        .delete("ccc", "b")
        .await
        .unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (Some(500), "InternalError")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let (router, calls, _) = scripted(vec![(
        StatusCode::BAD_REQUEST,
        vec![("x-ms-error-code", "InvalidHeaderValue")],
    )]);
    let base = serve(router).await;
    let err = client(&base, Azurite::shared_key())
        .delete("ccc", "b")
        .await
        .unwrap_err();
    assert_eq!(err.code, "InvalidHeaderValue");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

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
async fn sas_stays_out_of_errors_and_logs() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // SAS goes in the query; the server sees it, errors and logs must not.
    let (router, _, seen) = scripted(vec![
        (StatusCode::SERVICE_UNAVAILABLE, vec![]),
        (
            StatusCode::FORBIDDEN,
            vec![("x-ms-error-code", "AuthenticationFailed")],
        ),
    ]);
    let base = serve(router).await;
    let c = client(&base, BlobCredential::Sas(Secret::new(format!("?{SAS}"))));
    let err = c.list("ccc", "p/").await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    let (headers, query) = seen.lock().unwrap()[0].clone();
    assert!(headers.get("authorization").is_none());
    assert!(query.ends_with(SAS), "{query}");
    assert!(
        query.starts_with("restype=container&comp=list&include=metadata&prefix=p%2F&"),
        "{query}"
    );

    // A refused connection: reqwest would name the URL (with the SAS) in its error.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let err2 = client(&closed, BlobCredential::Sas(Secret::new(SAS)))
        .get_bytes("ccc", "b")
        .await
        .unwrap_err();
    assert_eq!(
        (err2.status, err2.code.as_str()),
        (None, BlobError::CONNECTION_ERROR)
    );
    assert!(err2.message.contains("Get Blob ccc/b"), "{err2}");

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let everything = format!("{err} {err:?} {err2} {err2:?} {c:?} {logs}");
    assert!(logs.contains("retrying blob request"), "{logs}");
    for secret in ["c2VjcmV0LXNhcy1zaWduYXR1cmU", "sig="] {
        assert!(
            !everything.contains(secret),
            "{secret} leaked:\n{everything}"
        );
    }
}
