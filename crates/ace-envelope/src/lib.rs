//! `ace-envelope` (layer L0): the `gme/1` message envelope of ACE::COMMS and everything needed to
//! make, check, sign and carry one — with no I/O.
//!
//! Every other crate of the workspace depends on this one, so it stays small and stable:
//!
//! - [`Envelope`] and its parts ([`Kind`], [`Priority`], [`Qos`], [`Source`], [`PayloadRef`],
//!   [`Governance`], [`Label`], [`Signature`], [`TraceContext`]) — `envelope.rs`;
//! - [`EnvelopeBuilder`] with the seed's defaults and a UUIDv7 id — `builder.rs`;
//! - [`Envelope::validate`], every broken rule with its field path — `validate.rs`;
//! - [`Subject`], [`SubjectPattern`] (`*`, `>`), the ACE hierarchy [`AceSubject`] — `subject.rs`;
//! - W3C [`TraceParent`] — `trace.rs`;
//! - [`Clock`], [`SystemClock`], [`ManualClock`]: injected time — `clock.rs`;
//! - [`ErrorCode`], [`ErrorBody`]: the wire error vocabulary of every API — `error.rs`.
//!
//! # Invariants
//!
//! - An envelope returned by [`EnvelopeBuilder::build`] passes [`Envelope::validate`] and
//!   `contracts/comms/envelope.schema.json`; the two refuse the same bad envelopes.
//! - The serde (JSON) form is canonical; every other form is a lossless view of it.
//! - [`SubjectPattern::matches`] never allocates.
//! - An [`ErrorCode`]'s wire string never changes and is never reused.

mod builder;
pub mod canonical;
mod clock;
pub mod codec;
mod envelope;
mod error;
pub mod leyline;
mod subject;
mod trace;
mod validate;

pub use builder::{EnvelopeBuilder, uuid_v7_at};
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::cloudevents::{from_binary, from_cloudevent_json, to_binary, to_cloudevent_json};
pub use envelope::{
    DEFAULT_MAX_ATTEMPTS, Envelope, Governance, JSON_CONTENT_TYPE, Kind, Label, PayloadRef,
    Priority, Qos, SPEC, Signature, Source, SourceType, is_json_content_type,
};
pub use error::{EnvelopeError, ErrorBody, ErrorCode, ErrorDetail};
pub use subject::{
    ACE_PREFIX, AceSubject, MAX_SUBJECT_LEN, SYSTEM_DLQ, SYSTEM_HITL, SYSTEM_PREFIX,
    SYSTEM_WORKFLOW, Subject, SubjectPattern, Verb,
};
pub use trace::{TraceContext, TraceParent};
pub use validate::{Limits, MAX_HOPS, MAX_ID_LEN, Violation};
