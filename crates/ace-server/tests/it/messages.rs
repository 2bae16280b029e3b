//! The publish routes: every accepted form (envelope, structured and binary CloudEvent, batch)
//! and every refusal with its status and code.

use ace_envelope::{Envelope, Kind, to_binary, to_cloudevent_json};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{EVENT_SUBJECT, Server, assert_error, envelope_on, event};

#[tokio::test]
async fn given_a_valid_envelope_when_posted_then_202_with_stream_and_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let env = event(1);
    let (status, body) = server.post("/api/v1/messages", &env).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["id"], env["id"]);
    assert_eq!(body["stream"], "ACE_EVENTS");
    assert_eq!(body["seq"], 1);
    assert_eq!(body["duplicate"], false);
    server.stop().await;
}

#[tokio::test]
async fn given_a_repeated_idempotency_key_when_posted_then_the_original_sequence_is_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut first = event(1);
    first["idempotency_key"] = json!("order-7");
    let mut again = event(2);
    again["idempotency_key"] = json!("order-7");
    server.post("/api/v1/messages", &first).await;
    let (status, body) = server.post("/api/v1/messages", &again).await;
    assert_eq!(status, 202);
    assert_eq!(body["seq"], 1);
    assert_eq!(body["duplicate"], true);
    server.stop().await;
}

#[tokio::test]
async fn given_cloudevents_in_structured_and_binary_mode_when_posted_then_both_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let env = Envelope::builder(Kind::Event, EVENT_SUBJECT)
        .payload_json(json!({"mode": "structured"}))
        .build()
        .unwrap();
    let structured = to_cloudevent_json(&env).unwrap();
    let answer = server
        .post_raw(
            "/api/v1/messages",
            "application/cloudevents+json",
            structured,
        )
        .await;
    assert_eq!(answer.0, 202, "{}", answer.1);
    assert_eq!(answer.1["id"], env.id.to_string());

    let env = Envelope::builder(Kind::Event, EVENT_SUBJECT)
        .payload_json(json!({"mode": "binary"}))
        .build()
        .unwrap();
    let (headers, body) = to_binary(&env).unwrap();
    let mut request = server.http.post(server.url("/api/v1/messages")).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let (status, answer) = crate::answer(request.send().await.unwrap()).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["seq"], 2);
    let (_, stored) = server.get("/api/v1/streams/ACE_EVENTS/messages/2").await;
    assert_eq!(stored["envelope"]["payload"]["mode"], "binary");
    server.stop().await;
}

#[tokio::test]
async fn given_malformed_json_when_posted_then_400_invalid_json_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let answer = server
        .post_raw(
            "/api/v1/messages",
            "application/json",
            b"{\n \"kind\": }".to_vec(),
        )
        .await;
    assert_error(&answer, 400, "INVALID_JSON");
    assert_eq!(answer.1["error"]["details"]["line"], 2);
    assert!(answer.1["error"]["details"]["column"].as_u64().unwrap() > 0);
    server.stop().await;
}

#[tokio::test]
async fn given_bad_envelopes_when_posted_then_400_names_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut missing = event(1);
    missing.as_object_mut().unwrap().remove("kind");
    let answer = server.post("/api/v1/messages", &missing).await;
    assert_error(&answer, 400, "INVALID_ENVELOPE");
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("kind")
    );

    let mut bad_subject = event(1);
    bad_subject["subject"] = json!("ace..comms");
    let answer = server.post("/api/v1/messages", &bad_subject).await;
    assert_error(&answer, 400, "INVALID_ENVELOPE");
    assert_eq!(
        answer.1["error"]["details"]["violations"][0]["path"],
        "/subject"
    );

    let mut looping = event(1);
    looping["hops"] = json!(33);
    assert_error(
        &server.post("/api/v1/messages", &looping).await,
        400,
        "HOP_LIMIT_EXCEEDED",
    );

    let mut expired = event(1);
    expired["created_at"] = json!("2020-01-01T00:00:00Z");
    expired["ttl_ms"] = json!(1000);
    assert_error(
        &server.post("/api/v1/messages", &expired).await,
        400,
        "MESSAGE_EXPIRED",
    );

    let bad_ce = server
        .post_raw(
            "/api/v1/messages",
            "application/cloudevents+json",
            b"{\"specversion\":\"1.0\"}".to_vec(),
        )
        .await;
    assert_eq!(bad_ce.0, 400, "{}", bad_ce.1);
    server.stop().await;
}

#[tokio::test]
async fn given_a_wrong_content_type_when_posted_then_415() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let answer = server
        .post_raw("/api/v1/messages", "text/plain", b"hello".to_vec())
        .await;
    assert_error(&answer, 415, "UNSUPPORTED_MEDIA_TYPE");
    let answer = server
        .post_raw("/api/v1/messages/batch", "text/csv", b"a,b".to_vec())
        .await;
    assert_error(&answer, 415, "UNSUPPORTED_MEDIA_TYPE");
    let answer = server
        .post_raw("/api/v1/streams", "application/xml", b"<x/>".to_vec())
        .await;
    assert_error(&answer, 415, "UNSUPPORTED_MEDIA_TYPE");
    server.stop().await;
}

#[tokio::test]
async fn given_an_unknown_schema_or_a_payload_breaking_its_contract_when_posted_then_422() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut unknown = event(1);
    unknown["schema"] = json!("no.such.contract@1.0.0");
    assert_error(
        &server.post("/api/v1/messages", &unknown).await,
        422,
        "UNKNOWN_SCHEMA",
    );

    let mut violating = envelope_on(EVENT_SUBJECT, json!({"unexpected": true}));
    violating["schema"] = json!("comms.tool_call@1.0.0");
    let answer = server.post("/api/v1/messages", &violating).await;
    assert_error(&answer, 422, "CONTRACT_VIOLATION");
    assert!(
        answer.1["error"]["details"]["errors"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    );

    let (_, stream) = server.get("/api/v1/streams/ACE_EVENTS").await;
    assert_eq!(stream["messages"], 0, "a refused message is never appended");
    server.stop().await;
}

#[tokio::test]
async fn given_a_body_over_the_limit_when_posted_then_413_also_when_streamed_in_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.max_body_bytes = 2048).await;
    let big = envelope_on(EVENT_SUBJECT, json!({ "blob": "x".repeat(4096) }));
    let answer = server.post("/api/v1/messages", &big).await;
    assert_error(&answer, 413, "PAYLOAD_TOO_LARGE");
    assert_eq!(answer.1["error"]["details"]["limit"], 2048);

    // A chunked body announces no length: the limit must still cut it off.
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let head = "POST /api/v1/messages HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
                Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    socket.write_all(head.as_bytes()).await.unwrap();
    let chunk = "x".repeat(1000);
    for _ in 0..4 {
        let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if socket.write_all(framed.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = socket.write_all(b"0\r\n\r\n").await;
    let mut reply = String::new();
    let _ = socket.read_to_string(&mut reply).await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains("PAYLOAD_TOO_LARGE"), "{reply}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_full_stream_with_discard_new_when_posted_then_429_backpressure() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let stream = json!({
        "name": "TINY", "subjects": ["tiny.>"], "max_msgs": 1, "discard": "new"
    });
    assert_eq!(server.post("/api/v1/streams", &stream).await.0, 201);
    let first = server
        .post("/api/v1/messages", &envelope_on("tiny.a", json!(1)))
        .await;
    assert_eq!(first.0, 202, "{}", first.1);
    let answer = server
        .post("/api/v1/messages", &envelope_on("tiny.b", json!(2)))
        .await;
    assert_error(&answer, 429, "BACKPRESSURE");
    assert!(
        answer.1["error"]["details"]["retry_after_ms"]
            .as_u64()
            .is_some()
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_batch_with_good_and_bad_envelopes_when_posted_then_each_is_answered_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut unknown = event(3);
    unknown["schema"] = json!("no.such@1.0.0");
    let batch = json!([event(1), {"not": "an envelope"}, unknown, event(4)]);
    let (status, body) = server.post("/api/v1/messages/batch", &batch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["refused"], 2);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 202);
    assert_eq!(results[0]["seq"], 1);
    assert_eq!(results[1]["error"]["code"], "INVALID_ENVELOPE");
    assert_eq!(results[2]["error"]["code"], "UNKNOWN_SCHEMA");
    assert_eq!(results[2]["status"], 422);
    assert_eq!(results[3]["seq"], 2);

    let env = Envelope::builder(Kind::Event, EVENT_SUBJECT)
        .payload_json(json!({"via": "cloudevents-batch"}))
        .build()
        .unwrap();
    let ce: serde_json::Value = serde_json::from_slice(&to_cloudevent_json(&env).unwrap()).unwrap();
    let body = serde_json::to_vec(&json!([ce])).unwrap();
    let answer = server
        .post_raw(
            "/api/v1/messages/batch",
            "application/cloudevents-batch+json",
            body,
        )
        .await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    assert_eq!(answer.1["results"][0]["seq"], 3);
    server.stop().await;
}

#[tokio::test]
async fn given_bad_batches_when_posted_then_413_over_the_count_and_400_when_not_an_array() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.max_batch_messages = 2).await;
    let answer = server
        .post(
            "/api/v1/messages/batch",
            &json!([event(1), event(2), event(3)]),
        )
        .await;
    assert_error(&answer, 413, "PAYLOAD_TOO_LARGE");
    let answer = server.post("/api/v1/messages/batch", &event(1)).await;
    assert_error(&answer, 400, "INVALID_JSON");
    let answer = server.post("/api/v1/messages/batch", &json!([])).await;
    assert_error(&answer, 400, "INVALID_REQUEST");
    server.stop().await;
}
