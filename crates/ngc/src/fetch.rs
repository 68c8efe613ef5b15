//! Opening one download: redirects (followed by hand so credentials stay on the API
//! origin), the 401 token renewal, and what a `Range` answer means.

use reqwest::header::{CONTENT_RANGE, HeaderValue, LOCATION, RANGE};
use reqwest::{Response, StatusCode};
use url::Url;

use crate::NgcClient;
use crate::error::{NgcError, redact_url};
use crate::manifest::SingleFile;
use crate::source::AssetRef;

/// More hops than any sane API → object store chain needs.
const MAX_REDIRECTS: usize = 10;

/// One file to fetch.
#[derive(Clone)]
pub(crate) struct Job {
    pub rel_path: String,
    pub url: Url,
    /// The asset, for wording errors; `None` for plain URLs.
    pub asset: Option<AssetRef>,
    /// Whether the request starts on the NGC API (and so may carry credentials).
    pub ngc_api: bool,
    pub expected_size: Option<u64>,
    pub expected_sha256: Option<[u8; 32]>,
    /// Version of `asset` whose presigned URL this is (so an expired one can be renewed).
    pub signed_version: Option<String>,
}

impl Job {
    pub(crate) fn what(&self) -> String {
        match &self.asset {
            Some(a) => format!("file {} of {} {}", self.rel_path, a.kind, a),
            None => format!("download {}", self.rel_path),
        }
    }

    pub(crate) fn from_single(asset: Option<AssetRef>, single: &SingleFile) -> Job {
        Job {
            rel_path: single.file_name.clone(),
            url: single.url.clone(),
            asset,
            ngc_api: single.ngc_api,
            expected_size: None,
            expected_sha256: single.expected_sha256,
            signed_version: None,
        }
    }
}

/// A response whose body is the file's bytes from `start` on.
pub(crate) enum Opened {
    Body {
        resp: Response,
        start: u64,
        /// The whole file's size as the server states it (`Content-Range: …/N`, or the
        /// `Content-Length` of a 200), when it does.
        total: Option<u64>,
    },
    /// The server refused the range (416) or answered it with the wrong range: the
    /// partial file must be discarded and the download restarted from 0. `total` is the
    /// size a 416 states (`Content-Range: bytes */N`).
    Restart { total: Option<u64> },
}

impl NgcClient {
    /// GETs the job's URL from byte `offset`, following redirects. Credentials go only to
    /// the NGC API origin: a hop to any other scheme, host or port (the signed object-store
    /// URL) gets none, and neither do hops after it.
    pub(crate) async fn open(&self, job: &Job, offset: u64) -> Result<Opened, NgcError> {
        let what = job.what();
        let scope = job.asset.as_ref().map(NgcClient::scope);
        let mut url = job.url.clone();
        let mut on_api = job.ngc_api && self.is_api_origin(&url);
        let mut auth: Option<HeaderValue> = match (&scope, on_api) {
            (Some(scope), true) => self.auth.header(scope).await?,
            _ => None,
        };
        let mut renewed = false;
        let mut hops = 0;
        let resp = loop {
            let send_auth = auth.as_ref().filter(|_| on_api);
            let resp = self
                .retry
                .send(&what, &url, || {
                    let mut rb = if on_api {
                        self.api_request(&url, send_auth)
                    } else {
                        self.options.http.get(url.clone())
                    };
                    if offset > 0 {
                        rb = rb.header(RANGE, format!("bytes={offset}-"));
                    }
                    rb
                })
                .await?;
            let status = resp.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                hops += 1;
                let next = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                let Some(next) = next.filter(|_| hops <= MAX_REDIRECTS) else {
                    return Err(NgcError::Protocol {
                        what,
                        url: redact_url(&url),
                        message: format!(
                            "redirect {} without a usable Location, or more than {MAX_REDIRECTS} redirects",
                            status.as_u16()
                        ),
                    });
                };
                if !matches!(next.scheme(), "https" | "http")
                    || (url.scheme() == "https" && next.scheme() == "http")
                {
                    return Err(NgcError::Protocol {
                        what,
                        url: redact_url(&url),
                        message: format!("refusing redirect to {}", redact_url(&next)),
                    });
                }
                tracing::debug!(from = %redact_url(&url), to = %redact_url(&next), "following redirect");
                // Once off the API origin, never back on it with credentials.
                on_api = on_api && self.is_api_origin(&next);
                url = next;
                continue;
            }
            if status == StatusCode::UNAUTHORIZED
                && on_api
                && !renewed
                && self.auth.can_renew()
                && let (Some(scope), Some(stale)) = (&scope, &auth)
            {
                auth = self.auth.renew(scope, stale).await?;
                renewed = true;
                continue;
            }
            break resp;
        };

        let total = content_range_total(&resp);
        match resp.status() {
            StatusCode::OK => {
                let total = resp.content_length();
                Ok(Opened::Body {
                    resp,
                    start: 0,
                    total,
                })
            }
            StatusCode::PARTIAL_CONTENT => match content_range_start(&resp) {
                Some(start) if start == offset => Ok(Opened::Body { resp, start, total }),
                other => {
                    tracing::warn!(file = %job.rel_path, asked = offset, got = ?other, "server answered a different range; restarting the file");
                    Ok(Opened::Restart { total })
                }
            },
            StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 => Ok(Opened::Restart { total }),
            _ => Err(self.file_status_error(job, &url, on_api, resp).await),
        }
    }

    /// NGC statuses get NGC wording; the object store's (an expired signature, say) do not,
    /// since "your API key lacks access" would mislead there.
    async fn file_status_error(
        &self,
        job: &Job,
        url: &Url,
        on_api: bool,
        resp: Response,
    ) -> NgcError {
        match (&job.asset, on_api) {
            (Some(asset), true) => self.status_error(asset, &job.what(), url, resp).await,
            _ => NgcError::Http {
                what: job.what(),
                status: resp.status().as_u16(),
                url: redact_url(url),
                detail: String::new(),
            },
        }
    }
}

/// `<total>` of `Content-Range: bytes <first>-<last>/<total>` or `bytes */<total>`.
fn content_range_total(resp: &Response) -> Option<u64> {
    let value = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let (_, total) = value.trim().strip_prefix("bytes ")?.rsplit_once('/')?;
    total.trim().parse().ok()
}

/// First byte of `Content-Range: bytes <first>-<last>/<total>`.
fn content_range_start(resp: &Response) -> Option<u64> {
    let value = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes ")?;
    let (first, _) = range.split_once('-')?;
    first.trim().parse().ok()
}
