//! Resource identities (Terraform >= 1.12), shared by the four types: the parts of an ARM
//! id for Azure ML objects, and datastore + path (+ workspace) for `ngc_asset`. Each part
//! is checked against the API's name rules before it becomes part of an import id, so an
//! identity can only name the object its attributes describe.

use clara_framework::{IdentitySchema, Value};

use crate::ids::{ChildId, WorkspaceId, valid_child_name};

const SUB: &str = "The Azure subscription id.";
const RG: &str = "The workspace's resource group.";
const WS: &str = "The Azure ML workspace name.";

/// `subscription_id`, `resource_group_name`, `workspace_name`, `name` (+ `version`).
pub fn arm_schema(name: &'static str, version: Option<&'static str>) -> IdentitySchema {
    let s = IdentitySchema::new(0)
        .required("subscription_id", SUB)
        .required("resource_group_name", RG)
        .required("workspace_name", WS)
        .required("name", name);
    match version {
        Some(v) => s.required("version", v),
        None => s,
    }
}

/// `datastore`, `path`; the workspace parts are optional (the provider's workspace).
pub fn datastore_schema() -> IdentitySchema {
    IdentitySchema::new(0)
        .required("datastore", "The workspace datastore holding the asset.")
        .required(
            "path",
            "The asset's folder in the datastore (`datastore_path`).",
        )
        .optional(
            "subscription_id",
            "The Azure subscription id (default: the provider's workspace).",
        )
        .optional(
            "resource_group_name",
            "The workspace's resource group (default: the provider's workspace).",
        )
        .optional(
            "workspace_name",
            "The Azure ML workspace name (default: the provider's workspace).",
        )
}

fn ws_parts(ws: &WorkspaceId) -> [(&'static str, String); 3] {
    [
        ("subscription_id", ws.subscription_id.clone()),
        ("resource_group_name", ws.resource_group.clone()),
        ("workspace_name", ws.name.clone()),
    ]
}

/// The identity of `{workspace}/{collection}/{name}[/versions/{version}]` held in `id`.
pub fn arm_identity(schema: &IdentitySchema, id: &Value, collection: &str) -> Option<Value> {
    let id = id.as_str()?;
    let (container, version) = match schema.attributes.iter().any(|a| a.name == "version") {
        true => {
            let (c, v) = id.rsplit_once("/versions/")?;
            (c, Some(v))
        }
        false => (id, None),
    };
    let c = ChildId::parse(container, collection).ok()?;
    let mut parts: Vec<(&str, String)> = ws_parts(&c.workspace).into();
    parts.push(("name", c.name));
    if let Some(v) = version {
        parts.push(("version", v.to_string()));
    }
    Some(schema.value(parts))
}

fn part<'a>(identity: &'a Value, name: &str) -> Option<&'a str> {
    identity.get(name).as_str().filter(|s| !s.is_empty())
}

fn required<'a>(identity: &'a Value, name: &str) -> Result<&'a str, String> {
    part(identity, name).ok_or_else(|| format!("identity attribute \"{name}\" is required"))
}

fn workspace(identity: &Value) -> Result<WorkspaceId, String> {
    let ws = WorkspaceId {
        subscription_id: required(identity, "subscription_id")?.to_string(),
        resource_group: required(identity, "resource_group_name")?.to_string(),
        name: required(identity, "workspace_name")?.to_string(),
    };
    ws.check().map_err(|e| {
        let attr = if e.starts_with("subscription") {
            "subscription_id"
        } else if e.starts_with("resource group") {
            "resource_group_name"
        } else {
            "workspace_name"
        };
        format!("identity attribute \"{attr}\": {e}")
    })?;
    Ok(ws)
}

fn child_name<'a>(identity: &'a Value, attr: &str) -> Result<&'a str, String> {
    let v = required(identity, attr)?;
    if valid_child_name(v) {
        Ok(v)
    } else {
        Err(format!(
            "identity attribute \"{attr}\": \"{v}\" may hold only letters, digits, '-', '_' and '.', starting with a letter or digit"
        ))
    }
}

/// The ARM id an identity names (the import id `terraform import` takes).
pub fn arm_import_id(
    identity: &Value,
    collection: &str,
    versioned: bool,
) -> Result<String, String> {
    let ws = workspace(identity)?;
    let name = child_name(identity, "name")?;
    let id = ws.child(collection, name);
    if versioned {
        let version = child_name(identity, "version")?;
        Ok(format!("{id}/versions/{}", crate::ids::segment(version)))
    } else {
        Ok(id)
    }
}

/// The identity of an asset: its datastore, path and workspace.
pub fn datastore_identity(schema: &IdentitySchema, state: &Value) -> Option<Value> {
    let ws = WorkspaceId::parse(state.get("workspace_id").as_str()?).ok()?;
    let ds = state.get("datastore").as_str()?.to_string();
    let path = state.get("datastore_path").as_str()?;
    let mut parts: Vec<(&str, String)> = ws_parts(&ws).into();
    parts.push(("datastore", ds));
    parts.push(("path", path.trim_matches('/').to_string()));
    Some(schema.value(parts))
}

/// The datastore URI an asset identity names (the import id of `ngc_asset`); the
/// importer validates the datastore and path.
pub fn datastore_import_id(identity: &Value) -> Result<String, String> {
    let ds = required(identity, "datastore")?;
    let path = required(identity, "path")?.trim_matches('/');
    let any_ws = ["subscription_id", "resource_group_name", "workspace_name"]
        .iter()
        .any(|a| part(identity, a).is_some());
    let head = if any_ws {
        let ws = workspace(identity)?;
        format!(
            "subscriptions/{}/resourcegroups/{}/workspaces/{}/",
            ws.subscription_id, ws.resource_group, ws.name
        )
    } else {
        String::new()
    };
    if ds.contains('/') {
        return Err(format!(
            "identity attribute \"datastore\": \"{ds}\" is not a datastore name"
        ));
    }
    if path
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "identity attribute \"path\": \"{path}\" is not a folder path (segments of letters, digits, '_', '.' and '-')"
        ));
    }
    Ok(format!("azureml://{head}datastores/{ds}/paths/{path}/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(pairs: &[(&str, &str)]) -> Value {
        Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::string(*v)))
                .collect(),
        )
    }

    #[test]
    fn arm_identity_round_trips_through_the_import_id() {
        let schema = arm_schema("n", Some("v"));
        let i = ident(&[
            ("subscription_id", "00000000-0000-0000-0000-000000000000"),
            ("resource_group_name", "rg"),
            ("workspace_name", "ws"),
            ("name", "env"),
            ("version", "3"),
        ]);
        let id = arm_import_id(&i, "environments", true).unwrap();
        assert_eq!(
            id,
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/environments/env/versions/3"
        );
        assert_eq!(
            arm_identity(&schema, &Value::string(id), "environments").unwrap(),
            i
        );
    }

    #[test]
    fn a_part_cannot_smuggle_path_segments() {
        let i = ident(&[
            ("subscription_id", "s"),
            ("resource_group_name", "rg"),
            ("workspace_name", "ws/computes/other"),
            ("name", "c"),
        ]);
        let e = arm_import_id(&i, "computes", false).unwrap_err();
        assert!(e.contains("\"workspace_name\""), "{e}");
        let i = ident(&[
            ("subscription_id", "s"),
            ("resource_group_name", "rg"),
            ("workspace_name", "ws"),
            ("name", "../x"),
        ]);
        assert!(
            arm_import_id(&i, "computes", false)
                .unwrap_err()
                .contains("\"name\"")
        );
        let i = ident(&[("datastore", "d"), ("path", "a/../b")]);
        assert!(datastore_import_id(&i).unwrap_err().contains("\"path\""));
        let i = ident(&[("path", "a")]);
        assert!(
            datastore_import_id(&i)
                .unwrap_err()
                .contains("\"datastore\"")
        );
    }

    #[test]
    fn asset_identity_names_its_datastore_uri() {
        let i = ident(&[
            ("datastore", "workspaceblobstore"),
            ("path", "mmars/covid/"),
        ]);
        assert_eq!(
            datastore_import_id(&i).unwrap(),
            "azureml://datastores/workspaceblobstore/paths/mmars/covid/"
        );
        let i = ident(&[
            ("datastore", "d"),
            ("path", "p"),
            ("subscription_id", "s"),
            ("resource_group_name", "rg"),
            ("workspace_name", "ws"),
        ]);
        assert_eq!(
            datastore_import_id(&i).unwrap(),
            "azureml://subscriptions/s/resourcegroups/rg/workspaces/ws/datastores/d/paths/p/"
        );
    }
}
