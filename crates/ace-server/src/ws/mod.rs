//! The WebSocket endpoint `/ws`: the upgrade and what is checked before it — the `Origin`
//! allowlist (403 with the error body; no `Origin` means a non-browser client, allowed), the
//! caller's credentials (401 with the error body, before any upgrade: in enforced mode a
//! client without valid credentials never gets a socket; every frame is still authorized
//! as the operation it asks for, with the same credentials), the
//! connection limits in all (503) and per client address (429) — and the size limits handed to
//! the WebSocket library (`limits.ws.max_message_bytes`, `max_frame_bytes`; not its 64 MiB
//! default). What a connection does once upgraded lives in `session`; the byte bounds of what
//! waits for its client (per connection, per principal, per server) in `budget`.
//!
//! A WebSocket outlives the HTTP connection task that upgraded it, so that task hands it a
//! [`Lifetime`] (the server's stop notice and a drain handle): shutdown closes every socket
//! with 1001 and waits for it like for an in-flight request.

pub(crate) mod budget;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use ace_core::RequestContext;
use ace_envelope::{ErrorBody, ErrorCode};
use axum::Extension;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use serde_json::json;
use tokio::sync::{mpsc, watch};

use crate::census::{Census, Refused};
use crate::config::WsLimits;
use crate::error::error_response;
use crate::http::AppState;
use crate::http::request::Ctx;

/// What a WebSocket takes along from the HTTP connection that upgraded it.
#[derive(Debug, Clone)]
pub(crate) struct Lifetime {
    /// Turns `true` when the server starts shutting down.
    pub(crate) stop: watch::Receiver<bool>,
    /// Held until the socket is closed; the drain waits for every holder.
    pub(crate) done: mpsc::Sender<()>,
}

/// The error answer of a refused seat, naming the limit (503 in all, 429 per address).
fn seat_refusal(refused: Refused, limits: &WsLimits) -> ErrorBody {
    match refused {
        Refused::Total => ErrorBody::with_details(
            ErrorCode::Unavailable,
            format!(
                "too many WebSocket connections (limits.ws.max_connections = {})",
                limits.max_connections
            ),
            json!({ "limit": limits.max_connections }),
        ),
        Refused::PerAddress(ip) => ErrorBody::with_details(
            ErrorCode::Backpressure,
            format!(
                "too many WebSocket connections from {ip} \
                 (limits.ws.max_connections_per_address = {})",
                limits.max_connections_per_address
            ),
            json!({ "limit": limits.max_connections_per_address }),
        ),
    }
}

/// The `/ws` route: `GET` with an upgrade.
pub(crate) fn route() -> MethodRouter<AppState> {
    let census = Arc::new(Census::default());
    get(
        move |State(state): State<AppState>,
              remote: Option<Extension<ConnectInfo<SocketAddr>>>,
              lifetime: Option<Extension<Lifetime>>,
              Ctx(ctx): Ctx,
              headers: HeaderMap,
              upgrade: WebSocketUpgrade| {
            let census = Arc::clone(&census);
            async move {
                let remote = remote.map(|Extension(ConnectInfo(addr))| addr);
                let lifetime = lifetime.map(|l| l.0);
                accept(state, &census, remote, lifetime, ctx, &headers, upgrade)
            }
        },
    )
}

/// Checks the origin and the limits, then upgrades.
fn accept(
    state: AppState,
    census: &Arc<Census>,
    remote: Option<SocketAddr>,
    lifetime: Option<Lifetime>,
    mut ctx: RequestContext,
    headers: &HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limits = state.limits.ws.clone();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !origin_allowed(&limits.allowed_origins, origin) {
            return refusal(
                ErrorCode::Forbidden,
                format!("origin `{origin}` is not in limits.ws.allowed_origins"),
                json!({ "origin": origin }),
            );
        }
    }
    ctx.transport = "ws";
    let principal = match state.core.authenticate(&ctx) {
        Ok(principal) => principal,
        Err(err) => return error_response(err.code(), &err.body()),
    };
    let ip = remote.map(|a| a.ip());
    let seat = match census.take(
        ip,
        limits.max_connections,
        limits.max_connections_per_address,
    ) {
        Ok(seat) => seat,
        Err(refused) => {
            let body = seat_refusal(refused, &limits);
            return error_response(body.error.code, &body);
        }
    };
    let budget = state
        .ws_budgets
        .open(&principal.id, limits.max_queued_bytes);
    upgrade
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .on_upgrade(move |socket| async move {
            session::run(socket, state, ctx, limits, lifetime, budget).await;
            drop(seat);
        })
}

/// Whether a browser `Origin` may upgrade: listed exactly (case-insensitively), or `*` listed.
fn origin_allowed(allowed: &[String], origin: &str) -> bool {
    allowed
        .iter()
        .any(|a| a == "*" || a.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

/// An error answer before the upgrade.
fn refusal(code: ErrorCode, message: String, details: serde_json::Value) -> Response {
    error_response(code, &ErrorBody::with_details(code, message, details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_allowlist_when_origins_are_checked_then_only_listed_ones_pass() {
        let allowed = vec!["https://app.example.com/".to_owned()];
        assert!(origin_allowed(&allowed, "https://APP.example.com"));
        assert!(!origin_allowed(&allowed, "https://evil.example.com"));
        assert!(!origin_allowed(&[], "https://app.example.com"));
        assert!(origin_allowed(&["*".to_owned()], "null"));
    }

    #[test]
    fn given_a_refused_seat_when_answered_then_the_code_names_which_limit() {
        let limits = WsLimits::default();
        let total = seat_refusal(Refused::Total, &limits);
        assert_eq!(total.error.code, ErrorCode::Unavailable);
        assert!(total.error.message.contains("limits.ws.max_connections"));
        let ip: std::net::IpAddr = [127, 0, 0, 1].into();
        let mine = seat_refusal(Refused::PerAddress(ip), &limits);
        assert_eq!(mine.error.code, ErrorCode::Backpressure);
        assert!(mine.error.message.contains("127.0.0.1"));
    }
}
