//! Verified, resumable, bounded-parallel downloads of a resolved asset.
//!
//! Each file streams into `<dir>/<rel>.part`. An existing `.part` is resumed with
//! `Range: bytes=N-` (its bytes are hashed first so the final digest covers the whole
//! file); a `200` instead of `206` restarts it. A body that breaks off is resumed from
//! what was written, up to `retry_attempts` times in a row without progress. The finished
//! `.part` is checked against the manifest size and sha256 and only then renamed into
//! place; on a mismatch it is deleted and the error returned (the next run starts afresh
//! rather than looping). A final file that already matches is skipped; one that does not
//! is replaced. Memory use is one chunk per file in flight.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use crate::NgcClient;
use crate::error::{NgcError, hex};
use crate::fetch::{Job, Opened};
use crate::manifest::{ResolvedAsset, manifest_digest};
use crate::retry::without_url;

/// How often progress is reported while bytes flow (file completions always report).
const PROGRESS_INTERVAL: Duration = Duration::from_secs(2);

/// A progress report; the provider logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes received over the network in this run (resumed and skipped bytes excluded).
    pub downloaded_bytes: u64,
    /// Size of the whole asset per the manifest (0 when unknown, e.g. `/zip`).
    pub total_bytes: u64,
    /// Files complete and verified, including those already present.
    pub files_done: usize,
    pub files_total: usize,
}

/// One file on disk, verified against the manifest (or hashed, when nothing was expected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    /// Where it is: `dir` joined with `rel_path`.
    pub path: PathBuf,
    pub rel_path: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOutcome {
    /// Sorted by `rel_path`.
    pub files: Vec<DownloadedFile>,
    /// Bytes received over the network in this run.
    pub bytes_transferred: u64,
    /// [`manifest_digest`] of the files as downloaded; equals
    /// [`ResolvedAsset::digest`] when the manifest had every hash.
    pub digest: String,
}

/// Shared counters for one `download` call.
struct Tally<'a> {
    transferred: AtomicU64,
    files_done: AtomicUsize,
    total_bytes: u64,
    files_total: usize,
    last_report: Mutex<Instant>,
    report: &'a (dyn Fn(Progress) + Sync),
}

impl Tally<'_> {
    fn snapshot(&self) -> Progress {
        Progress {
            downloaded_bytes: self.transferred.load(Ordering::Relaxed),
            total_bytes: self.total_bytes,
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total,
        }
    }

    fn bytes(&self, n: u64) {
        self.transferred.fetch_add(n, Ordering::Relaxed);
        let due = {
            let mut last = self.last_report.lock().unwrap_or_else(|p| p.into_inner());
            let due = last.elapsed() >= PROGRESS_INTERVAL;
            if due {
                *last = Instant::now();
            }
            due
        };
        if due {
            (self.report)(self.snapshot());
        }
    }

    fn file_done(&self) {
        self.files_done.fetch_add(1, Ordering::Relaxed);
        (self.report)(self.snapshot());
    }
}

impl NgcClient {
    /// Downloads everything `resolved` names into `dir` (created if missing), at most
    /// `parallelism` files at once. On error, finished files and `.part` files stay for the
    /// next run to reuse; only data that failed verification is deleted.
    pub async fn download(
        &self,
        resolved: &ResolvedAsset,
        dir: &Path,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<DownloadOutcome, NgcError> {
        let jobs = self.jobs(resolved).await?;
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(NgcError::io("create directory", dir))?;
        let tally = Tally {
            transferred: AtomicU64::new(0),
            files_done: AtomicUsize::new(0),
            total_bytes: resolved.total_size,
            files_total: jobs.len(),
            last_report: Mutex::new(Instant::now()),
            report: progress,
        };
        // Collected first: a lazy `iter().map(closure)` stream makes the future's Send-ness
        // depend on a higher-ranked closure bound that async-trait callers cannot satisfy.
        let pending: Vec<_> = jobs
            .iter()
            .map(|job| self.fetch_file(job, dir, &tally))
            .collect();
        let mut files: Vec<DownloadedFile> = futures::stream::iter(pending)
            .buffer_unordered(self.options.parallelism)
            .try_collect()
            .await?;
        files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
        let digest = manifest_digest(
            files
                .iter()
                .map(|f| (f.rel_path.as_str(), f.size, Some(&f.sha256))),
        );
        Ok(DownloadOutcome {
            files,
            bytes_transferred: tally.transferred.load(Ordering::Relaxed),
            digest,
        })
    }

    /// One job per file. NGC files are fetched from the presigned object-store URLs of the
    /// download manifest, as ngcsdk does, without credentials.
    async fn jobs(&self, resolved: &ResolvedAsset) -> Result<Vec<Job>, NgcError> {
        if let Some(single) = &resolved.single {
            return Ok(vec![Job::from_single(resolved.asset.clone(), single)]);
        }
        let Some(asset) = &resolved.asset else {
            return Ok(Vec::new());
        };
        if resolved.files.is_empty() {
            return Ok(Vec::new());
        }
        let version = asset.version.as_deref().unwrap_or_default();
        let paths: Vec<String> = resolved.files.iter().map(|f| f.path.clone()).collect();
        let mut urls = self.signed_urls(asset, version, &paths).await?;
        Ok(resolved
            .files
            .iter()
            .map(|f| Job {
                rel_path: f.path.clone(),
                url: urls.remove(&f.path).expect("signed_urls covers every path"),
                asset: Some(asset.clone()),
                ngc_api: false,
                expected_size: Some(f.size),
                expected_sha256: f.sha256,
                signed_version: Some(version.to_owned()),
            })
            .collect())
    }

    async fn fetch_file(
        &self,
        job: &Job,
        dir: &Path,
        tally: &Tally<'_>,
    ) -> Result<DownloadedFile, NgcError> {
        let dest = job
            .rel_path
            .split('/')
            .fold(dir.to_path_buf(), |p, part| p.join(part));
        let part = PathBuf::from(format!("{}.part", dest.display()));
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(NgcError::io("create directory", parent))?;
        }
        let done = |size, sha256| DownloadedFile {
            path: dest.clone(),
            rel_path: job.rel_path.clone(),
            size,
            sha256,
        };

        if let Some(sha) = self.already_complete(job, &dest).await? {
            tracing::debug!(file = %job.rel_path, "already downloaded and verified; skipping");
            tally.file_done();
            return Ok(done(job.expected_size.unwrap_or_default(), sha));
        }

        let (mut hasher, mut written) = resume_state(job, &part).await?;
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&part)
            .await
            .map_err(NgcError::io("open", &part))?;
        restart_at(&mut file, &part, written).await?;

        let mut job = job.clone();
        let mut url_renewed = false;
        let mut failures = 0u32;
        // Times the server stated (or delivered) another size than the listing's. Progress
        // never resets it: a listing that disagrees with the server fails after bounded,
        // backed-off tries instead of looping (full GET, then a 416 on the resume) forever.
        let mut disagreements = 0u32;
        while job.expected_size != Some(written) {
            let opened = match self.open(&job, written).await {
                Ok(o) => o,
                // A presigned URL expires (NGC: `Expires`): ask for a fresh one, once.
                Err(NgcError::Http { status: 403, .. })
                    if !url_renewed
                        && let (Some(asset), Some(version)) = (&job.asset, &job.signed_version) =>
                {
                    tracing::info!(file = %job.rel_path, "download URL refused (expired?); asking NGC for a new one");
                    job.url = self.signed_url_for(asset, version, &job.rel_path).await?;
                    url_renewed = true;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let stated = match &opened {
                Opened::Body { total, .. } | Opened::Restart { total } => *total,
            };
            if let (Some(listed), Some(served)) = (job.expected_size, stated)
                && listed != served
            {
                disagreements += 1;
                self.size_disagreement(&job, listed, served, disagreements)
                    .await?;
                continue;
            }
            let (resp, start) = match opened {
                Opened::Body { resp, start, .. } => (resp, start),
                Opened::Restart { .. } => {
                    failures += 1;
                    if failures >= self.retry.attempts() {
                        return Err(self.gave_up(
                            &job,
                            failures,
                            "the server keeps answering the wrong byte range",
                        ));
                    }
                    (hasher, written) = (Sha256::new(), 0);
                    restart_at(&mut file, &part, 0).await?;
                    continue;
                }
            };
            if start != written {
                tracing::info!(file = %job.rel_path, "server ignored the resume range; restarting the file from 0");
                (hasher, written) = (Sha256::new(), 0);
                restart_at(&mut file, &part, 0).await?;
            }
            let before = written;
            let mut broke: Option<String> = None;
            let mut body = resp.bytes_stream();
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(c) => c,
                    Err(e) => {
                        broke = Some(without_url(&e));
                        break;
                    }
                };
                let len = chunk.len() as u64;
                if let Some(expected) = job.expected_size
                    && written + len > expected
                {
                    drop(file);
                    remove(&part).await;
                    return Err(NgcError::Size {
                        file: job.what(),
                        expected,
                        actual: written + len,
                    });
                }
                file.write_all(&chunk)
                    .await
                    .map_err(NgcError::io("write", &part))?;
                hasher.update(&chunk);
                written += len;
                tally.bytes(len);
            }
            let complete = broke.is_none() && job.expected_size.is_none_or(|s| s == written);
            if complete {
                break;
            }
            if broke.is_none()
                && let Some(listed) = job.expected_size
            {
                // The body ended cleanly, short of the listed size.
                disagreements += 1;
                file.flush().await.map_err(NgcError::io("write", &part))?;
                self.size_disagreement(&job, listed, written, disagreements)
                    .await?;
                continue;
            }
            file.flush().await.map_err(NgcError::io("write", &part))?;
            // Consecutive failures count; any progress starts the count again.
            failures = if written > before { 1 } else { failures + 1 };
            let reason = broke.unwrap_or_else(|| format!("the body ended after {written} bytes"));
            if failures >= self.retry.attempts() {
                return Err(self.gave_up(&job, failures, &reason));
            }
            tracing::info!(file = %job.rel_path, written, reason = %reason, "download interrupted; resuming");
            self.retry.pause(failures, None).await;
        }
        file.flush().await.map_err(NgcError::io("write", &part))?;
        file.sync_all().await.map_err(NgcError::io("sync", &part))?;
        drop(file);

        let sha: [u8; 32] = hasher.finalize().into();
        if let Some(expected) = job.expected_sha256
            && expected != sha
        {
            remove(&part).await;
            return Err(NgcError::Checksum {
                file: job.what(),
                expected: hex(&expected),
                actual: hex(&sha),
            });
        }
        tokio::fs::rename(&part, &dest)
            .await
            .map_err(NgcError::io("rename into place", &dest))?;
        tally.file_done();
        Ok(done(written, sha))
    }

    /// The sha256 of `dest` when it already holds exactly the expected content. A file
    /// that differs is deleted so it is downloaded again.
    async fn already_complete(&self, job: &Job, dest: &Path) -> Result<Option<[u8; 32]>, NgcError> {
        let (Some(size), Some(expected)) = (job.expected_size, job.expected_sha256) else {
            return Ok(None); // nothing to compare with: always fetch
        };
        let Ok(meta) = tokio::fs::metadata(dest).await else {
            return Ok(None);
        };
        if meta.is_file() && meta.len() == size {
            let (hasher, _) = hash_prefix(dest).await?;
            let sha: [u8; 32] = hasher.finalize().into();
            if sha == expected {
                return Ok(Some(sha));
            }
        }
        tracing::warn!(file = %job.rel_path, "existing file does not match the NGC manifest; downloading it again");
        if meta.is_dir() {
            return Err(NgcError::Io {
                action: "replace",
                path: dest.to_path_buf(),
                source: std::io::Error::other("a directory is in the way of a downloaded file"),
            });
        }
        tokio::fs::remove_file(dest)
            .await
            .map_err(NgcError::io("remove", dest))?;
        Ok(None)
    }

    /// The server disagreed with the listed size for the `count`-th time: an error naming
    /// the file and both sizes once tries run out, else a backed-off pause.
    async fn size_disagreement(
        &self,
        job: &Job,
        listed: u64,
        served: u64,
        count: u32,
    ) -> Result<(), NgcError> {
        if count >= self.retry.attempts() {
            return Err(NgcError::SizeDisagrees {
                file: job.what(),
                listed,
                served,
                attempts: count,
            });
        }
        tracing::warn!(file = %job.rel_path, listed, served, "the server's size differs from the NGC listing; retrying");
        self.retry.pause(count, None).await;
        Ok(())
    }

    fn gave_up(&self, job: &Job, attempts: u32, reason: &str) -> NgcError {
        NgcError::Transport {
            what: job.what(),
            url: crate::error::redact_url(&job.url),
            attempts,
            message: reason.to_owned(),
        }
    }
}

/// Hash state and length of an existing `.part`, or a fresh start when there is none or
/// it is longer than the file can be.
async fn resume_state(job: &Job, part: &Path) -> Result<(Sha256, u64), NgcError> {
    match tokio::fs::metadata(part).await {
        Ok(m) if m.is_file() && job.expected_size.is_none_or(|s| m.len() <= s) => {
            let (hasher, len) = hash_prefix(part).await?;
            if len > 0 {
                tracing::info!(file = %job.rel_path, bytes = len, "resuming partial download");
            }
            Ok((hasher, len))
        }
        Ok(_) => {
            remove(part).await;
            Ok((Sha256::new(), 0))
        }
        Err(_) => Ok((Sha256::new(), 0)),
    }
}

/// Cuts the file to `len` bytes and positions writes there.
async fn restart_at(file: &mut tokio::fs::File, path: &Path, len: u64) -> Result<(), NgcError> {
    file.set_len(len)
        .await
        .map_err(NgcError::io("truncate", path))?;
    file.seek(std::io::SeekFrom::Start(len))
        .await
        .map_err(NgcError::io("seek in", path))?;
    Ok(())
}

/// Sha256 state over the whole file at `path` and its length, read on a blocking thread.
async fn hash_prefix(path: &Path) -> Result<(Sha256, u64), NgcError> {
    let owned = path.to_path_buf();
    let result = tokio::task::spawn_blocking(move || -> std::io::Result<(Sha256, u64)> {
        use std::io::Read;
        let mut f = std::fs::File::open(&owned)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok((hasher, len));
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
    })
    .await
    .map_err(|e| NgcError::io("read", path)(std::io::Error::other(e)))?;
    result.map_err(NgcError::io("read", path))
}

async fn remove(path: &Path) {
    if let Err(e) = tokio::fs::remove_file(path).await
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove bad partial download");
    }
}
