//! `/_emulator/raw`: seeded raw ARM objects (verbatim bodies, or merge patches over the
//! emulator's own answers) for the provider's conformance tests. See emulator/README.md.

mod common;

use common::Emu;
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn seeded_bodies_and_merge_patches_are_served_to_authenticated_gets() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let seeded = emu.compute_path("compute123");

    // Verbatim body: served on GET (any case of the path), behind ARM auth and api-version.
    let body = json!({"id": seeded, "name": "compute123", "properties": {"computeType": "AmlCompute",
        "properties": {"vmSize": "STANDARD_NC6"}}});
    let r = emu
        .admin(
            Method::PUT,
            "/_emulator/raw",
            Some(json!({"path": seeded, "body": body})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let got = emu
        .arm(&token, Method::GET, &seeded.to_uppercase(), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, body);
    let anonymous = emu
        .send(
            "not-a-token",
            Method::GET,
            &emu.url(&format!("{seeded}?api-version=2025-12-01")),
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let no_version = emu.send(&token, Method::GET, &emu.url(&seeded), None).await;
    assert_eq!(no_version.status, StatusCode::BAD_REQUEST);
    // Writes are not intercepted: the emulator's own handler answers.
    let del = emu
        .arm(
            &token,
            Method::DELETE,
            &format!("{seeded}?underlyingResourceAction=Delete"),
            None,
        )
        .await;
    assert_eq!(
        del.status,
        StatusCode::NO_CONTENT,
        "absent in the emulator itself"
    );

    // Merge patch over the emulator's own 200 answer (a workspace here).
    let ws = emu.ws_path();
    let before = emu.arm(&token, Method::GET, &ws, None).await;
    let r = emu
        .admin(Method::PUT, "/_emulator/raw", Some(json!({"path": ws, "merge": {"location": "EastUS", "tags": {"k": "v"}, "sku": null}})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let after = emu.arm(&token, Method::GET, &ws, None).await;
    assert_eq!(after.body["location"], "EastUS");
    assert_eq!(after.body["tags"]["k"], "v");
    assert!(after.body.get("sku").is_none());
    assert_eq!(after.body["properties"], before.body["properties"]);
    // The log names the seeded read `raw.get`; a merged read keeps its op.
    let log = emu.admin(Method::GET, "/_emulator/requests", None).await;
    let ops: Vec<&str> = log
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["op"].as_str())
        .collect();
    assert!(ops.contains(&"raw.get"), "{ops:?}");
    assert_eq!(ops.last(), Some(&"workspace.get"));

    // Bad entries are refused; DELETE clears.
    let bad = emu
        .admin(
            Method::PUT,
            "/_emulator/raw",
            Some(json!({"path": "/x", "body": {}})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let both = emu
        .admin(
            Method::PUT,
            "/_emulator/raw",
            Some(json!({"path": ws, "body": {}, "merge": {}})),
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    let list = emu.admin(Method::GET, "/_emulator/raw", None).await;
    assert_eq!(list.body.as_array().unwrap().len(), 2);
    assert_eq!(
        emu.admin(Method::DELETE, "/_emulator/raw", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gone = emu.arm(&token, Method::GET, &seeded, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}
