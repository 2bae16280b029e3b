//! A stream's files damaged while the server is stopped, then the server started again on the
//! same data directory: it starts, the damaged stream is `read_only` (stream info, `/ready`,
//! `/metrics` say so, naming segment and offset), every record before the damage is served,
//! writes answer 503 `STREAM_DAMAGED` rather than reusing a sequence, and the other streams keep
//! serving. A torn tail that was never acknowledged is cut and counted. Either is a
//! `storage_recovered` ledger entry.

use std::path::{Path, PathBuf};

use ace_envelope::{Envelope, Kind};
use serde_json::{Value, json};

use crate::{Server, assert_error, event};

/// The damaged stream of these tests captures queries; `ACE_EVENTS` stays healthy beside it.
pub(crate) const STREAM: &str = "DMG";
pub(crate) const QUERY_SUBJECT: &str = "ace.comms.http.service.kpi.qry.status.v1";
pub(crate) const FIRST_SEGMENT: &str = "00000000000000000001.log";

pub(crate) fn query(n: u64) -> Value {
    let envelope = Envelope::builder(Kind::Query, QUERY_SUBJECT)
        .payload_json(json!({ "n": n }))
        .build()
        .unwrap();
    serde_json::to_value(envelope).unwrap()
}

pub(crate) fn segment(dir: &Path) -> PathBuf {
    dir.join("streams").join(STREAM).join(FIRST_SEGMENT)
}

pub(crate) fn highwater(dir: &Path) -> PathBuf {
    dir.join("streams").join(STREAM).join("highwater")
}

/// Creates the stream and the durable consumer `c` on it.
pub(crate) async fn make_stream(server: &Server) {
    let config = json!({"name": STREAM, "subjects": ["ace.comms.http.*.*.qry.>"]});
    let (status, info) = server.post("/api/v1/streams", &config).await;
    assert_eq!(status, 201, "{info}");
    let consumers = format!("/api/v1/streams/{STREAM}/consumers");
    let (status, info) = server.post(&consumers, &json!({"name": "c"})).await;
    assert_eq!(status, 201, "{info}");
}

pub(crate) async fn publish(server: &Server, seqs: std::ops::RangeInclusive<u64>) {
    for n in seqs {
        let (status, ack) = server.post("/api/v1/messages", &query(n)).await;
        assert_eq!((status, ack["seq"].as_u64()), (202, Some(n)), "{ack}");
    }
}

/// Fetches and acks everything up to `upto` on consumer `c`.
pub(crate) async fn ack_all(server: &Server, upto: u64) {
    let base = format!("/api/v1/streams/{STREAM}/consumers/c");
    let mut acked = 0;
    while acked < upto {
        let fetch = json!({"batch": 100, "expires_ms": 200});
        let (status, got) = server.post(&format!("{base}/fetch"), &fetch).await;
        assert_eq!(status, 200, "{got}");
        let seqs: Vec<u64> = got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect();
        assert!(!seqs.is_empty(), "nothing to fetch after {acked}");
        let (status, done) = server
            .post(&format!("{base}/ack"), &json!({ "seqs": seqs }))
            .await;
        assert_eq!(status, 200, "{done}");
        acked += seqs.len() as u64;
    }
    let (_, info) = server.get(&base).await;
    assert_eq!(info["ack_floor"], upto, "{info}");
}

/// The `storage_recovered` ledger entries.
async fn recovery_entries(server: &Server) -> Vec<Value> {
    let (status, page) = server
        .get("/api/v1/ledger/entries?kind=storage_recovered")
        .await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().clone()
}

pub(crate) async fn stream_info(server: &Server) -> Value {
    let (status, info) = server.get(&format!("/api/v1/streams/{STREAM}")).await;
    assert_eq!(status, 200, "{info}");
    info
}

/// What a read-only `DMG` answers, wherever the damage: writes refused naming stream and
/// segment, `ACE_EVENTS` still taking publishes, `/ready` 200 listing it, `/metrics` stating it.
async fn assert_read_only_and_others_serve(server: &Server) {
    let refused = server.post("/api/v1/messages", &query(999)).await;
    assert_error(&refused, 503, "STREAM_DAMAGED");
    let message = refused.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("`DMG` is read_only"), "{message}");
    assert_eq!(refused.1["error"]["details"]["state"], "read_only");

    assert_eq!(server.post("/api/v1/messages", &event(1)).await.0, 202);

    let (status, ready) = server.get("/ready").await;
    assert_eq!(status, 200, "{ready}");
    let degraded = ready["degraded_streams"].as_array().unwrap();
    assert_eq!(degraded.len(), 1, "{ready}");
    assert_eq!(
        (&degraded[0]["stream"], &degraded[0]["state"]),
        (&json!(STREAM), &json!("read_only"))
    );

    let metrics = server.metrics().await;
    for line in [
        "ace_comms_stream_state{state=\"read_only\",stream=\"DMG\"} 1",
        "ace_comms_stream_state{state=\"ok\",stream=\"DMG\"} 0",
        "ace_comms_stream_state{state=\"ok\",stream=\"ACE_EVENTS\"} 1",
    ] {
        assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    }
}

/// Publish 20, keep a copy of the segment, publish 20 more, ack all 40, put the copy back
/// (with the high-water mark of that time too when `with_mark`), restart.
pub(crate) async fn rolled_back(dir: &Path, with_mark: bool) -> Server {
    let server = Server::start(dir).await;
    make_stream(&server).await;
    publish(&server, 1..=20).await;
    server.stop().await;
    let old = std::fs::read(segment(dir)).unwrap();
    let old_mark = std::fs::read(highwater(dir)).unwrap();
    let server = Server::start(dir).await;
    publish(&server, 21..=40).await;
    ack_all(&server, 40).await;
    server.stop().await;
    std::fs::write(segment(dir), old).unwrap();
    if with_mark {
        std::fs::write(highwater(dir), old_mark).unwrap();
    }
    Server::start(dir).await
}

#[tokio::test]
async fn given_a_segment_rolled_back_to_an_older_copy_when_the_server_restarts_then_the_stream_is_read_only_and_no_sequence_is_reused()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = rolled_back(dir.path(), false).await;
    let info = stream_info(&server).await;
    assert_eq!(info["state"], "read_only", "{info}");
    assert_eq!(
        (&info["messages"], &info["last_seq"], &info["high_water"]),
        (&json!(20), &json!(20), &json!(40)),
        "{info}"
    );
    assert_eq!(info["damage"]["segment"], FIRST_SEGMENT, "{info}");
    let reason = info["damage"]["reason"].as_str().unwrap();
    assert!(reason.contains("21 to 40 are missing"), "{reason}");

    let (status, kept) = server
        .get(&format!("/api/v1/streams/{STREAM}/messages/20"))
        .await;
    assert_eq!(status, 200, "{kept}");
    assert_eq!(kept["envelope"]["payload"]["n"], 20);
    let lost = server
        .get(&format!("/api/v1/streams/{STREAM}/messages/21"))
        .await;
    assert_error(&lost, 503, "STREAM_DAMAGED");

    assert_read_only_and_others_serve(&server).await;
    let recorded = recovery_entries(&server).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["subject"], STREAM);
    assert_eq!(recorded[0]["details"]["state"], "read_only");
    assert_eq!(recorded[0]["details"]["segment"], FIRST_SEGMENT);
    assert_eq!(recorded[0]["details"]["high_water"], 40);
    server.stop().await;

    let strict = Server::start_with(dir.path(), |c| c.streams.ready_strict = true).await;
    let answer = strict.get("/ready").await;
    assert_error(&answer, 503, "UNAVAILABLE");
    assert_eq!(
        answer.1["error"]["details"]["degraded_streams"][0]["stream"],
        STREAM
    );
    strict.stop().await;
}

#[tokio::test]
async fn given_a_segment_and_its_high_water_mark_rolled_back_when_the_server_restarts_then_the_consumer_ack_floor_marks_the_stream_damaged()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = rolled_back(dir.path(), true).await;
    let info = stream_info(&server).await;
    assert_eq!(info["state"], "read_only", "{info}");
    assert_eq!(info["last_seq"], 20, "{info}");
    let reason = info["damage"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("consumer `c` acknowledged up to sequence 40"),
        "{reason}"
    );
    assert_read_only_and_others_serve(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn given_a_flipped_bit_in_a_record_inside_the_dedup_window_when_the_server_restarts_then_it_starts_with_only_that_stream_read_only()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    make_stream(&server).await;
    publish(&server, 1..=10).await;
    server.stop().await;
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let middle = bytes.len() / 2 + 64;
    bytes[middle] ^= 0x08;
    std::fs::write(&seg, bytes).unwrap();

    let server = Server::start(dir.path()).await;
    let info = stream_info(&server).await;
    assert_eq!(info["state"], "read_only", "{info}");
    assert_eq!(info["damage"]["segment"], FIRST_SEGMENT, "{info}");
    let offset = info["damage"]["offset"].as_u64().unwrap();
    assert!(offset > 128 && offset <= middle as u64, "{info}");
    let (status, first) = server
        .get(&format!("/api/v1/streams/{STREAM}/messages/1"))
        .await;
    assert_eq!(status, 200, "{first}");
    assert_read_only_and_others_serve(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn given_the_last_segment_cut_inside_its_header_when_the_server_restarts_then_the_stream_is_damaged_not_reset_to_empty()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    make_stream(&server).await;
    publish(&server, 1..=10).await;
    server.stop().await;
    std::fs::OpenOptions::new()
        .write(true)
        .open(segment(dir.path()))
        .unwrap()
        .set_len(100)
        .unwrap();

    let server = Server::start(dir.path()).await;
    let info = stream_info(&server).await;
    assert_eq!(info["state"], "read_only", "{info}");
    assert_eq!(
        (&info["last_seq"], &info["high_water"]),
        (&json!(0), &json!(10))
    );
    assert_eq!(
        (&info["damage"]["segment"], &info["damage"]["offset"]),
        (&json!(FIRST_SEGMENT), &json!(0))
    );
    assert_read_only_and_others_serve(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn given_a_torn_tail_never_acknowledged_when_the_server_restarts_then_it_is_cut_counted_and_the_stream_stays_ok()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    make_stream(&server).await;
    publish(&server, 1..=10).await;
    server.stop().await;
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend_from_slice(&[0x5a; 37]);
    std::fs::write(&seg, bytes).unwrap();

    let server = Server::start(dir.path()).await;
    let info = stream_info(&server).await;
    assert_eq!(info["state"], "ok", "{info}");
    assert_eq!(info["counters"]["recovery_truncated_bytes"], 37, "{info}");
    let metrics = server.metrics().await;
    let line = "ace_comms_recovery_truncated_bytes_total{stream=\"DMG\"} 37";
    assert!(metrics.contains(line), "no `{line}` in\n{metrics}");
    publish(&server, 11..=11).await;
    let recorded = recovery_entries(&server).await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(
        (
            &recorded[0]["details"]["state"],
            &recorded[0]["details"]["truncated_bytes"]
        ),
        (&json!("ok"), &json!(37))
    );
    let (_, ready) = server.get("/ready").await;
    assert_eq!(ready["degraded_streams"], json!([]), "{ready}");
    server.stop().await;
}
