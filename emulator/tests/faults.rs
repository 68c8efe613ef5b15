mod common;

use std::time::{Duration, Instant};

use clara_emulator::{Config, FaultConfig, FaultKind};
use common::{API, Emu, cluster_body, fast_config};
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn status_sequence(seed: u64, n: usize) -> Vec<u16> {
    let faults = FaultConfig {
        seed: Some(seed),
        rate: 0.3,
        kinds: vec![
            FaultKind::Throttle,
            FaultKind::Internal,
            FaultKind::Unavailable,
        ],
        ..FaultConfig::default()
    };
    let emu = Emu::start_with(Config {
        faults,
        ..fast_config()
    })
    .await;
    let token = emu.token().await; // never faulted: token scope is opt-in
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            emu.arm(&token, Method::GET, &emu.ws_path(), None)
                .await
                .status
                .as_u16(),
        );
    }
    out
}

#[tokio::test]
async fn random_faults_are_deterministic_for_a_seed() {
    let a = status_sequence(42, 40).await;
    let b = status_sequence(42, 40).await;
    assert_eq!(a, b);
    assert!(a.contains(&200));
    assert!(a.iter().any(|s| [429, 500, 503].contains(s)), "{a:?}");
    let c = status_sequence(7, 40).await;
    assert_ne!(a, c, "a different seed gives a different sequence");
}

#[tokio::test]
async fn faulted_writes_are_not_applied() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-faulty");
    emu.set_faults(json!({"retry_after_s": 3, "next": [
        {"kind": "429", "op": "compute.create"},
        {"kind": "500", "op": "compute.create"},
        {"kind": "503", "method": "PUT"}
    ]}))
    .await;

    let throttled = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(throttled.header("retry-after").as_deref(), Some("3"));
    assert_eq!(throttled.error().0, "TooManyRequests");
    let internal = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(internal.status, StatusCode::INTERNAL_SERVER_ERROR);
    let unavailable = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(unavailable.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(unavailable.header("retry-after").as_deref(), Some("3"));

    assert_eq!(
        emu.arm(&token, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    let ok = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(ok.status, StatusCode::CREATED);

    let log = emu.requests().await;
    let faults: Vec<Option<&str>> = log
        .iter()
        .filter(|e| e["method"] == "PUT")
        .map(|e| e["fault"].as_str())
        .collect();
    assert_eq!(faults, [Some("429"), Some("500"), Some("503"), None]);
    let stats = emu.admin(Method::GET, "/_emulator/stats", None).await.body;
    assert_eq!(stats["faults"], json!({"429": 1, "500": 1, "503": 1}));
}

#[tokio::test]
async fn drop_closes_the_connection_without_applying() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-drop");
    emu.set_faults(json!({"next": [{"kind": "drop", "op": "compute.create"}]}))
        .await;
    let url = emu.url(&format!("{path}?{API}"));
    let err = emu
        .client
        .put(&url)
        .bearer_auth(&token)
        .json(&cluster_body("Standard_NC6s_v3", 0, 1))
        .send()
        .await;
    assert!(
        err.is_err(),
        "the client must see a transport error, got {err:?}"
    );
    assert_eq!(
        emu.arm(&token, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );

    let entry = emu
        .requests()
        .await
        .into_iter()
        .find(|e| e["method"] == "PUT")
        .unwrap();
    assert_eq!(entry["fault"], "drop");
    assert_eq!(entry["dropped"], true);
    assert!(entry["status"].is_null());
}

#[tokio::test]
async fn drop_after_applies_then_drops_and_a_retry_adopts() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-adopt");
    emu.set_faults(json!({"next": [{"kind": "drop_after", "op": "compute.create"}]}))
        .await;
    let url = emu.url(&format!("{path}?{API}"));
    let body = cluster_body("Standard_NC6s_v3", 0, 1);
    assert!(
        emu.client
            .put(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .is_err()
    );

    let get = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(get.status, StatusCode::OK, "the write was applied");
    let retry = emu.arm(&token, Method::PUT, &path, Some(body)).await;
    assert_eq!(
        retry.status,
        StatusCode::OK,
        "retrying the same PUT adopts the compute"
    );

    let entry = emu
        .requests()
        .await
        .into_iter()
        .find(|e| e["method"] == "PUT")
        .unwrap();
    assert_eq!(
        (
            entry["fault"].as_str(),
            entry["status"].as_u64(),
            entry["dropped"].as_bool()
        ),
        (Some("drop_after"), Some(201), Some(true))
    );
}

#[tokio::test]
async fn drop_over_tls_closes_the_connection() {
    // Same as above, on the default HTTPS listener (h2 is offered via ALPN; this client speaks HTTP/1.1).
    let dir = tempfile::tempdir().unwrap();
    let mut opts = clara_emulator::Options::new(dir.path());
    opts.config = fast_config();
    opts.config.faults.next = vec![clara_emulator::ScriptedFault {
        kind: FaultKind::Drop,
        op: Some("workspace.get".into()),
        method: None,
        path_regex: None,
        times: 1,
    }];
    let running = clara_emulator::start(opts).await.unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(running.ca_pem()).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .build()
        .unwrap();
    let token: serde_json::Value = client
        .post(format!("{}/{}/oauth2/v2.0/token", running.base_url, clara_emulator::config::DEFAULT_TENANT_ID))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
            clara_emulator::config::DEFAULT_CLIENT_ID,
            clara_emulator::config::DEFAULT_CLIENT_SECRET
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap();
    let ws = format!(
        "{}/subscriptions/{}/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws?{API}",
        running.base_url,
        clara_emulator::config::DEFAULT_SUBSCRIPTION_ID
    );
    assert!(client.get(&ws).bearer_auth(token).send().await.is_err());
    let ok = client.get(&ws).bearer_auth(token).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    running.shutdown().await;
}

#[tokio::test]
async fn lro_fail_ends_the_operation_failed() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-fail");
    emu.set_faults(json!({"next": [{"kind": "lro_fail", "op": "compute.create"}]}))
        .await;
    let put = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let op_url = put.header("azure-asyncoperation").unwrap();
    assert_eq!(emu.wait_op(&token, &op_url).await.last().unwrap(), "Failed");
    let op = emu.send(&token, Method::GET, &op_url, None).await;
    assert_eq!(op.body["error"]["code"], "ComputeOperationFailed");
    let get = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(get.body["properties"]["provisioningState"], "Failed");
    assert_eq!(
        get.body["properties"]["provisioningErrors"][0]["error"]["code"],
        "ComputeOperationFailed"
    );
    let entry = emu
        .requests()
        .await
        .into_iter()
        .find(|e| e["method"] == "PUT")
        .unwrap();
    assert_eq!(entry["fault"], "lro_fail");
}

#[tokio::test]
async fn latency_and_filters() {
    let faults = FaultConfig {
        rate: 1.0,
        kinds: vec![FaultKind::Latency],
        latency_ms: 150,
        only_methods: Some(vec!["PUT".into()]),
        ..FaultConfig::default()
    };
    let emu = Emu::start_with(Config {
        faults,
        ..fast_config()
    })
    .await;
    let token = emu.token().await;
    let get = emu.arm(&token, Method::GET, &emu.ws_path(), None).await;
    assert_eq!(get.status, StatusCode::OK);
    let started = Instant::now();
    let put = emu
        .arm(
            &token,
            Method::PUT,
            &emu.compute_path("slow"),
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(
        put.status,
        StatusCode::CREATED,
        "latency still applies the request"
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
    let log = emu.requests().await;
    let faults: Vec<(&str, Option<&str>)> = log
        .iter()
        .filter(|e| e["op"] != "token")
        .map(|e| (e["method"].as_str().unwrap(), e["fault"].as_str()))
        .collect();
    assert_eq!(
        faults,
        [("GET", None), ("PUT", Some("latency"))],
        "only PUT is eligible"
    );

    // token endpoint only with include_token
    emu.set_faults(json!({"rate": 1.0, "kinds": ["500"], "include_token": true}))
        .await;
    let r = emu
        .token_request(&[("grant_type", "client_credentials")])
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);

    // admin routes are never faulted; invalid configs are rejected
    let bad = emu
        .admin(Method::PUT, "/_emulator/faults", Some(json!({"rate": 2.0})))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let health = emu.admin(Method::GET, "/_emulator/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
}
