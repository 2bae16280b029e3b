//! The one error type of `ace-bus`, shared by the `Bus` trait, the live hub and the embedded
//! engine. Every message names the stream, consumer, subject or field at fault, so the layers
//! above can turn it into an `ErrorBody` without guessing; `code()` gives the stable wire code.

use std::time::Duration;

use ace_envelope::ErrorCode;

/// Everything a bus operation can refuse or fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BusError {
    /// A request got no reply within its timeout.
    #[error("request to `{subject}` got no reply within {after:?}")]
    Timeout {
        /// The request subject.
        subject: String,
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A request was sent to a subject nobody subscribes to.
    #[error("no responders for `{subject}`")]
    NoResponders {
        /// The request subject.
        subject: String,
    },
    /// A live subscriber fell behind its bounded buffer and was cut off.
    #[error("subscription {subscription} was cut off: slow consumer")]
    SlowConsumer {
        /// The id of the subscription that was cut off.
        subscription: u64,
    },
    /// A subject or subject pattern broke the grammar (or a wildcard was used where a literal
    /// subject is required).
    #[error("invalid subject `{subject}`: {reason}")]
    InvalidSubject {
        /// The subject or pattern as given.
        subject: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The bus (or the subscription) is closed.
    #[error("the bus is closed")]
    Closed,
    /// The live hub refuses more subscriptions than its configured maximum.
    #[error("too many subscriptions: the limit is {max}")]
    TooManySubscriptions {
        /// The configured maximum.
        max: usize,
    },
    /// No stream of that name.
    #[error("stream `{stream}` not found")]
    StreamNotFound {
        /// The stream name asked for.
        stream: String,
    },
    /// No consumer of that name on that stream.
    #[error("consumer `{consumer}` not found on stream `{stream}`")]
    ConsumerNotFound {
        /// The stream name.
        stream: String,
        /// The consumer name asked for.
        consumer: String,
    },
    /// The operation conflicts with existing state (a stream of that name with another config,
    /// overlapping subjects, a second work-queue consumer on the same filter...).
    #[error("conflict on `{what}`: {reason}")]
    Conflict {
        /// The stream, consumer or subject in conflict.
        what: String,
        /// Why.
        reason: String,
    },
    /// A stream or consumer configuration field is invalid.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The field at fault (`stream.subjects[0]`, `consumer.backoff`...).
        field: String,
        /// Why.
        reason: String,
    },
    /// The stream is full and its discard policy is `new`: the publish is refused (HTTP 429).
    #[error("stream `{stream}` is full ({limit}); discard policy is `new`")]
    StreamFull {
        /// The stream name.
        stream: String,
        /// Which limit was reached.
        limit: String,
    },
    /// The encoded message is larger than the stream's `max_msg_size`.
    #[error(
        "message of {size} bytes on `{subject}` exceeds max_msg_size {max} of stream `{stream}`"
    )]
    MessageTooLarge {
        /// The stream name.
        stream: String,
        /// The message subject.
        subject: String,
        /// The encoded size.
        size: usize,
        /// The stream's limit.
        max: u64,
    },
    /// An ack, nak, term or in_progress named a sequence that is not awaiting an ack on that
    /// consumer (already acked, never delivered, or moved to the dead-letter subject).
    #[error("sequence {seq} is not pending on consumer `{consumer}` of stream `{stream}`")]
    NotPending {
        /// The stream name.
        stream: String,
        /// The consumer name.
        consumer: String,
        /// The sequence.
        seq: u64,
    },
    /// The envelope could not be used (for example it fails to encode).
    #[error("invalid envelope on `{subject}`: {reason}")]
    InvalidEnvelope {
        /// The envelope subject.
        subject: String,
        /// Why.
        reason: String,
    },
    /// The stream's log failed.
    #[error("log of stream `{stream}` failed: {source}")]
    Log {
        /// The stream name.
        stream: String,
        /// The log error.
        #[source]
        source: ace_log::LogError,
    },
    /// The stream's device is full: nothing of the publish was stored, nothing acknowledged was
    /// lost, and the stream takes writes again once space is freed.
    #[error(
        "no space left on the device of stream `{stream}`: nothing was stored; retry once space is freed"
    )]
    NoSpace {
        /// The stream.
        stream: String,
    },
    /// The stream's storage is damaged (`read_only`) or a write or fsync failed (`halted`):
    /// writes are refused, the records before the damage are still served. Names the segment
    /// file and offset when one is at fault.
    #[error(
        "stream `{stream}` is {state}: {}{}; writes are refused, reads of what survived still work",
        damage.reason,
        at(&damage.segment, &damage.offset)
    )]
    StreamDamaged {
        /// The stream.
        stream: String,
        /// `read_only` or `halted`.
        state: &'static str,
        /// What was found or what failed, and where (boxed: errors stay small).
        damage: Box<crate::bus::StreamDamage>,
    },
    /// The stream's storage failed for a whole batch of publishes (each publisher gets the reason).
    #[error("storage of stream `{stream}` failed: {reason}")]
    Storage {
        /// The stream name.
        stream: String,
        /// The underlying failure.
        reason: String,
    },
    /// The state database (stream and consumer configs, consumer state) failed.
    #[error("state database failed during {op}: {source}")]
    State {
        /// The operation that failed.
        op: &'static str,
        /// The redb error.
        #[source]
        source: Box<redb::Error>,
    },
    /// A stored record or state row could not be decoded.
    #[error("stored data of `{what}` is corrupt: {reason}")]
    Corrupt {
        /// The stream, sequence or state key at fault.
        what: String,
        /// Why.
        reason: String,
    },
    /// A filesystem operation on the data directory failed.
    #[error("i/o on `{path}` failed: {source}")]
    Io {
        /// The path at fault.
        path: String,
        /// The i/o error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the data directory (its `LOCK` file): one server, or one offline
    /// repair, at a time.
    #[error(
        "data directory {path} is in use by another process{}: one server or offline repair at a time",
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Locked {
        /// The data directory.
        path: String,
        /// The process holding it, as its `LOCK` file says.
        pid: Option<u32>,
    },
    /// The engine's server (NATS JetStream) failed or could not be reached.
    #[error("the engine's server failed during {op}: {reason}")]
    Engine {
        /// The operation.
        op: String,
        /// What failed.
        reason: String,
    },
    /// A configuration this engine does not support.
    #[error("unsupported by this engine: {feature}")]
    Unsupported {
        /// What is not supported.
        feature: String,
    },
}

/// ` (segment X at byte offset N)` when a segment is named.
fn at(segment: &Option<String>, offset: &Option<u64>) -> String {
    match (segment, offset) {
        (Some(s), Some(o)) => format!(" (segment {s} at byte offset {o})"),
        (Some(s), None) => format!(" (segment {s})"),
        _ => String::new(),
    }
}

impl BusError {
    /// The stable wire code (and with it the HTTP status) of this error, from the shared
    /// taxonomy of `contracts/comms/errors.schema.json`.
    pub fn code(&self) -> ErrorCode {
        match self {
            BusError::Timeout { .. } => ErrorCode::Timeout,
            BusError::NoResponders { .. }
            | BusError::Closed
            | BusError::Locked { .. }
            | BusError::Engine { .. } => ErrorCode::Unavailable,
            BusError::SlowConsumer { .. }
            | BusError::TooManySubscriptions { .. }
            | BusError::StreamFull { .. } => ErrorCode::Backpressure,
            BusError::InvalidSubject { .. } => ErrorCode::InvalidSubject,
            BusError::StreamNotFound { .. } => ErrorCode::StreamNotFound,
            BusError::ConsumerNotFound { .. } => ErrorCode::ConsumerNotFound,
            BusError::Conflict { .. } => ErrorCode::Conflict,
            BusError::InvalidConfig { .. } | BusError::Unsupported { .. } => {
                ErrorCode::InvalidRequest
            }
            BusError::MessageTooLarge { .. } => ErrorCode::PayloadTooLarge,
            BusError::NotPending { .. } => ErrorCode::PreconditionFailed,
            BusError::InvalidEnvelope { .. } => ErrorCode::InvalidEnvelope,
            BusError::StreamDamaged { .. } => ErrorCode::StreamDamaged,
            BusError::NoSpace { .. } => ErrorCode::InsufficientStorage,
            BusError::Log { .. }
            | BusError::Storage { .. }
            | BusError::State { .. }
            | BusError::Corrupt { .. }
            | BusError::Io { .. } => ErrorCode::Internal,
        }
    }

    /// Wraps any redb error with the operation it broke.
    pub(crate) fn state(op: &'static str, source: impl Into<redb::Error>) -> Self {
        BusError::State {
            op,
            source: Box::new(source.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_full_stream_error_when_mapped_then_it_is_backpressure_429() {
        let e = BusError::StreamFull {
            stream: "orders".to_owned(),
            limit: "max_msgs".to_owned(),
        };
        assert_eq!(
            (e.code(), e.code().http_status()),
            (ErrorCode::Backpressure, 429)
        );
        assert!(e.to_string().contains("orders"));
    }

    #[test]
    fn given_missing_resources_when_mapped_then_they_are_404s() {
        let e = BusError::ConsumerNotFound {
            stream: "orders".to_owned(),
            consumer: "c".to_owned(),
        };
        assert_eq!(e.code().http_status(), 404);
    }
}
