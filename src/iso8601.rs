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
}
