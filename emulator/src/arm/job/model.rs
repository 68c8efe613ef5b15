//! The stored job, its simulated timeline and its ARM rendering.
//!
//! Status is a pure function of the record and the wall clock (no background tasks): the
//! record keeps absolute timestamps, so the timeline survives restarts.
//!
//! Timeline (wall clock): `created` → NotStarted → Starting → Preparing → Queued (each
//! `jobs.phase_ms`) → Running (`phase_ms.Running`, or the declared simulated duration ×
//! `jobs.time_scale`) → Finalizing → Completed | Failed. A simulated duration longer than
//! `limits.timeout` stops at the timeout and ends Canceled. A cancel request moves the job
//! to CancelRequested for `jobs.cancel_ms`, then Canceled.
//!
//! Simulated clock (MLflow `start_time`/`end_time`, metric timestamps): anchored at the
//! wall-clock start of Running; during Running it advances `1/scale` times faster, where
//! `scale = running wall ms / running simulated ms` (= `time_scale` for declared durations).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::arm::PROVIDER;
use crate::arm::asset::system_data;
use crate::clara_sim::ClaraPlan;
use crate::training::PHASES;
use crate::util::stable_guid;

pub const RESOURCE_TYPE: &str = "Microsoft.MachineLearningServices/workspaces/jobs";
/// Members of `properties` that a PUT on an existing job may change ([S-MFE] mutability,
/// plus `displayName`, which the service itself lists as updatable in its error text:
/// "Only description, tags, displayName, properties, and isArchived can be updated",
/// MicrosoftDocs/azure-docs#122250, azure-sdk-for-python#47389).
pub const MUTABLE: &[&str] = &[
    "displayName",
    "description",
    "tags",
    "properties",
    "isArchived",
    "notificationSetting",
    "services",
];
pub const TERMINAL: &[&str] = &["Completed", "Failed", "Canceled"];

/// Store key of a job: workspace part lower-cased, the job name case-sensitive.
pub fn job_key(sub: &str, rg: &str, ws: &str, name: &str) -> String {
    format!("{}/{name}", format!("{sub}/{rg}/{ws}").to_ascii_lowercase())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// Durations decided at creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Schedule {
    /// NotStarted, Starting, Preparing, Queued (wall ms).
    pub pre_ms: [u64; 4],
    pub running_wall_ms: u64,
    pub running_sim_ms: u64,
    pub finalizing_ms: u64,
    /// `limits.timeout` (simulated ms).
    pub timeout_sim_ms: Option<u64>,
    /// The job declared its simulated duration (tag or env var).
    pub declared: bool,
    /// A status the job passes through (or stops in) on its way (`clara-emulator/interrupt`).
    #[serde(default)]
    pub interrupt: Option<Interrupt>,
}

/// Statuses of the spec's `JobStatus` that the normal timeline never shows; a job reaches
/// them through the `clara-emulator/interrupt` switches (README "Jobs").
pub const INTERRUPT_STATUSES: &[&str] = &["NotResponding", "Paused", "Unknown", "Provisioning"];

/// How long an open-ended interrupt (no `:ms`) holds: ten years, i.e. until
/// `POST /_emulator/jobs/advance`.
pub const HOLD_MS: u64 = 10 * 365 * 86_400_000;

/// `<Status>[:<wall ms>][@<phase>]`: the job shows `Status` for `ms` (forever without it)
/// just before `phase` (default `Running`; `Preparing` for `Provisioning`), then goes on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interrupt {
    pub status: String,
    pub ms: Option<u64>,
    pub before: String,
}

impl Interrupt {
    pub fn parse(spec: &str) -> Result<Interrupt, String> {
        let spec = spec.trim();
        let (rest, before) = match spec.split_once('@') {
            Some((r, b)) => (r, Some(b.trim())),
            None => (spec, None),
        };
        let (status, ms) = match rest.split_once(':') {
            Some((st, ms)) => (
                st.trim(),
                Some(
                    ms.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("'{ms}' is not a number of milliseconds"))?,
                ),
            ),
            None => (rest.trim(), None),
        };
        let status = INTERRUPT_STATUSES
            .iter()
            .find(|s| **s == status)
            .ok_or_else(|| {
                format!(
                    "'{status}' is not one of {} (form <Status>[:<ms>][@<phase>])",
                    INTERRUPT_STATUSES.join(", ")
                )
            })?;
        let before = before
            .unwrap_or(if *status == "Provisioning" {
                "Preparing"
            } else {
                "Running"
            })
            .to_string();
        if !PHASES.contains(&before.as_str()) {
            return Err(format!(
                "'{before}' is not a job phase ({})",
                PHASES.join(", ")
            ));
        }
        Ok(Interrupt {
            status: status.to_string(),
            ms,
            before,
        })
    }

    fn status(&self) -> &'static str {
        INTERRUPT_STATUSES
            .iter()
            .find(|s| **s == self.status)
            .copied()
            .unwrap_or("Unknown")
    }

    fn index(&self) -> usize {
        PHASES.iter().position(|p| *p == self.before).unwrap_or(4)
    }

    fn wall_ms(&self) -> u64 {
        self.ms.unwrap_or(HOLD_MS)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deleting {
    pub op_id: String,
    pub done_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub subscription: String,
    pub resource_group: String,
    pub workspace: String,
    pub name: String,
    /// Workspace location (service endpoints, operation URLs).
    pub location: String,
    /// `properties` as sent (nulls removed; `experimentName` defaulted).
    pub properties: Value,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub created_by: String,
    pub schedule: Schedule,
    /// Decided at creation (fault switches); the job ends Failed with it.
    pub failure: Option<Failure>,
    pub cancel_requested_ms: Option<u64>,
    pub cancel_op: Option<String>,
    pub cancel_ms: u64,
    pub deleting: Option<Deleting>,
    pub clara: Option<ClaraPlan>,
    /// Best-effort output upload: `pending`, `done` or `failed: …` (None: not attempted).
    pub outputs_upload: Option<String>,
}

/// The job at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct JobState {
    pub status: &'static str,
    /// Simulated run start (ms since epoch) once Running was reached.
    pub sim_start: Option<u64>,
    /// Simulated run end once terminal.
    pub sim_end: Option<u64>,
    /// Simulated ms spent running so far (0..=running_sim_ms).
    pub sim_elapsed: u64,
    /// Simulated running duration as scheduled (after the timeout cap).
    pub sim_total: u64,
    pub error: Option<Failure>,
}

impl JobState {
    pub fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status)
    }
}

impl JobRecord {
    pub fn arm_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER}/workspaces/{}/jobs/{}",
            self.subscription, self.resource_group, self.workspace, self.name
        )
    }

    pub fn workspace_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER}/workspaces/{}",
            self.subscription, self.resource_group, self.workspace
        )
    }

    /// `(status, wall end)` of every phase in order, the interrupt included.
    fn timeline(&self) -> Vec<(&'static str, u64)> {
        let (run_wall, _, _) = self.running();
        let s = &self.schedule;
        let mut out = Vec::with_capacity(7);
        let mut t = self.created_ms;
        for (i, phase) in PHASES.iter().enumerate() {
            if let Some(int) = s.interrupt.as_ref().filter(|int| int.index() == i) {
                t = t.saturating_add(int.wall_ms());
                out.push((int.status(), t));
            }
            t = t.saturating_add(match i {
                0..=3 => s.pre_ms[i],
                4 => run_wall,
                _ => s.finalizing_ms,
            });
            out.push((*phase, t));
        }
        out
    }

    fn running_start(&self) -> u64 {
        let tl = self.timeline();
        let run = tl.iter().position(|(p, _)| *p == "Running").unwrap_or(0);
        if run == 0 {
            self.created_ms
        } else {
            tl[run - 1].1
        }
    }

    /// (running wall ms, running sim ms, timed out) after the timeout cap.
    fn running(&self) -> (u64, u64, bool) {
        let s = &self.schedule;
        match s.timeout_sim_ms {
            Some(t) if t < s.running_sim_ms => {
                let wall = if s.running_sim_ms == 0 {
                    t
                } else {
                    (t as f64 * s.running_wall_ms as f64 / s.running_sim_ms as f64).round() as u64
                };
                (wall, t, true)
            }
            _ => (s.running_wall_ms, s.running_sim_ms, false),
        }
    }

    /// Wall time at which the job becomes terminal (as things stand).
    pub fn terminal_wall_ms(&self) -> u64 {
        let natural = self
            .timeline()
            .last()
            .map_or(self.created_ms, |(_, end)| *end);
        match self.cancel_requested_ms {
            Some(c) if c < natural => c + self.cancel_ms,
            _ => natural,
        }
    }

    pub fn state_at(&self, now: u64) -> JobState {
        let timeline = self.timeline();
        let run_start = self.running_start();
        let (run_wall, run_sim, timed_out) = self.running();
        let run_end = run_start + run_wall;
        let fin_end = timeline.last().map_or(run_end, |(_, end)| *end);
        let to_sim = |wall: u64| -> u64 {
            let elapsed = wall.clamp(run_start, run_end) - run_start;
            if run_wall == 0 {
                if wall >= run_end { run_sim } else { 0 }
            } else {
                ((elapsed as f64) * run_sim as f64 / run_wall as f64).round() as u64
            }
        };
        if let Some(c) = self
            .cancel_requested_ms
            .filter(|c| *c < fin_end && now >= *c)
        {
            let done = c + self.cancel_ms;
            let started = c >= run_start;
            let stop = c.min(run_end);
            let sim_elapsed = if started { to_sim(stop) } else { 0 };
            let sim_start = started.then_some(run_start);
            let (status, sim_end) = if now >= done {
                let end = match sim_start {
                    Some(s) => s + sim_elapsed + (done - stop),
                    None => done,
                };
                ("Canceled", Some(end))
            } else {
                ("CancelRequested", None)
            };
            return JobState {
                status,
                sim_start,
                sim_end,
                sim_elapsed,
                sim_total: run_sim,
                error: None,
            };
        }
        let bounds = timeline;
        let sim_start = (now >= run_start).then_some(run_start);
        let sim_elapsed = if now >= run_start { to_sim(now) } else { 0 };
        if let Some((status, _)) = bounds.iter().find(|(_, end)| now < *end) {
            return JobState {
                status,
                sim_start,
                sim_end: None,
                sim_elapsed,
                sim_total: run_sim,
                error: None,
            };
        }
        let (status, error) = if timed_out {
            let limit = self.properties["limits"]["timeout"].as_str().unwrap_or("?");
            (
                "Canceled",
                Some(Failure {
                    code: "JobTimeout".into(),
                    message: format!(
                        "The job exceeded its maximum run duration (limits.timeout = {limit}) and was canceled."
                    ),
                }),
            )
        } else if let Some(f) = &self.failure {
            ("Failed", Some(f.clone()))
        } else {
            ("Completed", None)
        };
        JobState {
            status,
            sim_start: Some(run_start),
            sim_end: Some(run_start + run_sim + (fin_end - run_end)),
            sim_elapsed: run_sim,
            sim_total: run_sim,
            error,
        }
    }

    /// Whether the job is gone (its delete completed) at `now`.
    pub fn is_deleted_at(&self, now: u64) -> bool {
        self.deleting.as_ref().is_some_and(|d| now >= d.done_ms)
    }

    pub fn is_archived(&self) -> bool {
        self.properties["isArchived"].as_bool().unwrap_or(false)
    }

    /// `azureml://datastores/workspaceblobstore/paths/azureml/<job>/<output>/`.
    pub fn output_uri(&self, output: &str) -> String {
        format!(
            "azureml://datastores/workspaceblobstore/paths/azureml/{}/{output}/",
            self.name
        )
    }

    /// GET body shaped like `Job/CommandJob/get.json`, status computed at `now`, with what
    /// the service adds (README "Jobs": system output, defaults, system properties).
    pub fn render(&self, app: &AppState, now: u64) -> Value {
        let state = self.state_at(now);
        let mut props = self.properties.as_object().cloned().unwrap_or_default();
        props.entry("isArchived").or_insert_with(|| json!(false));
        props.entry("tags").or_insert_with(|| json!({}));
        add_service_defaults(&mut props, &self.name);
        props.insert(
            "properties".into(),
            Value::Object(self.system_properties(&state)),
        );
        props.insert("status".into(), json!(state.status));
        props.insert("services".into(), Value::Object(self.services(app, &state)));
        if let Some(outputs) = props.get_mut("outputs").and_then(Value::as_object_mut) {
            for (name, out) in outputs.iter_mut() {
                let has_uri = out.get("uri").and_then(Value::as_str).is_some();
                if state.status == "Completed" && !has_uri {
                    out["uri"] = json!(self.output_uri(name));
                }
                if let Some(o) = out.as_object_mut() {
                    o.entry("mode").or_insert_with(|| json!("ReadWriteMount"));
                }
            }
        }
        if let Some(inputs) = props.get_mut("inputs").and_then(Value::as_object_mut) {
            for input in inputs.values_mut() {
                if input["jobInputType"] != "literal"
                    && let Some(o) = input.as_object_mut()
                {
                    o.entry("mode").or_insert_with(|| json!("ReadOnlyMount"));
                }
            }
        }
        // JobBase has no error member: failure details live in run history and MLflow.
        json!({
            "id": self.arm_id(),
            "name": self.name,
            "type": RESOURCE_TYPE,
            "systemData": system_data(self.created_ms, self.modified_ms, &self.created_by),
            "properties": props,
        })
    }

    /// The job's `properties` bag: the sent keys plus the system keys Azure ML adds
    /// (`_azureml.ComputeTargetType`, `_azureml.ClusterName` from submission;
    /// `ContentSnapshotId` with code; `ProcessInfoFile`, `ProcessStatusFile`, `StartTimeUtc`
    /// once running; `EndTimeUtc` once ended).
    pub fn system_properties(&self, state: &JobState) -> Map<String, Value> {
        let mut out = self.properties["properties"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let mut sys = |k: &str, v: Value| {
            out.entry(k.to_string()).or_insert(v);
        };
        if let Some(compute) = self.properties["computeId"].as_str() {
            let cluster = compute.rsplit(['/', ':']).next().unwrap_or(compute);
            sys("_azureml.ComputeTargetType", json!("amlctrain"));
            sys("_azureml.ClusterName", json!(cluster));
        }
        if self.properties["codeId"].is_string() {
            sys(
                "ContentSnapshotId",
                json!(stable_guid(&format!("{}/snapshot", self.arm_id()))),
            );
        }
        if let Some(start) = state.sim_start {
            sys("ProcessInfoFile", json!("azureml-logs/process_info.json"));
            sys(
                "ProcessStatusFile",
                json!("azureml-logs/process_status.json"),
            );
            sys("StartTimeUtc", json!(utc_seconds(start)));
        }
        if let Some(end) = state.sim_end {
            sys("EndTimeUtc", json!(utc_seconds(end)));
        }
        out
    }

    fn host_label(&self) -> String {
        let label: String = self
            .name
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .take(63)
            .collect();
        label.trim_matches('-').to_string()
    }

    /// The sent services (endpoints filled in while Running) plus the service-added
    /// `Studio` and `Tracking`.
    fn services(&self, app: &AppState, state: &JobState) -> Map<String, Value> {
        let running = state.status == "Running";
        let label = self.host_label();
        let loc = &self.location;
        let mut out = Map::new();
        if let Some(sent) = self.properties["services"].as_object() {
            for (key, svc) in sent {
                let mut svc = svc.as_object().cloned().unwrap_or_default();
                let ty = svc
                    .get("jobServiceType")
                    .and_then(Value::as_str)
                    .unwrap_or("Custom")
                    .to_string();
                let port = svc.get("port").and_then(Value::as_i64);
                if running {
                    let endpoint = match ty.as_str() {
                        "JupyterLab" => {
                            format!("https://{label}.jupyter.{loc}.emulator.azureml.local/lab")
                        }
                        "TensorBoard" => {
                            format!("https://{label}.tensorboard.{loc}.emulator.azureml.local/")
                        }
                        "VSCode" => format!("https://{label}.vscode.{loc}.emulator.azureml.local/"),
                        "SSH" => format!(
                            "ssh://azureuser@{label}.ssh.{loc}.emulator.azureml.local:{}",
                            port.unwrap_or(50000)
                        ),
                        other => format!(
                            "https://{label}.{}.{loc}.emulator.azureml.local:{}/",
                            other.to_ascii_lowercase(),
                            port.unwrap_or(443)
                        ),
                    };
                    svc.entry("endpoint").or_insert(json!(endpoint));
                    svc.insert("status".into(), json!("Running"));
                } else {
                    svc.remove("endpoint");
                }
                out.insert(key.clone(), Value::Object(svc));
            }
        }
        let wsid = self.workspace_id();
        out.insert(
            "Studio".into(),
            json!({
                "jobServiceType": "Studio",
                // No `&tid=`: azure-ai-ml 1.35.2 appends it itself
                // (`JobOperations._append_tid_to_studio_url`, `TID_FMT = "&tid={}"`).
                "endpoint": format!(
                    "https://{}/runs/{}?wsid={wsid}",
                    app.config.cloud.studio_host(),
                    self.name
                ),
            }),
        );
        out.insert(
            "Tracking".into(),
            json!({
                "jobServiceType": "Tracking",
                "endpoint": format!("azureml://{}/mlflow/v1.0{wsid}?", app.authority()),
            }),
        );
        out
    }

    /// MLflow experiment id (stable per workspace + experiment name).
    pub fn experiment_id(&self) -> String {
        stable_guid(&format!(
            "{}/experiments/{}",
            self.workspace_id().to_ascii_lowercase(),
            self.experiment_name()
        ))
    }

    pub fn experiment_name(&self) -> &str {
        self.properties["experimentName"]
            .as_str()
            .unwrap_or("Default")
    }
}

/// `azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.<job>`: the system
/// output every command job gets (its logs and artifacts).
pub fn default_output_uri(job: &str) -> String {
    format!("azureml://datastores/workspaceartifactstore/ExperimentRun/dcid.{job}")
}

/// What the service fills in on every command job (README "Jobs"): the system output
/// `default`, `limits.jobLimitsType`, a canonical `limits.timeout`, `resources.instanceCount`
/// and `shmSize` defaults, `queueSettings.jobTier`. Used when rendering and when comparing
/// a PUT with the stored job (so a client that sends back what it read changes nothing).
pub fn add_service_defaults(props: &mut Map<String, Value>, job: &str) {
    if let Some(o) = member(props, "outputs") {
        o.entry("default").or_insert_with(|| {
            json!({"jobOutputType": "uri_folder", "mode": "ReadWriteMount", "uri": default_output_uri(job)})
        });
    }
    if let Some(l) = member(props, "limits") {
        l.entry("jobLimitsType").or_insert_with(|| json!("Command"));
        if let Some(ms) = l
            .get("timeout")
            .and_then(Value::as_str)
            .and_then(duration_ms)
        {
            l.insert("timeout".into(), json!(iso_duration(ms)));
        }
    }
    if let Some(r) = member(props, "resources") {
        r.entry("instanceCount").or_insert_with(|| json!(1));
        r.entry("shmSize").or_insert_with(|| json!("2g"));
    }
    if let Some(q) = member(props, "queueSettings") {
        q.entry("jobTier").or_insert_with(|| json!("Null"));
    }
}

/// The object member `key` of `props`, created empty when absent (None if not an object).
fn member<'a>(props: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    props
        .entry(key.to_string())
        .or_insert_with(|| json!({}))
        .as_object_mut()
}

/// An ISO-8601 duration as .NET's `XmlConvert.ToString(TimeSpan)` writes it (the form the
/// service returns): `PT4H`, `PT2H30M`, `P1DT2H`, `PT1.5S`, `PT0S`.
pub fn iso_duration(ms: u64) -> String {
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (h, m, s, frac) = (
        rest / 3_600_000,
        rest % 3_600_000 / 60_000,
        rest % 60_000 / 1000,
        rest % 1000,
    );
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if h + m + s + frac > 0 || days == 0 {
        out.push('T');
        if h > 0 {
            out.push_str(&format!("{h}H"));
        }
        if m > 0 {
            out.push_str(&format!("{m}M"));
        }
        if frac > 0 {
            let f = format!("{frac:03}");
            out.push_str(&format!("{s}.{}S", f.trim_end_matches('0')));
        } else if s > 0 || (h == 0 && m == 0) {
            out.push_str(&format!("{s}S"));
        }
    }
    out
}

/// `2026-03-31 18:14:56` (the `StartTimeUtc`/`EndTimeUtc` property form).
fn utc_seconds(ms: u64) -> String {
    let t = crate::util::rfc3339(ms);
    t.get(..19).unwrap_or(&t).replace('T', " ")
}

/// A cancel or delete operation (Location pattern).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobOpKind {
    Cancel,
    Delete,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobOp {
    pub id: String,
    pub kind: JobOpKind,
    pub job_key: String,
    pub subscription: String,
    pub location: String,
    pub start_ms: u64,
}

/// Parses an ISO-8601 duration (`PT5M`, `P1DT2H`, `PT0.5S`) into milliseconds (a month is 30
/// days, a year 365).
pub fn duration_ms(s: &str) -> Option<u64> {
    let rest = s.strip_prefix('P')?;
    let (date, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut total = 0f64;
    for (part, units) in [
        (
            date,
            &[
                ('Y', 365.0 * 86400.0),
                ('M', 30.0 * 86400.0),
                ('W', 7.0 * 86400.0),
                ('D', 86400.0),
            ][..],
        ),
        (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let secs = units.iter().find(|(u, _)| *u == c)?.1;
                total += num.parse::<f64>().ok()? * secs;
                num.clear();
            }
        }
        if !num.is_empty() {
            return None;
        }
    }
    Some((total * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pre: u64, run_wall: u64, run_sim: u64) -> JobRecord {
        JobRecord {
            subscription: "s".into(),
            resource_group: "rg".into(),
            workspace: "ws".into(),
            name: "j".into(),
            location: "eastus".into(),
            properties: json!({}),
            created_ms: 1000,
            modified_ms: 1000,
            created_by: "me".into(),
            schedule: Schedule {
                pre_ms: [pre; 4],
                running_wall_ms: run_wall,
                running_sim_ms: run_sim,
                finalizing_ms: pre,
                timeout_sim_ms: None,
                declared: true,
                interrupt: None,
            },
            failure: None,
            cancel_requested_ms: None,
            cancel_op: None,
            cancel_ms: 100,
            deleting: None,
            clara: None,
            outputs_upload: None,
        }
    }

    #[test]
    fn phases_follow_the_clock() {
        let r = record(100, 1000, 600_000);
        let at = |t| r.state_at(t).status;
        assert_eq!(at(1000), "NotStarted");
        assert_eq!(at(1150), "Starting");
        assert_eq!(at(1250), "Preparing");
        assert_eq!(at(1350), "Queued");
        assert_eq!(at(1400), "Running");
        assert_eq!(at(2399), "Running");
        assert_eq!(at(2400), "Finalizing");
        assert_eq!(at(2500), "Completed");
        // simulated clock: half the wall running time is half the simulated duration
        let s = r.state_at(1900);
        assert_eq!((s.sim_start, s.sim_elapsed), (Some(1400), 300_000));
        let s = r.state_at(5000);
        assert_eq!(s.sim_end, Some(1400 + 600_000 + 100));
    }

    #[test]
    fn cancel_and_failure_and_timeout() {
        let mut r = record(100, 1000, 600_000);
        r.cancel_requested_ms = Some(1900);
        assert_eq!(r.state_at(1899).status, "Running");
        assert_eq!(r.state_at(1950).status, "CancelRequested");
        let s = r.state_at(2000);
        assert_eq!(s.status, "Canceled");
        assert_eq!(s.sim_elapsed, 300_000);
        assert_eq!(r.terminal_wall_ms(), 2000);

        let mut r = record(100, 1000, 600_000);
        r.failure = Some(Failure {
            code: "UserError".into(),
            message: "boom".into(),
        });
        assert_eq!(r.state_at(9999).status, "Failed");
        assert_eq!(r.state_at(9999).error.unwrap().message, "boom");

        let mut r = record(100, 1000, 600_000);
        r.schedule.timeout_sim_ms = Some(60_000);
        assert_eq!(r.state_at(1499).status, "Running");
        let s = r.state_at(1600);
        assert_eq!(
            (s.status, s.error.map(|e| e.code)),
            ("Canceled", Some("JobTimeout".to_string()))
        );
    }

    #[test]
    fn interrupts_insert_a_status_and_shift_the_rest() {
        let mut r = record(100, 1000, 600_000);
        r.schedule.interrupt = Some(Interrupt::parse("NotResponding:500").unwrap());
        let at = |r: &JobRecord, t| r.state_at(t).status;
        assert_eq!(at(&r, 1350), "Queued");
        assert_eq!(at(&r, 1400), "NotResponding");
        assert_eq!(at(&r, 1899), "NotResponding");
        assert_eq!(at(&r, 1900), "Running");
        assert_eq!(at(&r, 2999), "Finalizing");
        assert_eq!(at(&r, 3000), "Completed");
        r.schedule.interrupt = Some(Interrupt::parse("Paused").unwrap());
        assert_eq!(at(&r, 1_000_000_000), "Paused");
        r.schedule.interrupt = Some(Interrupt::parse("Provisioning:50").unwrap());
        assert_eq!(at(&r, 1200), "Provisioning");
        assert_eq!(at(&r, 1250), "Preparing");
        assert!(Interrupt::parse("Running:5").is_err());
        assert!(Interrupt::parse("Unknown:x").is_err());
        assert!(Interrupt::parse("Unknown@Nowhere").is_err());
    }

    #[test]
    fn iso_durations_are_canonical() {
        assert_eq!(iso_duration(14_400_000), "PT4H");
        assert_eq!(iso_duration(9_000_000), "PT2H30M");
        assert_eq!(iso_duration(93_600_000), "P1DT2H");
        assert_eq!(iso_duration(86_400_000), "P1D");
        assert_eq!(iso_duration(1500), "PT1.5S");
        assert_eq!(iso_duration(0), "PT0S");
        assert_eq!(iso_duration(3_723_000), "PT1H2M3S");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("PT5M"), Some(300_000));
        assert_eq!(duration_ms("P1DT2H"), Some(93_600_000));
        assert_eq!(duration_ms("PT0.5S"), Some(500));
        assert_eq!(duration_ms("5M"), None);
    }
}
