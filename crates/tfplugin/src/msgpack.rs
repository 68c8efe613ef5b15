//! `DynamicValue.msgpack` ⇄ [`Value`], following cty's msgpack encoding
//! (terraform `docs/plugin-protocol/object-wire-format.md`, go-cty `cty/msgpack`).
//!
//! - null is nil; unknown is an extension value (we write ext 0 `d4 00 00`; any ext
//!   type reads back as unknown, including refined unknowns, ext 12).
//! - objects and maps are msgpack maps; lists, sets and tuples are arrays.
//! - a known value under type `"dynamic"` is `[type-json-bytes, value]`.
//! - whole numbers are msgpack ints, others f64; numbers may also arrive as strings.

use std::collections::BTreeMap;

use rmpv::Value as M;

use crate::value::{Path, Type, Value, WireError, as_wire_int, number_to_string, parse_number};

impl Value {
    /// Decodes a msgpack `DynamicValue` against the schema type `ty`.
    ///
    /// Lenient where Terraform could not have meant anything else: object attributes
    /// missing from the payload decode as null and unexpected ones are dropped.
    ///
    /// Empty bytes (an unset `DynamicValue`, e.g. absent `provider_meta`) decode as null.
    pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, WireError> {
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        let mut rd = bytes;
        let raw = rmpv::decode::read_value(&mut rd).map_err(|e| WireError::Malformed {
            format: "msgpack",
            detail: e.to_string(),
        })?;
        decode(raw, ty, &mut Path::default())
    }

    /// Encodes for the wire as type `ty`. Never fails: a value that cannot take the
    /// type (e.g. an object where a string belongs) is written as null and logged.
    /// Use [`Value::try_to_msgpack`] to get an error instead.
    pub fn to_msgpack(&self, ty: &Type) -> Vec<u8> {
        let mut enc = Encoder {
            strict: false,
            path: Path::default(),
        };
        // Lenient mode only returns Ok.
        let raw = enc.encode(self, ty).unwrap_or(M::Nil);
        write(&raw)
    }

    /// Like [`Value::to_msgpack`] but fails on values that do not fit `ty`,
    /// including object attributes that the type does not declare.
    pub fn try_to_msgpack(&self, ty: &Type) -> Result<Vec<u8>, WireError> {
        let mut enc = Encoder {
            strict: true,
            path: Path::default(),
        };
        enc.encode(self, ty).map(|raw| write(&raw))
    }
}

fn write(raw: &M) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = rmpv::encode::write_value(&mut out, raw);
    out
}

fn raw_kind(raw: &M) -> String {
    match raw {
        M::Nil => "nil",
        M::Boolean(_) => "bool",
        M::Integer(_) => "integer",
        M::F32(_) | M::F64(_) => "float",
        M::String(_) => "string",
        M::Binary(_) => "binary",
        M::Array(_) => "array",
        M::Map(_) => "map",
        M::Ext(..) => "ext",
    }
    .to_string()
}

fn decode(raw: M, ty: &Type, path: &mut Path) -> Result<Value, WireError> {
    match raw {
        // cty has no other extensions, so every ext is an (possibly refined) unknown.
        M::Ext(..) => return Ok(Value::Unknown),
        M::Nil => return Ok(Value::Null),
        _ => {}
    }
    let mismatch =
        |path: &Path, raw: &M| Err(WireError::mismatch(&path.render(), ty, raw_kind(raw)));
    match ty {
        Type::Dynamic => decode_dynamic(raw, path),
        Type::String => match raw {
            M::String(s) => match s.into_str() {
                Some(s) => Ok(Value::String(s)),
                None => Err(WireError::mismatch(&path.render(), ty, "invalid UTF-8")),
            },
            M::Binary(b) => String::from_utf8(b)
                .map(Value::String)
                .map_err(|_| WireError::mismatch(&path.render(), ty, "invalid UTF-8")),
            other => mismatch(path, &other),
        },
        Type::Number => match raw {
            M::Integer(i) => match (i.as_i64(), i.as_u64()) {
                (Some(n), _) => Ok(Value::Number(n as f64)),
                (None, Some(n)) => Ok(Value::Number(n as f64)),
                _ => mismatch(path, &M::Integer(i)),
            },
            M::F32(f) => Ok(Value::Number(f as f64)),
            M::F64(f) => Ok(Value::Number(f)),
            M::String(s) => match s.as_str().and_then(parse_number) {
                Some(n) => Ok(Value::Number(n)),
                None => Err(WireError::mismatch(
                    &path.render(),
                    ty,
                    "non-numeric string",
                )),
            },
            other => mismatch(path, &other),
        },
        Type::Bool => match raw {
            M::Boolean(b) => Ok(Value::Bool(b)),
            other => mismatch(path, &other),
        },
        Type::List(elem) | Type::Set(elem) => match raw {
            M::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    path.index(i);
                    out.push(decode(item, elem, path)?);
                    path.pop();
                }
                Ok(if matches!(ty, Type::Set(_)) {
                    Value::Set(out)
                } else {
                    Value::List(out)
                })
            }
            other => mismatch(path, &other),
        },
        Type::Tuple(elems) => match raw {
            M::Array(items) if items.len() == elems.len() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, (item, ety)) in items.into_iter().zip(elems).enumerate() {
                    path.index(i);
                    out.push(decode(item, ety, path)?);
                    path.pop();
                }
                Ok(Value::Tuple(out))
            }
            M::Array(items) => Err(WireError::mismatch(
                &path.render(),
                ty,
                format!("array of {} elements", items.len()),
            )),
            other => mismatch(path, &other),
        },
        Type::Map(elem) => match raw {
            M::Map(pairs) => {
                let mut out = BTreeMap::new();
                for (k, v) in pairs {
                    let key = map_key(k, path)?;
                    path.key(&key);
                    let v = decode(v, elem, path)?;
                    path.pop();
                    out.insert(key, v);
                }
                Ok(Value::Map(out))
            }
            other => mismatch(path, &other),
        },
        Type::Object(attrs) => match raw {
            M::Map(pairs) => {
                let mut given: BTreeMap<String, M> = BTreeMap::new();
                for (k, v) in pairs {
                    given.insert(map_key(k, path)?, v);
                }
                let mut out = BTreeMap::new();
                for (name, aty) in attrs {
                    let v = match given.remove(name) {
                        Some(raw) => {
                            path.attr(name);
                            let v = decode(raw, aty, path)?;
                            path.pop();
                            v
                        }
                        None => Value::Null,
                    };
                    out.insert(name.clone(), v);
                }
                if !given.is_empty() {
                    tracing::debug!(path = %path.render(), extra = ?given.keys().collect::<Vec<_>>(), "dropping undeclared object attributes");
                }
                Ok(Value::Object(out))
            }
            other => mismatch(path, &other),
        },
    }
}

fn map_key(k: M, path: &Path) -> Result<String, WireError> {
    match k {
        M::String(s) => s
            .into_str()
            .ok_or_else(|| WireError::mismatch(&path.render(), "string map key", "invalid UTF-8")),
        other => Err(WireError::mismatch(
            &path.render(),
            "string map key",
            raw_kind(&other),
        )),
    }
}

/// `[type-json, value]`: the concrete type travels with a value of type `"dynamic"`.
fn decode_dynamic(raw: M, path: &mut Path) -> Result<Value, WireError> {
    let M::Array(mut items) = raw else {
        return Err(WireError::mismatch(
            &path.render(),
            "[type, value] pair for dynamic",
            raw_kind(&raw),
        ));
    };
    if items.len() != 2 {
        return Err(WireError::mismatch(
            &path.render(),
            "[type, value] pair for dynamic",
            format!("array of {} elements", items.len()),
        ));
    }
    let value = items.pop().unwrap_or(M::Nil);
    let type_bytes = match items.pop() {
        Some(M::Binary(b)) => b,
        Some(M::String(s)) => s.into_bytes(),
        other => {
            let found = other.as_ref().map(raw_kind).unwrap_or_default();
            return Err(WireError::mismatch(
                &path.render(),
                "type JSON bytes",
                found,
            ));
        }
    };
    let ty = Type::from_json(&type_bytes)?;
    decode(value, &ty, path)
}

struct Encoder {
    strict: bool,
    path: Path,
}

impl Encoder {
    /// A value that cannot take the type: an error in strict mode, else null.
    fn unfit(&self, ty: &Type, v: &Value) -> Result<M, WireError> {
        let err = WireError::mismatch(&self.path.render(), ty, v.kind());
        if self.strict {
            return Err(err);
        }
        tracing::warn!("encoding null instead: {err}");
        Ok(M::Nil)
    }

    fn encode(&mut self, v: &Value, ty: &Type) -> Result<M, WireError> {
        match v {
            Value::Unknown => return Ok(M::Ext(0, vec![0])),
            Value::Null => return Ok(M::Nil),
            _ => {}
        }
        match ty {
            Type::Dynamic => {
                let concrete = v.infer_type();
                let inner = self.encode(v, &concrete)?;
                Ok(M::Array(vec![M::Binary(concrete.to_json_bytes()), inner]))
            }
            Type::String => match v {
                Value::String(s) => Ok(M::from(s.as_str())),
                // Safe conversions cty would also make.
                Value::Number(n) => Ok(M::from(number_to_string(*n))),
                Value::Bool(b) => Ok(M::from(if *b { "true" } else { "false" })),
                _ => self.unfit(ty, v),
            },
            Type::Number => match v {
                Value::Number(n) => Ok(number(*n)),
                Value::String(s) => match parse_number(s) {
                    Some(n) => Ok(number(n)),
                    None => self.unfit(ty, v),
                },
                _ => self.unfit(ty, v),
            },
            Type::Bool => match v {
                Value::Bool(b) => Ok(M::Boolean(*b)),
                Value::String(s) if s == "true" || s == "false" => Ok(M::Boolean(s == "true")),
                _ => self.unfit(ty, v),
            },
            Type::List(elem) | Type::Set(elem) => match v.as_elements() {
                Some(items) => self.array(items.iter().map(|i| (i, elem.as_ref()))),
                None => self.unfit(ty, v),
            },
            Type::Tuple(elems) => match v.as_elements() {
                Some(items) if items.len() == elems.len() => self.array(items.iter().zip(elems)),
                _ => self.unfit(ty, v),
            },
            Type::Map(elem) => match v.as_map() {
                Some(m) => {
                    let mut pairs = Vec::with_capacity(m.len());
                    for (k, item) in m {
                        self.path.key(k);
                        pairs.push((M::from(k.as_str()), self.encode(item, elem)?));
                        self.path.pop();
                    }
                    Ok(M::Map(pairs))
                }
                None => self.unfit(ty, v),
            },
            Type::Object(attrs) => match v.as_map() {
                Some(m) => {
                    if let Some(extra) = m.keys().find(|k| !attrs.contains_key(*k)) {
                        let err = WireError::mismatch(
                            &self.path.render(),
                            ty,
                            format!("undeclared attribute {extra:?}"),
                        );
                        if self.strict {
                            return Err(err);
                        }
                        tracing::debug!("dropping: {err}");
                    }
                    let mut pairs = Vec::with_capacity(attrs.len());
                    for (name, aty) in attrs {
                        self.path.attr(name);
                        let item = m.get(name).unwrap_or(&Value::Null);
                        pairs.push((M::from(name.as_str()), self.encode(item, aty)?));
                        self.path.pop();
                    }
                    Ok(M::Map(pairs))
                }
                None => self.unfit(ty, v),
            },
        }
    }

    fn array<'a>(
        &mut self,
        items: impl Iterator<Item = (&'a Value, &'a Type)>,
    ) -> Result<M, WireError> {
        let mut out = Vec::new();
        for (i, (item, ety)) in items.enumerate() {
            self.path.index(i);
            out.push(self.encode(item, ety)?);
            self.path.pop();
        }
        Ok(M::Array(out))
    }
}

/// Whole numbers go as msgpack ints; fractions as their shortest decimal string. Terraform
/// keeps numbers as arbitrary-precision decimals: a float64 6.12 is not equal to the 6.12 it
/// later reads back from JSON state, which would show as a perpetual diff. The decimal string
/// is parsed exactly as the state is, so the two compare equal.
fn number(n: f64) -> M {
    match as_wire_int(n) {
        Some(i) => M::from(i),
        None if n.is_finite() => M::from(number_to_string(n)),
        None => M::F64(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn ty_abc() -> Type {
        Type::object([
            ("a", Type::String),
            ("b", Type::Number),
            ("c", Type::list(Type::Bool)),
        ])
    }

    #[test]
    fn unknown_is_fixext1_type0() {
        assert_eq!(
            Value::Unknown.to_msgpack(&Type::String),
            vec![0xd4, 0x00, 0x00]
        );
        assert_eq!(
            Value::Unknown.to_msgpack(&Type::Dynamic),
            vec![0xd4, 0x00, 0x00]
        );
    }

    #[test]
    fn null_is_nil() {
        assert_eq!(Value::Null.to_msgpack(&ty_abc()), vec![0xc0]);
        assert_eq!(
            Value::from_msgpack(&[0xc0], &ty_abc()).unwrap(),
            Value::Null
        );
    }

    #[test]
    fn any_ext_type_decodes_as_unknown() {
        // fixext1 type 0, fixext4 type 5, ext8 (len 3) type 12
        for bytes in [
            &[0xd4, 0x00, 0x00][..],
            &[0xd6, 0x05, 1, 2, 3, 4],
            &[0xc7, 0x03, 0x0c, 1, 2, 3],
        ] {
            assert_eq!(
                Value::from_msgpack(bytes, &Type::String).unwrap(),
                Value::Unknown
            );
        }
    }

    #[test]
    fn refined_unknown_ext12_with_map_payload() {
        // cty refinement payload: a map {1: false} (not null) inside ext type 12.
        let mut payload = Vec::new();
        rmpv::encode::write_value(&mut payload, &M::Map(vec![(M::from(1), M::Boolean(false))]))
            .unwrap();
        let mut bytes = Vec::new();
        rmpv::encode::write_value(
            &mut bytes,
            &M::Map(vec![(M::from("id"), M::Ext(12, payload))]),
        )
        .unwrap();
        let ty = Type::object([("id", Type::String), ("name", Type::String)]);
        let v = Value::from_msgpack(&bytes, &ty).unwrap();
        assert_eq!(v, obj(&[("id", Value::Unknown), ("name", Value::Null)]));
    }

    #[test]
    fn nested_unknowns_round_trip() {
        let ty = Type::object([
            ("tags", Type::map(Type::String)),
            ("items", Type::list(Type::object([("x", Type::Number)]))),
            ("set", Type::set(Type::String)),
            ("tup", Type::Tuple(vec![Type::String, Type::Bool])),
        ]);
        let v = obj(&[
            (
                "tags",
                Value::Map([("k".to_string(), Value::Unknown)].into()),
            ),
            (
                "items",
                Value::List(vec![obj(&[("x", Value::Unknown)]), Value::Unknown]),
            ),
            ("set", Value::Unknown),
            (
                "tup",
                Value::Tuple(vec![Value::string("s"), Value::Unknown]),
            ),
        ]);
        let bytes = v.try_to_msgpack(&ty).unwrap();
        assert_eq!(Value::from_msgpack(&bytes, &ty).unwrap(), v);
    }

    #[test]
    fn object_is_msgpack_map_exact_bytes() {
        let ty = Type::object([("a", Type::String), ("n", Type::Number)]);
        let v = obj(&[("a", Value::string("x")), ("n", Value::number(1))]);
        // {"a": "x", "n": 1}
        assert_eq!(
            v.to_msgpack(&ty),
            vec![0x82, 0xa1, b'a', 0xa1, b'x', 0xa1, b'n', 0x01]
        );
    }

    #[test]
    fn numbers_int_float_and_string() {
        assert_eq!(Value::number(5).to_msgpack(&Type::Number), vec![0x05]);
        assert_eq!(Value::number(-1).to_msgpack(&Type::Number), vec![0xff]);
        let f = Value::number(6.12).to_msgpack(&Type::Number);
        assert_eq!(
            f,
            [&[0xa4][..], b"6.12"].concat(),
            "fractions travel as decimal strings"
        );
        assert_eq!(
            Value::from_msgpack(&f, &Type::Number).unwrap(),
            Value::number(6.12)
        );
        // big value sent as a string
        let mut s = Vec::new();
        rmpv::encode::write_value(&mut s, &M::from("12345678901234567890")).unwrap();
        assert_eq!(
            Value::from_msgpack(&s, &Type::Number).unwrap(),
            Value::number(12345678901234567890.0)
        );
        // u64 beyond i64
        let mut u = Vec::new();
        rmpv::encode::write_value(&mut u, &M::from(u64::MAX)).unwrap();
        assert_eq!(
            Value::from_msgpack(&u, &Type::Number).unwrap(),
            Value::number(u64::MAX as f64)
        );
        // float32
        assert_eq!(
            Value::from_msgpack(&[0xca, 0x3f, 0xc0, 0, 0], &Type::Number).unwrap(),
            Value::number(1.5)
        );
    }

    #[test]
    fn dynamic_wraps_type_json() {
        let v = Value::string("hi");
        let bytes = v.to_msgpack(&Type::Dynamic);
        let mut expect = vec![0x92, 0xc4, 8];
        expect.extend_from_slice(b"\"string\"");
        expect.extend_from_slice(&[0xa2, b'h', b'i']);
        assert_eq!(bytes, expect);
        assert_eq!(Value::from_msgpack(&bytes, &Type::Dynamic).unwrap(), v);

        let complex = obj(&[
            ("l", Value::List(vec![Value::number(1), Value::number(2)])),
            ("s", Value::string("x")),
        ]);
        let bytes = complex.to_msgpack(&Type::Dynamic);
        assert_eq!(
            Value::from_msgpack(&bytes, &Type::Dynamic).unwrap(),
            complex
        );
        // null under dynamic is plain nil
        assert_eq!(Value::Null.to_msgpack(&Type::Dynamic), vec![0xc0]);
    }

    #[test]
    fn dynamic_type_as_str_is_accepted() {
        let raw = M::Array(vec![
            M::from("[\"list\",\"number\"]"),
            M::Array(vec![M::from(3)]),
        ]);
        let v = Value::from_msgpack(&write(&raw), &Type::Dynamic).unwrap();
        assert_eq!(v, Value::List(vec![Value::number(3)]));
    }

    #[test]
    fn object_missing_attrs_are_null_and_extras_dropped() {
        let raw = M::Map(vec![
            (M::from("a"), M::from("x")),
            (M::from("zzz"), M::from(1)),
        ]);
        let v = Value::from_msgpack(&write(&raw), &ty_abc()).unwrap();
        assert_eq!(
            v,
            obj(&[
                ("a", Value::string("x")),
                ("b", Value::Null),
                ("c", Value::Null)
            ])
        );
    }

    #[test]
    fn mismatch_reports_path() {
        let raw = M::Map(vec![(
            M::from("c"),
            M::Array(vec![M::Boolean(true), M::from("no")]),
        )]);
        let err = Value::from_msgpack(&write(&raw), &ty_abc()).unwrap_err();
        match err {
            WireError::Mismatch { path, .. } => assert_eq!(path, ".c[1]"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        // 0xc1 ("never used") must merely not panic; rmpv reads it as nil.
        let _ = Value::from_msgpack(&[0xc1], &ty_abc());
        assert_eq!(Value::from_msgpack(&[], &ty_abc()).unwrap(), Value::Null);
        for bytes in [
            &[0xdc, 0xff, 0xff][..],
            &[0x81, 0xa1],
            &[0x92, 0x01],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(Value::from_msgpack(bytes, &ty_abc()).is_err(), "{bytes:?}");
        }
        // dynamic with a broken type
        let raw = M::Array(vec![M::from("[\"nope\"]"), M::from(1)]);
        assert!(Value::from_msgpack(&write(&raw), &Type::Dynamic).is_err());
    }

    #[test]
    fn strict_vs_lenient_encoding() {
        let ty = Type::object([("a", Type::String)]);
        let v = obj(&[("a", Value::List(vec![])), ("extra", Value::Bool(true))]);
        assert!(v.try_to_msgpack(&ty).is_err());
        // lenient: bad attribute becomes nil, extra dropped
        assert_eq!(v.to_msgpack(&ty), vec![0x81, 0xa1, b'a', 0xc0]);
        // safe primitive conversions
        assert_eq!(
            Value::number(3).try_to_msgpack(&Type::String).unwrap(),
            vec![0xa1, b'3']
        );
        assert_eq!(
            Value::string("7").try_to_msgpack(&Type::Number).unwrap(),
            vec![0x07]
        );
    }

    #[test]
    fn round_trip_all_shapes() {
        let ty = Type::object([
            ("s", Type::String),
            ("n", Type::Number),
            ("b", Type::Bool),
            ("l", Type::list(Type::String)),
            ("st", Type::set(Type::Number)),
            ("m", Type::map(Type::list(Type::Number))),
            ("o", Type::object([("inner", Type::String)])),
            ("t", Type::Tuple(vec![Type::String, Type::Number])),
            ("d", Type::Dynamic),
            ("empty", Type::list(Type::String)),
        ]);
        let v = obj(&[
            ("s", Value::string("héllo")),
            ("n", Value::number(-42.25)),
            ("b", Value::Bool(false)),
            ("l", Value::List(vec![Value::string("a"), Value::Null])),
            ("st", Value::Set(vec![Value::number(1), Value::number(2)])),
            (
                "m",
                Value::Map([("k".into(), Value::List(vec![Value::number(9)]))].into()),
            ),
            ("o", obj(&[("inner", Value::string("i"))])),
            (
                "t",
                Value::Tuple(vec![Value::string("x"), Value::number(1e300)]),
            ),
            (
                "d",
                Value::Tuple(vec![Value::string("x"), Value::Bool(true)]),
            ),
            ("empty", Value::List(vec![])),
        ]);
        let bytes = v.try_to_msgpack(&ty).unwrap();
        assert_eq!(Value::from_msgpack(&bytes, &ty).unwrap(), v);
    }
}
