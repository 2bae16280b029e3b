//! `ace-envelope` (layer L0): the `gme/1` message envelope of ACE::COMMS and everything needed to
//! make, check, sign and carry one — with no I/O.
//!
//! Every other crate of the workspace depends on this one, so it stays small and stable:
//!
//! - [`Envelope`] and its parts ([`Kind`], [`Priority`], [`Qos`], [`Source`], [`PayloadRef`],
//!   [`Governance`], [`Label`], [`Signature`], [`TraceContext`]) — `envelope.rs`;
//! - [`EnvelopeBuilder`] with the documented defaults and a UUIDv7 id (a client's envelope may
//!   carry any RFC 9562 UUID) — `builder.rs`;
//! - [`Envelope::validate`], every broken rule with its field path — `validate.rs`;
//! - [`Subject`], [`SubjectPattern`] (`*`, `>`), the ACE hierarchy [`AceSubject`] — `subject.rs`;
//! - W3C [`TraceParent`] — `trace.rs`;
//! - [`canonical`]: RFC 8785-style canonical JSON, Ed25519 [`Envelope::sign`] / [`Envelope::verify`];
//! - [`codec`]: protobuf ([`Envelope::to_protobuf_vec`]) and CloudEvents 1.0
//!   ([`to_cloudevent_json`], [`to_binary`]); [`leyline`]: the generated Leyline messages;
//! - [`Clock`], [`SystemClock`], [`ManualClock`]: injected time as `DateTime<Utc>` — `clock.rs`;
//! - [`ErrorCode`], [`ErrorBody`]: the wire error vocabulary of every API — `error.rs`;
//! - [`api`]: the HTTP bodies and WebSocket frames shared by the server and `ace-client`.
//!
//! ```
//! use ace_envelope::{Envelope, Kind, Priority, SubjectPattern};
//!
//! let env = Envelope::builder(Kind::Event, "ace.comms.http.service.kpi.evt.v1")
//!     .name("kpi.threshold_breach")
//!     .payload_json(serde_json::json!({"kpi": "latency", "value": 812}))
//!     .priority(Priority::P1)
//!     .build()?;
//! assert!(SubjectPattern::new("ace.comms.*.service.>")?.matches(&env.subject));
//! let back = Envelope::from_protobuf_slice(&env.to_protobuf_vec()?)?;
//! assert_eq!(back, env);
//! # Ok::<(), ace_envelope::EnvelopeError>(())
//! ```
//!
//! # Payload
//!
//! `payload` is a `serde_json::Value`. With a JSON `content_type` (`application/json` or a
//! `+json` suffix, lower case) it is the JSON itself; with any other content type it is a JSON
//! string holding the bytes in standard padded base64 ([`EnvelopeBuilder::payload_bytes`],
//! [`Envelope::payload_bytes`]). In protobuf and CloudEvents binary mode the payload travels as
//! raw bytes (the JSON text, or the decoded bytes).
//!
//! # QoS classes
//!
//! `qos` (`contracts/comms/qos.yaml`) is honoured through the message's lifetime, which every
//! expiry check asks of [`Envelope::expires_at`]: a `realtime` message naming neither `ttl_ms`
//! nor `deadline` expires [`REALTIME_DEFAULT_TTL_MS`] (30 s) after its `created_at` — refused at
//! ingress once older, never delivered after, its approval expiring with it — because late is
//! as bad as lost. `standard` and `bulk` give no implicit lifetime: their contract lifetimes (a
//! day, a week) would silently expire replayable history, so their stream's retention bounds
//! them instead. What a message names itself always wins. Delivery is at-least-once for every
//! class, as the contract says; its `sla` figures are benchmark targets, and its
//! `retry_policy`, `compression` and `batching` are not applied per message (a consumer's
//! `backoff` is its own; the embedded engine stores payloads as sent). Values other than the
//! three are refused when an envelope is read (`INVALID_ENVELOPE`).
//!
//! # CloudEvents mapping
//!
//! Structured mode is one JSON object (`application/cloudevents+json`); binary mode puts each
//! attribute in a `ce-{name}` header (percent-encoded), `datacontenttype` in `content-type` and
//! the payload bytes in the body.
//!
//! | CloudEvents attribute | envelope field | notes |
//! | --- | --- | --- |
//! | `specversion` | — | always `1.0` |
//! | `id` | `id` | UUID text (any RFC 9562 version) |
//! | `source` | `source` | `/ace-comms/{type}/{percent-encoded id}`, `/ace-comms` without a source |
//! | `type` | `name` | `gme/1.{kind}` when `name` is absent (a `name` never holds `/`) |
//! | `subject` | `subject` | |
//! | `time` | `created_at` | RFC 3339, nanoseconds kept |
//! | `datacontenttype` | `content_type` | `content-type` header in binary mode |
//! | `dataschema` | `schema` | the URI `urn:ace:schema:{name@semver}`; a bare `name@semver` is read too |
//! | `data` / `data_base64` | `payload` | `data` for JSON content, `data_base64` otherwise |
//! | `traceparent`, `tracestate` | `trace` | the CloudEvents distributed-tracing extension |
//! | `acespec` | `spec` | |
//! | `acekind` | `kind` | |
//! | `acedomain` | `domain` | |
//! | `acepriority`, `aceqos` | `priority`, `qos` | |
//! | `aceidempotencykey` | `idempotency_key` | |
//! | `acecorrelationid`, `acecausationid` | `correlation_id`, `causation_id` | |
//! | `acepartitionkey` | `partition_key` | |
//! | `acehops`, `aceattempt`, `acemaxattempts` | `hops`, `attempt`, `max_attempts` | decimal |
//! | `acettlms` | `ttl_ms` | decimal |
//! | `acedeadline`, `acenotbefore` | `deadline`, `not_before` | RFC 3339 |
//! | `acerbac` | `rbac` | canonical JSON array |
//! | `acegovernance` | `governance` | canonical JSON object |
//! | `acepayloadref` | `payload_ref` | canonical JSON object |
//! | `acesignature` | `signature` | canonical JSON object |
//! | `aceheaders` | `headers` | canonical JSON object |
//!
//! # Foreign CloudEvents
//!
//! A CloudEvent without the `acekind` extension comes from a producer that knows nothing of
//! envelopes (the official SDKs, a cloud's event bus). [`from_cloudevent_json_mapped`] and
//! [`from_binary_mapped`] make it an envelope:
//!
//! | CloudEvent | envelope |
//! | --- | --- |
//! | `type`, `source`, `subject` | `subject` and `kind` from the first matching rule of a [`Mapping`](codec::cloudevents::Mapping) (default: kind `event`, subject `ace.comms.http.service.cloudevents.evt.{type}`) |
//! | `type` | `name` when it is a valid name, else kept as `headers.ce-type` |
//! | `id` | kept as `headers.ce-id` (any string); the envelope `id` is a new UUIDv7 |
//! | `source` | kept as `headers.ce-source`; never the envelope `source`, which the server sets from authentication |
//! | `subject` | kept as `headers.ce-subject` |
//! | `source` and `id` | `idempotency_key` `ce:{hex SHA-256 of source, a line feed, id}` (unless `aceidempotencykey` is given): the same event sent twice by one sender is a duplicate within a stream's dedup window |
//! | `time` | `created_at`; the time of arrival when absent |
//! | `dataschema` | `schema` when it is `urn:ace:schema:{name@semver}`, else kept as `headers.ce-dataschema` |
//! | `data` / `data_base64` / body | `payload`: `data_base64` as its bytes (`application/octet-stream` without a `datacontenttype`), string `data` under a non-JSON `datacontenttype` as its text; without data an empty `application/octet-stream` payload (a `datacontenttype` kept as `headers.ce-datacontenttype`) |
//! | any other extension `x` | kept as `headers.ce-x` |
//!
//! The `ace*` extensions of the table above (`acepriority`, `aceqos`, `acettlms`, …) apply to a
//! foreign event too. An attribute name must be lower-case letters and digits.
//!
//! # Invariants
//!
//! - An envelope returned by [`EnvelopeBuilder::build`] passes [`Envelope::validate`] and
//!   `contracts/comms/envelope.schema.json`; the two refuse the same bad envelopes.
//! - The serde (JSON) form is canonical; protobuf and CloudEvents are lossless views of it:
//!   a valid envelope converted there and back is equal to itself (proptested).
//! - [`SubjectPattern::matches`] never allocates.
//! - An [`ErrorCode`]'s wire string never changes and is never reused;
//!   `contracts/comms/errors.schema.json` lists exactly [`ErrorCode::ALL`].
//! - No I/O, no global state: time comes from a [`Clock`], randomness only for ids.

pub mod api;
mod builder;
pub mod canonical;
mod clock;
pub mod codec;
mod envelope;
mod error;
pub mod leyline;
mod strict;
mod subject;
mod trace;
mod validate;

pub use builder::{EnvelopeBuilder, uuid_v7_at};
pub use clock::{Clock, ManualClock, SystemClock};
pub use codec::cloudevents::{
    from_binary, from_binary_mapped, from_cloudevent_json, from_cloudevent_json_mapped, to_binary,
    to_cloudevent_json,
};
pub use envelope::{
    DEFAULT_MAX_ATTEMPTS, Envelope, Governance, JSON_CONTENT_TYPE, Kind, Label, PayloadRef,
    Priority, Qos, REALTIME_DEFAULT_TTL_MS, SPEC, Signature, Source, SourceType,
    is_json_content_type,
};
pub use error::{EnvelopeError, ErrorBody, ErrorCode, ErrorDetail};
pub use subject::{
    ACE_PREFIX, AceSubject, MAX_SUBJECT_LEN, SYSTEM_DLQ, SYSTEM_HITL, SYSTEM_PREFIX,
    SYSTEM_WORKFLOW, Subject, SubjectPattern, Verb,
};
pub use trace::{TraceContext, TraceParent};
pub use validate::{Limits, MAX_HOPS, MAX_ID_LEN, Violation};
