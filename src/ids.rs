//! Azure Resource Manager ids of the objects this provider manages.
//!
//! Every segment that comes from a user (subscription, resource group, workspace, child
//! name) is checked against the API's name rules when an id is parsed, and percent-encoded
//! when a path is built, so a value can never add, remove or climb path segments.

use std::fmt;

const PROVIDER_SEGMENT: &str = "Microsoft.MachineLearningServices";

/// `resourceGroupName` (ARM common types v3: `^[-\w\._\(\)]+$`, 1-90 characters).
const RG_RULE: &str = "1-90 letters, digits, '-', '_', '.', '(' or ')'";
/// `workspaceName` (machineLearningServices.json: `^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$`). The
/// minimum length is not enforced (a shorter name cannot steer a path; Azure refuses it).
const WS_RULE: &str = "at most 33 letters, digits, '-' or '_', starting with a letter or digit";

fn valid_resource_group(s: &str) -> bool {
    let n = s.chars().count();
    (1..=90).contains(&n)
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '(' | ')'))
}

fn valid_workspace_name(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=33).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_'))
}

/// The subscription id is a UUID in Azure; any value made of letters, digits and '-' is
/// accepted (it cannot steer a path).
fn valid_subscription(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// A child name or version: letters, digits, '-', '_' and '.', starting with a letter or
/// digit (the loosest of the API's rules for computes, environments, jobs and versions).
pub fn valid_child_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Percent-encodes one path segment: everything but RFC 3986 unreserved characters and the
/// parentheses resource group names may hold. A '/' in a value stays inside its segment.
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'(' | b')') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A region's programmatic name: Azure compares regions without case and spaces
/// (`East US` = `eastus`).
pub fn location_name(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Case-insensitive comparison of ARM ids (ARM treats every segment case-insensitively).
pub fn same_arm_id(a: &str, b: &str) -> bool {
    a.trim_end_matches('/')
        .eq_ignore_ascii_case(b.trim_end_matches('/'))
}

/// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}`.
pub fn check_subnet_id(id: &str) -> Result<(), String> {
    let segs: Vec<&str> = id.strip_prefix('/').unwrap_or("").split('/').collect();
    let shape = || {
        format!(
            "\"{id}\" is not a subnet id; expected /subscriptions/<subscription>/resourceGroups/<group>/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>"
        )
    };
    if segs.len() != 10 {
        return Err(shape());
    }
    let fixed = [
        (0, "subscriptions"),
        (2, "resourceGroups"),
        (4, "providers"),
        (5, "Microsoft.Network"),
        (6, "virtualNetworks"),
        (8, "subnets"),
    ];
    let named_ok = valid_subscription(segs[1])
        && valid_resource_group(segs[3])
        && [segs[7], segs[9]].iter().all(|n| {
            // Virtual network and subnet names: 1-80 letters, digits, '-', '_', '.'.
            !n.is_empty()
                && n.len() <= 80
                && n.as_bytes()[0].is_ascii_alphanumeric()
                && n.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        });
    if fixed.iter().any(|(i, s)| !segs[*i].eq_ignore_ascii_case(s)) || !named_ok {
        return Err(shape());
    }
    Ok(())
}

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

    /// The id of a child object, e.g. `child("computes", "clara-ct")`. The name is
    /// percent-encoded, so it is one path segment whatever it holds.
    pub fn child(&self, collection: &str, name: &str) -> String {
        format!("{self}/{collection}/{}", segment(name))
    }

    /// The subscription's path of a region, by its programmatic name: `East US` and
    /// `eastus` are one region, asked for as `eastus`.
    pub fn location_path(&self, location: &str) -> String {
        format!(
            "/subscriptions/{}/providers/{PROVIDER_SEGMENT}/locations/{}",
            segment(&self.subscription_id),
            segment(&location_name(location))
        )
    }

    /// Checks each segment against the API's name rules (also for a workspace configured on
    /// the provider rather than parsed from an id).
    pub fn check(&self) -> Result<(), String> {
        if !valid_subscription(&self.subscription_id) {
            return Err(format!(
                "subscription id \"{}\" may contain only letters, digits and '-'",
                self.subscription_id
            ));
        }
        if !valid_resource_group(&self.resource_group) {
            return Err(format!(
                "resource group name \"{}\" must be {RG_RULE}",
                self.resource_group
            ));
        }
        if !valid_workspace_name(&self.name) {
            return Err(format!(
                "workspace name \"{}\" must be {WS_RULE}",
                self.name
            ));
        }
        Ok(())
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "/subscriptions/{}/resourceGroups/{}/providers/{PROVIDER_SEGMENT}/workspaces/{}",
            segment(&self.subscription_id),
            segment(&self.resource_group),
            segment(&self.name)
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
            [c, name] if c.eq_ignore_ascii_case(collection) && !valid_child_name(name) => {
                Err(format!(
                    "\"{name}\" in \"{id}\" is not a valid {collection} name: letters, digits, '-', '_' and '.', starting with a letter or digit"
                ))
            }
            [c, name] if c.eq_ignore_ascii_case(collection) => Ok(ChildId {
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

pub(crate) fn parse_prefix(id: &str) -> Result<(WorkspaceId, Vec<&str>), String> {
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
    ws.check().map_err(|why| format!("\"{id}\": {why}"))?;
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

    #[test]
    fn user_values_never_steer_a_path() {
        let ws = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws";
        let w = WorkspaceId::parse(ws).unwrap();
        // A name holding a path stays one encoded segment.
        assert_eq!(
            w.child("computes", "x/../computes/victim"),
            format!("{ws}/computes/x%2F..%2Fcomputes%2Fvictim")
        );
        assert_eq!(
            w.child("environments", "a?b#c"),
            format!("{ws}/environments/a%3Fb%23c")
        );
        // Names outside the API's rules are refused when parsed.
        for bad in [
            format!("{ws}/computes/.."),
            format!("{ws}/computes/a%2Fb"),
            format!("{ws}/computes/a?x=1"),
            ws.replace("/ws", "/w$"),
            ws.replace("/ws", &format!("/{}", "w".repeat(34))),
            ws.replace("/rg/", "/r g/"),
            ws.replace("/s1/", "/s%31/"),
        ] {
            assert!(ChildId::parse(&bad, "computes").is_err(), "{bad}");
        }
        assert!(ChildId::parse(&format!("{ws}/computes/Clara-CT.1"), "computes").is_ok());
        let mut w2 = w.clone();
        w2.resource_group = "rg/../other".into();
        assert!(w2.check().is_err());
        assert!(same_arm_id(&ws.to_uppercase(), ws));
    }

    #[test]
    fn subnet_ids_have_their_shape() {
        let ok = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet-1/subnets/default";
        assert!(check_subnet_id(ok).is_ok());
        assert!(check_subnet_id(&ok.to_lowercase()).is_ok());
        for bad in [
            "subnet-1",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualNetworks/v/subnets/d",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/d/x",
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/..",
        ] {
            assert!(check_subnet_id(bad).is_err(), "{bad}");
        }
    }
}
