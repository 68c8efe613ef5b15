//! `unpack` against well-formed and hostile archives built in the test.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clara_ngc::archive::{ArchiveError, ArchiveKind, Limits, unpack};
use zip::write::SimpleFileOptions;

/// (path, contents); a path ending in '/' is a directory.
type Entries<'a> = &'a [(&'a str, &'a [u8])];

const MMAR: Entries = &[
    ("commands/train_finetune.sh", b"#!/bin/sh\necho train\n"),
    ("config/config_train.json", b"{\"epochs\": 1}\n"),
    ("config/environment.json", b"{}\n"),
    ("docs/", b""),
    ("docs/license.txt", b"licence\n"),
    ("models/model.ckpt.index", b"index"),
];

fn zip_bytes(entries: Entries) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        if name.ends_with('/') {
            w.add_directory(*name, opts).unwrap();
        } else {
            w.start_file(*name, opts).unwrap();
            w.write_all(data).unwrap();
        }
    }
    w.finish().unwrap().into_inner()
}

/// A tar whose names are written raw (the tar crate's own builder refuses `..`).
fn tar_bytes(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data, kind) in entries {
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(if name.ends_with(".sh") { 0o755 } else { 0o644 });
        h.set_size(if *kind == tar::EntryType::Regular {
            data.len() as u64
        } else {
            0
        });
        if matches!(kind, tar::EntryType::Symlink | tar::EntryType::Link) {
            h.set_link_name_literal("/etc/passwd").unwrap();
        }
        h.set_cksum();
        let body: &[u8] = if *kind == tar::EntryType::Regular {
            data
        } else {
            &[]
        };
        b.append(&h, body).unwrap();
    }
    b.into_inner().unwrap()
}

fn regular<'a>(entries: Entries<'a>) -> Vec<(&'a str, &'a [u8], tar::EntryType)> {
    entries
        .iter()
        .map(|(n, d)| {
            let kind = if n.ends_with('/') {
                tar::EntryType::Directory
            } else {
                tar::EntryType::Regular
            };
            (*n, *d, kind)
        })
        .collect()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn write(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    }
    fn dest(&self) -> PathBuf {
        self.dir.path().join("out/unpacked")
    }
    /// Nothing but the archives themselves (and `out/`) may remain after a failure.
    fn assert_nothing_unpacked(&self) {
        assert!(
            !self.dest().exists(),
            "destination created despite the error"
        );
        let out = self.dir.path().join("out");
        if out.exists() {
            let left: Vec<_> = std::fs::read_dir(&out)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(left.is_empty(), "left behind: {left:?}");
        }
        assert!(!self.dir.path().join("evil").exists());
    }
}

fn unpack_default(
    archive: &Path,
    dest: &Path,
    kind: ArchiveKind,
) -> Result<Vec<clara_ngc::UnpackedFile>, ArchiveError> {
    unpack(archive, dest, kind, false, &Limits::default())
}

fn assert_unsafe(err: ArchiveError, entry: &str, reason: &str) {
    let msg = err.to_string();
    match err {
        ArchiveError::UnsafeEntry { entry: e, .. } => assert_eq!(e, entry, "{msg}"),
        other => panic!("expected UnsafeEntry, got {other:?}"),
    }
    assert!(msg.contains(reason), "{msg}");
}

#[test]
fn tar_gz_mmar_unpacks_with_contents_and_exec_bit() {
    let s = Scratch::new();
    let archive = s.write("m.tar.gz", &gz(&tar_bytes(&regular(MMAR))));
    let files = unpack_default(&archive, &s.dest(), ArchiveKind::TarGz).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(
        names,
        [
            "commands/train_finetune.sh",
            "config/config_train.json",
            "config/environment.json",
            "docs/license.txt",
            "models/model.ckpt.index"
        ]
    );
    for (name, data) in MMAR.iter().filter(|(n, _)| !n.ends_with('/')) {
        assert_eq!(std::fs::read(s.dest().join(name)).unwrap(), *data, "{name}");
    }
    assert_eq!(files[0].size, MMAR[0].1.len() as u64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.dest().join("commands/train_finetune.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111);
    }
}

#[test]
fn other_compressions_and_plain_zip_unpack() {
    let s = Scratch::new();
    let tar = tar_bytes(&regular(MMAR));

    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    bz.write_all(&tar).unwrap();
    let bz = s.write("m.tar.bz2", &bz.finish().unwrap());
    let mut xz =
        lzma_rust2::XzWriter::new(Vec::new(), lzma_rust2::XzOptions::with_preset(1)).unwrap();
    xz.write_all(&tar).unwrap();
    let xz = s.write("m.tar.xz", &xz.finish().unwrap());
    let plain = s.write("m.tar", &tar);
    let zip = s.write("m.zip", &zip_bytes(MMAR));

    for (i, path) in [bz, xz, plain, zip].iter().enumerate() {
        let kind = ArchiveKind::detect(path.file_name().unwrap().to_str().unwrap()).unwrap();
        let dest = s.dir.path().join(format!("d{i}"));
        let files = unpack_default(path, &dest, kind).unwrap();
        assert_eq!(files.len(), 5, "{kind:?}");
        assert_eq!(
            std::fs::read(dest.join("docs/license.txt")).unwrap(),
            b"licence\n"
        );
    }
}

#[test]
fn zip_slip_is_refused() {
    let s = Scratch::new();
    let archive = s.write(
        "slip.zip",
        &zip_bytes(&[("ok.txt", b"fine"), ("../evil", b"pwned")]),
    );
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err();
    assert_unsafe(err, "../evil", "'..'");
    s.assert_nothing_unpacked();

    let archive = s.write(
        "slip.tar",
        &tar_bytes(&[("a/../../evil", b"x", tar::EntryType::Regular)]),
    );
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::Tar).unwrap_err();
    assert_unsafe(err, "a/../../evil", "'..'");
    s.assert_nothing_unpacked();
}

#[test]
fn absolute_paths_are_refused() {
    let s = Scratch::new();
    let archive = s.write("abs.zip", &zip_bytes(&[("/tmp/evil", b"x")]));
    assert_unsafe(
        unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err(),
        "/tmp/evil",
        "absolute",
    );
    let archive = s.write(
        "abs.tar",
        &tar_bytes(&[("/etc/evil", b"x", tar::EntryType::Regular)]),
    );
    assert_unsafe(
        unpack_default(&archive, &s.dest(), ArchiveKind::Tar).unwrap_err(),
        "/etc/evil",
        "absolute",
    );
    s.assert_nothing_unpacked();
}

#[test]
fn links_and_devices_are_refused() {
    let s = Scratch::new();
    for (kind, reason) in [
        (tar::EntryType::Symlink, "symbolic link"),
        (tar::EntryType::Link, "hard link"),
        (tar::EntryType::Char, "device"),
        (tar::EntryType::Fifo, "FIFO"),
    ] {
        let archive = s.write(
            "l.tar",
            &tar_bytes(&[
                ("ok.txt", b"ok", tar::EntryType::Regular),
                ("link", b"", kind),
            ]),
        );
        assert_unsafe(
            unpack_default(&archive, &s.dest(), ArchiveKind::Tar).unwrap_err(),
            "link",
            reason,
        );
        s.assert_nothing_unpacked();
    }

    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
        .unwrap();
    let archive = s.write("l.zip", &w.finish().unwrap().into_inner());
    assert_unsafe(
        unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err(),
        "link",
        "symbolic link",
    );
    s.assert_nothing_unpacked();
}

#[test]
fn nul_bytes_and_duplicates_are_refused() {
    let s = Scratch::new();
    // Tar name fields are NUL-terminated, so only zip (length-prefixed names) can carry one.
    let archive = s.write("nul.zip", &zip_bytes(&[("a\0b", b"x")]));
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err();
    assert!(err.to_string().contains("NUL"), "{err}");

    let archive = s.write(
        "dup.tar",
        &tar_bytes(&[
            ("a.txt", b"first", tar::EntryType::Regular),
            ("./a.txt", b"second", tar::EntryType::Regular),
        ]),
    );
    assert_unsafe(
        unpack_default(&archive, &s.dest(), ArchiveKind::Tar).unwrap_err(),
        "./a.txt",
        "more than once",
    );

    let archive = s.write(
        "clash.tar",
        &tar_bytes(&[
            ("a", b"file", tar::EntryType::Regular),
            ("a/b", b"under a file", tar::EntryType::Regular),
        ]),
    );
    assert_unsafe(
        unpack_default(&archive, &s.dest(), ArchiveKind::Tar).unwrap_err(),
        "a/b",
        "is a file",
    );
    s.assert_nothing_unpacked();
}

#[test]
fn zip_bomb_is_refused_before_writing() {
    let s = Scratch::new();
    let started = Instant::now();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(
        "zeros.bin",
        SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .large_file(false),
    )
    .unwrap();
    let mb = vec![0u8; 1 << 20];
    for _ in 0..200 {
        w.write_all(&mb).unwrap();
    }
    let bytes = w.finish().unwrap().into_inner();
    assert!(bytes.len() < 1 << 20, "bomb is {} bytes", bytes.len());
    let archive = s.write("bomb.zip", &bytes);
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err();
    assert!(matches!(err, ArchiveError::RatioExceeded { .. }), "{err:?}");
    assert!(err.to_string().contains("zeros.bin"), "{err}");
    s.assert_nothing_unpacked();
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn zip_bomb_with_lying_sizes_stops_while_streaming() {
    let s = Scratch::new();
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    w.start_file(
        "zeros.bin",
        SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated),
    )
    .unwrap();
    let mb = vec![0u8; 1 << 20];
    for _ in 0..64 {
        w.write_all(&mb).unwrap();
    }
    let mut bytes = w.finish().unwrap().into_inner();
    // Claim 1000 bytes uncompressed in both the local and the central header.
    let claim = 1000u32.to_le_bytes();
    for (sig, offset) in [
        ([0x50, 0x4b, 0x03, 0x04], 22),
        ([0x50, 0x4b, 0x01, 0x02], 24),
    ] {
        let at = bytes.windows(4).position(|w| w == sig).unwrap();
        bytes[at + offset..at + offset + 4].copy_from_slice(&claim);
    }
    let archive = s.write("liar.zip", &bytes);
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err();
    // Either our byte counting trips, or (zip 9) the reader refuses to yield more than the
    // declared size; either way nothing lands.
    assert!(
        matches!(
            err,
            ArchiveError::RatioExceeded { .. } | ArchiveError::UnsafeEntry { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("zeros.bin"), "{err}");
    s.assert_nothing_unpacked();
}

#[test]
fn tar_gz_bomb_stops_while_streaming() {
    let s = Scratch::new();
    let started = Instant::now();
    // A tar.gz of 200 MiB of zeros, compressed without ever holding it in memory.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut h = tar::Header::new_gnu();
    h.set_path("zeros.bin").unwrap();
    h.set_size(200 << 20);
    h.set_mode(0o644);
    h.set_cksum();
    e.write_all(h.as_bytes()).unwrap();
    let mb = vec![0u8; 1 << 20];
    for _ in 0..200 {
        e.write_all(&mb).unwrap();
    }
    e.write_all(&[0u8; 1024]).unwrap();
    let archive = s.write("bomb.tar.gz", &e.finish().unwrap());
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::TarGz).unwrap_err();
    assert!(matches!(err, ArchiveError::RatioExceeded { .. }), "{err:?}");
    s.assert_nothing_unpacked();
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn entry_and_size_limits_hold() {
    let s = Scratch::new();
    let names: Vec<String> = (0..11).map(|i| format!("f{i}.txt")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), b"x" as &[u8])).collect();
    let limits = Limits {
        max_entries: 10,
        ..Limits::default()
    };
    let archive = s.write("many.zip", &zip_bytes(&entries));
    let err = unpack(&archive, &s.dest(), ArchiveKind::Zip, false, &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooManyEntries { limit: 10 }),
        "{err:?}"
    );
    let archive = s.write("many.tar", &tar_bytes(&regular(&entries)));
    let err = unpack(&archive, &s.dest(), ArchiveKind::Tar, false, &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooManyEntries { limit: 10 }),
        "{err:?}"
    );

    let limits = Limits {
        max_total_bytes: 10,
        ..Limits::default()
    };
    let archive = s.write(
        "big.tar",
        &tar_bytes(&[("a", b"0123456789abc", tar::EntryType::Regular)]),
    );
    let err = unpack(&archive, &s.dest(), ArchiveKind::Tar, false, &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooLarge { limit: 10, .. }),
        "{err:?}"
    );
    s.assert_nothing_unpacked();
}

#[test]
fn strip_root_removes_a_single_top_folder_only() {
    let s = Scratch::new();
    let rooted: Vec<(String, &[u8])> = MMAR
        .iter()
        .map(|(n, d)| (format!("clara_v1/{n}"), *d))
        .collect();
    let rooted: Vec<(&str, &[u8])> = rooted.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    let archive = s.write("rooted.zip", &zip_bytes(&rooted));
    let files = unpack(
        &archive,
        &s.dest(),
        ArchiveKind::Zip,
        true,
        &Limits::default(),
    )
    .unwrap();
    assert!(s.dest().join("config/config_train.json").is_file());
    assert!(!s.dest().join("clara_v1").exists());
    assert_eq!(files[0].rel_path, "commands/train_finetune.sh");
    assert!(
        !s.dir
            .path()
            .join("out")
            .read_dir()
            .unwrap()
            .any(|e| e.unwrap().file_name() != "unpacked")
    );

    // No top folder: strip_root leaves the layout alone.
    let flat = s.write("flat.zip", &zip_bytes(MMAR));
    let dest = s.dir.path().join("flat");
    let files = unpack(&flat, &dest, ArchiveKind::Zip, true, &Limits::default()).unwrap();
    assert!(dest.join("config/config_train.json").is_file());
    assert_eq!(files.len(), 5);

    // One folder plus a top-level file: not a single root, left alone.
    let mixed = s.write(
        "mixed.zip",
        &zip_bytes(&[("root/a.txt", b"a"), ("README", b"r")]),
    );
    let dest = s.dir.path().join("mixed");
    unpack(&mixed, &dest, ArchiveKind::Zip, true, &Limits::default()).unwrap();
    assert!(dest.join("root/a.txt").is_file() && dest.join("README").is_file());
}

#[test]
fn non_empty_destination_is_refused_and_empty_one_is_replaced() {
    let s = Scratch::new();
    let archive = s.write("m.zip", &zip_bytes(MMAR));
    std::fs::create_dir_all(s.dest()).unwrap();
    unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap();
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err();
    assert!(
        matches!(err, ArchiveError::DestinationExists { .. }),
        "{err:?}"
    );
}

#[test]
fn corrupt_archive_is_a_clear_error() {
    let s = Scratch::new();
    let archive = s.write("junk.zip", b"this is not a zip file at all");
    let err = unpack_default(&archive, &s.dest(), ArchiveKind::Zip).unwrap_err();
    assert!(matches!(err, ArchiveError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("junk.zip"), "{err}");
    s.assert_nothing_unpacked();
}
