//! Attacks defended by storage; see `attacks/mod.rs`.
//!
//! - A member of a shared consumer without clearance fetching a labelled message again and
//!   again: the bus asks the member's receive filter before it counts a delivery, so the
//!   message is never handed to it, never counted toward `max_deliver`, never dead-lettered on
//!   its account, and the cleared member gets it as a first delivery.
//! - Replaying an identical envelope (same `id`): a duplicate of the first, stored once.
//! - Two principals using the same `idempotency_key`: keys are scoped by sender, so neither
//!   suppresses the other's message.
//! - A segment file of a stream replaced by a symlink to another file: the engine refuses to
//!   open the stream, so the server refuses to start, naming the link; the target is untouched.
//! - Always refused: a stream name with `..` or `/`, a consumer name with a path separator,
//!   a fetch from a stream the caller may not read.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ace_envelope::{Envelope, Kind, Label, SourceType, SystemClock};
use ace_server::{App, Config};
use serde_json::{Value, json};

use crate::auth::{Cred, get_as, key_of, post_as, start_with_keys};
use crate::{EVENT_SUBJECT, Server, assert_error, event};

/// A query subject captured by the `QUERIES` stream the tests create.
const QUERY_SUBJECT: &str = "ace.comms.http.service.kpi.qry.status.v1";

/// Two admins (may read every stream) of clearance 1 and 5.
const CLEARANCES: [(&str, &str, &str, u8); 2] = [
    ("low", "admin", "service", 1),
    ("high", "admin", "service", 5),
];

fn cred(name: &str) -> Cred {
    Cred::Key(key_of(name))
}

/// Creates the `QUERIES` stream and the consumer `shared` on it with `consumer` settings.
async fn queries_with_consumer(server: &Server, consumer: Value) {
    let admin = cred("high");
    let stream = json!({"name": "QUERIES", "subjects": ["ace.comms.http.*.*.qry.>"]});
    let made = post_as(server, &admin, "/api/v1/streams", &stream).await;
    assert_eq!(made.0, 201, "{}", made.1);
    let path = "/api/v1/streams/QUERIES/consumers";
    let made = post_as(server, &admin, path, &consumer).await;
    assert_eq!(made.0, 201, "{}", made.1);
}

#[tokio::test]
async fn given_a_shared_consumer_when_an_uncleared_member_fetches_a_confidential_message_repeatedly_then_it_is_never_burned_and_the_cleared_member_gets_it_first()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_keys(dir.path(), &CLEARANCES).await;
    // Each fetch below outlasts ack_wait: had a refused fetch counted as a delivery, the message
    // would be due again at every fetch and dead-lettered after the second.
    let consumer = json!({"name": "shared", "max_deliver": 2, "ack_wait": 100});
    queries_with_consumer(&server, consumer).await;
    let mut secret = Envelope::builder(Kind::Query, QUERY_SUBJECT)
        .payload_json(json!({"n": 1}))
        .build()
        .unwrap();
    secret.governance.label = Label::Confidential;
    let secret = serde_json::to_value(secret).unwrap();
    let published = post_as(&server, &cred("high"), "/api/v1/messages", &secret).await;
    assert_eq!(published.0, 202, "{}", published.1);

    let fetch = json!({"batch": 10, "expires_ms": 50});
    let path = "/api/v1/streams/QUERIES/consumers/shared/fetch";
    for attempt in 0..6 {
        let (status, got) = post_as(&server, &cred("low"), path, &fetch).await;
        assert_eq!(status, 200, "attempt {attempt}: {got}");
        assert_eq!(got["messages"], json!([]), "attempt {attempt}");
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }

    let (status, got) = post_as(&server, &cred("high"), path, &fetch).await;
    assert_eq!(status, 200, "{got}");
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{got}");
    assert_eq!(messages[0]["envelope"]["id"], secret["id"]);
    assert_eq!(messages[0]["delivery"], 1, "{got}");
    let info_path = "/api/v1/streams/QUERIES/consumers/shared";
    let (status, info) = get_as(&server, &cred("high"), info_path).await;
    assert_eq!(status, 200, "{info}");
    let counters = &info["counters"];
    assert_eq!(
        (
            &counters["delivered"],
            &counters["redelivered"],
            &counters["dead_lettered"]
        ),
        (&json!(1), &json!(0), &json!(0)),
        "{info}"
    );
    let (status, dlq) = get_as(&server, &cred("high"), "/api/v1/streams/ACE_DLQ").await;
    assert_eq!(status, 200, "{dlq}");
    assert_eq!(dlq["messages"], 0, "nothing was dead-lettered: {dlq}");
    server.stop().await;
}

#[tokio::test]
async fn given_an_envelope_when_posted_twice_then_the_second_is_a_duplicate_of_the_first_and_stored_once()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let sent = event(1);
    let (status, first) = server.post("/api/v1/messages", &sent).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["duplicate"], false);
    let (status, again) = server.post("/api/v1/messages", &sent).await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(again["seq"], first["seq"], "{again}");
    assert_eq!(again["duplicate"], true, "{again}");
    let (status, info) = server.get("/api/v1/streams/ACE_EVENTS").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["messages"], 1, "{info}");
    server.stop().await;
}

#[tokio::test]
async fn given_two_principals_when_both_use_one_idempotency_key_then_both_messages_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        ("alice", "admin", "service", 5),
        ("bob", "admin", "service", 5),
    ];
    let server = start_with_keys(dir.path(), &keys).await;
    // Each envelope names its sender: `source` is the authenticated principal (`{name}-1`).
    let from = |who: &str| {
        let envelope = Envelope::builder(Kind::Event, EVENT_SUBJECT)
            .source(SourceType::Service, format!("{who}-1"))
            .idempotency_key("order-1")
            .payload_json(json!({"from": who}))
            .build()
            .unwrap();
        serde_json::to_value(envelope).unwrap()
    };
    let (status, alice) =
        post_as(&server, &cred("alice"), "/api/v1/messages", &from("alice")).await;
    assert_eq!(status, 202, "{alice}");
    let (status, bob) = post_as(&server, &cred("bob"), "/api/v1/messages", &from("bob")).await;
    assert_eq!(status, 202, "{bob}");
    assert_eq!(bob["duplicate"], false, "{bob}");
    assert_ne!(bob["seq"], alice["seq"], "{bob}");
    // A retry of one's own key is still a duplicate of one's own message.
    let (status, retry) = post_as(&server, &cred("bob"), "/api/v1/messages", &from("bob")).await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!(
        (&retry["seq"], &retry["duplicate"]),
        (&bob["seq"], &json!(true))
    );
    let (status, info) = get_as(&server, &cred("alice"), "/api/v1/streams/ACE_EVENTS").await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["messages"], 2, "{info}");
    for (seq, who) in [(&alice["seq"], "alice"), (&bob["seq"], "bob")] {
        let path = format!("/api/v1/streams/ACE_EVENTS/messages/{seq}");
        let (status, stored) = get_as(&server, &cred("alice"), &path).await;
        assert_eq!(status, 200, "{stored}");
        assert_eq!(stored["envelope"]["payload"]["from"], who, "{stored}");
    }
    server.stop().await;
}

/// The only `.log` segment under `dir`.
fn segment_in(dir: &Path) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

#[tokio::test]
async fn given_a_stream_segment_replaced_by_a_symlink_when_the_server_starts_then_it_refuses_naming_the_link_and_the_target_is_unchanged()
 {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::start(&data).await;
    assert_eq!(server.post("/api/v1/messages", &event(1)).await.0, 202);
    server.stop().await;
    let segment = segment_in(&data.join("streams").join("ACE_EVENTS"));
    let victim = dir.path().join("victim.txt");
    let original = b"a file the server must never write\n";
    std::fs::write(&victim, original).unwrap();
    std::fs::remove_file(&segment).unwrap();
    std::os::unix::fs::symlink(&victim, &segment).unwrap();

    let config = Config {
        data_dir: data.clone(),
        ..Config::default()
    };
    let refused = App::open_with_clock(&config, Arc::new(SystemClock)).await;
    let message = match refused {
        Ok(_) => panic!("the server opened a stream through a symlinked segment"),
        Err(e) => e.to_string(),
    };
    assert!(
        message.contains(&format!("refusing to follow symlink {}", segment.display())),
        "{message}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), original);
}

#[tokio::test]
async fn given_a_stream_name_with_dots_or_a_slash_when_created_then_it_is_refused_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    for name in ["..", "../escape", "a/b", "a..b"] {
        let stream = json!({"name": name, "subjects": ["ace.comms.evil.>"]});
        let answer = server.post("/api/v1/streams", &stream).await;
        assert_error(&answer, 400, "INVALID_REQUEST");
        let message = answer.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("name"), "{name}: {message}");
    }
    assert!(!dir.path().join("escape").exists());
    server.stop().await;
}

#[tokio::test]
async fn given_a_consumer_name_with_a_path_separator_when_created_then_it_is_refused_400() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    for name in ["../c", "a/b", "a\\b"] {
        let answer = server
            .post(
                "/api/v1/streams/ACE_EVENTS/consumers",
                &json!({"name": name}),
            )
            .await;
        assert_error(&answer, 400, "INVALID_REQUEST");
        let message = answer.1["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("name"), "{name}: {message}");
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_principal_who_may_not_read_a_stream_when_fetching_then_it_is_refused_403() {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        ("boss", "admin", "service", 5),
        ("bot", "agent", "agent", 1),
    ];
    let server = start_with_keys(dir.path(), &keys).await;
    let consumers = "/api/v1/streams/ACE_EVENTS/consumers";
    let made = post_as(&server, &cred("boss"), consumers, &json!({"name": "c"})).await;
    assert_eq!(made.0, 201, "{}", made.1);
    let fetch = json!({"batch": 1, "expires_ms": 10});
    let path = format!("{consumers}/c/fetch");
    let answer = post_as(&server, &cred("bot"), &path, &fetch).await;
    assert_error(&answer, 403, "FORBIDDEN");
    server.stop().await;
}
