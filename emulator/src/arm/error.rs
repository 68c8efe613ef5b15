//! The common-types v3 ARM `ErrorResponse`: `{"error":{code,message,target?,details?}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
pub struct ArmError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    /// Rarely used parts, boxed to keep `Result<_, ArmError>` small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Clone, Default)]
struct Extra {
    target: Option<String>,
    details: Vec<ArmError>,
    headers: Vec<(&'static str, String)>,
}

impl ArmError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ArmError {
            status,
            code: code.into(),
            message: message.into(),
            extra: None,
        }
    }

    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Default::default)
    }

    pub fn with_code(mut self, code: &str) -> Self {
        self.code = code.to_string();
        self
    }

    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.extra().target = Some(target.into());
        self
    }

    pub fn with_details(mut self, details: Vec<ArmError>) -> Self {
        self.extra().details = details;
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra().headers.push((name, value.into()));
        self
    }

    pub fn target(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.target.as_deref())
    }

    // ---- common constructors -------------------------------------------------------------

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn invalid_content(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestContent", message)
    }

    pub fn not_found(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "Conflict", message)
    }

    pub fn unauthorized(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    /// The `error` object (without the outer envelope), as used in op-status bodies.
    pub fn body(&self) -> Value {
        let mut e = json!({ "code": self.code, "message": self.message });
        if let Some(t) = self.target() {
            e["target"] = json!(t);
        }
        if let Some(extra) = self.extra.as_ref().filter(|x| !x.details.is_empty()) {
            e["details"] = Value::Array(extra.details.iter().map(ArmError::body).collect());
        }
        e
    }

    pub fn envelope(&self) -> Value {
        json!({ "error": self.body() })
    }
}

impl IntoResponse for ArmError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.envelope())).into_response();
        let headers = resp.headers_mut();
        for (name, value) in self.extra.iter().flat_map(|e| e.headers.iter()) {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(*name, v);
            }
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        resp
    }
}

pub type ArmResult<T> = Result<T, ArmError>;
