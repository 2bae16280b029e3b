//! The conformance kit: every guarantee of the `Bus` trait stated as an async test function over
//! an engine under test, so the embedded engine and the NATS JetStream engine are held to the
//! same behaviour. An engine crate runs the whole kit with [`crate::conformance_suite!`]:
//!
//! ```ignore
//! ace_bus::conformance_suite!(my_factory);   // my_factory: fn() -> BoxFuture<'static, Box<dyn TestEngine>>
//! ```
//!
//! Time: tests that depend on ack_wait, backoff, TTL, `not_before` or dedup windows move the
//! engine's clock with [`TestEngine::advance`] (the embedded engine injects a `ManualClock`; an
//! engine on a real server may sleep instead). Restart: [`TestEngine::restart`] closes the engine
//! and opens a new one on the same storage (the NATS engine reconnects).
//!
//! `streams` holds the tests of streams and core pub/sub (dedup by envelope id and by
//! sender-scoped idempotency key among them), `consumers` those of delivery (fetch filters
//! among them); this
//! file holds the engine contract, the shared fixtures and the macro.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Envelope, Kind};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::bus::{Bus, ConsumerConfig, StreamConfig};

mod consumers;
mod streams;

pub use self::consumers::*;
pub use self::streams::*;

/// An engine under test, with control over its time and lifetime.
#[async_trait]
pub trait TestEngine: Send + Sync {
    /// The engine as the server sees it.
    fn bus(&self) -> Arc<dyn Bus>;
    /// Closes the engine and opens a new one on the same storage.
    async fn restart(&mut self);
    /// Moves the engine's clock forward.
    async fn advance(&self, by: Duration);
    /// The engine's current time (envelopes of a test are created at it).
    fn now(&self) -> DateTime<Utc>;
}

/// Makes a fresh engine on empty storage.
pub type Factory = dyn Fn() -> BoxFuture<'static, Box<dyn TestEngine>> + Send + Sync;

const NONE: Duration = Duration::ZERO;
const STREAM: &str = "orders";
const SUBJECTS: &str = "ace.comms.test.orders.>";

pub(super) fn subject(n: &str) -> String {
    format!("ace.comms.test.orders.{n}")
}

pub(super) fn env(engine: &dyn TestEngine, sub: &str) -> ace_envelope::EnvelopeBuilder {
    Envelope::builder(Kind::Event, subject(sub))
        .created_at(engine.now())
        .payload_json(serde_json::json!({"n": sub}))
}

pub(super) fn build(b: ace_envelope::EnvelopeBuilder) -> Envelope {
    b.build().expect("the kit builds valid envelopes")
}

pub(super) async fn setup(factory: &Factory, stream: StreamConfig) -> Box<dyn TestEngine> {
    let engine = factory().await;
    engine
        .bus()
        .add_stream(stream)
        .await
        .expect("stream created");
    engine
}

/// An engine with the `orders` stream and one consumer on it.
pub(super) async fn with_consumer(
    factory: &Factory,
    consumer: ConsumerConfig,
) -> (Box<dyn TestEngine>, Arc<dyn Bus>) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    bus.add_consumer(STREAM, consumer).await.expect("consumer");
    (engine, bus)
}

pub(super) fn orders() -> StreamConfig {
    StreamConfig::new(STREAM, &[SUBJECTS])
}

pub(super) fn dlq_stream() -> StreamConfig {
    StreamConfig::new("dlq", &[ace_envelope::SYSTEM_DLQ])
}

pub(super) async fn publish_n(engine: &dyn TestEngine, from: usize, to: usize) {
    for i in from..=to {
        let e = build(env(engine, &format!("m{i}")));
        engine.bus().publish(e).await.expect("published");
    }
}

pub(super) async fn fetch(bus: &dyn Bus, consumer: &str, batch: usize) -> Vec<(u64, u32)> {
    places(
        bus.fetch(STREAM, consumer, batch, NONE)
            .await
            .expect("fetch"),
    )
}

/// Each delivery as `(seq, delivery_count)`, after checking that its envelope says which attempt
/// it is too.
pub(super) fn places(delivered: Vec<crate::Delivered>) -> Vec<(u64, u32)> {
    delivered
        .into_iter()
        .map(|d| {
            assert_eq!(
                d.envelope.attempt, d.delivery_count,
                "envelope.attempt of {}",
                d.seq
            );
            (d.seq, d.delivery_count)
        })
        .collect()
}

pub(super) async fn ack_all(bus: &dyn Bus, consumer: &str, seqs: &[(u64, u32)]) {
    for (seq, _) in seqs {
        bus.ack(STREAM, consumer, *seq).await.expect("ack");
    }
}

/// The name of every kit test, in the order `conformance_suite!` runs them (an engine that runs
/// them one by one checks its list against this one; keep the two equal).
pub const ALL: &[&str] = &[
    "publish_is_stored_and_read_back",
    "publish_without_stream_is_live_only",
    "queue_group_delivers_once",
    "queue_group_skips_a_member_that_refuses",
    "filtered_subscriber_gets_only_what_it_accepts",
    "request_reply_and_no_responders",
    "duplicate_is_stored_once",
    "replayed_envelope_is_stored_once",
    "idempotency_key_is_scoped_by_sender",
    "dedup_window_survives_restart_then_expires",
    "discard_new_refuses_when_full",
    "max_msg_size_is_refused",
    "overlapping_streams_are_refused",
    "publish_batch_answers_each_in_order",
    "publishes_survive_a_concurrent_update",
    "dead_letter_without_another_fetch",
    "stream_admin_keeps_consumers",
    "workqueue_deletes_acked_messages",
    "interest_deletes_once_all_acked",
    "consumer_state_survives_restart",
    "ack_wait_redelivers",
    "backoff_then_dead_letter_with_reason",
    "term_moves_to_dead_letter",
    "nak_with_delay_and_in_progress",
    "max_ack_pending_bounds_in_flight",
    "deliver_policies_start_where_asked",
    "per_key_order_holds_under_redelivery",
    "strict_order_is_one_at_a_time",
    "p0_overtakes_p3_backlog",
    "p3_is_never_starved",
    "expired_is_counted_never_delivered",
    "not_before_holds_across_restart",
    "ack_none_needs_no_ack",
    "slow_live_subscriber_is_cut_off",
    "errors_name_what_is_missing",
    "fetch_filter_refusal_is_not_a_delivery",
    "fetch_filter_keeps_ordering",
    "fetch_filter_is_asked_once_per_message_per_fetch",
];

/// Generates one `#[tokio::test]` per kit test, running it against `$factory`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            publish_is_stored_and_read_back, publish_without_stream_is_live_only,
            queue_group_delivers_once, queue_group_skips_a_member_that_refuses,
            filtered_subscriber_gets_only_what_it_accepts, request_reply_and_no_responders, duplicate_is_stored_once,
            replayed_envelope_is_stored_once, idempotency_key_is_scoped_by_sender,
            dedup_window_survives_restart_then_expires, discard_new_refuses_when_full,
            max_msg_size_is_refused, overlapping_streams_are_refused, publish_batch_answers_each_in_order,
            publishes_survive_a_concurrent_update, dead_letter_without_another_fetch,
            stream_admin_keeps_consumers,
            workqueue_deletes_acked_messages, interest_deletes_once_all_acked,
            consumer_state_survives_restart, ack_wait_redelivers,
            backoff_then_dead_letter_with_reason, term_moves_to_dead_letter,
            nak_with_delay_and_in_progress, max_ack_pending_bounds_in_flight,
            deliver_policies_start_where_asked, per_key_order_holds_under_redelivery,
            strict_order_is_one_at_a_time, p0_overtakes_p3_backlog, p3_is_never_starved,
            expired_is_counted_never_delivered, not_before_holds_across_restart,
            ack_none_needs_no_ack, slow_live_subscriber_is_cut_off, errors_name_what_is_missing,
            fetch_filter_refusal_is_not_a_delivery, fetch_filter_keeps_ordering,
            fetch_filter_is_asked_once_per_message_per_fetch);
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::conformance::$name(&$factory).await;
            }
        )*
    };
}

/// Polls `check` for up to five seconds (for effects an engine may apply in the background).
pub(super) async fn eventually<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not met within 5 s");
}
