//! Tests of `Core` over the real embedded engine in a temporary directory: the pipeline end to
//! end (a refusal appends nothing), batches judged per envelope, and the thin operations.

use std::sync::Arc;
use std::time::Duration;

use ace_bus::{ConsumerConfig, EmbeddedBus, EmbeddedConfig, StreamConfig};
use ace_contracts::Registry;
use ace_envelope::{Envelope, ErrorCode, Kind, SystemClock};
use serde_json::json;

use crate::{AckKind, Core, CoreLimits, Hooks, RequestContext};

const SUBJECT: &str = "ace.comms.http.service.kpi.evt.v1";

fn core(dir: &std::path::Path) -> Core {
    let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).expect("bus opens");
    Core::new(
        Arc::new(bus),
        Arc::new(Registry::embedded().expect("contracts load")),
        Arc::new(SystemClock),
        Hooks::development(),
        CoreLimits::default(),
    )
}

fn ctx() -> RequestContext {
    RequestContext::new("test")
}

fn envelope() -> Envelope {
    Envelope::builder(Kind::Event, SUBJECT)
        .payload_json(json!({"v": 1}))
        .build()
        .expect("valid")
}

async fn with_stream(core: &Core) {
    core.add_stream(&ctx(), StreamConfig::new("KPI", &["ace.comms.http.>"]))
        .await
        .expect("stream");
}

#[tokio::test]
async fn given_a_stream_when_publishing_then_the_message_is_stored_and_readable() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    with_stream(&core).await;
    let env = envelope();
    let accepted = core.publish(&ctx(), env.clone()).await.expect("accepted");
    assert_eq!(accepted.stream.as_deref(), Some("KPI"));
    assert_eq!(accepted.seq, Some(1));
    let stored = core.get_message(&ctx(), "KPI", 1).await.expect("stored");
    assert_eq!(stored.envelope.id, env.id);
    assert_eq!(
        stored.envelope.source.map(|s| s.id),
        Some(crate::DEVELOPMENT_PRINCIPAL_ID.to_owned())
    );
}

#[tokio::test]
async fn given_a_refused_message_when_publishing_then_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    with_stream(&core).await;
    let mut env = envelope();
    env.schema = Some("no.such.schema@1.0.0".into());
    let err = core.publish(&ctx(), env).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownSchema);
    let info = core.stream_info(&ctx(), "KPI").await.unwrap();
    assert_eq!(info.messages, 0);
    assert_eq!(info.last_seq, 0);
}

#[tokio::test]
async fn given_a_batch_with_one_bad_envelope_when_publishing_then_only_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    with_stream(&core).await;
    let mut bad = envelope();
    bad.hops = 99;
    let answers = core
        .publish_batch(&ctx(), vec![envelope(), bad, envelope()])
        .await
        .unwrap();
    assert_eq!(answers.len(), 3);
    assert_eq!(answers[0].as_ref().unwrap().seq, Some(1));
    assert_eq!(
        answers[1].as_ref().unwrap_err().code(),
        ErrorCode::HopLimitExceeded
    );
    assert_eq!(answers[2].as_ref().unwrap().seq, Some(2));
}

#[tokio::test]
async fn given_a_consumer_when_fetching_and_acking_then_the_ack_is_reported_per_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    with_stream(&core).await;
    core.publish(&ctx(), envelope()).await.unwrap();
    core.add_consumer(&ctx(), "KPI", ConsumerConfig::new("w"))
        .await
        .unwrap();
    let got = core
        .fetch(&ctx(), "KPI", "w", 10, Duration::from_millis(200))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let outcome = core
        .acknowledge(&ctx(), "KPI", "w", &[1, 7], &AckKind::Ack)
        .await
        .unwrap();
    assert_eq!(outcome.done, vec![1]);
    assert_eq!(outcome.failed.len(), 1);
    assert_eq!(outcome.failed[0].1.code(), ErrorCode::NotFound);
    let info = core.consumer_info(&ctx(), "KPI", "w").await.unwrap();
    assert_eq!(info.ack_floor, 1);
}

#[tokio::test]
async fn given_out_of_bounds_requests_when_called_then_they_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    with_stream(&core).await;
    core.add_consumer(&ctx(), "KPI", ConsumerConfig::new("w"))
        .await
        .unwrap();
    let err = core
        .fetch(&ctx(), "KPI", "w", 0, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`batch`"), "{err}");
    let err = core
        .acknowledge(&ctx(), "KPI", "w", &[], &AckKind::Ack)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("`seqs`"), "{err}");
    let err = core.get_message(&ctx(), "KPI", 42).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = core.stream_info(&ctx(), "NOPE").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StreamNotFound);
}

#[tokio::test]
async fn given_existing_streams_when_ensuring_defaults_then_only_missing_ones_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    with_stream(&core).await;
    let wanted = [
        StreamConfig::new("KPI", &["ace.comms.http.>"]),
        StreamConfig::new("DLQ", &["ace.comms.system.dlq.>"]),
    ];
    let created = core.ensure_streams(&ctx(), &wanted).await.unwrap();
    assert_eq!(created, vec!["DLQ".to_owned()]);
    let again = core.ensure_streams(&ctx(), &wanted).await.unwrap();
    assert!(again.is_empty());
}

#[tokio::test]
async fn given_two_consumers_forwarding_to_each_other_when_the_loop_runs_then_the_hop_limit_stops_it()
 {
    let dir = tempfile::tempdir().unwrap();
    let core = core(dir.path());
    with_stream(&core).await;
    let limit = CoreLimits::default().max_hops;
    let (ping, pong) = (
        "ace.comms.http.service.ping.evt.v1",
        "ace.comms.http.service.pong.evt.v1",
    );
    let mut next = Envelope::builder(Kind::Event, ping)
        .payload_json(json!({"ball": true}))
        .build()
        .unwrap();
    let mut passes = 0u32;
    let refusal = loop {
        match core.publish(&ctx(), next.clone()).await {
            Ok(accepted) => {
                passes += 1;
                let seq = accepted.seq.unwrap();
                let stored = core.get_message(&ctx(), "KPI", seq).await.unwrap();
                assert_eq!(stored.envelope.hops, passes, "one hop per pass");
                // the forwarder sends what it received on to the other subject, as a new message
                let mut forwarded = stored.envelope;
                forwarded.id = uuid::Uuid::now_v7();
                forwarded.subject = if forwarded.subject == ping {
                    pong
                } else {
                    ping
                }
                .into();
                next = forwarded;
            }
            Err(err) => break err,
        }
        assert!(passes <= limit + 1, "the loop was never stopped");
    };
    assert_eq!(refusal.code(), ErrorCode::HopLimitExceeded);
    assert_eq!(
        passes,
        limit + 1,
        "hops 0..=limit pass, then the limit refuses"
    );
}
