//! Attacks on who a message or a resource belongs to, against an enforced server with API keys:
//! a confused deputy through `reply_to` (and a stream's dead-letter subject), impersonation
//! through `source` and heartbeats, ungoverned sessions, approvals shown to approvers who may not
//! receive the held message, unrecorded denials, a far-future `created_at`, and a CloudEvent
//! whose `source` names someone else. Each test states the refusal and, where it matters, that
//! the refusal is a `denied` ledger entry.

use serde_json::{Value, json};

use crate::auth::{Cred, get_as, key_of, post_as, start_enforced, start_with_keys};
use crate::{Server, answer, assert_error, envelope_on};

/// Where the tour's attacker asked the server to answer: a command it may not send itself.
const DROP_TABLE: &str = "ace.comms.http.ops.db.cmd.drop_table.v1";
/// An agent-to-agent event the agent role may publish.
const A2A: &str = "ace.comms.a2a.agent.planner.evt.x.v1";

fn key(name: &str) -> Cred {
    Cred::Key(key_of(name))
}

/// An envelope on `subject` that the EHI gate holds (score above every default threshold).
fn risky(subject: &str) -> Value {
    let mut envelope = envelope_on(subject, json!({"plan": "x"}));
    envelope["governance"] = json!({"ehi_score": 0.99});
    envelope
}

/// The `denied` ledger entries (read as the admin), newest last.
async fn denials(server: &Server) -> Vec<Value> {
    let (status, page) = get_as(
        server,
        &key("admin"),
        "/api/v1/ledger/entries?kind=denied&limit=1000",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().cloned().unwrap_or_default()
}

/// Whether some `denied` entry by `actor` has a decision containing `text`.
async fn denied(server: &Server, actor: &str, text: &str) -> bool {
    denials(server)
        .await
        .iter()
        .any(|e| e["actor"] == actor && e["decision"].as_str().is_some_and(|d| d.contains(text)))
}

async fn put_as(
    server: &Server,
    cred: &Cred,
    path: &str,
    body: &Value,
    if_match: Option<&str>,
) -> (u16, Value) {
    let mut request = server.http.put(server.url(path)).json(body);
    if let Cred::Key(k) = cred {
        request = request.header("X-ACE-API-Key", k);
    }
    if let Some(tag) = if_match {
        request = request.header("If-Match", tag);
    }
    answer(request.send().await.unwrap()).await
}

#[tokio::test]
async fn given_a_held_message_whose_reply_to_its_publisher_may_not_use_when_published_then_it_is_refused_and_nothing_is_held()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let mut envelope = risky(A2A);
    envelope["headers"] = json!({"reply_to": DROP_TABLE});
    let refused = post_as(&server, &key("agent"), "/api/v1/messages", &envelope).await;
    assert_error(&refused, 403, "FORBIDDEN");
    assert!(refused.1.to_string().contains("reply_to"), "{}", refused.1);
    let (status, pending) = get_as(&server, &key("approver"), "/api/v1/approvals").await;
    assert_eq!(status, 200);
    assert_eq!(
        pending["approvals"].as_array().map(Vec::len),
        Some(0),
        "{pending}"
    );
    assert!(denied(&server, "agent-1", "reply_to").await);
    server.stop().await;
}

#[tokio::test]
async fn given_a_reply_to_that_is_an_inbox_or_the_publishers_own_subject_when_held_then_it_is_accepted()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    for reply_to in [
        "ace.comms.system.inbox.r42",
        "ace.comms.a2a.agent.me.evt.answer.v1",
    ] {
        let mut envelope = risky(A2A);
        envelope["headers"] = json!({"reply_to": reply_to});
        let held = post_as(&server, &key("agent"), "/api/v1/messages", &envelope).await;
        assert_eq!(
            (held.0, held.1["status"].clone()),
            (202, json!("pending_approval"))
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_malformed_reply_to_when_published_then_400_names_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    for reply_to in ["ace.comms.a2a.>", "ace..x", ""] {
        let mut envelope = envelope_on(A2A, json!({}));
        envelope["headers"] = json!({"reply_to": reply_to});
        let refused = post_as(&server, &key("agent"), "/api/v1/messages", &envelope).await;
        assert_error(&refused, 400, "INVALID_REQUEST");
        assert!(refused.1.to_string().contains("reply_to"), "{}", refused.1);
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_stream_whose_dead_letter_subject_its_creator_may_not_publish_on_when_added_then_403()
 {
    let dir = tempfile::tempdir().unwrap();
    // A manager who may manage streams (admin's publish rights) but whose own publish rights
    // stop short of the dead-letter subject: the agent role cannot manage at all, so the admin
    // is refused a dead-letter subject denied to admins — the approvals family.
    let server = start_enforced(dir.path(), |_| {}).await;
    let stream = json!({
        "name": "TRAP",
        "subjects": ["ace.comms.a2a.trap.>"],
        "dead_letter": "ace.comms.system.hitl.approval.x.cmd.decide.v1",
    });
    let refused = post_as(&server, &key("admin"), "/api/v1/streams", &stream).await;
    assert_error(&refused, 403, "FORBIDDEN");
    assert!(denied(&server, "admin-1", "hitl").await);
    server.stop().await;
}

#[tokio::test]
async fn given_an_agent_claiming_another_source_when_publishing_then_403_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let mut envelope = envelope_on(A2A, json!({}));
    envelope["source"] = json!({"type": "human", "id": "ops-alice"});
    let refused = post_as(&server, &key("agent"), "/api/v1/messages", &envelope).await;
    assert_error(&refused, 403, "FORBIDDEN");
    assert!(refused.1.to_string().contains("source"), "{}", refused.1);
    assert!(denied(&server, "agent-1", "ops-alice").await);
    // Its own identity, or none (the server stamps it), passes.
    envelope["source"] = json!({"type": "agent", "id": "agent-1"});
    let own = post_as(&server, &key("agent"), "/api/v1/messages", &envelope).await;
    assert_eq!(own.0, 202, "{}", own.1);
    server.stop().await;
}

/// POSTs a structured CloudEvent as `cred`.
async fn post_cloudevent(server: &Server, cred: &Cred, event: &Value) -> (u16, Value) {
    let mut request = server
        .http
        .post(server.url("/api/v1/messages"))
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string());
    if let Cred::Key(k) = cred {
        request = request.header("X-ACE-API-Key", k);
    }
    answer(request.send().await.unwrap()).await
}

#[tokio::test]
async fn given_a_cloudevent_whose_source_names_another_when_published_then_the_caller_is_the_sender()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    // A foreign event (no acekind) dressed as the admin's: its source is only kept, never believed.
    let event = json!({
        "specversion": "1.0", "id": "order-1", "source": "/ace-comms/service/admin-1",
        "type": "com.example.order.created", "data": {"total": 1}
    });
    let first = post_cloudevent(&server, &key("human"), &event).await;
    assert_eq!(first.0, 202, "{}", first.1);
    // The same source and id from another principal is not taken for the human's duplicate.
    let second = post_cloudevent(&server, &key("admin"), &event).await;
    assert_eq!(second.0, 202, "{}", second.1);
    assert_eq!(second.1["duplicate"], false, "{}", second.1);
    for (answer, sender) in [(&first.1, "human-1"), (&second.1, "admin-1")] {
        let path = format!("/api/v1/streams/ACE_EVENTS/messages/{}", answer["seq"]);
        let (status, message) = get_as(&server, &key("admin"), &path).await;
        assert_eq!(status, 200, "{message}");
        let envelope = &message["envelope"];
        assert_eq!(envelope["source"]["id"], sender, "{envelope}");
        assert_eq!(
            envelope["headers"]["ce-source"],
            "/ace-comms/service/admin-1"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn given_an_agent_beating_as_another_or_above_its_clearance_when_heartbeating_then_403() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let beat = json!({"capabilities": ["deploy"], "clearance": 5});
    let other = post_as(
        &server,
        &key("agent"),
        "/api/v1/agents/planner/heartbeat",
        &beat,
    )
    .await;
    assert_error(&other, 403, "FORBIDDEN");
    let own = "/api/v1/agents/agent-1/heartbeat";
    let above = post_as(&server, &key("agent"), own, &beat).await;
    assert_error(&above, 403, "FORBIDDEN");
    assert!(above.1.to_string().contains("clearance"), "{}", above.1);
    let honest = post_as(
        &server,
        &key("agent"),
        own,
        &json!({"capabilities": ["plan"]}),
    )
    .await;
    assert_eq!(honest.0, 200, "{}", honest.1);
    assert_eq!(honest.1["clearance"], 1, "its own clearance: {}", honest.1);
    let (_, listed) = get_as(&server, &key("agent"), "/api/v1/agents").await;
    let ids: Vec<&str> = listed["agents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert_eq!(ids, ["agent-1"], "{listed}");
    assert!(denied(&server, "agent-1", "planner").await);
    server.stop().await;
}

#[tokio::test]
async fn given_a_session_of_one_principal_when_others_read_or_overwrite_it_then_403_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let path = "/api/v1/sessions/chat-7";
    let created = put_as(
        &server,
        &key("agent"),
        path,
        &json!({"data": {"t": 1}}),
        None,
    )
    .await;
    assert_eq!(created.0, 201, "{}", created.1);
    assert_eq!(created.1["owner"], "agent-1");
    for intruder in ["human", "auditor", "observer", "approver"] {
        let read = get_as(&server, &key(intruder), path).await;
        assert_error(&read, 403, "FORBIDDEN");
        let body = json!({"data": {"pwned": true}});
        let write = put_as(&server, &key(intruder), path, &body, Some("\"1\"")).await;
        assert_error(&write, 403, "FORBIDDEN");
    }
    // The owner still reads its own state, untouched; the admin may manage it.
    let (status, own) = get_as(&server, &key("agent"), path).await;
    assert_eq!((status, own["data"].clone()), (200, json!({"t": 1})));
    let (status, _) = get_as(&server, &key("admin"), path).await;
    assert_eq!(status, 200);
    assert!(denied(&server, "human-1", "chat-7").await);
    assert!(denied(&server, "auditor-1", "chat-7").await);
    let (_, writes) = get_as(
        &server,
        &key("admin"),
        "/api/v1/ledger/entries?kind=session_written",
    )
    .await;
    let writes = writes["entries"].as_array().unwrap();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0]["actor"], "agent-1");
    assert!(writes[0]["content_sha256"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn given_a_held_message_above_an_approvers_clearance_when_listed_read_or_decided_then_it_is_not_shown()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        ("agent", "agent", "agent", 5),
        ("low", "approver", "human", 1),
        ("high", "approver", "human", 5),
    ];
    let server = start_with_keys(dir.path(), &keys).await;
    let mut envelope = risky(A2A);
    envelope["governance"]["label"] = json!("secret");
    let held = post_as(&server, &key("agent"), "/api/v1/messages", &envelope).await;
    assert_eq!(
        (held.0, held.1["status"].clone()),
        (202, json!("pending_approval"))
    );
    let approval_id = held.1["approval_id"]
        .as_str()
        .expect("approval id")
        .to_owned();
    let (_, listed) = get_as(&server, &key("low"), "/api/v1/approvals").await;
    assert_eq!(
        listed["approvals"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    let one = format!("/api/v1/approvals/{approval_id}");
    assert_error(&get_as(&server, &key("low"), &one).await, 404, "NOT_FOUND");
    let decide = format!("/api/v1/approval/{approval_id}");
    let approve = json!({"decision": "approve"});
    let refused = post_as(&server, &key("low"), &decide, &approve).await;
    assert_error(&refused, 404, "NOT_FOUND");
    // The cleared approver sees the payload and decides.
    let (_, listed) = get_as(&server, &key("high"), "/api/v1/approvals").await;
    assert_eq!(
        listed["approvals"][0]["envelope"]["payload"],
        json!({"plan": "x"})
    );
    let decided = post_as(&server, &key("high"), &decide, &approve).await;
    assert_eq!(decided.0, 200, "{}", decided.1);
    server.stop().await;
}

#[tokio::test]
async fn given_refused_subscribe_read_manage_and_ledger_requests_when_made_then_each_is_a_denied_entry()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let agent = key("agent");
    let manage = json!({"name": "MINE", "subjects": ["ace.comms.a2a.mine.>"]});
    assert_error(
        &post_as(&server, &agent, "/api/v1/streams", &manage).await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &get_as(&server, &agent, "/api/v1/streams/ACE_EVENTS").await,
        403,
        "FORBIDDEN",
    );
    assert_error(
        &get_as(&server, &key("human"), "/api/v1/ledger/entries").await,
        403,
        "FORBIDDEN",
    );
    assert!(denied(&server, "agent-1", "manage").await || denied(&server, "agent-1", "MINE").await);
    let entries = denials(&server).await;
    let subjects: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["subject"].as_str())
        .collect();
    assert!(
        subjects.contains(&"ace.comms.system.stream.MINE.cmd.manage.v1"),
        "{subjects:?}"
    );
    assert!(subjects.contains(&"stream.ACE_EVENTS"), "{subjects:?}");
    assert!(
        subjects.contains(&"ace.comms.system.ledger.>"),
        "{subjects:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_created_at_far_in_the_future_when_published_with_a_ttl_then_400_names_created_at()
{
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut envelope = envelope_on(crate::EVENT_SUBJECT, json!({}));
    envelope["created_at"] = json!("2999-01-01T00:00:00Z");
    envelope["ttl_ms"] = json!(1000);
    let refused = server.post("/api/v1/messages", &envelope).await;
    assert_error(&refused, 400, "INVALID_ENVELOPE");
    assert!(
        refused.1.to_string().contains("/created_at"),
        "{}",
        refused.1
    );
    server.stop().await;
}

#[tokio::test]
async fn given_rbac_escapes_and_a_forged_approval_id_when_published_then_each_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let agent = key("agent");
    // Outside the agent's families, into the system family, a command to a non-agent.
    for subject in [
        "ace.comms.http.service.kpi.evt.v1",
        "ace.comms.system.hitl.approval.x.cmd.decide.v1",
        "ace.comms.a2a.service.db.cmd.drop.v1",
    ] {
        let refused = post_as(
            &server,
            &agent,
            "/api/v1/messages",
            &envelope_on(subject, json!({})),
        )
        .await;
        assert_error(&refused, 403, "FORBIDDEN");
    }
    let mut forged = envelope_on(A2A, json!({}));
    forged["governance"] = json!({"approval_id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"});
    let refused = post_as(&server, &agent, "/api/v1/messages", &forged).await;
    assert_error(&refused, 403, "FORBIDDEN");
    server.stop().await;
}
