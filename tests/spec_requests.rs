//! Every Azure ML request the provider sends during the whole walkthrough (apply → plan →
//! destroy of examples/covid19-ct-finetune, as tests/pipeline.rs runs it) judged by Microsoft's
//! spec, read now from ../shared/reference/azureml-spec/ (tests/support/spec.rs): the path
//! matches a spec path template under its method, path and query parameters fit, the body fits
//! the body parameter's schema (read-only members absent, required present, enums,
//! discriminators, no unknown members).
//!
//! Requests to URLs the service handed out (long-running operation status/result) are not
//! spec paths and are skipped; so are non-ARM requests (token, NGC, MLflow).

#[path = "support/spec.rs"]
mod spec;
mod support;

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::json;
use support::*;

/// Ops of URLs the service returns in `Azure-AsyncOperation` / `Location` headers.
const HANDED_OUT: [&str; 4] = ["opstatus", "opresult", "job.cancel.poll", "job.delete.poll"];

#[test]
fn every_request_of_the_walkthrough_fits_the_spec() {
    let spec = spec::Spec::load_default();
    let mut config = emulator_config();
    config["jobs"] = json!({"phase_ms": 100});
    let mut ws = Workspace::with_storage("covid19-ct-finetune", config);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.emulator.admin(
        Method::PUT,
        "ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    );
    ws.ok(&["get", "-no-color"]);
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);

    let log = ws.emulator.requests();
    let mut checked: BTreeMap<String, usize> = BTreeMap::new();
    let mut with_body = 0;
    let mut skipped = 0;
    let mut problems: Vec<String> = Vec::new();
    let mut elsewhere: BTreeMap<String, usize> = BTreeMap::new();
    for r in &log {
        let path = r["path"].as_str().unwrap_or("");
        let op = r["op"].as_str().unwrap_or("?");
        if !path.starts_with("/subscriptions/") || HANDED_OUT.contains(&op) {
            skipped += 1;
            continue;
        }
        let method = r["method"].as_str().unwrap_or("GET");
        let query = r["query"].as_str().unwrap_or("");
        let body = r.get("body").filter(|b| !b.is_null());
        assert!(
            body.is_none_or(|b| b.get("_unparsed_bytes").is_none()),
            "a non-JSON body was sent to ARM: {r}"
        );
        with_body += usize::from(body.is_some());
        *checked.entry(format!("{method} {op}")).or_default() += 1;
        for p in spec.validate_request(method, path, query, body) {
            if p.contains(spec::NOT_IN_LOCAL_COPY) {
                *elsewhere.entry(format!("{method} {op}")).or_default() += 1;
            } else {
                problems.push(format!("{op}: {p}"));
            }
        }
    }
    let total: usize = checked.values().sum();
    println!(
        "validated {total} ARM requests ({with_body} with a body) against the spec; skipped {skipped} (LRO polls, token, NGC, MLflow, blob)"
    );
    for (k, n) in &checked {
        println!("  {k:<40} {n}");
    }
    println!(
        "not judged (their spec file, workspaceRP.json, is not in the local copy): {elsewhere:?}"
    );
    assert!(
        elsewhere.keys().all(|k| k.starts_with("GET workspace.")),
        "only workspace reads may fall outside the local spec: {elsewhere:?}"
    );
    problems.sort();
    problems.dedup();
    assert!(
        total > 30,
        "the walkthrough sent too few ARM requests: {checked:?}"
    );
    for must in [
        "PUT compute.create",
        "PUT job.create",
        "PUT environment.create",
    ] {
        assert!(checked.contains_key(must), "{must} not seen: {checked:?}");
    }
    assert!(
        problems.is_empty(),
        "{} request(s) do not fit Microsoft's spec:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
