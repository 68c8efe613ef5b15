mod common;

use std::time::Duration;

use clara_emulator::Config;
use common::{Emu, cluster_body, fast_config};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn restart_with_the_same_state_dir_loses_nothing() {
    let config = Config {
        lro_delay_ms: 600,
        ..fast_config()
    };
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    let done = emu.compute_path("gpu-done");
    let pending = emu.compute_path("gpu-pending");

    let put = emu
        .arm(
            &token,
            Method::PUT,
            &done,
            Some(cluster_body("Standard_NC24ads_A100_v4", 1, 2)),
        )
        .await;
    emu.wait_op(&token, &put.header("azure-asyncoperation").unwrap())
        .await;
    let put = emu
        .arm(
            &token,
            Method::PUT,
            &pending,
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let pending_op = put.header("azure-asyncoperation").unwrap();
    let op_path = pending_op
        .split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1
        .to_string();
    let log_len = emu.requests().await.len();
    let before = emu.arm(&token, Method::GET, &done, None).await.body;

    let (dir, config) = emu.stop().await;
    let emu = Emu::start_in(dir, config).await;

    // the token issued before the restart is still valid; resources are intact
    let after = emu.arm(&token, Method::GET, &done, None).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, before);
    assert_eq!(
        after.body["properties"]["properties"]["currentNodeCount"],
        1
    );

    // the pending operation keeps its absolute deadline and completes after the restart
    let op_url = emu.url(&format!("/{op_path}"));
    let statuses = emu.wait_op(&token, &op_url).await;
    assert_eq!(statuses.last().unwrap(), "Succeeded");
    let got = emu.arm(&token, Method::GET, &pending, None).await;
    assert_eq!(got.body["properties"]["provisioningState"], "Succeeded");

    // the request log continues in the same file
    assert!(emu.requests().await.len() > log_len);
}

#[tokio::test]
async fn operations_that_came_due_while_down_complete_on_start() {
    let emu = Emu::start_with(Config {
        lro_delay_ms: 100,
        ..fast_config()
    })
    .await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-del");
    let put = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    emu.wait_op(&token, &put.header("azure-asyncoperation").unwrap())
        .await;
    let del = emu
        .arm(
            &token,
            Method::DELETE,
            &format!("{path}?underlyingResourceAction=Delete&{}", common::API),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let (dir, config) = emu.stop().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let emu = Emu::start_in(dir, config).await;
    assert_eq!(
        emu.arm(&token, Method::GET, &path, None).await.status,
        StatusCode::NOT_FOUND
    );
}
