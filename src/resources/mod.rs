//! One file per resource type: schema + CRUD.
pub mod azureml_environment;
pub mod azureml_gpu_cluster;
pub mod clara_training_run;
pub mod ngc_asset;

use std::collections::BTreeMap;

use clara_framework::{Attribute, Diagnostics, Value};

use crate::client::ClaraClient;

/// `workspace_id`, as every Azure ML resource declares it.
pub fn workspace_id_attribute() -> Attribute {
    Attribute::string("workspace_id")
        .optional()
        .computed()
        .requires_replace()
        .use_state_for_unknown()
        .describe("ARM id of the Azure ML workspace. Defaults to the provider's workspace.")
}

/// Plans the provider's default workspace where the configuration leaves `workspace_id`
/// unset (an unknown value from another resource stays unknown).
pub fn plan_default_workspace(
    client: &ClaraClient,
    config: &Value,
    planned: &mut BTreeMap<String, Value>,
    diags: &mut Diagnostics,
) {
    if config.get("workspace_id").is_null()
        && !planned
            .get("workspace_id")
            .is_some_and(|v| v.as_str().is_some())
    {
        if let Some(ws) = client.workspace(&Value::Null, diags) {
            planned.insert("workspace_id".into(), Value::from(ws.to_string()));
        }
    }
}

/// After a resource has put the prior's value back where the planned one means the same
/// (semantic equality: another spelling, another order), drops the replacements that no
/// longer apply and, when nothing the configuration decides still differs, makes the plan
/// the prior state itself ("No changes"); returns true then.
pub fn settle_if_unchanged(
    prior: &Value,
    config: &Value,
    planned: &mut Value,
    requires_replace: &mut Vec<clara_framework::AttrPath>,
) -> bool {
    requires_replace.retain(|path| match path.0.first() {
        Some(clara_framework::diag::PathStep::Attribute(k)) => prior.get(k) != planned.get(k),
        _ => true,
    });
    let Some(p) = planned.as_object() else {
        return false;
    };
    // Unknown where the configuration is null: a computed value the engine reset.
    let changed = p
        .iter()
        .any(|(k, v)| v != prior.get(k) && !(v.is_unknown() && config.get(k).is_null()));
    if changed {
        return false;
    }
    *planned = prior.clone();
    requires_replace.clear();
    true
}
