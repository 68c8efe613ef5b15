//! The blob client against a real Azurite: Shared Key and SAS signing, block
//! uploads, skip-if-unchanged, small objects, listing and deletion.

use std::collections::BTreeMap;
use std::path::Path;

use clara_azure::Secret;
use clara_azure::blob::{BlobClient, BlobCredential, BlobError, BlobOptions};
use md5::{Digest, Md5};

use crate::blob_azurite::{ACCOUNT, Azurite, KEY, account_sas, fast_retry};

const MIB: usize = 1024 * 1024;

fn opts(block_size: usize, parallelism: usize) -> BlobOptions {
    BlobOptions {
        block_size,
        parallelism,
        retry: fast_retry(),
    }
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Deterministic, incompressible-looking content (xorshift).
fn write_pattern(path: &Path, len: usize, seed: u64) -> [u8; 16] {
    let mut x = seed | 1;
    let mut data = Vec::with_capacity(len);
    while data.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    data.truncate(len);
    std::fs::write(path, &data).unwrap();
    Md5::digest(&data).into()
}

fn md5_file(path: &Path) -> [u8; 16] {
    Md5::digest(std::fs::read(path).unwrap()).into()
}

#[tokio::test]
async fn block_upload_skip_and_reupload() {
    let azurite = Azurite::start();
    let client = azurite.client(Azurite::shared_key(), opts(MIB, 4));
    client.ensure_container("data").await.unwrap();
    client.ensure_container("data").await.unwrap(); // already exists: fine

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.bin");
    // 20 MiB plus a partial last block.
    let size = 20 * MIB + 12_345;
    let md5 = write_pattern(&file, size, 42);
    // Spaces, '+', unicode and '/' in the name exercise encoding and signing.
    let name = "run 1/model+weights/ünïcode.bin";
    let metadata = meta(&[("source", "ngc"), ("Version", "1.0")]);

    let out = client
        .upload_file("data", name, &file, &metadata)
        .await
        .unwrap();
    assert!(!out.skipped, "{out:?}");
    assert_eq!(out.md5, md5);
    assert_eq!(out.bytes_sent, size as u64);

    let items = client.list("data", "run 1/").await.unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0].name, name);
    assert_eq!(items[0].size, size as u64);
    assert_eq!(items[0].md5, Some(md5));
    assert_eq!(
        items[0].metadata,
        meta(&[("source", "ngc"), ("version", "1.0")])
    );
    let props = client.properties("data", name).await.unwrap().unwrap();
    assert_eq!((props.size, props.md5), (size as u64, Some(md5)));
    let bytes = client.get_bytes("data", name).await.unwrap().unwrap();
    assert_eq!(bytes.len(), size);
    assert_eq!(<[u8; 16]>::from(Md5::digest(&bytes)), md5);

    // Same content: skipped, nothing sent.
    let again = client
        .upload_file("data", name, &file, &metadata)
        .await
        .unwrap();
    assert!(
        again.skipped && again.bytes_sent == 0 && again.md5 == md5,
        "{again:?}"
    );

    // Same content, new metadata: still skipped, metadata updated.
    let metadata2 = meta(&[("source", "ngc"), ("version", "2.0")]);
    let again = client
        .upload_file("data", name, &file, &metadata2)
        .await
        .unwrap();
    assert!(again.skipped, "{again:?}");
    assert_eq!(
        client
            .properties("data", name)
            .await
            .unwrap()
            .unwrap()
            .metadata,
        metadata2
    );

    // Changed content (same size): uploaded again, with a different parallelism.
    let mut data = std::fs::read(&file).unwrap();
    data[5 * MIB + 7] ^= 0xff;
    std::fs::write(&file, &data).unwrap();
    let md5_changed = md5_file(&file);
    let client1 = azurite.client(Azurite::shared_key(), opts(3 * MIB, 1));
    let out = client1
        .upload_file("data", name, &file, &metadata2)
        .await
        .unwrap();
    assert!(!out.skipped && out.md5 == md5_changed, "{out:?}");
    assert_eq!(out.bytes_sent, size as u64);
    let items = client.list("data", "").await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].md5, Some(md5_changed));

    // Shrunk to below one block: a single Put Blob, still with an MD5.
    let small = write_pattern(&file, 1000, 7);
    let out = client
        .upload_file("data", name, &file, &BTreeMap::new())
        .await
        .unwrap();
    assert!(
        !out.skipped && out.bytes_sent == 1000 && out.md5 == small,
        "{out:?}"
    );
    let props = client.properties("data", name).await.unwrap().unwrap();
    assert_eq!((props.size, props.md5), (1000, Some(small)));
    assert!(props.metadata.is_empty(), "{:?}", props.metadata);
    assert!(
        client
            .upload_file("data", name, &file, &BTreeMap::new())
            .await
            .unwrap()
            .skipped
    );

    // Exactly one block, and an empty file.
    write_pattern(&file, MIB, 9);
    let out = client
        .upload_file("data", "exact.bin", &file, &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(out.bytes_sent, MIB as u64);
    std::fs::write(&file, b"").unwrap();
    let out = client
        .upload_file("data", "empty.bin", &file, &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(out.bytes_sent, 0);
    assert_eq!(
        client.get_bytes("data", "empty.bin").await.unwrap(),
        Some(vec![])
    );
    drop(azurite);
}

#[tokio::test]
async fn small_objects_listing_and_delete_prefix() {
    let azurite = Azurite::start();
    let client = azurite.client(Azurite::shared_key(), opts(MIB, 3));
    client.ensure_container("assets").await.unwrap();

    assert_eq!(client.get_bytes("assets", "missing").await.unwrap(), None);
    assert_eq!(client.properties("assets", "missing").await.unwrap(), None);
    let missing_container = client.get_bytes("nope", "x").await.unwrap();
    assert_eq!(missing_container, None);

    let marker = br#"{"complete":true}"#.to_vec();
    client
        .put_bytes(
            "assets",
            "p/.clara-complete.json",
            marker.clone(),
            "application/json",
            &meta(&[("kind", "marker")]),
        )
        .await
        .unwrap();
    assert_eq!(
        client
            .get_bytes("assets", "p/.clara-complete.json")
            .await
            .unwrap(),
        Some(marker.clone())
    );
    for i in 0..12 {
        client
            .put_bytes(
                "assets",
                &format!("p/dir {i}/f&{i}.txt"),
                format!("file {i}").into_bytes(),
                "text/plain",
                &BTreeMap::new(),
            )
            .await
            .unwrap();
    }
    client
        .put_bytes(
            "assets",
            "other/keep.txt",
            b"keep".to_vec(),
            "text/plain",
            &BTreeMap::new(),
        )
        .await
        .unwrap();

    let items = client.list("assets", "p/").await.unwrap();
    assert_eq!(items.len(), 13);
    let m = items
        .iter()
        .find(|i| i.name == "p/.clara-complete.json")
        .unwrap();
    assert_eq!(m.size, marker.len() as u64);
    assert_eq!(m.md5, Some(Md5::digest(&marker).into()));
    assert_eq!(m.metadata, meta(&[("kind", "marker")]));
    assert!(items.iter().any(|i| i.name == "p/dir 3/f&3.txt"));
    assert_eq!(client.list("assets", "p/dir 1").await.unwrap().len(), 3); // 1, 10, 11
    assert!(client.list("assets", "zzz").await.unwrap().is_empty());

    assert_eq!(client.delete_prefix("assets", "p/").await.unwrap(), 13);
    assert!(client.list("assets", "p/").await.unwrap().is_empty());
    assert_eq!(client.list("assets", "").await.unwrap().len(), 1);
    assert_eq!(client.delete_prefix("assets", "p/").await.unwrap(), 0);
    assert!(client.delete("assets", "other/keep.txt").await.unwrap());
    assert!(!client.delete("assets", "other/keep.txt").await.unwrap());
    let err = client.delete_prefix("assets", "").await.unwrap_err();
    assert_eq!(err.code, BlobError::INVALID_INPUT);

    let err = client.list("nope", "").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert_eq!(err.code, "ContainerNotFound");
    drop(azurite);
}

#[tokio::test]
async fn sas_credential() {
    let azurite = Azurite::start();
    let sas = account_sas("rwdlac");
    let client = azurite.client(BlobCredential::Sas(Secret::new(sas.clone())), opts(MIB, 2));
    client.ensure_container("sas").await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.bin");
    let md5 = write_pattern(&file, 3 * MIB + 1, 5);
    let out = client
        .upload_file("sas", "a/f.bin", &file, &meta(&[("k", "v")]))
        .await
        .unwrap();
    assert!(!out.skipped);
    assert!(
        client
            .upload_file("sas", "a/f.bin", &file, &meta(&[("k", "v")]))
            .await
            .unwrap()
            .skipped
    );
    let items = client.list("sas", "a/").await.unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].md5, Some(md5));
    assert_eq!(items[0].metadata, meta(&[("k", "v")]));
    client
        .put_bytes("sas", "a/m", b"x".to_vec(), "text/plain", &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(
        client.get_bytes("sas", "a/m").await.unwrap(),
        Some(b"x".to_vec())
    );
    assert_eq!(client.delete_prefix("sas", "a/").await.unwrap(), 2);

    // A SAS that cannot write: a 403 whose error does not echo the signature.
    let read_only = account_sas("rl");
    let sig = read_only.split("sig=").nth(1).unwrap().to_owned();
    let ro = azurite.client(BlobCredential::Sas(Secret::new(read_only)), opts(MIB, 2));
    let err = ro
        .put_bytes(
            "sas",
            "a/denied",
            b"x".to_vec(),
            "text/plain",
            &BTreeMap::new(),
        )
        .await
        .unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    assert!(!err.to_string().contains(&sig), "{err}");
    // Tampered signature.
    let bad = azurite.client(
        BlobCredential::Sas(Secret::new(sas.replace("sig=", "sig=AAAA"))),
        opts(MIB, 2),
    );
    let err = bad.list("sas", "").await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    assert!(!err.to_string().contains("sig=AAAA"), "{err}");
    drop(azurite);
}

#[tokio::test]
async fn wrong_key_is_a_clear_403_without_secrets() {
    let azurite = Azurite::start();
    let wrong_key = "d3Jvbmcta2V5LWQzSnZibWN0YTJWNUxXUXpTblppYldOMFlUSldOVXhYVVhwVGJsbz0=";
    let client = azurite.client(
        BlobCredential::SharedKey {
            account: ACCOUNT.into(),
            key: Secret::new(wrong_key),
        },
        opts(MIB, 2),
    );
    let err = client.ensure_container("xyz").await.unwrap_err();
    assert!(err.is_forbidden(), "{err}");
    assert_eq!(err.code, "AuthorizationFailure", "{err}");
    let text = format!("{err} {err:?} {client:?}");
    assert!(!text.contains(wrong_key) && !text.contains(KEY), "{text}");
    assert!(text.contains("Create Container xyz"), "{text}");
}

/// Azurite reached through a `BlobClient` built only from public API pieces,
/// as the provider will do it, with the default options.
#[tokio::test]
async fn default_options_round_trip() {
    let azurite = Azurite::start();
    let client = BlobClient::new(
        azurite.account_url(),
        Azurite::shared_key(),
        clara_azure::build_http_client(&clara_azure::HttpClientOptions::default()).unwrap(),
        BlobOptions::default(),
    )
    .unwrap();
    client.ensure_container("ccc").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    let md5 = write_pattern(&file, 9 * MIB, 3); // two 8 MiB-default blocks
    let out = client
        .upload_file("ccc", "f", &file, &BTreeMap::new())
        .await
        .unwrap();
    assert_eq!(
        (out.skipped, out.md5, out.bytes_sent),
        (false, md5, 9 * MIB as u64)
    );
    assert_eq!(
        client.blob_url("ccc", "f").unwrap().as_str(),
        format!("http://127.0.0.1:{}/{ACCOUNT}/ccc/f", azurite.port)
    );
}
