//! Typed access to values: resources decode config/plan/state into serde structs and
//! encode state back, so CRUD code reads like ordinary Rust.

use clara_tfplugin::{Type, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::diag::Diagnostics;

/// JSON view of a value in which unknown reads as null (apply-time code sees unknowns only
/// in computed attributes it is about to fill).
pub fn to_plain_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null | Value::Unknown => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Number(n) => {
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                J::from(*n as i64)
            } else {
                serde_json::Number::from_f64(*n)
                    .map(J::Number)
                    .unwrap_or(J::Null)
            }
        }
        Value::String(s) => J::String(s.clone()),
        Value::List(items) | Value::Set(items) | Value::Tuple(items) => {
            J::Array(items.iter().map(to_plain_json).collect())
        }
        Value::Map(m) | Value::Object(m) => J::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), to_plain_json(v)))
                .collect(),
        ),
    }
}

pub fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, Diagnostics> {
    serde_json::from_value(to_plain_json(v)).map_err(|e| {
        Diagnostics::from_error(
            "Provider error: value does not fit its model",
            e.to_string(),
        )
    })
}

pub fn encode<T: Serialize>(model: &T, ty: &Type) -> Result<Value, Diagnostics> {
    let json = serde_json::to_value(model).map_err(|e| {
        Diagnostics::from_error("Provider error: cannot encode state", e.to_string())
    })?;
    Value::from_json(&json, ty)
        .map_err(|e| Diagnostics::from_error("Provider error: cannot encode state", e.to_string()))
}
