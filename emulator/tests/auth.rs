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

fn claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn token_for(emu: &Emu, client_id: &str, secret: &str, scope: &str) -> common::Resp {
    emu.token_request(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ])
    .await
}

#[tokio::test]
async fn tokens_are_v1_jwts_whose_audience_is_the_scope_resource() {
    let emu = Emu::start().await;
    let (id, secret) = (
        emu.config.client_id.clone(),
        emu.config.client_secret.clone(),
    );
    let tid = emu.config.tenant_id.clone();
    for (scope, aud) in [
        (
            "https://management.azure.com/.default",
            "https://management.azure.com",
        ),
        (
            "https://management.azure.com//.default",
            "https://management.azure.com/",
        ),
        (
            "https://storage.azure.com/.default",
            "https://storage.azure.com",
        ),
        ("https://ml.azure.com/.default", "https://ml.azure.com"),
    ] {
        let r = token_for(&emu, &id, &secret, scope).await;
        assert_eq!(r.status, StatusCode::OK, "{scope}: {}", r.body);
        let c = claims(r.body["access_token"].as_str().unwrap());
        assert_eq!(c["aud"], aud, "{scope}");
        assert_eq!(c["iss"], format!("https://sts.windows.net/{tid}/"));
        assert_eq!(c["tid"], tid.as_str());
        assert_eq!(c["appid"], id.as_str());
        assert_eq!(c["idtyp"], "app");
        assert_eq!(c["ver"], "1.0");
        assert_eq!(c["sub"], c["oid"]);
        let (iat, nbf, exp) = (
            c["iat"].as_u64().unwrap(),
            c["nbf"].as_u64().unwrap(),
            c["exp"].as_u64().unwrap(),
        );
        assert!(nbf <= iat && exp == iat + 3599, "{c}");
    }
    let unknown = token_for(&emu, &id, &secret, "https://vault.azure.net/.default").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error_codes"][0], 500011);
    let two = token_for(
        &emu,
        &id,
        &secret,
        "https://management.azure.com/.default https://storage.azure.com/.default",
    )
    .await;
    assert_eq!(two.status, StatusCode::BAD_REQUEST);
    assert_eq!(two.body["error_codes"][0], 28000);

    // The tenant's JWKS holds the signing key named by the token's `kid`.
    let jwks = emu
        .admin(Method::GET, &format!("/{tid}/discovery/v2.0/keys"), None)
        .await;
    let token = emu.token().await;
    let header: serde_json::Value = {
        use base64::Engine;
        let h = token.split('.').next().unwrap();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "RS256");
    assert_eq!(jwks.body["keys"][0]["kid"], header["kid"]);
    assert_eq!(jwks.body["keys"][0]["kty"], "RSA");
}

#[tokio::test]
async fn each_route_family_checks_the_audience() {
    let emu = Emu::start().await;
    let (id, secret) = (
        emu.config.client_id.clone(),
        emu.config.client_secret.clone(),
    );
    let storage = token_for(&emu, &id, &secret, "https://storage.azure.com/.default").await;
    let storage = storage.body["access_token"].as_str().unwrap().to_string();
    let ml = token_for(&emu, &id, &secret, "https://ml.azure.com/.default").await;
    let ml = ml.body["access_token"].as_str().unwrap().to_string();
    for token in [&storage, &ml] {
        let r = emu.arm(token, Method::GET, &emu.ws_path(), None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
        assert_eq!(r.error().0, "InvalidAuthenticationTokenAudience");
        assert!(
            r.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("wrong audience or resource"),
            "{}",
            r.body
        );
    }
    let mlflow = format!(
        "/mlflow/v1.0{}/api/2.0/mlflow/runs/get?run_id=nope",
        emu.ws_path()
    );
    let r = emu
        .send(&storage, Method::GET, &emu.url(&mlflow), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    // ML and ARM tokens both reach the data plane (404: no such run).
    for token in [&ml, &emu.token().await] {
        let r = emu.send(token, Method::GET, &emu.url(&mlflow), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    }
}

#[tokio::test]
async fn principals_are_limited_to_their_roles() {
    let config = Config {
        principals: serde_json::from_value(serde_json::json!([
            {"client_id": "22222222-2222-2222-2222-222222222222", "client_secret": "reader-secret",
             "roles": ["Reader", "Storage Blob Data Reader"]},
            {"client_id": "33333333-3333-3333-3333-333333333333", "client_secret": "ds-secret",
             "roles": ["AzureML Data Scientist"]},
        ]))
        .unwrap(),
        ..fast_config()
    };
    let emu = Emu::start_with(config).await;
    let arm = "https://management.azure.com/.default";
    let reader = token_for(
        &emu,
        "22222222-2222-2222-2222-222222222222",
        "reader-secret",
        arm,
    )
    .await;
    assert_eq!(reader.status, StatusCode::OK, "{}", reader.body);
    let reader = reader.body["access_token"].as_str().unwrap().to_string();
    let wrong = token_for(&emu, "22222222-2222-2222-2222-222222222222", "nope", arm).await;
    assert_eq!(wrong.body["error_codes"][0], 7000215);

    let get = emu.arm(&reader, Method::GET, &emu.ws_path(), None).await;
    assert_eq!(get.status, StatusCode::OK, "{}", get.body);
    let ds = format!("{}/datastores/workspaceblobstore", emu.ws_path());
    assert_eq!(
        emu.arm(&reader, Method::GET, &ds, None).await.status,
        StatusCode::OK
    );
    let secrets = emu
        .arm(&reader, Method::POST, &format!("{ds}/listSecrets"), None)
        .await;
    assert_eq!(secrets.status, StatusCode::FORBIDDEN, "{}", secrets.body);
    assert_eq!(secrets.error().0, "AuthorizationFailed");
    let oid = claims(&reader)["oid"].as_str().unwrap().to_string();
    assert_eq!(
        secrets.body["error"]["message"],
        format!(
            "The client '22222222-2222-2222-2222-222222222222' with object id '{oid}' does not have authorization to perform action 'Microsoft.MachineLearningServices/workspaces/datastores/listSecrets/action' over scope '{ds}' or the scope is invalid. If access was recently granted, please refresh your credentials."
        )
    );
    let put = emu
        .arm(
            &reader,
            Method::PUT,
            &emu.compute_path("gpu"),
            Some(common::cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(put.status, StatusCode::FORBIDDEN);
    assert_eq!(
        emu.arm(
            &emu.token().await,
            Method::GET,
            &emu.compute_path("gpu"),
            None
        )
        .await
        .status,
        StatusCode::NOT_FOUND,
        "a refused write changes nothing"
    );

    // AzureML Data Scientist: datastore secrets yes, creating compute no.
    let ds_token = token_for(
        &emu,
        "33333333-3333-3333-3333-333333333333",
        "ds-secret",
        arm,
    )
    .await;
    let ds_token = ds_token.body["access_token"].as_str().unwrap().to_string();
    assert_eq!(
        emu.arm(&ds_token, Method::POST, &format!("{ds}/listSecrets"), None)
            .await
            .status,
        StatusCode::OK
    );
    let put = emu
        .arm(
            &ds_token,
            Method::PUT,
            &emu.compute_path("gpu"),
            Some(common::cluster_body("Standard_NC6s_v3", 0, 1)),
        )
        .await;
    assert_eq!(put.status, StatusCode::FORBIDDEN, "{}", put.body);

    // Unknown role names are a config error.
    let bad: Result<Vec<clara_emulator::auth::PrincipalConfig>, _> = serde_json::from_value(
        serde_json::json!([{"client_id": "x", "client_secret": "y", "roles": ["Readr"]}]),
    );
    let bad = Config {
        principals: bad.unwrap(),
        ..fast_config()
    };
    assert!(bad.validate().unwrap_err().contains("unknown role 'Readr'"));
}
