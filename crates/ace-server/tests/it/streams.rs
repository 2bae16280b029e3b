//! Streams, consumers and deliveries: the happy paths and the 404/409/400/405 answers.

use serde_json::json;

use crate::{Server, assert_error, envelope_on, event};

#[tokio::test]
async fn given_a_fresh_server_when_listing_streams_then_the_defaults_exist() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (status, body) = server.get("/api/v1/streams").await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["config"]["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "ACE_COMMANDS",
        "ACE_EVENTS",
        "ACE_REPLIES",
        "ACE_DLQ",
        "ACE_HITL",
        "ACE_WORKFLOW",
    ] {
        assert!(names.contains(&wanted), "{wanted} missing from {names:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_stream_when_created_read_and_deleted_then_each_step_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let config = json!({"name": "ORDERS", "subjects": ["orders.>"]});
    let (status, info) = server.post("/api/v1/streams", &config).await;
    assert_eq!(status, 201, "{info}");
    assert_eq!(info["config"]["name"], "ORDERS");
    let (status, info) = server.get("/api/v1/streams/ORDERS").await;
    assert_eq!(status, 200);
    assert_eq!(info["messages"], 0);

    let clash = json!({"name": "OTHER", "subjects": ["orders.eu.>"]});
    assert_error(
        &server.post("/api/v1/streams", &clash).await,
        409,
        "CONFLICT",
    );
    let typo = json!({"name": "X", "subjects": ["x.>"], "max_msg": 3});
    let answer = server.post("/api/v1/streams", &typo).await;
    assert_error(&answer, 400, "INVALID_JSON");
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_msg")
    );

    let (status, _) = server.delete("/api/v1/streams/ORDERS").await;
    assert_eq!(status, 204);
    assert_error(
        &server.get("/api/v1/streams/ORDERS").await,
        404,
        "STREAM_NOT_FOUND",
    );
    assert_error(
        &server.delete("/api/v1/streams/ORDERS").await,
        404,
        "STREAM_NOT_FOUND",
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_consumer_when_fetching_acking_naking_and_terming_then_deliveries_follow() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    for n in 1..=3 {
        assert_eq!(server.post("/api/v1/messages", &event(n)).await.0, 202);
    }
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    let (status, info) = server
        .post(base, &json!({"name": "worker", "ack_wait": 60000}))
        .await;
    assert_eq!(status, 201, "{info}");
    let (status, list) = server.get(base).await;
    assert_eq!(status, 200);
    assert_eq!(list["consumers"][0]["config"]["name"], "worker");

    let (status, got) = server
        .post(
            &format!("{base}/worker/fetch"),
            &json!({"batch": 10, "expires_ms": 500}),
        )
        .await;
    assert_eq!(status, 200, "{got}");
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[0]["delivery"], 1);
    assert_eq!(messages[0]["envelope"]["payload"]["n"], 1);

    let (status, acked) = server
        .post(&format!("{base}/worker/ack"), &json!({"seqs": [1]}))
        .await;
    assert_eq!(status, 200, "{acked}");
    assert_eq!(acked["done"], json!([1]));
    let (status, _) = server
        .post(
            &format!("{base}/worker/nak"),
            &json!({"seqs": [2], "delay_ms": 0}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post(
            &format!("{base}/worker/term"),
            &json!({"seqs": [3], "reason": "poison"}),
        )
        .await;
    assert_eq!(status, 200);

    let (_, again) = server
        .post(
            &format!("{base}/worker/fetch"),
            &json!({"batch": 10, "expires_ms": 1000}),
        )
        .await;
    let again = again["messages"].as_array().unwrap();
    assert_eq!(
        again.len(),
        1,
        "only the nak'ed message comes back: {again:?}"
    );
    assert_eq!(again[0]["seq"], 2);
    assert_eq!(again[0]["delivery"], 2);

    let (_, dlq) = server.get("/api/v1/streams/ACE_DLQ").await;
    assert_eq!(dlq["messages"], 1, "the termed message is a dead letter");

    let (status, info) = server.get(&format!("{base}/worker")).await;
    assert_eq!(status, 200);
    assert_eq!(info["counters"]["acked"], 1);
    assert_eq!(info["counters"]["termed"], 1);
    server.stop().await;
}

#[tokio::test]
async fn given_bad_acknowledgements_when_posted_then_each_is_refused_precisely() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    server.post(base, &json!({"name": "w"})).await;
    let answer = server
        .post(&format!("{base}/w/ack"), &json!({"seqs": [42]}))
        .await;
    assert_error(&answer, 404, "NOT_FOUND");
    let answer = server
        .post(&format!("{base}/w/ack"), &json!({"seqs": []}))
        .await;
    assert_error(&answer, 400, "INVALID_REQUEST");
    let answer = server
        .post(
            &format!("{base}/w/ack"),
            &json!({"seqs": [1], "delay_ms": 5}),
        )
        .await;
    assert_error(&answer, 400, "INVALID_REQUEST");
    assert_eq!(answer.1["error"]["details"]["field"], "delay_ms");
    let answer = server
        .post(&format!("{base}/w/fetch"), &json!({"batch": 0}))
        .await;
    assert_error(&answer, 400, "INVALID_REQUEST");
    let answer = server
        .post(&format!("{base}/w/fetch"), &json!({"bacth": 1}))
        .await;
    assert_error(&answer, 400, "INVALID_JSON");
    server.stop().await;
}

#[tokio::test]
async fn given_unknown_names_when_addressed_then_404_with_the_right_code() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    assert_error(
        &server.get(&format!("{base}/ghost")).await,
        404,
        "CONSUMER_NOT_FOUND",
    );
    assert_error(
        &server.delete(&format!("{base}/ghost")).await,
        404,
        "CONSUMER_NOT_FOUND",
    );
    assert_error(
        &server
            .post(&format!("{base}/ghost/fetch"), &json!({}))
            .await,
        404,
        "CONSUMER_NOT_FOUND",
    );
    assert_error(
        &server.get("/api/v1/streams/NOPE/consumers").await,
        404,
        "STREAM_NOT_FOUND",
    );
    assert_error(
        &server.get("/api/v1/streams/ACE_EVENTS/messages/99").await,
        404,
        "NOT_FOUND",
    );
    assert_error(&server.get("/api/v1/nothing/here").await, 404, "NOT_FOUND");
    let answer = server
        .get("/api/v1/streams/ACE_EVENTS/messages/not-a-number")
        .await;
    assert_error(&answer, 400, "INVALID_REQUEST");
    let answer = server.delete("/api/v1/messages").await;
    assert_error(&answer, 405, "METHOD_NOT_ALLOWED");
    server.stop().await;
}

#[tokio::test]
async fn given_a_consumer_when_deleted_then_it_is_gone_and_a_message_is_still_readable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let env = envelope_on("ace.comms.http.human.ann.evt.v1", json!({"hello": "world"}));
    server.post("/api/v1/messages", &env).await;
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    server.post(base, &json!({"name": "temp"})).await;
    assert_eq!(server.delete(&format!("{base}/temp")).await.0, 204);
    assert_error(
        &server.get(&format!("{base}/temp")).await,
        404,
        "CONSUMER_NOT_FOUND",
    );
    let (status, stored) = server.get("/api/v1/streams/ACE_EVENTS/messages/1").await;
    assert_eq!(status, 200);
    assert_eq!(stored["seq"], 1);
    assert_eq!(stored["envelope"]["id"], env["id"]);
    assert!(stored["stored_at"].is_string());
    server.stop().await;
}
