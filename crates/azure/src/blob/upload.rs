//! File upload: whole-file MD5, skip when the blob already matches, otherwise
//! Put Block with bounded parallelism and Put Block List.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use md5::{Digest, Md5};
use rand::Rng;
use reqwest::Method;
use tokio::task::JoinSet;

use super::client::{BlobClient, MAX_BLOCKS, Request, md5_of, validate_metadata};
use super::error::BlobError;
use super::xml;

/// Content type given to uploaded files.
const FILE_CONTENT_TYPE: &str = "application/octet-stream";
/// Read size while hashing a file.
const HASH_CHUNK: usize = 1024 * 1024;

/// What [`BlobClient::upload_file`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadOutcome {
    /// The blob already had this content (same size and `Content-MD5`); no data was sent.
    pub skipped: bool,
    /// MD5 of the file (now the blob's `Content-MD5`).
    pub md5: [u8; 16],
    /// Content bytes sent (0 when skipped; retries not counted twice).
    pub bytes_sent: u64,
}

/// Block ids for one upload: base64 of `clara-{16 hex nonce}-{8 digit index}`,
/// 31 bytes, so every id has the same length (44 characters) as the service
/// requires. The per-upload nonce keeps ids of an interrupted or concurrent
/// upload of the same blob from being mistaken for ours.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockIds {
    nonce: u64,
}

impl BlockIds {
    pub fn random() -> Self {
        Self {
            nonce: rand::rng().random(),
        }
    }

    #[cfg(test)]
    pub fn with_nonce(nonce: u64) -> Self {
        Self { nonce }
    }

    /// The (unencoded) base64 id of block `index` (< 100,000,000).
    pub fn id(&self, index: u64) -> String {
        debug_assert!(index < 100_000_000);
        B64.encode(format!("clara-{:016x}-{index:08}", self.nonce))
    }
}

impl BlobClient {
    /// Uploads `local_path` to `container/blob_name` with `metadata`, unless the
    /// blob already holds the same bytes.
    ///
    /// The file's MD5 is computed first (streaming). If the blob exists with the
    /// same size and `Content-MD5`, nothing is uploaded (`skipped: true`; its
    /// metadata is updated if it differs). Files up to `block_size` go in one
    /// Put Blob; larger ones as `block_size` blocks (each with `Content-MD5`,
    /// `parallelism` at a time, read from the file as needed so memory stays
    /// within `parallelism × block_size`) and a Put Block List that sets the
    /// whole-file `Content-MD5` and the metadata. Fails if the file changes
    /// while it is being uploaded.
    pub async fn upload_file(
        &self,
        container: &str,
        blob_name: &str,
        local_path: &Path,
        metadata: &BTreeMap<String, String>,
    ) -> Result<UploadOutcome, BlobError> {
        let metadata = validate_metadata(metadata)?;
        self.path(container, Some(blob_name))?;
        let size = std::fs::metadata(local_path)
            .map_err(|e| BlobError::io(format!("cannot read {}", local_path.display()), &e))?
            .len();

        // Hash the whole file up front only when a blob of the same size might already hold
        // it; otherwise the MD5 is computed while the blocks are read, in one pass.
        if let Some(existing) = self.properties(container, blob_name).await?
            && existing.size == size
            && existing.md5.is_some()
        {
            let path = local_path.to_owned();
            let (hashed_size, md5) = tokio::task::spawn_blocking(move || hash_file(&path))
                .await
                .map_err(join_error)??;
            if hashed_size == size && existing.md5 == Some(md5) {
                if existing.metadata != metadata {
                    self.set_metadata(container, blob_name, &metadata).await?;
                }
                tracing::debug!(container, blob = blob_name, size, "blob already up to date");
                return Ok(UploadOutcome {
                    skipped: true,
                    md5,
                    bytes_sent: 0,
                });
            }
        }

        let block_size = self.inner.opts.block_size as u64;
        if size <= block_size {
            let path = local_path.to_owned();
            let len = size as usize;
            let (bytes, md5) = tokio::task::spawn_blocking(move || {
                let mut file = open(&path)?;
                let bytes = read_block(&mut file, &path, len)?;
                ensure_eof(&mut file, &path)?;
                let md5 = md5_of(&bytes);
                Ok::<_, BlobError>((Bytes::from(bytes), md5))
            })
            .await
            .map_err(join_error)??;
            self.put_blob(
                container,
                blob_name,
                bytes,
                &md5,
                FILE_CONTENT_TYPE,
                &metadata,
            )
            .await?;
            return Ok(UploadOutcome {
                skipped: false,
                md5,
                bytes_sent: size,
            });
        }

        let (bytes_sent, md5) = self
            .upload_blocks(container, blob_name, local_path, size, &metadata)
            .await?;
        Ok(UploadOutcome {
            skipped: false,
            md5,
            bytes_sent,
        })
    }

    async fn upload_blocks(
        &self,
        container: &str,
        blob_name: &str,
        local_path: &Path,
        size: u64,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(u64, [u8; 16]), BlobError> {
        let block_size = self.inner.opts.block_size as u64;
        let count = size.div_ceil(block_size);
        if count > MAX_BLOCKS {
            return Err(BlobError::invalid_input(format!(
                "{}: {size} bytes need {count} blocks of {block_size} bytes; a blob holds at most \
                 {MAX_BLOCKS} blocks, so use a larger block size",
                local_path.display()
            )));
        }
        let ids = BlockIds::random();
        let parallelism = self.inner.opts.parallelism;
        let started = std::time::Instant::now();
        tracing::debug!(
            container,
            blob = blob_name,
            size,
            blocks = count,
            block_size,
            parallelism,
            "uploading blob in blocks"
        );

        let mut reader = Some(BlockReader {
            file: open(local_path)?,
            path: local_path.to_owned(),
            running: Md5::new(),
        });
        // Dropping the set (on error or cancellation) aborts blocks in flight.
        let mut tasks: JoinSet<Result<u64, BlobError>> = JoinSet::new();
        let mut block_ids = Vec::with_capacity(count as usize);
        let mut sent = 0u64;
        for index in 0..count {
            while tasks.len() >= parallelism {
                sent += next_done(&mut tasks).await?;
            }
            let len = (size - index * block_size).min(block_size) as usize;
            let mut r = reader.take().expect("reader returned after each block");
            let (r, block) = tokio::task::spawn_blocking(move || {
                let block = read_block(&mut r.file, &r.path, len)?;
                r.running.update(&block);
                Ok::<_, BlobError>((r, Bytes::from(block)))
            })
            .await
            .map_err(join_error)??;
            reader = Some(r);

            let id = ids.id(index);
            block_ids.push(id.clone());
            let client = self.clone();
            let (container, blob_name) = (container.to_owned(), blob_name.to_owned());
            tasks.spawn(async move {
                let len = block.len() as u64;
                // The per-block MD5 runs here, in parallel, off the sequential read path.
                let hashed = block.clone();
                let block_md5 = tokio::task::spawn_blocking(move || md5_of(&hashed))
                    .await
                    .map_err(join_error)?;
                let req = Request::new("Put Block", Method::PUT, &container, Some(&blob_name))
                    .query("comp", "block")
                    .query("blockid", id)
                    .header("content-md5", &B64.encode(block_md5))?
                    .body(block);
                client.send(req).await?;
                Ok(len)
            });
        }
        while !tasks.is_empty() {
            sent += next_done(&mut tasks).await?;
        }

        // The whole-blob MD5 is that of exactly the bytes sent; a file that grew meanwhile
        // is an error rather than a silently truncated blob.
        let mut r = reader.take().expect("reader present");
        let md5: [u8; 16] = tokio::task::spawn_blocking(move || {
            ensure_eof(&mut r.file, &r.path)?;
            Ok::<_, BlobError>(r.running.finalize().into())
        })
        .await
        .map_err(join_error)??;

        self.commit_blocks(container, blob_name, &block_ids, size, md5, metadata)
            .await?;
        tracing::debug!(
            container,
            blob = blob_name,
            size,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "committed blob"
        );
        Ok((sent, md5))
    }

    /// Put Block List with the whole-file MD5 and metadata.
    async fn commit_blocks(
        &self,
        container: &str,
        blob_name: &str,
        block_ids: &[String],
        size: u64,
        md5: [u8; 16],
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), BlobError> {
        let body = Bytes::from(xml::block_list(block_ids));
        let req = Request::new("Put Block List", Method::PUT, container, Some(blob_name))
            .query("comp", "blocklist")
            .header("content-type", "application/xml; charset=utf-8")?
            .header("content-md5", &B64.encode(md5_of(&body)))?
            .header("x-ms-blob-content-type", FILE_CONTENT_TYPE)?
            .header("x-ms-blob-content-md5", &B64.encode(md5))?
            .metadata(metadata)?
            .body(body);
        match self.send(req).await {
            Ok(_) => Ok(()),
            // A retried commit whose first attempt did succeed finds its blocks
            // already committed (no longer "latest uncommitted").
            Err(e) if e.status == Some(400) && e.code == "InvalidBlockList" => {
                match self.properties(container, blob_name).await {
                    Ok(Some(p)) if p.size == size && p.md5 == Some(md5) => Ok(()),
                    _ => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }
}

struct BlockReader {
    file: File,
    path: PathBuf,
    running: Md5,
}

async fn next_done(tasks: &mut JoinSet<Result<u64, BlobError>>) -> Result<u64, BlobError> {
    match tasks.join_next().await {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(join_error(e)),
        None => Ok(0),
    }
}

fn join_error(e: tokio::task::JoinError) -> BlobError {
    BlobError::new("InternalError", format!("upload task failed: {e}"))
}

fn changed(path: &Path) -> BlobError {
    BlobError::new(
        BlobError::FILE_CHANGED,
        format!("{} changed while it was being uploaded", path.display()),
    )
}

fn open(path: &Path) -> Result<File, BlobError> {
    File::open(path).map_err(|e| BlobError::io(format!("cannot open {}", path.display()), &e))
}

/// Size and MD5 of a file, read in 1 MiB pieces.
fn hash_file(path: &Path) -> Result<(u64, [u8; 16]), BlobError> {
    let mut file = open(path)?;
    let meta = file
        .metadata()
        .map_err(|e| BlobError::io(format!("cannot stat {}", path.display()), &e))?;
    if !meta.is_file() {
        return Err(BlobError::invalid_input(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    let mut hasher = Md5::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(BlobError::io(format!("cannot read {}", path.display()), &e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize().into()))
}

/// Exactly `len` bytes from the file's current position.
fn read_block(file: &mut File, path: &Path, len: usize) -> Result<Vec<u8>, BlobError> {
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            changed(path)
        } else {
            BlobError::io(format!("cannot read {}", path.display()), &e)
        }
    })?;
    Ok(buf)
}

/// Fails if the file grew after it was hashed.
fn ensure_eof(file: &mut File, path: &Path) -> Result<(), BlobError> {
    let mut one = [0u8; 1];
    match file.read(&mut one) {
        Ok(0) => Ok(()),
        Ok(_) => Err(changed(path)),
        Err(e) => Err(BlobError::io(format!("cannot read {}", path.display()), &e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn block_ids_are_fixed_length_unique_and_small() {
        let ids = BlockIds::with_nonce(0x0123_4567_89ab_cdef);
        assert_eq!(
            String::from_utf8(B64.decode(ids.id(7)).unwrap()).unwrap(),
            "clara-0123456789abcdef-00000007"
        );
        let all: Vec<String> = [0u64, 1, 9, 10, 999, 49_999, 50_000, 99_999_999]
            .iter()
            .map(|&i| ids.id(i))
            .collect();
        let len = all[0].len();
        assert!(all.iter().all(|id| id.len() == len), "{all:?}");
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
        for id in &all {
            assert!(B64.decode(id).unwrap().len() <= 64);
        }
        // A different upload of the same blob gets different ids of the same length.
        let other = BlockIds::random();
        let mut different = 0;
        for i in 0..4 {
            assert_eq!(other.id(i).len(), len);
            different += usize::from(other.id(i) != ids.id(i));
        }
        assert!(different > 0);
    }

    #[test]
    fn block_ids_survive_query_encoding() {
        // '+', '/' and '=' must be percent-encoded in the blockid query value.
        let id = BlockIds::with_nonce(u64::MAX).id(12_345_678);
        let encoded = crate::blob::sign::percent_encode(&id, false);
        assert!(!encoded.contains(['+', '/', '=']), "{encoded}");
        assert!(id.ends_with('=') && encoded.ends_with("%3D"));
    }

    #[test]
    fn hashes_files_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(HASH_CHUNK * 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&path, &data).unwrap();
        let (size, md5) = hash_file(&path).unwrap();
        assert_eq!(size, data.len() as u64);
        assert_eq!(md5, md5_of(&data));
        assert!(hash_file(dir.path()).is_err());
        assert_eq!(
            hash_file(&dir.path().join("missing")).unwrap_err().code,
            BlobError::IO_ERROR
        );
    }
}
