//! Request-body validation driven by the published Azure ML model catalog
//! (`catalog/arm_ml_service-2025-12-01.models.json`, derived from azure-ai-ml 1.35.2; see
//! `catalog/README.md`). Checks unknown members, read-only members sent by the client,
//! required members, JSON types, enum values, ISO-8601 durations, RFC 3339 timestamps and
//! polymorphic discriminators. Business rules (vmSize exists, min <= max, ...) live with
//! each resource handler.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::util::{is_iso8601_duration, is_rfc3339};

const CATALOG_JSON: &str = include_str!("../catalog/arm_ml_service-2025-12-01.models.json");

/// Which client operation the body is for (selects the `visibility` that must be present).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

impl Mode {
    fn visibility(self) -> &'static str {
        match self {
            Mode::Create => "create",
            Mode::Update => "update",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViolationKind {
    UnknownMember,
    ReadOnly,
    Required,
    WrongType,
    InvalidEnum,
}

#[derive(Debug, Clone)]
pub struct Violation {
    pub kind: ViolationKind,
    /// Dotted JSON path, e.g. `properties.properties.vmPriority`.
    pub target: String,
    pub message: String,
}

#[derive(Debug, Clone)]
enum Ty {
    Str,
    Int,
    Float,
    Bool,
    Any,
    DateTime,
    Duration,
    /// Discriminator constant of a subtype: checked through the discriminator itself.
    Literal,
    Enum(String),
    Model(String),
    List(Box<Ty>),
    Map(Box<Ty>),
}

#[derive(Debug, Clone)]
struct Field {
    rest: String,
    ty: Ty,
    required: bool,
    visibility: Vec<String>,
    discriminator: bool,
}

#[derive(Debug)]
struct Model {
    bases: Vec<String>,
    discriminator_value: Option<String>,
    fields: Vec<Field>,
}

pub struct Catalog {
    models: HashMap<String, Model>,
    enums: HashMap<String, Vec<String>>,
    /// base model -> discriminator value -> concrete model
    subtypes: HashMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct RawCatalog {
    models: HashMap<String, RawModel>,
    enums: HashMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct RawModel {
    bases: Vec<String>,
    #[serde(rename = "discriminatorValue")]
    discriminator_value: Option<String>,
    fields: Vec<RawField>,
}

#[derive(Deserialize)]
struct RawField {
    rest: String,
    #[serde(rename = "type")]
    ty: String,
    required: bool,
    visibility: Vec<String>,
    discriminator: bool,
}

/// The embedded catalog, parsed once.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::parse(CATALOG_JSON).expect("embedded model catalog must parse"))
}

impl Catalog {
    fn parse(text: &str) -> Result<Catalog, serde_json::Error> {
        let raw: RawCatalog = serde_json::from_str(text)?;
        let enum_names: HashSet<&str> = raw.enums.keys().map(String::as_str).collect();
        let models: HashMap<String, Model> = raw
            .models
            .iter()
            .map(|(name, m)| {
                let fields = m
                    .fields
                    .iter()
                    .map(|f| Field {
                        rest: f.rest.clone(),
                        ty: parse_type(&f.ty, &enum_names),
                        required: f.required,
                        visibility: f.visibility.clone(),
                        discriminator: f.discriminator,
                    })
                    .collect();
                let model = Model {
                    bases: m.bases.clone(),
                    discriminator_value: m.discriminator_value.clone(),
                    fields,
                };
                (name.clone(), model)
            })
            .collect();
        let mut catalog = Catalog {
            models,
            enums: raw.enums,
            subtypes: HashMap::new(),
        };
        catalog.index_subtypes();
        Ok(catalog)
    }

    /// Registers every model with a discriminator value under each ancestor that declares
    /// a discriminator field.
    fn index_subtypes(&mut self) {
        let mut subtypes: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        for (name, model) in &self.models {
            let Some(value) = &model.discriminator_value else {
                continue;
            };
            for ancestor in self.ancestors(name) {
                let declares = self.models.get(&ancestor).is_some_and(|m| {
                    m.fields.iter().any(|f| f.discriminator) && m.discriminator_value.is_none()
                });
                if declares {
                    subtypes
                        .entry(ancestor)
                        .or_default()
                        .insert(value.clone(), name.clone());
                }
            }
        }
        self.subtypes = subtypes;
    }

    fn ancestors(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack: Vec<String> = self
            .models
            .get(name)
            .map(|m| m.bases.clone())
            .unwrap_or_default();
        while let Some(b) = stack.pop() {
            if out.contains(&b) {
                continue;
            }
            if let Some(m) = self.models.get(&b) {
                stack.extend(m.bases.iter().cloned());
            }
            out.push(b);
        }
        out
    }

    pub fn has_model(&self, name: &str) -> bool {
        self.models.contains_key(name)
    }

    pub fn enum_values(&self, name: &str) -> Option<&[String]> {
        self.enums.get(name).map(Vec::as_slice)
    }

    /// Fields of a model including inherited ones (a subtype's field overrides its base's).
    fn fields(&self, name: &str) -> Vec<Field> {
        let mut out: Vec<Field> = Vec::new();
        let Some(model) = self.models.get(name) else {
            return out;
        };
        for base in &model.bases {
            for f in self.fields(base) {
                out.retain(|o| o.rest != f.rest);
                out.push(f);
            }
        }
        for f in &model.fields {
            out.retain(|o| o.rest != f.rest);
            out.push(f.clone());
        }
        out
    }

    /// Validates `value` as an instance of `model`; returns every violation found.
    pub fn validate(&self, model: &str, value: &Value, mode: Mode, path: &str) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check_model(model, value, mode, path, &mut out);
        out
    }

    fn check_model(
        &self,
        model: &str,
        value: &Value,
        mode: Mode,
        path: &str,
        out: &mut Vec<Violation>,
    ) {
        let Some(obj) = value.as_object() else {
            out.push(wrong_type(path, "object", value));
            return;
        };
        let Some(concrete) = self.resolve_subtype(model, obj, path, out) else {
            return;
        };
        let fields = self.fields(&concrete);
        for (key, v) in obj {
            let target = join(path, key);
            let Some(field) = fields.iter().find(|f| &f.rest == key) else {
                out.push(Violation {
                    kind: ViolationKind::UnknownMember,
                    message: format!("Could not find member '{key}' on object of type '{concrete}'. Path '{target}'."),
                    target,
                });
                continue;
            };
            if !field.visibility.iter().any(|v| v == mode.visibility()) {
                let what = if field.visibility == ["read"] {
                    "read-only"
                } else {
                    "not settable in this operation"
                };
                out.push(Violation {
                    kind: ViolationKind::ReadOnly,
                    message: format!(
                        "The property '{key}' is {what} and cannot be set by the client."
                    ),
                    target,
                });
                continue;
            }
            if v.is_null() {
                if field.required {
                    out.push(required(&target, key));
                }
                continue;
            }
            self.check_type(&field.ty, v, mode, &target, out);
        }
        for f in fields
            .iter()
            .filter(|f| f.required && !obj.contains_key(&f.rest))
        {
            if f.visibility.iter().any(|v| v == mode.visibility()) {
                out.push(required(&join(path, &f.rest), &f.rest));
            }
        }
    }

    /// Follows the discriminator of a polymorphic base to the concrete model.
    fn resolve_subtype(
        &self,
        model: &str,
        obj: &serde_json::Map<String, Value>,
        path: &str,
        out: &mut Vec<Violation>,
    ) -> Option<String> {
        let mut current = model.to_string();
        while let Some(subs) = self.subtypes.get(&current) {
            let fields = self.fields(&current);
            let Some(disc) = fields.iter().find(|f| f.discriminator) else {
                break;
            };
            let target = join(path, &disc.rest);
            match obj.get(&disc.rest) {
                None | Some(Value::Null) => {
                    out.push(required(&target, &disc.rest));
                    return None;
                }
                Some(Value::String(s)) => match subs.get(s) {
                    Some(next) if *next != current => current = next.clone(),
                    Some(_) => break,
                    None => {
                        let allowed: Vec<&str> = subs.keys().map(String::as_str).collect();
                        out.push(invalid_enum(&target, &disc.rest, s, &allowed));
                        return None;
                    }
                },
                Some(other) => {
                    out.push(wrong_type(&target, "string", other));
                    return None;
                }
            }
        }
        Some(current)
    }

    fn check_type(&self, ty: &Ty, v: &Value, mode: Mode, path: &str, out: &mut Vec<Violation>) {
        let leaf = path.rsplit('.').next().unwrap_or(path);
        match ty {
            Ty::Any | Ty::Literal => {}
            Ty::Str => expect(v.is_string(), path, "string", v, out),
            Ty::Int => expect(v.is_i64() || v.is_u64(), path, "integer", v, out),
            Ty::Float => expect(v.is_number(), path, "number", v, out),
            Ty::Bool => expect(v.is_boolean(), path, "boolean", v, out),
            Ty::DateTime => match v.as_str() {
                Some(s) if is_rfc3339(s) => {}
                _ => out.push(wrong_type(path, "RFC 3339 date-time string", v)),
            },
            Ty::Duration => match v.as_str() {
                Some(s) if is_iso8601_duration(s) => {}
                _ => out.push(wrong_type(path, "ISO-8601 duration string (e.g. PT5M)", v)),
            },
            Ty::Enum(name) => {
                let allowed: Vec<&str> = self
                    .enums
                    .get(name)
                    .map(|v| v.iter().map(String::as_str).collect())
                    .unwrap_or_default();
                match v.as_str() {
                    Some(s) if allowed.is_empty() || allowed.contains(&s) => {}
                    Some(s) => out.push(invalid_enum(path, leaf, s, &allowed)),
                    None => out.push(wrong_type(path, "string", v)),
                }
            }
            Ty::Model(name) => {
                if self.models.contains_key(name) {
                    self.check_model(name, v, mode, path, out);
                }
            }
            Ty::List(inner) => match v.as_array() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        self.check_type(inner, item, mode, &format!("{path}[{i}]"), out);
                    }
                }
                None => out.push(wrong_type(path, "array", v)),
            },
            Ty::Map(inner) => match v.as_object() {
                Some(map) => {
                    for (k, item) in map {
                        let key_path = if k
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                        {
                            join(path, k)
                        } else {
                            format!("{path}['{k}']")
                        };
                        self.check_type(inner, item, mode, &key_path, out);
                    }
                }
                None => out.push(wrong_type(path, "object", v)),
            },
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn required(target: &str, key: &str) -> Violation {
    Violation {
        kind: ViolationKind::Required,
        target: target.to_string(),
        message: format!("The '{key}' field is required."),
    }
}

fn invalid_enum(target: &str, key: &str, got: &str, allowed: &[&str]) -> Violation {
    Violation {
        kind: ViolationKind::InvalidEnum,
        target: target.to_string(),
        message: format!(
            "The value '{got}' is not valid for '{key}'. Allowed values: {}.",
            allowed.join(", ")
        ),
    }
}

fn wrong_type(target: &str, expected: &str, got: &Value) -> Violation {
    let got_kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let shown = truncate(&got.to_string(), 80);
    Violation {
        kind: ViolationKind::WrongType,
        target: target.to_string(),
        message: format!(
            "Error converting value {shown} ({got_kind}) to the expected type: {expected}. Path '{target}'."
        ),
    }
}

fn expect(ok: bool, path: &str, expected: &str, v: &Value, out: &mut Vec<Violation>) {
    if !ok {
        out.push(wrong_type(path, expected, v));
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}

/// Parses the catalog's Python type annotations (`Optional[Union[str, 'OsType']]`, ...).
fn parse_type(s: &str, enums: &HashSet<&str>) -> Ty {
    let s = s.trim();
    if let Some(inner) = unwrap_generic(s, "Optional") {
        return parse_type(inner, enums);
    }
    if let Some(inner) = unwrap_generic(s, "list") {
        return Ty::List(Box::new(parse_type(inner, enums)));
    }
    if let Some(inner) = unwrap_generic(s, "dict") {
        let value = split_top_level(inner).get(1).copied().unwrap_or("Any");
        return Ty::Map(Box::new(parse_type(value, enums)));
    }
    if let Some(inner) = unwrap_generic(s, "Union") {
        let named = split_top_level(inner).into_iter().find_map(quoted);
        return match named {
            Some(n) if enums.contains(n) => Ty::Enum(n.to_string()),
            Some(n) => Ty::Model(n.to_string()),
            None => Ty::Str,
        };
    }
    if s.starts_with("Literal[") {
        return Ty::Literal;
    }
    if let Some(n) = quoted(s) {
        return if enums.contains(n) {
            Ty::Enum(n.to_string())
        } else {
            Ty::Model(n.to_string())
        };
    }
    match s {
        "str" => Ty::Str,
        "int" => Ty::Int,
        "float" => Ty::Float,
        "bool" => Ty::Bool,
        "datetime.datetime" => Ty::DateTime,
        "datetime.timedelta" => Ty::Duration,
        _ => Ty::Any,
    }
}

fn unwrap_generic<'a>(s: &'a str, name: &str) -> Option<&'a str> {
    s.strip_prefix(name)?.strip_prefix('[')?.strip_suffix(']')
}

fn quoted(s: &str) -> Option<&str> {
    s.trim().strip_prefix('\'')?.strip_suffix('\'')
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(v: &[Violation]) -> Vec<(ViolationKind, String)> {
        v.iter().map(|v| (v.kind, v.target.clone())).collect()
    }

    #[test]
    fn catalog_parses_and_knows_compute() {
        let c = catalog();
        assert!(c.has_model("ComputeResource"));
        assert_eq!(c.subtypes["Compute"]["AmlCompute"], "AmlCompute");
        assert_eq!(
            c.enum_values("VmPriority").unwrap(),
            ["Dedicated", "LowPriority"]
        );
    }

    #[test]
    fn valid_example_body_passes() {
        let body = json!({"location":"eastus","properties":{"computeType":"AmlCompute","properties":{
            "vmSize":"STANDARD_NC6","vmPriority":"Dedicated","osType":"Windows",
            "virtualMachineImage":{"id":"/x"},"isolatedNetwork":false,
            "scaleSettings":{"maxNodeCount":1,"minNodeCount":0,"nodeIdleTimeBeforeScaleDown":"PT5M"},
            "remoteLoginPortPublicAccess":"NotSpecified","enableNodePublicIp":true}}});
        assert!(
            catalog()
                .validate("ComputeResource", &body, Mode::Create, "")
                .is_empty()
        );
    }

    #[test]
    fn violations_have_targets() {
        let body = json!({"id":"x","properties":{"computeType":"AmlCompute","properties":{
            "vmPriority":"Spot","bogus":1,"allocationState":"Steady",
            "scaleSettings":{"minNodeCount":"1","nodeIdleTimeBeforeScaleDown":"5 minutes"},
            "userAccountCredentials":{}}}});
        let v = kinds(&catalog().validate("ComputeResource", &body, Mode::Create, ""));
        use ViolationKind::*;
        for expected in [
            (ReadOnly, "id"),
            (InvalidEnum, "properties.properties.vmPriority"),
            (UnknownMember, "properties.properties.bogus"),
            (ReadOnly, "properties.properties.allocationState"),
            (
                WrongType,
                "properties.properties.scaleSettings.minNodeCount",
            ),
            (
                WrongType,
                "properties.properties.scaleSettings.nodeIdleTimeBeforeScaleDown",
            ),
            (Required, "properties.properties.scaleSettings.maxNodeCount"),
            (
                Required,
                "properties.properties.userAccountCredentials.adminUserName",
            ),
        ] {
            assert!(
                v.contains(&(expected.0, expected.1.to_string())),
                "missing {expected:?} in {v:?}"
            );
        }
    }

    #[test]
    fn discriminator_is_checked() {
        let v = catalog().validate(
            "ComputeResource",
            &json!({"properties":{"computeType":"Nope"}}),
            Mode::Create,
            "",
        );
        assert_eq!(
            kinds(&v),
            vec![(
                ViolationKind::InvalidEnum,
                "properties.computeType".to_string()
            )]
        );
        let v = catalog().validate(
            "ComputeResource",
            &json!({"properties":{}}),
            Mode::Create,
            "",
        );
        assert_eq!(
            kinds(&v),
            vec![(
                ViolationKind::Required,
                "properties.computeType".to_string()
            )]
        );
    }
}
