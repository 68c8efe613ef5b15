//! Section 4, transfer: one `ngc_asset` through the provider (`terraform apply`) against
//! clara-emulator's NGC catalog + object store and Azurite, next to the old toolkit's way
//! (urllib + zipfile + azure-storage-blob, sequential) and a ceiling (curl to /dev/null +
//! the Python SDK's parallel upload), both run by bench/transfer_baselines.py in the bench
//! venv. See bench/README.md.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::{
    APPLY_ARGS, Emulator, Result, Row, Terraform, mib, proc_memory, read_head, stats,
    terraform_env, verdict,
};

pub const TARGET_OLD_RATIO: f64 = 3.0;
pub const TARGET_CEILING_FRACTION: f64 = 0.70;
pub const TARGET_PEAK_RSS_MIB: f64 = 64.0;
/// "Not growing with size": the largest size's peak may exceed the smallest's by at most
/// this many MiB, or this fraction of it, whichever is larger.
const RSS_GROWTH_SLACK_MIB: f64 = 4.0;
const RSS_GROWTH_SLACK_FRACTION: f64 = 0.10;

/// /proc sampling interval while a transfer runs.
const POLL: Duration = Duration::from_millis(50);
/// Bound on one transfer (any method).
const RUN_TIMEOUT: Duration = Duration::from_secs(900);
/// Upload concurrency of the ceiling (`upload_blob(..., max_concurrency=N)`).
const CEILING_CONCURRENCY: usize = 8;
/// Container the Python baselines upload to (the provider uses the workspace's datastore).
const BASELINE_CONTAINER: &str = "clara-bench-baselines";

const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

pub struct Options {
    pub repo: PathBuf,
    pub bin_dir: PathBuf,
    pub terraform: String,
    pub sizes: Vec<String>,
    pub files: usize,
    pub runs: usize,
    pub provider_runs: usize,
    pub azurite: Option<PathBuf>,
    pub python: Option<PathBuf>,
}

// ---------------------------------------------------------------------------------------
// Azurite

struct Azurite {
    child: Child,
    port: u16,
    pid: u32,
}

impl Azurite {
    fn start(bin: &Path, dir: &Path) -> Result<Azurite> {
        if !bin.exists() {
            return Err(format!(
                "Azurite is not installed ({} is missing): run `make tools-azurite` \
                 (scripts/tools.sh azurite), or pass --azurite",
                bin.display()
            ));
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let log_path = dir.join("azurite.log");
        let mut last = String::new();
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("finding a free port: {e}"))?
                .port();
            let log = File::create(&log_path).map_err(|e| e.to_string())?;
            let log2 = log.try_clone().map_err(|e| e.to_string())?;
            // The same flags as scripts/lib.sh start_azurite and clara-testkit.
            let mut child = Command::new(bin)
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(dir.join("data"))
                .args(["--loose", "--skipApiVersionCheck", "--disableTelemetry"])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log2)
                .spawn()
                .map_err(|e| {
                    format!(
                        "cannot start {} ({e}); Azurite needs Node.js >= 20 on PATH",
                        bin.display()
                    )
                })?;
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                last = std::fs::read_to_string(&log_path).unwrap_or_default();
                if last.contains("successfully listens") {
                    let pid = child.id();
                    return Ok(Azurite { child, port, pid });
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if !last.contains("EADDRINUSE") {
                break;
            }
        }
        Err(format!(
            "Azurite did not start:\n{}",
            last.chars().take(4000).collect::<String>()
        ))
    }

    fn account_url(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint={};",
            self.account_url()
        )
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// /proc helpers

/// (ppid, utime + stime in clock ticks) from /proc/<pid>/stat.
fn proc_stat(pid: u32) -> Option<(u32, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    let ppid = f.get(1)?.parse().ok()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((ppid, ticks))
}

fn cpu_ticks(pid: u32) -> u64 {
    proc_stat(pid).map(|(_, t)| t).unwrap_or(0)
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Children of `parent` whose executable is `terraform-provider-clara`.
fn provider_children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if proc_stat(pid).is_none_or(|(ppid, _)| ppid != parent) {
            continue;
        }
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        if exe
            .as_deref()
            .and_then(Path::file_name)
            .is_some_and(|n| n.to_string_lossy().starts_with("terraform-provider-clara"))
        {
            out.push(pid);
        }
    }
    out
}

/// Download progress in the provider's cache: (.part files, finished files) under any
/// `download` directory (`<cache>/assets/<key>/download/<rel>`).
fn download_state(dir: &Path, in_download: bool, acc: &mut (usize, usize)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name();
        if ft.is_dir() {
            download_state(&e.path(), in_download || name == "download", acc);
        } else if in_download {
            if name.to_string_lossy().ends_with(".part") {
                acc.0 += 1;
            } else {
                acc.1 += 1;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Emulator calls (curl: the bench has no HTTP client of its own)

fn curl_json(url: &str, ca: &Path) -> Result<Json> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "120", "--cacert"])
        .arg(ca)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run curl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "curl {url}: {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("{url}: bad JSON: {e}"))
}

fn ngc_bytes_served(emu: &Emulator) -> Option<u64> {
    curl_json(&format!("{}/_emulator/stats", emu.url), &emu.ca_file())
        .ok()?
        .pointer("/ngc/bytes_served")?
        .as_u64()
}

/// "256MiB" -> bytes (the emulator's synthetic size syntax: digits, K/KiB, M/MiB, G/GiB).
fn parse_size(s: &str) -> Result<u64> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("bad size {s:?} (e.g. 256MiB, 2GiB)"))?;
    let mult = match &s[digits.len()..] {
        "" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        other => {
            return Err(format!(
                "bad size unit {other:?} in {s:?} (K, M, G, KiB, MiB, GiB)"
            ));
        }
    };
    Ok(n * mult)
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} B")
    }
}

fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / 1e6 / secs
}

/// Waits for `child` with a deadline; kills it when the deadline passes.
fn wait_bounded(child: &mut Child, what: &str) -> Result<std::process::ExitStatus> {
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{what} did not finish within {RUN_TIMEOUT:?}"));
        }
        std::thread::sleep(POLL);
    }
}

// ---------------------------------------------------------------------------------------
// One provider run

#[derive(Default)]
struct ProviderRun {
    wall_s: f64,
    /// Largest VmHWM read from any terraform-provider-clara child of terraform.
    peak_hwm_kib: u64,
    /// Largest VmRSS sampled.
    peak_rss_kib: u64,
    processes: usize,
    /// From the spawn of terraform to the first file in the provider's download cache.
    download_start_s: Option<f64>,
    /// ... to every file downloaded, verified and renamed into place (no `.part` left).
    download_end_s: Option<f64>,
    cpu_provider_s: f64,
    cpu_azurite_s: f64,
    cpu_emulator_s: f64,
    served_bytes: Option<u64>,
}

impl ProviderRun {
    fn json(&self, bytes: u64) -> Json {
        json!({
            "wall_s": self.wall_s,
            "mb_per_s": mb_per_s(bytes, self.wall_s),
            "peak_vmhwm_mib": mib(self.peak_hwm_kib),
            "peak_sampled_vmrss_mib": mib(self.peak_rss_kib),
            "provider_processes": self.processes,
            "download_start_s": self.download_start_s,
            "download_end_s": self.download_end_s,
            "cpu_s": {"provider": self.cpu_provider_s, "azurite": self.cpu_azurite_s, "emulator": self.cpu_emulator_s},
            "ngc_bytes_served": self.served_bytes,
        })
    }
}

/// A private Azurite + clara-emulator (its storage pointing at that Azurite) and Terraform
/// wired to both, for one measurement.
struct Stack {
    emu: Emulator,
    azurite: Azurite,
    tf: Terraform,
}

struct Ctx {
    bin_dir: PathBuf,
    terraform: String,
    azurite_bin: PathBuf,
    python: PathBuf,
    script: PathBuf,
}

/// Runs `f` on a fresh stack in `dir`, then stops it and deletes `dir` (Azurite's data).
/// Every measurement gets its own, so that none inherits another's blobs, Azurite state
/// (heap, metadata) or disk use, whatever the order. It starts after sync(2), so that
/// no measurement inherits the previous one's dirty page cache: Azurite needs up to ~2.4x
/// the CPU per byte while the kernel writes back GiBs of fresh local data.
fn with_stack<T>(ctx: &Ctx, dir: &Path, f: impl FnOnce(&Stack) -> Result<T>) -> Result<T> {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    let result = (|| {
        let azurite = Azurite::start(&ctx.azurite_bin, &dir.join("azurite"))?;
        let emu = Emulator::start(
            &ctx.bin_dir.join("clara-emulator"),
            &dir.join("emulator"),
            json!({"storage": {"blob_endpoint": azurite.account_url()}}),
        )?;
        let env = terraform_env(&dir.join("terraformrc"), &ctx.bin_dir, &emu)?;
        let stack = Stack {
            tf: Terraform {
                bin: ctx.terraform.clone(),
                env,
            },
            emu,
            azurite,
        };
        f(&stack)
    })();
    let _ = std::fs::remove_dir_all(dir);
    result
}

/// The asset's files as the emulator lists them. Listing also makes the emulator compute
/// (and cache) their SHA-256s, which NGC has precomputed: no measured run pays for it.
fn list_files(stack: &Stack, base: &str) -> Result<Vec<(String, u64)>> {
    let listing = curl_json(
        &format!("{base}/files?page-size=1000"),
        &stack.emu.ca_file(),
    )?;
    Ok(listing["modelFiles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| Some((f["path"].as_str()?.to_string(), f["sizeInBytes"].as_u64()?)))
                .collect()
        })
        .unwrap_or_default())
}

fn asset_base(stack: &Stack, asset: &str) -> String {
    format!("{}/v2/models/{asset}/versions/1", stack.emu.url)
}

fn provider_run(
    stack: &Stack,
    work: &Path,
    source: &str,
    prefix: &str,
    files: usize,
) -> Result<ProviderRun> {
    let dir = work.join("tf");
    let cache = work.join("cache");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("main.tf"),
        format!(
            "terraform {{\n  required_providers {{\n    clara = {{ source = \"clara-ml/clara\" }}\n  }}\n}}\n\n\
             provider \"clara\" {{}}\n\n\
             resource \"ngc_asset\" \"bench\" {{\n  provider       = clara\n  source         = \"{source}\"\n  \
             datastore_path = \"{prefix}\"\n  unpack         = false\n}}\n"
        ),
    )
    .map_err(|e| e.to_string())?;
    let log_path = work.join("apply.log");
    let log = File::create(&log_path).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let mut cmd = stack.tf.command(&dir, APPLY_ARGS);
    // As tests/support/mod.rs: NGC at the emulator, storage at Azurite, a fresh cache.
    cmd.env("NGC_CLI_API_URL", &stack.emu.url)
        .env("NGC_CLI_AUTH_URL", &stack.emu.url)
        .env(
            "CLARA_STORAGE_BLOB_ENDPOINT",
            format!("http://127.0.0.1:{}/{{account}}", stack.azurite.port),
        )
        .env("CLARA_CACHE_DIR", &cache)
        .stdout(log)
        .stderr(log2);

    let served0 = ngc_bytes_served(&stack.emu);
    let (az0, emu0) = (cpu_ticks(stack.azurite.pid), cpu_ticks(stack.emu.pid()));
    let mut run = ProviderRun::default();
    let mut peaks: std::collections::BTreeMap<u32, (u64, u64, u64)> = Default::default();
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", stack.tf.bin))?;
    let tf_pid = child.id();
    let deadline = t0 + RUN_TIMEOUT;
    let status = loop {
        for pid in provider_children(tf_pid) {
            peaks.entry(pid).or_default();
        }
        for (pid, (hwm, rss, ticks)) in peaks.iter_mut() {
            if let Ok((r, h)) = proc_memory(*pid) {
                *hwm = (*hwm).max(h);
                *rss = (*rss).max(r);
            }
            if let Some((_, t)) = proc_stat(*pid) {
                *ticks = (*ticks).max(t);
            }
        }
        if run.download_end_s.is_none() {
            let mut st = (0, 0);
            download_state(&cache, false, &mut st);
            let now = t0.elapsed().as_secs_f64();
            if st.0 + st.1 > 0 && run.download_start_s.is_none() {
                run.download_start_s = Some(now);
            }
            if st.0 == 0 && st.1 >= files {
                run.download_end_s = Some(now);
            }
        }
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "terraform apply did not finish within {RUN_TIMEOUT:?}"
            ));
        }
        std::thread::sleep(POLL);
    };
    run.wall_s = t0.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!(
            "`terraform {}` of {source} failed ({status}):\n{}",
            APPLY_ARGS.join(" "),
            read_head(&log_path)
        ));
    }
    let tps = ticks_per_s();
    run.processes = peaks.len();
    run.peak_hwm_kib = peaks.values().map(|p| p.0).max().unwrap_or(0);
    run.peak_rss_kib = peaks.values().map(|p| p.1).max().unwrap_or(0);
    run.cpu_provider_s = peaks.values().map(|p| p.2).sum::<u64>() as f64 / tps;
    run.cpu_azurite_s = cpu_ticks(stack.azurite.pid).saturating_sub(az0) as f64 / tps;
    run.cpu_emulator_s = cpu_ticks(stack.emu.pid()).saturating_sub(emu0) as f64 / tps;
    run.served_bytes = match (served0, ngc_bytes_served(&stack.emu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    if run.processes == 0 {
        return Err(
            "no terraform-provider-clara process was seen during the apply (is /proc readable?)"
                .into(),
        );
    }
    let _ = std::fs::remove_dir_all(&cache);
    Ok(run)
}

// ---------------------------------------------------------------------------------------
// One Python baseline run

struct PyRun {
    wall_s: f64,
    out: Json,
    cpu_azurite_s: f64,
    cpu_emulator_s: f64,
    served_bytes: Option<u64>,
}

impl PyRun {
    fn f(&self, k: &str) -> f64 {
        self.out[k].as_f64().unwrap_or(f64::NAN)
    }

    fn json(&self) -> Json {
        let mut j = self.out.clone();
        j["process_wall_s"] = json!(self.wall_s);
        j["cpu_s"] = json!({
            "python": self.out["cpu_s"],
            "azurite": self.cpu_azurite_s,
            "emulator": self.cpu_emulator_s,
        });
        j["ngc_bytes_served"] = json!(self.served_bytes);
        j
    }
}

fn python_run(stack: &Stack, python: &Path, script: &Path, args: &[String]) -> Result<PyRun> {
    let served0 = ngc_bytes_served(&stack.emu);
    let (az0, emu0) = (cpu_ticks(stack.azurite.pid), cpu_ticks(stack.emu.pid()));
    let t0 = Instant::now();
    let mut child = Command::new(python)
        .arg(script)
        .args(args)
        .env("SSL_CERT_FILE", stack.emu.ca_file())
        .env(
            "AZURITE_CONNECTION_STRING",
            stack.azurite.connection_string(),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    // Small outputs: read after exit is safe only if they fit the pipe; drain in threads.
    let mut so = child.stdout.take().ok_or("stdout pipe")?;
    let mut se = child.stderr.take().ok_or("stderr pipe")?;
    let h1 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut so, &mut s);
        s
    });
    let h2 = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut se, &mut s);
        s
    });
    let status = wait_bounded(&mut child, &format!("{} {}", script.display(), args[0]))?;
    let wall_s = t0.elapsed().as_secs_f64();
    let stdout = h1.join().unwrap_or_default();
    let stderr = h2.join().unwrap_or_default();
    let tps = ticks_per_s();
    let cpu_azurite_s = cpu_ticks(stack.azurite.pid).saturating_sub(az0) as f64 / tps;
    let cpu_emulator_s = cpu_ticks(stack.emu.pid()).saturating_sub(emu0) as f64 / tps;
    let out: Json = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Json::Null);
    if !status.success() || out.is_null() || out.get("error").is_some() {
        return Err(format!(
            "{} {} failed ({status}): {}\n{}",
            script.display(),
            args[0],
            out.get("error").and_then(Json::as_str).unwrap_or(""),
            stderr.chars().take(4000).collect::<String>().trim_end()
        ));
    }
    let served_bytes = match (served0, ngc_bytes_served(&stack.emu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    Ok(PyRun {
        wall_s,
        out,
        cpu_azurite_s,
        cpu_emulator_s,
        served_bytes,
    })
}

// ---------------------------------------------------------------------------------------
// The section

struct SizeResult {
    label: String,
    bytes: u64,
    provider_mb_s: f64,
    old_mb_s: f64,
    old_md5_mb_s: f64,
    ceiling_mb_s: f64,
    peak_hwm_mib: f64,
    json: Json,
}

struct Rounds {
    provider: Vec<ProviderRun>,
    old: Vec<PyRun>,
    old_md5: Vec<PyRun>,
    ceiling: Vec<PyRun>,
}

fn old_way_args(base: &str, bytes: u64, work: &Path, prefix: &str, md5: bool) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "old-way".into(),
        "--url".into(),
        format!("{base}/zip"),
        "--expected-bytes".into(),
        bytes.to_string(),
        "--work".into(),
        work.display().to_string(),
        "--container".into(),
        BASELINE_CONTAINER.into(),
        "--prefix".into(),
        prefix.into(),
    ];
    if md5 {
        a.push("--validate-content".into());
    }
    a
}

/// One round at one size: the provider `provider_runs` times, interleaved with the old way
/// (as shipped), the old way with Content-MD5 and the ceiling; each measurement on its own
/// fresh stack. The provider is run more often because its figure swings more (Azurite's
/// garbage collector, see bench/README.md) and a run costs seconds, not a minute.
#[allow(clippy::too_many_arguments)]
fn round(
    ctx: &Ctx,
    tmp: &Path,
    asset: &str,
    label: &str,
    bytes: u64,
    files: usize,
    run: usize,
    provider_runs: usize,
) -> Result<(Vec<ProviderRun>, PyRun, PyRun, PyRun)> {
    let work = tmp.join(format!("{label}-{run}"));
    let check = |listed: &[(String, u64)]| -> Result<()> {
        let total: u64 = listed.iter().map(|f| f.1).sum();
        if listed.len() != files || total != bytes {
            return Err(format!(
                "{asset}: the emulator lists {} file(s), {total} bytes; expected {files}, {bytes}",
                listed.len()
            ));
        }
        Ok(())
    };
    let provider = |i: usize| {
        with_stack(ctx, &work.join(format!("stack-provider-{i}")), |s| {
            check(&list_files(s, &asset_base(s, asset))?)?;
            provider_run(
                s,
                &work.join(format!("provider-{i}")),
                &format!("{asset}:1"),
                &format!("bench/provider-{label}-{run}-{i}"),
                files,
            )
        })
    };
    // One provider run before each baseline, any others at the end.
    let more = |ps: &mut Vec<ProviderRun>| -> Result<()> {
        if ps.len() < provider_runs {
            ps.push(provider(ps.len())?);
        }
        Ok(())
    };
    let mut ps = Vec::new();
    more(&mut ps)?;
    let o = with_stack(ctx, &work.join("stack-old-way"), |s| {
        let base = asset_base(s, asset);
        check(&list_files(s, &base)?)?;
        let dir = work.join("old-way");
        let r = python_run(
            s,
            &ctx.python,
            &ctx.script,
            &old_way_args(&base, bytes, &dir, &format!("old-way-{label}-{run}"), false),
        );
        let _ = std::fs::remove_dir_all(&dir);
        r
    })?;
    more(&mut ps)?;
    let staged = work.join("old-way-md5");
    let om = with_stack(ctx, &work.join("stack-old-way-md5"), |s| {
        let base = asset_base(s, asset);
        check(&list_files(s, &base)?)?;
        python_run(
            s,
            &ctx.python,
            &ctx.script,
            &old_way_args(
                &base,
                bytes,
                &staged,
                &format!("old-way-md5-{label}-{run}"),
                true,
            ),
        )
    })?;
    more(&mut ps)?;
    let c = with_stack(ctx, &work.join("stack-ceiling"), |s| {
        let base = asset_base(s, asset);
        let listed = list_files(s, &base)?;
        check(&listed)?;
        let mut a: Vec<String> = vec!["ceiling".into()];
        for (path, _) in &listed {
            a.push("--url".into());
            a.push(format!("{base}/files/{path}"));
        }
        a.extend([
            "--files-dir".into(),
            staged.join("additional_content").display().to_string(),
            "--concurrency".into(),
            CEILING_CONCURRENCY.to_string(),
            "--validate-content".into(),
            "--container".into(),
            BASELINE_CONTAINER.into(),
            "--prefix".into(),
            format!("ceiling-{label}-{run}"),
        ]);
        python_run(s, &ctx.python, &ctx.script, &a)
    })?;
    while ps.len() < provider_runs {
        more(&mut ps)?;
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok((ps, o, om, c))
}

pub fn bench_transfer(o: &Options) -> Result<(Vec<Row>, Json)> {
    let runs = o.runs.max(1);
    let provider_runs = o.provider_runs.max(1);
    let files = o.files.max(1);
    println!();
    println!(
        "== 4. Transfer: NGC synthetic asset -> datastore through clara-emulator + Azurite ({runs} round(s) per size; {provider_runs} provider run(s) per round, interleaved with the baselines) =="
    );
    let sizes: Vec<(String, u64)> = o
        .sizes
        .iter()
        .map(|s| parse_size(s).map(|b| (s.clone(), b)))
        .collect::<Result<_>>()?;
    if sizes.is_empty() {
        return Err("no --transfer-sizes".into());
    }
    let python = o
        .python
        .clone()
        .unwrap_or_else(|| o.repo.join(".tools/bench-venv/bin/python"));
    match Command::new(&python)
        .args(["-c", "import azure.storage.blob"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            return Err(format!(
                "{} cannot import azure.storage.blob (bench/run.sh installs bench/requirements.txt into .tools/bench-venv): {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot run {} ({e}); bench/run.sh creates .tools/bench-venv, or pass --python",
                python.display()
            ));
        }
    }
    let ctx = Ctx {
        bin_dir: o.bin_dir.clone(),
        terraform: o.terraform.clone(),
        azurite_bin: o
            .azurite
            .clone()
            .or_else(|| std::env::var_os("AZURITE_BLOB_BIN").map(PathBuf::from))
            .unwrap_or_else(|| o.repo.join(".tools/node_modules/.bin/azurite-blob")),
        python,
        script: o.repo.join("bench/transfer_baselines.py"),
    };
    let tmp = tempfile::Builder::new()
        .prefix("clara-bench-transfer-")
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;

    println!(
        "  every measurement below runs on its own fresh Azurite + clara-emulator (NGC API, object store on a second origin)"
    );
    println!(
        "  provider:  `terraform {}` of one ngc_asset (source = the synthetic asset, unpack = false), release build via dev_overrides;",
        APPLY_ARGS.join(" ")
    );
    println!(
        "             peak RSS = largest VmHWM of its terraform-provider-clara processes, read from /proc every {} ms",
        POLL.as_millis()
    );
    println!(
        "  old way:   azureml-ngc-tools' method: urllib of the /zip URL -> file, zipfile extractall, upload_blob(overwrite=False) per file, sequential"
    );
    println!(
        "  old way+MD5: the same with validate_content=True (Content-MD5 on each block, as the provider sends: see bench/README.md)"
    );
    println!(
        "  ceiling:   curl of the file URL(s) to /dev/null + upload_blob(max_concurrency={CEILING_CONCURRENCY}, validate_content=True); time = sum"
    );
    println!("  MB/s = 10^6 asset bytes per second of wall time");

    let mut results = Vec::<SizeResult>::new();
    for (label, bytes) in &sizes {
        let name = if files > 1 {
            format!("size-{label}-files-{files}")
        } else {
            format!("size-{label}")
        };
        let asset = format!("nvidia/synthetic/{name}");
        println!();
        println!(
            "  -- {} ({asset}:1, {files} file(s), {:.1} MB) --",
            human(*bytes),
            *bytes as f64 / 1e6
        );
        let mut r = Rounds {
            provider: vec![],
            old: vec![],
            old_md5: vec![],
            ceiling: vec![],
        };
        for run in 0..runs {
            let (p, od, om, c) = round(
                &ctx,
                tmp.path(),
                &asset,
                label,
                *bytes,
                files,
                run,
                provider_runs,
            )?;
            print_run(run, runs, *bytes, &p, &od, &om, &c);
            r.provider.extend(p);
            r.old.push(od);
            r.old_md5.push(om);
            r.ceiling.push(c);
        }
        results.push(summarise(label, *bytes, &asset, files, runs, &r));
    }

    // Summary rows.
    let mut rows = Vec::new();
    for r in &results {
        let ratio_old = r.provider_mb_s / r.old_mb_s;
        let ratio_md5 = r.provider_mb_s / r.old_md5_mb_s;
        let frac = r.provider_mb_s / r.ceiling_mb_s;
        rows.push(Row {
            name: format!(
                "transfer {}: MB/s provider (old way, +MD5, ceiling)",
                r.label
            ),
            value: format!(
                "{:.0} ({:.0}, {:.0}, {:.0})",
                r.provider_mb_s, r.old_mb_s, r.old_md5_mb_s, r.ceiling_mb_s
            ),
            target: "-".into(),
            meets: None,
        });
        rows.push(Row {
            name: format!("transfer {}: provider/old way (as shipped)", r.label),
            value: format!("{ratio_old:.2}x"),
            target: format!("≥ {TARGET_OLD_RATIO}x"),
            meets: Some(ratio_old >= TARGET_OLD_RATIO),
        });
        rows.push(Row {
            name: format!("transfer {}: provider/old way+MD5", r.label),
            value: format!("{ratio_md5:.2}x"),
            target: format!("≥ {TARGET_OLD_RATIO}x"),
            meets: Some(ratio_md5 >= TARGET_OLD_RATIO),
        });
        rows.push(Row {
            name: format!("transfer {}: provider/ceiling", r.label),
            value: format!("{:.0}%", frac * 100.0),
            target: format!("≥ {:.0}%", TARGET_CEILING_FRACTION * 100.0),
            meets: Some(frac >= TARGET_CEILING_FRACTION),
        });
    }
    let smallest = results.iter().min_by_key(|r| r.bytes).expect("one size");
    let largest = results.iter().max_by_key(|r| r.bytes).expect("one size");
    let slack = RSS_GROWTH_SLACK_MIB.max(smallest.peak_hwm_mib * RSS_GROWTH_SLACK_FRACTION);
    let flat = largest.peak_hwm_mib <= smallest.peak_hwm_mib + slack;
    let under = results
        .iter()
        .all(|r| r.peak_hwm_mib <= TARGET_PEAK_RSS_MIB);
    let rss_meets = flat && under;
    let rss_values = results
        .iter()
        .map(|r| format!("{:.1}", r.peak_hwm_mib))
        .collect::<Vec<_>>()
        .join(" / ");
    let rss_labels = results
        .iter()
        .map(|r| r.label.clone())
        .collect::<Vec<_>>()
        .join(" / ");
    println!();
    println!(
        "  provider peak RSS (VmHWM) {rss_labels}: {rss_values} MiB (target ≤ {TARGET_PEAK_RSS_MIB} MiB, and not growing: at most +{slack:.1} MiB over the smallest size) -> {}",
        verdict(Some(rss_meets))
    );
    rows.push(Row {
        name: format!("transfer: provider peak RSS {rss_labels}"),
        value: format!("{rss_values} MiB"),
        target: format!("≤ {TARGET_PEAK_RSS_MIB} MiB, flat"),
        meets: Some(rss_meets),
    });

    let j = json!({
        "units": {"throughput": "MB/s = 10^6 asset bytes per second of wall time", "rss": "MiB", "time": "s"},
        "files_per_asset": files,
        "rounds": runs,
        "provider_runs_per_round": provider_runs,
        "method": {
            "stack": "each measurement on its own fresh Azurite + clara-emulator",
            "provider": "terraform apply -auto-approve of one ngc_asset (source = the synthetic asset, unpack = false), release provider via dev_overrides; wall time of the apply; peak RSS = largest VmHWM of its terraform-provider-clara processes, read from /proc every 50 ms",
            "old_way": "bench/transfer_baselines.py old-way: urllib.request.urlopen of the NGC /zip URL -> file, zipfile extractall, upload_blob(overwrite=False) per file, sequential; wall time of the process; peak RSS = ru_maxrss",
            "old_way_md5": "the same with upload_blob(validate_content=True): Content-MD5 on each Put Block, as the provider sends (Azurite computes CRC64 in JavaScript for blocks without it)",
            "ceiling": format!("bench/transfer_baselines.py ceiling: curl of the file URL(s) to /dev/null, then upload_blob(max_concurrency={CEILING_CONCURRENCY}, validate_content=True) of the same files; time = download + upload"),
        },
        "sizes": results.iter().map(|r| r.json.clone()).collect::<Vec<_>>(),
        "provider_peak_rss": {
            "by_size_mib": results.iter().map(|r| json!({"size": r.label, "peak_vmhwm_mib": r.peak_hwm_mib})).collect::<Vec<_>>(),
            "growth_slack_mib": slack,
            "not_growing": flat,
            "target_mib": TARGET_PEAK_RSS_MIB,
            "meets": rss_meets,
        },
        "targets": {
            "provider_over_old_way": TARGET_OLD_RATIO,
            "provider_over_ceiling": TARGET_CEILING_FRACTION,
            "provider_peak_rss_mib": TARGET_PEAK_RSS_MIB,
        },
    });
    Ok((rows, j))
}

fn summarise(
    label: &str,
    bytes: u64,
    asset: &str,
    files: usize,
    runs: usize,
    r: &Rounds,
) -> SizeResult {
    let med = |xs: Vec<f64>| stats(&xs).median;
    let p_wall = med(r.provider.iter().map(|x| x.wall_s).collect());
    let o_wall = med(r.old.iter().map(|x| x.wall_s).collect());
    let om_wall = med(r.old_md5.iter().map(|x| x.wall_s).collect());
    let c_total = med(r.ceiling.iter().map(|x| x.f("total_s")).collect());
    let peak_hwm = r.provider.iter().map(|x| x.peak_hwm_kib).max().unwrap_or(0);
    let (p_mb, o_mb, om_mb, c_mb) = (
        mb_per_s(bytes, p_wall),
        mb_per_s(bytes, o_wall),
        mb_per_s(bytes, om_wall),
        mb_per_s(bytes, c_total),
    );
    let (ratio_old, ratio_md5, frac) = (p_mb / o_mb, p_mb / om_mb, p_mb / c_mb);
    let pst = stats(&r.provider.iter().map(|x| x.wall_s).collect::<Vec<_>>());
    if runs > 1 || r.provider.len() > 1 {
        println!(
            "    medians: provider {p_wall:.1} s ({p_mb:.1} MB/s; {} runs, {:.1}-{:.1} s), old way {o_wall:.1} s ({o_mb:.1} MB/s), old way+MD5 {om_wall:.1} s ({om_mb:.1} MB/s), ceiling {c_total:.1} s ({c_mb:.1} MB/s)",
            pst.n, pst.min, pst.max
        );
    }
    println!(
        "    provider/old way {ratio_old:.2}x, provider/old way+MD5 {ratio_md5:.2}x (target ≥ {TARGET_OLD_RATIO}x) -> {}, {};  provider/ceiling {:.0}% (target ≥ {:.0}%) -> {}",
        verdict(Some(ratio_old >= TARGET_OLD_RATIO)),
        verdict(Some(ratio_md5 >= TARGET_OLD_RATIO)),
        frac * 100.0,
        TARGET_CEILING_FRACTION * 100.0,
        verdict(Some(frac >= TARGET_CEILING_FRACTION))
    );
    let py = |v: &[PyRun]| v.iter().map(PyRun::json).collect::<Vec<_>>();
    let py_rss = |v: &[PyRun]| v.iter().map(|x| x.f("peak_rss_kib")).fold(0.0, f64::max) / 1024.0;
    SizeResult {
        label: human(bytes),
        bytes,
        provider_mb_s: p_mb,
        old_mb_s: o_mb,
        old_md5_mb_s: om_mb,
        ceiling_mb_s: c_mb,
        peak_hwm_mib: mib(peak_hwm),
        json: json!({
            "size": label,
            "bytes": bytes,
            "asset": format!("{asset}:1"),
            "files": files,
            "provider": {
                "runs": r.provider.iter().map(|x| x.json(bytes)).collect::<Vec<_>>(),
                "wall_s_stats": pst.json(),
                "wall_s": p_wall, "mb_per_s": p_mb, "peak_vmhwm_mib": mib(peak_hwm),
            },
            "old_way": {"runs": py(&r.old), "wall_s": o_wall, "mb_per_s": o_mb, "peak_rss_mib": py_rss(&r.old)},
            "old_way_md5": {"runs": py(&r.old_md5), "wall_s": om_wall, "mb_per_s": om_mb, "peak_rss_mib": py_rss(&r.old_md5)},
            "ceiling": {"runs": py(&r.ceiling), "total_s": c_total, "mb_per_s": c_mb},
            "provider_over_old_way": ratio_old,
            "meets_old_way_target": ratio_old >= TARGET_OLD_RATIO,
            "provider_over_old_way_md5": ratio_md5,
            "meets_old_way_md5_target": ratio_md5 >= TARGET_OLD_RATIO,
            "provider_over_ceiling": frac,
            "meets_ceiling_target": frac >= TARGET_CEILING_FRACTION,
        }),
    }
}

fn print_run(
    run: usize,
    runs: usize,
    bytes: u64,
    ps: &[ProviderRun],
    o: &PyRun,
    om: &PyRun,
    c: &PyRun,
) {
    let tag = if runs > 1 {
        format!(" (run {})", run + 1)
    } else {
        String::new()
    };
    for (k, p) in ps.iter().enumerate() {
        let tag = if ps.len() > 1 {
            format!("{tag} #{}", k + 1)
        } else {
            tag.clone()
        };
        let phase = match (p.download_start_s, p.download_end_s) {
            (Some(a), Some(b)) => format!(
                "start-up+resolve {a:.1} s, download+verify {:.1} s ({:.0} MB/s), then hash+upload+finish {:.1} s ({:.0} MB/s)",
                b - a,
                mb_per_s(bytes, b - a),
                p.wall_s - b,
                mb_per_s(bytes, p.wall_s - b)
            ),
            _ => "phases not seen".into(),
        };
        println!(
            "    provider{tag:<9} {:6.1} s {:6.1} MB/s  peak VmHWM {:5.1} MiB (max sampled VmRSS {:.1}; {} process(es))",
            p.wall_s,
            mb_per_s(bytes, p.wall_s),
            mib(p.peak_hwm_kib),
            mib(p.peak_rss_kib),
            p.processes
        );
        println!("        {phase}");
        println!(
            "        CPU s: provider {:.1}, Azurite {:.1}, emulator {:.1}; NGC bytes served {}",
            p.cpu_provider_s,
            p.cpu_azurite_s,
            p.cpu_emulator_s,
            p.served_bytes.map_or("?".into(), |b| b.to_string())
        );
    }
    for (name, x) in [("old way", o), ("old way+MD5", om)] {
        println!(
            "    {name:<11}{tag} {:6.1} s {:6.1} MB/s  peak ru_maxrss {:5.1} MiB",
            x.wall_s,
            mb_per_s(bytes, x.wall_s),
            x.f("peak_rss_kib") / 1024.0
        );
        println!(
            "        download {:.1} s ({:.0} MB/s), extract {:.1} s, upload {:.1} s ({:.0} MB/s); interpreter start + imports {:.1} s",
            x.f("download_s"),
            mb_per_s(bytes, x.f("download_s")),
            x.f("extract_s"),
            x.f("upload_s"),
            mb_per_s(bytes, x.f("upload_s")),
            x.wall_s - x.f("total_s")
        );
        println!(
            "        CPU s: python {:.1}, Azurite {:.1}, emulator {:.1}; NGC bytes served {}",
            x.f("cpu_s"),
            x.cpu_azurite_s,
            x.cpu_emulator_s,
            x.served_bytes.map_or("?".into(), |b| b.to_string())
        );
    }
    println!(
        "    ceiling{tag:<10} {:6.1} s {:6.1} MB/s  = download ({}) {:.1} s ({:.0} MB/s) + upload {:.1} s ({:.0} MB/s)",
        c.f("total_s"),
        mb_per_s(bytes, c.f("total_s")),
        c.out["download_tool"].as_str().unwrap_or("?"),
        c.f("download_s"),
        mb_per_s(bytes, c.f("download_s")),
        c.f("upload_s"),
        mb_per_s(bytes, c.f("upload_s"))
    );
    println!(
        "        CPU s: python+curl {:.1}, Azurite {:.1}, emulator {:.1}",
        c.f("cpu_s"),
        c.cpu_azurite_s,
        c.cpu_emulator_s
    );
}
