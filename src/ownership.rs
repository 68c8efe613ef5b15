//! Ownership of what the provider creates.
//!
//! Every object a create makes carries an owner marker (`clara-owner`: an ARM tag on a
//! cluster, an entry of `properties` on a job or environment version — places Azure keeps
//! and returns). Before the create call the marker is written to a journal in the working
//! directory (`$TF_DATA_DIR`, default `.terraform`, under `clara-journal/<CLI workspace>/`);
//! the entry is removed once the object is seen in state (the next refresh) or destroyed.
//!
//! A create that finds the object already there adopts it only when the object carries the
//! marker of this directory's journal entry for that id: an apply of this same state was
//! interrupted between the create call and Terraform saving the state. Anything else —
//! an object made by another state, by the portal, or by a checkout without this journal —
//! fails with "already exists — import it", naming the id and the import command
//! (as azurerm's `tf.ImportAsExistsError`), and nothing is written to it.

use std::path::{Path, PathBuf};

use clara_framework::{AttrPath, Diagnostics};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Name of the marker (tag key / properties key).
pub const MARKER: &str = "clara-owner";

/// Where a type keeps its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// Top-level ARM `tags` (AmlCompute has no free-form properties).
    Tag,
    /// `properties.properties`, the asset/job property dictionary.
    Property,
}

impl Place {
    /// The marker an ARM body carries, if any.
    pub fn read(self, body: &serde_json::Value) -> Option<String> {
        let v = match self {
            Place::Tag => &body["tags"][MARKER],
            Place::Property => &body["properties"]["properties"][MARKER],
        };
        v.as_str().map(str::to_string)
    }

    /// Stamps `marker` into a request body (keeping what else is there).
    pub fn stamp(self, body: &mut serde_json::Value, marker: &str) {
        let slot = match self {
            Place::Tag => &mut body["tags"],
            Place::Property => &mut body["properties"]["properties"],
        };
        if !slot.is_object() {
            *slot = json!({});
        }
        slot[MARKER] = json!(marker);
    }

    /// Carries the marker (if any) of `existing` into a request body about to replace it,
    /// so an update never strips the object's owner.
    pub fn carry(self, existing: &serde_json::Value, body: &mut serde_json::Value) {
        if let Some(m) = self.read(existing) {
            self.stamp(body, &m);
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Entry {
    id: String,
    marker: String,
    started_at: String,
    /// Written by a refresh that found the object in state but drifted, not by a create.
    #[serde(default)]
    repair: bool,
}

/// The create journal of one Terraform working directory and CLI workspace.
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// The journal of the directory Terraform runs the provider in.
    pub fn here() -> Journal {
        let data = std::env::var_os("TF_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".terraform"));
        let workspace = std::env::var("TF_WORKSPACE")
            .ok()
            .filter(|w| !w.trim().is_empty())
            .or_else(|| {
                std::fs::read_to_string(data.join("environment"))
                    .ok()
                    .map(|w| w.trim().to_string())
                    .filter(|w| !w.is_empty())
            })
            .unwrap_or_else(|| "default".into());
        let workspace: String = workspace
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        Journal::at(&data.join("clara-journal").join(workspace))
    }

    pub fn at(dir: &Path) -> Journal {
        Journal {
            dir: dir.to_path_buf(),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        let key = crate::content_hash(&json!(id.to_ascii_lowercase()));
        self.dir.join(format!("{}.json", &key[..32]))
    }

    /// The marker this directory stamped on `id` in a create not yet seen in state.
    pub fn marker(&self, id: &str) -> Option<String> {
        self.entry(id).map(|e| e.marker)
    }

    /// Whether the pending entry for `id` is a repair of an object in state (see `remember`).
    pub fn is_repair(&self, id: &str) -> bool {
        self.entry(id).is_some_and(|e| e.repair)
    }

    fn entry(&self, id: &str) -> Option<Entry> {
        let text = std::fs::read_to_string(self.path(id)).ok()?;
        let e: Entry = serde_json::from_str(&text).ok()?;
        e.id.eq_ignore_ascii_case(id).then_some(e)
    }

    /// Records, durably, that this directory is about to create `id`; returns the marker to
    /// stamp on it (the earlier one when a create of it was already started here).
    pub fn begin(&self, id: &str) -> Result<String, String> {
        if let Some(m) = self.marker(id) {
            return Ok(m);
        }
        let marker = random_token();
        let entry = Entry {
            id: id.to_string(),
            marker: marker.clone(),
            started_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            repair: false,
        };
        let fail = |e: std::io::Error| {
            format!(
                "Cannot write the create journal in {}: {e}. The provider records each create there before making it, so that an interrupted apply can be resumed.",
                self.dir.display()
            )
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        let path = self.path(id);
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(fail)?;
            f.write_all(&serde_json::to_vec_pretty(&entry).expect("entry serializes"))
                .map_err(fail)?;
            f.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, &path).map_err(fail)?;
        Ok(marker)
    }

    /// Records that `id`, in this state but needing a repair (its content drifted), is
    /// re-created here under the marker it already carries.
    pub fn remember(&self, id: &str, marker: &str) {
        if self.marker(id).is_some() {
            return;
        }
        let entry = Entry {
            id: id.to_string(),
            marker: marker.to_string(),
            started_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            repair: true,
        };
        if std::fs::create_dir_all(&self.dir).is_ok() {
            let _ = std::fs::write(
                self.path(id),
                serde_json::to_vec_pretty(&entry).expect("entry serializes"),
            );
        }
    }

    /// The object is in state (or gone): its entry is no longer needed.
    pub fn settle(&self, id: &str) {
        if self.marker(id).is_some() {
            let _ = std::fs::remove_file(self.path(id));
        }
    }
}

/// 128 random bits as hex (from the OS; time and pid only if that is unavailable).
fn random_token() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_ok();
    if !ok {
        let seed = json!([
            std::process::id(),
            time::OffsetDateTime::now_utc()
                .unix_timestamp_nanos()
                .to_string()
        ]);
        return crate::content_hash(&seed)[..32].to_string();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a create does with an object it found at its id.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// Carries this directory's marker: an interrupted apply of this state made it.
    Ours(String),
    /// Anything else: fail with the import hint.
    Foreign { marker: Option<String> },
}

pub fn classify(journal: &Journal, id: &str, place: Place, existing: &serde_json::Value) -> Found {
    let found = place.read(existing);
    match (journal.marker(id), &found) {
        (Some(mine), Some(theirs)) if mine == *theirs => Found::Ours(mine),
        _ => Found::Foreign { marker: found },
    }
}

/// The "already exists — import it" error.
pub fn already_exists(
    diags: &mut Diagnostics,
    attr: &str,
    kind: &str,
    id: &str,
    marker: Option<&str>,
) {
    let why = match marker {
        Some(_) => "it carries the owner marker of another Terraform state or working directory",
        None => {
            "it carries no owner marker of this provider (made outside Terraform, or by another tool)"
        }
    };
    diags.attr_error(
        AttrPath::root(attr),
        format!("{kind} already exists — import it"),
        format!(
            "{id} already exists in Azure and this state did not create it ({why}). \
             The provider does not take over an object another state or person may manage: \
             a destroy here would remove it there. Nothing was changed.\n\n\
             To manage it with this configuration, import it with the resource address shown above:\n  \
             terraform import <address> '{id}'\n\
             or with an import block:\n  \
             import {{\n    to = <address>\n    id = \"{id}\"\n  }}\n\
             Otherwise give this resource another name."
        ),
    );
}

/// The warning announcing an adoption after an interrupted apply.
pub fn adopted(diags: &mut Diagnostics, attr: &str, kind: &str, id: &str) {
    tracing::warn!(%id, "adopting an object an interrupted apply of this state created");
    diags.attr_warning(
        AttrPath::root(attr),
        format!("Adopted the {kind} an interrupted apply created"),
        format!(
            "{id} was created by an earlier apply from this working directory (it carries this \
             directory's owner marker) that stopped before Terraform saved it to state. It was \
             taken into state instead of being created again."
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_journalled_marker_is_ours() {
        let tmp = std::env::temp_dir().join(format!("clara-journal-test-{}", random_token()));
        let j = Journal::at(&tmp);
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/computes/c";
        assert_eq!(j.marker(id), None);
        let m = j.begin(id).unwrap();
        assert_eq!(m.len(), 32);
        assert_eq!(j.begin(id).unwrap(), m, "a second begin keeps the marker");
        // ARM ids compare without case.
        assert_eq!(j.marker(&id.to_uppercase()), Some(m.clone()));

        let mut body = json!({"tags": {"team": "x"}});
        Place::Tag.stamp(&mut body, &m);
        assert_eq!(body["tags"]["team"], "x");
        assert_eq!(classify(&j, id, Place::Tag, &body), Found::Ours(m.clone()));
        let other = json!({"tags": {MARKER: "someone-else"}});
        assert_eq!(
            classify(&j, id, Place::Tag, &other),
            Found::Foreign {
                marker: Some("someone-else".into())
            }
        );
        assert_eq!(
            classify(&j, id, Place::Tag, &json!({})),
            Found::Foreign { marker: None }
        );
        // Another directory's journal does not know the object.
        let j2 = Journal::at(&tmp.join("other"));
        assert_eq!(
            classify(&j2, id, Place::Tag, &body),
            Found::Foreign {
                marker: Some(m.clone())
            }
        );
        j.settle(id);
        assert_eq!(j.marker(id), None);
        assert_eq!(
            classify(&j, id, Place::Tag, &body),
            Found::Foreign { marker: Some(m) }
        );

        let mut job = json!({"properties": {"command": "x"}});
        Place::Property.stamp(&mut job, "t");
        assert_eq!(Place::Property.read(&job).as_deref(), Some("t"));
        let mut update = json!({"properties": {"command": "x", "tags": {}}});
        Place::Property.carry(&job, &mut update);
        assert_eq!(update["properties"]["properties"][MARKER], "t");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
