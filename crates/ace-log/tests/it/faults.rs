//! fsync failures ("fsyncgate"): a failed sync is never retried and then acknowledged — the
//! call fails, every later write fails with the same reason, and the state says so.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ace_log::{Durability, Log, LogConfig, LogError, OsDurability, SyncPolicy};

use crate::api::rec;

/// Real syncs until `fail` is set, then EIO on every file sync.
#[derive(Debug, Default)]
pub(crate) struct FailingSync {
    pub(crate) fail: AtomicBool,
}

impl Durability for FailingSync {
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(io::Error::other("injected EIO"));
        }
        OsDurability.sync_file(file, path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDurability.sync_dir(dir)
    }
}

fn open(sync: SyncPolicy, io: &Arc<FailingSync>) -> (tempfile::TempDir, Log) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        sync,
        ..LogConfig::default()
    };
    let (log, _) = Log::open_with(dir.path(), cfg, io.clone()).unwrap();
    (dir, log)
}

#[test]
fn given_a_failing_fsync_under_group_commit_then_no_waiter_is_acked_and_the_log_stops() {
    let io = Arc::new(FailingSync::default());
    let (_dir, log) = open(SyncPolicy::default(), &io);
    log.append(rec("a", b"ok", 0)).unwrap();
    io.fail.store(true, Ordering::SeqCst);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| log.append(rec("a", b"lost", 0))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in results {
        assert!(matches!(r, Err(LogError::SyncFailed { .. })), "{r:?}");
    }
    io.fail.store(false, Ordering::SeqCst);
    let later = log.append(rec("a", b"after", 0));
    assert!(
        matches!(later, Err(LogError::SyncFailed { .. })),
        "never retried: {later:?}"
    );
    let state = log.state();
    assert!(state.read_only.unwrap().contains("injected EIO"));
    assert_eq!(state.last_seq, 1, "only the synced record is visible");
    assert_eq!(log.read(2).unwrap(), None);
}

#[test]
fn given_a_failing_fsync_under_always_then_the_append_and_deletes_fail() {
    let io = Arc::new(FailingSync::default());
    let (_dir, log) = open(SyncPolicy::Always, &io);
    log.append(rec("a", b"ok", 0)).unwrap();
    io.fail.store(true, Ordering::SeqCst);
    assert!(matches!(
        log.append(rec("a", b"x", 0)),
        Err(LogError::SyncFailed { .. })
    ));
    io.fail.store(false, Ordering::SeqCst);
    assert!(matches!(log.delete(1), Err(LogError::SyncFailed { .. })));
    assert!(matches!(log.sync(), Err(LogError::SyncFailed { .. })));
    assert_eq!(log.read(1).unwrap().unwrap().payload, &b"ok"[..]);
}

/// Real writes until `full` is set, then `ENOSPC` on every record write (after writing half of
/// the buffer, as a device filling up mid-write would).
#[derive(Debug, Default)]
struct FullDisk {
    full: AtomicBool,
}

impl Durability for FullDisk {
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()> {
        OsDurability.sync_file(file, path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        OsDurability.sync_dir(dir)
    }

    fn write_records(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.full.load(Ordering::SeqCst) {
            OsDurability.write_records(file, path, &buf[..buf.len() / 2], offset)?;
            return Err(io::Error::from_raw_os_error(libc::ENOSPC));
        }
        OsDurability.write_records(file, path, buf, offset)
    }
}

#[test]
fn given_a_full_disk_when_appending_then_no_space_is_refused_nothing_acknowledged_is_lost_and_writes_resume_once_space_is_free()
 {
    for sync in [SyncPolicy::default(), SyncPolicy::Always, SyncPolicy::Never] {
        let disk = Arc::new(FullDisk::default());
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig {
            sync,
            segment_bytes: 512,
            ..LogConfig::default()
        };
        let (log, _) = Log::open_with(dir.path(), cfg.clone(), disk.clone()).unwrap();
        for n in 1..=10u64 {
            assert_eq!(log.append(rec("a", b"kept", n)).unwrap().seq, n);
        }
        disk.full.store(true, Ordering::SeqCst);
        let refused: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| log.append(rec("a", b"refused", 0))))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in refused {
            assert!(
                matches!(r, Err(LogError::NoSpace { .. })),
                "{sync:?}: {r:?}"
            );
        }
        let state = log.state();
        assert_eq!(
            (state.last_seq, state.read_only),
            (10, None),
            "{sync:?}: nothing halted"
        );
        disk.full.store(false, Ordering::SeqCst);
        assert_eq!(
            log.append(rec("a", b"after", 0)).unwrap().seq,
            11,
            "{sync:?}: resumes by itself, no sequence skipped"
        );
        log.close().unwrap();
        let (log, report) = Log::open(dir.path(), cfg).unwrap();
        assert!(
            report.corruption.is_none() && report.truncated.is_empty(),
            "{sync:?}: {report:?}"
        );
        let all = log.read_from(1, 100).unwrap();
        let payloads: Vec<&[u8]> = all.iter().map(|r| &r.payload[..]).collect();
        let mut want: Vec<&[u8]> = vec![b"kept"; 10];
        want.push(b"after");
        assert_eq!(payloads, want, "{sync:?}");
    }
}
