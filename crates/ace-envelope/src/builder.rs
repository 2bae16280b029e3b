//! [`EnvelopeBuilder`]: the one way code in this project makes a new envelope.
//!
//! Defaults follow the reference `defaults.yaml` (priority `P2`, QoS `standard`, `max_attempts` 5)
//! and the envelope's design (`content_type` `application/json`, label `internal`). The id is a UUIDv7
//! whose timestamp is `created_at`, so ids sort by creation time; `created_at` comes from the
//! injected [`Clock`] (the system clock unless [`EnvelopeBuilder::clock`] says otherwise).

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::clock::{Clock, SystemClock};
use crate::envelope::{
    DEFAULT_MAX_ATTEMPTS, Envelope, Governance, JSON_CONTENT_TYPE, Kind, Label, PayloadRef,
    Priority, Qos, SPEC, Source, SourceType,
};
use crate::error::EnvelopeError;
use crate::trace::{TraceContext, TraceParent};

impl Envelope {
    /// Starts an envelope of `kind` to `subject`.
    pub fn builder(kind: Kind, subject: impl Into<String>) -> EnvelopeBuilder {
        EnvelopeBuilder::new(kind, subject)
    }

    /// Starts the reply to this message: kind `reply`, the same correlation id (or this id if
    /// it has none), this id as causation, a child span of its trace, its priority and QoS.
    pub fn reply_builder(&self, subject: impl Into<String>) -> EnvelopeBuilder {
        self.answer_builder(Kind::Reply, subject)
    }

    /// Starts the error reply to this message carrying `body` as its JSON payload.
    pub fn error_reply(
        &self,
        subject: impl Into<String>,
        body: &crate::ErrorBody,
    ) -> EnvelopeBuilder {
        let payload = serde_json::to_value(body).unwrap_or_default();
        self.answer_builder(Kind::Error, subject)
            .payload_json(payload)
    }

    fn answer_builder(&self, kind: Kind, subject: impl Into<String>) -> EnvelopeBuilder {
        let mut b = EnvelopeBuilder::new(kind, subject)
            .correlation_id(
                self.correlation_id
                    .clone()
                    .unwrap_or_else(|| self.id.to_string()),
            )
            .causation_id(self.id.to_string())
            .priority(self.priority)
            .qos(self.qos);
        if let Some(child) = self.trace.as_ref().and_then(|t| t.child().ok()) {
            b = b.trace(child);
        }
        b
    }
}

/// Builds an [`Envelope`]; [`build`](EnvelopeBuilder::build) validates the result.
#[derive(Debug, Clone)]
#[must_use]
pub struct EnvelopeBuilder {
    env: Envelope,
    explicit_id: bool,
}

impl EnvelopeBuilder {
    fn new(kind: Kind, subject: impl Into<String>) -> Self {
        Self {
            env: Envelope {
                spec: SPEC.to_owned(),
                id: Uuid::nil(),
                kind,
                subject: subject.into(),
                domain: None,
                name: None,
                source: None,
                schema: None,
                content_type: JSON_CONTENT_TYPE.to_owned(),
                payload: None,
                payload_ref: None,
                priority: Priority::default(),
                qos: Qos::default(),
                idempotency_key: None,
                correlation_id: None,
                causation_id: None,
                partition_key: None,
                trace: None,
                hops: 0,
                created_at: SystemClock.now(),
                ttl_ms: None,
                deadline: None,
                not_before: None,
                attempt: 0,
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                rbac: Vec::new(),
                governance: Governance::default(),
                signature: None,
                headers: BTreeMap::new(),
            },
            explicit_id: false,
        }
    }

    /// Takes `created_at` from `clock`.
    pub fn clock(self, clock: &dyn Clock) -> Self {
        self.created_at(clock.now())
    }

    /// Sets `hops`: how many times the message (or the message it answers or re-publishes)
    /// has passed through the backbone.
    pub fn hops(mut self, hops: u32) -> Self {
        self.env.hops = hops;
        self
    }

    /// Sets `created_at`.
    pub fn created_at(mut self, at: DateTime<Utc>) -> Self {
        self.env.created_at = at;
        self
    }

    /// Sets the id instead of generating a UUIDv7 (replays, tests).
    pub fn id(mut self, id: Uuid) -> Self {
        self.env.id = id;
        self.explicit_id = true;
        self
    }

    /// Sets `domain`.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.env.domain = Some(domain.into());
        self
    }

    /// Sets `name`, the event type.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.env.name = Some(name.into());
        self
    }

    /// Sets `source`.
    pub fn source(mut self, source_type: SourceType, id: impl Into<String>) -> Self {
        self.env.source = Some(Source::new(source_type, id));
        self
    }

    /// Sets `schema` (`name@semver`).
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.env.schema = Some(schema.into());
        self
    }

    /// Sets an inline JSON payload (content type `application/json`).
    pub fn payload_json(mut self, payload: serde_json::Value) -> Self {
        self.env.content_type = JSON_CONTENT_TYPE.to_owned();
        self.env.payload = Some(payload);
        self.env.payload_ref = None;
        self
    }

    /// Sets an inline JSON payload from any serialisable value.
    pub fn payload<T: serde::Serialize>(self, payload: &T) -> Result<Self, EnvelopeError> {
        let value = serde_json::to_value(payload).map_err(EnvelopeError::InvalidJson)?;
        Ok(self.payload_json(value))
    }

    /// Sets an inline binary payload of `content_type` (carried as base64).
    pub fn payload_bytes(mut self, content_type: impl Into<String>, bytes: &[u8]) -> Self {
        let text = base64::engine::general_purpose::STANDARD.encode(bytes);
        self.env.content_type = content_type.into();
        self.env.payload = Some(serde_json::Value::String(text));
        self.env.payload_ref = None;
        self
    }

    /// Refers to content stored elsewhere, of `content_type`.
    pub fn payload_ref(mut self, content_type: impl Into<String>, reference: PayloadRef) -> Self {
        self.env.content_type = content_type.into();
        self.env.payload_ref = Some(reference);
        self.env.payload = None;
        self
    }

    /// Sets `priority`.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.env.priority = priority;
        self
    }

    /// Sets `qos`.
    pub fn qos(mut self, qos: Qos) -> Self {
        self.env.qos = qos;
        self
    }

    /// Sets `idempotency_key`.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.env.idempotency_key = Some(key.into());
        self
    }

    /// Sets `correlation_id`.
    pub fn correlation_id(mut self, id: impl Into<String>) -> Self {
        self.env.correlation_id = Some(id.into());
        self
    }

    /// Sets `causation_id`.
    pub fn causation_id(mut self, id: impl Into<String>) -> Self {
        self.env.causation_id = Some(id.into());
        self
    }

    /// Sets `partition_key`.
    pub fn partition_key(mut self, key: impl Into<String>) -> Self {
        self.env.partition_key = Some(key.into());
        self
    }

    /// Sets the trace context.
    pub fn trace(mut self, trace: TraceContext) -> Self {
        self.env.trace = Some(trace);
        self
    }

    /// Starts a new trace (random ids, sampled).
    pub fn new_trace(self) -> Self {
        self.trace(TraceContext::from_parent(&TraceParent::new()))
    }

    /// Sets a time to live (whole milliseconds); clears `deadline`.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.env.ttl_ms = Some(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        self.env.deadline = None;
        self
    }

    /// Sets an absolute deadline; clears `ttl_ms`.
    pub fn deadline(mut self, deadline: DateTime<Utc>) -> Self {
        self.env.deadline = Some(deadline);
        self.env.ttl_ms = None;
        self
    }

    /// Sets `not_before` (delayed delivery).
    pub fn not_before(mut self, at: DateTime<Utc>) -> Self {
        self.env.not_before = Some(at);
        self
    }

    /// Sets `max_attempts`.
    pub fn max_attempts(mut self, max: u32) -> Self {
        self.env.max_attempts = max;
        self
    }

    /// Adds permissions a receiver must hold.
    pub fn rbac<I, S>(mut self, permissions: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.env
            .rbac
            .extend(permissions.into_iter().map(Into::into));
        self
    }

    /// Replaces the governance block.
    pub fn governance(mut self, governance: Governance) -> Self {
        self.env.governance = governance;
        self
    }

    /// Sets the sensitivity label.
    pub fn label(mut self, label: Label) -> Self {
        self.env.governance.label = label;
        self
    }

    /// Sets the EHI score.
    pub fn ehi_score(mut self, score: f64) -> Self {
        self.env.governance.ehi_score = Some(score);
        self
    }

    /// Adds one header.
    pub fn header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.headers.insert(key.into(), value.into());
        self
    }

    /// Finishes and validates: every violation comes back at once.
    pub fn build(self) -> Result<Envelope, EnvelopeError> {
        let env = self.build_unchecked();
        env.check()?;
        Ok(env)
    }

    /// Finishes without validating (tests of validation, trusted replays).
    pub fn build_unchecked(mut self) -> Envelope {
        if !self.explicit_id {
            self.env.id = uuid_v7_at(self.env.created_at);
        }
        self.env
    }
}

/// A UUIDv7 whose embedded time is `at` (clamped to the Unix epoch).
pub fn uuid_v7_at(at: DateTime<Utc>) -> Uuid {
    let secs = u64::try_from(at.timestamp()).unwrap_or(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, secs, at.timestamp_subsec_nanos());
    Uuid::new_v7(ts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn given_only_kind_subject_and_payload_when_built_then_seed_defaults_apply() {
        let clock = ManualClock::fixed();
        let env = Envelope::builder(Kind::Event, "ace.comms.http.service.x.evt.v1")
            .clock(&clock)
            .payload_json(serde_json::json!({"a": 1}))
            .build()
            .expect("valid");
        assert_eq!(env.priority, Priority::P2);
        assert_eq!(env.qos, Qos::Standard);
        assert_eq!(env.max_attempts, 5);
        assert_eq!(env.content_type, "application/json");
        assert_eq!(env.governance.label, Label::Internal);
        assert_eq!(env.id.get_version_num(), 7);
        assert_eq!(env.created_at, clock.now());
    }

    #[test]
    fn given_a_bad_subject_and_no_payload_when_built_then_both_violations_are_reported() {
        let err = Envelope::builder(Kind::Event, "a..b")
            .build()
            .expect_err("invalid");
        let EnvelopeError::Invalid(violations) = err else {
            panic!("expected Invalid, got {err:?}");
        };
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["/subject", "/payload"]);
    }

    #[test]
    fn given_a_traced_command_when_replied_then_correlation_causation_and_trace_follow() {
        let cmd = Envelope::builder(Kind::Command, "a.cmd")
            .payload_json(serde_json::json!({}))
            .new_trace()
            .build_unchecked();
        let reply = cmd
            .reply_builder("a.rsp")
            .payload_json(serde_json::json!({"ok": true}))
            .build()
            .expect("valid");
        assert_eq!(reply.kind, Kind::Reply);
        assert_eq!(
            reply.correlation_id.as_deref(),
            Some(cmd.id.to_string().as_str())
        );
        assert_eq!(reply.causation_id, reply.correlation_id);
        let (parent, child) = (cmd.trace.expect("traced"), reply.trace.expect("traced"));
        assert_eq!(
            parent.parent().expect("valid").trace_id,
            child.parent().expect("valid").trace_id
        );
    }

    #[test]
    fn given_binary_content_when_built_then_payload_is_base64_and_bytes_come_back() {
        let env = Envelope::builder(Kind::Event, "a.b")
            .payload_bytes("application/protobuf", &[0, 1, 2, 255])
            .build()
            .expect("valid");
        assert_eq!(env.payload, Some(serde_json::json!("AAEC/w==")));
        assert_eq!(
            env.payload_bytes().expect("decodes"),
            Some(vec![0, 1, 2, 255])
        );
    }
}
