//! `ace-client` (layer L5): the Rust SDK of ACE::COMMS — typed calls for every `/api/v1` route
//! of `ace-comms serve`. It depends on `ace-envelope` only (the envelope and the shared wire
//! types of `ace_envelope::api`), never on the engines or the server.
//!
//! - [`Client`] — `http.rs`: one method per route: [`Client::publish`],
//!   [`Client::publish_batch`]; streams ([`Client::add_stream`], [`Client::list_streams`],
//!   [`Client::stream_info`], [`Client::delete_stream`], [`Client::repair_stream`],
//!   [`Client::get_message`]); consumers
//!   ([`Client::add_consumer`], [`Client::list_consumers`], [`Client::consumer_info`],
//!   [`Client::delete_consumer`], [`Client::fetch`], [`Client::ack`], [`Client::nak`],
//!   [`Client::term`]); agents ([`Client::agents`], [`Client::agent`], [`Client::heartbeat`]);
//!   sessions ([`Client::session`], [`Client::put_session`] with a [`Precondition`]);
//!   approvals ([`Client::approvals`], [`Client::approval`], [`Client::decide`]; a held
//!   publish is [`ClientError::Held`]);
//!   [`Client::health`], [`Client::ready`];
//! - [`WsConnection`] — `ws.rs`, from [`Client::connect_ws`]: the `/ws` protocol —
//!   [`WsConnection::subscribe`] (live, optional queue group) and [`WsConnection::consume`]
//!   (push from a durable consumer) give a [`Subscription`] (a `Stream` of [`WsMessage`] with
//!   [`Subscription::ack`]/`nak`/`term`); [`WsConnection::publish`], [`WsConnection::publish_batch`]; [`WsConnection::request`]
//!   (a fresh inbox in `headers["reply_to"]`, the first reply or [`ClientError::Timeout`]);
//! - [`ClientBuilder`] — `tls.rs`, from [`Client::builder`]: a CA to trust
//!   ([`ClientBuilder::tls_ca`]), a client certificate for mutual TLS
//!   ([`ClientBuilder::tls_identity`]), as files or bytes ([`Pem`]), and the bound of the
//!   connection pool ([`ClientBuilder::max_connections`]);
//! - [`ClientError`] — `error.rs`: the server's refusal ([`ClientError::Api`]: HTTP status and
//!   error body), transport, TLS ([`ClientError::Tls`]: a bad PEM file, a refused handshake),
//!   decoding, invalid URL, WebSocket close, timeout.
//!
//! ```no_run
//! use ace_client::{Client, StreamConfig};
//! use ace_envelope::{Envelope, Kind};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::new("http://127.0.0.1:8500")?;
//! client.add_stream(&StreamConfig::new("ORDERS", &["ace.comms.shop.>"])).await?;
//! let env = Envelope::builder(Kind::Event, "ace.comms.shop.service.order.evt.v1")
//!     .payload_json(serde_json::json!({"order": 42}))
//!     .build()?;
//! let accepted = client.publish(&env).await?;
//! assert_eq!(accepted.stream.as_deref(), Some("ORDERS"));
//! # Ok(()) }
//! ```
//!
//! # WebSocket close codes
//!
//! When the server closes the connection, every waiting call and every [`Subscription`] ends
//! with [`ClientError::Closed`] carrying its code ([`close`] names them): 1008 the `Origin` was
//! refused, 1009 a frame was larger than the server's limit, 4008 slow consumer (this client
//! read too slowly and the connection's queue overflowed — [`ClientError::is_slow_consumer`]),
//! 1001 the server is shutting down, 1011 a keepalive went unanswered.
//!
//! # Transport
//!
//! `reqwest` with HTTP/1.1 and HTTP/2 (negotiated by ALPN over TLS), JSON bodies;
//! `tokio-tungstenite` for the WebSocket. `http://` and `https://` servers (the WebSocket
//! follows: `ws://` or `wss://`). TLS is rustls on the `ring` provider (no C build), one
//! `ClientConfig` per client shared by the HTTP pool and every WebSocket. It trusts Mozilla's
//! roots (compiled in, the platform store is not read) plus every [`ClientBuilder::tls_ca`];
//! [`ClientBuilder::tls_identity`] presents a client certificate, which a server with
//! `tls.client_auth: optional|required` verifies and (with `auth.mtls`) maps to a principal.
//!
//! ```no_run
//! # fn demo() -> Result<(), ace_client::ClientError> {
//! let client = ace_client::Client::builder("https://comms.internal:8500")
//!     .tls_ca(std::path::Path::new("/etc/ace/ca.pem"))
//!     .build()?;
//! # Ok(()) }
//! ```
//!
//! A bad PEM is refused when the client is built, naming its file; a refused handshake
//! (untrusted server certificate, a client certificate required or refused) is
//! [`ClientError::Tls`] saying which, never a panic.
//!
//! # Invariants
//!
//! - Every non-2xx answer becomes [`ClientError::Api`] carrying the server's status and error
//!   body unchanged; a body that is not an error body becomes [`ClientError::Decode`] naming the
//!   status — the client never invents an error code.
//! - Path segments are percent-encoded: an id can never address another route.
//! - Credentials are never printed (`Debug` hides them).
//! - No global state, no background task for HTTP: a [`Client`] is a handle on a connection
//!   pool, cheap to clone. At most [`ClientBuilder::max_connections`] requests (default
//!   [`DEFAULT_MAX_CONNECTIONS`]) are on the wire at once over all clones; the others wait for
//!   a kept-alive connection, so the client never needs more connections than that. A [`WsConnection`] owns exactly two tasks (reader, writer), stopped
//!   when it drops.
//! - A subscription's route is registered before its `subscribe` frame is sent, so no message
//!   pushed before the `ok` is lost; a closed connection ends every subscription with its close
//!   code, never silently.

mod error;
mod http;
mod tls;
mod ws;

pub use ace_envelope::api::http::{
    Accepted, AckAnswer, AckFailure, AckPolicy, AgentPresence, Approval, ApprovalStatus, Backoff,
    BatchAnswer, BatchItem, ConsumerConfig, ConsumerCounters, ConsumerInfo, Decided, DeliverPolicy,
    DiscardPolicy, FetchedMessage, Heartbeat, Ordering, Pending, Requester, RetentionPolicy,
    Session, StorageKind, StoredMessage, StreamConfig, StreamCounters, StreamInfo, StreamRepair,
    SyncPolicy, Verdict,
};
pub use ace_envelope::api::ws::{Message as WsMessage, close};
pub use error::ClientError;
pub use http::{Client, DEFAULT_MAX_CONNECTIONS, LedgerQuery, Precondition};
pub use tls::{ClientBuilder, Pem};
pub use ws::{INBOX_PREFIX, REPLY_TO_HEADER, SUBSCRIPTION_BUFFER, Subscription, WsConnection};
