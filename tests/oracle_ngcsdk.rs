//! Oracle: NVIDIA's own NGC client (PyPI `ngcsdk` 4.37.0, pinned in
//! `scripts/python/ngcsdk-requirements.txt`, installed into `.tools/ngcsdk-venv` by
//! `scripts/tools.sh ngcsdk`) pointed at the emulator. With no key, a legacy key and an
//! `nvapi-` key it configures itself, reads info, lists files and downloads the walkthrough's
//! three assets; every file must be byte-identical (sha256) to what the provider uploaded to
//! Azurite for the same assets. Where ngcsdk and the emulator disagree, ngcsdk is right.
//!
//! If the venv cannot be installed, this test FAILS: it is part of `make test`.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use reqwest::Method;
use serde_json::{Value as Json, json};
use sha2::{Digest, Sha256};
use support::*;

const LEGACY_KEY: &str = "ngc-legacy-key-do-not-log";
const NVAPI_KEY: &str = "nvapi-emulator-key-do-not-log";

/// (ngcsdk target, kind, datastore path the provider uploads to)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "nvidia/med/clara_train_covid19_3d_ct_classification:1",
        "model",
        "oracle/mmar",
    ),
    (
        "nvidia/azuremlclarablogquicklaunch:example",
        "resource",
        "oracle/quicklaunch",
    ),
    (
        "nvidia/med/clara_pt_covid19_3d_ct_classification:1",
        "model",
        "oracle/pt",
    ),
];

/// `scripts/tools.sh ngcsdk`: the venv's python. Installs on first use (under the tools
/// lock, so concurrent runs wait rather than race); a failure fails the test.
fn ngcsdk_python() -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/tools.sh"))
        .arg("ngcsdk")
        .output()
        .expect("run scripts/tools.sh ngcsdk");
    assert!(
        out.status.success(),
        "scripts/tools.sh ngcsdk failed (the oracle needs ngcsdk 4.37.0 from PyPI):\n{}",
        combined(&out)
    );
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(
        std::path::Path::new(&path).exists(),
        "tools.sh printed {path:?}"
    );
    path
}

fn hcl() -> String {
    ASSETS
        .iter()
        .enumerate()
        .map(|(i, (target, kind, path))| {
            format!(
                "resource \"ngc_asset\" \"a{i}\" {{\n  provider       = clara\n  source         = \"{target}\"\n  type           = \"{kind}\"\n  datastore_path = \"{path}\"\n}}\n"
            )
        })
        .collect()
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The provider's uploads: datastore path → (relative path → sha256 hex), from Azurite.
fn uploaded(ws: &Workspace) -> BTreeMap<String, BTreeMap<String, String>> {
    let (client, container) = ws.blobs();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut all = BTreeMap::new();
    for (_, _, path) in ASSETS {
        let prefix = format!("{path}/");
        let mut files = BTreeMap::new();
        for name in ws.blob_names(&prefix) {
            let rel = name.strip_prefix(&prefix).unwrap().to_string();
            if rel == ".clara-asset.json" {
                continue; // the provider's completion marker, not NGC content
            }
            let data = rt
                .block_on(client.get_bytes(&container, &name))
                .unwrap()
                .unwrap();
            files.insert(rel, sha256_hex(&data));
        }
        assert!(!files.is_empty(), "the provider uploaded nothing to {path}");
        all.insert(path.to_string(), files);
    }
    all
}

fn run_ngcsdk(ws: &Workspace, python: &str, key: &str, out: &std::path::Path) -> Json {
    std::fs::create_dir_all(out).unwrap();
    let mut cmd = Command::new(python);
    cmd.arg(repo_root().join("tests/oracle/ngcsdk_download.py"))
        .arg(out)
        .args(ASSETS.iter().map(|(t, k, _)| format!("{k}:{t}")))
        .env("NGC_CLI_API_URL", &ws.emulator.url)
        .env("NGC_CLI_AUTH_URL", &ws.emulator.url)
        .env("REQUESTS_CA_BUNDLE", ws.emulator.ca_file())
        .env("SSL_CERT_FILE", ws.emulator.ca_file())
        .env("NGC_CLI_HOME", out.join("home"))
        .env("HOME", out.join("home"))
        .env("ORACLE_NGC_KEY", key)
        .env("ORACLE_NGC_ORG", if key.is_empty() { "" } else { "nvidia" });
    for k in [
        "NGC_CLI_API_KEY",
        "NGC_API_KEY",
        "NGC_APP_KEY",
        "NGC_CLI_ORG",
        "NGC_CLI_TEAM",
    ] {
        cmd.env_remove(k);
    }
    let o = cmd.output().expect("run ngcsdk");
    let text = combined(&o);
    assert!(
        o.status.success(),
        "ngcsdk with key {key:?} failed:\n{text}"
    );
    assert!(!text.contains(LEGACY_KEY) && !text.contains(NVAPI_KEY));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// Requests per `method op status`.
fn counts(log: &[Json]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in log {
        let k = format!(
            "{} {} {}",
            r["method"].as_str().unwrap_or("?"),
            r["op"].as_str().unwrap_or("?"),
            r["status"]
        );
        *m.entry(k).or_default() += 1;
    }
    m
}

#[test]
fn ngcsdk_downloads_byte_identical_walkthrough_assets_with_every_key_kind() {
    let python = ngcsdk_python();
    let ws = Workspace::inline(&hcl(), emulator_config());
    // The licence of the gated PyTorch MMAR is accepted once, as on the NGC catalog page.
    ws.emulator.admin(
        Method::PUT,
        "ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    );
    ws.apply(&[]);
    let provider_log = ws.emulator.requests();
    let uploads = uploaded(&ws);

    let mut seen = ws.emulator.requests().len();
    let mut summary = Vec::new();
    for key in ["", LEGACY_KEY, NVAPI_KEY] {
        let kind = match key {
            "" => "guest",
            LEGACY_KEY => "legacy",
            _ => "nvapi",
        };
        let report = run_ngcsdk(
            &ws,
            &python,
            key,
            &ws.tmp.path().join(format!("ngcsdk-{kind}")),
        );
        assert_eq!(report["key_kind"], kind);
        let assets = report["assets"].as_array().unwrap();
        assert_eq!(assets.len(), ASSETS.len());
        for ((target, _, path), a) in ASSETS.iter().zip(assets) {
            assert_eq!(a["target"], *target);
            assert_eq!(a["info_status"], "UPLOAD_COMPLETE", "{target}");
            assert_eq!(a["status"], "Completed", "{kind} {target}: {a}");
            let listed = a["listed"].as_object().unwrap();
            let downloaded = a["downloaded"].as_object().unwrap();
            let ours = &uploads[*path];
            let names = |m: &serde_json::Map<String, Json>| m.keys().cloned().collect::<Vec<_>>();
            assert_eq!(
                names(listed),
                ours.keys().cloned().collect::<Vec<_>>(),
                "{kind} {target}: listing"
            );
            assert_eq!(
                names(downloaded),
                names(listed),
                "{kind} {target}: downloaded files"
            );
            for (rel, d) in downloaded {
                assert_eq!(
                    d["sha256_hex"].as_str().unwrap(),
                    ours[rel],
                    "{kind} {target}: {rel} differs from the provider's upload"
                );
                assert_eq!(
                    d["size"], listed[rel]["size"],
                    "{kind} {target}: {rel} size"
                );
            }
        }
        let log = ws.emulator.requests();
        let mine: Vec<Json> = log[seen..]
            .iter()
            .filter(|r| r["op"].as_str().is_some_and(|o| o.starts_with("ngc.")))
            .cloned()
            .collect();
        let mine = &mine[..];
        seen = log.len();
        let c = counts(mine);
        assert!(
            mine.iter()
                .all(|r| r["status"].as_u64().is_some_and(|s| s < 400)),
            "ngcsdk ({kind}) got an error from the emulator: {c:#?}"
        );
        let files: usize = ASSETS.len();
        let n = |op: &str| mine.iter().filter(|r| r["op"] == op).count();
        assert!(
            n("ngc.manifest") >= files,
            "{kind}: presigned manifest per asset: {c:#?}"
        );
        assert_eq!(
            n("ngc.file"),
            0,
            "{kind}: ngcsdk never uses the per-file 302 route"
        );
        match kind {
            "nvapi" => assert!(n("ngc.caller_info") >= 1, "{c:#?}"),
            "legacy" => {
                assert!(n("ngc.orgs") >= 1 && n("ngc.token") >= 1, "{c:#?}")
            }
            _ => assert_eq!(n("ngc.token") + n("ngc.caller_info"), 0, "{c:#?}"),
        }
        summary.push((kind, c));
    }

    println!("provider (terraform apply) NGC requests per route:");
    for (k, v) in counts(
        &provider_log
            .iter()
            .filter(|r| r["op"].as_str().is_some_and(|o| o.starts_with("ngc.")))
            .cloned()
            .collect::<Vec<_>>(),
    ) {
        println!("  {v:5}  {k}");
    }
    for (kind, c) in &summary {
        println!("ngcsdk 4.37.0, {kind} key: requests per route (method op status):");
        for (k, v) in c {
            println!("  {v:5}  {k}");
        }
    }
    let total: usize = uploads.values().map(BTreeMap::len).sum();
    println!(
        "{} assets, {total} files: ngcsdk downloads with no key, a legacy key and an nvapi- key are byte-identical to the provider's uploads",
        ASSETS.len()
    );
}
