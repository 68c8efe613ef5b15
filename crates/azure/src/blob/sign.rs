//! Shared Key authorization for the Blob service (learn.microsoft.com
//! "Authorize with Shared Key", version 2009-09-19 and later), and the URL
//! encoding both the request and the signature rely on.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::Method;
use reqwest::header::HeaderMap;
use sha2::Sha256;
use time::OffsetDateTime;
use time::macros::format_description;

use super::BlobError;
use crate::Secret;

/// An account name and its decoded key. `Debug` never shows the key.
#[derive(Clone)]
pub(crate) struct SharedKey {
    pub account: String,
    key: Vec<u8>,
}

impl fmt::Debug for SharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedKey")
            .field("account", &self.account)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl SharedKey {
    pub fn new(account: &str, key: &Secret) -> Result<Self, BlobError> {
        if account.is_empty() || !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(BlobError::invalid_input(format!(
                "storage account name {account:?} must be letters and digits"
            )));
        }
        let key = B64.decode(key.expose().trim()).map_err(|_| {
            BlobError::invalid_input(format!(
                "the key of storage account {account} is not valid base64"
            ))
        })?;
        if key.is_empty() {
            return Err(BlobError::invalid_input(format!(
                "the key of storage account {account} is empty"
            )));
        }
        Ok(Self {
            account: account.to_owned(),
            key,
        })
    }

    /// `SharedKey {account}:{base64(HMAC-SHA256(key, string_to_sign))}`.
    pub fn authorization(&self, string_to_sign: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(string_to_sign.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("SharedKey {}:{sig}", self.account)
    }
}

/// The Shared Key string-to-sign.
///
/// `path` is the request path exactly as sent (percent-encoded, including an
/// Azurite-style `/{account}` prefix); `query` the decoded query parameters.
/// The canonicalized resource is `/{account}{path}`, so a path-style Azurite
/// URL yields `/devstoreaccount1/devstoreaccount1/container/blob`.
pub(crate) fn string_to_sign(
    method: &Method,
    account: &str,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> String {
    let h = |name: &str| -> String {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .collect();
        values.join(",")
    };
    let content_length = match h("content-length") {
        // Since 2015-02-21 a zero length is signed as the empty string.
        len if len == "0" => String::new(),
        len => len,
    };
    let mut s = String::with_capacity(256);
    s.push_str(method.as_str());
    s.push('\n');
    for part in [
        h("content-encoding"),
        h("content-language"),
        content_length,
        h("content-md5"),
        h("content-type"),
        h("date"),
        h("if-modified-since"),
        h("if-match"),
        h("if-none-match"),
        h("if-unmodified-since"),
        h("range"),
    ] {
        s.push_str(&part);
        s.push('\n');
    }

    // Canonicalized headers: every x-ms-* header, lower-case name, sorted,
    // `name:value\n` with the value trimmed and repeated values comma-joined.
    let mut names: Vec<&str> = headers
        .keys()
        .map(|k| k.as_str())
        .filter(|k| k.starts_with("x-ms-"))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        s.push_str(name);
        s.push(':');
        s.push_str(&unfold(&h(name)));
        s.push('\n');
    }

    // Canonicalized resource.
    s.push('/');
    s.push_str(account);
    s.push_str(if path.is_empty() { "/" } else { path });
    let mut params: Vec<(String, Vec<&str>)> = Vec::new();
    for (k, v) in query {
        let k = k.to_ascii_lowercase();
        match params.iter_mut().find(|(name, _)| *name == k) {
            Some((_, values)) => values.push(v),
            None => params.push((k, vec![v.as_str()])),
        }
    }
    params.sort_by(|a, b| a.0.cmp(&b.0));
    for (k, mut values) in params {
        values.sort_unstable();
        s.push('\n');
        s.push_str(&k);
        s.push(':');
        s.push_str(&values.join(","));
    }
    s
}

/// Folded whitespace runs (outside quotes) become one space, per the spec.
fn unfold(value: &str) -> String {
    if !value.contains(['\r', '\n']) {
        return value.to_owned();
    }
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `x-ms-date` value: IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) fn http_date(at: OffsetDateTime) -> String {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    at.to_offset(time::UtcOffset::UTC)
        .format(format)
        .expect("formattable date")
}

/// Percent-encodes everything except RFC 3986 unreserved characters (and `/`
/// when `keep_slash`): the form both Azure and Azurite canonicalize the same way.
pub(crate) fn percent_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for &b in s.as_bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Azurite's well-known development account (public, documented).
    const DEV_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn put_block_string_to_sign() {
        // Path-style (Azurite) URL: the account appears twice in the resource.
        let h = headers(&[
            ("content-length", "1048576"),
            ("content-md5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
            ("x-ms-version", "2021-08-06"),
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("user-agent", "ignored"),
        ]);
        let query = vec![
            ("comp".to_owned(), "block".to_owned()),
            ("blockid".to_owned(), "Y2xhcmEtMDAwMDAwMDA=".to_owned()),
        ];
        let s = string_to_sign(
            &Method::PUT,
            "devstoreaccount1",
            "/devstoreaccount1/data/dir/my%20file.bin",
            &query,
            &h,
        );
        assert_eq!(
            s,
            "PUT\n\n\n1048576\nQ2hlY2sgSW50ZWdyaXR5IQ==\n\n\n\n\n\n\n\n\
             x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-version:2021-08-06\n\
             /devstoreaccount1/devstoreaccount1/data/dir/my%20file.bin\n\
             blockid:Y2xhcmEtMDAwMDAwMDA=\ncomp:block"
        );
        // Signature cross-checked with Python: base64(hmac.new(b64decode(key), s, sha256)).
        let key = SharedKey::new("devstoreaccount1", &Secret::new(DEV_KEY)).unwrap();
        assert_eq!(
            key.authorization(&s),
            format!("SharedKey devstoreaccount1:{}", EXPECTED_PUT_BLOCK_SIG)
        );
    }

    const EXPECTED_PUT_BLOCK_SIG: &str = "YFHmSuEMRYknU2CAjv8jsyIzw4L7NBy7E+gHRmXYi0s=";

    #[test]
    fn list_string_to_sign_groups_and_sorts_query() {
        // Account-host URL (Azure): the resource is /{account}/{container}.
        let h = headers(&[
            ("x-ms-version", "2021-08-06"),
            ("x-ms-date", "Fri, 26 Jun 2015 23:39:12 GMT"),
            ("x-ms-meta-B", "2"),
            ("x-ms-meta-a", "  1  "),
        ]);
        let query = vec![
            ("restype".to_owned(), "container".to_owned()),
            ("comp".to_owned(), "list".to_owned()),
            ("include".to_owned(), "metadata".to_owned()),
            ("Prefix".to_owned(), "a b/".to_owned()),
            ("include".to_owned(), "deleted".to_owned()),
        ];
        let s = string_to_sign(&Method::GET, "myaccount", "/mycontainer", &query, &h);
        assert_eq!(
            s,
            "GET\n\n\n\n\n\n\n\n\n\n\n\n\
             x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\nx-ms-meta-a:1\nx-ms-meta-b:2\nx-ms-version:2021-08-06\n\
             /myaccount/mycontainer\ncomp:list\ninclude:deleted,metadata\nprefix:a b/\nrestype:container"
        );
    }

    #[test]
    fn zero_content_length_is_empty() {
        let h = headers(&[("content-length", "0"), ("content-type", "text/plain")]);
        let s = string_to_sign(&Method::PUT, "a", "/c", &[], &h);
        assert_eq!(s, "PUT\n\n\n\n\ntext/plain\n\n\n\n\n\n\n/a/c");
    }

    #[test]
    fn key_is_validated_and_never_printed() {
        assert!(SharedKey::new("acct", &Secret::new("not base64!")).is_err());
        assert!(SharedKey::new("acct", &Secret::new("")).is_err());
        assert!(SharedKey::new("bad/name", &Secret::new(DEV_KEY)).is_err());
        let key = SharedKey::new("acct", &Secret::new(DEV_KEY)).unwrap();
        let dbg = format!("{key:?}");
        assert!(!dbg.contains("Eby8") && dbg.contains("<redacted>"), "{dbg}");
    }

    #[test]
    fn encodings() {
        assert_eq!(
            percent_encode("a b/ü+%~.-_", true),
            "a%20b/%C3%BC%2B%25~.-_"
        );
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
        assert_eq!(
            http_date(time::macros::datetime!(1994-11-06 08:49:37 UTC)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
    }
}
