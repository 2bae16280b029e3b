//! Every message the server publishes itself conforms to the contract it names and travels on
//! the subject the catalogue gives it: one run provokes each kind — presence online and offline,
//! dead letters after `term` and after `max_deliver`, an approval requested, approved, rejected
//! and expired with the requester answered on its `reply_to` and the refused messages
//! dead-lettered — while a WebSocket subscription to `>` captures everything published; every
//! captured message the test did not publish itself is then checked by python-jsonschema
//! (`system_messages.py`) against `contracts/`, independently of the Rust registry.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;
use std::time::Duration;

use ace_envelope::{Envelope, Kind};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::approvals::{INBOX, expiring_server, hold};
use crate::{Server, event};

/// Every kind of message the run must capture (see [`kind`]).
const EXPECTED: [&str; 12] = [
    "agent_online",
    "agent_offline",
    "approval_requested",
    "approval_decided/approved",
    "approval_decided/rejected",
    "approval_decided/expired",
    "approval_decided/reply/rejected",
    "approval_decided/reply/expired",
    "dead_letter/term",
    "dead_letter/max_deliver",
    "dead_letter/rejected",
    "dead_letter/expired",
];

/// How long the run waits for the last kinds to arrive.
const PATIENCE: Duration = Duration::from_secs(15);

/// A captured message's kind: its name, with the dead letter's reason, the decision, and
/// whether the decision went to a requester's `reply_to`.
fn kind(message: &Value) -> String {
    let name = message["name"].as_str().unwrap_or("unnamed");
    let payload = &message["payload"];
    match name {
        "dead_letter" => format!("dead_letter/{}", payload["reason"].as_str().unwrap_or("?")),
        "approval_decided" if message["subject"] == INBOX => format!(
            "approval_decided/reply/{}",
            payload["decision"].as_str().unwrap_or("?")
        ),
        "approval_decided" => format!(
            "approval_decided/{}",
            payload["decision"].as_str().unwrap_or("?")
        ),
        other => other.to_owned(),
    }
}

/// Publishes `envelope` over HTTP and answers its id.
async fn publish(server: &Server, envelope: &Value) -> String {
    let (status, body) = server.post("/api/v1/messages", envelope).await;
    assert_eq!(status, 202, "{body}");
    envelope["id"].as_str().expect("an id").to_owned()
}

/// Fetches one message of consumer `name` on `ACE_EVENTS`; its sequence, if one came.
async fn fetch(server: &Server, name: &str) -> Option<u64> {
    let path = format!("/api/v1/streams/ACE_EVENTS/consumers/{name}/fetch");
    let (status, got) = server
        .post(&path, &json!({"batch": 1, "expires_ms": 200}))
        .await;
    assert_eq!(status, 200, "{got}");
    got["messages"][0]["seq"].as_u64()
}

#[tokio::test]
async fn given_a_run_provoking_every_system_message_when_captured_then_each_conforms_to_its_contract_and_catalogue_subject()
 {
    let test = "system_messages";
    let Some(python) = ace_testkit::python(test, &["jsonschema", "referencing", "yaml"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (server, clock) = expiring_server(dir.path(), |c| c.state.agent_sweep_ms = 20).await;

    let url = format!("ws://{}/ws", server.addr());
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let subscribe = json!({"type": "subscribe", "id": "all", "sid": "all", "pattern": ">"});
    socket
        .send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    // The subscription must be in place before anything is provoked: `agent_online` is
    // published by the heartbeat itself, once.
    loop {
        let frame = tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the subscribe is answered")
            .expect("the socket stays open")
            .expect("a readable frame");
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["id"] == "all" {
            assert_eq!(frame["type"], "ok", "{frame}");
            break;
        }
    }
    let mut ours = HashSet::new();

    // Presence: online now, offline when the clock passes the ttl below.
    let beat = json!({"capabilities": ["probe"], "ttl_ms": 1_000});
    let (status, body) = server.post("/api/v1/agents/a1/heartbeat", &beat).await;
    assert_eq!(status, 200, "{body}");

    // Dead letters of the bus: a `term`, then deliveries run out (on the engine's real clock).
    ours.insert(publish(&server, &event(1)).await);
    let consumers = "/api/v1/streams/ACE_EVENTS/consumers";
    assert_eq!(server.post(consumers, &json!({"name": "w"})).await.0, 201);
    let seq = fetch(&server, "w").await.expect("delivered to w");
    let term = json!({"seqs": [seq], "reason": "poison"});
    let (status, _) = server.post(&format!("{consumers}/w/term"), &term).await;
    assert_eq!(status, 200);
    let exhausted = json!({"name": "m", "max_deliver": 1, "ack_wait": 100});
    assert_eq!(server.post(consumers, &exhausted).await.0, 201);
    fetch(&server, "m").await.expect("delivered to m");

    // Approvals: one approved, one rejected, one left to expire.
    let (id, approved) = hold(&server).await;
    ours.insert(id);
    let decide = |id: &str| format!("/api/v1/approval/{id}");
    let yes = json!({"decision": "approve", "comment": "checked"});
    assert_eq!(server.post(&decide(&approved), &yes).await.0, 200);
    let (id, rejected) = hold(&server).await;
    ours.insert(id);
    let no = json!({"decision": "reject", "comment": "not on a Friday"});
    assert_eq!(server.post(&decide(&rejected), &no).await.0, 200);
    let (id, _expiring) = hold(&server).await;
    ours.insert(id);
    clock.advance(Duration::from_millis(5_001));
    let (status, expired) = server.get("/api/v1/approvals?status=expired").await;
    assert_eq!(status, 200, "{expired}");
    assert_eq!(expired["approvals"].as_array().map(Vec::len), Some(1));

    let mut captured: Vec<Value> = Vec::new();
    let mut kinds = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !EXPECTED.iter().all(|k| kinds.contains(*k)) {
        // The max_deliver consumer's message is dead-lettered when a fetch finds it overdue.
        if !kinds.contains("dead_letter/max_deliver") {
            let _ = fetch(&server, "m").await;
        }
        let Ok(Some(frame)) = tokio::time::timeout_at(deadline, socket.next()).await else {
            break;
        };
        let Message::Text(text) = frame.expect("a readable frame") else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text).unwrap();
        if frame["type"] != "message" {
            assert_eq!(frame["type"], "ok", "{frame}");
            continue;
        }
        let envelope = frame["envelope"].clone();
        if ours.contains(envelope["id"].as_str().unwrap_or_default()) {
            continue;
        }
        kinds.insert(kind(&envelope));
        captured.push(envelope);
    }
    let missing: Vec<&str> = EXPECTED
        .iter()
        .copied()
        .filter(|k| !kinds.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "never captured: {missing:?}; got {kinds:?}"
    );
    server.stop().await;

    for letter in captured.iter().filter(|m| m["name"] == "dead_letter") {
        assert_eq!(
            letter["headers"]["ace-dlq-reason"], letter["payload"]["reason"],
            "the routing header says the contract's reason: {letter}"
        );
    }
    let (passed, stdout, stderr) = check(&python, dir.path(), &captured);
    assert!(
        passed,
        "python-jsonschema refused a message the server published:\n{stderr}{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok ")).count(),
        captured.len(),
        "every captured message checked:\n{stdout}"
    );
}

/// Runs `system_messages.py` over `messages` (written under `dir`), with [`INBOX`] as the one
/// reply subject: whether all passed, its stdout and its stderr.
pub(crate) fn check(python: &Path, dir: &Path, messages: &[Value]) -> (bool, String, String) {
    let lines: Vec<String> = messages.iter().map(Value::to_string).collect();
    let file = dir.join("messages.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let contracts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts");
    let checker = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/system_messages.py");
    let out = std::process::Command::new(python)
        .arg(checker)
        .arg(contracts)
        .arg(&file)
        .arg(INBOX)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn given_messages_breaking_their_contracts_when_checked_then_the_checker_names_each_problem() {
    let Some(python) = ace_testkit::python(
        "system_messages_checker",
        &["jsonschema", "referencing", "yaml"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let presence = |subject: &str, payload: Value| {
        let envelope = Envelope::builder(Kind::Event, subject)
            .domain("comms")
            .name("agent_online")
            .schema("comms.agent.presence@1.0.0")
            .payload_json(payload)
            .build()
            .unwrap();
        serde_json::to_value(envelope).unwrap()
    };
    let good = json!({
        "id": "a1", "capabilities": [], "ttl_ms": 1_000, "online_since": "2026-01-01T00:00:00Z",
        "last_seen": "2026-01-01T00:00:00Z", "expires_at": "2026-01-01T00:00:01Z",
    });
    let mut extra = good.clone();
    extra["colour"] = json!("red");
    let mut unregistered = presence(
        "ace.comms.system.agent.a1.evt.agent_online.v1",
        good.clone(),
    );
    unregistered["schema"] = json!("comms.agent.presence@9.0.0");
    let mut unnamed = presence(
        "ace.comms.system.agent.a1.evt.agent_online.v1",
        good.clone(),
    );
    unnamed["name"] = json!("agent_napping");
    let mut broken_envelope = presence(
        "ace.comms.system.agent.a1.evt.agent_online.v1",
        good.clone(),
    );
    broken_envelope["spec"] = json!("gme/2");
    let cases = [
        (
            "conforms",
            presence(
                "ace.comms.system.agent.a1.evt.agent_online.v1",
                good.clone(),
            ),
            None,
        ),
        (
            "an undeclared field",
            presence("ace.comms.system.agent.a1.evt.agent_online.v1", extra),
            Some("'colour' was unexpected"),
        ),
        (
            "another subject",
            presence("ace.comms.system.agent.a1.evt.online.v1", good.clone()),
            Some("does not match the catalogue's"),
        ),
        (
            "an unregistered schema",
            unregistered,
            Some("is not registered"),
        ),
        ("no catalogue entry", unnamed, Some("no catalogue entry")),
        (
            "a broken envelope",
            broken_envelope,
            Some("envelope ['spec']"),
        ),
    ];
    for (case, message, expected) in cases {
        let (passed, stdout, stderr) = check(&python, dir.path(), std::slice::from_ref(&message));
        match expected {
            None => assert!(passed, "{case}: {stderr}"),
            Some(problem) => {
                assert!(!passed, "{case} passed: {stdout}");
                assert!(stderr.contains(problem), "{case}: {stderr}");
                assert!(stdout.is_empty(), "{case} counted as ok: {stdout}");
            }
        }
    }
}
