//! MLflow REST endpoints and the simulated Clara metrics (which depend on the job's inputs).

mod common;
mod training_common;

use std::time::Duration;

use common::Emu;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use training_common::*;

/// Runs a job to completion and returns its MLflow run.
async fn run_job(emu: &Emu, token: &str, name: &str, body: Value) -> Value {
    let put = put_job(emu, token, name, body).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    let (seen, _) = wait_job(emu, token, name, Duration::from_millis(20)).await;
    assert_eq!(seen.last().map(String::as_str), Some("Completed"), "{name}");
    let run = mlflow(emu, token, &format!("runs/get?run_id={name}")).await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    run.body
}

fn finetune(emu: &Emu, epochs: u32) -> Value {
    let mut b = job_body(
        emu,
        "cd $MMAR_ROOT && ./commands/train_finetune.sh --epochs ${{inputs.epochs}}",
    );
    b["properties"]["inputs"]["epochs"] =
        json!({"jobInputType": "literal", "value": epochs.to_string()});
    b
}

fn infer(emu: &Emu, model_uri: Option<&str>) -> Value {
    let mut b = job_body(emu, "cd $MMAR_ROOT && ./commands/infer.sh");
    if let Some(uri) = model_uri {
        b["properties"]["inputs"]["model"] = json!({"jobInputType": "custom_model", "uri": uri});
    }
    b
}

#[tokio::test]
async fn clara_metrics_depend_on_inputs() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;

    // baseline: the pre-trained MMAR model
    let base = run_job(&emu, &token, "infer-base", infer(&emu, None)).await;
    assert_eq!(run_metric(&base, "average_precision"), Some(0.8333));
    assert_eq!(run_metric(&base, "num_studies"), Some(3.0));

    // two fine-tunes with different epochs
    let ft2 = run_job(&emu, &token, "ft-2", finetune(&emu, 2)).await;
    let ft8 = run_job(&emu, &token, "ft-8", finetune(&emu, 8)).await;
    let params: Vec<(String, String)> = ft8["run"]["data"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap().into(),
                p["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        params.contains(&("epochs".into(), "8".into())),
        "{params:?}"
    );
    assert!(
        params.contains(&("learning_rate".into(), "0.0001".into())),
        "{params:?}"
    );
    assert!(run_metric(&ft8, "best_val_auc").unwrap() > run_metric(&ft2, "best_val_auc").unwrap());
    let hist = mlflow(
        &emu,
        &token,
        "metrics/get-history?run_id=ft-8&metric_key=train_loss",
    )
    .await;
    let steps: Vec<i64> = hist.body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, (1..=8).collect::<Vec<_>>());
    let losses: Vec<f64> = hist.body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert!(losses[0] > losses[7]);

    // inference with each fine-tuned model (job-output and datastore-path references)
    let inf2 = run_job(
        &emu,
        &token,
        "infer-2",
        infer(&emu, Some("azureml://jobs/ft-2/outputs/model")),
    )
    .await;
    let ft8_out = get_job(&emu, &token, "ft-8").await.body["properties"]["outputs"]["model"]["uri"]
        .as_str()
        .unwrap()
        .to_string();
    let inf8 = run_job(&emu, &token, "infer-8", infer(&emu, Some(&ft8_out))).await;
    let (ap2, ap8) = (
        run_metric(&inf2, "average_precision").unwrap(),
        run_metric(&inf8, "average_precision").unwrap(),
    );
    assert!(0.8333 < ap2 && ap2 < ap8 && ap8 <= 1.0, "{ap2} {ap8}");
    assert!(ap8 > 0.95, "{ap8}");

    // deterministic: the same inputs give the same number
    let again = run_job(
        &emu,
        &token,
        "infer-8b",
        infer(&emu, Some("azureml://jobs/ft-8/outputs/model")),
    )
    .await;
    assert_eq!(run_metric(&again, "average_precision"), Some(ap8));

    // export keeps the lineage; its size is reported
    let mut export = job_body(&emu, "./commands/export.sh");
    export["properties"]["inputs"]["model"] =
        json!({"jobInputType": "custom_model", "uri": "azureml://jobs/ft-8/outputs/model"});
    let exp = run_job(&emu, &token, "export-ft8", export).await;
    assert_eq!(run_metric(&exp, "export_size_mb"), Some(45.07));
    let via_export = run_job(
        &emu,
        &token,
        "infer-exp",
        infer(&emu, Some("azureml://jobs/export-ft8/outputs/model")),
    )
    .await;
    assert_eq!(run_metric(&via_export, "average_precision"), Some(ap8));

    // a non-Clara job has no metrics
    let plain = run_job(&emu, &token, "plain", job_body(&emu, "python train.py")).await;
    assert!(
        plain["run"]["data"]["metrics"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn run_info_and_history_while_running() {
    let mut config = jobs_config();
    config.jobs.time_scale = 0.002; // 500 simulated s → 1 s
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let mut body = finetune(&emu, 5);
    body["properties"]["tags"]["clara-emulator/duration-s"] = json!("500");
    put_job(&emu, &token, "ft", body).await;

    let run = mlflow(&emu, &token, "runs/get?run_id=ft").await;
    assert_eq!(run.status, StatusCode::OK, "{}", run.body);
    let info = &run.body["run"]["info"];
    assert_eq!(
        (info["run_id"].as_str(), info["run_uuid"].as_str()),
        (Some("ft"), Some("ft"))
    );
    assert_eq!(info["status"], "SCHEDULED");
    assert_eq!(info["run_name"], "clara fine-tune");
    assert!(info.get("start_time").is_none() && info.get("end_time").is_none());
    let tags = run.body["run"]["data"]["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .any(|t| t["key"] == "team" && t["value"] == "clara")
    );
    assert!(tags.iter().any(|t| t["key"] == "clara-emulator.simulated"));

    // wait until some but not all epochs are logged
    let mut partial = 0;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let h = mlflow(
            &emu,
            &token,
            "metrics/get-history?run_id=ft&metric_key=val_acc",
        )
        .await;
        let n = h.body["metrics"].as_array().unwrap().len();
        if (1..5).contains(&n) {
            partial = n;
            let run = mlflow(&emu, &token, "runs/get?run_id=ft").await;
            assert_eq!(run.body["run"]["info"]["status"], "RUNNING");
            assert!(run.body["run"]["info"]["start_time"].is_u64());
            assert!(run_metric(&run.body, "best_val_auc").is_none());
            break;
        }
    }
    assert!(partial > 0, "never saw a partial history");
    let (seen, _) = wait_job(&emu, &token, "ft", Duration::from_millis(50)).await;
    assert_eq!(seen.last().map(String::as_str), Some("Completed"));
    let run = mlflow(&emu, &token, "runs/get?run_id=ft").await;
    assert_eq!(run.body["run"]["info"]["status"], "FINISHED");
    assert!(run_metric(&run.body, "best_val_auc").is_some());

    // paging
    let page = mlflow(
        &emu,
        &token,
        "metrics/get-history?run_id=ft&metric_key=val_acc&max_results=2",
    )
    .await;
    assert_eq!(page.body["metrics"].as_array().unwrap().len(), 2);
    let next = page.body["next_page_token"].as_str().unwrap().to_string();
    let rest = mlflow(
        &emu,
        &token,
        &format!(
            "metrics/get-history?run_id=ft&metric_key=val_acc&max_results=10&page_token={next}"
        ),
    )
    .await;
    assert_eq!(rest.body["metrics"].as_array().unwrap().len(), 3);
    assert!(rest.body.get("next_page_token").is_none());
    let none = mlflow(
        &emu,
        &token,
        "metrics/get-history?run_id=ft&metric_key=nope",
    )
    .await;
    assert_eq!(none.body["metrics"], json!([]));

    let by_op = &stats(&emu).await["by_op"];
    assert!(by_op["mlflow.run.get"].as_u64().unwrap() >= 3);
    assert!(by_op["mlflow.metric.history"].as_u64().unwrap() >= 3);
}

#[tokio::test]
async fn mlflow_auth_and_errors() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    put_job(&emu, &token, "j", job_body(&emu, "./commands/infer.sh")).await;
    let base = mlflow_base(&emu, &token).await;
    assert!(base.contains("/mlflow/v1.0/subscriptions/"), "{base}");

    // no api-version needed; v2.0 works too
    let v2 = base.replace("/mlflow/v1.0/", "/mlflow/v2.0/");
    let r = emu
        .send(
            &token,
            Method::GET,
            &format!("{v2}/api/2.0/mlflow/runs/get?run_id=j"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // a token requested for the ml.azure.com scope works as well
    let ml_token = emu
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &emu.config.client_id),
            ("client_secret", &emu.config.client_secret),
            ("scope", "https://ml.azure.com/.default"),
        ])
        .await;
    let ml_token = ml_token.body["access_token"].as_str().unwrap().to_string();
    let r = emu
        .send(
            &ml_token,
            Method::GET,
            &format!("{base}/api/2.0/mlflow/runs/get?run_uuid=j"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let r = emu
        .send(
            "bogus",
            Method::GET,
            &format!("{base}/api/2.0/mlflow/runs/get?run_id=j"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = mlflow(&emu, &token, "runs/get?run_id=nope").await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::NOT_FOUND, Some("RESOURCE_DOES_NOT_EXIST"))
    );
    let r = mlflow(&emu, &token, "runs/get").await;
    assert_eq!(
        (r.status, r.body["error_code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_PARAMETER_VALUE"))
    );
    let r = mlflow(&emu, &token, "metrics/get-history?run_id=j").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let other_ws = base.replace("/workspaces/clara-ws", "/workspaces/nope");
    let r = emu
        .send(
            &token,
            Method::GET,
            &format!("{other_ws}/api/2.0/mlflow/runs/get?run_id=j"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // faults apply to MLflow routes too
    emu.set_faults(json!({"next": [{"kind": "503", "op": "mlflow.run.get"}]}))
        .await;
    let r = mlflow(&emu, &token, "runs/get?run_id=j").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        mlflow(&emu, &token, "runs/get?run_id=j").await.status,
        StatusCode::OK
    );
}
