//! Job PUT validation: the catalog schema (`JobBase`, CommandJob by `jobType`), the rules the
//! service enforces, references (compute, environment, code, job outputs), and the
//! comparison that decides what a PUT on an existing job may change.

use serde_json::{Map, Value};

use super::model::{JobRecord, MUTABLE};
use crate::arm::asset::{first_difference, strip};
use crate::arm::compute::model::{compute_key, state as compute_state};
use crate::arm::error::{ArmError, ArmResult};
use crate::arm::{code, environment, violations_error};
use crate::schema::{Mode, catalog};
use crate::store::Data;

/// Schema + rules; returns the normalized `properties` (nulls removed, experimentName set).
pub fn body(body: &Value) -> ArmResult<Value> {
    // A valid but unsupported job type is reported as such (not as schema noise).
    let job_type = body["properties"]["jobType"].as_str().unwrap_or_default();
    let known = catalog()
        .enum_values("JobType")
        .is_some_and(|v| v.iter().any(|t| t == job_type));
    if known && job_type != "Command" {
        return Err(ArmError::bad_request(format!(
            "Job type '{job_type}' is not supported by the emulator; only 'Command' jobs are."
        ))
        .with_target("properties.jobType"));
    }
    violations_error(catalog().validate("JobBase", body, Mode::Create, ""))?;
    let props = &body["properties"];
    if props["command"]
        .as_str()
        .is_none_or(|c| c.trim().is_empty())
    {
        return Err(
            ArmError::bad_request("The 'command' field must not be empty.")
                .with_target("properties.command"),
        );
    }
    if props["environmentId"]
        .as_str()
        .is_none_or(|c| c.trim().is_empty())
    {
        return Err(
            ArmError::bad_request("The 'environmentId' field must not be empty.")
                .with_target("properties.environmentId"),
        );
    }
    if let Some(t) = props["limits"]["timeout"].as_str()
        && super::model::duration_ms(t).is_none_or(|ms| ms == 0)
    {
        return Err(ArmError::bad_request(format!(
            "limits.timeout '{t}' must be a positive ISO-8601 duration."
        ))
        .with_target("properties.limits.timeout"));
    }
    let mut p = strip(props, &[]);
    if let Some(o) = p.as_object_mut() {
        o.entry("experimentName")
            .or_insert_with(|| Value::String("Default".into()));
    }
    Ok(p)
}

/// The workspace a reference must live in.
pub struct Ws<'a> {
    pub sub: &'a str,
    pub rg: &'a str,
    pub ws: &'a str,
}

fn bad_ref(target: &str, message: String) -> ArmError {
    ArmError::bad_request(message).with_target(target)
}

/// Splits `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}/<rest>`
/// into `(s, rg, ws, rest segments)`.
fn split_arm_id(id: &str) -> Option<(String, String, String, Vec<String>)> {
    let segs: Vec<&str> = id.trim_end_matches('/').split('/').collect();
    let fixed = [
        (1, "subscriptions"),
        (3, "resourceGroups"),
        (5, "providers"),
        (6, "Microsoft.MachineLearningServices"),
        (7, "workspaces"),
    ];
    if segs.len() < 9
        || !segs[0].is_empty()
        || !fixed.iter().all(|(i, s)| segs[*i].eq_ignore_ascii_case(s))
    {
        return None;
    }
    Some((
        segs[2].to_string(),
        segs[4].to_string(),
        segs[8].to_string(),
        segs[9..].iter().map(|s| s.to_string()).collect(),
    ))
}

fn same_ws(w: &Ws<'_>, s: &str, rg: &str, ws: &str) -> bool {
    w.sub.eq_ignore_ascii_case(s) && w.rg.eq_ignore_ascii_case(rg) && w.ws.eq_ignore_ascii_case(ws)
}

/// `(name, version)` of a workspace asset reference: an ARM id
/// `…/workspaces/{ws}/{kind}/{name}/versions/{v}`, `azureml:{name}:{v}`,
/// `azureml:{name}@latest` (version None). `Ok(None)`: a registry asset (accepted as is).
fn asset_ref(
    w: &Ws<'_>,
    value: &str,
    kind: &str,
    target: &str,
    label: &str,
) -> ArmResult<Option<(String, Option<String>)>> {
    if value.starts_with("azureml://registries/") {
        return Ok(None);
    }
    if value.starts_with('/') {
        let Some((s, rg, ws, rest)) = split_arm_id(value) else {
            return Err(bad_ref(
                target,
                format!("{label} '{value}' ({target}) is not a valid ARM resource id."),
            ));
        };
        if !same_ws(w, &s, &rg, &ws) {
            return Err(bad_ref(
                target,
                format!(
                    "{label} '{value}' ({target}) must be in workspace '{}' of resource group '{}'.",
                    w.ws, w.rg
                ),
            ));
        }
        return match rest.as_slice() {
            [k, name, v, version]
                if k.eq_ignore_ascii_case(kind) && v.eq_ignore_ascii_case("versions") =>
            {
                Ok(Some((name.clone(), Some(version.clone()))))
            }
            _ => Err(bad_ref(
                target,
                format!(
                    "{label} '{value}' ({target}) must be an id of the form …/workspaces/{{ws}}/{kind}/{{name}}/versions/{{version}}."
                ),
            )),
        };
    }
    let short = value.strip_prefix("azureml:").unwrap_or(value);
    if let Some(name) = short.strip_suffix("@latest") {
        return Ok(Some((name.to_string(), None)));
    }
    match short.split_once(':') {
        Some((name, version))
            if !name.is_empty() && !version.is_empty() && !version.contains(':') =>
        {
            Ok(Some((name.to_string(), Some(version.to_string()))))
        }
        _ => Err(bad_ref(
            target,
            format!(
                "{label} '{value}' ({target}) is not a valid reference. Use an ARM id (…/{kind}/{{name}}/versions/{{version}}), 'azureml:{{name}}:{{version}}' or 'azureml://registries/{{registry}}/{kind}/{{name}}/versions/{{version}}'."
            ),
        )),
    }
}

/// Checks every reference of a (normalized) job `properties` against the store.
pub fn references(d: &Data, w: &Ws<'_>, props: &Value) -> ArmResult<()> {
    // compute
    if let Some(compute) = props["computeId"].as_str() {
        let target = "properties.computeId";
        let name = if compute.starts_with('/') {
            let Some((s, rg, ws, rest)) = split_arm_id(compute) else {
                return Err(bad_ref(
                    target,
                    format!(
                        "Compute '{compute}' (properties.computeId) is not a valid ARM resource id."
                    ),
                ));
            };
            if !same_ws(w, &s, &rg, &ws) {
                return Err(bad_ref(
                    target,
                    format!(
                        "Compute '{compute}' (properties.computeId) must be in workspace '{}' of resource group '{}'.",
                        w.ws, w.rg
                    ),
                ));
            }
            match rest.as_slice() {
                [k, name] if k.eq_ignore_ascii_case("computes") => name.clone(),
                _ => {
                    return Err(bad_ref(
                        target,
                        format!(
                            "Compute '{compute}' (properties.computeId) must be an id of the form …/workspaces/{{ws}}/computes/{{name}}."
                        ),
                    ));
                }
            }
        } else {
            compute
                .strip_prefix("azureml:")
                .unwrap_or(compute)
                .to_string()
        };
        let found = d.computes.get(&compute_key(w.sub, w.rg, w.ws, &name));
        match found {
            None => {
                return Err(bad_ref(
                    target,
                    format!(
                        "Compute '{name}' (properties.computeId) was not found in workspace '{}'. Create the compute first.",
                        w.ws
                    ),
                ));
            }
            Some(c) if c.provisioning_state == compute_state::DELETING => {
                return Err(bad_ref(
                    target,
                    format!("Compute '{name}' (properties.computeId) is being deleted."),
                ));
            }
            Some(_) => {}
        }
    }
    // environment
    let env = props["environmentId"].as_str().unwrap_or_default();
    let target = "properties.environmentId";
    if let Some((name, version)) = asset_ref(w, env, "environments", target, "Environment")? {
        let exists = match &version {
            Some(v) => environment::KIND.exists(&d.training, w.sub, w.rg, w.ws, &name, v),
            None => environment::KIND
                .latest(&d.training, w.sub, w.rg, w.ws, &name)
                .is_some(),
        };
        if !exists {
            let what = version.map_or_else(
                || format!("'{name}' (latest)"),
                |v| format!("'{name}' version '{v}'"),
            );
            return Err(bad_ref(
                target,
                format!(
                    "Environment {what} (properties.environmentId) was not found in workspace '{}'.",
                    w.ws
                ),
            ));
        }
    }
    // code
    if let Some(code_id) = props["codeId"].as_str() {
        let target = "properties.codeId";
        if let Some((name, version)) = asset_ref(w, code_id, "codes", target, "Code")? {
            let exists = match &version {
                Some(v) => code::KIND.exists(&d.training, w.sub, w.rg, w.ws, &name, v),
                None => code::KIND
                    .latest(&d.training, w.sub, w.rg, w.ws, &name)
                    .is_some(),
            };
            if !exists {
                return Err(bad_ref(
                    target,
                    format!(
                        "Code '{name}' (properties.codeId) was not found in workspace '{}'.",
                        w.ws
                    ),
                ));
            }
        }
    }
    // inputs that name another job's output
    if let Some(inputs) = props["inputs"].as_object() {
        for (key, input) in inputs {
            let Some(uri) = input["uri"].as_str() else {
                continue;
            };
            if let Some(rest) = uri.strip_prefix("azureml://jobs/") {
                let job = rest.split('/').next().unwrap_or_default();
                let key_path = format!("properties.inputs.{key}.uri");
                let exists = d
                    .training
                    .jobs
                    .contains_key(&super::model::job_key(w.sub, w.rg, w.ws, job));
                if !exists {
                    return Err(bad_ref(
                        &key_path,
                        format!(
                            "Input '{key}' ({key_path}) refers to job '{job}', which was not found in workspace '{}'.",
                            w.ws
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The create-only view of job properties used for the immutability comparison (ids
/// lower-cased: ARM ids are case-insensitive).
fn immutable_view(props: &Value) -> Value {
    let mut v = strip(props, MUTABLE);
    if let Some(o) = v.as_object_mut() {
        for k in ["computeId", "environmentId", "codeId"] {
            if let Some(Value::String(s)) = o.get_mut(k) {
                *s = s.to_ascii_lowercase();
            }
        }
    }
    v
}

/// `Err(400 PropertyChangeNotAllowed)` naming the first create-only member that differs.
pub fn check_unchanged(existing: &JobRecord, new: &Value) -> ArmResult<()> {
    // Compare with the service's defaults applied to both sides: a client that sends back
    // the job it read (system output, jobLimitsType, shmSize, canonical timeout) changes nothing.
    let view = |p: &Value| {
        let mut o = p.as_object().cloned().unwrap_or_default();
        super::model::add_service_defaults(&mut o, &existing.name);
        immutable_view(&Value::Object(o))
    };
    match first_difference(&view(&existing.properties), &view(new), "properties") {
        None => Ok(()),
        Some(path) => Err(ArmError::bad_request(format!(
            "Property '{path}' of job '{}' cannot be changed. Only description, tags, displayName, properties, isArchived, notificationSetting and services of an existing job can be updated; submit a new job (with a new name) to change anything else.",
            existing.name
        ))
        .with_code("PropertyChangeNotAllowed")
        .with_target(path)),
    }
}

/// The updatable members of `new` (absent ones are cleared, as the service replaces them).
pub fn apply_mutable(existing: &mut Map<String, Value>, new: &Value) {
    for k in MUTABLE {
        match new.get(*k) {
            Some(v) if !v.is_null() => {
                existing.insert((*k).to_string(), v.clone());
            }
            _ => {
                existing.remove(*k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm_ids_split() {
        let (s, rg, ws, rest) = split_arm_id("/subscriptions/x/resourcegroups/rg/providers/microsoft.machinelearningservices/workspaces/w/computes/gpu").unwrap();
        assert_eq!((s.as_str(), rg.as_str(), ws.as_str()), ("x", "rg", "w"));
        assert_eq!(rest, vec!["computes", "gpu"]);
        assert!(split_arm_id("/foo/bar").is_none());
    }

    #[test]
    fn asset_refs() {
        let w = Ws {
            sub: "s",
            rg: "rg",
            ws: "w",
        };
        let t = "properties.environmentId";
        assert_eq!(
            asset_ref(&w, "azureml:clara:3", "environments", t, "E").unwrap(),
            Some(("clara".into(), Some("3".into())))
        );
        assert_eq!(
            asset_ref(&w, "azureml:clara@latest", "environments", t, "E").unwrap(),
            Some(("clara".into(), None))
        );
        assert_eq!(
            asset_ref(
                &w,
                "azureml://registries/azureml/environments/x/versions/1",
                "environments",
                t,
                "E"
            )
            .unwrap(),
            None
        );
        assert_eq!(
            asset_ref(&w, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/w/environments/clara/versions/2", "environments", t, "E").unwrap(),
            Some(("clara".into(), Some("2".into())))
        );
        let e = asset_ref(&w, "/subscriptions/s/resourceGroups/other/providers/Microsoft.MachineLearningServices/workspaces/w/environments/clara/versions/2", "environments", t, "E").unwrap_err();
        assert_eq!(e.target(), Some(t));
        assert!(asset_ref(&w, "nonsense", "environments", t, "E").is_err());
    }
}
