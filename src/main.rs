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
