//! terraform-provider-clara: a thin binary over the provider crate's modules.

mod azureml;
mod client;
mod data_sources;
#[cfg(test)]
mod docs_check;
mod ids;
mod iso8601;
mod provider;
mod resources;
mod storage;
mod transfer;

use clara_framework::ProviderServer;
use clara_tfplugin::serve::{ServeConfig, serve_main};

/// The address users put in `required_providers`.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/clara-ml/clara";

fn main() -> std::process::ExitCode {
    serve_main(
        || ProviderServer::new(provider::ClaraProvider),
        ServeConfig {
            provider_address: PROVIDER_ADDRESS.to_string(),
        },
    )
}

/// Hex SHA-256 of a JSON value in canonical (sorted-key) form: names derived from content.
pub fn content_hash(v: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    // serde_json maps are sorted (no preserve_order feature), so this is canonical.
    let bytes = serde_json::to_vec(v).expect("JSON serializes");
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
