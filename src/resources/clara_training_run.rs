//! `clara_training_run`: an Azure ML command job (Clara fine-tune, inference, export) that is
//! submitted, awaited, and whose status, metrics, outputs and service endpoints become
//! attributes.
//!
//! The job name is derived from everything that determines what runs, so the plan shows
//! which GPU jobs a change re-runs, and an apply interrupted while waiting adopts the
//! already-submitted job on the next run instead of paying for a second one.

use std::collections::BTreeMap;
use std::time::Duration;

use clara_framework::model::{decode, encode};
use clara_framework::validators::{self, IntBetween, Matches, OneOf};
use clara_framework::{
    ApplyRequest, AttrPath, Attribute, Block, Diagnostics, NestedBlock, PlanRequest, Resource,
    Schema, TimeoutDefaults, Type, Value, async_trait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::ClaraClient;
use crate::content_hash;
use crate::ids::{ChildId, WorkspaceId};
use crate::iso8601;
use crate::ownership::{self, Place};

/// Where a job carries its owner marker: its `properties` dictionary, which Azure keeps.
const MARKER_AT: Place = Place::Property;

pub struct TrainingRun;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Run {
    id: Option<String>,
    name: Option<String>,
    workspace_id: Option<String>,
    experiment_name: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    compute: String,
    environment: String,
    command: String,
    code: Option<String>,
    code_hash: Option<String>,
    code_id: Option<String>,
    #[serde(default)]
    input: Vec<Input>,
    #[serde(default)]
    output: Vec<Output>,
    environment_variables: Option<BTreeMap<String, String>>,
    instance_count: Option<i64>,
    distribution: Option<Distribution>,
    shm_size: Option<String>,
    timeout: Option<String>,
    #[serde(default)]
    service: Vec<Service>,
    wait_for_completion: Option<bool>,
    archive_on_destroy: Option<bool>,
    estimated_max_cost_usd: Option<f64>,
    tags: Option<BTreeMap<String, String>>,
    status: Option<String>,
    studio_url: Option<String>,
    start_time: Option<String>,
    end_time: Option<String>,
    metrics: Option<BTreeMap<String, f64>>,
    outputs: Option<BTreeMap<String, String>>,
    service_endpoints: Option<BTreeMap<String, String>>,
    jupyterlab_url: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Input {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    path: Option<String>,
    value: Option<String>,
    mode: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Output {
    name: String,
    #[serde(rename = "type")]
    kind: Option<String>,
    mode: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Distribution {
    #[serde(rename = "type")]
    kind: String,
    process_count_per_instance: Option<i64>,
    worker_count: Option<i64>,
    parameter_server_count: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Service {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    port: Option<i64>,
    ssh_public_keys: Option<String>,
    log_dir: Option<String>,
}

const INPUT_TYPES: &[&str] = &[
    "uri_folder",
    "uri_file",
    "mltable",
    "custom_model",
    "mlflow_model",
    "triton_model",
    "literal",
];
const OUTPUT_TYPES: &[&str] = &[
    "uri_folder",
    "uri_file",
    "mltable",
    "custom_model",
    "mlflow_model",
    "triton_model",
];
const INPUT_MODES: &[&str] = &[
    "ro_mount",
    "rw_mount",
    "download",
    "direct",
    "eval_mount",
    "eval_download",
];
const OUTPUT_MODES: &[&str] = &["rw_mount", "upload", "direct"];
/// Statuses a job never leaves ([S-MFE] JobStatus). `NotResponding` is not one of them: "a
/// run can go from NotResponding to any of the previous states".
const TERMINAL: &[&str] = &["Completed", "Failed", "Canceled"];
/// Statuses the wait reports instead of waiting on: `Paused` needs a user to resume the job;
/// `Unknown` ("not mapped to all other statuses") after it persists for `UNKNOWN_POLLS` polls.
const STOPPED: &[&str] = &["Paused", "Unknown"];
const UNKNOWN_POLLS: u32 = 3;
/// The system output Azure ML adds to every command job (its logs and artifacts folder).
const SYSTEM_OUTPUT_PREFIX: &str =
    "azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.";
const IDENT: &str = "[a-zA-Z_][a-zA-Z0-9_]{0,254}";
/// Azure ML job names (azure-ai-ml's job name check): they are also the MLflow run id.
const JOB_NAME: &str = "[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}";
/// After these nothing about a job changes any more (`NotResponding` can recover).
fn settled(status: Option<&str>) -> bool {
    status.is_some_and(|s| TERMINAL.contains(&s))
}

/// An in-place update of a settled job changes only tags, description and display name:
/// what the job did stays as it was.
fn settled_before(r: &clara_framework::ModifierRequest<'_>) -> bool {
    settled(r.prior_object.get("status").as_str())
}

/// A timeout re-runs the job only when it means another duration: `4h` → `240m` (or the
/// `PT4H` Azure returns) is a respelling, kept in state by an in-place update.
fn timeout_means_other(r: &clara_framework::ModifierRequest<'_>) -> bool {
    match (r.prior.as_str(), r.config.as_str()) {
        (Some(before), Some(now)) => !iso8601::same_duration(before, now),
        _ => true,
    }
}

/// ARM ids are case-insensitive, and `azureml:<name>:<version>` names the same environment
/// version as its ARM id (what an import reads back): only another resource re-runs the job.
fn other_arm_reference(r: &clara_framework::ModifierRequest<'_>) -> bool {
    let ws = r
        .prior_object
        .get("workspace_id")
        .as_str()
        .and_then(|w| WorkspaceId::parse(w).ok());
    match (r.prior.as_str(), r.config.as_str(), ws) {
        (Some(before), Some(now), Some(ws)) => !same_arm_reference(&ws, before, now),
        _ => true,
    }
}

fn same_arm_reference(ws: &WorkspaceId, a: &str, b: &str) -> bool {
    environment_id(ws, a).eq_ignore_ascii_case(&environment_id(ws, b))
}

/// Unset shared memory is Azure's default `2g` (what an import of such a job reads back as
/// unset), and `2g` = `2048m`: only another size re-runs the job.
fn shm_means_other(r: &clara_framework::ModifierRequest<'_>) -> bool {
    shm_bytes(r.prior.as_str()) != shm_bytes(r.config.as_str())
}

/// Bytes of a container shared-memory size (`<n>[bkmg]`, Docker's units); unset = `2g`.
fn shm_bytes(size: Option<&str>) -> Option<u64> {
    let size = size.unwrap_or("2g").to_ascii_lowercase();
    let (digits, unit) = match size.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => size.split_at(i),
        None => (size.as_str(), "b"),
    };
    let n: u64 = digits.parse().ok()?;
    let scale = match unit {
        "b" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

fn no_code(r: &clara_framework::ModifierRequest<'_>) -> bool {
    r.config_object.get("code").is_null()
}

fn declared_services(r: &clara_framework::ModifierRequest<'_>) -> Option<Vec<String>> {
    let services = r.planned_object.get("service");
    if !services.is_wholly_known() {
        return None;
    }
    Some(
        services
            .as_elements()
            .unwrap_or(&[])
            .iter()
            .filter_map(|s| s.get("type").as_str().map(str::to_string))
            .collect(),
    )
}

/// Only declared services get endpoints (Studio and Tracking are not listed).
fn no_service_endpoints(r: &clara_framework::ModifierRequest<'_>) -> Option<Value> {
    declared_services(r)
        .filter(|s| s.is_empty())
        .map(|_| Value::Map(BTreeMap::new()))
}

fn no_jupyterlab(r: &clara_framework::ModifierRequest<'_>) -> bool {
    declared_services(r).is_some_and(|s| !s.iter().any(|t| t == "JupyterLab"))
}

#[async_trait]
impl Resource<ClaraClient> for TrainingRun {
    fn type_name(&self) -> &'static str {
        "clara_training_run"
    }
    fn identity(&self) -> Option<&dyn clara_framework::ResourceIdentity> {
        Some(self)
    }

    fn schema(&self) -> Schema {
        let input = Block::new("A job input.")
            .attribute(Attribute::string("name").required().validate(Matches::new(IDENT, "must be a valid identifier")).describe("Input name, referenced in `command` as `${{inputs.<name>}}`."))
            .attribute(Attribute::string("type").default("uri_folder").validate(OneOf(INPUT_TYPES)).describe("`uri_folder` (default), `uri_file`, `mltable`, `custom_model`, `mlflow_model`, `triton_model` or `literal`."))
            .attribute(Attribute::string("path").optional().describe("URI of the data, e.g. an `ngc_asset`'s `datastore_uri` or another run's `outputs[\"model\"]`."))
            .attribute(Attribute::string("value").optional().describe("Value of a `literal` input."))
            .attribute(Attribute::string("mode").default("ro_mount").validate(OneOf(INPUT_MODES)).describe("`ro_mount` (default), `rw_mount`, `download`, `direct`, `eval_mount` or `eval_download`."));
        let output = Block::new("A job output.")
            .attribute(Attribute::string("name").required().validate(Matches::new(IDENT, "must be a valid identifier")).describe("Output name, referenced in `command` as `${{outputs.<name>}}`."))
            .attribute(Attribute::string("type").default("uri_folder").validate(OneOf(OUTPUT_TYPES)).describe("`uri_folder` (default), `uri_file`, `mltable`, `custom_model`, `mlflow_model` or `triton_model`."))
            .attribute(Attribute::string("mode").default("rw_mount").validate(OneOf(OUTPUT_MODES)).describe("`rw_mount` (default), `upload` or `direct`."));
        let distribution = Block::new("Distributed training across nodes and processes.")
            .attribute(
                Attribute::string("type")
                    .required()
                    .validate(OneOf(&["PyTorch", "Mpi", "TensorFlow"]))
                    .describe("`PyTorch`, `Mpi` or `TensorFlow`."),
            )
            .attribute(
                Attribute::number("process_count_per_instance")
                    .optional()
                    .validate(IntBetween(1, 64))
                    .describe("Processes per node (PyTorch, Mpi)."),
            )
            .attribute(
                Attribute::number("worker_count")
                    .optional()
                    .validate(IntBetween(1, 1000))
                    .describe("Workers (TensorFlow)."),
            )
            .attribute(
                Attribute::number("parameter_server_count")
                    .optional()
                    .validate(IntBetween(0, 1000))
                    .describe("Parameter servers (TensorFlow)."),
            );
        let service = Block::new(
            "An interactive service on the job's nodes (the walkthrough worked in JupyterLab).",
        )
        .attribute(
            Attribute::string("name")
                .required()
                .describe("Service name."),
        )
        .attribute(
            Attribute::string("type")
                .required()
                .validate(OneOf(&["JupyterLab", "SSH", "TensorBoard", "VSCode"]))
                .describe("`JupyterLab`, `SSH`, `TensorBoard` or `VSCode`."),
        )
        .attribute(
            Attribute::number("port")
                .optional()
                .validate(IntBetween(1, 65535))
                .describe("Port, e.g. 22 for SSH."),
        )
        .attribute(
            Attribute::string("ssh_public_keys")
                .optional()
                .describe("SSH public keys allowed to connect (SSH)."),
        )
        .attribute(
            Attribute::string("log_dir")
                .optional()
                .describe("Log folder (TensorBoard)."),
        );
        let replace = |mut b: NestedBlock| {
            b.requires_replace = true;
            b
        };
        Schema::new(
            0,
            Block::new(
                "An Azure ML command job running Clara Train scripts (fine-tune, inference, export). It is submitted, awaited, \
                 and its status, metrics, outputs and service endpoints become attributes. Any change to what runs plans a new run.",
            )
            .attribute(Attribute::string("id").computed().use_state_for_unknown().describe("ARM id of the job."))
            .attribute(
                Attribute::string("name")
                    .optional()
                    .computed()
                    .requires_replace()
                    .use_state_for_unknown()
                    .validate(Matches::new(JOB_NAME, "must be letters, digits, '-' or '_'"))
                    .describe("Job name. Default: derived from everything that determines what runs, so the same configuration always names the same job; a replacement gets the next free name (`<name>-2`, ...), never one held by the replaced or an archived run."),
            )
            .attribute(super::workspace_id_attribute())
            .attribute(Attribute::string("experiment_name").default("clara").requires_replace().validate(validators::Length(1, 255)).describe("Experiment the run is filed under. Default `clara`."))
            .attribute(Attribute::string("display_name").optional().describe("Name shown in Azure ML studio. Updates in place (sent to Azure, nothing re-runs)."))
            .attribute(Attribute::string("description").optional().describe("Description. Updates in place."))
            .attribute(Attribute::string("compute").required().requires_replace_if(other_arm_reference).describe("ARM id of the compute cluster, e.g. `azureml_gpu_cluster.clara_ct.id`."))
            .attribute(Attribute::string("environment").required().requires_replace_if(other_arm_reference).describe("Environment version: ARM id, `azureml:<name>:<version>` or `azureml_environment.x.id`."))
            .attribute(Attribute::string("command").required().requires_replace().describe("Command line, e.g. `bash $${{inputs.mmar}}/commands/train_finetune.sh`."))
            .attribute(Attribute::string("code").optional().requires_replace().describe("A local folder uploaded as a code asset (once per content) and mounted as the job's working directory."))
            .attribute(Attribute::string("code_hash").computed().null_if(no_code).describe("SHA-256 over the `code` folder's paths and contents, read at plan time: a change to any file plans a new run."))
            .attribute(Attribute::string("code_id").computed().use_state_for_unknown().null_if(no_code).describe("ARM id of the code version the job runs."))
            .attribute(Attribute::string_map("environment_variables").optional().requires_replace().describe("Environment variables of the job."))
            .attribute(Attribute::number("instance_count").default(1i64).requires_replace().validate(IntBetween(1, 1000)).describe("Nodes to run on. Default 1."))
            .attribute(Attribute::string("shm_size").optional().requires_replace_if(shm_means_other).validate(Matches::new(r"\d+[bBkKmMgG]", "must be a size such as \"2g\"")).describe("Shared memory of the container, e.g. `8g` (Azure's default is `2g`)."))
            .attribute(Attribute::string("timeout").optional().requires_replace_if(timeout_means_other).validate(validators::Duration).describe("Azure cancels the job after this long, e.g. `2h`. Compared by meaning: respelling it (`4h`, `240m`) changes only the state, a different duration re-runs the job."))
            .attribute(Attribute::bool("wait_for_completion").default(true).describe("Wait until the job finishes (default). With `false`, apply returns once the job is submitted."))
            .attribute(Attribute::bool("archive_on_destroy").default(true).describe("On destroy or replacement, archive the job (default): its metrics, logs and lineage stay in Azure ML studio. With `false` the job is deleted."))
            .attribute(Attribute::number("estimated_max_cost_usd").computed().keep_state_if(|_| true).describe("Most this run can cost, known at plan time: the region's Linux hourly price of the cluster's VM size × `instance_count` × `timeout` in hours. Null without a timeout."))
            .attribute(Attribute::string_map("tags").optional().null_is_empty().describe("Tags. Update in place. `tags = {}` is the same as no tags."))
            .attribute(Attribute::string("status").computed().keep_state_if(settled_before).describe("Job status: `Completed`, `Failed`, `Canceled`, `Running`, ..."))
            .attribute(Attribute::string("studio_url").computed().use_state_for_unknown().describe("Azure ML studio page of the job."))
            .attribute(Attribute::string("start_time").computed().keep_state_if(settled_before).describe("When the job started running (RFC 3339), if known."))
            .attribute(Attribute::string("end_time").computed().keep_state_if(settled_before).describe("When the job ended (RFC 3339), if known."))
            .attribute(Attribute::new("metrics", Type::Map(Box::new(Type::Number))).computed().keep_state_if(settled_before).describe("Final value of every metric the run logged to MLflow, e.g. `average_precision`."))
            .attribute(Attribute::string_map("outputs").computed().use_state_for_unknown().describe("URI of each declared `output`, known at plan time: `azureml://datastores/workspaceblobstore/paths/azureml/<job>/<output>/`. Outputs Azure ML adds itself (`default`, the run's logs and artifacts) are not listed; the run's `studio_url` shows them."))
            .attribute(Attribute::string_map("service_endpoints").computed().keep_state_if(settled_before).derive(no_service_endpoints).describe("Endpoint of each service while the job runs."))
            .attribute(Attribute::string("jupyterlab_url").computed().keep_state_if(settled_before).null_if(no_jupyterlab).describe("JupyterLab endpoint, if a JupyterLab service was requested."))
            .block(replace(NestedBlock::list("input", input)))
            .block(replace(NestedBlock::list("output", output)))
            .block(replace(NestedBlock::single("distribution", distribution)))
            .block(replace(NestedBlock::list("service", service))),
        )
    }

    fn timeouts(&self) -> Option<TimeoutDefaults> {
        Some(TimeoutDefaults::minutes(24 * 60, 5, 10, 30))
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let mut names = std::collections::BTreeSet::new();
        for (i, inp) in config
            .get("input")
            .as_elements()
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let path = AttrPath::root("input").index(i as i64);
            if let Some(n) = inp.get("name").as_str() {
                if !names.insert(n.to_string()) {
                    diags.attr_error(
                        path.clone().attr("name"),
                        "Duplicate input",
                        format!("Input \"{n}\" is declared twice."),
                    );
                }
            }
            let literal = inp.get("type").as_str() == Some("literal");
            let (has_path, has_value) = (!inp.get("path").is_null(), !inp.get("value").is_null());
            if literal && !has_value {
                diags.attr_error(
                    path.clone().attr("value"),
                    "Missing value",
                    "A literal input needs value.",
                );
            }
            if !literal && !has_path && !inp.get("type").is_unknown() {
                diags.attr_error(
                    path.clone().attr("path"),
                    "Missing path",
                    "An asset input needs path.",
                );
            }
        }
        let mut outputs = std::collections::BTreeSet::new();
        let all_named = |v: &Value| {
            !v.is_unknown()
                && v.as_elements()
                    .unwrap_or(&[])
                    .iter()
                    .all(|b| b.get("name").as_str().is_some())
        };
        let names_known = all_named(config.get("input")) && all_named(config.get("output"));
        for (i, out) in config
            .get("output")
            .as_elements()
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            match out.get("name").as_str() {
                Some(n) if !outputs.insert(n.to_string()) => diags.attr_error(
                    AttrPath::root("output").index(i as i64).attr("name"),
                    "Duplicate output",
                    format!("Output \"{n}\" is declared twice."),
                ),
                _ => {}
            }
        }
        if let (Some(command), true) = (config.get("command").as_str(), names_known) {
            for (kind, name) in command_references(command) {
                let declared = if kind == "inputs" { &names } else { &outputs };
                if !declared.contains(&name) {
                    let block = if kind == "inputs" { "input" } else { "output" };
                    diags.attr_error(
                        AttrPath::root("command"),
                        format!("Undeclared {block}"),
                        format!(
                            "command uses ${{{{{kind}.{name}}}}}, but no {block} block is named \"{name}\"; declared: {}.",
                            if declared.is_empty() {
                                "none".to_string()
                            } else {
                                declared.iter().cloned().collect::<Vec<_>>().join(", ")
                            }
                        ),
                    );
                }
            }
        }
        if let Some(vars) = config.get("environment_variables").as_map() {
            for key in vars.keys() {
                if key.trim().is_empty() || key.contains('=') || key.contains('\0') {
                    diags.attr_error(
                        AttrPath::root("environment_variables").key(key),
                        "Invalid environment variable name",
                        format!(
                            "environment_variables has the key \"{key}\": a variable name must be non-empty and contain no '=' or NUL."
                        ),
                    );
                }
            }
        }
        if let Some(e) = config.get("experiment_name").as_str() {
            if e.trim().is_empty() {
                diags.attr_error(
                    AttrPath::root("experiment_name"),
                    "Empty experiment name",
                    "experiment_name must not be empty or blank; leave it unset for the default `clara`.",
                );
            }
        }
    }

    async fn modify_plan(
        &self,
        client: &ClaraClient,
        req: PlanRequest<'_>,
        diags: &mut Diagnostics,
    ) {
        let planned = req
            .planned
            .as_object_mut()
            .expect("planned state is an object");
        super::plan_default_workspace(client, req.config, planned, diags);
        if let Some(dir) = planned
            .get("code")
            .and_then(|c| c.as_str())
            .map(str::to_string)
        {
            match crate::code_asset::hash_folder(std::path::Path::new(&dir)) {
                Ok(folder) => {
                    let changed = !req.prior.is_null()
                        && req.prior.get("code_hash").as_str() != Some(folder.hash.as_str());
                    planned.insert("code_hash".into(), Value::from(folder.hash));
                    if changed {
                        req.requires_replace.push(AttrPath::root("code_hash"));
                        planned.insert("code_id".into(), Value::Unknown);
                    }
                }
                Err(e) => diags.attr_error(AttrPath::root("code"), "Unreadable code folder", e),
            }
        }
        let creating = req.prior.is_null() || !req.requires_replace.is_empty();
        if !creating {
            return;
        }
        let ws = planned
            .get("workspace_id")
            .and_then(Value::as_str)
            .and_then(|w| WorkspaceId::parse(w).ok());
        let compute = planned
            .get("compute")
            .and_then(Value::as_str)
            .map(str::to_string);
        let cluster = match &compute {
            Some(c) => cluster_for(client, req.ledger, c).await,
            None => None,
        };
        let instances = planned
            .get("instance_count")
            .and_then(Value::as_f64)
            .map(|n| n as i64);
        if let (Some(c), Some(n)) = (&cluster, instances) {
            if let Some(max) = c.max_nodes.filter(|max| n > *max) {
                diags.attr_error(
                    AttrPath::root("instance_count"),
                    "More nodes than the cluster has",
                    format!(
                        "instance_count = {n}, but the cluster {} scales to at most {max} node(s) (max_nodes): the job would queue forever. Lower instance_count or raise the cluster's max_nodes.",
                        compute.as_deref().unwrap_or_default()
                    ),
                );
                return;
            }
        }
        let prior_name = req.prior.get("name").as_str().map(str::to_string);
        let configured_name = req.config.get("name").as_str().map(str::to_string);
        if let (Some(n), Some(p)) = (&configured_name, &prior_name) {
            if n == p {
                diags.attr_error(
                    AttrPath::root("name"),
                    "A replacement needs a new job name",
                    format!(
                        "This change submits a new job, and job {n} stays in the workspace as run history (archived). Job names are unique in a workspace: change name, or leave it unset to get a fresh derived one."
                    ),
                );
                return;
            }
        }
        // What runs is known: name the job after it, and say where its outputs will land.
        let what_runs_known = [
            "workspace_id",
            "experiment_name",
            "compute",
            "environment",
            "command",
            "input",
            "output",
            "environment_variables",
            "instance_count",
            "distribution",
            "shm_size",
            "timeout",
            "service",
        ]
        .iter()
        .all(|k| planned.get(*k).is_some_and(Value::is_wholly_known));
        let m = decode::<Run>(&Value::Object(planned.clone())).ok();
        let mut job = None;
        if let (true, Some(m), Some(ws)) = (what_runs_known, &m, &ws) {
            let name = match &configured_name {
                Some(n) => Ok(n.clone()),
                None => fresh_name(client, ws, &derived_name(m), prior_name.as_deref()).await,
            };
            match name {
                Ok(name) => {
                    planned.insert("name".into(), Value::from(name.clone()));
                    planned.insert("id".into(), Value::from(job_id(ws, &name)));
                    let outputs: BTreeMap<String, Value> = m
                        .output
                        .iter()
                        .map(|o| (o.name.clone(), Value::from(output_uri(&name, &o.name))))
                        .collect();
                    planned.insert("outputs".into(), Value::Map(outputs));
                    job = Some(job_id(ws, &name));
                }
                Err(e) => {
                    diags.attr_error(AttrPath::root("name"), "Cannot choose a job name", e);
                    return;
                }
            }
        }
        // Cost at plan time: price × nodes × timeout.
        let timeout = planned.get("timeout").cloned().unwrap_or_default();
        let hours = match &timeout {
            Value::Null => Some(None),
            Value::String(t) => validators::parse_duration(t)
                .ok()
                .map(|d| Some(d.as_secs_f64() / 3600.0)),
            _ => None,
        };
        let size = match (&cluster, &ws) {
            (Some(c), Some(ws)) => {
                let location = match &c.location {
                    Some(l) => Some(l.clone()),
                    None => crate::azureml::workspace_location(client, ws, diags).await,
                };
                match location {
                    Some(l) => crate::azureml::vm_sizes(client, ws, &l, diags)
                        .await
                        .and_then(|sizes| {
                            sizes
                                .into_iter()
                                .find(|s| s.name.eq_ignore_ascii_case(&c.vm_size))
                        }),
                    None => None,
                }
            }
            _ => None,
        };
        let tier = match cluster.as_ref().map(|c| c.priority.as_str()) {
            Some("LowPriority") => "LowPriority",
            _ => "Standard",
        };
        let cost = match (hours, &size, instances) {
            (Some(None), _, _) => Value::Null,
            (Some(Some(h)), Some(size), Some(n)) => match size.hourly_price(tier) {
                Some(price) => Value::Number(round2(price * n as f64 * h)),
                None => Value::Unknown,
            },
            _ => Value::Unknown,
        };
        planned.insert("estimated_max_cost_usd".into(), cost.clone());
        if let (Some(size), Some(n)) = (&size, instances) {
            if size.gpus > 0 {
                static UNNAMED: std::sync::atomic::AtomicUsize =
                    std::sync::atomic::AtomicUsize::new(0);
                let key = job.unwrap_or_else(|| {
                    format!(
                        "unnamed-{}",
                        UNNAMED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    )
                });
                let this = GpuJob {
                    gpu_hours: hours.flatten().map(|h| round2(h * (size.gpus * n) as f64)),
                    dollars: cost.as_f64(),
                };
                let (summary, mut detail) = tally(&key, this);
                detail.push_str(&format!(
                    "\nThis run: {n} × {} ({} GPU{} each){}.",
                    size.name,
                    size.gpus,
                    if size.gpus == 1 { "" } else { "s" },
                    match (this.gpu_hours, this.dollars) {
                        (Some(h), Some(d)) => format!(
                            " for at most {}: {h} GPU-hours, ${d:.2}",
                            timeout.as_str().unwrap_or_default()
                        ),
                        _ => ", no timeout: unbounded".to_string(),
                    }
                ));
                diags.warning(summary, detail);
            }
        }
    }

    async fn create(
        &self,
        client: &ClaraClient,
        req: &ApplyRequest,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(mut m) = model(&req.planned, diags) else {
            return Value::Null;
        };
        let Some(ws) = client.workspace(&Value::from(m.workspace_id.clone()), diags) else {
            return Value::Null;
        };
        // Read the code folder once: its hash is part of the job's name and must be the one
        // the plan showed.
        let folder = match m.code.clone() {
            None => None,
            Some(dir) => match crate::code_asset::hash_folder(std::path::Path::new(&dir)) {
                Ok(f)
                    if m.code_hash
                        .as_deref()
                        .is_none_or(|planned| planned == f.hash) =>
                {
                    Some(f)
                }
                Ok(_) => {
                    diags.attr_error(
                        AttrPath::root("code"),
                        "Code changed since the plan",
                        format!("Files in {dir} changed after the plan was made; plan again."),
                    );
                    return Value::Null;
                }
                Err(e) => {
                    diags.attr_error(AttrPath::root("code"), "Unreadable code folder", e);
                    return Value::Null;
                }
            },
        };
        if let Some(f) = &folder {
            m.code_hash = Some(f.hash.clone());
        }
        let name = match m.name.clone() {
            Some(n) => n,
            // Not known at plan time: the same choice, now.
            None => match fresh_name(client, &ws, &derived_name(&m), None).await {
                Ok(n) => n,
                Err(e) => {
                    diags.attr_error(AttrPath::root("name"), "Cannot choose a job name", e);
                    return Value::Null;
                }
            },
        };
        if !valid_job_name(&name) {
            diags.attr_error(
                AttrPath::root("name"),
                "Invalid job name",
                format!("\"{name}\" is not a valid Azure ML job name (letters, digits, '-' and '_', starting with a letter or digit, at most 255)."),
            );
            return Value::Null;
        }
        let id = job_id(&ws, &name);
        m.name = Some(name.clone());
        m.id = Some(id.clone());
        m.outputs = Some(
            m.output
                .iter()
                .map(|o| (o.name.clone(), output_uri(&name, &o.name)))
                .collect(),
        );
        if let Some(folder) = &folder {
            match crate::code_asset::ensure(client, &ws, folder).await {
                Ok(id) => m.code_id = Some(id),
                Err(e) => {
                    diags.attr_error(AttrPath::root("code"), "Uploading the code failed", e);
                    return Value::Null;
                }
            }
        }
        if m.estimated_max_cost_usd.is_none() {
            // The cluster was not known at plan time (planned unknown): bound it now.
            m.estimated_max_cost_usd = apply_time_cost(client, &ws, &m).await;
        }
        let body = job_body(&m, &ws, &name);

        // Adopt a job this state already submitted (an interrupted apply): never pay twice.
        let journal = ownership::Journal::here();
        match client.arm.get_json(&id).await {
            Ok(Some(existing)) if existing["properties"]["isArchived"] == true => {
                diags.attr_error(
                    AttrPath::root("name"),
                    "Job name taken by an archived run",
                    format!("Job {name} was archived after this plan was made (it is run history now); plan again for a fresh name."),
                );
                return Value::Null;
            }
            Ok(Some(existing)) => {
                // Adopted only when an interrupted apply of this same state submitted it.
                match ownership::classify(&journal, &id, MARKER_AT, &existing) {
                    ownership::Found::Ours(_) => {
                        tracing::info!(job = %name, status = existing["properties"]["status"].as_str().unwrap_or("?"), "waiting for the already-submitted job");
                        ownership::adopted(diags, "name", "job", &id);
                    }
                    ownership::Found::Foreign { marker } => {
                        ownership::already_exists(diags, "name", "Job", &id, marker.as_deref());
                        return Value::Null;
                    }
                }
            }
            Ok(None) => {
                let marker = match journal.begin(&id) {
                    Ok(m) => m,
                    Err(e) => {
                        diags.error("Cannot record the submission", e);
                        return Value::Null;
                    }
                };
                let mut body = body;
                MARKER_AT.stamp(&mut body, &marker);
                if let Err(e) = client.arm.put_json(&id, &body).await {
                    diags.error("Submitting the job failed", e.to_string());
                    return Value::Null;
                }
                tracing::info!(job = %name, "job submitted");
            }
            Err(e) => {
                diags.error("Cannot check for an existing job", e.to_string());
                return Value::Null;
            }
        }
        if !m.wait_for_completion.unwrap_or(true) {
            return refresh(client, &ws, &m, diags).await;
        }
        let final_body = match wait(client, &id, &name).await {
            Ok(b) => b,
            Err(e) => {
                diags.error("Waiting for the job failed", e);
                return refresh(client, &ws, &m, diags).await;
            }
        };
        fill(client, &ws, &mut m, &final_body, diags).await;
        let status = m.status.clone().unwrap_or_default();
        if status != "Completed" {
            let why = job_error(&final_body, client, &ws, &name)
                .await
                .unwrap_or_else(|| format!("The job ended with status {status}."));
            diags.error(
                format!("Job {name} {}", status.to_lowercase()),
                format!("{why}\nStudio: {}\nThe run stays in state as tainted; the next apply replaces it.", m.studio_url.clone().unwrap_or_default()),
            );
        }
        state(&m)
    }

    async fn read(&self, client: &ClaraClient, current: &Value, diags: &mut Diagnostics) -> Value {
        let Some(mut m) = model(current, diags) else {
            return current.clone();
        };
        let Some(id) = m.id.clone() else {
            return Value::Null;
        };
        let Some(ws) = m
            .workspace_id
            .as_deref()
            .and_then(|w| WorkspaceId::parse(w).ok())
        else {
            return Value::Null;
        };
        match client.arm.get_json(&id).await {
            Ok(Some(body)) => {
                // In state: the submission is no longer pending.
                ownership::Journal::here().settle(&id);
                if m.command.is_empty() {
                    from_body(&mut m, &body); // imported
                    // Local settings Azure does not hold: their defaults.
                    m.archive_on_destroy.get_or_insert(true);
                } else {
                    drift(&mut m, &body);
                }
                fill(client, &ws, &mut m, &body, diags).await;
                state(&m)
            }
            Ok(None) => Value::Null,
            Err(e) => {
                diags.error("Cannot read the job", e.to_string());
                current.clone()
            }
        }
    }

    async fn update(
        &self,
        client: &ClaraClient,
        req: &ApplyRequest,
        diags: &mut Diagnostics,
    ) -> Value {
        let (Some(prior), Some(m)) = (model(&req.prior, diags), model(&req.planned, diags)) else {
            return req.prior.clone();
        };
        let Some(ws) = m
            .workspace_id
            .as_deref()
            .and_then(|w| WorkspaceId::parse(w).ok())
        else {
            return req.prior.clone();
        };
        let (id, name) = (
            prior.id.clone().unwrap_or_default(),
            prior.name.clone().unwrap_or_default(),
        );
        if (&prior.tags, &prior.description, &prior.display_name)
            != (&m.tags, &m.description, &m.display_name)
        {
            // A PUT of the same job may change its description, tags and display name ("Only
            // description, tags, displayName, properties, and isArchived can be updated",
            // the service's own error text; MicrosoftDocs/azure-docs#122250).
            // The sent properties replace the stored ones: keep the job's owner marker.
            let mut body = job_body(&m, &ws, &name);
            match client.arm.get_json(&id).await {
                Ok(Some(existing)) => MARKER_AT.carry(&existing, &mut body),
                Ok(None) => {}
                Err(e) => {
                    diags.error("Cannot read the job", e.to_string());
                    return req.prior.clone();
                }
            }
            if let Err(e) = client.arm.put_json(&id, &body).await {
                diags.error("Updating the job failed", e.to_string());
                return req.prior.clone();
            }
        }
        if settled(prior.status.as_deref()) {
            // Nothing else about a settled job can change: the plan kept its status,
            // metrics, outputs and times, and they stay as they were.
            return state(&m);
        }
        if m.wait_for_completion.unwrap_or(true)
            && !prior
                .status
                .as_deref()
                .is_some_and(|s| TERMINAL.contains(&s))
        {
            if let Err(e) = wait(client, &id, &name).await {
                diags.error("Waiting for the job failed", e);
            }
        }
        refresh(client, &ws, &m, diags).await
    }

    async fn delete(&self, client: &ClaraClient, current: &Value, diags: &mut Diagnostics) {
        let Some(id) = current.get("id").as_str() else {
            return;
        };
        let existing = match client.arm.get_json(id).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                ownership::Journal::here().settle(id);
                return;
            }
            Err(e) => {
                diags.error("Cannot read the job", e.to_string());
                return;
            }
        };
        let status = existing["properties"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !TERMINAL.contains(&status.as_str()) {
            tracing::info!(job = %id, %status, "cancelling the active job before removing it");
            if let Err(e) = client
                .arm
                .post_and_wait(&format!("{id}/cancel"), None, &client.cancel)
                .await
            {
                diags.error("Cancelling the job failed", e.to_string());
                return;
            }
        }
        if current.get("archive_on_destroy").as_bool() == Some(false) {
            if let Err(e) = client.arm.delete_and_wait(id, &[], &client.cancel).await {
                diags.error("Deleting the job failed", e.to_string());
            }
            return;
        }
        // Archive: the run stays in Azure ML studio as history (metrics, logs, lineage),
        // hidden from the default job list. isArchived is updatable on an existing job.
        let Some(m) = model(current, diags) else {
            return;
        };
        let Some(ws) = m
            .workspace_id
            .as_deref()
            .and_then(|w| WorkspaceId::parse(w).ok())
        else {
            return;
        };
        let name = m.name.clone().unwrap_or_default();
        let mut body = job_body(&m, &ws, &name);
        MARKER_AT.carry(&existing, &mut body);
        body["properties"]["isArchived"] = json!(true);
        match client.arm.put_json(id, &body).await {
            Ok(_) => tracing::info!(job = %name, "job archived"),
            Err(e) => diags.error(
                "Archiving the job failed",
                format!("{e}\nSet archive_on_destroy = false to delete the job instead."),
            ),
        }
    }

    async fn import(&self, _client: &ClaraClient, id: &str, diags: &mut Diagnostics) -> Value {
        match ChildId::parse(id, "jobs") {
            Ok(c) if !valid_job_name(&c.name) => {
                diags.error(
                    "Invalid import id",
                    format!(
                        "\"{}\" is not a valid Azure ML job name (letters, digits, '-' and '_').",
                        c.name
                    ),
                );
                Value::Null
            }
            Ok(c) => state(&Run {
                id: Some(job_id(&c.workspace, &c.name)),
                name: Some(c.name),
                workspace_id: Some(c.workspace.to_string()),
                ..Default::default()
            }),
            Err(e) => {
                diags.error("Invalid import id", e);
                Value::Null
            }
        }
    }
}

/// The `${{inputs.x}}` / `${{outputs.x}}` references of a command, as (kind, name).
fn command_references(command: &str) -> Vec<(String, String)> {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let re = RE.get_or_init(|| {
        regex::Regex::new(r"\$\{\{\s*(inputs|outputs)\.([A-Za-z0-9_]+)\s*\}\}")
            .expect("valid regex")
    });
    re.captures_iter(command)
        .map(|c| (c[1].to_string(), c[2].to_string()))
        .collect()
}

/// A job's ARM id; the name is one path segment, percent-encoded (by `child`), never
/// interpreted.
fn job_id(ws: &WorkspaceId, name: &str) -> String {
    ws.child("jobs", name)
}

fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn valid_job_name(name: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| regex::Regex::new(&format!("^{JOB_NAME}$")).expect("valid regex"))
        .is_match(name)
}

/// The first free job name from `base`: `base`, `base-2`, `base-3`, ... skipping `avoid` (the
/// run being replaced), archived jobs (run history) and jobs that failed or were canceled
/// (a tainted run's job: adopting it would only fail again). Another job of the name is one
/// this configuration submitted in an interrupted apply: its name is kept so the apply
/// adopts it. Plan and apply reach the same answer: the replaced job is archived between.
async fn fresh_name(
    client: &ClaraClient,
    ws: &WorkspaceId,
    base: &str,
    avoid: Option<&str>,
) -> Result<String, String> {
    for i in 1..=50 {
        let candidate = if i == 1 {
            base.to_string()
        } else {
            format!("{base}-{i}")
        };
        if avoid == Some(candidate.as_str()) {
            continue;
        }
        match client.arm.get_json(&job_id(ws, &candidate)).await {
            Ok(None) => return Ok(candidate),
            Ok(Some(job))
                if job["properties"]["isArchived"] == true
                    || matches!(
                        job["properties"]["status"].as_str(),
                        Some("Failed" | "Canceled")
                    ) =>
            {
                continue;
            }
            Ok(Some(_)) => return Ok(candidate),
            Err(e) => return Err(format!("checking whether job {candidate} exists: {e}")),
        }
    }
    Err(format!(
        "{base} and its next 49 names are all taken by archived runs; set name explicitly."
    ))
}

/// The cluster a run uses, as planned in this walk or, failing that, as Azure has it.
struct ClusterPlan {
    vm_size: String,
    max_nodes: Option<i64>,
    priority: String,
    location: Option<String>,
}

async fn cluster_for(
    client: &ClaraClient,
    ledger: &clara_framework::PlanLedger,
    compute: &str,
) -> Option<ClusterPlan> {
    if let Some(c) = ledger.find("azureml_gpu_cluster", "id", compute) {
        return Some(ClusterPlan {
            vm_size: c.get("vm_size").as_str()?.to_string(),
            max_nodes: c.get("max_nodes").as_f64().map(|n| n as i64),
            priority: c
                .get("vm_priority")
                .as_str()
                .unwrap_or("Dedicated")
                .to_string(),
            location: c.get("location").as_str().map(str::to_string),
        });
    }
    if !compute.starts_with("/subscriptions/") {
        return None;
    }
    let body = client.arm.get_json(compute).await.ok().flatten()?;
    let p = &body["properties"]["properties"];
    Some(ClusterPlan {
        vm_size: p["vmSize"].as_str()?.to_string(),
        max_nodes: p["scaleSettings"]["maxNodeCount"].as_i64(),
        priority: p["vmPriority"].as_str().unwrap_or("Dedicated").to_string(),
        location: body["location"].as_str().map(str::to_string),
    })
}

/// `estimated_max_cost_usd` for a run whose cluster was unknown at plan time.
async fn apply_time_cost(client: &ClaraClient, ws: &WorkspaceId, m: &Run) -> Option<f64> {
    let hours = validators::parse_duration(m.timeout.as_deref()?)
        .ok()?
        .as_secs_f64()
        / 3600.0;
    let cluster = cluster_for(client, &clara_framework::PlanLedger::default(), &m.compute).await?;
    let location = match cluster.location {
        Some(l) => l,
        None => crate::azureml::workspace_location(client, ws, &mut Diagnostics::new()).await?,
    };
    let sizes = crate::azureml::vm_sizes(client, ws, &location, &mut Diagnostics::new()).await?;
    let size = sizes
        .iter()
        .find(|s| s.name.eq_ignore_ascii_case(&cluster.vm_size))?;
    let tier = if cluster.priority == "LowPriority" {
        "LowPriority"
    } else {
        "Standard"
    };
    Some(round2(
        size.hourly_price(tier)? * m.instance_count.unwrap_or(1) as f64 * hours,
    ))
}

/// What the plans of this provider process may start (one Terraform walk), by job id.
static GPU_PLAN: std::sync::Mutex<BTreeMap<String, GpuJob>> =
    std::sync::Mutex::new(BTreeMap::new());

#[derive(Clone, Copy)]
struct GpuJob {
    /// None: no timeout, so no upper bound.
    gpu_hours: Option<f64>,
    dollars: Option<f64>,
}

/// Adds a run to the walk's tally and returns the warning summarising it so far.
fn tally(job: &str, this: GpuJob) -> (String, String) {
    let mut plan = GPU_PLAN.lock().expect("tally lock");
    plan.insert(job.to_string(), this);
    let n = plan.len();
    let unbounded = plan.values().filter(|j| j.dollars.is_none()).count();
    let hours = plan
        .values()
        .filter_map(|j| j.gpu_hours)
        .fold(0.0, |a, b| a + b);
    let dollars = plan
        .values()
        .filter_map(|j| j.dollars)
        .fold(0.0, |a, b| a + b);
    let mut summary = format!(
        "This plan may start {n} GPU job{}: {} GPU-hours, ${dollars:.2} at most",
        if n == 1 { "" } else { "s" },
        round2(hours)
    );
    if unbounded > 0 {
        summary.push_str(&format!(" (+{unbounded} without a timeout, unbounded)"));
    }
    let detail = format!(
        "Counted so far in this plan: {n} run(s) that submit a new GPU job. Each bound is the region's Linux \
         hourly price of the cluster's VM size × instance_count × timeout; a run without a timeout has none. \
         Set timeout on every run to bound the cost."
    );
    (summary, detail)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn model(v: &Value, diags: &mut Diagnostics) -> Option<Run> {
    decode(v).map_err(|d| diags.extend(d)).ok()
}

fn state(m: &Run) -> Value {
    encode(m, &TrainingRun.schema().block.object_type()).unwrap_or(Value::Null)
}

/// `<experiment>-<12 hex digits>` over what determines the run (not tags, names or waiting).
fn derived_name(m: &Run) -> String {
    let what_runs = json!({
        "workspace": m.workspace_id, "experiment": m.experiment_name, "compute": m.compute.to_lowercase(),
        "environment": m.environment, "command": m.command, "inputs": m.input, "outputs": m.output,
        "env": m.environment_variables, "instances": m.instance_count, "distribution": m.distribution,
        "shm": m.shm_size, "timeout": m.timeout, "services": m.service,
        "code": m.code_hash,
    });
    let prefix: String = m
        .experiment_name
        .as_deref()
        .unwrap_or("clara")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    format!(
        "{}-{}",
        prefix.trim_start_matches(['-', '_']),
        &content_hash(&what_runs)[..12]
    )
}

/// Azure ML's default output location, set explicitly so it is known at plan time.
fn output_uri(job: &str, output: &str) -> String {
    format!("azureml://datastores/workspaceblobstore/paths/azureml/{job}/{output}/")
}

fn environment_id(ws: &WorkspaceId, env: &str) -> String {
    // `azureml:name:version` → the version's ARM id; ids and registry URIs pass through.
    match env
        .strip_prefix("azureml:")
        .filter(|r| !r.starts_with("//"))
        .and_then(|r| r.split_once(':'))
    {
        Some((name, version)) => format!("{}/versions/{version}", ws.child("environments", name)),
        None => env.to_string(),
    }
}

fn mode(short: &str) -> &'static str {
    match short {
        "rw_mount" => "ReadWriteMount",
        "download" => "Download",
        "upload" => "Upload",
        "direct" => "Direct",
        "eval_mount" => "EvalMount",
        "eval_download" => "EvalDownload",
        _ => "ReadOnlyMount",
    }
}

fn short_mode(rest: &str) -> String {
    match rest {
        "ReadWriteMount" => "rw_mount",
        "Download" => "download",
        "Upload" => "upload",
        "Direct" => "direct",
        "EvalMount" => "eval_mount",
        "EvalDownload" => "eval_download",
        _ => "ro_mount",
    }
    .into()
}

fn job_body(m: &Run, ws: &WorkspaceId, name: &str) -> serde_json::Value {
    let inputs: serde_json::Map<String, serde_json::Value> = m
        .input
        .iter()
        .map(|i| {
            let v = match i.kind.as_deref() {
                Some("literal") => json!({"jobInputType": "literal", "value": i.value}),
                kind => json!({"jobInputType": kind.unwrap_or("uri_folder"), "uri": i.path, "mode": mode(i.mode.as_deref().unwrap_or("ro_mount"))}),
            };
            (i.name.clone(), v)
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = m
        .output
        .iter()
        .map(|o| {
            let v = json!({"jobOutputType": o.kind.as_deref().unwrap_or("uri_folder"), "mode": mode(o.mode.as_deref().unwrap_or("rw_mount")), "uri": output_uri(name, &o.name)});
            (o.name.clone(), v)
        })
        .collect();
    let mut p = json!({
        "jobType": "Command",
        "command": m.command,
        "computeId": m.compute,
        "environmentId": environment_id(ws, &m.environment),
        "experimentName": m.experiment_name.as_deref().unwrap_or("clara"),
        "inputs": inputs,
        "outputs": outputs,
        "resources": {"instanceCount": m.instance_count.unwrap_or(1)},
    });
    if let Some(code) = &m.code_id {
        p["codeId"] = json!(code);
    }
    if let Some(s) = &m.shm_size {
        p["resources"]["shmSize"] = json!(s);
    }
    for (key, v) in [
        ("displayName", &m.display_name),
        ("description", &m.description),
    ] {
        if let Some(v) = v {
            p[key] = json!(v);
        }
    }
    if let Some(t) = &m.tags {
        p["tags"] = json!(t);
    }
    if let Some(e) = &m.environment_variables {
        p["environmentVariables"] = json!(e);
    }
    if let Some(t) = m
        .timeout
        .as_deref()
        .and_then(|t| validators::parse_duration(t).ok())
    {
        p["limits"] =
            json!({"jobLimitsType": "Command", "timeout": iso8601::duration(t.as_secs() as i64)});
    }
    if let Some(d) = &m.distribution {
        let mut dist = json!({"distributionType": d.kind});
        for (key, v) in [
            ("processCountPerInstance", d.process_count_per_instance),
            ("workerCount", d.worker_count),
            ("parameterServerCount", d.parameter_server_count),
        ] {
            if let Some(v) = v {
                dist[key] = json!(v);
            }
        }
        p["distribution"] = dist;
    }
    if !m.service.is_empty() {
        let services: serde_json::Map<String, serde_json::Value> = m
            .service
            .iter()
            .map(|s| {
                let mut v = json!({"jobServiceType": s.kind});
                if let Some(port) = s.port {
                    v["port"] = json!(port);
                }
                let mut props = serde_json::Map::new();
                if let Some(k) = &s.ssh_public_keys {
                    props.insert("sshPublicKeys".into(), json!(k));
                }
                if let Some(d) = &s.log_dir {
                    props.insert("logDir".into(), json!(d));
                }
                if !props.is_empty() {
                    v["properties"] = props.into();
                }
                (s.name.clone(), v)
            })
            .collect();
        p["services"] = services.into();
    }
    json!({"properties": p})
}

/// Polls the job until it ends: backoff from 2 s to 60 s (times CLARA_JOB_POLL_SCALE),
/// logging every status transition at INFO.
async fn wait(client: &ClaraClient, id: &str, name: &str) -> Result<serde_json::Value, String> {
    let scale: f64 = std::env::var("CLARA_JOB_POLL_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .unwrap_or(1.0);
    let (mut interval, max) = (2.0f64, 60.0f64);
    let mut last = String::new();
    let mut unknown_polls = 0u32;
    loop {
        let body = client
            .arm
            .get_json(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("job {name} disappeared while running"))?;
        let status = body["properties"]["status"]
            .as_str()
            .unwrap_or("Unknown")
            .to_string();
        if status != last {
            tracing::info!(job = %name, from = %last, to = %status, "job status");
            last = status.clone();
        }
        if TERMINAL.contains(&status.as_str()) {
            return Ok(body);
        }
        unknown_polls = if status == "Unknown" {
            unknown_polls + 1
        } else {
            0
        };
        if STOPPED.contains(&status.as_str())
            && (status != "Unknown" || unknown_polls >= UNKNOWN_POLLS)
        {
            tracing::warn!(job = %name, %status, "job stopped progressing; not waiting on it");
            return Ok(body);
        }
        if status == "NotResponding" {
            tracing::warn!(job = %name, "job not responding (no heartbeat); it may recover, still waiting");
        }
        tokio::time::sleep(Duration::from_secs_f64(interval * scale)).await;
        interval = (interval * 1.5).min(max);
    }
}

async fn refresh(
    client: &ClaraClient,
    ws: &WorkspaceId,
    m: &Run,
    diags: &mut Diagnostics,
) -> Value {
    let mut m = m.clone();
    match client
        .arm
        .get_json(m.id.as_deref().unwrap_or_default())
        .await
    {
        Ok(Some(body)) => {
            fill(client, ws, &mut m, &body, diags).await;
        }
        Ok(None) => diags.error(
            "Job not found",
            format!("{} vanished.", m.id.clone().unwrap_or_default()),
        ),
        Err(e) => diags.error("Cannot read the job", e.to_string()),
    }
    state(&m)
}

/// Copies the service's view of the job into the model: status, times, the declared outputs,
/// endpoints, and (once ended) the MLflow metrics, with a warning when they cannot be read.
async fn fill(
    client: &ClaraClient,
    ws: &WorkspaceId,
    m: &mut Run,
    body: &serde_json::Value,
    diags: &mut Diagnostics,
) {
    let p = &body["properties"];
    let status = p["status"].as_str().unwrap_or("Unknown").to_string();
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    let services = p["services"].as_object();
    m.studio_url = services
        .and_then(|sv| sv.get("Studio"))
        .and_then(|st| s(&st["endpoint"]))
        .or_else(|| m.studio_url.clone());
    let endpoints: BTreeMap<String, String> = services
        .map(|sv| {
            sv.iter()
                .filter(|(k, _)| k.as_str() != "Studio" && k.as_str() != "Tracking")
                .filter_map(|(k, v)| Some((k.clone(), s(&v["endpoint"])?)))
                .collect()
        })
        .unwrap_or_default();
    m.jupyterlab_url = services
        .and_then(|sv| sv.values().find(|v| v["jobServiceType"] == "JupyterLab"))
        .and_then(|v| s(&v["endpoint"]));
    m.service_endpoints = Some(endpoints);
    // Only declared outputs: the service adds its own (`default`), which the plan never shows.
    let mut outputs = m.outputs.clone().unwrap_or_default();
    outputs.retain(|k, _| m.output.iter().any(|o| &o.name == k));
    if let Some(outs) = p["outputs"].as_object() {
        for o in &m.output {
            if let Some(uri) = outs.get(&o.name).and_then(|v| s(&v["uri"])) {
                outputs.insert(o.name.clone(), uri);
            }
        }
    }
    m.outputs = Some(outputs);
    let run = if TERMINAL.contains(&status.as_str()) || m.metrics.is_none() {
        match mlflow_run(client, ws, m.name.as_deref().unwrap_or_default()).await {
            Ok(run) => run,
            Err(why) => {
                diags.attr_warning(
                    AttrPath::root("metrics"),
                    "Run metrics cannot be read",
                    format!(
                        "{why} `metrics` stays as it was ({} values).",
                        m.metrics.as_ref().map_or(0, BTreeMap::len)
                    ),
                );
                None
            }
        }
    } else {
        None
    };
    if let Some(run) = &run {
        let info = &run["info"];
        let millis = |v: &serde_json::Value| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|x| x.parse().ok()))
                .filter(|ms| *ms > 0)
                .map(rfc3339_from_millis)
        };
        m.start_time = millis(&info["start_time"]).or_else(|| m.start_time.clone());
        m.end_time = millis(&info["end_time"]).or_else(|| m.end_time.clone());
        let metrics: BTreeMap<String, f64> = run["data"]["metrics"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|x| Some((s(&x["key"])?, x["value"].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default();
        m.metrics = Some(metrics);
    }
    if m.metrics.is_none() {
        m.metrics = Some(BTreeMap::new());
    }
    m.status = Some(status);
}

/// The MLflow run of a job (run id = job name), from the workspace's tracking endpoint:
/// `Ok(None)` when MLflow has no such run, `Err(why)` when it cannot be asked.
async fn mlflow_run(
    client: &ClaraClient,
    ws: &WorkspaceId,
    job: &str,
) -> Result<Option<serde_json::Value>, String> {
    let workspace = match crate::azureml::workspace(client, ws).await {
        Ok(Some(w)) => w,
        Ok(None) => return Err(format!("Workspace {ws} was not found.")),
        Err(e) => return Err(format!("Reading workspace {ws} failed: {e}.")),
    };
    let Some(tracking) = workspace["properties"]["mlFlowTrackingUri"].as_str() else {
        return Err(format!(
            "Workspace {ws} has no MLflow tracking URI (properties.mlFlowTrackingUri), so the run's metrics are unavailable."
        ));
    };
    let tracking = tracking.replacen("azureml://", "https://", 1);
    let base = url::Url::parse(&tracking).map_err(|e| {
        format!("The workspace's MLflow tracking URI {tracking} is not a URL: {e}.")
    })?;
    let origin = url::Url::parse(&base.origin().ascii_serialization()).map_err(|e| {
        format!("The workspace's MLflow tracking URI {tracking} has no origin: {e}.")
    })?;
    let mlflow = client
        .arm
        .with_endpoint(origin)
        .with_scope(client.cloud.ml_scope.as_str());
    if job.is_empty() {
        return Ok(None);
    }
    let path = format!(
        "{}/api/2.0/mlflow/runs/get?run_id={}",
        base.path().trim_end_matches('/'),
        path_segment(job)
    );
    match mlflow.get_json(&path).await {
        Ok(Some(b)) => Ok(Some(b["run"].clone())),
        Ok(None) => Ok(None),
        Err(e) => Err(format!(
            "MLflow at {} did not answer: {e}.",
            base.origin().ascii_serialization()
        )),
    }
}

/// The run's details from run history (`{history}/history/v1.0{WS}/runs/{job}/details`, the
/// route azure-ai-ml's `get_run_details` calls), where Azure ML keeps why a run failed. The
/// history base comes from the workspace's discovery document (`history`, else `api`).
async fn run_details(
    client: &ClaraClient,
    ws: &WorkspaceId,
    job: &str,
) -> Result<Option<serde_json::Value>, String> {
    let workspace = crate::azureml::workspace(client, ws)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("workspace {ws} not found"))?;
    let discovery = workspace["properties"]["discoveryUrl"]
        .as_str()
        .ok_or("the workspace has no discoveryUrl")?;
    let discovery_url = url::Url::parse(discovery).map_err(|e| format!("discoveryUrl: {e}"))?;
    let origin = |u: &url::Url| url::Url::parse(&u.origin().ascii_serialization());
    let urls = client
        .arm
        .with_endpoint(origin(&discovery_url).map_err(|e| e.to_string())?)
        .get_json(discovery)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let history = urls["history"]
        .as_str()
        .or_else(|| urls["api"].as_str())
        .ok_or("the discovery document names no history service")?;
    let history = url::Url::parse(history).map_err(|e| format!("history URL: {e}"))?;
    let path = format!(
        "{}/history/v1.0{ws}/runs/{}/details",
        history.path().trim_end_matches('/'),
        path_segment(job)
    );
    client
        .arm
        .with_endpoint(origin(&history).map_err(|e| e.to_string())?)
        .with_scope(client.cloud.ml_scope.as_str())
        .get_json(&path)
        .await
        .map_err(|e| e.to_string())
}

/// Why the job ended (or stopped) without completing: the reason run history recorded, else
/// MLflow's error tags, else what the status itself means. JobBase carries no error member.
async fn job_error(
    body: &serde_json::Value,
    client: &ClaraClient,
    ws: &WorkspaceId,
    job: &str,
) -> Option<String> {
    let status = body["properties"]["status"].as_str().unwrap_or("Unknown");
    let stopped = match status {
        "Paused" => Some(
            "The job is Paused in Azure ML (paused by a user); it does not resume on its own, so the apply stopped waiting.",
        ),
        "Unknown" => Some(
            "Azure ML reports the job's status as Unknown and it did not change, so the apply stopped waiting.",
        ),
        _ => None,
    };
    let recorded = match run_details(client, ws, job).await {
        Ok(Some(d)) => {
            let e = &d["error"]["error"];
            e["message"].as_str().filter(|m| !m.is_empty()).map(|msg| {
                match e["code"].as_str().filter(|c| !c.is_empty()) {
                    Some(code) => format!("{msg} ({code}, from run history)"),
                    None => format!("{msg} (from run history)"),
                }
            })
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(job, error = %e, "cannot read the run's details from run history");
            None
        }
    };
    let recorded = match recorded {
        Some(r) => Some(r),
        None => mlflow_run(client, ws, job)
            .await
            .ok()
            .flatten()
            .and_then(|run| {
                run["data"]["tags"]
                    .as_array()?
                    .iter()
                    .find(|t| {
                        t["key"]
                            .as_str()
                            .is_some_and(|k| k.ends_with("error.message"))
                    })
                    .and_then(|t| t["value"].as_str())
                    .map(|m| format!("{m} (from MLflow)"))
            }),
    };
    match (stopped, recorded) {
        (Some(s), Some(r)) => Some(format!("{s} {r}")),
        (Some(s), None) => Some(s.to_string()),
        (None, r) => r,
    }
}

/// Notices a job whose create-only settings changed out of band (e.g. deleted and
/// resubmitted under the same name): the state then shows what runs, and the plan re-runs it.
fn drift(m: &mut Run, body: &serde_json::Value) {
    let remote = body["properties"]["limits"]["timeout"].as_str();
    match (m.timeout.as_deref(), remote) {
        (Some(mine), Some(theirs)) if !iso8601::same_duration(mine, theirs) => {
            m.timeout = iso8601::seconds(theirs).map(iso8601::human);
        }
        (None, Some(theirs)) => m.timeout = iso8601::seconds(theirs).map(iso8601::human),
        (Some(_), None) => m.timeout = None,
        _ => {}
    }
}

/// Fills configuration attributes from a job body (after import).
fn from_body(m: &mut Run, body: &serde_json::Value) {
    let p = &body["properties"];
    let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
    m.command = s(&p["command"]).unwrap_or_default();
    m.compute = s(&p["computeId"]).unwrap_or_default();
    m.environment = s(&p["environmentId"]).unwrap_or_default();
    m.experiment_name = s(&p["experimentName"]);
    m.display_name = s(&p["displayName"]);
    m.description = s(&p["description"]);
    m.tags = p["tags"].as_object().filter(|t| !t.is_empty()).map(|t| {
        t.iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    });
    m.environment_variables = p["environmentVariables"]
        .as_object()
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        });
    m.instance_count = p["resources"]["instanceCount"].as_i64().or(Some(1));
    // Azure renders its default shared memory ("2g") on every job; a configuration that
    // leaves shm_size unset reads back unset.
    m.shm_size = s(&p["resources"]["shmSize"]).filter(|v| !v.eq_ignore_ascii_case("2g"));
    m.timeout = s(&p["limits"]["timeout"])
        .and_then(|t| iso8601::seconds(&t))
        .map(iso8601::human);
    m.wait_for_completion = Some(true);
    m.archive_on_destroy = Some(true);
    m.distribution = p["distribution"]["distributionType"]
        .as_str()
        .map(|kind| Distribution {
            kind: kind.to_string(),
            process_count_per_instance: p["distribution"]["processCountPerInstance"].as_i64(),
            worker_count: p["distribution"]["workerCount"].as_i64(),
            parameter_server_count: p["distribution"]["parameterServerCount"].as_i64(),
        });
    m.service = p["services"]
        .as_object()
        .map(|svcs| {
            svcs.iter()
                .filter(|(_, v)| {
                    !matches!(
                        v["jobServiceType"].as_str(),
                        Some("Studio" | "Tracking") | None
                    )
                })
                .map(|(k, v)| Service {
                    name: k.clone(),
                    kind: s(&v["jobServiceType"]).unwrap_or_default(),
                    port: v["port"].as_i64(),
                    ssh_public_keys: s(&v["properties"]["sshPublicKeys"]),
                    log_dir: s(&v["properties"]["logDir"]),
                })
                .collect()
        })
        .unwrap_or_default();
    m.input = p["inputs"]
        .as_object()
        .map(|ins| {
            ins.iter()
                .map(|(k, v)| Input {
                    name: k.clone(),
                    kind: s(&v["jobInputType"]),
                    path: s(&v["uri"]),
                    value: s(&v["value"]),
                    mode: if v["jobInputType"] == "literal" {
                        Some("ro_mount".into())
                    } else {
                        Some(short_mode(v["mode"].as_str().unwrap_or("ReadOnlyMount")))
                    },
                })
                .collect()
        })
        .unwrap_or_default();
    m.output = p["outputs"]
        .as_object()
        .map(|outs| {
            outs.iter()
                .filter(|(_, v)| {
                    !v["uri"]
                        .as_str()
                        .is_some_and(|u| u.starts_with(SYSTEM_OUTPUT_PREFIX))
                })
                .map(|(k, v)| Output {
                    name: k.clone(),
                    kind: s(&v["jobOutputType"]),
                    mode: Some(short_mode(v["mode"].as_str().unwrap_or("ReadWriteMount"))),
                })
                .collect()
        })
        .unwrap_or_default();
}

fn rfc3339_from_millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run() -> Run {
        Run {
            workspace_id: Some("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws".into()),
            experiment_name: Some("Clara COVID".into()),
            compute: "/c".into(),
            environment: "azureml:clara_env:1".into(),
            command: "bash train_finetune.sh --epochs 5".into(),
            ..Default::default()
        }
    }

    #[test]
    fn names_follow_what_runs_not_tags() {
        let a = run();
        let mut b = run();
        b.tags = Some([("k".to_string(), "v".to_string())].into());
        b.display_name = Some("x".into());
        assert_eq!(derived_name(&a), derived_name(&b));
        let mut c = run();
        c.command = "bash train_finetune.sh --epochs 6".into();
        assert_ne!(derived_name(&a), derived_name(&c));
        assert!(
            derived_name(&a).starts_with("clara-covid-"),
            "{}",
            derived_name(&a)
        );
    }

    #[test]
    fn import_reads_back_what_decides_replacement_from_a_real_shape() {
        // Shaped like a real GET: system output, canonical duration, Azure's defaults.
        let body = json!({"properties": {
            "command": "bash x.sh", "computeId": "/c", "environmentId": "/e",
            "experimentName": "clara", "jobType": "Command",
            "limits": {"jobLimitsType": "Command", "timeout": "PT4H"},
            "resources": {"instanceCount": 2, "shmSize": "2g"},
            "queueSettings": {"jobTier": "Null"},
            "distribution": {"distributionType": "PyTorch", "processCountPerInstance": 2},
            "outputs": {
                "default": {"jobOutputType": "uri_folder", "mode": "ReadWriteMount",
                            "uri": "azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.j"},
                "model": {"jobOutputType": "custom_model", "mode": "Upload", "uri": "azureml://x/"}
            },
            "services": {
                "Studio": {"jobServiceType": "Studio", "endpoint": "https://ml.azure.com/runs/j"},
                "Tracking": {"jobServiceType": "Tracking", "endpoint": "azureml://t"},
                "ssh": {"jobServiceType": "SSH", "port": 22, "properties": {"sshPublicKeys": "k"}},
                "tb": {"jobServiceType": "TensorBoard", "properties": {"logDir": "logs"}, "status": "Running"}
            },
            "properties": {"_azureml.ComputeTargetType": "amlctrain"}
        }});
        let mut m = Run::default();
        from_body(&mut m, &body);
        assert_eq!(m.timeout.as_deref(), Some("4h"));
        assert_eq!(m.shm_size, None, "Azure's default reads back unset");
        assert_eq!(m.instance_count, Some(2));
        let d = m.distribution.clone().unwrap();
        assert_eq!(
            (d.kind.as_str(), d.process_count_per_instance),
            ("PyTorch", Some(2))
        );
        assert_eq!(m.output.len(), 1, "the system output is not a declared one");
        assert_eq!(m.output[0].mode.as_deref(), Some("upload"));
        let names: Vec<&str> = m.service.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ssh", "tb"]);
        assert_eq!(m.service[0].ssh_public_keys.as_deref(), Some("k"));
        assert_eq!(m.service[1].log_dir.as_deref(), Some("logs"));
        // a refresh notices a timeout that changed behind Terraform's back, not a respelling
        let mut r = run();
        r.timeout = Some("240m".into());
        drift(&mut r, &body);
        assert_eq!(r.timeout.as_deref(), Some("240m"));
        r.timeout = Some("2h".into());
        drift(&mut r, &body);
        assert_eq!(r.timeout.as_deref(), Some("4h"));
    }

    #[test]
    fn replacement_follows_meaning_not_spelling() {
        assert_eq!(shm_bytes(None), shm_bytes(Some("2g")));
        assert_eq!(shm_bytes(Some("2G")), shm_bytes(Some("2048m")));
        assert_ne!(shm_bytes(Some("8g")), shm_bytes(None));
        assert_eq!(shm_bytes(Some("8x")), None);
        let ws = WorkspaceId::parse(
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w",
        )
        .unwrap();
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/environments/clara_env/versions/1";
        assert!(same_arm_reference(&ws, id, &id.to_ascii_lowercase()));
        assert!(same_arm_reference(&ws, "azureml:clara_env:1", id));
        assert!(!same_arm_reference(&ws, "azureml:clara_env:2", id));
        assert!(!same_arm_reference(
            &ws,
            &id.replace("clara_env", "other"),
            id
        ));
    }

    #[test]
    fn body_uses_rest_modes_and_arm_environment_ids() {
        let mut m = run();
        m.input = vec![Input {
            name: "mmar".into(),
            kind: Some("uri_folder".into()),
            path: Some("azureml://x".into()),
            mode: Some("download".into()),
            value: None,
        }];
        let ws = WorkspaceId::parse(m.workspace_id.as_deref().unwrap()).unwrap();
        let b = job_body(&m, &ws, "j");
        assert_eq!(b["properties"]["inputs"]["mmar"]["mode"], "Download");
        assert!(
            b["properties"]["environmentId"]
                .as_str()
                .unwrap()
                .ends_with("/environments/clara_env/versions/1")
        );
    }

    fn errors_of(m: &Run) -> Vec<(String, String)> {
        let mut d = Diagnostics::new();
        TrainingRun.validate(&state(m), &mut d);
        d.0.iter()
            .map(|x| {
                (
                    x.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    x.summary.clone(),
                )
            })
            .collect()
    }

    fn with_io(command: &str) -> Run {
        let mut m = run();
        m.command = command.into();
        m.input = vec![Input {
            name: "mmar".into(),
            kind: Some("uri_folder".into()),
            path: Some("azureml://x".into()),
            ..Default::default()
        }];
        m.output = vec![Output {
            name: "model".into(),
            ..Default::default()
        }];
        m
    }

    #[test]
    fn command_references_must_name_declared_inputs_and_outputs() {
        let ok = with_io("bash ${{inputs.mmar}}/train.sh --out ${{ outputs.model }}");
        assert!(errors_of(&ok).is_empty(), "{:?}", errors_of(&ok));
        let bad = with_io("bash ${{inputs.mmr}}/train.sh --out ${{outputs.models}}");
        let errs = errors_of(&bad);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|(p, _)| p.contains("command")), "{errs:?}");
        assert!(errs.iter().any(|(_, s)| s == "Undeclared input"));
        assert!(errs.iter().any(|(_, s)| s == "Undeclared output"));
    }

    #[test]
    fn duplicate_outputs_empty_variable_keys_and_empty_experiments_are_rejected() {
        let mut m = with_io("bash run.sh");
        m.output.push(Output {
            name: "model".into(),
            ..Default::default()
        });
        m.environment_variables = Some([(String::new(), "x".to_string())].into());
        m.experiment_name = Some(" ".into());
        let errs = errors_of(&m);
        let summaries: Vec<&str> = errs.iter().map(|(_, s)| s.as_str()).collect();
        assert!(summaries.contains(&"Duplicate output"), "{errs:?}");
        assert!(
            summaries.contains(&"Invalid environment variable name"),
            "{errs:?}"
        );
        assert!(summaries.contains(&"Empty experiment name"), "{errs:?}");
        assert!(
            errs.iter().any(|(p, _)| p.contains("output[1]")),
            "{errs:?}"
        );
        assert!(
            errs.iter()
                .any(|(p, _)| p.contains("environment_variables")),
            "{errs:?}"
        );
    }

    #[test]
    fn job_names_are_one_encoded_path_segment() {
        let ws = WorkspaceId::parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws").unwrap();
        assert!(job_id(&ws, "clara-0123abcd").ends_with("/jobs/clara-0123abcd"));
        let hostile = job_id(&ws, "../computes/gpu?x=1");
        assert!(
            hostile.ends_with("/jobs/..%2Fcomputes%2Fgpu%3Fx%3D1"),
            "{hostile}"
        );
        assert!(!valid_job_name("../computes/gpu"));
        assert!(!valid_job_name(""));
        assert!(valid_job_name("clara-0123abcd"));
    }
}

// ---- identity (Terraform >= 1.12): the parts of the ARM id ----
impl clara_framework::ResourceIdentity for TrainingRun {
    fn identity_schema(&self) -> clara_framework::IdentitySchema {
        crate::identity::arm_schema("The job name.", None)
    }
    fn identity_of(&self, state: &Value) -> Option<Value> {
        crate::identity::arm_identity(&self.identity_schema(), state.get("id"), "jobs")
    }
    fn import_id(&self, identity: &Value) -> Result<String, String> {
        crate::identity::arm_import_id(identity, "jobs", false)
    }
}
