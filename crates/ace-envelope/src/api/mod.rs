//! The wire types of the ACE::COMMS APIs: everything that crosses HTTP or the WebSocket besides
//! the [`Envelope`](crate::Envelope) and the [`ErrorBody`](crate::ErrorBody) themselves.
//!
//! They live here, in L0, so that the server (which answers with them) and `ace-client` (which
//! reads them) share one definition without the client depending on the engines or the server.
//! Pure serde data, no I/O.
//!
//! - [`http`]: request and answer bodies of `/api/v1` — publish answers, stream and consumer
//!   configurations and their info snapshots, fetch, ack/nak/term, stored messages;
//! - [`registry`]: the bodies and answers of the schema registry's routes;
//! - [`repair`]: the body and answer of a stream repair (re-exported by [`http`]);
//! - [`system`]: the messages the server publishes itself (dead letters, approvals, presence):
//!   their subjects, names, contracts and payloads;
//! - [`ws`]: the frames of the `/ws` protocol (with the `openapi` feature their `ToSchema`
//!   derives are the schemas of the server's `/asyncapi.json`), its subprotocol and the forms
//!   of a browser's token.

pub mod http;
pub mod registry;
pub mod repair;
pub mod system;
pub mod ws;
