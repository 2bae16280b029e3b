//! Agent presence over real HTTP: heartbeats register and refresh, `GET /agents` lists and
//! filters by capability, presence expires on the server's (manual) clock with an
//! `agent.online` then `agent.offline` event on the bus, and every malformed input answers its
//! error code.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::ManualClock;
use ace_server::Config;
use serde_json::{Value, json};

use crate::{Server, assert_error};

fn ids(answer: &Value) -> Vec<&str> {
    answer["agents"]
        .as_array()
        .expect("an agent list")
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn given_heartbeats_when_listing_then_present_agents_show_and_capability_filters_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let beat = json!({
        "type": "llm", "capabilities": ["summarize", "translate"], "clearance": 3,
        "meta": {"model": "m1"}
    });
    let (status, first) = server
        .post("/api/v1/agents/writer-1/heartbeat", &beat)
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["id"], "writer-1");
    assert_eq!(first["type"], "llm");
    assert_eq!(first["ttl_ms"], 30_000, "the configured default ttl");
    let other = json!({"capabilities": ["translate"]});
    assert_eq!(
        server.post("/api/v1/agents/a-0/heartbeat", &other).await.0,
        200
    );
    let (status, all) = server.get("/api/v1/agents").await;
    assert_eq!((status, ids(&all)), (200, vec!["a-0", "writer-1"]));
    let (_, some) = server.get("/api/v1/agents?capability=summarize").await;
    assert_eq!(ids(&some), ["writer-1"]);
    let (status, one) = server.get("/api/v1/agents/writer-1").await;
    assert_eq!((status, &one["meta"]), (200, &json!({"model": "m1"})));
    assert_eq!(one["online_since"], first["online_since"]);
    server.stop().await;
}

#[tokio::test]
async fn given_a_manual_clock_when_the_ttl_passes_then_the_agent_goes_offline_with_events() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::fixed());
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let server = Server::start_clocked(&config, clock.clone()).await;
    // System subjects have no default stream: capture the presence events to read them back.
    let stream = json!({"name": "PRESENCE", "subjects": ["ace.comms.system.agent.>"]});
    assert_eq!(server.post("/api/v1/streams", &stream).await.0, 201);
    let beat = json!({"capabilities": ["x"], "ttl_ms": 5_000});
    assert_eq!(
        server.post("/api/v1/agents/a1/heartbeat", &beat).await.0,
        200
    );
    clock.advance(Duration::from_millis(4_000));
    assert_eq!(
        server.post("/api/v1/agents/a1/heartbeat", &beat).await.0,
        200
    );
    clock.advance(Duration::from_millis(4_000));
    assert_eq!(server.get("/api/v1/agents/a1").await.0, 200, "refreshed");
    clock.advance(Duration::from_millis(1_001));
    assert_error(&server.get("/api/v1/agents/a1").await, 404, "NOT_FOUND");
    assert!(ids(&server.get("/api/v1/agents").await.1).is_empty());
    let (_, online) = server.get("/api/v1/streams/PRESENCE/messages/1").await;
    // The count can run ahead of what a read sees while the append is being made durable:
    // read until the message is there.
    let mut offline = serde_json::Value::Null;
    for _ in 0..250 {
        let (status, body) = server.get("/api/v1/streams/PRESENCE/messages/2").await;
        offline = body;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let subject = &offline["envelope"]["subject"];
    assert_eq!(
        subject, "ace.comms.system.agent.quiet.evt.agent_offline.v1",
        "{offline}"
    );
    server.stop().await;
}
