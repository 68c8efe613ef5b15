//! Per-route request pipeline: names the operation (for the log and fault filters), checks
//! authentication and `api-version` on ARM routes, and injects faults *before* the handler
//! runs (so a faulted write is not applied), except `drop_after`/`latency`/`lro_fail`.

use std::time::Duration;

use axum::extract::{RawPathParams, Request, State};
use axum::http::StatusCode;
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::{Extension, RequestExt};

use crate::app::AppState;
use crate::arm::error::ArmError;
use crate::faults::{FaultKind, RequestInfo, Scope};

/// Path parameters of the matched route, by name.
pub struct PathParams(Vec<(String, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

/// How a route's operation is named in the request log (e.g. `compute.get`).
#[derive(Clone, Copy)]
pub enum OpName {
    Fixed(&'static str),
    /// Decided per request, e.g. PUT on an existing compute is `compute.update`.
    Dynamic(fn(&AppState, &PathParams) -> &'static str),
}

impl From<&'static str> for OpName {
    fn from(s: &'static str) -> Self {
        OpName::Fixed(s)
    }
}

#[derive(Clone, Copy)]
struct RouteSpec {
    op: OpName,
    scope: Scope,
    /// ARM routes need `?api-version=`; `bearer` routes (MLflow) do not.
    api_version: bool,
}

// ---- markers exchanged through request/response extensions ---------------------------------

/// Response extension: the operation name for the log.
#[derive(Debug, Clone, Copy)]
pub struct OpTag(pub &'static str);

/// Response extension: the fault that was injected.
#[derive(Debug, Clone, Copy)]
pub struct FaultTag(pub FaultKind);

/// Response extension: the server closes the connection instead of sending this response.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

/// Response extension on `drop_after`: the status the handler produced before the drop.
#[derive(Debug, Clone, Copy)]
pub struct HandlerStatus(pub u16);

/// Request extension: an `lro_fail` fault was drawn; LRO-starting handlers honour it and tag
/// their response with `FaultTag(LroFail)`.
#[derive(Debug, Clone, Copy)]
pub struct LroFailRequested;

/// Attaches the pipeline to a route's method router.
pub trait RouteExt {
    /// ARM route: bearer auth, `api-version` required, ARM-scope faults.
    fn arm(self, app: &AppState, op: impl Into<OpName>) -> Self;
    /// Token/discovery route: no auth, token-scope faults (only with `include_token`).
    fn token(self, app: &AppState, op: impl Into<OpName>) -> Self;
    /// Data-plane route (MLflow): bearer auth and ARM-scope faults, no `api-version`.
    fn bearer(self, app: &AppState, op: impl Into<OpName>) -> Self;
}

impl RouteExt for MethodRouter<AppState> {
    fn arm(self, app: &AppState, op: impl Into<OpName>) -> Self {
        with_spec(
            self,
            app,
            RouteSpec {
                op: op.into(),
                scope: Scope::Arm,
                api_version: true,
            },
        )
    }

    fn token(self, app: &AppState, op: impl Into<OpName>) -> Self {
        with_spec(
            self,
            app,
            RouteSpec {
                op: op.into(),
                scope: Scope::Token,
                api_version: false,
            },
        )
    }

    fn bearer(self, app: &AppState, op: impl Into<OpName>) -> Self {
        with_spec(
            self,
            app,
            RouteSpec {
                op: op.into(),
                scope: Scope::Arm,
                api_version: false,
            },
        )
    }
}

fn with_spec(
    router: MethodRouter<AppState>,
    app: &AppState,
    spec: RouteSpec,
) -> MethodRouter<AppState> {
    router
        .route_layer(from_fn_with_state(app.clone(), pipeline))
        .route_layer(Extension(spec))
}

async fn pipeline(
    State(app): State<AppState>,
    Extension(spec): Extension<RouteSpec>,
    mut req: Request,
    next: Next,
) -> Response {
    let op = match spec.op {
        OpName::Fixed(name) => name,
        OpName::Dynamic(resolve) => {
            let params = req
                .extract_parts::<RawPathParams>()
                .await
                .map(|p| {
                    PathParams(
                        p.iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    )
                })
                .unwrap_or(PathParams(Vec::new()));
            resolve(&app, &params)
        }
    };
    let mut resp = run(&app, spec, op, req, next).await;
    resp.extensions_mut().insert(OpTag(op));
    resp
}

async fn run(
    app: &AppState,
    spec: RouteSpec,
    op: &'static str,
    mut req: Request,
    next: Next,
) -> Response {
    let scope = spec.scope;
    if scope == Scope::Arm {
        // ARM routes take ARM tokens; data-plane routes (MLflow) Azure ML or ARM tokens.
        let family = if spec.api_version {
            crate::auth::RouteFamily::Arm
        } else {
            crate::auth::RouteFamily::MlDataPlane
        };
        let caller = match crate::auth::check_bearer(app, req.headers(), family) {
            Ok(c) => c,
            Err(e) => return e.into_response(),
        };
        if spec.api_version
            && let Err(e) = crate::arm::require_api_version(req.uri())
        {
            return e.into_response();
        }
        if spec.api_version
            && let Err(e) =
                crate::auth::authorize(app, &caller, req.method().as_str(), req.uri().path())
        {
            return e.into_response();
        }
    }
    let fault = {
        let info = RequestInfo {
            scope,
            method: req.method().as_str(),
            path: req.uri().path(),
            op,
        };
        app.faults().decide(&info)
    };
    let Some(kind) = fault else {
        return next.run(req).await;
    };
    let retry_after = app.faults().config().retry_after_s;
    let tagged = |mut resp: Response| {
        resp.extensions_mut().insert(FaultTag(kind));
        resp
    };
    match kind {
        FaultKind::Throttle => tagged(
            ArmError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                format!("The request was throttled (emulator fault injection). Retry after {retry_after} seconds."),
            )
            .with_header("retry-after", retry_after.to_string())
            .into_response(),
        ),
        FaultKind::Internal => tagged(
            ArmError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Encountered internal server error (emulator fault injection).")
                .into_response(),
        ),
        FaultKind::Unavailable => tagged(
            ArmError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "The service is temporarily unavailable (emulator fault injection).")
                .with_header("retry-after", retry_after.to_string())
                .into_response(),
        ),
        FaultKind::Drop => {
            let mut resp = tagged(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            resp.extensions_mut().insert(DropConnection);
            resp
        }
        FaultKind::DropAfter => {
            let handled = next.run(req).await;
            let mut resp = tagged(StatusCode::INTERNAL_SERVER_ERROR.into_response());
            resp.extensions_mut().insert(HandlerStatus(handled.status().as_u16()));
            resp.extensions_mut().insert(DropConnection);
            resp
        }
        FaultKind::Latency => {
            let delay = app.faults().config().latency_ms;
            tokio::time::sleep(Duration::from_millis(delay)).await;
            tagged(next.run(req).await)
        }
        FaultKind::LroFail => {
            req.extensions_mut().insert(LroFailRequested);
            next.run(req).await
        }
    }
}
