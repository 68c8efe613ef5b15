//! NGC emulation: auth service, catalog API, object store (second origin), Range, synthetic
//! and hostile assets, download faults, request log and stats.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine;
use clara_emulator::Config;
use clara_emulator::ngc::config::{DEFAULT_LEGACY_KEY, DEFAULT_NVAPI_KEY};
use common::{Emu, fast_config};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const COVID: &str = "nvidia/med/clara_train_covid19_3d_ct_classification";
const COVID_ORG: &str = "/v2/org/nvidia/team/med/models/clara_train_covid19_3d_ct_classification";
const PRIVATE: &str = "/v2/org/clara-private/team/research/models/covid_ct_finetuned";
const PT: &str = "/v2/models/nvidia/med/clara_pt_covid19_3d_ct_classification";

fn sha256_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

fn no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

struct Ngc {
    emu: Emu,
}

impl Ngc {
    async fn start() -> Ngc {
        Self::with(fast_config()).await
    }

    async fn with(config: Config) -> Ngc {
        Ngc {
            emu: Emu::start_with(config).await,
        }
    }

    fn url(&self, p: &str) -> String {
        self.emu.url(p)
    }

    async fn token_with(&self, key: &str, query: &str) -> (StatusCode, Value) {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("$oauthtoken:{key}"));
        let r = self
            .emu
            .client
            .get(self.url(&format!("/token?{query}")))
            .header("authorization", format!("Basic {basic}"))
            .send()
            .await
            .unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn token(&self) -> String {
        let (s, body) = self
            .token_with(
                DEFAULT_LEGACY_KEY,
                "service=ngc&scope=group/ngc:nvidia&scope=group/ngc:nvidia/med",
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.emu.client.get(self.url(path));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.unwrap();
        let s = r.status();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    /// Every file of a version through the paged listing (0-based pages).
    async fn manifest(
        &self,
        base: &str,
        version: &str,
        page_size: usize,
        bearer: Option<&str>,
    ) -> Vec<Value> {
        let mut files = Vec::new();
        let mut page = 0;
        loop {
            let q = if page == 0 {
                format!("page-size={page_size}")
            } else {
                format!("page-size={page_size}&page-number={page}")
            };
            let (s, body) = self
                .get(&format!("{base}/versions/{version}/files?{q}"), bearer)
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
            let key = if base.contains("/resources/") {
                "recipeFiles"
            } else {
                "modelFiles"
            };
            files.extend(body[key].as_array().unwrap().iter().cloned());
            page += 1;
            if page >= body["paginationInfo"]["totalPages"].as_u64().unwrap() as usize {
                return files;
            }
        }
    }

    /// Follows the API's redirect by hand (checks it goes to the object store) and returns
    /// the signed URL.
    async fn signed_url(
        &self,
        base: &str,
        version: &str,
        path: &str,
        bearer: Option<&str>,
    ) -> String {
        let mut req =
            no_redirect().get(self.url(&format!("{base}/versions/{version}/files/{path}")));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND, "{path}");
        r.headers()["location"].to_str().unwrap().to_string()
    }

    /// Downloads through the redirect (reqwest follows it and drops `Authorization`).
    async fn download(
        &self,
        base: &str,
        version: &str,
        path: &str,
        bearer: Option<&str>,
    ) -> Vec<u8> {
        let mut req = self
            .emu
            .client
            .get(self.url(&format!("{base}/versions/{version}/files/{path}")));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        r.bytes().await.unwrap().to_vec()
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let r = self.emu.admin(method, path, body).await;
        assert!(r.status.is_success(), "{path}: {} {}", r.status, r.body);
        r.body
    }
}

/// Reads a body until it ends or breaks; returns the bytes and whether it ended cleanly.
async fn read_partial(mut r: reqwest::Response) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        match r.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(&c),
            Ok(None) => return (out, true),
            Err(_) => return (out, false),
        }
    }
}

#[tokio::test]
async fn token_exchange_and_bearer_forms() {
    let ngc = Ngc::start().await;
    let (s, body) = ngc
        .token_with(
            DEFAULT_LEGACY_KEY,
            "service=ngc&scope=group/ngc:clara-private",
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["expires_in"], 900);
    let token = body["token"].as_str().unwrap();
    assert_eq!(token.matches('.').count(), 2, "JWT-shaped");
    assert!(!token.contains(DEFAULT_LEGACY_KEY));

    // bad key, wrong user, missing Basic
    let (s, body) = ngc.token_with("wrong-key", "service=ngc").await;
    assert_eq!(
        (s, body["requestStatus"]["statusCode"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("UNAUTHORIZED"))
    );
    let r = ngc
        .emu
        .client
        .get(ngc.url("/token?service=ngc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // the classic bug: second scope without `scope=`
    let (s, body) = ngc
        .token_with(
            DEFAULT_LEGACY_KEY,
            "service=ngc&scope=group/ngc:nvidia&group/ngc:nvidia/med",
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _) = ngc.token_with(DEFAULT_LEGACY_KEY, "service=other").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // the token and the nvapi key both read the private model; the legacy key itself does not
    let (s, _) = ngc.get(&format!("{PRIVATE}/versions/1"), Some(token)).await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = ngc
        .get(&format!("{PRIVATE}/versions/1"), Some(DEFAULT_NVAPI_KEY))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["modelVersion"]["status"], "UPLOAD_COMPLETE");
    let (s, body) = ngc
        .get(&format!("{PRIVATE}/versions/1"), Some(DEFAULT_LEGACY_KEY))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    // a token scoped to another org has no access to clara-private
    let nvidia_token = ngc.token().await;
    let (s, _) = ngc
        .get(&format!("{PRIVATE}/versions/1"), Some(&nvidia_token))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    let log = ngc.emu.requests().await;
    let tokens: Vec<&Value> = log.iter().filter(|e| e["op"] == "ngc.token").collect();
    assert_eq!(tokens.len(), 6);
    assert!(
        !serde_json::to_string(&log)
            .unwrap()
            .contains(DEFAULT_LEGACY_KEY)
    );
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let mut config = fast_config();
    config.ngc.token_expires_in_s = 1;
    config.ngc.signed_url_ttl_s = 1;
    let ngc = Ngc::with(config).await;
    let signed = ngc
        .signed_url(COVID_ORG, "1", "docs/license.txt", None)
        .await;
    let r = ngc.emu.client.get(&signed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, body) = ngc.token_with(DEFAULT_LEGACY_KEY, "service=ngc").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["expires_in"], 1);
    let token = body["token"].as_str().unwrap().to_string();
    let (s, _) = ngc
        .get(&format!("{PRIVATE}/versions/1"), Some(&token))
        .await;
    assert_eq!(s, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, body) = ngc
        .get(&format!("{PRIVATE}/versions/1"), Some(&token))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        body["requestStatus"]["statusDescription"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // the signed URL expired too
    let r = ngc.emu.client.get(&signed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Request has expired"));
}

#[tokio::test]
async fn access_control_401_403_404_412() {
    let mut config = fast_config();
    config
        .ngc
        .api_keys
        .insert("nvapi-only-nvidia".into(), vec!["nvidia".into()]);
    let ngc = Ngc::with(config).await;
    // private: no credential → 401, bad credential → 401, no org access → 403
    let (s, body) = ngc.get(&format!("{PRIVATE}/versions/1/files"), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{body}");
    let (s, _) = ngc
        .get(&format!("{PRIVATE}/versions/1/files"), Some("nvapi-nope"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = ngc
        .get(
            &format!("{PRIVATE}/versions/1/files"),
            Some("garbage.token.here"),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = ngc
        .get(
            &format!("{PRIVATE}/versions/1/files"),
            Some("nvapi-only-nvidia"),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["requestStatus"]["statusCode"], "FORBIDDEN");
    // public: no credential needed; a bad credential is still refused
    let (s, _) = ngc.get(&format!("{COVID_ORG}/versions/1"), None).await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = ngc
        .get(&format!("{COVID_ORG}/versions/1"), Some("nvapi-nope"))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    // unknown asset / version / file → 404
    let (s, body) = ngc
        .get("/v2/models/nvidia/med/no_such_model/versions/1", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["requestStatus"]["statusCode"], "NOT_FOUND");
    let (s, _) = ngc.get(&format!("{COVID_ORG}/versions/9"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = ngc
        .get(&format!("{COVID_ORG}/versions/1/files/nope.txt"), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // licence-gated: metadata is readable, files are 412 until accepted
    let (s, body) = ngc.get(&format!("{PT}/versions/1"), None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["model"]["licenseTerms"][0]["needsAcceptance"], true);
    let (s, body) = ngc.get(&format!("{PT}/versions/1/files"), None).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    let msg = body["requestStatus"]["statusDescription"].as_str().unwrap();
    assert!(
        msg.contains("accept") && msg.contains("catalog.ngc.nvidia.com"),
        "{msg}"
    );
    let (s, _) = ngc.get(&format!("{PT}/versions/1/zip"), None).await;
    assert_eq!(s, StatusCode::PRECONDITION_FAILED);
    ngc.admin(
        Method::PUT,
        "/_emulator/ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    )
    .await;
    let files = ngc.manifest(PT, "1", 100, None).await;
    assert!(files.iter().any(|f| f["path"] == "models/model.pt"));
    // upload-pending version is visible with its status
    let (s, body) = ngc
        .get(&format!("{PRIVATE}/versions/2"), Some(DEFAULT_NVAPI_KEY))
        .await;
    assert_eq!(
        (s, body["modelVersion"]["status"].as_str()),
        (StatusCode::OK, Some("UPLOAD_PENDING"))
    );
}

#[tokio::test]
async fn mmar_manifest_matches_served_bytes_via_second_origin() {
    let ngc = Ngc::start().await;
    let token = ngc.token().await;
    let (s, body) = ngc
        .get(&format!("{COVID_ORG}/versions/1"), Some(&token))
        .await;
    assert_eq!(s, StatusCode::OK);
    let v = &body["modelVersion"];
    assert_eq!(v["status"], "UPLOAD_COMPLETE");
    let files = ngc.manifest(COVID_ORG, "1", 5, Some(&token)).await;
    assert_eq!(files.len() as u64, v["totalFileCount"].as_u64().unwrap());
    let total: u64 = files
        .iter()
        .map(|f| f["sizeInBytes"].as_u64().unwrap())
        .sum();
    assert_eq!(total, v["totalSizeInBytes"].as_u64().unwrap());
    assert!(total < 600_000, "small MMAR: {total}");
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    for p in [
        "commands/train_finetune.sh",
        "commands/infer.sh",
        "commands/export.sh",
        "config/config_train.json",
        "config/config_validation.json",
        "config/environment.json",
        "config/dataset_0.json",
        "docs/license.txt",
        "docs/Readme.md",
        "models/model.ckpt.data-00000-of-00001",
    ] {
        assert!(paths.contains(&p), "{p}");
    }

    // redirect goes to the object store: another origin, signed and expiring
    let signed = ngc
        .signed_url(COVID_ORG, "1", "config/environment.json", Some(&token))
        .await;
    assert!(signed.starts_with(&ngc.emu.running.xfiles_url), "{signed}");
    assert_ne!(ngc.emu.running.xfiles_url, ngc.emu.running.base_url);
    assert!(signed.contains("Expires=") && signed.contains("Signature="));
    let endpoint_file =
        std::fs::read_to_string(ngc.emu.dir.path().join("ngc_xfiles_endpoint")).unwrap();
    assert_eq!(endpoint_file, ngc.emu.running.xfiles_url);
    // the object store refuses a forwarded credential and a tampered signature
    let r = ngc
        .emu
        .client
        .get(&signed)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let tampered = signed.replace("environment.json", "config_train.json");
    let r = ngc.emu.client.get(&tampered).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // every file: size and sha256_base64 match the bytes (reqwest follows the redirect and
    // strips Authorization for the other origin)
    for f in &files {
        let path = f["path"].as_str().unwrap();
        let bytes = ngc.download(COVID_ORG, "1", path, Some(&token)).await;
        assert_eq!(
            bytes.len() as u64,
            f["sizeInBytes"].as_u64().unwrap(),
            "{path}"
        );
        assert_eq!(
            sha256_b64(&bytes),
            f["sha256_base64"].as_str().unwrap(),
            "{path}"
        );
    }
    let env: Value = serde_json::from_slice(
        &ngc.download(COVID_ORG, "1", "config/environment.json", None)
            .await,
    )
    .unwrap();
    assert_eq!(env["MMAR_CKPT_DIR"], "models");
    let ds: Value = serde_json::from_slice(
        &ngc.download(COVID_ORG, "1", "config/dataset_0.json", None)
            .await,
    )
    .unwrap();
    let n = ["training", "validation", "testing"]
        .iter()
        .map(|k| ds[k].as_array().unwrap().len())
        .sum::<usize>();
    assert_eq!((n, ds["testing"].as_array().unwrap().len()), (40, 3));

    // public path form and the presigned-URL manifest give the same files
    let public = ngc
        .manifest(&format!("/v2/models/{COVID}"), "1", 1000, None)
        .await;
    assert_eq!(public, files);
    let (s, m) = ngc
        .get("/v2/org/nvidia/team/med/models/clara_train_covid19_3d_ct_classification/1/files?page-size=1000", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(m["urls"].as_array().unwrap().len(), files.len());
    let (s, m) = ngc
        .get("/v2/models/org/nvidia/team/med/clara_train_covid19_3d_ct_classification/1/files?path=docs/license.txt", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let lic = ngc
        .emu
        .client
        .get(m["urls"][0].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        lic.text()
            .await
            .unwrap()
            .contains("clara_train_covid19_3d_ct_classification")
    );

    // request log: ops, bytes, range; signatures and tokens are not logged
    let log = ngc.emu.requests().await;
    let ops: BTreeMap<&str, usize> = log.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e["op"].as_str().unwrap()).or_default() += 1;
        m
    });
    assert!(ops["ngc.token"] >= 1 && ops["ngc.version"] >= 1 && ops["ngc.files"] >= 3);
    assert!(ops["ngc.file"] >= files.len() && ops["ngc.download"] >= files.len());
    let dl = log
        .iter()
        .find(|e| e["op"] == "ngc.download" && e["file"] == "config/dataset_0.json")
        .unwrap();
    assert_eq!(dl["asset"], COVID);
    assert_eq!(dl["complete"], true);
    assert!(dl["bytes"].as_u64().unwrap() > 1000);
    assert!(
        dl["query"]
            .as_str()
            .unwrap()
            .contains("Signature=<redacted>")
    );
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(&token));
    let stats = ngc.admin(Method::GET, "/_emulator/stats", None).await;
    let key = format!("{COVID}:1/config/dataset_0.json");
    assert!(
        stats["ngc"]["by_file"][&key]["bytes"].as_u64().unwrap() > 1000,
        "{}",
        stats["ngc"]
    );
    assert!(stats["ngc"]["bytes_served"].as_u64().unwrap() >= total);
}

#[tokio::test]
async fn range_requests_get_206() {
    let ngc = Ngc::start().await;
    let base = "/v2/resources/nvidia/synthetic/size-100000";
    let full = ngc.download(base, "1", "size-100000.bin", None).await;
    assert_eq!(full.len(), 100_000);
    let url = ngc.signed_url(base, "1", "size-100000.bin", None).await;
    let get = |range: &'static str| {
        let c = ngc.emu.client.clone();
        let url = url.clone();
        async move { c.get(url).header("range", range).send().await.unwrap() }
    };
    let r = get("bytes=10-19").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/100000");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    assert_eq!(&r.bytes().await.unwrap()[..], &full[10..20]);
    let r = get("bytes=99990-").await;
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()["content-length"], "10");
    assert_eq!(&r.bytes().await.unwrap()[..], &full[99_990..]);
    let r = get("bytes=-5").await;
    assert_eq!(&r.bytes().await.unwrap()[..], &full[99_995..]);
    let r = get("bytes=100000-").await;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.headers()["content-range"], "bytes */100000");
    let log = ngc.emu.requests().await;
    let e = log
        .iter()
        .find(|e| e["op"] == "ngc.download" && e["range"] == "bytes=10-19")
        .unwrap();
    assert_eq!(
        (e["status"].as_u64(), e["bytes"].as_u64()),
        (Some(206), Some(10))
    );
}

#[tokio::test]
async fn synthetic_64_mib_hash_matches() {
    let ngc = Ngc::start().await;
    let base = "/v2/models/nvidia/synthetic/size-64MiB";
    let files = ngc.manifest(base, "1", 10, None).await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["sizeInBytes"], 64 << 20);
    let url = ngc.signed_url(base, "1", "size-64MiB.bin", None).await;
    let mut r = ngc.emu.client.get(url).send().await.unwrap();
    assert_eq!(
        r.headers()["content-length"],
        (64u64 << 20).to_string().as_str()
    );
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut n = 0usize;
    while let Some(c) = r.chunk().await.unwrap() {
        n += c.len();
        ctx.update(&c);
    }
    assert_eq!(n, 64 << 20);
    let got = base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref());
    assert_eq!(got, files[0]["sha256_base64"].as_str().unwrap());

    // multi-file variant: sizes add up, nested paths
    let files = ngc
        .manifest(
            "/v2/resources/nvidia/synthetic/size-10000-files-7",
            "1",
            3,
            None,
        )
        .await;
    assert_eq!(files.len(), 7);
    assert_eq!(
        files
            .iter()
            .map(|f| f["sizeInBytes"].as_u64().unwrap())
            .sum::<u64>(),
        10_000
    );
    assert_eq!(files[6]["path"], "data/part-00006.bin");
    let (s, _) = ngc
        .get("/v2/models/nvidia/synthetic/size-bogus/versions/1", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn drop_mid_body_then_resume_with_range() {
    let ngc = Ngc::start().await;
    let base = "/v2/resources/nvidia/synthetic/size-1MiB";
    let file = "size-1MiB.bin";
    let files = ngc.manifest(base, "1", 10, None).await;
    let want = files[0]["sha256_base64"].as_str().unwrap().to_string();
    ngc.admin(
        Method::POST,
        "/_emulator/ngc/faults",
        Some(json!({"kind": "body_drop", "file": file, "after_bytes": 300000})),
    )
    .await;
    let url = ngc.signed_url(base, "1", file, None).await;
    let r = ngc.emu.client.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (mut got, clean) = read_partial(r).await;
    assert!(!clean, "the body must break");
    assert_eq!(got.len(), 300_000);
    // resume
    let r = ngc
        .emu
        .client
        .get(&url)
        .header("range", format!("bytes={}-", got.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    let (rest, clean) = read_partial(r).await;
    assert!(clean);
    got.extend_from_slice(&rest);
    assert_eq!(got.len(), 1 << 20);
    assert_eq!(sha256_b64(&got), want);
    // the fault was one-shot, counted in the log and stats
    assert!(
        ngc.admin(Method::GET, "/_emulator/ngc/faults", None)
            .await
            .as_array()
            .unwrap()
            .is_empty()
    );
    let log = ngc.emu.requests().await;
    let dls: Vec<&Value> = log.iter().filter(|e| e["op"] == "ngc.download").collect();
    assert_eq!(dls.len(), 2);
    assert_eq!(dls[0]["fault"], "ngc.body_drop");
    assert_eq!(dls[0]["bytes"], 300_000);
    assert_eq!(dls[0]["complete"], false);
    assert_eq!(dls[0]["dropped"], true);
    assert_eq!(dls[1]["bytes"], (1 << 20) - 300_000);
    assert_eq!(dls[1]["range"], "bytes=300000-");
    let stats = ngc.admin(Method::GET, "/_emulator/stats", None).await;
    assert_eq!(stats["faults"]["ngc.body_drop"], 1);
    let f = &stats["ngc"]["by_file"]["nvidia/synthetic/size-1MiB:1/size-1MiB.bin"];
    assert_eq!(
        (
            f["requests"].as_u64(),
            f["bytes"].as_u64(),
            f["complete"].as_u64()
        ),
        (Some(2), Some(1 << 20), Some(1))
    );
}

#[tokio::test]
async fn corrupted_byte_stall_and_status_faults() {
    let ngc = Ngc::start().await;
    let base = COVID_ORG;
    let file = "models/model.ckpt.meta";
    let good = ngc.download(base, "1", file, None).await;
    let files = ngc.manifest(base, "1", 100, None).await;
    let want = files.iter().find(|f| f["path"] == file).unwrap()["sha256_base64"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sha256_b64(&good), want);

    // corrupt byte 1234: only the next download, then clean again
    ngc.admin(
        Method::PUT,
        "/_emulator/ngc/faults",
        Some(json!([{"kind": "corrupt", "asset": COVID, "file": file, "offset": 1234}])),
    )
    .await;
    let bad = ngc.download(base, "1", file, None).await;
    assert_eq!(bad.len(), good.len());
    let diff: Vec<usize> = (0..good.len()).filter(|i| good[*i] != bad[*i]).collect();
    assert_eq!(diff, [1234]);
    assert_ne!(sha256_b64(&bad), want);
    assert_eq!(ngc.download(base, "1", file, None).await, good);

    // stall 400 ms after 1000 bytes
    ngc.admin(
        Method::POST,
        "/_emulator/ngc/faults",
        Some(json!({"kind": "stall", "file": file, "after_bytes": 1000, "stall_ms": 400})),
    )
    .await;
    let t = Instant::now();
    assert_eq!(ngc.download(base, "1", file, None).await, good);
    assert!(t.elapsed() >= Duration::from_millis(400));

    // status fault on the listing, once; a drop on the token endpoint
    ngc.admin(
        Method::POST,
        "/_emulator/ngc/faults",
        Some(json!({"kind": "status", "op": "ngc.files", "status": 503, "retry_after_s": 2})),
    )
    .await;
    let r = ngc
        .emu
        .client
        .get(ngc.url(&format!("{base}/versions/1/files")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "2");
    let (s, _) = ngc.get(&format!("{base}/versions/1/files"), None).await;
    assert_eq!(s, StatusCode::OK);
    ngc.admin(
        Method::POST,
        "/_emulator/ngc/faults",
        Some(json!({"kind": "drop", "op": "ngc.token"})),
    )
    .await;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("$oauthtoken:{DEFAULT_LEGACY_KEY}"));
    let err = ngc
        .emu
        .client
        .get(ngc.url("/token?service=ngc"))
        .header("authorization", format!("Basic {basic}"))
        .send()
        .await;
    assert!(err.is_err(), "connection dropped");
    let _ = ngc.token().await;

    let stats = ngc.admin(Method::GET, "/_emulator/stats", None).await;
    for k in ["ngc.corrupt", "ngc.stall", "ngc.status", "ngc.drop"] {
        assert_eq!(stats["faults"][k], 1, "{k}: {}", stats["faults"]);
    }
    // bad fault configs are refused
    let r = ngc
        .emu
        .admin(
            Method::POST,
            "/_emulator/ngc/faults",
            Some(json!({"kind": "explode"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn faults_from_config_and_unlimited() {
    let mut config = fast_config();
    config.ngc.faults = serde_json::from_value(json!([
        {"kind": "status", "op": "ngc.version", "status": 500, "times": 2}
    ]))
    .unwrap();
    let ngc = Ngc::with(config).await;
    for want in [500, 500, 200] {
        let (s, _) = ngc.get(&format!("{COVID_ORG}/versions/1"), None).await;
        assert_eq!(s.as_u16(), want);
    }
}

#[tokio::test]
async fn zip_endpoint_and_walkthrough_resource() {
    let ngc = Ngc::start().await;
    let base = "/v2/resources/nvidia/med/getting_started";
    let (s, body) = ngc.get(&format!("{base}/versions/1"), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["recipeVersion"]["status"], "UPLOAD_COMPLETE");
    let files = ngc.manifest(base, "1", 100, None).await;
    assert!(files.iter().any(|f| f["path"] == "scripts/startDocker.sh"));
    let r = ngc
        .emu
        .client
        .get(ngc.url(&format!("{base}/versions/1/zip")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers().get("content-length").is_none(),
        "streamed like NGC's /zip"
    );
    let zip = r.bytes().await.unwrap();
    let eocd = &zip[zip.len() - 22..];
    assert_eq!(&eocd[..4], b"PK\x05\x06");
    assert_eq!(
        u16::from_le_bytes([eocd[10], eocd[11]]) as usize,
        files.len()
    );
    for f in &files {
        let path = f["path"].as_str().unwrap();
        let data = ngc.download(base, "1", path, None).await;
        // stored entries: the name and the bytes appear verbatim
        assert!(
            zip.windows(path.len()).any(|w| w == path.as_bytes()),
            "{path}"
        );
        assert!(zip.windows(data.len()).any(|w| w == &data[..]), "{path}");
    }
    let log = ngc.emu.requests().await;
    let z = log.iter().find(|e| e["op"] == "ngc.zip").unwrap();
    assert_eq!(
        (z["bytes"].as_u64(), z["complete"].as_bool()),
        (Some(zip.len() as u64), Some(true))
    );
    // org-scoped form works too
    let (s, _) = ngc
        .get(
            "/v2/org/nvidia/team/med/resources/getting_started/versions/1/files",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn synthetic_zip_and_hostile_archives() {
    let ngc = Ngc::start().await;
    // synthetic archive: one .zip file, listed with its sha
    let base = "/v2/resources/nvidia/synthetic/zip-files-5-size-1000-root";
    let files = ngc.manifest(base, "1", 10, None).await;
    assert_eq!(files.len(), 1);
    let name = "zip-files-5-size-1000-root.zip";
    let zip = ngc.download(base, "1", name, None).await;
    assert_eq!(
        sha256_b64(&zip),
        files[0]["sha256_base64"].as_str().unwrap()
    );
    let entry = b"zip-files-5-size-1000-root/data/file-00004.bin";
    assert!(zip.windows(entry.len()).any(|w| w == entry));

    let hostile = |n: &str| format!("/v2/resources/nvidia/hostile/{n}");
    // zip bomb: small on the wire, 1 GiB inside
    let files = ngc.manifest(&hostile("zip-bomb"), "1", 10, None).await;
    let wire = files[0]["sizeInBytes"].as_u64().unwrap();
    assert!(wire < 2 << 20, "{wire}");
    let bomb = ngc
        .download(&hostile("zip-bomb"), "1", "zip-bomb.zip", None)
        .await;
    assert_eq!(bomb.len() as u64, wire);
    assert_eq!(
        sha256_b64(&bomb),
        files[0]["sha256_base64"].as_str().unwrap()
    );
    let cd = bomb.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    let usize_field = u32::from_le_bytes(bomb[cd + 24..cd + 28].try_into().unwrap());
    assert_eq!(usize_field, 1 << 30);
    // zip-slip names
    let slip = ngc
        .download(&hostile("zip-slip"), "1", "zip-slip.zip", None)
        .await;
    assert!(slip.windows(11).any(|w| w == b"../evil.txt"));
    // tar with a symlink escaping the destination
    let tar = ngc
        .download(&hostile("symlink-tar"), "1", "symlink.tar", None)
        .await;
    assert_eq!(tar.len() % 512, 0);
    let symlink_hdr = tar
        .chunks(512)
        .find(|h| h.starts_with(b"escape\0"))
        .unwrap();
    assert_eq!(symlink_hdr[156], b'2');
    assert!(symlink_hdr[157..].starts_with(b"/etc\0"));
    // manifests that lie or escape
    let files = ngc
        .manifest(&hostile("manifest-traversal"), "1", 10, None)
        .await;
    assert!(files.iter().any(|f| f["path"] == "../escape.txt"));
    let files = ngc.manifest(&hostile("wrong-sha256"), "1", 10, None).await;
    let data = ngc
        .download(&hostile("wrong-sha256"), "1", "data.bin", None)
        .await;
    assert_ne!(
        sha256_b64(&data),
        files[0]["sha256_base64"].as_str().unwrap()
    );
}

#[tokio::test]
async fn config_assets_and_admin_info() {
    let mut config = fast_config();
    config.ngc.assets = serde_json::from_value(json!([{
        "kind": "model", "org": "acme", "name": "tiny", "public": false,
        "versions": [{"version": "3", "files": [
            {"path": "a.txt", "text": "hello\n"},
            {"path": "b.bin", "size": 5000},
            {"path": "c.bin", "base64": "AAEC"}
        ]}]
    }]))
    .unwrap();
    let ngc = Ngc::with(config).await;
    let (s, _) = ngc
        .get("/v2/org/acme/models/tiny/versions/3/files", None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let files = ngc
        .manifest("/v2/org/acme/models/tiny", "3", 10, Some(DEFAULT_NVAPI_KEY))
        .await;
    assert_eq!(files.len(), 3);
    let a = ngc
        .download(
            "/v2/org/acme/models/tiny",
            "3",
            "a.txt",
            Some(DEFAULT_NVAPI_KEY),
        )
        .await;
    assert_eq!(a, b"hello\n");
    let info = ngc.admin(Method::GET, "/_emulator/ngc", None).await;
    assert_eq!(info["xfiles_url"], ngc.emu.running.xfiles_url.as_str());
    assert!(
        info["assets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == "acme/tiny")
    );
    assert!(!info.to_string().contains(DEFAULT_LEGACY_KEY));
}

/// What ngcsdk 4.37.0's `configure()` calls: `POST /v3/keys/get-caller-info` for `nvapi-`
/// keys (no bearer; form `credentials`), `GET /v2/orgs` and `GET /v2/org/{org}/teams` for
/// legacy keys (bearer token).
#[tokio::test]
async fn caller_info_orgs_and_teams_for_ngcsdk_configure() {
    let ngc = Ngc::start().await;
    let post = |cred: &str| {
        ngc.emu
            .client
            .post(ngc.url("/v3/keys/get-caller-info"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("credentials={cred}"))
            .send()
    };
    let r = post(DEFAULT_NVAPI_KEY).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["type"], "PERSONAL_KEY");
    assert_eq!(info["orgName"], "nvidia");
    let roles = info["user"]["roles"].as_array().unwrap();
    assert!(!roles.is_empty(), "ngcsdk's validate_sak_key needs roles");
    assert!(roles.iter().any(|r| r["team"]["name"] == "med"), "{info}");
    // legacy keys and unknown keys are not scoped keys
    for bad in [DEFAULT_LEGACY_KEY, "nvapi-unknown"] {
        assert_eq!(post(bad).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    // the key never reaches the request log
    let log = ngc.emu.requests().await;
    let line = log.iter().find(|e| e["op"] == "ngc.caller_info").unwrap();
    assert_eq!(line["body"]["credentials"], "<redacted>");
    assert!(!line.to_string().contains(DEFAULT_NVAPI_KEY));

    let (s, _) = ngc.get("/v2/orgs?page-size=500", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let token = ngc.token().await;
    let (s, orgs) = ngc.get("/v2/orgs?page-size=500", Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "{orgs}");
    let names: Vec<&str> = orgs["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nvidia"], "the token is scoped to nvidia");
    assert_eq!(orgs["paginationInfo"]["totalResults"], 1);
    let (s, all) = ngc
        .get("/v2/orgs?page-size=500", Some(DEFAULT_NVAPI_KEY))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(all["organizations"].as_array().unwrap().len() >= 2, "{all}");
    let (s, teams) = ngc.get("/v2/org/nvidia/teams", Some(&token)).await;
    assert_eq!(s, StatusCode::OK, "{teams}");
    assert!(
        teams["teams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "med")
    );
    let (s, _) = ngc.get("/v2/org/clara-private/teams", Some(&token)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

/// The walkthrough's quick-launch resource, through the routes ngcsdk downloads with: version
/// metadata (numeric deprecated `id`), the files listing and the presigned-URL manifest.
#[tokio::test]
async fn quicklaunch_resource_through_the_presigned_manifest() {
    let ngc = Ngc::start().await;
    let base = "/v2/resources/nvidia/azuremlclarablogquicklaunch";
    let (s, body) = ngc.get(&format!("{base}/versions/example"), None).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["recipeVersion"]["status"], "UPLOAD_COMPLETE");
    assert!(body["recipeVersion"]["id"].is_u64(), "{body}");
    let files = ngc.manifest(base, "example", 100, None).await;
    let paths: Vec<&str> = files.iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(
        paths.contains(&"Clara_COVID19_CT_QuickLaunch.ipynb"),
        "{paths:?}"
    );
    assert!(paths.contains(&"scripts/finetune.sh"), "{paths:?}");
    let (s, m) = ngc
        .get(
            "/v2/resources/org/nvidia/azuremlclarablogquicklaunch/example/files",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let urls = m["urls"].as_array().unwrap();
    let names = m["filepath"].as_array().unwrap();
    assert_eq!(urls.len(), files.len());
    for (url, name) in urls.iter().zip(names) {
        let f = files.iter().find(|f| &f["path"] == name).unwrap();
        let r = ngc
            .emu
            .client
            .get(url.as_str().unwrap())
            .header("range", "bytes=0-")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
        let data = r.bytes().await.unwrap();
        assert_eq!(sha256_b64(&data), f["sha256_base64"], "{name}");
    }
    // the notebook is a notebook and calls the scripts it ships with
    let nb = urls
        .iter()
        .zip(names)
        .find(|(_, n)| n.as_str().unwrap().ends_with(".ipynb"))
        .unwrap()
        .0;
    let nb: Value = ngc
        .emu
        .client
        .get(nb.as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nb["nbformat"], 4);
    assert!(nb.to_string().contains("scripts/finetune.sh"));
}
