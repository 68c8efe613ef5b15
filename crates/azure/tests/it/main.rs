//! Integration tests for clara-azure against in-process HTTP(S) servers and,
//! for the blob client, a private Azurite per test (`make tools-azurite`).

mod common;

mod arm_errors;
mod arm_lro;
mod arm_retry;
mod auth_flows;
mod blob;
mod blob_azurite;
mod blob_entra;
mod blob_retry;
mod logging;
mod tls;
