//! `parse_id`: the parts of an Azure ML ARM id, as `/subscriptions/<s>/resourceGroups/<rg>/
//! providers/Microsoft.MachineLearningServices/workspaces/<ws>[/<collection>/<name>[/versions/<v>]]`.
//! Fixed segments match ignoring case, as ARM does; names are checked with the same rules the
//! resources apply when they parse an id.

use clara_framework::{Function, FunctionError, Parameter, Type, Value};

use super::{object, object_type, string_arg};
use crate::ids::{parse_prefix, valid_child_name};

const FIELDS: [&str; 6] = [
    "subscription_id",
    "resource_group_name",
    "workspace_name",
    "type",
    "name",
    "version",
];

/// Workspace collections, as the API spells them, and whether their items have versions.
const COLLECTIONS: [(&str, bool); 8] = [
    ("computes", false),
    ("jobs", false),
    ("datastores", false),
    ("environments", true),
    ("models", true),
    ("data", true),
    ("codes", true),
    ("components", true),
];

pub struct ParseId;

impl Function for ParseId {
    fn name(&self) -> &'static str {
        "parse_id"
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![Parameter::string(
            "arm_id",
            "An Azure ML workspace id, or the id of an object in it.",
        )]
    }
    fn return_type(&self) -> Type {
        object_type(&FIELDS)
    }
    fn summary(&self) -> &'static str {
        "The parts of an Azure ML ARM id"
    }
    fn description(&self) -> String {
        "Returns `{subscription_id, resource_group_name, workspace_name, type, name, version}`. `type` is the \
         collection as the API spells it (`computes`, `jobs`, `datastores`, `environments`, `models`, `data`, \
         `codes`, `components`; `workspaces` for a workspace id, whose `name` is the workspace name); `version` \
         is null unless the id names a version (`…/environments/<name>/versions/<v>`). Fixed segments \
         (`subscriptions`, `resourceGroups`, `providers`, …) match ignoring case."
            .into()
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let id = string_arg(args, 0, "arm_id")?;
        let bad = |why: String| FunctionError::argument(0, why);
        let (ws, rest) = parse_prefix(id).map_err(bad)?;
        let collection = |c: &str| {
            COLLECTIONS
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(c))
                .copied()
                .ok_or_else(|| {
                    bad(format!(
                        "\"{id}\": \"{c}\" is not a workspace collection this provider knows ({})",
                        COLLECTIONS.map(|(n, _)| n).join(", ")
                    ))
                })
        };
        let name_ok = |what: &str, n: &str| {
            if valid_child_name(n) {
                Ok(n.to_string())
            } else {
                Err(bad(format!(
                    "\"{id}\": {what} \"{n}\" may hold only letters, digits, '-', '_' and '.', starting with a letter or digit"
                )))
            }
        };
        let (ty, name, version) = match rest.as_slice() {
            [] => ("workspaces", ws.name.clone(), None),
            [c, n] => (collection(c)?.0, name_ok("name", n)?, None),
            [c, n, v, ver] if v.eq_ignore_ascii_case("versions") => {
                let (c, versioned) = collection(c)?;
                if !versioned {
                    return Err(bad(format!("\"{id}\": {c} have no versions")));
                }
                (c, name_ok("name", n)?, Some(name_ok("version", ver)?))
            }
            _ => {
                return Err(bad(format!(
                    "\"{id}\" has unexpected segments after the workspace; expected <workspace id>[/<collection>/<name>[/versions/<version>]]"
                )));
            }
        };
        Ok(object(&[
            ("subscription_id", Some(ws.subscription_id)),
            ("resource_group_name", Some(ws.resource_group)),
            ("workspace_name", Some(ws.name)),
            ("type", Some(ty.to_string())),
            ("name", Some(name)),
            ("version", version),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-clara/providers/Microsoft.MachineLearningServices/workspaces/clara-ws";

    fn parse(id: &str) -> Result<Value, FunctionError> {
        ParseId.call(&[Value::String(id.into())])
    }

    #[test]
    fn parses_ids_ignoring_case() {
        let v = parse(&format!("{WS}/Environments/clara-train/Versions/4")).unwrap();
        assert_eq!(v.get("type").as_str(), Some("environments"));
        assert_eq!(v.get("name").as_str(), Some("clara-train"));
        assert_eq!(v.get("version").as_str(), Some("4"));
        assert_eq!(v.get("resource_group_name").as_str(), Some("rg-clara"));
        let lower = WS.to_ascii_lowercase();
        let v = parse(&format!("{lower}/computes/gpu")).unwrap();
        assert_eq!(v.get("type").as_str(), Some("computes"));
        assert!(v.get("version").is_null());
        assert_eq!(parse(WS).unwrap().get("type").as_str(), Some("workspaces"));
    }

    #[test]
    fn refuses_with_the_argument_index() {
        for id in [
            "not-an-id".to_string(),
            format!("{WS}/computes/gpu/versions/1"),
            format!("{WS}/widgets/x"),
            format!("{WS}/jobs/.."),
            format!("{WS}/jobs"),
        ] {
            assert_eq!(parse(&id).unwrap_err().argument, Some(0), "{id}");
        }
    }
}
