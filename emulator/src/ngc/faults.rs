//! NGC fault switches: deterministic, scripted faults for the NGC API, the auth service and the
//! object store. Body faults (`body_drop`, `corrupt`, `stall`) act on streamed download bodies;
//! `status` and `drop` answer before the handler runs. Each fault hits `times` matching requests
//! (default 1: "the next download of X"; 0 = every matching request) and is then gone.

use std::sync::Mutex;

use regex::Regex;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NgcFaultKind {
    /// Close the connection after `after_bytes` bytes of the response body.
    BodyDrop,
    /// Flip the byte at file offset `offset` (if the response covers it).
    Corrupt,
    /// Pause `stall_ms` after `after_bytes` bytes of the body, then go on.
    Stall,
    /// Answer `status` (default 503, with `Retry-After` for 429/503) instead of the handler.
    Status,
    /// Close the connection without any response.
    Drop,
}

impl NgcFaultKind {
    pub fn is_body(self) -> bool {
        matches!(
            self,
            NgcFaultKind::BodyDrop | NgcFaultKind::Corrupt | NgcFaultKind::Stall
        )
    }

    /// Value of the request log's `fault` field.
    pub fn label(self) -> &'static str {
        match self {
            NgcFaultKind::BodyDrop => "ngc.body_drop",
            NgcFaultKind::Corrupt => "ngc.corrupt",
            NgcFaultKind::Stall => "ngc.stall",
            NgcFaultKind::Status => "ngc.status",
            NgcFaultKind::Drop => "ngc.drop",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NgcFault {
    pub kind: NgcFaultKind,
    /// Only requests of this op (`ngc.download`, `ngc.zip`, `ngc.files`, `ngc.token`, …).
    /// Body faults default to the streamed ops (`ngc.download`, `ngc.zip`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Only this asset: `org/team/name` or `org/name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
    /// Only this file of the asset (path as listed in the manifest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Only request paths matching this regex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_regex: Option<String>,
    /// `body_drop` / `stall`: bytes of the response body sent before the fault (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_bytes: Option<u64>,
    /// `corrupt`: absolute offset in the file of the byte to flip (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// `stall`: pause length (default 5000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_ms: Option<u64>,
    /// `status`: HTTP status (default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `status` 429/503: `Retry-After` seconds (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// Matching requests hit (default 1; 0 = unlimited).
    #[serde(default = "one")]
    pub times: u32,
}

fn one() -> u32 {
    1
}

impl NgcFault {
    pub fn check(&self) -> Result<(), String> {
        if let Some(re) = &self.path_regex {
            Regex::new(re).map_err(|e| format!("path_regex: {e}"))?;
        }
        if let Some(s) = self.status
            && !(400..=599).contains(&s)
        {
            return Err(format!("status must be 400..=599, got {s}"));
        }
        Ok(())
    }
}

/// What a request offers to the fault matcher.
pub struct Target<'a> {
    pub op: &'a str,
    pub path: &'a str,
    /// `org[/team]/name` of the asset, when the request is about one.
    pub asset: Option<&'a str>,
    pub file: Option<&'a str>,
}

struct Armed {
    fault: NgcFault,
    regex: Option<Regex>,
    /// `None`: unlimited.
    remaining: Option<u32>,
}

impl Armed {
    fn matches(&self, t: &Target<'_>) -> bool {
        let f = &self.fault;
        let op_ok = match &f.op {
            Some(op) => op == t.op,
            None if f.kind.is_body() => t.op == "ngc.download" || t.op == "ngc.zip",
            None => true,
        };
        op_ok
            && f.asset.as_deref().is_none_or(|a| Some(a) == t.asset)
            && f.file.as_deref().is_none_or(|p| Some(p) == t.file)
            && self.regex.as_ref().is_none_or(|re| re.is_match(t.path))
    }
}

#[derive(Default)]
pub struct NgcFaults {
    armed: Mutex<Vec<Armed>>,
}

impl NgcFaults {
    pub fn new(faults: &[NgcFault]) -> Result<NgcFaults, String> {
        let me = NgcFaults::default();
        me.replace(faults.to_vec())?;
        Ok(me)
    }

    fn arm(f: NgcFault) -> Result<Armed, String> {
        f.check()?;
        let regex = f
            .path_regex
            .as_deref()
            .map(Regex::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        let remaining = (f.times > 0).then_some(f.times);
        Ok(Armed {
            fault: f,
            regex,
            remaining,
        })
    }

    pub fn replace(&self, faults: Vec<NgcFault>) -> Result<(), String> {
        let armed = faults
            .into_iter()
            .map(Self::arm)
            .collect::<Result<Vec<_>, _>>()?;
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = armed;
        Ok(())
    }

    pub fn push(&self, fault: NgcFault) -> Result<(), String> {
        let a = Self::arm(fault)?;
        self.armed.lock().unwrap_or_else(|e| e.into_inner()).push(a);
        Ok(())
    }

    /// Faults still armed (with their remaining counts; `times: 0` = unlimited).
    pub fn pending(&self) -> Vec<NgcFault> {
        self.armed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|a| NgcFault {
                times: a.remaining.unwrap_or(0),
                ..a.fault.clone()
            })
            .collect()
    }

    /// Takes the first armed fault that matches and satisfies `accept`.
    pub fn take(&self, t: &Target<'_>, accept: impl Fn(&NgcFault) -> bool) -> Option<NgcFault> {
        let mut armed = self.armed.lock().unwrap_or_else(|e| e.into_inner());
        let pos = armed
            .iter()
            .position(|a| a.matches(t) && accept(&a.fault))?;
        let fault = armed[pos].fault.clone();
        if let Some(n) = armed[pos].remaining.as_mut() {
            *n -= 1;
            if *n == 0 {
                armed.remove(pos);
            }
        }
        Some(fault)
    }

    /// A pre-handler fault (`status` / `drop`) for this request, if any.
    pub fn take_early(&self, t: &Target<'_>) -> Option<NgcFault> {
        self.take(t, |f| !f.kind.is_body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(kind: NgcFaultKind, times: u32) -> NgcFault {
        NgcFault {
            kind,
            op: None,
            asset: None,
            file: Some("a.bin".into()),
            path_regex: None,
            after_bytes: None,
            offset: None,
            stall_ms: None,
            status: None,
            retry_after_s: None,
            times,
        }
    }

    #[test]
    fn one_shot_and_unlimited() {
        let f = NgcFaults::new(&[fault(NgcFaultKind::BodyDrop, 1)]).unwrap();
        let t = Target {
            op: "ngc.download",
            path: "/x",
            asset: Some("o/n"),
            file: Some("a.bin"),
        };
        let other = Target {
            file: Some("b.bin"),
            ..t
        };
        assert!(f.take(&other, |_| true).is_none());
        assert!(f.take_early(&t).is_none());
        assert!(f.take(&t, |_| true).is_some());
        assert!(f.take(&t, |_| true).is_none());
        f.push(fault(NgcFaultKind::Status, 0)).unwrap();
        let list = Target {
            op: "ngc.files",
            ..t
        };
        for _ in 0..3 {
            assert!(f.take_early(&list).is_some());
        }
        assert_eq!(f.pending().len(), 1);
    }
}
