//! The stored AmlCompute record, its ARM rendering (shaped like `Compute/get/AmlCompute.json`)
//! and the immutable/mutable views used to decide what a PUT on an existing compute may do.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::arm::PROVIDER;
use crate::util::{normalize_location, rfc3339, stable_guid};

pub const RESOURCE_TYPE: &str = "Microsoft.MachineLearningServices/workspaces/computes";
pub const DEFAULT_VM_SIZE: &str = "STANDARD_DS3_V2";
pub const DEFAULT_IDLE_TIME: &str = "PT120S";

pub mod state {
    pub const CREATING: &str = "Creating";
    pub const UPDATING: &str = "Updating";
    pub const DELETING: &str = "Deleting";
    pub const SUCCEEDED: &str = "Succeeded";
    pub const FAILED: &str = "Failed";
}

/// `computes` section of the config file: quirks of the real service that are switchable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ComputesConfig {
    /// Re-creating a compute of the same name right after deleting it keeps the deleted
    /// compute's `vmSize` although the PUT acknowledges the new one (azure-rest-api-specs#18889).
    pub recreate_keeps_old_vm_size: bool,
}

/// Persisted compute bookkeeping besides the records themselves.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ComputeExtra {
    /// `PUT /_emulator/computes` override of the config's switches (not persisted).
    #[serde(skip)]
    pub overrides: Option<ComputesConfig>,
    /// Key (as `compute_key`) → `vmSize` of the compute last deleted under that name, kept
    /// while `recreate_keeps_old_vm_size` is on and consumed by the next create of the name.
    pub deleted_vm_sizes: std::collections::BTreeMap<String, String>,
}

/// Store key of a compute (ARM names are case-insensitive).
pub fn compute_key(sub: &str, rg: &str, ws: &str, name: &str) -> String {
    format!("{sub}/{rg}/{ws}/{name}").to_ascii_lowercase()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComputeRecord {
    pub subscription: String,
    pub resource_group: String,
    pub workspace: String,
    pub name: String,
    pub location: String,
    pub tags: Option<Value>,
    pub sku: Option<Value>,
    pub identity: Option<Value>,
    /// The `properties` object as the client sent it (secrets included; never rendered).
    pub properties: Value,
    pub provisioning_state: String,
    pub provisioning_errors: Option<Value>,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub allocation_changed_ms: u64,
    pub current_node_count: i64,
    /// In-progress operation that owns the current provisioning state.
    pub pending_op: Option<String>,
    pub created_by: String,
}

/// Scale settings with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    pub max: i64,
    pub min: i64,
    pub idle: String,
}

pub fn scale_of(scale_settings: Option<&Value>) -> Scale {
    let s = scale_settings.cloned().unwrap_or(Value::Null);
    Scale {
        max: s["maxNodeCount"].as_i64().unwrap_or(0),
        min: s["minNodeCount"].as_i64().unwrap_or(0),
        idle: s["nodeIdleTimeBeforeScaleDown"]
            .as_str()
            .unwrap_or(DEFAULT_IDLE_TIME)
            .to_string(),
    }
}

impl ComputeRecord {
    pub fn arm_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER}/workspaces/{}/computes/{}",
            self.subscription, self.resource_group, self.workspace, self.name
        )
    }

    /// `properties.properties` (AmlComputeProperties) as sent.
    pub fn aml(&self) -> Option<&Map<String, Value>> {
        self.properties.get("properties").and_then(Value::as_object)
    }

    pub fn aml_mut(&mut self) -> &mut Map<String, Value> {
        if !self.properties["properties"].is_object() {
            self.properties["properties"] = json!({});
        }
        self.properties["properties"]
            .as_object_mut()
            .expect("just ensured an object")
    }

    pub fn scale(&self) -> Scale {
        scale_of(self.aml().and_then(|a| a.get("scaleSettings")))
    }

    pub fn target_node_count(&self) -> i64 {
        self.scale().min
    }

    pub fn is_busy(&self) -> bool {
        self.pending_op.is_some()
    }

    /// The client-settable part of the resource, as a request body.
    pub fn spec_body(&self) -> Value {
        json!({
            "location": self.location,
            "tags": self.tags,
            "sku": self.sku,
            "identity": self.identity,
            "properties": self.properties,
        })
    }

    /// GET body. Secrets (`adminUserPassword`, `adminUserSshPublicKey`) are never returned.
    pub fn render(&self, app: &AppState) -> Value {
        let id = self.arm_id();
        let mut body = json!({
            "id": id,
            "name": self.name,
            "type": RESOURCE_TYPE,
            "location": self.location,
        });
        if let Some(tags) = &self.tags {
            body["tags"] = tags.clone();
        }
        if let Some(sku) = &self.sku {
            body["sku"] = sku.clone();
        }
        if let Some(identity) = &self.identity {
            body["identity"] = render_identity(identity, &id, &app.config.tenant_id);
        }
        body["systemData"] = json!({
            "createdAt": rfc3339(self.created_ms),
            "createdBy": self.created_by,
            "createdByType": "Application",
            "lastModifiedAt": rfc3339(self.modified_ms),
            "lastModifiedBy": self.created_by,
            "lastModifiedByType": "Application",
        });
        body["properties"] = self.render_properties();
        body
    }

    fn render_properties(&self) -> Value {
        let p = &self.properties;
        let mut out = json!({
            "computeType": p["computeType"],
            "computeLocation": p.get("computeLocation").filter(|v| !v.is_null()).cloned().unwrap_or_else(|| json!(self.location)),
            "description": p.get("description").cloned().unwrap_or(Value::Null),
            "createdOn": rfc3339(self.created_ms),
            "modifiedOn": rfc3339(self.modified_ms),
            "provisioningState": self.provisioning_state,
            "provisioningErrors": self.provisioning_errors,
            "isAttachedCompute": false,
            "disableLocalAuth": p.get("disableLocalAuth").and_then(Value::as_bool).unwrap_or(false),
        });
        if let Some(rid) = p.get("resourceId").filter(|v| !v.is_null()) {
            out["resourceId"] = rid.clone();
        }
        out["properties"] = self.render_aml();
        out
    }

    fn render_aml(&self) -> Value {
        let mut aml = self.aml().cloned().unwrap_or_default();
        if let Some(creds) = aml
            .get_mut("userAccountCredentials")
            .and_then(Value::as_object_mut)
        {
            creds.remove("adminUserPassword");
            creds.remove("adminUserSshPublicKey");
        }
        let effective_remote_login = effective_remote_login(self.aml());
        let defaults = [
            ("vmSize", json!(DEFAULT_VM_SIZE)),
            ("vmPriority", json!("Dedicated")),
            ("osType", json!("Linux")),
            ("virtualMachineImage", Value::Null),
            ("isolatedNetwork", json!(false)),
            ("subnet", Value::Null),
            ("enableNodePublicIp", json!(true)),
        ];
        for (k, v) in defaults {
            if aml.get(k).is_none_or(Value::is_null) {
                aml.insert(k.to_string(), v);
            }
        }
        // AmlCompute answers with the size upper-cased, whatever was sent
        // (azure-rest-api-specs#20216: `STANDARD_NC8AS_T4_v3` comes back `STANDARD_NC8AS_T4_V3`).
        if let Some(size) = aml.get("vmSize").and_then(Value::as_str) {
            let upper = size.to_ascii_uppercase();
            aml.insert("vmSize".into(), json!(upper));
        }
        let scale = self.scale();
        let target = scale.min;
        let current = self.current_node_count;
        aml.insert(
            "scaleSettings".into(),
            json!({ "maxNodeCount": scale.max, "minNodeCount": scale.min, "nodeIdleTimeBeforeScaleDown": scale.idle }),
        );
        aml.insert(
            "remoteLoginPortPublicAccess".into(),
            json!(effective_remote_login),
        );
        aml.insert(
            "allocationState".into(),
            json!(if current == target {
                "Steady"
            } else {
                "Resizing"
            }),
        );
        aml.insert(
            "allocationStateTransitionTime".into(),
            json!(rfc3339(self.allocation_changed_ms)),
        );
        aml.insert("errors".into(), Value::Null);
        aml.insert("currentNodeCount".into(), json!(current));
        aml.insert("targetNodeCount".into(), json!(target));
        aml.insert(
            "nodeStateCounts".into(),
            json!({
                "idleNodeCount": current,
                "runningNodeCount": 0,
                "preparingNodeCount": 0,
                "unusableNodeCount": 0,
                "leavingNodeCount": 0,
                "preemptedNodeCount": 0,
            }),
        );
        Value::Object(aml)
    }
}

/// `NotSpecified` (or absent) becomes `Enabled` when the nodes have login credentials and no
/// subnet, `Disabled` otherwise (as the service does after creation).
pub fn effective_remote_login(aml: Option<&Map<String, Value>>) -> String {
    let Some(aml) = aml else {
        return "Disabled".into();
    };
    match aml
        .get("remoteLoginPortPublicAccess")
        .and_then(Value::as_str)
    {
        Some(v @ ("Enabled" | "Disabled")) => v.to_string(),
        _ => {
            let creds = &aml
                .get("userAccountCredentials")
                .cloned()
                .unwrap_or(Value::Null);
            let has_login = creds["adminUserSshPublicKey"].is_string()
                || creds["adminUserPassword"].is_string();
            let in_subnet = aml.get("subnet").is_some_and(|s| !s.is_null());
            if has_login && !in_subnet {
                "Enabled".into()
            } else {
                "Disabled".into()
            }
        }
    }
}

fn render_identity(identity: &Value, resource_id: &str, tenant_id: &str) -> Value {
    let mut out = identity.clone();
    let ty = identity["type"].as_str().unwrap_or("None");
    if ty.contains("SystemAssigned") {
        out["principalId"] = json!(stable_guid(
            &format!("{resource_id}/system").to_ascii_lowercase()
        ));
        out["tenantId"] = json!(tenant_id);
    }
    if let Some(uais) = out
        .get_mut("userAssignedIdentities")
        .and_then(Value::as_object_mut)
    {
        for (uai_id, v) in uais.iter_mut() {
            let seed = uai_id.to_ascii_lowercase();
            *v = json!({
                "principalId": stable_guid(&format!("{seed}/principal")),
                "clientId": stable_guid(&format!("{seed}/client")),
            });
        }
    }
    out
}

/// Every field that cannot change after create, with defaults applied and case-insensitive
/// values normalized. Paths are the wire paths reported as error targets.
pub fn immutable_fields(body: &Value) -> Vec<(&'static str, Value)> {
    let props = &body["properties"];
    let aml = &props["properties"];
    let location = body["location"]
        .as_str()
        .map(normalize_location)
        .unwrap_or_default();
    let or = |v: &Value, default: Value| if v.is_null() { default } else { v.clone() };
    let lower = |v: &Value| {
        v.as_str()
            .map_or(Value::Null, |s| json!(s.to_ascii_lowercase()))
    };
    let identity = {
        let id = &body["identity"];
        let mut uais: Vec<String> = id["userAssignedIdentities"]
            .as_object()
            .map(|m| m.keys().map(|k| k.to_ascii_lowercase()).collect())
            .unwrap_or_default();
        uais.sort();
        json!({ "type": or(&id["type"], json!("None")), "userAssignedIdentities": uais })
    };
    vec![
        ("location", json!(location)),
        ("sku", body["sku"].clone()),
        ("identity", identity),
        ("properties.computeType", props["computeType"].clone()),
        (
            "properties.computeLocation",
            props["computeLocation"]
                .as_str()
                .map_or_else(|| json!(location), |s| json!(normalize_location(s))),
        ),
        (
            "properties.disableLocalAuth",
            or(&props["disableLocalAuth"], json!(false)),
        ),
        ("properties.resourceId", props["resourceId"].clone()),
        (
            "properties.properties.vmSize",
            lower(&or(&aml["vmSize"], json!(DEFAULT_VM_SIZE))),
        ),
        (
            "properties.properties.vmPriority",
            or(&aml["vmPriority"], json!("Dedicated")),
        ),
        (
            "properties.properties.osType",
            or(&aml["osType"], json!("Linux")),
        ),
        (
            "properties.properties.virtualMachineImage",
            aml["virtualMachineImage"].clone(),
        ),
        (
            "properties.properties.isolatedNetwork",
            or(&aml["isolatedNetwork"], json!(false)),
        ),
        ("properties.properties.subnet", lower(&aml["subnet"]["id"])),
        (
            "properties.properties.userAccountCredentials",
            aml["userAccountCredentials"].clone(),
        ),
        (
            "properties.properties.remoteLoginPortPublicAccess",
            json!(effective_remote_login(aml.as_object())),
        ),
        (
            "properties.properties.enableNodePublicIp",
            or(&aml["enableNodePublicIp"], json!(true)),
        ),
        (
            "properties.properties.propertyBag",
            aml["propertyBag"].clone(),
        ),
    ]
}

/// First immutable field that differs between two request bodies.
pub fn first_immutable_change(old: &Value, new: &Value) -> Option<&'static str> {
    immutable_fields(old)
        .into_iter()
        .zip(immutable_fields(new))
        .find(|((_, a), (_, b))| a != b)
        .map(|((path, _), _)| path)
}

/// The fields a PUT on an existing AmlCompute may change: description, scale settings, tags.
pub fn mutable_fields(body: &Value) -> (Value, Scale, Value) {
    let props = &body["properties"];
    (
        props["description"].clone(),
        scale_of(props["properties"].get("scaleSettings")),
        body["tags"].clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immutable_compare_applies_defaults() {
        let a = json!({"location":"East US","properties":{"computeType":"AmlCompute","properties":{"vmSize":"Standard_NC6s_v3","scaleSettings":{"maxNodeCount":1}}}});
        let b = json!({"location":"eastus","properties":{"computeType":"AmlCompute","properties":{"vmSize":"STANDARD_NC6S_V3","vmPriority":"Dedicated","osType":"Linux","scaleSettings":{"maxNodeCount":4}}}});
        assert_eq!(first_immutable_change(&a, &b), None);
        let c = json!({"location":"eastus","properties":{"computeType":"AmlCompute","properties":{"vmSize":"Standard_NC12s_v3"}}});
        assert_eq!(
            first_immutable_change(&a, &c),
            Some("properties.properties.vmSize")
        );
    }

    #[test]
    fn remote_login_not_specified_resolves() {
        let aml = json!({"remoteLoginPortPublicAccess":"NotSpecified","userAccountCredentials":{"adminUserName":"a","adminUserSshPublicKey":"ssh-rsa x"}});
        assert_eq!(effective_remote_login(aml.as_object()), "Enabled");
        let aml = json!({"userAccountCredentials":{"adminUserName":"a"}});
        assert_eq!(effective_remote_login(aml.as_object()), "Disabled");
    }
}
