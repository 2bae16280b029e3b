//! `ace-client` (layer L5): the Rust SDK of ACE::COMMS — typed calls for every `/api/v1` route
//! of `ace-comms serve`. It depends on `ace-envelope` only (the envelope and the shared wire
//! types of `ace_envelope::api`), never on the engines or the server.
//!
//! - [`Client`] — `http.rs`: one method per route: [`Client::publish`],
//!   [`Client::publish_batch`]; streams ([`Client::add_stream`], [`Client::list_streams`],
//!   [`Client::stream_info`], [`Client::delete_stream`], [`Client::get_message`]); consumers
//!   ([`Client::add_consumer`], [`Client::list_consumers`], [`Client::consumer_info`],
//!   [`Client::delete_consumer`], [`Client::fetch`], [`Client::ack`], [`Client::nak`],
//!   [`Client::term`]); agents ([`Client::agents`], [`Client::agent`], [`Client::heartbeat`]);
//!   sessions ([`Client::session`], [`Client::put_session`] with a [`Precondition`]);
//!   [`Client::health`], [`Client::ready`];
//! - [`ClientError`] — `error.rs`: the server's refusal ([`ClientError::Api`]: HTTP status and
//!   error body), transport, decoding, invalid URL, WebSocket close, timeout.
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
//! # Transport
//!
//! `reqwest` with HTTP/1.1 and HTTP/2 (negotiated), JSON bodies, and no TLS stack: only
//! `http://` servers. Put a TLS-terminating proxy in front of the server until a `rustls`
//! feature is added; an `https://` URL is refused at [`Client::new`] rather than failing later.
//!
//! # Invariants
//!
//! - Every non-2xx answer becomes [`ClientError::Api`] carrying the server's status and error
//!   body unchanged; a body that is not an error body becomes [`ClientError::Decode`] naming the
//!   status — the client never invents an error code.
//! - Path segments are percent-encoded: an id can never address another route.
//! - Credentials are never printed (`Debug` hides them).
//! - No global state, no background task for HTTP: a [`Client`] is a handle on a connection
//!   pool, cheap to clone.

mod error;
mod http;

pub use ace_envelope::api::http::{
    Accepted, AckAnswer, AckFailure, AckPolicy, AgentPresence, Backoff, BatchAnswer, BatchItem,
    ConsumerConfig, ConsumerCounters, ConsumerInfo, DeliverPolicy, DiscardPolicy, FetchedMessage,
    Heartbeat, Ordering, RetentionPolicy, Session, StorageKind, StoredMessage, StreamConfig,
    StreamCounters, StreamInfo, SyncPolicy,
};
pub use error::ClientError;
pub use http::{Client, Precondition};
