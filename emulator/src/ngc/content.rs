//! File contents of served assets: static bytes, a deterministic pseudo-random stream of any
//! length (random access, so Range requests and multi-GiB files cost no memory), or bytes built
//! once on first use (archives). SHA-256 digests are computed lazily, once per file.

use std::sync::{Arc, OnceLock};

use base64::Engine;
use bytes::Bytes;

/// Chunk size used when streaming and hashing.
pub const CHUNK: usize = 256 * 1024;

pub type Builder = Arc<dyn Fn() -> Bytes + Send + Sync>;

#[derive(Clone)]
pub enum Content {
    Bytes(Bytes),
    /// `len` bytes of a counter-based SplitMix64 stream seeded with `seed`.
    Prng {
        seed: u64,
        len: u64,
    },
    /// Built on first use, then kept.
    Lazy {
        cell: Arc<OnceLock<Bytes>>,
        build: Builder,
    },
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Content::Bytes(b) => write!(f, "Bytes({})", b.len()),
            Content::Prng { seed, len } => write!(f, "Prng({seed:#x}, {len})"),
            Content::Lazy { .. } => f.write_str("Lazy"),
        }
    }
}

impl Content {
    pub fn text(s: impl Into<String>) -> Content {
        Content::Bytes(Bytes::from(s.into()))
    }

    pub fn prng(seed_material: &str, len: u64) -> Content {
        Content::Prng {
            seed: fnv1a64(seed_material.as_bytes()),
            len,
        }
    }

    pub fn lazy(build: impl Fn() -> Bytes + Send + Sync + 'static) -> Content {
        Content::Lazy {
            cell: Arc::new(OnceLock::new()),
            build: Arc::new(build),
        }
    }

    fn lazy_bytes(cell: &OnceLock<Bytes>, build: &Builder) -> Bytes {
        cell.get_or_init(|| build()).clone()
    }

    pub fn len(&self) -> u64 {
        match self {
            Content::Bytes(b) => b.len() as u64,
            Content::Prng { len, .. } => *len,
            Content::Lazy { cell, build } => Self::lazy_bytes(cell, build).len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `len` bytes from `offset` (clamped to the end).
    pub fn read(&self, offset: u64, len: usize) -> Bytes {
        let total = self.len();
        if offset >= total {
            return Bytes::new();
        }
        let len = (len as u64).min(total - offset) as usize;
        match self {
            Content::Bytes(b) => b.slice(offset as usize..offset as usize + len),
            Content::Prng { seed, .. } => Bytes::from(prng_bytes(*seed, offset, len)),
            Content::Lazy { cell, build } => {
                Self::lazy_bytes(cell, build).slice(offset as usize..offset as usize + len)
            }
        }
    }

    /// The whole content in memory (only for small files).
    pub fn all(&self) -> Bytes {
        self.read(0, self.len() as usize)
    }

    /// Raw SHA-256 of the whole content (streams; no full copy in memory).
    pub fn sha256(&self) -> [u8; 32] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        let total = self.len();
        let mut offset = 0u64;
        while offset < total {
            let chunk = self.read(offset, 4 * CHUNK);
            ctx.update(&chunk);
            offset += chunk.len() as u64;
        }
        let digest = ctx.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }
}

/// Standard base64 of a raw digest (NGC's `sha256_base64`).
pub fn b64(raw: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(raw)
}

pub fn sha256_b64(data: &[u8]) -> String {
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// FNV-1a, 64 bit: stable seed derivation from names.
pub fn fnv1a64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h = (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// SplitMix64 finalizer of `seed + index * golden`: the `index`-th 8-byte word of a stream.
#[inline]
fn word(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Bytes `[offset, offset + len)` of the stream: word `i` covers bytes `8i..8i+8`
/// (little-endian).
pub fn prng_bytes(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 16);
    let first = offset / 8;
    let skip = (offset % 8) as usize;
    let mut i = first;
    while out.len() < len + skip {
        out.extend_from_slice(&word(seed, i).to_le_bytes());
        i += 1;
    }
    out.drain(..skip);
    out.truncate(len);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prng_random_access_matches_sequential() {
        let c = Content::prng("a/b", 1000);
        let all = c.all();
        assert_eq!(all.len(), 1000);
        for (off, len) in [(0, 1), (3, 17), (8, 8), (999, 5), (500, 500)] {
            let part = c.read(off, len);
            let end = (off as usize + len).min(1000);
            assert_eq!(&part[..], &all[off as usize..end], "{off} {len}");
        }
        assert_ne!(Content::prng("a/c", 16).all(), c.read(0, 16));
    }

    #[test]
    fn sha256_streams() {
        let c = Content::prng("x", 3 * CHUNK as u64 + 7);
        assert_eq!(b64(&c.sha256()), sha256_b64(&c.all()));
        assert_eq!(
            sha256_b64(b""),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
