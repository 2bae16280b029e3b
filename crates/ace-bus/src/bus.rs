//! The `Bus` trait every engine implements, and the public types it speaks: stream and consumer
//! configurations (serde, with DESIGN.md's fields and defaults), publish acknowledgements,
//! deliveries and the info/counter snapshots.
//!
//! The trait uses `async-trait` (boxed futures) rather than Rust 2024's native `async fn` in
//! traits because the server holds the engine as `Arc<dyn Bus>`: native async trait methods are
//! not dyn-compatible. One allocation per call is negligible next to an fsync or a network hop.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::Envelope;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::BusError;

/// The engine contract: core pub/sub, request/reply, streams, consumers and acknowledgements.
///
/// Sequences are per stream, start at 1 and only grow. Acknowledgement calls name the stream
/// sequence of the delivery (`Delivered::seq`).
#[async_trait]
pub trait Bus: Send + Sync {
    /// Delivers `envelope` to live subscribers and appends it to the stream whose subjects match
    /// its subject (if any). Returns only once the append is durable per the stream's sync policy;
    /// a repeat of an `idempotency_key` inside the stream's dedup window is answered with the
    /// original sequence and `duplicate: true` and is neither stored nor delivered again.
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
    /// goes to one member of the group.
    async fn subscribe(
        &self,
        pattern: &str,
        queue: Option<&str>,
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
    async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
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

    /// Flushes state and releases the engine's files (or connection). Every later call fails
    /// with `BusError::Closed`.
    async fn close(&self) -> Result<(), BusError>;
}

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

/// The answer to a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishAck {
    /// The stream that stored the message, `None` when no stream captures the subject.
    pub stream: Option<String>,
    /// The stream sequence (the original one for a duplicate).
    pub seq: Option<u64>,
    /// True when the idempotency key was seen inside the dedup window.
    pub duplicate: bool,
}

/// One message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The stream it is stored in.
    pub stream: String,
    /// The consumer it is delivered to.
    pub consumer: String,
    /// Its stream sequence: the handle for ack, nak, term and in_progress.
    pub seq: u64,
    /// 1 on first delivery, then incremented on every redelivery.
    pub delivery_count: u32,
    /// The envelope as published.
    pub envelope: Envelope,
}

/// A message read by sequence.
#[derive(Debug, Clone)]
pub struct StoredMessage {
    /// Its stream sequence.
    pub seq: u64,
    /// When the stream stored it.
    pub stored_at: DateTime<Utc>,
    /// The envelope as published.
    pub envelope: Envelope,
}

/// What is kept once stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionPolicy {
    /// Kept until a limit (max_msgs, max_bytes, max_age) drops it.
    #[default]
    Limits,
    /// Deleted once acknowledged (or dead-lettered) by its consumer; one consumer per filter.
    Workqueue,
    /// Deleted once every consumer that matches it acknowledged it; not kept without consumers.
    Interest,
}

/// What happens when a stream reaches `max_msgs` or `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscardPolicy {
    /// The oldest messages are dropped (counted).
    #[default]
    Old,
    /// The new message is refused with `BusError::StreamFull`.
    New,
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// Segment files under the data directory.
    #[default]
    File,
    /// In memory only.
    Memory,
}

/// When a publish counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// One fsync per append batch before any publisher of the batch is answered (group commit).
    Always,
    /// Group commit: publishers arriving together share one fsync before they are answered.
    #[default]
    Batch,
    /// No fsync on the publish path (the OS writes back); fastest, loses the tail on power loss.
    Never,
}

/// A stream: an append-only, durable record of every message whose subject matches `subjects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Name: `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Subject patterns captured (no two streams may overlap).
    pub subjects: Vec<String>,
    /// What is kept.
    pub retention: RetentionPolicy,
    /// Most messages kept.
    pub max_msgs: Option<u64>,
    /// Most bytes kept.
    pub max_bytes: Option<u64>,
    /// Oldest message kept, in milliseconds.
    #[serde(with = "opt_ms")]
    pub max_age: Option<Duration>,
    /// Largest encoded message accepted, in bytes.
    pub max_msg_size: Option<u64>,
    /// What happens when full.
    pub discard: DiscardPolicy,
    /// How long an idempotency key is remembered, in milliseconds (default 2 minutes).
    #[serde(with = "ms")]
    pub dedup_window: Duration,
    /// Where the messages live.
    pub storage: StorageKind,
    /// When a publish counts as durable.
    pub sync: SyncPolicy,
    /// Dead-letter subject; default `ace.comms.system.dlq.<name>`.
    pub dead_letter: Option<String>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            name: String::new(),
            subjects: Vec::new(),
            retention: RetentionPolicy::default(),
            max_msgs: None,
            max_bytes: None,
            max_age: None,
            max_msg_size: None,
            discard: DiscardPolicy::default(),
            dedup_window: Duration::from_secs(120),
            storage: StorageKind::default(),
            sync: SyncPolicy::default(),
            dead_letter: None,
        }
    }
}

impl StreamConfig {
    /// A limits stream named `name` over `subjects`, every other field at its default.
    pub fn new(name: impl Into<String>, subjects: &[&str]) -> Self {
        StreamConfig {
            name: name.into(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            ..StreamConfig::default()
        }
    }

    /// The subject dead letters of this stream are published to.
    pub fn dead_letter_subject(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| format!("{DEAD_LETTER_PREFIX}{}", self.name))
    }
}

/// Prefix of the default dead-letter subjects (`ace.comms.system.dlq.<stream>`).
pub const DEAD_LETTER_PREFIX: &str = "ace.comms.system.dlq.";

/// Where a new consumer starts in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    /// From the first stored message.
    #[default]
    All,
    /// From the last stored message matching the filter.
    Last,
    /// Only messages stored after the consumer is created.
    New,
    /// From this sequence (replay).
    BySeq(u64),
    /// From the first message stored at or after this time (replay).
    ByTime(DateTime<Utc>),
}

/// Whether deliveries wait for an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckPolicy {
    /// Every delivery must be acked, nak'ed or termed; unacked ones are redelivered.
    #[default]
    Explicit,
    /// A delivery counts as acked when handed out.
    None,
}

/// In which order a consumer hands out messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Any order (priority lanes apply); maximum parallelism.
    #[default]
    None,
    /// One message in flight per `partition_key`, in stream order per key (also under
    /// redelivery); messages of different keys, or without a key, go in parallel.
    PerKey,
    /// One message in flight at all, in stream order (priority lanes do not apply).
    Strict,
}

/// When an unacknowledged (or nak'ed) message is redelivered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Redeliver after `ack_wait` (nak without delay: at once).
    #[default]
    None,
    /// The n-th delivery waits the n-th delay (milliseconds) for its ack; the last repeats.
    List(#[serde(with = "ms_list")] Vec<Duration>),
    /// `initial * multiplier^(n-1)`, capped at `max`, plus up to `jitter` (0..=1) of it at random.
    Exponential {
        /// First delay, milliseconds.
        #[serde(with = "ms")]
        initial: Duration,
        /// Cap, milliseconds.
        #[serde(with = "ms")]
        max: Duration,
        /// Growth per delivery.
        multiplier: f64,
        /// Random extra, as a fraction of the delay.
        jitter: f64,
    },
}

/// A consumer: a cursor with acknowledgement state over one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Name: `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Durable consumers survive restarts; ephemeral ones are forgotten on close.
    pub durable: bool,
    /// Only messages whose subject matches this pattern.
    pub filter: Option<String>,
    /// Where it starts.
    pub deliver: DeliverPolicy,
    /// Whether deliveries need acks.
    pub ack: AckPolicy,
    /// How long a delivery waits for its ack before redelivery, milliseconds (default 30 s).
    #[serde(with = "ms")]
    pub ack_wait: Duration,
    /// Deliveries before the message moves to the dead-letter subject (`None`: unlimited).
    pub max_deliver: Option<u32>,
    /// Redelivery schedule.
    pub backoff: Backoff,
    /// Most deliveries awaiting an ack at once (default 1,000).
    pub max_ack_pending: usize,
    /// Delivery order.
    pub ordering: Ordering,
    /// P0 before P1 before P2 before P3, with weighted turns 8:4:2:1 so P3 still moves.
    pub priority_lanes: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            name: String::new(),
            durable: true,
            filter: None,
            deliver: DeliverPolicy::default(),
            ack: AckPolicy::default(),
            ack_wait: Duration::from_secs(30),
            max_deliver: Some(5),
            backoff: Backoff::default(),
            max_ack_pending: 1000,
            ordering: Ordering::default(),
            priority_lanes: true,
        }
    }
}

impl ConsumerConfig {
    /// A durable consumer named `name`, every other field at its default.
    pub fn new(name: impl Into<String>) -> Self {
        ConsumerConfig {
            name: name.into(),
            ..ConsumerConfig::default()
        }
    }
}

/// A stream's configuration, state and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// Its configuration.
    pub config: StreamConfig,
    /// Messages stored now.
    pub messages: u64,
    /// Bytes stored now.
    pub bytes: u64,
    /// First stored sequence (0 when empty).
    pub first_seq: u64,
    /// Last assigned sequence (0 when nothing was ever stored).
    pub last_seq: u64,
    /// Number of consumers.
    pub consumers: usize,
    /// Counters since the engine opened.
    pub counters: StreamCounters,
}

/// What happened on a stream since the engine opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamCounters {
    /// Messages stored.
    pub stored: u64,
    /// Publishes answered as duplicates.
    pub duplicates: u64,
    /// Publishes refused because the stream was full (`discard: new`).
    pub refused_full: u64,
    /// Publishes refused for exceeding `max_msg_size`.
    pub refused_too_large: u64,
    /// Messages dropped by limits (max_msgs, max_bytes, max_age).
    pub dropped_by_limits: u64,
    /// Messages deleted by workqueue or interest retention once acked.
    pub removed_after_ack: u64,
    /// Messages of an interest stream deleted at once because no consumer wanted them.
    pub removed_no_interest: u64,
}

/// A consumer's configuration, state and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    /// The stream it reads.
    pub stream: String,
    /// Its configuration.
    pub config: ConsumerConfig,
    /// Every sequence at or below it is done (acked, dead-lettered, expired or filtered out).
    pub ack_floor: u64,
    /// Deliveries awaiting an ack (or a scheduled redelivery).
    pub ack_pending: usize,
    /// Messages not yet delivered (including those held by `not_before` or per-key order).
    pub waiting: usize,
    /// Counters (persisted with the consumer state).
    pub counters: ConsumerCounters,
}

/// What happened on a consumer over its life (persisted with its state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerCounters {
    /// First deliveries.
    pub delivered: u64,
    /// Redeliveries.
    pub redelivered: u64,
    /// Acks.
    pub acked: u64,
    /// Naks.
    pub naked: u64,
    /// Terms.
    pub termed: u64,
    /// Messages moved to the dead-letter subject (after term or max_deliver).
    pub dead_lettered: u64,
    /// Messages whose TTL or deadline passed before delivery: counted, never delivered.
    pub expired: u64,
}

/// Serde of a `Duration` as integer milliseconds.
mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Serde of an `Option<Duration>` as integer milliseconds or null.
mod opt_ms {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|v| v.map(Duration::from_millis))
    }
}

/// Serde of a list of `Duration`s as integer milliseconds.
mod ms_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        d.iter()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<u64>::deserialize(d).map(|v| v.into_iter().map(Duration::from_millis).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_minimal_stream_json_when_parsed_then_defaults_fill_the_rest() {
        let cfg: StreamConfig =
            serde_json::from_str(r#"{"name":"orders","subjects":["orders.>"],"max_age":60000}"#)
                .expect("parses");
        assert_eq!(cfg.max_age, Some(Duration::from_secs(60)));
        assert_eq!(cfg.dedup_window, Duration::from_secs(120));
        assert_eq!(cfg.dead_letter_subject(), "ace.comms.system.dlq.orders");
    }

    #[test]
    fn given_a_consumer_config_when_round_tripped_then_it_is_unchanged() {
        let cfg = ConsumerConfig {
            backoff: Backoff::List(vec![Duration::from_millis(10), Duration::from_secs(1)]),
            deliver: DeliverPolicy::BySeq(7),
            ordering: Ordering::PerKey,
            ..ConsumerConfig::new("worker")
        };
        let json = serde_json::to_string(&cfg).expect("encodes");
        let back: ConsumerConfig = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, cfg);
    }

    #[test]
    fn given_an_unknown_field_when_parsed_then_it_is_refused() {
        let err = serde_json::from_str::<ConsumerConfig>(r#"{"name":"a","ack_wiat":5}"#);
        assert!(err.is_err());
    }
}
