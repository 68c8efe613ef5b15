//! clara-emulator: a local emulator of Azure Resource Manager (Microsoft.MachineLearningServices)
//! and the Entra ID token endpoint, for the tests of terraform-provider-clara.
//!
//! Layout: `server` (listener, TLS, connection loop), `pipeline` (per-route auth, api-version,
//! fault injection), `auth` (token endpoint, bearer checks), `arm::*` (one module per resource
//! family), `schema` (catalog-driven body validation), `store` (persistent state), `log`
//! (request log), `admin` (`/_emulator/*`). See README.md.

pub mod admin;
pub mod app;
pub mod arm;
pub mod auth;
pub mod clara_sim;
pub mod config;
pub mod faults;
pub mod headers;
pub mod log;
pub mod metadata;
pub mod mlflow;
pub mod ngc;
pub mod pipeline;
pub mod runhistory;
pub mod schema;
pub mod server;
pub mod storage;
pub mod store;
pub mod tls;
pub mod training;
pub mod util;

pub use config::Config;
pub use faults::{FaultConfig, FaultKind, ScriptedFault};
pub use server::{Options, Running, read_endpoint, start};
pub use storage::StorageConfig;
pub use training::{JobFailSwitches, JobsConfig, PhaseDurations};
