//! clara-bench: speed and memory figures for terraform-provider-clara, each printed next to a
//! baseline measured in the same run (see bench/README.md). Figures are informational: the
//! process exits non-zero only when something could not be run, never because a target is
//! missed.
//!
//! Sections:
//!   startup  exec of the release provider -> its go-plugin handshake line on stdout
//!   rss      the provider's VmRSS/VmHWM ~300 ms after the handshake
//!   plan     `terraform plan` of examples/gpu-cluster against clara-emulator, vs. the same
//!            number of built-in `terraform_data` objects; fresh and after an apply
//!   transfer `terraform apply` of one `ngc_asset` (a 256 MiB and a 2 GiB synthetic NGC asset
//!            through clara-emulator into Azurite): MB/s and peak RSS, vs. the old toolkit's
//!            way and a ceiling run by bench/transfer_baselines.py (src/transfer.rs)

use std::fs::File;
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value as Json, json};

mod transfer;

type Result<T> = std::result::Result<T, String>;

/// Terraform's go-plugin handshake cookie (terraform internal/plugin/serve.go).
const MAGIC_COOKIE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

// Emulator identities, as in tests/support/mod.rs.
const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
const CLIENT_SECRET: &str = "emulator-client-secret-do-not-log";
const RESOURCE_GROUP: &str = "rg-clara";
const WORKSPACE: &str = "clara-ws";
const PROVIDER_SOURCE: &str = "registry.terraform.io/clara-ml/clara";

// Targets (informational).
const TARGET_HANDSHAKE_MS: f64 = 5.0;
const TARGET_IDLE_RSS_MIB: f64 = 15.0;
const TARGET_PLAN_RATIO: f64 = 1.3;

/// How long the provider idles after its handshake before its memory is read.
const IDLE_WAIT: Duration = Duration::from_millis(300);
/// Bound on any single process start in the start-up and RSS sections.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// Unmeasured rounds before the start-up figures (page cache, dynamic loader caches).
const STARTUP_WARMUP: usize = 2;

#[derive(Parser)]
#[command(
    name = "clara-bench",
    about = "terraform-provider-clara benchmarks (see bench/README.md)"
)]
struct Cli {
    /// Repository root (examples/gpu-cluster is read from here).
    #[arg(long)]
    repo: PathBuf,
    /// Terraform CLI to run.
    #[arg(long, default_value = "terraform")]
    terraform: String,
    /// Directory holding the release terraform-provider-clara and clara-emulator.
    #[arg(long)]
    bin_dir: PathBuf,
    /// Measured start-up runs per variant.
    #[arg(long, default_value_t = 30)]
    startup_runs: usize,
    /// Idle-RSS runs (each idles ~300 ms).
    #[arg(long, default_value_t = 10)]
    rss_runs: usize,
    /// Plans per configuration and phase; the first is a warm-up and is discarded.
    #[arg(long, default_value_t = 7)]
    plan_runs: usize,
    /// Sections to run, comma-separated: startup, rss, plan, transfer.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "startup,rss,plan,transfer"
    )]
    only: Vec<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Transfer: sizes of the synthetic NGC asset (`nvidia/synthetic/size-<SIZE>`),
    /// comma-separated; the smallest and largest are compared for peak RSS.
    #[arg(long, value_delimiter = ',', default_value = "256MiB,2GiB")]
    transfer_sizes: Vec<String>,
    /// Transfer: files per asset (1: one `<name>.bin`; N > 1: `size-<SIZE>-files-<N>`).
    #[arg(long, default_value_t = 1)]
    transfer_files: usize,
    /// Transfer: rounds per size, each with every method (medians reported; a 2 GiB round
    /// takes ~2.5 min).
    #[arg(long, default_value_t = 1)]
    transfer_runs: usize,
    /// Transfer: provider runs per round (interleaved with the baselines; median reported).
    #[arg(long, default_value_t = 3)]
    transfer_provider_runs: usize,
    /// Transfer: the azurite-blob executable (default $AZURITE_BLOB_BIN, else
    /// <repo>/.tools/node_modules/.bin/azurite-blob).
    #[arg(long)]
    azurite: Option<PathBuf>,
    /// Transfer: Python with azure-storage-blob for the baselines (default
    /// <repo>/.tools/bench-venv/bin/python, set up by bench/run.sh).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Transfer: also write its figures as JSON to this file.
    #[arg(long)]
    transfer_json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    for s in &cli.only {
        if !matches!(s.as_str(), "startup" | "rss" | "plan" | "transfer") {
            eprintln!("clara-bench: unknown section '{s}' (startup, rss, plan, transfer)");
            return ExitCode::from(2);
        }
    }
    let bin_dir = match cli.bin_dir.canonicalize() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("clara-bench: --bin-dir {}: {e}", cli.bin_dir.display());
            return ExitCode::from(2);
        }
    };
    let provider = bin_dir.join("terraform-provider-clara");
    if !provider.is_file() {
        eprintln!(
            "clara-bench: {} is missing; build it with `cargo build --release -p terraform-provider-clara`",
            provider.display()
        );
        return ExitCode::from(2);
    }

    println!("clara-bench: terraform-provider-clara benchmarks");
    println!("  provider   {}", provider.display());
    println!("  terraform  {}", cli.terraform);
    println!(
        "  machine    {} CPUs, load average {}",
        num_cpus(),
        load_average()
    );
    println!(
        "  (figures are informational; each baseline is measured in this run, interleaved with the provider)"
    );

    let mut summary = Vec::<Row>::new();
    let mut json_out = serde_json::Map::new();
    let mut failed = Vec::<String>::new();
    let wants = |s: &str| cli.only.iter().any(|o| o == s);

    if wants("startup") {
        match bench_startup(&provider, cli.startup_runs) {
            Ok((row, j)) => {
                summary.push(row);
                json_out.insert("startup".into(), j);
            }
            Err(e) => {
                println!("  FAILED: {e}");
                summary.push(Row::failed(
                    "provider handshake, median",
                    format!("≤ {TARGET_HANDSHAKE_MS} ms"),
                ));
                failed.push(format!("startup: {e}"));
            }
        }
    }
    if wants("rss") {
        match bench_rss(&provider, cli.rss_runs) {
            Ok((row, j)) => {
                summary.push(row);
                json_out.insert("idle_rss".into(), j);
            }
            Err(e) => {
                println!("  FAILED: {e}");
                summary.push(Row::failed(
                    "provider idle VmRSS, median",
                    format!("≤ {TARGET_IDLE_RSS_MIB} MiB"),
                ));
                failed.push(format!("rss: {e}"));
            }
        }
    }
    if wants("plan") {
        match bench_plan(&cli, &bin_dir) {
            Ok((rows, j)) => {
                summary.extend(rows);
                json_out.insert("plan".into(), j);
            }
            Err(e) => {
                println!("  FAILED: {e}");
                for name in [
                    "plan ratio, fresh (provider/baseline)",
                    "plan ratio, after apply (provider/baseline)",
                ] {
                    summary.push(Row::failed(name, format!("≤ {TARGET_PLAN_RATIO}")));
                }
                failed.push(format!("plan: {e}"));
            }
        }
    }

    if wants("transfer") {
        let opts = transfer::Options {
            repo: cli.repo.clone(),
            bin_dir: bin_dir.clone(),
            terraform: cli.terraform.clone(),
            sizes: cli.transfer_sizes.clone(),
            files: cli.transfer_files,
            runs: cli.transfer_runs,
            provider_runs: cli.transfer_provider_runs,
            azurite: cli.azurite.clone(),
            python: cli.python.clone(),
        };
        match transfer::bench_transfer(&opts) {
            Ok((rows, mut j)) => {
                summary.extend(rows);
                j["load_average"] = Json::from(load_average());
                if let Some(path) = &cli.transfer_json {
                    if let Some(dir) = path.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    let text = serde_json::to_string_pretty(&j).unwrap_or_default();
                    match std::fs::write(path, text + "\n") {
                        Ok(()) => println!("  transfer figures written to {}", path.display()),
                        Err(e) => failed.push(format!("writing {}: {e}", path.display())),
                    }
                }
                json_out.insert("transfer".into(), j);
            }
            Err(e) => {
                println!("  FAILED: {e}");
                summary.push(Row::failed(
                    "transfer: provider/old way",
                    format!("≥ {}x", transfer::TARGET_OLD_RATIO),
                ));
                summary.push(Row::failed(
                    "transfer: provider/ceiling",
                    format!("≥ {:.0}%", transfer::TARGET_CEILING_FRACTION * 100.0),
                ));
                summary.push(Row::failed(
                    "transfer: provider peak RSS",
                    format!("≤ {} MiB, flat", transfer::TARGET_PEAK_RSS_MIB),
                ));
                failed.push(format!("transfer: {e}"));
            }
        }
    }

    print_summary(&summary);

    if let Some(path) = &cli.json {
        json_out.insert("load_average".into(), Json::from(load_average()));
        let text = serde_json::to_string_pretty(&Json::Object(json_out)).unwrap_or_default();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::write(path, text + "\n") {
            Ok(()) => println!("figures written to {}", path.display()),
            Err(e) => failed.push(format!("writing {}: {e}", path.display())),
        }
    }

    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!("clara-bench: {} section(s) could not run:", failed.len());
        for f in &failed {
            eprintln!("  {f}");
        }
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------
// Statistics and the summary table

#[derive(Clone, Copy, Debug)]
struct Stats {
    n: usize,
    median: f64,
    p90: f64,
    min: f64,
    max: f64,
}

fn stats(xs: &[f64]) -> Stats {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return Stats {
            n,
            median: f64::NAN,
            p90: f64::NAN,
            min: f64::NAN,
            max: f64::NAN,
        };
    }
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    // nearest rank
    let rank = ((0.9 * n as f64).ceil() as usize).clamp(1, n);
    Stats {
        n,
        median,
        p90: v[rank - 1],
        min: v[0],
        max: v[n - 1],
    }
}

impl Stats {
    fn json(&self) -> Json {
        json!({"n": self.n, "median": self.median, "p90": self.p90, "min": self.min, "max": self.max})
    }
}

struct Row {
    name: String,
    value: String,
    target: String,
    meets: Option<bool>,
}

impl Row {
    fn failed(name: &str, target: String) -> Row {
        Row {
            name: name.into(),
            value: "not measured".into(),
            target,
            meets: None,
        }
    }
}

fn verdict(meets: Option<bool>) -> &'static str {
    match meets {
        Some(true) => "meets",
        Some(false) => "misses",
        None => "-",
    }
}

fn print_summary(rows: &[Row]) {
    println!();
    println!("== Summary (informational) ==");
    let w0 = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(0)
        .max("figure".len());
    let w1 = rows
        .iter()
        .map(|r| r.value.chars().count())
        .max()
        .unwrap_or(0)
        .max("value".len());
    let w2 = rows
        .iter()
        .map(|r| r.target.chars().count())
        .max()
        .unwrap_or(0)
        .max("target".len());
    println!(
        "  {}  {}  {}  result",
        pad("figure", w0),
        pad("value", w1),
        pad("target", w2)
    );
    println!(
        "  {}  {}  {}  ------",
        "-".repeat(w0),
        "-".repeat(w1),
        "-".repeat(w2)
    );
    for r in rows {
        println!(
            "  {}  {}  {}  {}",
            pad(&r.name, w0),
            pad(&r.value, w1),
            pad(&r.target, w2),
            verdict(r.meets)
        );
    }
    println!();
}

fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    format!("{s}{}", " ".repeat(w.saturating_sub(n)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

// ---------------------------------------------------------------------------------------
// Spawning a process and timing its first output line

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

struct Started {
    elapsed: Duration,
    line: String,
    child: Child,
}

/// Spawns `cmd` and returns the time from just before the spawn to the moment a full
/// line has been read from `stream`. The process is left running (the caller stops it).
/// The other stream is piped too, and shown if the process fails.
fn exec_to_first_line(mut cmd: Command, stream: Stream, timeout: Duration) -> Result<Started> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let what = format!("{:?}", cmd.get_program());
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {what}: {e}"))?;
    let deadline = t0 + timeout;
    let mut buf = Vec::<u8>::new();
    let mut chunk = [0u8; 8192];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(format!(
                "{what} printed no line on {} within {timeout:?}{}",
                stream_name(stream),
                stop_and_explain(child, stream)
            ));
        }
        let fd = match stream {
            Stream::Stdout => child.stdout.as_ref().map(|p| p.as_raw_fd()),
            Stream::Stderr => child.stderr.as_ref().map(|p| p.as_raw_fd()),
        }
        .ok_or("pipe missing")?;
        let wait_ms = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, fd owned by `child` for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("poll: {e}"));
        }
        if r == 0 {
            continue;
        }
        let n = match stream {
            Stream::Stdout => child.stdout.as_mut().map(|p| p.read(&mut chunk)),
            Stream::Stderr => child.stderr.as_mut().map(|p| p.read(&mut chunk)),
        }
        .ok_or("pipe missing")?;
        let n = match n {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("reading {what}'s {}: {e}", stream_name(stream)));
            }
        };
        if n == 0 {
            return Err(format!(
                "{what} closed its {} before printing a line{}",
                stream_name(stream),
                stop_and_explain(child, stream)
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.iter().position(|&b| b == b'\n') {
            let elapsed = t0.elapsed();
            let line = String::from_utf8_lossy(&buf[..pos]).into_owned();
            return Ok(Started {
                elapsed,
                line,
                child,
            });
        }
    }
}

fn stream_name(s: Stream) -> &'static str {
    match s {
        Stream::Stdout => "stdout",
        Stream::Stderr => "stderr",
    }
}

/// Kills the child and returns its exit status and the start of its other stream.
fn stop_and_explain(mut child: Child, stream: Stream) -> String {
    let _ = child.kill();
    let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
    let mut other = String::new();
    let pipe: Option<&mut dyn std::io::Read> = match stream {
        Stream::Stdout => child.stderr.as_mut().map(|p| p as &mut dyn std::io::Read),
        Stream::Stderr => child.stdout.as_mut().map(|p| p as &mut dyn std::io::Read),
    };
    if let Some(p) = pipe {
        let _ = p.take(4000).read_to_string(&mut other);
    }
    format!(
        " ({status}); its {}:\n{}",
        stream_name(if stream == Stream::Stdout {
            Stream::Stderr
        } else {
            Stream::Stdout
        }),
        other.trim_end()
    )
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

// ---------------------------------------------------------------------------------------
// 1. Start-up

/// A client certificate like the one go-plugin generates for auto-mTLS (mtls.go
/// generateCert): ECDSA P-521 / SHA-512, self-signed, CN=localhost, O=HashiCorp, CA:TRUE.
fn go_plugin_client_cert_pem() -> Result<String> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose, PKCS_ECDSA_P521_SHA512,
    };
    let err = |e: rcgen::Error| format!("generating the P-521 client certificate: {e}");
    let key = KeyPair::generate_for(&PKCS_ECDSA_P521_SHA512).map_err(err)?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "HashiCorp");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::hours(262_980);
    Ok(params.self_signed(&key).map_err(err)?.pem())
}

/// The provider command with the environment Terraform gives a plugin (go-plugin
/// client.go Start): the host environment plus cookie, protocol versions, port range
/// and, with `client_cert`, the auto-mTLS client certificate.
fn provider_command(provider: &Path, client_cert: Option<&str>, cookie: bool) -> Command {
    let mut cmd = Command::new(provider);
    for k in [
        "TF_LOG",
        "TF_LOG_PROVIDER",
        "TF_LOG_PATH",
        "TF_REATTACH_PROVIDERS",
        "PLUGIN_CLIENT_CERT",
        "TF_PLUGIN_MAGIC_COOKIE",
    ] {
        cmd.env_remove(k);
    }
    if cookie {
        cmd.env("TF_PLUGIN_MAGIC_COOKIE", MAGIC_COOKIE);
    }
    cmd.env("PLUGIN_PROTOCOL_VERSIONS", "5,6")
        .env("PLUGIN_MIN_PORT", "10000")
        .env("PLUGIN_MAX_PORT", "25000");
    if let Some(pem) = client_cert {
        cmd.env("PLUGIN_CLIENT_CERT", pem);
    }
    cmd
}

/// Checks `1|5|tcp|127.0.0.1:PORT|grpc|<cert>`; `tls` says whether a server cert must be there.
fn check_handshake(line: &str, tls: bool) -> Result<()> {
    let f: Vec<&str> = line.trim_end().split('|').collect();
    let ok = f.len() >= 6
        && f[0] == "1"
        && f[1] == "5"
        && f[2] == "tcp"
        && f[3].contains(':')
        && f[4] == "grpc"
        && if tls {
            f[5].len() > 50
        } else {
            f[5].is_empty()
        };
    if ok {
        Ok(())
    } else {
        let shown: String = line.chars().take(120).collect();
        Err(format!("unexpected handshake line (tls={tls}): {shown}"))
    }
}

/// Validates the first line a start-up variant printed.
type LineCheck = Box<dyn Fn(&str) -> Result<()>>;

struct Variant {
    label: &'static str,
    make: Box<dyn Fn() -> Command>,
    stream: Stream,
    check: LineCheck,
}

fn bench_startup(provider: &Path, runs: usize) -> Result<(Row, Json)> {
    println!();
    println!(
        "== 1. Provider start-up: exec -> first output line ({runs} runs each, after {STARTUP_WARMUP} warm-up rounds) =="
    );
    let pem = go_plugin_client_cert_pem()?;
    let echo = if Path::new("/bin/echo").exists() {
        PathBuf::from("/bin/echo")
    } else {
        PathBuf::from("echo")
    };

    let p = provider.to_path_buf();
    let pem2 = pem.clone();
    let variants: Vec<Variant> = vec![
        Variant {
            label: "baseline: /bin/echo x",
            make: Box::new(move || {
                let mut c = Command::new(&echo);
                c.arg("x");
                c
            }),
            stream: Stream::Stdout,
            check: Box::new(|l| {
                if l == "x" {
                    Ok(())
                } else {
                    Err(format!("echo printed {l:?}"))
                }
            }),
        },
        Variant {
            label: "provider, as Terraform starts it (auto-mTLS)",
            make: Box::new({
                let p = p.clone();
                move || provider_command(&p, Some(&pem2), true)
            }),
            stream: Stream::Stdout,
            check: Box::new(|l| check_handshake(l, true)),
        },
        Variant {
            label: "  breakdown: no PLUGIN_CLIENT_CERT (plaintext, no cert generation)",
            make: Box::new({
                let p = p.clone();
                move || provider_command(&p, None, true)
            }),
            stream: Stream::Stdout,
            check: Box::new(|l| check_handshake(l, false)),
        },
        Variant {
            label: "  breakdown: no magic cookie (load + logging init -> refusal on stderr)",
            make: Box::new(move || provider_command(&p, None, false)),
            stream: Stream::Stderr,
            check: Box::new(|l| {
                if l.contains("This binary is a plugin") {
                    Ok(())
                } else {
                    Err(format!("unexpected refusal line {l:?}"))
                }
            }),
        },
    ];

    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    // Interleaved, so drift in machine load hits every variant alike.
    for round in 0..STARTUP_WARMUP + runs {
        for (i, v) in variants.iter().enumerate() {
            let s = exec_to_first_line((v.make)(), v.stream, START_TIMEOUT)
                .map_err(|e| format!("{}: {e}", v.label.trim()))?;
            let checked = (v.check)(&s.line);
            stop(s.child);
            checked.map_err(|e| format!("{}: {e}", v.label.trim()))?;
            if round >= STARTUP_WARMUP {
                samples[i].push(ms(s.elapsed));
            }
        }
    }
    let st: Vec<Stats> = samples.iter().map(|s| stats(s)).collect();
    let w = variants.iter().map(|v| v.label.len()).max().unwrap_or(0);
    for (v, s) in variants.iter().zip(&st) {
        println!(
            "  {}  median {:7.2} ms   p90 {:7.2} ms   min {:7.2} ms   max {:7.2} ms",
            pad(v.label, w),
            s.median,
            s.p90,
            s.min,
            s.max
        );
    }
    let (base, prov, plain, nocookie) = (st[0], st[1], st[2], st[3]);
    let ratio = prov.median / base.median;
    println!("  ratio provider/baseline (medians): {ratio:.1}x");
    println!(
        "  approx. split of the median: process load + logging init {:.2} ms, runtime + listener {:.2} ms, server cert/TLS setup {:.2} ms",
        nocookie.median,
        plain.median - nocookie.median,
        prov.median - plain.median
    );
    let meets = prov.median <= TARGET_HANDSHAKE_MS;
    println!(
        "  target: handshake ≤ {TARGET_HANDSHAKE_MS} ms (median) -> {}",
        verdict(Some(meets))
    );
    let row = Row {
        name: "provider handshake, median (p90)".into(),
        value: format!("{:.2} ms ({:.2}); {ratio:.1}x echo", prov.median, prov.p90),
        target: format!("≤ {TARGET_HANDSHAKE_MS} ms"),
        meets: Some(meets),
    };
    let j = json!({
        "unit": "ms",
        "baseline_echo": base.json(),
        "provider_mtls": prov.json(),
        "provider_plaintext": plain.json(),
        "provider_no_cookie": nocookie.json(),
        "ratio_provider_over_baseline": ratio,
        "target_ms": TARGET_HANDSHAKE_MS,
        "meets": meets,
    });
    Ok((row, j))
}

// ---------------------------------------------------------------------------------------
// 2. Idle RSS

/// (VmRSS, VmHWM) in KiB from /proc/<pid>/status.
fn proc_memory(pid: u32) -> Result<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn bench_rss(provider: &Path, runs: usize) -> Result<(Row, Json)> {
    println!();
    println!(
        "== 2. Idle memory: VmRSS / VmHWM {} ms after start-up ({runs} runs each) ==",
        IDLE_WAIT.as_millis()
    );
    let pem = go_plugin_client_cert_pem()?;
    let (mut p_rss, mut p_hwm, mut b_rss, mut b_hwm) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // provider: handshake, idle, read
        let s = exec_to_first_line(
            provider_command(provider, Some(&pem), true),
            Stream::Stdout,
            START_TIMEOUT,
        )?;
        if let Err(e) = check_handshake(&s.line, true) {
            stop(s.child);
            return Err(e);
        }
        std::thread::sleep(IDLE_WAIT);
        let mut child = s.child;
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the provider exited while idle ({status})"));
        }
        let mem = proc_memory(child.id());
        stop(child);
        let (rss, hwm) = mem?;
        p_rss.push(mib(rss));
        p_hwm.push(mib(hwm));

        // baseline: `sleep 5`, measured the same way
        let mut child = Command::new("sleep")
            .arg("5")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start sleep: {e}"))?;
        std::thread::sleep(IDLE_WAIT);
        let mem = proc_memory(child.id());
        let _ = child.kill();
        let _ = child.wait();
        let (rss, hwm) = mem?;
        b_rss.push(mib(rss));
        b_hwm.push(mib(hwm));
    }
    let (pr, ph, br, bh) = (stats(&p_rss), stats(&p_hwm), stats(&b_rss), stats(&b_hwm));
    println!(
        "  provider (after handshake)   VmRSS median {:6.2} MiB (max {:6.2})   VmHWM median {:6.2} MiB",
        pr.median, pr.max, ph.median
    );
    println!(
        "  baseline: sleep 5            VmRSS median {:6.2} MiB (max {:6.2})   VmHWM median {:6.2} MiB",
        br.median, br.max, bh.median
    );
    let ratio = pr.median / br.median;
    println!("  ratio provider/baseline (VmRSS medians): {ratio:.1}x");
    let meets = pr.median <= TARGET_IDLE_RSS_MIB;
    println!(
        "  target: idle RSS ≤ {TARGET_IDLE_RSS_MIB} MiB (median VmRSS) -> {}",
        verdict(Some(meets))
    );
    let row = Row {
        name: "provider idle VmRSS, median (VmHWM)".into(),
        value: format!(
            "{:.1} MiB ({:.1}); sleep {:.1}",
            pr.median, ph.median, br.median
        ),
        target: format!("≤ {TARGET_IDLE_RSS_MIB} MiB"),
        meets: Some(meets),
    };
    let j = json!({
        "unit": "MiB",
        "provider_vmrss": pr.json(),
        "provider_vmhwm": ph.json(),
        "baseline_sleep_vmrss": br.json(),
        "baseline_sleep_vmhwm": bh.json(),
        "ratio_provider_over_baseline": ratio,
        "target_mib": TARGET_IDLE_RSS_MIB,
        "meets": meets,
    });
    Ok((row, j))
}

// ---------------------------------------------------------------------------------------
// 3. terraform plan

/// The baseline: as many objects as examples/gpu-cluster (one resource, one data source),
/// as Terraform's built-in `terraform_data`, with the same shape of references.
const BASELINE_TF: &str = r#"# clara-bench baseline: examples/gpu-cluster's two objects as built-in terraform_data.
terraform {
  required_version = ">= 1.11"
}

variable "cluster_name" {
  type    = string
  default = "clara-ct"
}

resource "terraform_data" "vm_sizes" {
  input = { gpu_only = true }
}

resource "terraform_data" "cluster" {
  input = {
    name                          = var.cluster_name
    vm_size                       = "Standard_NC12s_v3"
    vm_priority                   = "Dedicated"
    min_nodes                     = 0
    max_nodes                     = 1
    idle_seconds_before_scaledown = 300
    tags                          = { project = "clara-covid19-ct" }
  }
}

output "cluster_id" {
  value = terraform_data.cluster.id
}

output "max_hourly_cost" {
  value = length(terraform_data.vm_sizes.output) * terraform_data.cluster.output.max_nodes
}
"#;

struct Emulator {
    child: Child,
    dir: PathBuf,
    url: String,
}

impl Emulator {
    /// Starts `exe` with the tests' config (tests/support/mod.rs `emulator_config`) plus
    /// the top-level keys of `extra` (e.g. `storage`).
    fn start(exe: &Path, dir: &Path, extra: Json) -> Result<Emulator> {
        if !exe.is_file() {
            return Err(format!(
                "{} is missing; build it with `cargo build --release -p clara-emulator`",
                exe.display()
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut config = json!({
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "subscription_id": SUBSCRIPTION,
            "workspaces": [{"resource_group": RESOURCE_GROUP, "name": WORKSPACE, "location": "eastus"}],
            "lro_delay_ms": 200,
        });
        if let (Some(c), Json::Object(extra)) = (config.as_object_mut(), extra) {
            c.extend(extra);
        }
        let cfg = dir.join("config.json");
        std::fs::write(&cfg, serde_json::to_vec_pretty(&config).unwrap_or_default())
            .map_err(|e| format!("{}: {e}", cfg.display()))?;
        let log_path = dir.join("emulator.log");
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(exe)
            .arg("--state-dir")
            .arg(dir)
            .arg("--config")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
        let mut emu = Emulator {
            child,
            dir: dir.to_path_buf(),
            url: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let endpoint = std::fs::read_to_string(dir.join("endpoint")).unwrap_or_default();
            let ca_ok = std::fs::metadata(dir.join("ca.pem"))
                .map(|m| m.len() > 0)
                .unwrap_or(false);
            if !endpoint.trim().is_empty() && ca_ok {
                emu.url = endpoint.trim().to_string();
                return Ok(emu);
            }
            if let Ok(Some(status)) = emu.child.try_wait() {
                return Err(format!(
                    "clara-emulator exited ({status}):\n{}",
                    read_head(&log_path)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "clara-emulator did not start within 30 s:\n{}",
                    read_head(&log_path)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM first: it shuts down cleanly; SIGKILL if it lingers.
        // SAFETY: plain kill(2) on our own, not yet reaped, child.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_head(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.chars().take(4000).collect()
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("{}: {e}", from.display()))? {
        let entry = entry.map_err(|e| e.to_string())?;
        let target = to.join(entry.file_name());
        let ft = entry.file_type().map_err(|e| e.to_string())?;
        // Skip local Terraform state/caches a developer may have left in the example.
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".terraform"
            || name.starts_with("terraform.tfstate")
            || name == ".terraform.lock.hcl"
        {
            continue;
        }
        if ft.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("{}: {e}", target.display()))?;
        }
    }
    Ok(())
}

/// Counts `resource "…"` and `data "…"` blocks in the .tf files of `dir`.
fn count_objects(dir: &Path) -> (usize, usize) {
    let (mut resources, mut data) = (0, 0);
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().extension().is_some_and(|x| x == "tf") {
                for line in std::fs::read_to_string(e.path())
                    .unwrap_or_default()
                    .lines()
                {
                    let l = line.trim_start();
                    if l.starts_with("resource \"") {
                        resources += 1;
                    } else if l.starts_with("data \"") {
                        data += 1;
                    }
                }
            }
        }
    }
    (resources, data)
}

struct Terraform {
    bin: String,
    env: Vec<(String, String)>,
}

impl Terraform {
    /// Runs terraform in `dir`; returns the wall time, or the output on failure.
    fn run(&self, dir: &Path, args: &[&str]) -> Result<(Duration, String)> {
        let mut c = self.command(dir, args);
        let t0 = Instant::now();
        let out = c
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.bin))?;
        let elapsed = t0.elapsed();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(format!(
                "`terraform {}` in {} failed ({}):\n{}",
                args.join(" "),
                dir.display(),
                out.status,
                text.trim_end()
            ));
        }
        Ok((elapsed, text))
    }

    /// The terraform command in `dir` with this environment (and no TF_LOG & co. from ours).
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.current_dir(dir).args(args).stdin(Stdio::null());
        for k in [
            "TF_LOG",
            "TF_LOG_PATH",
            "TF_LOG_PROVIDER",
            "TF_LOG_CORE",
            "TF_REATTACH_PROVIDERS",
            "TF_CLI_ARGS",
            "TF_CLI_ARGS_plan",
            "TF_CLI_ARGS_apply",
            "TF_WORKSPACE",
            "TF_DATA_DIR",
        ] {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }
}

/// Writes a CLI config whose dev_overrides point at `bin_dir` to `rc`, and returns exactly
/// the environment tests/support/mod.rs gives Terraform (without the NGC/storage part, which
/// the transfer section adds).
fn terraform_env(rc: &Path, bin_dir: &Path, emu: &Emulator) -> Result<Vec<(String, String)>> {
    std::fs::write(
        rc,
        format!(
            "provider_installation {{\n  dev_overrides {{\n    \"{PROVIDER_SOURCE}\" = \"{}\"\n  }}\n  direct {{}}\n}}\n",
            bin_dir.display()
        ),
    )
    .map_err(|e| format!("{}: {e}", rc.display()))?;
    Ok(vec![
        ("TF_CLI_CONFIG_FILE".into(), rc.display().to_string()),
        ("CHECKPOINT_DISABLE".into(), "1".into()),
        ("TF_IN_AUTOMATION".into(), "1".into()),
        ("SSL_CERT_FILE".into(), emu.ca_file().display().to_string()),
        ("ARM_SUBSCRIPTION_ID".into(), SUBSCRIPTION.into()),
        ("ARM_TENANT_ID".into(), TENANT.into()),
        ("ARM_CLIENT_ID".into(), CLIENT_ID.into()),
        ("ARM_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
        ("ARM_RESOURCE_MANAGER_ENDPOINT".into(), emu.url.clone()),
        ("ARM_AUTHORITY_HOST".into(), emu.url.clone()),
        ("CLARA_RESOURCE_GROUP_NAME".into(), RESOURCE_GROUP.into()),
        ("CLARA_WORKSPACE_NAME".into(), WORKSPACE.into()),
        ("CLARA_ARM_RETRY_BASE_MS".into(), "50".into()),
        ("CLARA_ARM_POLL_MIN_MS".into(), "100".into()),
    ])
}

const PLAN_ARGS: &[&str] = &["plan", "-input=false", "-no-color", "-lock=false"];
const APPLY_ARGS: &[&str] = &[
    "apply",
    "-auto-approve",
    "-input=false",
    "-no-color",
    "-lock=false",
];

struct PlanPair {
    provider: Stats,
    baseline: Stats,
    ratio: f64,
    last_provider_output: String,
}

/// `runs` plans of each directory, interleaved; the first of each is discarded.
fn time_plans(
    tf: &Terraform,
    provider_dir: &Path,
    baseline_dir: &Path,
    runs: usize,
) -> Result<PlanPair> {
    let (mut p, mut b) = (Vec::new(), Vec::new());
    let mut last = String::new();
    for i in 0..runs.max(2) {
        let (dp, out) = tf.run(provider_dir, PLAN_ARGS)?;
        let (db, _) = tf.run(baseline_dir, PLAN_ARGS)?;
        if i > 0 {
            p.push(ms(dp));
            b.push(ms(db));
        }
        last = out;
    }
    let (provider, baseline) = (stats(&p), stats(&b));
    Ok(PlanPair {
        provider,
        baseline,
        ratio: provider.median / baseline.median,
        last_provider_output: last,
    })
}

fn print_pair(pp: &PlanPair) {
    println!(
        "  provider (examples/gpu-cluster)        median {:8.1} ms   p90 {:8.1} ms   min {:8.1} ms   max {:8.1} ms",
        pp.provider.median, pp.provider.p90, pp.provider.min, pp.provider.max
    );
    println!(
        "  baseline (terraform_data x2)           median {:8.1} ms   p90 {:8.1} ms   min {:8.1} ms   max {:8.1} ms",
        pp.baseline.median, pp.baseline.p90, pp.baseline.min, pp.baseline.max
    );
    println!(
        "  ratio provider/baseline (medians): {:.2}   (difference {:+.1} ms)",
        pp.ratio,
        pp.provider.median - pp.baseline.median
    );
}

fn bench_plan(cli: &Cli, bin_dir: &Path) -> Result<(Vec<Row>, Json)> {
    let runs = cli.plan_runs.max(2);
    println!();
    println!(
        "== 3. terraform plan wall time ({runs} plans per configuration and phase, first discarded; `{}`) ==",
        PLAN_ARGS.join(" ")
    );
    let tmp = tempfile::Builder::new()
        .prefix("clara-bench-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let example = cli.repo.join("examples").join("gpu-cluster");
    let provider_dir = tmp.path().join("gpu-cluster");
    copy_dir(&example, &provider_dir)?;
    let baseline_dir = tmp.path().join("baseline");
    std::fs::create_dir_all(&baseline_dir).map_err(|e| e.to_string())?;
    std::fs::write(baseline_dir.join("main.tf"), BASELINE_TF).map_err(|e| e.to_string())?;
    let (res, data) = count_objects(&provider_dir);
    let (bres, bdata) = count_objects(&baseline_dir);
    println!(
        "  objects: examples/gpu-cluster has {res} resource(s) + {data} data source(s); baseline has {} terraform_data resources",
        bres + bdata
    );
    if res + data != bres + bdata {
        println!(
            "  note: the object counts differ; the baseline in bench/src/main.rs needs updating"
        );
    }

    let emu = Emulator::start(
        &bin_dir.join("clara-emulator"),
        &tmp.path().join("emulator"),
        json!({}),
    )?;
    println!("  clara-emulator at {}", emu.url);

    let env = terraform_env(&tmp.path().join("terraformrc"), bin_dir, &emu)?;
    let tf = Terraform {
        bin: cli.terraform.clone(),
        env,
    };

    // The provider is a dev override and needs no init; the baseline (built-in provider
    // only) is initialised once, untimed, so both start from a ready directory.
    tf.run(&baseline_dir, &["init", "-input=false", "-no-color"])?;

    println!("  -- fresh (empty state: nothing to refresh) --");
    let fresh = time_plans(&tf, &provider_dir, &baseline_dir, runs)?;
    print_pair(&fresh);

    let (ap, _) = tf.run(&provider_dir, APPLY_ARGS)?;
    let (ab, _) = tf.run(&baseline_dir, APPLY_ARGS)?;
    println!(
        "  -- after one apply each (refresh path; apply took {:.0} ms provider, {:.0} ms baseline, untimed below) --",
        ms(ap),
        ms(ab)
    );
    let refreshed = time_plans(&tf, &provider_dir, &baseline_dir, runs)?;
    print_pair(&refreshed);
    let no_changes = refreshed.last_provider_output.contains("No changes.");
    if !no_changes {
        println!(
            "  note: the provider's plan after apply was NOT empty (expected \"No changes.\")"
        );
    }
    drop(emu);

    let meets_fresh = fresh.ratio <= TARGET_PLAN_RATIO;
    let meets_refresh = refreshed.ratio <= TARGET_PLAN_RATIO;
    println!(
        "  target: plan ratio ≤ {TARGET_PLAN_RATIO} -> fresh {}, after apply {}",
        verdict(Some(meets_fresh)),
        verdict(Some(meets_refresh))
    );
    let rows = vec![
        Row {
            name: "plan ratio, fresh (provider/baseline)".into(),
            value: format!(
                "{:.2} ({:.0} / {:.0} ms)",
                fresh.ratio, fresh.provider.median, fresh.baseline.median
            ),
            target: format!("≤ {TARGET_PLAN_RATIO}"),
            meets: Some(meets_fresh),
        },
        Row {
            name: "plan ratio, after apply (provider/baseline)".into(),
            value: format!(
                "{:.2} ({:.0} / {:.0} ms)",
                refreshed.ratio, refreshed.provider.median, refreshed.baseline.median
            ),
            target: format!("≤ {TARGET_PLAN_RATIO}"),
            meets: Some(meets_refresh),
        },
    ];
    let j = json!({
        "unit": "ms",
        "fresh": {"provider": fresh.provider.json(), "baseline": fresh.baseline.json(), "ratio": fresh.ratio, "meets": meets_fresh},
        "after_apply": {
            "provider": refreshed.provider.json(), "baseline": refreshed.baseline.json(), "ratio": refreshed.ratio,
            "meets": meets_refresh, "provider_plan_empty": no_changes,
        },
        "apply_ms": {"provider": ms(ap), "baseline": ms(ab)},
        "target_ratio": TARGET_PLAN_RATIO,
    });
    Ok((rows, j))
}
