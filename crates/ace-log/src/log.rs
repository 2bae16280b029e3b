//! `Log`: the public handle. It owns the lock around the `Store`, the sync policies and group
//! commit, and opening (recovery) of a log directory.
//!
//! Group commit (`SyncPolicy::Batch`): an appender encodes its records into the write buffer
//! under the store's write lock, then waits until the durable sequence covers its last record. If no sync
//! is in flight it becomes the leader: it flushes the buffer, writes the watermark and calls
//! fdatasync *without* holding the store lock (so others keep appending into the next batch),
//! then publishes the new durable sequence and wakes everyone it covered. A failed sync halts
//! the log: every waiter and every later write gets `LogError::SyncFailed`; nothing is retried.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex, RwLock};

use crate::codec;
use crate::config::{LogConfig, SyncPolicy};
use crate::durability::{Durability, OsDurability};
use crate::error::LogError;
use crate::gaps::Gaps;
use crate::highwater::HighWater;
use crate::segment::{HEADER_LEN, Outcome, Segment};
use crate::store::{Halt, Store, list_segments};
use crate::tombstones::sync_failed;
use crate::types::{
    Appended, Corruption, Failure, LogState, NewRecord, Record, RecoveryReport, RetentionReport,
    Truncation,
};

/// One stream's append-only log in one directory. `Send + Sync`; every method takes `&self`.
#[derive(Debug)]
pub struct Log {
    config: LogConfig,
    durability: Arc<dyn Durability>,
    /// Readers share it (they copy records out of the page cache while holding it); writers,
    /// the group-commit leader's flush and deletes take it exclusively, never across an fsync
    /// under `Batch`.
    store: RwLock<Store>,
    /// Highest sequence known durable (what `Batch`/`Always` readers may see).
    durable: AtomicU64,
    commit: Mutex<Commit>,
    committed: Condvar,
    /// The highest sequence ever acknowledged, kept outside the segments (`highwater`).
    high_water: Mutex<HighWater>,
}

#[derive(Debug, Default)]
struct Commit {
    leader: bool,
    failed: Option<Halt>,
}

impl Log {
    /// Opens (creating if needed) the log in `dir` and recovers it; see the crate docs.
    pub fn open(dir: &Path, config: LogConfig) -> Result<(Log, RecoveryReport), LogError> {
        Self::open_with(dir, config, Arc::new(OsDurability))
    }

    /// Like [`Log::open`], with the file/directory sync calls supplied by `durability`.
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        durability: Arc<dyn Durability>,
    ) -> Result<(Log, RecoveryReport), LogError> {
        config.validate()?;
        crate::nofollow::refuse_link(dir)?;
        crate::durability::create_dir_all(&*durability, dir)
            .map_err(|e| LogError::io("create log directory", dir, e))?;
        let (store, report) = recover(dir, &config, &*durability)?;
        let durable = store.next_seq - 1;
        let high_water = HighWater::open(dir, HighWater::read(dir)?, durable, &*durability)?;
        let failed = store.halted.clone();
        let log = Log {
            config,
            durability,
            store: RwLock::new(store),
            durable: AtomicU64::new(durable),
            commit: Mutex::new(Commit {
                leader: false,
                failed,
            }),
            committed: Condvar::new(),
            high_water: Mutex::new(high_water),
        };
        Ok((log, report))
    }

    /// Appends one record and returns once it is durable per the sync policy.
    pub fn append(&self, rec: NewRecord<'_>) -> Result<Appended, LogError> {
        let mut out = self.append_batch(std::slice::from_ref(&rec))?;
        Ok(out.pop().expect("one record in, one out"))
    }

    /// Appends records in order, all covered by one sync; returns when all are durable.
    pub fn append_batch(&self, recs: &[NewRecord<'_>]) -> Result<Vec<Appended>, LogError> {
        let sizes = recs
            .iter()
            .map(|r| self.framed_size(r))
            .collect::<Result<Vec<_>, _>>()?;
        if recs.is_empty() {
            return Ok(Vec::new());
        }
        let mut store = self.store.write();
        store.check_writable()?;
        let start = store.call_start();
        let out = match self.append_locked(&mut store, recs, &sizes) {
            Err(e @ LogError::NoSpace { .. }) => {
                // A refused call stores nothing, even what a roll it needed already wrote.
                let r = store.rewind_call(&start, &*self.durability);
                store.guard(r)?;
                return Err(e);
            }
            other => other?,
        };
        let last = store.next_seq - 1;
        match self.config.sync {
            SyncPolicy::Never => {}
            SyncPolicy::Always => {
                let durable = store.sync_active(&*self.durability)?;
                self.mark(&mut store, durable)?;
                self.publish(durable);
            }
            SyncPolicy::Batch { .. } => {
                let rewinds = store.rewinds;
                drop(store);
                self.wait_durable(last, rewinds)?;
            }
        }
        Ok(out)
    }

    /// Buffers the records of one call, under the store lock. Under `Never` they are written
    /// too; a call that rolled writes its records in the new segment at once as well, so that a
    /// full device refuses them while the call can still take back what the roll sealed.
    fn append_locked(
        &self,
        store: &mut Store,
        recs: &[NewRecord<'_>],
        sizes: &[u64],
    ) -> Result<Vec<Appended>, LogError> {
        let now = now_ns();
        let base = store.active().base_seq;
        let mut out = Vec::with_capacity(recs.len());
        for (rec, &size) in recs.iter().zip(sizes) {
            out.push(store.append_one(rec, size, now, &self.config, &*self.durability)?);
        }
        let rolled = store.active().base_seq != base;
        if self.config.sync == SyncPolicy::Never || rolled {
            store.flush(&*self.durability)?;
        }
        Ok(out)
    }

    fn framed_size(&self, rec: &NewRecord<'_>) -> Result<u64, LogError> {
        let size = codec::frame_len(rec.subject.len(), rec.headers.len(), rec.payload.len());
        if size > u64::from(self.config.max_record_bytes)
            || rec.subject.len() > usize::from(u16::MAX)
        {
            return Err(LogError::RecordTooLarge {
                subject: rec.subject.chars().take(128).collect(),
                size,
                max: self.config.max_record_bytes,
            });
        }
        Ok(size)
    }

    /// Group commit: waits until `seq` is durable, leading a sync when none is in flight.
    /// `rewinds` is the store's count of refused buffers when `seq` was buffered: a higher count
    /// means a full device made the store forget `seq` (it was never written, and its sequence
    /// may since belong to another record), so the wait ends with `LogError::NoSpace`.
    fn wait_durable(&self, seq: u64, rewinds: u64) -> Result<(), LogError> {
        let mut commit = self.commit.lock();
        loop {
            if self.durable.load(Ordering::Acquire) >= seq {
                return Ok(());
            }
            if let Some(halt) = &commit.failed {
                return Err(halt.to_error());
            }
            {
                let store = self.store.read();
                if store.rewinds > rewinds {
                    let path = store.active().path.clone();
                    return Err(LogError::NoSpace { path });
                }
            }
            if commit.leader {
                self.committed.wait(&mut commit);
                continue;
            }
            commit.leader = true;
            drop(commit);
            let result = self.lead_sync();
            commit = self.commit.lock();
            commit.leader = false;
            match result {
                Ok(durable) => {
                    self.durable.fetch_max(durable, Ordering::AcqRel);
                }
                Err(LogError::NoSpace { .. }) => {}
                Err(e) => {
                    commit.failed.get_or_insert_with(|| Halt::from_error(&e));
                }
            }
            self.committed.notify_all();
        }
    }

    /// One group-commit sync: flush + watermark under the lock, fdatasync outside it.
    fn lead_sync(&self) -> Result<u64, LogError> {
        if let SyncPolicy::Batch { max_delay } = self.config.sync
            && !max_delay.is_zero()
        {
            std::thread::sleep(max_delay);
        }
        let (file, path, base, len, last) = {
            let mut store = self.store.write();
            store.check_writable()?;
            store.flush(&*self.durability)?;
            let seg = store.active_mut();
            let (len, last) = (seg.len, seg.next_seq - 1);
            let (synced_len, synced_last) = seg.synced;
            let r = seg.write_watermark(synced_len, synced_last, &*self.durability);
            store.guard(r)?;
            let seg = store.active();
            (
                Arc::clone(&seg.file),
                seg.path.clone(),
                seg.base_seq,
                len,
                last,
            )
        };
        let synced = self
            .durability
            .sync_file(&file, &path)
            .map_err(|e| sync_failed(&path, &e));
        let mut store = self.store.write();
        store.guard(synced)?;
        if let Some(seg) = store.segments.get_mut(&base) {
            seg.synced = seg.synced.max((len, last));
        }
        drop(store);
        // The mark follows the segment sync and precedes the acknowledgement; appenders keep
        // going meanwhile (only a failure takes the store lock, to halt it).
        let r = self.high_water.lock().raise(last, &*self.durability);
        if r.is_err() {
            self.store.write().guard(r)?;
        }
        Ok(last)
    }

    /// Durably raises the high-water mark to `seq` (records already durable, not yet
    /// acknowledged); a failure halts the log like a failed segment sync.
    fn mark(&self, store: &mut Store, seq: u64) -> Result<(), LogError> {
        let r = self.high_water.lock().raise(seq, &*self.durability);
        store.guard(r)
    }

    fn publish(&self, durable: u64) {
        self.durable.fetch_max(durable, Ordering::AcqRel);
    }

    /// The highest sequence readers may see: durable records, or all written ones under `Never`.
    fn visible(&self, store: &Store) -> u64 {
        match self.config.sync {
            SyncPolicy::Never => store.next_seq - 1,
            _ => self.durable.load(Ordering::Acquire),
        }
    }

    /// The record `seq`; `None` if deleted, dropped by retention or not (yet durably) written.
    pub fn read(&self, seq: u64) -> Result<Option<Record>, LogError> {
        let mut recs = self.read_from(seq, 1)?;
        Ok(recs.pop().filter(|r| r.seq == seq))
    }

    /// Up to `max` live records with sequence `>= seq`, in order.
    pub fn read_from(&self, seq: u64, max: usize) -> Result<Vec<Record>, LogError> {
        let store = self.store.read();
        let upto = self.visible(&store);
        store.read_from(seq, upto, max)
    }

    /// The first sequence whose timestamp is `>= timestamp_ns` (it may since have been deleted;
    /// `read_from` skips those). `None` when every record is older.
    pub fn seq_at_or_after(&self, timestamp_ns: u64) -> Option<u64> {
        let store = self.store.read();
        let upto = self.visible(&store);
        store.seq_at_or_after(timestamp_ns, upto)
    }

    /// Deletes one message, durable when it returns (under `Never`: at the next `sync`/`close`).
    /// `false` if it was not there. A segment left with no live message is removed.
    pub fn delete(&self, seq: u64) -> Result<bool, LogError> {
        let mut store = self.store.write();
        store.check_writable()?;
        let upto = self.visible(&store);
        let sync = self.config.sync != SyncPolicy::Never;
        store.delete(seq, upto, sync, &*self.durability)
    }

    /// Deletes many messages with one sync per touched tombstone file (work-queue acks in bulk).
    /// Returns how many were there to delete; durable when it returns (except under `Never`).
    /// A full device stops it with `LogError::NoSpace`; the deletes before are kept (durably), so
    /// the same call again deletes the rest.
    pub fn delete_batch(&self, seqs: &[u64]) -> Result<usize, LogError> {
        let mut store = self.store.write();
        store.check_writable()?;
        let upto = self.visible(&store);
        let mut deleted = 0;
        let mut refused = None;
        for &seq in seqs {
            match store.delete(seq, upto, false, &*self.durability) {
                Ok(found) => deleted += usize::from(found),
                Err(e @ LogError::NoSpace { .. }) => {
                    refused = Some(e);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        // The deletes made before a full device refused one are kept, and made durable too.
        if self.config.sync != SyncPolicy::Never {
            let r = store.sync_tombstones(&*self.durability);
            store.guard(r)?;
        }
        refused.map_or(Ok(deleted), Err)
    }

    /// Drops whole segments outside the retention limits, judging age against `now_ns`.
    pub fn apply_retention(&self, now_ns: u64) -> Result<RetentionReport, LogError> {
        let mut store = self.store.write();
        store.check_writable()?;
        store.apply_retention(&self.config, now_ns, &*self.durability)
    }

    /// Sequences, counts and health.
    pub fn state(&self) -> LogState {
        let store = self.store.read();
        let last_seq = self.visible(&store);
        let first_seq = store
            .segments
            .values()
            .filter(|s| s.live() > 0)
            .map(Segment::first_live)
            .find(|&s| s <= last_seq)
            .unwrap_or(last_seq + 1);
        let (messages, bytes) = store.totals();
        let damage = match &store.halted {
            Some(Halt::Corrupt {
                segment,
                offset,
                reason,
            }) => Some(Corruption {
                segment: segment.clone(),
                offset: *offset,
                reason: reason.clone(),
            }),
            _ => None,
        };
        let failed = match &store.halted {
            Some(Halt::Failed { path, reason }) => Some(Failure {
                path: path.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        };
        LogState {
            first_seq,
            last_seq,
            messages,
            bytes,
            read_only: store.halted.as_ref().map(|h| h.to_error().to_string()),
            damage,
            failed,
            high_water: self.high_water.lock().seq,
        }
    }

    /// Makes everything appended and deleted so far durable, whatever the policy.
    pub fn sync(&self) -> Result<(), LogError> {
        let mut store = self.store.write();
        store.check_writable()?;
        let durable = store.sync_active(&*self.durability)?;
        let r = store.sync_tombstones(&*self.durability);
        store.guard(r)?;
        self.mark(&mut store, durable)?;
        self.publish(durable);
        Ok(())
    }

    /// Syncs and seals the active segment, then releases the log.
    pub fn close(self) -> Result<(), LogError> {
        let mut store = self.store.write();
        if store.halted.is_some() {
            return store.check_writable();
        }
        store.flush(&*self.durability)?;
        let r = store.active_mut().seal(&*self.durability);
        store.guard(r)?;
        let r = store.sync_tombstones(&*self.durability);
        store.guard(r)?;
        let last = store.next_seq - 1;
        self.mark(&mut store, last)
    }
}

impl Log {
    /// The store as readers see it (a repair plan is read from it).
    pub(crate) fn store(&self) -> parking_lot::RwLockReadGuard<'_, Store> {
        self.store.read()
    }

    /// Stops the log (no group commit in flight, the store locked), runs `f` on its files, then
    /// recovers the directory again and serves what that recovery found: the seam of a repair
    /// and of reopening a halted log in place, so every holder of this `Log` sees the result.
    /// When `f` or the recovery fails, the log keeps refusing writes.
    pub(crate) fn recover_after<T>(
        &self,
        f: impl FnOnce(&mut Store, &dyn Durability) -> Result<T, LogError>,
    ) -> Result<(T, RecoveryReport), LogError> {
        let mut commit = self.commit.lock();
        let mut store = self.store.write();
        let reopened = f(&mut store, &*self.durability).and_then(|done| {
            let (fresh, report) = recover(&store.dir, &self.config, &*self.durability)?;
            let durable = fresh.next_seq - 1;
            let found = HighWater::read(&fresh.dir)?;
            let high_water = HighWater::open(&fresh.dir, found, durable, &*self.durability)?;
            Ok((done, report, fresh, durable, high_water))
        });
        let (done, report, fresh, durable, high_water) = match reopened {
            Ok(reopened) => reopened,
            Err(e) => {
                // The files may have changed under a store that no longer describes them.
                let halt = store.halted.get_or_insert_with(|| Halt::from_error(&e));
                commit.failed.get_or_insert_with(|| halt.clone());
                return Err(e);
            }
        };
        commit.failed = fresh.halted.clone();
        *store = fresh;
        self.durable.store(durable, Ordering::Release);
        *self.high_water.lock() = high_water;
        Ok((done, report))
    }
}

impl Drop for Log {
    /// Hands buffered bytes to the kernel (no sync): dropping without `close` is a crash as far
    /// as durability goes, never a loss of acknowledged data (those were synced already).
    fn drop(&mut self) {
        let store = self.store.get_mut();
        if store.halted.is_none() {
            let _ = store.flush(&*self.durability);
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Opens every segment in order, recovering each; see `Segment::recover`.
fn recover(
    dir: &Path,
    config: &LogConfig,
    durability: &dyn Durability,
) -> Result<(Store, RecoveryReport), LogError> {
    let bases = list_segments(dir, durability)?;
    let found = HighWater::read(dir)?.map(|(_, seq)| seq);
    let high_water = found.unwrap_or(0);
    let mut report = RecoveryReport {
        high_water: found,
        ..RecoveryReport::default()
    };
    let mut store = Store {
        dir: dir.to_path_buf(),
        segments: Default::default(),
        pending: Vec::new(),
        pending_at: HEADER_LEN,
        next_seq: 1,
        last_ts: 0,
        halted: None,
        unbuffered: None,
        rewinds: 0,
        gaps: Gaps::read(dir)?,
    };
    for (i, &base) in bases.iter().enumerate() {
        let is_last = i + 1 == bases.len();
        let interval = config.index_interval_bytes;
        let (seg, outcome) =
            Segment::recover(dir, base, is_last, interval, high_water, durability)?;
        report.segments += 1;
        report.records += seg.next_seq - seg.base_seq;
        if base < store.next_seq && store.halted.is_none() {
            let reason = format!(
                "segment starts at sequence {base}, before {}",
                store.next_seq
            );
            note_corruption(&mut store, &mut report, seg.path.clone(), 0, reason);
        }
        if i > 0 && base > store.next_seq && !store.gaps.covers(store.next_seq, base - 1) {
            // Only the oldest segments are ever removed: a hole between two is lost data,
            // unless a repair recorded it as accepted (`gaps.rs`).
            let reason = format!(
                "segment starts at sequence {base}, but the one before it ends at {}: \
                 sequences {} to {} are missing",
                store.next_seq - 1,
                store.next_seq,
                base - 1
            );
            note_corruption(&mut store, &mut report, seg.path.clone(), 0, reason);
        }
        match outcome {
            Outcome::Clean => {}
            Outcome::Truncated { offset, bytes } => report.truncated.push(Truncation {
                segment: seg.path.clone(),
                offset,
                bytes,
            }),
            Outcome::Corrupt { offset, reason } => {
                note_corruption(&mut store, &mut report, seg.path.clone(), offset, reason);
            }
        }
        store.next_seq = store.next_seq.max(seg.next_seq);
        store.last_ts = store.last_ts.max(seg.last_ts);
        store.segments.insert(base, seg);
    }
    if store.segments.is_empty() {
        let seg = Segment::create(dir, high_water + 1, durability)?;
        if high_water > 0 {
            let reason = format!(
                "no segment file, but sequences up to the high-water mark {high_water} were \
                 acknowledged"
            );
            note_corruption(&mut store, &mut report, seg.path.clone(), 0, reason);
        }
        store.next_seq = seg.next_seq;
        store.segments.insert(seg.base_seq, seg);
    } else if store.next_seq <= high_water {
        let last = store.active();
        let reason = format!(
            "the segments end at sequence {}, but sequences up to the high-water mark \
             {high_water} were acknowledged: {} to {high_water} are missing",
            store.next_seq - 1,
            store.next_seq
        );
        let (path, offset) = (last.path.clone(), last.len);
        note_corruption(&mut store, &mut report, path, offset, reason);
    }
    store.pending_at = store.active().len;
    Ok((store, report))
}

fn note_corruption(
    store: &mut Store,
    report: &mut RecoveryReport,
    segment: std::path::PathBuf,
    offset: u64,
    reason: String,
) {
    if store.halted.is_some() {
        return;
    }
    store.halted = Some(Halt::Corrupt {
        segment: segment.clone(),
        offset,
        reason: reason.clone(),
    });
    report.corruption = Some(Corruption {
        segment,
        offset,
        reason,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_agreed_api_then_a_log_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Log>();
    }

    #[test]
    fn given_group_commit_when_a_writer_appends_then_its_record_is_readable_only_once_durable() {
        let dir = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(dir.path(), LogConfig::default()).unwrap();
        {
            let mut store = log.store.write();
            let rec = NewRecord {
                subject: "s",
                headers: b"",
                payload: b"p",
                timestamp_ns: 1,
            };
            store
                .append_one(&rec, 32, 1, &log.config, &OsDurability)
                .unwrap();
        }
        assert_eq!(log.read(1).unwrap(), None, "buffered, not yet synced");
        assert_eq!(log.state().last_seq, 0);
        log.wait_durable(1, 0).unwrap();
        assert_eq!(log.read(1).unwrap().unwrap().payload, &b"p"[..]);
    }
}
