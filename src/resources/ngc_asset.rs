//! `ngc_asset`: an NVIDIA NGC model or resource (or any https URL), downloaded with
//! verification and resume, unpacked safely, and uploaded to a workspace datastore,
//! optionally registered as an Azure ML data asset.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clara_framework::model::{decode, encode};
use clara_framework::validators::{Matches, OneOf};
use clara_framework::{
    ApplyRequest, AttrPath, Attribute, Block, Diagnostics, NestedBlock, PlanRequest, Resource,
    Schema, TimeoutDefaults, Value, async_trait,
};
use clara_ngc::{AssetKind, AssetRef, NgcClient, NgcOptions};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::ClaraClient;
use crate::ids::WorkspaceId;
use crate::ownership;
use crate::storage;
use crate::transfer::{self, Marker};

pub struct NgcAsset;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Asset {
    id: Option<String>,
    source: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    url: Option<String>,
    unpack: Option<bool>,
    strip_root: Option<bool>,
    local_directory: Option<String>,
    workspace_id: Option<String>,
    datastore: Option<String>,
    datastore_path: Option<String>,
    data_asset: Option<DataAsset>,
    tags: Option<BTreeMap<String, String>>,
    resolved_version: Option<String>,
    file_count: Option<i64>,
    total_size_bytes: Option<i64>,
    content_digest: Option<String>,
    datastore_uri: Option<String>,
    blob_url: Option<String>,
    data_asset_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct DataAsset {
    name: String,
    version: Option<String>,
    description: Option<String>,
}

const PATH_RULE: &str =
    "must be a relative path of letters, digits and . _ - / (no leading '/', no '..')";
/// Azure ML's name rule for datastores and data assets (the `{name}` path parameter of
/// `…/datastores/{name}` and `…/data/{name}/versions/{version}` in Microsoft's spec).
const NAME_PATTERN: &str = "[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}";
const NAME_RULE: &str =
    "must be letters, digits, '-' or '_', starting with a letter or digit (Azure ML's name rule)";
/// Asset versions: the spec gives `{version}` no pattern; it is one path segment, so '/', '?',
/// '#', '%' and ".." never reach the URL (as azure-ai-ml's `version` these are letters,
/// digits, '.', '-' and '_').
const VERSION_PATTERN: &str = "[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}";
const VERSION_RULE: &str = "must be one path segment of letters, digits, '.', '-' or '_', starting with a letter or digit (no '/', '?', '%' or \"..\")";

/// What the completion marker records about how the asset was fetched and registered, so
/// `terraform import` by datastore URI can read the configuration back.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct Settings {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    unpack: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    strip_root: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data_asset: Option<RegisteredAs>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
struct RegisteredAs {
    name: String,
    /// As configured (`None`: the NGC version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<String>,
}

impl Settings {
    fn of(m: &Asset) -> Settings {
        Settings {
            kind: m.kind.clone(),
            unpack: m.unpack,
            strip_root: m.strip_root,
            data_asset: m.data_asset.as_ref().map(|d| RegisteredAs {
                name: d.name.clone(),
                version: d.version.clone(),
            }),
        }
    }
}

#[async_trait]
impl Resource<ClaraClient> for NgcAsset {
    fn type_name(&self) -> &'static str {
        "ngc_asset"
    }
    fn identity(&self) -> Option<&dyn clara_framework::ResourceIdentity> {
        Some(self)
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(
                "An NVIDIA NGC model or resource, or any https URL: downloaded with per-file SHA-256 verification and \
                 resume, unpacked with path-traversal and archive-bomb protection, and uploaded to an Azure ML datastore.",
            )
            .attribute(Attribute::string("id").computed().use_state_for_unknown().describe("The asset's datastore URI (`terraform import` takes it)."))
            .attribute(
                Attribute::string("source")
                    .optional()
                    .requires_replace()
                    .validate(Matches::new(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+){1,2}(:[A-Za-z0-9_.-]+)?", "must be org/[team/]name[:version]"))
                    .describe("NGC asset in NGC CLI form, `org/[team/]name[:version]`, e.g. `nvidia/med/clara_train_covid19_3d_ct_classification:1`. Without a version the latest complete one is used. Exactly one of `source` and `url`."),
            )
            .attribute(
                Attribute::string("type")
                    .default("model")
                    .requires_replace()
                    .validate(OneOf(&["model", "resource"]))
                    .describe("What `source` names: `model` (default) or `resource`."),
            )
            .attribute(
                Attribute::string("url")
                    .optional()
                    .requires_replace()
                    .validate(Matches::new("https://.+", "must be an https:// URL"))
                    .describe("Any https URL. NGC `.../v2/models|resources/.../versions/<v>/zip` URLs (as in azureml-ngc-tools' ngc_config.json) are fetched file by file through NGC's manifest."),
            )
            .attribute(Attribute::bool("unpack").default(true).requires_replace().describe("Unpack downloaded archives (zip, tar, tar.gz/bz2/xz). Default `true`."))
            .attribute(Attribute::bool("strip_root").default(false).requires_replace().describe("Drop an archive's single top-level folder, as azureml-ngc-tools did. Default `false`."))
            .attribute(Attribute::string("local_directory").optional().requires_replace().describe("Also keep the unpacked files here (the toolkit's `localdirectory`). Removed on destroy only if this resource created it."))
            .attribute(super::workspace_id_attribute())
            .attribute(
                Attribute::string("datastore")
                    .optional()
                    .computed()
                    .requires_replace()
                    .use_state_for_unknown()
                    .validate(Matches::new(NAME_PATTERN, NAME_RULE))
                    .describe("Workspace datastore to upload to (AzureBlob). Defaults to the workspace's default datastore."),
            )
            .attribute(
                Attribute::string("datastore_path")
                    .optional()
                    .computed()
                    .requires_replace()
                    .use_state_for_unknown()
                    .validate(Matches::new(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*/?", PATH_RULE))
                    .describe("Folder in the datastore (the toolkit's `computedirectory`). Default `ngc/<org>/[<team>/]<name>/<version>`."),
            )
            .attribute(Attribute::string_map("tags").optional().describe("Tags of the registered data asset. Update in place: nothing is uploaded again."))
            .attribute(Attribute::string("resolved_version").computed().use_state_for_unknown().describe("The NGC version fetched."))
            .attribute(Attribute::number("file_count").computed().use_state_for_unknown().describe("Files uploaded."))
            .attribute(Attribute::number("total_size_bytes").computed().use_state_for_unknown().describe("Bytes uploaded."))
            .attribute(Attribute::string("content_digest").computed().use_state_for_unknown().describe("SHA-256 over the NGC file manifest (paths, sizes, SHA-256s)."))
            .attribute(Attribute::string("datastore_uri").computed().use_state_for_unknown().describe("`azureml://datastores/<name>/paths/<path>/`, for job inputs."))
            .attribute(Attribute::string("blob_url").computed().use_state_for_unknown().describe("URL of the folder in blob storage."))
            .attribute(Attribute::string("data_asset_id").computed().use_state_for_unknown().describe("ARM id of the registered data asset version, if any."))
            .block(
                NestedBlock::single(
                    "data_asset",
                    Block::new("Register the uploaded folder as an Azure ML data asset (uri_folder). Adding, removing or \
                                editing the description updates in place (nothing is uploaded again); a new name or version replaces the asset.")
                        .attribute(Attribute::string("name").required().requires_replace().validate(Matches::new(NAME_PATTERN, NAME_RULE)).describe("Data asset name."))
                        .attribute(Attribute::string("version").optional().requires_replace().validate(Matches::new(VERSION_PATTERN, VERSION_RULE)).describe("Data asset version. Default: the NGC version."))
                        .attribute(Attribute::string("description").optional().describe("Description of the data asset. Update in place.")),
                ),
            ),
        )
    }

    fn timeouts(&self) -> Option<TimeoutDefaults> {
        Some(TimeoutDefaults::minutes(120, 10, 10, 60))
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        let (source, url) = (config.get("source"), config.get("url"));
        if source.is_null() && url.is_null() {
            diags.attr_error(
                AttrPath::root("source"),
                "Nothing to fetch",
                "Set source (an NGC asset) or url.",
            );
        }
        if !source.is_null() && !url.is_null() {
            diags.attr_error(
                AttrPath::root("url"),
                "Conflicting arguments",
                "Set only one of source and url.",
            );
        }
        if let Some(p) = config.get("datastore_path").as_str() {
            if p.split('/').any(|seg| seg == "..") {
                diags.attr_error(
                    AttrPath::root("datastore_path"),
                    "Invalid datastore_path",
                    format!("datastore_path {PATH_RULE}."),
                );
            }
        }
        if let Some(s) = source.as_str() {
            let kind = asset_kind(config.get("type").as_str());
            if let Err(e) = AssetRef::parse(s, kind) {
                diags.attr_error(AttrPath::root("source"), "Invalid NGC source", e);
            }
        }
    }

    async fn modify_plan(
        &self,
        client: &ClaraClient,
        req: PlanRequest<'_>,
        diags: &mut Diagnostics,
    ) {
        let planned = req
            .planned
            .as_object_mut()
            .expect("planned state is an object");
        super::plan_default_workspace(client, req.config, planned, diags);
        // A local copy that cannot be written fails here, before any download or upload.
        if let Some(dir) = req.config.get("local_directory").as_str() {
            if req.prior.get("local_directory").as_str() != Some(dir) {
                if let Err(e) = check_local_directory(std::path::Path::new(dir)) {
                    diags.attr_error(
                        AttrPath::root("local_directory"),
                        "Unusable local_directory",
                        format!("local_directory \"{dir}\": {e}"),
                    );
                }
            }
        }
        // Registering or unregistering the data asset is an in-place update: its id follows.
        if let Some(prior) = req.prior.as_object() {
            let had = prior
                .get("data_asset")
                .is_some_and(|d| d.as_object().is_some());
            let has = planned.get("data_asset").is_some_and(|d| !d.is_null());
            if had != has {
                let id = if has { Value::Unknown } else { Value::Null };
                planned.insert("data_asset_id".into(), id);
            }
        }
        if planned["datastore_path"].is_unknown() {
            if let Some(path) = default_path(
                planned.get("source").and_then(Value::as_str),
                planned.get("type").and_then(Value::as_str),
                planned.get("url").and_then(Value::as_str),
            ) {
                planned.insert("datastore_path".into(), Value::from(path));
            }
        }
        if req.prior.is_null() {
            plan_location(client, planned).await;
        }
    }

    async fn create(
        &self,
        client: &ClaraClient,
        req: &ApplyRequest,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(mut m) = model(&req.planned, diags) else {
            return Value::Null;
        };
        let Some(ws) = client.workspace(&Value::from(m.workspace_id.clone()), diags) else {
            return Value::Null;
        };
        let Some(ds_name) =
            storage::datastore_name(client, &ws, m.datastore.as_deref(), diags).await
        else {
            return Value::Null;
        };
        let Some(ds) = storage::open(client, &ws, &ds_name, diags).await else {
            return Value::Null;
        };
        let ngc = ngc_client(client);
        let resolved = match resolve(&ngc, &m).await {
            Ok(r) => r,
            Err(e) => {
                diags.attr_error(fetch_attr(&m), "Cannot resolve the asset", e);
                return Value::Null;
            }
        };
        let label = m
            .source
            .clone()
            .or_else(|| m.url.clone())
            .unwrap_or_default();
        let version = resolved
            .asset
            .as_ref()
            .and_then(|a| a.version.clone())
            .unwrap_or_else(|| "1".into());
        let prefix = m
            .datastore_path
            .clone()
            .or_else(|| resolved.asset.as_ref().map(|a| asset_path(a, &version)))
            .unwrap_or_else(|| format!("downloads/{}", &crate::content_hash(&json!(label))[..12]));
        let prefix = prefix.trim_matches('/').to_string();
        m.datastore = Some(ds_name.clone());
        m.datastore_path = Some(prefix.clone());
        m.resolved_version = Some(version.clone());
        m.datastore_uri = Some(format!("azureml://datastores/{ds_name}/paths/{prefix}/"));
        m.blob_url = Some(format!("{}/{prefix}/", ds.container_url));
        m.id = m.datastore_uri.clone();

        // An asset another state (or tool) uploaded to this path is not taken over: its
        // destroy there would remove what this state then relies on, and the reverse.
        let uri = m.datastore_uri.clone().unwrap_or_default();
        let journal = ownership::Journal::here();
        let owner = match transfer::read_marker(&ds, &prefix).await {
            Err(e) => {
                diags.error("Cannot read the asset's completion marker", e);
                return Value::Null;
            }
            Ok(Some(existing)) => match (journal.marker(&uri), existing.owner) {
                (Some(mine), Some(theirs)) if mine == theirs => {
                    if !journal.is_repair(&uri) {
                        ownership::adopted(diags, "datastore_path", "asset upload", &uri);
                    }
                    mine
                }
                (_, theirs) => {
                    ownership::already_exists(
                        diags,
                        "datastore_path",
                        "Asset",
                        &uri,
                        theirs.as_deref(),
                    );
                    return Value::Null;
                }
            },
            Ok(None) => match journal.begin(&uri) {
                Ok(m) => m,
                Err(e) => {
                    diags.error("Cannot record the create", e);
                    return Value::Null;
                }
            },
        };

        let cache = transfer::cache_dir(&client.cache_directory, &resolved, &label);
        let fetched = match transfer::fetch(
            &ngc,
            &resolved,
            &cache,
            m.unpack.unwrap_or(true),
            m.strip_root.unwrap_or(false),
            &label,
        )
        .await
        {
            Ok(f) => f,
            Err(e) => {
                diags.attr_error(fetch_attr(&m), e.summary, format!("{}\nNothing was uploaded. Re-running apply resumes from what was verified.", e.detail));
                return Value::Null;
            }
        };
        tracing::info!(asset = %label, bytes_transferred = fetched.bytes_transferred, "download verified");
        m.content_digest = Some(fetched.digest.clone());
        let marker = Marker {
            digest: fetched.digest.clone(),
            source: label.clone(),
            version: version.clone(),
            files: vec![],
            owner: Some(owner),
            settings: serde_json::to_value(Settings::of(&m)).ok(),
        };
        match transfer::upload(&ds, &prefix, &fetched.staged, marker).await {
            Ok((marker, sent)) => {
                tracing::info!(asset = %label, files = marker.files.len(), bytes_sent = sent, "upload complete");
                m.file_count = Some(marker.files.len() as i64);
                m.total_size_bytes = Some(marker.files.iter().map(|f| f.size as i64).sum());
                if let Some(dir) = &m.local_directory {
                    if let Err(e) =
                        transfer::keep_local_copy(&fetched.staged, &PathBuf::from(dir), &marker)
                    {
                        diags.attr_error(
                            AttrPath::root("local_directory"),
                            "Cannot keep the local copy",
                            e,
                        );
                    }
                }
            }
            Err(e) => {
                // Keep what was written findable: state (tainted) names the path and digest,
                // and destroy removes exactly the blobs carrying that digest.
                diags.error("Upload failed", format!("{e}\nRe-running apply replaces the partial upload; unchanged blobs are skipped."));
                return state(&m);
            }
        }
        if let Some(da) = m.data_asset.clone() {
            match register_data_asset(client, &ws, &da, &m, &version).await {
                Ok(id) => m.data_asset_id = Some(id),
                Err(e) => diags.attr_error(
                    AttrPath::root("data_asset"),
                    "Registering the data asset failed",
                    e,
                ),
            }
        }
        state(&m)
    }

    async fn read(&self, client: &ClaraClient, current: &Value, diags: &mut Diagnostics) -> Value {
        let Some(m) = model(current, diags) else {
            return current.clone();
        };
        let (Some(ws_id), Some(ds_name), Some(prefix), Some(digest)) = (
            &m.workspace_id,
            &m.datastore,
            &m.datastore_path,
            &m.content_digest,
        ) else {
            return Value::Null;
        };
        let Ok(ws) = WorkspaceId::parse(ws_id) else {
            return Value::Null;
        };
        let mut open_diags = Diagnostics::new();
        let Some(ds) = storage::open_for_read(client, &ws, ds_name, &mut open_diags).await else {
            diags.extend(open_diags);
            return current.clone();
        };
        let marker = match transfer::read_marker(&ds, prefix).await {
            Ok(m) => m,
            Err(e) => {
                diags.error("Cannot read the asset's completion marker", e);
                return current.clone();
            }
        };
        let uri = m.datastore_uri.clone().unwrap_or_default();
        let journal = ownership::Journal::here();
        // In state: this state's to repair if it drifted (re-created under its own marker);
        // settled below when intact.
        if let Some(owner) = marker.as_ref().and_then(|mk| mk.owner.as_deref()) {
            journal.remember(&uri, owner);
        }
        let Some(marker) = marker.filter(|mk| &mk.digest == digest) else {
            tracing::info!(path = %prefix, "completion marker missing or for other content: the asset will be uploaded again");
            return Value::Null;
        };
        match transfer::intact(&ds, prefix, &marker).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(path = %prefix, "blobs missing or changed: the asset will be uploaded again");
                return Value::Null;
            }
            Err(e) => {
                diags.error("Cannot list the asset's blobs", e);
                return current.clone();
            }
        }
        if let Some(id) = &m.data_asset_id {
            match client.arm.get_json(id).await {
                Ok(Some(body)) if body["properties"]["isArchived"].as_bool() != Some(true) => {}
                Ok(_) => return Value::Null,
                Err(e) => {
                    diags.error("Cannot read the data asset", e.to_string());
                    return current.clone();
                }
            }
        }
        journal.settle(&uri);
        current.clone()
    }

    async fn update(
        &self,
        client: &ClaraClient,
        req: &ApplyRequest,
        diags: &mut Diagnostics,
    ) -> Value {
        let (Some(prior), Some(mut m)) = (model(&req.prior, diags), model(&req.planned, diags))
        else {
            return req.prior.clone();
        };
        // Tags and the data asset's description and presence change in place; everything
        // else is computed or forces replacement. Nothing is downloaded or uploaded here: a
        // run reading the datastore URI or the data asset version sees the same content.
        m.resolved_version = prior.resolved_version.clone();
        m.file_count = prior.file_count;
        m.total_size_bytes = prior.total_size_bytes;
        m.content_digest = prior.content_digest.clone();
        m.datastore_uri = prior.datastore_uri.clone();
        m.blob_url = prior.blob_url.clone();
        m.data_asset_id = prior.data_asset_id.clone();
        let Some(ws) = m
            .workspace_id
            .as_deref()
            .and_then(|w| WorkspaceId::parse(w).ok())
        else {
            return req.prior.clone();
        };
        let version = prior.resolved_version.clone().unwrap_or_else(|| "1".into());
        match (&m.data_asset, &prior.data_asset_id) {
            (Some(da), _) => match register_data_asset(client, &ws, da, &m, &version).await {
                Ok(id) => m.data_asset_id = Some(id),
                Err(e) => {
                    diags.attr_error(
                        AttrPath::root("data_asset"),
                        "Updating the data asset failed",
                        e,
                    );
                    return req.prior.clone();
                }
            },
            (None, Some(id)) => {
                if let Err(e) = archive_data_asset(client, id).await {
                    diags.error("Archiving the data asset failed", e);
                    return req.prior.clone();
                }
                m.data_asset_id = None;
            }
            (None, None) => {}
        }
        // Registration added or removed: the marker records it for import (one small blob).
        if prior.data_asset.as_ref().map(|d| &d.name) != m.data_asset.as_ref().map(|d| &d.name) {
            if let Err(e) = rewrite_settings(client, &ws, &m).await {
                diags.warning(
                    "Completion marker not updated",
                    format!("{e}\nImporting this asset later will not find its data asset."),
                );
            }
        }
        state(&m)
    }

    async fn import(&self, client: &ClaraClient, id: &str, diags: &mut Diagnostics) -> Value {
        self.import_uri(client, id, diags).await
    }

    async fn delete(&self, client: &ClaraClient, current: &Value, diags: &mut Diagnostics) {
        let Some(m) = model(current, diags) else {
            return;
        };
        let (Some(ws), Some(ds_name), Some(prefix), Some(digest)) = (
            m.workspace_id
                .as_deref()
                .and_then(|w| WorkspaceId::parse(w).ok()),
            &m.datastore,
            &m.datastore_path,
            &m.content_digest,
        ) else {
            return;
        };
        let Some(ds) = storage::open(client, &ws, ds_name, diags).await else {
            return;
        };
        match transfer::delete(&ds, prefix, digest).await {
            Ok(n) => tracing::info!(path = %prefix, blobs = n, "deleted the asset's blobs"),
            Err(e) => {
                diags.error("Deleting the asset's blobs failed", e);
                return;
            }
        }
        if let Some(id) = &m.data_asset_id {
            if let Err(e) = archive_data_asset(client, id).await {
                diags.error("Archiving the data asset failed", e);
            }
        }
        if let Some(dir) = &m.local_directory {
            if let Err(e) = transfer::remove_local_copy(&PathBuf::from(dir), digest) {
                diags.attr_warning(
                    AttrPath::root("local_directory"),
                    "Local copy not removed",
                    e,
                );
            }
        }
    }
}

impl NgcAsset {
    /// Import by datastore URI, `azureml://datastores/<datastore>/paths/<path>/` (in the
    /// provider's workspace) or `azureml://subscriptions/<s>/resourcegroups/<rg>/workspaces/<w>/datastores/<datastore>/paths/<path>/`:
    /// the completion marker there gives the content and how it was fetched; the data asset
    /// it names gives description and tags. `local_directory` is not recorded anywhere and
    /// stays unset.
    async fn import_uri(&self, client: &ClaraClient, id: &str, diags: &mut Diagnostics) -> Value {
        let (ws, ds_name, prefix) = match parse_datastore_uri(id) {
            Ok(v) => v,
            Err(e) => {
                diags.error("Invalid import id", e);
                return Value::Null;
            }
        };
        let Some(ws) = ws.or_else(|| client.workspace(&Value::Null, diags)) else {
            return Value::Null;
        };
        // A read: Entra ID as plan and refresh use it; the datastore's keys only when the
        // principal cannot read the blobs that way (import has no state to fall back on).
        let mut read_diags = Diagnostics::new();
        let ds = match storage::open_for_read(client, &ws, &ds_name, &mut read_diags).await {
            Some(ds) => ds,
            None => match storage::open(client, &ws, &ds_name, diags).await {
                Some(ds) => ds,
                None => {
                    diags.extend(read_diags);
                    return Value::Null;
                }
            },
        };
        let marker = match transfer::read_marker(&ds, &prefix).await {
            Ok(Some(mk)) => mk,
            Ok(None) => {
                diags.error(
                    "Nothing to import",
                    format!(
                        "{id}: no complete ngc_asset upload there (no readable {} completion marker in datastore \"{ds_name}\").",
                        transfer::MARKER
                    ),
                );
                return Value::Null;
            }
            Err(e) => {
                diags.error("Cannot read the asset's completion marker", e);
                return Value::Null;
            }
        };
        let settings: Settings = marker
            .settings
            .clone()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let is_url = marker.source.starts_with("https://");
        let uri = format!("azureml://datastores/{ds_name}/paths/{prefix}/");
        let mut m = Asset {
            id: Some(uri.clone()),
            source: (!is_url).then(|| marker.source.clone()),
            url: is_url.then(|| marker.source.clone()),
            kind: Some(settings.kind.clone().unwrap_or_else(|| "model".into())),
            unpack: Some(settings.unpack.unwrap_or(true)),
            strip_root: Some(settings.strip_root.unwrap_or(false)),
            workspace_id: Some(ws.to_string()),
            datastore: Some(ds_name.clone()),
            datastore_path: Some(prefix.clone()),
            resolved_version: Some(marker.version.clone()),
            file_count: Some(marker.files.len() as i64),
            total_size_bytes: Some(marker.files.iter().map(|f| f.size as i64).sum()),
            content_digest: Some(marker.digest.clone()),
            datastore_uri: Some(uri),
            blob_url: Some(format!("{}/{prefix}/", ds.container_url)),
            ..Default::default()
        };
        if let Some(reg) = &settings.data_asset {
            let version = reg
                .version
                .clone()
                .unwrap_or_else(|| marker.version.clone());
            let da_id = data_asset_id(&ws, &reg.name, &version);
            match client.arm.get_json(&da_id).await {
                Ok(Some(body)) if body["properties"]["isArchived"].as_bool() != Some(true) => {
                    let p = &body["properties"];
                    m.data_asset = Some(DataAsset {
                        name: reg.name.clone(),
                        version: reg.version.clone(),
                        description: p["description"].as_str().map(str::to_string),
                    });
                    let tags: BTreeMap<String, String> = p["tags"]
                        .as_object()
                        .map(|t| {
                            t.iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                                .collect()
                        })
                        .unwrap_or_default();
                    m.tags = (!tags.is_empty()).then_some(tags);
                    m.data_asset_id = Some(da_id);
                }
                Ok(_) => diags.warning(
                    "Data asset not found",
                    format!("The asset was registered as data asset {} version {version}, which is gone or archived; imported without it.", reg.name),
                ),
                Err(e) => {
                    diags.error("Cannot read the data asset", e.to_string());
                    return Value::Null;
                }
            }
        }
        state(&m)
    }
}

/// The nearest existing ancestor of `dir` (or `dir` itself) must be a directory this process
/// can create files in; checked with a probe file that is removed at once.
fn check_local_directory(dir: &std::path::Path) -> Result<(), String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(md) if md.is_dir() => break,
            Ok(_) => return Err(format!("{} is not a directory", at.display())),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                match at.parent() {
                    Some(p) if !p.as_os_str().is_empty() => at = p,
                    _ => {
                        at = std::path::Path::new(".");
                        break;
                    }
                }
            }
            Err(e) => return Err(format!("{}: {e}", at.display())),
        }
    }
    let probe = at.join(format!(".clara-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"")
        .map_err(|e| format!("cannot create files in {}: {e}", at.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

/// `azureml://datastores/<ds>/paths/<path>[/]`, or the long form with subscription, resource
/// group and workspace: (workspace if given, datastore, path without slashes).
fn parse_datastore_uri(id: &str) -> Result<(Option<WorkspaceId>, String, String), String> {
    let form =
        "expected azureml://datastores/<datastore>/paths/<path>/ (the asset's datastore_uri)";
    let rest = id
        .strip_prefix("azureml://")
        .ok_or_else(|| format!("\"{id}\": {form}"))?;
    let (head, path) = rest
        .split_once("/paths/")
        .ok_or_else(|| format!("\"{id}\": {form}"))?;
    let segs: Vec<&str> = head.split('/').collect();
    let (ws, ds) = match segs.as_slice() {
        ["datastores", ds] => (None, *ds),
        [s, sub, r, rg, w, wsn, "datastores", ds]
            if s.eq_ignore_ascii_case("subscriptions")
                && r.eq_ignore_ascii_case("resourcegroups")
                && w.eq_ignore_ascii_case("workspaces") =>
        {
            let ws = WorkspaceId {
                subscription_id: sub.to_string(),
                resource_group: rg.to_string(),
                name: wsn.to_string(),
            };
            for (what, v) in [
                ("subscription", *sub),
                ("resource group", *rg),
                ("workspace", *wsn),
            ] {
                if !regex_match(r"[A-Za-z0-9._()-]{1,90}", v) {
                    return Err(format!("\"{id}\": invalid {what} \"{v}\""));
                }
            }
            (Some(ws), *ds)
        }
        _ => return Err(format!("\"{id}\": {form}")),
    };
    if !regex_match(NAME_PATTERN, ds) {
        return Err(format!("\"{id}\": datastore \"{ds}\" {NAME_RULE}"));
    }
    let path = path.trim_matches('/');
    if path.is_empty()
        || !regex_match(r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*", path)
        || path.split('/').any(|s| s == "." || s == "..")
    {
        return Err(format!("\"{id}\": the path {PATH_RULE}"));
    }
    Ok((ws, ds.to_string(), path.to_string()))
}

fn regex_match(pattern: &str, s: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(s))
}

/// Records the current settings (the data asset registration) in the completion marker.
async fn rewrite_settings(client: &ClaraClient, ws: &WorkspaceId, m: &Asset) -> Result<(), String> {
    let (Some(ds_name), Some(prefix)) = (&m.datastore, &m.datastore_path) else {
        return Ok(());
    };
    let mut d = Diagnostics::new();
    let Some(ds) = storage::open(client, ws, ds_name, &mut d).await else {
        return Err(format!("cannot open datastore \"{ds_name}\""));
    };
    let Some(mut marker) = transfer::read_marker(&ds, prefix).await? else {
        return Err("the completion marker is missing".into());
    };
    marker.settings = serde_json::to_value(Settings::of(m)).ok();
    transfer::write_marker(&ds, prefix, &marker).await
}

/// Percent-encodes one URL path segment (defence in depth behind the validators).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    if out == "." || out == ".." {
        out = out.replace('.', "%2E");
    }
    out
}

fn data_asset_id(ws: &WorkspaceId, name: &str, version: &str) -> String {
    format!(
        "{}/versions/{}",
        ws.child("data", &segment(name)),
        segment(version)
    )
}

fn model(v: &Value, diags: &mut Diagnostics) -> Option<Asset> {
    decode(v).map_err(|d| diags.extend(d)).ok()
}

fn state(m: &Asset) -> Value {
    encode(m, &NgcAsset.schema().block.object_type()).unwrap_or(Value::Null)
}

fn asset_kind(t: Option<&str>) -> AssetKind {
    if t == Some("resource") {
        AssetKind::Resource
    } else {
        AssetKind::Model
    }
}

fn fetch_attr(m: &Asset) -> AttrPath {
    AttrPath::root(if m.source.is_some() { "source" } else { "url" })
}

async fn resolve(ngc: &NgcClient, m: &Asset) -> Result<clara_ngc::ResolvedAsset, String> {
    if let Some(s) = &m.source {
        let asset = AssetRef::parse(s, asset_kind(m.kind.as_deref()))?;
        return ngc.resolve(&asset).await.map_err(|e| e.to_string());
    }
    let url = url::Url::parse(m.url.as_deref().unwrap_or_default()).map_err(|e| e.to_string())?;
    ngc.resolve_url(&url, None).await.map_err(|e| e.to_string())
}

fn asset_path(a: &AssetRef, version: &str) -> String {
    match &a.team {
        Some(team) => format!("ngc/{}/{team}/{}/{version}", a.org, a.name),
        None => format!("ngc/{}/{}/{version}", a.org, a.name),
    }
}

/// On create, where the asset will be follows from the configuration once its path is known:
/// the datastore (the workspace's default unless set), the datastore URI (also the id) and
/// the NGC version a pinned source fetches; without a `data_asset` block nothing is
/// registered. Runs that read the asset then plan known inputs (and so known names, ids and
/// outputs). The same formulas as `create`; anything not determinable stays unknown.
async fn plan_location(client: &ClaraClient, planned: &mut BTreeMap<String, Value>) {
    if planned.get("data_asset").is_some_and(Value::is_null)
        && planned["data_asset_id"].is_unknown()
    {
        planned.insert("data_asset_id".into(), Value::Null);
    }
    let version = match (
        planned.get("source").and_then(Value::as_str),
        planned.get("url").and_then(Value::as_str),
    ) {
        (Some(s), _) => AssetRef::parse(s, asset_kind(planned.get("type").and_then(Value::as_str)))
            .ok()
            .and_then(|a| a.version),
        (None, Some(u)) => url::Url::parse(u)
            .ok()
            .and_then(|u| AssetRef::from_url(&u))
            .and_then(|a| a.version),
        _ => None,
    };
    if let Some(v) = version {
        if planned["resolved_version"].is_unknown() {
            planned.insert("resolved_version".into(), Value::from(v));
        }
    }
    let Some(path) = planned
        .get("datastore_path")
        .and_then(Value::as_str)
        .map(|p| p.trim_matches('/').to_string())
    else {
        return;
    };
    let Some(ws) = planned
        .get("workspace_id")
        .and_then(Value::as_str)
        .and_then(|w| WorkspaceId::parse(w).ok())
    else {
        return;
    };
    let datastore = match planned.get("datastore") {
        Some(d) if d.as_str().is_some() => d.as_str().map(str::to_string),
        Some(d) if d.is_unknown() => {
            // Unset: the workspace's default datastore. A lookup that fails leaves it to apply.
            let mut quiet = Diagnostics::new();
            storage::datastore_name(client, &ws, None, &mut quiet).await
        }
        _ => None,
    };
    let Some(ds) = datastore else { return };
    let uri = format!("azureml://datastores/{ds}/paths/{path}/");
    planned.insert("datastore".into(), Value::from(ds));
    for attr in ["datastore_uri", "id"] {
        if planned[attr].is_unknown() {
            planned.insert(attr.into(), Value::from(uri.clone()));
        }
    }
}

/// `ngc/<org>/[<team>/]<name>/<version>` when the asset and version are known at plan time.
fn default_path(source: Option<&str>, kind: Option<&str>, url: Option<&str>) -> Option<String> {
    let asset = match (source, url) {
        (Some(s), _) => AssetRef::parse(s, asset_kind(kind)).ok()?,
        (None, Some(u)) => AssetRef::from_url(&url::Url::parse(u).ok()?)?,
        _ => return None,
    };
    let version = asset.version.clone()?;
    Some(asset_path(&asset, &version))
}

fn ngc_client(client: &ClaraClient) -> NgcClient {
    let mut opts = NgcOptions::new(client.http.clone());
    if let Some(u) = client
        .ngc
        .endpoint
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
    {
        opts.api_url = u;
    }
    if let Some(u) = client
        .ngc
        .auth_endpoint
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
    {
        opts.auth_url = u;
    }
    opts.api_key = client.ngc.api_key.clone();
    opts.org = client.ngc.org.clone();
    opts.team = client.ngc.team.clone();
    NgcClient::new(opts)
}

async fn register_data_asset(
    client: &ClaraClient,
    ws: &WorkspaceId,
    da: &DataAsset,
    m: &Asset,
    version: &str,
) -> Result<String, String> {
    let id = data_asset_id(ws, &da.name, da.version.as_deref().unwrap_or(version));
    let mut props = json!({
        "dataType": "uri_folder",
        "dataUri": m.datastore_uri,
        "isArchived": false,
        "tags": m.tags.clone().unwrap_or_default(),
    });
    if let Some(d) = &da.description {
        props["description"] = json!(d);
    }
    client
        .arm
        .put_json(&id, &json!({"properties": props}))
        .await
        .map_err(|e| e.to_string())?;
    Ok(id)
}

async fn archive_data_asset(client: &ClaraClient, id: &str) -> Result<(), String> {
    let Some(body) = client.arm.get_json(id).await.map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let p = &body["properties"];
    // Archiving is a PUT of the same (immutable) content with isArchived set.
    let mut props = json!({"dataType": p["dataType"], "dataUri": p["dataUri"], "isArchived": true});
    for mutable in ["description", "tags"] {
        if !p[mutable].is_null() {
            props[mutable] = p[mutable].clone();
        }
    }
    client
        .arm
        .put_json(id, &json!({"properties": props}))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

// ---- identity (Terraform >= 1.12): datastore + path (+ workspace) ----
impl clara_framework::ResourceIdentity for NgcAsset {
    fn identity_schema(&self) -> clara_framework::IdentitySchema {
        crate::identity::datastore_schema()
    }
    fn identity_of(&self, state: &Value) -> Option<Value> {
        crate::identity::datastore_identity(&self.identity_schema(), state)
    }
    fn import_id(&self, identity: &Value) -> Result<String, String> {
        crate::identity::datastore_import_id(identity)
    }
}
