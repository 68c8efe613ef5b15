//! Azure Resource Manager ids of the objects this provider manages.

use std::fmt;

const PROVIDER_SEGMENT: &str = "Microsoft.MachineLearningServices";

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceId {
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
}

impl WorkspaceId {
    pub fn parse(id: &str) -> Result<Self, String> {
        let (ws, rest) = parse_prefix(id)?;
        if !rest.is_empty() {
            return Err(format!(
                "\"{id}\" is not a workspace id: unexpected trailing segments"
            ));
        }
        Ok(ws)
    }

    /// The id of a child object, e.g. `child("computes", "clara-ct")`.
    pub fn child(&self, collection: &str, name: &str) -> String {
        format!("{self}/{collection}/{name}")
    }

    pub fn location_path(&self, location: &str) -> String {
        format!(
            "/subscriptions/{}/providers/{PROVIDER_SEGMENT}/locations/{location}",
            self.subscription_id
        )
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER_SEGMENT}/workspaces/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }
}

/// A workspace child such as `{ws}/computes/{name}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildId {
    pub workspace: WorkspaceId,
    pub collection: String,
    pub name: String,
}

impl ChildId {
    pub fn parse(id: &str, collection: &str) -> Result<Self, String> {
        let (workspace, rest) = parse_prefix(id)?;
        match rest.as_slice() {
            [c, name] if c.eq_ignore_ascii_case(collection) && !name.is_empty() => Ok(ChildId {
                workspace,
                collection: collection.to_string(),
                name: name.to_string(),
            }),
            _ => Err(format!(
                "\"{id}\" is not an id of the form /subscriptions/<subscription>/resourceGroups/<group>/providers/{PROVIDER_SEGMENT}/workspaces/<workspace>/{collection}/<name>"
            )),
        }
    }
}

fn parse_prefix(id: &str) -> Result<(WorkspaceId, Vec<&str>), String> {
    let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
    let shape = || {
        format!(
            "\"{id}\" is not an Azure ML id; expected /subscriptions/<subscription>/resourceGroups/<group>/providers/{PROVIDER_SEGMENT}/workspaces/<workspace>[/...]"
        )
    };
    if segs.len() < 8 {
        return Err(shape());
    }
    let expect = [
        (0, "subscriptions"),
        (2, "resourceGroups"),
        (4, "providers"),
        (5, PROVIDER_SEGMENT),
        (6, "workspaces"),
    ];
    if expect
        .iter()
        .any(|(i, s)| !segs[*i].eq_ignore_ascii_case(s))
        || segs[1].is_empty()
        || segs[3].is_empty()
        || segs[7].is_empty()
    {
        return Err(shape());
    }
    let ws = WorkspaceId {
        subscription_id: segs[1].into(),
        resource_group: segs[3].into(),
        name: segs[7].into(),
    };
    Ok((ws, segs[8..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects() {
        let id = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/computes/clara-ct";
        let c = ChildId::parse(id, "computes").unwrap();
        assert_eq!(c.name, "clara-ct");
        assert_eq!(c.workspace.child("computes", "clara-ct"), id);
        let lower = id.to_lowercase().replace("clara-ct", "Clara-CT");
        assert_eq!(ChildId::parse(&lower, "computes").unwrap().name, "Clara-CT");
        assert!(ChildId::parse("/subscriptions/s1/resourceGroups/rg", "computes").is_err());
        assert!(ChildId::parse(id, "jobs").is_err());
        assert!(WorkspaceId::parse(id).is_err());
    }
}
