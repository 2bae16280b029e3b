//! `/health` (the process answers), `/ready` (the engine is open and the default streams exist;
//! false again once shutdown begins, so load balancers drain first) and `/metrics`
//! (Prometheus text exposition; open by default, or only for authenticated callers with
//! `auth.metrics: authenticated`).
//!
//! `/ready` also lists `degraded_streams`: every stream whose storage state is not `ok`
//! (`read_only` after damage was found, `halted` after a failed write or fsync) with the reason,
//! segment and offset. The server stays ready (200) with degraded streams — the others serve —
//! unless `streams.ready_strict` is true: then it answers 503 `UNAVAILABLE` naming them.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;
use super::request::Ctx;
use crate::error::ApiError;
use ace_core::RequestContext;
use ace_envelope::{ErrorBody, ErrorCode};

/// `GET /health`: 200 while the process serves requests.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "The process serves requests: `{\"status\": \"ok\"}`", body = Object),
    )
)]
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when ready to take traffic, else 503 `UNAVAILABLE`.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: `{\"status\": \"ready\", \"development_mode\": bool, \"degraded_streams\": [{stream, state, reason, segment, offset}]}`", body = Object),
        (status = 503, description = "`UNAVAILABLE`: not started yet, or draining, or (with `streams.ready_strict`) a stream is `read_only` or `halted`", body = ErrorBody),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> axum::response::Response {
    if !state.ready.load(Ordering::Acquire) {
        return ApiError::NotReady.into_response();
    }
    let degraded = degraded_streams(&state).await;
    if state.ready_strict && !degraded.is_empty() {
        let names: Vec<String> = degraded
            .iter()
            .map(|d| {
                format!(
                    "{} ({})",
                    d["stream"].as_str().unwrap_or(""),
                    d["state"].as_str().unwrap_or("")
                )
            })
            .collect();
        let body = ErrorBody::with_details(
            ErrorCode::Unavailable,
            format!(
                "streams not ok and `streams.ready_strict` is true: {}",
                names.join(", ")
            ),
            json!({ "degraded_streams": degraded }),
        );
        return crate::error::error_response(ErrorCode::Unavailable, &body);
    }
    Json(json!({
        "status": "ready",
        "development_mode": state.core.is_development(),
        "degraded_streams": degraded,
    }))
    .into_response()
}

/// Every stream whose storage state is not `ok`, with what is wrong.
async fn degraded_streams(state: &AppState) -> Vec<Value> {
    let streams = match state.core.list_streams(&RequestContext::internal()).await {
        Ok(streams) => streams,
        Err(err) => {
            tracing::warn!(error = %err, "/ready could not list the streams");
            return Vec::new();
        }
    };
    streams
        .iter()
        .filter(|s| s.state != ace_bus::StreamState::Ok)
        .map(|s| {
            let damage = s.damage.as_ref();
            json!({
                "stream": s.config.name,
                "state": s.state.as_str(),
                "reason": damage.map(|d| d.reason.as_str()),
                "segment": damage.and_then(|d| d.segment.as_deref()),
                "offset": damage.and_then(|d| d.offset),
            })
        })
        .collect()
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition of the `ace_comms_*` and `process_*` metrics", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, description = "`UNAUTHENTICATED`: with `auth.metrics: authenticated`, missing or bad credentials", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<impl IntoResponse, ApiError> {
    if state.metrics_authenticated {
        state.core.authenticate(&ctx)?;
    }
    let mut scraped = state.metrics.scrape(&state.core).await;
    if let Some(workflows) = &state.workflows {
        scraped.push_str(&workflows.metrics_text());
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        scraped,
    ))
}
