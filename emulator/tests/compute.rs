mod common;

use common::{Emu, cluster_body, slow_config};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn create_poll_get_patch_delete() {
    let emu = Emu::start_with(slow_config()).await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-cluster");

    // create → 201 Creating + Azure-AsyncOperation
    let put = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC12s_v3", 1, 2)),
        )
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    assert_eq!(put.body["properties"]["provisioningState"], "Creating");
    assert_eq!(put.header("retry-after").as_deref(), Some("1"));
    let op_url = put
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation header");
    assert!(op_url.starts_with(&emu.running.base_url), "{op_url}");
    assert!(op_url.contains("/locations/eastus/computeOperationsStatus/"));
    assert!(op_url.contains("api-version=2025-12-01"));

    // while creating: GET shows Creating
    let during = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(during.body["properties"]["provisioningState"], "Creating");

    let status = emu.send(&token, Method::GET, &op_url, None).await;
    assert_eq!(status.body["status"], "InProgress");
    assert_eq!(status.header("retry-after").as_deref(), Some("1"));
    emu.advance().await;
    let statuses = emu.wait_op(&token, &op_url).await;
    assert_eq!(statuses, ["Succeeded"]);

    let get = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(get.status, StatusCode::OK);
    let b = &get.body;
    assert_eq!(b["id"], path);
    assert_eq!(b["name"], "gpu-cluster");
    assert_eq!(
        b["type"],
        "Microsoft.MachineLearningServices/workspaces/computes"
    );
    assert_eq!(b["location"], "eastus");
    assert_eq!(b["tags"], json!({"team": "clara"}));
    assert!(b["systemData"]["createdAt"].is_string());
    let p = &b["properties"];
    assert_eq!(p["provisioningState"], "Succeeded");
    assert_eq!(p["computeType"], "AmlCompute");
    assert_eq!(p["description"], "GPU cluster");
    assert!(p["createdOn"].is_string() && p["modifiedOn"].is_string());
    let aml = &p["properties"];
    // Sent `Standard_NC12s_v3`; AmlCompute answers upper-cased (azure-rest-api-specs#20216).
    assert_eq!(aml["vmSize"], "STANDARD_NC12S_V3");
    assert_eq!(aml["allocationState"], "Steady");
    assert_eq!(aml["currentNodeCount"], 1);
    assert_eq!(aml["targetNodeCount"], 1);
    assert_eq!(aml["nodeStateCounts"]["idleNodeCount"], 1);
    assert_eq!(
        aml["scaleSettings"],
        json!({"maxNodeCount": 2, "minNodeCount": 1, "nodeIdleTimeBeforeScaleDown": "PT300S"})
    );
    assert_eq!(aml["remoteLoginPortPublicAccess"], "Enabled");
    // secrets are never returned
    assert_eq!(
        aml["userAccountCredentials"],
        json!({"adminUserName": "azureuser"})
    );
    assert!(!get.body.to_string().contains("S3cret-pw!"));

    // list
    let list = emu
        .arm(
            &token,
            Method::GET,
            &format!("{}/computes", emu.ws_path()),
            None,
        )
        .await;
    assert_eq!(list.body["value"].as_array().unwrap().len(), 1);

    // PATCH scale → 200 Updating + Azure-AsyncOperation
    let patch = emu
        .arm(&token, Method::PATCH, &path, Some(json!({"properties":{"properties":{"scaleSettings":{"maxNodeCount":4,"minNodeCount":0,"nodeIdleTimeBeforeScaleDown":"PT5M"}}},"tags":{"team":"nv"}})))
        .await;
    assert_eq!(patch.status, StatusCode::OK, "{}", patch.body);
    assert_eq!(patch.body["properties"]["provisioningState"], "Updating");
    let patch_op = patch.header("azure-asyncoperation").unwrap();
    emu.advance().await;
    assert_eq!(
        emu.wait_op(&token, &patch_op).await.last().unwrap(),
        "Succeeded"
    );
    let get = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(get.body["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        get.body["properties"]["properties"]["scaleSettings"],
        json!({"maxNodeCount": 4, "minNodeCount": 0, "nodeIdleTimeBeforeScaleDown": "PT5M"})
    );
    assert_eq!(get.body["properties"]["properties"]["currentNodeCount"], 0);
    assert_eq!(get.body["tags"], json!({"team": "nv"}));

    // DELETE needs underlyingResourceAction
    let no_action = emu.arm(&token, Method::DELETE, &path, None).await;
    assert_eq!(no_action.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        no_action.error().1.as_deref(),
        Some("underlyingResourceAction")
    );

    let del = emu
        .arm(
            &token,
            Method::DELETE,
            &format!("{path}?underlyingResourceAction=Delete&{}", common::API),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let del_op = del.header("azure-asyncoperation").unwrap();
    let location = del.header("location").unwrap();
    let during = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(during.body["properties"]["provisioningState"], "Deleting");
    let pending = emu.send(&token, Method::GET, &location, None).await;
    assert_eq!(pending.status, StatusCode::ACCEPTED);
    emu.advance().await;
    assert_eq!(
        emu.wait_op(&token, &del_op).await.last().unwrap(),
        "Succeeded"
    );
    let gone = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error().0, "ResourceNotFound");
    let done = emu.send(&token, Method::GET, &location, None).await;
    assert_eq!(done.status, StatusCode::NO_CONTENT);

    // deleting an absent compute → 204
    let again = emu
        .arm(
            &token,
            Method::DELETE,
            &format!("{path}?underlyingResourceAction=Detach&{}", common::API),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);

    // the log saw exactly these writes
    let ops: Vec<String> = emu
        .requests()
        .await
        .iter()
        .filter(|e| e["method"] != "GET")
        .map(|e| e["op"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ops,
        [
            "token",
            "compute.create",
            "compute.update",
            "compute.delete",
            "compute.delete",
            "compute.delete"
        ]
    );
}

#[tokio::test]
async fn put_on_existing_compute() {
    let emu = Emu::start_with(slow_config()).await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-put");
    let create = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 2)),
        )
        .await;
    assert_eq!(create.status, StatusCode::CREATED);

    // identical PUT while creating: 200, points at the in-flight operation (adopt-on-retry)
    let retry = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 2)),
        )
        .await;
    assert_eq!(retry.status, StatusCode::OK);
    assert_eq!(
        retry.header("azure-asyncoperation"),
        create.header("azure-asyncoperation")
    );
    // a changing PUT while creating: 409
    let busy = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 3)),
        )
        .await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    emu.advance().await;
    emu.wait_op(&token, &create.header("azure-asyncoperation").unwrap())
        .await;

    // identical PUT after: 200, nothing to do, no operation
    let same = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 0, 2)),
        )
        .await;
    assert_eq!(same.status, StatusCode::OK);
    assert_eq!(same.header("azure-asyncoperation"), None);
    assert_eq!(same.body["properties"]["provisioningState"], "Succeeded");

    // scale change via PUT: 200 Updating
    let scale = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC6s_v3", 1, 4)),
        )
        .await;
    assert_eq!(scale.status, StatusCode::OK);
    assert_eq!(scale.body["properties"]["provisioningState"], "Updating");
    emu.advance().await;
    emu.wait_op(&token, &scale.header("azure-asyncoperation").unwrap())
        .await;
    let get = emu.arm(&token, Method::GET, &path, None).await;
    assert_eq!(
        get.body["properties"]["properties"]["scaleSettings"]["maxNodeCount"],
        4
    );
    assert_eq!(get.body["properties"]["properties"]["currentNodeCount"], 1);

    // immutable change: 400 PropertyChangeNotAllowed with the field as target
    let resize = emu
        .arm(
            &token,
            Method::PUT,
            &path,
            Some(cluster_body("Standard_NC24s_v3", 1, 4)),
        )
        .await;
    assert_eq!(resize.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        resize.error(),
        (
            "PropertyChangeNotAllowed".into(),
            Some("properties.properties.vmSize".into())
        )
    );
    let mut low = cluster_body("Standard_NC6s_v3", 1, 4);
    low["properties"]["properties"]["vmPriority"] = json!("LowPriority");
    let low = emu.arm(&token, Method::PUT, &path, Some(low)).await;
    assert_eq!(
        low.error().1.as_deref(),
        Some("properties.properties.vmPriority")
    );

    // ops: first PUT is a create, the later ones are updates
    let puts: Vec<String> = emu
        .requests()
        .await
        .iter()
        .filter(|e| e["method"] == "PUT")
        .map(|e| e["op"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(puts[0], "compute.create");
    assert!(
        puts[1..].iter().all(|op| op == "compute.update"),
        "{puts:?}"
    );
}

#[tokio::test]
async fn defaults_and_location() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let path = emu.compute_path("cpu-min");
    let body = json!({"properties":{"computeType":"AmlCompute","properties":{"vmSize":"STANDARD_DS3_V2","scaleSettings":{"maxNodeCount":1}}}});
    let put = emu.arm(&token, Method::PUT, &path, Some(body)).await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    assert_eq!(
        put.body["location"], "eastus",
        "location defaults to the workspace's"
    );
    let aml = &put.body["properties"]["properties"];
    assert_eq!(aml["vmPriority"], "Dedicated");
    assert_eq!(aml["osType"], "Linux");
    assert_eq!(aml["scaleSettings"]["minNodeCount"], 0);
    assert_eq!(
        aml["scaleSettings"]["nodeIdleTimeBeforeScaleDown"],
        "PT120S"
    );
    assert_eq!(aml["remoteLoginPortPublicAccess"], "Disabled");
    assert_eq!(aml["allocationState"], "Steady");
}

#[tokio::test]
async fn workspace_vm_sizes_and_not_found() {
    let emu = Emu::start().await;
    let token = emu.token().await;

    let ws = emu.arm(&token, Method::GET, &emu.ws_path(), None).await;
    assert_eq!(ws.status, StatusCode::OK);
    assert_eq!(ws.body["location"], "eastus");
    assert_eq!(
        ws.body["type"],
        "Microsoft.MachineLearningServices/workspaces"
    );
    let mlflow = ws.body["properties"]["mlFlowTrackingUri"].as_str().unwrap();
    let authority = emu.running.base_url.split_once("://").unwrap().1;
    assert_eq!(
        mlflow,
        format!("azureml://{authority}/mlflow/v1.0{}", emu.ws_path())
    );
    assert!(
        ws.body["properties"]["discoveryUrl"]
            .as_str()
            .unwrap()
            .starts_with(&emu.running.base_url)
    );

    let other_ws = emu
        .arm(
            &token,
            Method::GET,
            &emu.ws_path().replace("clara-ws", "nope"),
            None,
        )
        .await;
    assert_eq!(other_ws.status, StatusCode::NOT_FOUND);
    let other_rg = emu
        .arm(
            &token,
            Method::GET,
            &emu.ws_path().replace("rg-clara", "rg-nope"),
            None,
        )
        .await;
    assert_eq!(other_rg.error().0, "ResourceGroupNotFound");
    let other_sub = emu
        .arm(
            &token,
            Method::GET,
            &emu.ws_path()
                .replace(emu.sub(), "00000000-0000-0000-0000-00000000ffff"),
            None,
        )
        .await;
    assert_eq!(other_sub.error().0, "SubscriptionNotFound");

    let sizes_path = format!(
        "/subscriptions/{}/providers/Microsoft.MachineLearningServices/locations/eastus/vmSizes",
        emu.sub()
    );
    let sizes = emu.arm(&token, Method::GET, &sizes_path, None).await;
    assert_eq!(sizes.status, StatusCode::OK);
    let values = sizes.body["value"].as_array().unwrap();
    assert_eq!(values.len(), 11);
    let nc12 = values
        .iter()
        .find(|v| v["name"] == "Standard_NC12s_v3")
        .unwrap();
    assert_eq!(
        (
            nc12["vCPUs"].as_i64(),
            nc12["gpus"].as_i64(),
            nc12["memoryGB"].as_f64()
        ),
        (Some(12), Some(2), Some(224.0))
    );
    let prices = nc12["estimatedVMPrices"]["values"].as_array().unwrap();
    assert!(
        prices.iter().any(|p| p["vmTier"] == "Standard"
            && p["osType"] == "Linux"
            && p["retailPrice"] == 6.12)
    );
    assert!(prices.iter().any(|p| p["vmTier"] == "LowPriority"));
    let ds3 = values
        .iter()
        .find(|v| v["name"] == "Standard_DS3_v2")
        .unwrap();
    assert_eq!(ds3["gpus"], 0);

    let west = emu
        .arm(
            &token,
            Method::GET,
            &sizes_path.replace("eastus", "westeurope"),
            None,
        )
        .await;
    assert_eq!(west.status, StatusCode::NOT_FOUND);
    assert_eq!(west.error().0, "LocationNotAvailableForResourceType");
}

#[tokio::test]
async fn common_headers_and_case_insensitive_paths() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let a = emu.arm(&token, Method::GET, &emu.ws_path(), None).await;
    let b = emu
        .arm(&token, Method::GET, &emu.ws_path().to_lowercase(), None)
        .await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.body);
    for h in [
        "x-ms-request-id",
        "x-ms-correlation-request-id",
        "x-ms-ratelimit-remaining-subscription-reads",
    ] {
        assert!(a.header(h).is_some(), "{h}");
    }
    let ra: i64 = a
        .header("x-ms-ratelimit-remaining-subscription-reads")
        .unwrap()
        .parse()
        .unwrap();
    let rb: i64 = b
        .header("x-ms-ratelimit-remaining-subscription-reads")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(rb, ra - 1);
    assert_ne!(a.header("x-ms-request-id"), b.header("x-ms-request-id"));

    let put = emu
        .arm(
            &token,
            Method::PUT,
            &emu.compute_path("hdr-test"),
            Some(cluster_body("Standard_D4s_v3", 0, 1)),
        )
        .await;
    assert!(
        put.header("x-ms-ratelimit-remaining-subscription-writes")
            .is_some()
    );

    let corr = emu
        .client
        .get(emu.url(&format!("{}?{}", emu.ws_path(), common::API)))
        .bearer_auth(&token)
        .header("x-ms-correlation-request-id", "my-correlation")
        .send()
        .await
        .unwrap();
    assert_eq!(
        corr.headers()["x-ms-correlation-request-id"],
        "my-correlation"
    );
}

/// Deletes `path` and waits until it is gone.
async fn delete_and_wait(emu: &Emu, token: &str, path: &str) {
    let del = emu
        .arm(
            token,
            Method::DELETE,
            &format!("{path}?underlyingResourceAction=Delete&{}", common::API),
            None,
        )
        .await;
    assert_eq!(del.status, StatusCode::ACCEPTED, "{}", del.body);
    emu.advance().await;
    let gone = emu.arm(token, Method::GET, path, None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
}

/// Creates `path` with `size`; returns the `vmSize` the 201 acknowledged and the one a GET
/// shows once the creation completed.
async fn create_sized(emu: &Emu, token: &str, path: &str, size: &str) -> (String, String) {
    let put = emu
        .arm(token, Method::PUT, path, Some(cluster_body(size, 0, 1)))
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.body);
    emu.advance().await;
    let get = emu.arm(token, Method::GET, path, None).await;
    let size_of = |b: &serde_json::Value| {
        b["properties"]["properties"]["vmSize"]
            .as_str()
            .unwrap()
            .to_string()
    };
    (size_of(&put.body), size_of(&get.body))
}

#[tokio::test]
async fn recreate_after_delete_keeps_the_old_vm_size_when_switched_on() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let path = emu.compute_path("gpu-cluster");
    let switch = |on: serde_json::Value| {
        let emu = &emu;
        async move {
            emu.admin(Method::PUT, "/_emulator/computes", Some(on))
                .await
        }
    };
    let sw = emu.admin(Method::GET, "/_emulator/computes", None).await;
    assert_eq!(sw.body["switches"]["recreate_keeps_old_vm_size"], false);
    assert_eq!(sw.body["switches_source"], "config");

    // Off (the default): a re-created compute has the size asked for.
    create_sized(&emu, &token, &path, "Standard_NC6s_v3").await;
    delete_and_wait(&emu, &token, &path).await;
    let (_, got) = create_sized(&emu, &token, &path, "Standard_NC12s_v3").await;
    assert_eq!(got, "STANDARD_NC12S_V3");

    // On: the PUT acknowledges the new size, the compute keeps the deleted one's.
    let sw = switch(json!({"recreate_keeps_old_vm_size": true})).await;
    assert_eq!(sw.status, StatusCode::OK, "{}", sw.body);
    assert_eq!(sw.body["switches_source"], "admin");
    delete_and_wait(&emu, &token, &path).await;
    let (acked, got) = create_sized(&emu, &token, &path, "Standard_NC24s_v3").await;
    assert_eq!(acked, "STANDARD_NC24S_V3");
    assert_eq!(got, "STANDARD_NC12S_V3", "the deleted compute's size");

    // Only the first create of that name after a delete is affected.
    let other = emu.compute_path("other-cluster");
    let (_, got) = create_sized(&emu, &token, &other, "Standard_NC24s_v3").await;
    assert_eq!(got, "STANDARD_NC24S_V3");

    // null restores the config's switches; a bad body is refused.
    let sw = switch(json!(null)).await;
    assert_eq!(sw.body["switches_source"], "config");
    let bad = switch(json!({"nope": 1})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
