//! Agents and sessions through `Client`: heartbeats and the presence list, session writes under
//! each `Precondition`, and their refusals (404, 412, 428).

use ace_client::{Heartbeat, Precondition};
use ace_envelope::ErrorCode;
use serde_json::json;

use crate::Server;

#[tokio::test]
async fn given_a_heartbeat_when_agents_are_listed_then_the_agent_is_present_and_filterable() {
    let server = Server::start().await;
    let client = &server.client;
    let beat = Heartbeat {
        agent_type: Some("llm".into()),
        capabilities: vec!["summarize".into()],
        clearance: Some(2),
        ..Heartbeat::default()
    };
    let presence = client.heartbeat("writer-1", &beat).await.expect("present");
    assert_eq!(presence.id, "writer-1");
    assert_eq!(presence.capabilities, ["summarize"]);
    let one = client.agent("writer-1").await.expect("found");
    assert_eq!(one.clearance, Some(2));
    let with = client.agents(Some("summarize")).await.expect("listed");
    assert_eq!(with.len(), 1);
    let without = client.agents(Some("translate")).await.expect("listed");
    assert!(without.is_empty());
    let err = client.agent("ghost").await.expect_err("unknown");
    assert_eq!(err.status(), Some(404), "{err}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_session_when_written_under_each_precondition_then_versions_guard_it() {
    let server = Server::start().await;
    let client = &server.client;
    let created = client
        .put_session("chat-1", json!({"turn": 1}), Precondition::Absent)
        .await
        .expect("created");
    assert_eq!(created.version, 1);
    assert_eq!(created.id, "chat-1");
    let updated = client
        .put_session("chat-1", json!({"turn": 2}), Precondition::Version(1))
        .await
        .expect("updated");
    assert_eq!(updated.version, 2);
    let read = client.session("chat-1").await.expect("read");
    assert_eq!((read.version, read.data), (2, json!({"turn": 2})));

    let stale = client
        .put_session("chat-1", json!({"turn": 3}), Precondition::Version(1))
        .await
        .expect_err("stale");
    assert_eq!(stale.status(), Some(412), "{stale}");
    assert_eq!(stale.code(), Some(ErrorCode::PreconditionFailed));
    let blind = client
        .put_session("chat-1", json!({"turn": 3}), Precondition::None)
        .await
        .expect_err("no precondition");
    assert_eq!(blind.status(), Some(428), "{blind}");
    let exists = client
        .put_session("chat-1", json!({"turn": 3}), Precondition::Exists)
        .await
        .expect("exists");
    assert_eq!(exists.version, 3);
    // a `/` in an id is encoded, so it reaches the session route and is refused there
    let err = client
        .put_session("chat/1", json!({}), Precondition::Absent)
        .await
        .expect_err("bad id");
    assert_eq!(err.status(), Some(400), "{err}");
    let err = client.session("nobody").await.expect_err("unknown");
    assert_eq!(err.status(), Some(404), "{err}");
    server.stop().await;
}
