//! go-plugin handshake: magic cookie, protocol negotiation and the lines we print.

use std::net::SocketAddr;

use base64::Engine as _;

/// Terraform's handshake cookie (terraform `internal/plugin/serve.go`).
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// What go-plugin prints when a plugin binary is run by hand.
pub const NOT_A_PLUGIN_MESSAGE: &str = "This binary is a plugin. These are not meant to be executed directly.\n\
Please execute the program that consumes these plugins, which will\n\
load any plugins automatically";

/// go-plugin's own protocol version (first handshake field).
pub const CORE_PROTOCOL_VERSION: u32 = 1;
/// The Terraform plugin protocol this crate speaks.
pub const APP_PROTOCOL_VERSION: u32 = 5;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error(
        "Terraform offered plugin protocol versions [{offered}] but this provider only speaks protocol 5; \
         use a Terraform version that supports protocol 5 (0.12 or later)"
    )]
    UnsupportedProtocol { offered: String },
}

/// True when the magic cookie in the environment matches Terraform's.
pub fn cookie_matches(value: Option<&str>) -> bool {
    value == Some(MAGIC_COOKIE_VALUE)
}

/// Picks the app protocol from `PLUGIN_PROTOCOL_VERSIONS`. Unset or empty means the
/// client predates version negotiation, which go-plugin also answers with its default.
pub fn negotiate_protocol(plugin_protocol_versions: Option<&str>) -> Result<u32, HandshakeError> {
    let offered = plugin_protocol_versions.unwrap_or("").trim();
    if offered.is_empty() {
        return Ok(APP_PROTOCOL_VERSION);
    }
    let supported = offered
        .split(',')
        .any(|v| v.trim().parse::<u32>() == Ok(APP_PROTOCOL_VERSION));
    if supported {
        Ok(APP_PROTOCOL_VERSION)
    } else {
        Err(HandshakeError::UnsupportedProtocol {
            offered: offered.to_string(),
        })
    }
}

/// `1|5|tcp|127.0.0.1:PORT|grpc|<cert>`; the cert is unpadded standard base64 of the
/// DER (go-plugin decodes with RawStdEncoding and rejects padding).
pub fn handshake_line(addr: SocketAddr, server_cert_der: Option<&[u8]>) -> String {
    let cert = server_cert_der
        .map(|der| base64::engine::general_purpose::STANDARD_NO_PAD.encode(der))
        .unwrap_or_default();
    format!("{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|{addr}|grpc|{cert}")
}

/// The `TF_REATTACH_PROVIDERS='…'` line for debug mode (terraform `reattach.go` format).
pub fn reattach_line(provider_address: &str, pid: u32, addr: SocketAddr) -> String {
    // serde_json escapes the address; single quotes would break the shell quoting.
    let key = serde_json::Value::from(provider_address)
        .to_string()
        .replace('\'', "\\u0027");
    format!(
        "TF_REATTACH_PROVIDERS='{{{key}:{{\"Protocol\":\"grpc\",\"ProtocolVersion\":{APP_PROTOCOL_VERSION},\"Pid\":{pid},\"Test\":true,\"Addr\":{{\"Network\":\"tcp\",\"String\":\"{addr}\"}}}}}}'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation() {
        assert_eq!(negotiate_protocol(Some("5,6")), Ok(5));
        assert_eq!(negotiate_protocol(Some("6, 5")), Ok(5));
        assert_eq!(negotiate_protocol(None), Ok(5));
        assert_eq!(negotiate_protocol(Some("")), Ok(5));
        let err = negotiate_protocol(Some("6")).unwrap_err();
        assert!(err.to_string().contains("[6]"), "{err}");
        assert!(negotiate_protocol(Some("x,55")).is_err());
    }

    #[test]
    fn cookie() {
        assert!(cookie_matches(Some(MAGIC_COOKIE_VALUE)));
        assert!(!cookie_matches(Some("nope")));
        assert!(!cookie_matches(None));
    }

    #[test]
    fn handshake_line_format() {
        let addr: SocketAddr = "127.0.0.1:45761".parse().unwrap();
        // 4 bytes -> 6 chars, padded would be "AQIDBA=="
        assert_eq!(
            handshake_line(addr, Some(&[1, 2, 3, 4])),
            "1|5|tcp|127.0.0.1:45761|grpc|AQIDBA"
        );
        assert_eq!(handshake_line(addr, None), "1|5|tcp|127.0.0.1:45761|grpc|");
    }

    #[test]
    fn reattach_line_format() {
        let addr: SocketAddr = "127.0.0.1:46107".parse().unwrap();
        let line = reattach_line("registry.terraform.io/clara-ml/clara", 12345, addr);
        assert_eq!(
            line,
            r#"TF_REATTACH_PROVIDERS='{"registry.terraform.io/clara-ml/clara":{"Protocol":"grpc","ProtocolVersion":5,"Pid":12345,"Test":true,"Addr":{"Network":"tcp","String":"127.0.0.1:46107"}}}'"#
        );
        let json = line
            .strip_prefix("TF_REATTACH_PROVIDERS='")
            .unwrap()
            .strip_suffix('\'')
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(
            v["registry.terraform.io/clara-ml/clara"]["Addr"]["String"],
            "127.0.0.1:46107"
        );
    }
}
