//! `ace-bus`: the message bus of ACE::COMMS.
//!
//! - [`Bus`] (in `bus`): the dyn-compatible engine trait the server holds as `Arc<dyn Bus>`, with
//!   the stream and consumer configuration types and [`Accept`], the receive predicate of a live
//!   subscription (`Bus::subscribe_filtered`) and of a fetch (`Bus::fetch_filtered`).
//! - `embedded`: [`EmbeddedBus`], the default engine — streams as `ace-log` segment files,
//!   stream and consumer configs and consumer state in one redb database (`state.redb`), core
//!   pub/sub through the live hub.
//! - `nats`: [`NatsBus`], the NATS JetStream engine (2.9 and later) for several servers sharing
//!   streams, durable consumers and live subjects; its module docs give the mapping onto NATS
//!   (subjects, streams, consumers, `Nats-Msg-Id` dedup, the `ace-*` headers, acks, dead letters
//!   from advisories) and where it departs from the guarantees below.
//! - `conformance`: the guarantees below as test functions over an engine factory
//!   ([`conformance::TestEngine`], [`conformance_suite!`]), so every engine passes the same kit
//!   (the NATS engine runs it test by test, its exceptions listed and tested).
//! - `error`: [`BusError`], the one error type.
//! - `index`: [`index::SubjectIndex`], the wildcard subject trie that finds the subscriptions
//!   matching a subject, fast with 100k of them.
//! - `live`: [`LiveHub`], core pub/sub in process — bounded per-subscriber buffers with slow
//!   consumer cutoff, queue groups, per-subscription receive filters, request/reply with timeout and
//!   no-responders.
//!
//! # Invariants
//!
//! Of the embedded engine; the NATS engine's differences are listed in `nats`.
//!
//! - A publish captured by a stream is answered `{stream, seq, duplicate}` only once its record is
//!   durable per the stream's `sync` policy (group commit: one writer thread per stream appends
//!   whole batches with one sync, then answers every publisher of the batch).
//! - Inside the stream's dedup window, an envelope whose `id` was already stored, or whose
//!   `idempotency_key` its sender (`source` type and id) already used, is never stored twice and
//!   is answered with the original sequence and `duplicate: true`; idempotency keys are scoped
//!   by sender, so one sender's key never suppresses another sender's message. The window is
//!   rebuilt from the log on open, so it survives restarts, and is bounded in count as well as
//!   age (`EmbeddedConfig::dedup_max_entries`).
//! - A consumer never sees a message before its `not_before` time, nor after its TTL/deadline
//!   (an expired message is counted in `ConsumerCounters::expired` and treated as done).
//! - Every delivered message is eventually acked, dead-lettered or expired: an unacked delivery
//!   is redelivered after `ack_wait` (or the backoff schedule); after `max_deliver` deliveries, or
//!   on `term`, it is published to the stream's dead-letter subject with its original stream,
//!   sequence, consumer, delivery count and reason, then counted as done for that consumer.
//! - With `ordering: per_key` at most one message per `partition_key` is in flight, and messages
//!   of one key are handed out in stream order, redeliveries included; `strict` does the same
//!   with one global key.
//! - With priority lanes, lanes take turns 8:4:2:1 (P0:P1:P2:P3) over non-empty lanes, so a P0
//!   message overtakes any backlog of P3 while P3 still gets one turn in fifteen.
//! - A fetch whose `Accept` refuses a message neither hands it out nor counts it as a delivery:
//!   the refusal never moves it toward `max_deliver` or the dead letters, and it keeps its place
//!   (the head of its key under `per_key`, of the consumer under `strict`) for the next fetch
//!   that accepts it.
//! - At most `max_ack_pending` deliveries of a consumer await an ack at once.
//! - Consumer state (ack floor, acks above it, pending deliveries with their counts and
//!   deadlines, counters) is flushed to redb at least every `state_flush_interval` and on
//!   `close`; after a crash, at most the acks of the last interval are lost, so those messages
//!   are delivered again — never lost (at-least-once).
//! - Streams never overlap: each subject is captured by at most one stream, so a publish has
//!   at most one `{stream, seq}`.
//! - A damaged stream changes only by `Bus::repair_stream` with `accept_loss`: never a sequence
//!   at or below its high-water mark again, nothing cut deleted (moved under the stream's
//!   `lost/`), its consumers kept. One engine at a time opens a data directory (`LOCK`).
//! - `SubjectIndex` reports an entry for a subject exactly when `SubjectPattern::matches` says
//!   its pattern matches, once (proptested), with or without its match cache.
//! - `LiveHub::publish` never blocks and never buffers more than `subscriber_buffer` messages per
//!   subscription: a full subscriber is cut off (`CloseReason::SlowConsumer`, counted), keeps
//!   what it already holds, then ends. In a queue group exactly one live member gets a message,
//!   and never one whose `Accept` predicate refuses it while another member would accept it.
//!
//! # Dead letters, as a real move
//!
//! When a consumer gives up on a message — `term(reason)`, or a delivery past `max_deliver` —
//! the engine publishes a new envelope on the stream's `dead_letter` subject (default
//! `ace.comms.system.dlq.<stream>.evt.dead_letter.v1`, the catalogue's subject), then records the
//! original as done for that consumer (on a work-queue or interest stream it is then deleted). If
//! that publish fails the original stays pending and is retried; nothing is dropped silently. A
//! message that limits dropped meanwhile is done without a dead letter (there is nothing to
//! move), as a fetch treats it. The dead letter is kind `event`, domain `comms`, name
//! `dead_letter`, `schema` `comms.dlq.dead_letter@1.1.0` (`contracts/comms/system.schema.json`,
//! [`ace_envelope::api::system::DeadLetter`]), and carries:
//!
//! | where | what |
//! | --- | --- |
//! | `payload.original` | the original envelope, unchanged |
//! | `payload.message_id`, `payload.subject` | the original's id and subject |
//! | `payload.stream`, `payload.seq` | where it was stored |
//! | `payload.consumer`, `payload.deliveries` | who gave up, after how many deliveries |
//! | `payload.reason` | `term` or `max_deliver` (the contract's enum) |
//! | `payload.detail` | the caller's `term` reason, or `max_deliver N reached; last: <nak / ack_wait expired>` (at most 2,000 characters) |
//! | `payload.dead_lettered_at` | when, on the engine's clock |
//! | headers `ace-dlq-stream`, `ace-dlq-seq`, `ace-dlq-consumer`, `ace-dlq-deliveries`, `ace-dlq-reason` | the same (the reason as the enum word), for routing without decoding |
//! | `correlation_id`, `causation_id` | the original's correlation id (its id when it has none), and its id |
//! | `idempotency_key` | `dlq:<stream>:<consumer>:<seq>` — a retry never makes two |
//!
//! To keep dead letters, create a stream over `ace.comms.system.dlq.>` (or the configured
//! subject); live subscribers to it see them too. `ConsumerCounters::dead_lettered` counts them.
//!
//! # Priority and per-key order together
//!
//! A consumer with `priority_lanes: true` keeps one lane per priority and takes turns
//! `P0 P1 P0 P2 P0 P1 P0 P3 P0 P1 P0 P2 P0 P1 P0` over the non-empty lanes: an urgent message
//! overtakes any backlog, a P3 message still moves. `ordering: per_key` adds that a message
//! whose `partition_key` has an earlier message in flight (or awaiting redelivery) waits for it:
//! order holds per key, parallelism holds across keys, and priority decides between keys.
//! `ordering: strict` is one message in flight at all, in stream order (lanes off).
//!
//! # Known limits
//!
//! - Limits retention (`max_msgs`, `max_bytes`, `max_age` with `discard: old`) drops whole log
//!   segments, as Kafka does: the stream keeps *at least* the limit. Segments are sized at an
//!   eighth of `max_bytes` (at least 4 KiB) so byte limits stay tight. `discard: new` is exact.
//! - `storage: memory` is refused (`BusError::Unsupported`).
//! - `update_stream` reopens the stream's log; publishes racing it wait (up to a second) and are
//!   routed to the reopened stream.
//! - Consumers are pull consumers (`fetch`); there is no push delivery to a subject yet.

pub mod bus;
pub mod conformance;
mod dead_letter;
pub mod embedded;
pub mod error;
pub mod index;
pub mod live;
pub mod nats;

pub use ace_log::{Durability, OsDurability};
pub use bus::{
    Accept, AckPolicy, Backoff, Bus, ConsumerConfig, ConsumerCounters, ConsumerFloor, ConsumerInfo,
    DEAD_LETTER_PREFIX, DeliverPolicy, Delivered, DiscardPolicy, HealthChange, LiveSubscription,
    LostSegment, Ordering, PublishAck, RetentionPolicy, SeqRange, StorageKind, StoredMessage,
    StreamConfig, StreamCounters, StreamDamage, StreamInfo, StreamRepair, StreamState, SyncPolicy,
};
pub use embedded::{DEFAULT_DEDUP_MAX_ENTRIES, EmbeddedBus, EmbeddedConfig};
pub use error::BusError;
pub use live::{CloseReason, LiveConfig, LiveHub, LiveStats, Subscription};
pub use nats::{NatsBus, NatsConfig};
