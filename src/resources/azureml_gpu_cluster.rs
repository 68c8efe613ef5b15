//! `azureml_gpu_cluster`: an Azure ML AmlCompute cluster of GPU nodes.
//!
//! Only scale settings, description and tags change in place (what Azure allows on an
//! existing AmlCompute); everything else replaces the cluster. Create adopts a cluster of
//! the same name and shape left by an interrupted apply instead of failing or duplicating.

use std::collections::BTreeMap;

use clara_framework::model::{decode, encode};
use clara_framework::validators::{IntBetween, Length, Matches, OneOf};
use clara_framework::{
    ApplyRequest, AttrPath, Attribute, Block, Diagnostics, ModifierRequest, NestedBlock,
    PlanRequest, Resource, Schema, TimeoutDefaults, Value, async_trait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::azureml::{VmSize, vm_sizes_for, workspace_location};
use crate::client::ClaraClient;
use crate::ids::{ChildId, WorkspaceId, check_subnet_id, same_arm_id};
use crate::iso8601;
use crate::ownership::{self, Place};

/// Where a cluster carries its owner marker: AmlCompute has only ARM tags for that.
const MARKER_AT: Place = Place::Tag;

pub struct GpuCluster;

/// Version 1 renamed the write-only password pair to azurerm's and aws's spelling:
/// `admin_password` → `admin_password_wo`, `admin_password_version` →
/// `admin_password_wo_version`. The old names are not kept as aliases (see the docs).
const SCHEMA_VERSION: i64 = 1;

/// Moves state written by schema version 0 to version 1: the password version keeps its
/// value under the new name (so a configuration with the same version plans no change);
/// the password itself, write-only, was never in state (a null is dropped).
fn upgrade_from_v0(mut state: serde_json::Value) -> serde_json::Value {
    if let Some(o) = state.as_object_mut() {
        o.remove("admin_password");
        if let Some(v) = o.remove("admin_password_version") {
            o.insert("admin_password_wo_version".into(), v);
        }
    }
    state
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cluster {
    id: Option<String>,
    name: String,
    workspace_id: Option<String>,
    location: Option<String>,
    vm_size: String,
    vm_priority: Option<String>,
    min_nodes: Option<i64>,
    max_nodes: i64,
    idle_seconds_before_scaledown: Option<i64>,
    admin_username: Option<String>,
    admin_ssh_public_key: Option<String>,
    admin_password_wo: Option<String>,
    admin_password_wo_version: Option<i64>,
    remote_login_port_public_access: Option<String>,
    subnet_id: Option<String>,
    node_public_ip_enabled: Option<bool>,
    identity: Option<Identity>,
    description: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    gpus_per_node: Option<i64>,
    estimated_max_cost_usd_per_hour: Option<f64>,
    provisioning_state: Option<String>,
    allocation_state: Option<String>,
    current_node_count: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Identity {
    #[serde(rename = "type")]
    kind: String,
    identity_ids: Option<Vec<String>>,
    principal_id: Option<String>,
    tenant_id: Option<String>,
}

const NAME_RULE: &str = "must start with a letter, end with a letter or digit, and contain only letters, digits and '-'";
/// `ManagedServiceIdentityType` as the spec spells it (ARM common types v3,
/// managedidentity.json), `None` aside.
const IDENTITY_TYPES: &[&str] = &[
    "SystemAssigned",
    "UserAssigned",
    "SystemAssigned,UserAssigned",
];

/// The spec's spelling of an identity type; state written before it (with a space after the
/// comma) reads as the same type.
fn identity_type(t: &str) -> String {
    t.split(',').map(str::trim).collect::<Vec<_>>().join(",")
}

/// Only a system-assigned identity has a principal and tenant (plan modifier of the
/// identity block's computed attributes).
fn no_system_identity(r: &ModifierRequest<'_>) -> bool {
    r.planned_object
        .get("type")
        .as_str()
        .is_some_and(|t| !t.contains("SystemAssigned"))
}

/// Azure region names compare without case and spaces (`East US` = `eastus`).
fn same_location(a: &str, b: &str) -> bool {
    crate::ids::location_name(a) == crate::ids::location_name(b)
}

/// The region's Linux hourly price of one node times `max_nodes`, to the cent's hundredth.
fn max_cost_per_hour(size: &VmSize, priority: &str, max_nodes: i64) -> Option<f64> {
    let tier = if priority == "LowPriority" {
        "LowPriority"
    } else {
        "Standard"
    };
    size.hourly_price(tier)
        .map(|p| ((p * max_nodes as f64) * 10_000.0).round() / 10_000.0)
}

#[async_trait]
impl Resource<ClaraClient> for GpuCluster {
    fn type_name(&self) -> &'static str {
        "azureml_gpu_cluster"
    }
    fn identity(&self) -> Option<&dyn clara_framework::ResourceIdentity> {
        Some(self)
    }

    fn schema(&self) -> Schema {
        Schema::new(
            SCHEMA_VERSION,
            Block::new("An Azure Machine Learning compute cluster (AmlCompute) of GPU nodes that scales between `min_nodes` and `max_nodes`.")
                .attribute(Attribute::string("id").computed().use_state_for_unknown().describe("Azure Resource Manager id of the cluster. Determined by the workspace and `name`, so it is known at plan time, also when the cluster is replaced: runs that reference it are not re-run."))
                .attribute(
                    Attribute::string("name")
                        .required()
                        .requires_replace()
                        .validate(Length(3, 32))
                        .validate(Matches::new("[a-zA-Z][a-zA-Z0-9-]*[a-zA-Z0-9]", NAME_RULE))
                        .describe("Cluster name, 3-32 characters, unique in the workspace."),
                )
                .attribute(super::workspace_id_attribute())
                .attribute(
                    Attribute::string("location")
                        .optional()
                        .computed()
                        .requires_replace()
                        .use_state_for_unknown()
                        .describe("Azure region of the cluster. Defaults to the workspace's region."),
                )
                .attribute(
                    Attribute::string("vm_size")
                        .required()
                        .requires_replace()
                        .describe("VM size of every node; must be a GPU size offered in the region (see the `azureml_vm_sizes` data source), e.g. `Standard_NC12s_v3`. Compared without case, as Azure does (it answers `STANDARD_NC12S_V3`); the configured spelling stays in state."),
                )
                .attribute(
                    Attribute::string("vm_priority")
                        .default("Dedicated")
                        .requires_replace()
                        .validate(OneOf(&["Dedicated", "LowPriority"]))
                        .describe("`Dedicated` or `LowPriority` (cheaper, pre-emptible)."),
                )
                .attribute(Attribute::number("min_nodes").default(0i64).validate(IntBetween(0, 1000)).describe("Nodes kept running when idle. Updates in place."))
                .attribute(Attribute::number("max_nodes").required().validate(IntBetween(1, 1000)).describe("Upper bound of the cluster's size. Updates in place."))
                .attribute(
                    Attribute::number("idle_seconds_before_scaledown")
                        .default(120i64)
                        .validate(IntBetween(0, 604_800))
                        .describe("Idle time before nodes are released, in seconds. Updates in place."),
                )
                .attribute(
                    Attribute::string("admin_username")
                        .optional()
                        .requires_replace()
                        .validate(Length(1, 64))
                        .describe("Administrator account on the nodes (needed for SSH)."),
                )
                .attribute(Attribute::string("admin_ssh_public_key").optional().requires_replace().describe("SSH public key of the administrator account."))
                .attribute(
                    Attribute::string("admin_password_wo")
                        .optional()
                        .sensitive()
                        .write_only()
                        .describe("Administrator password. Write-only (Terraform 1.11+): sent to Azure, never stored in plan or state. Change `admin_password_wo_version` to apply a new one. Replaces `admin_password` of schema version 0."),
                )
                .attribute(
                    Attribute::number("admin_password_wo_version")
                        .optional()
                        .requires_replace()
                        .describe("Any number; changing it re-creates the cluster with the current `admin_password_wo` (the AmlCompute update API, `ClusterUpdateParameters`, changes only scale settings). Replaces `admin_password_version` of schema version 0."),
                )
                .attribute(
                    Attribute::string("remote_login_port_public_access")
                        .optional()
                        .computed()
                        .requires_replace()
                        .use_state_for_unknown()
                        .validate(OneOf(&["Enabled", "Disabled", "NotSpecified"]))
                        .describe("Public SSH port access: `Enabled`, `Disabled` or `NotSpecified` (Azure decides)."),
                )
                .attribute(Attribute::string("subnet_id").optional().requires_replace().describe("ARM id of a subnet for the nodes: `/subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>` (compared without case)."))
                .attribute(
                    Attribute::bool("node_public_ip_enabled")
                        .default(true)
                        .requires_replace()
                        .describe("Whether nodes get public IPs. `false` needs `subnet_id`."),
                )
                .attribute(Attribute::string("description").optional().describe("Free text. Updates in place."))
                .attribute(Attribute::string_map("tags").optional().null_is_empty().describe("Tags. Update in place. `tags = {}` is the same as no tags."))
                .attribute(Attribute::number("gpus_per_node").computed().use_state_for_unknown().describe("GPUs in each node of `vm_size`."))
                .attribute(Attribute::number("estimated_max_cost_usd_per_hour").computed().describe("Upper bound of the cluster's hourly cost: the region's Linux list price of `vm_size` (the `LowPriority` tier for `vm_priority = \"LowPriority\"`, from the vmSizes API) times `max_nodes`. Known at plan time; null when Azure lists no price."))
                .attribute(Attribute::string("provisioning_state").computed().derive(|_| Some(Value::from("Succeeded"))).describe("Azure provisioning state; planned `Succeeded` (apply waits for the operation, and one that does not reach it fails)."))
                .attribute(Attribute::string("allocation_state").computed().describe("`Steady` or `Resizing`."))
                .attribute(Attribute::number("current_node_count").computed().describe("Nodes allocated when last read."))
                .block(
                    NestedBlock::single(
                        "identity",
                        Block::new("Managed identity of the cluster's nodes.")
                            .attribute(Attribute::string("type").required().validate(OneOf(IDENTITY_TYPES)).describe("`SystemAssigned`, `UserAssigned` or `SystemAssigned,UserAssigned` (no space, as the API spells it)."))
                            .attribute(Attribute::string_list("identity_ids").optional().describe("ARM ids of user-assigned identities."))
                            .attribute(Attribute::string("principal_id").computed().use_state_for_unknown().null_if(no_system_identity).describe("Principal id of the system-assigned identity (null for `UserAssigned`)."))
                            .attribute(Attribute::string("tenant_id").computed().use_state_for_unknown().null_if(no_system_identity).describe("Tenant of the system-assigned identity (null for `UserAssigned`).")),
                    )
                    .requires_replace(),
                ),
        )
    }

    fn timeouts(&self) -> Option<TimeoutDefaults> {
        Some(TimeoutDefaults::minutes(30, 5, 30, 30))
    }

    fn upgrade_state(
        &self,
        from_version: i64,
        state: serde_json::Value,
        _diags: &mut Diagnostics,
    ) -> serde_json::Value {
        if from_version < 1 {
            upgrade_from_v0(state)
        } else {
            state
        }
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let (Some(min), Some(max)) = (
            config.get("min_nodes").as_i64(),
            config.get("max_nodes").as_i64(),
        ) && min > max
        {
            diags.attr_error(
                AttrPath::root("min_nodes"),
                "min_nodes exceeds max_nodes",
                format!("min_nodes ({min}) must not be greater than max_nodes ({max})."),
            );
        }
        if !config.get("admin_password_wo_version").is_null()
            && config.get("admin_password_wo").is_null()
        {
            diags.attr_error(
                AttrPath::root("admin_password_wo"),
                "admin_password_wo required",
                "admin_password_wo_version is set, so admin_password_wo must be set too: the version only says when to send the password again.",
            );
        }
        for secret in ["admin_password_wo", "admin_ssh_public_key"] {
            if !config.get(secret).is_null() && config.get("admin_username").is_null() {
                diags.attr_error(
                    AttrPath::root("admin_username"),
                    "admin_username required",
                    format!("{secret} is set, so admin_username must be set too."),
                );
            }
        }
        if let Some(ws) = config.get("workspace_id").as_str()
            && let Err(why) = WorkspaceId::parse(ws)
        {
            diags.attr_error(AttrPath::root("workspace_id"), "Invalid workspace_id", why);
        }
        if let Some(subnet) = config.get("subnet_id").as_str()
            && let Err(why) = check_subnet_id(subnet)
        {
            diags.attr_error(AttrPath::root("subnet_id"), "Invalid subnet_id", why);
        }
        if let Some(loc) = config.get("location").as_str()
            && (loc.is_empty() || !loc.chars().all(|c| c.is_ascii_alphanumeric() || c == ' '))
        {
            diags.attr_error(
                    AttrPath::root("location"),
                    "Invalid location",
                    format!("location must be an Azure region name such as \"eastus\" (letters, digits and spaces); got \"{loc}\"."),
                );
        }
        if config.get("node_public_ip_enabled").as_bool() == Some(false)
            && config.get("subnet_id").is_null()
        {
            diags.attr_error(AttrPath::root("subnet_id"), "subnet_id required", "node_public_ip_enabled = false needs a subnet_id: nodes without public IPs must join a virtual network.");
        }
        let identity = config.get("identity");
        if identity
            .get("type")
            .as_str()
            .is_some_and(|t| t.contains("UserAssigned"))
            && identity.get("identity_ids").is_null()
        {
            diags.attr_error(
                AttrPath::root("identity").attr("identity_ids"),
                "identity_ids required",
                "A UserAssigned identity needs identity_ids.",
            );
        }
    }

    async fn modify_plan(
        &self,
        client: &ClaraClient,
        req: PlanRequest<'_>,
        diags: &mut Diagnostics,
    ) {
        if !req.prior.is_null()
            && settle_semantic_equality(req.prior, req.config, req.planned, req.requires_replace)
        {
            return; // only spellings differ: "No changes"
        }
        let planned = req
            .planned
            .as_object_mut()
            .expect("planned state is an object");
        super::plan_default_workspace(client, req.config, planned, diags);
        let Some(ws) = planned["workspace_id"]
            .as_str()
            .and_then(|id| WorkspaceId::parse(id).ok())
        else {
            return;
        };
        // The id is the workspace's plus the name: known now, also across a replacement, so
        // what references the cluster (runs) does not change.
        if let Some(name) = planned["name"].as_str() {
            planned.insert("id".into(), Value::from(ws.child("computes", name)));
        }
        if (planned["location"].is_unknown() || planned["location"].is_null())
            && let Some(loc) = workspace_location(client, &ws, diags).await
        {
            planned.insert("location".into(), Value::from(loc));
        }
        let (Some(location), Some(vm_size)) = (
            planned["location"].as_str().map(str::to_string),
            planned["vm_size"].as_str().map(str::to_string),
        ) else {
            return;
        };
        let priority = planned["vm_priority"]
            .as_str()
            .unwrap_or("Dedicated")
            .to_string();
        let max_nodes = planned["max_nodes"].as_i64();
        let unchanged = |k: &str| req.prior.get(k) == &planned[k];
        let lookup_needed = !(unchanged("vm_size")
            && unchanged("location")
            && unchanged("vm_priority")
            && unchanged("max_nodes"))
            || planned["gpus_per_node"].is_unknown()
            || req.prior.get("estimated_max_cost_usd_per_hour").is_null();
        if !lookup_needed {
            planned.insert(
                "estimated_max_cost_usd_per_hour".into(),
                req.prior.get("estimated_max_cost_usd_per_hour").clone(),
            );
            return;
        }
        let Some(sizes) = vm_sizes_for(
            client,
            &ws,
            &location,
            Some(AttrPath::root("location")),
            diags,
        )
        .await
        else {
            return;
        };
        match check_vm_size(&sizes, &vm_size, &priority, &location) {
            Ok(size) => {
                planned.insert("gpus_per_node".into(), Value::from(size.gpus));
                let cost = match max_nodes {
                    Some(n) => Value::from(max_cost_per_hour(size, &priority, n)),
                    None => Value::Unknown,
                };
                planned.insert("estimated_max_cost_usd_per_hour".into(), cost);
            }
            Err(detail) => {
                diags.attr_error(AttrPath::root("vm_size"), "Unsuitable vm_size", detail)
            }
        }
    }

    async fn create(
        &self,
        client: &ClaraClient,
        req: &ApplyRequest,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(mut want) = model(&req.planned, diags) else {
            return Value::Null;
        };
        want.admin_password_wo = req
            .config
            .get("admin_password_wo")
            .as_str()
            .map(str::to_string);
        let Some(ws) = client.workspace(&Value::from(want.workspace_id.clone()), diags) else {
            return Value::Null;
        };
        let id = ws.child("computes", &want.name);

        let journal = ownership::Journal::here();
        match client.arm.get_json(&id).await {
            Err(e) => {
                diags.error("Cannot check for an existing cluster", e.to_string());
                return Value::Null;
            }
            Ok(Some(existing)) => {
                // Adopted only when an interrupted apply of this same state made it.
                let marker = match ownership::classify(&journal, &id, MARKER_AT, &existing) {
                    ownership::Found::Ours(m) => m,
                    ownership::Found::Foreign { marker } => {
                        ownership::already_exists(diags, "name", "Cluster", &id, marker.as_deref());
                        return Value::Null;
                    }
                };
                if let Err(why) = adoptable(&existing, &want) {
                    diags.attr_error(
                        AttrPath::root("name"),
                        "Cluster already exists",
                        format!("A compute named \"{}\" left by an interrupted apply of this state differs from this configuration ({why}). Delete it, or import it with `terraform import` and plan the change.", want.name),
                    );
                    return Value::Null;
                }
                ownership::adopted(diags, "name", "cluster", &id);
                // Re-sending the same PUT is idempotent: it converges scale settings and, if
                // the first creation is still running, waits for that same operation.
                let mut body = compute_body(&want);
                MARKER_AT.stamp(&mut body, &marker);
                if let Err(e) = client.arm.put_and_wait(&id, &body, &client.cancel).await {
                    diags.error(
                        format!("Adopting cluster \"{}\" failed", want.name),
                        e.to_string(),
                    );
                    return match client.arm.get_json(&id).await {
                        Ok(Some(body)) => self.state(&body, &want, &id, client, diags).await,
                        _ => Value::Null,
                    };
                }
            }
            Ok(None) => {
                let marker = match journal.begin(&id) {
                    Ok(m) => m,
                    Err(e) => {
                        diags.error("Cannot record the create", e);
                        return Value::Null;
                    }
                };
                let mut body = compute_body(&want);
                MARKER_AT.stamp(&mut body, &marker);
                if let Err(e) = client.arm.put_and_wait(&id, &body, &client.cancel).await {
                    diags.error(
                        format!("Creating cluster \"{}\" failed", want.name),
                        e.to_string(),
                    );
                    // The PUT may have created a broken cluster: keep it in state (tainted) so
                    // the next apply replaces it instead of losing track of it.
                    return match client.arm.get_json(&id).await {
                        Ok(Some(body)) => self.state(&body, &want, &id, client, diags).await,
                        _ => Value::Null,
                    };
                }
            }
        }
        let state = self.refresh(client, &id, &want, diags).await;
        check_created_size(&state, &want, diags);
        state
    }

    async fn read(&self, client: &ClaraClient, state: &Value, diags: &mut Diagnostics) -> Value {
        let Some(prior) = model(state, diags) else {
            return state.clone();
        };
        let Some(id) = prior.id.clone() else {
            return Value::Null;
        };
        match client.arm.get_json(&id).await {
            Ok(Some(body)) => {
                // In state: the create is no longer pending.
                ownership::Journal::here().settle(&id);
                self.state(&body, &prior, &id, client, diags).await
            }
            Ok(None) => Value::Null,
            Err(e) => {
                diags.error("Cannot read cluster", e.to_string());
                state.clone()
            }
        }
    }

    async fn update(
        &self,
        client: &ClaraClient,
        req: &ApplyRequest,
        diags: &mut Diagnostics,
    ) -> Value {
        let (Some(prior), Some(mut want)) = (model(&req.prior, diags), model(&req.planned, diags))
        else {
            return req.prior.clone();
        };
        want.admin_password_wo = req
            .config
            .get("admin_password_wo")
            .as_str()
            .map(str::to_string);
        let id = prior.id.clone().unwrap_or_default();
        if scale_body(&prior) != scale_body(&want) {
            let body = json!({"properties": {"properties": {"scaleSettings": scale_body(&want)}}});
            if let Err(e) = client.arm.patch_and_wait(&id, &body, &client.cancel).await {
                diags.error("Updating scale settings failed", e.to_string());
                return req.prior.clone();
            }
        }
        // `tags = {}` and no tags are the same to Azure: switching between them sends nothing.
        let tags = |t: &Option<BTreeMap<String, String>>| t.clone().unwrap_or_default();
        if tags(&prior.tags) != tags(&want.tags) || prior.description != want.description {
            // Tags and description travel only in a full PUT, which Azure accepts on an
            // existing AmlCompute when nothing immutable differs.
            // The full PUT replaces the tags: keep the owner marker the cluster carries.
            let mut body = compute_body(&want);
            match client.arm.get_json(&id).await {
                Ok(Some(existing)) => MARKER_AT.carry(&existing, &mut body),
                Ok(None) => {}
                Err(e) => {
                    diags.error("Cannot read cluster", e.to_string());
                    return req.prior.clone();
                }
            }
            if let Err(e) = client.arm.put_and_wait(&id, &body, &client.cancel).await {
                diags.error("Updating tags or description failed", e.to_string());
                return self.refresh(client, &id, &prior, diags).await;
            }
        }
        self.refresh(client, &id, &want, diags).await
    }

    async fn delete(&self, client: &ClaraClient, state: &Value, diags: &mut Diagnostics) {
        let Some(id) = state.get("id").as_str() else {
            return;
        };
        if let Err(e) = client
            .arm
            .delete_and_wait(
                id,
                &[("underlyingResourceAction", "Delete")],
                &client.cancel,
            )
            .await
        {
            diags.error("Deleting cluster failed", e.to_string());
            return;
        }
        ownership::Journal::here().settle(id);
    }

    async fn import(&self, _client: &ClaraClient, id: &str, diags: &mut Diagnostics) -> Value {
        match ChildId::parse(id, "computes") {
            Ok(c) => {
                let m = Cluster {
                    id: Some(c.workspace.child("computes", &c.name)),
                    name: c.name.clone(),
                    workspace_id: Some(c.workspace.to_string()),
                    ..Default::default()
                };
                encode(&m, &self.schema().block.object_type()).unwrap_or_else(|d| {
                    diags.extend(d);
                    Value::Null
                })
            }
            Err(e) => {
                diags.error("Invalid import id", e);
                Value::Null
            }
        }
    }
}

impl GpuCluster {
    async fn refresh(
        &self,
        client: &ClaraClient,
        id: &str,
        base: &Cluster,
        diags: &mut Diagnostics,
    ) -> Value {
        match client.arm.get_json(id).await {
            Ok(Some(body)) => self.state(&body, base, id, client, diags).await,
            Ok(None) => {
                diags.error(
                    "Cluster vanished",
                    format!("{id} was not found right after it was written."),
                );
                Value::Null
            }
            Err(e) => {
                diags.error("Cannot read cluster", e.to_string());
                encode_state(base, id)
            }
        }
    }

    /// State from an ARM body. `base` supplies what Azure never returns (the SSH key) and the
    /// user's spelling where Azure only changes case.
    async fn state(
        &self,
        body: &serde_json::Value,
        base: &Cluster,
        id: &str,
        client: &ClaraClient,
        diags: &mut Diagnostics,
    ) -> Value {
        let props = &body["properties"];
        let aml = &props["properties"];
        let scale = &aml["scaleSettings"];
        let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
        // Azure changes only the case of some values (vmSize upper-cased, ids and regions in
        // its own spelling): where the meaning is the same, the configured spelling stays.
        let vm_size = s(&aml["vmSize"])
            .map(|v| {
                if v.eq_ignore_ascii_case(&base.vm_size) {
                    base.vm_size.clone()
                } else {
                    v
                }
            })
            .unwrap_or_default();
        let location = s(&body["location"])
            .or_else(|| s(&props["computeLocation"]))
            .map(|l| match &base.location {
                Some(asked) if same_location(asked, &l) => asked.clone(),
                _ => l,
            })
            .or_else(|| base.location.clone());
        let arm_id = s(&body["id"])
            .filter(|got| !same_arm_id(got, id))
            .unwrap_or_else(|| id.to_string());
        let mut m = Cluster {
            id: Some(arm_id),
            name: s(&body["name"])
                .filter(|n| !n.eq_ignore_ascii_case(&base.name))
                .unwrap_or_else(|| base.name.clone()),
            workspace_id: base.workspace_id.clone(),
            location,
            vm_size,
            vm_priority: s(&aml["vmPriority"]).or(Some("Dedicated".into())),
            min_nodes: scale["minNodeCount"].as_i64().or(Some(0)),
            max_nodes: scale["maxNodeCount"].as_i64().unwrap_or(base.max_nodes),
            idle_seconds_before_scaledown: s(&scale["nodeIdleTimeBeforeScaleDown"])
                .and_then(|d| iso8601::seconds(&d)),
            admin_username: s(&aml["userAccountCredentials"]["adminUserName"]),
            admin_ssh_public_key: base.admin_ssh_public_key.clone(),
            admin_password_wo: None,
            admin_password_wo_version: base.admin_password_wo_version,
            remote_login_port_public_access: match (
                s(&aml["remoteLoginPortPublicAccess"]),
                &base.remote_login_port_public_access,
            ) {
                // Azure resolves NotSpecified to Enabled/Disabled after creation; keep what was asked.
                (_, Some(asked)) if asked == "NotSpecified" => Some(asked.clone()),
                (Some(actual), _) => Some(actual),
                (None, asked) => asked.clone().or(Some("NotSpecified".into())),
            },
            subnet_id: s(&aml["subnet"]["id"]).map(|got| match &base.subnet_id {
                Some(asked) if same_arm_id(asked, &got) => asked.clone(),
                _ => got,
            }),
            node_public_ip_enabled: aml["enableNodePublicIp"].as_bool().or(Some(true)),
            identity: identity_of(&body["identity"], base.identity.as_ref()),
            description: s(&props["description"]),
            // The owner marker is the provider's, not one of the user's tags.
            tags: body["tags"]
                .as_object()
                .map(|t| {
                    t.iter()
                        .filter(|(k, _)| k.as_str() != ownership::MARKER)
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect::<BTreeMap<_, _>>()
                })
                .filter(|t| !t.is_empty()),
            gpus_per_node: base.gpus_per_node,
            estimated_max_cost_usd_per_hour: None,
            provisioning_state: s(&props["provisioningState"]),
            allocation_state: s(&aml["allocationState"]),
            current_node_count: aml["currentNodeCount"].as_i64(),
        };
        // What the region's size list says: GPUs, the canonical spelling of an imported size
        // and the cost bound. The plan's values are kept while nothing they depend on moved.
        let same_shape = base.vm_size.eq_ignore_ascii_case(&m.vm_size)
            && base.max_nodes == m.max_nodes
            && base.vm_priority == m.vm_priority;
        if same_shape
            && base.gpus_per_node.is_some()
            && base.estimated_max_cost_usd_per_hour.is_some()
        {
            m.estimated_max_cost_usd_per_hour = base.estimated_max_cost_usd_per_hour;
        } else if let (Some(ws), Some(loc)) = (
            m.workspace_id
                .as_deref()
                .and_then(|w| WorkspaceId::parse(w).ok()),
            m.location.clone(),
        ) && let Some(sizes) = vm_sizes_for(client, &ws, &loc, None, diags).await
            && let Some(z) = sizes
                .iter()
                .find(|z| z.name.eq_ignore_ascii_case(&m.vm_size))
        {
            if base.vm_size.is_empty() {
                // Imported: record the region's spelling (`Standard_NC12s_v3`), the
                // one a configuration is written with, not Azure's upper-cased echo.
                m.vm_size = z.name.clone();
            }
            if !same_shape || m.gpus_per_node.is_none() {
                m.gpus_per_node = Some(z.gpus);
            }
            m.estimated_max_cost_usd_per_hour = max_cost_per_hour(
                z,
                m.vm_priority.as_deref().unwrap_or("Dedicated"),
                m.max_nodes,
            );
        }
        encode_state(&m, id)
    }
}

fn encode_state(m: &Cluster, id: &str) -> Value {
    let mut m = m.clone();
    m.admin_password_wo = None;
    m.id.get_or_insert_with(|| id.to_string());
    encode(&m, &GpuCluster.schema().block.object_type()).unwrap_or(Value::Null)
}

fn model(v: &Value, diags: &mut Diagnostics) -> Option<Cluster> {
    decode(v).map_err(|d| diags.extend(d)).ok()
}

fn check_vm_size<'a>(
    sizes: &'a [VmSize],
    vm_size: &str,
    priority: &str,
    location: &str,
) -> Result<&'a VmSize, String> {
    let gpu_sizes = || {
        let mut names: Vec<String> = sizes
            .iter()
            .filter(|s| s.gpus > 0)
            .map(|s| format!("{} ({} GPU)", s.name, s.gpus))
            .collect();
        names.sort();
        names.join(", ")
    };
    let Some(size) = sizes.iter().find(|s| s.name.eq_ignore_ascii_case(vm_size)) else {
        return Err(format!(
            "\"{vm_size}\" is not offered in {location}. GPU sizes there: {}.",
            gpu_sizes()
        ));
    };
    if size.gpus == 0 {
        return Err(format!(
            "\"{vm_size}\" has no GPUs. GPU sizes in {location}: {}.",
            gpu_sizes()
        ));
    }
    if priority == "LowPriority" && !size.low_priority_capable {
        return Err(format!(
            "\"{vm_size}\" cannot run at LowPriority in {location}."
        ));
    }
    Ok(size)
}

fn scale_body(m: &Cluster) -> serde_json::Value {
    json!({
        "maxNodeCount": m.max_nodes,
        "minNodeCount": m.min_nodes.unwrap_or(0),
        "nodeIdleTimeBeforeScaleDown": iso8601::duration(m.idle_seconds_before_scaledown.unwrap_or(120)),
    })
}

fn compute_body(m: &Cluster) -> serde_json::Value {
    let mut aml = json!({
        "osType": "Linux",
        "vmSize": m.vm_size,
        "vmPriority": m.vm_priority.as_deref().unwrap_or("Dedicated"),
        "scaleSettings": scale_body(m),
        "remoteLoginPortPublicAccess": m.remote_login_port_public_access.as_deref().unwrap_or("NotSpecified"),
        "enableNodePublicIp": m.node_public_ip_enabled.unwrap_or(true),
    });
    if let Some(user) = &m.admin_username {
        let mut creds = json!({"adminUserName": user});
        if let Some(k) = &m.admin_ssh_public_key {
            creds["adminUserSshPublicKey"] = json!(k);
        }
        if let Some(p) = &m.admin_password_wo {
            creds["adminUserPassword"] = json!(p);
        }
        aml["userAccountCredentials"] = creds;
    }
    if let Some(subnet) = &m.subnet_id {
        aml["subnet"] = json!({"id": subnet});
    }
    let mut props = json!({"computeType": "AmlCompute", "properties": aml});
    if let Some(d) = &m.description {
        props["description"] = json!(d);
    }
    let mut body = json!({"properties": props});
    if let Some(loc) = &m.location {
        body["location"] = json!(loc);
    }
    if let Some(tags) = &m.tags {
        body["tags"] = json!(tags);
    }
    if let Some(identity) = &m.identity {
        let mut i = json!({"type": identity.kind});
        if let Some(ids) = &identity.identity_ids {
            i["userAssignedIdentities"] = ids
                .iter()
                .map(|id| (id.clone(), json!({})))
                .collect::<serde_json::Map<_, _>>()
                .into();
        }
        body["identity"] = i;
    }
    body
}

fn identity_of(v: &serde_json::Value, base: Option<&Identity>) -> Option<Identity> {
    let kind = identity_type(v["type"].as_str().filter(|t| *t != "None")?);
    let ids: Option<Vec<String>> = v["userAssignedIdentities"]
        .as_object()
        .map(|m| m.keys().cloned().collect());
    Some(Identity {
        kind,
        // Keep the configured order; Azure returns a map.
        identity_ids: match (ids, base.and_then(|b| b.identity_ids.clone())) {
            (Some(got), Some(asked)) => {
                // ARM ids compare without case; keep the configured spelling and order.
                let key = |v: &[String]| {
                    let mut k: Vec<String> = v.iter().map(|s| s.to_ascii_lowercase()).collect();
                    k.sort();
                    k
                };
                if key(&got) == key(&asked) {
                    Some(asked)
                } else {
                    let mut got = got;
                    got.sort();
                    Some(got)
                }
            }
            (got, _) => got,
        },
        principal_id: v["principalId"].as_str().map(str::to_string),
        tenant_id: v["tenantId"].as_str().map(str::to_string),
    })
}

/// After create (or adoption): Azure must have created the size that was asked. Re-creating
/// a compute right after deleting one of the same name can keep the old size
/// (azure-rest-api-specs#18889); the state then records the actual size (so the next plan
/// replaces the cluster) and the apply fails naming both.
fn check_created_size(state: &Value, want: &Cluster, diags: &mut Diagnostics) {
    let Some(got) = state.get("vm_size").as_str() else {
        return;
    };
    if !got.eq_ignore_ascii_case(&want.vm_size) {
        diags.attr_error(
            AttrPath::root("vm_size"),
            "Azure created another VM size",
            format!(
                "vm_size = \"{}\" was asked, but Azure created cluster \"{}\" with \"{got}\". Azure can keep the size of a cluster of the same name deleted shortly before (azure-rest-api-specs#18889). The cluster is recorded with its actual size, so the next plan replaces it; wait a few minutes before applying again, or choose another name.",
                want.vm_size, want.name
            ),
        );
    }
}

/// Values that mean the same although spelled differently (vm size and ids in another case,
/// `East US` for `eastus`, the identity type with or without a space) keep the prior's
/// spelling in the plan, so they neither replace nor update the cluster. Returns true when
/// nothing else differs, after making the plan the prior state itself.
fn settle_semantic_equality(
    prior: &Value,
    config: &Value,
    planned: &mut Value,
    requires_replace: &mut Vec<AttrPath>,
) -> bool {
    let Some(p) = planned.as_object_mut() else {
        return false;
    };
    type Same = fn(&str, &str) -> bool;
    let same = |k: &str, eq: Same, p: &BTreeMap<String, Value>| matches!((prior.get(k).as_str(), p.get(k).and_then(Value::as_str)), (Some(a), Some(b)) if a != b && eq(a, b));
    let rules: [(&str, Same); 4] = [
        ("vm_size", |a, b| a.eq_ignore_ascii_case(b)),
        ("location", same_location),
        ("subnet_id", same_arm_id),
        ("workspace_id", same_arm_id),
    ];
    for (k, eq) in rules {
        if same(k, eq, p) {
            p.insert(k.into(), prior.get(k).clone());
        }
    }
    if let (Some(a), Some(b)) = (
        prior.get("identity").as_object(),
        p.get("identity").and_then(Value::as_object),
    ) {
        let kind =
            |o: &BTreeMap<String, Value>| o.get("type").and_then(Value::as_str).map(identity_type);
        let ids = |o: &BTreeMap<String, Value>| {
            let mut v: Vec<String> = o
                .get("identity_ids")
                .and_then(Value::as_elements)
                .map(|e| {
                    e.iter()
                        .filter_map(|x| x.as_str().map(str::to_ascii_lowercase))
                        .collect()
                })
                .unwrap_or_default();
            v.sort();
            v
        };
        if kind(a).is_some() && kind(a) == kind(b) && ids(a) == ids(b) {
            p.insert("identity".into(), prior.get("identity").clone());
        }
    }
    super::settle_if_unchanged(prior, config, planned, requires_replace)
}

/// Why an existing compute cannot be adopted as this resource, if it cannot.
fn adoptable(existing: &serde_json::Value, want: &Cluster) -> Result<(), String> {
    let aml = &existing["properties"]["properties"];
    let kind = existing["properties"]["computeType"]
        .as_str()
        .unwrap_or_default();
    if kind != "AmlCompute" {
        return Err(format!("it is a {kind}"));
    }
    let size = aml["vmSize"].as_str().unwrap_or_default();
    if !size.eq_ignore_ascii_case(&want.vm_size) {
        return Err(format!("vm_size is {size}"));
    }
    let priority = aml["vmPriority"].as_str().unwrap_or("Dedicated");
    if priority != want.vm_priority.as_deref().unwrap_or("Dedicated") {
        return Err(format!("vm_priority is {priority}"));
    }
    if existing["properties"]["provisioningState"].as_str() == Some("Failed") {
        return Err("its provisioning failed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(name: &str, gpus: i64) -> VmSize {
        serde_json::from_value(json!({"name": name, "gpus": gpus, "lowPriorityCapable": true}))
            .unwrap()
    }

    /// docs/index.md, "Attribute naming": on every resource a write-only attribute is
    /// `<x>_wo`, sensitive, with a `<x>_wo_version` beside it that replaces the resource.
    #[test]
    fn write_only_attributes_are_named_wo_with_a_version_on_every_resource() {
        use clara_framework::Provider;
        fn check(ty: &str, block: &Block, found: &mut usize) {
            for a in block.attributes.iter().filter(|a| a.write_only) {
                *found += 1;
                assert!(a.name.ends_with("_wo"), "{ty}.{} is write-only", a.name);
                assert!(a.sensitive, "{ty}.{} is write-only", a.name);
                let version = format!("{}_version", a.name);
                let v = block.attributes.iter().find(|b| b.name == version);
                assert!(
                    v.is_some_and(|v| v.requires_replace && !v.write_only),
                    "{ty}.{} needs {version}, forcing replacement",
                    a.name
                );
            }
            for b in &block.blocks {
                check(ty, &b.block, found);
            }
        }
        let mut found = 0;
        for r in crate::provider::ClaraProvider.resources() {
            check(r.type_name(), &r.schema().block, &mut found);
        }
        assert_eq!(
            found, 1,
            "admin_password_wo is the only write-only attribute"
        );
    }

    #[test]
    fn version_0_state_moves_the_password_version_to_the_wo_name() {
        let v0 = json!({"name": "ct", "admin_password": null, "admin_password_version": 3, "max_nodes": 1});
        let v1 = GpuCluster.upgrade_state(0, v0, &mut Diagnostics::new());
        assert_eq!(
            v1,
            json!({"name": "ct", "admin_password_wo_version": 3, "max_nodes": 1})
        );
        // A version-1 state is left as it is.
        let same = json!({"admin_password_wo_version": 4});
        assert_eq!(
            GpuCluster.upgrade_state(1, same.clone(), &mut Diagnostics::new()),
            same
        );
        assert_eq!(GpuCluster.schema().version, 1);
    }

    #[test]
    fn vm_size_checks_list_gpu_sizes() {
        let sizes = vec![
            size("Standard_NC12s_v3", 2),
            size("Standard_DS3_v2", 0),
            size("Standard_NC6s_v3", 1),
        ];
        assert_eq!(
            check_vm_size(&sizes, "standard_nc12s_v3", "Dedicated", "eastus")
                .unwrap()
                .gpus,
            2
        );
        let cpu = check_vm_size(&sizes, "Standard_DS3_v2", "Dedicated", "eastus").unwrap_err();
        assert!(
            cpu.contains("no GPUs")
                && cpu.contains("Standard_NC12s_v3 (2 GPU)")
                && cpu.contains("Standard_NC6s_v3 (1 GPU)"),
            "{cpu}"
        );
        assert!(
            check_vm_size(&sizes, "Standard_Nope", "Dedicated", "eastus")
                .unwrap_err()
                .contains("not offered")
        );
    }

    #[test]
    fn body_carries_scale_and_secrets_only_when_set() {
        let m = Cluster {
            name: "c".into(),
            vm_size: "Standard_NC12s_v3".into(),
            max_nodes: 1,
            idle_seconds_before_scaledown: Some(300),
            ..Default::default()
        };
        let b = compute_body(&m);
        assert_eq!(
            b["properties"]["properties"]["scaleSettings"]["nodeIdleTimeBeforeScaleDown"],
            "PT300S"
        );
        assert!(
            b["properties"]["properties"]
                .get("userAccountCredentials")
                .is_none()
        );
    }
}

// ---- identity (Terraform >= 1.12): the parts of the ARM id ----
impl clara_framework::ResourceIdentity for GpuCluster {
    fn identity_schema(&self) -> clara_framework::IdentitySchema {
        crate::identity::arm_schema("The compute (cluster) name.", None)
    }
    fn identity_of(&self, state: &Value) -> Option<Value> {
        crate::identity::arm_identity(&self.identity_schema(), state.get("id"), "computes")
    }
    fn import_id(&self, identity: &Value) -> Result<String, String> {
        crate::identity::arm_import_id(identity, "computes", false)
    }
}
