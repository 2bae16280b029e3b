//! The MCP adapter: ACE::COMMS as a Model Context Protocol server, for LLM agents.
//!
//! - `tools`: the tools' input and output types (JSON Schemas derived from them) and the
//!   catalogue both transports announce.
//! - `backend`: [`Backend`], the operations behind the tools and resources.
//! - `server`: [`McpServer`], the rmcp `ServerHandler` over any backend: tools, resources,
//!   error results carrying the server's error body.
//! - `core_backend`: [`CoreBackend`], the backend of `/mcp` over `ace_core::Core`.
//!
//! Two transports run the same [`McpServer`]: streamable HTTP at `/mcp` here (`route`), and
//! stdio in `ace-comms mcp --server URL`, whose backend calls a remote server through
//! `ace-client`.
//!
//! # Invariants
//!
//! - A request reaches rmcp only after the gate: its `Host` is in `limits.mcp.allowed_hosts`
//!   (loopback names by default, against DNS rebinding), its `Origin`, when it has one, is in
//!   `limits.mcp.allowed_origins` (none by default), and its credentials (bearer JWT,
//!   `X-ACE-API-Key` or a verified client certificate, read exactly as HTTP reads them)
//!   authenticate; each refusal is the error body with 403 or 401.
//! - Each tool call is one core operation (a `request` is two: the inbox subscription and the
//!   publish) with that HTTP request's credentials, never a side door to the bus: RBAC, Rego,
//!   EHI holds and the ledger apply as on `/api/v1`.
//! - `/mcp` is not under the HTTP request timeout (a streamable HTTP response may be an event
//!   stream); its bodies are bounded by `limits.max_body_bytes`; when shutdown begins every
//!   session and its streams end (`AppState::end_mcp_sessions`), so the drain never waits on one.

mod backend;
mod core_backend;
mod server;
pub mod tools;

use std::sync::Arc;

use ace_envelope::{ErrorBody, ErrorCode};
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::Response;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::json;

pub use backend::{Backend, Contract, Publication, Verdict};
pub use core_backend::CoreBackend;
pub use server::{McpServer, RECENT_MESSAGES};

use crate::error::error_response;
use crate::http::AppState;
use crate::http::request::Ctx;
use core_backend::McpCaller;

/// The path of the streamable HTTP endpoint.
pub const PATH: &str = "/mcp";

/// `/mcp`: rmcp's streamable HTTP service over a [`CoreBackend`], behind [`gate`].
pub(crate) fn route(state: &AppState) -> Router<AppState> {
    let backend = CoreBackend::new(state.clone());
    let config = StreamableHttpServerConfig::default()
        // the gate checks Host and Origin against the configuration, with our error body
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(state.limits.max_body_bytes)
        .with_cancellation_token(state.mcp_sessions.child_token());
    let service = StreamableHttpService::new(
        move || Ok(McpServer::new(backend.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .route_layer(middleware::from_fn_with_state(state.clone(), gate))
}

/// Host, Origin and credentials, judged before rmcp reads the request; the authenticated
/// request context rides on the request to [`CoreBackend`].
async fn gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limits = &state.limits.mcp;
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default()
        .to_owned();
    if !host_allowed(&limits.allowed_hosts, &host) {
        return refusal(
            ErrorCode::Forbidden,
            format!("host `{host}` is not in limits.mcp.allowed_hosts"),
            json!({ "host": host }),
        );
    }
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().to_owned();
        if !crate::ws::origin_allowed(&limits.allowed_origins, &origin) {
            return refusal(
                ErrorCode::Forbidden,
                format!("origin `{origin}` is not in limits.mcp.allowed_origins"),
                json!({ "origin": origin }),
            );
        }
    }
    let (mut parts, body) = request.into_parts();
    let Ok(Ctx(mut ctx)) = Ctx::from_request_parts(&mut parts, &state).await;
    ctx.transport = "mcp";
    if let Err(err) = state.core.authenticate(&ctx) {
        let mut answer = error_response(err.code(), &err.body());
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return answer;
    }
    parts.extensions.insert(McpCaller(ctx));
    next.run(Request::from_parts(parts, body)).await
}

/// Whether `host` (a `Host` header: `name[:port]`) is allowed: an entry names the host alone
/// (any port) or `host:port` exactly, case-insensitively; `*` allows any.
fn host_allowed(allowed: &[String], host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        // `[::1]:8500` or `name:8500`; a bare IPv6 `[::1]` has no port after its bracket
        Some((name, port)) if !port.contains(']') && port.chars().all(|c| c.is_ascii_digit()) => {
            name
        }
        _ => host,
    };
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    allowed.iter().any(|entry| {
        entry == "*"
            || entry.eq_ignore_ascii_case(host)
            || entry
                .trim_start_matches('[')
                .trim_end_matches(']')
                .eq_ignore_ascii_case(bare)
    })
}

fn refusal(code: ErrorCode, message: String, details: serde_json::Value) -> Response {
    error_response(code, &ErrorBody::with_details(code, message, details))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_loopback_allowlist_when_hosts_are_checked_then_only_loopback_names_pass() {
        let allowed: Vec<String> = crate::config::McpLimits::default().allowed_hosts;
        for host in [
            "localhost",
            "localhost:8500",
            "127.0.0.1:8500",
            "[::1]:8500",
            "[::1]",
        ] {
            assert!(host_allowed(&allowed, host), "{host}");
        }
        for host in [
            "evil.example.com",
            "evil.example.com:8500",
            "127.0.0.2:80",
            "",
        ] {
            assert!(!host_allowed(&allowed, host), "{host}");
        }
        let pinned = vec!["mcp.example.com:443".to_owned()];
        assert!(host_allowed(&pinned, "mcp.example.com:443"));
        assert!(!host_allowed(&pinned, "mcp.example.com:8443"));
        assert!(host_allowed(&["*".to_owned()], "anything:1"));
    }
}
