//! The `qos` classes over real HTTP: a `realtime` message naming no `ttl_ms` nor `deadline`
//! lives 30 s from its `created_at` (`contracts/comms/qos.yaml`) — refused at ingress once
//! older, never handed to a durable consumer after (counted as expired), and its approval
//! expires with it — while `standard` and `bulk` messages get no implicit lifetime, and what a
//! message names itself always wins.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Clock, ManualClock, SystemClock};
use ace_server::Config;
use serde_json::{Value, json};

use crate::{Server, assert_error, envelope_on, event};

/// An event of class `qos` created `age` ago (by the system clock).
fn aged(qos: &str, age: Duration) -> Value {
    let mut envelope = event(1);
    envelope["qos"] = json!(qos);
    let created = SystemClock.now() - chrono::Duration::from_std(age).unwrap();
    envelope["created_at"] = json!(created.to_rfc3339());
    envelope
}

#[tokio::test]
async fn given_messages_older_than_30_s_when_published_then_only_realtime_ones_without_a_lifetime_are_expired()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let old = Duration::from_secs(31);
    let refused = server
        .post("/api/v1/messages", &aged("realtime", old))
        .await;
    assert_error(&refused, 400, "MESSAGE_EXPIRED");
    let young = aged("realtime", Duration::from_secs(25));
    assert_eq!(server.post("/api/v1/messages", &young).await.0, 202);
    for qos in ["standard", "bulk"] {
        let envelope = aged(qos, Duration::from_secs(3_600 * 24 * 30));
        let (status, body) = server.post("/api/v1/messages", &envelope).await;
        assert_eq!(status, 202, "{qos}: {body}");
    }
    let mut named = aged("realtime", old);
    named["ttl_ms"] = json!(3_600_000);
    let (status, body) = server.post("/api/v1/messages", &named).await;
    assert_eq!(status, 202, "its own ttl_ms wins: {body}");
    server.stop().await;
}

/// A server on a manual clock starting now, and the clock.
async fn clocked(dir: &std::path::Path) -> (Server, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    (Server::start_clocked(&config, clock.clone()).await, clock)
}

#[tokio::test]
async fn given_a_stored_realtime_message_when_30_s_pass_then_a_consumer_never_gets_it_and_counts_it_expired()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    // Created 29.7 s ago: accepted now, expired 300 ms later (the engine reads the system clock).
    let realtime = aged("realtime", Duration::from_millis(29_700));
    assert_eq!(server.post("/api/v1/messages", &realtime).await.0, 202);
    assert_eq!(server.post("/api/v1/messages", &event(2)).await.0, 202);
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    assert_eq!(server.post(base, &json!({"name": "late"})).await.0, 201);
    tokio::time::sleep(Duration::from_millis(400)).await;

    let seqs = server.fetch_seqs("ACE_EVENTS", "late", 10).await;
    assert_eq!(seqs, [2], "only the standard message");
    let (_, info) = server.get(&format!("{base}/late")).await;
    assert_eq!(info["counters"]["expired"], 1, "{info}");
    let metrics = server.metrics().await;
    let line = r#"ace_comms_consumer_expired_total{consumer="late",stream="ACE_EVENTS"} 1"#;
    assert!(metrics.contains(line), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_held_realtime_message_when_30_s_pass_undecided_then_its_approval_expires() {
    let dir = tempfile::tempdir().unwrap();
    let (server, clock) = clocked(dir.path()).await;
    let mut risky = envelope_on("ace.comms.http.ops.db.evt.dropped.v1", json!({}));
    risky["qos"] = json!("realtime");
    risky["created_at"] = json!(clock.now().to_rfc3339());
    risky["governance"] = json!({"requires_approval": true});
    let (status, pending) = server.post("/api/v1/messages", &risky).await;
    assert_eq!(
        (status, &pending["status"]),
        (202, &json!("pending_approval"))
    );
    let approval_id = pending["approval_id"].as_str().unwrap().to_owned();
    clock.advance(Duration::from_secs(29));
    let (_, one) = server
        .get(&format!("/api/v1/approvals/{approval_id}"))
        .await;
    assert_eq!(one["status"], "pending", "{one}");
    clock.advance(Duration::from_secs(1));
    let decided = server
        .post(
            &format!("/api/v1/approval/{approval_id}"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_error(&decided, 409, "CONFLICT");
    let (_, one) = server
        .get(&format!("/api/v1/approvals/{approval_id}"))
        .await;
    assert_eq!(one["status"], "expired", "{one}");
    server.stop().await;
}

#[tokio::test]
async fn given_an_unknown_qos_class_when_published_then_it_is_refused_naming_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut envelope = event(1);
    envelope["qos"] = json!("fast");
    let refused = server.post("/api/v1/messages", &envelope).await;
    assert_error(&refused, 400, "INVALID_ENVELOPE");
    let message = refused.1["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("fast") && message.contains("realtime"),
        "{message}"
    );
    server.stop().await;
}
