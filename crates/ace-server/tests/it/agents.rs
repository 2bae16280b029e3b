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
    let online = read_back(&server, "PRESENCE", 1).await;
    let offline = read_back(&server, "PRESENCE", 2).await;
    let subject = |m: &Value| m["envelope"]["subject"].as_str().unwrap_or("").to_owned();
    assert_eq!(
        subject(&online),
        "ace.comms.system.agent.a1.evt.agent_online.v1",
        "{online}"
    );
    assert_eq!(
        subject(&offline),
        "ace.comms.system.agent.a1.evt.agent_offline.v1",
        "{offline}"
    );
    assert_eq!(offline["envelope"]["payload"]["id"], "a1");
    assert_eq!(offline["envelope"]["name"], "agent_offline");
    assert_eq!(offline["envelope"]["schema"], "comms.agent.presence@1.0.0");
    let (_, info) = server.get("/api/v1/streams/PRESENCE").await;
    assert_eq!(info["messages"], 2, "one online, one offline: {info}");
    server.stop().await;
}

#[tokio::test]
async fn given_bad_inputs_when_sent_then_each_answers_its_error_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    assert_error(&server.get("/api/v1/agents/nobody").await, 404, "NOT_FOUND");
    let url = "/api/v1/agents/a/heartbeat";
    let broken = server.post_raw(url, "application/json", b"{\"capabilities\": [".to_vec());
    assert_error(&broken.await, 400, "INVALID_JSON");
    let unknown = server
        .post(url, &json!({"capabilities": [], "colour": "red"}))
        .await;
    assert_error(&unknown, 400, "INVALID_JSON");
    let zero = server.post(url, &json!({"ttl_ms": 0})).await;
    assert_error(&zero, 400, "INVALID_REQUEST");
    assert_eq!(zero.1["error"]["details"]["field"], "ttl_ms");
    let clearance = server.post(url, &json!({"clearance": 9})).await;
    assert_eq!(clearance.1["error"]["details"]["field"], "clearance");
    let bad_id = server
        .post("/api/v1/agents/a.b/heartbeat", &json!({}))
        .await;
    assert_error(&bad_id, 400, "INVALID_REQUEST");
    assert_eq!(bad_id.1["error"]["details"]["field"], "id");
    let text = server.post_raw(url, "text/plain", b"{}".to_vec()).await;
    assert_error(&text, 415, "UNSUPPORTED_MEDIA_TYPE");
    let query = server.get("/api/v1/agents?colour=red").await;
    assert_error(&query, 400, "INVALID_REQUEST");
    server.stop().await;
}

#[tokio::test]
async fn given_nobody_reads_when_presence_expires_then_the_periodic_sweep_publishes_offline() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::fixed());
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    config.state.agent_sweep_ms = 20;
    let server = Server::start_clocked(&config, clock.clone()).await;
    let stream = json!({"name": "PRESENCE", "subjects": ["ace.comms.system.agent.>"]});
    assert_eq!(server.post("/api/v1/streams", &stream).await.0, 201);
    let beat = json!({"ttl_ms": 1_000});
    assert_eq!(
        server.post("/api/v1/agents/quiet/heartbeat", &beat).await.0,
        200
    );
    clock.advance(Duration::from_millis(1_000));
    // Only the server's sweep task can notice now: poll the stream, never the agents routes.
    let mut stored = 0;
    for _ in 0..250 {
        stored = server.get("/api/v1/streams/PRESENCE").await.1["messages"]
            .as_u64()
            .unwrap_or(0);
        if stored == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(stored, 2, "online then offline, found by the sweep");
    let offline = read_back(&server, "PRESENCE", 2).await;
    let subject = &offline["envelope"]["subject"];
    assert_eq!(
        subject, "ace.comms.system.agent.quiet.evt.agent_offline.v1",
        "{offline}"
    );
    server.stop().await;
}

/// Stored message `seq` of `stream`, read until it is there: a stream's message count includes
/// an append still being made durable, which a read does not see yet (up to 5 s).
async fn read_back(server: &Server, stream: &str, seq: u64) -> Value {
    let path = format!("/api/v1/streams/{stream}/messages/{seq}");
    let mut last = Value::Null;
    for _ in 0..250 {
        let (status, body) = server.get(&path).await;
        if status == 200 {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{path} never read back: {last}");
}
