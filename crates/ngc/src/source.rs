//! Which NGC asset to fetch, and where the NGC API keeps it.
//!
//! # API paths
//!
//! NGC serves every asset under two path families (ngcsdk 4.37 `registry/api/models.py` and
//! `resources.py`). `{kind}` is `models` or `resources`; `[..]` is present only for assets that
//! live in a team.
//!
//! | what | org-scoped (sent when an API key is configured) | guest (no API key) |
//! |---|---|---|
//! | asset | `/v2/org/{org}[/team/{team}]/{kind}/{name}` | `/v2/{kind}/{org}[/{team}]/{name}` |
//! | versions (paged) | `…/{kind}/{name}/versions` | `/v2/{kind}/{org}[/{team}]/{name}/versions` |
//! | version | `…/{kind}/{name}/versions/{v}` | `/v2/{kind}/{org}[/{team}]/{name}/versions/{v}` |
//! | file list (paged) | `…/versions/{v}/files` | same suffix on the guest prefix |
//! | one file (redirects to a signed URL) | `…/versions/{v}/files/{path}` | same |
//! | whole version as zip (fallback only) | `…/versions/{v}/zip` | same |
//!
//! Paged calls take `page-size=N` and `page-number=K`; the first page is requested without
//! `page-number` (it is page 0) and the rest as `page-number=1..totalPages-1`, as ngcsdk's
//! `pagination_helper_page_reference_iter_total_pages` does.
//!
//! JSON field names differ by kind: models answer with `model`, `modelVersion`,
//! `modelVersions`, `modelFiles`; resources (historically "recipes") with `recipe`,
//! `recipeVersion`, `recipeVersions`, `recipeFiles`.

use std::fmt;

use url::Url;

/// The two NGC catalog asset kinds this client downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssetKind {
    Model,
    Resource,
}

impl AssetKind {
    /// The path segment NGC uses for this kind.
    pub fn segment(self) -> &'static str {
        match self {
            AssetKind::Model => "models",
            AssetKind::Resource => "resources",
        }
    }

    fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "models" => Some(AssetKind::Model),
            "resources" => Some(AssetKind::Resource),
            _ => None,
        }
    }

    /// Singular word for messages ("model", "resource").
    pub fn noun(self) -> &'static str {
        match self {
            AssetKind::Model => "model",
            AssetKind::Resource => "resource",
        }
    }

    /// JSON key prefix in API responses: `model…` or `recipe…` (resources were once recipes).
    pub(crate) fn json_prefix(self) -> &'static str {
        match self {
            AssetKind::Model => "model",
            AssetKind::Resource => "recipe",
        }
    }
}

impl fmt::Display for AssetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.noun())
    }
}

/// An NGC asset as the NGC CLI names it: `org/[team/]name[:version]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AssetRef {
    pub kind: AssetKind,
    pub org: String,
    pub team: Option<String>,
    pub name: String,
    /// `None` means "the newest complete version", resolved by the client.
    pub version: Option<String>,
}

impl AssetRef {
    /// Parses the NGC CLI form `org/[team/]name[:version]`, e.g.
    /// `nvidia/med/clara_train_covid19_3d_ct_classification:1`.
    pub fn parse(source: &str, kind: AssetKind) -> Result<AssetRef, String> {
        let source = source.trim();
        let expected = "expected org/[team/]name[:version], e.g. nvidia/med/clara_train_covid19_3d_ct_classification:1";
        if source.is_empty() {
            return Err(format!("empty NGC {kind} reference: {expected}"));
        }
        let (path, version) = match source.split_once(':') {
            Some((path, version)) => {
                if version.is_empty() {
                    return Err(format!(
                        "NGC {kind} reference {source:?} ends with ':' but names no version: {expected}"
                    ));
                }
                check_version(version)
                    .map_err(|e| format!("NGC {kind} reference {source:?}: {e}"))?;
                (path, Some(version.to_owned()))
            }
            None => (source, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (org, team, name) = match parts.as_slice() {
            [org, name] => (*org, None, *name),
            [org, team, name] => (*org, Some(*team), *name),
            _ => {
                return Err(format!(
                    "NGC {kind} reference {source:?} has {} path part(s): {expected}",
                    parts.len()
                ));
            }
        };
        for (what, value) in [("org", Some(org)), ("team", team), ("name", Some(name))] {
            if let Some(value) = value {
                check_segment(value)
                    .map_err(|e| format!("NGC {kind} reference {source:?}: {what} {e}"))?;
            }
        }
        Ok(AssetRef {
            kind,
            org: org.to_owned(),
            team: team.map(str::to_owned),
            name: name.to_owned(),
            version,
        })
    }

    /// Recognises an NGC API URL for a whole asset version, whatever the host (so the
    /// emulator's URLs work too): the path, after any prefix, must be
    /// `/v2/{models|resources}/{org}[/{team}]/{name}/versions/{ver}[/zip|/files]` or the
    /// org-scoped `/v2/org/{org}[/team/{team}]/{models|resources}/{name}/versions/{ver}[/zip|/files]`.
    /// A URL of one file inside a version (`…/files/{path}`) is not a whole asset: `None`.
    pub fn from_url(url: &Url) -> Option<AssetRef> {
        let segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
        let start = segments.iter().position(|s| *s == "v2")?;
        let rest = &segments[start + 1..];
        // Split "<prefix>/versions/<ver>[/zip|/files]".
        let at = rest.iter().position(|s| *s == "versions")?;
        let (head, tail) = (&rest[..at], &rest[at + 1..]);
        let version = match tail {
            [v] | [v, "zip"] | [v, "files"] => decode(v)?,
            _ => return None,
        };
        let (kind, org, team, name) = match head {
            ["org", org, "team", team, kind, name] => {
                (AssetKind::from_segment(kind)?, *org, Some(*team), *name)
            }
            ["org", org, kind, name] => (AssetKind::from_segment(kind)?, *org, None, *name),
            [kind, org, team, name] => (AssetKind::from_segment(kind)?, *org, Some(*team), *name),
            [kind, org, name] => (AssetKind::from_segment(kind)?, *org, None, *name),
            _ => return None,
        };
        let org = decode(org)?;
        let team = match team {
            Some(t) => Some(decode(t)?),
            None => None,
        };
        let name = decode(name)?;
        for s in [Some(&org), team.as_ref(), Some(&name)]
            .into_iter()
            .flatten()
        {
            check_segment(s).ok()?;
        }
        check_version(&version).ok()?;
        Some(AssetRef {
            kind,
            org,
            team,
            name,
            version: Some(version),
        })
    }

    /// The same asset pinned to `version`.
    pub fn with_version(&self, version: impl Into<String>) -> AssetRef {
        AssetRef {
            version: Some(version.into()),
            ..self.clone()
        }
    }

    /// Path segments of the asset itself (see the module docs for both forms).
    pub fn asset_segments(&self, scoped: bool) -> Vec<String> {
        let mut s = vec!["v2".to_owned()];
        if scoped {
            s.extend(["org".to_owned(), self.org.clone()]);
            if let Some(team) = &self.team {
                s.extend(["team".to_owned(), team.clone()]);
            }
            s.extend([self.kind.segment().to_owned(), self.name.clone()]);
        } else {
            s.extend([self.kind.segment().to_owned(), self.org.clone()]);
            if let Some(team) = &self.team {
                s.push(team.clone());
            }
            s.push(self.name.clone());
        }
        s
    }

    /// `…/{name}/versions`.
    pub fn versions_segments(&self, scoped: bool) -> Vec<String> {
        let mut s = self.asset_segments(scoped);
        s.push("versions".to_owned());
        s
    }

    /// `…/{name}/versions/{version}`.
    pub fn version_segments(&self, version: &str, scoped: bool) -> Vec<String> {
        let mut s = self.versions_segments(scoped);
        s.push(version.to_owned());
        s
    }

    /// `…/versions/{version}/files`: the paged file list.
    pub fn files_segments(&self, version: &str, scoped: bool) -> Vec<String> {
        let mut s = self.version_segments(version, scoped);
        s.push("files".to_owned());
        s
    }

    /// `…/versions/{version}/files/{path}`: one file (each `/`-separated part is its own
    /// segment, so it gets percent-encoded on its own).
    pub fn file_segments(&self, version: &str, rel_path: &str, scoped: bool) -> Vec<String> {
        let mut s = self.files_segments(version, scoped);
        s.extend(rel_path.split('/').map(str::to_owned));
        s
    }

    /// The presigned-URL manifest ngcsdk 4.37 downloads with (`get_direct_download_URL`):
    /// `v2/org/{org}[/team/{team}]/{kind}/{name}/{version}/files` with credentials,
    /// `v2/{kind}/org/{org}[/team/{team}]/{name}/{version}/files` for guests (no
    /// `versions/` segment in either). It answers `{"urls":[…],"filepath":[…]}`, or
    /// `{"urls":[url]}` with `?path=P`.
    pub fn download_urls_segments(&self, version: &str, scoped: bool) -> Vec<String> {
        let mut s = vec!["v2".to_owned()];
        if !scoped {
            s.push(self.kind.segment().to_owned());
        }
        s.extend(["org".to_owned(), self.org.clone()]);
        if let Some(team) = &self.team {
            s.extend(["team".to_owned(), team.clone()]);
        }
        if scoped {
            s.push(self.kind.segment().to_owned());
        }
        s.extend([self.name.clone(), version.to_owned(), "files".to_owned()]);
        s
    }

    /// `…/versions/{version}/zip`.
    pub fn zip_segments(&self, version: &str, scoped: bool) -> Vec<String> {
        let mut s = self.version_segments(version, scoped);
        s.push("zip".to_owned());
        s
    }

    /// The asset's NGC catalog web page, where a user accepts its licence.
    pub fn catalog_url(&self) -> String {
        let mut url = format!("https://catalog.ngc.nvidia.com/orgs/{}", self.org);
        if let Some(team) = &self.team {
            url.push_str(&format!("/teams/{team}"));
        }
        url.push_str(&format!("/{}/{}", self.kind.segment(), self.name));
        if let Some(v) = &self.version {
            url.push_str(&format!("?version={v}"));
        }
        url
    }
}

/// `org/[team/]name[:version]`, the NGC CLI form.
impl fmt::Display for AssetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/", self.org)?;
        if let Some(team) = &self.team {
            write!(f, "{team}/")?;
        }
        f.write_str(&self.name)?;
        if let Some(v) = &self.version {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

/// Builds `base` + `segments` (each percent-encoded as one path segment) + query pairs.
/// Any path `base` already has (an emulator mounted under a prefix) is kept.
pub(crate) fn api_url(base: &Url, segments: &[String], query: &[(&str, String)]) -> Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    if !query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, v) in query {
            pairs.append_pair(k, v);
        }
    }
    url
}

/// Percent-decodes one path segment (`url` hands them out still encoded).
pub(crate) fn decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = segment.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// org, team and name: letters, digits, `.`, `_`, `-`; not starting with `.` or `-`.
pub fn check_segment(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("is empty".to_owned());
    }
    if value.starts_with(['.', '-']) {
        return Err(format!("{value:?} must start with a letter, digit or '_'"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{value:?} contains {c:?}; only letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

pub fn check_version(value: &str) -> Result<(), String> {
    if value == "." || value == ".." {
        return Err(format!("version {value:?} is not a version"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')))
    {
        return Err(format!(
            "version {value:?} contains {c:?}; only letters, digits, '.', '_', '-' and '+' are allowed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cli_forms() {
        let a = AssetRef::parse(
            "nvidia/med/clara_train_covid19_3d_ct_classification:1",
            AssetKind::Model,
        )
        .unwrap();
        assert_eq!(a.org, "nvidia");
        assert_eq!(a.team.as_deref(), Some("med"));
        assert_eq!(a.name, "clara_train_covid19_3d_ct_classification");
        assert_eq!(a.version.as_deref(), Some("1"));
        assert_eq!(
            a.to_string(),
            "nvidia/med/clara_train_covid19_3d_ct_classification:1"
        );

        let b = AssetRef::parse("nvidia/getting_started", AssetKind::Resource).unwrap();
        assert_eq!((b.team, b.version), (None, None));
    }

    #[test]
    fn rejects_bad_forms_with_reasons() {
        for (input, needle) in [
            ("", "empty"),
            ("nvidia", "1 path part"),
            ("a/b/c/d", "4 path part"),
            ("nvidia/med/x:", "names no version"),
            ("nvidia//x", "team is empty"),
            ("nvidia/med/../x", "4 path part"),
            ("nvidia/..", "must start"),
            ("nvidia/x y", "contains ' '"),
            ("nvidia/x:1/2", "contains '/'"),
        ] {
            let err = AssetRef::parse(input, AssetKind::Model).unwrap_err();
            assert!(err.contains(needle), "{input:?}: {err}");
        }
    }

    #[test]
    fn recognises_walkthrough_urls_on_any_host() {
        for (url, team) in [
            (
                "https://api.ngc.nvidia.com/v2/models/nvidia/med/clara_train_covid19_3d_ct_classification/versions/1/zip",
                Some("med"),
            ),
            (
                "http://127.0.0.1:9/prefix/v2/models/nvidia/x/versions/1",
                None,
            ),
            (
                "https://h/v2/org/nvidia/team/med/models/x/versions/1/files",
                Some("med"),
            ),
        ] {
            let a = AssetRef::from_url(&Url::parse(url).unwrap()).unwrap();
            assert_eq!(a.kind, AssetKind::Model, "{url}");
            assert_eq!(a.team.as_deref(), team, "{url}");
            assert_eq!(a.version.as_deref(), Some("1"));
        }
        let r = AssetRef::from_url(
            &Url::parse(
                "https://api.ngc.nvidia.com/v2/resources/nvidia/med/getting_started/versions/1/zip",
            )
            .unwrap(),
        )
        .unwrap();
        assert_eq!(r.kind, AssetKind::Resource);
        assert_eq!(r.to_string(), "nvidia/med/getting_started:1");

        for url in [
            "https://h/v2/models/nvidia/med/x/versions/1/files/config/a.json",
            "https://h/v2/datasets/nvidia/x/versions/1",
            "https://h/models/nvidia/x/versions/1",
            "https://example.com/file.zip",
        ] {
            assert_eq!(AssetRef::from_url(&Url::parse(url).unwrap()), None, "{url}");
        }
    }

    #[test]
    fn builds_both_path_families() {
        let a = AssetRef::parse("nvidia/med/m:1", AssetKind::Model).unwrap();
        let base = Url::parse("https://api.ngc.nvidia.com").unwrap();
        assert_eq!(
            api_url(
                &base,
                &a.files_segments("1", true),
                &[("page-size", "2".into())]
            )
            .as_str(),
            "https://api.ngc.nvidia.com/v2/org/nvidia/team/med/models/m/versions/1/files?page-size=2"
        );
        assert_eq!(
            api_url(&base, &a.zip_segments("1", false), &[]).as_str(),
            "https://api.ngc.nvidia.com/v2/models/nvidia/med/m/versions/1/zip"
        );
        let r = AssetRef::parse("nvidia/r:2", AssetKind::Resource).unwrap();
        assert_eq!(
            api_url(&base, &r.file_segments("2", "dir/a b.txt", true), &[]).as_str(),
            "https://api.ngc.nvidia.com/v2/org/nvidia/resources/r/versions/2/files/dir/a%20b.txt"
        );
        let prefixed = Url::parse("http://127.0.0.1:8080/ngc/").unwrap();
        assert_eq!(
            api_url(&prefixed, &r.version_segments("2", false), &[]).as_str(),
            "http://127.0.0.1:8080/ngc/v2/resources/nvidia/r/versions/2"
        );
        assert_eq!(
            a.catalog_url(),
            "https://catalog.ngc.nvidia.com/orgs/nvidia/teams/med/models/m?version=1"
        );
    }
}
