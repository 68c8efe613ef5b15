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

#[async_trait]
impl Resource<ClaraClient> for TrainingRun {
    fn type_name(&self) -> &'static str {
        "clara_training_run"
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
                    .validate(Matches::new("[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}", "must be letters, digits, '-' or '_'"))
                    .describe("Job name. Default: derived from everything that determines what runs, so the same configuration always names the same job."),
            )
            .attribute(super::workspace_id_attribute())
            .attribute(Attribute::string("experiment_name").default("clara").requires_replace().describe("Experiment the run is filed under. Default `clara`."))
            .attribute(Attribute::string("display_name").optional().describe("Name shown in Azure ML studio, set at submission. A later change is recorded in place with a warning: the REST API cannot rename a submitted job."))
            .attribute(Attribute::string("description").optional().describe("Description. Updates in place."))
            .attribute(Attribute::string("compute").required().requires_replace().describe("ARM id of the compute cluster, e.g. `azureml_gpu_cluster.clara_ct.id`."))
            .attribute(Attribute::string("environment").required().requires_replace().describe("Environment version: ARM id, `azureml:<name>:<version>` or `azureml_environment.x.id`."))
            .attribute(Attribute::string("command").required().requires_replace().describe("Command line, e.g. `bash $${{inputs.mmar}}/commands/train_finetune.sh`."))
            .attribute(Attribute::string("code").optional().requires_replace().describe("A local folder uploaded as a code asset (once per content) and mounted as the job's working directory."))
            .attribute(Attribute::string("code_hash").computed().describe("SHA-256 over the `code` folder's paths and contents, read at plan time: a change to any file plans a new run."))
            .attribute(Attribute::string("code_id").computed().use_state_for_unknown().describe("ARM id of the code version the job runs."))
            .attribute(Attribute::string_map("environment_variables").optional().requires_replace().describe("Environment variables of the job."))
            .attribute(Attribute::number("instance_count").default(1i64).requires_replace().validate(IntBetween(1, 1000)).describe("Nodes to run on. Default 1."))
            .attribute(Attribute::string("shm_size").optional().requires_replace().validate(Matches::new(r"\d+[bBkKmMgG]", "must be a size such as \"2g\"")).describe("Shared memory of the container, e.g. `8g` (Azure's default is `2g`)."))
            .attribute(Attribute::string("timeout").optional().requires_replace().validate(validators::Duration).describe("Azure cancels the job after this long, e.g. `2h`."))
            .attribute(Attribute::bool("wait_for_completion").default(true).describe("Wait until the job finishes (default). With `false`, apply returns once the job is submitted."))
            .attribute(Attribute::string_map("tags").optional().describe("Tags. Update in place."))
            .attribute(Attribute::string("status").computed().describe("Job status: `Completed`, `Failed`, `Canceled`, `Running`, ..."))
            .attribute(Attribute::string("studio_url").computed().describe("Azure ML studio page of the job."))
            .attribute(Attribute::string("start_time").computed().describe("When the job started running (RFC 3339), if known."))
            .attribute(Attribute::string("end_time").computed().describe("When the job ended (RFC 3339), if known."))
            .attribute(Attribute::new("metrics", Type::Map(Box::new(Type::Number))).computed().describe("Final value of every metric the run logged to MLflow, e.g. `average_precision`."))
            .attribute(Attribute::string_map("outputs").computed().use_state_for_unknown().describe("URI of each declared `output`, known at plan time: `azureml://datastores/workspaceblobstore/paths/azureml/<job>/<output>/`. Outputs Azure ML adds itself (`default`, the run's logs and artifacts) are not listed; the run's `studio_url` shows them."))
            .attribute(Attribute::string_map("service_endpoints").computed().describe("Endpoint of each service while the job runs."))
            .attribute(Attribute::string("jupyterlab_url").computed().describe("JupyterLab endpoint, if a JupyterLab service was requested."))
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
        if !what_runs_known {
            return;
        }
        let Ok(m) = decode::<Run>(&Value::Object(planned.clone())) else {
            return;
        };
        let name = m
            .name
            .clone()
            .filter(|_| !req.config.get("name").is_null())
            .unwrap_or_else(|| derived_name(&m));
        planned.insert("name".into(), Value::from(name.clone()));
        if let Some(ws) = m
            .workspace_id
            .as_deref()
            .and_then(|w| WorkspaceId::parse(w).ok())
        {
            planned.insert("id".into(), Value::from(ws.child("jobs", &name)));
        }
        let outputs: BTreeMap<String, Value> = m
            .output
            .iter()
            .map(|o| (o.name.clone(), Value::from(output_uri(&name, &o.name))))
            .collect();
        planned.insert("outputs".into(), Value::Map(outputs));
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
        let name = m.name.clone().unwrap_or_else(|| derived_name(&m));
        let id = ws.child("jobs", &name);
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
        let body = job_body(&m, &ws, &name);

        // Adopt a job this configuration already submitted (an interrupted apply): never pay twice.
        match client.arm.get_json(&id).await {
            Ok(Some(existing)) => {
                tracing::warn!(job = %name, status = existing["properties"]["status"].as_str().unwrap_or("?"), "adopting the already-submitted job");
            }
            Ok(None) => {
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
                if m.command.is_empty() {
                    from_body(&mut m, &body); // imported
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
        if (prior.tags.clone(), prior.description.clone())
            != (m.tags.clone(), m.description.clone())
        {
            // A PUT of the same job may change its tags and description. displayName is
            // create-only in the REST API, so the submitted one is sent again.
            let mut sent = m.clone();
            sent.display_name = prior.display_name.clone();
            if let Err(e) = client.arm.put_json(&id, &job_body(&sent, &ws, &name)).await {
                diags.error("Updating the job failed", e.to_string());
                return req.prior.clone();
            }
        }
        if prior.display_name != m.display_name {
            diags.attr_warning(
                AttrPath::root("display_name"),
                "Display name recorded, not sent",
                "Azure ML's REST API cannot rename a submitted job (displayName is create-only), and re-running it \
                 for a new name would cost GPU time. The new name is kept in state and used if the run is ever \
                 re-created; rename the run in Azure ML studio to change what it shows now.",
            );
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
        let status = match client.arm.get_json(id).await {
            Ok(Some(b)) => b["properties"]["status"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            Ok(None) => return,
            Err(e) => {
                diags.error("Cannot read the job", e.to_string());
                return;
            }
        };
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
        if let Err(e) = client.arm.delete_and_wait(id, &[], &client.cancel).await {
            diags.error("Deleting the job failed", e.to_string());
        }
    }

    async fn import(&self, _client: &ClaraClient, id: &str, diags: &mut Diagnostics) -> Value {
        match ChildId::parse(id, "jobs") {
            Ok(c) => state(&Run {
                id: Some(c.workspace.child("jobs", &c.name)),
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
    let mlflow = client.arm.with_endpoint(origin);
    let path = format!(
        "{}/api/2.0/mlflow/runs/get?run_id={job}",
        base.path().trim_end_matches('/')
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
        "{}/history/v1.0{ws}/runs/{job}/details",
        history.path().trim_end_matches('/')
    );
    client
        .arm
        .with_endpoint(origin(&history).map_err(|e| e.to_string())?)
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
}
