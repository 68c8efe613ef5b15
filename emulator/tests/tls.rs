mod common;

use clara_emulator::{Options, config};
use reqwest::StatusCode;

fn client_trusting(ca_pem: &std::path::Path) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_pem).unwrap()).unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .build()
        .unwrap()
}

#[tokio::test]
async fn https_with_the_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let running = clara_emulator::start(Options::new(dir.path()))
        .await
        .unwrap();
    assert!(running.base_url.starts_with("https://127.0.0.1:"));
    assert_eq!(
        clara_emulator::read_endpoint(dir.path()).unwrap(),
        running.base_url
    );
    let ca_before = std::fs::read(running.ca_pem()).unwrap();

    let client = client_trusting(&running.ca_pem());
    let token: serde_json::Value = client
        .post(format!("{}/{}/oauth2/v2.0/token", running.base_url, config::DEFAULT_TENANT_ID))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default",
            config::DEFAULT_CLIENT_ID,
            config::DEFAULT_CLIENT_SECRET
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_string();
    let ws_url = format!(
        "{}/subscriptions/{}/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws?{}",
        running.base_url,
        config::DEFAULT_SUBSCRIPTION_ID,
        common::API
    );
    let ws = client
        .get(&ws_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ws.status(), StatusCode::OK);

    // "localhost" is also in the certificate
    let localhost_url = ws_url.replace("127.0.0.1", "localhost");
    let ws = client
        .get(&localhost_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ws.status(), StatusCode::OK);

    // a client that does not trust the CA fails
    let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(untrusting.get(&ws_url).send().await.is_err());

    // restart: same CA (generated once), token still valid
    running.shutdown().await;
    let running = clara_emulator::start(Options::new(dir.path()))
        .await
        .unwrap();
    assert_eq!(std::fs::read(running.ca_pem()).unwrap(), ca_before);
    let client = client_trusting(&running.ca_pem());
    let ws = client
        .get(ws_url.replace(
            &ws_url[..ws_url.find("/subscriptions").unwrap()],
            &running.base_url,
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ws.status(), StatusCode::OK);
    running.shutdown().await;
}
