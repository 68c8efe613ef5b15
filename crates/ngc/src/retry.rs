//! Sending one request with retries on transient failures.

use std::time::Duration;

use clara_azure::RetryPolicy;
use reqwest::{RequestBuilder, Response};
use url::Url;

use crate::error::{NgcError, redact_url};

/// How often and how patiently transient failures are retried.
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    policy: RetryPolicy,
}

impl Retry {
    pub(crate) fn new(attempts: u32, base_delay: Duration) -> Self {
        Retry {
            policy: RetryPolicy {
                max_attempts: attempts.max(1),
                base_delay,
                ..RetryPolicy::default()
            },
        }
    }

    /// Total tries of one request, the first included.
    pub(crate) fn attempts(&self) -> u32 {
        self.policy.max_attempts
    }

    /// Waits before retry number `attempt` (1 = first retry): jittered exponential backoff,
    /// or the server's `Retry-After` (capped) when it gave one.
    pub(crate) async fn pause(&self, attempt: u32, response: Option<&Response>) {
        let delay = response
            .and_then(|r| clara_azure::arm::retry_after(r.headers()))
            .map(|d| d.min(self.policy.max_retry_after))
            .unwrap_or_else(|| self.policy.backoff(attempt));
        tokio::time::sleep(delay).await;
    }

    /// Sends the request built by `build` until it gets an answer that is not transient.
    /// Returns the last response even when it is a retryable status and tries ran out, so
    /// the caller words the error; only connection failures become `Transport` here.
    pub(crate) async fn send(
        &self,
        what: &str,
        url: &Url,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, NgcError> {
        let mut attempt = 1;
        loop {
            match build().send().await {
                Ok(resp)
                    if is_retryable_status(resp.status().as_u16()) && attempt < self.attempts() =>
                {
                    tracing::debug!(url = %redact_url(url), status = resp.status().as_u16(), attempt, "transient HTTP status; retrying");
                    self.pause(attempt, Some(&resp)).await;
                }
                Ok(resp) => return Ok(resp),
                Err(e) if attempt < self.attempts() => {
                    tracing::debug!(url = %redact_url(url), error = %without_url(&e), attempt, "request failed; retrying");
                    self.pause(attempt, None).await;
                }
                Err(e) => {
                    return Err(NgcError::Transport {
                        what: what.to_owned(),
                        url: redact_url(url),
                        attempts: attempt,
                        message: without_url(&e),
                    });
                }
            }
            attempt += 1;
        }
    }
}

/// Statuses worth retrying: throttling and transient server errors.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// A reqwest error's text without its URL (which may be a signed URL), with its causes.
/// (`reqwest::Error`'s own Display names the URL, so the kind is worded here instead.)
pub(crate) fn without_url(e: &reqwest::Error) -> String {
    let mut msg = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() {
        "response body broke off"
    } else if e.is_decode() {
        "cannot decode response"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}
