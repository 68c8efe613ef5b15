//! Attribute validators. They run at validate and plan time on known, non-null values only,
//! so an unknown value (from another resource) is never rejected early.

use clara_tfplugin::Value;
use regex::Regex;

use crate::diag::{AttrPath, Diagnostics};

pub trait Validator: Send + Sync {
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics);
    /// One line for documentation.
    fn describe(&self) -> String;
}

/// String length in characters, inclusive.
pub struct Length(pub usize, pub usize);

impl Validator for Length {
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str() {
            let n = s.chars().count();
            if n < self.0 || n > self.1 {
                diags.attr_error(
                    path.clone(),
                    "Invalid attribute value length",
                    format!(
                        "{path} must be {} to {} characters long, got {n} (\"{s}\").",
                        self.0, self.1
                    ),
                );
            }
        }
    }
    fn describe(&self) -> String {
        format!("{} to {} characters", self.0, self.1)
    }
}

/// The whole string must match a pattern; `explain` says in words what is allowed.
pub struct Matches {
    re: Regex,
    explain: String,
}

impl Matches {
    pub fn new(pattern: &str, explain: &str) -> Self {
        let anchored = format!("^(?:{pattern})$");
        Matches {
            re: Regex::new(&anchored).expect("validator patterns are static"),
            explain: explain.into(),
        }
    }
}

impl Validator for Matches {
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str()
            && !self.re.is_match(s)
        {
            diags.attr_error(
                path.clone(),
                "Invalid attribute value",
                format!("{path} {}; got \"{s}\".", self.explain),
            );
        }
    }
    fn describe(&self) -> String {
        self.explain.clone()
    }
}

/// One of a fixed set of strings (case-sensitive, as the Azure API is).
pub struct OneOf(pub &'static [&'static str]);

impl Validator for OneOf {
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str()
            && !self.0.contains(&s)
        {
            diags.attr_error(
                path.clone(),
                "Invalid attribute value",
                format!(
                    "{path} must be one of {}; got \"{s}\".",
                    quoted_list(self.0)
                ),
            );
        }
    }
    fn describe(&self) -> String {
        format!("one of {}", quoted_list(self.0))
    }
}

/// A whole number within bounds, inclusive.
pub struct IntBetween(pub i64, pub i64);

impl Validator for IntBetween {
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        let Value::Number(n) = value else { return };
        match value.as_i64() {
            Some(i) if i >= self.0 && i <= self.1 => {}
            Some(i) => diags.attr_error(
                path.clone(),
                "Invalid attribute value",
                format!("{path} must be between {} and {}, got {i}.", self.0, self.1),
            ),
            None => diags.attr_error(
                path.clone(),
                "Invalid attribute value",
                format!("{path} must be a whole number, got {n}."),
            ),
        }
    }
    fn describe(&self) -> String {
        format!("a whole number from {} to {}", self.0, self.1)
    }
}

/// A Go-style duration such as "30s", "5m", "1h30m".
pub struct Duration;

impl Validator for Duration {
    fn validate(&self, value: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if let Some(s) = value.as_str()
            && let Err(e) = parse_duration(s)
        {
            diags.attr_error(path.clone(), "Invalid duration", format!("{path}: {e}"));
        }
    }
    fn describe(&self) -> String {
        "a duration such as \"30s\", \"10m\" or \"1h30m\"".into()
    }
}

/// Parses Go's time.ParseDuration subset Terraform users know: h, m, s, ms units.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let err = || {
        format!(
            "\"{s}\" is not a duration; use a number and unit, e.g. \"30s\", \"10m\" or \"1h30m\""
        )
    };
    if s.is_empty() {
        return Err(err());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(err()),
        };
        total += n * secs;
        rest = &rest[unit_len..];
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

fn quoted_list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert!(parse_duration("30").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5 minutes").is_err());
    }

    #[test]
    fn validators_name_the_attribute() {
        let mut d = Diagnostics::new();
        let p = AttrPath::root("vm_priority");
        OneOf(&["Dedicated", "LowPriority"]).validate(&Value::from("Spot"), &p, &mut d);
        assert!(d.has_errors());
        assert_eq!(d.0[0].path, Some(p.clone()));
        assert!(d.0[0].detail.contains("vm_priority"));
        let mut d = Diagnostics::new();
        IntBetween(0, 10).validate(&Value::Number(-1.0), &p, &mut d);
        IntBetween(0, 10).validate(&Value::Number(1.5), &p, &mut d);
        IntBetween(0, 10).validate(&Value::Unknown, &p, &mut d);
        assert_eq!(d.0.len(), 2);
        let mut d = Diagnostics::new();
        Matches::new("[a-z]+", "must be lower-case letters").validate(
            &Value::from("Ab"),
            &p,
            &mut d,
        );
        Length(3, 5).validate(&Value::from("ab"), &p, &mut d);
        assert_eq!(d.0.len(), 2);
    }
}
