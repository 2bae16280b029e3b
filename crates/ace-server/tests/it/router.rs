//! The router in process (`tower::ServiceExt::oneshot`), for what a running server cannot show
//! on demand: readiness before start, and the request timeout answering 504 with the error body.

use std::sync::Arc;

use ace_bus::{ConsumerConfig, EmbeddedBus, EmbeddedConfig, StreamConfig};
use ace_contracts::Registry;
use ace_core::{Core, CoreLimits, Hooks, RequestContext};
use ace_envelope::SystemClock;
use ace_server::{AppState, LimitsConfig, Metrics, router};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

/// A state over an embedded engine in `dir`, in development mode, not yet ready.
pub(crate) fn state(dir: &std::path::Path, limits: LimitsConfig) -> AppState {
    let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).unwrap();
    let core = Core::new(
        Arc::new(bus),
        Arc::new(Registry::embedded().unwrap()),
        Arc::new(SystemClock),
        Hooks::development(),
        CoreLimits::default(),
    );
    AppState::new(core, Metrics::new().unwrap(), limits)
}

async fn call(state: &AppState, request: Request<Body>) -> (StatusCode, Value) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn given_a_state_not_yet_ready_when_probed_then_ready_is_503_and_health_200() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(dir.path(), LimitsConfig::default());
    let get = |path: &str| Request::get(path).body(Body::empty()).unwrap();
    let (status, body) = call(&state, get("/ready")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "UNAVAILABLE");
    assert_eq!(call(&state, get("/health")).await.0, StatusCode::OK);
    state.set_ready(true);
    assert_eq!(call(&state, get("/ready")).await.0, StatusCode::OK);
}

#[tokio::test]
async fn given_a_request_slower_than_the_request_timeout_when_served_then_504_timeout_body() {
    let dir = tempfile::tempdir().unwrap();
    let limits = LimitsConfig {
        request_timeout_ms: 100,
        ..LimitsConfig::default()
    };
    let state = state(dir.path(), limits);
    let ctx = RequestContext::new("test");
    let core = state.core();
    core.add_stream(&ctx, StreamConfig::new("S", &["s.>"]))
        .await
        .unwrap();
    core.add_consumer(&ctx, "S", ConsumerConfig::new("c"))
        .await
        .unwrap();
    let fetch = Request::post("/api/v1/streams/S/consumers/c/fetch")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"batch": 1, "expires_ms": 2000}"#))
        .unwrap();
    let (status, body) = call(&state, fetch).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"]["code"], "TIMEOUT");
}
