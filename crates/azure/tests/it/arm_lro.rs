//! Long-running operations: Azure-AsyncOperation, Location, provisioningState, cancellation.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use clara_azure::CancellationToken;
use serde_json::json;

use axum::routing::MethodFilter;

use crate::common::{WRITES, arm_client, sequence, sequence_on, serve_with};

const C: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c";

fn op(status: &str) -> Option<serde_json::Value> {
    Some(json!({"id": "op", "status": status}))
}

fn resource(state: &str) -> Option<serde_json::Value> {
    Some(
        json!({"name": "c", "properties": {"computeType": "AmlCompute", "provisioningState": state}}),
    )
}

#[tokio::test]
async fn put_polls_async_operation_then_gets_resource() {
    let mut op_calls = None;
    let mut get_calls = None;
    let base = serve_with(|base| {
        let async_op = format!("{base}/ops/1?api-version=2025-12-01");
        let (put, _) = sequence_on(
            WRITES,
            vec![(
                StatusCode::CREATED,
                vec![
                    ("azure-asyncoperation", async_op),
                    ("retry-after", "0".into()),
                ],
                resource("Creating"),
            )],
        );
        let (ops, oc) = sequence(vec![
            (StatusCode::OK, vec![], op("InProgress")),
            (
                StatusCode::OK,
                vec![("retry-after", "0".into())],
                op("InProgress"),
            ),
            (StatusCode::OK, vec![], op("Succeeded")),
        ]);
        let (get, gc) = sequence_on(
            MethodFilter::GET,
            vec![(StatusCode::OK, vec![], resource("Succeeded"))],
        );
        op_calls = Some(oc);
        get_calls = Some(gc);
        Router::new().route(C, get.merge(put)).route("/ops/1", ops)
    })
    .await;
    let arm = arm_client(&base);
    let got = arm
        .put_and_wait(C, &json!({"properties": {}}), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(got, resource("Succeeded").unwrap());
    assert_eq!(op_calls.unwrap().load(Ordering::SeqCst), 3);
    assert_eq!(get_calls.unwrap().load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn failed_operation_returns_its_error() {
    let base = serve_with(|base| {
        let (put, _) = sequence(vec![(
            StatusCode::CREATED,
            vec![("azure-asyncoperation", format!("{base}/ops/2"))],
            resource("Creating"),
        )]);
        let (ops, _) = sequence(vec![
            (StatusCode::OK, vec![], op("InProgress")),
            (
                StatusCode::OK,
                vec![("x-ms-request-id", "poll-7".into())],
                Some(json!({"status": "Failed", "error": {"code": "QuotaExceeded", "message": "Not enough cores in eastus"}})),
            ),
        ]);
        Router::new().route(C, put).route("/ops/2", ops)
    })
    .await;
    let err = arm_client(&base)
        .put_and_wait(C, &json!({}), &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(err.code, "QuotaExceeded");
    assert_eq!(err.message, "Not enough cores in eastus");
    assert_eq!(err.request_id.as_deref(), Some("poll-7"));
}

#[tokio::test]
async fn wait_async_operation_reports_status_transitions() {
    let base = serve_with(|_| {
        let (ops, _) = sequence(vec![
            (StatusCode::OK, vec![], op("InProgress")),
            (StatusCode::OK, vec![], op("InProgress")),
            (StatusCode::OK, vec![], op("Finalizing")),
            (StatusCode::OK, vec![], op("Succeeded")),
        ]);
        Router::new().route("/ops/3", ops)
    })
    .await;
    let arm = arm_client(&base);
    let mut seen = Vec::new();
    let body = arm
        .wait_async_operation(&format!("{base}/ops/3"), &CancellationToken::new(), |s| {
            seen.push(s.to_owned())
        })
        .await
        .unwrap();
    assert_eq!(body["status"], "Succeeded");
    assert_eq!(seen, ["InProgress", "Finalizing", "Succeeded"]);
}

#[tokio::test]
async fn location_pattern_post_and_delete() {
    let mut result_calls = None;
    let base = serve_with(|base| {
        let (cancel, _) = sequence(vec![(
            StatusCode::ACCEPTED,
            vec![
                ("location", format!("{base}/results/1")),
                ("retry-after", "0".into()),
            ],
            None,
        )]);
        let (results, rc) = sequence(vec![
            (StatusCode::ACCEPTED, vec![], None),
            (
                StatusCode::ACCEPTED,
                vec![("retry-after", "0".into())],
                None,
            ),
            (StatusCode::OK, vec![], Some(json!({"status": "Canceled"}))),
        ]);
        result_calls = Some(rc);
        let (delete, _) = sequence(vec![(
            StatusCode::ACCEPTED,
            vec![("location", format!("{base}/results/2"))],
            None,
        )]);
        let (results2, _) = sequence(vec![
            (StatusCode::ACCEPTED, vec![], None),
            (StatusCode::NO_CONTENT, vec![], None),
        ]);
        Router::new()
            .route("/jobs/j/cancel", cancel)
            .route("/jobs/j", delete)
            .route("/results/1", results)
            .route("/results/2", results2)
    })
    .await;
    let arm = arm_client(&base);
    let token = CancellationToken::new();
    let got = arm
        .post_and_wait("/jobs/j/cancel", None, &token)
        .await
        .unwrap();
    assert_eq!(got, Some(json!({"status": "Canceled"})));
    assert_eq!(result_calls.unwrap().load(Ordering::SeqCst), 3);
    arm.delete_and_wait("/jobs/j", &[], &token).await.unwrap();
    assert_eq!(
        arm.wait_location(&format!("{base}/results/2"), &token)
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn delete_with_async_operation_and_already_gone() {
    let mut delete_calls = None;
    let base = serve_with(|base| {
        let (delete, dc) = sequence(vec![(
            StatusCode::ACCEPTED,
            vec![
                ("azure-asyncoperation", format!("{base}/ops/d")),
                ("location", format!("{base}/results/d")),
            ],
            None,
        )]);
        delete_calls = Some(dc);
        let (ops, _) = sequence(vec![
            (StatusCode::OK, vec![], op("InProgress")),
            (StatusCode::OK, vec![], op("Succeeded")),
        ]);
        let (gone, _) = sequence(vec![(
            StatusCode::NOT_FOUND,
            vec![],
            Some(json!({"error": {"code": "ResourceNotFound", "message": "no"}})),
        )]);
        let (no_content, _) = sequence(vec![(StatusCode::NO_CONTENT, vec![], None)]);
        Router::new()
            .route(C, delete)
            .route("/ops/d", ops)
            .route("/gone", gone)
            .route("/empty", no_content)
    })
    .await;
    let arm = arm_client(&base);
    let token = CancellationToken::new();
    arm.delete_and_wait(C, &[("underlyingResourceAction", "Delete")], &token)
        .await
        .unwrap();
    assert_eq!(delete_calls.unwrap().load(Ordering::SeqCst), 1);
    arm.delete_and_wait("/gone", &[], &token).await.unwrap();
    arm.delete_and_wait("/empty", &[], &token).await.unwrap();
}

#[tokio::test]
async fn synchronous_put_waits_for_provisioning_state() {
    let base = serve_with(|_| {
        let (put, _) = sequence_on(WRITES, vec![(StatusCode::OK, vec![], resource("Updating"))]);
        let (get, _) = sequence_on(MethodFilter::GET, vec![
            (StatusCode::OK, vec![], resource("Updating")),
            (StatusCode::OK, vec![], resource("Succeeded")),
        ]);
        let (failing_put, _) = sequence_on(WRITES, vec![(StatusCode::OK, vec![], resource("Updating"))]);
        let (failing_get, _) = sequence_on(MethodFilter::GET, vec![(
            StatusCode::OK,
            vec![],
            Some(json!({"properties": {"provisioningState": "Failed",
                "provisioningErrors": [{"error": {"code": "SubnetFull", "message": "no addresses"}}]}})),
        )]);
        Router::new().route("/r", get.merge(put)).route("/f", failing_get.merge(failing_put))
    })
    .await;
    let arm = arm_client(&base);
    let token = CancellationToken::new();
    let got = arm.patch_and_wait("/r", &json!({}), &token).await.unwrap();
    assert_eq!(got, resource("Succeeded").unwrap());
    let err = arm
        .put_and_wait("/f", &json!({}), &token)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("SubnetFull", "no addresses")
    );
}

#[tokio::test]
async fn waits_stop_promptly_when_cancelled_or_dropped() {
    let base = serve_with(|base| {
        let (put, _) = sequence(vec![(
            StatusCode::CREATED,
            vec![
                ("azure-asyncoperation", format!("{base}/ops/forever")),
                ("retry-after", "1".into()),
            ],
            resource("Creating"),
        )]);
        let (ops, _) = sequence(vec![(
            StatusCode::OK,
            vec![("retry-after", "1".into())],
            op("InProgress"),
        )]);
        Router::new().route(C, put).route("/ops/forever", ops)
    })
    .await;
    let arm = arm_client(&base);
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        t.cancel();
    });
    let started = Instant::now();
    let err = arm.put_and_wait(C, &json!({}), &token).await.unwrap_err();
    assert!(err.is_canceled(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Dropping the future (as Terraform's Stop/timeouts do) also ends the wait.
    let started = Instant::now();
    let r = tokio::time::timeout(
        Duration::from_millis(150),
        arm.put_and_wait(C, &json!({}), &CancellationToken::new()),
    )
    .await;
    assert!(r.is_err());
    assert!(started.elapsed() < Duration::from_secs(3));
}
