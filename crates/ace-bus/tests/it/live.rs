//! The live hub as a user sees it: queue groups deliver each message to exactly one member, a
//! slow subscriber is cut off and counted while the others keep receiving, a receive filter
//! withholds what it refuses (in a queue group another member that accepts gets it),
//! request/reply answers, times out or finds no responders, and a dropped subscription stops
//! receiving.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ace_bus::live::reply_subject;
use ace_bus::{Accept, BusError, CloseReason, LiveConfig, LiveHub, Subscription};
use ace_envelope::{Envelope, Kind, ManualClock};
use serde_json::json;

fn hub_with_buffer(subscriber_buffer: usize) -> LiveHub {
    LiveHub::new(LiveConfig {
        subscriber_buffer,
        ..LiveConfig::default()
    })
}

fn message(kind: Kind, subject: &str, n: u64) -> Envelope {
    Envelope::builder(kind, subject)
        .payload_json(json!({ "n": n }))
        .build()
        .expect("valid envelope")
}

fn event(subject: &str, n: u64) -> Arc<Envelope> {
    Arc::new(message(Kind::Event, subject, n))
}

/// Everything buffered in `sub` right now.
fn drain(sub: &mut Subscription) -> Vec<Arc<Envelope>> {
    std::iter::from_fn(|| sub.try_next()).collect()
}

const TASKS: &str = "ace.comms.internal.service.planner.cmd.plan.v1";

#[test]
fn given_a_queue_group_when_publishing_then_each_message_reaches_exactly_one_member() {
    let hub = hub_with_buffer(1_000);
    let mut members: Vec<_> = (0..3)
        .map(|_| {
            hub.subscribe("ace.comms.internal.service.*.cmd.>", Some("planners"))
                .expect("subscribe")
        })
        .collect();
    let mut tap = hub.subscribe("ace.comms.>", None).expect("subscribe");
    for n in 0..300 {
        assert_eq!(
            hub.publish(event(TASKS, n)),
            2,
            "one group member plus the tap"
        );
    }
    let received: Vec<Vec<_>> = members.iter_mut().map(drain).collect();
    let ids: HashSet<_> = received.iter().flatten().map(|m| m.id).collect();
    assert_eq!(
        received.iter().map(Vec::len).sum::<usize>(),
        300,
        "no message twice"
    );
    assert_eq!(ids.len(), 300, "every message once");
    assert!(
        received.iter().all(|r| !r.is_empty()),
        "work is spread over the members"
    );
    assert_eq!(drain(&mut tap).len(), 300);
}

#[test]
fn given_two_queue_groups_on_one_subject_when_publishing_then_each_group_gets_one_copy() {
    let hub = hub_with_buffer(16);
    let mut a: Vec<_> = (0..2)
        .map(|_| hub.subscribe(TASKS, Some("a")).expect("subscribe"))
        .collect();
    let mut b: Vec<_> = (0..2)
        .map(|_| hub.subscribe(TASKS, Some("b")).expect("subscribe"))
        .collect();
    assert_eq!(hub.publish(event(TASKS, 1)), 2);
    assert_eq!(a.iter_mut().map(|s| drain(s).len()).sum::<usize>(), 1);
    assert_eq!(b.iter_mut().map(|s| drain(s).len()).sum::<usize>(), 1);
}

#[tokio::test]
async fn given_a_slow_subscriber_when_its_buffer_fills_then_it_is_cut_off_and_counted_while_others_keep_receiving()
 {
    let hub = hub_with_buffer(4);
    let mut slow = hub.subscribe(TASKS, None).expect("subscribe");
    let mut fast = hub.subscribe(TASKS, None).expect("subscribe");
    let mut fast_got = 0;
    for n in 0..10 {
        hub.publish(event(TASKS, n));
        fast_got += drain(&mut fast).len();
    }
    assert_eq!(fast_got, 10, "the fast subscriber misses nothing");
    let stats = hub.stats();
    assert_eq!(stats.slow_consumer_cutoffs, 1);
    assert_eq!(stats.subscriptions, 1, "the slow subscription left the hub");
    assert_eq!(slow.close_reason(), Some(CloseReason::SlowConsumer));
    for n in 0..4 {
        let kept = slow
            .next()
            .await
            .expect("what was buffered before the cutoff is still readable");
        assert_eq!(kept.payload, Some(json!({ "n": n })));
    }
    assert!(slow.next().await.is_none(), "then the subscription ends");
    assert_eq!(fast.close_reason(), None);
}

#[test]
fn given_a_queue_group_of_full_members_when_publishing_then_full_members_are_cut_off_and_others_tried()
 {
    let hub = hub_with_buffer(1);
    let mut members: Vec<_> = (0..2)
        .map(|_| hub.subscribe(TASKS, Some("q")).expect("subscribe"))
        .collect();
    let delivered: Vec<_> = (0..3).map(|n| hub.publish(event(TASKS, n))).collect();
    assert_eq!(
        delivered,
        [1, 1, 0],
        "a full member passes the message on; with all full it is lost"
    );
    assert_eq!(hub.stats().slow_consumer_cutoffs, 2);
    assert_eq!(members.iter_mut().map(|m| drain(m).len()).sum::<usize>(), 2);
    assert!(
        members
            .iter()
            .all(|m| m.close_reason() == Some(CloseReason::SlowConsumer))
    );
}

/// An `Accept` that takes only messages whose payload `n` is even.
fn even_only() -> Accept {
    Arc::new(|m: &Envelope| {
        m.payload
            .as_ref()
            .and_then(|p| p["n"].as_u64())
            .is_some_and(|n| n % 2 == 0)
    })
}

#[test]
fn given_a_queue_group_member_that_refuses_when_publishing_then_another_member_gets_every_message()
{
    let hub = hub_with_buffer(1_000);
    let mut evens = hub
        .subscribe_filtered(TASKS, Some("q"), Some(even_only()))
        .expect("subscribe");
    let mut all = hub.subscribe(TASKS, Some("q")).expect("subscribe");
    for n in 0..200 {
        assert_eq!(
            hub.publish(event(TASKS, n)),
            1,
            "message {n} reached the group"
        );
    }
    let odd = |m: &Arc<Envelope>| {
        m.payload
            .as_ref()
            .is_some_and(|p| p["n"].as_u64().is_some_and(|n| n % 2 == 1))
    };
    let (evens, all) = (drain(&mut evens), drain(&mut all));
    assert_eq!(evens.len() + all.len(), 200, "none lost, none twice");
    assert!(
        !evens.iter().any(odd),
        "the refusing member got no odd message"
    );
    assert_eq!(
        all.iter().filter(|m| odd(m)).count(),
        100,
        "every odd one went to the other member"
    );
    assert_eq!(
        hub.stats().refused,
        0,
        "a skipped member is not a refusal: the group got it"
    );
}

#[test]
fn given_a_queue_group_whose_members_all_refuse_when_publishing_then_it_is_withheld_and_counted_once()
 {
    let hub = hub_with_buffer(16);
    let mut members: Vec<_> = (0..3)
        .map(|_| {
            hub.subscribe_filtered(TASKS, Some("q"), Some(even_only()))
                .expect("subscribe")
        })
        .collect();
    let mut tap = hub.subscribe(TASKS, None).expect("subscribe");
    assert_eq!(hub.publish(event(TASKS, 1)), 1, "only the unfiltered tap");
    assert_eq!(members.iter_mut().map(|m| drain(m).len()).sum::<usize>(), 0);
    assert_eq!(drain(&mut tap).len(), 1);
    let stats = hub.stats();
    assert_eq!(
        (stats.refused, stats.delivered, stats.no_interest),
        (1, 1, 0)
    );
}

#[test]
fn given_a_plain_subscriber_that_refuses_when_publishing_then_it_gets_nothing_and_it_is_counted() {
    let hub = hub_with_buffer(16);
    let mut evens = hub
        .subscribe_filtered(TASKS, None, Some(even_only()))
        .expect("subscribe");
    assert_eq!(hub.publish(event(TASKS, 1)), 0);
    assert_eq!(hub.publish(event(TASKS, 2)), 1);
    let got: Vec<_> = drain(&mut evens)
        .iter()
        .map(|m| m.payload.clone())
        .collect();
    assert_eq!(got, [Some(json!({ "n": 2 }))]);
    let stats = hub.stats();
    assert_eq!(
        (stats.refused, stats.delivered, stats.no_interest),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn given_a_responder_that_refuses_the_request_when_requesting_then_no_responders_is_answered()
{
    let hub = LiveHub::default();
    let _evens = hub
        .subscribe_filtered(DOUBLE, None, Some(even_only()))
        .expect("subscribe");
    let error = hub
        .request(message(Kind::Query, DOUBLE, 1), Duration::from_secs(30))
        .await
        .expect_err("nobody accepts it");
    assert!(matches!(error, BusError::NoResponders { .. }), "{error:?}");
}

/// Answers every request on `subject` with its payload doubled, until the hub closes.
fn spawn_doubler(hub: &Arc<LiveHub>, subject: &str) {
    let mut requests = hub.subscribe(subject, Some("doublers")).expect("subscribe");
    let hub = Arc::clone(hub);
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let n = request
                .payload
                .as_ref()
                .and_then(|p| p["n"].as_u64())
                .unwrap_or_default();
            let to = reply_subject(&request)
                .expect("a request carries its reply subject")
                .to_owned();
            let reply = request
                .reply_builder(to)
                .payload_json(json!({ "n": n * 2 }))
                .build()
                .expect("valid reply");
            hub.publish(Arc::new(reply));
        }
    });
}

const DOUBLE: &str = "ace.comms.internal.service.math.qry.double.v1";

#[tokio::test]
async fn given_a_responder_when_requesting_then_its_reply_comes_back_correlated() {
    let hub = Arc::new(LiveHub::default());
    spawn_doubler(&hub, DOUBLE);
    let request = message(Kind::Query, DOUBLE, 21);
    let request_id = request.id.to_string();
    let reply = hub
        .request(request, Duration::from_secs(5))
        .await
        .expect("a reply");
    assert_eq!(reply.kind, Kind::Reply);
    assert_eq!(reply.payload, Some(json!({ "n": 42 })));
    assert_eq!(reply.correlation_id.as_deref(), Some(request_id.as_str()));
}

#[tokio::test]
async fn given_many_concurrent_requests_when_answered_then_each_gets_its_own_reply() {
    let hub = Arc::new(LiveHub::default());
    spawn_doubler(&hub, DOUBLE);
    let requests = (0..50).map(|n| {
        let hub = Arc::clone(&hub);
        tokio::spawn(async move {
            hub.request(message(Kind::Query, DOUBLE, n), Duration::from_secs(5))
                .await
        })
    });
    for (n, request) in requests.enumerate() {
        let reply = request.await.expect("task").expect("a reply");
        assert_eq!(reply.payload, Some(json!({ "n": n * 2 })));
    }
}

#[tokio::test]
async fn given_a_silent_subscriber_when_requesting_then_the_request_times_out() {
    let hub = LiveHub::default();
    let _silent = hub.subscribe(DOUBLE, None).expect("subscribe");
    let error = hub
        .request(message(Kind::Query, DOUBLE, 1), Duration::from_millis(50))
        .await
        .expect_err("no reply");
    assert!(
        matches!(&error, BusError::Timeout { subject, after } if subject == DOUBLE && *after == Duration::from_millis(50)),
        "{error:?}"
    );
}

#[tokio::test]
async fn given_no_subscriber_when_requesting_then_no_responders_is_answered_at_once() {
    let hub = LiveHub::default();
    let started = std::time::Instant::now();
    let error = hub
        .request(message(Kind::Query, DOUBLE, 1), Duration::from_secs(30))
        .await
        .expect_err("nobody");
    assert!(
        matches!(&error, BusError::NoResponders { subject } if subject == DOUBLE),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "without waiting for the timeout"
    );
}

#[test]
fn given_a_dropped_subscription_when_publishing_then_nobody_receives_and_no_interest_is_counted() {
    let hub = LiveHub::default();
    let sub = hub.subscribe(TASKS, None).expect("subscribe");
    assert_eq!(hub.stats().subscriptions, 1);
    drop(sub);
    assert_eq!(hub.stats().subscriptions, 0);
    assert_eq!(hub.publish(event(TASKS, 1)), 0);
    let stats = hub.stats();
    assert_eq!(
        (stats.published, stats.delivered, stats.no_interest),
        (1, 0, 1)
    );
}

#[test]
fn given_the_subscription_limit_when_subscribing_once_more_then_it_is_refused() {
    let hub = LiveHub::new(LiveConfig {
        max_subscriptions: 2,
        ..LiveConfig::default()
    });
    let _kept: Vec<_> = (0..2)
        .map(|_| hub.subscribe(TASKS, None).expect("subscribe"))
        .collect();
    let error = hub.subscribe(TASKS, None).expect_err("over the limit");
    assert!(
        matches!(error, BusError::TooManySubscriptions { max: 2 }),
        "{error:?}"
    );
}

#[test]
fn given_a_bad_pattern_when_subscribing_then_invalid_subject_names_it() {
    let hub = LiveHub::default();
    let error = hub.subscribe("ace.>.x", None).expect_err("`>` only last");
    assert!(
        matches!(&error, BusError::InvalidSubject { subject, .. } if subject == "ace.>.x"),
        "{error:?}"
    );
}

#[test]
fn given_a_message_past_its_ttl_when_publishing_then_it_is_not_delivered_and_counted_expired() {
    let clock = Arc::new(ManualClock::fixed());
    let hub = LiveHub::with_clock(LiveConfig::default(), clock.clone());
    let mut sub = hub.subscribe(TASKS, None).expect("subscribe");
    let with_ttl = |n: u64| {
        let msg = Envelope::builder(Kind::Event, TASKS)
            .clock(&*clock)
            .ttl(Duration::from_secs(1));
        Arc::new(
            msg.payload_json(json!({ "n": n }))
                .build()
                .expect("valid envelope"),
        )
    };
    assert_eq!(hub.publish(with_ttl(1)), 1, "fresh: delivered");
    let stale = with_ttl(2);
    clock.advance(Duration::from_secs(2));
    assert_eq!(hub.publish(stale), 0, "expired: not delivered");
    assert_eq!(drain(&mut sub).len(), 1);
    let stats = hub.stats();
    assert_eq!((stats.expired, stats.delivered), (1, 1));
}

#[test]
fn given_a_blank_queue_group_when_subscribing_then_the_queue_field_is_named() {
    let hub = LiveHub::default();
    let error = hub
        .subscribe(TASKS, Some(" "))
        .expect_err("blank queue name");
    assert!(
        matches!(&error, BusError::InvalidConfig { field, .. } if field == "queue"),
        "{error:?}"
    );
}

#[tokio::test]
async fn given_a_dropped_hub_when_reading_then_the_subscription_ends_with_hub_closed() {
    let hub = LiveHub::default();
    let mut sub = hub.subscribe(TASKS, None).expect("subscribe");
    hub.publish(event(TASKS, 7));
    drop(hub);
    assert!(
        sub.next().await.is_some(),
        "buffered messages survive the hub"
    );
    assert!(sub.next().await.is_none());
    assert_eq!(sub.close_reason(), Some(CloseReason::HubClosed));
}

#[test]
fn given_concurrent_publishers_and_churning_subscriptions_when_done_then_nothing_is_lost_or_left() {
    let hub = LiveHub::new(LiveConfig {
        subscriber_buffer: 50_000,
        ..LiveConfig::default()
    });
    let mut steady = hub
        .subscribe("ace.comms.internal.>", None)
        .expect("subscribe");
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                for n in 0..10_000 {
                    assert!(
                        hub.publish(event(TASKS, n)) >= 1,
                        "the steady subscriber always matches"
                    );
                }
            });
        }
        scope.spawn(|| {
            for _ in 0..2_000 {
                let pattern = "ace.comms.internal.service.*.cmd.>";
                drop(hub.subscribe(pattern, Some("churn")).expect("subscribe"));
            }
        });
    });
    assert_eq!(drain(&mut steady).len(), 20_000);
    let stats = hub.stats();
    assert_eq!((stats.subscriptions, stats.slow_consumer_cutoffs), (1, 0));
    assert!(stats.delivered >= 20_000);
}

#[tokio::test]
async fn given_a_message_not_due_yet_when_published_live_then_it_is_offered_only_when_due() {
    let hub = hub_with_buffer(16);
    let mut sub = hub.subscribe(TASKS, None).expect("subscribe");
    let mut later = message(Kind::Event, TASKS, 1);
    later.not_before = Some(chrono::Utc::now() + chrono::Duration::milliseconds(300));
    let now = event(TASKS, 2);
    assert_eq!(
        hub.publish(Arc::new(later.clone())),
        0,
        "held, not offered yet"
    );
    assert_eq!(hub.publish(now.clone()), 1);
    assert_eq!(
        sub.next().await.map(|m| m.id),
        Some(now.id),
        "the due one first"
    );
    assert!(sub.try_next().is_none(), "the other is not due");
    let due = tokio::time::timeout(Duration::from_secs(5), sub.next()).await;
    let got = due.expect("offered once due").expect("a message");
    assert_eq!(got.id, later.id);
    assert!(chrono::Utc::now() >= later.not_before.unwrap());
    assert_eq!(hub.stats().deferred, 1);
}

#[tokio::test]
async fn given_the_deferred_byte_bound_when_more_waits_then_it_is_dropped_and_counted() {
    let hub = LiveHub::new(LiveConfig {
        deferred_bytes: 1,
        ..LiveConfig::default()
    });
    let mut sub = hub.subscribe(TASKS, None).expect("subscribe");
    let mut later = message(Kind::Event, TASKS, 1);
    later.not_before = Some(chrono::Utc::now() + chrono::Duration::milliseconds(50));
    assert_eq!(hub.publish(Arc::new(later)), 0);
    let stats = hub.stats();
    assert_eq!((stats.deferred, stats.deferred_dropped), (0, 1));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(sub.try_next().is_none(), "dropped, never offered");
}
