//! NVIDIA NGC client and safe archive unpacking for the Clara provider. Knows nothing about
//! Terraform or Azure (it borrows only `Secret` and the HTTP client builder from
//! `clara-azure`).
//!
//! - [`source`]: asset references (`org/[team/]name[:version]`, NGC URLs) and API paths.
//! - [`NgcClient::resolve`]: version metadata and the file manifest (size + sha256).
//! - [`NgcClient::download`]: verified, resumable, bounded-parallel downloads.
//! - [`archive::unpack`]: zip / tar(.gz|.bz2|.xz) extraction with traversal, link and
//!   zip-bomb defences.

// Errors carry what a Terraform user needs to act on; they are rare, so size is fine.
#![allow(clippy::result_large_err)]

pub mod archive;
mod auth;
mod client;
mod download;
mod error;
mod fetch;
mod manifest;
mod retry;
pub mod source;

pub use archive::{ArchiveError, ArchiveKind, Limits, UnpackedFile, unpack};
pub use clara_azure::Secret;
pub use client::{
    API_KEY_ENV, DEFAULT_API_URL, DEFAULT_AUTH_URL, NgcClient, NgcOptions, api_key_from_env,
};
pub use download::{DownloadOutcome, DownloadedFile, Progress};
pub use error::{NgcError, hex, redact_url};
pub use manifest::{ManifestFile, ResolvedAsset, SingleFile, manifest_digest};
pub use source::{AssetKind, AssetRef};
