//! Fault injection: a seeded, deterministic decision per eligible request, plus an optional
//! queue of scripted one-shot faults.
//!
//! Faults are decided *before* the handler runs, so a faulted write is never applied, except
//! for `drop_after` (apply, then drop the connection) and `lro_fail` (accept the write but let
//! its long-running operation end `Failed`), and `latency` (delay, then run normally).

use std::collections::VecDeque;

use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// 429 + `Retry-After`, ARM error `TooManyRequests`.
    #[serde(rename = "429")]
    Throttle,
    /// 500, ARM error `InternalServerError`.
    #[serde(rename = "500")]
    Internal,
    /// 503 + `Retry-After`, ARM error `ServiceUnavailable`.
    #[serde(rename = "503")]
    Unavailable,
    /// Close the connection without any response; the request is not applied.
    #[serde(rename = "drop")]
    Drop,
    /// Apply the request, then close the connection without sending the response.
    #[serde(rename = "drop_after")]
    DropAfter,
    /// Sleep `latency_ms`, then handle normally.
    #[serde(rename = "latency")]
    Latency,
    /// Accept an LRO-starting write normally, but its operation ends `Failed`.
    /// No effect (and not logged) on other requests.
    #[serde(rename = "lro_fail")]
    LroFail,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Throttle => "429",
            FaultKind::Internal => "500",
            FaultKind::Unavailable => "503",
            FaultKind::Drop => "drop",
            FaultKind::DropAfter => "drop_after",
            FaultKind::Latency => "latency",
            FaultKind::LroFail => "lro_fail",
        }
    }
}

/// A one-shot fault consumed by the next matching request(s), before the random draw.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptedFault {
    pub kind: FaultKind,
    /// Only requests with this op name (e.g. `compute.create`).
    #[serde(default)]
    pub op: Option<String>,
    /// Only requests with this HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// Only requests whose path matches this regex.
    #[serde(default)]
    pub path_regex: Option<String>,
    /// How many matching requests it hits (default 1).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// RNG seed; defaults to the top-level config `seed`.
    pub seed: Option<u64>,
    /// Probability (0..=1) that an eligible request gets a fault.
    pub rate: f64,
    /// Kinds drawn uniformly when a fault hits.
    pub kinds: Vec<FaultKind>,
    pub latency_ms: u64,
    pub retry_after_s: u64,
    /// Only these HTTP methods are eligible (default: all).
    pub only_methods: Option<Vec<String>>,
    /// Only paths matching this regex are eligible (default: all).
    pub paths_regex: Option<String>,
    /// Also inject into the token/discovery endpoints (default false).
    pub include_token: bool,
    /// Scripted one-shot faults, consumed in order by matching requests.
    pub next: Vec<ScriptedFault>,
}

impl Default for FaultConfig {
    fn default() -> Self {
        FaultConfig {
            seed: None,
            rate: 0.0,
            kinds: Vec::new(),
            latency_ms: 200,
            retry_after_s: 1,
            only_methods: None,
            paths_regex: None,
            include_token: false,
            next: Vec::new(),
        }
    }
}

impl FaultConfig {
    pub fn check(&self) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.rate) {
            return Err(format!("rate must be within 0..=1, got {}", self.rate));
        }
        if self.rate > 0.0 && self.kinds.is_empty() {
            return Err("kinds must not be empty when rate > 0".into());
        }
        if let Some(re) = &self.paths_regex {
            Regex::new(re).map_err(|e| format!("paths_regex: {e}"))?;
        }
        for (i, s) in self.next.iter().enumerate() {
            if let Some(re) = &s.path_regex {
                Regex::new(re).map_err(|e| format!("next[{i}].path_regex: {e}"))?;
            }
        }
        Ok(())
    }
}

/// Which family of routes a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Arm,
    Token,
}

/// The request attributes a fault decision looks at.
pub struct RequestInfo<'a> {
    pub scope: Scope,
    pub method: &'a str,
    pub path: &'a str,
    pub op: &'a str,
}

struct Script {
    fault: ScriptedFault,
    path_regex: Option<Regex>,
    remaining: u32,
}

pub struct FaultEngine {
    config: FaultConfig,
    paths: Option<Regex>,
    scripts: VecDeque<Script>,
    rng: SplitMix64,
}

impl FaultEngine {
    pub fn new(config: FaultConfig, default_seed: u64) -> Result<Self, String> {
        config.check()?;
        let paths = config
            .paths_regex
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        let scripts = config
            .next
            .iter()
            .map(|f| {
                Ok(Script {
                    fault: f.clone(),
                    path_regex: f
                        .path_regex
                        .as_deref()
                        .map(Regex::new)
                        .transpose()
                        .map_err(|e| e.to_string())?,
                    remaining: f.times,
                })
            })
            .collect::<Result<VecDeque<_>, String>>()?;
        let rng = SplitMix64(config.seed.unwrap_or(default_seed));
        Ok(FaultEngine {
            config,
            paths,
            scripts,
            rng,
        })
    }

    pub fn config(&self) -> &FaultConfig {
        &self.config
    }

    /// Decides whether this request gets a fault. Deterministic for a given seed and
    /// sequence of eligible requests.
    pub fn decide(&mut self, req: &RequestInfo<'_>) -> Option<FaultKind> {
        if req.scope == Scope::Token && !self.config.include_token {
            return None;
        }
        if let Some(kind) = self.take_scripted(req) {
            return Some(kind);
        }
        if self.config.rate <= 0.0 || self.config.kinds.is_empty() || !self.eligible(req) {
            return None;
        }
        if self.rng.next_f64() >= self.config.rate {
            return None;
        }
        let idx = (self.rng.next_u64() % self.config.kinds.len() as u64) as usize;
        Some(self.config.kinds[idx])
    }

    fn eligible(&self, req: &RequestInfo<'_>) -> bool {
        let method_ok = self
            .config
            .only_methods
            .as_ref()
            .is_none_or(|ms| ms.iter().any(|m| m.eq_ignore_ascii_case(req.method)));
        let path_ok = self.paths.as_ref().is_none_or(|re| re.is_match(req.path));
        method_ok && path_ok
    }

    fn take_scripted(&mut self, req: &RequestInfo<'_>) -> Option<FaultKind> {
        let pos = self.scripts.iter().position(|s| {
            s.fault.op.as_deref().is_none_or(|op| op == req.op)
                && s.fault
                    .method
                    .as_deref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(req.method))
                && s.path_regex.as_ref().is_none_or(|re| re.is_match(req.path))
        })?;
        let script = &mut self.scripts[pos];
        let kind = script.fault.kind;
        script.remaining = script.remaining.saturating_sub(1);
        if script.remaining == 0 {
            self.scripts.remove(pos);
        }
        Some(kind)
    }

    /// Scripted faults not consumed yet.
    pub fn pending_scripts(&self) -> Vec<ScriptedFault> {
        self.scripts
            .iter()
            .map(|s| ScriptedFault {
                times: s.remaining,
                ..s.fault.clone()
            })
            .collect()
    }
}

/// SplitMix64: tiny, portable, deterministic PRNG (stable across crate versions).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info<'a>(op: &'a str) -> RequestInfo<'a> {
        RequestInfo {
            scope: Scope::Arm,
            method: "PUT",
            path: "/subscriptions/x",
            op,
        }
    }

    #[test]
    fn deterministic_for_seed() {
        let cfg = FaultConfig {
            seed: Some(42),
            rate: 0.5,
            kinds: vec![FaultKind::Throttle, FaultKind::Internal],
            ..Default::default()
        };
        let run = |cfg: &FaultConfig| {
            let mut e = FaultEngine::new(cfg.clone(), 0).unwrap();
            (0..50).map(|_| e.decide(&info("x"))).collect::<Vec<_>>()
        };
        assert_eq!(run(&cfg), run(&cfg));
        assert!(run(&cfg).iter().any(Option::is_some));
        assert!(run(&cfg).iter().any(Option::is_none));
    }

    #[test]
    fn scripted_faults_match_and_expire() {
        let cfg = FaultConfig {
            next: vec![ScriptedFault {
                kind: FaultKind::Drop,
                op: Some("a".into()),
                method: None,
                path_regex: None,
                times: 2,
            }],
            ..Default::default()
        };
        let mut e = FaultEngine::new(cfg, 0).unwrap();
        assert_eq!(e.decide(&info("b")), None);
        assert_eq!(e.decide(&info("a")), Some(FaultKind::Drop));
        assert_eq!(e.decide(&info("a")), Some(FaultKind::Drop));
        assert_eq!(e.decide(&info("a")), None);
    }

    #[test]
    fn token_scope_needs_opt_in() {
        let cfg = FaultConfig {
            rate: 1.0,
            kinds: vec![FaultKind::Internal],
            ..Default::default()
        };
        let mut e = FaultEngine::new(cfg, 0).unwrap();
        let tok = RequestInfo {
            scope: Scope::Token,
            method: "POST",
            path: "/t",
            op: "token",
        };
        assert_eq!(e.decide(&tok), None);
        assert_eq!(e.decide(&info("x")), Some(FaultKind::Internal));
    }
}
