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
    let mut ws = Workspace::with_config("provider", emulator_config());
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
    text
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
