//! `azureml_environment`: an Azure ML environment version: a container image (e.g. Clara
//! Train) plus conda/pip packages. Versions are immutable in Azure, so when no version is
//! given it is derived from the content: a content change plans a new version (replacement)
//! instead of failing with a 409 on the old one.

use std::collections::BTreeMap;

use clara_framework::model::{decode, encode};
use clara_framework::validators::{Matches, OneOf};
use clara_framework::{
    ApplyRequest, AttrPath, Attribute, Block, Diagnostics, PlanRequest, Resource, Schema, Value,
    async_trait,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::client::ClaraClient;
use crate::content_hash;
use crate::ids::{ChildId, WorkspaceId};
use crate::ownership::{self, Place};

/// Where an environment version carries its owner marker: its `properties` dictionary.
const MARKER_AT: Place = Place::Property;

pub struct Environment;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Env {
    id: Option<String>,
    name: String,
    version: Option<String>,
    workspace_id: Option<String>,
    image: String,
    conda_packages: Option<Vec<String>>,
    pip_packages: Option<Vec<String>>,
    python_version: Option<String>,
    conda_file: Option<String>,
    os_type: Option<String>,
    description: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    archive_on_destroy: Option<bool>,
    asset_id: Option<String>,
    rendered_conda_file: Option<String>,
}

const NAME_RULE: &str =
    "must be 1-255 letters, digits, '-' or '_', starting with a letter or digit";

#[async_trait]
impl Resource<ClaraClient> for Environment {
    fn type_name(&self) -> &'static str {
        "azureml_environment"
    }
    fn identity(&self) -> Option<&dyn clara_framework::ResourceIdentity> {
        Some(self)
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new(
                "An Azure ML environment version: a Docker image such as `nvcr.io/nvidia/clara-train-sdk:v3.0` plus conda \
                 and pip packages. Content is immutable in Azure: a change creates a new version.",
            )
            .attribute(Attribute::string("id").computed().use_state_for_unknown().describe("ARM id of the environment version."))
            .attribute(
                Attribute::string("name")
                    .required()
                    .requires_replace()
                    .validate(Matches::new("[a-zA-Z0-9][a-zA-Z0-9_-]{0,254}", NAME_RULE))
                    .describe("Environment name, e.g. `clara_env`."),
            )
            .attribute(
                Attribute::string("version")
                    .optional()
                    .computed()
                    .requires_replace()
                    .validate(Matches::new("[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}", "must be letters, digits, '.', '-' or '_'"))
                    .describe("Version. When omitted it is derived from the content (`c-` and 12 hex digits), so a content change plans a new version."),
            )
            .attribute(super::workspace_id_attribute())
            .attribute(Attribute::string("image").required().requires_replace().describe("Base container image, e.g. `nvcr.io/nvidia/clara-train-sdk:v3.0`."))
            .attribute(Attribute::string_list("conda_packages").optional().requires_replace().validate(Matches::new(r"[^\s].*", "must be a non-empty package spec")).describe("Conda packages rendered into the environment's conda file, e.g. `[\"matplotlib\"]`. Order has no meaning: reordering them changes nothing."))
            .attribute(Attribute::string_list("pip_packages").optional().requires_replace().validate(Matches::new(r"[^\s].*", "must be a non-empty package spec")).describe("Pip packages rendered into the conda file, e.g. `[\"jupyterlab\"]`. Order has no meaning: reordering them changes nothing."))
            .attribute(Attribute::string("python_version").optional().requires_replace().describe("Python version pinned in the rendered conda file (with packages only), e.g. `3.8`."))
            .attribute(Attribute::string("conda_file").optional().requires_replace().describe("A complete conda file (YAML) instead of `conda_packages`/`pip_packages`."))
            .attribute(Attribute::string("os_type").default("Linux").requires_replace().validate(OneOf(&["Linux", "Windows"])).describe("`Linux` (default) or `Windows`."))
            .attribute(Attribute::string("description").optional().describe("Description. Updates in place: no new version, and runs using the environment are not re-run."))
            .attribute(Attribute::string_map("tags").optional().null_is_empty().describe("Tags. Update in place: no new version, no re-run. `tags = {}` is the same as no tags."))
            .attribute(Attribute::bool("archive_on_destroy").default(true).describe("On destroy, archive the version (default) instead of deleting it, so jobs that used it stay reproducible."))
            .attribute(Attribute::string("asset_id").computed().use_state_for_unknown().describe("`azureml:<name>:<version>`, as jobs reference it."))
            .attribute(Attribute::string("rendered_conda_file").computed().use_state_for_unknown().describe("The conda file sent to Azure, if any.")),
        )
    }

    fn validate(&self, config: &Value, diags: &mut Diagnostics) {
        if let Some(ws) = config.get("workspace_id").as_str()
            && let Err(why) = WorkspaceId::parse(ws)
        {
            diags.attr_error(AttrPath::root("workspace_id"), "Invalid workspace_id", why);
        }
        let packages =
            !config.get("conda_packages").is_null() || !config.get("pip_packages").is_null();
        if packages && !config.get("conda_file").is_null() {
            diags.attr_error(
                AttrPath::root("conda_file"),
                "Conflicting arguments",
                "Set conda_file, or conda_packages/pip_packages, not both.",
            );
        }
        if !config.get("python_version").is_null() && !packages {
            diags.attr_error(AttrPath::root("python_version"), "python_version needs packages", "python_version applies to the conda file rendered from conda_packages/pip_packages.");
        }
    }

    async fn modify_plan(
        &self,
        client: &ClaraClient,
        req: PlanRequest<'_>,
        diags: &mut Diagnostics,
    ) {
        if !req.prior.is_null()
            && settle_package_order(req.prior, req.config, req.planned, req.requires_replace)
        {
            return; // only the order of packages differs: "No changes"
        }
        let planned = req
            .planned
            .as_object_mut()
            .expect("planned state is an object");
        super::plan_default_workspace(client, req.config, planned, diags);
        let Ok(m) = decode::<Env>(&Value::Object(planned.clone())) else {
            return;
        };
        let content_known = [
            "image",
            "conda_packages",
            "pip_packages",
            "python_version",
            "conda_file",
            "os_type",
        ]
        .iter()
        .all(|k| planned.get(*k).is_some_and(Value::is_wholly_known));
        if content_known {
            let rendered = render_conda(&m);
            planned.insert("rendered_conda_file".into(), Value::from(rendered.clone()));
            if req.config.get("version").is_null() {
                planned.insert(
                    "version".into(),
                    Value::from(content_version(&m, rendered.as_deref())),
                );
            }
        }
        // A version whose content changed would be a 409 in Azure: the plan must replace it.
        let version_changed = req.prior.get("version") != &planned["version"];
        if !req.prior.is_null()
            && version_changed
            && !req.requires_replace.contains(&AttrPath::root("version"))
        {
            req.requires_replace.push(AttrPath::root("version"));
        }
        let (name, version) = (
            planned["name"].as_str().map(str::to_string),
            planned["version"].as_str().map(str::to_string),
        );
        if let (Some(name), Some(version)) = (name, version) {
            let asset = format!("azureml:{name}:{version}");
            planned.insert("asset_id".into(), Value::from(asset));
            if let Some(ws) = planned["workspace_id"]
                .as_str()
                .and_then(|w| WorkspaceId::parse(w).ok())
            {
                planned.insert("id".into(), Value::from(version_id(&ws, &name, &version)));
            }
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
        let rendered = render_conda(&m);
        let version = m
            .version
            .clone()
            .unwrap_or_else(|| content_version(&m, rendered.as_deref()));
        let id = version_id(&ws, &m.name, &version);
        // A version another state (or person) made is not taken over; an archived one is
        // managed by nobody and may be restored; one an interrupted apply of this state made
        // is adopted. PUT is idempotent for identical content.
        let journal = ownership::Journal::here();
        let mut request = body(&m, rendered.as_deref(), false);
        let marker = match client.arm.get_json(&id).await {
            Err(e) => {
                diags.error(
                    "Cannot check for an existing environment version",
                    e.to_string(),
                );
                return Value::Null;
            }
            Ok(Some(existing)) if existing["properties"]["isArchived"] != true => {
                match ownership::classify(&journal, &id, MARKER_AT, &existing) {
                    ownership::Found::Ours(m) => {
                        ownership::adopted(diags, "version", "environment version", &id);
                        Ok(m)
                    }
                    ownership::Found::Foreign { marker } => {
                        ownership::already_exists(
                            diags,
                            "version",
                            "Environment version",
                            &id,
                            marker.as_deref(),
                        );
                        return Value::Null;
                    }
                }
            }
            Ok(_) => journal.begin(&id),
        };
        match marker {
            Ok(marker) => MARKER_AT.stamp(&mut request, &marker),
            Err(e) => {
                diags.error("Cannot record the create", e);
                return Value::Null;
            }
        }
        match client.arm.put_json(&id, &request).await {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {
                diags.attr_error(
                    AttrPath::root("version"),
                    "Environment version already exists with other content",
                    format!("{}:{} exists in Azure with different content, and environment versions are immutable. Choose another version, or omit version to derive one from the content. ({e})", m.name, version),
                );
                return Value::Null;
            }
            Err(e) => {
                diags.error("Creating the environment version failed", e.to_string());
                return Value::Null;
            }
        }
        m.version = Some(version.clone());
        m.rendered_conda_file = rendered;
        m.asset_id = Some(format!("azureml:{}:{version}", m.name));
        m.id = Some(id);
        state(&m)
    }

    async fn read(&self, client: &ClaraClient, current: &Value, diags: &mut Diagnostics) -> Value {
        let Some(mut m) = model(current, diags) else {
            return current.clone();
        };
        let Some(id) = m.id.clone() else {
            return Value::Null;
        };
        let body = match client.arm.get_json(&id).await {
            Ok(Some(b)) => b,
            Ok(None) => return Value::Null,
            Err(e) => {
                diags.error("Cannot read the environment version", e.to_string());
                return current.clone();
            }
        };
        let p = &body["properties"];
        if p["isArchived"].as_bool() == Some(true) {
            return Value::Null;
        }
        // In state: the create is no longer pending.
        ownership::Journal::here().settle(&id);
        if let Some(image) = p["image"].as_str() {
            m.image = image.to_string();
        }
        m.description = p["description"].as_str().map(str::to_string);
        m.tags = p["tags"].as_object().filter(|t| !t.is_empty()).map(|t| {
            t.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        });
        if m.name.is_empty() {
            // Imported: fill what the id and body say.
            if let Ok(c) = ChildId::parse(
                id.rsplit_once("/versions/").map(|(a, _)| a).unwrap_or(&id),
                "environments",
            ) {
                m.name = c.name;
                m.workspace_id = Some(c.workspace.to_string());
            }
            m.version = id.rsplit_once("/versions/").map(|(_, v)| v.to_string());
            m.os_type = p["osType"]
                .as_str()
                .map(str::to_string)
                .or(Some("Linux".into()));
            let conda = p["condaFile"].as_str().map(str::to_string);
            // A conda file this provider rendered reads back as the package lists it came
            // from, so the configuration that created it plans "No changes" after import.
            match conda.as_deref().and_then(parse_rendered_conda) {
                Some((python, conda_packages, pip_packages)) => {
                    m.python_version = python;
                    m.conda_packages = conda_packages;
                    m.pip_packages = pip_packages;
                }
                None => m.conda_file = conda.clone(),
            }
            m.rendered_conda_file = conda;
            m.asset_id = m
                .version
                .as_ref()
                .map(|v| format!("azureml:{}:{v}", m.name));
            m.archive_on_destroy = Some(true);
        }
        state(&m)
    }

    async fn update(
        &self,
        client: &ClaraClient,
        req: &ApplyRequest,
        diags: &mut Diagnostics,
    ) -> Value {
        let Some(m) = model(&req.planned, diags) else {
            return req.prior.clone();
        };
        let id = m.id.clone().unwrap_or_default();
        let prior = model(&req.prior, diags).unwrap_or_default();
        let no_tags =
            |t: &Option<BTreeMap<String, String>>| t.as_ref().is_none_or(|t| t.is_empty());
        let tags_same = prior.tags == m.tags || (no_tags(&prior.tags) && no_tags(&m.tags));
        if prior.description == m.description && tags_same {
            // Only local settings (archive_on_destroy) or `tags = {}` for no tags: nothing to send.
            return state(&m);
        }
        // Only description and tags (and archive_on_destroy, local) change in place. The sent
        // properties replace the stored ones: keep the version's owner marker.
        let mut request = body(&m, m.rendered_conda_file.as_deref(), false);
        match client.arm.get_json(&id).await {
            Ok(Some(existing)) => MARKER_AT.carry(&existing, &mut request),
            Ok(None) => {}
            Err(e) => {
                diags.error("Cannot read the environment version", e.to_string());
                return req.prior.clone();
            }
        }
        if let Err(e) = client.arm.put_json(&id, &request).await {
            diags.error("Updating the environment version failed", e.to_string());
            return req.prior.clone();
        }
        state(&m)
    }

    async fn delete(&self, client: &ClaraClient, current: &Value, diags: &mut Diagnostics) {
        let Some(m) = model(current, diags) else {
            return;
        };
        let Some(id) = m.id.clone() else { return };
        let result = if m.archive_on_destroy.unwrap_or(true) {
            client
                .arm
                .put_json(&id, &body(&m, m.rendered_conda_file.as_deref(), true))
                .await
                .map(|_| ())
        } else {
            client.arm.delete(&id, &[]).await.map(|_| ())
        };
        match result {
            Err(e) if !e.is_not_found() => {
                diags.error("Removing the environment version failed", e.to_string())
            }
            // Archived (managed by nobody now) or deleted: no create of it is pending.
            _ => ownership::Journal::here().settle(&id),
        }
    }

    async fn import(&self, _client: &ClaraClient, id: &str, diags: &mut Diagnostics) -> Value {
        let Some((container, version)) = id.rsplit_once("/versions/") else {
            diags.error("Invalid import id", format!("\"{id}\" is not an environment version id (…/environments/<name>/versions/<version>)."));
            return Value::Null;
        };
        if !crate::ids::valid_child_name(version) {
            diags.error("Invalid import id", format!("\"{version}\" in \"{id}\" is not a valid environment version: letters, digits, '.', '-' or '_', starting with a letter or digit."));
            return Value::Null;
        }
        match ChildId::parse(container, "environments") {
            Ok(c) => state(&Env {
                id: Some(version_id(&c.workspace, &c.name, version)),
                ..Default::default()
            }),
            Err(e) => {
                diags.error("Invalid import id", e);
                let _ = version;
                Value::Null
            }
        }
    }
}

fn model(v: &Value, diags: &mut Diagnostics) -> Option<Env> {
    decode(v).map_err(|d| diags.extend(d)).ok()
}

fn state(m: &Env) -> Value {
    encode(m, &Environment.schema().block.object_type()).unwrap_or(Value::Null)
}

fn version_id(ws: &WorkspaceId, name: &str, version: &str) -> String {
    format!(
        "{}/versions/{}",
        ws.child("environments", name),
        crate::ids::segment(version)
    )
}

/// The conda file sent to Azure: the given one, or one rendered from package lists
/// (the toolkit rendered matplotlib and jupyterlab this way).
fn render_conda(m: &Env) -> Option<String> {
    if let Some(f) = &m.conda_file {
        return Some(f.clone());
    }
    let conda = m.conda_packages.clone().unwrap_or_default();
    let pip = m.pip_packages.clone().unwrap_or_default();
    if conda.is_empty() && pip.is_empty() {
        return None;
    }
    let mut out = String::from(CONDA_HEADER);
    if let Some(py) = &m.python_version {
        out.push_str(&format!("  - python={py}\n"));
    }
    for p in &conda {
        out.push_str(&format!("  - {p}\n"));
    }
    if !pip.is_empty() {
        out.push_str("  - pip\n  - pip:\n");
        for p in &pip {
            out.push_str(&format!("    - {p}\n"));
        }
    }
    Some(out)
}

/// The prior's package lists where the plan's hold the same packages in another order
/// (conda and pip resolve a set; order has no meaning). Returns true when nothing else
/// differs, after making the plan the prior state itself.
fn settle_package_order(
    prior: &Value,
    config: &Value,
    planned: &mut Value,
    requires_replace: &mut Vec<AttrPath>,
) -> bool {
    let Some(p) = planned.as_object_mut() else {
        return false;
    };
    for k in ["conda_packages", "pip_packages"] {
        let sorted = |v: &Value| {
            v.as_elements().map(|e| {
                let mut items: Vec<String> = e
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect();
                items.sort();
                (items.len() == e.len()).then_some(items)
            })
        };
        let (a, b) = (sorted(prior.get(k)), p.get(k).map(sorted).unwrap_or(None));
        if a.is_some() && a == b && prior.get(k) != &p[k] {
            p.insert(k.into(), prior.get(k).clone());
        }
    }
    super::settle_if_unchanged(prior, config, planned, requires_replace)
}

/// (python_version, conda_packages, pip_packages), as the model holds them.
type PackageLists = (Option<String>, Option<Vec<String>>, Option<Vec<String>>);

/// The package lists of a conda file `render_conda` wrote.
fn parse_rendered_conda(text: &str) -> Option<PackageLists> {
    let body = text.strip_prefix(CONDA_HEADER)?;
    let (mut python, mut conda, mut pip) = (None, Vec::new(), Vec::new());
    let mut lines = body.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "  - pip" && lines.peek() == Some(&"  - pip:") {
            lines.next();
            for l in lines.by_ref() {
                pip.push(l.strip_prefix("    - ")?.to_string());
            }
            break;
        }
        let item = line.strip_prefix("  - ")?;
        match item.strip_prefix("python=") {
            Some(py) if python.is_none() && conda.is_empty() => python = Some(py.to_string()),
            _ => conda.push(item.to_string()),
        }
    }
    let parsed = (
        python,
        (!conda.is_empty()).then_some(conda),
        (!pip.is_empty()).then_some(pip),
    );
    // Only a file that renders back byte for byte is ours.
    let m = Env {
        python_version: parsed.0.clone(),
        conda_packages: parsed.1.clone(),
        pip_packages: parsed.2.clone(),
        ..Default::default()
    };
    (render_conda(&m).as_deref() == Some(text)).then_some(parsed)
}

const CONDA_HEADER: &str = "name: clara-environment\nchannels:\n  - conda-forge\ndependencies:\n";

fn content_version(m: &Env, conda: Option<&str>) -> String {
    let content = json!({"image": m.image, "condaFile": conda, "osType": m.os_type.as_deref().unwrap_or("Linux")});
    format!("c-{}", &content_hash(&content)[..12])
}

fn body(m: &Env, conda: Option<&str>, archived: bool) -> serde_json::Value {
    let mut p = json!({
        "image": m.image,
        "osType": m.os_type.as_deref().unwrap_or("Linux"),
        "isArchived": archived,
    });
    if let Some(c) = conda {
        p["condaFile"] = json!(c);
    }
    if let Some(d) = &m.description {
        p["description"] = json!(d);
    }
    if let Some(t) = &m.tags {
        p["tags"] = json!(t);
    }
    json!({"properties": p})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_packages_like_the_toolkit_and_versions_by_content() {
        let m = Env {
            image: "nvcr.io/nvidia/clara-train-sdk:v3.0".into(),
            conda_packages: Some(vec!["matplotlib".into()]),
            pip_packages: Some(vec!["jupyterlab".into()]),
            ..Default::default()
        };
        let conda = render_conda(&m).unwrap();
        assert!(
            conda.contains("  - matplotlib\n") && conda.contains("    - jupyterlab\n"),
            "{conda}"
        );
        let v1 = content_version(&m, Some(&conda));
        let mut m2 = m.clone();
        m2.pip_packages = Some(vec!["jupyterlab==3.0".into()]);
        assert_ne!(v1, content_version(&m2, render_conda(&m2).as_deref()));
        assert_eq!(
            v1,
            content_version(&m, Some(&conda)),
            "stable for the same content"
        );
        assert!(v1.starts_with("c-") && v1.len() == 14);
    }

    #[test]
    fn rendered_conda_files_read_back_as_package_lists() {
        let m = Env {
            python_version: Some("3.8".into()),
            conda_packages: Some(vec!["matplotlib".into(), "numpy=1.21".into()]),
            pip_packages: Some(vec!["jupyterlab".into()]),
            ..Default::default()
        };
        let text = render_conda(&m).unwrap();
        assert_eq!(
            parse_rendered_conda(&text),
            Some((
                m.python_version.clone(),
                m.conda_packages.clone(),
                m.pip_packages.clone()
            ))
        );
        let only_pip = Env {
            pip_packages: Some(vec!["x".into()]),
            ..Default::default()
        };
        let t = render_conda(&only_pip).unwrap();
        assert_eq!(
            parse_rendered_conda(&t),
            Some((None, None, Some(vec!["x".into()])))
        );
        assert_eq!(
            parse_rendered_conda("name: other\ndependencies:\n  - a\n"),
            None
        );
        assert_eq!(parse_rendered_conda(&format!("{text}# edited\n")), None);
    }
}

// ---- identity (Terraform >= 1.12): the parts of the ARM id ----
impl clara_framework::ResourceIdentity for Environment {
    fn identity_schema(&self) -> clara_framework::IdentitySchema {
        crate::identity::arm_schema("The environment name.", Some("The environment version."))
    }
    fn identity_of(&self, state: &Value) -> Option<Value> {
        crate::identity::arm_identity(&self.identity_schema(), state.get("id"), "environments")
    }
    fn import_id(&self, identity: &Value) -> Result<String, String> {
        crate::identity::arm_import_id(identity, "environments", true)
    }
}
