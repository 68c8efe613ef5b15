//! Azure clients for the Clara provider: the shared HTTP client, Entra ID sign-in
//! (via `azure_identity`) and an ARM REST client with retries and long-running
//! operation polling, and a Blob Storage client (Shared Key / SAS). Knows nothing
//! about Terraform.

// `ArmError`'s public shape (status, code, message, target, details, request id)
// is part of the contract; errors are rare, so its size in `Result` is fine.
#![allow(clippy::result_large_err)]

pub mod arm;
pub mod auth;
pub mod blob;
pub mod cloud;
pub mod http;
pub mod secret;

pub use arm::{
    ArmClient, ArmError, ArmOptions, ArmResponse, DEFAULT_API_VERSION, DEFAULT_ARM_ENDPOINT,
    DEFAULT_ARM_SCOPE, LroStatus, RetryPolicy, redact_json,
};
pub use auth::{AuthError, AuthSettings, ForceRefresh, RefreshingCredential, credential};
pub use azure_core::credentials::TokenCredential;
pub use blob::{BlobClient, BlobCredential, BlobError, BlobItem, BlobOptions, UploadOutcome};
pub use cloud::Cloud;
pub use http::{HttpClientOptions, HttpError, build_http_client, load_pem_certificates};
pub use secret::Secret;
pub use tokio_util::sync::CancellationToken;
