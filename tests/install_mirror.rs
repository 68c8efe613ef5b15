//! Installing the provider as users do offline: a filesystem mirror, `terraform init`, and a
//! dependency lock file.

mod support;

use support::*;

#[test]
fn installs_from_a_filesystem_mirror_with_a_lock_file() {
    let mut ws = Workspace::new("gpu-cluster");
    let version = env!("CARGO_PKG_VERSION");
    let platform = format!(
        "{}_{}",
        std::env::consts::OS,
        if cfg!(target_arch = "x86_64") {
            "amd64"
        } else {
            "arm64"
        }
    );
    let mirror = ws.tmp.path().join("mirror");
    let pkg_dir = mirror.join(PROVIDER_SOURCE).join(version).join(&platform);
    std::fs::create_dir_all(&pkg_dir).unwrap();
    std::fs::copy(
        bin_dir().join("terraform-provider-clara"),
        pkg_dir.join(format!("terraform-provider-clara_v{version}")),
    )
    .unwrap();
    let rc = ws.tmp.path().join("mirror.tfrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"{PROVIDER_SOURCE}\"]\n  }}\n  direct {{\n    exclude = [\"{PROVIDER_SOURCE}\"]\n  }}\n}}\n",
            mirror.display()
        ),
    )
    .unwrap();
    ws.set_env("TF_CLI_CONFIG_FILE", &rc.display().to_string());

    let init = ws.ok(&["init", "-input=false", "-no-color"]);
    assert!(
        init.contains(&format!("Installed clara-ml/clara v{version}")),
        "{init}"
    );
    let lock = std::fs::read_to_string(ws.dir.join(".terraform.lock.hcl")).unwrap();
    assert!(
        lock.contains(&format!("provider \"{PROVIDER_SOURCE}\"")),
        "{lock}"
    );
    assert!(
        lock.contains(&format!("version = \"{version}\"")) && lock.contains("\"h1:"),
        "{lock}"
    );

    // The installed copy, not target/debug, serves a real plan.
    let (code, text) = ws.plan(&[]);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("azureml_gpu_cluster.clara_ct will be created"),
        "{text}"
    );
    assert!(
        !text.contains("development overrides"),
        "must not use dev_overrides here:\n{text}"
    );
}
