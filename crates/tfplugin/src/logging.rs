//! Logging to stderr. Stdout belongs to the handshake.
//!
//! As a plugin, each event is one hclog-style JSON line
//! (`{"@level":"debug","@message":"…","@timestamp":"…",…}`): go-plugin parses those and
//! re-logs them at the right level in Terraform's log (TF_LOG / TF_LOG_PROVIDER).
//! In `--debug` mode a human is watching the terminal, so plain text is used instead.

use std::io::Write as _;

use serde_json::{Map, Value as J};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Level from TF_LOG_PROVIDER, else TF_LOG; default warn. Like Terraform, any other
/// non-empty value (e.g. `1`, `JSON`) means trace.
pub fn level_from_env() -> LevelFilter {
    let raw = std::env::var("TF_LOG_PROVIDER")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| std::env::var("TF_LOG").ok());
    parse_level(raw.as_deref())
}

pub fn parse_level(raw: Option<&str>) -> LevelFilter {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") => LevelFilter::WARN,
        Some("off") => LevelFilter::OFF,
        Some("error") => LevelFilter::ERROR,
        Some("warn") => LevelFilter::WARN,
        Some("info") => LevelFilter::INFO,
        Some("debug") => LevelFilter::DEBUG,
        Some(_) => LevelFilter::TRACE,
    }
}

/// Installs the global subscriber once; later calls (e.g. from tests) are no-ops.
pub fn init(debug_mode: bool) {
    let level = level_from_env();
    // HTTP/2 and TLS internals drown everything else at debug/trace.
    let quiet = std::cmp::min(level, LevelFilter::INFO);
    let filter = Targets::new()
        .with_default(level)
        .with_target("h2", quiet)
        .with_target("hyper", quiet)
        .with_target("hyper_util", quiet)
        .with_target("tower", quiet)
        .with_target("rustls", quiet);
    let registry = tracing_subscriber::registry();
    let _ = if debug_mode {
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter);
        registry.with(fmt).try_init()
    } else {
        registry.with(HclogJson.with_filter(filter)).try_init()
    };
}

/// Writes each event as one hclog JSON line on stderr.
pub struct HclogJson;

impl<S: Subscriber> Layer<S> for HclogJson {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = render_event(event).into_bytes();
        line.push(b'\n');
        // One write per line keeps lines whole when several threads log at once.
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

fn render_event(event: &Event<'_>) -> String {
    let meta = event.metadata();
    let mut fields = FieldsVisitor::default();
    event.record(&mut fields);
    let mut obj = Map::new();
    // go-plugin type-asserts these three to strings, so they must always be strings.
    obj.insert("@level".into(), J::from(level_name(*meta.level())));
    obj.insert("@message".into(), J::from(fields.message));
    obj.insert("@timestamp".into(), J::from(timestamp()));
    obj.insert(
        "@module".into(),
        J::from(format!("provider.{}", meta.target())),
    );
    for (k, v) in fields.fields {
        // Never let a field shadow the reserved keys.
        obj.entry(k).or_insert(v);
    }
    J::Object(obj).to_string()
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// hclog's timestamp layout `2006-01-02T15:04:05.000000Z07:00`; go-plugin parses it
/// with exactly that layout, so exactly six fractional digits.
fn timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    now.format(fmt).unwrap_or_default()
}

#[derive(Default)]
struct FieldsVisitor {
    message: String,
    fields: Vec<(String, J)>,
}

impl FieldsVisitor {
    fn put(&mut self, field: &Field, v: J) {
        if field.name() == "message" {
            self.message = match v {
                J::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.push((field.name().to_string(), v));
        }
    }
}

impl Visit for FieldsVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, J::from(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, J::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, J::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, J::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, J::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(
            field,
            serde_json::Number::from_f64(value)
                .map(J::Number)
                .unwrap_or(J::Null),
        );
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, J::from(value.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Captures rendered lines instead of writing to stderr.
    struct Capture(Arc<Mutex<Vec<String>>>);
    impl<S: Subscriber> Layer<S> for Capture {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            self.0.lock().unwrap().push(render_event(event));
        }
    }

    #[test]
    fn hclog_json_shape() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sub = tracing_subscriber::registry().with(Capture(lines.clone()));
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(rpc = "Configure", n = 3, ok = true, "hello {}", "world");
        });
        let lines = lines.lock().unwrap();
        let v: J = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["@level"], "warn");
        assert_eq!(v["@message"], "hello world");
        assert_eq!(v["rpc"], "Configure");
        assert_eq!(v["n"], 3);
        assert_eq!(v["ok"], true);
        let ts = v["@timestamp"].as_str().unwrap();
        // 2024-01-02T03:04:05.123456Z
        assert_eq!(ts.len(), 27, "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[19] == b'.', "{ts}");
    }

    #[test]
    fn levels() {
        assert_eq!(parse_level(None), LevelFilter::WARN);
        assert_eq!(parse_level(Some("")), LevelFilter::WARN);
        assert_eq!(parse_level(Some("DEBUG")), LevelFilter::DEBUG);
        assert_eq!(parse_level(Some("info")), LevelFilter::INFO);
        assert_eq!(parse_level(Some("off")), LevelFilter::OFF);
        assert_eq!(parse_level(Some("JSON")), LevelFilter::TRACE);
        assert_eq!(parse_level(Some("trace")), LevelFilter::TRACE);
    }
}
