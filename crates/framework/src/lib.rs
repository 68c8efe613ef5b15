//! Provider framework: what a resource needs to be "schema + CRUD" and nothing else.
//!
//! - [`schema`]: attributes, blocks, plan behaviour;
//! - [`plan`]: the generic plan engine and config validation;
//! - [`resource`]: the Provider / Resource / DataSource traits;
//! - [`function`]: provider-defined functions;
//! - [`server`]: the tfplugin5 service over any `Provider`;
//! - [`model`]: serde-typed views of values.

pub mod diag;
pub mod function;
pub mod model;
pub mod plan;
pub mod resource;
pub mod schema;
pub mod server;
pub mod validators;
mod wire;

pub use async_trait::async_trait;
pub use clara_tfplugin::{Type, Value};
pub use diag::{AttrPath, Diagnostics};
pub use function::{Function, FunctionError, Parameter};
pub use resource::{
    ApplyRequest, DataSource, IdentityAttribute, IdentitySchema, PlanLedger, PlanRequest, Provider,
    Resource, ResourceIdentity, TimeoutDefaults,
};
pub use schema::{
    Attribute, Block, ModifierRequest, NestedBlock, Nesting, PlanAction, PlanModifier, Schema,
};
pub use server::ProviderServer;
