//! NGC-style error bodies: `{"requestStatus":{"statusCode","statusDescription","requestId"}}`
//! (`statusCode` from ngcsdk's `StatusCodeEnum`), and S3-style XML errors for the object store.

use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::util::new_guid;

#[derive(Debug, Clone)]
pub struct NgcError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    headers: Vec<(&'static str, String)>,
}

impl NgcError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        NgcError {
            status,
            code,
            message: message.into(),
            headers: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", message)
    }
}

impl IntoResponse for NgcError {
    fn into_response(self) -> Response {
        let body = json!({
            "requestStatus": {
                "statusCode": self.code,
                "statusDescription": self.message,
                "requestId": new_guid(),
            }
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        for (name, value) in &self.headers {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(*name), HeaderValue::from_str(value)) {
                resp.headers_mut().insert(n, v);
            }
        }
        resp
    }
}

/// S3-style XML error of the object store.
pub fn xml_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{}</RequestId></Error>\n",
        new_guid().replace('-', "")
    );
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    resp
}
