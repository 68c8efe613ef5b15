//! Data assets: containers `{WS}/data[/{name}]` (GET; created with their first version) and
//! versions `{WS}/data/{name}/versions[/{version}]` (GET, list, PUT, DELETE).
//!
//! Versions are immutable except `description`, `tags`, `properties` and `isArchived`:
//! a PUT that changes `dataType`, `dataUri`, `isAnonymous` or `referencedUris` of an existing
//! version → 409 `UserError`; an identical PUT → 200 with the stored version; a PUT changing
//! only mutable fields → 200 (updated). New version → 201.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, put};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::{ArmError, ArmResult};
use super::{ArmPath, WS_PATH, parse_json_object, resolve_workspace, respond, violations_error};
use crate::app::AppState;
use crate::pipeline::{OpName, PathParams, RouteExt};
use crate::schema::{Mode, catalog};
use crate::util::{now_ms, rfc3339};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataContainerRecord {
    pub subscription: String,
    pub resource_group: String,
    pub workspace: String,
    pub name: String,
    pub data_type: String,
    pub created_ms: u64,
    pub created_by: String,
    /// Key: the version string as sent.
    pub versions: BTreeMap<String, DataVersionRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DataVersionRecord {
    pub version: String,
    pub data_type: String,
    pub data_uri: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub is_anonymous: bool,
    #[serde(default)]
    pub is_archived: bool,
    #[serde(default)]
    pub referenced_uris: Option<Vec<String>>,
    pub created_ms: u64,
    pub modified_ms: u64,
    pub created_by: String,
}

impl DataVersionRecord {
    /// The fields a PUT may change.
    fn mutable(
        &self,
    ) -> (
        Option<&String>,
        &BTreeMap<String, String>,
        &BTreeMap<String, String>,
        bool,
    ) {
        (
            self.description.as_ref(),
            &self.tags,
            &self.properties,
            self.is_archived,
        )
    }
}

/// Store key of a data container: lower-cased `sub/rg/ws/name`.
pub fn data_key(sub: &str, rg: &str, ws: &str, name: &str) -> String {
    format!("{sub}/{rg}/{ws}/{name}").to_ascii_lowercase()
}

pub fn routes(app: &AppState) -> Router<AppState> {
    let version = format!("{WS_PATH}/data/{{name}}/versions/{{version}}");
    Router::new()
        .route(
            &format!("{WS_PATH}/data"),
            get(list_containers).arm(app, "data.list"),
        )
        .route(
            &format!("{WS_PATH}/data/{{name}}"),
            get(get_container).arm(app, "data.container.get"),
        )
        .route(
            &format!("{WS_PATH}/data/{{name}}/versions"),
            get(list_versions).arm(app, "data.versions.list"),
        )
        .route(&version, get(get_version).arm(app, "data.get"))
        .route(
            &version,
            put(put_version).arm(app, OpName::Dynamic(put_op_name)),
        )
        .route(&version, delete(delete_version).arm(app, "data.delete"))
}

fn put_op_name(app: &AppState, p: &PathParams) -> &'static str {
    let key = data_key(p.get("sub"), p.get("rg"), p.get("ws"), p.get("name"));
    let exists = app.store.read(|d| {
        d.data_assets
            .get(&key)
            .is_some_and(|c| c.versions.contains_key(p.get("version")))
    });
    if exists { "data.update" } else { "data.create" }
}

#[derive(Deserialize)]
struct WsPath {
    sub: String,
    rg: String,
    ws: String,
}

#[derive(Deserialize)]
struct NamePath {
    sub: String,
    rg: String,
    ws: String,
    name: String,
}

#[derive(Deserialize)]
struct VersionPath {
    sub: String,
    rg: String,
    ws: String,
    name: String,
    version: String,
}

fn ws_id(sub: &str, rg: &str, ws: &str) -> String {
    format!(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
    )
}

fn system_data(created_ms: u64, modified_ms: u64, by: &str) -> Value {
    json!({
        "createdAt": rfc3339(created_ms),
        "createdBy": by,
        "createdByType": "Application",
        "lastModifiedAt": rfc3339(modified_ms),
        "lastModifiedBy": by,
        "lastModifiedByType": "Application",
    })
}

fn render_version(c: &DataContainerRecord, v: &DataVersionRecord) -> Value {
    let mut props = json!({
        "dataType": v.data_type,
        "dataUri": v.data_uri,
        "description": v.description,
        "tags": v.tags,
        "properties": v.properties,
        "isAnonymous": v.is_anonymous,
        "isArchived": v.is_archived,
    });
    if let Some(r) = &v.referenced_uris {
        props["referencedUris"] = json!(r);
    }
    json!({
        "id": format!("{}/data/{}/versions/{}", ws_id(&c.subscription, &c.resource_group, &c.workspace), c.name, v.version),
        "name": v.version,
        "type": "Microsoft.MachineLearningServices/workspaces/data/versions",
        "properties": props,
        "systemData": system_data(v.created_ms, v.modified_ms, &v.created_by),
    })
}

/// Latest version: the highest number when every version is numeric, else the newest.
fn latest(c: &DataContainerRecord) -> Option<&DataVersionRecord> {
    let all_numeric = c.versions.keys().all(|k| k.parse::<u64>().is_ok());
    if all_numeric {
        c.versions
            .values()
            .max_by_key(|v| v.version.parse::<u64>().unwrap_or(0))
    } else {
        c.versions.values().max_by_key(|v| v.created_ms)
    }
}

fn render_container(c: &DataContainerRecord) -> Value {
    let latest = latest(c);
    let next = c
        .versions
        .keys()
        .filter_map(|k| k.parse::<u64>().ok())
        .max()
        .map_or(1, |n| n + 1);
    let modified = c
        .versions
        .values()
        .map(|v| v.modified_ms)
        .max()
        .unwrap_or(c.created_ms);
    json!({
        "id": format!("{}/data/{}", ws_id(&c.subscription, &c.resource_group, &c.workspace), c.name),
        "name": c.name,
        "type": "Microsoft.MachineLearningServices/workspaces/data",
        "properties": {
            "dataType": c.data_type,
            "description": null,
            "tags": {},
            "properties": {},
            "isArchived": false,
            "latestVersion": latest.map(|v| v.version.clone()),
            "nextVersion": next.to_string(),
        },
        "systemData": system_data(c.created_ms, modified, &c.created_by),
    })
}

fn not_found(what: &str) -> ArmError {
    ArmError::not_found(
        "ResourceNotFound",
        format!(
            "{what} could not be found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// Asset names: `^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$` (MFE paths).
fn check_name(name: &str) -> ArmResult<()> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| Regex::new(r"^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$").expect("regex"));
    if re.is_match(name) {
        Ok(())
    } else {
        Err(ArmError::bad_request(format!(
            "Data asset name '{name}' is invalid: it must start with a letter or digit and contain only letters, digits, '-' and '_' (at most 255 characters)."
        ))
        .with_target("name"))
    }
}

fn check_version(version: &str) -> ArmResult<()> {
    if version.is_empty()
        || version.len() > 255
        || !version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ArmError::bad_request(format!(
            "Version '{version}' is invalid: use letters, digits, '-', '_' and '.'."
        ))
        .with_target("version"));
    }
    Ok(())
}

fn string_map(v: &Value, target: &str) -> ArmResult<BTreeMap<String, String>> {
    match v {
        Value::Null => Ok(BTreeMap::new()),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(
                    ArmError::invalid_content(format!("{target}.{k} must be a string."))
                        .with_target(format!("{target}.{k}")),
                ),
            })
            .collect(),
        _ => Err(
            ArmError::invalid_content(format!("{target} must be an object.")).with_target(target),
        ),
    }
}

/// Validates a `DataVersionBase` body and turns it into a record (timestamps filled by caller).
fn parse_body(body: &Value, version: &str, by: &str, now: u64) -> ArmResult<DataVersionRecord> {
    violations_error(catalog().validate("DataVersionBase", body, Mode::Create, ""))?;
    let p = &body["properties"];
    let data_uri = p["dataUri"].as_str().unwrap_or_default().to_string();
    if url::Url::parse(&data_uri).is_err() {
        return Err(ArmError::bad_request(format!(
            "(UserError) Invalid dataUri '{data_uri}': expected an absolute URI such as azureml://datastores/workspaceblobstore/paths/<path>/ or https://<account>.blob.core.windows.net/<container>/<path>."
        ))
        .with_code("UserError")
        .with_target("properties.dataUri"));
    }
    let referenced_uris = match &p["referencedUris"] {
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    };
    Ok(DataVersionRecord {
        version: version.to_string(),
        data_type: p["dataType"].as_str().unwrap_or_default().to_string(),
        data_uri,
        description: p["description"].as_str().map(str::to_string),
        tags: string_map(&p["tags"], "properties.tags")?,
        properties: string_map(&p["properties"], "properties.properties")?,
        is_anonymous: p["isAnonymous"].as_bool().unwrap_or(false),
        is_archived: p["isArchived"].as_bool().unwrap_or(false),
        referenced_uris,
        created_ms: now,
        modified_ms: now,
        created_by: by.to_string(),
    })
}

// ---- handlers -------------------------------------------------------------------------------

async fn list_containers(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<WsPath>,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let prefix = data_key(&p.sub, &p.rg, &p.ws, "");
    let value: Vec<Value> = app.store.read(|d| {
        d.data_assets
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix))
            .map(|(_, c)| render_container(c))
            .collect()
    });
    Ok(respond(
        StatusCode::OK,
        Some(json!({ "value": value })),
        &[],
    ))
}

async fn get_container(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<NamePath>,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let key = data_key(&p.sub, &p.rg, &p.ws, &p.name);
    app.store
        .read(|d| d.data_assets.get(&key).map(render_container))
        .map(|b| respond(StatusCode::OK, Some(b), &[]))
        .ok_or_else(|| not_found(&format!("Data container '{}'", p.name)))
}

async fn list_versions(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<NamePath>,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let key = data_key(&p.sub, &p.rg, &p.ws, &p.name);
    let value: Vec<Value> = app.store.read(|d| {
        d.data_assets
            .get(&key)
            .map(|c| c.versions.values().map(|v| render_version(c, v)).collect())
            .unwrap_or_default()
    });
    Ok(respond(
        StatusCode::OK,
        Some(json!({ "value": value })),
        &[],
    ))
}

async fn get_version(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<VersionPath>,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let key = data_key(&p.sub, &p.rg, &p.ws, &p.name);
    app.store
        .read(|d| {
            d.data_assets
                .get(&key)
                .and_then(|c| c.versions.get(&p.version).map(|v| render_version(c, v)))
        })
        .map(|b| respond(StatusCode::OK, Some(b), &[]))
        .ok_or_else(|| not_found(&format!("Data version '{}:{}'", p.name, p.version)))
}

async fn put_version(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<VersionPath>,
    body: Bytes,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    check_name(&p.name)?;
    check_version(&p.version)?;
    let body = parse_json_object(&body)?;
    let now = now_ms();
    let by = app.config.client_id.clone();
    let new = parse_body(&body, &p.version, &by, now)?;
    let key = data_key(&p.sub, &p.rg, &p.ws, &p.name);
    app.store.write(|d| {
        let container = d.data_assets.entry(key.clone()).or_insert_with(|| DataContainerRecord {
            subscription: p.sub.clone(),
            resource_group: p.rg.clone(),
            workspace: p.ws.clone(),
            name: p.name.clone(),
            data_type: new.data_type.clone(),
            created_ms: now,
            created_by: by.clone(),
            versions: BTreeMap::new(),
        });
        if container.versions.is_empty() {
            container.data_type = new.data_type.clone();
        }
        if container.data_type != new.data_type {
            return Err(ArmError::conflict(format!(
                "(UserError) Data asset '{}' has type '{}'; version '{}' cannot be of type '{}'.",
                p.name, container.data_type, p.version, new.data_type
            ))
            .with_code("UserError")
            .with_target("properties.dataType"));
        }
        let Some(existing) = container.versions.get(&p.version).cloned() else {
            container.versions.insert(p.version.clone(), new.clone());
            return Ok(respond(StatusCode::CREATED, Some(render_version(container, &new)), &[]));
        };
        let changed: Vec<&str> = [
            ("dataType", existing.data_type != new.data_type),
            ("dataUri", existing.data_uri != new.data_uri),
            ("isAnonymous", existing.is_anonymous != new.is_anonymous),
            ("referencedUris", existing.referenced_uris != new.referenced_uris),
        ]
        .iter()
        .filter(|(_, c)| *c)
        .map(|(f, _)| *f)
        .collect();
        if let Some(first) = changed.first() {
            return Err(ArmError::conflict(format!(
                "(UserError) Data version '{}:{}' already exists and its {} cannot be changed. Only description, tags, properties and isArchived of a data version can be updated; use a new version to point at different data.",
                p.name,
                p.version,
                changed.join(", ")
            ))
            .with_code("UserError")
            .with_target(format!("properties.{first}")));
        }
        if existing.mutable() == new.mutable() {
            return Ok(respond(StatusCode::OK, Some(render_version(container, &existing)), &[]));
        }
        let updated = DataVersionRecord {
            created_ms: existing.created_ms,
            created_by: existing.created_by.clone(),
            modified_ms: now,
            ..new
        };
        container.versions.insert(p.version.clone(), updated.clone());
        Ok(respond(StatusCode::OK, Some(render_version(container, &updated)), &[]))
    })
}

async fn delete_version(
    State(app): State<AppState>,
    ArmPath(p): ArmPath<VersionPath>,
) -> ArmResult<Response> {
    resolve_workspace(&app, &p.sub, &p.rg, &p.ws)?;
    let key = data_key(&p.sub, &p.rg, &p.ws, &p.name);
    let removed = app.store.write(|d| {
        d.data_assets
            .get_mut(&key)
            .and_then(|c| c.versions.remove(&p.version))
            .is_some()
    });
    Ok(respond(
        if removed {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        },
        None,
        &[],
    ))
}
