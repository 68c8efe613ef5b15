//! Redaction of secrets in JSON bodies before they reach logs.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

static SECRET_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)password|secret|key|token|sas").expect("valid regex"));

/// A copy of `value` where the value of every object key matching
/// `/password|secret|key|token|sas/i` (at any depth) is `"<redacted>"`.
pub fn redact_json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_KEY.is_match(k) {
                        Value::String("<redacted>".into())
                    } else {
                        redact_json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        other => other.clone(),
    }
}

/// Body text safe for TRACE logs: redacted JSON, or only the size otherwise.
pub(crate) fn loggable_body(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "<empty>".into();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => redact_json(&v).to_string(),
        Err(_) => format!("<{} bytes, not JSON>", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn redacts_matching_keys_at_any_depth() {
        let v = json!({
            "name": "c1",
            "properties": {
                "properties": {
                    "userAccountCredentials": {
                        "adminUserName": "azureuser",
                        "adminUserPassword": "p@ss",
                        "adminUserSshPublicKey": "ssh-rsa AAA"
                    }
                },
                "credentials": {"credentialsType": "Sas", "secrets": {"sasToken": "sv=1"}},
                "list": [{"accountKey": "k"}, {"plain": 1}],
                "ClientSecret": {"nested": "object"},
                "accessTOKEN": null
            }
        });
        let r = redact_json(&v);
        assert_eq!(
            r,
            json!({
                "name": "c1",
                "properties": {
                    "properties": {
                        "userAccountCredentials": {
                            "adminUserName": "azureuser",
                            "adminUserPassword": "<redacted>",
                            "adminUserSshPublicKey": "<redacted>"
                        }
                    },
                    "credentials": {"credentialsType": "Sas", "secrets": "<redacted>"},
                    "list": [{"accountKey": "<redacted>"}, {"plain": 1}],
                    "ClientSecret": "<redacted>",
                    "accessTOKEN": "<redacted>"
                }
            })
        );
    }

    #[test]
    fn non_json_bodies_are_not_echoed() {
        assert_eq!(loggable_body(b"password=hunter2"), "<16 bytes, not JSON>");
        assert_eq!(loggable_body(b""), "<empty>");
        assert_eq!(loggable_body(br#"{"key":"v"}"#), r#"{"key":"<redacted>"}"#);
    }
}
