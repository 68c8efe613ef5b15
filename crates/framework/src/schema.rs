//! Schema declarations: attributes, nested blocks and the plan behaviour attached to them.
//!
//! A resource declares everything the generic plan engine needs here (required/optional/
//! computed, defaults, replacement triggers, state-for-unknown), so its file only holds
//! schema and CRUD.

use std::collections::BTreeMap;
use std::sync::Arc;

use clara_tfplugin::{Type, Value};

use crate::validators::Validator;

/// A resource, data source or provider schema.
#[derive(Clone)]
pub struct Schema {
    /// Bumped when the state layout changes; Terraform sends the recorded version to
    /// UpgradeResourceState.
    pub version: i64,
    pub block: Block,
}

impl Schema {
    pub fn new(version: i64, block: Block) -> Self {
        Schema { version, block }
    }
}

#[derive(Clone, Default)]
pub struct Block {
    pub description: String,
    pub attributes: Vec<Attribute>,
    pub blocks: Vec<NestedBlock>,
    pub deprecation: Option<String>,
}

impl Block {
    pub fn new(description: impl Into<String>) -> Self {
        Block {
            description: description.into(),
            ..Default::default()
        }
    }
    pub fn attribute(mut self, a: Attribute) -> Self {
        self.attributes.push(a);
        self
    }
    pub fn block(mut self, b: NestedBlock) -> Self {
        self.blocks.push(b);
        self
    }
    /// The object type of one instance of this block.
    pub fn object_type(&self) -> Type {
        let mut fields = BTreeMap::new();
        for a in &self.attributes {
            fields.insert(a.name.clone(), a.ty.clone());
        }
        for b in &self.blocks {
            fields.insert(b.name.clone(), b.value_type());
        }
        Type::Object(fields)
    }
    pub fn find_attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    pub fn find_block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    Single,
    List,
    Set,
}

#[derive(Clone)]
pub struct NestedBlock {
    pub name: String,
    pub nesting: Nesting,
    pub block: Block,
    pub min_items: i64,
    pub max_items: i64,
    /// Any change inside the block replaces the resource.
    pub requires_replace: bool,
}

impl NestedBlock {
    pub fn single(name: &str, block: Block) -> Self {
        NestedBlock {
            name: name.into(),
            nesting: Nesting::Single,
            block,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }
    pub fn list(name: &str, block: Block) -> Self {
        NestedBlock {
            name: name.into(),
            nesting: Nesting::List,
            block,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }
    pub fn set(name: &str, block: Block) -> Self {
        NestedBlock {
            name: name.into(),
            nesting: Nesting::Set,
            block,
            min_items: 0,
            max_items: 0,
            requires_replace: false,
        }
    }
    pub fn max_items(mut self, n: i64) -> Self {
        self.max_items = n;
        self
    }
    pub fn min_items(mut self, n: i64) -> Self {
        self.min_items = n;
        self
    }
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    pub fn value_type(&self) -> Type {
        let obj = self.block.object_type();
        match self.nesting {
            Nesting::Single => obj,
            Nesting::List => Type::List(Box::new(obj)),
            Nesting::Set => Type::Set(Box::new(obj)),
        }
    }
}

#[derive(Clone)]
pub struct Attribute {
    pub name: String,
    pub ty: Type,
    pub description: String,
    pub required: bool,
    pub optional: bool,
    pub computed: bool,
    pub sensitive: bool,
    /// Accepted in configuration, never stored in plan or state (Terraform >= 1.11).
    pub write_only: bool,
    pub deprecation: Option<String>,
    pub validators: Vec<Arc<dyn Validator>>,
    /// Value planned when the configuration leaves the attribute null.
    pub default: Option<Value>,
    /// A changed value plans a replacement instead of an in-place update.
    pub requires_replace: bool,
    /// Plan modifiers, run in order by the plan engine (see [`PlanModifier`]).
    pub plan_modifiers: Vec<Arc<dyn PlanModifier>>,
}

impl Attribute {
    pub fn new(name: &str, ty: Type) -> Self {
        Attribute {
            name: name.into(),
            ty,
            description: String::new(),
            required: false,
            optional: false,
            computed: false,
            sensitive: false,
            write_only: false,
            deprecation: None,
            validators: Vec::new(),
            default: None,
            requires_replace: false,
            plan_modifiers: Vec::new(),
        }
    }
    pub fn string(name: &str) -> Self {
        Self::new(name, Type::String)
    }
    pub fn number(name: &str) -> Self {
        Self::new(name, Type::Number)
    }
    pub fn bool(name: &str) -> Self {
        Self::new(name, Type::Bool)
    }
    pub fn string_map(name: &str) -> Self {
        Self::new(name, Type::Map(Box::new(Type::String)))
    }
    pub fn string_list(name: &str) -> Self {
        Self::new(name, Type::List(Box::new(Type::String)))
    }
    pub fn string_set(name: &str) -> Self {
        Self::new(name, Type::Set(Box::new(Type::String)))
    }
    pub fn describe(mut self, d: impl Into<String>) -> Self {
        self.description = d.into();
        self
    }
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }
    pub fn computed(mut self) -> Self {
        self.computed = true;
        self
    }
    pub fn sensitive(mut self) -> Self {
        self.sensitive = true;
        self
    }
    pub fn write_only(mut self) -> Self {
        self.write_only = true;
        self
    }
    pub fn deprecated(mut self, message: impl Into<String>) -> Self {
        self.deprecation = Some(message.into());
        self
    }
    pub fn validate(mut self, v: impl Validator + 'static) -> Self {
        self.validators.push(Arc::new(v));
        self
    }
    /// A default makes the attribute optional and computed, as Terraform requires.
    pub fn default(mut self, v: impl Into<Value>) -> Self {
        self.default = Some(v.into());
        self.optional = true;
        self.computed = true;
        self
    }
    /// No value and an empty collection mean the same (`tags = {}` is no tags): the attribute
    /// is planned empty when the configuration leaves it null, and state holds an empty
    /// collection where a read finds none, so neither spelling ever plans a change.
    pub fn null_is_empty(self) -> Self {
        let empty = match &self.ty {
            Type::Map(_) => Value::Map(Default::default()),
            Type::Set(_) => Value::Set(vec![]),
            Type::List(_) => Value::List(vec![]),
            other => panic!("null_is_empty on {} of type {other:?}", self.name),
        };
        self.default(empty)
    }
    /// True for [`Attribute::null_is_empty`] attributes.
    pub fn is_null_empty(&self) -> bool {
        matches!(&self.default, Some(Value::Map(m)) if m.is_empty())
            || matches!(&self.default, Some(Value::Set(v) | Value::List(v)) if v.is_empty())
    }
    pub fn requires_replace(mut self) -> Self {
        self.requires_replace = true;
        self
    }
    /// Keep the prior state's (non-null) value instead of "(known after apply)" on in-place
    /// updates: for values an update never changes, such as ids.
    pub fn use_state_for_unknown(self) -> Self {
        self.plan_modifier(UseStateForUnknown)
    }
    /// On an in-place update, keep the prior value (null included) when `unchanged` says the
    /// update cannot change it; otherwise it stays unknown.
    pub fn keep_state_if(self, unchanged: fn(&ModifierRequest<'_>) -> bool) -> Self {
        self.plan_modifier(KeepStateIf(unchanged))
    }
    /// Plans a value derivable at plan time (`Some(Value::Null)`: will stay null); `None`
    /// leaves the engine's answer. Runs on create, replace and update.
    pub fn derive(self, f: fn(&ModifierRequest<'_>) -> Option<Value>) -> Self {
        self.plan_modifier(Derive(f))
    }
    /// Plans null when `will_stay_null` says apply will leave the value null.
    pub fn null_if(self, will_stay_null: fn(&ModifierRequest<'_>) -> bool) -> Self {
        self.plan_modifier(NullIf(will_stay_null))
    }
    /// Replaces the resource when this attribute changed and `f` says the change needs it.
    pub fn requires_replace_if(self, f: fn(&ModifierRequest<'_>) -> bool) -> Self {
        self.plan_modifier(RequiresReplaceIf(f))
    }
    pub fn plan_modifier(mut self, m: impl PlanModifier + 'static) -> Self {
        self.plan_modifiers.push(Arc::new(m));
        self
    }
}

/// What the plan does to the object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanAction {
    Create,
    /// In-place update.
    Update,
    Replace,
}

/// One attribute's view of the plan, handed to its modifiers.
pub struct ModifierRequest<'a> {
    pub action: PlanAction,
    pub attribute: &'a str,
    /// The attribute's prior value (null on create).
    pub prior: &'a Value,
    /// The attribute's configured value.
    pub config: &'a Value,
    /// The enclosing object in prior state (null on create), plan and configuration. Nested
    /// block attributes see their block instance.
    pub prior_object: &'a Value,
    pub planned_object: &'a Value,
    pub config_object: &'a Value,
}

impl ModifierRequest<'_> {
    /// True when the sibling attribute (or block) differs between prior state and plan.
    pub fn changed(&self, sibling: &str) -> bool {
        self.prior_object.get(sibling) != self.planned_object.get(sibling)
    }
}

/// Per-attribute plan behaviour, after terraform-plugin-framework's plan modifiers.
///
/// The engine first decides replacement (`requires_replace` flags and hooks), then plans
/// every computed attribute the configuration leaves null as unknown whenever the object
/// changes, and then runs each attribute's modifiers, in declaration order, with
/// `planned` holding the value planned so far. Attributes set in configuration keep their
/// configured value (Terraform requires it): only `requires_replace` runs for them.
pub trait PlanModifier: Send + Sync {
    /// Whether a change of this attribute replaces the object (called only when it changed).
    fn requires_replace(&self, _req: &ModifierRequest<'_>) -> bool {
        false
    }
    /// Adjusts the planned value of a computed attribute the configuration leaves null.
    fn plan(&self, _req: &ModifierRequest<'_>, _planned: &mut Value) {}
    /// One line for documentation.
    fn describe(&self) -> String {
        String::new()
    }
}

/// Prior (non-null) value kept on in-place updates.
pub struct UseStateForUnknown;

impl PlanModifier for UseStateForUnknown {
    fn plan(&self, req: &ModifierRequest<'_>, planned: &mut Value) {
        if req.action == PlanAction::Update && planned.is_unknown() && !req.prior.is_null() {
            *planned = req.prior.clone();
        }
    }
    fn describe(&self) -> String {
        "kept through in-place updates".into()
    }
}

/// Prior value (null included) kept on in-place updates that cannot change it.
pub struct KeepStateIf(pub fn(&ModifierRequest<'_>) -> bool);

impl PlanModifier for KeepStateIf {
    fn plan(&self, req: &ModifierRequest<'_>, planned: &mut Value) {
        if req.action == PlanAction::Update && planned.is_unknown() && (self.0)(req) {
            *planned = req.prior.clone();
        }
    }
    fn describe(&self) -> String {
        "kept through in-place updates that cannot change it".into()
    }
}

/// A value computed from the plan.
pub struct Derive(pub fn(&ModifierRequest<'_>) -> Option<Value>);

impl PlanModifier for Derive {
    fn plan(&self, req: &ModifierRequest<'_>, planned: &mut Value) {
        if planned.is_unknown()
            && let Some(v) = (self.0)(req)
        {
            *planned = v;
        }
    }
    fn describe(&self) -> String {
        "known at plan time when derivable".into()
    }
}

/// Null planned for a value apply will leave null.
pub struct NullIf(pub fn(&ModifierRequest<'_>) -> bool);

impl PlanModifier for NullIf {
    fn plan(&self, req: &ModifierRequest<'_>, planned: &mut Value) {
        if planned.is_unknown() && (self.0)(req) {
            *planned = Value::Null;
        }
    }
    fn describe(&self) -> String {
        "null when it will stay null".into()
    }
}

/// Replacement decided by a predicate over the change.
pub struct RequiresReplaceIf(pub fn(&ModifierRequest<'_>) -> bool);

impl PlanModifier for RequiresReplaceIf {
    fn requires_replace(&self, req: &ModifierRequest<'_>) -> bool {
        (self.0)(req)
    }
    fn describe(&self) -> String {
        "some changes force replacement".into()
    }
}
