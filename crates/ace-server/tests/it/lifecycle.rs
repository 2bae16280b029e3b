//! Health, readiness and metrics; the connection limits (header and idle timeouts); graceful
//! shutdown finishing an in-flight request; and a restart on the same data directory that
//! loses no acknowledged message and forgets no acknowledgement.

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{Server, event};

#[tokio::test]
async fn given_a_running_server_when_probed_then_health_and_ready_answer_200() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let (status, body) = server.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) = server.get("/ready").await;
    assert_eq!(status, 200);
    assert_eq!(body["development_mode"], true);
    server.stop().await;
}

#[tokio::test]
async fn given_traffic_when_scraping_metrics_then_published_latency_errors_and_requests_show() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    server.post("/api/v1/messages", &event(1)).await;
    server.get("/api/v1/streams/NOPE").await;
    let response = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    for wanted in [
        r#"ace_comms_messages_published_total{duplicate="false",stream="ACE_EVENTS"} 1"#,
        "ace_comms_message_latency_seconds_count 1",
        r#"ace_comms_errors_total{code="STREAM_NOT_FOUND"} 1"#,
        r#"ace_comms_http_requests_total{method="POST",route="/api/v1/messages",status="202"} 1"#,
        r#"route="/api/v1/streams/{stream}",status="404"} 1"#,
    ] {
        assert!(text.contains(wanted), "missing `{wanted}` in:\n{text}");
    }
    server.stop().await;
}

/// Reads until the peer closes the connection (or 5 s pass); returns what arrived and when.
async fn read_until_closed(socket: &mut tokio::net::TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server never closed the connection");
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn given_a_client_that_never_finishes_its_headers_when_the_header_timeout_passes_then_it_is_cut_off()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.header_timeout_ms = 200).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (_, after) = read_until_closed(&mut socket).await;
    assert!(after < Duration::from_secs(3), "closed after {after:?}");
    server.stop().await;
}

#[tokio::test]
async fn given_an_idle_keep_alive_connection_when_the_idle_timeout_passes_then_it_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.idle_timeout_ms = 300).await;
    let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (reply, after) = read_until_closed(&mut socket).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        after >= Duration::from_millis(250),
        "closed too early: {after:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_the_connection_limit_is_reached_when_another_client_connects_then_it_waits_its_turn()
{
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.max_connections = 1).await;
    // A request in progress (its body still coming) holds the slot; an idle connection would
    // be closed to make room (attacks::net).
    let mut holder = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut holder,
        b"POST /api/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
          content-length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = server
        .http
        .get(server.url("/health"))
        .timeout(Duration::from_millis(400))
        .send()
        .await;
    assert!(
        waiting.is_err(),
        "a second connection was served past the limit"
    );
    drop(holder);
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200, "served once the first connection closed");
    server.stop().await;
}

#[tokio::test]
async fn given_one_address_at_its_limit_when_it_connects_again_then_429_until_one_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.max_connections_per_address = 2).await;
    let first = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let _second = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut third = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    third.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    let body: serde_json::Value =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "BACKPRESSURE");
    assert_eq!(body["error"]["details"]["limit"], 2);

    drop(first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, _) = server.get("/health").await;
    assert_eq!(status, 200, "a closed connection gives its place back");
    server.stop().await;
}

#[tokio::test]
async fn given_a_fetch_in_flight_when_shutdown_begins_then_it_still_completes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    server.post(base, &json!({"name": "slow"})).await;
    let fetch = server
        .http
        .post(server.url(&format!("{base}/slow/fetch")))
        .json(&json!({"batch": 1, "expires_ms": 1500}))
        .send();
    let in_flight = tokio::spawn(fetch);
    // Long enough for the request to be in flight, well inside its 1.5 s wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.stop().await;
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request is answered");
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["messages"], json!([]));
}

#[tokio::test]
async fn given_acked_and_unacked_messages_when_the_server_restarts_then_nothing_acknowledged_is_lost()
 {
    let dir = tempfile::tempdir().unwrap();
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    let server = Server::start(dir.path()).await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        let env = event(n);
        ids.push(env["id"].clone());
        let (status, body) = server.post("/api/v1/messages", &env).await;
        assert_eq!(status, 202, "{body}");
    }
    server
        .post(base, &json!({"name": "durable", "ack_wait": 300}))
        .await;
    let (_, got) = server
        .post(
            &format!("{base}/durable/fetch"),
            &json!({"batch": 5, "expires_ms": 500}),
        )
        .await;
    assert_eq!(got["messages"].as_array().unwrap().len(), 5);
    let (status, _) = server
        .post(&format!("{base}/durable/ack"), &json!({"seqs": [1, 2, 3]}))
        .await;
    assert_eq!(status, 200);
    server.stop().await;

    let server = Server::start(dir.path()).await;
    for (i, id) in ids.iter().enumerate() {
        let (status, stored) = server
            .get(&format!("/api/v1/streams/ACE_EVENTS/messages/{}", i + 1))
            .await;
        assert_eq!(status, 200, "message {} survives the restart", i + 1);
        assert_eq!(&stored["envelope"]["id"], id);
    }
    let (_, info) = server.get(&format!("{base}/durable")).await;
    assert_eq!(
        info["ack_floor"], 3,
        "acknowledgements survive the restart: {info}"
    );
    let (_, again) = server
        .post(
            &format!("{base}/durable/fetch"),
            &json!({"batch": 10, "expires_ms": 2000}),
        )
        .await;
    let seqs: Vec<u64> = again["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        seqs,
        vec![4, 5],
        "only the unacknowledged messages come back"
    );
    let (status, body) = server.post("/api/v1/messages", &event(6)).await;
    assert_eq!((status, body["seq"].as_u64()), (202, Some(6)));
    server.stop().await;
}
