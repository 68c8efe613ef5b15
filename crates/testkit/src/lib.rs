//! Test support shared by the workspace: a private Azurite (Microsoft's blob storage
//! emulator, the pinned npm package under `.tools/`) per test.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Azurite's development account.
pub const ACCOUNT: &str = "devstoreaccount1";
/// Azurite's fixed, publicly documented development key.
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Azurite {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// `$AZURITE_BLOB_BIN`, else `${CLARA_TOOLS_DIR:-<repo>/.tools}/node_modules/.bin/azurite-blob`.
fn azurite_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("AZURITE_BLOB_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    let tools = std::env::var_os("CLARA_TOOLS_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(".tools")
        });
    tools.join("node_modules/.bin/azurite-blob")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Azurite {
    pub fn start() -> Self {
        let bin = azurite_bin();
        assert!(
            bin.exists(),
            "Azurite is not installed ({} is missing): run `make tools-azurite` \
             (scripts/tools.sh azurite) first, or set AZURITE_BLOB_BIN",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("azurite.log");
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new(&bin)
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(dir.path().join("data"))
                .args(["--loose", "--skipApiVersionCheck", "--disableTelemetry"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {} ({e}); Azurite needs Node.js >= 20 on PATH \
                         (`make tools-azurite`)",
                        bin.display()
                    )
                });
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                if last_log.contains("successfully listens") {
                    return Self {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    child.kill().ok();
                    child.wait().ok();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !last_log.contains("EADDRINUSE") {
                break;
            }
        }
        panic!("Azurite did not start:\n{last_log}");
    }

    /// Path-style account URL, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn account_url(&self) -> String {
        format!("http://127.0.0.1:{}/{ACCOUNT}", self.port)
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
