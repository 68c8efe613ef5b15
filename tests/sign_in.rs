//! Sign-in with the real Terraform: a configured method is used or fails naming itself
//! (with Entra's AADSTS code), and never falls back to another one. A fake `az` on PATH
//! records whether the Azure CLI method was tried.

mod support;

use support::*;

const VM_SIZES: &str = r#"
data "azureml_vm_sizes" "gpu" {
  provider = clara
  gpu_only = true
}
"#;

/// A workspace whose PATH starts with a fake `az` that notes each call in `az-calls`.
fn with_fake_az(provider_block: &str) -> (Workspace, std::path::PathBuf) {
    with_fake_az_config(provider_block, emulator_config())
}

fn with_fake_az_config(
    provider_block: &str,
    config: serde_json::Value,
) -> (Workspace, std::path::PathBuf) {
    let mut ws = Workspace::with_config("provider", config);
    std::fs::write(
        ws.dir.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    clara = {{ source = \"clara-ml/clara\" }}\n  }}\n}}\n\n{provider_block}\n{VM_SIZES}"
        ),
    )
    .unwrap();
    for f in std::fs::read_dir(&ws.dir).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_some_and(|e| e == "tf") && p.file_name().unwrap() != "main.tf" {
            std::fs::remove_file(p).unwrap();
        }
    }
    let bin = ws.tmp.path().join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = ws.tmp.path().join("az-calls");
    let script = bin.join("az");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho 'ERROR: fake az' >&2\nexit 1\n",
            calls.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    ws.set_env("PATH", &path);
    (ws, calls)
}

fn az_calls(calls: &std::path::Path) -> usize {
    std::fs::read_to_string(calls)
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

fn failing_plan(ws: &Workspace) -> String {
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 1, "the plan must fail:\n{text}");
    // Terraform wraps diagnostics at 78 columns; join the lines to match phrases.
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn a_configured_method_fails_naming_itself_and_never_falls_back() {
    // Wrong client secret: the error names the method and carries Entra's code and message.
    let (mut ws, calls) = with_fake_az("provider \"clara\" {}\n");
    ws.set_env("ARM_CLIENT_SECRET", "wrong-secret");
    let text = failing_plan(&ws);
    println!("wrong secret: {text}");
    assert!(text.contains("client secret"), "{text}");
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(
        !text.contains("wrong-secret"),
        "the secret stays out of output"
    );
    assert!(!text.contains("borrowed string"), "{text}");
    assert_eq!(az_calls(&calls), 0, "the Azure CLI was not tried");

    // client_secret = "" in the configuration: an error on client_secret, not the CLI.
    let (mut ws, calls) = with_fake_az("provider \"clara\" {\n  client_secret = \"\"\n}\n");
    ws.set_env("ARM_CLIENT_SECRET", "");
    let text = failing_plan(&ws);
    assert!(
        text.contains("client_secret") && text.contains("is set but empty"),
        "{text}"
    );
    assert_eq!(az_calls(&calls), 0, "the Azure CLI was not tried");

    // use_oidc without a token: an error on use_oidc, not the CLI.
    let (mut ws, calls) = with_fake_az("provider \"clara\" {}\n");
    ws.set_env("ARM_CLIENT_SECRET", "");
    ws.set_env("ARM_USE_OIDC", "true");
    let text = failing_plan(&ws);
    assert!(
        text.contains("use_oidc") && text.contains("the Azure CLI is not tried instead"),
        "{text}"
    );
    assert_eq!(az_calls(&calls), 0, "the Azure CLI was not tried");

    // Control: with nothing configured the Azure CLI is the method, and it is called.
    let (mut ws, calls) = with_fake_az("provider \"clara\" {}\n");
    ws.set_env("ARM_CLIENT_SECRET", "");
    let text = failing_plan(&ws);
    let n = az_calls(&calls);
    println!("nothing configured: the fake az was called {n} time(s)");
    assert!(
        n >= 1,
        "the Azure CLI is tried when it is the method:\n{text}"
    );
}

// ---- federated (OIDC) sign-in: GitHub Actions, Azure DevOps, AKS workload identity ----------

const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
const GITHUB_SUBJECT: &str = "repo:clara-ml/demo:ref:refs/heads/main";
const ADO_ISSUER: &str = "https://vstoken.dev.azure.com/5a0e0b5e-0000-0000-0000-000000000001";
const ADO_SUBJECT: &str = "sc://clara-ml/demo/clara-connection";
const AKS_ISSUER: &str = "https://eastus.oic.prod-aks.azure.com/tenant/issuer/";
const AKS_SUBJECT: &str = "system:serviceaccount:default:clara";

/// The emulator with federated identity credentials for the three issuers on the main client.
fn federated_config() -> serde_json::Value {
    let mut c = emulator_config();
    c["federated_credentials"] = serde_json::json!([
        {"issuer": GITHUB_ISSUER, "subject": GITHUB_SUBJECT},
        {"issuer": ADO_ISSUER, "subject": ADO_SUBJECT},
        {"issuer": AKS_ISSUER, "subject": AKS_SUBJECT},
    ]);
    c
}

/// An unsigned-looking JWT with the claims a CI token service puts in one (the emulator checks
/// issuer, subject, audience and expiry; see its README for the signature gap).
fn jwt(iss: &str, sub: &str) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = b.encode(br#"{"alg":"RS256","typ":"JWT","kid":"test"}"#);
    let claims = serde_json::json!({
        "iss": iss, "sub": sub, "aud": "api://AzureADTokenExchange",
        "iat": now, "nbf": now, "exp": now + 600,
    });
    let payload = b.encode(claims.to_string());
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

/// A request the OIDC token service saw: method, target (path and query), Authorization.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(String, String, String)>>>;

/// A local stand-in for a CI job's OIDC token service: answers every request with `status`
/// and `body`, and records it.
fn oidc_request_server(status: u16, body: String) -> (String, Seen) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Default::default();
    let s = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            let (mut auth, mut len) = (String::new(), 0usize);
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h.trim().is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap_or((&h, ""));
                match k.trim().to_ascii_lowercase().as_str() {
                    "authorization" => auth = v.trim().to_string(),
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
            let mut discard = vec![0; len];
            reader.read_exact(&mut discard).unwrap();
            s.lock().unwrap().push((method, target, auth));
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, seen)
}

/// `terraform plan` with TF_LOG=debug; returns (exit code, output, provider logs).
fn plan_with_logs(ws: &Workspace) -> (i32, String, String) {
    let log = ws.tmp.path().join("tf.log");
    let out = ws
        .command(&["plan", "-input=false", "-no-color"])
        .env("TF_LOG", "debug")
        .env("TF_LOG_PATH", &log)
        .output()
        .unwrap();
    let logs = std::fs::read_to_string(&log).unwrap_or_default();
    (out.status.code().unwrap_or(-1), combined(&out), logs)
}

/// A workspace for one OIDC method: no client secret, the Azure CLI recorded.
fn oidc_ws() -> (Workspace, std::path::PathBuf) {
    let (mut ws, calls) = with_fake_az_config("provider \"clara\" {}\n", federated_config());
    ws.set_env("ARM_CLIENT_SECRET", "");
    (ws, calls)
}

fn chosen(logs: &str) -> Vec<String> {
    logs.lines()
        .filter_map(|l| l.split("Azure sign-in method chosen: ").nth(1))
        .map(|m| {
            m.split(['"', ':', ' '])
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn github_actions_oidc_request_flow_signs_in() {
    let assertion = jwt(GITHUB_ISSUER, GITHUB_SUBJECT);
    let (url, seen) = oidc_request_server(200, format!(r#"{{"count":1,"value":"{assertion}"}}"#));
    let (mut ws, calls) = oidc_ws();
    ws.set_env("ARM_USE_OIDC", "true");
    ws.set_env(
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "gh-request-token-do-not-log",
    );
    ws.set_env(
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        &format!("{url}/_apis/distributedtask/hubs/build/plans/p/jobs/j/idtoken?api-version=2.0"),
    );
    let (code, text, logs) = plan_with_logs(&ws);
    assert_eq!(code, 0, "{text}");
    let seen = seen.lock().unwrap().clone();
    println!("GitHub OIDC: {} token request(s): {seen:?}", seen.len());
    assert!(!seen.is_empty());
    for (method, target, auth) in &seen {
        assert_eq!(method, "GET");
        assert!(
            target.contains("api-version=2.0&audience=api%3A%2F%2FAzureADTokenExchange"),
            "{target}"
        );
        assert_eq!(auth, "Bearer gh-request-token-do-not-log");
    }
    let won = chosen(&logs);
    println!("methods chosen in the log: {won:?}");
    assert!(
        logs.contains("Azure sign-in method chosen: GitHub Actions OIDC"),
        "no method line in the debug log"
    );
    for secret in [
        "gh-request-token-do-not-log",
        assertion.as_str(),
        "c2lnbmF0dXJl",
    ] {
        assert!(
            !logs.contains(secret) && !text.contains(secret),
            "{secret} leaked into TF_LOG output"
        );
    }
    assert_eq!(az_calls(&calls), 0, "the Azure CLI was not tried");
}

#[test]
fn azure_devops_oidc_request_flow_signs_in() {
    let assertion = jwt(ADO_ISSUER, ADO_SUBJECT);
    let (url, seen) = oidc_request_server(200, format!(r#"{{"oidcToken":"{assertion}"}}"#));
    let (mut ws, calls) = oidc_ws();
    ws.set_env("ARM_USE_OIDC", "true");
    ws.set_env("ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID", "conn-1234");
    ws.set_env("SYSTEM_ACCESSTOKEN", "ado-system-token-do-not-log");
    ws.set_env(
        "SYSTEM_OIDCREQUESTURI",
        &format!("{url}/org/_apis/distributedtask/hubs/build/plans/p/jobs/j/oidctoken"),
    );
    let (code, text, logs) = plan_with_logs(&ws);
    assert_eq!(code, 0, "{text}");
    let seen = seen.lock().unwrap().clone();
    println!(
        "Azure DevOps OIDC: {} token request(s): {seen:?}",
        seen.len()
    );
    assert!(!seen.is_empty());
    for (method, target, auth) in &seen {
        assert_eq!(method, "POST");
        assert!(
            target.ends_with("/oidctoken?api-version=7.1&serviceConnectionId=conn-1234"),
            "{target}"
        );
        assert_eq!(auth, "Bearer ado-system-token-do-not-log");
    }
    assert!(logs.contains("Azure sign-in method chosen: Azure DevOps OIDC"));
    for secret in ["ado-system-token-do-not-log", assertion.as_str()] {
        assert!(
            !logs.contains(secret) && !text.contains(secret),
            "{secret} leaked"
        );
    }
    assert_eq!(az_calls(&calls), 0);
}

#[test]
fn aks_workload_identity_reads_the_federated_token_file() {
    let (mut ws, calls) = oidc_ws();
    let file = ws.tmp.path().join("azure-identity-token");
    let assertion = jwt(AKS_ISSUER, AKS_SUBJECT);
    std::fs::write(&file, format!("{assertion}\n")).unwrap();
    ws.set_env("ARM_USE_AKS_WORKLOAD_IDENTITY", "true");
    ws.set_env("AZURE_FEDERATED_TOKEN_FILE", &file.display().to_string());
    // Tenant and client come from the variables AKS injects, not ARM_*.
    ws.set_env("ARM_CLIENT_ID", "");
    ws.set_env("ARM_TENANT_ID", "");
    ws.set_env("AZURE_CLIENT_ID", CLIENT_ID);
    ws.set_env("AZURE_TENANT_ID", TENANT);
    let (code, text, logs) = plan_with_logs(&ws);
    assert_eq!(code, 0, "{text}");
    assert!(logs.contains("Azure sign-in method chosen: AKS workload identity"));
    assert!(!logs.contains(&assertion) && !text.contains(&assertion));
    assert_eq!(az_calls(&calls), 0);

    // The same file whose subject no federated credential names: Entra's AADSTS700213.
    std::fs::write(&file, jwt(AKS_ISSUER, "system:serviceaccount:other:sa")).unwrap();
    let (code, text, _) = plan_with_logs(&ws);
    assert_eq!(code, 1, "{text}");
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    println!("AKS wrong subject: {text}");
    assert!(
        text.contains("AKS workload identity") && text.contains("AADSTS700213"),
        "{text}"
    );
    assert_eq!(az_calls(&calls), 0);
}

#[test]
fn each_wrong_oidc_setting_fails_naming_the_method() {
    // A token for an issuer the app does not trust: AADSTS700211, GitHub named.
    let (url, _) = oidc_request_server(
        200,
        format!(
            r#"{{"value":"{}"}}"#,
            jwt("https://evil.example", GITHUB_SUBJECT)
        ),
    );
    let (mut ws, calls) = oidc_ws();
    ws.set_env("ARM_USE_OIDC", "true");
    ws.set_env("ARM_OIDC_REQUEST_TOKEN", "t");
    ws.set_env("ARM_OIDC_REQUEST_URL", &format!("{url}/idtoken?x=1"));
    let text = failing_plan(&ws);
    println!("untrusted issuer: {text}");
    assert!(
        text.contains("GitHub Actions OIDC") && text.contains("AADSTS700211"),
        "{text}"
    );
    assert_eq!(az_calls(&calls), 0);

    // The token service answers garbage: a clear message, not a JSON parse error.
    let (url, _) = oidc_request_server(200, r#"{"value":"not a jwt at all"}"#.into());
    ws.set_env("ARM_OIDC_REQUEST_URL", &format!("{url}/idtoken?x=1"));
    let text = failing_plan(&ws);
    println!("not a JWT: {text}");
    assert!(
        text.contains("GitHub Actions OIDC") && text.contains("is not a JWT"),
        "{text}"
    );
    assert!(
        !text.contains("expected value") && !text.contains("borrowed"),
        "{text}"
    );

    // The token service refuses the request token.
    let (url, _) = oidc_request_server(401, r#"{"message":"Bad credentials"}"#.into());
    ws.set_env("ARM_OIDC_REQUEST_URL", &format!("{url}/idtoken?x=1"));
    let text = failing_plan(&ws);
    assert!(
        text.contains("GitHub Actions OIDC") && text.contains("HTTP 401"),
        "{text}"
    );

    // A bad ARM_OIDC_TOKEN: named, and not sent.
    ws.set_env("ARM_OIDC_TOKEN", "{\"not\":\"a jwt\"}");
    let text = failing_plan(&ws);
    assert!(
        text.contains("OIDC token") && text.contains("is not a JWT"),
        "{text}"
    );

    // Azure DevOps with the service connection but no request URL: names what is missing.
    let (mut ws, calls2) = oidc_ws();
    ws.set_env("ARM_USE_OIDC", "true");
    ws.set_env("ARM_ADO_PIPELINE_SERVICE_CONNECTION_ID", "conn-1234");
    ws.set_env("SYSTEM_ACCESSTOKEN", "t");
    let text = failing_plan(&ws);
    assert!(
        text.contains("Azure DevOps OIDC") && text.contains("oidc_request_url"),
        "{text}"
    );

    // AKS workload identity without its token file.
    let (mut ws, calls3) = oidc_ws();
    ws.set_env("ARM_USE_AKS_WORKLOAD_IDENTITY", "true");
    let text = failing_plan(&ws);
    assert!(
        text.contains("use_aks_workload_identity") && text.contains("AZURE_FEDERATED_TOKEN_FILE"),
        "{text}"
    );

    // A client certificate that cannot be read is an error, not ignored.
    let (mut ws, calls4) = oidc_ws();
    ws.set_env("ARM_CLIENT_CERTIFICATE_PATH", "/nonexistent/cert.pfx");
    let text = failing_plan(&ws);
    assert!(
        text.contains("client certificate") && text.contains("client_certificate_path"),
        "{text}"
    );
    let total = az_calls(&calls) + az_calls(&calls2) + az_calls(&calls3) + az_calls(&calls4);
    assert_eq!(total, 0, "the Azure CLI was never tried");
}

// ---- client certificate ---------------------------------------------------------------------

/// A self-signed RSA test certificate made with the openssl CLI: (PEM with cert and key, PFX
/// protected by `password`, the certificate PEM alone).
fn test_certificate(
    dir: &std::path::Path,
    name: &str,
    password: &str,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let crt = dir.join(format!("{name}.crt"));
    let pfx = dir.join(format!("{name}.pfx"));
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        &format!("/CN={name}"),
        "-keyout",
        key.to_str().unwrap(),
        "-out",
        crt.to_str().unwrap(),
    ]);
    run(&[
        "pkcs12",
        "-export",
        "-inkey",
        key.to_str().unwrap(),
        "-in",
        crt.to_str().unwrap(),
        "-out",
        pfx.to_str().unwrap(),
        "-passout",
        &format!("pass:{password}"),
    ]);
    let cert_pem = std::fs::read_to_string(&crt).unwrap();
    let pem = dir.join(format!("{name}.pem"));
    std::fs::write(
        &pem,
        format!("{cert_pem}{}", std::fs::read_to_string(&key).unwrap()),
    )
    .unwrap();
    (pem, pfx, cert_pem)
}

#[test]
fn client_certificate_pfx_and_pem_sign_in_and_wrong_ones_fail_naming_it() {
    let certs = tempfile::tempdir().unwrap();
    let password = "pfx-password-do-not-log";
    let (pem, pfx, cert_pem) = test_certificate(certs.path(), "registered", password);
    let (_, other_pfx, _) = test_certificate(certs.path(), "unregistered", password);
    let mut config = emulator_config();
    config["client_certificates"] = serde_json::json!([cert_pem]);
    let (mut ws, calls) = with_fake_az_config("provider \"clara\" {}\n", config);
    ws.set_env("ARM_CLIENT_SECRET", "");

    // PFX with its password: signs in; the log names the method and holds no password.
    ws.set_env("ARM_CLIENT_CERTIFICATE_PATH", pfx.to_str().unwrap());
    ws.set_env("ARM_CLIENT_CERTIFICATE_PASSWORD", password);
    let (code, text, logs) = plan_with_logs(&ws);
    assert_eq!(code, 0, "{text}");
    assert!(logs.contains("Azure sign-in method chosen: client certificate"));
    assert!(!logs.contains(password) && !text.contains(password));
    let tokens = ws.emulator.count_ops("token", true);
    println!("PFX: {tokens} token request(s) answered");
    assert!(tokens >= 1);

    // PEM (certificate + key in one file), no password.
    ws.set_env("ARM_CLIENT_CERTIFICATE_PATH", pem.to_str().unwrap());
    ws.set_env("ARM_CLIENT_CERTIFICATE_PASSWORD", "");
    let (code, text, _) = plan_with_logs(&ws);
    assert_eq!(code, 0, "{text}");

    // Wrong PFX password: named, not echoed.
    ws.set_env("ARM_CLIENT_CERTIFICATE_PATH", pfx.to_str().unwrap());
    ws.set_env("ARM_CLIENT_CERTIFICATE_PASSWORD", "wrong-password");
    let text = failing_plan(&ws);
    println!("wrong password: {text}");
    assert!(
        text.contains("client certificate") && text.contains("client_certificate_password"),
        "{text}"
    );
    assert!(!text.contains("wrong-password"));

    // A certificate the app does not have: Entra's AADSTS700027.
    ws.set_env("ARM_CLIENT_CERTIFICATE_PATH", other_pfx.to_str().unwrap());
    ws.set_env("ARM_CLIENT_CERTIFICATE_PASSWORD", password);
    let text = failing_plan(&ws);
    println!("unregistered certificate: {text}");
    assert!(
        text.contains("client certificate") && text.contains("AADSTS700027"),
        "{text}"
    );
    assert!(text.contains("The key was not found"), "{text}");

    // The registered certificate with another key: the thumbprint matches, the signature does
    // not verify.
    let mixed = certs.path().join("mixed.pem");
    let other_key = std::fs::read_to_string(certs.path().join("unregistered.key")).unwrap();
    std::fs::write(&mixed, format!("{cert_pem}{other_key}")).unwrap();
    ws.set_env("ARM_CLIENT_CERTIFICATE_PATH", mixed.to_str().unwrap());
    ws.set_env("ARM_CLIENT_CERTIFICATE_PASSWORD", "");
    let text = failing_plan(&ws);
    println!("registered certificate, other key: {text}");
    assert!(
        text.contains("AADSTS700027") && text.contains("Signature verification failed"),
        "{text}"
    );
    assert_eq!(az_calls(&calls), 0, "the Azure CLI was never tried");
}

#[test]
fn azure_cli_stand_in_signs_in_when_nothing_else_is_configured() {
    let (mut ws, calls) = with_fake_az("provider \"clara\" {}\n");
    ws.set_env("ARM_CLIENT_SECRET", "");
    // A CLI stand-in answering `az account get-access-token` with a token the emulator issued.
    let token = ws.emulator.token();
    let expires_on = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    std::fs::write(
        ws.tmp.path().join("fake-bin/az"),
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho '{{\"accessToken\":\"{token}\",\"expires_on\":{expires_on},\"tokenType\":\"Bearer\"}}'\n",
            calls.display()
        ),
    )
    .unwrap();
    let (code, text, logs) = plan_with_logs(&ws);
    assert_eq!(code, 0, "{text}");
    let args = std::fs::read_to_string(&calls).unwrap();
    println!("az called {} time(s): {args}", az_calls(&calls));
    assert!(
        args.contains("account get-access-token") && args.contains("management.azure.com/.default"),
        "{args}"
    );
    assert!(logs.contains("Azure sign-in method chosen: Azure CLI"));
    assert!(
        !logs.contains(&token),
        "the CLI's token leaked into TF_LOG output"
    );
}

#[test]
fn managed_identity_with_a_client_id_signs_in_and_an_unknown_one_fails_naming_it() {
    let uami = "22222222-2222-2222-2222-222222222222";
    let mut config = emulator_config();
    config["principals"] = serde_json::json!([
        {"client_id": uami, "client_secret": "unused-secret", "roles": ["Owner"]}
    ]);
    let (mut ws, calls) = with_fake_az_config("provider \"clara\" {}\n", config);
    ws.set_env("ARM_CLIENT_SECRET", "");
    ws.set_env("ARM_USE_MSI", "true");
    ws.set_env("ARM_CLIENT_ID", uami);
    let endpoint = format!("{}/metadata/identity/oauth2/token", ws.emulator.url);
    ws.set_env("ARM_MSI_ENDPOINT", &endpoint);
    let (code, text, logs) = plan_with_logs(&ws);
    assert_eq!(code, 0, "{text}");
    assert!(logs.contains("Azure sign-in method chosen: managed identity"));
    let imds: Vec<_> = ws
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r["op"] == "imds.token")
        .collect();
    println!("managed identity: {} IMDS token request(s)", imds.len());
    assert!(!imds.is_empty());

    ws.set_env("ARM_CLIENT_ID", "33333333-3333-3333-3333-333333333333");
    let text = failing_plan(&ws);
    println!("unknown identity: {text}");
    assert!(
        text.contains("managed identity") && text.contains("Identity not found"),
        "{text}"
    );
    assert_eq!(az_calls(&calls), 0, "the Azure CLI was never tried");
}
