//! Every invalid body gets an ARM 400 whose `error.target` names the offending field, and
//! nothing is created.

mod common;

use common::{Emu, cluster_body};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    *body
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("{pointer}")) = value;
    body
}

fn without(mut body: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    body.pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key);
    body
}

fn base() -> Value {
    cluster_body("Standard_NC6s_v3", 0, 2)
}

#[tokio::test]
async fn invalid_compute_bodies_are_rejected_with_targets() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let aml = "/properties/properties";
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        (
            "missing computeType",
            without(base(), "/properties/computeType"),
            "BadRequest",
            "properties.computeType",
        ),
        (
            "unknown computeType",
            with(base(), "/properties/computeType", json!("Bogus")),
            "BadRequest",
            "properties.computeType",
        ),
        (
            "missing maxNodeCount",
            without(base(), &format!("{aml}/scaleSettings/maxNodeCount")),
            "BadRequest",
            "properties.properties.scaleSettings.maxNodeCount",
        ),
        (
            "missing scaleSettings",
            without(base(), &format!("{aml}/scaleSettings")),
            "BadRequest",
            "properties.properties.scaleSettings",
        ),
        (
            "missing adminUserName",
            without(
                base(),
                &format!("{aml}/userAccountCredentials/adminUserName"),
            ),
            "BadRequest",
            "properties.properties.userAccountCredentials.adminUserName",
        ),
        (
            "bad vmPriority",
            with(base(), &format!("{aml}/vmPriority"), json!("Spot")),
            "BadRequest",
            "properties.properties.vmPriority",
        ),
        (
            "bad remote login",
            with(
                base(),
                &format!("{aml}/remoteLoginPortPublicAccess"),
                json!("Open"),
            ),
            "BadRequest",
            "properties.properties.remoteLoginPortPublicAccess",
        ),
        (
            "bad osType",
            with(base(), &format!("{aml}/osType"), json!("Plan9")),
            "BadRequest",
            "properties.properties.osType",
        ),
        (
            "bad identity type",
            with(base(), "/location", json!("eastus"))
                .as_object()
                .cloned()
                .map(|mut m| {
                    m.insert("identity".into(), json!({"type":"Magic"}));
                    Value::Object(m)
                })
                .unwrap(),
            "BadRequest",
            "identity.type",
        ),
        (
            "read-only provisioningState",
            with(base(), "/properties/description", json!("x"))
                .as_object()
                .cloned()
                .map(|mut m| {
                    m["properties"]["provisioningState"] = json!("Succeeded");
                    Value::Object(m)
                })
                .unwrap(),
            "BadRequest",
            "properties.provisioningState",
        ),
        (
            "read-only allocationState",
            with(base(), &format!("{aml}/vmPriority"), json!("Dedicated"))
                .as_object()
                .cloned()
                .map(|mut m| {
                    m["properties"]["properties"]["allocationState"] = json!("Steady");
                    Value::Object(m)
                })
                .unwrap(),
            "BadRequest",
            "properties.properties.allocationState",
        ),
        (
            "read-only currentNodeCount",
            {
                let mut b = base();
                b["properties"]["properties"]["currentNodeCount"] = json!(1);
                b
            },
            "BadRequest",
            "properties.properties.currentNodeCount",
        ),
        (
            "read-only id",
            {
                let mut b = base();
                b["id"] = json!("/x");
                b
            },
            "BadRequest",
            "id",
        ),
        (
            "unknown field",
            {
                let mut b = base();
                b["properties"]["properties"]["gpuCount"] = json!(8);
                b
            },
            "InvalidRequestContent",
            "properties.properties.gpuCount",
        ),
        (
            "wrong type",
            with(
                base(),
                &format!("{aml}/scaleSettings/maxNodeCount"),
                json!("two"),
            ),
            "InvalidRequestContent",
            "properties.properties.scaleSettings.maxNodeCount",
        ),
        (
            "fractional int",
            with(
                base(),
                &format!("{aml}/scaleSettings/minNodeCount"),
                json!(0.5),
            ),
            "InvalidRequestContent",
            "properties.properties.scaleSettings.minNodeCount",
        ),
        (
            "bad duration",
            with(
                base(),
                &format!("{aml}/scaleSettings/nodeIdleTimeBeforeScaleDown"),
                json!("300"),
            ),
            "InvalidRequestContent",
            "properties.properties.scaleSettings.nodeIdleTimeBeforeScaleDown",
        ),
        (
            "tags not strings",
            with(base(), "/tags", json!({"n": 1})),
            "InvalidRequestContent",
            "tags.n",
        ),
        (
            "min > max",
            with(
                base(),
                &format!("{aml}/scaleSettings/minNodeCount"),
                json!(5),
            ),
            "BadRequest",
            "properties.properties.scaleSettings.minNodeCount",
        ),
        (
            "negative max",
            with(
                with(
                    base(),
                    &format!("{aml}/scaleSettings/maxNodeCount"),
                    json!(-1),
                ),
                &format!("{aml}/scaleSettings/minNodeCount"),
                json!(0),
            ),
            "BadRequest",
            "properties.properties.scaleSettings.maxNodeCount",
        ),
        (
            "unknown vmSize",
            with(base(), &format!("{aml}/vmSize"), json!("Standard_NC999")),
            "InvalidVmSize",
            "properties.properties.vmSize",
        ),
        (
            "unserved location",
            with(base(), "/location", json!("westeurope")),
            "LocationNotAvailableForResourceType",
            "location",
        ),
        (
            "UserAssigned without ids",
            {
                let mut b = base();
                b["identity"] = json!({"type":"UserAssigned"});
                b
            },
            "BadRequest",
            "identity.userAssignedIdentities",
        ),
        (
            "unsupported compute type",
            with(base(), "/properties/computeType", json!("ComputeInstance")),
            "BadRequest",
            "properties.computeType",
        ),
    ];
    for (i, (name, body, code, target)) in cases.into_iter().enumerate() {
        let path = emu.compute_path(&format!("bad-{i}"));
        let r = emu.arm(&token, Method::PUT, &path, Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}: {}", r.body);
        assert_eq!(
            r.error(),
            (code.to_string(), Some(target.to_string())),
            "{name}: {}",
            r.body
        );
        assert!(
            r.body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}"
        );
        let get = emu.arm(&token, Method::GET, &path, None).await;
        assert_eq!(
            get.status,
            StatusCode::NOT_FOUND,
            "{name}: a rejected PUT must not create anything"
        );
    }
}

#[tokio::test]
async fn several_violations_are_listed_in_details() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let mut body = base();
    body["properties"]["properties"]["vmPriority"] = json!("Spot");
    body["properties"]["properties"]["osType"] = json!("Plan9");
    let r = emu
        .arm(&token, Method::PUT, &emu.compute_path("multi"), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let targets: Vec<&str> = r.body["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["target"].as_str().unwrap())
        .collect();
    assert!(
        targets.contains(&"properties.properties.vmPriority")
            && targets.contains(&"properties.properties.osType"),
        "{targets:?}"
    );
}

#[tokio::test]
async fn malformed_json_names_and_patch_bodies() {
    let emu = Emu::start().await;
    let token = emu.token().await;

    let raw = emu
        .client
        .put(emu.url(&format!("{}?{}", emu.compute_path("raw"), common::API)))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let raw = common::into_resp(raw).await;
    assert_eq!(raw.status, StatusCode::BAD_REQUEST);
    assert_eq!(raw.error().0, "InvalidRequestContent");

    for bad in [
        "ab",
        "1abc",
        "ends-with-dash-",
        "has_underscore",
        &"x".repeat(33),
    ] {
        let r = emu
            .arm(&token, Method::PUT, &emu.compute_path(bad), Some(base()))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            r.error(),
            ("InvalidComputeName".into(), Some("computeName".into())),
            "{bad}"
        );
    }
    for good in ["abc", "gpu-cluster-01", &format!("a{}", "b".repeat(31))] {
        let r = emu
            .arm(&token, Method::PUT, &emu.compute_path(good), Some(base()))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{good}: {}", r.body);
    }

    // PATCH: absent compute → 404; invalid bodies → 400 with target
    let missing = emu
        .arm(
            &token,
            Method::PATCH,
            &emu.compute_path("nope"),
            Some(json!({"properties":{"properties":{"scaleSettings":{"maxNodeCount":1}}}})),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    emu.advance().await; // let "abc" finish creating
    let path = emu.compute_path("abc");
    let unknown = emu
        .arm(
            &token,
            Method::PATCH,
            &path,
            Some(json!({"properties":{"properties":{"vmSize":"Standard_NC6s_v3"}}})),
        )
        .await;
    assert_eq!(
        unknown.error(),
        (
            "InvalidRequestContent".into(),
            Some("properties.properties.vmSize".into())
        )
    );
    let min_gt_max = emu.arm(&token, Method::PATCH, &path, Some(json!({"properties":{"properties":{"scaleSettings":{"maxNodeCount":1,"minNodeCount":3}}}}))).await;
    assert_eq!(
        min_gt_max.error(),
        (
            "BadRequest".into(),
            Some("properties.properties.scaleSettings.minNodeCount".into())
        )
    );
    let location = emu
        .arm(
            &token,
            Method::PATCH,
            &path,
            Some(json!({"location":"westus"})),
        )
        .await;
    assert_eq!(location.error().1.as_deref(), Some("location"));
    let bad_action = emu
        .arm(
            &token,
            Method::DELETE,
            &format!("{path}?underlyingResourceAction=Nuke&{}", common::API),
            None,
        )
        .await;
    assert_eq!(
        bad_action.error().1.as_deref(),
        Some("underlyingResourceAction")
    );
}
