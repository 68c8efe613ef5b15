//! Terraform values as they cross the wire, independent of msgpack/JSON encoding.
//!
//! `Value` mirrors cty's value model closely enough for a provider: unknown is its own
//! variant (refinements are accepted on decode and dropped), and numbers are `f64`, which
//! covers every number this provider exchanges.

use std::collections::BTreeMap;

/// Why a wire value or type could not be decoded (or strictly encoded).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not valid msgpack / JSON at all.
    #[error("malformed {format}: {detail}")]
    Malformed {
        format: &'static str,
        detail: String,
    },
    /// The data does not fit the expected type at `path` (e.g. `.tags["a"][0]`).
    #[error("at {path}: expected {expected}, found {found}")]
    Mismatch {
        path: String,
        expected: String,
        found: String,
    },
    /// A type constraint that is not valid cty JSON.
    #[error("invalid type constraint: {0}")]
    InvalidType(String),
}

impl WireError {
    pub(crate) fn mismatch(
        path: &str,
        expected: impl std::fmt::Display,
        found: impl Into<String>,
    ) -> Self {
        WireError::Mismatch {
            path: if path.is_empty() {
                "(root)".into()
            } else {
                path.to_string()
            },
            expected: expected.to_string(),
            found: found.into(),
        }
    }
}

/// A Terraform type constraint (cty type), as carried in schema attribute `type` bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    String,
    Number,
    Bool,
    /// `"dynamic"`: the concrete type travels with the value.
    Dynamic,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(BTreeMap<String, Type>),
    Tuple(Vec<Type>),
}

impl std::fmt::Display for Type {
    /// The cty JSON type constraint, e.g. `["list","string"]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_json_value().to_string())
    }
}

impl Type {
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }
    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }
    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }
    /// Object type from `(name, type)` pairs.
    pub fn object<K: Into<String>>(attrs: impl IntoIterator<Item = (K, Type)>) -> Type {
        Type::Object(attrs.into_iter().map(|(k, t)| (k.into(), t)).collect())
    }
    pub fn is_primitive(&self) -> bool {
        matches!(self, Type::String | Type::Number | Type::Bool)
    }
}

/// A Terraform value.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    /// Not known until apply (msgpack extension type, any code).
    Unknown,
    Bool(bool),
    Number(f64),
    String(String),
    List(Vec<Value>),
    Set(Vec<Value>),
    Map(BTreeMap<String, Value>),
    Object(BTreeMap<String, Value>),
    Tuple(Vec<Value>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    /// True when this value and everything inside it is known.
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            _ => true,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }
    /// The number as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.007_199_254_740_992e15 => {
                Some(*n as i64)
            }
            _ => None,
        }
    }
    pub fn as_object(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_object_mut(&mut self) -> Option<&mut BTreeMap<String, Value>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }
    /// Elements of a list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }
    /// Attribute of an object; `Null` when absent or when `self` is not an object.
    pub fn get(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        match self {
            Value::Object(m) | Value::Map(m) => m.get(name).unwrap_or(&NULL),
            _ => &NULL,
        }
    }
    /// Best-guess concrete type of a value, used when it must travel under `"dynamic"`.
    /// Null and unknown carry no type of their own, so they infer `Dynamic`; a
    /// collection whose known elements disagree gets element type `Dynamic`.
    pub fn infer_type(&self) -> Type {
        fn unify(vals: &[Value]) -> Type {
            let mut found: Option<Type> = None;
            for v in vals.iter().filter(|v| !v.is_null() && !v.is_unknown()) {
                let t = v.infer_type();
                match &found {
                    None => found = Some(t),
                    Some(prev) if *prev == t => {}
                    Some(_) => return Type::Dynamic,
                }
            }
            found.unwrap_or(Type::Dynamic)
        }
        match self {
            Value::Null | Value::Unknown => Type::Dynamic,
            Value::Bool(_) => Type::Bool,
            Value::Number(_) => Type::Number,
            Value::String(_) => Type::String,
            Value::List(v) => Type::List(Box::new(unify(v))),
            Value::Set(v) => Type::Set(Box::new(unify(v))),
            Value::Tuple(v) => Type::Tuple(v.iter().map(Value::infer_type).collect()),
            Value::Map(m) => {
                let vals: Vec<Value> = m.values().cloned().collect();
                Type::Map(Box::new(unify(&vals)))
            }
            Value::Object(m) => {
                Type::Object(m.iter().map(|(k, v)| (k.clone(), v.infer_type())).collect())
            }
        }
    }
    /// Short description of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Unknown => "unknown",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Map(_) => "map",
            Value::Object(_) => "object",
            Value::Tuple(_) => "tuple",
        }
    }
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    pub fn number(n: impl Into<f64>) -> Value {
        Value::Number(n.into())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Number(n as f64)
    }
}
impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(o: Option<T>) -> Self {
        o.map(Into::into).unwrap_or(Value::Null)
    }
}

/// Location inside a value, tracked while decoding so errors can say where they happened.
#[derive(Debug, Default)]
pub(crate) struct Path(Vec<Step>);

#[derive(Debug)]
enum Step {
    Attr(String),
    Key(String),
    Index(usize),
}

impl Path {
    pub(crate) fn attr(&mut self, name: &str) {
        self.0.push(Step::Attr(name.to_string()));
    }
    pub(crate) fn key(&mut self, key: &str) {
        self.0.push(Step::Key(key.to_string()));
    }
    pub(crate) fn index(&mut self, i: usize) {
        self.0.push(Step::Index(i));
    }
    pub(crate) fn pop(&mut self) {
        self.0.pop();
    }
    pub(crate) fn render(&self) -> String {
        let mut s = String::new();
        for step in &self.0 {
            match step {
                Step::Attr(a) => {
                    s.push('.');
                    s.push_str(a);
                }
                Step::Key(k) => s.push_str(&format!("[{k:?}]")),
                Step::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }
}

/// Numbers that are whole and fit in an i64 travel as integers (like cty does).
pub(crate) fn as_wire_int(n: f64) -> Option<i64> {
    // 2^63 is exactly representable; the range check keeps the cast lossless.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (n.fract() == 0.0 && (-LIMIT..LIMIT).contains(&n)).then_some(n as i64)
}

/// cty's number-to-string conversion: whole numbers without a fraction.
pub(crate) fn number_to_string(n: f64) -> String {
    match as_wire_int(n) {
        Some(i) => i.to_string(),
        None => n.to_string(),
    }
}

/// Parses a number that arrived as a string (cty does this for values beyond f64/i64 ranges).
pub(crate) fn parse_number(s: &str) -> Option<f64> {
    let n: f64 = s.trim().parse().ok()?;
    (!n.is_nan()).then_some(n)
}
