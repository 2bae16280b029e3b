//! The dead-letter envelope every engine publishes when a consumer gives up on a message (the
//! crate docs, "Dead letters, as a real move", list its fields): one builder, so the embedded
//! engine and the NATS engine put the same metadata on the same subject.

use ace_envelope::api::system::{self, DeadLetterReason};
use ace_envelope::{Clock, Envelope, Kind, SourceType};

use crate::error::BusError;

/// Where a dead letter came from and why.
pub(crate) struct Origin<'a> {
    /// The stream the original was stored in (its ACE name).
    pub(crate) stream: &'a str,
    /// The dead-letter subject of that stream.
    pub(crate) subject: String,
    /// The consumer that gave up.
    pub(crate) consumer: &'a str,
    /// The original's stream sequence.
    pub(crate) seq: u64,
    /// Deliveries made before giving up.
    pub(crate) deliveries: u32,
    /// `max_deliver` or `term`.
    pub(crate) reason: DeadLetterReason,
    /// The caller's `term` reason, or the last redelivery cause.
    pub(crate) detail: &'a str,
}

/// The dead letter of `original`, published by the engine itself (not through the core), so it
/// counts one more hop than its cause.
pub(crate) fn envelope(
    original: Envelope,
    origin: &Origin<'_>,
    clock: &dyn Clock,
) -> Result<Envelope, BusError> {
    let subject = origin.subject.clone();
    let now = clock.now();
    let (priority, original_id) = (original.priority, original.id.to_string());
    let correlation = original
        .correlation_id
        .clone()
        .unwrap_or_else(|| original_id.clone());
    let hops = original.hops.saturating_add(1);
    let payload = system::DeadLetter {
        message_id: original_id.clone(),
        stream: Some(origin.stream.to_owned()),
        seq: Some(origin.seq),
        subject: original.subject.clone(),
        consumer: Some(origin.consumer.to_owned()),
        deliveries: Some(origin.deliveries),
        reason: origin.reason,
        detail: Some(system::clip(origin.detail, system::MAX_DETAIL_CHARS)),
        dead_lettered_at: now,
        original: Some(Box::new(original)),
        approval_id: None,
    };
    let invalid = |reason: String| BusError::InvalidEnvelope {
        subject: subject.clone(),
        reason,
    };
    let payload = serde_json::to_value(&payload).map_err(|e| invalid(e.to_string()))?;
    let (stream, consumer, seq) = (origin.stream, origin.consumer, origin.seq);
    Envelope::builder(Kind::Event, subject.clone())
        .clock(clock)
        .domain(system::DOMAIN)
        .name(system::DEAD_LETTER_NAME)
        .schema(system::DEAD_LETTER_SCHEMA)
        .hops(hops)
        .source(SourceType::Service, "ace-bus")
        .priority(priority)
        .correlation_id(correlation)
        .causation_id(original_id)
        .idempotency_key(format!("dlq:{stream}:{consumer}:{seq}"))
        .header("ace-dlq-stream", stream)
        .header("ace-dlq-seq", seq.to_string())
        .header("ace-dlq-consumer", consumer)
        .header("ace-dlq-deliveries", origin.deliveries.to_string())
        .header("ace-dlq-reason", origin.reason.as_str())
        .payload_json(payload)
        .build()
        .map_err(|e| invalid(e.to_string()))
}
