mod common;

use clara_emulator::Config;
use common::{Emu, fast_config};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn client_credentials_token_flow() {
    let emu = Emu::start().await;
    let r = emu
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &emu.config.client_id),
            ("client_secret", &emu.config.client_secret),
            ("scope", "https://management.azure.com/.default"),
        ])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["expires_in"], 3599);
    assert_eq!(r.body["ext_expires_in"], 3599);
    let token = r.body["access_token"].as_str().unwrap();
    assert!(token.len() >= 32);

    let ws = emu.arm(token, Method::GET, &emu.ws_path(), None).await;
    assert_eq!(ws.status, StatusCode::OK, "{}", ws.body);
}

#[tokio::test]
async fn token_errors_are_aad_shaped() {
    let emu = Emu::start().await;
    let client_id = emu.config.client_id.clone();
    let secret = emu.config.client_secret.clone();
    let scope = "https://management.azure.com/.default";

    let wrong_secret = emu
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", "nope"),
            ("scope", scope),
        ])
        .await;
    assert_eq!(wrong_secret.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_secret.body["error"], "invalid_client");
    assert!(
        wrong_secret.body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS7000215")
    );
    assert_eq!(wrong_secret.body["error_codes"][0], 7000215);

    let wrong_client = emu
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "someone-else"),
            ("client_secret", &secret),
            ("scope", scope),
        ])
        .await;
    assert_eq!(wrong_client.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_client.body["error"], "invalid_client");

    let bad_scope = emu
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
            ("scope", "https://management.azure.com/user_impersonation"),
        ])
        .await;
    assert_eq!(bad_scope.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_scope.body["error"], "invalid_scope");

    let bad_grant = emu
        .token_request(&[
            ("grant_type", "password"),
            ("client_id", &client_id),
            ("scope", scope),
        ])
        .await;
    assert_eq!(bad_grant.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_grant.body["error"], "unsupported_grant_type");

    let unknown_tenant = emu
        .client
        .post(emu.url("/99999999-0000-0000-0000-000000000000/oauth2/v2.0/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}&scope={scope}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_tenant.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn client_secret_basic_is_accepted() {
    use base64::Engine;
    let emu = Emu::start().await;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        emu.config.client_id, emu.config.client_secret
    ));
    let r = emu
        .client
        .post(emu.token_url())
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=https%3A%2F%2Fmanagement.azure.com%2F.default")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn arm_routes_require_a_valid_bearer_token() {
    let emu = Emu::start().await;
    let url = emu.url(&format!("{}?{}", emu.ws_path(), common::API));

    let missing = common::into_resp(emu.client.get(&url).send().await.unwrap()).await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(missing.error().0, "AuthenticationFailed");
    assert!(
        missing
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer authorization_uri=")
    );

    let forged = emu
        .send("not-a-token-we-issued", Method::GET, &url, None)
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    assert_eq!(forged.error().0, "InvalidAuthenticationToken");

    // 401s never reach the handler: nothing was created.
    let token = emu.token().await;
    let put = emu
        .send(
            "forged",
            Method::PUT,
            &emu.url(&format!("{}?{}", emu.compute_path("gpu-a"), common::API)),
            Some(common::cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(put.status, StatusCode::UNAUTHORIZED);
    let get = emu
        .arm(&token, Method::GET, &emu.compute_path("gpu-a"), None)
        .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let emu = Emu::start_with(Config {
        token_expires_in_s: 0,
        ..fast_config()
    })
    .await;
    let token = emu.token().await;
    let r = emu.arm(&token, Method::GET, &emu.ws_path(), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error().0, "ExpiredAuthenticationToken");
}

#[tokio::test]
async fn api_version_is_required() {
    let emu = Emu::start().await;
    let token = emu.token().await;
    let missing = emu
        .send(&token, Method::GET, &emu.url(&emu.ws_path()), None)
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.error().0, "MissingApiVersionParameter");
    let invalid = emu
        .send(
            &token,
            Method::GET,
            &emu.url(&format!("{}?api-version=latest", emu.ws_path())),
            None,
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.error().0, "InvalidApiVersionParameter");
}

#[tokio::test]
async fn discovery_documents() {
    let emu = Emu::start().await;
    let oidc = emu
        .admin(
            Method::GET,
            &format!(
                "/{}/v2.0/.well-known/openid-configuration",
                emu.config.tenant_id
            ),
            None,
        )
        .await;
    assert_eq!(oidc.status, StatusCode::OK);
    assert_eq!(oidc.body["token_endpoint"], emu.token_url());
    let instance = emu
        .admin(
            Method::GET,
            "/common/discovery/instance?api-version=1.1&authorization_endpoint=x",
            None,
        )
        .await;
    assert_eq!(instance.status, StatusCode::OK);
    assert!(
        instance.body["tenant_discovery_endpoint"]
            .as_str()
            .unwrap()
            .ends_with("/.well-known/openid-configuration")
    );
}
