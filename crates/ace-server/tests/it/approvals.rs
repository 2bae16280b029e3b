//! Held messages over real HTTP (development mode holds by EHI): a risky publish answers 202
//! `pending_approval`; approving releases it onto its stream with `approval_id`; rejecting
//! dead-letters it and answers its requester on `reply_to`; an undecided one expires on the
//! server's (manual) clock; a pending one survives a restart; and every bad decision answers
//! its error code.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Clock, ManualClock, SystemClock};
use ace_server::Config;
use serde_json::{Value, json};

use crate::{Server, assert_error, envelope_on};

/// Captured by the default `ACE_EVENTS` stream.
const RISKY: &str = "ace.comms.http.ops.db.evt.dropped.v1";

/// Where the tests ask to be answered.
pub(crate) const INBOX: &str = "ace.comms.system.inbox.requester-1";

/// An envelope the EHI gate holds: score 0.95 on action `delete` (threshold 0.9), with a
/// `reply_to`.
fn risky() -> Value {
    let mut envelope = envelope_on(RISKY, json!({"table": "users"}));
    envelope["governance"] = json!({"ehi_score": 0.95});
    envelope["headers"] = json!({"ace-action": "delete", "reply_to": INBOX});
    envelope
}

/// Publishes [`risky`] and answers its id and its approval id.
pub(crate) async fn hold(server: &Server) -> (String, String) {
    let envelope = risky();
    let (status, pending) = server.post("/api/v1/messages", &envelope).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    assert_eq!(pending["id"], envelope["id"]);
    let approval_id = pending["approval_id"].as_str().expect("an approval id");
    (
        envelope["id"].as_str().unwrap().to_owned(),
        approval_id.to_owned(),
    )
}

/// The envelope stored at `seq` of `stream`.
async fn message(server: &Server, stream: &str, seq: u64) -> Value {
    let (status, stored) = server
        .get(&format!("/api/v1/streams/{stream}/messages/{seq}"))
        .await;
    assert_eq!(status, 200, "{stream}/{seq}: {stored}");
    stored["envelope"].clone()
}

async fn count(server: &Server, stream: &str) -> u64 {
    let (_, info) = server.get(&format!("/api/v1/streams/{stream}")).await;
    info["messages"].as_u64().expect("a stream info")
}

#[tokio::test]
async fn given_a_held_message_when_approved_then_it_is_published_with_its_approval_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (id, approval_id) = hold(&server).await;
    assert_eq!(count(&server, "ACE_EVENTS").await, 0, "nothing stored yet");
    let (status, list) = server.get("/api/v1/approvals").await;
    assert_eq!(status, 200, "{list}");
    let pending = list["approvals"].as_array().unwrap();
    assert_eq!(pending.len(), 1, "{list}");
    assert_eq!(pending[0]["approval_id"], approval_id.as_str());
    assert_eq!(pending[0]["status"], "pending");
    assert_eq!(pending[0]["envelope"]["id"], id.as_str());
    let reasons = pending[0]["reasons"].to_string();
    assert!(reasons.contains("0.95"), "{reasons}");
    let requested = message(&server, "ACE_HITL", 1).await;
    assert_eq!(
        requested["subject"],
        format!("ace.comms.system.hitl.{approval_id}.evt.approval_requested.v1")
    );
    assert_eq!(requested["schema"], "comms.hitl.approval_requested@1.1.0");
    assert_eq!(requested["payload"]["message_id"], id.as_str());

    let path = format!("/api/v1/approval/{approval_id}");
    let (status, decided) = server
        .post(&path, &json!({"decision": "approve", "comment": "checked"}))
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["approval"]["status"], "approved");
    assert_eq!(decided["approval"]["comment"], "checked");
    assert_eq!(decided["accepted"]["stream"], "ACE_EVENTS");
    let seq = decided["accepted"]["seq"].as_u64().unwrap();
    let released = message(&server, "ACE_EVENTS", seq).await;
    assert_eq!(released["id"], id.as_str());
    assert_eq!(
        released["governance"]["approval_id"],
        approval_id.as_str(),
        "{released}"
    );
    let approved = message(&server, "ACE_HITL", 2).await;
    assert_eq!(
        approved["subject"],
        format!("ace.comms.system.hitl.{approval_id}.evt.approval_decided.v1")
    );
    assert_eq!(approved["payload"]["decision"], "approved");
    assert_eq!(
        ledger_kinds(&server, &id).await,
        ["held", "approved", "accepted"]
    );

    let twice = server.post(&path, &json!({"decision": "reject"})).await;
    assert_error(&twice, 409, "CONFLICT");
    let (_, none) = server.get("/api/v1/approvals").await;
    assert_eq!(none["approvals"], json!([]), "no longer pending");
    let (_, done) = server.get("/api/v1/approvals?status=approved").await;
    assert_eq!(
        done["approvals"][0]["decided_by"],
        ace_core::DEVELOPMENT_PRINCIPAL_ID
    );
    let (status, one) = server
        .get(&format!("/api/v1/approvals/{approval_id}"))
        .await;
    assert_eq!((status, &one["status"]), (200, &json!("approved")));
    server.stop().await;
}

#[tokio::test]
async fn given_a_held_message_when_rejected_then_it_is_dead_lettered_and_its_requester_told() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let inbox = json!({"name": "INBOX", "subjects": ["ace.comms.system.inbox.>"]});
    assert_eq!(server.post("/api/v1/streams", &inbox).await.0, 201);
    let (id, approval_id) = hold(&server).await;
    // The alias path decides too.
    let (status, decided) = server
        .post(
            &format!("/api/v1/approvals/{approval_id}"),
            &json!({"decision": "reject", "comment": "not on a Friday"}),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["approval"]["status"], "rejected");
    assert!(decided.get("accepted").is_none(), "{decided}");
    assert_eq!(count(&server, "ACE_EVENTS").await, 0, "never published");

    let letter = message(&server, "ACE_DLQ", 1).await;
    assert_eq!(
        letter["subject"],
        "ace.comms.system.dlq.ACE_EVENTS.evt.dead_letter.v1"
    );
    assert_eq!(letter["schema"], "comms.dlq.dead_letter@1.1.0");
    assert_eq!(letter["payload"]["reason"], "rejected");
    assert_eq!(letter["payload"]["detail"], "not on a Friday");
    assert_eq!(letter["name"], "dead_letter");
    assert_eq!(
        letter["headers"]["ace-dlq-approval-id"],
        approval_id.as_str()
    );
    assert_eq!(letter["payload"]["original"]["id"], id.as_str());
    let answer = message(&server, "INBOX", 1).await;
    assert_eq!(answer["subject"], INBOX);
    assert_eq!(answer["correlation_id"], id.as_str());
    assert_eq!(answer["name"], "approval_decided");
    assert_eq!(answer["payload"]["decision"], "rejected");
    assert_eq!(answer["payload"]["reason"], "not on a Friday");
    assert_eq!(answer["payload"]["approval_id"], approval_id.as_str());
    let rejected = message(&server, "ACE_HITL", 2).await;
    assert_eq!(
        rejected["subject"],
        format!("ace.comms.system.hitl.{approval_id}.evt.approval_decided.v1")
    );
    assert_eq!(rejected["payload"]["decision"], "rejected");
    assert_ledger_kinds(&server, &id, &["held", "rejected", "dead_lettered"]).await;
    server.stop().await;
}

/// Every decision about message `id` is in the ledger, in this order; the dead letter is
/// recorded by the ledger's dead-letter consumer a moment after it is stored, so this waits up
/// to five seconds for the last kinds.
async fn assert_ledger_kinds(server: &Server, id: &str, wanted: &[&str]) {
    let mut kinds = Vec::new();
    for _ in 0..100 {
        kinds = ledger_kinds(server, id).await;
        if kinds == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(kinds, wanted);
}

/// The kinds of the ledger entries about message `id`, in ledger order.
async fn ledger_kinds(server: &Server, id: &str) -> Vec<String> {
    let (status, page) = server.get("/api/v1/ledger/entries?limit=1000").await;
    assert_eq!(status, 200, "{page}");
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["message_id"] == id)
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A server under `dir` on a manual clock, whose held messages expire 5 s after they are held;
/// `tweak` adjusts the rest of its config.
pub(crate) async fn expiring_server(
    dir: &Path,
    tweak: impl FnOnce(&mut Config),
) -> (Server, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.approvals.ttl_ms = 5_000;
    tweak(&mut config);
    (Server::start_clocked(&config, clock.clone()).await, clock)
}

#[tokio::test]
async fn given_an_undecided_approval_when_its_ttl_passes_then_it_expires_like_a_rejection() {
    let dir = tempfile::tempdir().unwrap();
    let (server, clock) = expiring_server(dir.path(), |_| {}).await;
    let inbox = json!({"name": "INBOX", "subjects": ["ace.comms.system.inbox.>"]});
    assert_eq!(server.post("/api/v1/streams", &inbox).await.0, 201);
    let (id, approval_id) = hold(&server).await;
    let (_, one) = server
        .get(&format!("/api/v1/approvals/{approval_id}"))
        .await;
    assert_eq!(one["status"], "pending");
    clock.advance(Duration::from_millis(5_001));
    let (status, expired) = server.get("/api/v1/approvals?status=expired").await;
    assert_eq!(status, 200, "{expired}");
    assert_eq!(expired["approvals"][0]["approval_id"], approval_id.as_str());
    assert_eq!(expired["approvals"][0]["decided_by"], "ace-comms-system");
    let letter = message(&server, "ACE_DLQ", 1).await;
    assert_eq!(letter["payload"]["original"]["id"], id.as_str());
    let late = server
        .post(
            &format!("/api/v1/approval/{approval_id}"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_error(&late, 409, "CONFLICT");
    assert!(
        late.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert_eq!(count(&server, "ACE_EVENTS").await, 0);
    let answer = message(&server, "INBOX", 1).await;
    assert_eq!(answer["correlation_id"], id.as_str());
    assert_eq!(answer["payload"]["decision"], "expired");
    assert_eq!(answer["payload"]["approval_id"], approval_id.as_str());
    let event = message(&server, "ACE_HITL", 2).await;
    assert_eq!(
        event["subject"],
        format!("ace.comms.system.hitl.{approval_id}.evt.approval_decided.v1")
    );
    assert_eq!(event["payload"]["decision"], "expired");
    assert_eq!(event["payload"]["decided_by"], "service:ace-comms-system");
    assert_ledger_kinds(&server, &id, &["held", "expired", "dead_lettered"]).await;
    server.stop().await;
}

#[tokio::test]
async fn given_a_pending_approval_when_the_server_restarts_then_it_can_still_be_approved() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (id, approval_id) = hold(&server).await;
    server.stop().await;
    let server = Server::start(dir.path()).await;
    let (_, list) = server.get("/api/v1/approvals").await;
    assert_eq!(list["approvals"][0]["approval_id"], approval_id.as_str());
    let (status, decided) = server
        .post(
            &format!("/api/v1/approval/{approval_id}"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    let seq = decided["accepted"]["seq"].as_u64().unwrap();
    let released = message(&server, "ACE_EVENTS", seq).await;
    assert_eq!(released["id"], id.as_str());
    assert_eq!(released["governance"]["approval_id"], approval_id.as_str());
    server.stop().await;
}

#[tokio::test]
async fn given_a_batch_with_a_risky_envelope_when_published_then_only_it_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let batch = json!([crate::event(1), risky()]);
    let (status, answer) = server.post("/api/v1/messages/batch", &batch).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (&answer["accepted"], &answer["held"], &answer["refused"]),
        (&json!(1), &json!(1), &json!(0)),
        "{answer}"
    );
    assert_eq!(answer["results"][0]["status"], 202);
    let held = &answer["results"][1];
    assert_eq!(held["status"], 202);
    assert_eq!(held["held"]["status"], "pending_approval");
    assert_eq!(held["held"]["id"], batch[1]["id"]);
    let approval_id = held["held"]["approval_id"].as_str().unwrap();
    let (status, _) = server
        .get(&format!("/api/v1/approvals/{approval_id}"))
        .await;
    assert_eq!(status, 200);
    // A held item is answered 202, like a single held publish: not counted as an error.
    let metrics = server.metrics().await;
    assert!(
        !metrics.contains(r#"ace_comms_errors_total{code="PENDING_APPROVAL"}"#),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_bad_decisions_when_sent_then_each_answers_its_error_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (_, approval_id) = hold(&server).await;
    let path = format!("/api/v1/approval/{approval_id}");
    let broken = server
        .post_raw(&path, "application/json", b"{\"decision\": ".to_vec())
        .await;
    assert_error(&broken, 400, "INVALID_JSON");
    let maybe = server.post(&path, &json!({"decision": "maybe"})).await;
    assert_error(&maybe, 400, "INVALID_JSON");
    assert!(
        maybe.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maybe")
    );
    let extra = server
        .post(&path, &json!({"decision": "approve", "by": "me"}))
        .await;
    assert_error(&extra, 400, "INVALID_JSON");
    let long = "x".repeat(5_000);
    let comment = server
        .post(&path, &json!({"decision": "reject", "comment": long}))
        .await;
    assert_error(&comment, 400, "INVALID_REQUEST");
    let text = server.post_raw(&path, "text/plain", b"{}".to_vec()).await;
    assert_error(&text, 415, "UNSUPPORTED_MEDIA_TYPE");
    let unknown = server
        .post("/api/v1/approval/no-such", &json!({"decision": "approve"}))
        .await;
    assert_error(&unknown, 404, "NOT_FOUND");
    assert_error(
        &server.get("/api/v1/approvals/no-such").await,
        404,
        "NOT_FOUND",
    );
    assert_error(
        &server.get("/api/v1/approvals?status=done").await,
        400,
        "INVALID_REQUEST",
    );
    assert_error(
        &server.get("/api/v1/approvals?colour=red").await,
        400,
        "INVALID_REQUEST",
    );
    let (_, still) = server.get("/api/v1/approvals").await;
    assert_eq!(
        still["approvals"][0]["status"], "pending",
        "bad input decides nothing"
    );
    server.stop().await;
}

/// The plain API key of `role` in [`enforced`] (only its SHA-256 is in the key file).
fn key(role: &str) -> String {
    crate::auth::key_of(role)
}

/// A server in enforced mode with one API key per role (human, approver, admin), and `both`:
/// a principal holding the human and the approver roles.
async fn enforced(dir: &std::path::Path) -> Server {
    let keys = [
        ("human", "human", "human", 1),
        ("approver", "approver", "human", 1),
        ("admin", "admin", "human", 1),
        ("both", "human, approver", "human", 1),
    ];
    crate::auth::start_with_keys(dir, &keys).await
}

/// `POST path` as `role`.
async fn post_as(server: &Server, role: &str, path: &str, body: &Value) -> (u16, Value) {
    let request = server.http.post(server.url(path)).json(body);
    let response = request.header("X-ACE-API-Key", key(role)).send();
    crate::answer(response.await.unwrap()).await
}

/// `GET path` as `role`.
async fn get_as(server: &Server, role: &str, path: &str) -> (u16, Value) {
    let request = server.http.get(server.url(path));
    let response = request.header("X-ACE-API-Key", key(role)).send();
    crate::answer(response.await.unwrap()).await
}

#[tokio::test]
async fn given_enforced_mode_when_deciding_then_only_the_approver_role_may() {
    let dir = tempfile::tempdir().unwrap();
    let server = enforced(dir.path()).await;
    let (status, pending) = post_as(&server, "human", "/api/v1/messages", &risky()).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["status"], "pending_approval");
    let approval_id = pending["approval_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/approval/{approval_id}");
    let approve = json!({"decision": "approve"});
    for role in ["human", "admin"] {
        let refused = post_as(&server, role, &path, &approve).await;
        assert_error(&refused, 403, "FORBIDDEN");
    }
    assert_error(
        &get_as(&server, "human", "/api/v1/approvals").await,
        403,
        "FORBIDDEN",
    );
    let (status, list) = get_as(&server, "approver", "/api/v1/approvals").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["approvals"][0]["requested_by"]["id"], "human-1");
    let (status, decided) = post_as(&server, "approver", &path, &approve).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["approval"]["decided_by"], "approver-1");
    assert_eq!(decided["accepted"]["stream"], "ACE_EVENTS");
    server.stop().await;
}

#[tokio::test]
async fn given_an_approver_who_published_the_held_message_when_deciding_it_then_four_eyes_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let server = enforced(dir.path()).await;
    let (status, pending) = post_as(&server, "both", "/api/v1/messages", &risky()).await;
    assert_eq!(status, 202, "{pending}");
    let approval_id = pending["approval_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/approval/{approval_id}");
    let approve = json!({"decision": "approve"});
    let own = post_as(&server, "both", &path, &approve).await;
    assert_error(&own, 403, "FORBIDDEN");
    assert!(
        own.1["error"]["details"]["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("four eyes")),
        "{}",
        own.1
    );
    let (status, decided) = post_as(&server, "approver", &path, &approve).await;
    assert_eq!(status, 200, "the refusal decided nothing: {decided}");
    assert_eq!(decided["approval"]["decided_by"], "approver-1");
    server.stop().await;
}

#[tokio::test]
async fn given_a_publisher_setting_approval_id_when_published_then_it_is_refused_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = enforced(dir.path()).await;
    let mut forged = risky();
    forged["governance"]["approval_id"] = json!("01a20172-5a43-77f5-88e4-94f69ed94cda");
    let refused = post_as(&server, "human", "/api/v1/messages", &forged).await;
    assert_error(&refused, 403, "FORBIDDEN");
    assert!(
        refused.1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("approval_id"))
    );
    let (_, pending) = get_as(&server, "approver", "/api/v1/approvals").await;
    assert_eq!(pending["approvals"], json!([]), "nothing was held either");
    let (status, entries) = get_as(&server, "approver", "/api/v1/ledger/entries?kind=denied").await;
    assert_eq!(status, 200, "{entries}");
    assert_eq!(
        entries["entries"][0]["message_id"], forged["id"],
        "{entries}"
    );
    assert_eq!(entries["entries"][0]["actor"], "human-1");
    server.stop().await;
}
