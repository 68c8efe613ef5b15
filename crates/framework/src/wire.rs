//! Conversions between framework types and tfplugin5 messages.

use clara_tfplugin::pb::tfplugin5 as pb;
use clara_tfplugin::{Type, Value};

use crate::diag::{AttrPath, Diagnostics, PathStep, Severity};
use crate::function::Function;
use crate::schema::{Block, Nesting, Schema};

pub fn decode(dv: Option<&pb::DynamicValue>, ty: &Type, diags: &mut Diagnostics) -> Value {
    let Some(dv) = dv else { return Value::Null };
    let result = if !dv.msgpack.is_empty() {
        Value::from_msgpack(&dv.msgpack, ty).map_err(|e| e.to_string())
    } else if !dv.json.is_empty() {
        serde_json::from_slice::<serde_json::Value>(&dv.json)
            .map_err(|e| e.to_string())
            .and_then(|j| Value::from_json(&j, ty).map_err(|e| e.to_string()))
    } else {
        return Value::Null;
    };
    result.unwrap_or_else(|e| {
        diags.error("Provider could not decode a value from Terraform", e);
        Value::Null
    })
}

pub fn encode(v: &Value, ty: &Type) -> pb::DynamicValue {
    pb::DynamicValue {
        msgpack: v.to_msgpack(ty),
        json: Vec::new(),
    }
}

pub fn diagnostics(diags: Diagnostics) -> Vec<pb::Diagnostic> {
    diags
        .0
        .into_iter()
        .map(|d| pb::Diagnostic {
            severity: match d.severity {
                Severity::Error => pb::diagnostic::Severity::Error as i32,
                Severity::Warning => pb::diagnostic::Severity::Warning as i32,
            },
            summary: d.summary,
            detail: d.detail,
            attribute: d.path.as_ref().map(attribute_path),
        })
        .collect()
}

pub fn attribute_path(p: &AttrPath) -> pb::AttributePath {
    use pb::attribute_path::step::Selector;
    pb::AttributePath {
        steps: p
            .0
            .iter()
            .map(|s| pb::attribute_path::Step {
                selector: Some(match s {
                    PathStep::Attribute(a) => Selector::AttributeName(a.clone()),
                    PathStep::Key(k) => Selector::ElementKeyString(k.clone()),
                    PathStep::Index(i) => Selector::ElementKeyInt(*i),
                }),
            })
            .collect(),
    }
}

pub fn schema(s: &Schema) -> pb::Schema {
    pb::Schema {
        version: s.version,
        block: Some(block(&s.block, s.version)),
    }
}

fn block(b: &Block, version: i64) -> pb::schema::Block {
    pb::schema::Block {
        version,
        attributes: b
            .attributes
            .iter()
            .map(|a| pb::schema::Attribute {
                name: a.name.clone(),
                r#type: a.ty.to_json_bytes(),
                description: a.description.clone(),
                required: a.required,
                optional: a.optional,
                computed: a.computed,
                sensitive: a.sensitive,
                description_kind: pb::StringKind::Markdown as i32,
                deprecated: a.deprecation.is_some(),
                write_only: a.write_only,
                deprecation_message: a.deprecation.clone().unwrap_or_default(),
            })
            .collect(),
        block_types: b
            .blocks
            .iter()
            .map(|nb| pb::schema::NestedBlock {
                type_name: nb.name.clone(),
                block: Some(block(&nb.block, version)),
                nesting: match nb.nesting {
                    Nesting::Single => pb::schema::nested_block::NestingMode::Single,
                    Nesting::List => pb::schema::nested_block::NestingMode::List,
                    Nesting::Set => pb::schema::nested_block::NestingMode::Set,
                } as i32,
                min_items: nb.min_items,
                max_items: if nb.nesting == Nesting::Single {
                    0
                } else {
                    nb.max_items
                },
            })
            .collect(),
        description: b.description.clone(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecated: b.deprecation.is_some(),
        deprecation_message: b.deprecation.clone().unwrap_or_default(),
    }
}

pub fn function(f: &dyn Function) -> pb::Function {
    use pb::function::{Parameter, Return};
    pb::Function {
        parameters: f
            .parameters()
            .into_iter()
            .map(|p| Parameter {
                name: p.name.to_string(),
                r#type: p.ty.to_json_bytes(),
                allow_null_value: p.allow_null,
                allow_unknown_values: false,
                description: p.description,
                description_kind: pb::StringKind::Markdown as i32,
            })
            .collect(),
        variadic_parameter: None,
        r#return: Some(Return {
            r#type: f.return_type().to_json_bytes(),
        }),
        summary: f.summary().to_string(),
        description: f.description(),
        description_kind: pb::StringKind::Markdown as i32,
        deprecation_message: String::new(),
    }
}

pub fn identity_schema(s: &crate::resource::IdentitySchema) -> pb::ResourceIdentitySchema {
    pb::ResourceIdentitySchema {
        version: s.version,
        identity_attributes: s
            .attributes
            .iter()
            .map(|a| pb::resource_identity_schema::IdentityAttribute {
                name: a.name.to_string(),
                r#type: Type::String.to_json_bytes(),
                required_for_import: a.required_for_import,
                optional_for_import: !a.required_for_import,
                description: a.description.to_string(),
            })
            .collect(),
    }
}

/// An identity for the wire; `None` for a null one.
pub fn identity(v: Option<Value>, ty: &Type) -> Option<pb::ResourceIdentityData> {
    v.filter(|v| !v.is_null())
        .map(|v| pb::ResourceIdentityData {
            identity_data: Some(encode(&v, ty)),
        })
}

pub fn decode_identity(
    d: Option<&pb::ResourceIdentityData>,
    ty: &Type,
    diags: &mut Diagnostics,
) -> Value {
    decode(d.and_then(|d| d.identity_data.as_ref()), ty, diags)
}
