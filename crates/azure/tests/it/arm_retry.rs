//! Retries: throttling, transient server errors, dropped connections, 401 refresh.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{any, get};
use serde_json::json;
use tokio::net::TcpListener;

use crate::common::{arm_client, read_request, serve, write_json};

const PATH: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c";

type Response = (
    StatusCode,
    Vec<(&'static str, &'static str)>,
    serde_json::Value,
);

/// A router that answers `PATH` with `responses[n]` on the n-th call (the last repeats).
fn scripted(responses: Vec<Response>) -> (Router, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let responses = Arc::new(responses);
    let router = Router::new().route(
        PATH,
        any(move || {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let responses = responses.clone();
            async move {
                let (status, headers, body) = responses[n.min(responses.len() - 1)].clone();
                let mut h = HeaderMap::new();
                for (k, v) in headers {
                    h.insert(k, v.parse().unwrap());
                }
                (status, h, axum::Json(body)).into_response()
            }
        }),
    );
    (router, calls)
}

fn throttled() -> serde_json::Value {
    json!({"error": {"code": "TooManyRequests", "message": "slow down"}})
}

#[tokio::test]
async fn retries_429_honouring_retry_after_seconds() {
    let (router, calls) = scripted(vec![
        (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "1")],
            throttled(),
        ),
        (StatusCode::OK, vec![], json!({"name": "c"})),
    ]);
    let arm = arm_client(&serve(router).await);
    let started = Instant::now();
    let got = arm.get_json(PATH).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(got, Some(json!({"name": "c"})));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // The fast test policy would otherwise wait ~10ms.
    assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
}

#[tokio::test]
async fn retries_429_honouring_x_ms_retry_after_ms() {
    let (router, calls) = scripted(vec![
        (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "30"), ("x-ms-retry-after-ms", "300")],
            throttled(),
        ),
        (StatusCode::OK, vec![], json!({"ok": true})),
    ]);
    let arm = arm_client(&serve(router).await);
    let started = Instant::now();
    arm.get_json(PATH).await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(
        elapsed >= Duration::from_millis(290) && elapsed < Duration::from_secs(5),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let (router, calls) = scripted(vec![
        (
            StatusCode::SERVICE_UNAVAILABLE,
            vec![],
            json!({"error": {"code": "ServiceUnavailable", "message": "x"}}),
        ),
        (StatusCode::BAD_GATEWAY, vec![], json!({})),
        (StatusCode::OK, vec![], json!({"name": "c"})),
    ]);
    let arm = arm_client(&serve(router).await);
    let resp = arm
        .put_json(PATH, &json!({"properties": {}}))
        .await
        .unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_useful_error() {
    let (router, calls) = scripted(vec![(
        StatusCode::SERVICE_UNAVAILABLE,
        vec![("x-ms-request-id", "req-42")],
        json!({"error": {"code": "ServerBusy", "message": "try later"}}),
    )]);
    let arm = arm_client(&serve(router).await);
    let err = arm.get_json(PATH).await.unwrap_err();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        4,
        "fast_policy allows 4 attempts"
    );
    assert_eq!(err.status, Some(503));
    assert_eq!(err.code, "ServerBusy");
    assert_eq!(
        err.to_string(),
        "ServerBusy: try later (gave up after 4 attempts) [status 503, x-ms-request-id req-42]"
    );
}

#[tokio::test]
async fn post_is_not_retried_on_5xx_but_is_on_429() {
    let (router, calls) = scripted(vec![(StatusCode::INTERNAL_SERVER_ERROR, vec![], json!({}))]);
    let arm = arm_client(&serve(router).await);
    let err = arm.post_json(PATH, None).await.unwrap_err();
    assert_eq!((err.status, calls.load(Ordering::SeqCst)), (Some(500), 1));
    assert_eq!(err.code, "InternalServerError");

    let (router, calls) = scripted(vec![
        (
            StatusCode::TOO_MANY_REQUESTS,
            vec![("retry-after", "0")],
            throttled(),
        ),
        (StatusCode::OK, vec![], json!({"done": true})),
    ]);
    let arm = arm_client(&serve(router).await);
    assert_eq!(
        arm.post_json(PATH, None).await.unwrap().body,
        Some(json!({"done": true}))
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    let (router, calls) = scripted(vec![
        (StatusCode::INTERNAL_SERVER_ERROR, vec![], json!({})),
        (StatusCode::OK, vec![], json!({"keys": []})),
    ]);
    let arm = arm_client(&serve(router).await);
    arm.post_json_idempotent(PATH, None).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Accepts connections, drops the first `drop_first` mid-request, answers the rest.
async fn flaky_server(drop_first: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let n = c.fetch_add(1, Ordering::SeqCst);
            read_request(&mut stream).await;
            if n < drop_first {
                drop(stream);
            } else {
                write_json(&mut stream, "200 OK", r#"{"name":"c"}"#).await;
            }
        }
    });
    (format!("http://{addr}"), conns)
}

#[tokio::test]
async fn put_is_retried_after_dropped_connection() {
    let (base, conns) = flaky_server(2).await;
    let arm = arm_client(&base);
    let resp = arm
        .put_json(PATH, &json!({"properties": {}}))
        .await
        .unwrap();
    assert_eq!(resp.body, Some(json!({"name": "c"})));
    assert_eq!(conns.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn post_is_not_retried_after_dropped_connection() {
    let (base, conns) = flaky_server(usize::MAX).await;
    let arm = arm_client(&base);
    let err = arm.post_json(PATH, Some(&json!({}))).await.unwrap_err();
    assert_eq!(err.code, "ConnectionError");
    assert_eq!(err.status, None);
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connection_refused_gives_up_with_connection_error() {
    // Bind then drop to get a port with nothing listening.
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let arm = arm_client(&format!("http://127.0.0.1:{port}"));
    let err = arm.get_json(PATH).await.unwrap_err();
    assert_eq!(err.code, "ConnectionError");
    assert!(err.message.contains("gave up after 4 attempts"), "{err}");
}

#[tokio::test]
async fn unauthorized_refreshes_token_once_then_retries() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let router = Router::new().route(
        PATH,
        get(move |headers: HeaderMap| {
            let auth = headers.get("authorization").unwrap().to_str().unwrap().to_owned();
            s.lock().unwrap().push(auth.clone());
            async move {
                if auth == "Bearer gen0" {
                    (StatusCode::UNAUTHORIZED, axum::Json(json!({"error": {"code": "ExpiredAuthenticationToken", "message": "expired"}})))
                } else {
                    (StatusCode::OK, axum::Json(json!({"name": "c"})))
                }
            }
        }),
    );
    let arm = arm_client(&serve(router).await);
    assert_eq!(
        arm.get_json(PATH).await.unwrap(),
        Some(json!({"name": "c"}))
    );
    assert_eq!(*seen.lock().unwrap(), vec!["Bearer gen0", "Bearer gen1"]);
    // The refreshed token is cached for later calls.
    arm.get_json(PATH).await.unwrap();
    assert_eq!(seen.lock().unwrap().last().unwrap(), "Bearer gen1");
}

#[tokio::test]
async fn unauthorized_twice_is_an_error() {
    let (router, calls) = scripted(vec![(
        StatusCode::UNAUTHORIZED,
        vec![],
        json!({"error": {"code": "InvalidAuthenticationToken", "message": "bad token"}}),
    )]);
    let arm = arm_client(&serve(router).await);
    let err = arm.get_json(PATH).await.unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (Some(401), "InvalidAuthenticationToken")
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
