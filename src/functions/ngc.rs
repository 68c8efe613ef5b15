//! `ngc_url` and `parse_ngc_url`: the NGC API download URL of a model or resource version,
//! the form the Clara Train toolkit's `ngc_config.json` lists
//! (`https://api.ngc.nvidia.com/v2/models/nvidia/med/<name>/versions/<v>/zip`), and back.

use clara_framework::{Function, FunctionError, Parameter, Type, Value};
use clara_ngc::source::{check_segment, check_version};
use clara_ngc::{AssetKind, AssetRef};

use super::{object, object_type, string_arg};

const API: &str = "https://api.ngc.nvidia.com";
const FIELDS: [&str; 5] = ["kind", "org", "team", "name", "version"];

pub struct NgcUrl;

impl Function for NgcUrl {
    fn name(&self) -> &'static str {
        "ngc_url"
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![
            Parameter::string("kind", "`model` or `resource`."),
            Parameter::string("org", "The NGC org, e.g. `nvidia`."),
            Parameter::string(
                "team",
                "The team inside the org, e.g. `med`; `\"\"` or `null` for an org-level asset.",
            )
            .nullable(),
            Parameter::string(
                "name",
                "The asset name, e.g. `clara_train_covid19_3d_ct_classification`.",
            ),
            Parameter::string("version", "The version, e.g. `1`."),
        ]
    }
    fn return_type(&self) -> Type {
        Type::String
    }
    fn summary(&self) -> &'static str {
        "The NGC API download URL of a model or resource version"
    }
    fn description(&self) -> String {
        "Builds `https://api.ngc.nvidia.com/v2/<models|resources>/<org>[/<team>]/<name>/versions/<version>/zip`, \
         the URL form the Clara Train toolkit's `ngc_config.json` lists. Each part is checked against NGC's \
         name rules (letters, digits, `.`, `_`, `-`; versions may also hold `+`), so no part can add or climb \
         path segments."
            .into()
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let kind =
            parse_kind(string_arg(args, 0, "kind")?).map_err(|e| FunctionError::argument(0, e))?;
        let org = string_arg(args, 1, "org")?;
        check_segment(org).map_err(|e| FunctionError::argument(1, format!("org {e}")))?;
        let team = match args.get(2).and_then(Value::as_str) {
            None | Some("") => None,
            Some(t) => {
                check_segment(t).map_err(|e| FunctionError::argument(2, format!("team {e}")))?;
                Some(t.to_string())
            }
        };
        let name = string_arg(args, 3, "name")?;
        check_segment(name).map_err(|e| FunctionError::argument(3, format!("name {e}")))?;
        let version = string_arg(args, 4, "version")?;
        if version.is_empty() {
            return Err(FunctionError::argument(4, "version must not be empty"));
        }
        check_version(version).map_err(|e| FunctionError::argument(4, e))?;
        let asset = AssetRef {
            kind,
            org: org.into(),
            team,
            name: name.into(),
            version: Some(version.into()),
        };
        // Every segment was checked to hold only URL-safe characters: joined as is.
        let path = asset.zip_segments(version, false).join("/");
        Ok(Value::String(format!("{API}/{path}")))
    }
}

fn parse_kind(s: &str) -> Result<AssetKind, String> {
    match s {
        "model" => Ok(AssetKind::Model),
        "resource" => Ok(AssetKind::Resource),
        other => Err(format!(
            "kind must be \"model\" or \"resource\", not {other:?}"
        )),
    }
}

pub struct ParseNgcUrl;

impl Function for ParseNgcUrl {
    fn name(&self) -> &'static str {
        "parse_ngc_url"
    }
    fn parameters(&self) -> Vec<Parameter> {
        vec![Parameter::string(
            "url",
            "An NGC API URL of a model or resource version.",
        )]
    }
    fn return_type(&self) -> Type {
        object_type(&FIELDS)
    }
    fn summary(&self) -> &'static str {
        "The kind, org, team, name and version of an NGC API download URL"
    }
    fn description(&self) -> String {
        "The inverse of `ngc_url`: returns `{kind, org, team, name, version}` (`team` is null for an \
         org-level asset). Accepts the guest form `/v2/<models|resources>/<org>[/<team>]/<name>/versions/<version>[/zip|/files]` \
         and the org-scoped form `/v2/org/<org>[/team/<team>]/<models|resources>/<name>/versions/<version>[/zip|/files]`, \
         on any `https` or `http` host (a mirror, or the test emulator). A URL of one file inside a version is refused."
            .into()
    }
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError> {
        let raw = string_arg(args, 0, "url")?;
        let bad = |why: String| FunctionError::argument(0, why);
        let url =
            url::Url::parse(raw).map_err(|e| bad(format!("url {raw:?} is not a URL: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(bad(format!("url {raw:?} must be https (or http)")));
        }
        let asset = AssetRef::from_url(&url).ok_or_else(|| {
            bad(format!(
                "url {raw:?} is not an NGC API URL of a model or resource version; expected \
                 {API}/v2/<models|resources>/<org>[/<team>]/<name>/versions/<version>[/zip]"
            ))
        })?;
        Ok(object(&[
            ("kind", Some(asset.kind.noun().to_string())),
            ("org", Some(asset.org)),
            ("team", asset.team),
            ("name", Some(asset.name)),
            ("version", asset.version),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::String(v.into())
    }

    #[test]
    fn builds_the_toolkit_url_and_parses_it_back() {
        let url = NgcUrl
            .call(&[
                s("model"),
                s("nvidia"),
                s("med"),
                s("clara_train_covid19_3d_ct_classification"),
                s("1"),
            ])
            .unwrap();
        assert_eq!(
            url.as_str().unwrap(),
            "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip"
        );
        let back = ParseNgcUrl.call(&[url]).unwrap();
        assert_eq!(back.get("team").as_str(), Some("med"));
        assert_eq!(back.get("kind").as_str(), Some("model"));
        let org_level = NgcUrl
            .call(&[
                s("resource"),
                s("nvidia"),
                Value::Null,
                s("x"),
                s("1.0+cu12"),
            ])
            .unwrap();
        assert_eq!(
            org_level.as_str().unwrap(),
            "https://api.ngc.nvidia.com/v2/resources/nvidia/x/versions/1.0+cu12/zip"
        );
        assert!(
            ParseNgcUrl
                .call(&[org_level])
                .unwrap()
                .get("team")
                .is_null()
        );
    }

    #[test]
    fn names_the_bad_argument() {
        let e = NgcUrl
            .call(&[s("model"), s("nvidia"), s("../x"), s("n"), s("1")])
            .unwrap_err();
        assert_eq!(e.argument, Some(2));
        let e = NgcUrl
            .call(&[s("container"), s("nvidia"), s(""), s("n"), s("1")])
            .unwrap_err();
        assert_eq!(e.argument, Some(0));
        let e = NgcUrl
            .call(&[s("model"), s("nvidia"), s(""), s("n"), s("1/../2")])
            .unwrap_err();
        assert_eq!(e.argument, Some(4));
        let e = ParseNgcUrl
            .call(&[s(
                "https://api.ngc.nvidia.com/v2/models/nvidia/x/versions/1/files/a.txt",
            )])
            .unwrap_err();
        assert_eq!(e.argument, Some(0));
    }
}
