//! A damaged stream brought back with `Bus::repair_stream`, and damage found while running
//! announced on `Bus::watch_health`: a dry run that changes nothing, a repair that keeps the
//! high-water mark and the consumers, a halted stream reopened once its device is healthy,
//! bytes damaged under a running stream turning it read-only once, and the data directory's
//! lock refusing a second engine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use ace_bus::{
    Bus, BusError, ConsumerConfig, EmbeddedBus, EmbeddedConfig, HealthChange, StreamState,
};
use ace_envelope::ErrorCode;
use ace_testkit::files;
use tokio::sync::broadcast::Receiver;

use crate::storage::{Device, event, open};

const SEGMENT: &str = "00000000000000000001.log";

fn segment(dir: &Path) -> PathBuf {
    dir.join("streams").join("A").join(SEGMENT)
}

async fn publish(bus: &EmbeddedBus, seqs: std::ops::RangeInclusive<u64>) {
    for n in seqs {
        assert_eq!(bus.publish(event("A", n)).await.unwrap().seq, Some(n));
    }
}

/// Fetches and acks everything waiting for consumer `c` of `A`; the sequences.
async fn drain(bus: &EmbeddedBus) -> Vec<u64> {
    let got = bus
        .fetch("A", "c", 100, Duration::from_millis(200))
        .await
        .unwrap();
    let seqs: Vec<u64> = got.iter().map(|d| d.seq).collect();
    for seq in &seqs {
        bus.ack("A", "c", *seq).await.unwrap();
    }
    seqs
}

/// No further health change within 200 ms: one announcement per transition.
async fn assert_quiet(watch: &mut Receiver<HealthChange>) {
    let more = tokio::time::timeout(Duration::from_millis(200), watch.recv()).await;
    assert!(more.is_err(), "one announcement per transition: {more:?}");
}

/// The next health change within a second.
async fn next_change(watch: &mut Receiver<HealthChange>) -> HealthChange {
    tokio::time::timeout(Duration::from_secs(1), watch.recv())
        .await
        .expect("a health change")
        .unwrap()
}

#[tokio::test]
async fn given_a_segment_rolled_back_when_repaired_then_the_dry_run_changes_nothing_and_the_stream_continues_above_the_mark_with_its_consumer()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let bus = open(dir.path(), &device).await;
    bus.add_consumer("A", ConsumerConfig::new("c"))
        .await
        .unwrap();
    publish(&bus, 1..=10).await;
    bus.close().await.unwrap();
    drop(bus);
    let old = std::fs::read(segment(dir.path())).unwrap();
    let bus = open(dir.path(), &device).await;
    publish(&bus, 11..=20).await;
    assert_eq!(drain(&bus).await, (1..=20).collect::<Vec<_>>());
    bus.close().await.unwrap();
    drop(bus);
    std::fs::write(segment(dir.path()), old).unwrap();

    let bus = open(dir.path(), &device).await;
    assert_eq!(
        bus.stream_info("A").await.unwrap().state,
        StreamState::ReadOnly
    );
    let before = files(&dir.path().join("streams"));
    let dry = bus.repair_stream("A", false).await.unwrap();
    assert_eq!(
        files(&dir.path().join("streams")),
        before,
        "a dry run changes nothing"
    );
    assert!(dry.dry_run && !dry.repaired, "{dry:?}");
    assert_eq!(dry.state, StreamState::ReadOnly);
    assert_eq!(
        dry.damage.as_ref().unwrap().segment.as_deref(),
        Some(SEGMENT)
    );
    let (intact, lost) = (dry.intact.unwrap(), dry.lost.unwrap());
    assert_eq!(
        (intact.first, intact.last, lost.first, lost.last),
        (1, 10, 11, 20)
    );
    assert_eq!((dry.high_water, dry.next_seq), (20, 21));
    assert_eq!(dry.consumers.len(), 1, "{dry:?}");
    assert_eq!(
        (
            dry.consumers[0].consumer.as_str(),
            dry.consumers[0].ack_floor
        ),
        ("c", 20)
    );
    assert!(dry.message.contains("11 to 20"), "{}", dry.message);
    let refused = bus.publish(event("A", 99)).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::StreamDamaged, "still read-only");

    let done = bus.repair_stream("A", true).await.unwrap();
    assert!(done.repaired && !done.dry_run, "{done:?}");
    assert_eq!(done.state_after, StreamState::Ok);
    let info = bus.stream_info("A").await.unwrap();
    assert_eq!((info.state, info.high_water), (StreamState::Ok, 20));
    assert_eq!(bus.publish(event("A", 21)).await.unwrap().seq, Some(21));
    assert_eq!(drain(&bus).await, vec![21], "the consumer continues");
    assert!(bus.get_message("A", 10).await.unwrap().is_some());
    bus.close().await.unwrap();
    drop(bus);

    let bus = open(dir.path(), &device).await;
    let info = bus.stream_info("A").await.unwrap();
    assert_eq!((info.state, info.last_seq), (StreamState::Ok, 21));
    bus.close().await.unwrap();
}

#[tokio::test]
async fn given_a_failed_fsync_when_the_stream_halts_then_it_is_announced_once_and_a_repair_reopens_it_once_the_device_is_healthy()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let bus = open(dir.path(), &device).await;
    let mut watch = bus
        .watch_health()
        .expect("the embedded engine reports health");
    publish(&bus, 1..=3).await;
    device.broken.store(true, Ordering::SeqCst);
    assert!(bus.publish(event("A", 4)).await.is_err());
    assert!(bus.publish(event("A", 5)).await.is_err());
    let change = next_change(&mut watch).await;
    assert_eq!(
        (change.stream.as_str(), change.state),
        ("A", StreamState::Halted)
    );
    assert!(change.damage.unwrap().reason.contains("injected EIO"));
    assert_eq!(change.high_water, 3);
    assert_quiet(&mut watch).await;

    let dry = bus.repair_stream("A", false).await.unwrap();
    assert_eq!((dry.state, dry.repaired), (StreamState::Halted, false));
    let refused = bus.repair_stream("A", true).await.unwrap_err();
    assert!(refused.to_string().contains("injected EIO"), "{refused}");
    assert_eq!(
        bus.stream_info("A").await.unwrap().state,
        StreamState::Halted
    );

    device.broken.store(false, Ordering::SeqCst);
    let done = bus.repair_stream("A", true).await.unwrap();
    assert_eq!(
        (done.repaired, done.state_after),
        (true, StreamState::Ok),
        "{done:?}"
    );
    let next = bus.publish(event("A", 6)).await.unwrap().seq.unwrap();
    assert!(next > 3, "above every acknowledged sequence: {next}");
    for seq in 1..=3 {
        assert!(bus.get_message("A", seq).await.unwrap().is_some(), "{seq}");
    }
    bus.close().await.unwrap();
}

#[tokio::test]
async fn given_bytes_damaged_under_a_running_stream_when_read_then_it_turns_read_only_once_and_a_repair_cuts_there()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let bus = open(dir.path(), &device).await;
    let mut watch = bus.watch_health().unwrap();
    publish(&bus, 1..=5).await;
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x20;
    std::fs::write(&seg, bytes).unwrap();

    let refused = bus.get_message("A", 5).await.unwrap_err();
    assert_eq!(refused.code(), ErrorCode::StreamDamaged, "{refused}");
    let change = next_change(&mut watch).await;
    assert_eq!(change.state, StreamState::ReadOnly);
    let damage = change.damage.unwrap();
    assert_eq!(damage.segment.as_deref(), Some(SEGMENT));
    assert!(
        damage.reason.contains("found on a read"),
        "{}",
        damage.reason
    );
    assert!(bus.get_message("A", 5).await.is_err());
    assert_quiet(&mut watch).await;
    let write = bus.publish(event("A", 6)).await.unwrap_err();
    assert_eq!(write.code(), ErrorCode::StreamDamaged);
    assert!(
        bus.get_message("A", 4).await.unwrap().is_some(),
        "what precedes is served"
    );
    assert_eq!(
        bus.publish(event("B", 1)).await.unwrap().seq,
        Some(1),
        "B serves"
    );

    let dry = bus.repair_stream("A", false).await.unwrap();
    let (intact, lost) = (dry.intact.unwrap(), dry.lost.unwrap());
    assert_eq!((intact.last, lost.first, lost.last), (4, 5, 5), "{dry:?}");
    assert!(
        !dry.segments[0].whole && dry.segments[0].offset > 128,
        "{dry:?}"
    );
    let done = bus.repair_stream("A", true).await.unwrap();
    assert_eq!(done.state_after, StreamState::Ok, "{done:?}");
    assert_eq!(bus.publish(event("A", 6)).await.unwrap().seq, Some(6));
    bus.close().await.unwrap();
}

#[tokio::test]
async fn given_a_healthy_or_unknown_stream_when_repaired_then_nothing_to_repair_or_stream_not_found()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let bus = open(dir.path(), &device).await;
    publish(&bus, 1..=2).await;
    let ok = bus.repair_stream("A", true).await.unwrap();
    assert_eq!((ok.state, ok.repaired), (StreamState::Ok, false));
    assert!(ok.message.contains("nothing to repair"), "{}", ok.message);
    assert!(!dir.path().join("streams/A/lost").exists());
    let missing = bus.repair_stream("NOPE", false).await.unwrap_err();
    assert!(
        matches!(missing, BusError::StreamNotFound { .. }),
        "{missing}"
    );
    assert_eq!(missing.code(), ErrorCode::StreamNotFound);
    bus.close().await.unwrap();
}

#[tokio::test]
async fn given_an_open_engine_when_another_opens_its_data_directory_then_it_is_refused_naming_the_pid()
 {
    let dir = tempfile::tempdir().unwrap();
    let bus = EmbeddedBus::open(EmbeddedConfig::new(dir.path())).unwrap();
    let refused = EmbeddedBus::open(EmbeddedConfig::new(dir.path())).unwrap_err();
    match &refused {
        BusError::Locked { pid, .. } => assert_eq!(*pid, Some(std::process::id())),
        other => panic!("expected Locked, got {other}"),
    }
    assert!(
        refused.to_string().contains("in use by another process"),
        "{refused}"
    );
    bus.close().await.unwrap();
    let again = EmbeddedBus::open(EmbeddedConfig::new(dir.path())).unwrap();
    again.close().await.unwrap();
}
