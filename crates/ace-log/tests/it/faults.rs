//! Faults injected through the storage seam. fsync failures ("fsyncgate"): a failed sync is
//! never retried and then acknowledged — the call fails, every later write fails with the same
//! reason, and the state says so. A full device (`ENOSPC` writing records, creating the next
//! segment at a roll — its header write or its directory sync — or writing a tombstone) is a
//! temporary refusal: the refused call stores nothing, nothing acknowledged is lost, and writes
//! resume by themselves once space is free.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

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

/// The real device, with `ENOSPC` where a test arms it: every write that grows a file (after
/// writing half of it, as a device filling up mid-write would) while `full`; the n-th header
/// write of a new segment from now (`header_in`, 1 = the next); the n-th directory sync from now
/// (`dir_sync_in`).
#[derive(Debug, Default)]
struct Device {
    full: AtomicBool,
    header_in: AtomicU32,
    dir_sync_in: AtomicU32,
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

/// True when the countdown `c` reaches its armed call now.
fn due(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)) == Ok(1)
}

impl Durability for Device {
    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        let is_header = offset == 0 && path.extension().is_some_and(|e| e == "log");
        if is_header && due(&self.header_in) {
            OsDurability.write_at(file, path, &buf[..buf.len() / 2], offset)?;
            return Err(no_space());
        }
        let grows = offset + buf.len() as u64 > file.metadata()?.len();
        if grows && self.full.load(Ordering::SeqCst) {
            OsDurability.write_at(file, path, &buf[..buf.len() / 2], offset)?;
            return Err(no_space());
        }
        OsDurability.write_at(file, path, buf, offset)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if due(&self.dir_sync_in) {
            return Err(no_space());
        }
        OsDurability.sync_dir(dir)
    }
}

const POLICIES: [SyncPolicy; 3] = [
    SyncPolicy::Batch {
        max_delay: std::time::Duration::ZERO,
    },
    SyncPolicy::Always,
    SyncPolicy::Never,
];

fn small(sync: SyncPolicy) -> LogConfig {
    LogConfig {
        sync,
        segment_bytes: 512,
        ..LogConfig::default()
    }
}

/// The segment files of `dir`, by name.
fn segments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
        .collect();
    names.sort();
    names
}

/// Reopens `dir` with the real device: clean, holding exactly `want` (payloads, from seq 1).
fn assert_reopens_with(dir: &Path, cfg: LogConfig, want: &[Vec<u8>], what: &str) {
    let (log, report) = Log::open(dir, cfg).unwrap();
    assert!(
        report.corruption.is_none() && report.truncated.is_empty(),
        "{what}: {report:?}"
    );
    let all = log.read_from(1, 1000).unwrap();
    let got: Vec<(u64, Vec<u8>)> = all.iter().map(|r| (r.seq, r.payload.to_vec())).collect();
    let want: Vec<(u64, Vec<u8>)> = (1..).zip(want.iter().cloned()).collect();
    assert_eq!(got, want, "{what}");
}

#[test]
fn given_a_full_disk_when_appending_then_no_space_is_refused_nothing_acknowledged_is_lost_and_writes_resume_once_space_is_free()
 {
    for sync in POLICIES {
        let disk = Arc::new(Device::default());
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open_with(dir.path(), small(sync), disk.clone()).unwrap();
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
        let mut want = vec![b"kept".to_vec(); 10];
        want.push(b"after".to_vec());
        assert_reopens_with(dir.path(), small(sync), &want, &format!("{sync:?}"));
    }
}

/// Appends `n` records of 91 bytes framed (four fill a 512-byte segment); returns their payloads.
fn fill_first_segment(log: &Log, n: u8) -> Vec<Vec<u8>> {
    let mut kept = Vec::new();
    for n in 0..n {
        let payload = vec![n; 60];
        log.append(rec("a", &payload, 0)).unwrap();
        kept.push(payload);
    }
    kept
}

/// Arms `arm` on a log about to roll, checks the refusal and the recovery by itself.
fn assert_roll_refused_then_resumed(arm: impl Fn(&Device), what: &str) {
    for sync in POLICIES {
        let what = format!("{what} under {sync:?}");
        let disk = Arc::new(Device::default());
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open_with(dir.path(), small(sync), disk.clone()).unwrap();
        let mut kept = fill_first_segment(&log, 4);
        let before = segments(dir.path());
        arm(&disk);
        let refused = log.append(rec("a", &[9; 200], 0));
        assert!(
            matches!(refused, Err(LogError::NoSpace { .. })),
            "{what}: {refused:?}"
        );
        let state = log.state();
        assert_eq!((state.last_seq, state.read_only), (4, None), "{what}");
        assert_eq!(
            segments(dir.path()),
            before,
            "{what}: the partial segment is gone"
        );
        let again = log.append(rec("a", &[7; 200], 0)).unwrap();
        assert_eq!(again.seq, 5, "{what}: resumes by itself");
        kept.push(vec![7; 200]);
        assert!(segments(dir.path()).len() > before.len(), "{what}: rolled");
        log.close().unwrap();
        assert_reopens_with(dir.path(), small(sync), &kept, &what);
    }
}

#[test]
fn given_a_full_device_at_a_roll_when_the_new_segment_header_is_written_then_no_space_and_writes_resume()
 {
    assert_roll_refused_then_resumed(
        |d| d.header_in.store(1, Ordering::SeqCst),
        "ENOSPC writing the header",
    );
}

#[test]
fn given_a_full_device_at_a_roll_when_the_directory_is_synced_then_no_space_and_writes_resume() {
    assert_roll_refused_then_resumed(
        |d| d.dir_sync_in.store(1, Ordering::SeqCst),
        "ENOSPC syncing the directory",
    );
}

#[test]
fn given_a_batch_across_several_rolls_when_a_later_roll_is_refused_then_the_whole_batch_is_taken_back()
 {
    // Before the batch, the first segment is full (the batch rolls at once) or has room for one
    // of its records (which the first roll seals and the refusal must cut back out).
    for (sync, before_batch) in POLICIES.into_iter().flat_map(|s| [(s, 4u8), (s, 2)]) {
        let what = format!("{sync:?}, {before_batch} records before");
        let disk = Arc::new(Device::default());
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open_with(dir.path(), small(sync), disk.clone()).unwrap();
        let kept = fill_first_segment(&log, before_batch);
        let last = u64::from(before_batch);
        let before = segments(dir.path());
        let payloads: Vec<Vec<u8>> = (0..12u8).map(|n| vec![100 + n; 90]).collect();
        let batch: Vec<_> = payloads.iter().map(|p| rec("b", p, 0)).collect();
        // The batch needs several rolls; the second one's header is refused.
        disk.header_in.store(2, Ordering::SeqCst);
        let refused = log.append_batch(&batch);
        assert!(
            matches!(refused, Err(LogError::NoSpace { .. })),
            "{what}: {refused:?}"
        );
        let state = log.state();
        assert_eq!((state.last_seq, state.read_only), (last, None), "{what}");
        assert_eq!(log.read_from(last + 1, 10).unwrap(), Vec::new(), "{what}");
        assert_eq!(segments(dir.path()), before, "{what}: rolled back");
        drop(log);
        assert_reopens_with(dir.path(), small(sync), &kept, &what);
        let (log, _) = Log::open_with(dir.path(), small(sync), disk.clone()).unwrap();
        let stored = log.append_batch(&batch).unwrap();
        assert_eq!(stored.first().map(|a| a.seq), Some(last + 1), "{what}");
        log.close().unwrap();
        let mut all = kept.clone();
        all.extend(payloads.iter().cloned());
        assert_reopens_with(dir.path(), small(sync), &all, &what);
    }
}

#[test]
fn given_a_full_device_when_deleting_then_no_space_nothing_halts_and_the_delete_works_once_space_is_free()
 {
    let disk = Arc::new(Device::default());
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig::default();
    let (log, _) = Log::open_with(dir.path(), cfg.clone(), disk.clone()).unwrap();
    for n in 1..=5u64 {
        log.append(rec("a", b"x", n)).unwrap();
    }
    assert!(log.delete(1).unwrap());
    disk.full.store(true, Ordering::SeqCst);
    let refused = log.delete(2);
    assert!(
        matches!(refused, Err(LogError::NoSpace { .. })),
        "{refused:?}"
    );
    let refused = log.delete_batch(&[3, 4]);
    assert!(
        matches!(refused, Err(LogError::NoSpace { .. })),
        "{refused:?}"
    );
    assert_eq!(log.state().read_only, None);
    assert!(
        log.read(2).unwrap().is_some(),
        "the refused delete changed nothing"
    );
    disk.full.store(false, Ordering::SeqCst);
    assert_eq!(log.delete_batch(&[2, 3]).unwrap(), 2);
    log.close().unwrap();
    let (log, report) = Log::open(dir.path(), cfg).unwrap();
    assert!(report.corruption.is_none(), "{report:?}");
    let seqs: Vec<u64> = log
        .read_from(1, 10)
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect();
    assert_eq!(seqs, [4, 5]);
}
