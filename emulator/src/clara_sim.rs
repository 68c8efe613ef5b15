//! SIMULATED Clara Train results. Nothing is trained or evaluated: a job whose command runs
//! one of the MMAR scripts (`train_finetune.sh`, `train.sh`, `infer.sh`/`validate.sh`,
//! `export.sh`) gets a deterministic set of MLflow metrics computed from its command line,
//! environment variables, literal inputs and — for inference/export — the job whose output
//! its model input points at. The numbers are plausible, not real.
//!
//! Model (see README "Simulated Clara metrics"):
//! - `q(lr) = exp(-(log10(lr) + 4)^2 / 2)` (best at lr = 1e-4),
//!   `progress(e, lr) = 1 - exp(-0.25 * e * q(lr))`.
//! - Baseline inference with the pre-trained MMAR model: `average_precision = 5/6 ≈ 0.8333`
//!   (the walkthrough's 0.833 on 3 held-out studies), `num_studies = 3`.
//! - Fine-tune (E epochs, learning rate lr): per epoch k `train_loss`, `val_acc`, `val_auc`
//!   (step k); final `best_val_auc`. Its model: `FineTuned { epochs: E, lr }`.
//! - Inference with a fine-tuned model: `average_precision = 5/6 + 1/6 * progress(E, lr)`
//!   (0.870 for 1 epoch, 0.952 for 5, 0.986 for 10 at lr 1e-4).
//! - Training from scratch (`train.sh`): slower curves; inference AP `0.5 + 0.45 * (1 -
//!   exp(-0.02 * E * q))`.
//! - Export: `export_size_mb = 45.07`; the exported model keeps the lineage of its input.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const DEFAULT_EPOCHS: u32 = 10;
pub const DEFAULT_LEARNING_RATE: f64 = 1e-4;
pub const BASELINE_AP: f64 = 5.0 / 6.0;
pub const HELD_OUT_STUDIES: f64 = 3.0;
pub const EXPORT_SIZE_MB: f64 = 45.07;

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Lineage {
    /// The NGC MMAR's pre-trained weights (any input not produced by a simulated job).
    Pretrained,
    FineTuned {
        epochs: u32,
        learning_rate: f64,
    },
    Scratch {
        epochs: u32,
        learning_rate: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimMetric {
    pub key: String,
    pub value: f64,
    pub step: i64,
    /// When it is logged, as a fraction (0..=1) of the job's running phase.
    pub at: f64,
    /// Logged only when the job completes (never for failed or canceled jobs).
    #[serde(rename = "final", default)]
    pub is_final: bool,
}

/// The simulation decided when a job is created (persisted with the job).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaraPlan {
    /// MMAR scripts found in the command, in order (`train_finetune`, `infer`, …).
    pub scripts: Vec<String>,
    /// MLflow params (`epochs`, `learning_rate`, the model source).
    pub params: BTreeMap<String, String>,
    pub metrics: Vec<SimMetric>,
    /// Lineage of the model this job writes (fine-tune, train, export).
    pub produces: Option<Lineage>,
}

/// Substitutes `${{inputs.NAME}}` (literal inputs) and `$VAR`/`${VAR}` (environment
/// variables) in a command.
pub fn expand_command(
    command: &str,
    env: &Map<String, Value>,
    inputs: &Map<String, Value>,
) -> String {
    static INPUT: OnceLock<Regex> = OnceLock::new();
    static VAR: OnceLock<Regex> = OnceLock::new();
    let input_re =
        INPUT.get_or_init(|| Regex::new(r"\$\{\{\s*inputs\.([A-Za-z0-9_]+)\s*\}\}").unwrap());
    let var_re = VAR.get_or_init(|| {
        Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)").unwrap()
    });
    let step = input_re.replace_all(command, |c: &regex::Captures<'_>| {
        let name = &c[1];
        match inputs.get(name) {
            Some(i) if i["jobInputType"] == "literal" => {
                i["value"].as_str().unwrap_or("").to_string()
            }
            _ => c[0].to_string(),
        }
    });
    var_re
        .replace_all(&step, |c: &regex::Captures<'_>| {
            let name = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
            env.get(name)
                .and_then(Value::as_str)
                .map_or_else(|| c[0].to_string(), str::to_string)
        })
        .into_owned()
}

/// The job named by an input URI: `azureml://jobs/<job>/outputs/<out>…` or a datastore path
/// `…/paths/azureml/<job>/<out>…` (where the emulator puts job outputs).
pub fn referenced_job(uri: &str) -> Option<String> {
    static JOBS: OnceLock<Regex> = OnceLock::new();
    static PATHS: OnceLock<Regex> = OnceLock::new();
    let jobs = JOBS.get_or_init(|| Regex::new(r"^azureml://jobs/([^/]+)/outputs/").unwrap());
    let paths = PATHS.get_or_init(|| {
        Regex::new(r"^azureml://(?:.*/)?datastores/[^/]+/paths/azureml/([^/]+)/").unwrap()
    });
    jobs.captures(uri)
        .or_else(|| paths.captures(uri))
        .map(|c| c[1].to_string())
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    FineTune,
    Train,
    Infer,
    Export,
}

fn scripts(command: &str) -> Vec<(String, Script)> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"([A-Za-z0-9_]+)\.sh\b").unwrap());
    let mut out: Vec<(String, Script)> = Vec::new();
    for c in re.captures_iter(command) {
        let name = c[1].to_string();
        let kind = if name.contains("finetune") {
            Script::FineTune
        } else if name.starts_with("train") {
            Script::Train
        } else if name.starts_with("infer") || name.starts_with("validate") {
            Script::Infer
        } else if name.starts_with("export") {
            Script::Export
        } else {
            continue;
        };
        if !out.iter().any(|(n, _)| *n == name) {
            out.push((name, kind));
        }
    }
    out
}

/// First value of a `--name N` / `--name=N` / `name=N` / `MMAR_NAME=N` flag in the command.
fn flag(command: &str, names: &[&str]) -> Option<String> {
    let alts = names.join("|");
    let re = Regex::new(&format!(
        r#"(?i)(?:^|[\s;&|'"(])(?:--)?(?:mmar_)?(?:{alts})(?:=|\s+)([0-9][0-9.eE+-]*)"#
    ))
    .ok()?;
    re.captures(command).map(|c| c[1].to_string())
}

fn from_env_or_inputs(
    env: &Map<String, Value>,
    inputs: &Map<String, Value>,
    env_names: &[&str],
    input_names: &[&str],
) -> Option<String> {
    env_names
        .iter()
        .find_map(|n| env.get(*n).and_then(Value::as_str).map(str::to_string))
        .or_else(|| {
            input_names.iter().find_map(|n| {
                inputs
                    .get(*n)
                    .filter(|i| i["jobInputType"] == "literal")
                    .and_then(|i| i["value"].as_str())
                    .map(str::to_string)
            })
        })
}

/// Builds the plan for a job, or `None` when its command runs no Clara script.
/// `produced_by(job)` returns the lineage of the model a referenced job writes.
pub fn plan(
    command: &str,
    env: &Map<String, Value>,
    inputs: &Map<String, Value>,
    produced_by: &dyn Fn(&str) -> Option<Lineage>,
) -> Option<ClaraPlan> {
    let expanded = expand_command(command, env, inputs);
    let found = scripts(&expanded);
    if found.is_empty() {
        return None;
    }
    let epochs: u32 = flag(&expanded, &["epochs", "num_epochs"])
        .or_else(|| {
            from_env_or_inputs(
                env,
                inputs,
                &["MMAR_EPOCHS", "EPOCHS", "CLARA_EPOCHS"],
                &["epochs", "num_epochs"],
            )
        })
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(DEFAULT_EPOCHS, |e| e.round().clamp(1.0, 10_000.0) as u32);
    let lr: f64 = flag(&expanded, &["learning_rate", "lr"])
        .or_else(|| {
            from_env_or_inputs(
                env,
                inputs,
                &[
                    "MMAR_LEARNING_RATE",
                    "LEARNING_RATE",
                    "LR",
                    "CLARA_LEARNING_RATE",
                ],
                &["learning_rate", "lr"],
            )
        })
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(DEFAULT_LEARNING_RATE);

    // The model input: prefer an input called `model`, then the others by name.
    let mut names: Vec<&String> = inputs.keys().collect();
    names.sort_by_key(|n| (n.as_str() != "model", n.to_string()));
    let (mut model, source) = names
        .iter()
        .filter_map(|n| {
            let uri = inputs[*n]["uri"].as_str()?;
            let job = referenced_job(uri)?;
            produced_by(&job).map(|l| (l, format!("job:{job}")))
        })
        .next()
        .unwrap_or((Lineage::Pretrained, "pretrained".to_string()));

    let mut out = ClaraPlan {
        scripts: found.iter().map(|(n, _)| n.clone()).collect(),
        ..ClaraPlan::default()
    };
    out.params.insert("model_source".into(), source);
    let share = 1.0 / found.len() as f64;
    for (i, (_, kind)) in found.iter().enumerate() {
        let start = i as f64 * share;
        match kind {
            Script::FineTune | Script::Train => {
                out.params.insert("epochs".into(), epochs.to_string());
                out.params.insert("learning_rate".into(), format_lr(lr));
                let scratch = *kind == Script::Train;
                let base = match (&model, scratch) {
                    (Lineage::FineTuned { epochs, .. }, false) => *epochs,
                    _ => 0,
                };
                let (series, best) = training_curves(epochs, base, lr, scratch);
                for (k, (loss, acc, auc)) in series.into_iter().enumerate() {
                    let step = (k + 1) as i64;
                    let at = start + share * step as f64 / f64::from(epochs);
                    for (key, value) in [("train_loss", loss), ("val_acc", acc), ("val_auc", auc)] {
                        out.metrics.push(metric(key, value, step, at, false));
                    }
                }
                out.metrics
                    .push(metric("best_val_auc", best, 0, start + share, true));
                model = if scratch {
                    Lineage::Scratch {
                        epochs,
                        learning_rate: lr,
                    }
                } else {
                    Lineage::FineTuned {
                        epochs: base + epochs,
                        learning_rate: lr,
                    }
                };
                out.produces = Some(model.clone());
            }
            Script::Infer => {
                let at = start + share;
                out.metrics.push(metric(
                    "average_precision",
                    average_precision(&model),
                    0,
                    at,
                    true,
                ));
                out.metrics
                    .push(metric("num_studies", HELD_OUT_STUDIES, 0, at, true));
            }
            Script::Export => {
                out.metrics.push(metric(
                    "export_size_mb",
                    EXPORT_SIZE_MB,
                    0,
                    start + share,
                    true,
                ));
                out.produces = Some(model.clone());
            }
        }
    }
    Some(out)
}

fn metric(key: &str, value: f64, step: i64, at: f64, is_final: bool) -> SimMetric {
    SimMetric {
        key: key.to_string(),
        value: round6(value),
        step,
        at: at.clamp(0.0, 1.0),
        is_final,
    }
}

fn format_lr(lr: f64) -> String {
    let s = format!("{lr}");
    if s.len() > 8 { format!("{lr:e}") } else { s }
}

fn round6(v: f64) -> f64 {
    (v * 1e6).round() / 1e6
}

/// Learning-rate quality: 1 at 1e-4, 0.61 at 1e-3/1e-5, 0.14 at 1e-2.
pub fn lr_quality(lr: f64) -> f64 {
    if !(lr.is_finite() && lr > 0.0) {
        return 0.01;
    }
    let d = lr.log10() + 4.0;
    (-(d * d) / 2.0).exp()
}

pub fn progress(epochs: u32, lr: f64) -> f64 {
    1.0 - (-0.25 * f64::from(epochs) * lr_quality(lr)).exp()
}

/// Simulated average precision of a model on the 3 held-out studies.
pub fn average_precision(model: &Lineage) -> f64 {
    let ap = match model {
        Lineage::Pretrained => BASELINE_AP,
        Lineage::FineTuned {
            epochs,
            learning_rate,
        } => BASELINE_AP + (1.0 - BASELINE_AP) * progress(*epochs, *learning_rate),
        Lineage::Scratch {
            epochs,
            learning_rate,
        } => 0.5 + 0.45 * (1.0 - (-0.02 * f64::from(*epochs) * lr_quality(*learning_rate)).exp()),
    };
    (ap * 1e4).round() / 1e4
}

/// Deterministic jitter in [-1, 1].
fn jitter(k: u32, salt: u32) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in k.to_le_bytes().into_iter().chain(salt.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (h % 2001) as f64 / 1000.0 - 1.0
}

/// Per-epoch (train_loss, val_acc, val_auc) and the best val_auc.
fn training_curves(epochs: u32, base: u32, lr: f64, scratch: bool) -> (Vec<(f64, f64, f64)>, f64) {
    let q = lr_quality(lr);
    let rate = if scratch { 0.02 } else { 0.25 };
    let (acc0, auc0) = if scratch { (0.5, 0.5) } else { (0.74, 0.84) };
    let mut series = Vec::new();
    let mut best: f64 = 0.0;
    for k in 1..=epochs {
        let e = f64::from(base + k);
        let p = 1.0 - (-rate * e * q).exp();
        let loss = 0.08 + 0.6 * (-1.2 * rate * e * q).exp() + 0.01 * jitter(k, 1);
        let acc = (acc0 + (0.985 - acc0) * p + 0.004 * jitter(k, 2)).min(0.995);
        let auc = (auc0 + (0.995 - auc0) * p + 0.003 * jitter(k, 3)).min(0.999);
        best = best.max(auc);
        series.push((loss.max(0.0), acc, auc));
    }
    (series, best)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn none(_: &str) -> Option<Lineage> {
        None
    }

    #[test]
    fn non_clara_commands_have_no_plan() {
        assert!(plan("python train.py", &Map::new(), &Map::new(), &none).is_none());
    }

    #[test]
    fn baseline_inference_is_the_walkthrough_number() {
        let p = plan("bash commands/infer.sh", &Map::new(), &Map::new(), &none).unwrap();
        let ap = p
            .metrics
            .iter()
            .find(|m| m.key == "average_precision")
            .unwrap();
        assert!((ap.value - 0.8333).abs() < 1e-9 && ap.is_final);
        assert_eq!(p.params["model_source"], "pretrained");
    }

    #[test]
    fn epochs_and_lr_come_from_command_env_or_inputs() {
        let inputs = obj(json!({"epochs": {"jobInputType": "literal", "value": "4"}}));
        let p = plan(
            "cd mmar && ./commands/train_finetune.sh --epochs ${{inputs.epochs}}",
            &Map::new(),
            &inputs,
            &none,
        )
        .unwrap();
        assert_eq!(p.params["epochs"], "4");
        assert_eq!(p.metrics.iter().filter(|m| m.key == "val_auc").count(), 4);
        let env = obj(json!({"MMAR_EPOCHS": "7", "MMAR_LEARNING_RATE": "0.001"}));
        let p = plan("commands/train_finetune.sh", &env, &Map::new(), &none).unwrap();
        assert_eq!(
            (
                p.params["epochs"].as_str(),
                p.params["learning_rate"].as_str()
            ),
            ("7", "0.001")
        );
        let p = plan(
            "MMAR_EPOCHS=3 commands/train_finetune.sh --set learning_rate=0.0002",
            &Map::new(),
            &Map::new(),
            &none,
        )
        .unwrap();
        assert_eq!(
            (
                p.params["epochs"].as_str(),
                p.params["learning_rate"].as_str()
            ),
            ("3", "0.0002")
        );
        assert_eq!(
            p.produces,
            Some(Lineage::FineTuned {
                epochs: 3,
                learning_rate: 0.0002
            })
        );
    }

    #[test]
    fn fine_tuned_inference_beats_baseline_and_grows_with_epochs() {
        let ap = |e| {
            average_precision(&Lineage::FineTuned {
                epochs: e,
                learning_rate: 1e-4,
            })
        };
        assert!(ap(1) > BASELINE_AP && ap(1) < ap(5) && ap(5) < ap(10) && ap(10) <= 1.0);
        assert!((ap(10) - 0.9865).abs() < 1e-3, "{}", ap(10));
        let lineage = |job: &str| {
            (job == "ft").then_some(Lineage::FineTuned {
                epochs: 5,
                learning_rate: 1e-4,
            })
        };
        let inputs = obj(
            json!({"model": {"jobInputType": "custom_model", "uri": "azureml://jobs/ft/outputs/model"}}),
        );
        let p = plan("commands/infer.sh", &Map::new(), &inputs, &lineage).unwrap();
        let got = p
            .metrics
            .iter()
            .find(|m| m.key == "average_precision")
            .unwrap()
            .value;
        assert_eq!(got, ap(5));
        // through an export
        let inputs = obj(
            json!({"m": {"jobInputType": "uri_folder", "uri": "azureml://datastores/workspaceblobstore/paths/azureml/ft/model/"}}),
        );
        let p = plan("commands/export.sh", &Map::new(), &inputs, &lineage).unwrap();
        assert_eq!(
            p.produces,
            Some(Lineage::FineTuned {
                epochs: 5,
                learning_rate: 1e-4
            })
        );
    }

    #[test]
    fn curves_are_deterministic_and_sane() {
        let a = plan(
            "train_finetune.sh --epochs 5",
            &Map::new(),
            &Map::new(),
            &none,
        )
        .unwrap();
        let b = plan(
            "train_finetune.sh --epochs=5",
            &Map::new(),
            &Map::new(),
            &none,
        )
        .unwrap();
        assert_eq!(a.metrics, b.metrics);
        let loss: Vec<f64> = a
            .metrics
            .iter()
            .filter(|m| m.key == "train_loss")
            .map(|m| m.value)
            .collect();
        assert!(loss.first() > loss.last());
        assert!(a.metrics.iter().all(|m| (0.0..=1.0).contains(&m.at)));
    }

    #[test]
    fn referenced_jobs() {
        assert_eq!(
            referenced_job("azureml://jobs/ft-1/outputs/model").as_deref(),
            Some("ft-1")
        );
        assert_eq!(
            referenced_job("azureml://datastores/workspaceblobstore/paths/azureml/ft-1/model/")
                .as_deref(),
            Some("ft-1")
        );
        assert_eq!(
            referenced_job("azureml://datastores/workspaceblobstore/paths/LocalUpload/x/"),
            None
        );
    }
}
