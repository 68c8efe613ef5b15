//! Versioned assets shared by environments (`environment.rs`) and code (`code.rs`):
//! `{WS}/{segment}/{name}/versions/{version}` PUT/GET/DELETE, version lists and the implicit
//! container (`{WS}/{segment}/{name}`, with `latestVersion`/`nextVersion`).
//!
//! PUT is synchronous: 201 for a new version, 200 for an existing one. Content fields are
//! immutable: a PUT whose content differs from the stored version gets 409 (what
//! azure-ai-ml's retry-with-`nextVersion` logic expects); only the kind's mutable fields
//! (description, tags, properties, isArchived, …) may change.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::response::Response;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::{ArmError, ArmResult};
use super::{PROVIDER, ReqCtx, parse_json_object, resolve_workspace, respond, violations_error};
use crate::app::AppState;
use crate::schema::{Mode, catalog};
use crate::training::TrainingData;
use crate::util::{now_ms, rfc3339};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssetVersion {
    pub subscription: String,
    pub resource_group: String,
    pub workspace: String,
    pub name: String,
    pub version: String,
    /// `properties` as sent, with defaults applied.
    pub properties: Value,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub created_by: String,
}

/// Store key of a version (ARM names are case-insensitive).
pub fn version_key(sub: &str, rg: &str, ws: &str, name: &str, version: &str) -> String {
    format!("{sub}/{rg}/{ws}/{name}/{version}").to_ascii_lowercase()
}

fn name_prefix(sub: &str, rg: &str, ws: &str, name: &str) -> String {
    format!("{sub}/{rg}/{ws}/{name}/").to_ascii_lowercase()
}

fn ws_prefix(sub: &str, rg: &str, ws: &str) -> String {
    format!("{sub}/{rg}/{ws}/").to_ascii_lowercase()
}

/// What differs between environments and codes.
pub struct AssetKind {
    /// Path segment, e.g. `environments`.
    pub segment: &'static str,
    /// Catalog model of the PUT body, e.g. `EnvironmentVersion`.
    pub model: &'static str,
    /// For messages, e.g. `Environment`.
    pub label: &'static str,
    /// Members of `properties` that a PUT on an existing version may change.
    pub mutable: &'static [&'static str],
    /// Business rules + defaults for a schema-valid `properties` object.
    pub normalize: fn(&Value) -> ArmResult<Value>,
    /// The 409 for a changed immutable member (`field` is its JSON path).
    pub conflict: fn(&AssetVersion, &str) -> ArmError,
    /// Extra read-only members of a rendered version's `properties`.
    pub render_extra: fn(&mut Map<String, Value>),
    pub map: fn(&TrainingData) -> &BTreeMap<String, AssetVersion>,
    pub map_mut: fn(&mut TrainingData) -> &mut BTreeMap<String, AssetVersion>,
}

#[derive(Debug, Deserialize)]
pub struct VersionPath {
    pub sub: String,
    pub rg: String,
    pub ws: String,
    pub name: String,
    pub version: String,
}

impl VersionPath {
    pub fn key(&self) -> String {
        version_key(&self.sub, &self.rg, &self.ws, &self.name, &self.version)
    }
}

#[derive(Debug, Deserialize)]
pub struct NamePath {
    pub sub: String,
    pub rg: String,
    pub ws: String,
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct WsPath {
    pub sub: String,
    pub rg: String,
    pub ws: String,
}

/// MFE names: `^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$`.
pub fn check_name(name: &str, target: &str) -> ArmResult<()> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$").unwrap());
    if re.is_match(name) {
        Ok(())
    } else {
        Err(ArmError::bad_request(format!(
            "The name '{name}' is invalid. It must start with a letter or digit and contain only letters, digits, '-' and '_' (at most 255 characters)."
        ))
        .with_target(target))
    }
}

impl AssetKind {
    fn versions<'a>(
        &self,
        d: &'a TrainingData,
        sub: &str,
        rg: &str,
        ws: &str,
        name: &str,
    ) -> Vec<&'a AssetVersion> {
        let prefix = name_prefix(sub, rg, ws, name);
        (self.map)(d)
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v)
            .collect()
    }

    pub fn version_id(&self, r: &AssetVersion) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER}/workspaces/{}/{}/{}/versions/{}",
            r.subscription, r.resource_group, r.workspace, self.segment, r.name, r.version
        )
    }

    /// GET body of a version: `name` is the version, as in ARM.
    pub fn render(&self, r: &AssetVersion) -> Value {
        let mut props = r.properties.as_object().cloned().unwrap_or_default();
        props.entry("tags").or_insert_with(|| json!({}));
        props.entry("properties").or_insert_with(|| json!({}));
        props.entry("description").or_insert(Value::Null);
        props.insert("provisioningState".into(), json!("Succeeded"));
        (self.render_extra)(&mut props);
        json!({
            "id": self.version_id(r),
            "name": r.version,
            "type": format!("{PROVIDER}/workspaces/{}/versions", self.segment),
            "systemData": system_data(r.created_ms, r.modified_ms, &r.created_by),
            "properties": props,
        })
    }

    fn render_container(&self, versions: &[&AssetVersion]) -> Option<Value> {
        let first = versions.first()?;
        let created = versions.iter().map(|v| v.created_ms).min().unwrap_or(0);
        let modified = versions.iter().map(|v| v.modified_ms).max().unwrap_or(0);
        Some(json!({
            "id": format!(
                "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER}/workspaces/{}/{}/{}",
                first.subscription, first.resource_group, first.workspace, self.segment, first.name
            ),
            "name": first.name,
            "type": format!("{PROVIDER}/workspaces/{}", self.segment),
            "systemData": system_data(created, modified, &first.created_by),
            "properties": {
                "description": Value::Null,
                "tags": {},
                "properties": {},
                "isArchived": false,
                "latestVersion": latest_version(versions),
                "nextVersion": next_version(versions),
                "provisioningState": "Succeeded",
            },
        }))
    }

    /// `GET {WS}/{segment}/{name}`: 200 container, or 404 when it has no version.
    pub fn get_container(&self, app: &AppState, p: &NamePath) -> ArmResult<Response> {
        resolve_workspace(app, &p.sub, &p.rg, &p.ws)?;
        let body = app.store.read(|d| {
            self.render_container(&self.versions(&d.training, &p.sub, &p.rg, &p.ws, &p.name))
        });
        body.map(|b| respond(StatusCode::OK, Some(b), &[]))
            .ok_or_else(|| self.not_found(&p.name, None, &p.ws))
    }

    /// `GET {WS}/{segment}`: every container (no paging).
    pub fn list_containers(&self, app: &AppState, p: &WsPath, ctx: &ReqCtx) -> ArmResult<Response> {
        resolve_workspace(app, &p.sub, &p.rg, &p.ws)?;
        let view = list_view(ctx)?;
        let prefix = ws_prefix(&p.sub, &p.rg, &p.ws);
        let value: Vec<Value> = app.store.read(|d| {
            let mut by_name: BTreeMap<String, Vec<&AssetVersion>> = BTreeMap::new();
            for (k, v) in (self.map)(&d.training) {
                if k.starts_with(&prefix) {
                    by_name
                        .entry(v.name.to_ascii_lowercase())
                        .or_default()
                        .push(v);
                }
            }
            by_name
                .values()
                .filter(|_| view != ListView::ArchivedOnly)
                .filter_map(|vs| self.render_container(vs))
                .collect()
        });
        Ok(respond(
            StatusCode::OK,
            Some(json!({ "value": value })),
            &[],
        ))
    }

    /// `GET {WS}/{segment}/{name}/versions[?listViewType&$top&$orderBy]`, newest first.
    /// `filter` narrows further (e.g. code `hash`).
    pub fn list_versions(
        &self,
        app: &AppState,
        p: &NamePath,
        ctx: &ReqCtx,
        filter: &dyn Fn(&AssetVersion) -> bool,
    ) -> ArmResult<Response> {
        resolve_workspace(app, &p.sub, &p.rg, &p.ws)?;
        let view = list_view(ctx)?;
        let top = match ctx.param("$top") {
            None => None,
            Some(t) => Some(t.parse::<usize>().map_err(|_| {
                ArmError::bad_request(format!("The value '{t}' is not valid for '$top'."))
                    .with_target("$top")
            })?),
        };
        let value: Vec<Value> = app.store.read(|d| {
            let mut vs = self.versions(&d.training, &p.sub, &p.rg, &p.ws, &p.name);
            vs.retain(|v| view.admits(is_archived(v)) && filter(v));
            vs.sort_by(|a, b| {
                b.created_ms
                    .cmp(&a.created_ms)
                    .then_with(|| b.version.cmp(&a.version))
            });
            vs.iter()
                .take(top.unwrap_or(usize::MAX))
                .map(|v| self.render(v))
                .collect()
        });
        Ok(respond(
            StatusCode::OK,
            Some(json!({ "value": value })),
            &[],
        ))
    }

    pub fn get_version(&self, app: &AppState, p: &VersionPath) -> ArmResult<Response> {
        resolve_workspace(app, &p.sub, &p.rg, &p.ws)?;
        let body = app.store.read(|d| {
            (self.map)(&d.training)
                .get(&p.key())
                .map(|r| self.render(r))
        });
        body.map(|b| respond(StatusCode::OK, Some(b), &[]))
            .ok_or_else(|| self.not_found(&p.name, Some(&p.version), &p.ws))
    }

    /// DELETE: 200 when it existed, 204 otherwise.
    pub fn delete_version(&self, app: &AppState, p: &VersionPath) -> ArmResult<Response> {
        resolve_workspace(app, &p.sub, &p.rg, &p.ws)?;
        let existed = app
            .store
            .write(|d| (self.map_mut)(&mut d.training).remove(&p.key()).is_some());
        Ok(if existed {
            respond(StatusCode::OK, None, &[])
        } else {
            respond(StatusCode::NO_CONTENT, None, &[])
        })
    }

    /// PUT: 201 new; 200 identical content (mutable fields applied); 409 changed content.
    pub fn put_version(&self, app: &AppState, p: &VersionPath, body: &[u8]) -> ArmResult<Response> {
        resolve_workspace(app, &p.sub, &p.rg, &p.ws)?;
        check_name(&p.name, "name")?;
        if p.version.trim().is_empty() {
            return Err(
                ArmError::bad_request("The version must not be empty.").with_target("version")
            );
        }
        let body = parse_json_object(&axum::body::Bytes::copy_from_slice(body))?;
        violations_error(catalog().validate(self.model, &body, Mode::Create, ""))?;
        let props = (self.normalize)(&body["properties"])?;
        let now = now_ms();
        let key = p.key();
        app.store.write(|d| {
            let map = (self.map_mut)(&mut d.training);
            match map.get_mut(&key) {
                None => {
                    let rec = AssetVersion {
                        subscription: p.sub.clone(),
                        resource_group: p.rg.clone(),
                        workspace: p.ws.clone(),
                        name: p.name.clone(),
                        version: p.version.clone(),
                        properties: props,
                        created_ms: now,
                        modified_ms: now,
                        created_by: app.config.client_id.clone(),
                    };
                    let out = self.render(&rec);
                    map.insert(key.clone(), rec);
                    Ok(respond(StatusCode::CREATED, Some(out), &[]))
                }
                Some(existing) => {
                    let old = strip(&existing.properties, self.mutable);
                    let new = strip(&props, self.mutable);
                    if let Some(field) = first_difference(&old, &new, "properties") {
                        return Err((self.conflict)(existing, &field));
                    }
                    if existing.properties != props {
                        existing.properties = props;
                        existing.modified_ms = now;
                    }
                    Ok(respond(StatusCode::OK, Some(self.render(existing)), &[]))
                }
            }
        })
    }

    pub fn not_found(&self, name: &str, version: Option<&str>, ws: &str) -> ArmError {
        let what = match version {
            Some(v) => format!("{} '{name}' version '{v}'", self.label),
            None => format!("{} container '{name}'", self.label),
        };
        ArmError::not_found(
            "ResourceNotFound",
            format!("{what} was not found in workspace '{ws}'."),
        )
    }

    /// Whether a version exists (for job references).
    pub fn exists(
        &self,
        d: &TrainingData,
        sub: &str,
        rg: &str,
        ws: &str,
        name: &str,
        version: &str,
    ) -> bool {
        (self.map)(d).contains_key(&version_key(sub, rg, ws, name, version))
    }

    /// The latest version of `name`, if any.
    pub fn latest(
        &self,
        d: &TrainingData,
        sub: &str,
        rg: &str,
        ws: &str,
        name: &str,
    ) -> Option<String> {
        let vs = self.versions(d, sub, rg, ws, name);
        if vs.is_empty() {
            None
        } else {
            latest_version(&vs)
        }
    }
}

fn is_archived(v: &AssetVersion) -> bool {
    v.properties["isArchived"].as_bool().unwrap_or(false)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListView {
    ActiveOnly,
    ArchivedOnly,
    All,
}

impl ListView {
    pub fn admits(self, archived: bool) -> bool {
        match self {
            ListView::ActiveOnly => !archived,
            ListView::ArchivedOnly => archived,
            ListView::All => true,
        }
    }
}

/// `listViewType` query parameter (default `ActiveOnly`).
pub fn list_view(ctx: &ReqCtx) -> ArmResult<ListView> {
    match ctx.param("listViewType") {
        None | Some("ActiveOnly") => Ok(ListView::ActiveOnly),
        Some("ArchivedOnly") => Ok(ListView::ArchivedOnly),
        Some("All") => Ok(ListView::All),
        Some(other) => Err(ArmError::bad_request(format!(
            "The value '{other}' is not valid for 'listViewType'. Allowed values: ActiveOnly, ArchivedOnly, All."
        ))
        .with_target("listViewType")),
    }
}

/// Numeric max when every version is an integer, else the most recently created.
fn latest_version(versions: &[&AssetVersion]) -> Option<String> {
    let numeric: Option<Vec<u64>> = versions.iter().map(|v| v.version.parse().ok()).collect();
    match numeric {
        Some(nums) => nums.into_iter().max().map(|n| n.to_string()),
        None => versions
            .iter()
            .max_by_key(|v| v.created_ms)
            .map(|v| v.version.clone()),
    }
}

/// One more than the largest integer version ("1" when there is none).
fn next_version(versions: &[&AssetVersion]) -> String {
    let max = versions
        .iter()
        .filter_map(|v| v.version.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    (max + 1).to_string()
}

pub fn system_data(created_ms: u64, modified_ms: u64, by: &str) -> Value {
    json!({
        "createdAt": rfc3339(created_ms),
        "createdBy": by,
        "createdByType": "Application",
        "lastModifiedAt": rfc3339(modified_ms),
        "lastModifiedBy": by,
        "lastModifiedByType": "Application",
    })
}

/// `value` without the given top-level members and without nulls (at any depth).
pub fn strip(value: &Value, drop: &[&str]) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !drop.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v, &[])))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| strip(v, &[])).collect()),
        other => other.clone(),
    }
}

/// Dotted path of the first member that differs between two JSON values (`None` if equal).
pub fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| {
                let sub = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(l), Some(r)) => first_difference(l, r, &sub),
                    _ => Some(sub),
                }
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{path}[{i}]"))),
        _ if a == b => None,
        _ => Some(path.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(version: &str, created: u64) -> AssetVersion {
        AssetVersion {
            subscription: "s".into(),
            resource_group: "rg".into(),
            workspace: "ws".into(),
            name: "env".into(),
            version: version.into(),
            properties: json!({}),
            created_ms: created,
            modified_ms: created,
            created_by: "me".into(),
        }
    }

    #[test]
    fn latest_and_next_versions() {
        let (a, b, c) = (v("1", 3), v("10", 1), v("2", 2));
        assert_eq!(latest_version(&[&a, &b, &c]).as_deref(), Some("10"));
        assert_eq!(next_version(&[&a, &b, &c]), "11");
        let d = v("beta", 9);
        assert_eq!(latest_version(&[&a, &d]).as_deref(), Some("beta"));
        assert_eq!(next_version(&[&d]), "1");
    }

    #[test]
    fn differences_have_paths() {
        let a = json!({"image":"a","build":{"contextUri":"x"},"tags":{"k":"v"}});
        let b = json!({"image":"a","build":{"contextUri":"y"},"tags":{"k":"w"}});
        assert_eq!(
            first_difference(&strip(&a, &["tags"]), &strip(&b, &["tags"]), "properties").as_deref(),
            Some("properties.build.contextUri")
        );
        assert_eq!(
            first_difference(&json!({"a":null}), &strip(&json!({"a":null}), &[]), "p").as_deref(),
            Some("p.a")
        );
        assert_eq!(
            first_difference(&strip(&json!({"a":null}), &[]), &json!({}), "p"),
            None
        );
    }
}
