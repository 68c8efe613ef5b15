//! JSON forms: cty type constraints (schema `type` bytes) and JSON values
//! (UpgradeResourceState's `raw_state.json`, plus a debug rendering).

use std::collections::BTreeMap;

use serde_json::{Map as JMap, Value as J};

use crate::value::{Path, Type, Value, WireError, as_wire_int, number_to_string, parse_number};

impl Type {
    /// The cty JSON type constraint, e.g. `"string"`, `["list","string"]`,
    /// `["object",{"a":"string"}]`, as carried in `Schema.Attribute.type`.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        self.to_json_value().to_string().into_bytes()
    }

    pub fn to_json_value(&self) -> J {
        let pair = |kind: &str, inner: J| J::Array(vec![J::from(kind), inner]);
        match self {
            Type::String => J::from("string"),
            Type::Number => J::from("number"),
            Type::Bool => J::from("bool"),
            Type::Dynamic => J::from("dynamic"),
            Type::List(e) => pair("list", e.to_json_value()),
            Type::Set(e) => pair("set", e.to_json_value()),
            Type::Map(e) => pair("map", e.to_json_value()),
            Type::Object(attrs) => pair(
                "object",
                J::Object(
                    attrs
                        .iter()
                        .map(|(k, t)| (k.clone(), t.to_json_value()))
                        .collect(),
                ),
            ),
            Type::Tuple(elems) => pair(
                "tuple",
                J::Array(elems.iter().map(Type::to_json_value).collect()),
            ),
        }
    }

    /// Parses a cty JSON type constraint. An object's optional-attribute list
    /// (a third element) is accepted and ignored.
    pub fn from_json(bytes: &[u8]) -> Result<Type, WireError> {
        let j: J =
            serde_json::from_slice(bytes).map_err(|e| WireError::InvalidType(e.to_string()))?;
        Type::from_json_value(&j)
    }

    pub fn from_json_value(j: &J) -> Result<Type, WireError> {
        let bad = || WireError::InvalidType(j.to_string());
        match j {
            J::String(s) => match s.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                _ => Err(bad()),
            },
            J::Array(parts) => {
                let (Some(J::String(kind)), Some(inner)) = (parts.first(), parts.get(1)) else {
                    return Err(bad());
                };
                let extra_ok = parts.len() == 2 || (kind == "object" && parts.len() == 3);
                if !extra_ok {
                    return Err(bad());
                }
                match kind.as_str() {
                    "list" => Ok(Type::List(Box::new(Type::from_json_value(inner)?))),
                    "set" => Ok(Type::Set(Box::new(Type::from_json_value(inner)?))),
                    "map" => Ok(Type::Map(Box::new(Type::from_json_value(inner)?))),
                    "object" => {
                        let J::Object(attrs) = inner else {
                            return Err(bad());
                        };
                        let mut out = BTreeMap::new();
                        for (k, t) in attrs {
                            out.insert(k.clone(), Type::from_json_value(t)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let J::Array(elems) = inner else {
                            return Err(bad());
                        };
                        Ok(Type::Tuple(
                            elems
                                .iter()
                                .map(Type::from_json_value)
                                .collect::<Result<_, _>>()?,
                        ))
                    }
                    _ => Err(bad()),
                }
            }
            _ => Err(bad()),
        }
    }
}

impl Value {
    /// Decodes cty JSON (as stored in Terraform state) against `ty`.
    ///
    /// Attributes missing from a JSON object become null and undeclared ones are
    /// dropped, so state written by an older schema still loads. A `"dynamic"`
    /// value is expected as `{"value":…,"type":…}`, as cty writes it.
    pub fn from_json(j: &J, ty: &Type) -> Result<Value, WireError> {
        from_json(j, ty, &mut Path::default())
    }

    /// Untyped JSON rendering for logs and tests. Unknown renders as the string
    /// `"<unknown>"`; sets and tuples render as arrays.
    pub fn to_json(&self) -> J {
        match self {
            Value::Null => J::Null,
            Value::Unknown => J::from("<unknown>"),
            Value::Bool(b) => J::Bool(*b),
            Value::Number(n) => json_number(*n),
            Value::String(s) => J::from(s.as_str()),
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                J::Array(v.iter().map(Value::to_json).collect())
            }
            Value::Map(m) | Value::Object(m) => {
                J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// cty JSON for `ty` (the inverse of [`Value::from_json`]): dynamic values are
    /// wrapped as `{"value":…,"type":…}`. Fails on unknowns, which JSON cannot carry,
    /// and on values that do not fit `ty`.
    pub fn to_json_typed(&self, ty: &Type) -> Result<J, WireError> {
        to_json_typed(self, ty, &mut Path::default())
    }
}

fn json_number(n: f64) -> J {
    match as_wire_int(n) {
        Some(i) => J::from(i),
        // Non-finite numbers have no JSON form.
        None => serde_json::Number::from_f64(n)
            .map(J::Number)
            .unwrap_or(J::Null),
    }
}

fn json_kind(j: &J) -> &'static str {
    match j {
        J::Null => "null",
        J::Bool(_) => "bool",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

fn from_json(j: &J, ty: &Type, path: &mut Path) -> Result<Value, WireError> {
    if j.is_null() {
        return Ok(Value::Null);
    }
    let mismatch = |path: &Path| Err(WireError::mismatch(&path.render(), ty, json_kind(j)));
    match ty {
        Type::Dynamic => match j {
            J::Object(o) if o.len() == 2 && o.contains_key("value") && o.contains_key("type") => {
                let inner = Type::from_json_value(&o["type"])?;
                from_json(&o["value"], &inner, path)
            }
            // Not cty's wrapper: take the JSON at face value rather than fail.
            other => Ok(infer_from_json(other)),
        },
        Type::String => match j {
            J::String(s) => Ok(Value::String(s.clone())),
            J::Number(n) => Ok(Value::String(
                n.as_f64()
                    .map(number_to_string)
                    .unwrap_or_else(|| n.to_string()),
            )),
            J::Bool(b) => Ok(Value::String(b.to_string())),
            _ => mismatch(path),
        },
        Type::Number => match j {
            J::Number(n) => n
                .as_f64()
                .map(Value::Number)
                .map_or_else(|| mismatch(path), Ok),
            J::String(s) => parse_number(s)
                .map(Value::Number)
                .map_or_else(|| mismatch(path), Ok),
            _ => mismatch(path),
        },
        Type::Bool => match j {
            J::Bool(b) => Ok(Value::Bool(*b)),
            J::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => mismatch(path),
        },
        Type::List(elem) | Type::Set(elem) => match j {
            J::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.index(i);
                    out.push(from_json(item, elem, path)?);
                    path.pop();
                }
                Ok(if matches!(ty, Type::Set(_)) {
                    Value::Set(out)
                } else {
                    Value::List(out)
                })
            }
            _ => mismatch(path),
        },
        Type::Tuple(elems) => match j {
            J::Array(items) if items.len() == elems.len() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, ety)) in items.iter().zip(elems).enumerate() {
                    path.index(i);
                    out.push(from_json(item, ety, path)?);
                    path.pop();
                }
                Ok(Value::Tuple(out))
            }
            _ => mismatch(path),
        },
        Type::Map(elem) => match j {
            J::Object(o) => {
                let mut out = BTreeMap::new();
                for (k, v) in o {
                    path.key(k);
                    out.insert(k.clone(), from_json(v, elem, path)?);
                    path.pop();
                }
                Ok(Value::Map(out))
            }
            _ => mismatch(path),
        },
        Type::Object(attrs) => match j {
            J::Object(o) => {
                let mut out = BTreeMap::new();
                for (name, aty) in attrs {
                    let v = match o.get(name) {
                        Some(item) => {
                            path.attr(name);
                            let v = from_json(item, aty, path)?;
                            path.pop();
                            v
                        }
                        None => Value::Null,
                    };
                    out.insert(name.clone(), v);
                }
                Ok(Value::Object(out))
            }
            _ => mismatch(path),
        },
    }
}

fn infer_from_json(j: &J) -> Value {
    match j {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n.as_f64().map(Value::Number).unwrap_or(Value::Null),
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::Tuple(items.iter().map(infer_from_json).collect()),
        J::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), infer_from_json(v)))
                .collect(),
        ),
    }
}

fn to_json_typed(v: &Value, ty: &Type, path: &mut Path) -> Result<J, WireError> {
    let unfit = |path: &Path| Err(WireError::mismatch(&path.render(), ty, v.kind()));
    match v {
        Value::Null => return Ok(J::Null),
        Value::Unknown => {
            return Err(WireError::mismatch(
                &path.render(),
                "a known value (JSON has no unknowns)",
                "unknown",
            ));
        }
        _ => {}
    }
    match ty {
        Type::Dynamic => {
            let concrete = v.infer_type();
            let inner = to_json_typed(v, &concrete, path)?;
            let mut o = JMap::new();
            o.insert("value".into(), inner);
            o.insert("type".into(), concrete.to_json_value());
            Ok(J::Object(o))
        }
        Type::String => match v {
            Value::String(s) => Ok(J::from(s.as_str())),
            Value::Number(n) => Ok(J::from(number_to_string(*n))),
            Value::Bool(b) => Ok(J::from(b.to_string())),
            _ => unfit(path),
        },
        Type::Number => match v {
            Value::Number(n) => Ok(json_number(*n)),
            Value::String(s) => parse_number(s)
                .map(json_number)
                .map_or_else(|| unfit(path), Ok),
            _ => unfit(path),
        },
        Type::Bool => match v {
            Value::Bool(b) => Ok(J::Bool(*b)),
            _ => unfit(path),
        },
        Type::List(elem) | Type::Set(elem) => match v.as_elements() {
            Some(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.index(i);
                    out.push(to_json_typed(item, elem, path)?);
                    path.pop();
                }
                Ok(J::Array(out))
            }
            None => unfit(path),
        },
        Type::Tuple(elems) => match v.as_elements() {
            Some(items) if items.len() == elems.len() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, ety)) in items.iter().zip(elems).enumerate() {
                    path.index(i);
                    out.push(to_json_typed(item, ety, path)?);
                    path.pop();
                }
                Ok(J::Array(out))
            }
            _ => unfit(path),
        },
        Type::Map(elem) => match v.as_map() {
            Some(m) => {
                let mut out = JMap::new();
                for (k, item) in m {
                    path.key(k);
                    out.insert(k.clone(), to_json_typed(item, elem, path)?);
                    path.pop();
                }
                Ok(J::Object(out))
            }
            None => unfit(path),
        },
        Type::Object(attrs) => match v.as_map() {
            Some(m) => {
                let mut out = JMap::new();
                for (name, aty) in attrs {
                    path.attr(name);
                    out.insert(
                        name.clone(),
                        to_json_typed(m.get(name).unwrap_or(&Value::Null), aty, path)?,
                    );
                    path.pop();
                }
                Ok(J::Object(out))
            }
            None => unfit(path),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn type_json_forms() {
        assert_eq!(Type::String.to_json_bytes(), b"\"string\"");
        assert_eq!(
            Type::list(Type::String).to_json_bytes(),
            br#"["list","string"]"#
        );
        assert_eq!(
            Type::object([("a", Type::String)]).to_json_bytes(),
            br#"["object",{"a":"string"}]"#
        );
        assert_eq!(Type::Dynamic.to_json_bytes(), b"\"dynamic\"");
        assert_eq!(
            Type::Tuple(vec![Type::Number, Type::map(Type::Bool)]).to_json_bytes(),
            br#"["tuple",["number",["map","bool"]]]"#
        );
        assert_eq!(Type::set(Type::Number).to_string(), r#"["set","number"]"#);
    }

    #[test]
    fn type_json_round_trip() {
        let ty = Type::object([
            ("a", Type::list(Type::object([("x", Type::Dynamic)]))),
            (
                "b",
                Type::Tuple(vec![Type::String, Type::set(Type::Number)]),
            ),
            ("c", Type::map(Type::Bool)),
        ]);
        assert_eq!(Type::from_json(&ty.to_json_bytes()).unwrap(), ty);
    }

    #[test]
    fn type_json_rejects_garbage_and_accepts_optional_attrs() {
        for bad in [
            &b"\"str\""[..],
            b"[\"list\"]",
            b"[\"object\",[]]",
            b"42",
            b"not json",
            b"[\"list\",\"string\",1]",
        ] {
            assert!(
                Type::from_json(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let t = Type::from_json(br#"["object",{"a":"string"},["a"]]"#).unwrap();
        assert_eq!(t, Type::object([("a", Type::String)]));
    }

    #[test]
    fn state_json_missing_is_null_extra_dropped() {
        let ty = Type::object([
            ("id", Type::String),
            ("count", Type::Number),
            ("tags", Type::map(Type::String)),
        ]);
        let j = json!({"id": "x1", "removed_attr": 5, "tags": {"a": "b"}});
        let v = Value::from_json(&j, &ty).unwrap();
        let expect = Value::Object(
            [
                ("id".to_string(), Value::string("x1")),
                ("count".to_string(), Value::Null),
                (
                    "tags".to_string(),
                    Value::Map([("a".to_string(), Value::string("b"))].into()),
                ),
            ]
            .into(),
        );
        assert_eq!(v, expect);
    }

    #[test]
    fn state_json_conversions_and_dynamic() {
        let ty = Type::object([
            ("n", Type::Number),
            ("s", Type::String),
            ("d", Type::Dynamic),
            ("b", Type::Bool),
        ]);
        let j = json!({"n": "12", "s": 3, "d": {"value": ["a"], "type": ["list", "string"]}, "b": "true"});
        let v = Value::from_json(&j, &ty).unwrap();
        assert_eq!(v.get("n"), &Value::number(12));
        assert_eq!(v.get("s"), &Value::string("3"));
        assert_eq!(v.get("d"), &Value::List(vec![Value::string("a")]));
        assert_eq!(v.get("b"), &Value::Bool(true));
    }

    #[test]
    fn state_json_mismatch_is_error() {
        let ty = Type::object([("l", Type::list(Type::Number))]);
        let err = Value::from_json(&json!({"l": [1, {"x": 1}]}), &ty).unwrap_err();
        assert!(
            matches!(err, WireError::Mismatch { ref path, .. } if path == ".l[1]"),
            "{err}"
        );
    }

    #[test]
    fn typed_json_round_trip() {
        let ty = Type::object([
            ("s", Type::String),
            ("n", Type::Number),
            ("l", Type::list(Type::Number)),
            ("d", Type::Dynamic),
            ("o", Type::object([("x", Type::Bool)])),
        ]);
        let v = Value::Object(
            [
                ("s".to_string(), Value::string("v")),
                ("n".to_string(), Value::number(2.5)),
                (
                    "l".to_string(),
                    Value::List(vec![Value::number(1), Value::number(2)]),
                ),
                (
                    "d".to_string(),
                    Value::Map([("k".to_string(), Value::string("v"))].into()),
                ),
                ("o".to_string(), Value::Null),
            ]
            .into(),
        );
        let j = v.to_json_typed(&ty).unwrap();
        assert_eq!(
            j["d"],
            json!({"value": {"k": "v"}, "type": ["map", "string"]})
        );
        assert_eq!(j["n"], json!(2.5));
        assert_eq!(j["l"], json!([1, 2]));
        assert_eq!(Value::from_json(&j, &ty).unwrap(), v);
        assert!(Value::Unknown.to_json_typed(&Type::String).is_err());
    }

    #[test]
    fn debug_json() {
        let v = Value::Object(
            [
                ("u".to_string(), Value::Unknown),
                ("n".to_string(), Value::number(3)),
                ("f".to_string(), Value::number(0.5)),
                ("s".to_string(), Value::Set(vec![Value::Bool(true)])),
                ("z".to_string(), Value::Null),
            ]
            .into(),
        );
        assert_eq!(
            v.to_json(),
            json!({"u": "<unknown>", "n": 3, "f": 0.5, "s": [true], "z": null})
        );
    }
}
