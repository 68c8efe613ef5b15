//! `clara-emulator --state-dir DIR [--listen 127.0.0.1:0] [--config FILE] [--plain-http]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use clara_emulator::{Config, Options};

#[derive(Parser)]
#[command(
    name = "clara-emulator",
    version,
    about = "Local emulator of Azure ML ARM and the Entra ID token endpoint"
)]
struct Cli {
    /// Directory for state, certificates, the endpoint file and the request log.
    #[arg(long)]
    state_dir: PathBuf,
    /// Address to listen on (port 0 picks a free port; see DIR/endpoint).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// JSON configuration file (all fields optional).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS.
    #[arg(long)]
    plain_http: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("clara-emulator: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    // Install the handlers before announcing readiness, so an early SIGTERM is handled.
    let shutdown_signal = shutdown_signal();
    let opts = Options {
        state_dir: cli.state_dir,
        listen: cli.listen,
        config,
        plain_http: cli.plain_http,
    };
    let running = match clara_emulator::start(opts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("clara-emulator: failed to start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("clara-emulator listening on {}", running.base_url);
    shutdown_signal.await;
    running.shutdown().await;
    ExitCode::SUCCESS
}

/// Resolves on SIGTERM or SIGINT. The handlers are registered when this is called.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
