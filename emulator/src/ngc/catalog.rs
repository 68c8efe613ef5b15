//! The assets the emulated NGC catalog serves: built-in ones (the Clara COVID-19 MMAR, the
//! walkthrough's `getting_started` resource, a licence-gated model, a private model), assets
//! added by the config, synthetic assets generated from their name and hostile archives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine;
use bytes::Bytes;

use super::archive::{self, TarEntry, ZipEntry};
use super::config::AssetConfig;
use super::content::{Content, b64};
use super::mmar;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Model,
    Resource,
}

impl Kind {
    /// URL segment: `models` / `resources`.
    pub fn segment(self) -> &'static str {
        match self {
            Kind::Model => "models",
            Kind::Resource => "resources",
        }
    }

    /// JSON key prefix of responses: ngcsdk reads `model*` for models and `recipe*` for
    /// resources (`modelVersion`, `recipeFiles`, …).
    pub fn json(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Resource => "recipe",
        }
    }

    pub fn parse(segment: &str) -> Option<Kind> {
        match segment {
            "models" => Some(Kind::Model),
            "resources" => Some(Kind::Resource),
            _ => None,
        }
    }
}

pub const UPLOAD_COMPLETE: &str = "UPLOAD_COMPLETE";
pub const UPLOAD_PENDING: &str = "UPLOAD_PENDING";

pub struct FileEntry {
    pub path: String,
    pub content: Content,
    sha: OnceLock<String>,
    /// Manifest values that deliberately differ from the served bytes (hostile assets).
    pub listed_sha: Option<String>,
    pub listed_size: Option<u64>,
}

impl FileEntry {
    pub fn new(path: &str, content: Content) -> FileEntry {
        FileEntry {
            path: path.to_string(),
            content,
            sha: OnceLock::new(),
            listed_sha: None,
            listed_size: None,
        }
    }

    pub fn size(&self) -> u64 {
        self.content.len()
    }

    /// `sha256_base64` of the served bytes, computed once (can take seconds for GiB files:
    /// call from a blocking thread).
    pub fn sha256_b64(&self) -> String {
        self.sha.get_or_init(|| b64(&self.content.sha256())).clone()
    }

    pub fn manifest_sha(&self) -> String {
        self.listed_sha.clone().unwrap_or_else(|| self.sha256_b64())
    }

    pub fn manifest_size(&self) -> u64 {
        self.listed_size.unwrap_or_else(|| self.size())
    }
}

pub struct Version {
    pub id: String,
    pub status: String,
    pub description: String,
    pub created: String,
    pub files: Vec<FileEntry>,
}

impl Version {
    pub fn new(id: &str, files: Vec<FileEntry>) -> Version {
        Version {
            id: id.to_string(),
            status: UPLOAD_COMPLETE.into(),
            description: String::new(),
            created: "2020-09-01T12:00:00.000Z".into(),
            files,
        }
    }

    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.path == path)
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(FileEntry::manifest_size).sum()
    }
}

pub struct Asset {
    pub kind: Kind,
    pub org: String,
    pub team: Option<String>,
    pub name: String,
    pub public: bool,
    pub eula_required: bool,
    pub display_name: String,
    pub description: String,
    pub application: String,
    pub framework: String,
    pub precision: String,
    pub versions: Vec<Version>,
}

impl Asset {
    fn new(kind: Kind, org: &str, team: Option<&str>, name: &str) -> Asset {
        Asset {
            kind,
            org: org.into(),
            team: team.map(str::to_string),
            name: name.into(),
            public: true,
            eula_required: false,
            display_name: name.into(),
            description: String::new(),
            application: "Other".into(),
            framework: "Other".into(),
            precision: "FP32".into(),
            versions: Vec::new(),
        }
    }

    /// `org[/team]/name`.
    pub fn id(&self) -> String {
        match &self.team {
            Some(t) => format!("{}/{t}/{}", self.org, self.name),
            None => format!("{}/{}", self.org, self.name),
        }
    }

    pub fn version(&self, id: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.id == id)
    }

    pub fn latest_version(&self) -> Option<&Version> {
        self.versions
            .iter()
            .filter(|v| v.status == UPLOAD_COMPLETE)
            .max_by(|a, b| version_order(&a.id, &b.id))
    }
}

fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

type Key = (Kind, String, Option<String>, String);

pub struct Catalog {
    fixed: HashMap<Key, Arc<Asset>>,
    generated: Mutex<HashMap<Key, Arc<Asset>>>,
}

/// Org and team of the generated assets.
pub const SYNTH_ORG: &str = "nvidia";
pub const SYNTH_TEAM: &str = "synthetic";
pub const HOSTILE_TEAM: &str = "hostile";

impl Catalog {
    pub fn new(extra: &[AssetConfig]) -> Catalog {
        let mut fixed = HashMap::new();
        let mut add = |a: Asset| {
            fixed.insert(
                (a.kind, a.org.clone(), a.team.clone(), a.name.clone()),
                Arc::new(a),
            );
        };
        add(covid19_mmar());
        add(getting_started());
        add(quicklaunch());
        add(pt_covid19_mmar());
        add(private_model());
        for a in extra {
            add(from_config(a));
        }
        Catalog {
            fixed,
            generated: Mutex::new(HashMap::new()),
        }
    }

    pub fn find(
        &self,
        kind: Kind,
        org: &str,
        team: Option<&str>,
        name: &str,
    ) -> Option<Arc<Asset>> {
        let key: Key = (kind, org.into(), team.map(str::to_string), name.into());
        if let Some(a) = self.fixed.get(&key) {
            return Some(a.clone());
        }
        if org != SYNTH_ORG || !matches!(team, Some(SYNTH_TEAM | HOSTILE_TEAM)) {
            return None;
        }
        let mut generated = self.generated.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = generated.get(&key) {
            return Some(a.clone());
        }
        let asset = match team {
            Some(SYNTH_TEAM) => synthetic(kind, name)?,
            _ => hostile(kind, name)?,
        };
        if generated.len() >= 256 {
            generated.clear();
        }
        let asset = Arc::new(asset);
        generated.insert(key, asset.clone());
        Some(asset)
    }

    /// Orgs that own a fixed asset (built-in or configured), sorted.
    pub fn orgs(&self) -> Vec<String> {
        let set: std::collections::BTreeSet<String> =
            self.fixed.values().map(|a| a.org.clone()).collect();
        set.into_iter().collect()
    }

    /// Teams of `org` that own a fixed asset, sorted.
    pub fn teams(&self, org: &str) -> Vec<String> {
        let set: std::collections::BTreeSet<String> = self
            .fixed
            .values()
            .filter(|a| a.org == org)
            .filter_map(|a| a.team.clone())
            .collect();
        set.into_iter().collect()
    }

    /// The fixed assets (built-in and configured), for the admin API.
    pub fn fixed(&self) -> Vec<Arc<Asset>> {
        let mut v: Vec<Arc<Asset>> = self.fixed.values().cloned().collect();
        v.sort_by_key(|a| (a.kind.segment(), a.id()));
        v
    }
}

fn from_config(c: &AssetConfig) -> Asset {
    let kind = if c.kind == "resource" {
        Kind::Resource
    } else {
        Kind::Model
    };
    let mut a = Asset::new(kind, &c.org, c.team.as_deref(), &c.name);
    a.public = c.public;
    a.eula_required = c.eula_required;
    a.description = c.description.clone().unwrap_or_default();
    let id = a.id();
    a.versions = c
        .versions
        .iter()
        .map(|v| {
            let files = v
                .files
                .iter()
                .map(|f| {
                    let content = if let Some(t) = &f.text {
                        Content::text(t.clone())
                    } else if let Some(b) = &f.base64 {
                        Content::Bytes(Bytes::from(
                            base64::engine::general_purpose::STANDARD
                                .decode(b)
                                .unwrap_or_default(),
                        ))
                    } else {
                        Content::prng(
                            &format!("{id}:{}/{}", v.version, f.path),
                            f.size.unwrap_or(0),
                        )
                    };
                    FileEntry::new(&f.path, content)
                })
                .collect();
            let mut ver = Version::new(&v.version, files);
            if let Some(s) = &v.status {
                ver.status = s.clone();
            }
            ver
        })
        .collect();
    a
}

// ---- built-in assets ------------------------------------------------------------------------

/// Pseudo-random "weights" seeded by the asset id and path.
fn weights(asset: &str, path: &str, len: u64) -> FileEntry {
    FileEntry::new(path, Content::prng(&format!("{asset}/{path}"), len))
}

fn text_file(path: &str, text: &str) -> FileEntry {
    FileEntry::new(path, Content::text(text))
}

pub const COVID_MODEL: &str = "clara_train_covid19_3d_ct_classification";

fn covid19_mmar() -> Asset {
    let mut a = Asset::new(Kind::Model, "nvidia", Some("med"), COVID_MODEL);
    a.display_name = "Clara Train COVID-19 3D CT Classification".into();
    a.description = "A pre-trained model for classifying COVID-19 from chest CT (3D DenseNet121, Clara Train SDK v3.0).".into();
    a.application = "Classification".into();
    a.framework = "TensorFlow".into();
    a.precision = "FP32".into();
    let id = a.id();
    let mut files: Vec<FileEntry> = mmar::COVID19_TEXT
        .iter()
        .map(|(p, t)| text_file(p, t))
        .collect();
    files.push(text_file(
        "config/dataset_0.json",
        &mmar::covid_dataset_json(),
    ));
    for (path, len) in [
        ("models/model.ckpt.data-00000-of-00001", 196_608),
        ("models/model.ckpt.index", 1_544),
        ("models/model.ckpt.meta", 24_576),
        ("models/model.fzn.pb", 49_152),
        ("models/model.trt.pb", 57_344),
    ] {
        files.push(weights(&id, path, len));
    }
    files.sort_by(|x, y| x.path.cmp(&y.path));
    let mut v = Version::new("1", files);
    v.description = "Clara Train SDK v3.0 MMAR".into();
    a.versions.push(v);
    a
}

fn getting_started() -> Asset {
    let mut a = Asset::new(Kind::Resource, "nvidia", Some("med"), "getting_started");
    a.display_name = "Intro to Clara Train SDK".into();
    a.description = "Notebooks and scripts that introduce the Clara Train SDK.".into();
    let mut files: Vec<FileEntry> = mmar::GETTING_STARTED_TEXT
        .iter()
        .map(|(p, t)| text_file(p, t))
        .collect();
    files.sort_by(|x, y| x.path.cmp(&y.path));
    a.versions.push(Version::new("1", files));
    a
}

/// The walkthrough's quick-launch resource (`nvidia/azuremlclarablogquicklaunch:example`, no
/// team): the notebook and the shell scripts it calls.
fn quicklaunch() -> Asset {
    let mut a = Asset::new(
        Kind::Resource,
        "nvidia",
        None,
        "azuremlclarablogquicklaunch",
    );
    a.display_name = "Azure ML Clara blog quick launch".into();
    a.description =
        "Notebook and scripts of the Azure ML + Clara COVID-19 CT fine-tuning walkthrough.".into();
    let mut files: Vec<FileEntry> = mmar::QUICKLAUNCH_TEXT
        .iter()
        .map(|(p, t)| text_file(p, t))
        .collect();
    files.sort_by(|x, y| x.path.cmp(&y.path));
    let mut v = Version::new("example", files);
    v.description = "Walkthrough notebook and scripts".into();
    a.versions.push(v);
    a
}

pub const PT_MODEL: &str = "clara_pt_covid19_3d_ct_classification";

/// The PyTorch successor (Clara Train 4.x layout); licence-gated in the emulator.
fn pt_covid19_mmar() -> Asset {
    let mut a = Asset::new(Kind::Model, "nvidia", Some("med"), PT_MODEL);
    a.display_name = "Clara PT COVID-19 3D CT Classification".into();
    a.description = "COVID-19 classification from chest CT, Clara Train 4.x (PyTorch/MONAI) MMAR. Licence acceptance required.".into();
    a.application = "Classification".into();
    a.framework = "PyTorch".into();
    a.eula_required = true;
    let id = a.id();
    let mut files: Vec<FileEntry> = mmar::pt_text_files()
        .into_iter()
        .map(|(p, t)| text_file(&p, &t))
        .collect();
    files.push(text_file(
        "config/dataset_0.json",
        &mmar::covid_dataset_json(),
    ));
    files.push(weights(&id, "models/model.pt", 131_072));
    files.push(weights(&id, "models/model.ts", 139_264));
    files.sort_by(|x, y| x.path.cmp(&y.path));
    a.versions.push(Version::new("1", files));
    a
}

pub const PRIVATE_ORG: &str = "clara-private";

/// A private model (org `clara-private`): version 1 complete, version 2 still uploading.
fn private_model() -> Asset {
    let mut a = Asset::new(
        Kind::Model,
        PRIVATE_ORG,
        Some("research"),
        "covid_ct_finetuned",
    );
    a.public = false;
    a.display_name = "COVID-19 CT classifier, fine-tuned".into();
    a.description = "Private fine-tuned checkpoint (emulator).".into();
    a.framework = "TensorFlow".into();
    let id = a.id();
    let v1 = Version::new(
        "1",
        vec![
            text_file(
                "README.md",
                "# covid_ct_finetuned\n\nPrivate fine-tuned checkpoint of clara_train_covid19_3d_ct_classification (emulator).\n",
            ),
            text_file(
                "config/environment.json",
                mmar::COVID19_TEXT
                    .iter()
                    .find(|(p, _)| *p == "config/environment.json")
                    .map_or("{}", |(_, t)| t),
            ),
            weights(&id, "models/model.ckpt.data-00000-of-00001", 65_536),
            weights(&id, "models/model.ckpt.index", 1_024),
            weights(&id, "models/model.ckpt.meta", 8_192),
        ],
    );
    let mut v2 = Version::new(
        "2",
        vec![weights(&id, "models/model.ckpt.data-00000-of-00001", 4_096)],
    );
    v2.status = UPLOAD_PENDING.into();
    v2.created = "2021-03-01T08:00:00.000Z".into();
    a.versions = vec![v1, v2];
    a
}

// ---- synthetic assets -----------------------------------------------------------------------

/// Largest synthetic total size (bytes are generated on the fly; only hashing costs time).
pub const MAX_SYNTH_BYTES: u64 = 64 << 30;
pub const MAX_SYNTH_FILES: u64 = 10_000;
/// Synthetic zips are built in memory.
pub const MAX_SYNTH_ZIP_BYTES: u64 = 512 << 20;

/// `123`, `64KiB`, `64K`, `1MiB`, `1M`, `2GiB`, `2G` (binary multiples).
pub fn parse_size(s: &str) -> Option<u64> {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let mult: u64 = match &s[digits..] {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Splits `name` into `-`-separated `key-value` pairs after a leading keyword:
/// `size-64MiB-files-3` → `[("size","64MiB"),("files","3")]`; flags (`root`) have no value.
fn pairs(name: &str) -> Vec<(String, Option<String>)> {
    let parts: Vec<&str> = name.split('-').collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < parts.len() {
        let k = parts[i];
        if k == "root" {
            out.push((k.to_string(), None));
            i += 1;
        } else {
            out.push((k.to_string(), parts.get(i + 1).map(|s| s.to_string())));
            i += 2;
        }
    }
    out
}

fn synthetic(kind: Kind, name: &str) -> Option<Asset> {
    let p = pairs(name);
    let get = |k: &str| {
        p.iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| v.clone())
    };
    let known = |allowed: &[&str]| p.iter().all(|(k, _)| allowed.contains(&k.as_str()));
    let mut a = Asset::new(kind, SYNTH_ORG, Some(SYNTH_TEAM), name);
    let id = a.id();
    a.description = "Synthetic asset generated by clara-emulator.".into();
    let files = match p.first()?.0.as_str() {
        "size" if known(&["size", "files"]) => {
            let total = parse_size(&get("size")?)?;
            let n: u64 = match get("files") {
                Some(n) => n.parse().ok()?,
                None => 1,
            };
            if total > MAX_SYNTH_BYTES || n == 0 || n > MAX_SYNTH_FILES {
                return None;
            }
            if n == 1 {
                vec![FileEntry::new(
                    &format!("{name}.bin"),
                    Content::prng(&format!("{id}/{name}.bin"), total),
                )]
            } else {
                (0..n)
                    .map(|i| {
                        let len = total / n + u64::from(i < total % n);
                        let path = format!("data/part-{i:05}.bin");
                        FileEntry::new(&path, Content::prng(&format!("{id}/{path}"), len))
                    })
                    .collect()
            }
        }
        "zip" if p[0].1.as_deref() == Some("files") => {
            // zip-files-<n>[-size-<bytes each>][-root]
            let rest = pairs(name.strip_prefix("zip-")?);
            let get = |k: &str| {
                rest.iter()
                    .find(|(key, _)| key == k)
                    .and_then(|(_, v)| v.clone())
            };
            if !rest
                .iter()
                .all(|(k, _)| ["files", "size", "root"].contains(&k.as_str()))
            {
                return None;
            }
            let n: u64 = get("files")?.parse().ok()?;
            let each = match get("size") {
                Some(s) => parse_size(&s)?,
                None => 4096,
            };
            let root = rest.iter().any(|(k, _)| k == "root");
            if n == 0 || n > MAX_SYNTH_FILES || n.checked_mul(each)? > MAX_SYNTH_ZIP_BYTES {
                return None;
            }
            let zip_name = format!("{name}.zip");
            let prefix = if root {
                format!("{name}/")
            } else {
                String::new()
            };
            let seed_base = id.clone();
            vec![FileEntry::new(
                &zip_name,
                Content::lazy(move || synthetic_zip(&seed_base, &prefix, n, each)),
            )]
        }
        _ => return None,
    };
    a.versions.push(Version::new("1", files));
    Some(a)
}

/// The entries of `zip-files-<n>` assets: a deflated README, a `data/` directory entry and
/// `n` stored pseudo-random files (`data/file-00000.bin`, …), optionally under one root dir.
pub fn synthetic_zip_entries(
    seed_base: &str,
    prefix: &str,
    n: u64,
    each: u64,
) -> Vec<(String, Bytes)> {
    let mut out = vec![(
        format!("{prefix}README.txt"),
        Bytes::from(format!(
            "Synthetic archive from clara-emulator: {n} files of {each} bytes under data/.\n"
        )),
    )];
    for i in 0..n {
        let path = format!("{prefix}data/file-{i:05}.bin");
        out.push((
            path.clone(),
            Content::prng(&format!("{seed_base}/zip/{}", &path[prefix.len()..]), each).all(),
        ));
    }
    out
}

fn synthetic_zip(seed_base: &str, prefix: &str, n: u64, each: u64) -> Bytes {
    let mut entries = Vec::new();
    for (i, (path, data)) in synthetic_zip_entries(seed_base, prefix, n, each)
        .into_iter()
        .enumerate()
    {
        if i == 0 {
            entries.push(ZipEntry::deflated(&path, data));
            let mut dir = ZipEntry::file(&format!("{prefix}data/"), Bytes::new());
            dir.mode = 0o040_755;
            entries.push(dir);
        } else {
            entries.push(ZipEntry::file(&path, data));
        }
    }
    archive::zip(&entries)
}

// ---- hostile assets -------------------------------------------------------------------------

/// Uncompressed size of the zip bomb's entry.
pub const BOMB_BYTES: u64 = 1 << 30;

fn single(kind: Kind, name: &str, file: &str, content: Content) -> Asset {
    let mut a = Asset::new(kind, SYNTH_ORG, Some(HOSTILE_TEAM), name);
    a.description = "Hostile test asset generated by clara-emulator.".into();
    a.versions
        .push(Version::new("1", vec![FileEntry::new(file, content)]));
    a
}

fn hostile(kind: Kind, name: &str) -> Option<Asset> {
    let readme = || Bytes::from_static(b"This archive is a hostile test fixture.\n");
    let asset = match name {
        "zip-slip" => single(
            kind,
            name,
            "zip-slip.zip",
            Content::lazy(move || {
                archive::zip(&[
                    ZipEntry::file("README.txt", readme()),
                    ZipEntry::file("../evil.txt", Bytes::from_static(b"zip-slip: parent dir\n")),
                    ZipEntry::file(
                        "safe/../../evil-nested.txt",
                        Bytes::from_static(b"zip-slip: nested parent dir\n"),
                    ),
                    ZipEntry::file(
                        "/tmp/clara-evil-absolute.txt",
                        Bytes::from_static(b"zip-slip: absolute path\n"),
                    ),
                    ZipEntry::file(
                        "..\\evil-backslash.txt",
                        Bytes::from_static(b"zip-slip: backslash parent dir\n"),
                    ),
                ])
            }),
        ),
        "zip-bomb" | "zip-bomb-lying" => {
            let lying = name == "zip-bomb-lying";
            single(
                kind,
                name,
                &format!("{name}.zip"),
                Content::lazy(move || {
                    let (compressed, crc) = archive::deflate_zeros(BOMB_BYTES);
                    archive::zip(&[
                        ZipEntry::file("README.txt", readme()),
                        ZipEntry {
                            name: "bomb.bin".into(),
                            data: archive::EntryData::Deflated {
                                compressed,
                                crc,
                                size: BOMB_BYTES,
                            },
                            mode: archive::S_IFREG | 0o644,
                            lie_size: lying.then_some(1024),
                        },
                    ])
                }),
            )
        }
        "zip-symlink" => single(
            kind,
            name,
            "zip-symlink.zip",
            Content::lazy(move || {
                archive::zip(&[
                    ZipEntry::file("README.txt", readme()),
                    ZipEntry::symlink("etc-link", "/etc"),
                    ZipEntry::file(
                        "etc-link/clara-evil.txt",
                        Bytes::from_static(b"written through an absolute symlink\n"),
                    ),
                    ZipEntry::symlink("up-link", "../../.."),
                    ZipEntry::file(
                        "up-link/clara-evil.txt",
                        Bytes::from_static(b"written through a relative symlink\n"),
                    ),
                ])
            }),
        ),
        "zip-duplicate" => single(
            kind,
            name,
            "zip-duplicate.zip",
            Content::lazy(move || {
                archive::zip(&[
                    ZipEntry::file(
                        "config/settings.json",
                        Bytes::from_static(b"{\"copy\": 1}\n"),
                    ),
                    ZipEntry::file(
                        "config/settings.json",
                        Bytes::from_static(b"{\"copy\": 2, \"evil\": true}\n"),
                    ),
                ])
            }),
        ),
        "symlink-tar" => single(
            kind,
            name,
            "symlink.tar",
            Content::lazy(move || {
                archive::tar(&[
                    TarEntry::dir("safe/"),
                    TarEntry::file("safe/README.txt", readme()),
                    TarEntry::symlink("escape", "/etc"),
                    TarEntry::file(
                        "escape/clara-evil.txt",
                        Bytes::from_static(b"written through an absolute symlink\n"),
                    ),
                    TarEntry::symlink("up", "../../.."),
                    TarEntry::file(
                        "up/clara-evil.txt",
                        Bytes::from_static(b"written through a relative symlink\n"),
                    ),
                    TarEntry::hardlink("passwd-hardlink", "/etc/passwd"),
                    TarEntry::file(
                        "../tar-slip.txt",
                        Bytes::from_static(b"tar-slip: parent dir\n"),
                    ),
                ])
            }),
        ),
        "manifest-traversal" => {
            let mut a = single(kind, name, "ok.txt", Content::text("fine\n"));
            a.versions[0].files.push(FileEntry::new(
                "../escape.txt",
                Content::text("manifest path escapes the destination\n"),
            ));
            a.versions[0].files.push(FileEntry::new(
                "/tmp/clara-absolute.txt",
                Content::text("absolute manifest path\n"),
            ));
            a
        }
        "wrong-sha256" => {
            let mut a = single(
                kind,
                name,
                "data.bin",
                Content::prng("hostile/wrong-sha256", 65_536),
            );
            a.versions[0].files[0].listed_sha = Some(b64(&[0u8; 32]));
            a
        }
        "wrong-size" => {
            let mut a = single(
                kind,
                name,
                "data.bin",
                Content::prng("hostile/wrong-size", 65_536),
            );
            a.versions[0].files[0].listed_size = Some(65_537);
            a
        }
        _ => return None,
    };
    Some(asset)
}

/// Names of the hostile assets (for docs and the admin listing).
pub const HOSTILE_NAMES: &[&str] = &[
    "zip-slip",
    "zip-bomb",
    "zip-bomb-lying",
    "zip-symlink",
    "zip-duplicate",
    "symlink-tar",
    "manifest-traversal",
    "wrong-sha256",
    "wrong-size",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("123"), Some(123));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size("5X"), None);
    }

    #[test]
    fn synthetic_names() {
        let c = Catalog::new(&[]);
        let a = c
            .find(
                Kind::Resource,
                "nvidia",
                Some("synthetic"),
                "size-1000-files-3",
            )
            .unwrap();
        let sizes: Vec<u64> = a.versions[0].files.iter().map(FileEntry::size).collect();
        assert_eq!(sizes, [334, 333, 333]);
        let z = c
            .find(
                Kind::Model,
                "nvidia",
                Some("synthetic"),
                "zip-files-3-size-10-root",
            )
            .unwrap();
        assert_eq!(z.versions[0].files[0].path, "zip-files-3-size-10-root.zip");
        assert!(z.versions[0].files[0].size() > 30);
        assert!(
            c.find(Kind::Model, "nvidia", Some("synthetic"), "size-x")
                .is_none()
        );
        assert!(
            c.find(Kind::Model, "nvidia", Some("synthetic"), "bogus-1")
                .is_none()
        );
        for n in HOSTILE_NAMES {
            assert!(
                c.find(Kind::Resource, "nvidia", Some("hostile"), n)
                    .is_some(),
                "{n}"
            );
        }
    }

    #[test]
    fn builtin_mmar_is_small_and_complete() {
        let c = Catalog::new(&[]);
        let a = c
            .find(Kind::Model, "nvidia", Some("med"), COVID_MODEL)
            .unwrap();
        let v = a.version("1").unwrap();
        let total = v.total_size();
        assert!(total > 100_000 && total < 600_000, "{total}");
        for p in [
            "commands/train_finetune.sh",
            "config/config_train.json",
            "config/environment.json",
            "config/dataset_0.json",
            "docs/license.txt",
            "models/model.ckpt.index",
        ] {
            assert!(v.file(p).is_some(), "{p}");
        }
        let ds: serde_json::Value =
            serde_json::from_slice(&v.file("config/dataset_0.json").unwrap().content.all())
                .unwrap();
        let n = ds["training"].as_array().unwrap().len()
            + ds["validation"].as_array().unwrap().len()
            + ds["testing"].as_array().unwrap().len();
        assert_eq!(n, 40);
        assert_eq!(ds["testing"].as_array().unwrap().len(), 3);
    }
}
