//! Headers every response carries: `x-ms-request-id`, `x-ms-correlation-request-id`
//! (echoed from the request when sent), `x-ms-client-request-id` (echoed when sent) and
//! `x-ms-ratelimit-remaining-subscription-reads|writes` (decrementing counters).

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;

use crate::app::AppState;
use crate::util::new_guid;

/// Ids assigned to the current request (request extension).
#[derive(Debug, Clone)]
pub struct RequestIds {
    pub request_id: String,
    pub correlation_id: String,
}

const CORRELATION: &str = "x-ms-correlation-request-id";
const CLIENT_REQUEST_ID: &str = "x-ms-client-request-id";

pub async fn middleware(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let correlation_id = header(req.headers(), CORRELATION).unwrap_or_else(new_guid);
    let client_request_id = header(req.headers(), CLIENT_REQUEST_ID);
    let ids = RequestIds {
        request_id: new_guid(),
        correlation_id,
    };
    let is_read = matches!(*req.method(), Method::GET | Method::HEAD);
    let is_admin = req.uri().path().starts_with("/_emulator");
    req.extensions_mut().insert(ids.clone());

    let mut resp = next.run(req).await;
    let headers = resp.headers_mut();
    set(headers, "x-ms-request-id", &ids.request_id);
    set(headers, CORRELATION, &ids.correlation_id);
    if let Some(id) = client_request_id {
        set(headers, CLIENT_REQUEST_ID, &id);
    }
    if !is_admin {
        let remaining = app.rate_limits.take(is_read);
        let name = if is_read {
            "x-ms-ratelimit-remaining-subscription-reads"
        } else {
            "x-ms-ratelimit-remaining-subscription-writes"
        };
        set(headers, name, &remaining.to_string());
    }
    resp
}

fn set(headers: &mut axum::http::HeaderMap, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(value)) {
        headers.insert(n, v);
    }
}

fn header(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}
