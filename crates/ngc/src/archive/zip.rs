//! Zip extraction.

use std::fs::File;
use std::path::Path;

use super::names::entry_path;
use super::{ArchiveError, Compressed, Extractor, RATIO_GRACE_BYTES, unsafe_entry};

/// Unix file-type bits (`st_mode & S_IFMT`) zip entries may carry.
const S_IFMT: u32 = 0o170000;
const S_IFREG: u32 = 0o100000;
const S_IFDIR: u32 = 0o040000;
const S_IFLNK: u32 = 0o120000;

pub(super) fn extract(archive: &Path, out: &mut Extractor) -> Result<(), ArchiveError> {
    let corrupt = |detail: String| ArchiveError::Corrupt {
        archive: archive.to_path_buf(),
        kind: "zip",
        detail,
    };
    let file = File::open(archive).map_err(ArchiveError::io("open", archive))?;
    let archive_len = file
        .metadata()
        .map_err(ArchiveError::io("inspect", archive))?
        .len();
    let mut zip = ::zip::ZipArchive::new(file).map_err(|e| corrupt(e.to_string()))?;

    precheck(&mut zip, out, &corrupt)?;

    let overall = || archive_len;
    for i in 0..zip.len() {
        out.count_entry()?;
        let mut entry = zip.by_index(i).map_err(|e| corrupt(e.to_string()))?;
        let name = entry
            .name()
            .map(|n| n.into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(entry.name_raw()).into_owned());
        if entry.name_raw().contains(&0) {
            return Err(unsafe_entry(&name, "its name contains a NUL byte"));
        }
        let mode = entry.unix_mode();
        match mode.map(|m| m & S_IFMT) {
            None | Some(0) | Some(S_IFREG) | Some(S_IFDIR) => {}
            Some(S_IFLNK) => {
                return Err(unsafe_entry(
                    &name,
                    "it is a symbolic link; links are not unpacked",
                ));
            }
            Some(_) => return Err(unsafe_entry(&name, "it is a device file, FIFO or socket")),
        }
        if entry.encrypted() {
            return Err(unsafe_entry(&name, "it is encrypted"));
        }
        let Some(rel) = entry_path(&name).map_err(|reason| unsafe_entry(&name, reason))? else {
            continue;
        };
        let is_dir = entry.is_dir() || mode.is_some_and(|m| m & S_IFMT == S_IFDIR);
        if is_dir {
            out.add_dir(&rel, &name)?;
        } else {
            let compressed = Compressed {
                entry: Some(entry.compressed_size()),
                overall: &overall,
            };
            let executable = mode.is_some_and(|m| m & 0o111 != 0);
            out.add_file(&rel, &name, &mut entry, &compressed, executable)?;
        }
    }
    Ok(())
}

/// Refuses from the central directory alone what would certainly break a limit, before
/// writing a byte. Sizes there may lie; the streaming checks catch that.
fn precheck(
    zip: &mut ::zip::ZipArchive<File>,
    out: &Extractor,
    corrupt: &dyn Fn(String) -> ArchiveError,
) -> Result<(), ArchiveError> {
    let limits = *out.limits();
    if zip.len() as u64 > limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            limit: limits.max_entries,
        });
    }
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(|e| corrupt(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        declared = declared.saturating_add(entry.size());
        if declared > limits.max_total_bytes {
            return Err(ArchiveError::TooLarge {
                entry: name,
                limit: limits.max_total_bytes,
            });
        }
        if entry.size() > RATIO_GRACE_BYTES
            && entry.size()
                > entry
                    .compressed_size()
                    .max(1)
                    .saturating_mul(limits.max_ratio)
        {
            return Err(ArchiveError::RatioExceeded {
                entry: name,
                limit: limits.max_ratio,
            });
        }
    }
    Ok(())
}
