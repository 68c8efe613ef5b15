//! The traits a provider, its resources and data sources implement. Modelled on
//! terraform-plugin-framework: resources declare a schema and implement CRUD; everything
//! protocol-shaped (planning, timeouts, cancellation, wire values) is the framework's.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use clara_tfplugin::Value;

use crate::diag::{AttrPath, Diagnostics};
use crate::function::Function;
use crate::schema::Schema;

/// Per-operation defaults for the `timeouts` block the framework adds to a resource.
#[derive(Debug, Clone, Copy)]
pub struct TimeoutDefaults {
    pub create: Duration,
    pub read: Duration,
    pub update: Duration,
    pub delete: Duration,
}

impl TimeoutDefaults {
    pub const fn minutes(create: u64, read: u64, update: u64, delete: u64) -> Self {
        TimeoutDefaults {
            create: Duration::from_secs(create * 60),
            read: Duration::from_secs(read * 60),
            update: Duration::from_secs(update * 60),
            delete: Duration::from_secs(delete * 60),
        }
    }
}

/// Inputs of create and update.
pub struct ApplyRequest {
    /// Null on create.
    pub prior: Value,
    /// What the plan promised: known values must come back unchanged.
    pub planned: Value,
    /// The configuration, including write-only values absent from `planned`.
    pub config: Value,
    pub private: Vec<u8>,
}

/// The plan as the engine left it, for a resource to refine with checks that need the API.
pub struct PlanRequest<'a> {
    pub prior: &'a Value,
    pub config: &'a Value,
    pub planned: &'a mut Value,
    pub requires_replace: &'a mut Vec<AttrPath>,
    /// What this provider process has planned so far for other resources (one Terraform
    /// walk; Terraform plans a resource after those it references).
    pub ledger: &'a PlanLedger,
}

/// The objects planned in this provider process, newest last, so a resource can see what a
/// referenced resource will be (e.g. a run reads the planned cluster's size and node count
/// by the cluster id it references) before that resource exists.
#[derive(Default)]
pub struct PlanLedger {
    planned: Mutex<Vec<(String, Value)>>,
}

impl PlanLedger {
    /// Records a planned (non-null) object of a type.
    pub fn record(&self, type_name: &str, planned: &Value) {
        if planned.is_null() {
            return;
        }
        self.planned
            .lock()
            .expect("ledger lock")
            .push((type_name.to_string(), planned.clone()));
    }
    /// The latest planned object of `type_name` whose string attribute `attr` equals `value`
    /// (ignoring ASCII case, as ARM ids do).
    pub fn find(&self, type_name: &str, attr: &str, value: &str) -> Option<Value> {
        self.planned
            .lock()
            .expect("ledger lock")
            .iter()
            .rev()
            .find(|(t, v)| {
                t == type_name
                    && v.get(attr)
                        .as_str()
                        .is_some_and(|s| s.eq_ignore_ascii_case(value))
            })
            .map(|(_, v)| v.clone())
    }
}

#[async_trait]
pub trait Resource<C: Send + Sync + 'static>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    /// Some(..) adds a `timeouts` block with these defaults.
    fn timeouts(&self) -> Option<TimeoutDefaults> {
        None
    }
    /// Cross-attribute checks that need no API (values may be unknown: skip those).
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    /// Plan-time checks and adjustments that need the API; runs after the generic engine.
    async fn modify_plan(&self, _client: &C, _req: PlanRequest<'_>, _diags: &mut Diagnostics) {}
    /// Creates the remote object. On failure after the object exists, return its state
    /// anyway (with errors in `diags`) so Terraform records it, tainted, and nothing is lost.
    async fn create(&self, client: &C, req: &ApplyRequest, diags: &mut Diagnostics) -> Value;
    /// Refreshes state; `Value::Null` means the object is gone.
    async fn read(&self, client: &C, state: &Value, diags: &mut Diagnostics) -> Value;
    async fn update(&self, client: &C, req: &ApplyRequest, diags: &mut Diagnostics) -> Value;
    async fn delete(&self, client: &C, state: &Value, diags: &mut Diagnostics);
    /// Builds a minimal state from an import id; Terraform calls `read` next.
    async fn import(&self, _client: &C, _id: &str, diags: &mut Diagnostics) -> Value {
        diags.error(
            "Import not supported",
            format!("{} cannot be imported.", self.type_name()),
        );
        Value::Null
    }
    /// Some(..) when the type declares a resource identity (Terraform >= 1.12).
    fn identity(&self) -> Option<&dyn ResourceIdentity> {
        None
    }
    /// Rewrites raw JSON state written by an older schema version.
    fn upgrade_state(
        &self,
        _from_version: i64,
        state: serde_json::Value,
        _diags: &mut Diagnostics,
    ) -> serde_json::Value {
        state
    }
}

#[async_trait]
pub trait DataSource<C: Send + Sync + 'static>: Send + Sync {
    fn type_name(&self) -> &'static str;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    async fn read(&self, client: &C, config: &Value, diags: &mut Diagnostics) -> Value;
}

#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// What `configure` builds and every resource receives: API clients and defaults.
    type Client: Send + Sync + 'static;
    fn schema(&self) -> Schema;
    fn validate(&self, _config: &Value, _diags: &mut Diagnostics) {}
    async fn configure(
        &self,
        config: &Value,
        terraform_version: &str,
        diags: &mut Diagnostics,
    ) -> Option<Self::Client>;
    fn resources(&self) -> Vec<Arc<dyn Resource<Self::Client>>>;
    fn data_sources(&self) -> Vec<Arc<dyn DataSource<Self::Client>>>;
    /// Provider-defined functions (`provider::<name>::<function>`), served without configuration.
    fn functions(&self) -> Vec<Arc<dyn Function>> {
        Vec::new()
    }
}

/// One attribute of a resource identity (always a string here).
#[derive(Debug, Clone)]
pub struct IdentityAttribute {
    pub name: &'static str,
    /// Must be given in `import { identity = {…} }`; otherwise optional there.
    pub required_for_import: bool,
    pub description: &'static str,
}

/// The identity schema of a resource type (Terraform >= 1.12): a small, permanent object
/// naming the remote object, versioned apart from the resource schema.
#[derive(Debug, Clone)]
pub struct IdentitySchema {
    pub version: i64,
    pub attributes: Vec<IdentityAttribute>,
}

impl IdentitySchema {
    pub fn new(version: i64) -> Self {
        IdentitySchema {
            version,
            attributes: Vec::new(),
        }
    }
    pub fn required(mut self, name: &'static str, description: &'static str) -> Self {
        self.attributes.push(IdentityAttribute {
            name,
            required_for_import: true,
            description,
        });
        self
    }
    pub fn optional(mut self, name: &'static str, description: &'static str) -> Self {
        self.attributes.push(IdentityAttribute {
            name,
            required_for_import: false,
            description,
        });
        self
    }
    /// The identity's object type: every attribute a string.
    pub fn object_type(&self) -> clara_tfplugin::Type {
        clara_tfplugin::Type::object(
            self.attributes
                .iter()
                .map(|a| (a.name, clara_tfplugin::Type::String)),
        )
    }
    /// An identity object from (name, value) pairs; attributes not given are null.
    pub fn value<'a>(&self, parts: impl IntoIterator<Item = (&'a str, String)>) -> Value {
        let mut obj: std::collections::BTreeMap<String, Value> = self
            .attributes
            .iter()
            .map(|a| (a.name.to_string(), Value::Null))
            .collect();
        for (k, v) in parts {
            obj.insert(k.to_string(), Value::String(v));
        }
        Value::Object(obj)
    }
}

/// A resource's identity, like terraform-plugin-framework's `ResourceWithIdentity` (+
/// `…WithUpgradeIdentity`); a resource opts in through [`Resource::identity`]. The
/// framework returns the identity on every read, create, update and import, and turns
/// `import { identity = {…} }` into an import id for [`Resource::import`].
pub trait ResourceIdentity: Send + Sync {
    fn identity_schema(&self) -> IdentitySchema;
    /// The identity of the object a (known) state describes; `None` when the state
    /// lacks the parts (e.g. not yet created).
    fn identity_of(&self, state: &Value) -> Option<Value>;
    /// The import id an identity names, or a message naming the attribute that is wrong.
    /// Every part must be validated before it is joined into an id.
    fn import_id(&self, identity: &Value) -> Result<String, String>;
    /// Rewrites raw JSON identity stored under an older identity version.
    fn upgrade_identity(
        &self,
        _from_version: i64,
        identity: serde_json::Value,
        _diags: &mut Diagnostics,
    ) -> serde_json::Value {
        identity
    }
}
