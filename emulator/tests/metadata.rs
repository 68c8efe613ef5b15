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
