//! Test harness: the real Terraform CLI, our provider through dev_overrides (or a
//! filesystem mirror), and a private clara-emulator per test.

#![allow(dead_code)]

pub mod spec;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

pub const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
pub const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
pub const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
pub const CLIENT_SECRET: &str = "emulator-client-secret-do-not-log";
pub const RESOURCE_GROUP: &str = "rg-clara";
pub const WORKSPACE: &str = "clara-ws";
pub const PROVIDER_SOURCE: &str = "registry.terraform.io/clara-ml/clara";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Directory holding the built provider and emulator binaries.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-clara"))
        .parent()
        .unwrap()
        .to_path_buf()
}

pub fn terraform_bin() -> String {
    std::env::var("TERRAFORM").unwrap_or_else(|_| "terraform".into())
}

/// One running emulator with its state directory.
pub struct Emulator {
    child: Child,
    pub dir: PathBuf,
    pub url: String,
}

impl Emulator {
    pub fn start(dir: &Path, config: Json) -> Emulator {
        let exe = bin_dir().join("clara-emulator");
        assert!(
            exe.exists(),
            "{} is missing: build it with `cargo build -p clara-emulator` (make test does)",
            exe.display()
        );
        std::fs::create_dir_all(dir).unwrap();
        let cfg_path = dir.join("config.json");
        std::fs::write(&cfg_path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
        let _ = std::fs::remove_file(dir.join("endpoint"));
        let log = std::fs::File::create(dir.join("emulator.log")).unwrap();
        let child = Command::new(exe)
            .arg("--state-dir")
            .arg(dir)
            .arg("--config")
            .arg(&cfg_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start clara-emulator");
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            if let Ok(u) = std::fs::read_to_string(dir.join("endpoint")) {
                if !u.trim().is_empty() {
                    break u.trim().to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "emulator did not start; see {}",
                dir.join("emulator.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Emulator {
            child,
            dir: dir.to_path_buf(),
            url,
        }
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn http(&self) -> reqwest::blocking::Client {
        let pem = std::fs::read(self.ca_file()).unwrap();
        reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .build()
            .unwrap()
    }

    /// Every request the emulator served, oldest first.
    pub fn requests(&self) -> Vec<Json> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Requests whose `op` matches, optionally only those that succeeded (2xx).
    pub fn count_ops(&self, op: &str, succeeded_only: bool) -> usize {
        self.requests()
            .iter()
            .filter(|r| r["op"] == op)
            .filter(|r| {
                !succeeded_only
                    || r["status"]
                        .as_u64()
                        .is_some_and(|s| (200..300).contains(&s))
            })
            .count()
    }

    pub fn writes(&self) -> Vec<Json> {
        self.requests()
            .into_iter()
            .filter(|r| {
                matches!(r["method"].as_str(), Some("PUT" | "PATCH" | "DELETE"))
                    || (r["method"] == "POST" && r["op"] != "token")
            })
            .collect()
    }

    pub fn state(&self) -> Json {
        self.http()
            .get(format!("{}/_emulator/state", self.url))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn set_faults(&self, faults: Json) {
        let r = self
            .http()
            .put(format!("{}/_emulator/faults", self.url))
            .json(&faults)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "setting faults: {}", r.status());
    }

    pub fn token(&self) -> String {
        let body = format!(
            "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&scope=https%3A%2F%2Fmanagement.azure.com%2F.default"
        );
        let r: Json = self
            .http()
            .post(format!("{}/{TENANT}/oauth2/v2.0/token", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["access_token"].as_str().unwrap().to_string()
    }

    /// An out-of-band ARM call, as someone in the portal would make; waits for it to settle.
    pub fn arm(&self, method: reqwest::Method, id: &str, query: &str, body: Option<Json>) {
        let url = format!("{}{id}?api-version=2025-12-01{query}", self.url);
        let mut req = self.http().request(method, &url).bearer_auth(self.token());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        assert!(
            r.status().is_success(),
            "out-of-band call failed: {} {}",
            r.status(),
            r.text().unwrap_or_default()
        );
        if let Some(op) = r
            .headers()
            .get("azure-asyncoperation")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
        {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let s: Json = self
                    .http()
                    .get(&op)
                    .bearer_auth(self.token())
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                if s["status"] != "InProgress" {
                    break;
                }
                assert!(Instant::now() < deadline, "operation did not finish");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    /// GET an ARM path (with the emulator's own token), as the portal would.
    pub fn arm_get(&self, id: &str) -> Json {
        let url = format!("{}{id}?api-version=2025-12-01", self.url);
        self.http()
            .get(&url)
            .bearer_auth(self.token())
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// Admin call on the emulator (`/_emulator/...`).
    pub fn admin(&self, method: reqwest::Method, path: &str, body: Option<Json>) -> Json {
        let mut req = self
            .http()
            .request(method, format!("{}/_emulator/{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().unwrap();
        assert!(r.status().is_success(), "admin {path}: {}", r.status());
        r.json().unwrap_or(Json::Null)
    }

    pub fn delete_arm(&self, id: &str) {
        self.arm(
            reqwest::Method::DELETE,
            id,
            "&underlyingResourceAction=Delete",
            None,
        )
    }

    pub fn patch_arm(&self, id: &str, body: Json) {
        self.arm(reqwest::Method::PATCH, id, "", Some(body))
    }

    pub fn computes(&self) -> Vec<Json> {
        let s = self.state();
        s["computes"]
            .as_array()
            .cloned()
            .or_else(|| {
                s["computes"]
                    .as_object()
                    .map(|m| m.values().cloned().collect())
            })
            .unwrap_or_default()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a workspace's blob storage comes from.
#[derive(Clone, Copy)]
enum Storage {
    None,
    /// Azurite over http: Shared Key and SAS.
    Plain,
    /// Azurite in OAuth mode over https: Entra ID bearer tokens (also Shared Key and SAS).
    OAuth,
}

pub fn emulator_config() -> Json {
    serde_json::json!({
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "subscription_id": SUBSCRIPTION,
        "workspaces": [{"resource_group": RESOURCE_GROUP, "name": WORKSPACE, "location": "eastus"}],
        "lro_delay_ms": 200,
    })
}

/// A Terraform working directory wired to the emulator (and, when asked, to Azurite).
pub struct Workspace {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub emulator: Emulator,
    pub azurite: Option<clara_testkit::Azurite>,
    env: Vec<(String, String)>,
}

impl Workspace {
    /// A copy of `examples/<example>` with the provider through dev_overrides.
    pub fn new(example: &str) -> Workspace {
        Self::with_config(example, emulator_config())
    }

    pub fn with_config(example: &str, config: Json) -> Workspace {
        Self::build(Some(example), None, config, Storage::None)
    }

    /// An example with blob storage: Azurite behind the workspace's datastores.
    pub fn with_storage(example: &str, config: Json) -> Workspace {
        Self::build(Some(example), None, config, Storage::Plain)
    }

    /// A configuration written by the test, with blob storage.
    pub fn inline(hcl: &str, config: Json) -> Workspace {
        Self::build(None, Some(hcl), config, Storage::Plain)
    }

    /// An example whose storage is Azurite in OAuth mode over https (Entra ID bearer
    /// tokens; see `clara_testkit::Azurite::start_oauth`). The config's other `storage`
    /// keys (e.g. `identity_based`) are kept.
    pub fn with_oauth_storage(example: &str, config: Json) -> Workspace {
        Self::build(Some(example), None, config, Storage::OAuth)
    }

    /// The COVID-19 CT walkthrough (examples/covid19-ct-finetune) ready to apply: job polls
    /// scaled down, the PyTorch MMAR's licence accepted (as a user does once in the NGC
    /// catalog), modules fetched. `oauth`: Azurite over https with Entra ID, as a real
    /// storage account is reached; otherwise plain Azurite with the datastore's key.
    pub fn walkthrough(config: Json, oauth: bool) -> Workspace {
        let storage = if oauth {
            Storage::OAuth
        } else {
            Storage::Plain
        };
        let mut ws = Self::build(Some("covid19-ct-finetune"), None, config, storage);
        ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
        ws.emulator.admin(
            reqwest::Method::PUT,
            "ngc/eula",
            Some(serde_json::json!({
                "asset": "nvidia/med/clara_pt_covid19_3d_ct_classification",
                "accepted": true
            })),
        );
        ws.ok(&["get", "-no-color"]);
        ws
    }

    /// A configuration written by the test, with Azurite in OAuth mode over https.
    pub fn inline_oauth(hcl: &str, config: Json) -> Workspace {
        Self::build(None, Some(hcl), config, Storage::OAuth)
    }

    fn build(
        example: Option<&str>,
        hcl: Option<&str>,
        mut config: Json,
        storage: Storage,
    ) -> Workspace {
        let tmp = tempfile::tempdir().unwrap();
        let azurite = match storage {
            Storage::None => None,
            Storage::Plain => Some(clara_testkit::Azurite::start()),
            Storage::OAuth => Some(clara_testkit::Azurite::start_oauth()),
        };
        if let Some(a) = &azurite {
            if !config["storage"].is_object() {
                config["storage"] = serde_json::json!({});
            }
            config["storage"]["blob_endpoint"] = Json::String(a.account_url());
        }
        let emulator = Emulator::start(&tmp.path().join("emulator"), config);
        let dir = tmp.path().join("work");
        match (example, hcl) {
            (Some(example), _) => copy_dir(&repo_root().join("examples").join(example), &dir),
            (None, Some(hcl)) => {
                std::fs::create_dir_all(&dir).unwrap();
                let header = format!(
                    "terraform {{\n  required_providers {{\n    clara = {{ source = \"clara-ml/clara\" }}\n  }}\n}}\n\nprovider \"clara\" {{}}\n\n"
                );
                std::fs::write(dir.join("main.tf"), header + hcl).unwrap();
            }
            _ => unreachable!(),
        }
        let rc = tmp.path().join("terraformrc");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
                bin_dir().display()
            ),
        )
        .unwrap();
        // Roots the provider trusts: the emulator's CA, plus Azurite's in OAuth mode.
        let mut ca_bundle = std::fs::read_to_string(emulator.ca_file()).unwrap();
        if let Some(ca) = azurite.as_ref().and_then(|a| a.ca_file()) {
            ca_bundle.push('\n');
            ca_bundle.push_str(&std::fs::read_to_string(ca).unwrap());
        }
        let ca_bundle_file = tmp.path().join("ca-bundle.pem");
        std::fs::write(&ca_bundle_file, ca_bundle).unwrap();
        let env = vec![
            ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
            ("SSL_CERT_FILE".into(), ca_bundle_file.display().to_string()),
            ("ARM_SUBSCRIPTION_ID".into(), SUBSCRIPTION.into()),
            ("ARM_TENANT_ID".into(), TENANT.into()),
            ("ARM_CLIENT_ID".into(), CLIENT_ID.into()),
            ("ARM_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            ("ARM_RESOURCE_MANAGER_ENDPOINT".into(), emulator.url.clone()),
            ("ARM_AUTHORITY_HOST".into(), emulator.url.clone()),
            ("CLARA_RESOURCE_GROUP_NAME".into(), RESOURCE_GROUP.into()),
            ("CLARA_WORKSPACE_NAME".into(), WORKSPACE.into()),
            // Keep the provider's retry waits short against the local emulator.
            ("CLARA_ARM_RETRY_BASE_MS".into(), "50".into()),
            ("CLARA_ARM_POLL_MIN_MS".into(), "100".into()),
            ("NGC_CLI_API_URL".into(), emulator.url.clone()),
            ("NGC_CLI_AUTH_URL".into(), emulator.url.clone()),
            (
                "CLARA_CACHE_DIR".into(),
                tmp.path().join("cache").display().to_string(),
            ),
        ];
        let mut ws = Workspace {
            tmp,
            dir,
            emulator,
            azurite,
            env,
        };
        if let Some(a) = &ws.azurite {
            let scheme = if a.ca_file().is_some() {
                "https"
            } else {
                "http"
            };
            let endpoint = format!("{scheme}://127.0.0.1:{}/{{account}}", a.port);
            ws.set_env("CLARA_STORAGE_BLOB_ENDPOINT", &endpoint);
        }
        ws
    }

    /// The emulator's CA plus, in OAuth mode, Azurite's: the roots the provider trusts.
    pub fn ca_bundle(&self) -> PathBuf {
        self.tmp.path().join("ca-bundle.pem")
    }

    /// A blob client on the workspace's default datastore container, as Azure ML holds it:
    /// Shared Key on plain Azurite; in OAuth mode an Entra ID token of the config's main
    /// principal (Storage Blob Data Owner), so Azurite's auth log shows no key used by tests.
    pub fn blobs(&self) -> (clara_azure::blob::BlobClient, String) {
        let a = self.azurite.as_ref().expect("workspace has storage");
        let url = url::Url::parse(&a.account_url()).unwrap();
        let (cred, http) = if a.ca_file().is_some() {
            let mut http = reqwest::Client::builder();
            for cert in clara_azure::load_pem_certificates(&self.ca_bundle()).unwrap() {
                http = http.add_root_certificate(cert);
            }
            let http = http.build().unwrap();
            let settings = clara_azure::AuthSettings {
                tenant_id: Some(TENANT.into()),
                client_id: Some(CLIENT_ID.into()),
                client_secret: Some(clara_azure::Secret::new(CLIENT_SECRET)),
                use_cli: false,
                authority_host: Some(url::Url::parse(&self.emulator.url).unwrap()),
                ..Default::default()
            };
            let rt = tokio::runtime::Runtime::new().unwrap();
            let credential = rt
                .block_on(clara_azure::credential(&settings, &http))
                .unwrap();
            (clara_azure::blob::BlobCredential::Bearer(credential), http)
        } else {
            let cred = clara_azure::blob::BlobCredential::SharedKey {
                account: clara_testkit::ACCOUNT.into(),
                key: clara_azure::Secret::new(clara_testkit::KEY),
            };
            (cred, reqwest::Client::new())
        };
        let client =
            clara_azure::blob::BlobClient::new(url, cred, http, Default::default()).unwrap();
        let ds = self.emulator.arm_get(&format!(
            "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}/datastores/workspaceblobstore"
        ));
        (
            client,
            ds["properties"]["containerName"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    /// Names of the blobs under a prefix of the default datastore.
    pub fn blob_names(&self, prefix: &str) -> Vec<String> {
        let (client, container) = self.blobs();
        let rt = tokio::runtime::Runtime::new().unwrap();
        match rt.block_on(client.list(&container, prefix)) {
            Ok(items) => items.into_iter().map(|b| b.name).collect(),
            Err(e) if e.is_not_found() => vec![],
            Err(e) => panic!("listing blobs: {e}"),
        }
    }

    pub fn delete_blob(&self, name: &str) {
        let (client, container) = self.blobs();
        let rt = tokio::runtime::Runtime::new().unwrap();
        assert!(
            rt.block_on(client.delete(&container, name)).unwrap(),
            "{name} existed"
        );
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.into(), v.into()));
    }

    /// Drops a variable the harness sets (e.g. an endpoint override).
    pub fn remove_env(&mut self, k: &str) {
        self.env.retain(|(key, _)| key != k);
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(terraform_bin());
        c.current_dir(&self.dir).args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.env_remove("TF_LOG").env_remove("TF_LOG_PATH");
        c
    }

    /// Runs terraform; returns (exit code, stdout + stderr).
    pub fn tf(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().expect("run terraform");
        let text = combined(&out);
        (out.status.code().unwrap_or(-1), text)
    }

    /// Runs terraform and fails the test, showing its output, unless it exits 0.
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, text) = self.tf(args);
        assert_eq!(code, 0, "terraform {} failed:\n{text}", args.join(" "));
        text
    }

    pub fn apply(&self, vars: &[&str]) -> String {
        let mut args = vec!["apply", "-auto-approve", "-input=false", "-no-color"];
        args.extend(vars);
        self.ok(&args)
    }

    /// `plan -detailed-exitcode`: 0 = no changes, 2 = changes.
    pub fn plan(&self, vars: &[&str]) -> (i32, String) {
        let mut args = vec!["plan", "-detailed-exitcode", "-input=false", "-no-color"];
        args.extend(vars);
        self.tf(&args)
    }

    pub fn assert_no_changes(&self, vars: &[&str]) {
        let (code, text) = self.plan(vars);
        assert_eq!(code, 0, "expected an empty plan, got exit {code}:\n{text}");
        assert!(text.contains("No changes."), "{text}");
    }

    pub fn state_file(&self) -> String {
        std::fs::read_to_string(self.dir.join("terraform.tfstate")).unwrap_or_default()
    }
}

/// The provider's own requests (by their User-Agent; not the tests' out-of-band ones) are
/// judged by Microsoft's spec when the workspace goes, in every test that uses one: path and
/// query shapes, and bodies against the body schemas (see spec.rs). A test that already
/// failed is left alone.
impl Drop for Workspace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let judged = spec::Spec::shared().judge_log(&self.emulator.requests(), Some(PROVIDER_UA));
        println!(
            "spec: {} ARM request(s) of the provider judged ({} with a body), {} problem(s): {:?}",
            judged.total(),
            judged.with_body,
            judged.problems.len(),
            judged.by_op
        );
        assert!(
            judged.problems.is_empty(),
            "{} request(s) of the provider do not fit Microsoft's spec:\n{}",
            judged.problems.len(),
            judged.problems.join("\n")
        );
    }
}

/// How the provider's HTTP clients introduce themselves (crates/azure/src/http.rs).
pub const PROVIDER_UA: &str = "terraform-provider-clara/";

pub fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
