//! Optional: against a real Azurite (`.tools/node_modules/.bin/azurite-blob`, installed by
//! `make tools-azurite`), the SAS from `startPendingUpload` works for uploads and a completed
//! job's outputs are written with Shared Key. Skipped when Azurite is not installed.

mod common;
mod training_common;

use std::path::PathBuf;
use std::time::Duration;

use clara_emulator::{Config, StorageConfig};
use common::Emu;
use reqwest::{Method, StatusCode};
use serde_json::json;
use training_common::*;

fn azurite_bin() -> Option<PathBuf> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/node_modules/.bin/azurite-blob");
    p.exists().then_some(p)
}

async fn start_azurite(bin: &PathBuf) -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = tokio::process::Command::new(bin)
        .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
        .args([
            "--inMemoryPersistence",
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("azurite starts");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return (child, port);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("azurite did not listen on {port}");
}

#[tokio::test]
async fn uploads_with_the_sas_and_job_outputs_land_in_azurite() {
    let Some(bin) = azurite_bin() else {
        eprintln!("skipping: Azurite is not installed (make tools-azurite)");
        return;
    };
    let (mut azurite, port) = start_azurite(&bin).await;
    let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
    let config = Config {
        storage: StorageConfig {
            blob_endpoint: Some(endpoint.clone()),
            container: Some("clara-test".into()),
            ..StorageConfig::default()
        },
        ..jobs_config()
    };
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    setup(&emu, &token).await;

    // the provider's flow: startPendingUpload, then PUT blobs with the SAS
    let up = emu
        .arm(
            &token,
            Method::POST,
            &format!("{}/startPendingUpload", code_path(&emu, "scripts", "1")),
            Some(json!({"pendingUploadType": "TemporaryBlobReference"})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    let blob_uri = up.body["blobReferenceForConsumption"]["blobUri"]
        .as_str()
        .unwrap();
    assert!(
        blob_uri.starts_with(&format!("{endpoint}/clara-test/LocalUpload/")),
        "{blob_uri}"
    );
    let sas_uri = up.body["blobReferenceForConsumption"]["credential"]["sasUri"]
        .as_str()
        .unwrap();
    let (_, sas) = sas_uri.split_once('?').unwrap();
    let client = common::client();
    let put = client
        .put(format!("{blob_uri}/scripts/run.sh?{sas}"))
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-version", "2021-08-06")
        .body("#!/bin/sh\necho hi\n")
        .send()
        .await
        .unwrap();
    assert_eq!(
        put.status(),
        StatusCode::CREATED,
        "{}",
        put.text().await.unwrap()
    );

    // a completed job's outputs are uploaded (best effort, in the background)
    put_job(
        &emu,
        &token,
        "ft",
        job_body(&emu, "./commands/train_finetune.sh --epochs 3"),
    )
    .await;
    wait_job(&emu, &token, "ft", Duration::from_millis(20)).await;
    let mut upload = String::new();
    for _ in 0..100 {
        let state = emu.admin(Method::GET, "/_emulator/jobs", None).await;
        upload = state.body["jobs"][0]["outputs_upload"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if upload == "done" || upload.starts_with("failed") {
            break;
        }
        get_job(&emu, &token, "ft").await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(upload, "done");
    for blob in ["azureml/ft/model/model.ts", "azureml/ft/model/metrics.json"] {
        let r = client
            .get(format!("{endpoint}/clara-test/{blob}?{sas}"))
            .header("x-ms-version", "2021-08-06")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{blob}");
        if blob.ends_with(".json") {
            let doc: serde_json::Value = r.json().await.unwrap();
            assert_eq!(doc["simulated"], true);
            assert_eq!(doc["params"]["epochs"], "3");
        }
    }
    let _ = azurite.kill().await;
}
