//! The `gme/1` envelope: one struct for events, commands, queries, replies and errors, with
//! every field of the gme/1 envelope.
//!
//! The serde form of [`Envelope`] *is* the canonical JSON form, and
//! `contracts/comms/envelope.schema.json` describes exactly this shape (unknown fields are
//! refused on both sides). Fields with a default may be omitted on input; on output `None`,
//! empty lists and empty maps are omitted, everything else is written.
//!
//! Payload: with a JSON `content_type` (`application/json` or `…+json`, lower case) `payload`
//! is the JSON value itself; with any other content type it is a JSON string holding the bytes
//! in standard padded base64. Large content travels by reference in `payload_ref` instead;
//! exactly one of the two is present.

use std::collections::BTreeMap;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::EnvelopeError;
use crate::trace::TraceContext;

/// The value of the `spec` field.
pub const SPEC: &str = "gme/1";
/// The default `content_type`.
pub const JSON_CONTENT_TYPE: &str = "application/json";
/// The default `max_attempts` (`retries.max_attempts: 5` of the reference defaults).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;

/// Declares a closed enum whose values travel as fixed strings, with `ALL` (declaration
/// order), `as_str` (the wire name) and `parse` (its inverse).
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $wire:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $wire)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($wire),+].len()] = [$($name::$variant),+];

            /// The wire name.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)+ }
            }

            /// The value of a wire name.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        // By hand, not derived: the derive does not see the wire names through the macro.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let values = [$($wire),+];
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(values))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// What a message is.
    Kind {
        /// Something happened.
        Event = "event",
        /// Do something.
        Command = "command",
        /// Tell me something.
        Query = "query",
        /// The answer to a command or query.
        Reply = "reply",
        /// A failed answer to a command or query.
        Error = "error",
    }
}

wire_enum! {
    /// Delivery priority. `P0` is the most urgent: the derived order sorts `P0 < P1 < P2 < P3`,
    /// so an ascending sort puts the most urgent first.
    #[derive(PartialOrd, Ord, Default)]
    Priority {
        /// Critical.
        P0 = "P0",
        /// High.
        P1 = "P1",
        /// Normal, the default.
        #[default]
        P2 = "P2",
        /// Low, background.
        P3 = "P3",
    }
}

impl Priority {
    /// 0 for `P0` … 3 for `P3`: the index of the priority lane.
    pub const fn as_index(self) -> usize {
        self as usize
    }

    /// The priority of a lane index.
    pub fn from_index(index: usize) -> Option<Priority> {
        Priority::ALL.get(index).copied()
    }
}

wire_enum! {
    /// Quality-of-service class.
    #[derive(Default)]
    Qos {
        /// Latency first.
        Realtime = "realtime",
        /// The default.
        #[default]
        Standard = "standard",
        /// Throughput first; may be batched.
        Bulk = "bulk",
    }
}

/// How long a `realtime` message lives when it names neither `ttl_ms` nor `deadline`
/// (`classes.realtime.default_ttl_ms` of `contracts/comms/qos.yaml`: late is as bad as lost).
pub const REALTIME_DEFAULT_TTL_MS: u64 = 30_000;

impl Qos {
    /// The lifetime a message of this class gets when it names neither `ttl_ms` nor
    /// `deadline`: [`REALTIME_DEFAULT_TTL_MS`] for `realtime`; none for `standard` and `bulk`,
    /// which live until their stream's retention (`max_age`, `max_msgs`, `max_bytes`) drops
    /// them.
    pub const fn default_ttl_ms(self) -> Option<u64> {
        match self {
            Qos::Realtime => Some(REALTIME_DEFAULT_TTL_MS),
            Qos::Standard | Qos::Bulk => None,
        }
    }
}

wire_enum! {
    /// What kind of party sent a message.
    SourceType {
        /// An AI agent.
        Agent = "agent",
        /// A person.
        Human = "human",
        /// A service.
        Service = "service",
        /// A Grace kernel.
        Kernel = "kernel",
        /// A group of parties.
        Group = "group",
    }
}

/// Who sent a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// Kind of sender.
    #[serde(rename = "type")]
    pub source_type: SourceType,
    /// Id of the sender.
    pub id: String,
}

impl Source {
    /// A source.
    pub fn new(source_type: SourceType, id: impl Into<String>) -> Self {
        Self {
            source_type,
            id: id.into(),
        }
    }
}

/// Large content stored elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PayloadRef {
    /// Where the content is (absolute URI).
    pub uri: String,
    /// SHA-256 of the content, 64 lower-case hex digits.
    pub sha256: String,
    /// Size of the content in bytes.
    pub size: u64,
}

wire_enum! {
    /// Sensitivity label, least sensitive first (the derived order compares sensitivity).
    #[derive(PartialOrd, Ord, Default)]
    Label {
        /// Anyone may see it.
        Public = "public",
        /// Inside the organisation; the default.
        #[default]
        Internal = "internal",
        /// Need to know.
        Confidential = "confidential",
        /// Highest clearance.
        Secret = "secret",
    }
}

/// Governance metadata of a message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Governance {
    /// Sensitivity label.
    #[serde(default)]
    pub label: Label,
    /// Payload fields holding personal data (redacted in logs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pii: Vec<String>,
    /// Consent scope the personal data was given under.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub consent_scope: Option<String>,
    /// Epistemic Humility Index, 0..=1; at or above the action's threshold a human must approve.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub ehi_score: Option<f64>,
    /// The sender asks for a human approval before delivery.
    #[serde(default)]
    pub requires_approval: bool,
    /// The approval that released the message.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub approval_id: Option<String>,
}

/// An Ed25519 signature over the canonical JSON form (see [`crate::canonical`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// Always `ed25519`.
    pub alg: String,
    /// Which key signed.
    pub key_id: String,
    /// The 64-byte signature, standard padded base64.
    pub sig: String,
}

fn default_content_type() -> String {
    JSON_CONTENT_TYPE.to_owned()
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

/// The `gme/1` message envelope. Build one with [`Envelope::builder`]; check one received from
/// outside with [`Envelope::validate`](crate::Envelope::validate).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Always `gme/1`; required on input, as it says which rules apply.
    pub spec: String,
    /// An RFC 9562 UUID of any version; the builder makes a UUIDv7.
    pub id: Uuid,
    /// What the message is.
    pub kind: Kind,
    /// Literal routing subject. Kept as text so that a bad subject is a validation finding
    /// with its path rather than a parse failure; see [`crate::Subject`].
    pub subject: String,
    /// Business domain (`intelligence`).
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub domain: Option<String>,
    /// Event type that workflows match on (`INTEL_INFER_COMPLETED`, `kpi.threshold_breach`).
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
    /// Who sent it; ingress stamps it from the authenticated principal.
    #[serde(
        default,
        deserialize_with = "crate::strict::present_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub source: Option<Source>,
    /// `name@semver` of the payload's contract.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub schema: Option<String>,
    /// Media type of the payload; `application/json` by default.
    #[serde(default = "default_content_type")]
    pub content_type: String,
    /// Inline payload (see the module docs for non-JSON content).
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub payload: Option<serde_json::Value>,
    /// Reference to content stored elsewhere.
    #[serde(
        default,
        deserialize_with = "crate::strict::present_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub payload_ref: Option<PayloadRef>,
    /// Delivery priority, `P2` by default.
    #[serde(default)]
    pub priority: Priority,
    /// QoS class, `standard` by default.
    #[serde(default)]
    pub qos: Qos,
    /// Dedup key: a stream drops a repeat inside its dedup window.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub idempotency_key: Option<String>,
    /// Request or workflow correlation.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub correlation_id: Option<String>,
    /// Id of the message that caused this one.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub causation_id: Option<String>,
    /// Ordering key.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub partition_key: Option<String>,
    /// W3C trace context.
    #[serde(
        default,
        deserialize_with = "crate::strict::present_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub trace: Option<TraceContext>,
    /// Forwards so far (loop guard).
    #[serde(default)]
    pub hops: u32,
    /// Creation time, UTC.
    pub created_at: DateTime<Utc>,
    /// Time to live from `created_at`, in milliseconds; exclusive with `deadline`.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub ttl_ms: Option<u64>,
    /// Absolute expiry; exclusive with `ttl_ms`.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub deadline: Option<DateTime<Utc>>,
    /// No consumer sees the message before this time.
    #[serde(
        default,
        deserialize_with = "crate::strict::present",
        skip_serializing_if = "Option::is_none"
    )]
    pub not_before: Option<DateTime<Utc>>,
    /// Delivery attempts so far (0 before the first delivery).
    #[serde(default)]
    pub attempt: u32,
    /// Delivery attempt limit.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Permissions a receiver must hold to see the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rbac: Vec<String>,
    /// Governance metadata.
    #[serde(default, deserialize_with = "crate::strict::object")]
    pub governance: Governance,
    /// Ed25519 signature over the canonical form.
    #[serde(
        default,
        deserialize_with = "crate::strict::present_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub signature: Option<Signature>,
    /// Free extension map.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

/// Whether `content_type` carries JSON (`application/json` or a `+json` suffix, lower case,
/// parameters after `;` ignored).
pub fn is_json_content_type(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim_end();
    media == JSON_CONTENT_TYPE || (media.ends_with("+json") && media.contains('/'))
}

impl Envelope {
    /// When the message expires: its `deadline`, or `created_at + ttl_ms`, or, naming neither,
    /// `created_at` plus its class's default lifetime ([`Qos::default_ttl_ms`]: 30 s for
    /// `realtime`); `None` if never. Every expiry check (ingress, durable delivery, live
    /// delivery, approvals) asks this, so the class's lifetime holds on every path.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        let ttl = match (self.deadline, self.ttl_ms) {
            (Some(deadline), _) => return Some(deadline),
            (None, Some(ttl)) => ttl,
            (None, None) => self.qos.default_ttl_ms()?,
        };
        let ttl = chrono::Duration::milliseconds(i64::try_from(ttl).unwrap_or(i64::MAX));
        Some(
            self.created_at
                .checked_add_signed(ttl)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// Whether the message has expired at `now` (expiry is exclusive: at `expires_at` it is).
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at().is_some_and(|at| now >= at)
    }

    /// Whether `not_before` allows delivery at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        self.not_before.is_none_or(|at| now >= at)
    }

    /// Counts one forward: refuses when `hops` already reached `limit`, otherwise increments
    /// `hops` and moves the trace context to a child span (an unparsable `traceparent` is left
    /// as it is; validation reports it).
    pub fn forward(&mut self, limit: u32) -> Result<(), EnvelopeError> {
        if self.hops >= limit {
            return Err(EnvelopeError::HopLimitExceeded {
                hops: self.hops,
                limit,
            });
        }
        self.hops += 1;
        if let Some(child) = self.trace.as_ref().and_then(|t| t.child().ok()) {
            self.trace = Some(child);
        }
        Ok(())
    }

    /// Whether the payload is JSON (by `content_type`).
    pub fn has_json_payload(&self) -> bool {
        is_json_content_type(&self.content_type)
    }

    /// The inline payload as bytes: the JSON text for JSON content, the base64-decoded bytes
    /// otherwise; `None` when the content is referenced or absent.
    pub fn payload_bytes(&self) -> Result<Option<Vec<u8>>, EnvelopeError> {
        let Some(payload) = &self.payload else {
            return Ok(None);
        };
        if self.has_json_payload() {
            return serde_json::to_vec(payload)
                .map(Some)
                .map_err(EnvelopeError::InvalidJson);
        }
        let text = payload.as_str().ok_or_else(|| EnvelopeError::Codec {
            field: "/payload".to_owned(),
            reason: format!("content type {} needs a base64 string", self.content_type),
        })?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map(Some)
            .map_err(|e| EnvelopeError::Codec {
                field: "/payload".to_owned(),
                reason: format!("not standard padded base64: {e}"),
            })
    }

    /// Serialises to the JSON wire form.
    pub fn to_json_vec(&self) -> Vec<u8> {
        // Every field serialises infallibly (string keys, finite-or-null floats).
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Parses the JSON wire form (shape only; call `validate` for the rules).
    pub fn from_json_slice(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let envelope =
            crate::strict::object(&mut deserializer).map_err(EnvelopeError::InvalidJson)?;
        deserializer.end().map_err(EnvelopeError::InvalidJson)?;
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_priorities_when_sorted_then_p0_comes_first() {
        let mut ps = vec![Priority::P3, Priority::P0, Priority::P2, Priority::P1];
        ps.sort();
        assert_eq!(ps, Priority::ALL.to_vec());
        assert_eq!(Priority::P3.as_index(), 3);
        assert_eq!(Priority::from_index(1), Some(Priority::P1));
    }

    fn event_at(clock: &crate::ManualClock) -> crate::EnvelopeBuilder {
        Envelope::builder(Kind::Event, "a.b")
            .clock(clock)
            .payload_json(serde_json::json!({}))
    }

    #[test]
    fn given_a_ttl_when_time_passes_then_the_envelope_expires_exactly_at_created_plus_ttl() {
        use crate::Clock as _;
        let clock = crate::ManualClock::fixed();
        let env = event_at(&clock)
            .ttl(std::time::Duration::from_millis(250))
            .build()
            .expect("valid");
        assert_eq!(
            env.expires_at(),
            Some(clock.now() + chrono::Duration::milliseconds(250))
        );
        clock.advance(std::time::Duration::from_millis(249));
        assert!(!env.is_expired(clock.now()));
        clock.advance(std::time::Duration::from_millis(1));
        assert!(env.is_expired(clock.now()));
    }

    #[test]
    fn given_a_deadline_or_nothing_when_asked_then_expiry_follows_the_deadline_or_never() {
        use crate::Clock as _;
        let clock = crate::ManualClock::fixed();
        let deadline = clock.now() + chrono::Duration::seconds(5);
        let env = event_at(&clock).deadline(deadline).build().expect("valid");
        assert_eq!(env.expires_at(), Some(deadline));
        let forever = event_at(&clock).build().expect("valid");
        assert_eq!(forever.expires_at(), None);
        assert!(!forever.is_expired(DateTime::<Utc>::MAX_UTC));
    }

    #[test]
    fn given_a_realtime_message_without_ttl_when_30_s_pass_then_it_expires_and_other_classes_never()
    {
        use crate::Clock as _;
        let clock = crate::ManualClock::fixed();
        let realtime = event_at(&clock).qos(Qos::Realtime).build().expect("valid");
        let at = clock.now() + chrono::Duration::milliseconds(30_000);
        assert_eq!(realtime.expires_at(), Some(at));
        assert!(!realtime.is_expired(at - chrono::Duration::milliseconds(1)));
        assert!(realtime.is_expired(at));
        for class in [Qos::Standard, Qos::Bulk] {
            let env = event_at(&clock).qos(class).build().expect("valid");
            assert_eq!(env.expires_at(), None, "{class:?}");
        }
        // What the message names wins over its class, longer or shorter.
        let hour = std::time::Duration::from_secs(3_600);
        let long = event_at(&clock).qos(Qos::Realtime).ttl(hour).build();
        let long = long.expect("valid");
        assert_eq!(
            long.expires_at(),
            Some(clock.now() + chrono::Duration::hours(1))
        );
        let deadline = clock.now() + chrono::Duration::seconds(1);
        let short = event_at(&clock).qos(Qos::Realtime).deadline(deadline);
        assert_eq!(short.build().expect("valid").expires_at(), Some(deadline));
    }

    #[test]
    fn given_not_before_when_asked_then_the_message_is_due_only_from_then() {
        use crate::Clock as _;
        let clock = crate::ManualClock::fixed();
        let at = clock.now() + chrono::Duration::seconds(1);
        let env = event_at(&clock).not_before(at).build().expect("valid");
        assert!(!env.is_due(clock.now()));
        assert!(env.is_due(at));
    }

    #[test]
    fn given_a_hop_limit_when_forwarded_then_hops_count_up_and_stop_at_the_limit() {
        let clock = crate::ManualClock::fixed();
        let mut env = event_at(&clock).new_trace().build().expect("valid");
        let first_span = env.trace.clone().expect("traced").traceparent;
        env.forward(2).expect("hop 1");
        env.forward(2).expect("hop 2");
        assert_eq!(env.hops, 2);
        assert_ne!(env.trace.as_ref().expect("traced").traceparent, first_span);
        let err = env.forward(2).expect_err("limit reached");
        assert!(matches!(
            err,
            EnvelopeError::HopLimitExceeded { hops: 2, limit: 2 }
        ));
        assert_eq!(err.code(), crate::ErrorCode::HopLimitExceeded);
        assert_eq!(env.hops, 2, "a refused forward changes nothing");
    }

    #[test]
    fn given_content_types_when_classified_then_only_json_ones_are_json() {
        assert!(is_json_content_type("application/json"));
        assert!(is_json_content_type("application/json; charset=utf-8"));
        assert!(is_json_content_type("application/cloudevents+json"));
        assert!(!is_json_content_type("application/protobuf"));
        assert!(!is_json_content_type("text/plain"));
        assert!(!is_json_content_type("+json"));
    }
}
