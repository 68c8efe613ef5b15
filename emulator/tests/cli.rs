//! The binary: prints the listening line, writes DIR/endpoint, exits cleanly on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_starts_writes_endpoint_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"lro_delay_ms": 50, "workspaces": [{"resource_group": "rg-x", "name": "ws-x", "location": "westus2"}]}"#).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_clara-emulator"))
        .args([
            "--state-dir",
            dir.path().join("state").to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--plain-http",
            "--config",
            config.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("clara-emulator listening on ")
        .unwrap_or_else(|| panic!("unexpected: {line:?}"));
    assert!(url.starts_with("http://127.0.0.1:"));
    assert_eq!(
        clara_emulator::read_endpoint(&dir.path().join("state")).unwrap(),
        url
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn bad_config_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"no_such_option": 1}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clara-emulator"))
        .args([
            "--state-dir",
            dir.path().to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_option"));
}
