//! Azure Blob Storage REST client, authorized with Shared Key, a SAS or an Entra ID
//! bearer token (https only), over https (Azure) or http (Azurite, path-style URLs). Hand-written because the
//! official Rust blob crate has no Shared Key signing and requires https for
//! Entra ID. Covers what uploading datasets needs: containers, block uploads
//! with MD5 checks and skip-if-unchanged, small objects, listing and deletion.

mod client;
mod error;
mod sign;
mod upload;
mod xml;

pub use client::{
    BLOB_API_VERSION, BlobClient, BlobCredential, BlobItem, BlobOptions, DEFAULT_BLOCK_SIZE,
    MAX_BLOCK_SIZE, MAX_BLOCKS, STORAGE_SCOPE,
};
pub use error::BlobError;
pub use upload::UploadOutcome;
