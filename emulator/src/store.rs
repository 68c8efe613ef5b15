//! Persistent emulator state: every resource, pending operation and issued token lives in
//! `DIR/state.json`, rewritten atomically (temp file + rename) after each change, so a
//! restart with the same state dir loses nothing. Operation deadlines are absolute wall-clock
//! times; operations that came due while the emulator was down complete on first access.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::arm::compute::model::ComputeRecord;
use crate::arm::lro::Operation;
use crate::util::{now_ms, write_atomic};

pub const STATE_FILE: &str = "state.json";
const FORMAT_VERSION: u32 = 1;

/// Everything persisted. New resource kinds add a `#[serde(default)]` map here.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Data {
    pub version: u32,
    /// Key: lower-cased `sub/rg/ws/name` (see `model::compute_key`).
    pub computes: BTreeMap<String, ComputeRecord>,
    /// Key: operation id.
    pub operations: BTreeMap<String, Operation>,
    /// Access token -> expiry (ms since epoch).
    pub tokens: BTreeMap<String, u64>,
    /// Environment and code versions, jobs and their operations.
    pub training: crate::training::TrainingData,
    /// Data asset containers with their versions. Key: lower-cased `sub/rg/ws/name`.
    pub data_assets: BTreeMap<String, crate::arm::data::DataContainerRecord>,
    /// Deleted computes' sizes (for `computes.recreate_keeps_old_vm_size`) and switch overrides.
    pub compute_extra: crate::arm::compute::model::ComputeExtra,
}

/// Completes due work (long-running operations) at time `now`; returns true if it changed
/// anything.
pub type AdvanceFn = fn(&mut Data, u64) -> bool;

pub struct Store {
    path: PathBuf,
    data: Mutex<Data>,
    advance: AdvanceFn,
}

impl Store {
    pub fn open(dir: &Path, advance: AdvanceFn) -> Result<Store, String> {
        let path = dir.join(STATE_FILE);
        let data = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<Data>(&bytes)
                .map_err(|e| format!("parsing {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Data::default(),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        Ok(Store {
            path,
            data: Mutex::new(data),
            advance,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the current state (after completing due operations).
    pub fn read<R>(&self, f: impl FnOnce(&Data) -> R) -> R {
        let mut data = self.lock();
        if (self.advance)(&mut data, now_ms()) {
            self.persist(&mut data);
        }
        f(&data)
    }

    /// Runs `f` on the current state (after completing due operations) and persists.
    pub fn write<R>(&self, f: impl FnOnce(&mut Data) -> R) -> R {
        let mut data = self.lock();
        (self.advance)(&mut data, now_ms());
        let out = f(&mut data);
        self.persist(&mut data);
        out
    }

    /// Clears resources and operations (tokens stay valid).
    pub fn reset(&self) {
        self.write(|d| {
            d.computes.clear();
            d.operations.clear();
            d.training.clear_resources();
            d.data_assets.clear();
            d.compute_extra.deleted_vm_sizes.clear();
        });
    }

    fn persist(&self, data: &mut Data) {
        data.version = FORMAT_VERSION;
        let result = serde_json::to_vec_pretty(&*data)
            .map_err(|e| e.to_string())
            .and_then(|bytes| write_atomic(&self.path, &bytes).map_err(|e| e.to_string()));
        if let Err(e) = result {
            eprintln!(
                "clara-emulator: failed to persist {}: {e}",
                self.path.display()
            );
        }
    }
}
