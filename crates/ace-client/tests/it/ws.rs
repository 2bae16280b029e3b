//! `WsConnection` against the real server's `/ws`: live and queue-group subscriptions, consumer
//! push with ack and nak, publish, request/reply, and how refusals and closes surface (404 and
//! 400 error frames, 1009 too big, 4008 slow consumer, 1001 shutdown).

use std::time::Duration;

use ace_client::{ClientError, ConsumerConfig, StreamConfig, Subscription, WsMessage, close};
use ace_envelope::{Envelope, ErrorCode, Kind};

use crate::{EVENT_SUBJECT, Server, event};

/// The next message of `sub`, failing the test after 5 s.
pub(crate) async fn next(sub: &mut Subscription) -> WsMessage {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("a message within 5 s")
        .expect("the subscription is open")
        .expect("a message, not an error")
}

/// Reads `sub` until it ends with an error; that error.
async fn closing_error(sub: &mut Subscription) -> ClientError {
    let wait = async {
        loop {
            match sub.next().await {
                Some(Ok(_)) => {}
                Some(Err(err)) => return err,
                None => panic!("the subscription ended without saying why"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("the connection closes within 20 s")
}

#[tokio::test]
async fn given_a_live_subscription_when_a_matching_envelope_is_published_then_it_arrives() {
    let server = Server::start().await;
    let ws = server.client.connect_ws().await.expect("connected");
    let mut sub = ws
        .subscribe("ace.comms.http.>", None)
        .await
        .expect("subscribed");
    let env = event(EVENT_SUBJECT, 7);
    server
        .client
        .publish(&env)
        .await
        .expect("published over HTTP");
    let got = next(&mut sub).await;
    assert_eq!(got.sid, sub.sid());
    assert_eq!(got.envelope.id, env.id);
    assert_eq!(got.seq, None, "a live message has no stream sequence");
    sub.unsubscribe().await.expect("unsubscribed");
    ws.close().await.expect("closed politely");
    server.stop().await;
}

#[tokio::test]
async fn given_a_publish_frame_when_answered_then_it_is_the_http_publish_answer() {
    let server = Server::start().await;
    let ws = server.client.connect_ws().await.expect("connected");
    let env = event(EVENT_SUBJECT, 1);
    let accepted = ws.publish(&env).await.expect("published");
    assert_eq!(accepted.id, env.id);
    assert_eq!(accepted.stream.as_deref(), Some("ACE_EVENTS"));
    assert!(accepted.seq.is_some());
    server.stop().await;
}

#[tokio::test]
async fn given_a_publish_batch_frame_when_answered_then_each_envelope_has_its_result_in_order() {
    let server = Server::start().await;
    let ws = server.client.connect_ws().await.expect("connected");
    let mut sub = ws
        .subscribe("ace.comms.http.>", None)
        .await
        .expect("subscribed");
    let first = event(EVENT_SUBJECT, 1);
    let mut expired = event(EVENT_SUBJECT, 2);
    expired.created_at -= Duration::from_secs(10);
    expired.ttl_ms = Some(1_000);
    let third = event(EVENT_SUBJECT, 3);
    let batch = [first.clone(), expired, third.clone(), first.clone()];
    let answer = ws.publish_batch(&batch).await.expect("answered");
    assert_eq!(
        (answer.accepted, answer.refused, answer.held),
        (3, 1, 0),
        "{answer:?}"
    );
    let results: Vec<_> = answer.results.iter().map(|item| item.result()).collect();
    let one = results[0].expect("first accepted").expect("stored");
    let three = results[2].expect("third accepted").expect("stored");
    assert_eq!((one.id, three.id), (first.id, third.id));
    assert_eq!(
        three.seq,
        one.seq.map(|seq| seq + 1),
        "one append, in order"
    );
    let refused = results[1].expect_err("the expired one is refused");
    assert_eq!(refused.code, ErrorCode::MessageExpired);
    let again = results[3]
        .expect("a duplicate is accepted")
        .expect("stored");
    assert!(again.duplicate && again.seq == one.seq, "{again:?}");
    for expected in [first.id, third.id] {
        assert_eq!(next(&mut sub).await.envelope.id, expected);
    }
    server.stop().await;
}

#[tokio::test]
async fn given_two_members_of_a_queue_group_when_messages_arrive_then_each_goes_to_one() {
    let server = Server::start().await;
    let ws = server.client.connect_ws().await.expect("connected");
    let mut a = ws
        .subscribe("ace.comms.http.>", Some("workers"))
        .await
        .expect("a");
    let mut b = ws
        .subscribe("ace.comms.http.>", Some("workers"))
        .await
        .expect("b");
    let mut c = ws.subscribe("ace.comms.http.>", None).await.expect("c");
    for n in 0..10 {
        ws.publish(&event(EVENT_SUBJECT, n))
            .await
            .expect("published");
    }
    for _ in 0..10 {
        next(&mut c).await;
    }
    let mut group = 0;
    for sub in [&mut a, &mut b] {
        while let Ok(Some(Ok(_))) =
            tokio::time::timeout(Duration::from_millis(300), sub.next()).await
        {
            group += 1;
        }
    }
    assert_eq!(group, 10, "the group saw each message exactly once");
    server.stop().await;
}

#[tokio::test]
async fn given_a_consumer_subscription_when_nak_then_redelivered_and_ack_ends_it() {
    let server = Server::start().await;
    let client = &server.client;
    client
        .add_stream(&StreamConfig::new("ORDERS", &["ace.comms.shop.>"]))
        .await
        .expect("stream");
    client
        .add_consumer("ORDERS", &ConsumerConfig::new("worker"))
        .await
        .expect("consumer");
    let ws = client.connect_ws().await.expect("connected");
    let mut sub = ws.consume("ORDERS", "worker").await.expect("consuming");
    ws.publish(&event("ace.comms.shop.service.order.evt.v1", 1))
        .await
        .expect("published");
    let first = next(&mut sub).await;
    assert_eq!(
        (first.stream.as_deref(), first.seq, first.delivery),
        (Some("ORDERS"), Some(1), Some(1))
    );
    sub.nak(1, Some(Duration::from_millis(50)))
        .await
        .expect("nak'ed");
    let again = next(&mut sub).await;
    assert_eq!((again.seq, again.delivery), (Some(1), Some(2)));
    sub.ack(1).await.expect("acked");
    let info = client
        .consumer_info("ORDERS", "worker")
        .await
        .expect("info");
    assert_eq!((info.counters.acked, info.ack_pending), (1, 0));
    server.stop().await;
}

#[tokio::test]
async fn given_a_responder_when_a_request_is_sent_then_its_reply_comes_back() {
    let server = Server::start().await;
    let responder = server.client.connect_ws().await.expect("responder");
    let mut calls = responder
        .subscribe("ace.comms.ws.service.calc.>", None)
        .await
        .expect("listening");
    let answering = tokio::spawn(async move {
        let call = next(&mut calls).await.envelope;
        let inbox = call
            .headers
            .get("reply_to")
            .expect("a reply subject")
            .clone();
        let reply = Envelope::builder(Kind::Reply, inbox)
            .correlation_id(call.correlation_id.clone().expect("a correlation id"))
            .payload_json(serde_json::json!({ "sum": 3 }))
            .build()
            .expect("a valid reply");
        responder.publish(&reply).await.expect("replied");
        responder
    });
    let asker = server.client.connect_ws().await.expect("asker");
    let question = Envelope::builder(Kind::Query, "ace.comms.ws.service.calc.qry.v1")
        .payload_json(serde_json::json!({ "add": [1, 2] }))
        .build()
        .expect("valid");
    let reply = asker
        .request(question.clone(), Duration::from_secs(5))
        .await
        .expect("answered");
    assert_eq!(reply.payload, Some(serde_json::json!({ "sum": 3 })));
    assert_eq!(reply.correlation_id, Some(question.id.to_string()));
    drop(answering.await.expect("the responder ran"));
    server.stop().await;
}

#[tokio::test]
async fn given_nobody_answers_when_a_request_is_sent_then_it_times_out() {
    let server = Server::start().await;
    let ws = server.client.connect_ws().await.expect("connected");
    let question = Envelope::builder(Kind::Query, "ace.comms.ws.service.void.qry.v1")
        .payload_json(serde_json::json!({}))
        .build()
        .expect("valid");
    let err = ws
        .request(question, Duration::from_millis(200))
        .await
        .expect_err("no reply");
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    server.stop().await;
}

#[tokio::test]
async fn given_an_unknown_consumer_or_a_bad_envelope_then_the_error_frame_is_an_api_error() {
    let server = Server::start().await;
    let ws = server.client.connect_ws().await.expect("connected");
    let err = ws.consume("NOPE", "worker").await.expect_err("unknown");
    assert_eq!(err.code(), Some(ErrorCode::StreamNotFound), "{err}");
    assert_eq!(err.status(), Some(404));
    let bad = Envelope {
        subject: "ace.comms..bad".into(),
        ..event(EVENT_SUBJECT, 1)
    };
    let err = ws.publish(&bad).await.expect_err("refused");
    assert_eq!(err.status(), Some(400), "{err}");
    // an error frame leaves the connection open
    ws.publish(&event(EVENT_SUBJECT, 2))
        .await
        .expect("still usable");
    server.stop().await;
}

#[tokio::test]
async fn given_a_frame_over_the_limit_when_sent_then_the_connection_closes_with_1009() {
    let server = Server::start_with(|c| {
        c.limits.ws.max_message_bytes = 16 * 1024;
        c.limits.ws.max_frame_bytes = 16 * 1024;
    })
    .await;
    let ws = server.client.connect_ws().await.expect("connected");
    let big = Envelope::builder(Kind::Event, EVENT_SUBJECT)
        .payload_json(serde_json::json!({ "blob": "x".repeat(64 * 1024) }))
        .build()
        .expect("valid");
    let err = ws.publish(&big).await.expect_err("too big");
    assert_eq!(err.close_code(), Some(close::TOO_BIG), "{err}");
    assert_eq!(ws.close_status().map(|s| s.0), Some(close::TOO_BIG));
    server.stop().await;
}

#[tokio::test]
async fn given_a_client_that_does_not_read_when_a_burst_arrives_then_it_is_closed_as_slow() {
    let server = Server::start_with(|c| c.limits.ws.queue = 2).await;
    let ws = server.client.connect_ws().await.expect("connected");
    let mut sub = ws.subscribe("ace.comms.http.>", None).await.expect("sub");
    let burst: Vec<Envelope> = (0..200).map(|n| event(EVENT_SUBJECT, n)).collect();
    server
        .client
        .publish_batch(&burst)
        .await
        .expect("published");
    let err = closing_error(&mut sub).await;
    assert!(err.is_slow_consumer(), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_server_shutting_down_when_subscribed_then_the_subscription_ends_with_1001() {
    let server = Server::start().await;
    let ws = server.client.connect_ws().await.expect("connected");
    let mut sub = ws.subscribe("ace.comms.>", None).await.expect("sub");
    let stopping = tokio::spawn(server.stop());
    let err = closing_error(&mut sub).await;
    assert_eq!(err.close_code(), Some(close::GOING_AWAY), "{err}");
    stopping.await.expect("stopped");
}
