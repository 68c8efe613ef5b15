//! Microsoft's own client as an oracle: azure-ai-ml 1.35.2 (with azure-identity), installed by
//! `scripts/tools.sh azureml` from the locked scripts/python/azureml-requirements.txt, drives
//! the emulator through `ARM_CLOUD_METADATA_URL` only (tests/oracle/azureml_oracle.py). Where
//! the SDK and the emulator disagree, the SDK is right: this test fails.
//!
//! It fails (never skips) when the venv cannot be installed.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use serde_json::{Value as Json, json};
use support::spec;
use support::*;

fn azureml_python() -> String {
    let out = Command::new(repo_root().join("scripts/tools.sh"))
        .arg("azureml")
        .output()
        .expect("run scripts/tools.sh azureml");
    assert!(
        out.status.success(),
        "scripts/tools.sh azureml failed (the azure-ai-ml oracle needs its venv):\n{}",
        combined(&out)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The log split at the script's step markers: step name → the requests made in it.
fn requests_by_step(log: &[Json]) -> Vec<(String, Vec<Json>)> {
    let mut steps: Vec<(String, Vec<Json>)> = vec![("(before)".into(), vec![])];
    for r in log {
        let query = r["query"].as_str().unwrap_or("");
        if let Some(name) = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "oracle-step")
            .map(|(_, v)| v.into_owned())
        {
            steps.push((name, vec![]));
        } else {
            steps.last_mut().unwrap().1.push(r.clone());
        }
    }
    steps
}

fn op_counts(reqs: &[Json]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in reqs {
        let key = format!(
            "{} {}",
            r["op"].as_str().unwrap_or("?"),
            r["status"]
                .as_u64()
                .map_or("dropped".into(), |s| s.to_string())
        );
        *m.entry(key).or_default() += 1;
    }
    m
}

#[test]
fn azure_ai_ml_drives_the_emulator_through_cloud_metadata() {
    let python = azureml_python();
    let tmp = tempfile::tempdir().unwrap();
    let mut config = emulator_config();
    config["jobs"] = json!({"phase_ms": 100, "cancel_ms": 100});
    let emu = Emulator::start(&tmp.path().join("emulator"), config);

    let out = Command::new(&python)
        .arg("-I")
        .arg(repo_root().join("tests/oracle/azureml_oracle.py"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", tmp.path())
        .env("ORACLE_URL", &emu.url)
        .env("ORACLE_TENANT", TENANT)
        .env("ORACLE_CLIENT_ID", CLIENT_ID)
        .env("ORACLE_CLIENT_SECRET", CLIENT_SECRET)
        .env("ORACLE_SUBSCRIPTION", SUBSCRIPTION)
        .env("ORACLE_RESOURCE_GROUP", RESOURCE_GROUP)
        .env("ORACLE_WORKSPACE", WORKSPACE)
        .env(
            "ARM_CLOUD_METADATA_URL",
            format!("{}/metadata/endpoints?api-version=2019-05-01", emu.url),
        )
        .env("REQUESTS_CA_BUNDLE", emu.ca_file())
        .env("SSL_CERT_FILE", emu.ca_file())
        .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
        .output()
        .expect("run the azure-ai-ml oracle");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "azure-ai-ml disagreed with the emulator:\n{}",
        combined(&out)
    );
    let lines: Vec<Json> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Json>(l).ok())
        .collect();
    let done = lines
        .iter()
        .find(|l| l["done"] == true)
        .unwrap_or_else(|| panic!("the oracle did not finish:\n{stdout}"));
    assert_eq!(done["azure_ai_ml"], "1.35.2");

    println!("what the SDK read back:");
    for l in lines.iter().filter(|l| l.get("step").is_none()) {
        println!("  {l}");
    }
    let log = emu.requests();
    let steps = requests_by_step(&log);
    println!(
        "azure-ai-ml {} / azure-identity {}: requests per operation (op status: count)",
        done["azure_ai_ml"].as_str().unwrap_or("?"),
        done["azure_identity"].as_str().unwrap_or("?")
    );
    let mut total = 0;
    for (step, reqs) in &steps {
        total += reqs.len();
        println!("  {step:<20} {:>3}  {:?}", reqs.len(), op_counts(reqs));
    }
    println!("  {:<20} {total:>3}", "total");

    // Calibration of tests/support/spec.rs: Microsoft's client judged by Microsoft's spec.
    // Informational (the SDK calls several api-versions, the local spec is 2025-12-01).
    let judge = spec::Spec::load_default();
    let mut judged = 0;
    let mut versions = std::collections::BTreeSet::new();
    let mut findings = Vec::new();
    for r in &log {
        let path = r["path"].as_str().unwrap_or("");
        let op = r["op"].as_str().unwrap_or("");
        if !path.starts_with("/subscriptions/")
            || ["opstatus", "opresult", "job.cancel.poll", "job.delete.poll"].contains(&op)
        {
            continue;
        }
        let query = r["query"].as_str().unwrap_or("");
        if let Some(v) =
            url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "api-version")
        {
            versions.insert(format!("{op}={}", v.1));
        }
        judged += 1;
        let body = r.get("body").filter(|b| !b.is_null());
        for p in judge.validate_request(r["method"].as_str().unwrap_or(""), path, query, body) {
            if !p.contains(spec::NOT_IN_LOCAL_COPY) {
                findings.push(format!("{op}: {p}"));
            }
        }
    }
    findings.sort();
    findings.dedup();
    println!(
        "the SDK's {judged} ARM requests judged by the 2025-12-01 spec: {} finding(s); api-versions {versions:?}",
        findings.len()
    );
    for f in &findings {
        println!("  {f}");
    }

    let names: Vec<&str> = steps.iter().map(|(s, _)| s.as_str()).collect();
    for want in [
        "sign-in",
        "workspace.get",
        "compute.create",
        "compute.get",
        "compute.update",
        "environment.create",
        "environment.get",
        "job.create",
        "job.wait",
        "job.get",
        "job.cancel",
        "compute.delete",
        "end",
    ] {
        assert!(names.contains(&want), "step {want} missing: {names:?}");
    }
    // Every route the SDK used exists, and nothing failed on the server.
    for r in &log {
        assert_ne!(
            r["op"], "unknown",
            "the SDK called a route the emulator lacks: {r}"
        );
        let status = r["status"].as_u64().unwrap_or(0);
        assert!(status < 500, "server error: {r}");
    }
    let step = |name: &str| -> BTreeMap<String, usize> {
        op_counts(&steps.iter().find(|(s, _)| s == name).unwrap().1)
    };
    // The SDK read the cloud document itself (not only our markers) and signed in once.
    assert!(
        step("sign-in").contains_key("metadata.endpoints 200"),
        "the SDK never read the cloud metadata: {:?}",
        step("sign-in")
    );
    let tokens: usize = log.iter().filter(|r| r["op"] == "token").count();
    assert_eq!(
        tokens, 1,
        "one client-credentials token for the whole session"
    );
    // …for the cloud's resourceManager, as `_get_cloud_information_from_metadata` scopes it.
    let token = log.iter().find(|r| r["op"] == "token").unwrap();
    assert_eq!(
        token["body"]["scope"],
        format!("{}/.default", emu.url),
        "{token}"
    );
    assert_eq!(step("compute.create").get("compute.create 201"), Some(&1));
    assert_eq!(step("job.create").get("job.create 201"), Some(&1));
    assert_eq!(step("job.cancel").get("job.cancel 202"), Some(&1));
    assert_eq!(step("compute.delete").get("compute.delete 202"), Some(&1));
    assert_eq!(
        step("environment.create").get("environment.create 201"),
        Some(&1)
    );
    assert!(emu.computes().is_empty(), "the cluster is gone");
}
