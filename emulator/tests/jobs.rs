//! Command jobs: lifecycle polling, mutability, references, cancel, delete, failure switches,
//! simulated durations and timeouts, persistence.

mod common;
mod training_common;

use std::time::Duration;

use clara_emulator::{Config, JobFailSwitches, JobsConfig, PhaseDurations};
use common::Emu;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use training_common::*;

const FINETUNE: &str = "cd $MMAR_ROOT && ./commands/train_finetune.sh --epochs 4";

/// `GET {history}/history/v1.0{WS}/runs/{run}/details` (the route azure-ai-ml's
/// `get_run_details` calls), with the history base from the workspace's discovery document.
async fn run_details(emu: &Emu, token: &str, run: &str) -> Value {
    let ws = emu.arm(token, Method::GET, &emu.ws_path(), None).await;
    let discovery = ws.body["properties"]["discoveryUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let urls = emu.send(token, Method::GET, &discovery, None).await;
    let history = urls.body["history"].as_str().unwrap().to_string();
    let ws_id = ws.body["id"].as_str().unwrap();
    let r = emu
        .send(
            token,
            Method::GET,
            &format!("{history}/history/v1.0{ws_id}/runs/{run}/details"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

#[tokio::test]
async fn lifecycle_polls_through_every_status() {
    let mut config = jobs_config();
    config.jobs.phase_ms = PhaseDurations::all(150);
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;

    let put = put_job(&emu, &token, "ft-1", job_body(&emu, FINETUNE)).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    let b = &put.body;
    assert_eq!(b["name"], "ft-1");
    assert_eq!(
        b["type"],
        "Microsoft.MachineLearningServices/workspaces/jobs"
    );
    assert!(b["id"].as_str().unwrap().ends_with("/jobs/ft-1"));
    assert_eq!(b["properties"]["status"], "NotStarted");
    assert_eq!(b["properties"]["jobType"], "Command");
    assert_eq!(b["properties"]["experimentName"], "clara");
    assert_eq!(b["properties"]["command"], FINETUNE);
    // Studio/Tracking are there from the start; user services get endpoints only when Running
    let studio = b["properties"]["services"]["Studio"]["endpoint"]
        .as_str()
        .unwrap();
    assert!(
        studio.starts_with("https://ml.azure.com/runs/ft-1?wsid=/subscriptions/"),
        "{studio}"
    );
    assert!(
        b["properties"]["services"]["Tracking"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("azureml://")
    );
    assert!(
        b["properties"]["services"]["jupyter"]
            .get("endpoint")
            .is_none()
    );
    assert!(b["properties"]["outputs"]["model"].get("uri").is_none());

    let mut seen: Vec<String> = Vec::new();
    let mut running_body = Value::Null;
    let final_body = loop {
        let r = get_job(&emu, &token, "ft-1").await;
        let s = status(&r);
        if s == "Running" && running_body.is_null() {
            running_body = r.body.clone();
        }
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if s == "Completed" {
            break r.body;
        }
        assert!(seen.len() < 10, "{seen:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        seen,
        [
            "NotStarted",
            "Starting",
            "Preparing",
            "Queued",
            "Running",
            "Finalizing",
            "Completed"
        ]
    );
    let svc = &running_body["properties"]["services"];
    assert_eq!(
        svc["jupyter"]["endpoint"],
        "https://ft-1.jupyter.eastus.emulator.azureml.local/lab"
    );
    assert_eq!(svc["jupyter"]["status"], "Running");
    assert_eq!(
        svc["ssh"]["endpoint"],
        "ssh://azureuser@ft-1.ssh.eastus.emulator.azureml.local:50000"
    );
    assert!(
        final_body["properties"]["services"]["jupyter"]
            .get("endpoint")
            .is_none()
    );
    assert_eq!(
        final_body["properties"]["outputs"]["model"]["uri"],
        "azureml://datastores/workspaceblobstore/paths/azureml/ft-1/model/"
    );
    assert!(final_body["properties"].get("error").is_none());

    // list and stats
    let list = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/jobs", emu.ws_path()),
            None,
        )
        .await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);
    let st = stats(&emu).await;
    assert_eq!(st["by_op"]["job.create"], 1);
    assert!(st["by_op"]["job.get"].as_u64().unwrap() >= 7);
    assert_eq!(st["by_op"]["job.list"], 1);
}

#[tokio::test]
async fn only_metadata_of_an_existing_job_can_change() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let body = job_body(&emu, FINETUNE);
    assert_eq!(
        put_job(&emu, &token, "j", body.clone()).await.status,
        StatusCode::CREATED
    );

    let same = put_job(&emu, &token, "j", body.clone()).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);
    // ARM ids compare case-insensitively
    let mut lower = body.clone();
    lower["properties"]["computeId"] = json!(compute_id(&emu).to_ascii_lowercase());
    assert_eq!(
        put_job(&emu, &token, "j", lower).await.status,
        StatusCode::OK
    );

    for (field, value) in [
        ("command", json!("./commands/train_finetune.sh --epochs 9")),
        ("environmentVariables", json!({"MMAR_ROOT": "/other"})),
        ("experimentName", json!("other")),
    ] {
        let mut changed = body.clone();
        changed["properties"][field] = value;
        let r = put_job(&emu, &token, "j", changed).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{field}: {}", r.body);
        let (code, target) = r.error();
        assert_eq!(code, "PropertyChangeNotAllowed");
        assert!(target.unwrap().starts_with(&format!("properties.{field}")));
    }

    let mut meta = body.clone();
    meta["properties"]["tags"] = json!({"stage": "reviewed"});
    meta["properties"]["description"] = json!("updated");
    meta["properties"]["displayName"] = json!("renamed");
    meta["properties"]["isArchived"] = json!(true);
    let r = put_job(&emu, &token, "j", meta).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["properties"]["tags"], json!({"stage": "reviewed"}));
    assert_eq!(r.body["properties"]["description"], "updated");
    assert_eq!(r.body["properties"]["displayName"], "renamed");
    // archived jobs leave the default list
    let jobs = format!("{}/jobs", emu.ws_path());
    assert_eq!(
        emu.arm(&token, Method::GET, &jobs, None).await.body["value"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    let all = emu
        .arm(
            &token,
            Method::GET,
            &format!("{jobs}?listViewType=All"),
            None,
        )
        .await;
    assert_eq!(all.body["value"].as_array().unwrap().len(), 1);

    let by_op = &stats(&emu).await["by_op"];
    assert_eq!(by_op["job.create"], 1);
    assert!(by_op["job.update"].as_u64().unwrap() >= 6, "{by_op}");
}

#[tokio::test]
async fn references_and_schema_are_checked() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let base = job_body(&emu, FINETUNE);
    let ws = emu.ws_path();
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "computeId",
            json!(format!("{ws}/computes/nope")),
            "properties.computeId",
        ),
        ("computeId", json!("azureml:nope"), "properties.computeId"),
        (
            "computeId",
            json!(format!(
                "/subscriptions/{}/resourceGroups/other/providers/Microsoft.MachineLearningServices/workspaces/x/computes/gpu",
                emu.sub()
            )),
            "properties.computeId",
        ),
        (
            "environmentId",
            json!(format!("{ws}/environments/clara/versions/7")),
            "properties.environmentId",
        ),
        (
            "environmentId",
            json!("azureml:missing:1"),
            "properties.environmentId",
        ),
        (
            "environmentId",
            json!("not a reference"),
            "properties.environmentId",
        ),
        (
            "codeId",
            json!(format!("{ws}/codes/scripts/versions/1")),
            "properties.codeId",
        ),
        (
            "inputs",
            json!({"model": {"jobInputType": "custom_model", "uri": "azureml://jobs/ghost/outputs/model"}}),
            "properties.inputs.model.uri",
        ),
        ("jobType", json!("Sweep"), "properties.jobType"),
        ("status", json!("Running"), "properties.status"),
        ("bogus", json!(1), "properties.bogus"),
        ("command", json!(""), "properties.command"),
        (
            "limits",
            json!({"jobLimitsType": "Command", "timeout": "soon"}),
            "properties.limits.timeout",
        ),
    ];
    for (field, value, target) in cases {
        let mut b = base.clone();
        b["properties"][field] = value.clone();
        let r = put_job(&emu, &token, "bad", b).await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{field}={value}: {}",
            r.body
        );
        assert_eq!(
            r.error().1.as_deref(),
            Some(target),
            "{field}={value}: {}",
            r.body
        );
        if target.contains("Id") {
            let field_name = target.trim_start_matches("properties.");
            assert!(
                r.body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(field_name),
                "{}",
                r.body
            );
        }
    }
    assert_eq!(
        get_job(&emu, &token, "bad").await.status,
        StatusCode::NOT_FOUND
    );

    // accepted reference forms
    for (i, env) in [
        json!("azureml:clara:1"),
        json!("azureml:clara@latest"),
        json!("azureml://registries/azureml/environments/acpt-pytorch-2.2-cuda12.1/versions/10"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = base.clone();
        b["properties"]["environmentId"] = env.clone();
        b["properties"]["computeId"] = json!("azureml:gpu");
        let r = put_job(&emu, &token, &format!("ok-{i}"), b).await;
        assert_eq!(r.status, StatusCode::CREATED, "{env}: {}", r.body);
    }
}

#[tokio::test]
async fn cancel_goes_through_cancel_requested() {
    let mut config = jobs_config();
    config.jobs.cancel_ms = 300;
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let mut body = job_body(&emu, FINETUNE);
    body["properties"]["tags"]["clara-emulator/duration-s"] = json!("600");
    assert_eq!(
        put_job(&emu, &token, "long", body).await.status,
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(status(&get_job(&emu, &token, "long").await), "Running");

    let cancel = emu
        .arm(
            &token,
            Method::POST,
            &format!("{}/cancel", job_path(&emu, "long")),
            None,
        )
        .await;
    assert_eq!(cancel.status, StatusCode::ACCEPTED, "{}", cancel.body);
    let location = cancel.header("location").unwrap();
    assert!(
        location.contains("/mfeOperationResults/") && location.contains("api-version="),
        "{location}"
    );
    assert_eq!(cancel.header("retry-after").as_deref(), Some("1"));
    assert_eq!(
        status(&get_job(&emu, &token, "long").await),
        "CancelRequested"
    );
    // a second cancel returns the same operation
    let again = emu
        .arm(
            &token,
            Method::POST,
            &format!("{}/cancel", job_path(&emu, "long")),
            None,
        )
        .await;
    assert_eq!(
        (again.status, again.header("location")),
        (StatusCode::ACCEPTED, Some(location.clone()))
    );

    let mut codes = Vec::new();
    loop {
        let r = emu.send(&token, Method::GET, &location, None).await;
        codes.push(r.status.as_u16());
        if r.status != StatusCode::ACCEPTED {
            break;
        }
        assert!(r.header("location").is_some());
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(codes.first(), Some(&202));
    assert_eq!(codes.last(), Some(&200));
    let job = get_job(&emu, &token, "long").await;
    assert_eq!(status(&job), "Canceled");
    assert!(
        job.body["properties"]["outputs"]["model"]
            .get("uri")
            .is_none()
    );
    // canceling a finished job is a no-op 200; an unknown job is 404
    let done = emu
        .arm(
            &token,
            Method::POST,
            &format!("{}/cancel", job_path(&emu, "long")),
            None,
        )
        .await;
    assert_eq!(
        (done.status, done.header("location")),
        (StatusCode::OK, None)
    );
    let unknown = emu
        .arm(
            &token,
            Method::POST,
            &format!("{}/cancel", job_path(&emu, "other")),
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let run = mlflow(&emu, &token, "runs/get?run_id=long").await;
    assert_eq!(run.body["run"]["info"]["status"], "KILLED");

    let by_op = &stats(&emu).await["by_op"];
    assert_eq!(by_op["job.cancel"], 4);
    assert!(by_op["job.cancel.poll"].as_u64().unwrap() >= 2, "{by_op}");
}

#[tokio::test]
async fn delete_is_a_location_lro() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    assert_eq!(
        put_job(&emu, &token, "gone", job_body(&emu, "echo hi"))
            .await
            .status,
        StatusCode::CREATED
    );
    let del = emu
        .arm(&token, Method::DELETE, &job_path(&emu, "gone"), None)
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    assert_eq!(
        del.header("x-ms-async-operation-timeout").as_deref(),
        Some("PT1H")
    );
    let location = del.header("location").unwrap();
    // a PUT while the delete runs is a conflict
    let busy = put_job(&emu, &token, "gone", job_body(&emu, "echo hi")).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    let first = emu.send(&token, Method::GET, &location, None).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let mut last = first.status;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(40)).await;
        last = emu.send(&token, Method::GET, &location, None).await.status;
        if last != StatusCode::ACCEPTED {
            break;
        }
    }
    assert_eq!(last, StatusCode::NO_CONTENT);
    assert_eq!(
        get_job(&emu, &token, "gone").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        emu.arm(&token, Method::DELETE, &job_path(&emu, "gone"), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    // the name can be reused
    assert_eq!(
        put_job(&emu, &token, "gone", job_body(&emu, "echo again"))
            .await
            .status,
        StatusCode::CREATED
    );
    let by_op = &stats(&emu).await["by_op"];
    assert_eq!(by_op["job.delete"], 2);
    assert!(by_op["job.delete.poll"].as_u64().unwrap() >= 2);
}

#[tokio::test]
async fn failure_switches() {
    let mut config = jobs_config();
    config.jobs.fail_when_command_contains = Some("--crash".into());
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;

    // per job: tag with the message
    let mut body = job_body(&emu, FINETUNE);
    body["properties"]["tags"]["clara-emulator/fail"] = json!("CUDA out of memory");
    put_job(&emu, &token, "oom", body).await;
    // config switch: command contains
    put_job(
        &emu,
        &token,
        "crash",
        job_body(&emu, "./commands/infer.sh --crash"),
    )
    .await;
    // admin switch: by name (replaces the config's switches)
    let r = emu
        .admin(
            Method::PUT,
            "/_emulator/jobs",
            Some(json!({"fail_job_names": ["named"], "fail_message": "node lost"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    put_job(&emu, &token, "named", job_body(&emu, FINETUNE)).await;
    put_job(
        &emu,
        &token,
        "fine",
        job_body(&emu, "./commands/infer.sh --crash"),
    )
    .await;

    for (name, expected) in [
        ("oom", Some("CUDA out of memory")),
        ("crash", Some("--crash")),
        ("named", Some("node lost")),
        ("fine", None),
    ] {
        let (seen, last) = wait_job(&emu, &token, name, Duration::from_millis(20)).await;
        match expected {
            Some(msg) => {
                assert_eq!(seen.last().map(String::as_str), Some("Failed"), "{name}");
                // JobBase has no error member; run history keeps the reason
                assert!(last["properties"].get("error").is_none(), "{last}");
                let details = run_details(&emu, &token, name).await;
                assert_eq!(details["status"], "Failed");
                let err = &details["error"]["error"];
                assert_eq!(err["code"], "UserError");
                assert!(
                    err["message"].as_str().unwrap().contains(msg),
                    "{name}: {err}"
                );
                let run = mlflow(&emu, &token, &format!("runs/get?run_id={name}")).await;
                assert_eq!(run.body["run"]["info"]["status"], "FAILED");
                let tags = run.body["run"]["data"]["tags"].as_array().unwrap();
                let tag = tags
                    .iter()
                    .find(|t| t["key"] == "azureml.error.message")
                    .unwrap();
                assert!(tag["value"].as_str().unwrap().contains(msg));
                // no final metrics for a failed job
                assert!(run_metric(&run.body, "best_val_auc").is_none());
                assert!(last["properties"]["outputs"]["model"].get("uri").is_none());
            }
            None => assert_eq!(seen.last().map(String::as_str), Some("Completed"), "{name}"),
        }
    }
    // an inference on the output of a failed job fails too
    let mut infer = job_body(&emu, "./commands/infer.sh");
    infer["properties"]["inputs"]["model"] =
        json!({"jobInputType": "custom_model", "uri": "azureml://jobs/oom/outputs/model"});
    put_job(&emu, &token, "downstream", infer).await;
    let (_, last) = wait_job(&emu, &token, "downstream", Duration::from_millis(20)).await;
    assert_eq!(last["properties"]["status"], "Failed");
    assert!(
        run_details(&emu, &token, "downstream").await["error"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("oom")
    );

    let r = emu
        .admin(Method::PUT, "/_emulator/jobs", Some(Value::Null))
        .await;
    assert_eq!(r.body["fail_when_command_contains"], "--crash");
    let state = emu.admin(Method::GET, "/_emulator/jobs", None).await;
    assert_eq!(state.body["switches_source"], "config");
    assert_eq!(state.body["jobs"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn simulated_ten_minute_job_in_forty_polls() {
    let config = Config {
        jobs: JobsConfig {
            phase_ms: PhaseDurations::all(50),
            time_scale: 0.002, // 600 simulated s → 1.2 s
            ..JobsConfig::default()
        },
        ..jobs_config()
    };
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let mut body = job_body(&emu, "./commands/train_finetune.sh --epochs 10");
    body["properties"]["environmentVariables"]["CLARA_EMULATOR_DURATION_S"] = json!("600");
    let started = std::time::Instant::now();
    put_job(&emu, &token, "ten-min", body).await;
    let (seen, _) = wait_job(&emu, &token, "ten-min", Duration::from_millis(100)).await;
    let wall = started.elapsed();
    assert_eq!(seen.last().map(String::as_str), Some("Completed"));
    assert!(
        wall >= Duration::from_millis(1400) && wall < Duration::from_secs(10),
        "{wall:?}"
    );
    let gets = stats(&emu).await["by_op"]["job.get"].as_u64().unwrap();
    assert!(gets <= 40, "{gets} polls");

    // simulated timestamps: the run lasted 600 s (+ finalizing)
    let run = mlflow(&emu, &token, "runs/get?run_id=ten-min").await;
    let info = &run.body["run"]["info"];
    let span = info["end_time"].as_u64().unwrap() - info["start_time"].as_u64().unwrap();
    assert!((600_000..601_000).contains(&span), "{span}");
    let hist = mlflow(
        &emu,
        &token,
        "metrics/get-history?run_id=ten-min&metric_key=val_auc",
    )
    .await;
    let ts: Vec<u64> = hist.body["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["timestamp"].as_u64().unwrap())
        .collect();
    assert_eq!(ts.len(), 10);
    assert_eq!(ts[9] - ts[0], 540_000, "epochs are 60 simulated s apart");
}

#[tokio::test]
async fn timeout_cancels_the_job() {
    let mut config = jobs_config();
    config.jobs.time_scale = 0.001;
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let mut body = job_body(&emu, FINETUNE);
    body["properties"]["tags"]["clara-emulator/duration-s"] = json!("3600");
    body["properties"]["limits"] = json!({"jobLimitsType": "Command", "timeout": "PT5M"});
    put_job(&emu, &token, "slow", body).await;
    let (seen, last) = wait_job(&emu, &token, "slow", Duration::from_millis(20)).await;
    assert_eq!(seen.last().map(String::as_str), Some("Canceled"));
    assert!(last["properties"].get("error").is_none());
    assert_eq!(last["properties"]["limits"]["timeout"], "PT5M");
    let details = run_details(&emu, &token, "slow").await;
    assert_eq!(details["error"]["error"]["code"], "JobTimeout");
    // bad duration values are rejected
    let mut bad = job_body(&emu, FINETUNE);
    bad["properties"]["tags"]["clara-emulator/duration-s"] = json!("ten");
    let r = put_job(&emu, &token, "bad", bad).await;
    assert_eq!(
        r.error().1.as_deref(),
        Some("properties.tags['clara-emulator/duration-s']")
    );
}

#[tokio::test]
async fn admin_advance_finishes_jobs_now() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let mut body = job_body(&emu, FINETUNE);
    body["properties"]["tags"]["clara-emulator/duration-s"] = json!("86400");
    body["properties"]["limits"] = json!({"jobLimitsType": "Command", "timeout": "P2D"});
    put_job(&emu, &token, "day", body).await;
    let r = emu
        .admin(Method::POST, "/_emulator/jobs/advance", None)
        .await;
    assert_eq!(r.body["advanced"], json!(["day"]));
    assert_eq!(status(&get_job(&emu, &token, "day").await), "Completed");
}

#[tokio::test]
async fn jobs_survive_a_restart() {
    let mut config = jobs_config();
    config.jobs.time_scale = 0.001;
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let mut body = job_body(&emu, FINETUNE);
    body["properties"]["tags"]["clara-emulator/duration-s"] = json!("1500"); // 1.5 s wall
    put_job(&emu, &token, "persist", body).await;
    put_job(&emu, &token, "doomed", job_body(&emu, FINETUNE)).await;
    let del = emu
        .arm(&token, Method::DELETE, &job_path(&emu, "doomed"), None)
        .await;
    let location = del.header("location").unwrap();
    let before = get_job(&emu, &token, "persist").await.body;

    let (dir, config) = emu.stop().await;
    let emu = Emu::start_in(dir, config).await;

    let after = get_job(&emu, &token, "persist").await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(
        after.body["properties"]["command"],
        before["properties"]["command"]
    );
    assert_eq!(after.body["systemData"], before["systemData"]);
    let env = emu
        .arm(&token, Method::GET, &env_path(&emu, "clara", "1"), None)
        .await;
    assert_eq!(env.status, StatusCode::OK);
    // the timeline continues where it was
    let (seen, _) = wait_job(&emu, &token, "persist", Duration::from_millis(50)).await;
    assert_eq!(seen.last().map(String::as_str), Some("Completed"));
    // the delete finished across the restart (the Location URL has the old port)
    let path = location
        .split_once("://")
        .unwrap()
        .1
        .split_once('/')
        .unwrap()
        .1;
    let r = emu
        .arm(&token, Method::GET, &format!("/{path}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        get_job(&emu, &token, "doomed").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn config_rejects_bad_job_settings() {
    let cfg: Result<Config, _> = serde_json::from_value(
        json!({"jobs": {"phase_ms": {"Queued": 5}, "time_scale": 0.5, "fail_job_names": ["x"]}}),
    );
    let cfg = cfg.unwrap();
    assert_eq!(cfg.jobs.phase_ms.get("Queued"), 5);
    assert!(serde_json::from_value::<Config>(json!({"jobs": {"nope": 1}})).is_err());
    let bad = Config {
        jobs: JobsConfig {
            time_scale: -1.0,
            ..JobsConfig::default()
        },
        ..Config::default()
    };
    assert!(bad.validate().is_err());
    let _ = JobFailSwitches::default();
}

#[tokio::test]
async fn every_job_carries_what_azure_adds() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let mut body = job_body(&emu, FINETUNE);
    body["properties"]["limits"] = json!({"jobLimitsType": "Command", "timeout": "PT14400S"});
    body["properties"]["properties"] = json!({"mine": "kept"});
    body["properties"]["resources"] = json!({"instanceCount": 1});
    let put = put_job(&emu, &token, "sys", body).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    let p = &put.body["properties"];
    // the system output, from submission on
    assert_eq!(
        p["outputs"]["default"],
        json!({"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
               "uri": "azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.sys"})
    );
    assert_eq!(p["limits"]["timeout"], "PT4H", "canonical ISO 8601");
    assert_eq!(p["limits"]["jobLimitsType"], "Command");
    assert_eq!(p["resources"]["shmSize"], "2g");
    assert_eq!(p["queueSettings"]["jobTier"], "Null");
    assert_eq!(p["properties"]["_azureml.ComputeTargetType"], "amlctrain");
    assert_eq!(p["properties"]["_azureml.ClusterName"], "gpu");
    assert_eq!(p["properties"]["mine"], "kept");
    assert!(p["properties"].get("StartTimeUtc").is_none());
    assert!(p.get("error").is_none());

    // a client that sends back what it read changes nothing
    let mut back = json!({"properties": p.clone()});
    for k in ["status", "services"] {
        back["properties"].as_object_mut().unwrap().remove(k);
    }
    let again = put_job(&emu, &token, "sys", back).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);

    emu.admin(Method::POST, "/_emulator/jobs/advance", None)
        .await;
    let done = get_job(&emu, &token, "sys").await;
    let props = &done.body["properties"]["properties"];
    for k in [
        "ProcessInfoFile",
        "ProcessStatusFile",
        "StartTimeUtc",
        "EndTimeUtc",
    ] {
        assert!(props[k].is_string(), "{k}: {props}");
    }
    assert_eq!(props["StartTimeUtc"].as_str().unwrap().len(), 19, "{props}");
    let details = run_details(&emu, &token, "sys").await;
    assert_eq!(details["status"], "Completed");
    assert!(details["error"].is_null());
    assert_eq!(details["target"], "gpu");
    assert_eq!(details["properties"]["_azureml.ClusterName"], "gpu");
}

#[tokio::test]
async fn run_history_routes_and_errors() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    put_job(&emu, &token, "rh", job_body(&emu, FINETUNE)).await;
    let base = format!("{}/history/v1.0{}", emu.running.base_url, emu.ws_path());
    let exp_id = run_details(&emu, &token, "rh").await["runUuid"].clone();
    assert!(exp_id.is_string());
    for (path, code) in [
        ("experiments/clara/runs/rh/details", 200),
        ("experiments/other/runs/rh/details", 404),
        ("runs/nope/details", 404),
    ] {
        let r = emu
            .send(&token, Method::GET, &format!("{base}/{path}"), None)
            .await;
        assert_eq!(r.status.as_u16(), code, "{path}: {}", r.body);
        if code == 404 {
            assert_eq!(r.body["error"]["innerError"]["code"], "NotFoundError");
        }
    }
    // the experiment id of the MLflow run works too
    let run = mlflow(&emu, &token, "runs/get?run_id=rh").await;
    let exp = run.body["run"]["info"]["experiment_id"].as_str().unwrap();
    let r = emu
        .send(
            &token,
            Method::GET,
            &format!("{base}/experimentids/{exp}/runs/rh/details"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // bearer auth
    let r = emu
        .send(
            "bogus",
            Method::GET,
            &format!("{base}/runs/rh/details"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn interrupts_reach_every_spec_status() {
    let mut config = jobs_config();
    config.jobs.phase_ms = PhaseDurations::all(100);
    config
        .jobs
        .interrupts
        .insert("unk".into(), "Unknown:300".into());
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;
    let with_tag = |spec: &str| {
        let mut b = job_body(&emu, FINETUNE);
        b["properties"]["tags"]["clara-emulator/interrupt"] = json!(spec);
        b
    };
    put_job(&emu, &token, "nr", with_tag("NotResponding:300")).await;
    put_job(&emu, &token, "prov", with_tag("Provisioning:300")).await;
    put_job(&emu, &token, "unk", job_body(&emu, FINETUNE)).await;
    // poll the three together, so each one's statuses are all seen
    let names = ["nr", "prov", "unk"];
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); 3];
    for _ in 0..500 {
        for (i, n) in names.iter().enumerate() {
            let s = status(&get_job(&emu, &token, n).await);
            if seen[i].last() != Some(&s) {
                seen[i].push(s);
            }
        }
        if seen
            .iter()
            .all(|s| s.last().is_some_and(|l| l == "Completed"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let at = |s: &[String], x: &str| s.iter().position(|v| v == x);
    let nr = &seen[0];
    assert!(at(nr, "Queued") < at(nr, "NotResponding"), "{nr:?}");
    assert!(at(nr, "NotResponding") < at(nr, "Running"), "{nr:?}");
    assert_eq!(
        nr.last().unwrap(),
        "Completed",
        "NotResponding recovers: {nr:?}"
    );
    let prov = &seen[1];
    assert!(at(prov, "Starting") < at(prov, "Provisioning"), "{prov:?}");
    assert!(at(prov, "Provisioning") < at(prov, "Preparing"), "{prov:?}");
    assert!(seen[2].contains(&"Unknown".to_string()), "{:?}", seen[2]);

    // open-ended: Paused holds until advanced
    put_job(&emu, &token, "held", with_tag("Paused@Finalizing")).await;
    assert_eq!(until_status(&emu, &token, "held", "Paused").await, "Paused");
    let run = mlflow(&emu, &token, "runs/get?run_id=held").await;
    assert_eq!(run.body["run"]["info"]["status"], "SCHEDULED");
    emu.admin(Method::POST, "/_emulator/jobs/advance", None)
        .await;
    assert_eq!(status(&get_job(&emu, &token, "held").await), "Completed");

    // admin switch for jobs created from now on; bad specs are refused
    let r = emu
        .admin(
            Method::PUT,
            "/_emulator/jobs",
            Some(json!({"interrupts": {"*": "Paused"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    put_job(&emu, &token, "any", job_body(&emu, FINETUNE)).await;
    emu.admin(Method::PUT, "/_emulator/jobs", Some(json!(null)))
        .await;
    let r = emu
        .admin(
            Method::PUT,
            "/_emulator/jobs",
            Some(json!({"interrupts": {"*": "Running:5"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = put_job(&emu, &token, "bad", with_tag("Sleeping")).await;
    assert_eq!(
        r.error().1.as_deref(),
        Some("properties.tags['clara-emulator/interrupt']")
    );
    assert_eq!(until_status(&emu, &token, "any", "Paused").await, "Paused");
}

/// Polls the job until it shows `want` (at most 200 polls); returns the last status.
async fn until_status(emu: &Emu, token: &str, name: &str, want: &str) -> String {
    let mut last = String::new();
    for _ in 0..200 {
        last = status(&get_job(emu, token, name).await);
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    last
}
