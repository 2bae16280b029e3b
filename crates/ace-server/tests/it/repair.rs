//! `POST /api/v1/streams/{name}/repair` end to end: a stream damaged on disk between two runs is
//! dry-run (nothing changes), repaired (cut to its last intact record, the cut moved under
//! `lost/`), takes publishes again above its high-water mark, and its durable consumer goes on;
//! the repair is a `stream_repaired` ledger entry by whoever asked. Only a principal who may
//! manage the stream (admin) repairs: anyone else gets 403 and a `denied` entry. A stream halted
//! by a failed fsync while the server runs is one `storage_damaged` entry, then repaired.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ace_bus::{Durability, OsDurability};
use ace_envelope::SystemClock;
use ace_server::Config;
use serde_json::{Value, json};

use crate::auth::{get_as, post_as, role, start_enforced};
use crate::storage_faults::{
    FIRST_SEGMENT, STREAM, make_stream, publish, query, rolled_back, stream_info,
};
use crate::{Server, assert_error};

fn repair_path() -> String {
    format!("/api/v1/streams/{STREAM}/repair")
}

/// Every file of the stream's directory with its bytes.
fn stream_files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    ace_testkit::files(&dir.join("streams").join(STREAM))
}

/// The ledger entries of `kind`.
async fn entries(server: &Server, kind: &str) -> Vec<Value> {
    let (status, page) = server
        .get(&format!("/api/v1/ledger/entries?kind={kind}"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn given_a_stream_damaged_on_disk_when_repaired_over_http_then_it_serves_again_above_its_mark_and_the_repair_is_in_the_ledger()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = rolled_back(dir.path(), false).await;
    assert_eq!(stream_info(&server).await["state"], "read_only");

    let before = stream_files(dir.path());
    let (status, dry) = server.post(&repair_path(), &json!({})).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(
        stream_files(dir.path()),
        before,
        "a dry run changes nothing"
    );
    assert_eq!(
        (&dry["dry_run"], &dry["repaired"]),
        (&json!(true), &json!(false))
    );
    assert_eq!(dry["state"], "read_only");
    assert_eq!(dry["damage"]["segment"], FIRST_SEGMENT);
    assert_eq!(dry["intact"], json!({"first": 1, "last": 20}));
    assert_eq!(dry["lost"], json!({"first": 21, "last": 40}));
    assert_eq!(
        (&dry["high_water"], &dry["next_seq"]),
        (&json!(40), &json!(41))
    );
    assert_eq!(
        dry["consumers"],
        json!([{"consumer": "c", "ack_floor": 40}])
    );
    assert_error(
        &server.post("/api/v1/messages", &query(41)).await,
        503,
        "STREAM_DAMAGED",
    );

    let (status, done) = server
        .post(&repair_path(), &json!({"accept_loss": true}))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (&done["repaired"], &done["state_after"]),
        (&json!(true), &json!("ok"))
    );
    assert_eq!(done["lost"], json!({"first": 21, "last": 40}));
    let info = stream_info(&server).await;
    assert_eq!(
        (&info["state"], &info["high_water"]),
        (&json!("ok"), &json!(40))
    );

    let (status, ack) = server.post("/api/v1/messages", &query(41)).await;
    assert_eq!((status, &ack["seq"]), (202, &json!(41)), "{ack}");
    let fetch = format!("/api/v1/streams/{STREAM}/consumers/c/fetch");
    let (status, got) = server
        .post(&fetch, &json!({"batch": 10, "expires_ms": 500}))
        .await;
    assert_eq!(status, 200, "{got}");
    let seqs: Vec<&Value> = got["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["seq"])
        .collect();
    assert_eq!(seqs, [&json!(41)], "the durable consumer continues");
    let (_, ready) = server.get("/ready").await;
    assert_eq!(ready["degraded_streams"], json!([]), "{ready}");

    let recorded = entries(&server, "stream_repaired").await;
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let entry = &recorded[0];
    assert_eq!(
        (&entry["subject"], &entry["actor"]),
        (&json!(STREAM), &json!(ace_core::DEVELOPMENT_PRINCIPAL_ID))
    );
    assert_eq!(entry["details"]["lost"], json!({"first": 21, "last": 40}));
    assert_eq!(entry["details"]["via"], "http");
    server.stop().await;

    let server = Server::start(dir.path()).await;
    let info = stream_info(&server).await;
    assert_eq!(
        (&info["state"], &info["last_seq"]),
        (&json!("ok"), &json!(41))
    );
    let (status, again) = server
        .post(&repair_path(), &json!({"accept_loss": true}))
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["repaired"], false);
    assert!(
        again["message"]
            .as_str()
            .unwrap()
            .contains("nothing to repair"),
        "{again}"
    );
    assert_error(
        &server.post("/api/v1/streams/NOPE/repair", &json!({})).await,
        404,
        "STREAM_NOT_FOUND",
    );
    assert_error(
        &server.post(&repair_path(), &json!({"accept": true})).await,
        400,
        "INVALID_JSON",
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_segment_and_its_mark_rolled_back_when_repaired_then_the_next_sequence_is_above_the_consumer_ack_floor()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = rolled_back(dir.path(), true).await;
    let (status, dry) = server.post(&repair_path(), &json!({})).await;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["high_water"], 20, "the mark was rolled back too: {dry}");
    assert_eq!(
        dry["lost"],
        json!({"first": 21, "last": 40}),
        "known from the ack floor"
    );
    assert_eq!(dry["next_seq"], 41);
    let (status, done) = server
        .post(&repair_path(), &json!({"accept_loss": true}))
        .await;
    assert_eq!(
        (status, &done["state_after"]),
        (200, &json!("ok")),
        "{done}"
    );
    let (status, ack) = server.post("/api/v1/messages", &query(41)).await;
    assert_eq!((status, &ack["seq"]), (202, &json!(41)), "{ack}");
    server.stop().await;
    let server = Server::start(dir.path()).await;
    assert_eq!(
        stream_info(&server).await["state"],
        "ok",
        "no longer below the ack floor"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_enforced_mode_when_a_non_admin_repairs_then_403_and_a_denied_entry_and_an_admin_may()
{
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let path = "/api/v1/streams/ACE_EVENTS/repair";
    for who in ["agent", "human", "observer", "auditor"] {
        let refused = post_as(&server, &role(who), path, &json!({"accept_loss": true})).await;
        assert_error(&refused, 403, "FORBIDDEN");
    }
    let (status, ok) = post_as(&server, &role("admin"), path, &json!({})).await;
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["state"], "ok");

    let (status, page) = get_as(
        &server,
        &role("admin"),
        "/api/v1/ledger/entries?kind=denied",
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let manage = "ace.comms.system.stream.ACE_EVENTS.cmd.manage.v1";
    let denied: Vec<&Value> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["subject"] == manage && e["actor"] == "agent-1")
        .collect();
    assert_eq!(denied.len(), 1, "{page}");
    assert!(
        denied[0]["decision"].as_str().unwrap().starts_with("deny"),
        "{}",
        denied[0]
    );
    server.stop().await;
}

/// The real device until `broken`, then EIO on every file sync.
#[derive(Debug, Default)]
struct Device {
    broken: AtomicBool,
}

impl Durability for Device {
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected EIO"));
        }
        OsDurability.sync_file(file, path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDurability.sync_dir(dir)
    }
}

/// The entries of `kind`, once there are `n` of them (the recorder writes asynchronously).
async fn entries_when(server: &Server, kind: &str, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let found = entries(server, kind).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} `{kind}` entries after 2 s");
}

#[tokio::test]
async fn given_a_failed_fsync_while_running_when_the_stream_halts_then_one_storage_damaged_entry_is_recorded_and_a_repair_brings_it_back()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let server = Server::start_durable(&config, Arc::new(SystemClock), device.clone()).await;
    make_stream(&server).await;
    publish(&server, 1..=3).await;
    device.broken.store(true, Ordering::SeqCst);
    for n in 4..=5 {
        let refused = server.post("/api/v1/messages", &query(n)).await;
        assert_error(&refused, 503, "STREAM_DAMAGED");
        assert_eq!(refused.1["error"]["details"]["state"], "halted");
    }

    let damaged = entries_when(&server, "storage_damaged", 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        entries(&server, "storage_damaged").await.len(),
        1,
        "once per transition"
    );
    let entry = &damaged[0];
    assert_eq!(entry["subject"], STREAM);
    assert_eq!(entry["details"]["state"], "halted");
    assert_eq!(entry["details"]["segment"], FIRST_SEGMENT);
    assert_eq!(entry["details"]["high_water"], 3);
    let reason = entry["details"]["reason"].as_str().unwrap();
    assert!(reason.contains("injected EIO"), "{reason}");
    let metrics = server.metrics().await;
    let line = "ace_comms_stream_state{state=\"halted\",stream=\"DMG\"} 1";
    assert!(metrics.contains(line), "no `{line}` in\n{metrics}");

    device.broken.store(false, Ordering::SeqCst);
    let (status, done) = server
        .post(&repair_path(), &json!({"accept_loss": true}))
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(
        (&done["state"], &done["state_after"]),
        (&json!("halted"), &json!("ok"))
    );
    let (status, ack) = server.post("/api/v1/messages", &query(6)).await;
    assert_eq!(status, 202, "{ack}");
    assert!(ack["seq"].as_u64().unwrap() > 3, "{ack}");
    assert_eq!(entries_when(&server, "stream_repaired", 1).await.len(), 1);
    server.stop().await;
}
