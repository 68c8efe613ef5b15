//! Retry and polling delays.

use std::time::{Duration, SystemTime};

use rand::Rng;
use reqwest::header::HeaderMap;
use time::OffsetDateTime;
use time::macros::format_description;

/// How transient failures are retried and how long-running operations are polled.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total tries of one request, including the first.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt, with jitter.
    pub base_delay: Duration,
    /// Longest computed backoff.
    pub max_delay: Duration,
    /// Longest wait honoured from a server's `Retry-After` on a retry.
    pub max_retry_after: Duration,
    /// Poll interval when the service gives no `Retry-After`.
    pub poll_default: Duration,
    /// Shortest poll interval, whatever `Retry-After` says (the RPC allows 10s+,
    /// the emulator sends 1s; tests lower this).
    pub poll_min: Duration,
    /// Longest poll interval, so progress is noticed reasonably soon.
    pub poll_max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(300),
            poll_default: Duration::from_secs(5),
            poll_min: Duration::from_secs(1),
            poll_max: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Jittered exponential backoff before retry number `attempt` (1 = first
    /// retry): uniform in [d/2, d] where d = base·2^(attempt-1), capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let d = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let half = d / 2;
        let jitter_ms = rand::rng().random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }

    /// Delay before retrying after failed attempt `attempt`: the server's
    /// `Retry-After` if any, else backoff.
    pub(crate) fn retry_delay(&self, attempt: u32, headers: Option<&HeaderMap>) -> Duration {
        match headers.and_then(retry_after) {
            Some(d) => d.min(self.max_retry_after),
            None => self.backoff(attempt),
        }
    }

    /// Delay before the next poll of a long-running operation.
    pub(crate) fn poll_delay(&self, headers: &HeaderMap) -> Duration {
        retry_after(headers)
            .unwrap_or(self.poll_default)
            .clamp(self.poll_min, self.poll_max.max(self.poll_min))
    }
}

/// Statuses worth retrying: throttling and transient server errors.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// The server's requested wait: `x-ms-retry-after-ms`, `retry-after-ms`, then
/// `Retry-After` as seconds or an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    for name in ["x-ms-retry-after-ms", "retry-after-ms"] {
        if let Some(ms) = text(name).and_then(|v| v.parse::<f64>().ok())
            && ms.is_finite()
            && ms >= 0.0
        {
            return Some(Duration::from_millis(ms as u64));
        }
    }
    let value = text("retry-after")?;
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let date = parse_http_date(value)?;
    let now = OffsetDateTime::from(SystemTime::now());
    Some(if date > now {
        (date - now).unsigned_abs()
    } else {
        Duration::ZERO
    })
}

/// IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT` (the form RFC 9110 requires senders to use).
fn parse_http_date(value: &str) -> Option<OffsetDateTime> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(value, format)
        .ok()
        .map(|p| p.assume_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(
            retry_after(&h(&[("retry-after", "7")])),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after(&h(&[("x-ms-retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "7"), ("x-ms-retry-after-ms", "1500")])),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            retry_after(&h(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")])),
            Some(Duration::ZERO)
        );
        let future = OffsetDateTime::now_utc() + time::Duration::seconds(90);
        let fmt = format_description!(
            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
        );
        let d = retry_after(&h(&[("retry-after", &future.format(fmt).unwrap())])).unwrap();
        assert!(
            d > Duration::from_secs(85) && d <= Duration::from_secs(90),
            "{d:?}"
        );
        assert_eq!(retry_after(&h(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn backoff_grows_with_jitter_and_caps() {
        let p = RetryPolicy::default();
        for _ in 0..50 {
            let d1 = p.backoff(1);
            assert!(
                d1 >= Duration::from_millis(250) && d1 <= Duration::from_millis(500),
                "{d1:?}"
            );
            let d4 = p.backoff(4);
            assert!(
                d4 >= Duration::from_secs(2) && d4 <= Duration::from_secs(4),
                "{d4:?}"
            );
            let d20 = p.backoff(20);
            assert!(
                d20 >= Duration::from_secs(15) && d20 <= Duration::from_secs(30),
                "{d20:?}"
            );
        }
    }

    #[test]
    fn poll_delay_clamps() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.poll_delay(&h(&[("retry-after", "1")])),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.poll_delay(&h(&[("retry-after", "0")])),
            Duration::from_secs(1)
        );
        assert_eq!(
            p.poll_delay(&h(&[("retry-after", "600")])),
            Duration::from_secs(60)
        );
        assert_eq!(p.poll_delay(&HeaderMap::new()), Duration::from_secs(5));
    }
}
