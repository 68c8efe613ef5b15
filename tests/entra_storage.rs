//! Blob storage through Microsoft Entra ID with the real Terraform: identity-based
//! datastores (no account key or SAS) on Azurite in OAuth mode over https, a principal
//! limited to Reader + Storage Blob Data Reader planning, and plan/refresh never calling
//! `datastores/listSecrets`.
//!
//! Azurite in OAuth mode still accepts Shared Key and SAS and checks no data role (see
//! `clara_testkit`), so "no key used" is proven from its auth log, and "no secret read" from
//! the emulator's request log.

mod support;

use reqwest::Method;
use serde_json::json;
use support::*;

const READER_ID: &str = "22222222-2222-2222-2222-222222222222";
const READER_SECRET: &str = "reader-secret-do-not-log";

/// A principal with Reader on the subscription and Storage Blob Data Reader.
fn with_reader(mut config: serde_json::Value) -> serde_json::Value {
    config["principals"] = json!([{
        "client_id": READER_ID,
        "client_secret": READER_SECRET,
        "roles": ["Reader", "Storage Blob Data Reader"],
    }]);
    config
}

fn list_secrets(ws: &Workspace) -> usize {
    ws.emulator.count_ops("datastore.listSecrets", false)
}

/// Token requests made with a client id.
fn token_requests(ws: &Workspace, client_id: &str) -> usize {
    ws.emulator
        .requests()
        .iter()
        .filter(|r| r["op"] == "token" && r["body"]["client_id"] == client_id)
        .count()
}

fn auth_log(ws: &Workspace) -> clara_testkit::AuthLog {
    ws.azurite.as_ref().unwrap().auth_log()
}

fn sign_in_as_reader(ws: &mut Workspace) {
    ws.set_env("ARM_CLIENT_ID", READER_ID);
    ws.set_env("ARM_CLIENT_SECRET", READER_SECRET);
}

const MMAR: &str = r#"
resource "ngc_asset" "mmar" {
  provider       = clara
  source         = "nvidia/med/clara_train_covid19_3d_ct_classification:1"
  datastore_path = "mmars/covid"
}
"#;

#[test]
fn identity_based_walkthrough_applies_with_entra_tokens_and_a_reader_plans_without_secrets() {
    let mut config = with_reader(emulator_config());
    config["jobs"] = json!({"phase_ms": 100});
    config["storage"] = json!({"identity_based": true});
    let mut ws = Workspace::with_oauth_storage("covid19-ct-finetune", config);
    ws.set_env("CLARA_JOB_POLL_SCALE", "0.05");
    ws.emulator.admin(
        Method::PUT,
        "ngc/eula",
        Some(
            json!({"asset": "nvidia/med/clara_pt_covid19_3d_ct_classification", "accepted": true}),
        ),
    );
    ws.ok(&["get", "-no-color"]);
    let ds = ws.emulator.arm_get(&format!(
        "/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.MachineLearningServices/workspaces/{WORKSPACE}/datastores/workspaceblobstore"
    ));
    assert_eq!(
        ds["properties"]["credentials"]["credentialsType"], "None",
        "{ds}"
    );

    // The walkthrough applies, every blob written with an Entra ID token.
    let text = ws.apply(&[]);
    assert!(
        text.contains("Apply complete! Resources: 9 added"),
        "{text}"
    );
    let applied = auth_log(&ws);
    let uploaded = ws.blob_names("clara/");
    println!(
        "identity-based apply: {} blobs under clara/, Azurite accepted {} bearer / {} shared key / {} SAS requests, {} listSecrets calls",
        uploaded.len(),
        applied.bearer,
        applied.shared_key,
        applied.sas,
        list_secrets(&ws)
    );
    assert!(uploaded.len() > 10, "{uploaded:?}");
    assert!(applied.bearer > uploaded.len(), "{applied:?}");
    assert_eq!((applied.shared_key, applied.sas), (0, 0), "{applied:?}");
    assert_eq!(list_secrets(&ws), 0, "identity-based: no secrets to list");
    ws.assert_no_changes(&[]);

    // A principal with only Reader + Storage Blob Data Reader plans, blobs verified.
    sign_in_as_reader(&mut ws);
    let before = ws.emulator.requests().len();
    let before_blobs = auth_log(&ws).bearer;
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 0, "the reader's plan: exit {code}\n{text}");
    assert!(text.contains("No changes."), "{text}");
    assert!(!text.contains("not verified"), "{text}");
    let requests = ws.emulator.requests();
    let reader_part = &requests[before..];
    let refused = reader_part
        .iter()
        .filter(|r| r["status"] == 403 || r["status"] == 401)
        .count();
    let blob_reads = auth_log(&ws).bearer - before_blobs;
    println!(
        "reader plan: {} emulator requests ({} token requests by the reader, {} refused), {} blob reads with its token, {} listSecrets calls in the whole run",
        reader_part.len(),
        token_requests(&ws, READER_ID),
        refused,
        blob_reads,
        list_secrets(&ws)
    );
    assert!(token_requests(&ws, READER_ID) >= 1, "the reader signed in");
    assert_eq!(refused, 0, "nothing the reader may not do was asked");
    assert!(
        blob_reads >= 3,
        "each asset's blobs were read: {blob_reads}"
    );
    assert_eq!(list_secrets(&ws), 0);

    // The reader's plan really looks at the blobs: one deleted behind Terraform's back plans
    // that asset's re-creation.
    let victim = ws
        .blob_names("clara/getting_started/")
        .into_iter()
        .find(|b| !b.ends_with(".clara-asset.json"))
        .expect("getting_started has files");
    ws.delete_blob(&victim);
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("will be created"), "{text}");
    assert_eq!(list_secrets(&ws), 0);

    // Back as the main principal: the asset is restored, then everything destroyed, with
    // Entra ID tokens throughout.
    ws.set_env("ARM_CLIENT_ID", CLIENT_ID);
    ws.set_env("ARM_CLIENT_SECRET", CLIENT_SECRET);
    ws.apply(&[]);
    assert!(ws.blob_names("clara/getting_started/").contains(&victim));
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
    let left = ws.blob_names("clara/");
    assert!(left.is_empty(), "destroy leaves no blob: {left:?}");
    let end = auth_log(&ws);
    println!(
        "whole run: {} bearer / {} shared key / {} SAS requests, {} listSecrets",
        end.bearer,
        end.shared_key,
        end.sas,
        list_secrets(&ws)
    );
    assert_eq!((end.shared_key, end.sas), (0, 0), "{end:?}");
    assert_eq!(list_secrets(&ws), 0);
}

#[test]
fn key_datastores_prefer_entra_id_and_plans_never_list_secrets() {
    // https storage, datastore holding an account key: the main principal (Storage Blob Data
    // Owner) uses its token anyway; the key is never fetched.
    let mut ws = Workspace::inline_oauth(MMAR, with_reader(emulator_config()));
    ws.apply(&[]);
    let log = auth_log(&ws);
    println!(
        "key datastore over https: {} bearer / {} shared key / {} SAS, {} listSecrets",
        log.bearer,
        log.shared_key,
        log.sas,
        list_secrets(&ws)
    );
    assert!(log.bearer > 0, "{log:?}");
    assert_eq!((log.shared_key, log.sas), (0, 0), "{log:?}");
    assert_eq!(list_secrets(&ws), 0);
    sign_in_as_reader(&mut ws);
    ws.assert_no_changes(&[]);
    assert_eq!(list_secrets(&ws), 0, "the reader's plan lists no secrets");

    // http storage (plain Azurite): no token is sent over http, so apply falls back to the
    // datastore's key; plan and refresh still never read it and say what they skipped.
    let ws = Workspace::inline(MMAR, emulator_config());
    ws.apply(&[]);
    let at_apply = list_secrets(&ws);
    assert!(at_apply >= 1, "apply used the key datastore's secret");
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Uploaded blobs not verified"), "{text}");
    ws.ok(&["refresh", "-no-color"]);
    println!(
        "key datastore over http: {at_apply} listSecrets at apply, {} during plan and refresh",
        list_secrets(&ws) - at_apply
    );
    assert_eq!(
        list_secrets(&ws),
        at_apply,
        "plan and refresh list no secrets"
    );
}
