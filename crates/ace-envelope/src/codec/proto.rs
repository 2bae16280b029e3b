//! Envelope <-> `leyline::GmeEnvelope` (`contracts/leyline/envelope.proto`).
//!
//! The field mapping, and its compatibility with Leyline's `EventEnvelope`, is the table at the
//! top of `envelope.proto`. The payload travels as bytes: the JSON text for JSON content types,
//! the raw (base64-decoded) bytes otherwise, so a protobuf payload is carried as itself.
//! `deadline` travels as `processing_deadline`, a duration after `created_at`, and `ttl_ms` as a
//! duration of whole milliseconds. Unset enums decode to the envelope defaults, except `kind`,
//! which is required.

use chrono::{DateTime, TimeDelta, Utc};
use prost::Message as _;

use super::{codec_error, payload_from_bytes};
use crate::envelope::{
    Envelope, Governance, JSON_CONTENT_TYPE, Kind, Label, PayloadRef, Priority, Qos, Signature,
    Source, SourceType,
};
use crate::error::EnvelopeError;
use crate::leyline as pb;
use crate::trace::TraceContext;

impl Envelope {
    /// The protobuf message of this envelope.
    pub fn to_proto(&self) -> Result<pb::GmeEnvelope, EnvelopeError> {
        let processing_deadline = self
            .deadline
            .map(|deadline| duration_to_proto(deadline - self.created_at));
        Ok(pb::GmeEnvelope {
            event_id: Some(self.id.to_string()),
            event_type: self.name.clone(),
            source_subsystem: self.source.as_ref().map(|s| s.id.clone()),
            created_at: Some(timestamp_to_proto(self.created_at)),
            processing_deadline,
            ttl: self.ttl_ms.map(ttl_to_proto),
            payload: self.payload_bytes()?,
            payload_type: self.schema.clone(),
            content_encoding: Some(self.content_type.clone()),
            priority: priority_to_proto(self.priority) as i32,
            routing_keys: vec![self.subject.clone()],
            correlation_id: self.correlation_id.clone(),
            delivery_guarantee: pb::DeliveryGuarantee::AtLeastOnce as i32,
            max_attempts: self.max_attempts,
            current_attempt: self.attempt,
            spec: self.spec.clone(),
            kind: kind_to_proto(self.kind) as i32,
            domain: self.domain.clone(),
            source_type: self
                .source
                .as_ref()
                .map_or(pb::GmeSourceType::Unspecified, |s| {
                    source_type_to_proto(s.source_type)
                }) as i32,
            payload_ref: self.payload_ref.as_ref().map(|r| pb::GmePayloadRef {
                uri: r.uri.clone(),
                sha256: r.sha256.clone(),
                size: r.size,
            }),
            qos: qos_to_proto(self.qos) as i32,
            idempotency_key: self.idempotency_key.clone(),
            causation_id: self.causation_id.clone(),
            partition_key: self.partition_key.clone(),
            trace: self.trace.as_ref().map(|t| pb::GmeTraceContext {
                traceparent: t.traceparent.clone(),
                tracestate: t.tracestate.clone(),
            }),
            hops: self.hops,
            not_before: self.not_before.map(timestamp_to_proto),
            rbac: self.rbac.clone(),
            governance: Some(governance_to_proto(&self.governance)),
            signature: self.signature.as_ref().map(|s| pb::GmeSignature {
                alg: s.alg.clone(),
                key_id: s.key_id.clone(),
                sig: s.sig.clone(),
            }),
            headers: self.headers.clone(),
        })
    }

    /// Encodes to protobuf bytes.
    pub fn to_protobuf_vec(&self) -> Result<Vec<u8>, EnvelopeError> {
        Ok(self.to_proto()?.encode_to_vec())
    }

    /// Decodes protobuf bytes (shape only; call `validate` for the rules).
    pub fn from_protobuf_slice(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
        let message = pb::GmeEnvelope::decode(bytes).map_err(EnvelopeError::Protobuf)?;
        Envelope::from_proto(message)
    }

    /// The envelope of a protobuf message.
    pub fn from_proto(p: pb::GmeEnvelope) -> Result<Envelope, EnvelopeError> {
        let id = p.event_id.as_deref().unwrap_or_default();
        let id = uuid::Uuid::parse_str(id).map_err(|e| codec_error("/id", e.to_string()))?;
        let created_at = timestamp_from_proto(
            p.created_at
                .ok_or_else(|| codec_error("/created_at", "is missing"))?,
        )?;
        let deadline = match p.processing_deadline {
            Some(d) => Some(
                created_at
                    .checked_add_signed(duration_from_proto(d)?)
                    .ok_or_else(|| codec_error("/deadline", "is out of range"))?,
            ),
            None => None,
        };
        let content_type = p
            .content_encoding
            .unwrap_or_else(|| JSON_CONTENT_TYPE.to_owned());
        let payload = match &p.payload {
            Some(bytes) => Some(payload_from_bytes(&content_type, bytes)?),
            None => None,
        };
        let source = match p.source_subsystem {
            Some(id) => Some(Source::new(source_type_from_proto(p.source_type)?, id)),
            None => None,
        };
        let subject = p
            .routing_keys
            .into_iter()
            .next()
            .ok_or_else(|| codec_error("/subject", "routing_keys is empty"))?;
        Ok(Envelope {
            spec: p.spec,
            id,
            kind: kind_from_proto(p.kind)?,
            subject,
            domain: p.domain,
            name: p.event_type,
            source,
            schema: p.payload_type,
            content_type,
            payload,
            payload_ref: p.payload_ref.map(|r| PayloadRef {
                uri: r.uri,
                sha256: r.sha256,
                size: r.size,
            }),
            priority: priority_from_proto(p.priority),
            qos: qos_from_proto(p.qos),
            idempotency_key: p.idempotency_key,
            correlation_id: p.correlation_id,
            causation_id: p.causation_id,
            partition_key: p.partition_key,
            trace: p.trace.map(|t| TraceContext {
                traceparent: t.traceparent,
                tracestate: t.tracestate,
            }),
            hops: p.hops,
            created_at,
            ttl_ms: p.ttl.map(ttl_from_proto).transpose()?,
            deadline,
            not_before: p.not_before.map(timestamp_from_proto).transpose()?,
            attempt: p.current_attempt,
            max_attempts: p.max_attempts,
            rbac: p.rbac,
            governance: p.governance.map(governance_from_proto).unwrap_or_default(),
            signature: p.signature.map(|s| Signature {
                alg: s.alg,
                key_id: s.key_id,
                sig: s.sig,
            }),
            headers: p.headers,
        })
    }
}

/// A UTC time as a protobuf `Timestamp`.
pub fn timestamp_to_proto(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(i32::MAX),
    }
}

/// A protobuf `Timestamp` as a UTC time.
pub fn timestamp_from_proto(t: prost_types::Timestamp) -> Result<DateTime<Utc>, EnvelopeError> {
    u32::try_from(t.nanos)
        .ok()
        .and_then(|nanos| DateTime::from_timestamp(t.seconds, nanos))
        .ok_or_else(|| codec_error("/created_at", format!("timestamp {t:?} is out of range")))
}

fn duration_to_proto(d: TimeDelta) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.num_seconds(),
        nanos: d.subsec_nanos(),
    }
}

fn duration_from_proto(d: prost_types::Duration) -> Result<TimeDelta, EnvelopeError> {
    TimeDelta::try_seconds(d.seconds)
        .and_then(|s| s.checked_add(&TimeDelta::nanoseconds(i64::from(d.nanos))))
        .ok_or_else(|| codec_error("/deadline", format!("duration {d:?} is out of range")))
}

fn ttl_to_proto(ms: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(ms / 1000).unwrap_or(i64::MAX),
        // Below 1e9, so it fits.
        nanos: i32::try_from((ms % 1000) * 1_000_000).unwrap_or(0),
    }
}

fn ttl_from_proto(d: prost_types::Duration) -> Result<u64, EnvelopeError> {
    let whole_ms = d.nanos % 1_000_000 == 0;
    match (u64::try_from(d.seconds), u64::try_from(d.nanos / 1_000_000)) {
        (Ok(s), Ok(ms)) if whole_ms => s
            .checked_mul(1000)
            .and_then(|s| s.checked_add(ms))
            .ok_or_else(|| codec_error("/ttl_ms", "is out of range")),
        _ => Err(codec_error(
            "/ttl_ms",
            format!("{d:?} is not a non-negative whole number of milliseconds"),
        )),
    }
}

fn governance_to_proto(g: &Governance) -> pb::GmeGovernance {
    pb::GmeGovernance {
        label: label_to_proto(g.label) as i32,
        pii: g.pii.clone(),
        consent_scope: g.consent_scope.clone(),
        ehi_score: g.ehi_score,
        requires_approval: g.requires_approval,
        approval_id: g.approval_id.clone(),
    }
}

fn governance_from_proto(g: pb::GmeGovernance) -> Governance {
    Governance {
        label: label_from_proto(g.label),
        pii: g.pii,
        consent_scope: g.consent_scope,
        ehi_score: g.ehi_score,
        requires_approval: g.requires_approval,
        approval_id: g.approval_id,
    }
}

/// Pairs an envelope enum with its protobuf enum; `$unset` is what an unset protobuf value
/// decodes to (`None`: it is an error).
macro_rules! enum_mapping {
    ($to:ident, $from:ident, $rust:ident, $proto:ty, [$($r:ident <=> $p:ident),*], $unset:expr) => {
        fn $to(v: $rust) -> $proto {
            match v { $($rust::$r => <$proto>::$p,)* }
        }

        fn $from(v: i32) -> Option<$rust> {
            match <$proto>::try_from(v) {
                $(Ok(<$proto>::$p) => Some($rust::$r),)*
                _ => $unset,
            }
        }
    };
}

enum_mapping!(kind_to_proto, kind_opt, Kind, pb::GmeKind,
    [Event <=> Event, Command <=> Command, Query <=> Query, Reply <=> Reply, Error <=> Error], None);
enum_mapping!(source_type_to_proto, source_type_opt, SourceType, pb::GmeSourceType,
    [Agent <=> Agent, Human <=> Human, Service <=> Service, Kernel <=> Kernel, Group <=> Group], None);
enum_mapping!(priority_to_proto, priority_opt, Priority, pb::MessagePriority,
    [P0 <=> Critical, P1 <=> High, P2 <=> Normal, P3 <=> Low], Some(Priority::default()));
enum_mapping!(qos_to_proto, qos_opt, Qos, pb::GmeQos,
    [Realtime <=> Realtime, Standard <=> Standard, Bulk <=> Bulk], Some(Qos::default()));
enum_mapping!(label_to_proto, label_opt, Label, pb::GmeLabel,
    [Public <=> Public, Internal <=> Internal, Confidential <=> Confidential, Secret <=> Secret],
    Some(Label::default()));

fn kind_from_proto(v: i32) -> Result<Kind, EnvelopeError> {
    kind_opt(v).ok_or_else(|| codec_error("/kind", format!("{v} is not a gme kind")))
}

fn source_type_from_proto(v: i32) -> Result<SourceType, EnvelopeError> {
    source_type_opt(v)
        .ok_or_else(|| codec_error("/source/type", format!("{v} is not a source type")))
}

fn priority_from_proto(v: i32) -> Priority {
    priority_opt(v).unwrap_or_default()
}

fn qos_from_proto(v: i32) -> Qos {
    qos_opt(v).unwrap_or_default()
}

fn label_from_proto(v: i32) -> Label {
    label_opt(v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Envelope {
        Envelope::builder(Kind::Command, "ace.comms.mcp.agent.chuck.cmd.tool_call.v2")
            .payload_json(serde_json::json!({"tool": "search", "n": 2.5}))
            .source(SourceType::Agent, "chuck")
            .name("TOOL_CALL")
            .priority(Priority::P0)
            .ttl(std::time::Duration::from_millis(1500))
            .correlation_id("c-1")
            .new_trace()
            .build()
            .expect("valid")
    }

    #[test]
    fn given_an_envelope_when_encoded_and_decoded_then_it_is_unchanged() {
        let env = sample();
        let bytes = env.to_protobuf_vec().expect("encodes");
        assert_eq!(Envelope::from_protobuf_slice(&bytes).expect("decodes"), env);
    }

    #[test]
    fn given_gme_bytes_when_read_as_leyline_event_envelope_then_overlapping_fields_agree() {
        let env = sample();
        let bytes = env.to_protobuf_vec().expect("encodes");
        let leyline = pb::EventEnvelope::decode(bytes.as_slice()).expect("decodes");
        assert_eq!(leyline.event_id, env.id.to_string());
        assert_eq!(leyline.event_type, "TOOL_CALL");
        assert_eq!(leyline.source_subsystem, "chuck");
        assert_eq!(leyline.routing_keys, vec![env.subject.clone()]);
        assert_eq!(leyline.priority(), pb::MessagePriority::Critical);
        assert_eq!(leyline.ttl.expect("ttl").nanos, 500_000_000);
        let payload: serde_json::Value =
            serde_json::from_slice(&leyline.payload).expect("JSON payload");
        assert_eq!(Some(payload), env.payload);
        assert_eq!(leyline.correlation_id, "c-1");
        assert_eq!(leyline.max_attempts, 5);
    }

    #[test]
    fn given_binary_content_when_encoded_then_the_raw_bytes_travel() {
        let env = Envelope::builder(Kind::Event, "a.b")
            .payload_bytes("application/protobuf", &[8, 150, 1])
            .deadline(DateTime::from_timestamp(2_000_000_000, 5).expect("in range"))
            .build()
            .expect("valid");
        let message = env.to_proto().expect("encodes");
        assert_eq!(message.payload.as_deref(), Some(&[8u8, 150, 1][..]));
        assert_eq!(Envelope::from_proto(message).expect("decodes"), env);
    }

    #[test]
    fn given_a_message_without_kind_when_decoded_then_the_kind_path_is_named() {
        let mut message = sample().to_proto().expect("encodes");
        message.kind = 0;
        let err = Envelope::from_proto(message).expect_err("kind is required");
        assert!(err.to_string().contains("/kind"), "{err}");
    }
}
