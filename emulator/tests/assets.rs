//! Environment and code versions: create/get/list, containers, immutability (409) vs
//! mutable updates (200), archive, delete, validation, startPendingUpload.

mod common;
mod training_common;

use common::Emu;
use reqwest::{Method, StatusCode};
use serde_json::json;
use training_common::{code_path, env_body, env_path, jobs_config, stats};

#[tokio::test]
async fn environment_versions_and_container() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    let v1 = env_path(&emu, "clara", "1");

    let put = emu
        .arm(
            &token,
            Method::PUT,
            &v1,
            Some(env_body("nvcr.io/nvidia/clara-train-sdk:v3.0")),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    let b = &put.body;
    assert_eq!(b["name"], "1");
    assert_eq!(
        b["type"],
        "Microsoft.MachineLearningServices/workspaces/environments/versions"
    );
    assert!(
        b["id"]
            .as_str()
            .unwrap()
            .ends_with("/environments/clara/versions/1")
    );
    assert_eq!(
        b["properties"]["image"],
        "nvcr.io/nvidia/clara-train-sdk:v3.0"
    );
    assert_eq!(b["properties"]["osType"], "Linux");
    assert_eq!(b["properties"]["autoRebuild"], "Disabled");
    assert_eq!(b["properties"]["environmentType"], "UserCreated");
    assert_eq!(b["properties"]["provisioningState"], "Succeeded");
    assert_eq!(b["properties"]["isArchived"], false);
    assert!(b["systemData"]["createdAt"].is_string());

    let get = emu.arm(&token, Method::GET, &v1, None).await;
    assert_eq!((get.status, &get.body), (StatusCode::OK, b));

    let container = format!("{}/environments/clara", emu.ws_path());
    let c = emu.arm(&token, Method::GET, &container, None).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(
        (
            c.body["properties"]["latestVersion"].as_str(),
            c.body["properties"]["nextVersion"].as_str()
        ),
        (Some("1"), Some("2"))
    );

    let v2 = env_path(&emu, "clara", "2");
    let put = emu
        .arm(
            &token,
            Method::PUT,
            &v2,
            Some(env_body("nvcr.io/nvidia/clara-train-sdk:v4.0")),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED);
    let c = emu.arm(&token, Method::GET, &container, None).await;
    assert_eq!(
        (
            c.body["properties"]["latestVersion"].as_str(),
            c.body["properties"]["nextVersion"].as_str()
        ),
        (Some("2"), Some("3"))
    );
    let list = emu
        .arm(&token, Method::GET, &format!("{container}/versions"), None)
        .await;
    let names: Vec<&str> = list.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["2", "1"]);
    let all = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/environments", emu.ws_path()),
            None,
        )
        .await;
    assert_eq!(all.body["value"].as_array().unwrap().len(), 1);

    // unknown container / version
    let missing = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/environments/nope", emu.ws_path()),
            None,
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let missing = emu
        .arm(&token, Method::GET, &env_path(&emu, "clara", "9"), None)
        .await;
    assert_eq!(
        (missing.status, missing.error().0.as_str()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );

    // delete: 200, then gone, then 204
    let del = emu.arm(&token, Method::DELETE, &v2, None).await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(
        emu.arm(&token, Method::GET, &v2, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        emu.arm(&token, Method::DELETE, &v2, None).await.status,
        StatusCode::NO_CONTENT
    );

    let by_op = &stats(&emu).await["by_op"];
    for op in [
        "environment.create",
        "environment.get",
        "environment.delete",
        "environment.list",
        "environment.container.get",
    ] {
        assert!(by_op[op].as_u64().unwrap_or(0) >= 1, "{op}: {by_op}");
    }
}

#[tokio::test]
async fn environment_content_is_immutable_but_metadata_is_not() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    let v1 = env_path(&emu, "clara", "1");
    let body = env_body("nvcr.io/nvidia/clara-train-sdk:v3.0");
    assert_eq!(
        emu.arm(&token, Method::PUT, &v1, Some(body.clone()))
            .await
            .status,
        StatusCode::CREATED
    );

    // identical → 200 (logged as environment.update)
    let same = emu.arm(&token, Method::PUT, &v1, Some(body.clone())).await;
    assert_eq!(same.status, StatusCode::OK, "{}", same.body);

    // changed content → 409 naming the field
    for (field, value) in [
        ("image", json!("nvcr.io/nvidia/clara-train-sdk:v4.0")),
        ("condaFile", json!("name: other\n")),
        ("osType", json!("Windows")),
    ] {
        let mut changed = body.clone();
        changed["properties"][field] = value;
        let r = emu.arm(&token, Method::PUT, &v1, Some(changed)).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{field}: {}", r.body);
        assert_eq!(
            r.error(),
            ("Conflict".to_string(), Some(format!("properties.{field}")))
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("immutable")
        );
    }
    // defaults count as content: an explicit default is the same as none
    let mut explicit = body.clone();
    explicit["properties"]["autoRebuild"] = json!("Disabled");
    assert_eq!(
        emu.arm(&token, Method::PUT, &v1, Some(explicit))
            .await
            .status,
        StatusCode::OK
    );

    // description / tags / properties / stage change → 200, reflected
    let mut meta = body.clone();
    meta["properties"]["description"] = json!("new description");
    meta["properties"]["tags"] = json!({"team": "radiology"});
    meta["properties"]["stage"] = json!("Production");
    let r = emu.arm(&token, Method::PUT, &v1, Some(meta.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["properties"]["description"], "new description");
    assert_eq!(r.body["properties"]["tags"]["team"], "radiology");
    assert_eq!(r.body["properties"]["stage"], "Production");
    assert_eq!(
        r.body["properties"]["image"],
        "nvcr.io/nvidia/clara-train-sdk:v3.0"
    );

    // archive: PUT with isArchived true → 200; hidden from the default list
    let mut archived = meta.clone();
    archived["properties"]["isArchived"] = json!(true);
    let r = emu.arm(&token, Method::PUT, &v1, Some(archived)).await;
    assert_eq!(
        (r.status, &r.body["properties"]["isArchived"]),
        (StatusCode::OK, &json!(true))
    );
    let versions = format!("{}/environments/clara/versions", emu.ws_path());
    let active = emu.arm(&token, Method::GET, &versions, None).await;
    assert_eq!(active.body["value"].as_array().unwrap().len(), 0);
    let all = emu
        .arm(
            &token,
            Method::GET,
            &format!("{versions}?listViewType=All"),
            None,
        )
        .await;
    assert_eq!(all.body["value"].as_array().unwrap().len(), 1);
    let archived_only = emu
        .arm(
            &token,
            Method::GET,
            &format!("{versions}?listViewType=ArchivedOnly"),
            None,
        )
        .await;
    assert_eq!(archived_only.body["value"].as_array().unwrap().len(), 1);

    let by_op = &stats(&emu).await["by_op"];
    assert_eq!(by_op["environment.create"], 1);
    assert!(
        by_op["environment.update"].as_u64().unwrap() >= 5,
        "{by_op}"
    );
}

#[tokio::test]
async fn environment_validation() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    let v1 = env_path(&emu, "clara", "1");
    let cases = [
        (
            json!({"properties": {"description": "no image"}}),
            "properties.image",
        ),
        (
            json!({"properties": {"image": "x", "build": {"contextUri": "https://a/b/"}}}),
            "properties.build",
        ),
        (
            json!({"properties": {"build": {"contextUri": "https://a/b/"}, "condaFile": "c"}}),
            "properties.condaFile",
        ),
        (
            json!({"properties": {"image": "x", "bogus": 1}}),
            "properties.bogus",
        ),
        (
            json!({"properties": {"image": "x", "environmentType": "Curated"}}),
            "properties.environmentType",
        ),
        (
            json!({"properties": {"image": "x", "osType": "linux"}}),
            "properties.osType",
        ),
        (
            json!({"properties": {"build": {"dockerfilePath": "Dockerfile"}}}),
            "properties.build.contextUri",
        ),
        (json!({}), "properties"),
    ];
    for (body, target) in cases {
        let r = emu.arm(&token, Method::PUT, &v1, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.error().1.as_deref(), Some(target), "{body}: {}", r.body);
    }
    let bad_name = emu
        .arm(
            &token,
            Method::PUT,
            &env_path(&emu, "-bad", "1"),
            Some(env_body("x")),
        )
        .await;
    assert_eq!(bad_name.status, StatusCode::BAD_REQUEST);
    // a build context alone is fine
    let ok = emu
        .arm(&token, Method::PUT, &v1, Some(json!({"properties": {"build": {"contextUri": "https://acct.blob.core.windows.net/azureml/ctx/", "dockerfilePath": "Dockerfile"}}})))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
}

#[tokio::test]
async fn code_versions_and_pending_upload() {
    let emu = Emu::start_with(jobs_config()).await;
    let token = emu.token().await;
    let path = code_path(&emu, "clara-scripts", "1");

    let up = emu
        .arm(
            &token,
            Method::POST,
            &format!("{path}/startPendingUpload"),
            Some(json!({"pendingUploadType": "TemporaryBlobReference"})),
        )
        .await;
    assert_eq!(up.status, StatusCode::OK, "{}", up.body);
    let blob_uri = up.body["blobReferenceForConsumption"]["blobUri"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        blob_uri.starts_with("http://127.0.0.1:10000/devstoreaccount1/azureml-blobstore-"),
        "{blob_uri}"
    );
    let id = up.body["pendingUploadId"].as_str().unwrap();
    assert!(blob_uri.ends_with(&format!("/LocalUpload/{id}")));
    let sas_uri = up.body["blobReferenceForConsumption"]["credential"]["sasUri"]
        .as_str()
        .unwrap();
    assert!(
        sas_uri.starts_with(&format!("{blob_uri}?"))
            && sas_uri.contains("sig=")
            && sas_uri.contains("sr=c"),
        "{sas_uri}"
    );
    assert_eq!(
        up.body["blobReferenceForConsumption"]["credential"]["credentialType"],
        "SAS"
    );
    assert_eq!(up.body["pendingUploadType"], "TemporaryBlobReference");
    // the request log does not show the SAS (it is in the response only) and the id is echoed
    let again = emu
        .arm(&token, Method::POST, &format!("{path}/startPendingUpload"), Some(json!({"pendingUploadType": "TemporaryBlobReference", "pendingUploadId": "fixed-id"})))
        .await;
    assert!(
        again.body["blobReferenceForConsumption"]["blobUri"]
            .as_str()
            .unwrap()
            .ends_with("/LocalUpload/fixed-id")
    );

    let body = json!({"properties": {
        "codeUri": format!("{blob_uri}/scripts"),
        "description": "MMAR scripts",
        "properties": {"hash_sha256": "abc123", "hash_version": "202208"}
    }});
    let put = emu
        .arm(&token, Method::PUT, &path, Some(body.clone()))
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    assert_eq!(
        put.body["properties"]["codeUri"],
        format!("{blob_uri}/scripts")
    );
    assert_eq!(
        emu.arm(&token, Method::PUT, &path, Some(body.clone()))
            .await
            .status,
        StatusCode::OK
    );

    let mut moved = body.clone();
    moved["properties"]["codeUri"] = json!("https://elsewhere/x");
    let r = emu.arm(&token, Method::PUT, &path, Some(moved)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.error(),
        (
            "UserError".to_string(),
            Some("properties.codeUri".to_string())
        )
    );
    assert_eq!(r.body["error"]["message"], "Asset paths cannot be updated.");

    // the SDK's lookup by content hash
    let versions = format!("{}/codes/clara-scripts/versions", emu.ws_path());
    let hit = emu
        .arm(
            &token,
            Method::GET,
            &format!("{versions}?hash=abc123&hashVersion=202208"),
            None,
        )
        .await;
    assert_eq!(hit.body["value"].as_array().unwrap().len(), 1);
    let miss = emu
        .arm(
            &token,
            Method::GET,
            &format!("{versions}?hash=zzz&hashVersion=202208"),
            None,
        )
        .await;
    assert_eq!(miss.body["value"].as_array().unwrap().len(), 0);

    let missing_uri = emu
        .arm(
            &token,
            Method::PUT,
            &code_path(&emu, "c2", "1"),
            Some(json!({"properties": {}})),
        )
        .await;
    assert_eq!(missing_uri.error().1.as_deref(), Some("properties.codeUri"));

    let by_op = &stats(&emu).await["by_op"];
    for op in [
        "code.upload.start",
        "code.create",
        "code.update",
        "code.list",
    ] {
        assert!(by_op[op].as_u64().unwrap_or(0) >= 1, "{op}: {by_op}");
    }
}
