//! Compute request validation: the catalog schema (`ComputeResource` for PUT,
//! `ClusterUpdateParameters` for PATCH) plus the service's business rules.

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::model::DEFAULT_VM_SIZE;
use crate::app::AppState;
use crate::arm::error::{ArmError, ArmResult};
use crate::arm::{violations_error, vm_sizes};
use crate::config::WorkspaceConfig;
use crate::schema::{Mode, catalog};

const SCALE_PATH: &str = "properties.properties.scaleSettings";

/// A validated PUT body.
pub struct ComputeSpec {
    pub location: String,
    pub tags: Option<Value>,
    pub sku: Option<Value>,
    pub identity: Option<Value>,
    pub properties: Value,
}

impl ComputeSpec {
    pub fn body(&self) -> Value {
        serde_json::json!({
            "location": self.location,
            "tags": self.tags,
            "sku": self.sku,
            "identity": self.identity,
            "properties": self.properties,
        })
    }
}

/// A validated PATCH body (`ClusterUpdateParameters` + optional top-level `tags`).
pub struct PatchSpec {
    pub scale_settings: Option<Map<String, Value>>,
    /// `Some(Value::Null)` clears the tags.
    pub tags: Option<Value>,
}

/// Compute names: 3-32 chars, letter first, letters/digits/dashes, no trailing dash
/// (the rule terraform-provider-azurerm enforces because the service does).
pub fn compute_name(name: &str) -> ArmResult<()> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(r"^[a-zA-Z][a-zA-Z0-9-]{1,30}[a-zA-Z0-9]$").expect("valid regex")
    });
    if re.is_match(name) {
        Ok(())
    } else {
        Err(ArmError::bad_request(format!(
            "Compute name '{name}' is invalid. It can include letters, digits and dashes. It must start with a letter, end with a letter or digit, and be between 3 and 32 characters long."
        ))
        .with_code("InvalidComputeName")
        .with_target("computeName"))
    }
}

pub fn create_body(app: &AppState, ws: &WorkspaceConfig, body: &Value) -> ArmResult<ComputeSpec> {
    // A valid but unsupported compute type is reported as such (not as schema noise).
    let compute_type = body["properties"]["computeType"]
        .as_str()
        .unwrap_or_default();
    let known_type = catalog()
        .enum_values("ComputeType")
        .is_some_and(|v| v.iter().any(|t| t == compute_type));
    if known_type && compute_type != "AmlCompute" {
        return Err(ArmError::bad_request(format!(
            "Compute type '{compute_type}' is not supported by the emulator; only 'AmlCompute' clusters are."
        ))
        .with_target("properties.computeType"));
    }
    violations_error(catalog().validate("ComputeResource", body, Mode::Create, ""))?;
    let props = body
        .get("properties")
        .filter(|v| !v.is_null())
        .ok_or_else(|| required("properties"))?;
    let aml = props
        .get("properties")
        .and_then(Value::as_object)
        .ok_or_else(|| required("properties.properties"))?;
    let scale = aml
        .get("scaleSettings")
        .and_then(Value::as_object)
        .ok_or_else(|| required(SCALE_PATH))?;
    check_scale(scale)?;

    let location = match body.get("location").and_then(Value::as_str) {
        Some(loc) => loc.to_string(),
        None => ws.location.clone(),
    };
    check_served_location(app, &location, "location")?;
    let compute_location = props
        .get("computeLocation")
        .and_then(Value::as_str)
        .unwrap_or(&location);
    check_served_location(app, compute_location, "properties.computeLocation")?;
    check_vm_size(aml, compute_location)?;
    if let Some(identity) = body.get("identity").filter(|v| !v.is_null()) {
        check_identity(identity)?;
    }

    Ok(ComputeSpec {
        location,
        tags: body.get("tags").filter(|v| !v.is_null()).cloned(),
        sku: body.get("sku").filter(|v| !v.is_null()).cloned(),
        identity: body.get("identity").filter(|v| !v.is_null()).cloned(),
        properties: props.clone(),
    })
}

pub fn patch_body(body: &Value) -> ArmResult<PatchSpec> {
    let mut rest = body.as_object().cloned().unwrap_or_default();
    let tags = rest.remove("tags");
    if let Some(t) = &tags {
        check_tags(t)?;
    }
    let rest = Value::Object(rest);
    violations_error(catalog().validate("ClusterUpdateParameters", &rest, Mode::Update, ""))?;
    let scale_settings = rest["properties"]["properties"]["scaleSettings"]
        .as_object()
        .cloned();
    Ok(PatchSpec {
        scale_settings,
        tags,
    })
}

/// `0 <= minNodeCount <= maxNodeCount`.
pub fn check_scale(scale: &Map<String, Value>) -> ArmResult<()> {
    let max = scale
        .get("maxNodeCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let min = scale
        .get("minNodeCount")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if max < 0 {
        return Err(ArmError::bad_request(format!(
            "maxNodeCount must be greater than or equal to 0, got {max}."
        ))
        .with_target(format!("{SCALE_PATH}.maxNodeCount")));
    }
    if min < 0 {
        return Err(ArmError::bad_request(format!(
            "minNodeCount must be greater than or equal to 0, got {min}."
        ))
        .with_target(format!("{SCALE_PATH}.minNodeCount")));
    }
    if min > max {
        return Err(ArmError::bad_request(format!(
            "minNodeCount ({min}) must be less than or equal to maxNodeCount ({max})."
        ))
        .with_target(format!("{SCALE_PATH}.minNodeCount")));
    }
    Ok(())
}

fn check_vm_size(aml: &Map<String, Value>, location: &str) -> ArmResult<()> {
    let requested = aml
        .get("vmSize")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_VM_SIZE);
    let Some(size) = vm_sizes::find(requested) else {
        return Err(ArmError::bad_request(format!(
            "The specified VM size '{requested}' is not available in location '{location}'. Use the vmSizes API to list the supported sizes."
        ))
        .with_code("InvalidVmSize")
        .with_target("properties.properties.vmSize"));
    };
    if aml.get("vmPriority").and_then(Value::as_str) == Some("LowPriority")
        && !size.low_priority_capable
    {
        return Err(ArmError::bad_request(format!(
            "VM size '{}' does not support vmPriority 'LowPriority'.",
            size.name
        ))
        .with_target("properties.properties.vmPriority"));
    }
    Ok(())
}

fn check_served_location(app: &AppState, location: &str, target: &str) -> ArmResult<()> {
    if app.config.serves_location(location) {
        Ok(())
    } else {
        Err(ArmError::bad_request(format!(
            "The provided location '{location}' is not available for resource type 'Microsoft.MachineLearningServices/workspaces/computes'."
        ))
        .with_code("LocationNotAvailableForResourceType")
        .with_target(target))
    }
}

fn check_identity(identity: &Value) -> ArmResult<()> {
    let ty = identity["type"].as_str().unwrap_or("None");
    let uai_count = identity["userAssignedIdentities"]
        .as_object()
        .map_or(0, Map::len);
    if ty.contains("UserAssigned") && uai_count == 0 {
        return Err(ArmError::bad_request(format!(
            "Identity type '{ty}' requires at least one entry in userAssignedIdentities."
        ))
        .with_target("identity.userAssignedIdentities"));
    }
    if !ty.contains("UserAssigned") && uai_count > 0 {
        return Err(ArmError::bad_request(format!(
            "userAssignedIdentities must be empty when the identity type is '{ty}'."
        ))
        .with_target("identity.userAssignedIdentities"));
    }
    Ok(())
}

fn check_tags(tags: &Value) -> ArmResult<()> {
    match tags {
        Value::Null => Ok(()),
        Value::Object(map) => match map.iter().find(|(_, v)| !v.is_string()) {
            None => Ok(()),
            Some((k, _)) => Err(ArmError::invalid_content(format!(
                "Tag '{k}' must have a string value."
            ))
            .with_target(format!("tags.{k}"))),
        },
        _ => Err(
            ArmError::invalid_content("tags must be an object of string values.")
                .with_target("tags"),
        ),
    }
}

fn required(target: &str) -> ArmError {
    let leaf = target.rsplit('.').next().unwrap_or(target);
    ArmError::bad_request(format!("The '{leaf}' field is required.")).with_target(target)
}
