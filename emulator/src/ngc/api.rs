//! The NGC catalog API (`/v2/...`): asset and version metadata, the paged file manifest
//! (`sizeInBytes`, `path`, `sha256_base64`), per-file downloads answered with a 302 to a signed
//! object-store URL, the presigned-URL manifest, and `/zip` (all files streamed as one zip).
//!
//! Path forms (ngcsdk `registry/api/models.py`, `resources.py`):
//!
//! | form | path |
//! |---|---|
//! | org-scoped | `/v2/org/{org}[/team/{team}]/{models\|resources}/{name}[/versions[/{v}[/files[/{path}]\|/zip]]]` |
//! | public | `/v2/{models\|resources}/{org}[/{team}]/{name}[/versions[/{v}[/files[/{path}]\|/zip]]]` |
//! | presigned manifest | `/v2/org/{org}[/team/{team}]/{kind}/{name}/{v}/files[?path=P]`, `/v2/{kind}/org/{org}[/team/{team}]/{name}/{v}/files` |

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::auth::{self, Principal};
use super::catalog::{Asset, Kind, Version};
use super::errors::NgcError;
use super::faults::Target;
use super::{annotate, fault_response, xfiles};
use crate::app::AppState;
use crate::pipeline::OpTag;
use crate::util::new_guid;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum What {
    Asset,
    Versions,
    Version(String),
    Files(String),
    File(String, String),
    Zip(String),
    Manifest(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub kind: Kind,
    pub org: String,
    pub team: Option<String>,
    pub name: String,
    pub what: What,
}

impl Parsed {
    pub fn op(&self) -> &'static str {
        match self.what {
            What::Asset => "ngc.asset",
            What::Versions => "ngc.versions",
            What::Version(_) => "ngc.version",
            What::Files(_) => "ngc.files",
            What::File(..) => "ngc.file",
            What::Zip(_) => "ngc.zip",
            What::Manifest(_) => "ngc.manifest",
        }
    }

    pub fn asset_id(&self) -> String {
        match &self.team {
            Some(t) => format!("{}/{t}/{}", self.org, self.name),
            None => format!("{}/{}", self.org, self.name),
        }
    }

    fn version(&self) -> Option<&str> {
        match &self.what {
            What::Version(v)
            | What::Files(v)
            | What::File(v, _)
            | What::Zip(v)
            | What::Manifest(v) => Some(v),
            _ => None,
        }
    }
}

/// Percent-decoded segments of a URL path (each segment decoded on its own, so `%2F` inside a
/// file name segment stays part of that name's path).
pub fn segments(path: &str) -> Vec<String> {
    let mut segs: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    if segs.last().is_some_and(String::is_empty) {
        segs.pop();
    }
    segs
}

/// Parses the segments after `v2`.
pub fn parse(segs: &[String]) -> Option<Parsed> {
    let s = |i: usize| segs.get(i).map(String::as_str);
    if s(0) == Some("org") {
        let org = s(1)?.to_string();
        let (team, i) = if s(2) == Some("team") {
            (Some(s(3)?.to_string()), 4)
        } else {
            (None, 2)
        };
        let kind = Kind::parse(s(i)?)?;
        let name = s(i + 1)?.to_string();
        let what = tail(&segs[i + 2..], true)?;
        return Some(Parsed {
            kind,
            org,
            team,
            name,
            what,
        });
    }
    let kind = Kind::parse(s(0)?)?;
    if s(1) == Some("org") {
        // public presigned manifest: /v2/{kind}/org/{org}[/team/{team}]/{name}/{v}/files
        let org = s(2)?.to_string();
        let (team, i) = if s(3) == Some("team") {
            (Some(s(4)?.to_string()), 5)
        } else {
            (None, 3)
        };
        let name = s(i)?.to_string();
        let rest = &segs[i + 1..];
        if rest.len() == 2 && rest[1] == "files" {
            return Some(Parsed {
                kind,
                org,
                team,
                name,
                what: What::Manifest(rest[0].clone()),
            });
        }
        return None;
    }
    let rest = &segs[1..];
    let split = rest
        .iter()
        .position(|p| p == "versions")
        .unwrap_or(rest.len());
    let (org, team, name) = match &rest[..split] {
        [o, n] => (o.clone(), None, n.clone()),
        [o, t, n] => (o.clone(), Some(t.clone()), n.clone()),
        _ => return None,
    };
    let what = tail(&rest[split..], false)?;
    Some(Parsed {
        kind,
        org,
        team,
        name,
        what,
    })
}

/// What follows `{name}`.
fn tail(rest: &[String], allow_manifest: bool) -> Option<What> {
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    Some(match r.as_slice() {
        [] => What::Asset,
        ["versions"] => What::Versions,
        ["versions", v] => What::Version(v.to_string()),
        ["versions", v, "files"] => What::Files(v.to_string()),
        ["versions", v, "zip"] => What::Zip(v.to_string()),
        ["versions", v, "files", path @ ..] if !path.is_empty() => {
            What::File(v.to_string(), path.join("/"))
        }
        [v, "files"] if allow_manifest => What::Manifest(v.to_string()),
        _ => return None,
    })
}

fn query_param(req: &Parts, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn request_status() -> Value {
    json!({ "statusCode": "SUCCESS", "requestId": new_guid() })
}

/// `GET /v2/...`.
pub async fn handle(State(app): State<AppState>, req: Request) -> Response {
    let (req, _body) = req.into_parts();
    let segs = segments(req.uri.path());
    let parsed = segs
        .split_first()
        .filter(|(first, _)| *first == "v2")
        .and_then(|(_, rest)| parse(rest));
    if let Some(resp) = account_route(&app, &segs, &req) {
        return resp;
    }
    let Some(p) = parsed else {
        let mut resp = NgcError::not_found(format!("No NGC API route for '{}'.", req.uri.path()))
            .into_response();
        resp.extensions_mut().insert(OpTag("ngc.unknown"));
        return annotate(&app, resp, Map::new());
    };
    let op = p.op();
    let mut fields = Map::new();
    fields.insert("asset".into(), json!(p.asset_id()));
    fields.insert("kind".into(), json!(p.kind.segment()));
    if let Some(v) = p.version() {
        fields.insert("version".into(), json!(v));
    }
    if let What::File(_, path) = &p.what {
        fields.insert("file".into(), json!(path));
    }
    let mut resp = match serve(&app, &p, &req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.extensions_mut().insert(OpTag(op));
    annotate(&app, resp, fields)
}

/// `GET /v2/orgs` (ngcsdk `ConfigAPI.get_orgs`, called by `configure()` for legacy keys) and
/// `GET /v2/org/{org}/teams` (`ConfigAPI.get_teams`, when a team is configured): the orgs and
/// teams the credential can use, as `{"organizations"|"teams":[…],"paginationInfo",…}`. Both
/// need a credential (401 without one).
fn account_route(app: &AppState, segs: &[String], req: &Parts) -> Option<Response> {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (op, org) = match s.as_slice() {
        ["v2", "orgs"] => ("ngc.orgs", None),
        ["v2", "org", org, "teams"] => ("ngc.teams", Some(org.to_string())),
        _ => return None,
    };
    let result = (|| -> Result<Response, NgcError> {
        if let Some(f) = app.ngc.faults.take_early(&Target {
            op,
            path: req.uri.path(),
            asset: None,
            file: None,
        }) {
            return Ok(fault_response(&f));
        }
        let Some(principal) = auth::principal(&app.ngc, &req.headers)? else {
            return Err(NgcError::unauthorized(
                "Authentication required: send 'Authorization: Bearer <token or nvapi- key>'.",
            ));
        };
        let orgs: Vec<String> = app
            .ngc
            .catalog
            .orgs()
            .into_iter()
            .filter(|o| principal.can_read_org(o))
            .collect();
        let (member, items): (&str, Vec<Value>) = match &org {
            None => (
                "organizations",
                orgs.iter()
                    .map(|o| {
                        json!({
                            "id": org_id(o),
                            "name": o,
                            "displayName": o,
                            "description": format!("{o} (clara-emulator)"),
                            "type": "ENTERPRISE",
                            "isInternal": false,
                        })
                    })
                    .collect(),
            ),
            Some(o) if orgs.contains(o) => (
                "teams",
                app.ngc
                    .catalog
                    .teams(o)
                    .into_iter()
                    .map(|t| json!({ "id": org_id(&format!("{o}/{t}")), "name": t, "description": t, "isDeleted": false }))
                    .collect(),
            ),
            Some(o) => {
                return Err(NgcError::forbidden(format!(
                    "Access denied: the credential has no access to org '{o}'."
                )));
            }
        };
        let (range, info) = page(app, req, items.len())?;
        Ok(json_ok(json!({
            member: items[range].to_vec(),
            "paginationInfo": info,
            "requestStatus": request_status(),
        })))
    })();
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    resp.extensions_mut().insert(OpTag(op));
    Some(annotate(app, resp, Map::new()))
}

/// A stable numeric id for an org or team name.
fn org_id(name: &str) -> u64 {
    name.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    }) % 1_000_000
}

/// Credential, existence and access checks shared by every route.
fn authorize(
    app: &AppState,
    p: &Parsed,
    req: &Parts,
) -> Result<(Arc<Asset>, Option<Principal>), NgcError> {
    let ngc = &app.ngc;
    let principal = auth::principal(ngc, &req.headers)?;
    let what = if p.kind == Kind::Model {
        "Model"
    } else {
        "Resource"
    };
    let asset = ngc
        .catalog
        .find(p.kind, &p.org, p.team.as_deref(), &p.name)
        .ok_or_else(|| {
            NgcError::not_found(format!("{what} '{}' could not be found.", p.asset_id()))
        })?;
    if !asset.public {
        match &principal {
            None => {
                return Err(NgcError::unauthorized(format!(
                    "Authentication required: {what} '{}' is not public. Send 'Authorization: Bearer <token or nvapi- key>'.",
                    p.asset_id()
                )));
            }
            Some(pr) if !pr.can_read_org(&p.org) => {
                return Err(NgcError::forbidden(format!(
                    "Access denied: the credential has no access to org '{}'.",
                    p.org
                )));
            }
            Some(_) => {}
        }
    }
    Ok((asset, principal))
}

fn version<'a>(asset: &'a Asset, v: &str) -> Result<&'a Version, NgcError> {
    asset.version(v).ok_or_else(|| {
        NgcError::not_found(format!(
            "Version '{v}' of '{}' could not be found.",
            asset.id()
        ))
    })
}

fn eula(app: &AppState, asset: &Asset) -> Result<(), NgcError> {
    if app.ngc.eula_ok(asset) {
        return Ok(());
    }
    let mut page = format!("https://catalog.ngc.nvidia.com/orgs/{}", asset.org);
    if let Some(t) = &asset.team {
        page.push_str(&format!("/teams/{t}"));
    }
    page.push_str(&format!("/{}/{}", asset.kind.segment(), asset.name));
    Err(NgcError::new(
        StatusCode::PRECONDITION_FAILED,
        "INVALID_REQUEST",
        format!(
            "The license terms (EULA) of '{}' have not been accepted for this account. Open the NGC catalog to accept terms, then retry: {page}",
            asset.id()
        ),
    ))
}

async fn serve(app: &AppState, p: &Parsed, req: &Parts) -> Result<Response, NgcError> {
    let file = match &p.what {
        What::File(_, f) => Some(f.as_str()),
        _ => None,
    };
    let asset_id = p.asset_id();
    if let Some(f) = app.ngc.faults.take_early(&Target {
        op: p.op(),
        path: req.uri.path(),
        asset: Some(&asset_id),
        file,
    }) {
        return Ok(fault_response(&f));
    }
    let (asset, _principal) = authorize(app, p, req)?;
    match &p.what {
        What::Asset => Ok(json_ok(json!({
            p.kind.json(): asset_json(&asset),
            "requestStatus": request_status(),
        }))),
        What::Versions => {
            let list: Vec<Value> = asset
                .versions
                .iter()
                .map(|v| version_json(&asset, v))
                .collect();
            let n = list.len();
            Ok(json_ok(json!({
                p.kind.json(): asset_json(&asset),
                format!("{}Versions", p.kind.json()): list,
                "paginationInfo": { "index": 0, "size": n.max(1), "totalPages": 1, "totalResults": n },
                "requestStatus": request_status(),
            })))
        }
        What::Version(v) => {
            let ver = version(&asset, v)?;
            Ok(json_ok(json!({
                p.kind.json(): asset_json(&asset),
                format!("{}Version", p.kind.json()): version_json(&asset, ver),
                "requestStatus": request_status(),
            })))
        }
        What::Files(v) => {
            let ver = version(&asset, v)?;
            eula(app, &asset)?;
            let (page, info) = page(app, req, ver.files.len())?;
            let files: Vec<Value> = hashed(&asset, v, page.clone())
                .await
                .into_iter()
                .map(|(path, size, sha)| {
                    json!({
                        "path": path,
                        "sizeInBytes": size,
                        "sha256_base64": sha,
                        "createdDate": ver.created,
                    })
                })
                .collect();
            Ok(json_ok(json!({
                format!("{}Files", p.kind.json()): files,
                "paginationInfo": info,
                p.kind.json(): asset_json(&asset),
                format!("{}Version", p.kind.json()): version_json(&asset, ver),
                "requestStatus": request_status(),
            })))
        }
        What::File(v, path) => {
            let ver = version(&asset, v)?;
            eula(app, &asset)?;
            let entry = ver.file(path).ok_or_else(|| {
                NgcError::not_found(format!(
                    "File '{path}' could not be found in '{}' version '{v}'.",
                    asset.id()
                ))
            })?;
            let url = xfiles::signed_url(app, &asset, v, &entry.path);
            let mut resp = StatusCode::FOUND.into_response();
            if let Ok(loc) = HeaderValue::from_str(&url) {
                resp.headers_mut().insert(header::LOCATION, loc);
            }
            Ok(resp)
        }
        What::Manifest(v) => {
            let ver = version(&asset, v)?;
            eula(app, &asset)?;
            if let Some(path) = query_param(req, "path") {
                let entry = ver.file(&path).ok_or_else(|| {
                    NgcError::not_found(format!("File '{path}' could not be found."))
                })?;
                return Ok(json_ok(json!({
                    "urls": [xfiles::signed_url(app, &asset, v, &entry.path)],
                    "requestStatus": request_status(),
                })));
            }
            let (page, info) = page(app, req, ver.files.len())?;
            let files = &ver.files[page];
            Ok(json_ok(json!({
                "urls": files.iter().map(|f| xfiles::signed_url(app, &asset, v, &f.path)).collect::<Vec<_>>(),
                "filepath": files.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
                "paginationInfo": info,
                "requestStatus": request_status(),
            })))
        }
        What::Zip(v) => {
            version(&asset, v)?;
            eula(app, &asset)?;
            xfiles::zip_response(app, asset.clone(), v.clone(), req.uri.path())
        }
    }
}

fn json_ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

/// `page-size` / `page-number` (0-based, ngcsdk requests page 0 without the parameter).
fn page(
    app: &AppState,
    req: &Parts,
    total: usize,
) -> Result<(std::ops::Range<usize>, Value), NgcError> {
    let cfg = &app.ngc.config;
    let size = match query_param(req, "page-size") {
        None => cfg.default_page_size,
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1 && *n <= cfg.max_page_size)
            .ok_or_else(|| {
                NgcError::bad_request(format!(
                    "Invalid page-size '{s}': expected 1..={}.",
                    cfg.max_page_size
                ))
            })?,
    };
    let index = match query_param(req, "page-number") {
        None => 0,
        Some(s) => s.parse::<usize>().map_err(|_| {
            NgcError::bad_request(format!(
                "Invalid page-number '{s}': expected an integer >= 0."
            ))
        })?,
    };
    let total_pages = total.div_ceil(size).max(1);
    let start = index.saturating_mul(size).min(total);
    let end = (start + size).min(total);
    let mut info = json!({
        "index": index,
        "size": size,
        "totalPages": total_pages,
        "totalResults": total,
    });
    if index + 1 < total_pages {
        info["nextPage"] = json!((index + 1).to_string());
    }
    Ok((start..end, info))
}

/// The files of a page with their manifest sha256 (hashing big synthetic files on a blocking
/// thread; each file's digest is computed once and cached).
async fn hashed(
    asset: &Arc<Asset>,
    version: &str,
    range: std::ops::Range<usize>,
) -> Vec<(String, u64, String)> {
    let asset = asset.clone();
    let version = version.to_string();
    tokio::task::spawn_blocking(move || {
        let ver = asset.version(&version).expect("version checked");
        ver.files[range]
            .iter()
            .map(|f| (f.path.clone(), f.manifest_size(), f.manifest_sha()))
            .collect()
    })
    .await
    .unwrap_or_default()
}

fn asset_json(a: &Asset) -> Value {
    let latest = a.latest_version();
    let mut v = json!({
        "name": a.name,
        "displayName": a.display_name,
        "orgName": a.org,
        "description": a.description,
        "shortDescription": a.description,
        "application": a.application,
        "framework": a.framework,
        "precision": a.precision,
        "builtBy": "NVIDIA",
        "publisher": "NVIDIA",
        "labels": [],
        "isPublic": a.public,
        "canGuestDownload": a.public && !a.eula_required,
        "isReadOnly": true,
        "hasSignedVersion": false,
        "createdDate": "2020-09-01T12:00:00.000Z",
        "updatedDate": latest.map_or("2020-09-01T12:00:00.000Z", |v| v.created.as_str()),
        "latestVersionIdStr": latest.map(|v| v.id.clone()),
        "latestVersionSizeInBytes": latest.map(Version::total_size),
    });
    if let Some(t) = &a.team {
        v["teamName"] = json!(t);
    }
    if a.eula_required {
        v["licenseTerms"] = json!([{
            "licenseId": format!("{}-eula", a.name),
            "licenseVersion": "1.0",
            "needsAcceptance": true,
        }]);
    }
    v
}

fn version_json(a: &Asset, v: &Version) -> Value {
    json!({
        "versionId": v.id,
        // deprecated numeric id (ngcsdk's `ModelVersion.id`/`RecipeVersion.id` are integers)
        "id": org_id(&format!("{}:{}", a.id(), v.id)),
        "status": v.status,
        "description": v.description,
        "totalSizeInBytes": v.total_size(),
        "totalFileCount": v.files.len(),
        "storageVersion": if v.files.is_empty() { "" } else { "V2" },
        "createdDate": v.created,
        "updatedDate": v.created,
        "ownerName": a.org,
        "isSigned": false,
        "malwareScanStatus": "PASSED",
        "malwareScanDate": v.created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(path: &str) -> Option<Parsed> {
        let segs = segments(path);
        parse(&segs[1..])
    }

    #[test]
    fn path_forms() {
        let a = p("/v2/org/nvidia/team/med/models/m/versions/1/files/config/a.json").unwrap();
        assert_eq!(a.team.as_deref(), Some("med"));
        assert_eq!(a.what, What::File("1".into(), "config/a.json".into()));
        let b = p("/v2/models/nvidia/med/m/versions/1/files").unwrap();
        assert_eq!((b.org.as_str(), b.team.as_deref()), ("nvidia", Some("med")));
        assert_eq!(b.what, What::Files("1".into()));
        let c = p("/v2/resources/nvidia/r/versions/2/zip").unwrap();
        assert_eq!(
            (c.kind, c.team.clone(), c.what),
            (Kind::Resource, None, What::Zip("2".into()))
        );
        let d = p("/v2/org/nvidia/models/m/3/files").unwrap();
        assert_eq!(d.what, What::Manifest("3".into()));
        let e = p("/v2/models/org/nvidia/team/med/m/1/files").unwrap();
        assert_eq!(
            (e.team.as_deref(), e.what),
            (Some("med"), What::Manifest("1".into()))
        );
        let f = p("/v2/models/nvidia/med/m").unwrap();
        assert_eq!(f.what, What::Asset);
        let g = p("/v2/org/nvidia/resources/r/versions/1/files/dir/a%20b.txt").unwrap();
        assert_eq!(g.what, What::File("1".into(), "dir/a b.txt".into()));
        assert!(p("/v2/datasets/nvidia/x/versions/1").is_none());
        assert!(p("/v2/models/a/b/c/d/versions/1").is_none());
    }
}
