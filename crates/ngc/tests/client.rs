//! NgcClient against the in-test fake NGC (`fake_ngc`).

mod fake_ngc;

use std::path::Path;
use std::time::Duration;

use clara_ngc::{AssetKind, AssetRef, NgcClient, NgcError, NgcOptions, Progress, Secret};
use fake_ngc::{Config, LEGACY_KEY, PERSONAL_KEY, Servers, content, start};
use sha2::{Digest, Sha256};

const ASSET: &str = "nvidia/med/clara_train_covid19_3d_ct_classification";

fn mmar_files() -> Vec<(String, Vec<u8>)> {
    vec![
        (
            "commands/train_finetune.sh".into(),
            b"#!/bin/sh\necho train\n".to_vec(),
        ),
        (
            "config/config_train.json".into(),
            b"{\"epochs\": 1}\n".to_vec(),
        ),
        (
            "config/environment.json".into(),
            b"{\"MMAR_CKPT_DIR\": \"models\"}\n".to_vec(),
        ),
        ("docs/license.txt".into(), b"licence\n".to_vec()),
        (
            "models/model.ckpt.data-00000-of-00001".into(),
            content(1, 300_000),
        ),
    ]
}

fn config(files: Vec<(String, Vec<u8>)>) -> Config {
    Config {
        files,
        page_size: 1000,
        versions: vec![(
            "1".into(),
            "UPLOAD_COMPLETE".into(),
            "2020-08-01T00:00:00.000Z".into(),
        )],
        token_expires_in: 900,
        ..Config::default()
    }
}

fn client(servers: &Servers, key: Option<&str>) -> NgcClient {
    let mut options = NgcOptions::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    options.api_url = servers.api_url.clone();
    options.auth_url = servers.api_url.clone();
    options.api_key = key.map(Secret::new);
    options.retry_attempts = 3;
    options.retry_base_delay = Duration::from_millis(5);
    NgcClient::new(options)
}

fn model(version: Option<&str>) -> AssetRef {
    let source = match version {
        Some(v) => format!("{ASSET}:{v}"),
        None => ASSET.to_owned(),
    };
    AssetRef::parse(&source, AssetKind::Model).unwrap()
}

fn no_progress(_: Progress) {}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[tokio::test]
async fn public_asset_without_key_uses_guest_paths_and_no_authorization() {
    let s = start(config(mmar_files())).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    assert_eq!(resolved.files.len(), 5);
    assert_eq!(
        resolved.total_size,
        mmar_files()
            .iter()
            .map(|(_, d)| d.len() as u64)
            .sum::<u64>()
    );
    let dir = tempfile::tempdir().unwrap();
    let out = c
        .download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    for (path, data) in mmar_files() {
        assert_eq!(
            std::fs::read(dir.path().join(&path)).unwrap(),
            data,
            "{path}"
        );
    }
    assert_eq!(Some(out.digest), resolved.digest);
    s.fake.with(|i| {
        assert_eq!(i.seen.token_requests, 0);
        for (path, auth) in &i.seen.api_requests {
            assert!(auth.is_none(), "{path} carried Authorization");
            assert!(
                path.starts_with("/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/")
                    || path.starts_with(
                        "/v2/models/org/nvidia/team/med/clara_train_covid19_3d_ct_classification/1/files?"
                    ),
                "{path}"
            );
        }
        // ngcsdk's guest download manifest, and no per-file API call (files come from the
        // presigned URLs).
        assert_eq!(
            i.seen
                .api_requests
                .iter()
                .filter(|(p, _)| p.starts_with("/v2/models/org/"))
                .count(),
            1
        );
        assert!(
            i.seen
                .api_requests
                .iter()
                .all(|(p, _)| !p.contains("/versions/1/files/")),
            "{:?}",
            i.seen.api_requests
        );
        assert_eq!(i.seen.object_requests.len(), 5);
    });
}

#[tokio::test]
async fn legacy_key_is_exchanged_once_and_sent_as_bearer_on_scoped_paths() {
    let mut cfg = config(mmar_files());
    cfg.private = true;
    let s = start(cfg).await;
    let c = client(&s, Some(LEGACY_KEY));
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    c.download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    s.fake.with(|i| {
        assert_eq!(i.seen.token_requests, 1, "token must be cached");
        assert_eq!(
            i.seen.token_queries[0],
            "service=ngc&scope=group/ngc:nvidia&scope=group/ngc:nvidia/med"
        );
        let paths: Vec<&str> = i
            .seen
            .api_requests
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        let base = "/v2/org/nvidia/team/med/models/clara_train_covid19_3d_ct_classification";
        assert_eq!(
            paths,
            [
                format!("{base}/versions/1?"),
                format!("{base}/versions/1/files?page-size=1000"),
                format!("{base}/1/files?page-size=1000"),
            ],
            "version, files listing, download manifest: no per-file API call"
        );
        for (path, auth) in &i.seen.api_requests {
            assert_eq!(auth.as_deref(), Some("Bearer tok-1"), "{path}");
            assert!(
                path.starts_with(
                    "/v2/org/nvidia/team/med/models/clara_train_covid19_3d_ct_classification/"
                ),
                "{path}"
            );
        }
    });
}

#[tokio::test]
async fn token_is_renewed_once_after_401() {
    let mut cfg = config(mmar_files());
    cfg.private = true;
    let s = start(cfg).await;
    let c = client(&s, Some(LEGACY_KEY));
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    // The server forgets every token: the next API call gets a 401.
    s.fake.with(|i| i.valid_tokens.clear());
    let dir = tempfile::tempdir().unwrap();
    c.download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    s.fake.with(|i| {
        assert_eq!(i.seen.token_requests, 2);
        assert!(
            i.seen
                .api_requests
                .iter()
                .any(|(_, a)| a.as_deref() == Some("Bearer tok-2"))
        );
    });
}

#[tokio::test]
async fn token_close_to_expiry_is_renewed_before_use() {
    let mut cfg = config(mmar_files());
    cfg.private = true;
    cfg.token_expires_in = 200; // inside the 300 s renewal window: never reused
    let s = start(cfg).await;
    let c = client(&s, Some(LEGACY_KEY));
    c.resolve(&model(Some("1"))).await.unwrap();
    s.fake
        .with(|i| assert_eq!(i.seen.token_requests as usize, i.seen.api_requests.len()));
}

#[tokio::test]
async fn personal_key_is_sent_as_bearer_without_exchange() {
    let mut cfg = config(mmar_files());
    cfg.private = true;
    let s = start(cfg).await;
    let c = client(&s, Some(PERSONAL_KEY));
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    c.download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    s.fake.with(|i| {
        assert_eq!(i.seen.token_requests, 0);
        let expected = format!("Bearer {PERSONAL_KEY}");
        assert!(
            i.seen
                .api_requests
                .iter()
                .all(|(_, a)| a.as_deref() == Some(expected.as_str()))
        );
    });
}

#[tokio::test]
async fn rejected_key_names_the_setting() {
    let mut cfg = config(mmar_files());
    cfg.private = true;
    let s = start(cfg).await;
    let err = client(&s, Some("wrong-key"))
        .resolve(&model(Some("1")))
        .await
        .unwrap_err();
    assert!(matches!(err, NgcError::ApiKeyRejected { .. }), "{err:?}");
    assert!(err.to_string().contains("NGC_CLI_API_KEY"), "{err}");
    assert!(!err.to_string().contains("wrong-key"), "{err}");
}

#[tokio::test]
async fn manifest_is_read_across_pages() {
    let mut cfg = config(mmar_files());
    cfg.page_size = 2;
    let s = start(cfg).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let paths: Vec<&str> = resolved.files.iter().map(|f| f.path.as_str()).collect();
    let mut expected: Vec<String> = mmar_files().into_iter().map(|(p, _)| p).collect();
    expected.sort();
    assert_eq!(paths, expected);
    assert_eq!(resolved.files[4].sha256, Some(sha(&content(1, 300_000))));
    s.fake.with(|i| {
        let listing: Vec<&String> = i
            .seen
            .api_requests
            .iter()
            .map(|(p, _)| p)
            .filter(|p| p.contains("/files?"))
            .collect();
        assert_eq!(listing.len(), 3, "{listing:?}");
        assert!(!listing[0].contains("page-number"));
        assert!(listing[1].contains("page-number=1") && listing[2].contains("page-number=2"));
    });
    // The digest does not depend on paging.
    let s2 = start(config(mmar_files())).await;
    let again = client(&s2, None).resolve(&model(Some("1"))).await.unwrap();
    assert_eq!(again.digest, resolved.digest);
}

#[tokio::test]
async fn newest_complete_version_is_picked_when_none_given() {
    let mut cfg = config(mmar_files());
    cfg.versions = vec![
        (
            "3".into(),
            "UPLOAD_PENDING".into(),
            "2022-01-01T00:00:00.000Z".into(),
        ),
        (
            "1".into(),
            "UPLOAD_COMPLETE".into(),
            "2020-01-01T00:00:00.000Z".into(),
        ),
        (
            "2".into(),
            "UPLOAD_COMPLETE".into(),
            "2021-01-01T00:00:00.000Z".into(),
        ),
    ];
    let s = start(cfg).await;
    let resolved = client(&s, None).resolve(&model(None)).await.unwrap();
    assert_eq!(resolved.asset.unwrap().version.as_deref(), Some("2"));
}

#[tokio::test]
async fn incomplete_version_is_refused() {
    let mut cfg = config(mmar_files());
    cfg.versions = vec![("1".into(), "UPLOAD_PENDING".into(), String::new())];
    let s = start(cfg).await;
    let err = client(&s, None)
        .resolve(&model(Some("1")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UPLOAD_PENDING"), "{err}");
    let err = client(&s, None).resolve(&model(None)).await.unwrap_err();
    assert!(matches!(err, NgcError::NoCompleteVersion { .. }), "{err:?}");
}

#[tokio::test]
async fn presigned_urls_get_no_credentials() {
    let mut cfg = config(mmar_files());
    cfg.private = true;
    let s = start(cfg).await;
    let mut options = NgcOptions::new(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
    );
    options.api_url = s.api_url.clone();
    options.auth_url = s.api_url.clone();
    options.api_key = Some(Secret::new(LEGACY_KEY));
    options.org = Some("myorg".into());
    let c = NgcClient::new(options);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    c.download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    s.fake.with(|i| {
        assert_eq!(i.seen.object_requests.len(), 5);
        for h in &i.seen.object_requests {
            assert!(
                h.get("authorization").is_none(),
                "signed-URL server saw Authorization"
            );
            assert!(h.get("nv-ngc-org").is_none());
        }
    });
}

#[tokio::test]
async fn existing_part_file_is_resumed_with_range() {
    let big = content(7, 500_000);
    let s = start(config(vec![("models/model.pt".into(), big.clone())])).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    let have = 300_000;
    std::fs::write(dir.path().join("models/model.pt.part"), &big[..have]).unwrap();
    let out = c
        .download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("models/model.pt")).unwrap(),
        big
    );
    assert!(!dir.path().join("models/model.pt.part").exists());
    assert_eq!(out.bytes_transferred, (big.len() - have) as u64);
    assert_eq!(out.files[0].sha256, sha(&big));
    s.fake.with(|i| {
        assert_eq!(i.seen.object_bytes_served, (big.len() - have) as u64);
        let range = i.seen.object_requests[0]
            .get("range")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(range, format!("bytes={have}-"));
    });
}

#[tokio::test]
async fn ignored_range_restarts_the_file() {
    let big = content(8, 200_000);
    let mut cfg = config(vec![("w.bin".into(), big.clone())]);
    cfg.ignore_range = true;
    let s = start(cfg).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A stale prefix that is *wrong*: the restart must not keep it.
    std::fs::write(dir.path().join("w.bin.part"), vec![0u8; 50_000]).unwrap();
    c.download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(std::fs::read(dir.path().join("w.bin")).unwrap(), big);
}

#[tokio::test]
async fn corrupted_byte_is_a_checksum_error_and_the_file_is_removed() {
    let mut cfg = config(mmar_files());
    cfg.corrupt
        .insert("models/model.ckpt.data-00000-of-00001".into());
    let s = start(cfg).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = c
        .download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, NgcError::Checksum { .. }), "{err:?}");
    assert!(
        msg.contains("models/model.ckpt.data-00000-of-00001"),
        "{msg}"
    );
    assert!(
        msg.contains(&clara_ngc::hex(&sha(&content(1, 300_000)))),
        "{msg}"
    );
    let bad = dir.path().join("models/model.ckpt.data-00000-of-00001");
    assert!(!bad.exists());
    assert!(!Path::new(&format!("{}.part", bad.display())).exists());
}

#[tokio::test]
async fn truncated_body_is_resumed_and_succeeds() {
    let big = content(9, 400_000);
    let mut cfg = config(vec![("models/model.pt".into(), big.clone())]);
    cfg.truncate_once.insert("models/model.pt".into());
    let s = start(cfg).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let reports = std::sync::Mutex::new(Vec::new());
    let progress = |p: Progress| reports.lock().unwrap().push(p);
    let out = c.download(&resolved, dir.path(), &progress).await.unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("models/model.pt")).unwrap(),
        big
    );
    let size = big.len() as u64;
    assert!(
        out.bytes_transferred < size * 12 / 10,
        "{} for {size}",
        out.bytes_transferred
    );
    s.fake.with(|i| {
        assert_eq!(i.seen.object_requests.len(), 2);
        assert!(i.seen.object_requests[1].get("range").is_some());
        assert!(i.seen.object_bytes_served < size * 12 / 10);
    });
    let last = *reports.lock().unwrap().last().unwrap();
    assert_eq!(
        (last.files_done, last.files_total, last.total_bytes),
        (1, 1, size)
    );
}

#[tokio::test]
async fn second_download_skips_verified_files() {
    let s = start(config(mmar_files())).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    c.download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    // Damage one finished file: it alone is fetched again.
    std::fs::write(dir.path().join("docs/license.txt"), b"tampered").unwrap();
    let again = c
        .download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(again.bytes_transferred, b"licence\n".len() as u64);
    assert_eq!(
        std::fs::read(dir.path().join("docs/license.txt")).unwrap(),
        b"licence\n"
    );
    let third = c
        .download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(third.bytes_transferred, 0);
    assert_eq!(third.files.len(), 5);
}

#[tokio::test]
async fn http_errors_are_worded_for_users() {
    // 401 without a key: the asset is private.
    let mut cfg = config(mmar_files());
    cfg.private = true;
    let s = start(cfg).await;
    let err = client(&s, None)
        .resolve(&model(Some("1")))
        .await
        .unwrap_err();
    assert!(matches!(err, NgcError::ApiKeyRequired { .. }), "{err:?}");
    assert!(
        err.to_string().contains("needs an API key") && err.to_string().contains("NGC_CLI_API_KEY"),
        "{err}"
    );

    let mut cfg = config(mmar_files());
    cfg.api_status = Some(403);
    let s = start(cfg).await;
    let err = client(&s, Some(PERSONAL_KEY))
        .resolve(&model(Some("1")))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no access") && err.to_string().contains("org nvidia, team med"),
        "{err}"
    );

    let s = start(config(mmar_files())).await;
    let err = client(&s, None)
        .resolve(&model(Some("7")))
        .await
        .unwrap_err();
    assert!(matches!(err, NgcError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("{ASSET}:7")), "{err}");

    let mut cfg = config(mmar_files());
    cfg.listing_status = Some(412);
    let s = start(cfg).await;
    let err = client(&s, None)
        .resolve(&model(Some("1")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, NgcError::LicenseNotAccepted { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("https://catalog.ngc.nvidia.com/orgs/nvidia/teams/med/models/clara_train_covid19_3d_ct_classification"),
        "{err}"
    );

    let mut cfg = config(mmar_files());
    cfg.api_status = Some(500);
    let s = start(cfg).await;
    let err = client(&s, None)
        .resolve(&model(Some("1")))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("HTTP 500") && err.to_string().contains("fake 500"),
        "{err}"
    );
    s.fake
        .with(|i| assert_eq!(i.seen.api_requests.len(), 3, "retried up to retry_attempts"));
}

#[tokio::test]
async fn transient_listing_failure_is_retried() {
    let mut cfg = config(mmar_files());
    cfg.listing_503_once = true;
    let s = start(cfg).await;
    let resolved = client(&s, None).resolve(&model(Some("1"))).await.unwrap();
    assert_eq!(resolved.files.len(), 5);
}

#[tokio::test]
async fn zip_is_the_fallback_when_there_is_no_listing() {
    let mut cfg = config(mmar_files());
    cfg.listing_status = Some(404);
    cfg.zip_body = content(3, 10_000);
    let s = start(cfg).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    assert!(resolved.files.is_empty() && resolved.digest.is_none());
    let single = resolved.single.as_ref().unwrap();
    assert_eq!(
        single.file_name,
        "clara_train_covid19_3d_ct_classification_v1.zip"
    );
    assert!(single.url.path().ends_with("/versions/1/zip"));
    let dir = tempfile::tempdir().unwrap();
    let out = c
        .download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    assert_eq!(out.files.len(), 1);
    assert_eq!(out.files[0].sha256, sha(&content(3, 10_000)));
    assert_eq!(
        std::fs::read(&out.files[0].path).unwrap(),
        content(3, 10_000)
    );
}

#[tokio::test]
async fn walkthrough_url_resolves_against_configured_api() {
    let s = start(config(mmar_files())).await;
    let c = client(&s, None);
    let url = url::Url::parse(
        "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip",
    )
    .unwrap();
    let resolved = c.resolve_url(&url, None).await.unwrap();
    assert_eq!(
        resolved.files.len(),
        5,
        "the manifest beats the unverified zip"
    );

    let plain = s.api_url.join("/downloads/data%20set.tar.gz").unwrap();
    let single = c.resolve_url(&plain, None).await.unwrap();
    assert_eq!(single.single.unwrap().file_name, "data set.tar.gz");

    let err = c
        .resolve_url(&url::Url::parse("http://example.com/x.zip").unwrap(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("only https"), "{err}");
}

#[tokio::test]
async fn unsafe_manifest_paths_are_refused() {
    let mut cfg = config(vec![("a.txt".into(), b"a".to_vec())]);
    cfg.listed_path_override = Some("../../etc/passwd".into());
    let s = start(cfg).await;
    let err = client(&s, None)
        .resolve(&model(Some("1")))
        .await
        .unwrap_err();
    assert!(matches!(err, NgcError::UnsafePath { .. }), "{err:?}");
    assert!(err.to_string().contains("../../etc/passwd"), "{err}");
}

#[tokio::test]
async fn resources_use_recipe_fields() {
    let s = start(config(mmar_files())).await;
    let r = AssetRef::parse("nvidia/med/getting_started:1", AssetKind::Resource).unwrap();
    let resolved = client(&s, None).resolve(&r).await.unwrap();
    assert_eq!(resolved.files.len(), 5);
    s.fake.with(|i| {
        assert!(
            i.seen.api_requests[0]
                .0
                .starts_with("/v2/resources/nvidia/med/getting_started/versions/1")
        )
    });
}

#[tokio::test]
async fn key_never_shows_in_debug_output() {
    let s = start(config(mmar_files())).await;
    let c = client(&s, Some(LEGACY_KEY));
    let shown = format!("{c:?}");
    assert!(!shown.contains(LEGACY_KEY), "{shown}");
    let mut options = NgcOptions::new(reqwest::Client::new());
    options.api_key = Some(Secret::new(LEGACY_KEY));
    assert!(!format!("{options:?}").contains(LEGACY_KEY));
}

/// A file listed larger than what is served used to loop (a full GET, then a 416 on the
/// resume, about ten times a second) until the create timeout. Now: bounded, backed-off
/// tries, then an error naming the file and both sizes.
#[tokio::test]
async fn listed_size_larger_than_served_fails_after_bounded_tries() {
    let mut cfg = config(vec![("data.bin".into(), content(7, 4096))]);
    cfg.listed_size_extra = 1;
    let s = start(cfg).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let download = c.download(&resolved, dir.path(), &no_progress);
    // A guard against the old endless loop, not a timing assertion.
    let err = tokio::time::timeout(Duration::from_secs(60), download)
        .await
        .expect("the download must give up instead of looping")
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("data.bin"), "{msg}");
    assert!(msg.contains("4097") && msg.contains("4096"), "{msg}");
    s.fake.with(|i| {
        // retry_attempts = 3: three disagreements, never more requests than that
        assert_eq!(i.seen.object_requests.len(), 3, "bounded tries");
    });
    assert!(
        !dir.path().join("data.bin").exists(),
        "nothing unverified is put in place"
    );
}

/// Presigned URLs expire; a refused one is renewed once through `?path=`.
#[tokio::test]
async fn refused_presigned_url_is_renewed_once() {
    let mut cfg = config(mmar_files());
    cfg.stale_manifest_urls = true;
    let s = start(cfg).await;
    let c = client(&s, None);
    let resolved = c.resolve(&model(Some("1"))).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    c.download(&resolved, dir.path(), &no_progress)
        .await
        .unwrap();
    for (path, data) in mmar_files() {
        assert_eq!(std::fs::read(dir.path().join(&path)).unwrap(), data);
    }
    s.fake.with(|i| {
        let renewals = i
            .seen
            .api_requests
            .iter()
            .filter(|(p, _)| p.contains("/1/files?path="))
            .count();
        assert_eq!(renewals, 5, "one renewal per file");
        assert_eq!(i.seen.object_requests.len(), 10);
    });
}
