//! Integration tests for clara-azure against in-process HTTP(S) servers.

mod common;

mod arm_errors;
mod arm_lro;
mod arm_retry;
mod auth_flows;
mod logging;
mod tls;
