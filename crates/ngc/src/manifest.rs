//! What a resolved asset consists of, and its content digest.

use sha2::{Digest, Sha256};
use url::Url;

use crate::error::hex;
use crate::source::AssetRef;

/// One file of an NGC asset version, as the files listing describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// Relative, `/`-separated, already checked to stay inside the download directory
    /// (no `..`, no empty or `.` parts, no NUL or `\`; a leading `/` from NGC is dropped).
    pub path: String,
    /// `sizeInBytes`.
    pub size: u64,
    /// Decoded `sha256_base64`. `None` only when NGC listed no hash for the file: the
    /// download then records the hash it computed (and logs a warning) instead of verifying.
    pub sha256: Option<[u8; 32]>,
}

/// A download with nothing to verify in advance: NGC's `/zip` (used only when the files
/// listing is unavailable) or a plain https URL. The sha256 is computed while
/// downloading and reported in [`crate::DownloadedFile`]; a caller that knows it in
/// advance passes it to [`crate::NgcClient::resolve_url`] and it is then verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SingleFile {
    pub url: Url,
    /// Local file name (one path component).
    pub file_name: String,
    /// Whether NGC credentials go with the request (only ever to the NGC API origin).
    pub ngc_api: bool,
    pub expected_sha256: Option<[u8; 32]>,
}

/// The outcome of [`crate::NgcClient::resolve`]: exactly what [`crate::NgcClient::download`] fetches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedAsset {
    /// The NGC asset with its version filled in; `None` for a plain URL.
    pub asset: Option<AssetRef>,
    /// The verified file manifest, sorted by path. Empty when `single` is set.
    pub files: Vec<ManifestFile>,
    /// Set instead of `files` when there is no manifest (see [`SingleFile`]).
    pub single: Option<SingleFile>,
    /// Sum of `files` sizes; 0 when `single` is set (its size is unknown in advance).
    pub total_size: u64,
    /// [`manifest_digest`] of `files`; `None` when `single` is set (known only after the
    /// download, see [`crate::DownloadOutcome::digest`]).
    pub digest: Option<String>,
}

impl ResolvedAsset {
    pub(crate) fn from_manifest(asset: AssetRef, mut files: Vec<ManifestFile>) -> Self {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let total_size = files.iter().map(|f| f.size).sum();
        let digest = manifest_digest(
            files
                .iter()
                .map(|f| (f.path.as_str(), f.size, f.sha256.as_ref())),
        );
        ResolvedAsset {
            asset: Some(asset),
            files,
            single: None,
            total_size,
            digest: Some(digest),
        }
    }

    pub(crate) fn from_single(asset: Option<AssetRef>, single: SingleFile) -> Self {
        ResolvedAsset {
            asset,
            files: Vec::new(),
            single: Some(single),
            total_size: 0,
            digest: None,
        }
    }
}

/// Lower-case hex sha256 over the lines `"{path}\t{size}\t{sha256 hex}\n"` sorted by path
/// (`-` for an unknown hash). Stable across runs and independent of listing order, so it
/// tells whether an asset version's content changed.
pub fn manifest_digest<'a>(
    entries: impl IntoIterator<Item = (&'a str, u64, Option<&'a [u8; 32]>)>,
) -> String {
    let mut lines: Vec<String> = entries
        .into_iter()
        .map(|(path, size, sha)| {
            let sha = sha.map(|s| hex(s)).unwrap_or_else(|| "-".to_owned());
            format!("{path}\t{size}\t{sha}\n")
        })
        .collect();
    lines.sort();
    let mut h = Sha256::new();
    for line in &lines {
        h.update(line.as_bytes());
    }
    hex(&h.finalize())
}

/// Checks a path from an NGC listing and returns it normalised (leading `/` dropped, since
/// listings may root paths at `/` — ngcsdk strips it too).
pub(crate) fn safe_rel_path(raw: &str) -> Result<String, &'static str> {
    if raw.contains('\0') {
        return Err("it contains a NUL byte");
    }
    if raw.contains('\\') {
        return Err("it contains a backslash");
    }
    let rel = raw.trim_start_matches('/');
    if rel.is_empty() {
        return Err("it is empty");
    }
    for part in rel.split('/') {
        match part {
            "" => return Err("it has an empty path component"),
            "." | ".." => return Err("it has a '.' or '..' component"),
            _ => {}
        }
    }
    Ok(rel.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_ignores_order() {
        let a = [1u8; 32];
        let d1 = manifest_digest([("b", 2, Some(&a)), ("a", 1, None)]);
        let d2 = manifest_digest([("a", 1, None), ("b", 2, Some(&a))]);
        assert_eq!(d1, d2);
        assert_eq!(d1.len(), 64);
        assert_ne!(d1, manifest_digest([("a", 1, None), ("b", 3, Some(&a))]));
    }

    #[test]
    fn rel_paths() {
        assert_eq!(safe_rel_path("/models/m.pt").unwrap(), "models/m.pt");
        assert_eq!(safe_rel_path("config/a.json").unwrap(), "config/a.json");
        for bad in ["", "/", "a/../b", "../x", "a//b", "./a", "a\\b", "a\0b"] {
            assert!(safe_rel_path(bad).is_err(), "{bad:?}");
        }
    }
}
