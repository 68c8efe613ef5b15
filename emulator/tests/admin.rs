mod common;

use common::{Emu, cluster_body};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn admin_api_and_request_log() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-admin");
    let put = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_ND40rs_v2", 0, 2)),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    emu.arm(&token, Method::GET, &path, None).await;

    let health = emu.admin(Method::GET, "/_emulator/health", None).await;
    assert_eq!(health.body["status"], "ok");
    assert_eq!(health.body["base_url"], emu.running.base_url);

    // state: rendered resources, no secrets
    let state = emu.admin(Method::GET, "/_emulator/state", None).await;
    assert_eq!(state.body["computes"].as_array().unwrap().len(), 1);
    assert_eq!(state.body["operations"].as_array().unwrap().len(), 1);
    assert_eq!(state.body["workspaces"][0]["name"], "clara-ws");
    let text = state.body.to_string();
    assert!(
        !text.contains("S3cret-pw!"),
        "admin state must not leak secrets"
    );

    // request log: one line per request, secrets redacted, admin calls not logged
    let log = emu.requests().await;
    let ops: Vec<&str> = log.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["token", "compute.create", "compute.get"]);
    let token_entry = &log[0];
    assert_eq!(token_entry["body"]["client_secret"], "<redacted>");
    assert_eq!(token_entry["body"]["client_id"], emu.config.client_id);
    let put_entry = &log[1];
    for field in [
        "ts", "method", "path", "query", "status", "op", "fault", "body",
    ] {
        assert!(put_entry.get(field).is_some(), "{field}");
    }
    assert_eq!(put_entry["status"], 201);
    assert_eq!(put_entry["query"], "api-version=2025-12-01");
    let creds = &put_entry["body"]["properties"]["properties"]["userAccountCredentials"];
    assert_eq!(creds["adminUserPassword"], "<redacted>");
    assert_eq!(creds["adminUserSshPublicKey"], "ssh-rsa AAAAB3Nza test");
    let raw = std::fs::read_to_string(emu.dir.path().join("requests.jsonl")).unwrap();
    assert_eq!(raw.lines().count(), 3);
    assert!(!raw.contains("S3cret-pw!") && !raw.contains(&emu.config.client_secret));

    let filtered = emu
        .admin(Method::GET, "/_emulator/requests?op=compute.create", None)
        .await;
    assert_eq!(filtered.body.as_array().unwrap().len(), 1);

    let stats = emu.admin(Method::GET, "/_emulator/stats", None).await.body;
    assert_eq!(stats["by_op"]["compute.create"], 1);
    assert_eq!(stats["by_op_status"]["compute.create"]["201"], 1);
    assert_eq!(
        (stats["reads"].as_u64(), stats["writes"].as_u64()),
        (Some(1), Some(1))
    );

    // reset: resources and log cleared, token still valid
    let reset = emu.admin(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(reset.status, StatusCode::NO_CONTENT);
    assert!(emu.requests().await.is_empty());
    assert_eq!(
        emu.arm(&token, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(emu.requests().await.len(), 1);

    // unknown routes: ARM-style 404
    let unknown = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/widgets/x", emu.ws_path()),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error().0, "InvalidResourceType");
    let wrong_method = emu.arm(&token, Method::POST, &emu.ws_path(), None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
}
