//! Every Azure ML request the provider sends during the whole walkthrough (apply → plan →
//! destroy of examples/covid19-ct-finetune, as tests/pipeline.rs runs it) judged by Microsoft's
//! spec, read now from ../shared/reference/azureml-spec/ (tests/support/spec.rs): the path
//! matches a spec path template under its method, path and query parameters fit, the body fits
//! the body parameter's schema (read-only members absent, required present, enums,
//! discriminators, no unknown members).
//!
//! Requests to URLs the service handed out (long-running operation status/result) are not
//! spec paths and are skipped; so are non-ARM requests (token, NGC, MLflow).

mod support;

use serde_json::json;
use support::spec::{self, Spec};
use support::*;

#[test]
fn every_request_of_the_walkthrough_fits_the_spec() {
    let spec = Spec::shared();
    let mut config = emulator_config();
    config["jobs"] = json!({"phase_ms": 100});
    let ws = Workspace::walkthrough(config, false);
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);

    let log = ws.emulator.requests();
    let judged = spec.judge_log(&log, Some(PROVIDER_UA));
    let total = judged.total();
    println!(
        "validated {total} ARM requests of the provider ({} with a body) against the spec; skipped {} (LRO polls, token, NGC, MLflow, blob)",
        judged.with_body, judged.skipped
    );
    for (k, n) in &judged.by_op {
        println!("  {k:<40} {n}");
    }
    println!(
        "not judged (their spec file, workspaceRP.json, is not in the local copy): {:?}",
        judged.elsewhere
    );
    // Every ARM request of the log came from the provider (the test sent none itself).
    let arm = log
        .iter()
        .filter(|r| {
            r["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/subscriptions/"))
        })
        .filter(|r| !spec::HANDED_OUT.contains(&r["op"].as_str().unwrap_or("")))
        .count();
    assert_eq!(arm, total, "requests without the provider's User-Agent");
    assert!(
        total > 30,
        "the walkthrough sent too few ARM requests: {:?}",
        judged.by_op
    );
    for must in [
        "PUT compute.create",
        "PUT job.create",
        "PUT environment.create",
    ] {
        assert!(
            judged.by_op.contains_key(must),
            "{must} not seen: {:?}",
            judged.by_op
        );
    }
    assert!(
        judged.problems.is_empty(),
        "{} request(s) do not fit Microsoft's spec:\n{}",
        judged.problems.len(),
        judged.problems.join("\n")
    );
}
