//! The device under a stream misbehaving, injected through `EmbeddedConfig::durability`: a full
//! device refuses the publish with `INSUFFICIENT_STORAGE` and the stream takes the next one as
//! soon as space is free; a failed fsync halts that stream only (never retried), and its info
//! and every later write say so with `STREAM_DAMAGED`.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ace_bus::{Bus, BusError, EmbeddedBus, EmbeddedConfig, StreamConfig, StreamState};
use ace_envelope::{Envelope, ErrorCode, Kind};
use ace_log::{Durability, OsDurability};

/// The real device until `full` (ENOSPC on every write that grows a file) or `broken` (EIO on
/// file syncs).
#[derive(Debug, Default)]
pub(crate) struct Device {
    pub(crate) full: AtomicBool,
    pub(crate) broken: AtomicBool,
}

impl Durability for Device {
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected EIO"));
        }
        OsDurability.sync_file(file, path)
    }

    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        let grows = offset + buf.len() as u64 > file.metadata()?.len();
        if grows && self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        OsDurability.write_at(file, path, buf, offset)
    }
}

pub(crate) fn event(stream: &str, n: u64) -> Envelope {
    let subject = format!("ace.comms.http.service.{}.evt.v1", stream.to_lowercase());
    Envelope::builder(Kind::Event, subject)
        .payload_json(serde_json::json!({ "n": n }))
        .build()
        .unwrap()
}

pub(crate) async fn open(dir: &Path, device: &Arc<Device>) -> EmbeddedBus {
    let config = EmbeddedConfig {
        durability: device.clone(),
        ..EmbeddedConfig::new(dir)
    };
    let bus = EmbeddedBus::open(config).unwrap();
    for name in ["A", "B"] {
        let subject = format!("ace.comms.http.service.{}.evt.>", name.to_lowercase());
        bus.add_stream(StreamConfig::new(name, &[subject.as_str()]))
            .await
            .unwrap();
    }
    bus
}

#[tokio::test]
async fn given_a_full_device_when_publishing_then_insufficient_storage_and_the_stream_resumes_by_itself_once_space_is_free()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let bus = open(dir.path(), &device).await;
    for n in 1..=3 {
        assert_eq!(bus.publish(event("A", n)).await.unwrap().seq, Some(n));
    }
    device.full.store(true, Ordering::SeqCst);
    let refused = bus.publish(event("A", 4)).await.unwrap_err();
    assert!(matches!(refused, BusError::NoSpace { ref stream } if stream == "A"));
    assert_eq!(refused.code(), ErrorCode::InsufficientStorage);
    let info = bus.stream_info("A").await.unwrap();
    assert_eq!(
        (info.state, info.last_seq, info.messages),
        (StreamState::Ok, 3, 3)
    );
    device.full.store(false, Ordering::SeqCst);
    let again = event("A", 4);
    assert_eq!(bus.publish(again.clone()).await.unwrap().seq, Some(4));
    assert!(bus.publish(again).await.unwrap().duplicate, "stored once");
    for seq in 1..=4 {
        assert!(bus.get_message("A", seq).await.unwrap().is_some(), "{seq}");
    }
    bus.close().await.unwrap();
}

#[tokio::test]
async fn given_a_failed_fsync_when_publishing_then_that_stream_is_halted_and_says_so_and_the_others_serve()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let bus = open(dir.path(), &device).await;
    assert_eq!(bus.publish(event("A", 1)).await.unwrap().seq, Some(1));
    device.broken.store(true, Ordering::SeqCst);
    let failed = bus.publish(event("A", 2)).await.unwrap_err();
    assert_eq!(failed.code(), ErrorCode::StreamDamaged, "{failed}");
    assert!(failed.to_string().contains("is halted"), "{failed}");
    device.broken.store(false, Ordering::SeqCst);
    let later = bus.publish(event("A", 3)).await.unwrap_err();
    assert_eq!(
        later.code(),
        ErrorCode::StreamDamaged,
        "never retried: {later}"
    );
    let info = bus.stream_info("A").await.unwrap();
    assert_eq!((info.state, info.last_seq), (StreamState::Halted, 1));
    let damage = info.damage.unwrap();
    assert!(damage.reason.contains("injected EIO"), "{}", damage.reason);
    assert_eq!(damage.segment.as_deref(), Some("00000000000000000001.log"));
    assert!(
        bus.get_message("A", 1).await.unwrap().is_some(),
        "reads still work"
    );
    assert_eq!(bus.publish(event("B", 1)).await.unwrap().seq, Some(1));
    bus.close().await.unwrap();
}

#[tokio::test]
async fn given_a_deleted_stream_or_a_deletion_a_crash_interrupted_when_a_stream_of_that_name_is_made_then_it_starts_empty()
 {
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(Device::default());
    let bus = open(dir.path(), &device).await;
    for n in 1..=3 {
        bus.publish(event("A", n)).await.unwrap();
        bus.publish(event("B", n)).await.unwrap();
    }
    // A deletion takes the directory away durably: nothing of it stays under the name.
    bus.delete_stream("A").await.unwrap();
    let streams = dir.path().join("streams");
    let left: Vec<String> = std::fs::read_dir(&streams)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !left.iter().any(|n| n == "A" || n.starts_with('.')),
        "{left:?}"
    );
    bus.close().await.unwrap();

    // A crash after the deletion was recorded but before its directory went: B's files stand
    // under the name of a stream the state no longer has, and a half-removed one lies aside.
    copy_dir(&streams.join("B"), &streams.join("C"));
    copy_dir(&streams.join("B"), &streams.join(".deleted-Z-1"));
    let bus = open(dir.path(), &device).await;
    let subject = ["ace.comms.http.service.c.evt.>"];
    bus.add_stream(StreamConfig::new("C", &subject))
        .await
        .unwrap();
    let info = bus.stream_info("C").await.unwrap();
    assert_eq!((info.last_seq, info.messages), (0, 0), "C starts empty");
    assert_eq!(bus.publish(event("C", 1)).await.unwrap().seq, Some(1));
    assert!(!streams.join(".deleted-Z-1").exists());
    let info = bus.stream_info("A").await.unwrap();
    assert_eq!(
        (info.last_seq, info.messages),
        (0, 0),
        "A made again is new"
    );
    assert_eq!(
        bus.stream_info("B").await.unwrap().last_seq,
        3,
        "B untouched"
    );
    bus.close().await.unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}
