//! Every HTTP method of `Client` against the real server, and how refusals and transport
//! failures surface as `ClientError`.

use std::time::Duration;

use ace_client::{
    AckPolicy, BatchItem, Client, ClientError, ConsumerConfig, DeliverPolicy, StreamConfig,
};
use ace_envelope::ErrorCode;

use crate::{EVENT_SUBJECT, Server, event};

pub(crate) const ORDERS: &str = "ace.comms.shop.service.order.evt.v1";

/// A stream `ORDERS` over the shop domain and a consumer `worker` on it.
pub(crate) async fn orders(client: &Client, ack_wait: Duration) {
    client
        .add_stream(&StreamConfig::new("ORDERS", &["ace.comms.shop.>"]))
        .await
        .expect("stream created");
    let consumer = ConsumerConfig {
        ack_wait,
        ..ConsumerConfig::new("worker")
    };
    client
        .add_consumer("ORDERS", &consumer)
        .await
        .expect("consumer created");
}

#[tokio::test]
async fn given_an_envelope_when_published_then_its_stream_seq_and_stored_copy_come_back() {
    let server = Server::start().await;
    let env = event(EVENT_SUBJECT, 1);
    let accepted = server.client.publish(&env).await.expect("published");
    assert_eq!(accepted.id, env.id);
    assert_eq!(accepted.stream.as_deref(), Some("ACE_EVENTS"));
    assert!(!accepted.duplicate);
    let seq = accepted.seq.expect("stored");
    let stored = server
        .client
        .get_message("ACE_EVENTS", seq)
        .await
        .expect("read back");
    assert_eq!(stored.seq, seq);
    assert_eq!(stored.envelope.id, env.id);
    assert_eq!(stored.envelope.payload, env.payload);
    server.stop().await;
}

#[tokio::test]
async fn given_a_batch_with_a_repeat_and_a_bad_subject_when_published_then_each_is_answered_in_place()
 {
    let server = Server::start().await;
    let first = ace_envelope::Envelope {
        idempotency_key: Some("order-1".into()),
        ..event(EVENT_SUBJECT, 1)
    };
    let repeat = ace_envelope::Envelope {
        idempotency_key: Some("order-1".into()),
        ..event(EVENT_SUBJECT, 2)
    };
    let bad = ace_envelope::Envelope {
        subject: "not an ace subject".into(),
        ..event(EVENT_SUBJECT, 3)
    };
    let answer = server
        .client
        .publish_batch(&[first, repeat, bad])
        .await
        .expect("the batch is answered");
    assert_eq!((answer.accepted, answer.refused), (2, 1));
    let seq_of = |item: &BatchItem| item.result().expect("answered").expect("stored").seq;
    assert_eq!(seq_of(&answer.results[0]), seq_of(&answer.results[1]));
    assert!(
        answer.results[1]
            .result()
            .expect("answered")
            .expect("stored")
            .duplicate
    );
    let BatchItem::Refused { status, error } = &answer.results[2] else {
        panic!("{:?}", answer.results[2])
    };
    assert_eq!(*status, 400);
    assert!(error.message.contains("/subject"), "{}", error.message);
    server.stop().await;
}

#[tokio::test]
async fn given_an_invalid_envelope_when_published_then_the_api_error_carries_400_and_the_body() {
    let server = Server::start().await;
    let bad = ace_envelope::Envelope {
        subject: "ace.comms..bad subject".into(),
        ..event(EVENT_SUBJECT, 1)
    };
    let err = server.client.publish(&bad).await.expect_err("refused");
    assert_eq!(err.status(), Some(400), "{err}");
    let ClientError::Api { body, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        matches!(
            body.error.code,
            ErrorCode::InvalidSubject | ErrorCode::InvalidEnvelope
        ),
        "{err}"
    );
    assert!(body.error.message.contains("subject"), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_body_over_the_limit_when_published_then_413_payload_too_large() {
    let server = Server::start_with(|config| config.limits.max_body_bytes = 4096).await;
    let big = ace_envelope::Envelope::builder(ace_envelope::Kind::Event, EVENT_SUBJECT)
        .payload_json(serde_json::json!({ "blob": "x".repeat(8192) }))
        .build()
        .expect("valid");
    let err = server.client.publish(&big).await.expect_err("too large");
    assert_eq!(err.status(), Some(413), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::PayloadTooLarge));
    server.stop().await;
}

#[tokio::test]
async fn given_streams_when_added_listed_read_and_deleted_then_each_call_reflects_the_last() {
    let server = Server::start().await;
    let client = &server.client;
    let config = StreamConfig::new("ORDERS", &["ace.comms.shop.>"]);
    let info = client.add_stream(&config).await.expect("created");
    assert_eq!(info.config, config);
    assert_eq!(info.messages, 0);
    let names: Vec<String> = client
        .list_streams()
        .await
        .expect("listed")
        .into_iter()
        .map(|s| s.config.name)
        .collect();
    assert!(names.contains(&"ORDERS".to_owned()), "{names:?}");
    client.publish(&event(ORDERS, 1)).await.expect("published");
    let info = client.stream_info("ORDERS").await.expect("read");
    assert_eq!((info.messages, info.last_seq), (1, 1));
    client.delete_stream("ORDERS").await.expect("deleted");
    let err = client.stream_info("ORDERS").await.expect_err("gone");
    assert_eq!(err.status(), Some(404), "{err}");
    assert_eq!(err.code(), Some(ErrorCode::StreamNotFound));
    server.stop().await;
}

#[tokio::test]
async fn given_an_unknown_stream_when_read_or_deleted_then_404_not_found() {
    let server = Server::start().await;
    let client = &server.client;
    for err in [
        client.stream_info("NOPE").await.expect_err("unknown"),
        client.delete_stream("NOPE").await.expect_err("unknown"),
        client.list_consumers("NOPE").await.expect_err("unknown"),
        client.get_message("NOPE", 1).await.expect_err("unknown"),
    ] {
        assert_eq!(err.status(), Some(404), "{err}");
        assert_eq!(err.code(), Some(ErrorCode::StreamNotFound), "{err}");
        assert!(err.to_string().contains("NOPE"), "{err}");
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_consumer_when_fetched_and_acked_then_its_counters_follow() {
    let server = Server::start().await;
    let client = &server.client;
    orders(client, Duration::from_secs(30)).await;
    for n in 0..3 {
        client.publish(&event(ORDERS, n)).await.expect("published");
    }
    let consumers = client.list_consumers("ORDERS").await.expect("listed");
    assert_eq!(consumers.len(), 1);
    assert_eq!(consumers[0].config.deliver, DeliverPolicy::All);
    assert_eq!(consumers[0].config.ack, AckPolicy::Explicit);

    let got = client
        .fetch("ORDERS", "worker", 10, Duration::from_millis(500))
        .await
        .expect("fetched");
    let seqs: Vec<u64> = got.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(got.iter().all(|m| m.delivery == 1));

    let answer = client
        .ack("ORDERS", "worker", &[1, 2])
        .await
        .expect("acked");
    assert_eq!(answer.done, [1, 2]);
    assert!(answer.failed.is_empty());
    let info = client
        .consumer_info("ORDERS", "worker")
        .await
        .expect("read");
    assert_eq!((info.ack_floor, info.ack_pending), (2, 1));
    assert_eq!(info.counters.acked, 2);

    client
        .delete_consumer("ORDERS", "worker")
        .await
        .expect("deleted");
    let err = client
        .consumer_info("ORDERS", "worker")
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Some(ErrorCode::ConsumerNotFound), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_nak_when_the_delay_passes_then_the_message_is_redelivered_and_term_ends_it() {
    let server = Server::start().await;
    let client = &server.client;
    orders(client, Duration::from_secs(30)).await;
    client.publish(&event(ORDERS, 1)).await.expect("published");
    let first = client
        .fetch("ORDERS", "worker", 1, Duration::from_millis(500))
        .await
        .expect("fetched");
    assert_eq!(first.len(), 1);
    let naked = client
        .nak("ORDERS", "worker", &[1], Some(Duration::from_millis(50)))
        .await
        .expect("nak'ed");
    assert_eq!(naked.done, [1]);
    let again = client
        .fetch("ORDERS", "worker", 1, Duration::from_secs(5))
        .await
        .expect("redelivered");
    assert_eq!((again[0].seq, again[0].delivery), (1, 2));
    let termed = client
        .term("ORDERS", "worker", &[1], Some("poison"))
        .await
        .expect("termed");
    assert_eq!(termed.done, [1]);
    let info = client
        .consumer_info("ORDERS", "worker")
        .await
        .expect("read");
    assert_eq!(info.counters.termed, 1);
    assert_eq!(info.counters.redelivered, 1);
    server.stop().await;
}

#[tokio::test]
async fn given_an_ack_of_a_sequence_never_delivered_when_sent_then_the_refusal_is_the_error() {
    let server = Server::start().await;
    orders(&server.client, Duration::from_secs(30)).await;
    let err = server
        .client
        .ack("ORDERS", "worker", &[99])
        .await
        .expect_err("nothing to ack");
    assert!(matches!(err, ClientError::Api { .. }), "{err:?}");
    assert!(
        err.status().is_some_and(|s| (400..500).contains(&s)),
        "{err}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_running_server_when_health_and_readiness_are_asked_then_both_are_up() {
    let server = Server::start().await;
    server.client.health().await.expect("healthy");
    assert!(server.client.ready().await.expect("answers"));
    let base = server.base.clone();
    server.stop().await;
    let err = Client::new(&base)
        .expect("valid")
        .health()
        .await
        .expect_err("nothing listens any more");
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert!(err.to_string().contains("/health"), "{err}");
}

#[tokio::test]
async fn given_a_request_timeout_when_a_fetch_waits_longer_then_the_transport_gives_up() {
    let server = Server::start().await;
    orders(&server.client, Duration::from_secs(30)).await;
    let impatient = server
        .client
        .clone()
        .with_timeout(Duration::from_millis(200));
    let err = impatient
        .fetch("ORDERS", "worker", 1, Duration::from_secs(3))
        .await
        .expect_err("timed out");
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    server.stop().await;
}
