//! `/health` (the process answers), `/ready` (the engine is open and the default streams exist;
//! false again once shutdown begins, so load balancers drain first) and `/metrics`
//! (Prometheus text exposition).

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;
use ace_envelope::ErrorBody;

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
        (status = 200, description = "Ready: `{\"status\": \"ready\", \"development_mode\": bool}`", body = Object),
        (status = 503, description = "`UNAVAILABLE`: not started yet, or draining", body = ErrorBody),
    )
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    if state.ready.load(Ordering::Acquire) {
        Ok(Json(json!({
            "status": "ready",
            "development_mode": state.core.is_development(),
        })))
    } else {
        Err(ApiError::NotReady)
    }
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition of the `ace_comms_*` metrics", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"),
    )
)]
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
