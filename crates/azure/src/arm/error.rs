//! ARM errors: the common-types `{"error":{code,message,target,details}}` shape,
//! plus transport, sign-in and local cancellation failures.

use std::fmt;

use reqwest::header::HeaderMap;
use serde_json::Value;

/// An ARM failure. `status` is `None` when no HTTP response applies (transport
/// error, failed long-running operation, cancellation).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArmError {
    pub status: Option<u16>,
    pub code: String,
    pub message: String,
    pub target: Option<String>,
    pub details: Vec<ArmError>,
    pub request_id: Option<String>,
}

impl ArmError {
    /// Code for failures to reach the service at all.
    pub const CONNECTION_ERROR: &'static str = "ConnectionError";
    /// Code for failures to get an access token.
    pub const AUTHENTICATION_FAILED: &'static str = "AuthenticationFailed";
    /// Code when the caller cancelled a wait.
    pub const CANCELED: &'static str = "Canceled";
    /// Code for responses this client cannot interpret.
    pub const INVALID_RESPONSE: &'static str = "InvalidResponse";

    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            ..Self::default()
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.status == Some(409)
    }

    pub fn is_throttled(&self) -> bool {
        self.status == Some(429)
    }

    pub fn is_canceled(&self) -> bool {
        self.status.is_none() && self.code == Self::CANCELED
    }

    pub(crate) fn canceled() -> Self {
        Self::new(Self::CANCELED, "operation canceled while waiting")
    }

    /// Parses an ErrorDetail object `{code, message, target?, details?}`.
    /// Tolerates the pre-2019 double nesting `{"error":{...}}` inside it.
    pub fn from_error_value(value: &Value) -> Option<Self> {
        let obj = value.as_object()?;
        if !obj.contains_key("code") && !obj.contains_key("message") {
            return obj.get("error").and_then(Self::from_error_value);
        }
        let text = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            status: None,
            code: text("code").unwrap_or_default(),
            message: text("message").unwrap_or_default(),
            target: text("target").filter(|t| !t.is_empty()),
            details: obj
                .get("details")
                .and_then(Value::as_array)
                .map(|d| d.iter().filter_map(Self::from_error_value).collect())
                .unwrap_or_default(),
            request_id: None,
        })
    }

    /// Builds the error for a non-success response, whatever its body holds.
    pub(crate) fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let parsed = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
            v.get("error")
                .and_then(Self::from_error_value)
                .or_else(|| Self::from_error_value(&v))
        });
        let mut err = parsed.unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            let message = if text.is_empty() {
                "no response body".to_owned()
            } else {
                truncate(text, 500)
            };
            Self::new(String::new(), message)
        });
        if err.code.is_empty() {
            err.code = status_code_name(status);
        }
        if err.message.is_empty() {
            err.message = "no error message".into();
        }
        err.status = Some(status);
        err.request_id = request_id(headers);
        err
    }

    pub(crate) fn transport(err: &reqwest::Error) -> Self {
        // reqwest's Display is terse ("error sending request"); the cause chain
        // says what actually happened (refused, reset, certificate...).
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self::new(Self::CONNECTION_ERROR, message)
    }
}

pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    ["x-ms-request-id", "x-ms-correlation-request-id"]
        .iter()
        .find_map(|h| {
            headers
                .get(*h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
}

fn status_code_name(status: u16) -> String {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| {
            r.split(|c: char| !c.is_ascii_alphanumeric())
                .collect::<String>()
        })
        .unwrap_or_else(|| format!("HttpStatus{status}"))
}

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

impl fmt::Display for ArmError {
    /// `BadRequest: message (target: properties.x) [status 400, x-ms-request-id abc]; details: ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(t) = &self.target {
            write!(f, " (target: {t})")?;
        }
        let mut tags = Vec::new();
        if let Some(s) = self.status {
            tags.push(format!("status {s}"));
        }
        if let Some(id) = &self.request_id {
            tags.push(format!("x-ms-request-id {id}"));
        }
        if !tags.is_empty() {
            write!(f, " [{}]", tags.join(", "))?;
        }
        for (i, d) in self.details.iter().enumerate() {
            f.write_str(if i == 0 { "; details: " } else { "; " })?;
            write!(f, "{}: {}", d.code, d.message)?;
            if let Some(t) = &d.target {
                write!(f, " (target: {t})")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ArmError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-ms-request-id", id.parse().unwrap());
        h
    }

    #[test]
    fn parses_common_error_response() {
        let body = br#"{"error":{"code":"BadRequest","message":"maxNodeCount must be >= minNodeCount","target":"properties.properties.scaleSettings","details":[{"code":"InvalidValue","message":"bad","target":"minNodeCount"}],"additionalInfo":[]}}"#;
        let e = ArmError::from_response(400, &headers("req-1"), body);
        assert_eq!(e.status, Some(400));
        assert_eq!(e.code, "BadRequest");
        assert_eq!(
            e.target.as_deref(),
            Some("properties.properties.scaleSettings")
        );
        assert_eq!(e.details.len(), 1);
        assert_eq!(e.details[0].code, "InvalidValue");
        assert_eq!(
            e.to_string(),
            "BadRequest: maxNodeCount must be >= minNodeCount (target: properties.properties.scaleSettings) \
             [status 400, x-ms-request-id req-1]; details: InvalidValue: bad (target: minNodeCount)"
        );
    }

    #[test]
    fn non_json_body_falls_back_to_status_name() {
        let e = ArmError::from_response(502, &HeaderMap::new(), b"<html>Bad Gateway</html>");
        assert_eq!(e.code, "BadGateway");
        assert_eq!(e.message, "<html>Bad Gateway</html>");
        assert_eq!(
            e.to_string(),
            "BadGateway: <html>Bad Gateway</html> [status 502]"
        );
        let e = ArmError::from_response(404, &HeaderMap::new(), b"");
        assert!(e.is_not_found());
        assert_eq!(e.to_string(), "NotFound: no response body [status 404]");
    }

    #[test]
    fn top_level_and_double_nested_errors() {
        let e = ArmError::from_response(
            409,
            &HeaderMap::new(),
            br#"{"code":"Conflict","message":"busy"}"#,
        );
        assert!(e.is_conflict());
        assert_eq!(e.code, "Conflict");
        let nested: Value =
            serde_json::from_str(r#"{"error":{"code":"X","message":"y"}}"#).unwrap();
        assert_eq!(ArmError::from_error_value(&nested).unwrap().code, "X");
    }

    #[test]
    fn long_bodies_are_truncated() {
        let body = "x".repeat(2000);
        let e = ArmError::from_response(500, &HeaderMap::new(), body.as_bytes());
        assert!(e.message.chars().count() <= 501);
    }
}
