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

fn platform() -> String {
    format!(
        "{}_{}",
        std::env::consts::OS,
        if cfg!(target_arch = "x86_64") {
            "amd64"
        } else {
            "arm64"
        }
    )
}

fn script(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(repo_root().join("scripts/release.sh"))
        .args(args)
        .envs(env.iter().copied())
        .env("LOCKED", "")
        .current_dir(&ws.dir)
        .output()
        .unwrap();
    let text = combined(&out);
    assert!(out.status.success(), "release.sh {args:?}:\n{text}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `make install` (scripts/release.sh install) in a clean HOME: a plain `terraform init` with
/// no CLI configuration at all finds the provider in the implied local mirror, and applies.
#[test]
fn make_install_lets_a_plain_terraform_init_apply() {
    let mut ws = Workspace::new("gpu-cluster");
    let home = ws.tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let bin = bin_dir().join("terraform-provider-clara");
    script(
        &ws,
        &["install"],
        &[
            ("HOME", home.to_str().unwrap()),
            ("CLARA_INSTALL_BIN", bin.to_str().unwrap()),
        ],
    );
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        home.join(format!(
            ".terraform.d/plugins/{PROVIDER_SOURCE}/{version}/{}/terraform-provider-clara_v{version}",
            platform()
        ))
        .exists()
    );
    ws.set_env("HOME", home.to_str().unwrap());
    // No CLI configuration: no dev_overrides, no explicit mirror.
    ws.set_env("TF_CLI_CONFIG_FILE", "");
    let init = ws.ok(&["init", "-input=false", "-no-color"]);
    assert!(
        init.contains(&format!(
            "Installed clara-ml/clara v{version} (unauthenticated)"
        )),
        "{init}"
    );
    let out = ws.apply(&[]);
    assert!(!out.contains("development overrides"), "{out}");
    assert!(out.contains("Apply complete! Resources: 1 added"), "{out}");
    ws.ok(&["destroy", "-auto-approve", "-no-color"]);
}

/// A provider network mirror (the registry artifacts laid out by scripts/release.sh mirror,
/// served over HTTPS): `terraform init` installs from it and `providers lock` records the
/// mirror's h1: hash.
#[test]
fn installs_from_a_network_mirror_and_locks_the_platform() {
    let mut ws = Workspace::new("gpu-cluster");
    let t = ws.tmp.path().to_path_buf();
    let bin = bin_dir().join("terraform-provider-clara");
    let dist = t.join("dist");
    let platform = platform();
    script(
        &ws,
        &[
            "package",
            bin.to_str().unwrap(),
            &platform,
            dist.to_str().unwrap(),
        ],
        &[],
    );
    let mirror = t.join("mirror");
    let listed = script(
        &ws,
        &["mirror", dist.to_str().unwrap(), mirror.to_str().unwrap()],
        &[],
    );
    assert_eq!(listed.trim(), platform);
    let (cert, key) = (t.join("cert.pem"), t.join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "openssl");
    let port_file = t.join("port");
    let mut server = std::process::Command::new("python3")
        .arg(repo_root().join("scripts/serve_https.py"))
        .args([&mirror, &cert, &key, &port_file])
        .stderr(std::fs::File::create(t.join("mirror.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !port_file.exists() {
        assert!(std::time::Instant::now() < deadline, "mirror did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let port = std::fs::read_to_string(&port_file).unwrap();
    let rc = t.join("network.tfrc");
    std::fs::write(
        &rc,
        format!(
            "provider_installation {{\n  network_mirror {{\n    url     = \"https://127.0.0.1:{port}/\"\n    include = [\"{PROVIDER_SOURCE}\"]\n  }}\n  direct {{\n    exclude = [\"{PROVIDER_SOURCE}\"]\n  }}\n}}\n"
        ),
    )
    .unwrap();
    ws.set_env("TF_CLI_CONFIG_FILE", rc.to_str().unwrap());
    ws.set_env("SSL_CERT_FILE", cert.to_str().unwrap());
    let version = env!("CARGO_PKG_VERSION");
    let init = ws.tf(&["init", "-input=false", "-no-color"]);
    // `providers lock` ignores the CLI configuration's installation methods: name the mirror.
    let lock = ws.tf(&[
        "providers",
        "lock",
        "-no-color",
        &format!("-net-mirror=https://127.0.0.1:{port}/"),
        &format!("-platform={platform}"),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(init.0, 0, "{}", init.1);
    assert!(
        init.1
            .contains(&format!("Installed clara-ml/clara v{version}")),
        "{}",
        init.1
    );
    assert_eq!(lock.0, 0, "{}", lock.1);
    let served: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(mirror.join(PROVIDER_SOURCE).join(format!("{version}.json")))
            .unwrap(),
    )
    .unwrap();
    let h1 = served["archives"][&platform]["hashes"][0].as_str().unwrap();
    let lockfile = std::fs::read_to_string(ws.dir.join(".terraform.lock.hcl")).unwrap();
    assert!(
        lockfile.contains(h1),
        "the lock file records the mirror's {h1}:\n{lockfile}"
    );
}
