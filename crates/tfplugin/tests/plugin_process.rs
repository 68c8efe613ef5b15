//! End to end through `serve_main` in a real child process, the way Terraform runs a
//! provider: environment handshake, stdout line, auto-mTLS, SIGINT, Shutdown, exit code.
//!
//! This test binary re-executes itself as the plugin (env CLARA_TFPLUGIN_CHILD), which
//! is why it has its own `main` (harness = false): libtest would print to stdout first.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use clara_tfplugin::handshake::MAGIC_COOKIE_VALUE;
use clara_tfplugin::pb::plugin::Empty;
use clara_tfplugin::pb::plugin::grpc_controller_client::GrpcControllerClient;
use clara_tfplugin::pb::plugin::grpc_stdio_client::GrpcStdioClient;
use clara_tfplugin::pb::tfplugin5::provider_client::ProviderClient;
use clara_tfplugin::pb::tfplugin5::stop;
use clara_tfplugin::{ServeConfig, serve_main};
use common::*;

type TestFn = fn(&tokio::runtime::Runtime) -> Result<(), String>;

const CHILD_ENV: &str = "CLARA_TFPLUGIN_CHILD";
const ADDRESS: &str = "registry.terraform.io/clara-ml/clara";

fn main() -> ExitCode {
    if std::env::var_os(CHILD_ENV).is_some() {
        return serve_main(
            || TestProvider,
            ServeConfig {
                provider_address: ADDRESS.into(),
            },
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tests: [(&str, TestFn); 5] = [
        ("rejects_missing_cookie", rejects_missing_cookie),
        ("rejects_unsupported_protocol", rejects_unsupported_protocol),
        ("mtls_session_like_terraform", mtls_session_like_terraform),
        ("plaintext_when_tls_disabled", plaintext_when_tls_disabled),
        ("debug_mode_reattach", debug_mode_reattach),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        match test(&rt) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    println!("plugin_process: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The plugin as Terraform would start it, with a clean handshake environment.
fn plugin_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(args)
        .env(CHILD_ENV, "1")
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .env_remove("PLUGIN_PROTOCOL_VERSIONS")
        .env_remove("PLUGIN_CLIENT_CERT")
        .env("TF_LOG_PROVIDER", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn check(cond: bool, msg: impl Into<String>) -> Result<(), String> {
    if cond { Ok(()) } else { Err(msg.into()) }
}

fn rejects_missing_cookie(_: &tokio::runtime::Runtime) -> Result<(), String> {
    let out = plugin_command(&[]).output().map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(1),
        format!("exit {:?}", out.status),
    )?;
    check(out.stdout.is_empty(), "stdout must stay empty")?;
    check(
        stderr.contains("This binary is a plugin. These are not meant to be executed directly."),
        stderr.to_string(),
    )
}

fn rejects_unsupported_protocol(_: &tokio::runtime::Runtime) -> Result<(), String> {
    let out = plugin_command(&[])
        .env("TF_PLUGIN_MAGIC_COOKIE", MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6")
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    check(
        out.status.code() == Some(1),
        format!("exit {:?}", out.status),
    )?;
    check(out.stdout.is_empty(), "stdout must stay empty")?;
    check(stderr.contains("protocol 5"), stderr.to_string())
}

/// A spawned plugin whose stdout lines and stderr are collected on threads.
struct Plugin {
    child: Child,
    lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Plugin {
    fn spawn(mut cmd: Command) -> Result<Plugin, String> {
        let mut child = cmd.spawn().map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        Ok(Plugin {
            child,
            lines,
            stderr: Some(stderr),
        })
    }

    fn next_line(&self) -> Result<String, String> {
        self.lines
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "no stdout line within 30s".to_string())
    }

    fn signal_int(&self) -> Result<(), String> {
        let ok = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .map_err(|e| e.to_string())?
            .success();
        check(ok, "kill -INT failed")
    }

    /// Waits for exit; returns (exit code, remaining stdout lines, stderr).
    fn wait(mut self, within: Duration) -> Result<(Option<i32>, Vec<String>, String), String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                let rest: Vec<String> = self.lines.try_iter().collect();
                let stderr = self
                    .stderr
                    .take()
                    .and_then(|h| h.join().ok())
                    .unwrap_or_default();
                return Ok((status.code(), rest, stderr));
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return Err(format!("plugin still running after {within:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `1|5|tcp|ADDR|grpc|CERT`.
fn parse_handshake(line: &str) -> Result<(SocketAddr, String), String> {
    let parts: Vec<&str> = line.split('|').collect();
    check(
        parts.len() == 6,
        format!("handshake has {} fields: {line}", parts.len()),
    )?;
    check(
        parts[..3] == ["1", "5", "tcp"] && parts[4] == "grpc",
        format!("bad handshake: {line}"),
    )?;
    let addr: SocketAddr = parts[3].parse().map_err(|e| format!("{e}: {line}"))?;
    check(addr.ip().is_loopback(), "must listen on loopback")?;
    Ok((addr, parts[5].to_string()))
}

fn mtls_session_like_terraform(rt: &tokio::runtime::Runtime) -> Result<(), String> {
    let client = go_plugin_client_cert();
    let mut cmd = plugin_command(&[]);
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "6,5")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000")
        .env("PLUGIN_CLIENT_CERT", &client.pem);
    let plugin = Plugin::spawn(cmd)?;
    let (addr, cert_b64) = parse_handshake(&plugin.next_line()?)?;
    check(
        !cert_b64.contains('='),
        "server cert must be unpadded base64",
    )?;
    let server_cert = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&cert_b64)
        .map_err(|e| format!("cert field: {e}"))?;

    rt.block_on(async {
        let ch = tls_channel(addr, client_tls(&server_cert, Some(&client)))
            .await
            .map_err(|e| e.to_string())?;
        // What go-plugin does right after connecting, then a provider call.
        let mut stdio = GrpcStdioClient::new(ch.clone());
        let _s1 = stdio.stream_stdio(()).await.map_err(|e| e.to_string())?;
        let mut provider = ProviderClient::new(ch.clone());
        provider
            .stop(stop::Request {})
            .await
            .map_err(|e| e.to_string())?;

        // Ctrl-C in Terraform's terminal reaches the plugin too; it must survive.
        plugin.signal_int()?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        provider
            .stop(stop::Request {})
            .await
            .map_err(|e| format!("after SIGINT: {e}"))?;
        let _s2 = stdio.stream_stdio(()).await.map_err(|e| e.to_string())?;

        // A stranger cannot get in.
        let stranger = go_plugin_client_cert();
        let denied = async {
            let ch = tls_channel(addr, client_tls(&server_cert, Some(&stranger))).await?;
            ProviderClient::new(ch).stop(stop::Request {}).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        };
        check(
            denied.await.is_err(),
            "a different client cert was accepted",
        )?;

        GrpcControllerClient::new(ch)
            .shutdown(Empty {})
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })?;

    let started = Instant::now();
    let (code, rest, stderr) = plugin.wait(Duration::from_secs(5))?;
    check(
        code == Some(0),
        format!("exit code {code:?}; stderr:\n{stderr}"),
    )?;
    check(
        started.elapsed() < Duration::from_millis(1500),
        format!("exit took {:?}", started.elapsed()),
    )?;
    check(
        rest.is_empty(),
        format!("unexpected stdout after handshake: {rest:?}"),
    )?;
    // stderr is hclog JSON that go-plugin can parse.
    let json_lines: Vec<serde_json::Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    check(
        !json_lines.is_empty(),
        format!("no JSON log lines on stderr:\n{stderr}"),
    )?;
    check(
        json_lines.iter().all(|v| {
            v["@level"].is_string() && v["@message"].is_string() && v["@timestamp"].is_string()
        }),
        format!("log lines lack hclog keys:\n{stderr}"),
    )?;
    check(
        stderr.contains("pinned client cert matched"),
        format!("no mTLS match logged:\n{stderr}"),
    )
}

fn plaintext_when_tls_disabled(rt: &tokio::runtime::Runtime) -> Result<(), String> {
    let mut cmd = plugin_command(&[]);
    cmd.env("TF_PLUGIN_MAGIC_COOKIE", MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "5");
    let plugin = Plugin::spawn(cmd)?;
    let (addr, cert) = parse_handshake(&plugin.next_line()?)?;
    check(
        cert.is_empty(),
        "no cert expected without PLUGIN_CLIENT_CERT",
    )?;
    rt.block_on(async {
        let ch = plain_channel(addr).await.map_err(|e| e.to_string())?;
        ProviderClient::new(ch.clone())
            .stop(stop::Request {})
            .await
            .map_err(|e| e.to_string())?;
        GrpcControllerClient::new(ch)
            .shutdown(Empty {})
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })?;
    let (code, _, stderr) = plugin.wait(Duration::from_secs(5))?;
    check(
        code == Some(0),
        format!("exit code {code:?}; stderr:\n{stderr}"),
    )
}

fn debug_mode_reattach(rt: &tokio::runtime::Runtime) -> Result<(), String> {
    let plugin = Plugin::spawn(plugin_command(&["--debug"]))?;
    let line = loop {
        let l = plugin.next_line()?;
        if l.starts_with("TF_REATTACH_PROVIDERS=") {
            break l;
        }
    };
    let json = line
        .strip_prefix("TF_REATTACH_PROVIDERS='")
        .and_then(|s| s.strip_suffix('\''))
        .ok_or(format!("bad line: {line}"))?;
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let entry = &v[ADDRESS];
    check(
        entry["Pid"] == plugin.child.id(),
        format!("pid mismatch: {line}"),
    )?;
    check(
        entry["ProtocolVersion"] == 5 && entry["Protocol"] == "grpc" && entry["Test"] == true,
        line.clone(),
    )?;
    let addr: SocketAddr = entry["Addr"]["String"]
        .as_str()
        .unwrap_or("")
        .parse()
        .map_err(|e| format!("{e}"))?;
    rt.block_on(async {
        let ch = plain_channel(addr).await.map_err(|e| e.to_string())?;
        ProviderClient::new(ch)
            .stop(stop::Request {})
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(())
    })?;
    plugin.signal_int()?;
    let (code, _, stderr) = plugin.wait(Duration::from_secs(5))?;
    check(
        code == Some(0),
        format!("exit code {code:?}; stderr:\n{stderr}"),
    )
}
