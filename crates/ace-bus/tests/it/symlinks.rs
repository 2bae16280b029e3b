//! The embedded engine never follows a symbolic link inside its data directory: a `state.redb`,
//! a `streams/` directory or a stream directory that is a link makes `EmbeddedBus::open` fail
//! with an error naming the link ("refusing to follow symlink <path>"), and the link's target is
//! left as it was.

use std::os::unix::fs::symlink;
use std::path::Path;

use ace_bus::{Bus, EmbeddedBus, EmbeddedConfig, StreamConfig};
use ace_envelope::{Envelope, Kind};

const VICTIM: &[u8] = b"victim bytes that must never change\n";

/// Opens an engine on `dir` with one stream `orders` holding one message, then closes it.
async fn with_one_stream(dir: &Path) {
    let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).expect("opens");
    bus.add_stream(StreamConfig::new("orders", &["ace.comms.test.orders.>"]))
        .await
        .expect("stream");
    let e = Envelope::builder(Kind::Event, "ace.comms.test.orders.a")
        .payload_json(serde_json::json!({"n": 1}))
        .build()
        .expect("envelope");
    bus.publish(e).await.expect("published");
    bus.close().await.expect("closes");
}

fn refusal(dir: &Path) -> String {
    match EmbeddedBus::open(EmbeddedConfig::new(dir)) {
        Ok(_) => panic!("the engine opened through a symlink"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn given_a_state_database_that_is_a_symlink_when_opening_then_it_is_refused_and_the_target_unchanged()
 {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = outside.path().join("victim");
    std::fs::write(&victim, VICTIM).unwrap();
    let link = dir.path().join("state.redb");
    symlink(&victim, &link).unwrap();

    let message = refusal(dir.path());

    assert!(
        message.contains(&format!("refusing to follow symlink {}", link.display())),
        "{message}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), VICTIM);
}

#[tokio::test]
async fn given_a_stream_directory_replaced_by_a_symlink_when_reopening_then_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    with_one_stream(dir.path()).await;
    let stream_dir = dir.path().join("streams").join("orders");
    let moved = outside.path().join("orders");
    std::fs::rename(&stream_dir, &moved).unwrap();
    symlink(&moved, &stream_dir).unwrap();

    let message = refusal(dir.path());

    assert!(
        message.contains(&format!(
            "refusing to follow symlink {}",
            stream_dir.display()
        )),
        "{message}"
    );
}

#[tokio::test]
async fn given_a_streams_directory_that_is_a_symlink_when_opening_then_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let link = dir.path().join("streams");
    symlink(outside.path(), &link).unwrap();

    let message = refusal(dir.path());

    assert!(
        message.contains(&format!("refusing to follow symlink {}", link.display())),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}
