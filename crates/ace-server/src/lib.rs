//! `ace-server` (layer L5): the server library behind `ace-comms serve` — configuration, the
//! HTTP adapter, limits, metrics, and `run(listener, config, shutdown)`.
//!
//! - `config`: [`Config`] — defaults → YAML file → `ACE_*` overrides ([`Config::load`]), then
//!   [`Config::validate`] naming the key at fault; [`default_streams`].
//! - `http`: [`AppState`] and [`router`]: `POST /api/v1/messages` (envelope or CloudEvent,
//!   structured or binary) and `/messages/batch`; streams, consumers, fetch, ack/nak/term, one
//!   message by sequence; agents (`POST /agents/{id}/heartbeat`, `GET /agents[/{id}]`: presence
//!   that expires) and sessions (`GET`/`PUT /sessions/{id}`, versioned, `ETag`/`If-Match`);
//!   `/health`, `/ready`, `/metrics`.
//! - `serve`: [`App::open`] (engine, contracts, core, default streams), [`App::serve`] (accept
//!   loop with connection, header, body, request and idle limits; graceful drain) and [`run`].
//! - `ws`: the WebSocket endpoint `/ws` — JSON frames of [`ace_envelope::api::ws`], live and
//!   durable-consumer subscriptions through the core, a bounded outgoing queue per connection,
//!   ping/pong keepalive, size, connection and subscription limits, the `Origin` allowlist
//!   ([`WsLimits`]). Close codes: 1008 origin refused, 1009 message too big, 4008 slow consumer
//!   (the queue overflowed), 1011 keepalive lost, 1001 server shutting down.
//! - `governance`: [`Governance`], the core's hooks from the `auth` and `policy` sections
//!   (development: no authentication, EHI holds kept; enforced: JWT, API keys, mTLS, then
//!   RBAC → Rego → EHI).
//! - `tls`: [`Tls`], rustls on the listener (`tls`), with optional or required client
//!   certificates whose DER reaches the authenticator.
//! - `metrics`: [`Metrics`], the `ace_comms_*` and `process_*` Prometheus metrics, the
//!   scrape-time ones bounded by [`MAX_STREAMS`] and [`MAX_CONSUMERS`].
//! - `recovery`: the `storage_recovered` ledger entries of the streams whose recovery cut a torn
//!   tail or found damage, recorded at start, and the `storage_damaged` entries of streams that
//!   stop taking writes while the server runs.
//! - `workflows`: the workflow runtime (`workflows.*`, [`WorkflowsConfig`]): the `ace-workflows`
//!   engine fed by the durable consumer [`TRIGGER_CONSUMER`] on [`TRIGGER_STREAM`], every effect
//!   published through the core as the workflow's own principal; `/api/v1/workflows…`.
//! - `offline`: [`repair_offline`], a stream repaired with the server stopped (the data
//!   directory's lock refuses it while a server runs), recorded in the server's ledger.
//! - `error`: [`ConfigError`], [`ServerError`], and [`ApiError`] with the one `IntoResponse`.
//!
//! # Invariants
//!
//! - The library never binds a socket, reads an environment variable or installs a tracing
//!   subscriber: the binary does, and hands over the listener, the variables and a shutdown
//!   future.
//! - Every error answer, whoever produced it (a handler, axum, a timeout), carries the body of
//!   `contracts/comms/errors.schema.json`; a 5xx never carries internals, which are logged
//!   (`STREAM_DAMAGED` names the stream, its state, the segment file and offset, never a
//!   directory: a client must know the refusal lasts).
//! - Every operation goes through `ace_core::Core`: no handler touches the bus.
//! - No request body is buffered past `limits.max_body_bytes`, announced or streamed; no
//!   WebSocket message past `limits.ws.max_message_bytes`.
//! - A WebSocket connection never holds more than `limits.ws.queue` frames for its client: a
//!   live message that finds the queue full closes the connection (4008) instead of growing it.
//! - Shutdown stops accepting, turns `/ready` to 503, lets in-flight requests finish, then
//!   closes the engine (flushing consumer state) before `run` returns.

mod census;
mod config;
mod error;
mod governance;
mod http;
mod ledger;
pub mod mcp;
mod metrics;
mod offline;
mod recovery;
mod serve;
mod tls;
mod workflows;
mod ws;

pub use config::{
    AuthConfig, AuthMode, ClientAuth, Config, ContractRequirement, ContractsConfig, Engine,
    LedgerConfig, LedgerPostgresConfig, LedgerStoreKind, LedgerSyncMode, LimitsConfig, McpLimits,
    MetricsAccess, NatsConfig, PolicyConfig, SessionsStoreKind, StateConfig, StatePostgresConfig,
    StreamsConfig, TlsConfig, WsLimits, default_streams,
};
pub use error::{ApiError, ConfigError, ServerError};
pub use governance::{Governance, Reloaded};
pub use http::{AppState, router};
pub use metrics::{MAX_AGENT_TYPES, MAX_CONSUMERS, MAX_STREAMS, Metrics};
pub use offline::repair_offline;
pub use serve::{App, run};
pub use tls::Tls;
pub use workflows::{TRIGGER_CONSUMER, TRIGGER_STREAM, WorkflowsConfig};
