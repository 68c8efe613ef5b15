//! `azureml_gpu_cluster` and `azureml_vm_sizes` with the real Terraform CLI against the emulator.

mod support;

use support::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<String> {
    pairs.iter().map(|(k, v)| format!("-var={k}={v}")).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// apply → empty plan → scale change in place → vm_size change replaces → import → destroy.
fn lifecycle(ws: &Workspace) {
    let base = vars(&[("max_nodes", "1")]);
    ws.apply(&refs(&base));
    ws.assert_no_changes(&refs(&base));
    let computes = ws.emulator.computes();
    assert_eq!(computes.len(), 1, "{computes:?}");

    let scaled = vars(&[("max_nodes", "2")]);
    let (code, text) = ws.plan(&refs(&scaled));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("updated in-place"), "{text}");
    assert!(
        text.contains("0 to add, 1 to change, 0 to destroy"),
        "{text}"
    );
    ws.apply(&refs(&scaled));
    ws.assert_no_changes(&refs(&scaled));

    let resized = vars(&[("max_nodes", "2"), ("vm_size", "Standard_NC24s_v3")]);
    let (code, text) = ws.plan(&refs(&resized));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("must be replaced"), "{text}");
    let forcing: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("# forces replacement"))
        .collect();
    assert!(
        forcing.len() == 1 && forcing[0].contains("vm_size"),
        "replacement reason should name vm_size only: {forcing:?}\n{text}"
    );
    ws.apply(&refs(&resized));
    ws.assert_no_changes(&refs(&resized));

    let state: serde_json::Value = serde_json::from_str(&ws.state_file()).unwrap();
    let id = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "azureml_gpu_cluster")
        .unwrap()["instances"][0]["attributes"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(id.ends_with("/computes/clara-ct"), "{id}");
    ws.ok(&["state", "rm", "azureml_gpu_cluster.clara_ct"]);
    let mut import = vec!["import", "-input=false", "-no-color"];
    import.extend(refs(&resized));
    import.extend(["azureml_gpu_cluster.clara_ct", id.as_str()]);
    ws.ok(&import);
    ws.assert_no_changes(&refs(&resized));

    let mut destroy = vec!["destroy", "-auto-approve", "-input=false", "-no-color"];
    destroy.extend(refs(&resized));
    ws.ok(&destroy);
    assert!(
        ws.emulator.computes().is_empty(),
        "emulator still holds {:?}",
        ws.emulator.computes()
    );
}

#[test]
fn lifecycle_with_real_terraform() {
    let ws = Workspace::new("gpu-cluster");
    lifecycle(&ws);
    // Exactly one creation per apply that created a cluster: the first apply and the replacement.
    assert_eq!(ws.emulator.count_ops("compute.create", true), 2);
}

#[test]
fn lifecycle_survives_throttling_errors_and_dropped_connections() {
    let mut config = emulator_config();
    // drop_after applies a write and then drops the response: the retry must adopt, not duplicate.
    config["faults"] = serde_json::json!({"seed": 7, "rate": 0.2, "kinds": ["429", "503", "drop", "drop_after"], "retry_after_s": 1});
    let ws = Workspace::with_config("gpu-cluster", config);
    lifecycle(&ws);
    let requests = ws.emulator.requests();
    let faulted = requests.iter().filter(|r| !r["fault"].is_null()).count();
    println!("fault run: {} requests, {faulted} faulted", requests.len());
    assert!(
        faulted >= 5,
        "expected the emulator to inject faults, saw {faulted}"
    );
    assert_eq!(
        ws.emulator.count_ops("compute.create", true),
        2,
        "one creation per creating apply despite retries"
    );
}

#[test]
fn invalid_input_fails_before_any_write() {
    let ws = Workspace::new("gpu-cluster");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("cluster_name", "9starts-with-digit")], "name"),
        (&[("cluster_name", "ab")], "name"),
        (&[("cluster_name", "has_underscore")], "name"),
        (
            &[("cluster_name", "a-name-that-is-far-too-long-for-azure-ml")],
            "name",
        ),
        (&[("max_nodes", "0")], "max_nodes"),
        (&[("vm_size", "Standard_DS3_v2")], "vm_size"),
        (&[("vm_size", "Standard_Imaginary_v9")], "vm_size"),
    ];
    for (vs, attr) in cases {
        let v = vars(vs);
        let (code, text) = ws.plan(&refs(&v));
        assert_eq!(code, 1, "{vs:?} should fail:\n{text}");
        assert!(
            text.contains(&format!("with azureml_gpu_cluster.clara_ct,")) || text.contains(attr),
            "{vs:?}: {text}"
        );
        assert!(
            text.contains(attr),
            "diagnostic for {vs:?} should name {attr}:\n{text}"
        );
    }
    let gpu_list = ws.plan(&refs(&vars(&[("vm_size", "Standard_DS3_v2")]))).1;
    assert!(
        gpu_list.contains("Standard_NC12s_v3"),
        "the vm_size diagnostic lists GPU sizes:\n{gpu_list}"
    );

    // Cross-attribute and enum checks, in a configuration of their own.
    let bad = [
        ("min_nodes = 3\n  max_nodes = 1", "min_nodes"),
        (
            "max_nodes = 1\n  idle_seconds_before_scaledown = -5",
            "idle_seconds_before_scaledown",
        ),
        ("max_nodes = 1\n  vm_priority = \"Spot\"", "vm_priority"),
    ];
    for (body, attr) in bad {
        let hcl = format!(
            "resource \"azureml_gpu_cluster\" \"bad\" {{\n  provider = clara\n  name = \"bad-cluster\"\n  vm_size = \"Standard_NC12s_v3\"\n  {body}\n}}\n"
        );
        std::fs::write(ws.dir.join("bad.tf"), hcl).unwrap();
        let (code, text) = ws.tf(&["validate", "-no-color"]);
        assert_eq!(code, 1, "{body} should fail validate:\n{text}");
        assert!(
            text.contains(attr),
            "diagnostic for {body} should name {attr}:\n{text}"
        );
    }
    std::fs::remove_file(ws.dir.join("bad.tf")).unwrap();
    assert!(
        ws.emulator.writes().is_empty(),
        "no write may reach Azure: {:?}",
        ws.emulator.writes()
    );
}

#[test]
fn secrets_never_reach_state_plan_or_logs() {
    let mut ws = Workspace::new("gpu-cluster");
    let password = "Sup3r-Secret-Node-Passw0rd!";
    ws.set_env("TF_VAR_admin_password", password);
    let log = ws.tmp.path().join("trace.log");
    let mut cmd = ws.command(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-var=admin_username=clara",
    ]);
    cmd.env("TF_LOG", "trace").env("TF_LOG_PATH", &log);
    let out = cmd.output().unwrap();
    let text = combined(&out);
    assert!(out.status.success(), "{text}");
    let plan_out = ws.ok(&[
        "plan",
        "-no-color",
        "-var=admin_username=clara",
        "-out=tfplan",
    ]);
    let show_plan = ws.ok(&["show", "-json", "tfplan"]);
    let show_state = ws.ok(&["show", "-json"]);
    let trace = std::fs::read_to_string(&log).unwrap();
    assert!(
        trace.len() > 10_000,
        "trace log should be substantial, got {} bytes",
        trace.len()
    );
    assert!(
        trace.contains("azureml_gpu_cluster"),
        "trace log should cover the provider"
    );
    for (what, text) in [
        ("terraform.tfstate", ws.state_file()),
        ("show -json", show_state),
        ("plan -json", show_plan),
        ("plan output", plan_out),
        ("apply output", text),
        ("TF_LOG=trace", trace),
    ] {
        assert!(
            !text.contains(password),
            "admin_password leaked into {what}"
        );
        assert!(
            !text.contains(CLIENT_SECRET),
            "client secret leaked into {what}"
        );
    }
    // The password did reach Azure: the emulator saw a credential (redacted in its own log).
    let creates: Vec<_> = ws
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r["op"] == "compute.create")
        .collect();
    assert_eq!(
        creates[0]["body"]["properties"]["properties"]["userAccountCredentials"]["adminUserPassword"],
        "<redacted>"
    );
}

#[test]
fn drift_is_detected_and_repaired() {
    let ws = Workspace::new("gpu-cluster");
    ws.apply(&[]);
    // Delete out of band: the plan re-creates.
    let id = ws.emulator.computes()[0]["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    ws.emulator.delete_arm(&id);
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("will be created"), "{text}");
    ws.apply(&[]);
    // Scale changed out of band: the plan updates in place.
    ws.emulator.patch_arm(&id, serde_json::json!({"properties": {"properties": {"scaleSettings": {"minNodeCount": 0, "maxNodeCount": 4, "nodeIdleTimeBeforeScaleDown": "PT300S"}}}}));
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("updated in-place") && text.contains("max_nodes"),
        "{text}"
    );
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

#[test]
fn vm_sizes_data_source_lists_gpu_sizes_with_prices() {
    let ws = Workspace::new("gpu-cluster");
    ws.apply(&[]);
    let out: serde_json::Value = serde_json::from_str(&ws.ok(&["output", "-json"])).unwrap();
    assert_eq!(out["gpus_per_node"]["value"], 2);
    assert!(out["max_hourly_cost"]["value"].as_f64().unwrap() > 0.0);
    let state = ws.ok(&["show", "-json"]);
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let ds = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "azureml_vm_sizes")
        .unwrap()
        .clone();
    let sizes = ds["values"]["sizes"].as_array().unwrap();
    assert!(
        sizes.iter().all(|s| s["gpus"].as_i64().unwrap() > 0),
        "gpu_only keeps GPU sizes only"
    );
    assert!(
        sizes
            .iter()
            .any(|s| s["name"] == "Standard_ND40rs_v2" && s["gpus"] == 8)
    );
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

#[test]
fn interrupted_create_is_adopted_on_the_next_apply() {
    let mut config = emulator_config();
    config["lro_delay_ms"] = serde_json::json!(5_000);
    let ws = Workspace::with_config("gpu-cluster", config);
    let mut apply = ws.command(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let child = apply
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt once Azure has accepted the cluster and the provider is waiting on it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while ws.emulator.count_ops("compute.create", true) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "apply never created the cluster"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let pid = child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let text = combined(&out);
    assert!(
        !out.status.success(),
        "interrupted apply should fail:\n{text}"
    );
    assert!(text.contains("interrupted"), "{text}");
    assert!(
        ws.state_file().is_empty() || !ws.state_file().contains("clara-ct"),
        "nothing was recorded yet"
    );

    // Re-apply while Azure is still creating: the cluster is adopted and awaited, not created again.
    assert_eq!(
        ws.emulator.computes()[0]["resource"]["properties"]["provisioningState"],
        "Creating"
    );
    let text = ws.apply(&[]);
    assert!(text.contains("1 added"), "{text}");
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        folded.contains("Adopted the cluster an interrupted apply created"),
        "the adoption is announced:\n{text}"
    );
    ws.assert_no_changes(&[]);
    assert_eq!(
        ws.emulator.count_ops("compute.create", true),
        1,
        "exactly one creation"
    );
    assert_eq!(ws.emulator.computes().len(), 1);
}
