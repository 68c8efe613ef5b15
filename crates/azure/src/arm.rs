//! Azure Resource Manager REST client: bearer auth, retries, error parsing and
//! long-running operation polling.

mod client;
mod error;
mod lro;
mod redact;
mod retry;

pub use client::{
    ArmClient, ArmOptions, ArmResponse, DEFAULT_API_VERSION, DEFAULT_ARM_ENDPOINT,
    DEFAULT_ARM_SCOPE,
};
pub use error::ArmError;
pub use lro::LroStatus;
pub use redact::redact_json;
pub use retry::{RetryPolicy, retry_after};
