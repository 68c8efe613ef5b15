//! Datastores (GET, listSecrets) and data assets (versions: create, immutability, archive,
//! container latest/next version, delete).

mod common;

use common::Emu;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

#[tokio::test]
async fn datastores_and_secrets() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let ds = format!("{}/datastores", emu.ws_path());

    let list = emu.arm(&token, Method::GET, &ds, None).await;
    assert_eq!(list.status, StatusCode::OK);
    let names: Vec<&str> = list.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"workspaceblobstore") && names.contains(&"workspacefilestore"));
    let default = emu
        .arm(&token, Method::GET, &format!("{ds}?isDefault=true"), None)
        .await;
    assert_eq!(default.body["value"].as_array().unwrap().len(), 1);
    assert_eq!(default.body["value"][0]["name"], "workspaceblobstore");

    let ws = emu.arm(&token, Method::GET, &emu.ws_path(), None).await;
    let guid = ws.body["properties"]["workspaceId"]
        .as_str()
        .unwrap()
        .to_string();
    let blob = emu
        .arm(
            &token,
            Method::GET,
            &format!("{ds}/workspaceblobstore"),
            None,
        )
        .await;
    assert_eq!(blob.status, StatusCode::OK);
    let p = &blob.body["properties"];
    assert_eq!(p["datastoreType"], "AzureBlob");
    assert_eq!(p["isDefault"], true);
    assert_eq!(p["accountName"], "devstoreaccount1");
    assert_eq!(p["containerName"], format!("azureml-blobstore-{guid}"));
    assert_eq!(p["endpoint"], "core.windows.net");
    assert_eq!(p["protocol"], "https");
    assert_eq!(
        p["credentials"],
        json!({"credentialsType": "AccountKey", "secrets": {"secretsType": "AccountKey"}})
    );
    assert_eq!(
        blob.body["type"],
        "Microsoft.MachineLearningServices/workspaces/datastores"
    );
    assert!(
        !blob.body.to_string().contains(AZURITE_KEY),
        "GET never returns secrets"
    );
    // case-insensitive fixed segments and names
    let ci = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/DATASTORES/WorkspaceBlobStore", emu.ws_path()),
            None,
        )
        .await;
    assert_eq!(ci.status, StatusCode::OK);
    let missing = emu
        .arm(&token, Method::GET, &format!("{ds}/nope"), None)
        .await;
    assert_eq!(
        (missing.status, missing.error().0.as_str()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );

    // listSecrets: the Azurite key; with expirableSecret a SAS
    let secrets = emu
        .arm(
            &token,
            Method::POST,
            &format!("{ds}/workspaceblobstore/listSecrets"),
            None,
        )
        .await;
    assert_eq!(secrets.status, StatusCode::OK);
    assert_eq!(
        secrets.body,
        json!({"secretsType": "AccountKey", "key": AZURITE_KEY})
    );
    let sas = emu
        .arm(
            &token,
            Method::POST,
            &format!("{ds}/workspaceblobstore/listSecrets"),
            Some(json!({"expirableSecret": true, "expireAfterHours": 1})),
        )
        .await;
    assert_eq!(sas.body["secretsType"], "Sas");
    assert!(sas.body["sasToken"].as_str().unwrap().contains("sig="));
    let bad = emu
        .arm(
            &token,
            Method::POST,
            &format!("{ds}/workspaceblobstore/listSecrets"),
            Some(json!({"expireAfterHours": "soon"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let unauth = emu
        .send(
            "nope",
            Method::POST,
            &emu.url(&format!(
                "{ds}/workspaceblobstore/listSecrets?{}",
                common::API
            )),
            None,
        )
        .await;
    assert_eq!(unauth.status, StatusCode::UNAUTHORIZED);

    let log = emu.requests().await;
    let ops: Vec<&str> = log.iter().map(|e| e["op"].as_str().unwrap()).collect();
    assert!(ops.contains(&"datastore.list") && ops.contains(&"datastore.get"));
    assert_eq!(
        ops.iter()
            .filter(|o| **o == "datastore.listSecrets")
            .count(),
        4
    );
    assert!(!serde_json::to_string(&log).unwrap().contains(AZURITE_KEY));
}

#[tokio::test]
async fn custom_storage_account_key() {
    let mut config = common::fast_config();
    config.storage.account_name = Some("claraacct".into());
    config.storage.account_key = Some("a2V5LWZvci10ZXN0cw==".into());
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    let ds = format!("{}/datastores/workspaceblobstore", emu.ws_path());
    let get = emu.arm(&token, Method::GET, &ds, None).await;
    assert_eq!(get.body["properties"]["accountName"], "claraacct");
    let s = emu
        .arm(&token, Method::POST, &format!("{ds}/listSecrets"), None)
        .await;
    assert_eq!(s.body["key"], "a2V5LWZvci10ZXN0cw==");
}

#[tokio::test]
async fn identity_based_datastores_have_no_secrets() {
    let mut config = common::fast_config();
    config.storage.identity_based = true;
    let emu = Emu::start_with(config).await;
    let token = emu.token().await;
    let list = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/datastores", emu.ws_path()),
            None,
        )
        .await;
    for ds in list.body["value"].as_array().unwrap() {
        assert_eq!(
            ds["properties"]["credentials"],
            json!({"credentialsType": "None"}),
            "{ds}"
        );
    }
    let ds = format!("{}/datastores/workspaceblobstore", emu.ws_path());
    let s = emu
        .arm(&token, Method::POST, &format!("{ds}/listSecrets"), None)
        .await;
    assert_eq!(s.status, StatusCode::BAD_REQUEST, "{}", s.body);
    assert_eq!(s.error().0, "UserError");
    assert!(!s.body.to_string().contains(AZURITE_KEY));
}

fn data_body(uri: &str) -> Value {
    json!({
        "properties": {
            "dataType": "uri_folder",
            "dataUri": uri,
            "description": "Clara MMAR from NGC",
            "tags": {"source": "ngc"},
            "properties": {"sha256": "abc"},
            "isAnonymous": false
        }
    })
}

#[tokio::test]
async fn data_versions_are_immutable() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let name = format!("{}/data/clara-mmar", emu.ws_path());
    let v1 = format!("{name}/versions/1");
    let uri = "azureml://datastores/workspaceblobstore/paths/ngc/clara_train_covid19_3d_ct_classification/1/";

    let missing = emu.arm(&token, Method::GET, &v1, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let created = emu
        .arm(&token, Method::PUT, &v1, Some(data_body(uri)))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "1");
    assert_eq!(
        created.body["type"],
        "Microsoft.MachineLearningServices/workspaces/data/versions"
    );
    assert_eq!(created.body["properties"]["dataUri"], uri);
    assert_eq!(created.body["properties"]["isArchived"], false);
    assert!(
        created.body["id"]
            .as_str()
            .unwrap()
            .ends_with("/data/clara-mmar/versions/1")
    );
    let got = emu.arm(&token, Method::GET, &v1, None).await;
    assert_eq!(got.body, created.body);

    // identical PUT: 200, unchanged
    let same = emu
        .arm(&token, Method::PUT, &v1, Some(data_body(uri)))
        .await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.body, created.body);
    // changed dataUri or type: 409
    let moved = emu
        .arm(
            &token,
            Method::PUT,
            &v1,
            Some(data_body(
                "azureml://datastores/workspaceblobstore/paths/elsewhere/",
            )),
        )
        .await;
    assert_eq!(moved.status, StatusCode::CONFLICT);
    assert_eq!(
        moved.error(),
        (
            "UserError".to_string(),
            Some("properties.dataUri".to_string())
        )
    );
    let mut file = data_body(uri);
    file["properties"]["dataType"] = json!("uri_file");
    let retyped = emu.arm(&token, Method::PUT, &v1, Some(file)).await;
    assert_eq!(retyped.status, StatusCode::CONFLICT);
    // mutable fields: isArchived, description, tags
    let mut archived = data_body(uri);
    archived["properties"]["isArchived"] = json!(true);
    archived["properties"]["description"] = json!("archived");
    let upd = emu.arm(&token, Method::PUT, &v1, Some(archived)).await;
    assert_eq!(upd.status, StatusCode::OK);
    assert_eq!(upd.body["properties"]["isArchived"], true);
    assert_eq!(upd.body["properties"]["dataUri"], uri);
    assert_eq!(
        emu.arm(&token, Method::GET, &v1, None).await.body["properties"]["description"],
        "archived"
    );

    // container: latest / next version
    let v2 = emu
        .arm(
            &token,
            Method::PUT,
            &format!("{name}/versions/2"),
            Some(data_body(&format!("{uri}v2/"))),
        )
        .await;
    assert_eq!(v2.status, StatusCode::CREATED);
    let c = emu.arm(&token, Method::GET, &name, None).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.body["properties"]["dataType"], "uri_folder");
    assert_eq!(c.body["properties"]["latestVersion"], "2");
    assert_eq!(c.body["properties"]["nextVersion"], "3");
    let versions = emu
        .arm(&token, Method::GET, &format!("{name}/versions"), None)
        .await;
    assert_eq!(versions.body["value"].as_array().unwrap().len(), 2);
    let all = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/data", emu.ws_path()),
            None,
        )
        .await;
    assert_eq!(all.body["value"].as_array().unwrap().len(), 1);

    // validation: catalog schema and rules
    let no_uri = emu
        .arm(
            &token,
            Method::PUT,
            &format!("{name}/versions/3"),
            Some(json!({"properties": {"dataType": "uri_folder"}})),
        )
        .await;
    assert_eq!(no_uri.status, StatusCode::BAD_REQUEST);
    assert_eq!(no_uri.error().1.as_deref(), Some("properties.dataUri"));
    let mut extra = data_body(uri);
    extra["properties"]["bogus"] = json!(1);
    let r = emu
        .arm(
            &token,
            Method::PUT,
            &format!("{name}/versions/3"),
            Some(extra),
        )
        .await;
    assert_eq!(
        (r.status, r.error().0.as_str()),
        (StatusCode::BAD_REQUEST, "InvalidRequestContent")
    );
    let mut bad_type = data_body(uri);
    bad_type["properties"]["dataType"] = json!("folder");
    let r = emu
        .arm(
            &token,
            Method::PUT,
            &format!("{name}/versions/3"),
            Some(bad_type),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = emu
        .arm(
            &token,
            Method::PUT,
            &format!("{name}/versions/3"),
            Some(data_body("not a uri")),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = emu
        .arm(
            &token,
            Method::PUT,
            &format!("{}/data/-bad/versions/1", emu.ws_path()),
            Some(data_body(uri)),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // delete: 200, then 404 on GET, 204 on a second delete
    let del = emu.arm(&token, Method::DELETE, &v1, None).await;
    assert_eq!(del.status, StatusCode::OK);
    assert_eq!(
        emu.arm(&token, Method::GET, &v1, None).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        emu.arm(&token, Method::DELETE, &v1, None).await.status,
        StatusCode::NO_CONTENT
    );

    let log = emu.requests().await;
    let ops: Vec<&str> = log.iter().map(|e| e["op"].as_str().unwrap()).collect();
    for op in [
        "data.create",
        "data.update",
        "data.get",
        "data.delete",
        "data.container.get",
    ] {
        assert!(ops.contains(&op), "{op}: {ops:?}");
    }
    let creates = log
        .iter()
        .filter(|e| e["op"] == "data.create" && e["status"] == 201)
        .count();
    assert_eq!(creates, 2);

    // persisted across restarts; reset clears
    let (dir, config) = emu.stop().await;
    let emu = Emu::start_in(dir, config).await;
    let token = emu.token().await;
    let v2 = format!("{}/data/clara-mmar/versions/2", emu.ws_path());
    assert_eq!(
        emu.arm(&token, Method::GET, &v2, None).await.status,
        StatusCode::OK
    );
    emu.admin(Method::POST, "/_emulator/reset", None).await;
    assert_eq!(
        emu.arm(&token, Method::GET, &v2, None).await.status,
        StatusCode::NOT_FOUND
    );
}
