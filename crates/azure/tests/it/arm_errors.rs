//! Error parsing, 404 handling, URL building, paging and request headers.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use clara_azure::{HttpClientOptions, build_http_client, redact_json};
use serde_json::json;

use crate::common::{arm_client, arm_client_with, generation_credential, serve};

#[tokio::test]
async fn arm_error_body_is_parsed() {
    let router = Router::new().route(
        "/bad",
        get(|| async {
            let mut h = HeaderMap::new();
            h.insert("x-ms-request-id", "rid-1".parse().unwrap());
            (
                StatusCode::BAD_REQUEST,
                h,
                axum::Json(json!({"error": {
                    "code": "BadRequest",
                    "message": "Compute vmSize is not supported",
                    "target": "properties.properties.vmSize",
                    "details": [{"code": "InvalidVmSize", "message": "STANDARD_X is unknown"}]
                }})),
            )
        }),
    );
    let arm = arm_client(&serve(router).await);
    let err = arm.get_json("/bad").await.unwrap_err();
    assert_eq!(err.status, Some(400));
    assert_eq!(err.code, "BadRequest");
    assert_eq!(err.target.as_deref(), Some("properties.properties.vmSize"));
    assert_eq!(err.request_id.as_deref(), Some("rid-1"));
    assert_eq!(err.details[0].code, "InvalidVmSize");
    assert!(!err.is_not_found() && !err.is_conflict() && !err.is_throttled());
    assert_eq!(
        err.to_string(),
        "BadRequest: Compute vmSize is not supported (target: properties.properties.vmSize) \
         [status 400, x-ms-request-id rid-1]; details: InvalidVmSize: STANDARD_X is unknown"
    );
}

#[tokio::test]
async fn not_found_is_none_and_conflict_is_flagged() {
    let router = Router::new()
        .route(
            "/missing",
            axum::routing::any(|| async {
                (
                    StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": {"code": "ResourceNotFound", "message": "gone"}})),
                )
            }),
        )
        .route(
            "/conflict",
            get(|| async { (StatusCode::CONFLICT, "plain text conflict") }),
        );
    let arm = arm_client(&serve(router).await);
    assert_eq!(arm.get_json("/missing").await.unwrap(), None);
    let err = arm.delete("/missing", &[]).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = arm.get_json("/conflict").await.unwrap_err();
    assert!(err.is_conflict());
    assert_eq!(
        err.to_string(),
        "Conflict: plain text conflict [status 409]"
    );
}

#[tokio::test]
async fn urls_get_api_version_once_and_keep_endpoint_prefix() {
    let arm = arm_client("https://arm.example/prefix/");
    assert_eq!(
        arm.url("/subscriptions/s?$skip=2").unwrap().as_str(),
        "https://arm.example/prefix/subscriptions/s?$skip=2&api-version=2025-12-01"
    );
    assert_eq!(
        arm.url("https://arm.example/ops/1?api-version=2024-01-01")
            .unwrap()
            .as_str(),
        "https://arm.example/ops/1?api-version=2024-01-01"
    );
    let err = arm.url("https://evil.example/ops/1").unwrap_err();
    assert!(
        err.message.contains("refusing to send ARM credentials"),
        "{err}"
    );
}

#[tokio::test]
async fn delete_adds_query_and_headers_are_sent() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let router = Router::new().route(
        "/c",
        get(|| async { "" }).delete(
            move |Query(q): Query<Vec<(String, String)>>, req: Request| {
                let h = req.headers();
                s.lock().unwrap().push((
                    q,
                    h.get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    h.get("user-agent")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                    h.get("accept")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                ));
                async { StatusCode::NO_CONTENT }
            },
        ),
    );
    let http = build_http_client(&HttpClientOptions::default()).unwrap();
    let arm = arm_client_with(&serve(router).await, generation_credential(), http);
    let resp = arm
        .delete("/c", &[("underlyingResourceAction", "Delete")])
        .await
        .unwrap();
    assert_eq!((resp.status, resp.body), (204, None));
    let (q, auth, ua, accept) = seen.lock().unwrap()[0].clone();
    assert_eq!(
        q,
        vec![
            ("api-version".to_owned(), "2025-12-01".to_owned()),
            ("underlyingResourceAction".to_owned(), "Delete".to_owned())
        ]
    );
    assert_eq!(auth.as_deref(), Some("Bearer gen0"));
    assert!(ua.unwrap().starts_with("terraform-provider-clara/"));
    assert_eq!(accept.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn list_follows_next_link() {
    let router = Router::new().route(
        "/items",
        get(|Query(q): Query<std::collections::HashMap<String, String>>, headers: HeaderMap| async move {
            let host = headers.get("host").unwrap().to_str().unwrap().to_owned();
            match q.get("$skip").map(String::as_str) {
                None => axum::Json(json!({"value": [1, 2], "nextLink": format!("http://{host}/items?$skip=2&api-version=2025-12-01")})),
                _ => axum::Json(json!({"value": [3]})),
            }
        }),
    );
    let arm = arm_client(&serve(router).await);
    assert_eq!(
        arm.list_json("/items").await.unwrap(),
        vec![json!(1), json!(2), json!(3)]
    );
}

#[test]
fn redact_json_is_exported() {
    let v = json!({"properties": {"adminUserPassword": "x", "sasToken": "y", "name": "n"}});
    assert_eq!(
        redact_json(&v),
        json!({"properties": {"adminUserPassword": "<redacted>", "sasToken": "<redacted>", "name": "n"}})
    );
}
