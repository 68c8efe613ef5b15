//! The generic plan engine behind PlanResourceChange, and schema-driven config validation.
//!
//! Pipeline (after terraform-plugin-framework): start from Terraform's proposed new state,
//! fill defaults, drop write-only values, decide replacement from `requires_replace`
//! attributes, then plan computed attributes the configuration leaves null as unknown
//! whenever the resource will change — keeping prior values where the schema says a value
//! is stable. Planning a known value that apply then changes is Terraform's "inconsistent
//! final plan" error, so "unknown" is the safe answer whenever in doubt.

use std::collections::BTreeMap;

use clara_tfplugin::Value;

use crate::diag::{AttrPath, Diagnostics};
use crate::schema::{Block, ModifierRequest, Nesting, PlanAction};

/// What the engine decided; the resource's `modify_plan` may refine it.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedChange {
    pub planned: Value,
    pub requires_replace: Vec<AttrPath>,
}

impl PlannedChange {
    pub fn is_create(prior: &Value) -> bool {
        prior.is_null()
    }
}

pub fn plan(block: &Block, prior: &Value, proposed: &Value, config: &Value) -> PlannedChange {
    if proposed.is_null() {
        return PlannedChange {
            planned: Value::Null,
            requires_replace: vec![],
        };
    }
    let mut planned = proposed.clone();
    prepare(block, &mut planned, config);

    if prior.is_null() {
        plan_values(
            block,
            &mut planned,
            config,
            &Value::Null,
            PlanAction::Create,
        );
        return PlannedChange {
            planned,
            requires_replace: vec![],
        };
    }

    let mut requires_replace = Vec::new();
    replacement_paths(
        block,
        prior,
        &planned,
        config,
        &AttrPath::default(),
        &mut requires_replace,
    );

    if planned == *prior {
        return PlannedChange {
            planned: prior.clone(),
            requires_replace: vec![],
        };
    }
    let action = if requires_replace.is_empty() {
        PlanAction::Update
    } else {
        PlanAction::Replace
    };
    plan_values(block, &mut planned, config, prior, action);
    PlannedChange {
        planned,
        requires_replace,
    }
}

/// Defaults for null config values, and write-only values removed, at every depth.
fn prepare(block: &Block, value: &mut Value, config: &Value) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    for a in &block.attributes {
        if a.write_only {
            obj.insert(a.name.clone(), Value::Null);
        } else if let Some(default) = &a.default
            && config.get(&a.name).is_null()
        {
            obj.insert(a.name.clone(), default.clone());
        }
    }
    for b in &block.blocks {
        let cfg = config.get(&b.name);
        let Some(v) = obj.get_mut(&b.name) else {
            continue;
        };
        for_each_instance(b.nesting, v, cfg, |inst, inst_cfg| {
            prepare(&b.block, inst, inst_cfg)
        });
    }
}

/// Applies `f` to each instance of a nested block together with its config counterpart.
fn for_each_instance(
    nesting: Nesting,
    value: &mut Value,
    config: &Value,
    mut f: impl FnMut(&mut Value, &Value),
) {
    match (nesting, value) {
        (Nesting::Single, v @ Value::Object(_)) => f(v, config),
        (Nesting::List, Value::List(items)) | (Nesting::Set, Value::Set(items)) => {
            let cfg_items = config.as_elements().unwrap_or(&[]);
            for (i, item) in items.iter_mut().enumerate() {
                // Set elements have no stable index; only the position-aligned config is used.
                f(item, cfg_items.get(i).unwrap_or(&Value::Null));
            }
        }
        _ => {}
    }
}

fn replacement_paths(
    block: &Block,
    prior: &Value,
    planned: &Value,
    config: &Value,
    at: &AttrPath,
    out: &mut Vec<AttrPath>,
) {
    for a in &block.attributes {
        if prior.get(&a.name) == planned.get(&a.name) {
            continue;
        }
        let req = ModifierRequest {
            action: PlanAction::Update,
            attribute: &a.name,
            prior: prior.get(&a.name),
            config: config.get(&a.name),
            prior_object: prior,
            planned_object: planned,
            config_object: config,
        };
        if a.requires_replace || a.plan_modifiers.iter().any(|m| m.requires_replace(&req)) {
            out.push(at.clone().attr(&a.name));
        }
    }
    for b in &block.blocks {
        let (p, n) = (prior.get(&b.name), planned.get(&b.name));
        if b.requires_replace && p != n {
            out.push(at.clone().attr(&b.name));
        } else if b.nesting == Nesting::Single && p.as_object().is_some() && n.as_object().is_some()
        {
            let c = config.get(&b.name);
            replacement_paths(&b.block, p, n, c, &at.clone().attr(&b.name), out);
        }
    }
}

/// Plans the computed attributes the configuration leaves null: unknown whenever the object
/// changes (defaults stay known), then each attribute's modifiers, in declaration order.
fn plan_values(
    block: &Block,
    value: &mut Value,
    config: &Value,
    prior: &Value,
    action: PlanAction,
) {
    let Some(obj) = value.as_object_mut() else {
        return;
    };
    let planned_here =
        |a: &crate::schema::Attribute| a.computed && !a.write_only && config.get(&a.name).is_null();
    for a in block.attributes.iter().filter(|a| planned_here(a)) {
        if a.default.is_none() {
            obj.insert(a.name.clone(), Value::Unknown);
        }
    }
    for a in block.attributes.iter().filter(|a| planned_here(a)) {
        if a.plan_modifiers.is_empty() {
            continue;
        }
        let snapshot = Value::Object(obj.clone());
        let mut v = obj.get(&a.name).cloned().unwrap_or_default();
        let req = ModifierRequest {
            action,
            attribute: &a.name,
            prior: prior.get(&a.name),
            config: config.get(&a.name),
            prior_object: prior,
            planned_object: &snapshot,
            config_object: config,
        };
        for m in &a.plan_modifiers {
            m.plan(&req, &mut v);
        }
        obj.insert(a.name.clone(), v);
    }
    for b in &block.blocks {
        let cfg = config.get(&b.name);
        let prior_block = prior.get(&b.name);
        let Some(v) = obj.get_mut(&b.name) else {
            continue;
        };
        match b.nesting {
            Nesting::Single => {
                if v.as_object().is_some() {
                    plan_values(&b.block, v, cfg, prior_block, action);
                }
            }
            Nesting::List | Nesting::Set => {
                let prior_items: Vec<Value> = prior_block
                    .as_elements()
                    .map(|e| e.to_vec())
                    .unwrap_or_default();
                let mut i = 0;
                for_each_instance(b.nesting, v, cfg, |inst, inst_cfg| {
                    // Set elements have no stable identity: no prior instance.
                    let p = match b.nesting {
                        Nesting::List => prior_items.get(i).cloned().unwrap_or_default(),
                        _ => Value::Null,
                    };
                    plan_values(&b.block, inst, inst_cfg, &p, action);
                    i += 1;
                });
            }
        }
    }
}

/// Schema-driven checks of a configuration: validators and block item counts. Unknown and
/// null values are skipped; `required` is enforced by Terraform itself.
pub fn validate_config(block: &Block, config: &Value, at: &AttrPath, diags: &mut Diagnostics) {
    for a in &block.attributes {
        let v = config.get(&a.name);
        if v.is_null() || v.is_unknown() {
            continue;
        }
        let path = at.clone().attr(&a.name);
        validate_value(a, v, &path, diags);
    }
    for b in &block.blocks {
        let v = config.get(&b.name);
        let path = at.clone().attr(&b.name);
        match b.nesting {
            Nesting::Single => {
                if v.as_object().is_some() {
                    validate_config(&b.block, v, &path, diags);
                }
            }
            Nesting::List | Nesting::Set => {
                let Some(items) = v.as_elements() else {
                    continue;
                };
                let n = items.len() as i64;
                if (b.min_items > 0 && n < b.min_items) || (b.max_items > 0 && n > b.max_items) {
                    diags.attr_error(
                        path.clone(),
                        "Invalid number of blocks",
                        format!(
                            "{path} allows {} to {} blocks, got {n}.",
                            b.min_items, b.max_items
                        ),
                    );
                }
                for (i, item) in items.iter().enumerate() {
                    validate_config(&b.block, item, &path.clone().index(i as i64), diags);
                }
            }
        }
    }
}

fn validate_value(
    a: &crate::schema::Attribute,
    v: &Value,
    path: &AttrPath,
    diags: &mut Diagnostics,
) {
    // Collection attributes validate each known element (e.g. every tag value).
    match v {
        Value::List(items) | Value::Set(items) if !a.validators.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                if item.is_wholly_known() && !item.is_null() {
                    let p = path.clone().index(i as i64);
                    a.validators
                        .iter()
                        .for_each(|val| val.validate(item, &p, diags));
                }
            }
        }
        Value::Map(items) if !a.validators.is_empty() => {
            let items: &BTreeMap<String, Value> = items;
            for (k, item) in items {
                if item.is_wholly_known() && !item.is_null() {
                    let p = path.clone().key(k);
                    a.validators
                        .iter()
                        .for_each(|val| val.validate(item, &p, diags));
                }
            }
        }
        _ => a
            .validators
            .iter()
            .for_each(|val| val.validate(v, path, diags)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};

    fn obj(pairs: &[(&str, Value)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn block() -> Block {
        Block::new("test")
            .attribute(Attribute::string("id").computed().use_state_for_unknown())
            .attribute(Attribute::string("name").required().requires_replace())
            .attribute(Attribute::number("max").required())
            .attribute(Attribute::string("state").computed())
            .attribute(
                Attribute::string("priority")
                    .default("Dedicated")
                    .requires_replace(),
            )
            .attribute(
                Attribute::string("password")
                    .optional()
                    .sensitive()
                    .write_only(),
            )
            .block(NestedBlock::single(
                "timeouts",
                Block::new("t").attribute(Attribute::string("create").optional()),
            ))
    }

    fn state(name: &str, max: f64) -> Value {
        obj(&[
            ("id", "/x/".to_string().into()),
            ("name", name.into()),
            ("max", Value::Number(max)),
            ("state", "Succeeded".into()),
            ("priority", "Dedicated".into()),
            ("password", Value::Null),
            ("timeouts", Value::Null),
        ])
    }

    fn config(name: &str, max: f64) -> Value {
        obj(&[
            ("id", Value::Null),
            ("name", name.into()),
            ("max", Value::Number(max)),
            ("state", Value::Null),
            ("priority", Value::Null),
            ("password", "hunter2".into()),
            ("timeouts", Value::Null),
        ])
    }

    /// Terraform's proposed new state: config, with prior values for computed attributes left null.
    fn proposed(prior: &Value, config: &Value) -> Value {
        let mut p = config.clone();
        if let (Some(po), Some(pr)) = (p.as_object_mut(), prior.as_object()) {
            for k in ["id", "state", "priority"] {
                if po[k].is_null() {
                    po.insert(k.into(), pr.get(k).cloned().unwrap_or_default());
                }
            }
        }
        p
    }

    #[test]
    fn create_plans_computed_unknown_defaults_known_and_drops_write_only() {
        let cfg = config("a", 1.0);
        let out = plan(&block(), &Value::Null, &cfg, &cfg);
        assert_eq!(out.planned.get("id"), &Value::Unknown);
        assert_eq!(out.planned.get("state"), &Value::Unknown);
        assert_eq!(out.planned.get("priority"), &Value::from("Dedicated"));
        assert_eq!(out.planned.get("password"), &Value::Null);
        assert!(out.requires_replace.is_empty());
    }

    #[test]
    fn no_change_plans_prior_exactly() {
        let prior = state("a", 1.0);
        let cfg = config("a", 1.0);
        let out = plan(&block(), &prior, &proposed(&prior, &cfg), &cfg);
        assert_eq!(out.planned, prior);
        assert!(out.requires_replace.is_empty());
    }

    #[test]
    fn in_place_update_keeps_stable_ids_and_unknowns_the_rest() {
        let prior = state("a", 1.0);
        let cfg = config("a", 2.0);
        let out = plan(&block(), &prior, &proposed(&prior, &cfg), &cfg);
        assert_eq!(out.planned.get("id"), &Value::from("/x/"));
        assert_eq!(out.planned.get("state"), &Value::Unknown);
        assert_eq!(out.planned.get("max"), &Value::Number(2.0));
        assert!(out.requires_replace.is_empty());
    }

    #[test]
    fn replacement_names_the_attribute_and_unknowns_ids() {
        let prior = state("a", 1.0);
        let cfg = config("b", 1.0);
        let out = plan(&block(), &prior, &proposed(&prior, &cfg), &cfg);
        assert_eq!(out.requires_replace, vec![AttrPath::root("name")]);
        assert_eq!(out.planned.get("id"), &Value::Unknown);
    }

    #[test]
    fn unknown_config_for_replace_attribute_forces_replacement() {
        let prior = state("a", 1.0);
        let mut cfg = config("a", 1.0);
        cfg.as_object_mut()
            .unwrap()
            .insert("name".into(), Value::Unknown);
        let out = plan(&block(), &prior, &proposed(&prior, &cfg), &cfg);
        assert_eq!(out.requires_replace, vec![AttrPath::root("name")]);
    }

    #[test]
    fn validate_skips_unknown_and_reports_paths() {
        let b = Block::new("t").attribute(
            Attribute::string_map("tags")
                .optional()
                .validate(crate::validators::Length(1, 3)),
        );
        let cfg = obj(&[(
            "tags",
            Value::Map(
                [
                    ("a".to_string(), Value::from("toolong")),
                    ("b".to_string(), Value::Unknown),
                ]
                .into_iter()
                .collect(),
            ),
        )]);
        let mut d = Diagnostics::new();
        validate_config(&b, &cfg, &AttrPath::default(), &mut d);
        assert_eq!(d.0.len(), 1);
        assert_eq!(d.0[0].path, Some(AttrPath::root("tags").key("a")));
    }

    /// A run-like schema: what the modifiers are for.
    fn run_block() -> Block {
        fn finished(r: &ModifierRequest<'_>) -> bool {
            r.prior_object.get("status").as_str() == Some("Completed") && !r.changed("wait")
        }
        Block::new("run")
            .attribute(
                Attribute::string("name")
                    .optional()
                    .computed()
                    .requires_replace()
                    .use_state_for_unknown(),
            )
            .attribute(
                Attribute::string("id")
                    .computed()
                    .use_state_for_unknown()
                    .derive(|r| {
                        r.planned_object
                            .get("name")
                            .as_str()
                            .map(|n| Value::from(format!("/jobs/{n}")))
                    }),
            )
            .attribute(Attribute::string("command").required().requires_replace())
            .attribute(Attribute::string_map("tags").optional())
            .attribute(Attribute::bool("wait").default(true))
            .attribute(
                Attribute::string("status")
                    .computed()
                    .keep_state_if(finished),
            )
            .attribute(Attribute::string("url").computed().null_if(|r| {
                r.planned_object.get("service").as_str().is_none()
                    && !r.planned_object.get("service").is_unknown()
            }))
            .attribute(Attribute::string("service").optional())
            .attribute(
                Attribute::string("size")
                    .required()
                    .requires_replace_if(|r| {
                        // Growing is in place, shrinking replaces.
                        r.prior.as_str().map(str::len)
                            > r.planned_object.get("size").as_str().map(str::len)
                    }),
            )
    }

    fn run_state(status: &str) -> Value {
        obj(&[
            ("name", "job-1".into()),
            ("id", "/jobs/job-1".into()),
            ("command", "train".into()),
            ("tags", Value::Null),
            ("wait", Value::Bool(true)),
            ("status", status.into()),
            ("url", Value::Null),
            ("service", Value::Null),
            ("size", "aa".into()),
        ])
    }

    fn run_config(tags: Value, size: &str) -> Value {
        obj(&[
            ("name", Value::Null),
            ("id", Value::Null),
            ("command", "train".into()),
            ("tags", tags),
            ("wait", Value::Null),
            ("status", Value::Null),
            ("url", Value::Null),
            ("service", Value::Null),
            ("size", size.into()),
        ])
    }

    fn run_proposed(prior: &Value, config: &Value) -> Value {
        let mut p = config.clone();
        for k in ["name", "id", "wait", "status", "url"] {
            p.as_object_mut()
                .unwrap()
                .insert(k.into(), prior.get(k).clone());
        }
        p
    }

    fn tag(v: &str) -> Value {
        Value::Map([("team".to_string(), Value::from(v))].into_iter().collect())
    }

    #[test]
    fn tags_edit_keeps_every_value_the_update_cannot_change() {
        let prior = run_state("Completed");
        let cfg = run_config(tag("radiology"), "aa");
        let out = plan(&run_block(), &prior, &run_proposed(&prior, &cfg), &cfg);
        assert!(out.requires_replace.is_empty());
        for k in ["name", "id", "status", "url", "command"] {
            assert_eq!(out.planned.get(k), prior.get(k), "{k}");
        }
        assert_eq!(out.planned.get("tags"), &tag("radiology"));
    }

    #[test]
    fn values_an_update_can_change_stay_unknown() {
        // A job still running may end during the update.
        let prior = run_state("Running");
        let cfg = run_config(tag("radiology"), "aa");
        let out = plan(&run_block(), &prior, &run_proposed(&prior, &cfg), &cfg);
        assert_eq!(out.planned.get("status"), &Value::Unknown);
        assert_eq!(out.planned.get("name"), &Value::from("job-1"));
        // So does a change of a sibling the predicate names.
        let prior = run_state("Completed");
        let mut cfg = run_config(Value::Null, "aa");
        cfg.as_object_mut()
            .unwrap()
            .insert("wait".into(), Value::Bool(false));
        let mut proposed = run_proposed(&prior, &cfg);
        proposed
            .as_object_mut()
            .unwrap()
            .insert("wait".into(), Value::Bool(false));
        let out = plan(&run_block(), &prior, &proposed, &cfg);
        assert_eq!(out.planned.get("status"), &Value::Unknown);
    }

    #[test]
    fn create_derives_known_values_and_plans_null_what_stays_null() {
        let mut cfg = run_config(Value::Null, "aa");
        cfg.as_object_mut()
            .unwrap()
            .insert("name".into(), "mine".into());
        let out = plan(&run_block(), &Value::Null, &cfg, &cfg);
        assert_eq!(out.planned.get("id"), &Value::from("/jobs/mine"));
        assert_eq!(out.planned.get("url"), &Value::Null);
        assert_eq!(out.planned.get("status"), &Value::Unknown);
        // Not derivable: stays unknown.
        let cfg = run_config(Value::Null, "aa");
        let out = plan(&run_block(), &Value::Null, &cfg, &cfg);
        assert_eq!(out.planned.get("id"), &Value::Unknown);
        // An unknown service may set the url.
        let mut cfg = run_config(Value::Null, "aa");
        cfg.as_object_mut()
            .unwrap()
            .insert("service".into(), Value::Unknown);
        let out = plan(&run_block(), &Value::Null, &cfg, &cfg);
        assert_eq!(out.planned.get("url"), &Value::Unknown);
    }

    #[test]
    fn replacement_from_a_modifier_unknowns_kept_values_and_rederives_ids() {
        let prior = run_state("Completed");
        let cfg = run_config(Value::Null, "a");
        let out = plan(&run_block(), &prior, &run_proposed(&prior, &cfg), &cfg);
        assert_eq!(out.requires_replace, vec![AttrPath::root("size")]);
        assert_eq!(out.planned.get("status"), &Value::Unknown);
        assert_eq!(out.planned.get("name"), &Value::Unknown);
        assert_eq!(out.planned.get("id"), &Value::Unknown);
        // Growing is in place.
        let cfg = run_config(Value::Null, "aaa");
        let out = plan(&run_block(), &prior, &run_proposed(&prior, &cfg), &cfg);
        assert!(out.requires_replace.is_empty());
        assert_eq!(out.planned.get("status"), &Value::from("Completed"));
    }
}
