//! `ngc_asset` with the real Terraform against the emulator's NGC catalog and Azurite.

mod support;

use reqwest::Method;
use serde_json::json;
use support::*;

const MMAR: &str = r#"
resource "ngc_asset" "mmar" {
  provider       = clara
  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/covid"

  data_asset {
    name = "covid-mmar"
  }
}
"#;

fn asset(source: &str, extra: &str) -> String {
    format!(
        "resource \"ngc_asset\" \"a\" {{\n  provider = clara\n  source = \"{source}\"\n  datastore_path = \"assets/a\"\n  {extra}\n}}\n"
    )
}

fn served_bytes(ws: &Workspace) -> u64 {
    ws.emulator
        .requests()
        .iter()
        .filter(|r| r["op"] == "ngc.download")
        .map(|r| r["bytes"].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn mmar_lifecycle_with_drift_repair_and_clean_destroy() {
    // Plan finds drift by reading the blobs with an Entra ID token (plan never reads
    // datastore secrets), so storage is Azurite in OAuth mode over https.
    let ws = Workspace::inline_oauth(MMAR, emulator_config());
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    let blobs = ws.blob_names("mmars/covid/");
    assert!(
        blobs
            .iter()
            .any(|b| b == "mmars/covid/commands/train_finetune.sh"),
        "{blobs:?}"
    );
    assert!(
        blobs
            .iter()
            .any(|b| b == "mmars/covid/config/config_train.json"),
        "{blobs:?}"
    );
    assert!(
        blobs.iter().any(|b| b == "mmars/covid/.clara-asset.json"),
        "the completion marker is written"
    );
    let state: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    let attrs = &state["values"]["root_module"]["resources"][0]["values"];
    assert_eq!(attrs["resolved_version"], "1");
    assert_eq!(
        attrs["file_count"].as_u64().unwrap() as usize,
        blobs.len() - 1
    );
    assert!(
        attrs["datastore_uri"]
            .as_str()
            .unwrap()
            .starts_with("azureml://datastores/workspaceblobstore/paths/mmars/covid/")
    );
    assert!(
        attrs["data_asset_id"]
            .as_str()
            .unwrap()
            .ends_with("/data/covid-mmar/versions/1")
    );

    // A blob deleted behind Terraform's back plans a re-creation; apply restores it.
    ws.delete_blob("mmars/covid/commands/infer.sh");
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("ngc_asset.mmar will be created"), "{text}");
    let served_before = served_bytes(&ws);
    ws.apply(&[]);
    assert!(
        ws.blob_names("mmars/covid/")
            .contains(&"mmars/covid/commands/infer.sh".to_string())
    );
    assert_eq!(
        served_bytes(&ws),
        served_before,
        "the verified local copy is reused: nothing downloaded again"
    );
    ws.assert_no_changes(&[]);

    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    assert!(
        ws.blob_names("mmars/covid/").is_empty(),
        "destroy leaves no blob: {:?}",
        ws.blob_names("mmars/covid/")
    );
    let data = ws.emulator.arm_get(&format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}/data/covid-mmar/versions/1"
    ));
    assert_eq!(
        data["properties"]["isArchived"], true,
        "the data asset version is archived"
    );
}

#[test]
fn killed_download_resumes_fetching_less_than_1_2x() {
    let size: u64 = 256 << 20;
    let ws = Workspace::inline(
        &asset("nvidia/synthetic/size-256MiB", ""),
        emulator_config(),
    );
    // Pause the body a third of the way in, so the kill lands mid-transfer.
    ws.emulator.admin(Method::POST, "ngc/faults", Some(json!({"kind": "stall", "asset": "nvidia/synthetic/size-256MiB", "after_bytes": size / 3, "stall_ms": 20000})));
    let mut cmd = ws.command(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let part_dir = ws.tmp.path().join("cache");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let partial: u64 = walk(&part_dir)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "part"))
            .map(|p| p.metadata().map(|m| m.len()).unwrap_or(0))
            .sum();
        if partial >= size / 4 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "download never got going"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Kill terraform, as a crash would; the provider notices its parent is gone and exits.
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-KILL", &pid])
        .status()
        .unwrap();
    let _ = child.wait();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let early = ws.blob_names("assets/a/");
    assert!(
        early.is_empty(),
        "nothing uploaded before the download finished: {early:?}; served {}",
        served_bytes(&ws)
    );

    ws.apply(&[]);
    let total = served_bytes(&ws);
    assert!(
        total < size * 12 / 10,
        "fetched {total} bytes in total for a {size}-byte asset (limit 1.2x)"
    );
    assert!(
        total >= size,
        "the whole asset was served across both runs: {total}"
    );
    let blobs = ws.blob_names("assets/a/");
    assert_eq!(blobs.len(), 2, "the file and the marker: {blobs:?}");
    ws.assert_no_changes(&[]);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p))
            } else {
                out.push(p)
            }
        }
    }
    out
}

#[test]
fn bad_content_fails_the_apply_and_uploads_nothing() {
    let cases: &[(&str, Option<serde_json::Value>, &str)] = &[
        (
            "nvidia/synthetic/size-4MiB",
            Some(
                json!({"kind": "corrupt", "asset": "nvidia/synthetic/size-4MiB", "offset": 1000, "times": 0}),
            ),
            "sha256",
        ),
        (
            "nvidia/synthetic/size-4MiB",
            Some(
                json!({"kind": "body_drop", "asset": "nvidia/synthetic/size-4MiB", "after_bytes": 0, "times": 0}),
            ),
            "Download failed",
        ),
        (
            "nvidia/hostile/zip-slip",
            None,
            "refusing archive entry \"../evil.txt\"",
        ),
        ("nvidia/hostile/zip-bomb", None, "looks like a zip bomb"),
    ];
    for (source, fault, expect) in cases {
        let ws = Workspace::inline(&asset(source, "type = \"resource\""), emulator_config());
        if let Some(f) = fault {
            ws.emulator
                .admin(Method::POST, "ngc/faults", Some(f.clone()));
        }
        let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        assert_ne!(code, 0, "{source} should fail:\n{text}");
        // Terraform wraps diagnostics at 80 columns: compare with whitespace folded.
        let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            folded.to_lowercase().contains(&expect.to_lowercase()),
            "{source}: expected '{expect}' in:\n{text}"
        );
        assert!(
            text.contains("with ngc_asset.a"),
            "the diagnostic names the resource:\n{text}"
        );
        assert!(
            ws.blob_names("assets/").is_empty(),
            "{source}: nothing may be uploaded: {:?}",
            ws.blob_names("assets/")
        );
        assert!(
            ws.state_file().is_empty() || !ws.state_file().contains("ngc_asset"),
            "{source}: nothing recorded"
        );
    }
}

#[test]
fn private_assets_need_a_key_and_both_key_kinds_work() {
    let private = asset("clara-private/research/covid_ct_finetuned:1", "");
    let ws = Workspace::inline(&private, emulator_config());
    let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("401") || text.contains("API key"), "{text}");
    assert!(
        text.contains("NGC_CLI_API_KEY"),
        "the diagnostic says how to set a key:\n{text}"
    );

    for key in ["ngc-legacy-key-do-not-log", "nvapi-emulator-key-do-not-log"] {
        let mut ws = Workspace::inline(&private, emulator_config());
        ws.set_env("NGC_CLI_API_KEY", key);
        let log = ws.tmp.path().join("trace.log");
        let mut cmd = ws.command(&["apply", "-auto-approve", "-input=false", "-no-color"]);
        cmd.env("TF_LOG", "trace").env("TF_LOG_PATH", &log);
        let out = cmd.output().unwrap();
        let text = combined(&out);
        assert!(out.status.success(), "{key}: {text}");
        let exchanged = ws.emulator.count_ops("ngc.token", true);
        assert_eq!(
            exchanged > 0,
            key.starts_with("ngc-legacy"),
            "legacy keys are exchanged, nvapi- keys are not ({exchanged} exchanges)"
        );
        let plan = ws.ok(&["plan", "-no-color", "-out=tfplan"]);
        let plan_json = ws.ok(&["show", "-json", "tfplan"]);
        let trace = std::fs::read_to_string(&log).unwrap();
        for (what, t) in [
            ("state", ws.state_file()),
            ("plan", plan),
            ("plan json", plan_json),
            ("trace", trace),
            ("apply", text),
        ] {
            assert!(!t.contains(key), "NGC key leaked into {what}");
            assert!(
                !t.contains(clara_testkit::KEY),
                "datastore account key leaked into {what}"
            );
        }
    }
}

#[test]
fn licence_gate_gives_a_clear_diagnostic() {
    let ws = Workspace::inline(
        &asset("nvidia/med/clara_pt_covid19_3d_ct_classification:1", ""),
        emulator_config(),
    );
    let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.to_lowercase().contains("licen"), "{text}");
    ws.emulator.admin(
        Method::PUT,
        "ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    );
    ws.apply(&[]);
}

#[test]
fn walkthrough_ngc_config_in_hcl() {
    let ws = Workspace::with_storage("ngc-assets", emulator_config());
    ws.emulator.admin(
        Method::PUT,
        "ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    );
    let local = ws.tmp.path().join("additional_content");
    let var = format!("-var=local_copies={}", local.display());
    ws.apply(&[&var]);
    ws.assert_no_changes(&[&var]);
    assert!(
        local
            .join("clara_train_covid19_3d_ct_classification/commands/train_finetune.sh")
            .exists()
    );
    assert!(!ws.blob_names("getting_started/").is_empty());
    ws.ok(&["destroy", "-auto-approve", "-no-color", &var]);
    assert!(
        !local
            .join("clara_train_covid19_3d_ct_classification")
            .exists(),
        "the local copy this resource made is removed"
    );
    assert!(
        ws.blob_names("clara_train_covid19_3d_ct_classification/")
            .is_empty()
    );
}

const DATA_ASSET_ID_SUFFIX: &str = "/data/covid-mmar/versions/1";

/// The MMAR registered as a data asset, with a description and tags to edit.
fn mmar_resource(description: &str, tags: &str) -> String {
    format!(
        r#"
resource "ngc_asset" "mmar" {{
  provider       = clara
  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/covid"
  tags           = {tags}

  data_asset {{
    name        = "covid-mmar"
    description = "{description}"
  }}
}}
"#
    )
}

/// Stands for a run reading the asset: replaced whenever what it reads is (or may be) new.
const READER: &str = r#"
resource "terraform_data" "reader" {
  triggers_replace = [ngc_asset.mmar.datastore_uri, ngc_asset.mmar.data_asset_id]
}
"#;

fn mmar_with_metadata(description: &str, tags: &str) -> String {
    mmar_resource(description, tags) + READER
}

/// `terraform show -json` values of one resource.
fn values_of(ws: &Workspace, address: &str) -> serde_json::Value {
    let state: serde_json::Value = serde_json::from_str(&ws.ok(&["show", "-json"])).unwrap();
    state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["address"] == address)
        .unwrap_or_else(|| panic!("{address} not in state: {state}"))["values"]
        .clone()
}

fn blob_writes(ws: &Workspace) -> usize {
    ws.azurite
        .as_ref()
        .unwrap()
        .blob_requests()
        .iter()
        .filter(|(m, _)| m == "PUT" || m == "DELETE")
        .count()
}

fn data_asset_path() -> String {
    format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}{DATA_ASSET_ID_SUFFIX}"
    )
}

/// Issue 8: a data asset's description and tags update in place. The edit re-uploads
/// nothing (0 blob PUTs/DELETEs in Azurite's request log, 0 NGC bytes) and what a
/// downstream run reads (datastore URI, data asset id, its dataUri) stays the same.
#[test]
fn data_asset_description_and_tags_edit_in_place_uploads_nothing() {
    let ws = Workspace::inline(
        &mmar_with_metadata("Clara COVID-19 CT MMAR", r#"{ team = "imaging" }"#),
        emulator_config(),
    );
    ws.apply(&[]);
    let before = values_of(&ws, "ngc_asset.mmar");
    let data_uri_before = ws.emulator.arm_get(&data_asset_path())["properties"]["dataUri"].clone();
    let (writes, served, ngc_requests) = (
        blob_writes(&ws),
        served_bytes(&ws),
        ws.emulator.count_ops("ngc.manifest", false),
    );
    assert!(
        writes > 10,
        "the first apply uploads the MMAR ({writes} writes)"
    );

    std::fs::write(
        ws.dir.join("main.tf"),
        std::fs::read_to_string(ws.dir.join("main.tf"))
            .unwrap()
            .replace(
                &mmar_with_metadata("Clara COVID-19 CT MMAR", r#"{ team = "imaging" }"#),
                &mmar_with_metadata(
                    "Clara COVID-19 CT MMAR, v1 weights",
                    r#"{ team = "imaging", stage = "baseline" }"#,
                ),
            ),
    )
    .unwrap();
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("ngc_asset.mmar will be updated in-place"),
        "{text}"
    );
    assert!(
        text.contains("0 to add, 1 to change, 0 to destroy"),
        "{text}"
    );
    assert!(!text.contains("must be replaced"), "{text}");
    ws.apply(&[]);
    ws.assert_no_changes(&[]);

    let edit_writes = blob_writes(&ws) - writes;
    println!(
        "first apply: {writes} blob PUT/DELETE; description + tags edit: {edit_writes} blob PUT/DELETE, {} NGC bytes, {} NGC manifest requests",
        served_bytes(&ws) - served,
        ws.emulator.count_ops("ngc.manifest", false) - ngc_requests
    );
    assert_eq!(edit_writes, 0, "a metadata edit writes no blob");
    assert_eq!(served_bytes(&ws), served, "nothing downloaded again");
    let after = &values_of(&ws, "ngc_asset.mmar");
    for same in [
        "id",
        "datastore_uri",
        "data_asset_id",
        "content_digest",
        "file_count",
    ] {
        assert_eq!(after[same], before[same], "{same} changed");
    }
    let data = ws.emulator.arm_get(&data_asset_path());
    assert_eq!(
        data["properties"]["description"],
        "Clara COVID-19 CT MMAR, v1 weights"
    );
    assert_eq!(data["properties"]["tags"]["stage"], "baseline");
    assert_eq!(
        data["properties"]["dataUri"], data_uri_before,
        "runs reading the data asset see the same folder"
    );
}

/// Issue 8: values that reach an ARM or blob path are validated at validate/plan, naming the
/// attribute, and nothing is sent.
#[test]
fn path_values_are_rejected_at_validate_naming_the_attribute() {
    for (extra, attr) in [
        (
            "data_asset {\n    name = \"covid-mmar\"\n    version = \"1/../../../victim/versions/7\"\n  }",
            "data_asset.version",
        ),
        ("datastore = \"x/../workspaceblobstore\"", "datastore"),
        (
            "data_asset {\n    name = \"covid-mmar\"\n    version = \"7?api-version=1\"\n  }",
            "data_asset.version",
        ),
    ] {
        let ws = Workspace::inline(
            &asset(
                "nvidia/med/clara_train_covid19_3d_ct_classification:1",
                extra,
            ),
            emulator_config(),
        );
        for cmd in [
            vec!["validate", "-no-color"],
            vec!["plan", "-input=false", "-no-color"],
        ] {
            let (code, text) = ws.tf(&cmd);
            assert_eq!(code, 1, "{} accepted {extra}:\n{text}", cmd[0]);
            assert!(
                text.contains(&format!("{attr} must be")),
                "{}: the diagnostic names {attr}:\n{text}",
                cmd[0]
            );
        }
        assert!(
            ws.emulator.writes().is_empty(),
            "nothing written: {:?}",
            ws.emulator.writes()
        );
        assert_eq!(ws.emulator.count_ops("ngc.manifest", false), 0);
    }
}

/// Issue 8: `terraform import` by datastore URI, then the configuration that created the
/// asset plans "No changes" (content, settings and the data asset read back).
#[test]
fn import_by_datastore_uri_plans_no_changes() {
    let hcl = mmar_with_metadata("Clara COVID-19 CT MMAR", r#"{ team = "imaging" }"#);
    let ws = Workspace::inline(&hcl, emulator_config());
    ws.apply(&[]);
    let uri = "azureml://datastores/workspaceblobstore/paths/mmars/covid/";
    let created = values_of(&ws, "ngc_asset.mmar");
    assert_eq!(created["id"], uri);
    ws.ok(&["state", "rm", "ngc_asset.mmar"]);
    let (writes, served) = (blob_writes(&ws), served_bytes(&ws));
    let out = ws.ok(&["import", "-input=false", "-no-color", "ngc_asset.mmar", uri]);
    assert!(out.contains("Import successful"), "{out}");
    ws.assert_no_changes(&[]);
    let imported = &values_of(&ws, "ngc_asset.mmar");
    for k in [
        "id",
        "source",
        "type",
        "datastore",
        "datastore_path",
        "workspace_id",
        "resolved_version",
        "file_count",
        "total_size_bytes",
        "content_digest",
        "data_asset_id",
        "data_asset",
        "tags",
    ] {
        assert_eq!(imported[k], created[k], "{k} read back on import");
    }
    assert_eq!(blob_writes(&ws), writes, "import and plan write no blob");
    assert_eq!(served_bytes(&ws), served, "import downloads nothing");

    // The same through an `import {}` block, then through `-generate-config-out`.
    ws.ok(&["state", "rm", "ngc_asset.mmar"]);
    let import_block = format!(
        "import {{\n  provider = clara\n  to       = ngc_asset.mmar\n  id       = \"{uri}\"\n}}\n"
    );
    let main_tf = std::fs::read_to_string(ws.dir.join("main.tf")).unwrap();
    std::fs::write(ws.dir.join("import.tf"), &import_block).unwrap();
    let (code, text) = ws.plan(&[]);
    assert!(
        text.contains("1 to import, 0 to add, 0 to change, 0 to destroy"),
        "exit {code}: {text}"
    );
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    ws.ok(&["state", "rm", "ngc_asset.mmar"]);
    // (-generate-config-out cannot resolve references to the resource it generates: the
    // reader goes too.)
    std::fs::write(ws.dir.join("main.tf"), main_tf.replace(&hcl, "")).unwrap();
    let (code, text) = ws.tf(&[
        "plan",
        "-input=false",
        "-no-color",
        "-generate-config-out=generated.tf",
    ]);
    assert_eq!(code, 0, "{text}");
    let generated = std::fs::read_to_string(ws.dir.join("generated.tf")).unwrap();
    println!("-generate-config-out wrote:\n{generated}");
    assert!(
        generated.contains("\"nvidia/med/clara_train_covid19_3d_ct_classification:1\""),
        "{generated}"
    );
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    std::fs::remove_file(ws.dir.join("import.tf")).unwrap();
    std::fs::remove_file(ws.dir.join("generated.tf")).unwrap();
    std::fs::write(ws.dir.join("main.tf"), &main_tf).unwrap();

    // Something that is not an asset this provider uploaded is refused clearly.
    ws.ok(&["state", "rm", "ngc_asset.mmar"]);
    let (code, text) = ws.tf(&[
        "import",
        "-input=false",
        "-no-color",
        "ngc_asset.mmar",
        "azureml://datastores/workspaceblobstore/paths/nothing/here/",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(".clara-asset.json"), "{text}");
    let (code, text) = ws.tf(&[
        "import",
        "-input=false",
        "-no-color",
        "ngc_asset.mmar",
        "azureml://datastores/x/../workspaceblobstore/paths/mmars/covid/",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("datastore"), "{text}");
}

/// Issue 8: registering the uploaded folder as a data asset later, or unregistering it, is an
/// in-place update: no download, no content re-upload (only the completion marker is rewritten
/// so that import finds the registration), and removing archives the version.
#[test]
fn data_asset_added_and_removed_in_place() {
    let plain = asset("nvidia/med/clara_train_covid19_3d_ct_classification:1", "");
    let registered = asset(
        "nvidia/med/clara_train_covid19_3d_ct_classification:1",
        "data_asset {\n    name = \"covid-mmar\"\n  }",
    );
    let ws = Workspace::inline(&plain, emulator_config());
    ws.apply(&[]);
    let served = served_bytes(&ws);
    let write = |hcl: &str| {
        let main = std::fs::read_to_string(ws.dir.join("main.tf")).unwrap();
        let main = main.replace(&plain, hcl).replace(&registered, hcl);
        std::fs::write(ws.dir.join("main.tf"), main).unwrap();
    };
    let id = data_asset_path();

    write(&registered);
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("0 to add, 1 to change, 0 to destroy"),
        "{text}"
    );
    let writes = blob_writes(&ws);
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    let puts = blob_writes(&ws) - writes;
    assert_eq!(puts, 1, "only the completion marker is rewritten");
    assert_eq!(ws.emulator.arm_get(&id)["properties"]["isArchived"], false);

    // Import finds the registration recorded by the update.
    ws.ok(&["state", "rm", "ngc_asset.a"]);
    ws.ok(&[
        "import",
        "-input=false",
        "-no-color",
        "ngc_asset.a",
        "azureml://datastores/workspaceblobstore/paths/assets/a/",
    ]);
    ws.assert_no_changes(&[]);

    write(&plain);
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("0 to add, 1 to change, 0 to destroy"),
        "{text}"
    );
    ws.apply(&[]);
    ws.assert_no_changes(&[]);
    assert_eq!(ws.emulator.arm_get(&id)["properties"]["isArchived"], true);
    assert_eq!(served_bytes(&ws), served, "nothing downloaded again");
    println!("register in place: {puts} blob write (the marker); unregister: archived");
}

/// Issue 8: an unusable `local_directory` is refused at plan, naming the attribute, before
/// anything is downloaded or uploaded (it used to surface only after the uploads).
#[test]
fn unusable_local_directory_is_refused_at_plan() {
    let ws = Workspace::inline("", emulator_config());
    let file = ws.tmp.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    let under_file = file.join("copies");
    std::fs::write(
        ws.dir.join("asset.tf"),
        asset(
            "nvidia/med/clara_train_covid19_3d_ct_classification:1",
            &format!("local_directory = \"{}\"", under_file.display()),
        ),
    )
    .unwrap();
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("local_directory"), "{text}");
    assert!(text.contains("not a directory"), "{text}");
    let (code, text) = ws.tf(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        ws.emulator.count_ops("ngc.manifest", false),
        0,
        "nothing fetched"
    );
    assert_eq!(blob_writes(&ws), 0, "nothing uploaded");
}
