//! Small helpers: clocks, timestamps, identifiers, ISO-8601 durations, atomic file writes.

use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since the Unix epoch (wall clock; deadlines survive restarts).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 UTC timestamp for a millisecond epoch value, e.g. `2025-01-02T03:04:05.678Z`.
pub fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string())
}

pub fn is_rfc3339(s: &str) -> bool {
    OffsetDateTime::parse(s, &Rfc3339).is_ok()
}

/// Random GUID in the canonical 8-4-4-4-12 form (version 4 bits set).
pub fn new_guid() -> String {
    guid_from_u128(rand::random::<u128>())
}

/// Deterministic GUID derived from a string (FNV-1a based; stable across runs).
pub fn stable_guid(seed: &str) -> String {
    let mut h1: u64 = 0xcbf2_9ce4_8422_2325;
    let mut h2: u64 = 0x8422_2325_cbf2_9ce4;
    for b in seed.bytes() {
        h1 = (h1 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        h2 = (h2 ^ u64::from(b))
            .wrapping_mul(0x100_0000_01b3)
            .rotate_left(7);
    }
    guid_from_u128((u128::from(h1) << 64) | u128::from(h2))
}

fn guid_from_u128(v: u128) -> String {
    let v = (v & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let s = format!("{v:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

/// Random opaque bearer token (256 bits, base64url).
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Validates an ISO-8601 duration such as `PT300S`, `PT5M`, `P1DT2H`, `PT0.5S`.
pub fn is_iso8601_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let date_ok = designators_ok(date, &['Y', 'M', 'W', 'D'], false);
    let time_ok = match time {
        None => true,
        Some(t) => !t.is_empty() && designators_ok(t, &['H', 'M', 'S'], true),
    };
    date_ok && time_ok && (!date.is_empty() || time.is_some())
}

/// `part` is a sequence of `<number><designator>` with designators in the given order.
fn designators_ok(part: &str, order: &[char], allow_fraction_last: bool) -> bool {
    let mut idx = 0usize;
    let mut num = String::new();
    for c in part.chars() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let Some(pos) = order[idx..].iter().position(|d| *d == c) else {
            return false;
        };
        let is_last = idx + pos == order.len() - 1;
        let valid_num = !num.is_empty()
            && !num.starts_with('.')
            && !num.ends_with('.')
            && (num.matches('.').count() == 0
                || (allow_fraction_last && is_last && num.matches('.').count() == 1));
        if !valid_num {
            return false;
        }
        num.clear();
        idx += pos + 1;
    }
    num.is_empty()
}

/// Writes `contents` to `path` atomically (temporary file in the same directory + rename).
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{file_name}.tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Lower-cases a location and strips spaces (`East US` -> `eastus`).
pub fn normalize_location(loc: &str) -> String {
    loc.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        for ok in [
            "PT300S", "PT5M", "P1D", "P1DT2H", "PT0.5S", "PT1H30M", "P1W",
        ] {
            assert!(is_iso8601_duration(ok), "{ok}");
        }
        for bad in [
            "", "P", "PT", "300", "PT5X", "5M", "PTM", "PT1.S", "PT1M2H", "P1.5D",
        ] {
            assert!(!is_iso8601_duration(bad), "{bad}");
        }
    }

    #[test]
    fn guids() {
        let g = new_guid();
        assert_eq!(g.len(), 36);
        assert_eq!(&g[14..15], "4");
        assert_eq!(stable_guid("a"), stable_guid("a"));
        assert_ne!(stable_guid("a"), stable_guid("b"));
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert!(is_rfc3339(&rfc3339(now_ms())));
    }
}
