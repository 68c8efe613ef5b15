//! Process entry point: what a provider binary's `main` calls.

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::handshake::{self, MAGIC_COOKIE_KEY, NOT_A_PLUGIN_MESSAGE};
use crate::pb::tfplugin5::provider_server::Provider;
use crate::server::{ServeError, serve_on};
use crate::tls::{PinnedClientCert, TlsSetup};

pub struct ServeConfig {
    /// Provider source address used in the debug-mode reattach line,
    /// e.g. `registry.terraform.io/clara-ml/clara`.
    pub provider_address: String,
}

/// Exits once Terraform is gone. A killed Terraform cannot send Shutdown, and a provider left
/// running would keep writing (downloads, uploads) while the next apply works on the same
/// objects; everything it did is adopted by that apply, so stopping loses nothing.
fn exit_when_orphaned() {
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            if std::os::unix::process::parent_id() != parent {
                tracing::warn!(
                    "Terraform (pid {parent}) exited without shutting the provider down; exiting"
                );
                std::process::exit(1);
            }
        }
    });
}

/// Runs the provider as a Terraform plugin (or, with `--debug`, as a reattachable
/// debug server) and returns the process exit code.
pub fn serve_main<P: Provider>(make_provider: impl FnOnce() -> P, config: ServeConfig) -> ExitCode {
    let debug = std::env::args().skip(1).any(|a| a == "--debug");
    crate::logging::init(debug);

    if !debug {
        // Checked before anything else happens, exactly like go-plugin.
        if !handshake::cookie_matches(std::env::var(MAGIC_COOKIE_KEY).ok().as_deref()) {
            eprintln!("{NOT_A_PLUGIN_MESSAGE}");
            return ExitCode::FAILURE;
        }
        if let Err(e) =
            handshake::negotiate_protocol(std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok().as_deref())
        {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        exit_when_orphaned();
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let provider = make_provider();
        if debug {
            run_debug(provider, &config).await
        } else {
            run_plugin(provider).await
        }
    });
    // Don't let a stuck blocking task delay exit; Terraform waits on us.
    runtime.shutdown_timeout(Duration::from_millis(250));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Logged, not printed: stderr lines are JSON that Terraform parses.
            tracing::error!("provider server failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Normal mode: Terraform launched us with the handshake environment.
async fn run_plugin<P: Provider>(provider: P) -> Result<(), ServeError> {
    ignore_sigint()?;
    let tls = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !pem.trim().is_empty() => {
            Some(TlsSetup::generate(PinnedClientCert::from_pem(&pem)?)?)
        }
        // TF_DISABLE_PLUGIN_TLS (or an old client): plaintext.
        _ => None,
    };
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let line = handshake::handshake_line(
        listener.local_addr()?,
        tls.as_ref().map(TlsSetup::server_cert_der),
    );
    print_stdout(&line)?;
    tracing::debug!(tls = tls.is_some(), "plugin server listening: {line}");

    serve_on(listener, tls, provider, CancellationToken::new()).await
}

/// go-plugin "eats" interrupts: Ctrl-C reaches the whole process group, and Terraform
/// asks us to stop via the Stop RPC rather than by signal. The handler is installed
/// synchronously so no early SIGINT can kill us.
fn ignore_sigint() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::spawn(async move {
            while sigint.recv().await.is_some() {
                tracing::debug!("ignoring SIGINT; Terraform will send Stop");
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::debug!("ignoring Ctrl-C; Terraform will send Stop");
        }
    });
    Ok(())
}

/// `--debug`: plaintext server for TF_REATTACH_PROVIDERS, stopped by Ctrl-C.
async fn run_debug<P: Provider>(provider: P, config: &ServeConfig) -> Result<(), ServeError> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let addr = listener.local_addr()?;
    let reattach = handshake::reattach_line(&config.provider_address, std::process::id(), addr);
    print_stdout(&format!(
        "Provider started in debug mode. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS\n\
         environment variable with the following (Ctrl-C stops the provider):\n\n{reattach}\n"
    ))?;

    let shutdown = CancellationToken::new();
    let on_ctrl_c = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("Ctrl-C received, stopping");
        on_ctrl_c.cancel();
    });
    serve_on(listener, None, provider, shutdown).await
}

fn print_stdout(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}
