//! The `Bus` trait every engine implements, and the public types it speaks: stream and consumer
//! configurations (serde, with the documented fields and defaults), publish acknowledgements,
//! deliveries and the info/counter snapshots. Those types cross the wire too, so they are
//! defined in `ace_envelope::api::http` (shared with the server and `ace-client`) and
//! re-exported here: every `ace_bus::StreamConfig`-style path keeps working.
//!
//! The trait uses `async-trait` (boxed futures) rather than Rust 2024's native `async fn` in
//! traits because the server holds the engine as `Arc<dyn Bus>`: native async trait methods are
//! not dyn-compatible. One allocation per call is negligible next to an fsync or a network hop.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::Envelope;
use async_trait::async_trait;

use crate::error::BusError;

pub use ace_envelope::api::http::{
    AckPolicy, Backoff, ConsumerConfig, ConsumerCounters, ConsumerInfo, DEAD_LETTER_PREFIX,
    DeliverPolicy, Delivered, DiscardPolicy, Ordering, PublishAck, RetentionPolicy, StorageKind,
    StoredMessage, StreamConfig, StreamCounters, StreamDamage, StreamInfo, StreamState, SyncPolicy,
};
pub use ace_envelope::api::repair::{ConsumerFloor, LostSegment, SeqRange, StreamRepair};

/// A stream that stopped taking writes while the engine ran: it became `read_only` (corruption
/// found on a read, damage found while rebuilding its state) or `halted` (a failed write or
/// fsync). Sent once per transition; damage found when a stream opens is in its `StreamInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthChange {
    /// The stream.
    pub stream: String,
    /// Its new state (`read_only` or `halted`).
    pub state: StreamState,
    /// What was found or what failed, and where.
    pub damage: Option<StreamDamage>,
    /// The last sequence readers see.
    pub last_seq: u64,
    /// The highest sequence the stream ever acknowledged.
    pub high_water: u64,
}

/// The engine contract: core pub/sub, request/reply, streams, consumers and acknowledgements.
///
/// Sequences are per stream, start at 1 and only grow. Acknowledgement calls name the stream
/// sequence of the delivery (`Delivered::seq`).
#[async_trait]
pub trait Bus: Send + Sync {
    /// Delivers `envelope` to live subscribers and appends it to the stream whose subjects match
    /// its subject (if any). Returns only once the append is durable per the stream's sync policy.
    /// Inside the stream's dedup window, an envelope whose `id` is already stored, or whose
    /// `idempotency_key` the same sender (`source` type and id) already used, is answered with
    /// the original sequence and `duplicate: true` and is neither stored nor delivered again;
    /// the same key from another sender is a different message.
    async fn publish(&self, envelope: Envelope) -> Result<PublishAck, BusError>;

    /// Publishes several envelopes with the guarantees of `publish`, answering each in order.
    /// Engines override it to pipeline: the embedded engine hands a stream's share to its writer
    /// as one request, so a batch costs one queue hop and one wake-up instead of one per message.
    async fn publish_batch(&self, envelopes: Vec<Envelope>) -> Vec<Result<PublishAck, BusError>> {
        let mut answers = Vec::with_capacity(envelopes.len());
        for envelope in envelopes {
            answers.push(self.publish(envelope).await);
        }
        answers
    }

    /// Subscribes live (no persistence) to a subject pattern; with a `queue` group, each message
    /// goes to one member of the group. The same as `subscribe_filtered` with no filter.
    async fn subscribe(
        &self,
        pattern: &str,
        queue: Option<&str>,
    ) -> Result<Box<dyn LiveSubscription>, BusError> {
        self.subscribe_filtered(pattern, queue, None).await
    }

    /// Subscribes live like `subscribe`, receiving only the messages `accept` (when given)
    /// accepts. The engine asks `accept` when it offers a message, before it counts the message
    /// as delivered: a plain subscriber that refuses simply does not get it, and a queue group
    /// gives it to a member that accepts — a member that refuses is skipped, not handed a
    /// message it would drop — so the group loses a message only when no member accepts it.
    /// Replies to a request (`request`) never pass through a subscription and are not filtered.
    async fn subscribe_filtered(
        &self,
        pattern: &str,
        queue: Option<&str>,
        accept: Option<Accept>,
    ) -> Result<Box<dyn LiveSubscription>, BusError>;

    /// Publishes a request and waits for the first reply (see the live hub for the reply subject
    /// convention).
    async fn request(&self, envelope: Envelope, timeout: Duration) -> Result<Envelope, BusError>;

    /// Creates a stream; creating an existing stream with the identical config is a no-op.
    async fn add_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError>;
    /// Changes the limits of an existing stream (retention and storage cannot change).
    async fn update_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError>;
    /// Deletes a stream, its messages and its consumers.
    async fn delete_stream(&self, stream: &str) -> Result<(), BusError>;
    /// The config, state and counters of one stream.
    async fn stream_info(&self, stream: &str) -> Result<StreamInfo, BusError>;
    /// Every stream, by name.
    async fn list_streams(&self) -> Result<Vec<StreamInfo>, BusError>;

    /// Creates a consumer on a stream; an existing consumer with the identical config is kept.
    async fn add_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, BusError>;
    /// Deletes a consumer and its state.
    async fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<(), BusError>;
    /// The config, state and counters of one consumer.
    async fn consumer_info(&self, stream: &str, consumer: &str) -> Result<ConsumerInfo, BusError>;
    /// Every consumer of a stream, by name.
    async fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, BusError>;

    /// Pulls up to `batch` messages for a consumer, waiting up to `expires` for the first one.
    /// The same as `fetch_filtered` with no filter.
    async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<Delivered>, BusError> {
        self.fetch_filtered(stream, consumer, batch, expires, None)
            .await
    }

    /// Pulls like `fetch`, handing out only the messages `accept` (when given) accepts: the
    /// receive filter of the member fetching from a shared consumer. The engine asks `accept`
    /// before it counts a delivery, so a refused message is neither delivered, nor counted as a
    /// delivery (it never moves toward `max_deliver` or the dead letters on a refusal), nor
    /// given an ack deadline: it stays available, as it was, to the next fetch that accepts it.
    /// One call asks `accept` at most once per message, however long it waits.
    ///
    /// Ordering holds across refusals. Under `ordering: per_key`, a refused message that heads
    /// its key stays the head: the refusing member gets none of that key's later messages until
    /// a member that accepts it has taken it (other keys flow). Under `strict`, a refused head
    /// blocks the whole consumer for the refusing member the same way. A message no member
    /// accepts waits until its TTL ends it (or forever without one); it is never skipped.
    async fn fetch_filtered(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
        accept: Option<Accept>,
    ) -> Result<Vec<Delivered>, BusError>;
    /// Acknowledges a delivered message: it will not be delivered to this consumer again.
    async fn ack(&self, stream: &str, consumer: &str, seq: u64) -> Result<(), BusError>;
    /// Negatively acknowledges: redeliver after `delay` (or after the backoff schedule when
    /// `None`, or at once without backoff).
    async fn nak(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        delay: Option<Duration>,
    ) -> Result<(), BusError>;
    /// Gives up on a message: it moves to the stream's dead-letter subject with `reason`.
    async fn term(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        reason: &str,
    ) -> Result<(), BusError>;
    /// Resets the ack timer of a delivered message (the handler is still working on it).
    async fn in_progress(&self, stream: &str, consumer: &str, seq: u64) -> Result<(), BusError>;
    /// Reads one stored message by sequence (`None` when deleted, expired or out of range).
    async fn get_message(&self, stream: &str, seq: u64) -> Result<Option<StoredMessage>, BusError>;

    /// Repairs a `read_only` or `halted` stream. Without `accept_loss` it is a dry run that
    /// changes nothing and reports what is damaged and what a repair would keep and give up;
    /// with it, the stream is cut to its last intact record (nothing destroyed: the engine keeps
    /// what it cut), keeps its high-water mark so no acknowledged sequence is handed out again,
    /// and takes writes again, its consumers kept. A healthy stream is left alone.
    async fn repair_stream(
        &self,
        stream: &str,
        accept_loss: bool,
    ) -> Result<StreamRepair, BusError> {
        let _ = (stream, accept_loss);
        Err(BusError::Unsupported {
            feature: "stream repair".to_owned(),
        })
    }

    /// The streams that stop taking writes while the engine runs, one [`HealthChange`] per
    /// transition, from now on; `None` when the engine does not report them.
    fn watch_health(&self) -> Option<tokio::sync::broadcast::Receiver<HealthChange>> {
        None
    }

    /// Flushes state and releases the engine's files (or connection). Every later call fails
    /// with `BusError::Closed`.
    async fn close(&self) -> Result<(), BusError>;
}

/// Whether a live subscription (or a member fetching from a consumer, `Bus::fetch_filtered`) may
/// receive a message: `true` delivers it, `false` skips this subscription (in a queue group, the
/// next member is asked; in a consumer, the message stays for the next fetch that accepts it).
///
/// Engines call it while routing a publish or choosing what a fetch hands out, possibly under a
/// lock of their subscription table or consumer state,
/// once per matching filtered subscription and message: it must be cheap, must not block or
/// panic, and must never call back into the bus (a publish or subscribe from inside it may
/// deadlock). It sees each message once per subscription it is offered to; whatever it counts
/// (a refusal metric) counts offers, so a queue-group member skipped in favour of another
/// counts as one refusal even though the group received the message.
pub type Accept = Arc<dyn Fn(&Envelope) -> bool + Send + Sync>;

/// A live subscription as handed out by `Bus::subscribe`: engine-neutral, dropping it
/// unsubscribes.
#[async_trait]
pub trait LiveSubscription: Send {
    /// The subscription id (unique per engine).
    fn id(&self) -> u64;
    /// The next message; `None` once the subscription is closed (for instance cut off as a slow
    /// consumer).
    async fn next(&mut self) -> Option<Arc<Envelope>>;
}
