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

    fn running_start(&self) -> u64 {
        self.created_ms + self.schedule.pre_ms.iter().sum::<u64>()
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
        let (run_wall, _, _) = self.running();
        let natural = self.running_start() + run_wall + self.schedule.finalizing_ms;
        match self.cancel_requested_ms {
            Some(c) if c < natural => c + self.cancel_ms,
            _ => natural,
        }
    }

    pub fn state_at(&self, now: u64) -> JobState {
        let run_start = self.running_start();
        let (run_wall, run_sim, timed_out) = self.running();
        let run_end = run_start + run_wall;
        let fin_end = run_end + self.schedule.finalizing_ms;
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
        let pre = &self.schedule.pre_ms;
        let mut t = self.created_ms;
        let bounds = [
            ("NotStarted", {
                t += pre[0];
                t
            }),
            ("Starting", {
                t += pre[1];
                t
            }),
            ("Preparing", {
                t += pre[2];
                t
            }),
            ("Queued", {
                t += pre[3];
                t
            }),
            ("Running", run_end),
            ("Finalizing", fin_end),
        ];
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
            sim_end: Some(run_start + run_sim + self.schedule.finalizing_ms),
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

    /// GET body shaped like `Job/CommandJob/get.json`, status computed at `now`.
    pub fn render(&self, app: &AppState, now: u64) -> Value {
        let state = self.state_at(now);
        let mut props = self.properties.as_object().cloned().unwrap_or_default();
        props.entry("isArchived").or_insert_with(|| json!(false));
        props.entry("tags").or_insert_with(|| json!({}));
        props.entry("properties").or_insert_with(|| json!({}));
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
        if let Some(err) = &state.error {
            // Emulator extension: the ARM job model has no error member (see README).
            props.insert(
                "error".into(),
                json!({ "code": err.code, "message": err.message }),
            );
        }
        json!({
            "id": self.arm_id(),
            "name": self.name,
            "type": RESOURCE_TYPE,
            "systemData": system_data(self.created_ms, self.modified_ms, &self.created_by),
            "properties": props,
        })
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
                "endpoint": format!("https://ml.azure.com/runs/{}?wsid={wsid}", self.name),
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
    fn durations() {
        assert_eq!(duration_ms("PT5M"), Some(300_000));
        assert_eq!(duration_ms("P1DT2H"), Some(93_600_000));
        assert_eq!(duration_ms("PT0.5S"), Some(500));
        assert_eq!(duration_ms("5M"), None);
    }
}
