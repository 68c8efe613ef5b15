//! The ngc_asset pipeline: download → verify → unpack → upload → completion marker.
//!
//! Every step is restartable. Downloads resume from `.part` files in the cache directory;
//! uploads skip blobs whose MD5 already matches; every blob carries the asset's digest in its
//! metadata so a partial upload can be found and removed; the marker is written last, so a
//! half-finished upload reads as "not there" rather than "done".

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clara_ngc::archive::{self, ArchiveKind, Limits};
use clara_ngc::{NgcClient, Progress, ResolvedAsset};
use serde::{Deserialize, Serialize};

use crate::storage::Datastore;

pub const MARKER: &str = ".clara-asset.json";
pub const DIGEST_METADATA: &str = "clara_asset_digest";

/// What the marker blob records: enough to tell, from storage alone, whether the asset is
/// complete and which blobs belong to it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Marker {
    pub digest: String,
    pub source: String,
    pub version: String,
    pub files: Vec<MarkerFile>,
    /// The provider's owner marker of the create that uploaded it (see `ownership`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// How the resource fetched and registered the content (what `terraform import` reads
    /// back); absent in markers written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MarkerFile {
    pub path: String,
    pub size: u64,
    pub md5: String,
}

/// A local file and where it goes, relative to the asset's datastore path.
pub struct Staged {
    pub local: PathBuf,
    pub rel_path: String,
    pub size: u64,
}

/// Logs transfer progress at INFO at most every two seconds.
pub struct ProgressLog {
    label: String,
    started: Instant,
    last: Mutex<Instant>,
}

impl ProgressLog {
    pub fn new(label: &str) -> Self {
        let now = Instant::now();
        ProgressLog {
            label: label.into(),
            started: now,
            last: Mutex::new(now - Duration::from_secs(10)),
        }
    }

    pub fn report(&self, p: Progress) {
        let mut last = self.last.lock().expect("progress lock");
        let done = p.downloaded_bytes >= p.total_bytes;
        if !done && last.elapsed() < Duration::from_secs(2) {
            return;
        }
        *last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        tracing::info!(
            asset = %self.label,
            bytes = p.downloaded_bytes,
            total_bytes = p.total_bytes,
            files = p.files_done,
            total_files = p.files_total,
            mb_per_s = format!("{:.1}", p.downloaded_bytes as f64 / 1e6 / secs),
            "downloading {}: {:.1}/{:.1} MB, {}/{} files",
            self.label,
            p.downloaded_bytes as f64 / 1e6,
            p.total_bytes as f64 / 1e6,
            p.files_done,
            p.files_total
        );
    }
}

/// Where this asset's bytes live locally between runs: keyed by the manifest digest, or by
/// the URL for a plain download whose content is only known once fetched.
pub fn cache_dir(cache_root: &Path, resolved: &ResolvedAsset, label: &str) -> PathBuf {
    let key = match &resolved.digest {
        Some(d) => d.clone(),
        None => crate::content_hash(&serde_json::json!({ "url": label })),
    };
    cache_root.join("assets").join(&key[..32.min(key.len())])
}

/// What `fetch` produced: files ready to upload, the verified content digest, and the bytes
/// that crossed the network this run.
pub struct Fetched {
    pub staged: Vec<Staged>,
    pub digest: String,
    pub bytes_transferred: u64,
    /// Held until the upload is done: another Terraform run on the same asset waits instead
    /// of rewriting the files being uploaded.
    _cache_lock: std::fs::File,
}

/// Why `fetch` stopped: which step, and what it said.
pub struct FetchError {
    pub summary: &'static str,
    pub detail: String,
}

impl FetchError {
    fn download(detail: impl ToString) -> Self {
        FetchError {
            summary: "Download failed",
            detail: detail.to_string(),
        }
    }
    fn unpack(detail: impl ToString) -> Self {
        FetchError {
            summary: "Unsafe or unreadable archive",
            detail: detail.to_string(),
        }
    }
}

/// Downloads (resuming) and verifies every file, then unpacks archives when asked.
pub async fn fetch(
    ngc: &NgcClient,
    resolved: &ResolvedAsset,
    cache: &Path,
    unpack: bool,
    strip_root: bool,
    label: &str,
) -> Result<Fetched, FetchError> {
    let lock = lock_cache(cache).await.map_err(FetchError::download)?;
    let log = ProgressLog::new(label);
    let download_dir = cache.join("download");
    let downloaded = ngc
        .download(resolved, &download_dir, &|p| log.report(p))
        .await
        .map_err(FetchError::download)?;
    // Unpack afresh each time: a previous, interrupted unpack may have left a partial tree.
    let unpacked_root = cache.join("unpacked");
    if unpacked_root.exists() {
        std::fs::remove_dir_all(&unpacked_root)
            .map_err(|e| FetchError::unpack(format!("{}: {e}", unpacked_root.display())))?;
    }
    let mut staged = Vec::new();
    for f in &downloaded.files {
        match ArchiveKind::detect(&f.rel_path).filter(|_| unpack) {
            Some(kind) => {
                let stem = archive_stem(&f.rel_path);
                let dest = unpacked_root.join(&stem);
                let parent_rel = Path::new(&f.rel_path)
                    .parent()
                    .map(|p| p.to_string_lossy().to_string())
                    .unwrap_or_default();
                let entries = {
                    let (local, dest2) = (f.path.clone(), dest.clone());
                    tokio::task::spawn_blocking(move || {
                        archive::unpack(&local, &dest2, kind, strip_root, &Limits::default())
                    })
                    .await
                    .map_err(FetchError::unpack)?
                    .map_err(|e| FetchError::unpack(format!("unpacking {}: {e}", f.rel_path)))?
                };
                tracing::info!(archive = %f.rel_path, entries = entries.len(), "unpacked");
                for e in entries {
                    let rel = if parent_rel.is_empty() {
                        e.rel_path.clone()
                    } else {
                        format!("{parent_rel}/{}", e.rel_path)
                    };
                    staged.push(Staged {
                        local: dest.join(&e.rel_path),
                        rel_path: rel,
                        size: e.size,
                    });
                }
            }
            None => staged.push(Staged {
                local: f.path.clone(),
                rel_path: f.rel_path.clone(),
                size: f.size,
            }),
        }
    }
    staged.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(Fetched {
        staged,
        digest: downloaded.digest,
        bytes_transferred: downloaded.bytes_transferred,
        _cache_lock: lock,
    })
}

/// An exclusive lock on an asset's cache directory (released when the file is dropped).
async fn lock_cache(cache: &Path) -> Result<std::fs::File, String> {
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let path = cache.join(".lock");
    let file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if file.try_lock().is_err() {
        tracing::info!(cache = %cache.display(), "another run is fetching this asset; waiting for it");
        let waiting = file.try_clone().map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(move || waiting.lock())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("locking {}: {e}", path.display()))?;
    }
    Ok(file)
}

fn archive_stem(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    for ext in [".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s.to_string();
        }
    }
    name.to_string()
}

/// Copies the staged tree into `dir` (the toolkit's local directory) and marks it as ours.
pub fn keep_local_copy(staged: &[Staged], dir: &Path, marker: &Marker) -> Result<(), String> {
    for s in staged {
        let target = dir.join(&s.rel_path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::copy(&s.local, &target)
            .map_err(|e| format!("copying to {}: {e}", target.display()))?;
    }
    let json = serde_json::to_vec_pretty(marker).expect("marker serializes");
    std::fs::write(dir.join(MARKER), json).map_err(|e| format!("{}: {e}", dir.display()))
}

/// Removes a local copy only if it is the one this asset wrote.
pub fn remove_local_copy(dir: &Path, digest: &str) -> Result<bool, String> {
    let Ok(bytes) = std::fs::read(dir.join(MARKER)) else {
        return Ok(false);
    };
    match serde_json::from_slice::<Marker>(&bytes) {
        Ok(m) if m.digest == digest => std::fs::remove_dir_all(dir)
            .map(|_| true)
            .map_err(|e| format!("{}: {e}", dir.display())),
        _ => Ok(false),
    }
}

/// Uploads every staged file under `prefix`, skipping unchanged blobs, then writes the marker.
pub async fn upload(
    ds: &Datastore,
    prefix: &str,
    staged: &[Staged],
    marker_base: Marker,
) -> Result<(Marker, u64), String> {
    if ds.owns_account {
        ds.blob
            .ensure_container(&ds.container)
            .await
            .map_err(|e| e.to_string())?;
    }
    let metadata: BTreeMap<String, String> =
        [(DIGEST_METADATA.to_string(), marker_base.digest.clone())].into();
    let total: u64 = staged.iter().map(|s| s.size).sum();
    let started = Instant::now();
    let mut files = Vec::with_capacity(staged.len());
    let mut sent = 0u64;
    let mut last_log = Instant::now();
    for s in staged {
        let name = blob_name(prefix, &s.rel_path);
        let out = ds
            .blob
            .upload_file(&ds.container, &name, &s.local, &metadata)
            .await
            .map_err(|e| format!("uploading {}: {e}", s.rel_path))?;
        sent += out.bytes_sent;
        files.push(MarkerFile {
            path: s.rel_path.clone(),
            size: s.size,
            md5: hex(&out.md5),
        });
        if last_log.elapsed() > Duration::from_secs(2) || files.len() == staged.len() {
            last_log = Instant::now();
            tracing::info!(
                files = files.len(),
                total_files = staged.len(),
                bytes_sent = sent,
                total_bytes = total,
                mb_per_s = format!(
                    "{:.1}",
                    sent as f64 / 1e6 / started.elapsed().as_secs_f64().max(0.001)
                ),
                "uploading to datastore {}: {}/{} files",
                ds.name,
                files.len(),
                staged.len()
            );
        }
    }
    let marker = Marker {
        files,
        ..marker_base
    };
    write_marker(ds, prefix, &marker).await?;
    Ok((marker, sent))
}

/// Writes (or rewrites) the completion marker of a complete upload.
pub async fn write_marker(ds: &Datastore, prefix: &str, marker: &Marker) -> Result<(), String> {
    let metadata: BTreeMap<String, String> =
        [(DIGEST_METADATA.to_string(), marker.digest.clone())].into();
    let json = serde_json::to_vec_pretty(marker).expect("marker serializes");
    ds.blob
        .put_bytes(
            &ds.container,
            &blob_name(prefix, MARKER),
            json,
            "application/json",
            &metadata,
        )
        .await
        .map_err(|e| format!("writing the completion marker: {e}"))
}

/// The marker, if the asset's upload completed.
pub async fn read_marker(ds: &Datastore, prefix: &str) -> Result<Option<Marker>, String> {
    match ds
        .blob
        .get_bytes(&ds.container, &blob_name(prefix, MARKER))
        .await
    {
        Ok(Some(bytes)) => Ok(serde_json::from_slice(&bytes).ok()),
        Ok(None) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// Whether every file the marker lists is still in storage with the same content.
pub async fn intact(ds: &Datastore, prefix: &str, marker: &Marker) -> Result<bool, String> {
    let listed = ds
        .blob
        .list(&ds.container, &format!("{}/", prefix.trim_end_matches('/')))
        .await
        .map_err(|e| e.to_string())?;
    let present: BTreeMap<&str, (u64, Option<String>)> = listed
        .iter()
        .map(|b| (b.name.as_str(), (b.size, b.md5.map(|m| hex(&m)))))
        .collect();
    Ok(marker.files.iter().all(|f| {
        let name = blob_name(prefix, &f.path);
        matches!(present.get(name.as_str()), Some((size, md5)) if *size == f.size && md5.as_deref().is_none_or(|m| m == f.md5))
    }))
}

/// Deletes exactly the blobs this asset wrote: those carrying its digest, marker last.
pub async fn delete(ds: &Datastore, prefix: &str, digest: &str) -> Result<usize, String> {
    let listed = ds
        .blob
        .list(&ds.container, &format!("{}/", prefix.trim_end_matches('/')))
        .await
        .map_err(|e| e.to_string())?;
    let marker = blob_name(prefix, MARKER);
    let mut ours: Vec<&str> = listed
        .iter()
        .filter(|b| b.metadata.get(DIGEST_METADATA).map(String::as_str) == Some(digest))
        .map(|b| b.name.as_str())
        .collect();
    ours.sort_by_key(|n| *n == marker);
    for name in &ours {
        ds.blob
            .delete(&ds.container, name)
            .await
            .map_err(|e| format!("deleting {name}: {e}"))?;
    }
    Ok(ours.len())
}

pub fn blob_name(prefix: &str, rel: &str) -> String {
    format!(
        "{}/{}",
        prefix.trim_matches('/'),
        rel.trim_start_matches('/')
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
