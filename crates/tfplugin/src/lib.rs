//! Protocol layer: the go-plugin handshake, auto-mTLS, the tfplugin5 gRPC services and
//! Terraform's wire values. Knows nothing about any cloud.

pub mod handshake;
mod json;
pub mod logging;
mod msgpack;
mod plugin_services;
pub mod serve;
pub mod server;
pub mod tls;
pub mod value;

pub use serve::{ServeConfig, serve_main};
pub use server::serve_on;
pub use tls::{PinnedClientCert, ServerIdentity, TlsSetup};
pub use value::{Type, Value, WireError};

/// Generated protobuf/gRPC code.
pub mod pb {
    /// Terraform plugin protocol 5.10 (`package tfplugin5`).
    pub mod tfplugin5 {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("tfplugin5");
    }
    /// go-plugin's internal services (`package plugin`).
    pub mod plugin {
        #![allow(clippy::all, missing_docs)]
        tonic::include_proto!("plugin");
    }
}
