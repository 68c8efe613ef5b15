//! Shared application state handed to every handler.

use std::ops::Deref;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::Config;
use crate::faults::FaultEngine;
use crate::log::RequestLog;
use crate::store::Store;

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub config: Config,
    /// e.g. `https://127.0.0.1:43123` (no trailing slash).
    pub base_url: String,
    pub state_dir: PathBuf,
    pub store: Store,
    pub log: RequestLog,
    pub faults: Mutex<FaultEngine>,
    pub rate_limits: RateLimits,
    /// NGC catalog, auth service and object store (`crate::ngc`).
    pub ngc: crate::ngc::NgcState,
    /// Entra ID token signing key (`crate::auth`).
    pub entra: crate::auth::Entra,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultEngine> {
        self.faults.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `host:port` part of the base URL.
    pub fn authority(&self) -> &str {
        self.base_url
            .split_once("://")
            .map_or(self.base_url.as_str(), |(_, rest)| rest)
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Decrementing `x-ms-ratelimit-remaining-subscription-{reads,writes}` counters. They wrap
/// back to the full budget at zero (ARM refills its buckets over time) and never throttle by
/// themselves: throttling is a fault-injection feature.
pub struct RateLimits {
    reads: AtomicI64,
    writes: AtomicI64,
}

pub const READ_BUDGET: i64 = 12000;
pub const WRITE_BUDGET: i64 = 1200;

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            reads: AtomicI64::new(READ_BUDGET),
            writes: AtomicI64::new(WRITE_BUDGET),
        }
    }
}

impl RateLimits {
    /// Consumes one unit and returns the remaining count.
    pub fn take(&self, read: bool) -> i64 {
        let (counter, budget) = if read {
            (&self.reads, READ_BUDGET)
        } else {
            (&self.writes, WRITE_BUDGET)
        };
        let prev = counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| {
                Some(if v <= 1 { budget } else { v - 1 })
            })
            .unwrap_or(budget);
        (prev - 1).max(0)
    }

    pub fn reset(&self) {
        self.reads.store(READ_BUDGET, Ordering::SeqCst);
        self.writes.store(WRITE_BUDGET, Ordering::SeqCst);
    }
}
