//! The HTTP adapter: [`AppState`] and [`router`], the routes of `/api/v1` plus health, readiness
//! and metrics, under one middleware that counts every request by route and status and makes
//! sure every error answer carries the error body (also those axum or tower-http produce: 405,
//! a bad path parameter, a timeout).
//!
//! Requests are traced (`tower_http::trace`: a span per request with the method, the URI — the
//! value of an `access_token` query parameter redacted — and the version, events at debug
//! level; no header is recorded).
//! Handlers only parse and shape; every operation is one `ace_core::Core` call.

mod admin;
mod agents;
mod approvals;
mod asyncapi;
mod health;
mod ledger;
pub(crate) mod messages;
pub(crate) mod mlt;
mod openapi;
mod registry;
pub(crate) mod request;
mod sessions;
mod streams;
mod workflows;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use ace_core::Core;
use ace_envelope::codec::cloudevents::Mapping;
use ace_envelope::{Clock, ErrorBody, ErrorCode, SystemClock};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::config::LimitsConfig;
use crate::error::{ApiError, error_response};
use crate::metrics::Metrics;

/// What every handler shares; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub(crate) core: Core,
    pub(crate) metrics: Metrics,
    pub(crate) limits: Arc<LimitsConfig>,
    /// True once started and until shutdown begins.
    pub(crate) ready: Arc<AtomicBool>,
    /// What `AppState::reload` reloads (none: nothing to reload, as in development mode).
    pub(crate) governance: Option<crate::governance::Governance>,
    /// The generation of the credentials: bumped by every successful reload, so each live
    /// WebSocket authenticates again (a removed key closes it with 4001).
    pub(crate) reloads: Arc<tokio::sync::watch::Sender<u64>>,
    /// The byte bounds of what waits for WebSocket clients, per principal and in all.
    pub(crate) ws_budgets: Arc<crate::ws::budget::Budgets>,
    /// `streams.ready_strict`: `/ready` answers 503 while a stream is `read_only` or `halted`.
    pub(crate) ready_strict: bool,
    /// `auth.metrics: authenticated`: `/metrics` answers only callers the core authenticates.
    pub(crate) metrics_authenticated: bool,
    /// Where foreign CloudEvents go (`cloudevents`), and the clock that stamps them.
    pub(crate) cloudevents: Arc<CloudEventsIngest>,
    /// The ML kernel behind `/api/ml/v1` (none: those routes answer 503).
    pub(crate) mlt: Option<Arc<ace_mlt::Kernel>>,
    /// Cancelled when shutdown begins: ends every `/mcp` session and its event streams, so the
    /// drain does not wait on them.
    pub(crate) mcp_sessions: tokio_util::sync::CancellationToken,
    /// The workflow runtime (`workflows.enabled`), if it runs.
    pub(crate) workflows: Option<Arc<crate::workflows::Workflows>>,
}

/// What turns a foreign CloudEvent into an envelope: the mapping and the clock giving its new
/// id and, without `time`, its `created_at`.
#[derive(Clone)]
pub(crate) struct CloudEventsIngest {
    pub(crate) mapping: Mapping,
    pub(crate) clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for CloudEventsIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudEventsIngest")
            .field("mapping", &self.mapping)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State over a core, its metrics and the HTTP limits; not ready until `set_ready(true)`.
    pub fn new(core: Core, metrics: Metrics, limits: LimitsConfig) -> Self {
        let ws_budgets =
            crate::ws::budget::Budgets::new(&limits.ws, metrics.ws_queued_bytes.clone());
        AppState {
            core,
            metrics,
            limits: Arc::new(limits),
            ready: Arc::new(AtomicBool::new(false)),
            governance: None,
            reloads: Arc::new(tokio::sync::watch::Sender::new(0)),
            ws_budgets: Arc::new(ws_budgets),
            ready_strict: false,
            metrics_authenticated: false,
            cloudevents: Arc::new(CloudEventsIngest {
                mapping: Mapping::default(),
                clock: Arc::new(SystemClock),
            }),
            mlt: None,
            mcp_sessions: tokio_util::sync::CancellationToken::new(),
            workflows: None,
        }
    }

    /// State serving the workflow routes of `workflows`.
    pub(crate) fn with_workflows(
        mut self,
        workflows: Option<Arc<crate::workflows::Workflows>>,
    ) -> Self {
        self.workflows = workflows;
        self
    }

    /// State serving the ML kernel `kernel` under `/api/ml/v1`.
    pub fn with_mlt(mut self, kernel: Arc<ace_mlt::Kernel>) -> Self {
        self.mlt = Some(kernel);
        self
    }

    /// State placing foreign CloudEvents by `mapping` (the `cloudevents` configuration), their
    /// ids and arrival times from `clock`; by default the default mapping and the system clock.
    pub fn with_cloudevents(mut self, mapping: Mapping, clock: Arc<dyn Clock>) -> Self {
        self.cloudevents = Arc::new(CloudEventsIngest { mapping, clock });
        self
    }

    /// State whose `/ready` answers 503 while a stream is `read_only` or `halted`
    /// (`streams.ready_strict`).
    pub fn with_ready_strict(mut self, strict: bool) -> Self {
        self.ready_strict = strict;
        self
    }

    /// State whose `/metrics` answers only authenticated callers (`auth.metrics:
    /// authenticated`); by default it is open.
    pub fn with_metrics_access(mut self, access: crate::config::MetricsAccess) -> Self {
        self.metrics_authenticated = access == crate::config::MetricsAccess::Authenticated;
        self
    }

    /// State whose reloads (SIGHUP, `POST /api/v1/admin/reload`) reload `governance`.
    pub fn with_governance(mut self, governance: crate::governance::Governance) -> Self {
        self.governance = Some(governance);
        self
    }

    /// Marks the server ready (or draining).
    pub fn set_ready(&self, ready: bool) {
        self.ready
            .store(ready, std::sync::atomic::Ordering::Release);
    }

    /// Shutdown has begun: ends the `/mcp` sessions and their event streams.
    pub(crate) fn end_mcp_sessions(&self) {
        self.mcp_sessions.cancel();
    }

    /// The core behind the routes.
    pub fn core(&self) -> &Core {
        &self.core
    }
}

/// Every route, with the body limit, the request timeout and the accounting middleware.
pub fn router(state: AppState) -> Router {
    let consumer = "/api/v1/streams/{stream}/consumers/{consumer}";
    let timeout = Duration::from_millis(state.limits.request_timeout_ms);
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/ws", crate::ws::route())
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/asyncapi.json", get(asyncapi::asyncapi_json))
        .route("/api/v1/admin/reload", post(admin::reload))
        .route("/api/v1/messages", post(messages::publish))
        .route("/api/v1/messages/batch", post(messages::publish_batch))
        .route("/api/v1/ledger/checkpoint", get(ledger::checkpoint))
        .route("/api/v1/ledger/key", get(ledger::key))
        .route("/api/v1/ledger/entries", get(ledger::entries))
        .route(
            "/api/v1/ledger/proof/inclusion/{seq}",
            get(ledger::inclusion),
        )
        .route("/api/v1/ledger/proof/consistency", get(ledger::consistency))
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/agents/{id}", get(agents::get_agent))
        .route("/api/v1/agents/{id}/heartbeat", post(agents::heartbeat))
        .route("/api/v1/approvals", get(approvals::list))
        .route(
            "/api/v1/approvals/{id}",
            get(approvals::get_approval).post(approvals::decide_alias),
        )
        .route("/api/v1/approval/{id}", post(approvals::decide))
        .route(
            "/api/v1/sessions/{id}",
            get(sessions::get_session).put(sessions::put_session),
        )
        .route(
            "/api/v1/streams",
            get(streams::list_streams).post(streams::add_stream),
        )
        .route(
            "/api/v1/streams/{stream}",
            get(streams::get_stream).delete(streams::delete_stream),
        )
        .route(
            "/api/v1/streams/{stream}/repair",
            post(streams::repair_stream),
        )
        .route(
            "/api/v1/streams/{stream}/consumers",
            get(streams::list_consumers).post(streams::add_consumer),
        )
        .route(
            consumer,
            get(streams::get_consumer).delete(streams::delete_consumer),
        )
        .route(&format!("{consumer}/fetch"), post(streams::fetch))
        .route(&format!("{consumer}/ack"), post(streams::ack))
        .route(&format!("{consumer}/nak"), post(streams::nak))
        .route(&format!("{consumer}/term"), post(streams::term))
        .route(
            "/api/v1/streams/{stream}/messages/{seq}",
            get(streams::get_message),
        )
        .merge(registry_routes())
        .merge(mlt::routes())
        .merge(workflows::routes())
        .fallback(route_not_found)
        .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            timeout,
        ))
        // after the timeout: a streamable HTTP answer may be a long event stream
        .merge(crate::mcp::route(&state))
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .layer(middleware::from_fn_with_state(state.clone(), account))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of one request: what `tower_http`'s default span records, with the URI's
/// `access_token` value (a bearer token, `/ws?access_token=…`) replaced by `[REDACTED]`.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %redacted_uri(request.uri()),
        version = ?request.version(),
    )
}

/// `uri` with the value of every `access_token` query parameter redacted.
fn redacted_uri(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.to_string();
    };
    let param = ace_envelope::api::ws::ACCESS_TOKEN_PARAM;
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case(param) => format!("{name}=[REDACTED]"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

/// What is judged before a request's body is read, so a client cannot hold the server on a
/// body it should never have sent: a `Content-Length` above `limits.max_body_bytes` is answered
/// 413 at once (so an `Expect: 100-continue` client is never told to go on), and a request to
/// `/api/v1/` that carries a body is authenticated first (401 without waiting for the body; the
/// handler authorizes it as usual).
async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.limits.max_body_bytes;
    let announced = request::content_length(request.headers());
    if announced.is_some_and(|len| len > limit as u64) {
        return ApiError::TooLarge { limit }.into_response();
    }
    let has_body = announced.is_some_and(|len| len > 0)
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if has_body && request.uri().path().starts_with("/api/v1/") {
        let (mut parts, body) = request.into_parts();
        let Ok(request::Ctx(ctx)) = request::Ctx::from_request_parts(&mut parts, &state).await;
        if let Err(err) = state.core.authenticate(&ctx) {
            return ApiError::from(err).into_response();
        }
        return next.run(Request::from_parts(parts, body)).await;
    }
    next.run(request).await
}

/// The schema registry's routes (`registry.rs`).
fn registry_routes() -> Router<AppState> {
    let subject = "/api/v1/registry/subjects/{subject}";
    Router::new()
        .route("/api/v1/registry/subjects", get(registry::subjects))
        .route(
            &format!("{subject}/versions"),
            get(registry::versions).post(registry::register),
        )
        .route(
            &format!("{subject}/versions/{{version}}"),
            get(registry::version),
        )
        .route(
            "/api/v1/registry/compatibility/subjects/{subject}/versions/{version}",
            post(registry::check),
        )
        .route(
            "/api/v1/registry/config/{subject}",
            get(registry::get_config).put(registry::put_config),
        )
}

async fn route_not_found(request: Request) -> ApiError {
    ApiError::Route(format!(
        "no route for {} {}",
        request.method(),
        request.uri().path()
    ))
}

/// Counts the request by matched route and status, counts error codes, and gives an error
/// answer without our JSON body (axum's 405, a path rejection, a timeout) the error body.
async fn account(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().clone();
    let mut response = next.run(request).await;
    let status = response.status();
    if (status.is_client_error() || status.is_server_error())
        && response.extensions().get::<ErrorCode>().is_none()
    {
        response = with_error_body(response).await;
    }
    if let Some(code) = response.extensions().get::<ErrorCode>() {
        state
            .metrics
            .errors
            .with_label_values(&[code.as_str()])
            .inc();
    }
    state
        .metrics
        .requests
        .with_label_values(&[&route, method.as_str(), status.as_str()])
        .inc();
    response
}

/// Replaces a bare error answer by the error body of the closest code, keeping its status.
async fn with_error_body(response: Response) -> Response {
    let status = response.status();
    let code = match status.as_u16() {
        404 => ErrorCode::NotFound,
        405 => ErrorCode::MethodNotAllowed,
        408 | 504 => ErrorCode::Timeout,
        413 => ErrorCode::PayloadTooLarge,
        415 => ErrorCode::UnsupportedMediaType,
        429 => ErrorCode::Backpressure,
        503 => ErrorCode::Unavailable,
        s if s >= 500 => ErrorCode::Internal,
        _ => ErrorCode::InvalidRequest,
    };
    let text = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() || code == ErrorCode::Internal {
        status
            .canonical_reason()
            .unwrap_or(code.meaning())
            .to_owned()
    } else {
        text
    };
    let mut answer = error_response(code, &ErrorBody::new(code, message));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    answer.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_uris_with_tokens_when_redacted_then_only_the_token_values_go() {
        let uri = |s: &str| s.parse::<axum::http::Uri>().unwrap();
        assert_eq!(
            redacted_uri(&uri("/ws?access_token=eyJ.secret.sig&x=1")),
            "/ws?access_token=[REDACTED]&x=1"
        );
        assert_eq!(
            redacted_uri(&uri("/ws?a=1&ACCESS_TOKEN=t&access_token=u")),
            "/ws?a=1&ACCESS_TOKEN=[REDACTED]&access_token=[REDACTED]"
        );
        assert_eq!(redacted_uri(&uri("/api/v1/streams")), "/api/v1/streams");
        assert_eq!(redacted_uri(&uri("/ws?access_token")), "/ws?access_token");
    }
}
