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

/// The real device until `full` (ENOSPC on record writes) or `broken` (EIO on file syncs).
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

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDurability.sync_dir(dir)
    }

    fn write_records(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        OsDurability.write_records(file, path, buf, offset)
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
