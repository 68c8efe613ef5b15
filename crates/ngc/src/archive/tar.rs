//! Tar extraction, plain or through a gzip / bzip2 / xz decoder.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use ::tar::EntryType;

use super::names::entry_path;
use super::{
    ArchiveError, ArchiveKind, Compressed, Extractor, Limits, RATIO_GRACE_BYTES, unsafe_entry,
};

/// xz decoders allocate their dictionary up front; a hostile header could ask for 4 GiB.
const XZ_MEMORY_LIMIT_KIB: u32 = 512 * 1024;

pub(super) fn extract(
    archive: &Path,
    kind: ArchiveKind,
    out: &mut Extractor,
) -> Result<(), ArchiveError> {
    let kind_name = match kind {
        ArchiveKind::Tar => "tar",
        ArchiveKind::TarGz => "tar.gz",
        ArchiveKind::TarBz2 => "tar.bz2",
        ArchiveKind::TarXz => "tar.xz",
        ArchiveKind::Zip => "zip",
    };
    let corrupt = |detail: String| ArchiveError::Corrupt {
        archive: archive.to_path_buf(),
        kind: kind_name,
        detail,
    };
    let file = File::open(archive).map_err(ArchiveError::io("open", archive))?;
    let consumed = Rc::new(Cell::new(0u64));
    let counted = BufReader::new(Counting {
        inner: file,
        count: consumed.clone(),
    });
    let decoded: Box<dyn Read> = match kind {
        ArchiveKind::TarGz => Box::new(flate2::bufread::MultiGzDecoder::new(counted)),
        ArchiveKind::TarBz2 => Box::new(bzip2::bufread::MultiBzDecoder::new(counted)),
        ArchiveKind::TarXz => Box::new(lzma_rust2::XzReader::new_mem_limit(
            counted,
            true,
            XZ_MEMORY_LIMIT_KIB,
        )),
        _ => Box::new(counted),
    };
    // The guard bounds everything decoded, tar headers and GNU long names included (the
    // tar crate buffers those in memory), not just file contents.
    let guarded = RatioGuard {
        inner: decoded,
        consumed: consumed.clone(),
        produced: 0,
        limits: *out.limits(),
    };
    let mut tar = ::tar::Archive::new(guarded);
    let entries = tar.entries().map_err(|e| corrupt(e.to_string()))?;
    let overall = || consumed.get();
    for entry in entries {
        let mut entry = entry.map_err(|e| match ratio_guard_limit(&e) {
            Some(limit) => ArchiveError::RatioExceeded {
                entry: "(archive headers)".to_owned(),
                limit,
            },
            None => corrupt(e.to_string()),
        })?;
        out.count_entry()?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let entry_type = entry.header().entry_type();
        let refuse = |reason: &str| Err(unsafe_entry(&name, reason));
        let is_dir = match entry_type {
            // Pre-POSIX tars mark directories only by a trailing '/'.
            EntryType::Regular if name.ends_with('/') && entry.size() == 0 => true,
            EntryType::Regular | EntryType::Continuous => false,
            EntryType::Directory => true,
            EntryType::XGlobalHeader => continue, // pax metadata for the whole archive
            EntryType::Symlink => return refuse("it is a symbolic link; links are not unpacked"),
            EntryType::Link => return refuse("it is a hard link; links are not unpacked"),
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                return refuse("it is a device file or FIFO");
            }
            EntryType::GNUSparse => return refuse("it is a sparse file, which is not supported"),
            other => {
                return refuse(&format!(
                    "it has unsupported tar entry type {:?}",
                    other.as_byte() as char
                ));
            }
        };
        if std::str::from_utf8(&raw).is_err() {
            return refuse("its name is not valid UTF-8");
        }
        let Some(rel) = entry_path(&name).map_err(|reason| unsafe_entry(&name, reason))? else {
            continue;
        };
        if is_dir {
            out.add_dir(&rel, &name)?;
        } else {
            let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
            let compressed = Compressed {
                entry: None,
                overall: &overall,
            };
            out.add_file(&rel, &name, &mut entry, &compressed, executable)?;
        }
    }
    Ok(())
}

/// Counts bytes read from the compressed file.
struct Counting<R> {
    inner: R,
    count: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// Fails the decoded stream once it outgrows the compressed input by more than the ratio
/// limit (after [`RATIO_GRACE_BYTES`]), or the total size limit plus room for headers.
struct RatioGuard<R> {
    inner: R,
    consumed: Rc<Cell<u64>>,
    produced: u64,
    limits: Limits,
}

/// Marks our own error inside the `io::Error` the tar crate hands back.
#[derive(Debug)]
struct RatioTripped(u64);

impl std::fmt::Display for RatioTripped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "decompressed data exceeds {}x the compressed size",
            self.0
        )
    }
}

impl std::error::Error for RatioTripped {}

/// The ratio limit, when `e` came from a [`RatioGuard`].
pub(super) fn ratio_guard_limit(e: &io::Error) -> Option<u64> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(s) = source {
        if let Some(t) = s.downcast_ref::<RatioTripped>() {
            return Some(t.0);
        }
        if let Some(io) = s.downcast_ref::<io::Error>() {
            source = io.get_ref().map(|r| r as _);
        } else {
            source = s.source();
        }
    }
    None
}

impl<R: Read> Read for RatioGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.produced += n as u64;
        let allowed = self
            .consumed
            .get()
            .max(1)
            .saturating_mul(self.limits.max_ratio)
            .max(RATIO_GRACE_BYTES);
        if self.produced > allowed {
            return Err(io::Error::other(RatioTripped(self.limits.max_ratio)));
        }
        Ok(n)
    }
}
