//! terraform-provider-clara: a thin binary over the provider crate's modules.

mod azureml;
mod client;
mod code_asset;
mod data_sources;
#[cfg(test)]
mod docs_check;
mod functions;
mod identity;
mod ids;
mod iso8601;
mod ownership;
mod provider;
mod resources;
mod storage;
mod transfer;

use clara_framework::ProviderServer;
use clara_tfplugin::serve::{ServeConfig, serve_main};

/// The address users put in `required_providers`.
pub const PROVIDER_ADDRESS: &str = "registry.terraform.io/clara-ml/clara";

fn main() -> std::process::ExitCode {
    bound_allocator_footprint();
    serve_main(
        || ProviderServer::new(provider::ClaraProvider),
        ServeConfig {
            provider_address: PROVIDER_ADDRESS.to_string(),
        },
    )
}

/// Transfers allocate multi-MiB block buffers on many threads. glibc raises its mmap
/// threshold dynamically after such frees and then keeps the buffers in per-thread arenas,
/// so resident memory grew with the number of blocks; a fixed threshold returns them to the
/// OS on free and keeps peak memory flat whatever the asset size.
fn bound_allocator_footprint() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
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
