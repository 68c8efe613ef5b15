//! Long-running operations: the Azure-AsyncOperation and Location patterns,
//! and resources whose `provisioningState` is still moving.
//!
//! Every wait stops promptly when its future is dropped (plain async sleeps)
//! or when the given `CancellationToken` fires (→ `ArmError` code `Canceled`).

use std::future::Future;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::client::{ArmClient, ArmResponse, Retry};
use super::error::ArmError;

const ASYNC_OPERATION: &str = "azure-asyncoperation";
const LOCATION: &str = "location";

/// Status of an Azure-AsyncOperation (or a resource's `provisioningState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LroStatus {
    Succeeded,
    Failed,
    Canceled,
    /// Anything else: `InProgress`, `Creating`, `Updating`, `Deleting`, ...
    Running(String),
}

impl LroStatus {
    pub fn parse(status: &str) -> Self {
        match status.to_ascii_lowercase().as_str() {
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "canceled" | "cancelled" => Self::Canceled,
            _ => Self::Running(status.to_owned()),
        }
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Running(_))
    }
}

async fn until_cancelled<T>(
    cancel: &CancellationToken,
    fut: impl Future<Output = Result<T, ArmError>>,
) -> Result<T, ArmError> {
    tokio::select! {
        biased;
        _ = cancel.cancelled() => Err(ArmError::canceled()),
        r = fut => r,
    }
}

async fn pause(cancel: &CancellationToken, delay: Duration) -> Result<(), ArmError> {
    until_cancelled(cancel, async {
        tokio::time::sleep(delay).await;
        Ok(())
    })
    .await
}

fn provisioning_state(resource: &Value) -> Option<&str> {
    resource
        .pointer("/properties/provisioningState")
        .and_then(Value::as_str)
}

/// Error for a failed/canceled operation, from its body's `error` when present.
fn operation_error(
    body: &Value,
    status: &LroStatus,
    what: &str,
    request_id: Option<String>,
) -> ArmError {
    let fallback = match status {
        LroStatus::Canceled => ("OperationCanceled", "was canceled"),
        _ => ("OperationFailed", "failed"),
    };
    let mut err = body
        .get("error")
        .and_then(ArmError::from_error_value)
        .unwrap_or_else(|| {
            ArmError::new(
                fallback.0,
                format!("{what} {} without error details", fallback.1),
            )
        });
    if err.code.is_empty() {
        err.code = fallback.0.to_owned();
    }
    if err.message.is_empty() {
        err.message = format!("{what} {}", fallback.1);
    }
    err.request_id = err.request_id.or(request_id);
    err
}

/// Error for a resource that ended in `provisioningState: Failed|Canceled`.
fn provisioning_error(resource: &Value, status: &LroStatus, path: &str) -> ArmError {
    let first = resource
        .pointer("/properties/provisioningErrors/0")
        .and_then(|e| {
            e.get("error")
                .and_then(ArmError::from_error_value)
                .or_else(|| ArmError::from_error_value(e))
        });
    let state = if *status == LroStatus::Canceled {
        "Canceled"
    } else {
        "Failed"
    };
    first.unwrap_or_else(|| {
        ArmError::new(
            if *status == LroStatus::Canceled {
                "ProvisioningCanceled"
            } else {
                "ProvisioningFailed"
            },
            format!("{path} has provisioningState {state}"),
        )
    })
}

impl ArmClient {
    /// PUT and wait for the result; returns the resource as a final GET sees it.
    pub async fn put_and_wait(
        &self,
        path: &str,
        body: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, ArmError> {
        let resp = until_cancelled(cancel, self.put_json(path, body)).await?;
        self.finish_write(path, resp, cancel).await
    }

    /// PATCH and wait for the result; returns the resource as a final GET sees it.
    pub async fn patch_and_wait(
        &self,
        path: &str,
        body: &Value,
        cancel: &CancellationToken,
    ) -> Result<Value, ArmError> {
        let resp = until_cancelled(cancel, self.patch_json(path, body)).await?;
        self.finish_write(path, resp, cancel).await
    }

    /// DELETE and wait until the resource is gone. 204 or 404 (already gone) → Ok.
    pub async fn delete_and_wait(
        &self,
        path: &str,
        query: &[(&str, &str)],
        cancel: &CancellationToken,
    ) -> Result<(), ArmError> {
        let resp = match until_cancelled(cancel, self.delete(path, query)).await {
            Err(e) if e.is_not_found() => return Ok(()),
            other => other?,
        };
        if resp.status == 204 {
            return Ok(());
        }
        let first = self.opts.retry.poll_delay(&resp.headers);
        if let Some(op) = resp.header(ASYNC_OPERATION) {
            self.poll_async_operation(op, path, Some(first), cancel, |_| {})
                .await?;
        } else if let Some(loc) = resp.header(LOCATION).filter(|_| resp.status == 202) {
            match self.poll_location(loc, path, Some(first), cancel).await {
                Err(e) if e.is_not_found() => {}
                other => {
                    other?;
                }
            }
        }
        Ok(())
    }

    /// POST an action (not assumed idempotent, see `post_json`) and follow its
    /// long-running operation, if any. Returns the final body, if any.
    pub async fn post_and_wait(
        &self,
        path: &str,
        body: Option<&Value>,
        cancel: &CancellationToken,
    ) -> Result<Option<Value>, ArmError> {
        let resp = until_cancelled(cancel, self.post_json(path, body)).await?;
        let first = self.opts.retry.poll_delay(&resp.headers);
        if let Some(op) = resp.header(ASYNC_OPERATION) {
            self.poll_async_operation(op, path, Some(first), cancel, |_| {})
                .await?;
            return match resp.header(LOCATION) {
                Some(loc) => until_cancelled(
                    cancel,
                    self.request(Method::GET, loc, None, Retry::Idempotent),
                )
                .await
                .map(ArmResponse::into_json)
                .map(Some),
                None => Ok(None),
            };
        }
        if resp.status == 202
            && let Some(loc) = resp.header(LOCATION)
        {
            return self.poll_location(loc, path, Some(first), cancel).await;
        }
        Ok(resp.body)
    }

    /// Polls an Azure-AsyncOperation URL until Succeeded (returns the operation
    /// body), Failed or Canceled (error with the operation's code/message).
    /// `on_status` sees each new status; transitions are also logged at INFO.
    pub async fn wait_async_operation(
        &self,
        url: &str,
        cancel: &CancellationToken,
        on_status: impl FnMut(&str) + Send,
    ) -> Result<Value, ArmError> {
        self.poll_async_operation(url, url, None, cancel, on_status)
            .await
    }

    /// Polls a Location URL: 202 means still running; the first other 2xx ends
    /// the wait and its body (if any) is returned. Used for job cancel/delete.
    pub async fn wait_location(
        &self,
        url: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<Value>, ArmError> {
        self.poll_location(url, url, None, cancel).await
    }

    async fn finish_write(
        &self,
        path: &str,
        resp: ArmResponse,
        cancel: &CancellationToken,
    ) -> Result<Value, ArmError> {
        let first = self.opts.retry.poll_delay(&resp.headers);
        if let Some(op) = resp.header(ASYNC_OPERATION) {
            self.poll_async_operation(op, path, Some(first), cancel, |_| {})
                .await?;
        } else if let Some(loc) = resp.header(LOCATION).filter(|_| resp.status == 202) {
            self.poll_location(loc, path, Some(first), cancel).await?;
        } else if let Some(body) = resp.body {
            // Synchronous: done unless the resource itself is still provisioning.
            match provisioning_state(&body).map(LroStatus::parse) {
                None | Some(LroStatus::Succeeded) => return Ok(body),
                Some(s @ (LroStatus::Failed | LroStatus::Canceled)) => {
                    return Err(provisioning_error(&body, &s, path));
                }
                Some(LroStatus::Running(_)) => {
                    return self.poll_provisioning_state(path, first, cancel).await;
                }
            }
        }
        match until_cancelled(cancel, self.get_json(path)).await? {
            Some(resource) => Ok(resource),
            None => Err(ArmError {
                status: Some(404),
                ..ArmError::new(
                    "NotFound",
                    format!("{path} was not found after its operation completed"),
                )
            }),
        }
    }

    async fn poll_async_operation(
        &self,
        url: &str,
        what: &str,
        first_delay: Option<Duration>,
        cancel: &CancellationToken,
        mut on_status: impl FnMut(&str) + Send,
    ) -> Result<Value, ArmError> {
        let mut delay = first_delay;
        let mut last: Option<String> = None;
        loop {
            if let Some(d) = delay {
                pause(cancel, d).await?;
            }
            let resp = until_cancelled(
                cancel,
                self.request(Method::GET, url, None, Retry::Idempotent),
            )
            .await?;
            let request_id = resp.request_id.clone();
            let body = resp.body.unwrap_or(Value::Null);
            let Some(text) = body
                .get("status")
                .and_then(Value::as_str)
                .map(str::to_owned)
            else {
                return Err(ArmError::new(
                    ArmError::INVALID_RESPONSE,
                    format!("operation status for {what} has no \"status\" field"),
                ));
            };
            self.note_status(what, &text, &mut last, &mut on_status);
            match LroStatus::parse(&text) {
                LroStatus::Succeeded => return Ok(body),
                s @ (LroStatus::Failed | LroStatus::Canceled) => {
                    return Err(operation_error(&body, &s, what, request_id));
                }
                LroStatus::Running(_) => delay = Some(self.opts.retry.poll_delay(&resp.headers)),
            }
        }
    }

    async fn poll_location(
        &self,
        url: &str,
        what: &str,
        first_delay: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<Option<Value>, ArmError> {
        let mut delay = first_delay;
        let mut last = None;
        loop {
            if let Some(d) = delay {
                pause(cancel, d).await?;
            }
            let resp = until_cancelled(
                cancel,
                self.request(Method::GET, url, None, Retry::Idempotent),
            )
            .await?;
            if resp.status != 202 {
                self.note_status(what, "Succeeded", &mut last, &mut |_| {});
                return Ok(resp.body);
            }
            self.note_status(what, "InProgress", &mut last, &mut |_| {});
            delay = Some(self.opts.retry.poll_delay(&resp.headers));
        }
    }

    async fn poll_provisioning_state(
        &self,
        path: &str,
        first_delay: Duration,
        cancel: &CancellationToken,
    ) -> Result<Value, ArmError> {
        let mut delay = first_delay;
        let mut last = None;
        loop {
            pause(cancel, delay).await?;
            let resp = until_cancelled(
                cancel,
                self.request(Method::GET, path, None, Retry::Idempotent),
            )
            .await?;
            let headers: HeaderMap = resp.headers.clone();
            let body = resp.into_json();
            let state = provisioning_state(&body).unwrap_or("Succeeded").to_owned();
            self.note_status(path, &state, &mut last, &mut |_| {});
            match LroStatus::parse(&state) {
                LroStatus::Succeeded => return Ok(body),
                s @ (LroStatus::Failed | LroStatus::Canceled) => {
                    return Err(provisioning_error(&body, &s, path));
                }
                LroStatus::Running(_) => delay = self.opts.retry.poll_delay(&headers),
            }
        }
    }

    fn note_status(
        &self,
        what: &str,
        status: &str,
        last: &mut Option<String>,
        on_status: &mut (impl FnMut(&str) + ?Sized),
    ) {
        if last.as_deref() != Some(status) {
            tracing::info!(operation = what, status, "long-running operation status");
            on_status(status);
            *last = Some(status.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parsing() {
        assert_eq!(LroStatus::parse("Succeeded"), LroStatus::Succeeded);
        assert_eq!(LroStatus::parse("failed"), LroStatus::Failed);
        assert_eq!(LroStatus::parse("Cancelled"), LroStatus::Canceled);
        assert_eq!(
            LroStatus::parse("InProgress"),
            LroStatus::Running("InProgress".into())
        );
        assert!(!LroStatus::parse("Creating").is_terminal());
    }

    #[test]
    fn failed_operation_error_uses_body() {
        let body = serde_json::json!({"status":"Failed","error":{"code":"QuotaExceeded","message":"no cores"}});
        let e = operation_error(&body, &LroStatus::Failed, "/x", Some("r1".into()));
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("QuotaExceeded", "no cores")
        );
        assert_eq!(e.request_id.as_deref(), Some("r1"));
        let e = operation_error(
            &serde_json::json!({"status":"Canceled"}),
            &LroStatus::Canceled,
            "/x",
            None,
        );
        assert_eq!(e.code, "OperationCanceled");
    }
}
