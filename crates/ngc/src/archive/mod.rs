//! Unpacking downloaded archives (zip, tar, tar.gz, tar.bz2, tar.xz) without trusting them.
//!
//! Refused outright, naming the entry: absolute paths (`/x`, `C:x`), any `..` component,
//! NUL bytes, non-UTF-8 names, symbolic and hard links (links are never needed in a model
//! archive and are the usual way out of the destination, so none are created at all),
//! device files and FIFOs, sparse and unknown tar entry types, and duplicate entries.
//! `\` counts as a path separator; `.` components and a leading `./` are ignored.
//!
//! Limits ([`Limits`]) are enforced on bytes actually written, not on header claims, so
//! lying headers do not help: the entry count, total size, and the compression ratio per
//! zip entry and overall (decompressed bytes over compressed bytes read so far). The first
//! [`RATIO_GRACE_BYTES`] are exempt from the ratio so small, very compressible files (empty
//! configs, zero padding) pass. Zip's declared sizes are also checked up front, so an
//! honest bomb is refused before anything is written.
//!
//! Everything is written to a fresh temporary directory beside `dest` that is renamed to
//! `dest` only on success; a failed unpack leaves nothing behind.

mod names;
mod tar;
mod zip;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Bytes of output exempt from the ratio limit.
pub const RATIO_GRACE_BYTES: u64 = 1 << 20;
const COPY_BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries of any kind (files and directories).
    pub max_entries: u64,
    /// Sum of the sizes of all files written.
    pub max_total_bytes: u64,
    /// Largest uncompressed/compressed ratio, per zip entry and for the whole archive.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 100_000,
            max_total_bytes: 64 << 30,
            max_ratio: 200,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArchiveKind {
    Zip,
    Tar,
    TarGz,
    TarBz2,
    TarXz,
}

impl ArchiveKind {
    /// From the file name's extension (case-insensitive): `.zip`, `.tar`, `.tar.gz`/`.tgz`,
    /// `.tar.bz2`/`.tbz2`/`.tbz`, `.tar.xz`/`.txz`. `None` for anything else.
    pub fn detect(file_name: &str) -> Option<Self> {
        let name = file_name.to_ascii_lowercase();
        let table: [(&str, ArchiveKind); 9] = [
            (".tar.gz", ArchiveKind::TarGz),
            (".tgz", ArchiveKind::TarGz),
            (".tar.bz2", ArchiveKind::TarBz2),
            (".tbz2", ArchiveKind::TarBz2),
            (".tbz", ArchiveKind::TarBz2),
            (".tar.xz", ArchiveKind::TarXz),
            (".txz", ArchiveKind::TarXz),
            (".tar", ArchiveKind::Tar),
            (".zip", ArchiveKind::Zip),
        ];
        table
            .into_iter()
            .find(|(ext, _)| name.ends_with(ext) && name.len() > ext.len())
            .map(|(_, kind)| kind)
    }
}

/// One regular file written by [`unpack`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedFile {
    /// `/`-separated, relative to `dest` (after `strip_root`).
    pub rel_path: String,
    /// Bytes actually written.
    pub size: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{archive} is not a valid {kind} archive: {detail}")]
    Corrupt {
        archive: PathBuf,
        kind: &'static str,
        detail: String,
    },
    #[error("refusing archive entry {entry:?}: {reason}")]
    UnsafeEntry { entry: String, reason: String },
    #[error("archive has more than {limit} entries; refusing to unpack it")]
    TooManyEntries { limit: u64 },
    #[error(
        "archive unpacks to more than {limit} bytes (reached at entry {entry:?}); refusing to unpack it"
    )]
    TooLarge { entry: String, limit: u64 },
    #[error(
        "archive entry {entry:?} expands more than {limit}x its compressed size, which looks like a \
         zip bomb; refusing to unpack it"
    )]
    RatioExceeded { entry: String, limit: u64 },
    #[error("cannot unpack into {path}: it already exists and is not empty")]
    DestinationExists { path: PathBuf },
}

impl ArchiveError {
    fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> ArchiveError {
        let path = path.into();
        move |source| ArchiveError::Io {
            action,
            path,
            source,
        }
    }
}

/// Unpacks `archive` (of `kind`) into `dest`, which must not exist or be an empty directory.
///
/// `strip_root`: when every entry lies under one top-level folder (and nothing else is at
/// the top), its contents become `dest` (avoiding `dest/name/name/…`, as azureml-ngc-tools
/// does); otherwise the archive is unpacked as is — real NGC zips usually have no top
/// folder, so this is not an error. Returns the files written, sorted by path.
pub fn unpack(
    archive: &Path,
    dest: &Path,
    kind: ArchiveKind,
    strip_root: bool,
    limits: &Limits,
) -> Result<Vec<UnpackedFile>, ArchiveError> {
    prepare_destination(dest)?;
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{stem}.unpack-"))
        .tempdir_in(&parent)
        .map_err(ArchiveError::io("create a temporary directory in", &parent))?;

    let mut out = Extractor::new(staging.path().to_path_buf(), *limits);
    match kind {
        ArchiveKind::Zip => zip::extract(archive, &mut out)?,
        _ => tar::extract(archive, kind, &mut out)?,
    }
    let mut files = out.files;

    let (source, stripped) = match strip_root
        .then(|| single_top_folder(staging.path()))
        .transpose()?
    {
        Some(Some(top)) => (staging.path().join(&top), Some(top)),
        _ => (staging.path().to_path_buf(), None),
    };
    if let Some(top) = &stripped {
        let prefix = format!("{top}/");
        for f in &mut files {
            if let Some(rest) = f.rel_path.strip_prefix(&prefix) {
                f.rel_path = rest.to_owned();
            }
        }
    }
    std::fs::rename(&source, dest).map_err(ArchiveError::io("move the unpacked files to", dest))?;
    if stripped.is_some() {
        drop(staging); // removes the now empty shell around the stripped folder
    } else {
        let _ = staging.keep(); // it *is* `dest` now: nothing left to clean up
    }
    files.sort_by(|a, b| a.rel_path.cmp(&b.rel_path));
    Ok(files)
}

/// `dest` must be absent or an empty directory (removed here so the rename can take its place).
fn prepare_destination(dest: &Path) -> Result<(), ArchiveError> {
    match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ArchiveError::io("inspect", dest)(e)),
        Ok(meta) if meta.is_dir() => {
            let mut entries = std::fs::read_dir(dest).map_err(ArchiveError::io("read", dest))?;
            if entries.next().is_some() {
                return Err(ArchiveError::DestinationExists {
                    path: dest.to_path_buf(),
                });
            }
            std::fs::remove_dir(dest).map_err(ArchiveError::io("replace empty directory", dest))?;
        }
        Ok(_) => {
            return Err(ArchiveError::DestinationExists {
                path: dest.to_path_buf(),
            });
        }
    }
    if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(ArchiveError::io("create directory", parent))?;
    }
    Ok(())
}

/// The name of the only top-level entry of `dir` when it is a directory.
fn single_top_folder(dir: &Path) -> Result<Option<String>, ArchiveError> {
    let mut top = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(ArchiveError::io("read", dir))? {
        let entry = entry.map_err(ArchiveError::io("read", dir))?;
        top.push(entry);
        if top.len() > 1 {
            return Ok(None);
        }
    }
    match top.pop() {
        Some(e) if e.file_type().is_ok_and(|t| t.is_dir()) => {
            Ok(e.file_name().to_str().map(str::to_owned))
        }
        _ => Ok(None),
    }
}

/// Writes validated entries under `root` while keeping count of everything limited.
pub(crate) struct Extractor {
    root: PathBuf,
    limits: Limits,
    entries: u64,
    total: u64,
    /// Every path created, with whether it is a directory: catches duplicates and
    /// file/directory clashes.
    seen: HashMap<String, bool>,
    files: Vec<UnpackedFile>,
}

/// How much compressed input a file's bytes came from, for the ratio limit.
pub(crate) struct Compressed<'a> {
    /// The entry's own compressed size (zip), if known.
    pub entry: Option<u64>,
    /// Compressed bytes of the whole archive consumed so far.
    pub overall: &'a dyn Fn() -> u64,
}

impl Extractor {
    fn new(root: PathBuf, limits: Limits) -> Self {
        Extractor {
            root,
            limits,
            entries: 0,
            total: 0,
            seen: HashMap::new(),
            files: Vec::new(),
        }
    }

    /// Counts one entry against `max_entries`.
    pub(crate) fn count_entry(&mut self) -> Result<(), ArchiveError> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                limit: self.limits.max_entries,
            });
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Records `rel` (and its parents, as directories), refusing duplicates and clashes.
    fn claim(&mut self, rel: &str, is_dir: bool, entry: &str) -> Result<(), ArchiveError> {
        let mut prefix = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(part);
            let last = i + 1 == parts.len();
            match (self.seen.get(&prefix), last) {
                (Some(false), false) => {
                    return Err(unsafe_entry(
                        entry,
                        format!("its parent {prefix:?} is a file in the archive"),
                    ));
                }
                (Some(true), true) if is_dir => return Ok(()), // a directory repeated is harmless
                (Some(true), true) => {
                    return Err(unsafe_entry(
                        entry,
                        "a directory of the same name is also in the archive",
                    ));
                }
                (Some(false), true) => {
                    return Err(unsafe_entry(
                        entry,
                        "it appears more than once in the archive",
                    ));
                }
                (None, _) => {
                    self.seen.insert(prefix.clone(), !last || is_dir);
                }
                (Some(true), false) => {}
            }
        }
        Ok(())
    }

    pub(crate) fn add_dir(&mut self, rel: &str, entry: &str) -> Result<(), ArchiveError> {
        self.claim(rel, true, entry)?;
        let path = self.local(rel);
        std::fs::create_dir_all(&path).map_err(ArchiveError::io("create directory", path))
    }

    /// Streams `reader` into `rel`, stopping as soon as a limit is crossed.
    pub(crate) fn add_file(
        &mut self,
        rel: &str,
        entry: &str,
        reader: &mut dyn Read,
        compressed: &Compressed<'_>,
        executable: bool,
    ) -> Result<(), ArchiveError> {
        self.claim(rel, false, entry)?;
        let path = self.local(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(ArchiveError::io("create directory", parent))?;
        }
        // `create_new`: never write through anything already there.
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(ArchiveError::io("create", &path))?;
        let mut buf = vec![0u8; COPY_BUFFER];
        let mut written = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(|e| read_error(entry, e))?;
            if n == 0 {
                break;
            }
            written += n as u64;
            self.total += n as u64;
            self.check_growth(entry, written, compressed)?;
            file.write_all(&buf[..n])
                .map_err(ArchiveError::io("write", &path))?;
        }
        set_executable(&file, executable);
        self.files.push(UnpackedFile {
            rel_path: rel.to_owned(),
            size: written,
        });
        Ok(())
    }

    fn check_growth(
        &self,
        entry: &str,
        written: u64,
        compressed: &Compressed<'_>,
    ) -> Result<(), ArchiveError> {
        let limits = &self.limits;
        if self.total > limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                entry: entry.to_owned(),
                limit: limits.max_total_bytes,
            });
        }
        let over = |out: u64, input: u64| {
            out > RATIO_GRACE_BYTES && out > input.max(1).saturating_mul(limits.max_ratio)
        };
        if compressed.entry.is_some_and(|c| over(written, c))
            || over(self.total, (compressed.overall)())
        {
            return Err(ArchiveError::RatioExceeded {
                entry: entry.to_owned(),
                limit: limits.max_ratio,
            });
        }
        Ok(())
    }

    fn local(&self, rel: &str) -> PathBuf {
        rel.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
    }
}

pub(crate) fn unsafe_entry(entry: &str, reason: impl Into<String>) -> ArchiveError {
    ArchiveError::UnsafeEntry {
        entry: entry.to_owned(),
        reason: reason.into(),
    }
}

/// A failed read inside an entry: our own ratio guard (see `tar.rs`) or a corrupt stream.
fn read_error(entry: &str, e: std::io::Error) -> ArchiveError {
    if let Some(limit) = tar::ratio_guard_limit(&e) {
        return ArchiveError::RatioExceeded {
            entry: entry.to_owned(),
            limit,
        };
    }
    ArchiveError::UnsafeEntry {
        entry: entry.to_owned(),
        reason: format!("its data cannot be read: {e}"),
    }
}

#[cfg(unix)]
fn set_executable(file: &File, executable: bool) {
    use std::os::unix::fs::PermissionsExt;
    // Keep shell scripts (MMAR `commands/*.sh`) runnable; nothing else is preserved.
    if executable {
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o755));
    }
}

#[cfg(not(unix))]
fn set_executable(_file: &File, _executable: bool) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_kinds() {
        assert_eq!(ArchiveKind::detect("m_v1.zip"), Some(ArchiveKind::Zip));
        assert_eq!(ArchiveKind::detect("X.TAR.GZ"), Some(ArchiveKind::TarGz));
        assert_eq!(ArchiveKind::detect("x.tgz"), Some(ArchiveKind::TarGz));
        assert_eq!(ArchiveKind::detect("x.tar.bz2"), Some(ArchiveKind::TarBz2));
        assert_eq!(ArchiveKind::detect("x.txz"), Some(ArchiveKind::TarXz));
        assert_eq!(ArchiveKind::detect("x.tar"), Some(ArchiveKind::Tar));
        assert_eq!(ArchiveKind::detect("model.pt"), None);
        assert_eq!(ArchiveKind::detect(".zip"), None);
        assert_eq!(ArchiveKind::detect("x.gz"), None);
    }
}
