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
//! Credentials: the request's `Authorization` or `X-ACE-API-Key` header as on every route;
//! where a client cannot set headers (a browser's `WebSocket`), a bearer token offered as the
//! subprotocol `ace.bearer.<token>` next to `ace.comms.v1` (the server answers `ace.comms.v1`,
//! never the token), or else the query parameter `access_token`. A header wins over both,
//! the subprotocol over the query. The router's request spans print the URI with the
//! `access_token` value redacted, and no header is logged.
//!
//! A WebSocket outlives the HTTP connection task that upgraded it, so that task hands it a
//! [`Lifetime`] (the server's stop notice and a drain handle): shutdown closes every socket
//! with 1001 and waits for it like for an in-flight request.

pub(crate) mod budget;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use ace_core::{Credentials, RequestContext};
use ace_envelope::api::ws::{BEARER_PROTOCOL_PREFIX, PROTOCOL};
use ace_envelope::{ErrorBody, ErrorCode};
use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
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

/// The query of the upgrade: only the token parameter is read (its name is
/// `ace_envelope::api::ws::ACCESS_TOKEN_PARAM`).
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct UpgradeQuery {
    access_token: Option<String>,
}

/// The `/ws` route: `GET` with an upgrade.
pub(crate) fn route() -> MethodRouter<AppState> {
    let census = Arc::new(Census::default());
    get(
        move |State(state): State<AppState>,
              remote: Option<Extension<ConnectInfo<SocketAddr>>>,
              lifetime: Option<Extension<Lifetime>>,
              Ctx(ctx): Ctx,
              query: Result<Query<UpgradeQuery>, QueryRejection>,
              headers: HeaderMap,
              upgrade: WebSocketUpgrade| {
            let census = Arc::clone(&census);
            async move {
                let remote = remote.map(|Extension(ConnectInfo(addr))| addr);
                let lifetime = lifetime.map(|l| l.0);
                if let Some(refused) = origin_refusal(&state.limits.ws, &headers) {
                    return refused;
                }
                let query = match query {
                    Ok(Query(query)) => query,
                    Err(err) => {
                        return refusal(
                            ErrorCode::InvalidRequest,
                            format!("the query of /ws does not parse: {}", err.body_text()),
                            json!({ "field": "query" }),
                        );
                    }
                };
                let ctx = match browser_credentials(ctx, &headers, query) {
                    Ok(ctx) => ctx,
                    Err(body) => return error_response(body.error.code, &body),
                };
                accept(state, &census, remote, lifetime, ctx, upgrade)
            }
        },
    )
}

/// The subprotocols the client offered (`Sec-WebSocket-Protocol`, every header, comma-separated).
fn offered_protocols(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// `ctx` with the bearer token of a client that cannot set headers: from an offered
/// `ace.bearer.<token>` subprotocol, else the `access_token` query parameter, when the headers
/// carried no credentials. A token subprotocol without [`PROTOCOL`] next to it is refused 400:
/// the answer could name no protocol the client offered but the token itself, and a browser
/// fails a handshake whose answer names none.
fn browser_credentials(
    mut ctx: RequestContext,
    headers: &HeaderMap,
    query: UpgradeQuery,
) -> Result<RequestContext, ErrorBody> {
    let offered = offered_protocols(headers);
    let protocol_token = offered
        .iter()
        .find_map(|p| p.strip_prefix(BEARER_PROTOCOL_PREFIX));
    if protocol_token.is_some() && !offered.contains(&PROTOCOL) {
        return Err(ErrorBody::with_details(
            ErrorCode::InvalidRequest,
            format!(
                "a `{BEARER_PROTOCOL_PREFIX}<token>` subprotocol must be offered together with \
                 `{PROTOCOL}`, which the server answers with"
            ),
            json!({ "field": "sec-websocket-protocol" }),
        ));
    }
    if ctx.credentials == Credentials::None {
        let token = protocol_token
            .map(str::to_owned)
            .or(query.access_token)
            .filter(|t| !t.is_empty());
        if let Some(token) = token {
            ctx.credentials = Credentials::Bearer(token);
        }
    }
    Ok(ctx)
}

/// The 403 of a browser `Origin` not in the allowlist (judged first: before the credentials).
fn origin_refusal(limits: &WsLimits, headers: &HeaderMap) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or_default();
    (!origin_allowed(&limits.allowed_origins, origin)).then(|| {
        refusal(
            ErrorCode::Forbidden,
            format!("origin `{origin}` is not in limits.ws.allowed_origins"),
            json!({ "origin": origin }),
        )
    })
}

/// Authenticates and checks the limits (the origin and the browser's credentials are judged
/// before), then upgrades.
fn accept(
    state: AppState,
    census: &Arc<Census>,
    remote: Option<SocketAddr>,
    lifetime: Option<Lifetime>,
    mut ctx: RequestContext,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limits = state.limits.ws.clone();
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
    // Answers `ace.comms.v1` when the client offered it; never an `ace.bearer.` token.
    upgrade
        .protocols([PROTOCOL])
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_frame_bytes)
        .on_upgrade(move |socket| async move {
            session::run(socket, state, ctx, limits, lifetime, budget).await;
            drop(seat);
        })
}

/// Whether a browser `Origin` may upgrade: listed exactly (case-insensitively), or `*` listed.
pub(crate) fn origin_allowed(allowed: &[String], origin: &str) -> bool {
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

    fn offering(protocols: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, protocols.parse().unwrap());
        headers
    }

    fn query(token: Option<&str>) -> UpgradeQuery {
        UpgradeQuery {
            access_token: token.map(str::to_owned),
        }
    }

    #[test]
    fn given_browser_credentials_when_read_then_header_beats_subprotocol_beats_query() {
        let plain = RequestContext::new("ws");
        let ctx = browser_credentials(
            plain.clone(),
            &offering("ace.comms.v1, ace.bearer.from-protocol"),
            query(Some("from-query")),
        )
        .unwrap();
        assert_eq!(ctx.credentials, Credentials::Bearer("from-protocol".into()));
        let ctx = browser_credentials(plain.clone(), &HeaderMap::new(), query(Some("q"))).unwrap();
        assert_eq!(ctx.credentials, Credentials::Bearer("q".into()));
        let ctx = browser_credentials(plain.clone(), &HeaderMap::new(), query(Some(""))).unwrap();
        assert_eq!(ctx.credentials, Credentials::None);
        let mut keyed = plain.clone();
        keyed.credentials = Credentials::ApiKey("k".into());
        let ctx = browser_credentials(keyed, &offering("ace.comms.v1, ace.bearer.t"), query(None))
            .unwrap();
        assert_eq!(ctx.credentials, Credentials::ApiKey("k".into()));
    }

    #[test]
    fn given_a_token_subprotocol_alone_when_read_then_it_is_refused_naming_the_protocol() {
        let body = browser_credentials(
            RequestContext::new("ws"),
            &offering("ace.bearer.t"),
            query(None),
        )
        .unwrap_err();
        assert_eq!(body.error.code, ErrorCode::InvalidRequest);
        assert!(
            body.error.message.contains("ace.comms.v1"),
            "{}",
            body.error.message
        );
        assert!(
            !body.error.message.contains("ace.bearer.t"),
            "never echo the token"
        );
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
