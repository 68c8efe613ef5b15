//! Minimal archive writers for served assets: zip (stored or deflated entries, Unix modes so
//! symlinks can be expressed, optional lying size fields) and ustar tar (files, symlinks,
//! hard links). Hand-written so hostile archives (`../` names, absolute names, symlink
//! escapes, duplicates, bombs) can be produced exactly.

use bytes::Bytes;
use flate2::{Compress, Compression, FlushCompress};

/// 2020-09-01 12:00:00 in MS-DOS format (the blog post's date).
pub const DOS_TIME: u16 = 12 << 11;
pub const DOS_DATE: u16 = ((2020 - 1980) << 9) | (9 << 5) | 1;
/// 2020-09-01T12:00:00Z as a Unix time (tar mtime).
const UNIX_MTIME: u64 = 1_598_961_600;

pub const S_IFREG: u32 = 0o100_000;
pub const S_IFLNK: u32 = 0o120_000;

pub enum EntryData {
    /// Uncompressed bytes; stored or deflated when written.
    Raw { data: Bytes, deflate: bool },
    /// Already deflated bytes with their CRC and uncompressed size (zip bombs).
    Deflated {
        compressed: Vec<u8>,
        crc: u32,
        size: u64,
    },
}

pub struct ZipEntry {
    pub name: String,
    pub data: EntryData,
    /// Unix mode including the file type (`S_IFREG | 0o644`, `S_IFLNK | 0o777`).
    pub mode: u32,
    /// Write this uncompressed size into both headers instead of the real one.
    pub lie_size: Option<u32>,
}

impl ZipEntry {
    pub fn file(name: &str, data: impl Into<Bytes>) -> ZipEntry {
        ZipEntry {
            name: name.into(),
            data: EntryData::Raw {
                data: data.into(),
                deflate: false,
            },
            mode: S_IFREG | 0o644,
            lie_size: None,
        }
    }

    pub fn deflated(name: &str, data: impl Into<Bytes>) -> ZipEntry {
        ZipEntry {
            data: EntryData::Raw {
                data: data.into(),
                deflate: true,
            },
            ..ZipEntry::file(name, Bytes::new())
        }
    }

    pub fn symlink(name: &str, target: &str) -> ZipEntry {
        ZipEntry {
            mode: S_IFLNK | 0o777,
            ..ZipEntry::file(name, Bytes::from(target.to_string()))
        }
    }
}

pub fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    loop {
        let consumed = c.total_in() as usize;
        out.reserve(64 * 1024);
        let status = c
            .compress_vec(&data[consumed..], &mut out, FlushCompress::Finish)
            .expect("deflate");
        if status == flate2::Status::StreamEnd {
            return out;
        }
    }
}

/// Raw deflate of `size` zero bytes, built chunk by chunk (small in memory and on the wire:
/// about 1 KiB per MiB).
pub fn deflate_zeros(size: u64) -> (Vec<u8>, u32) {
    let zeros = vec![0u8; 1 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let mut out = Vec::with_capacity((size / 1000) as usize + 1024);
    let mut crc = crc32fast::Hasher::new();
    let mut fed = 0u64;
    while fed < size {
        let n = (size - fed).min(zeros.len() as u64) as usize;
        let chunk = &zeros[..n];
        crc.update(chunk);
        let start = c.total_in();
        while c.total_in() - start < n as u64 {
            let done = (c.total_in() - start) as usize;
            out.reserve(64 * 1024);
            c.compress_vec(&chunk[done..], &mut out, FlushCompress::None)
                .expect("deflate");
        }
        fed += n as u64;
    }
    loop {
        out.reserve(64 * 1024);
        if c.compress_vec(&[], &mut out, FlushCompress::Finish)
            .expect("deflate")
            == flate2::Status::StreamEnd
        {
            break;
        }
    }
    (out, crc.finalize())
}

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Fields shared by a local header and its central-directory record.
pub struct Header<'a> {
    pub name: &'a str,
    pub method: u16,
    pub flags: u16,
    pub crc: u32,
    pub csize: u32,
    pub usize: u32,
    pub mode: u32,
}

pub fn local_header(h: &Header<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(30 + h.name.len());
    put32(&mut out, 0x0403_4b50);
    put16(&mut out, 20);
    put16(&mut out, h.flags);
    put16(&mut out, h.method);
    put16(&mut out, DOS_TIME);
    put16(&mut out, DOS_DATE);
    put32(&mut out, h.crc);
    put32(&mut out, h.csize);
    put32(&mut out, h.usize);
    put16(&mut out, h.name.len() as u16);
    put16(&mut out, 0);
    out.extend_from_slice(h.name.as_bytes());
    out
}

pub fn data_descriptor(crc: u32, csize: u32, usize: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(16);
    put32(&mut out, 0x0807_4b50);
    put32(&mut out, crc);
    put32(&mut out, csize);
    put32(&mut out, usize);
    out
}

pub fn central_header(h: &Header<'_>, offset: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(46 + h.name.len());
    put32(&mut out, 0x0201_4b50);
    put16(&mut out, 0x031e); // made by: Unix, spec 3.0
    put16(&mut out, 20);
    put16(&mut out, h.flags);
    put16(&mut out, h.method);
    put16(&mut out, DOS_TIME);
    put16(&mut out, DOS_DATE);
    put32(&mut out, h.crc);
    put32(&mut out, h.csize);
    put32(&mut out, h.usize);
    put16(&mut out, h.name.len() as u16);
    put16(&mut out, 0); // extra
    put16(&mut out, 0); // comment
    put16(&mut out, 0); // disk
    put16(&mut out, 0); // internal attributes
    put32(&mut out, h.mode << 16);
    put32(&mut out, offset);
    out.extend_from_slice(h.name.as_bytes());
    out
}

pub fn end_of_central_directory(entries: usize, cd_size: u32, cd_offset: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(22);
    put32(&mut out, 0x0605_4b50);
    put16(&mut out, 0);
    put16(&mut out, 0);
    put16(&mut out, entries as u16);
    put16(&mut out, entries as u16);
    put32(&mut out, cd_size);
    put32(&mut out, cd_offset);
    put16(&mut out, 0);
    out
}

/// A complete zip archive in memory (no zip64: each entry and the whole archive must stay
/// below 4 GiB).
pub fn zip(entries: &[ZipEntry]) -> Bytes {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for e in entries {
        let (method, crc, payload, real_size): (u16, u32, std::borrow::Cow<'_, [u8]>, u64) =
            match &e.data {
                EntryData::Raw { data, deflate: d } => {
                    let crc = crc32fast::hash(data);
                    if *d {
                        (8, crc, deflate(data).into(), data.len() as u64)
                    } else {
                        (0, crc, data[..].into(), data.len() as u64)
                    }
                }
                EntryData::Deflated {
                    compressed,
                    crc,
                    size,
                } => (8, *crc, compressed[..].into(), *size),
            };
        let h = Header {
            name: &e.name,
            method,
            flags: 0x0800,
            crc,
            csize: payload.len() as u32,
            usize: e.lie_size.unwrap_or(real_size as u32),
            mode: e.mode,
        };
        let offset = out.len() as u32;
        out.extend_from_slice(&local_header(&h));
        out.extend_from_slice(&payload);
        central.extend_from_slice(&central_header(&h, offset));
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(&end_of_central_directory(entries.len(), cd_size, cd_offset));
    Bytes::from(out)
}

// ---- tar ------------------------------------------------------------------------------------

pub enum TarKind {
    File(Bytes),
    Dir,
    Symlink(String),
    Hardlink(String),
}

pub struct TarEntry {
    pub name: String,
    pub kind: TarKind,
}

impl TarEntry {
    pub fn file(name: &str, data: impl Into<Bytes>) -> TarEntry {
        TarEntry {
            name: name.into(),
            kind: TarKind::File(data.into()),
        }
    }
    pub fn dir(name: &str) -> TarEntry {
        TarEntry {
            name: name.into(),
            kind: TarKind::Dir,
        }
    }
    pub fn symlink(name: &str, target: &str) -> TarEntry {
        TarEntry {
            name: name.into(),
            kind: TarKind::Symlink(target.into()),
        }
    }
    pub fn hardlink(name: &str, target: &str) -> TarEntry {
        TarEntry {
            name: name.into(),
            kind: TarKind::Hardlink(target.into()),
        }
    }
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let s = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

fn text(field: &mut [u8], value: &str) {
    let b = value.as_bytes();
    let n = b.len().min(field.len());
    field[..n].copy_from_slice(&b[..n]);
}

/// A ustar archive (names up to 100 bytes).
pub fn tar(entries: &[TarEntry]) -> Bytes {
    let mut out = Vec::new();
    for e in entries {
        let mut h = [0u8; 512];
        text(&mut h[0..100], &e.name);
        let (mode, size, flag, link): (u64, u64, u8, &str) = match &e.kind {
            TarKind::File(d) => (0o644, d.len() as u64, b'0', ""),
            TarKind::Dir => (0o755, 0, b'5', ""),
            TarKind::Symlink(t) => (0o777, 0, b'2', t),
            TarKind::Hardlink(t) => (0o644, 0, b'1', t),
        };
        octal(&mut h[100..108], mode);
        octal(&mut h[108..116], 1000);
        octal(&mut h[116..124], 1000);
        octal(&mut h[124..136], size);
        octal(&mut h[136..148], UNIX_MTIME);
        h[148..156].fill(b' ');
        h[156] = flag;
        text(&mut h[157..257], link);
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        text(&mut h[265..297], "clara");
        text(&mut h[297..329], "clara");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        out.extend_from_slice(&h);
        if let TarKind::File(d) = &e.kind {
            out.extend_from_slice(d);
            let pad = (512 - d.len() % 512) % 512;
            out.extend(std::iter::repeat_n(0u8, pad));
        }
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zip_layout() {
        let z = zip(&[
            ZipEntry::file("a.txt", Bytes::from_static(b"hello")),
            ZipEntry::deflated("b.txt", Bytes::from(vec![b'x'; 1000])),
            ZipEntry::symlink("l", "/etc"),
        ]);
        assert_eq!(&z[..4], b"PK\x03\x04");
        let eocd = &z[z.len() - 22..];
        assert_eq!(&eocd[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([eocd[10], eocd[11]]), 3);
        // stored entry's bytes are verbatim right after its 30+5 byte header
        assert_eq!(&z[35..40], b"hello");
    }

    #[test]
    fn zeros_deflate_small() {
        let (c, crc) = deflate_zeros(8 << 20);
        assert!(c.len() < 64 * 1024, "{}", c.len());
        assert_eq!(crc, crc32fast::hash(&vec![0u8; 8 << 20]));
        let mut d = flate2::Decompress::new(false);
        let mut out = Vec::with_capacity(8 << 20);
        d.decompress_vec(&c, &mut out, flate2::FlushDecompress::Finish)
            .unwrap();
        assert_eq!(out.len(), 8 << 20);
    }

    #[test]
    fn tar_checksum_and_padding() {
        let t = tar(&[
            TarEntry::file("a", Bytes::from_static(b"abc")),
            TarEntry::symlink("l", "/etc"),
        ]);
        assert_eq!(t.len(), 512 * 2 + 512 + 1024);
        assert_eq!(&t[257..263], b"ustar\0");
        let mut h = t[..512].to_vec();
        let stored = std::str::from_utf8(&h[148..154]).unwrap().to_string();
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        assert_eq!(u32::from_str_radix(&stored, 8).unwrap(), sum);
    }
}
