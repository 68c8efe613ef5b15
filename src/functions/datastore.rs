//! `datastore_uri`: the `azureml://datastores/<datastore>/paths/<path>/` URI a job input
//! names a datastore folder by (the form `ngc_asset.datastore_uri` has).

use clara_framework::{Function, FunctionError, Parameter, Type, Value};

use super::string_arg;

/// The datastore name rule `ngc_asset` applies (`ngc_asset.rs` NAME_PATTERN).
fn valid_datastore(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=255).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'))
}

fn valid_path_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

pub struct DatastoreUri;

impl Function for DatastoreUri {
    fn name(&self) -> &'static str {
        "datastore_uri"
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![
            Parameter::string(
                "datastore",
                "The datastore name, e.g. `workspaceblobstore`.",
            ),
            Parameter::string(
                "path",
                "A folder inside it, e.g. `clara/models/covid`; leading and trailing `/` are ignored.",
            ),
        ]
    }
    fn return_type(&self) -> Type {
        Type::String
    }
    fn summary(&self) -> &'static str {
        "The azureml:// URI of a folder on an Azure ML datastore"
    }
    fn description(&self) -> String {
        "Returns `azureml://datastores/<datastore>/paths/<path>/`, the folder URI a `clara_training_run` \
         input takes. The datastore name must be 1-255 letters, digits, `_` or `-`, starting with a letter or \
         digit; the path must be relative, made of letters, digits, `.`, `_`, `-` and `/`, with no empty, \
         `.` or `..` segment."
            .into()
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let ds = string_arg(args, 0, "datastore")?;
        if !valid_datastore(ds) {
            return Err(FunctionError::argument(
                0,
                format!(
                    "datastore {ds:?} must be 1-255 letters, digits, '_' or '-', starting with a letter or digit"
                ),
            ));
        }
        let raw = string_arg(args, 1, "path")?;
        let path = raw.trim_matches('/');
        if path.is_empty() {
            return Err(FunctionError::argument(
                1,
                "path must name a folder, not be empty",
            ));
        }
        if let Some(seg) = path.split('/').find(|s| !valid_path_segment(s)) {
            let why = match seg {
                ".." => "climbs out of the datastore with '..'".to_string(),
                "." | "" => "has an empty or '.' segment".to_string(),
                s => format!("segment {s:?} may hold only letters, digits, '.', '_' and '-'"),
            };
            return Err(FunctionError::argument(1, format!("path {raw:?} {why}")));
        }
        Ok(Value::String(format!(
            "azureml://datastores/{ds}/paths/{path}/"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn builds_and_refuses() {
        assert_eq!(
            DatastoreUri
                .call(&[s("workspaceblobstore"), s("/clara/models/")])
                .unwrap(),
            s("azureml://datastores/workspaceblobstore/paths/clara/models/")
        );
        for (ds, p, arg) in [
            ("work/space", "a", 0),
            ("", "a", 0),
            ("ws", "a/../../b", 1),
            ("ws", "..", 1),
            ("ws", "a//b", 1),
            ("ws", "a?b", 1),
            ("ws", "/", 1),
        ] {
            assert_eq!(
                DatastoreUri.call(&[s(ds), s(p)]).unwrap_err().argument,
                Some(arg),
                "{ds} {p}"
            );
        }
    }
}
