//! Provider-defined functions: pure string helpers for the ids and URLs this provider's
//! users write by hand. No API calls, no configuration.

pub mod arm_id;
pub mod datastore;
pub mod ngc;

use std::sync::Arc;

use clara_framework::{Function, FunctionError, Value};

pub fn all() -> Vec<Arc<dyn Function>> {
    vec![
        Arc::new(ngc::NgcUrl),
        Arc::new(ngc::ParseNgcUrl),
        Arc::new(datastore::DatastoreUri),
        Arc::new(arm_id::ParseId),
    ]
}

/// Argument `i` as a string (parameters are typed string, so only null is possible besides).
fn string_arg<'a>(args: &'a [Value], i: usize, name: &str) -> Result<&'a str, FunctionError> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| FunctionError::argument(i, format!("{name} must be a string")))
}

/// An object of string (or null) attributes.
fn object(attrs: &[(&str, Option<String>)]) -> Value {
    Value::Object(
        attrs
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    v.clone().map(Value::String).unwrap_or(Value::Null),
                )
            })
            .collect(),
    )
}

fn object_type(names: &[&str]) -> clara_framework::Type {
    clara_framework::Type::object(names.iter().map(|n| (*n, clara_framework::Type::String)))
}
