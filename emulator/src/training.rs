//! Persisted state and configuration of the training families: environment versions, code
//! versions, jobs (with their cancel/delete operations) and the job simulation settings.
//!
//! Everything lives under one `#[serde(default)]` field of the store's `Data`
//! (`Data::training`), so the rest of the store is untouched.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::arm::asset::AssetVersion;
use crate::arm::job::model::{JobOp, JobRecord};

/// Persisted training data (inside `store::Data`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainingData {
    /// Key: `asset::version_key(sub, rg, ws, name, version)`.
    pub environments: BTreeMap<String, AssetVersion>,
    /// Key: `asset::version_key(sub, rg, ws, name, version)`.
    pub codes: BTreeMap<String, AssetVersion>,
    /// Key: `job::model::job_key(sub, rg, ws, name)` (the job name keeps its case).
    pub jobs: BTreeMap<String, JobRecord>,
    /// Cancel/delete operations (Location pattern). Key: operation id.
    pub job_ops: BTreeMap<String, JobOp>,
    /// Runtime job-failure switches set through `PUT /_emulator/jobs` (not persisted, like
    /// the fault config; they replace the config's switches until reset to `null`).
    #[serde(skip)]
    pub overrides: Option<JobFailSwitches>,
}

impl TrainingData {
    /// Clears resources and operations (admin reset). Runtime switches are kept.
    pub fn clear_resources(&mut self) {
        self.environments.clear();
        self.codes.clear();
        self.jobs.clear();
        self.job_ops.clear();
    }
}

/// The job phases that take time, in order.
pub const PHASES: [&str; 6] = [
    "NotStarted",
    "Starting",
    "Preparing",
    "Queued",
    "Running",
    "Finalizing",
];

/// `jobs` section of the config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Wall-clock duration of each phase: a number (every phase) or an object keyed by
    /// phase name (`NotStarted`, `Starting`, `Preparing`, `Queued`, `Running`,
    /// `Finalizing`; missing phases keep 300). `Running` applies to jobs that declare no
    /// simulated duration.
    pub phase_ms: PhaseDurations,
    /// Wall-clock ms per simulated ms for jobs that declare a simulated duration
    /// (`clara-emulator/duration-s`): 0.01 runs a 600 s job in 6 s.
    pub time_scale: f64,
    /// How long a job stays `CancelRequested` before it is `Canceled`.
    pub cancel_ms: u64,
    /// How long a job delete runs (Location polls return 202) before the job is gone.
    pub delete_ms: u64,
    /// A job whose command contains this string fails.
    pub fail_when_command_contains: Option<String>,
    /// Jobs with these names fail.
    pub fail_job_names: Vec<String>,
    /// Failure message for the two switches above.
    pub fail_message: Option<String>,
    /// Job name (or `*` for every job) → interrupt `<Status>[:<ms>][@<phase>]` (README "Jobs").
    pub interrupts: BTreeMap<String, String>,
}

/// Failure switches (config `jobs.*`, or at runtime `PUT /_emulator/jobs`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobFailSwitches {
    /// A job whose command contains this string fails.
    pub fail_when_command_contains: Option<String>,
    /// Jobs with these names fail.
    pub fail_job_names: Vec<String>,
    /// Failure message for the two switches above.
    pub fail_message: Option<String>,
    /// Job name (or `*`) → interrupt `<Status>[:<ms>][@<phase>]` for jobs created from now on.
    pub interrupts: BTreeMap<String, String>,
}

impl JobFailSwitches {
    /// The interrupt spec for a new job: its name, else `*`.
    pub fn interrupt_for(&self, job: &str) -> Option<&str> {
        self.interrupts
            .get(job)
            .or_else(|| self.interrupts.get("*"))
            .map(String::as_str)
    }

    pub fn check(&self) -> Result<(), String> {
        for (job, spec) in &self.interrupts {
            crate::arm::job::model::Interrupt::parse(spec)
                .map_err(|e| format!("interrupts[{job}]: {e}"))?;
        }
        Ok(())
    }
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            phase_ms: PhaseDurations::default(),
            time_scale: 1.0,
            cancel_ms: 300,
            delete_ms: 300,
            fail_when_command_contains: None,
            fail_job_names: Vec::new(),
            fail_message: None,
            interrupts: BTreeMap::new(),
        }
    }
}

impl JobsConfig {
    /// The failure switches set in the config.
    pub fn fail_switches(&self) -> JobFailSwitches {
        JobFailSwitches {
            fail_when_command_contains: self.fail_when_command_contains.clone(),
            fail_job_names: self.fail_job_names.clone(),
            fail_message: self.fail_message.clone(),
            interrupts: self.interrupts.clone(),
        }
    }

    pub fn check(&self) -> Result<(), String> {
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err(format!(
                "time_scale must be a finite number >= 0, got {}",
                self.time_scale
            ));
        }
        self.fail_switches().check()
    }
}

/// Per-phase wall-clock durations (ms), in `PHASES` order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PhaseMsRaw", into = "BTreeMap<String, u64>")]
pub struct PhaseDurations(pub [u64; 6]);

pub const DEFAULT_PHASE_MS: u64 = 300;

impl Default for PhaseDurations {
    fn default() -> Self {
        PhaseDurations([DEFAULT_PHASE_MS; 6])
    }
}

impl PhaseDurations {
    pub fn all(ms: u64) -> Self {
        PhaseDurations([ms; 6])
    }

    pub fn get(&self, phase: &str) -> u64 {
        PHASES
            .iter()
            .position(|p| *p == phase)
            .map_or(0, |i| self.0[i])
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PhaseMsRaw {
    All(u64),
    Each(BTreeMap<String, u64>),
}

impl TryFrom<PhaseMsRaw> for PhaseDurations {
    type Error = String;
    fn try_from(raw: PhaseMsRaw) -> Result<Self, String> {
        match raw {
            PhaseMsRaw::All(ms) => Ok(PhaseDurations::all(ms)),
            PhaseMsRaw::Each(map) => {
                let mut out = PhaseDurations::default();
                for (phase, ms) in map {
                    let i = PHASES.iter().position(|p| *p == phase).ok_or_else(|| {
                        format!(
                            "unknown job phase '{phase}' in phase_ms (expected one of {})",
                            PHASES.join(", ")
                        )
                    })?;
                    out.0[i] = ms;
                }
                Ok(out)
            }
        }
    }
}

impl From<PhaseDurations> for BTreeMap<String, u64> {
    fn from(p: PhaseDurations) -> Self {
        PHASES
            .iter()
            .zip(p.0)
            .map(|(k, v)| (k.to_string(), v))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_ms_accepts_a_number_or_a_map() {
        let c: JobsConfig = serde_json::from_str(r#"{"phase_ms": 50}"#).unwrap();
        assert_eq!(c.phase_ms, PhaseDurations::all(50));
        let c: JobsConfig =
            serde_json::from_str(r#"{"phase_ms": {"Queued": 1000}, "time_scale": 0.01}"#).unwrap();
        assert_eq!(c.phase_ms.get("Queued"), 1000);
        assert_eq!(c.phase_ms.get("Running"), DEFAULT_PHASE_MS);
        assert!(serde_json::from_str::<JobsConfig>(r#"{"phase_ms": {"Bogus": 1}}"#).is_err());
        assert!(serde_json::from_str::<JobsConfig>(r#"{"bogus": 1}"#).is_err());
        let c: JobsConfig =
            serde_json::from_str(r#"{"fail_when_command_contains": "boom"}"#).unwrap();
        assert_eq!(c.fail_when_command_contains.as_deref(), Some("boom"));
    }
}
