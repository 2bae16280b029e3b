//! Kit tests of streams and core pub/sub: storage and read-back, live delivery, queue groups,
//! receive filters (`subscribe_filtered`), request/reply, dedup (also across restarts), limits,
//! retention policies, stream management, slow-consumer cut-off and error naming.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Envelope, Label, Priority, SourceType};

use super::*;
use crate::bus::{
    Accept, ConsumerConfig, DiscardPolicy, LiveSubscription, RetentionPolicy, StreamConfig,
};
use crate::error::BusError;

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
    let total = received(&mut *a).await.len() + received(&mut *b).await.len();
    assert_eq!(total, 20, "each message goes to exactly one member");
}

/// An `Accept` that refuses every message labelled `secret`.
fn no_secrets() -> Accept {
    Arc::new(|envelope: &Envelope| envelope.governance.label != Label::Secret)
}

/// Publishes `n` messages labelled `secret` on subjects under `orders.`.
async fn publish_secrets(engine: &dyn TestEngine, n: usize) {
    for i in 0..n {
        let e = build(env(engine, &format!("s{i}")).label(Label::Secret));
        engine.bus().publish(e).await.expect("published");
    }
}

/// In a queue group a member whose filter refuses a message is skipped, not handed it: every
/// message reaches the member that accepts it, none is lost to the group.
pub async fn queue_group_skips_a_member_that_refuses(factory: &Factory) {
    let engine = factory().await;
    let bus = engine.bus();
    let pattern = "ace.comms.test.orders.*";
    let mut refusing = bus
        .subscribe_filtered(pattern, Some("workers"), Some(no_secrets()))
        .await
        .expect("refusing member");
    let mut accepting = bus
        .subscribe(pattern, Some("workers"))
        .await
        .expect("accepting member");
    publish_secrets(&*engine, 50).await;
    assert_eq!(received(&mut *accepting).await.len(), 50, "none lost");
    assert!(
        received(&mut *refusing).await.is_empty(),
        "the refusing member got nothing"
    );
}

/// A plain subscriber whose filter refuses a message does not get it; an unfiltered one does.
pub async fn filtered_subscriber_gets_only_what_it_accepts(factory: &Factory) {
    let engine = factory().await;
    let bus = engine.bus();
    let pattern = "ace.comms.test.>";
    let mut filtered = bus
        .subscribe_filtered(pattern, None, Some(no_secrets()))
        .await
        .expect("filtered");
    let mut unfiltered = bus.subscribe(pattern, None).await.expect("unfiltered");
    publish_secrets(&*engine, 20).await;
    publish_n(&*engine, 1, 1).await;
    let got = received(&mut *filtered).await;
    assert_eq!(
        got.iter().map(|m| m.subject.clone()).collect::<Vec<_>>(),
        [subject("m1")],
        "only the message it accepts"
    );
    assert_eq!(received(&mut *unfiltered).await.len(), 21, "all of them");
}

/// Everything `sub` receives until it has been quiet for 200 ms.
async fn received(sub: &mut dyn LiveSubscription) -> Vec<Arc<Envelope>> {
    let mut got = Vec::new();
    while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
        got.push(m);
    }
    got
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

/// The same envelope (same `id`) published again inside the dedup window is a duplicate of the
/// first, also after a restart: a replay never stores it twice.
pub async fn replayed_envelope_is_stored_once(factory: &Factory) {
    let mut engine = setup(factory, orders()).await;
    let sent = build(env(&*engine, "a"));
    let first = engine.bus().publish(sent.clone()).await.expect("first");
    let again = engine.bus().publish(sent.clone()).await.expect("again");
    assert_eq!((first.seq, first.duplicate), (Some(1), false));
    assert_eq!((again.seq, again.duplicate), (Some(1), true));
    let both = engine
        .bus()
        .publish_batch(vec![sent.clone(), sent.clone()])
        .await;
    for answer in both {
        let answer = answer.expect("answered");
        assert_eq!((answer.seq, answer.duplicate), (Some(1), true));
    }
    let info = engine.bus().stream_info(STREAM).await.expect("info");
    assert_eq!((info.messages, info.counters.duplicates), (1, 3));
    engine.restart().await;
    let replay = engine.bus().publish(sent).await.expect("after restart");
    assert_eq!((replay.seq, replay.duplicate), (Some(1), true));
    let info = engine.bus().stream_info(STREAM).await.expect("info");
    assert_eq!(info.messages, 1);
}

/// An idempotency key is scoped by its sender (`source` type and id): the same key from two
/// senders is two messages, from one sender one message — also after a restart.
pub async fn idempotency_key_is_scoped_by_sender(factory: &Factory) {
    let mut engine = setup(factory, orders()).await;
    let from = |engine: &dyn TestEngine, who: &str| {
        build(
            env(engine, "a")
                .source(SourceType::Service, who)
                .idempotency_key("order-1"),
        )
    };
    let alice = engine.bus().publish(from(&*engine, "alice")).await;
    let bob = engine.bus().publish(from(&*engine, "bob")).await;
    let (alice, bob) = (alice.expect("alice"), bob.expect("bob"));
    assert_eq!((alice.seq, alice.duplicate), (Some(1), false));
    assert_eq!(
        (bob.seq, bob.duplicate),
        (Some(2), false),
        "another sender's key must not suppress this one"
    );
    let as_human = build(
        env(&*engine, "a")
            .source(SourceType::Human, "alice")
            .idempotency_key("order-1"),
    );
    let as_human = engine.bus().publish(as_human).await.expect("human alice");
    assert_eq!((as_human.seq, as_human.duplicate), (Some(3), false));
    engine.restart().await;
    let retry = engine.bus().publish(from(&*engine, "bob")).await;
    let retry = retry.expect("bob again");
    assert_eq!((retry.seq, retry.duplicate), (Some(2), true));
    let info = engine.bus().stream_info(STREAM).await.expect("info");
    assert_eq!(info.messages, 3);
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
    let engine = setup(factory, size_limited()).await;
    let big = oversized(&*engine);
    let err = engine.bus().publish(big).await;
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
    let engine = setup(factory, size_limited()).await;
    let big = oversized(&*engine);
    let batch = vec![
        build(env(&*engine, "a").idempotency_key("k")),
        big,
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

/// Publishes racing an `update_stream` are all stored: none fails because the stream was
/// reopened under it.
pub async fn publishes_survive_a_concurrent_update(factory: &Factory) {
    let engine = setup(factory, orders()).await;
    let bus = engine.bus();
    let batch: Vec<Envelope> = (0..2000)
        .map(|i| build(env(&*engine, &format!("m{i}"))))
        .collect();
    let publisher = {
        let bus = bus.clone();
        tokio::spawn(async move {
            let mut answers = Vec::new();
            for part in batch.chunks(50) {
                answers.extend(bus.publish_batch(part.to_vec()).await);
            }
            answers
        })
    };
    for limit in [100_000, 200_000] {
        let cfg = StreamConfig {
            max_msgs: Some(limit),
            ..orders()
        };
        bus.update_stream(cfg).await.expect("updated");
    }
    let answers = publisher.await.expect("publisher ran");
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(ack) if ack.seq.is_some()))
    );
    assert_eq!(bus.stream_info(STREAM).await.expect("info").messages, 2000);
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

/// The `orders` stream with a 600-byte `max_msg_size`.
fn size_limited() -> StreamConfig {
    StreamConfig {
        max_msg_size: Some(600),
        ..orders()
    }
}

/// An envelope over `size_limited`'s limit.
fn oversized(engine: &dyn TestEngine) -> Envelope {
    build(env(engine, "big").payload_json(serde_json::json!({"blob": "x".repeat(1000)})))
}
