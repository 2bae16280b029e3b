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

/// `GET /health`: 200 while the process serves requests.
pub(crate) async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /ready`: 200 when ready to take traffic, else 503 `UNAVAILABLE`.
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
pub(crate) async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
