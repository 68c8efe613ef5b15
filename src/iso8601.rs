//! ISO-8601 durations as Azure writes them ("PT300S", "PT5M", "PT1H2M3S", "P1DT2H").

pub fn duration(seconds: i64) -> String {
    format!("PT{seconds}S")
}

pub fn seconds(s: &str) -> Option<i64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0f64;
    for (part, units) in [
        (days, &[('W', 604_800.0), ('D', 86_400.0)][..]),
        (time, &[('H', 3600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut num = String::new();
        for c in part.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let mult = units.iter().find(|(u, _)| *u == c)?.1;
                total += num.parse::<f64>().ok()? * mult;
                num.clear();
            }
        }
        if !num.is_empty() {
            return None;
        }
    }
    Some(total.round() as i64)
}

/// Seconds in the provider's duration form, largest units first: `4h`, `2h30m`, `1m30s`,
/// `0s` (what an imported `timeout` reads back as, so `timeout = "4h"` matches `PT4H`).
pub fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

/// Seconds of a duration written either way: ISO 8601 (`PT4H`) or the provider's form
/// (`4h`, `240m`, `1h30m`).
pub fn any_seconds(s: &str) -> Option<i64> {
    seconds(s).or_else(|| {
        clara_framework::validators::parse_duration(s)
            .ok()
            .map(|d| d.as_secs_f64().round() as i64)
    })
}

/// Whether two durations mean the same time (`4h` = `240m` = `PT4H`).
pub fn same_duration(a: &str, b: &str) -> bool {
    match (any_seconds(a), any_seconds(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_azure_forms() {
        assert_eq!(super::seconds("PT300S"), Some(300));
        assert_eq!(super::seconds("PT5M"), Some(300));
        assert_eq!(super::seconds("PT1H2M3S"), Some(3723));
        assert_eq!(super::seconds("P1DT1S"), Some(86401));
        assert_eq!(super::seconds("300"), None);
        assert_eq!(super::seconds("PT5X"), None);
        assert_eq!(super::duration(120), "PT120S");
    }

    #[test]
    fn durations_by_meaning() {
        assert_eq!(super::human(14_400), "4h");
        assert_eq!(super::human(9_000), "2h30m");
        assert_eq!(super::human(90), "1m30s");
        assert_eq!(super::human(0), "0s");
        assert_eq!(super::human(86_400 + 1), "24h1s");
        assert!(super::same_duration("4h", "PT4H"));
        assert!(super::same_duration("240m", "PT14400S"));
        assert!(super::same_duration("4h", "240m"));
        assert!(!super::same_duration("4h", "PT5H"));
        assert!(!super::same_duration("bogus", "4h"));
    }
}
