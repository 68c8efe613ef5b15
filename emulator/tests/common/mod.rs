//! Shared helpers for the integration tests: start an in-process emulator on 127.0.0.1:0
//! (plain HTTP unless asked otherwise) and talk to it with reqwest.

#![allow(dead_code)]

use std::time::Duration;

use clara_emulator::{Config, Options, Running};
use reqwest::{Method, StatusCode, header::HeaderMap};
use serde_json::{Value, json};

pub const API: &str = "api-version=2025-12-01";

pub struct Emu {
    pub running: Running,
    pub dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub config: Config,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// `(code, target)` of an ARM error body.
    pub fn error(&self) -> (String, Option<String>) {
        (
            self.body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            self.body["error"]["target"].as_str().map(str::to_string),
        )
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn fast_config() -> Config {
    Config {
        lro_delay_ms: 150,
        ..Config::default()
    }
}

/// Operations stay `InProgress` until `Emu::advance` (deterministic in-progress checks).
pub fn slow_config() -> Config {
    Config {
        lro_delay_ms: 600_000,
        ..Config::default()
    }
}

impl Emu {
    pub async fn start() -> Emu {
        Self::start_with(fast_config()).await
    }

    pub async fn start_with(config: Config) -> Emu {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir, config).await
    }

    /// Starts (or restarts) an emulator on an existing state dir.
    pub async fn start_in(dir: tempfile::TempDir, config: Config) -> Emu {
        let mut opts = Options::new(dir.path());
        opts.config = config.clone();
        opts.plain_http = true;
        let running = clara_emulator::start(opts).await.expect("emulator starts");
        Emu {
            running,
            dir,
            client: client(),
            config,
        }
    }

    /// Stops the server and hands back its state dir (for restart tests).
    pub async fn stop(self) -> (tempfile::TempDir, Config) {
        self.running.shutdown().await;
        (self.dir, self.config)
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.running.base_url, path_and_query)
    }

    pub fn token_url(&self) -> String {
        self.url(&format!("/{}/oauth2/v2.0/token", self.config.tenant_id))
    }

    pub async fn token_request(&self, fields: &[(&str, &str)]) -> Resp {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let resp = self
            .client
            .post(self.token_url())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        into_resp(resp).await
    }

    pub async fn token(&self) -> String {
        let r = self
            .token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.config.client_id),
                ("client_secret", &self.config.client_secret),
                ("scope", "https://management.azure.com/.default"),
            ])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_string()
    }

    pub fn sub(&self) -> &str {
        &self.config.subscription_id
    }

    pub fn ws_path(&self) -> String {
        let ws = &self.config.workspaces[0];
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.MachineLearningServices/workspaces/{}",
            self.config.subscription_id, ws.resource_group, ws.name
        )
    }

    pub fn compute_path(&self, name: &str) -> String {
        format!("{}/computes/{name}", self.ws_path())
    }

    /// ARM call with a bearer token; `path` may already carry a query.
    pub async fn arm(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> Resp {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = if path.contains("api-version=") {
            self.url(path)
        } else {
            self.url(&format!("{path}{sep}{API}"))
        };
        self.send(token, method, &url, body).await
    }

    /// Raw call to an absolute URL (e.g. an `Azure-AsyncOperation` header).
    pub async fn send(&self, token: &str, method: Method, url: &str, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, url).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_resp(req.send().await.expect("request succeeds")).await
    }

    /// Polls an `Azure-AsyncOperation` URL until a terminal status; returns the statuses seen.
    pub async fn wait_op(&self, token: &str, url: &str) -> Vec<String> {
        let mut seen = Vec::new();
        for _ in 0..200 {
            let r = self.send(token, Method::GET, url, None).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            let status = r.body["status"].as_str().unwrap().to_string();
            seen.push(status.clone());
            if status != "InProgress" {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        panic!("operation did not finish: {seen:?}");
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Resp {
        let mut req = self.client.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        into_resp(req.send().await.unwrap()).await
    }

    /// Completes every in-progress operation now.
    pub async fn advance(&self) {
        let r = self.admin(Method::POST, "/_emulator/advance", None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    pub async fn set_faults(&self, faults: Value) {
        let r = self
            .admin(Method::PUT, "/_emulator/faults", Some(faults))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    pub async fn requests(&self) -> Vec<Value> {
        self.admin(Method::GET, "/_emulator/requests", None)
            .await
            .body
            .as_array()
            .cloned()
            .unwrap()
    }
}

pub async fn into_resp(resp: reqwest::Response) -> Resp {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    Resp {
        status,
        headers,
        body,
    }
}

/// A GPU cluster body like the ones the provider sends.
pub fn cluster_body(vm_size: &str, min: i64, max: i64) -> Value {
    json!({
        "location": "eastus",
        "tags": {"team": "clara"},
        "properties": {
            "computeType": "AmlCompute",
            "description": "GPU cluster",
            "properties": {
                "vmSize": vm_size,
                "vmPriority": "Dedicated",
                "osType": "Linux",
                "scaleSettings": {"maxNodeCount": max, "minNodeCount": min, "nodeIdleTimeBeforeScaleDown": "PT300S"},
                "userAccountCredentials": {"adminUserName": "azureuser", "adminUserPassword": "S3cret-pw!", "adminUserSshPublicKey": "ssh-rsa AAAAB3Nza test"},
                "remoteLoginPortPublicAccess": "NotSpecified",
                "enableNodePublicIp": true
            }
        }
    })
}
