//! ARM cloud metadata endpoint (`/metadata/endpoints`): object for 2022-09-01+, array for
//! 2019-05-01, no auth, api-version required. See emulator/README.md, "Cloud metadata".

mod common;

use common::Emu;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn cloud_metadata_describes_the_emulator() {
    let emu = Emu::start().await;
    let base = emu.url("/");

    // 2022-09-01: one object for this cloud (go-azure-sdk decodes a single struct).
    let one = emu
        .admin(
            Method::GET,
            "/metadata/endpoints?api-version=2022-09-01",
            None,
        )
        .await;
    assert_eq!(one.status, StatusCode::OK);
    let doc = &one.body;
    assert!(doc.is_object(), "{doc}");
    assert_eq!(doc["name"], "ClaraEmulator");
    assert_eq!(doc["resourceManager"], base.as_str());
    assert_eq!(doc["authentication"]["loginEndpoint"], base.as_str());
    assert!(
        doc["authentication"]["audiences"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == "https://management.azure.com/"))
    );
    // This cloud's resourceManager is one of its audiences (azure-ai-ml asks a token for it).
    assert!(
        doc["authentication"]["audiences"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == base.as_str()))
    );
    assert_eq!(doc["suffixes"]["storage"], "core.windows.net");
    assert!(doc["portal"].as_str().is_some());

    // 2019-05-01: an array of clouds (cloud-provider-azure decodes []struct{…}).
    let many = emu
        .admin(
            Method::GET,
            "/metadata/endpoints?api-version=2019-05-01",
            None,
        )
        .await;
    assert_eq!(many.status, StatusCode::OK);
    let arr = many.body.as_array().expect("array form");
    assert_eq!(arr.len(), 1);
    assert_eq!(&arr[0], doc);

    // api-version is required and must be one the endpoint knows.
    let missing = emu.admin(Method::GET, "/metadata/endpoints", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error().0, "MissingApiVersionParameter");
    let old = emu
        .admin(
            Method::GET,
            "/metadata/endpoints?api-version=2015-01-01",
            None,
        )
        .await;
    assert_eq!(old.status, StatusCode::BAD_REQUEST);
    assert_eq!(old.error().0, "InvalidApiVersionParameter");
}

/// Config `cloud: "usgovernment"`: the document and the tenant wear US Government's names
/// (go-azure-sdk `AzureUSGovernment`); public Azure's ARM audience is not known there.
#[tokio::test]
async fn us_government_shape_names_and_accepts_that_clouds_audiences() {
    let config = clara_emulator::config::Config {
        cloud: clara_emulator::metadata::CloudShape::UsGovernment,
        ..common::fast_config()
    };
    let emu = Emu::start_with(config).await;
    let base = emu.url("/");
    let doc = emu
        .admin(
            Method::GET,
            "/metadata/endpoints?api-version=2022-09-01",
            None,
        )
        .await
        .body;
    assert_eq!(doc["resourceManager"], base.as_str());
    assert_eq!(doc["authentication"]["loginEndpoint"], base.as_str());
    assert_eq!(
        doc["authentication"]["audiences"],
        serde_json::json!([
            "https://management.core.usgovcloudapi.net/",
            "https://management.usgovcloudapi.net/",
            base
        ])
    );
    assert_eq!(doc["suffixes"]["storage"], "core.usgovcloudapi.net");
    assert_eq!(doc["portal"], "https://portal.azure.us");

    let token = |scope: &'static str| {
        let emu = &emu;
        async move {
            emu.token_request(&[
                ("grant_type", "client_credentials"),
                ("client_id", &emu.config.client_id),
                ("client_secret", &emu.config.client_secret),
                ("scope", scope),
            ])
            .await
        }
    };
    // Public Azure's ARM and ML resources are unknown in this tenant: AADSTS500011.
    for public in [
        "https://management.azure.com/.default",
        "https://ml.azure.com/.default",
    ] {
        let r = token(public).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{public}: {}", r.body);
        assert!(r.body["error_codes"][0] == 500011, "{public}: {}", r.body);
    }
    // That cloud's ARM audience works on ARM routes; its ML audience does not.
    let arm = token("https://management.usgovcloudapi.net/.default").await;
    assert_eq!(arm.status, StatusCode::OK, "{}", arm.body);
    let arm = arm.body["access_token"].as_str().unwrap().to_string();
    let path = emu.ws_path();
    assert_eq!(
        emu.arm(&arm, Method::GET, &path, None).await.status,
        StatusCode::OK
    );
    let ml = token("https://ml.azure.us/.default").await;
    assert_eq!(ml.status, StatusCode::OK, "{}", ml.body);
    let ml = ml.body["access_token"].as_str().unwrap().to_string();
    let refused = emu.arm(&ml, Method::GET, &path, None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused.error().0, "InvalidAuthenticationTokenAudience");
    let message = refused.body["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("'https://management.usgovcloudapi.net/'")
            && !message.contains("management.azure.com"),
        "the refusal lists that cloud's audiences: {message}"
    );
}
