//! Blob service errors: the `x-ms-error-code` header / `<Error><Code>` body, plus
//! transport, local I/O and validation failures.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use reqwest::header::HeaderMap;

use super::xml;

/// A Blob Storage failure. `status` is `None` when no HTTP response applies
/// (connection failure, local file error, invalid argument).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlobError {
    pub status: Option<u16>,
    /// The service's `x-ms-error-code` (or XML `<Code>`), e.g. `BlobNotFound`,
    /// or one of the local codes below.
    pub code: String,
    /// What failed (operation and `container/blob`) and the service's message.
    /// Never holds a key, SAS or `Authorization` value.
    pub message: String,
}

impl BlobError {
    /// No Entra ID token could be had for storage.
    pub const AUTHENTICATION_FAILED: &'static str = "AuthenticationFailed";
    /// The service could not be reached (or the connection broke) after all retries.
    pub const CONNECTION_ERROR: &'static str = "ConnectionError";
    /// A local file could not be read.
    pub const IO_ERROR: &'static str = "IoError";
    /// An argument was rejected before anything was sent.
    pub const INVALID_INPUT: &'static str = "InvalidInput";
    /// A response this client cannot interpret.
    pub const INVALID_RESPONSE: &'static str = "InvalidResponse";
    /// Downloaded bytes do not match the blob's `Content-MD5`.
    pub const MD5_MISMATCH: &'static str = "Md5Mismatch";
    /// The local file changed between hashing and uploading.
    pub const FILE_CHANGED: &'static str = "FileChangedDuringUpload";

    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            status: None,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.status == Some(409)
    }

    /// 403: bad key or SAS, expired SAS, missing permission, firewall.
    pub fn is_forbidden(&self) -> bool {
        self.status == Some(403)
    }

    /// 403 `AuthorizationPermissionMismatch`: the Entra ID principal was
    /// authenticated but its role assignments do not allow this operation
    /// (e.g. no Storage Blob Data role on the account or container).
    pub fn is_permission_mismatch(&self) -> bool {
        self.status == Some(403) && self.code == "AuthorizationPermissionMismatch"
    }

    /// 403 `KeyBasedAuthenticationNotPermitted`: the account has Shared Key
    /// access disabled, which also refuses SAS tokens signed with its key.
    pub fn is_key_auth_refused(&self) -> bool {
        self.status == Some(403) && self.code == "KeyBasedAuthenticationNotPermitted"
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(Self::INVALID_INPUT, message)
    }

    pub(crate) fn io(what: impl fmt::Display, err: &std::io::Error) -> Self {
        Self::new(Self::IO_ERROR, format!("{what}: {err}"))
    }

    /// Builds the error for a non-success response. `context` names the
    /// operation and resource, e.g. `Put Block data/a.bin`.
    pub(crate) fn from_response(
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        context: &str,
    ) -> Self {
        let parsed = xml::parse_error(body);
        let header_code = headers
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned);
        let code = header_code
            .or_else(|| {
                parsed
                    .as_ref()
                    .map(|p| p.code.clone())
                    .filter(|c| !c.is_empty())
            })
            .unwrap_or_else(|| status_code_name(status));
        let mut detail = match &parsed {
            Some(p) if !p.message.is_empty() => p.message.clone(),
            Some(_) => String::new(),
            None => {
                let text = String::from_utf8_lossy(body);
                truncate(text.trim(), 500)
            }
        };
        if let Some(extra) = parsed.as_ref().and_then(|p| p.auth_detail.as_deref()) {
            detail.push_str(" (");
            detail.push_str(extra);
            detail.push(')');
        }
        if detail.trim().is_empty() {
            detail = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("no error message")
                .to_owned();
        }
        let mut detail = collapse_whitespace(&detail);
        if let Some(id) = headers.get("x-ms-request-id").and_then(|v| v.to_str().ok())
            && !detail.contains(id)
        {
            detail.push_str(&format!(" RequestId:{id}"));
        }
        Self {
            status: Some(status),
            code,
            message: redact(&format!("{context}: {detail}")),
        }
    }

    pub(crate) fn transport(err: reqwest::Error, context: &str) -> Self {
        // Without the URL: a SAS rides in the query string. reqwest's Display is
        // terse ("error sending request"); the cause chain says what happened.
        let err = err.without_url();
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Self::new(
            Self::CONNECTION_ERROR,
            redact(&format!("{context}: {message}")),
        )
    }
}

impl fmt::Display for BlobError {
    /// `BlobNotFound: Get Blob data/x: The specified blob does not exist. RequestId:… [status 404]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(s) = self.status {
            write!(f, " [status {s}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for BlobError {}

/// Removes anything signature-like from service text: SAS `sig=` values and the
/// MAC that Azure echoes back in `AuthenticationErrorDetail` (valid for the
/// same request for 15 minutes).
pub(crate) fn redact(text: &str) -> String {
    static SIG: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(?i)\b(sig=)[^&\s'\x22<]+").expect("valid regex"));
    // HMAC-SHA256 in base64 is 44 characters ending in '='.
    static MAC: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"[A-Za-z0-9+/]{43}=").expect("valid regex"));
    static AUTH: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"(?i)\b(SharedKey(?:Lite)?\s+[^:\s]+:)\S+").expect("valid regex")
    });
    let text = SIG.replace_all(text, "${1}<redacted>");
    let text = AUTH.replace_all(&text, "${1}<redacted>");
    MAC.replace_all(&text, "<redacted>").into_owned()
}

fn collapse_whitespace(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_storage_error_xml_and_header() {
        let body = "\u{feff}<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>BlobNotFound</Code>\
            <Message>The specified blob does not exist.\nRequestId:abc\nTime:2024-01-01T00:00:00Z</Message></Error>";
        let mut h = HeaderMap::new();
        h.insert("x-ms-request-id", "abc".parse().unwrap());
        let e = BlobError::from_response(404, &h, body.as_bytes(), "Get Blob c/b");
        assert!(e.is_not_found());
        assert_eq!(e.code, "BlobNotFound");
        assert_eq!(
            e.to_string(),
            "BlobNotFound: Get Blob c/b: The specified blob does not exist. RequestId:abc \
             Time:2024-01-01T00:00:00Z [status 404]"
        );
        h.insert("x-ms-error-code", "ContainerNotFound".parse().unwrap());
        let e = BlobError::from_response(404, &h, b"", "Get Blob c/b");
        assert_eq!(e.code, "ContainerNotFound");
        assert_eq!(e.message, "Get Blob c/b: Not Found RequestId:abc");
    }

    #[test]
    fn no_body_falls_back_to_status_name() {
        let e = BlobError::from_response(503, &HeaderMap::new(), b"", "Put Block c/b");
        assert_eq!(e.code, "ServiceUnavailable");
        assert_eq!(
            e.to_string(),
            "ServiceUnavailable: Put Block c/b: Service Unavailable [status 503]"
        );
    }

    #[test]
    fn auth_failures_do_not_echo_signatures() {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code>\
            <Message>Server failed to authenticate the request.</Message>\
            <AuthenticationErrorDetail>The MAC signature found in the HTTP request \
            'Zm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyZm9vYmFyMTI=' is not the same as any computed signature. \
            Server used following string to sign: 'GET&#xA;&#xA;x-ms-version:2021-08-06'.</AuthenticationErrorDetail></Error>";
        let e = BlobError::from_response(403, &HeaderMap::new(), body.as_bytes(), "List Blobs c");
        assert!(e.is_forbidden());
        assert_eq!(e.code, "AuthenticationFailed");
        assert!(!e.message.contains("Zm9vYmFy"), "{e}");
        assert!(e.message.contains("string to sign"), "{e}");
        assert_eq!(
            redact("url?sv=2021&sig=abc%2Bdef&se=x SharedKey acct:c2lnbmF0dXJl"),
            "url?sv=2021&sig=<redacted>&se=x SharedKey acct:<redacted>"
        );
    }
}
