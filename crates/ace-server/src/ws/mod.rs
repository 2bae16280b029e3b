//! The WebSocket endpoint `/ws`: the upgrade and what is checked before it — the `Origin`
//! allowlist (403 with the error body; no `Origin` means a non-browser client, allowed), the
//! connection limits in all (503) and per client address (429) — and the size limits handed to
//! the WebSocket library (`limits.ws.max_message_bytes`, `max_frame_bytes`; not its 64 MiB
//! default). What a connection does once upgraded lives in `session`.
//!
//! A WebSocket outlives the HTTP connection task that upgraded it, so that task hands it a
//! [`Lifetime`] (the server's stop notice and a drain handle): shutdown closes every socket
//! with 1001 and waits for it like for an in-flight request.

mod session;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

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

/// The open WebSocket connections, in all and per client address.
#[derive(Debug, Default)]
struct Census {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// One counted connection; dropping it gives the place back.
#[derive(Debug)]
struct Seat {
    census: Arc<Census>,
    ip: Option<IpAddr>,
}

impl Census {
    fn lock(&self) -> MutexGuard<'_, (usize, HashMap<IpAddr, usize>)> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A seat, or the refusal when a limit is reached.
    fn take(self: &Arc<Self>, ip: Option<IpAddr>, limits: &WsLimits) -> Result<Seat, ErrorBody> {
        let mut open = self.lock();
        if open.0 >= limits.max_connections {
            return Err(ErrorBody::with_details(
                ErrorCode::Unavailable,
                format!(
                    "too many WebSocket connections (limits.ws.max_connections = {})",
                    limits.max_connections
                ),
                json!({ "limit": limits.max_connections }),
            ));
        }
        if let Some(ip) = ip {
            let mine = open.1.entry(ip).or_insert(0);
            if *mine >= limits.max_connections_per_address {
                return Err(ErrorBody::with_details(
                    ErrorCode::Backpressure,
                    format!(
                        "too many WebSocket connections from {ip} \
                         (limits.ws.max_connections_per_address = {})",
                        limits.max_connections_per_address
                    ),
                    json!({ "limit": limits.max_connections_per_address }),
                ));
            }
            *mine += 1;
        }
        open.0 += 1;
        Ok(Seat {
            census: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut open = self.census.lock();
        open.0 = open.0.saturating_sub(1);
        if let Some(ip) = self.ip
            && let Some(mine) = open.1.get_mut(&ip)
        {
            *mine -= 1;
            if *mine == 0 {
                open.1.remove(&ip);
            }
        }
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
    let seat = match census.take(remote.map(|a| a.ip()), &limits) {
        Ok(seat) => seat,
        Err(refused) => return error_response(refused.error.code, &refused),
    };
    ctx.transport = "ws";
    upgrade
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .on_upgrade(move |socket| async move {
            session::run(socket, state, ctx, limits, lifetime).await;
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
    fn given_the_limits_when_seats_are_taken_then_totals_and_addresses_are_bounded_and_freed() {
        let limits = WsLimits {
            max_connections: 3,
            max_connections_per_address: 2,
            ..WsLimits::default()
        };
        let census = Arc::new(Census::default());
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = census.take(Some(a), &limits).unwrap();
        let _second = census.take(Some(a), &limits).unwrap();
        let per_address = census.take(Some(a), &limits).unwrap_err();
        assert_eq!(per_address.error.code, ErrorCode::Backpressure);
        let _third = census.take(Some(b), &limits).unwrap();
        let total = census.take(Some(b), &limits).unwrap_err();
        assert_eq!(total.error.code, ErrorCode::Unavailable);
        drop(first);
        census.take(Some(a), &limits).unwrap();
    }
}
