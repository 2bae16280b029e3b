//! Kit tests of consumers: state across restarts, ack_wait and backoff redelivery, dead
//! letters (max_deliver and term), nak/in_progress, max_ack_pending, deliver policies, per-key and
//! strict ordering, priority lanes, TTL expiry, `not_before` and `ack: none`.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Envelope, Label, Priority};

use super::*;
use crate::bus::{Accept, AckPolicy, Backoff, Bus, ConsumerConfig, DeliverPolicy, Ordering};
use crate::error::BusError;

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
    assert_eq!(
        dead.subject,
        "ace.comms.system.dlq.orders.evt.dead_letter.v1"
    );
    assert_eq!(dead.schema.as_deref(), Some("comms.dlq.dead_letter@1.1.0"));
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
    assert_eq!(p["reason"].as_str(), Some("max_deliver"));
    assert!(
        p["detail"]
            .as_str()
            .expect("detail")
            .starts_with("max_deliver 3 reached")
    );
    let original_id = dead
        .causation_id
        .as_deref()
        .expect("caused by the original");
    assert_eq!(p["message_id"].as_str(), Some(original_id));
    assert_eq!(p["subject"].as_str(), Some(subject("m1").as_str()));
    assert_eq!(
        p["original"]["subject"].as_str(),
        Some(subject("m1").as_str())
    );
    let info = bus.consumer_info(STREAM, "c").await.expect("info");
    assert_eq!((info.counters.dead_lettered, info.ack_floor), (1, 1));
}

/// An over-delivered message moves to the dead-letter subject even when its consumer never
/// fetches again (the engine does it in the background).
pub async fn dead_letter_without_another_fetch(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            ack_wait: Duration::from_secs(1),
            max_deliver: Some(1),
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    bus.add_stream(dlq_stream()).await.expect("dlq stream");
    bus.add_consumer("dlq", ConsumerConfig::new("inspect"))
        .await
        .expect("dlq consumer");
    publish_n(&*engine, 1, 1).await;
    assert_eq!(fetch(&*bus, "c", 1).await, vec![(1, 1)]);
    engine.advance(Duration::from_secs(2)).await;
    let dead = bus
        .fetch("dlq", "inspect", 1, Duration::from_secs(10))
        .await
        .expect("dlq fetch");
    let dead = &dead
        .first()
        .expect("a dead letter without a fetch on `c`")
        .envelope;
    assert_eq!(
        dead.headers.get("ace-dlq-seq").map(String::as_str),
        Some("1")
    );
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
        Some("term")
    );
    let p = dead.payload.as_ref().expect("payload");
    assert_eq!(
        (p["reason"].as_str(), p["detail"].as_str()),
        (Some("term"), Some("poison: bad total"))
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

/// A fetch filter that refuses every message labelled `secret` (a member without clearance).
fn uncleared() -> Accept {
    Arc::new(|envelope: &Envelope| envelope.governance.label != Label::Secret)
}

/// `fetch_filtered` with `accept`, as `(seq, delivery_count)`.
async fn fetch_as(bus: &dyn Bus, consumer: &str, batch: usize, accept: &Accept) -> Vec<(u64, u32)> {
    let delivered = bus
        .fetch_filtered(STREAM, consumer, batch, NONE, Some(accept.clone()))
        .await
        .expect("fetch");
    super::places(delivered)
}

/// A message a fetcher's filter refuses is not a delivery: however often a member that may not
/// receive it fetches (new or due for redelivery), it is neither handed out nor counted toward
/// `max_deliver`, so it never reaches the dead letters on that member's account; the next
/// member that accepts it gets it with its true delivery count.
pub async fn fetch_filter_refusal_is_not_a_delivery(factory: &Factory) {
    let (engine, bus) = with_consumer(
        factory,
        ConsumerConfig {
            ack_wait: Duration::from_secs(1),
            max_deliver: Some(2),
            ..ConsumerConfig::new("c")
        },
    )
    .await;
    bus.add_stream(dlq_stream()).await.expect("dlq stream");
    let secret = build(env(&*engine, "s").label(Label::Secret));
    bus.publish(secret).await.expect("published");
    publish_n(&*engine, 2, 2).await;
    let refuses = uncleared();
    assert_eq!(fetch_as(&*bus, "c", 10, &refuses).await, vec![(2, 1)]);
    bus.ack(STREAM, "c", 2).await.expect("ack");
    for _ in 0..5 {
        assert!(fetch_as(&*bus, "c", 10, &refuses).await.is_empty());
        engine.advance(Duration::from_secs(2)).await;
    }
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(1, 1)], "first delivery");
    engine.advance(Duration::from_secs(2)).await;
    for _ in 0..5 {
        assert!(fetch_as(&*bus, "c", 10, &refuses).await.is_empty());
    }
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(1, 2)], "a redelivery");
    bus.ack(STREAM, "c", 1).await.expect("ack");
    let info = bus.consumer_info(STREAM, "c").await.expect("info");
    assert_eq!(
        (
            info.counters.delivered,
            info.counters.redelivered,
            info.counters.dead_lettered
        ),
        (2, 1, 0)
    );
    let dlq = bus.stream_info("dlq").await.expect("dlq info");
    assert_eq!(dlq.messages, 0, "nothing was dead-lettered");
}

/// A refused message keeps its place in the consumer's order: under `per_key` it stays the head
/// of its key (the refusing member gets the key's later messages only after someone took it;
/// other keys flow), under `strict` it blocks the refusing member entirely.
pub async fn fetch_filter_keeps_ordering(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    for (name, ordering) in [("keyed", Ordering::PerKey), ("strict", Ordering::Strict)] {
        let cfg = ConsumerConfig {
            ordering,
            ..ConsumerConfig::new(name)
        };
        bus.add_consumer(STREAM, cfg).await.expect("consumer");
    }
    let head = build(env(&*engine, "a1").partition_key("a").label(Label::Secret));
    bus.publish(head).await.expect("published");
    for (n, key) in [("a2", "a"), ("b1", "b")] {
        let e = build(env(&*engine, n).partition_key(key));
        bus.publish(e).await.expect("published");
    }
    let refuses = uncleared();
    assert_eq!(
        fetch_as(&*bus, "keyed", 10, &refuses).await,
        vec![(3, 1)],
        "key b flows, key a waits behind its refused head"
    );
    assert!(fetch_as(&*bus, "strict", 10, &refuses).await.is_empty());
    for name in ["keyed", "strict"] {
        assert_eq!(fetch(&*bus, name, 10).await, vec![(1, 1)], "{name}");
        bus.ack(STREAM, name, 1).await.expect("ack");
    }
    assert_eq!(fetch_as(&*bus, "keyed", 10, &refuses).await, vec![(2, 1)]);
    assert_eq!(fetch_as(&*bus, "strict", 10, &refuses).await, vec![(2, 1)]);
}

/// A fetch asks its filter about a message once, however long it waits: a refusal is counted
/// once per fetch (the server's receive-denial metric counts fetches, not polls).
pub async fn fetch_filter_is_asked_once_per_message_per_fetch(factory: &Factory) {
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    let (engine, bus) = with_consumer(factory, ConsumerConfig::new("c")).await;
    let secret = build(env(&*engine, "s").label(Label::Secret));
    bus.publish(secret).await.expect("published");
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = asked.clone();
    let accept: Accept = Arc::new(move |envelope: &Envelope| {
        counted.fetch_add(1, AtomicOrdering::SeqCst);
        envelope.governance.label != Label::Secret
    });
    let got = bus
        .fetch_filtered(STREAM, "c", 10, Duration::from_millis(300), Some(accept))
        .await
        .expect("fetch");
    assert!(got.is_empty());
    assert_eq!(asked.load(AtomicOrdering::SeqCst), 1);
    assert_eq!(fetch(&*bus, "c", 10).await, vec![(1, 1)]);
}
