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

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Envelope, Kind, Priority};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;

use crate::bus::{
    AckPolicy, Backoff, Bus, ConsumerConfig, DeliverPolicy, DiscardPolicy, Ordering,
    RetentionPolicy, StreamConfig,
};
use crate::error::BusError;

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

fn subject(n: &str) -> String {
    format!("ace.comms.test.orders.{n}")
}

fn env(engine: &dyn TestEngine, sub: &str) -> ace_envelope::EnvelopeBuilder {
    Envelope::builder(Kind::Event, subject(sub))
        .created_at(engine.now())
        .payload_json(serde_json::json!({"n": sub}))
}

fn build(b: ace_envelope::EnvelopeBuilder) -> Envelope {
    b.build().expect("the kit builds valid envelopes")
}

async fn setup(factory: &Factory, stream: StreamConfig) -> Box<dyn TestEngine> {
    let engine = factory().await;
    engine
        .bus()
        .add_stream(stream)
        .await
        .expect("stream created");
    engine
}

/// An engine with the `orders` stream and one consumer on it.
async fn with_consumer(
    factory: &Factory,
    consumer: ConsumerConfig,
) -> (Box<dyn TestEngine>, Arc<dyn Bus>) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    bus.add_consumer(STREAM, consumer).await.expect("consumer");
    (engine, bus)
}

fn orders() -> StreamConfig {
    StreamConfig::new(STREAM, &[SUBJECTS])
}

fn dlq_stream() -> StreamConfig {
    StreamConfig::new("dlq", &[ace_envelope::SYSTEM_DLQ])
}

async fn publish_n(engine: &dyn TestEngine, from: usize, to: usize) {
    for i in from..=to {
        let e = build(env(engine, &format!("m{i}")));
        engine.bus().publish(e).await.expect("published");
    }
}

async fn fetch(bus: &dyn Bus, consumer: &str, batch: usize) -> Vec<(u64, u32)> {
    bus.fetch(STREAM, consumer, batch, NONE)
        .await
        .expect("fetch")
        .into_iter()
        .map(|d| (d.seq, d.delivery_count))
        .collect()
}

async fn ack_all(bus: &dyn Bus, consumer: &str, seqs: &[(u64, u32)]) {
    for (seq, _) in seqs {
        bus.ack(STREAM, consumer, *seq).await.expect("ack");
    }
}

/// Generates one `#[tokio::test]` per kit test, running it against `$factory`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            publish_is_stored_and_read_back, publish_without_stream_is_live_only,
            queue_group_delivers_once, request_reply_and_no_responders, duplicate_is_stored_once,
            dedup_window_survives_restart_then_expires, discard_new_refuses_when_full,
            max_msg_size_is_refused, overlapping_streams_are_refused, publish_batch_answers_each_in_order,
            stream_admin_keeps_consumers,
            workqueue_deletes_acked_messages, interest_deletes_once_all_acked,
            consumer_state_survives_restart, ack_wait_redelivers,
            backoff_then_dead_letter_with_reason, term_moves_to_dead_letter,
            nak_with_delay_and_in_progress, max_ack_pending_bounds_in_flight,
            deliver_policies_start_where_asked, per_key_order_holds_under_redelivery,
            strict_order_is_one_at_a_time, p0_overtakes_p3_backlog, p3_is_never_starved,
            expired_is_counted_never_delivered, not_before_holds_across_restart,
            ack_none_needs_no_ack, slow_live_subscriber_is_cut_off, errors_name_what_is_missing);
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

/// A captured publish is answered with its stream and sequence, and reads back unchanged.
pub async fn publish_is_stored_and_read_back(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    let sent = build(
        env(&*engine, "a")
            .partition_key("k1")
            .priority(Priority::P1),
    );
    let ack = bus.publish(sent.clone()).await.expect("published");
    assert_eq!(
        (ack.stream.as_deref(), ack.seq, ack.duplicate),
        (Some(STREAM), Some(1), false)
    );
    let stored = bus
        .get_message(STREAM, 1)
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(stored.envelope, sent);
    assert!(bus.get_message(STREAM, 2).await.expect("read").is_none());
    let info = bus.stream_info(STREAM).await.expect("info");
    assert_eq!((info.messages, info.first_seq, info.last_seq), (1, 1, 1));
}

/// A subject no stream captures reaches live subscribers and is answered without a sequence.
pub async fn publish_without_stream_is_live_only(factory: &Factory) {
    let engine = factory().await;
    let bus = engine.bus();
    let mut sub = bus
        .subscribe("ace.comms.test.>", None)
        .await
        .expect("subscribed");
    let ack = bus
        .publish(build(env(&*engine, "x")))
        .await
        .expect("published");
    assert_eq!((ack.stream, ack.seq), (None, None));
    let got = tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("in time");
    assert_eq!(got.expect("a message").subject, subject("x"));
}

/// Members of one queue group share the messages: each goes to exactly one member.
pub async fn queue_group_delivers_once(factory: &Factory) {
    let engine = factory().await;
    let bus = engine.bus();
    let mut a = bus
        .subscribe("ace.comms.test.orders.*", Some("workers"))
        .await
        .expect("a");
    let mut b = bus
        .subscribe("ace.comms.test.orders.*", Some("workers"))
        .await
        .expect("b");
    publish_n(&*engine, 1, 20).await;
    let mut total = 0;
    for sub in [&mut a, &mut b] {
        while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            total += 1;
        }
    }
    assert_eq!(total, 20, "each message goes to exactly one member");
}

/// A request gets the reply of its responder; a request nobody listens to fails at once.
pub async fn request_reply_and_no_responders(factory: &Factory) {
    let engine = factory().await;
    let bus = engine.bus();
    let err = bus
        .request(build(env(&*engine, "q")), Duration::from_secs(5))
        .await;
    assert!(
        matches!(err, Err(BusError::NoResponders { .. })),
        "got {err:?}"
    );
    let mut sub = bus.subscribe(&subject("q"), None).await.expect("responder");
    let responder_bus = bus.clone();
    let responder = tokio::spawn(async move {
        let req = sub.next().await.expect("a request");
        let to = req
            .headers
            .get("reply_to")
            .expect("reply_to header")
            .clone();
        let reply = req
            .reply_builder(to)
            .payload_json(serde_json::json!({"ok": true}))
            .build()
            .expect("reply");
        responder_bus.publish(reply).await.expect("reply published");
    });
    let reply = bus
        .request(build(env(&*engine, "q")), Duration::from_secs(5))
        .await
        .expect("reply");
    assert_eq!(reply.payload, Some(serde_json::json!({"ok": true})));
    responder.await.expect("responder ran");
}

/// A repeated idempotency key is answered with the original sequence and stored once.
pub async fn duplicate_is_stored_once(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    let first = bus
        .publish(build(env(&*engine, "a").idempotency_key("k")))
        .await
        .expect("first");
    let again = bus
        .publish(build(env(&*engine, "b").idempotency_key("k")))
        .await
        .expect("again");
    assert_eq!((again.seq, again.duplicate), (first.seq, true));
    let info = bus.stream_info(STREAM).await.expect("info");
    assert_eq!((info.messages, info.counters.duplicates), (1, 1));
}

/// The dedup window survives a restart, and a key is accepted again once the window passed.
pub async fn dedup_window_survives_restart_then_expires(factory: &Factory) {
    let cfg = StreamConfig {
        dedup_window: Duration::from_secs(60),
        ..orders()
    };
    let mut engine = setup(factory, cfg).await;
    engine
        .bus()
        .publish(build(env(&*engine, "a").idempotency_key("k")))
        .await
        .expect("first");
    engine.restart().await;
    let again = engine
        .bus()
        .publish(build(env(&*engine, "a").idempotency_key("k")))
        .await;
    assert!(
        again.expect("answered").duplicate,
        "dedup window lost on restart"
    );
    engine.advance(Duration::from_secs(61)).await;
    let later = engine
        .bus()
        .publish(build(env(&*engine, "a").idempotency_key("k")))
        .await;
    let later = later.expect("answered");
    assert_eq!((later.seq, later.duplicate), (Some(2), false));
}

/// A full stream with `discard: new` refuses the next publish.
pub async fn discard_new_refuses_when_full(factory: &Factory) {
    let cfg = StreamConfig {
        max_msgs: Some(2),
        discard: DiscardPolicy::New,
        ..orders()
    };
    let engine = setup(factory, cfg).await;
    publish_n(&*engine, 1, 2).await;
    let third = engine.bus().publish(build(env(&*engine, "c"))).await;
    assert!(
        matches!(third, Err(BusError::StreamFull { .. })),
        "got {third:?}"
    );
    let info = engine.bus().stream_info(STREAM).await.expect("info");
    assert_eq!((info.messages, info.counters.refused_full), (2, 1));
}

/// A message over `max_msg_size` is refused and counted.
pub async fn max_msg_size_is_refused(factory: &Factory) {
    let engine = setup(
        factory,
        StreamConfig {
            max_msg_size: Some(600),
            ..orders()
        },
    )
    .await;
    let big = env(&*engine, "big").payload_json(serde_json::json!({"blob": "x".repeat(1000)}));
    let err = engine.bus().publish(build(big)).await;
    assert!(
        matches!(err, Err(BusError::MessageTooLarge { .. })),
        "got {err:?}"
    );
    let info = engine.bus().stream_info(STREAM).await.expect("info");
    assert_eq!((info.messages, info.counters.refused_too_large), (0, 1));
}

/// Two streams may not capture the same subject.
pub async fn overlapping_streams_are_refused(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let other = StreamConfig::new("other", &["ace.comms.test.*.eu"]);
    let err = engine.bus().add_stream(other).await;
    assert!(matches!(err, Err(BusError::Conflict { .. })), "got {err:?}");
}

/// `publish_batch` answers every envelope in order: stored, duplicate, or refused.
pub async fn publish_batch_answers_each_in_order(factory: &Factory) {
    let engine = setup(
        factory,
        StreamConfig {
            max_msg_size: Some(600),
            ..orders()
        },
    )
    .await;
    let big = env(&*engine, "big").payload_json(serde_json::json!({"blob": "x".repeat(1000)}));
    let batch = vec![
        build(env(&*engine, "a").idempotency_key("k")),
        build(big),
        build(env(&*engine, "b").idempotency_key("k")),
        build(env(&*engine, "c")),
    ];
    let answers = engine.bus().publish_batch(batch).await;
    assert_eq!(answers.len(), 4);
    let ack = |i: usize| answers[i].as_ref().map(|a| (a.seq, a.duplicate)).ok();
    assert_eq!(ack(0), Some((Some(1), false)));
    assert!(matches!(answers[1], Err(BusError::MessageTooLarge { .. })));
    assert_eq!(ack(2), Some((Some(1), true)));
    assert_eq!(ack(3), Some((Some(2), false)));
}

/// Updating a stream's limits keeps its consumers and their state; deleting it removes it all
/// and frees the name.
pub async fn stream_admin_keeps_consumers(factory: &Factory) {
    let (engine, bus) = with_consumer(factory, ConsumerConfig::new("c")).await;
    publish_n(&*engine, 1, 3).await;
    let got = fetch(&*bus, "c", 1).await;
    ack_all(&*bus, "c", &got).await;
    let info = bus
        .update_stream(StreamConfig {
            max_msgs: Some(1000),
            ..orders()
        })
        .await
        .expect("updated");
    assert_eq!(
        (info.config.max_msgs, info.messages, info.consumers),
        (Some(1000), 3, 1)
    );
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(2, 1), (3, 1)]);
    let names: Vec<String> = bus
        .list_streams()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.config.name)
        .collect();
    assert_eq!(names, vec![STREAM.to_owned()]);
    assert_eq!(bus.list_consumers(STREAM).await.expect("list").len(), 1);
    bus.delete_stream(STREAM).await.expect("deleted");
    assert!(matches!(
        bus.stream_info(STREAM).await,
        Err(BusError::StreamNotFound { .. })
    ));
    bus.add_stream(orders()).await.expect("name reusable");
    assert_eq!(bus.stream_info(STREAM).await.expect("info").messages, 0);
}

/// Work-queue retention deletes a message once its consumer acked it.
pub async fn workqueue_deletes_acked_messages(factory: &Factory) {
    let cfg = StreamConfig {
        retention: RetentionPolicy::Workqueue,
        ..orders()
    };
    let engine = setup(factory, cfg).await;
    let bus = engine.bus();
    bus.add_consumer(STREAM, ConsumerConfig::new("w"))
        .await
        .expect("consumer");
    let second = bus.add_consumer(STREAM, ConsumerConfig::new("w2")).await;
    assert!(
        matches!(second, Err(BusError::Conflict { .. })),
        "one consumer per filter"
    );
    publish_n(&*engine, 1, 3).await;
    let got = fetch(&*bus, "w", 2).await;
    ack_all(&*bus, "w", &got).await;
    eventually(|| async { bus.stream_info(STREAM).await.expect("info").messages == 1 }).await;
    assert!(bus.get_message(STREAM, 1).await.expect("read").is_none());
}

/// Interest retention deletes a message once every consumer acked it, and keeps nothing without
/// consumers.
pub async fn interest_deletes_once_all_acked(factory: &Factory) {
    let cfg = StreamConfig {
        retention: RetentionPolicy::Interest,
        ..orders()
    };
    let engine = setup(factory, cfg).await;
    let bus = engine.bus();
    publish_n(&*engine, 1, 1).await;
    eventually(|| async { bus.stream_info(STREAM).await.expect("info").messages == 0 }).await;
    bus.add_consumer(STREAM, ConsumerConfig::new("a"))
        .await
        .expect("a");
    bus.add_consumer(STREAM, ConsumerConfig::new("b"))
        .await
        .expect("b");
    publish_n(&*engine, 2, 2).await;
    let got = fetch(&*bus, "a", 1).await;
    ack_all(&*bus, "a", &got).await;
    assert_eq!(
        bus.stream_info(STREAM).await.expect("info").messages,
        1,
        "b still needs it"
    );
    let got = fetch(&*bus, "b", 1).await;
    ack_all(&*bus, "b", &got).await;
    eventually(|| async { bus.stream_info(STREAM).await.expect("info").messages == 0 }).await;
}

/// Acks, pending deliveries and their counts survive a restart.
pub async fn consumer_state_survives_restart(factory: &Factory) {
    let mut engine = setup(factory, orders()).await;
    engine
        .bus()
        .add_consumer(STREAM, ConsumerConfig::new("c"))
        .await
        .expect("consumer");
    publish_n(&*engine, 1, 4).await;
    let got = fetch(&*engine.bus(), "c", 2).await;
    engine.bus().ack(STREAM, "c", got[0].0).await.expect("ack");
    engine.restart().await;
    let bus = engine.bus();
    let info = bus.consumer_info(STREAM, "c").await.expect("info");
    assert_eq!((info.ack_floor, info.ack_pending, info.waiting), (1, 1, 2));
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(3, 1), (4, 1)]);
    engine.advance(Duration::from_secs(31)).await;
    assert_eq!(
        fetch(&*engine.bus(), "c", 10).await,
        vec![(2, 2), (3, 2), (4, 2)]
    );
}

/// A delivery not acked within `ack_wait` comes back with its count incremented.
pub async fn ack_wait_redelivers(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            ack_wait: Duration::from_secs(10),
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    publish_n(&*engine, 1, 1).await;
    assert_eq!(fetch(&*bus, "c", 1).await, vec![(1, 1)]);
    engine.advance(Duration::from_secs(9)).await;
    assert!(fetch(&*bus, "c", 1).await.is_empty());
    engine.advance(Duration::from_secs(1)).await;
    assert_eq!(fetch(&*bus, "c", 1).await, vec![(1, 2)]);
    let info = bus.consumer_info(STREAM, "c").await.expect("info");
    assert_eq!((info.counters.delivered, info.counters.redelivered), (1, 1));
}

/// A consumer that never acks sees the message on the backoff schedule, then finds it on the
/// dead-letter subject with its origin and reason.
pub async fn backoff_then_dead_letter_with_reason(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    bus.add_stream(dlq_stream()).await.expect("dlq stream");
    bus.add_consumer("dlq", ConsumerConfig::new("inspect"))
        .await
        .expect("dlq consumer");
    let cfg = ConsumerConfig {
        backoff: Backoff::List(vec![
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(30),
        ]),
        max_deliver: Some(3),
        ..ConsumerConfig::new("c")
    };
    bus.add_consumer(STREAM, cfg).await.expect("consumer");
    publish_n(&*engine, 1, 1).await;
    for (wait, count) in [(0, 1), (1, 2), (5, 3)] {
        engine.advance(Duration::from_secs(wait)).await;
        assert_eq!(
            fetch(&*bus, "c", 1).await,
            vec![(1, count)],
            "delivery {count}"
        );
        engine.advance(Duration::from_millis(1)).await;
        assert!(
            fetch(&*bus, "c", 1).await.is_empty(),
            "early redelivery after {count}"
        );
    }
    engine.advance(Duration::from_secs(30)).await;
    assert!(fetch(&*bus, "c", 1).await.is_empty());
    let dead = bus
        .fetch("dlq", "inspect", 1, Duration::from_secs(5))
        .await
        .expect("dlq fetch");
    let dead = &dead.first().expect("a dead letter").envelope;
    assert_eq!(dead.subject, "ace.comms.system.dlq.orders");
    let p = dead.payload.as_ref().expect("payload");
    assert_eq!(
        (
            p["stream"].as_str(),
            p["seq"].as_u64(),
            p["consumer"].as_str()
        ),
        (Some(STREAM), Some(1), Some("c"))
    );
    assert_eq!(p["deliveries"].as_u64(), Some(3));
    assert!(
        p["reason"]
            .as_str()
            .expect("reason")
            .contains("max_deliver")
    );
    assert_eq!(
        p["original"]["subject"].as_str(),
        Some(subject("m1").as_str())
    );
    let info = bus.consumer_info(STREAM, "c").await.expect("info");
    assert_eq!((info.counters.dead_lettered, info.ack_floor), (1, 1));
}

/// `term` moves the message to the dead-letter subject at once, with the caller's reason.
pub async fn term_moves_to_dead_letter(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    let mut dlq = bus
        .subscribe(ace_envelope::SYSTEM_DLQ, None)
        .await
        .expect("dlq tap");
    bus.add_consumer(STREAM, ConsumerConfig::new("c"))
        .await
        .expect("consumer");
    publish_n(&*engine, 1, 1).await;
    fetch(&*bus, "c", 1).await;
    bus.term(STREAM, "c", 1, "poison: bad total")
        .await
        .expect("term");
    let dead = tokio::time::timeout(Duration::from_secs(5), dlq.next())
        .await
        .expect("in time");
    let dead = dead.expect("a dead letter");
    assert_eq!(
        dead.headers.get("ace-dlq-reason").map(String::as_str),
        Some("term: poison: bad total")
    );
    assert_eq!(
        dead.headers.get("ace-dlq-seq").map(String::as_str),
        Some("1")
    );
    let again = bus.ack(STREAM, "c", 1).await;
    assert!(
        matches!(again, Err(BusError::NotPending { .. })),
        "got {again:?}"
    );
}

/// `nak(delay)` redelivers after the delay; `in_progress` pushes the ack deadline back.
pub async fn nak_with_delay_and_in_progress(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            ack_wait: Duration::from_secs(10),
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    publish_n(&*engine, 1, 2).await;
    fetch(&*bus, "c", 2).await;
    bus.nak(STREAM, "c", 1, Some(Duration::from_secs(3)))
        .await
        .expect("nak");
    engine.advance(Duration::from_secs(2)).await;
    assert!(fetch(&*bus, "c", 5).await.is_empty());
    bus.in_progress(STREAM, "c", 2).await.expect("in progress");
    engine.advance(Duration::from_secs(1)).await;
    assert_eq!(fetch(&*bus, "c", 5).await, vec![(1, 2)]);
    engine.advance(Duration::from_secs(8)).await;
    assert!(
        fetch(&*bus, "c", 5).await.iter().all(|(s, _)| *s != 2),
        "in_progress ignored"
    );
    engine.advance(Duration::from_secs(2)).await;
    assert!(fetch(&*bus, "c", 5).await.contains(&(2, 2)));
}

/// No more than `max_ack_pending` deliveries await an ack at once.
pub async fn max_ack_pending_bounds_in_flight(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            max_ack_pending: 3,
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    publish_n(&*engine, 1, 10).await;
    let got = fetch(&*bus, "c", 10).await;
    assert_eq!(got.len(), 3);
    assert!(fetch(&*bus, "c", 10).await.is_empty());
    ack_all(&*bus, "c", &got[..1]).await;
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(4, 1)]);
}

/// all / last / new / by_seq / by_time start where asked (replay).
pub async fn deliver_policies_start_where_asked(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    publish_n(&*engine, 1, 3).await;
    engine.advance(Duration::from_secs(10)).await;
    let t = engine.now();
    publish_n(&*engine, 4, 5).await;
    let cases = [
        (DeliverPolicy::All, 1),
        (DeliverPolicy::Last, 5),
        (DeliverPolicy::BySeq(3), 3),
        (DeliverPolicy::ByTime(t), 4),
    ];
    for (i, (deliver, first)) in cases.into_iter().enumerate() {
        let name = format!("c{i}");
        let cfg = ConsumerConfig {
            deliver,
            ..ConsumerConfig::new(name.clone())
        };
        bus.add_consumer(STREAM, cfg).await.expect("consumer");
        assert_eq!(
            fetch(&*bus, &name, 1).await,
            vec![(first, 1)],
            "{deliver:?}"
        );
    }
    let cfg = ConsumerConfig {
        deliver: DeliverPolicy::New,
        ..ConsumerConfig::new("new")
    };
    bus.add_consumer(STREAM, cfg).await.expect("consumer");
    assert!(fetch(&*bus, "new", 1).await.is_empty());
    publish_n(&*engine, 6, 6).await;
    assert_eq!(fetch(&*bus, "new", 5).await, vec![(6, 1)]);
}

/// With `ordering: per_key`, one message per key is in flight and a key's messages come in
/// stream order even when the first is redelivered; other keys keep moving.
pub async fn per_key_order_holds_under_redelivery(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            ordering: Ordering::PerKey,
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    for (i, key) in ["a", "a", "b", "a", "b"].iter().enumerate() {
        let e = build(env(&*engine, &format!("m{i}")).partition_key(*key));
        bus.publish(e).await.expect("published");
    }
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(1, 1), (3, 1)]);
    bus.nak(STREAM, "c", 1, None).await.expect("nak");
    bus.ack(STREAM, "c", 3).await.expect("ack");
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(1, 2), (5, 1)]);
    engine.advance(Duration::from_secs(31)).await;
    assert_eq!(
        fetch(&*bus, "c", 10).await,
        vec![(1, 3), (5, 2)],
        "timeouts keep the order"
    );
    bus.ack(STREAM, "c", 1).await.expect("ack");
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(2, 1)]);
    bus.ack(STREAM, "c", 2).await.expect("ack");
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(4, 1)]);
}

/// `ordering: strict` hands out one message at a time in stream order.
pub async fn strict_order_is_one_at_a_time(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            ordering: Ordering::Strict,
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    let e = build(env(&*engine, "low").priority(Priority::P3));
    bus.publish(e).await.expect("published");
    let e = build(env(&*engine, "high").priority(Priority::P0));
    bus.publish(e).await.expect("published");
    for seq in 1..=2 {
        assert_eq!(fetch(&*bus, "c", 10).await, vec![(seq, 1)]);
        bus.ack(STREAM, "c", seq).await.expect("ack");
    }
}

/// A P0 message published behind 10,000 P3 messages is delivered among the first few.
pub async fn p0_overtakes_p3_backlog(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            max_ack_pending: 100,
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    let backlog: Vec<_> = (0..10_000)
        .map(|i| build(env(&*engine, &format!("low{i}")).priority(Priority::P3)))
        .collect();
    let publishes = backlog.into_iter().map(|e| bus.publish(e));
    for r in futures::future::join_all(publishes).await {
        r.expect("published");
    }
    let urgent = build(env(&*engine, "urgent").priority(Priority::P0));
    let seq = bus
        .publish(urgent)
        .await
        .expect("published")
        .seq
        .expect("stored");
    let first: Vec<u64> = fetch(&*bus, "c", 3)
        .await
        .into_iter()
        .map(|(s, _)| s)
        .collect();
    assert!(
        first.contains(&seq),
        "P0 seq {seq} not among the first three: {first:?}"
    );
}

/// With P0 and P3 backlogs, P3 still gets turns.
pub async fn p3_is_never_starved(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            max_ack_pending: 10_000,
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    for (p, n) in [(Priority::P3, 50), (Priority::P0, 200)] {
        for i in 0..n {
            bus.publish(build(
                env(&*engine, &format!("{}-{i}", p.as_str())).priority(p),
            ))
            .await
            .expect("published");
        }
    }
    let got = fetch(&*bus, "c", 90).await;
    let p3 = got.iter().filter(|(s, _)| *s <= 50).count();
    assert!(p3 >= 5, "P3 got {p3} of 90 turns");
}

/// A message whose TTL passed is never delivered, and counted.
pub async fn expired_is_counted_never_delivered(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    bus.add_consumer(STREAM, ConsumerConfig::new("c"))
        .await
        .expect("consumer");
    bus.publish(build(env(&*engine, "short").ttl(Duration::from_secs(5))))
        .await
        .expect("published");
    publish_n(&*engine, 2, 2).await;
    engine.advance(Duration::from_secs(6)).await;
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(2, 1)]);
    let info = bus.consumer_info(STREAM, "c").await.expect("info");
    assert_eq!(info.counters.expired, 1);
}

/// A message with `not_before` reaches no consumer before that time, even across a restart.
pub async fn not_before_holds_across_restart(factory: &Factory) {
    let mut engine = setup(factory, orders()).await;
    engine
        .bus()
        .add_consumer(STREAM, ConsumerConfig::new("c"))
        .await
        .expect("consumer");
    let at = engine.now() + chrono::Duration::seconds(60);
    let e = build(env(&*engine, "later").not_before(at));
    engine.bus().publish(e).await.expect("published");
    assert!(fetch(&*engine.bus(), "c", 1).await.is_empty());
    engine.restart().await;
    engine.advance(Duration::from_secs(59)).await;
    assert!(fetch(&*engine.bus(), "c", 1).await.is_empty());
    engine.advance(Duration::from_secs(1)).await;
    assert_eq!(fetch(&*engine.bus(), "c", 1).await, vec![(1, 1)]);
}

/// `ack: none` counts a delivery as acked when handed out.
pub async fn ack_none_needs_no_ack(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            ack: AckPolicy::None,
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    publish_n(&*engine, 1, 3).await;
    assert_eq!(fetch(&*bus, "c", 10).await.len(), 3);
    engine.advance(Duration::from_secs(60)).await;
    assert!(fetch(&*bus, "c", 10).await.is_empty());
    assert_eq!(
        bus.consumer_info(STREAM, "c")
            .await
            .expect("info")
            .ack_floor,
        3
    );
}

/// A live subscriber that does not read is cut off, not allowed to grow memory.
pub async fn slow_live_subscriber_is_cut_off(factory: &Factory) {
    let engine = factory().await;
    let bus = engine.bus();
    let mut slow = bus
        .subscribe("ace.comms.test.>", None)
        .await
        .expect("subscribed");
    let sent = 20_000;
    publish_n(&*engine, 1, sent).await;
    let mut got = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(1), slow.next()).await {
        got += 1;
    }
    assert!(
        got < sent,
        "a subscriber that never read still holds all {sent} messages"
    );
}

/// Missing streams and consumers are reported by name.
pub async fn errors_name_what_is_missing(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    let err = bus.stream_info("nope").await.expect_err("missing");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = bus
        .fetch(STREAM, "ghost", 1, NONE)
        .await
        .expect_err("missing");
    assert!(matches!(err, BusError::ConsumerNotFound { .. }) && err.to_string().contains("ghost"));
    let err = bus.ack(STREAM, "ghost", 1).await.expect_err("missing");
    assert!(matches!(err, BusError::ConsumerNotFound { .. }));
}

/// Polls `check` for up to five seconds (for effects an engine may apply in the background).
async fn eventually<F, Fut>(check: F)
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
