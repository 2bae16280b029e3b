//! `Store`: the segments of one log and its write buffer — everything that runs under the
//! log's lock. `Log` (in `log.rs`) adds the locking, the sync policies and group commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::codec::{self, RecordRef};
use crate::config::LogConfig;
use crate::durability::{Durability, is_no_space};
use crate::error::LogError;
use crate::gaps::Gaps;
use crate::segment::{HEADER_LEN, Mark, ScanEnd, Segment, Step, remove_if_present};
use crate::tombstones::sync_failed;
use crate::types::{Appended, NewRecord, Record, RetentionReport};

/// Why a log stopped accepting writes. Kept so every later call gets the same answer.
#[derive(Debug, Clone)]
pub(crate) enum Halt {
    Corrupt {
        segment: PathBuf,
        offset: u64,
        reason: String,
    },
    Failed {
        path: PathBuf,
        reason: String,
    },
}

impl Halt {
    pub(crate) fn to_error(&self) -> LogError {
        match self.clone() {
            Halt::Corrupt {
                segment,
                offset,
                reason,
            } => LogError::Corrupt {
                segment,
                offset,
                reason,
            },
            Halt::Failed { path, reason } => LogError::SyncFailed { path, reason },
        }
    }

    /// Turns a write-path error into the halt it causes (every write-path error halts: after a
    /// failed write or sync the file's contents are unknown).
    pub(crate) fn from_error(e: &LogError) -> Halt {
        match e {
            LogError::Corrupt {
                segment,
                offset,
                reason,
            } => Halt::Corrupt {
                segment: segment.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            LogError::SyncFailed { path, reason } => Halt::Failed {
                path: path.clone(),
                reason: reason.clone(),
            },
            LogError::Io { op, path, source } => Halt::Failed {
                path: path.clone(),
                reason: format!("{op}: {source}"),
            },
            other => Halt::Failed {
                path: PathBuf::new(),
                reason: other.to_string(),
            },
        }
    }
}

/// The segments (by base sequence; the last one is active) and the write buffer.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) dir: PathBuf,
    pub(crate) segments: BTreeMap<u64, Segment>,
    /// Encoded records not yet written to the active segment; they start at `pending_at`.
    pub(crate) pending: Vec<u8>,
    pub(crate) pending_at: u64,
    pub(crate) next_seq: u64,
    pub(crate) last_ts: u64,
    pub(crate) halted: Option<Halt>,
    /// The state before the first buffered record: `(active segment, next_seq, last_ts)`.
    pub(crate) unbuffered: Option<(Mark, u64, u64)>,
    /// How many times buffered records were refused (`ENOSPC`) and forgotten.
    pub(crate) rewinds: u64,
    /// The holes between segments a repair accepted (`gaps`): not damage.
    pub(crate) gaps: Gaps,
}

/// Where one `append_batch` call began: what [`Store::rewind_call`] goes back to when the
/// device refuses the call's records.
#[derive(Debug, Clone)]
pub(crate) struct CallStart {
    base: u64,
    seg: Mark,
    next_seq: u64,
    last_ts: u64,
    rewinds: u64,
}

impl Store {
    pub(crate) fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    pub(crate) fn check_writable(&self) -> Result<(), LogError> {
        self.halted.as_ref().map_or(Ok(()), |h| Err(h.to_error()))
    }

    /// Runs a write-path step; any error halts the log, except a full device (`NoSpace`),
    /// whose refused records were forgotten and left nothing unknown behind.
    pub(crate) fn guard<T>(&mut self, r: Result<T, LogError>) -> Result<T, LogError> {
        if let Err(e) = &r
            && !matches!(e, LogError::NoSpace { .. })
        {
            self.halted.get_or_insert_with(|| Halt::from_error(e));
        }
        r
    }

    /// Encodes one record into the buffer, rolling the segment first when it would overflow.
    pub(crate) fn append_one(
        &mut self,
        rec: &NewRecord<'_>,
        framed: u64,
        now_ns: u64,
        config: &LogConfig,
        durability: &dyn Durability,
    ) -> Result<Appended, LogError> {
        let active = self.active();
        if active.len + framed > config.segment_bytes && active.next_seq > active.base_seq {
            let all_deleted = active.live() == 0;
            let r = self.roll(durability);
            self.guard(r)?;
            if all_deleted {
                // Everything in it was deleted while it was active; sealed, it can go once it
                // is the oldest (a hole in the middle would read as lost data at recovery).
                self.remove_dead_prefix(durability)?;
            }
        }
        let ts = if rec.timestamp_ns == 0 {
            now_ns
        } else {
            rec.timestamp_ns
        }
        .max(self.last_ts);
        let seq = self.next_seq;
        let offset = self.pending_at + self.pending.len() as u64;
        let view = RecordRef {
            seq,
            timestamp_ns: ts,
            subject: rec.subject,
            headers: rec.headers,
            payload: rec.payload,
        };
        if self.pending.is_empty() {
            self.unbuffered = Some((self.active().mark(), self.next_seq, self.last_ts));
        }
        codec::encode_into(&mut self.pending, &view);
        let interval = config.index_interval_bytes;
        self.active_mut()
            .note_appended(seq, ts, offset, framed, interval);
        self.next_seq += 1;
        self.last_ts = ts;
        Ok(Appended {
            seq,
            timestamp_ns: ts,
        })
    }

    /// Writes the buffer to the active segment (no sync). On a full device (`ENOSPC`) the
    /// buffered records are forgotten — the file is cut back to where they began, sequences and
    /// index go back — and `LogError::NoSpace` is returned without halting the log.
    pub(crate) fn flush(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let seg = self.active();
        match durability.write_at(&seg.file, &seg.path, &self.pending, self.pending_at) {
            Ok(()) => {}
            Err(e) if is_no_space(&e) => return self.refuse_pending(durability),
            Err(e) => {
                let r = Err(LogError::io("write segment", &seg.path, e));
                return self.guard(r);
            }
        }
        self.pending_at += self.pending.len() as u64;
        self.pending.clear();
        self.unbuffered = None;
        Ok(())
    }

    /// Forgets the buffered records after a full device refused them.
    fn refuse_pending(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        let path = self.active().path.clone();
        // A partial write may have grown the file: cut it back to the last whole record.
        let seg = self.active();
        let cut = durability.set_len(&seg.file, &seg.path, self.pending_at);
        let r = cut.map_err(|e| LogError::io("cut refused records", &path, e));
        self.guard(r)?;
        self.pending.clear();
        if let Some((mark, next_seq, last_ts)) = self.unbuffered.take() {
            self.active_mut().rewind(&mark);
            self.next_seq = next_seq;
            self.last_ts = last_ts;
        }
        self.rewinds += 1;
        Err(LogError::NoSpace { path })
    }

    /// Flushes, writes the previous sync's watermark and syncs the active segment: afterwards
    /// everything appended so far is durable. Returns the last durable sequence.
    pub(crate) fn sync_active(&mut self, durability: &dyn Durability) -> Result<u64, LogError> {
        self.flush(durability)?;
        let seg = self.active_mut();
        let (len, last) = (seg.len, seg.next_seq - 1);
        let (synced_len, synced_last) = seg.synced;
        let r = seg
            .write_watermark(synced_len, synced_last, durability)
            .and_then(|()| {
                durability
                    .sync_file(&seg.file, &seg.path)
                    .map_err(|e| sync_failed(&seg.path, &e))
            });
        self.guard(r)?;
        self.active_mut().synced = (len, last);
        Ok(last)
    }

    /// Where a call appending from now on begins.
    pub(crate) fn call_start(&self) -> CallStart {
        let active = self.active();
        CallStart {
            base: active.base_seq,
            seg: active.mark(),
            next_seq: self.next_seq,
            last_ts: self.last_ts,
            rewinds: self.rewinds,
        }
    }

    /// Takes back every record appended since `start`, after the device refused some of them
    /// (`ENOSPC` writing them, or creating a segment they needed): a refused call stores
    /// nothing. The segments the call created go, newest first and each removal durable, so a
    /// crash in between never leaves a hole; the segment that was active is cut back to where
    /// the call began, its watermark lowered (and synced) before the cut, so a crash in between
    /// leaves at worst records past the watermark, which recovery keeps as a tail. Records other
    /// writers buffered before the call, written and synced by the call's roll, stay: the next
    /// group-commit sync acknowledges them.
    pub(crate) fn rewind_call(
        &mut self,
        start: &CallStart,
        durability: &dyn Durability,
    ) -> Result<(), LogError> {
        let created = self.segments.range(start.base + 1..).count();
        if created == 0 && self.rewinds > start.rewinds {
            // The buffer was refused while the call's first segment was active: it was cut
            // back to before the call (and other writers' records with it, which they are told).
            return Ok(());
        }
        // The segment the call began in; when it was removed during the call (every record in
        // it deleted), the first segment the call created, which holds only the call's records.
        let keep = if self.segments.contains_key(&start.base) {
            start.base
        } else {
            start.next_seq
        };
        let newer: Vec<u64> = self.segments.range(keep + 1..).map(|(b, _)| *b).collect();
        for base in newer.into_iter().rev() {
            self.remove_segment(base, durability)?;
        }
        let seg = self
            .segments
            .get_mut(&keep)
            .expect("the kept segment is there");
        let mark = if keep == start.base {
            start.seg.clone()
        } else {
            seg.empty_mark()
        };
        let (offset, last) = (mark.len, mark.next_seq - 1);
        if seg.watermark.offset > offset {
            seg.write_watermark(offset, last, durability)?;
            durability
                .sync_file(&seg.file, &seg.path)
                .map_err(|e| sync_failed(&seg.path, &e))?;
        }
        let on_file = seg.file.metadata().map_or(u64::MAX, |m| m.len());
        if on_file > offset {
            durability
                .set_len(&seg.file, &seg.path, offset)
                .map_err(|e| LogError::io("cut refused records", &seg.path, e))?;
        }
        seg.rewind(&mark);
        seg.synced = (offset, last);
        self.pending.clear();
        self.pending_at = offset;
        self.unbuffered = None;
        self.next_seq = mark.next_seq;
        self.last_ts = start.last_ts;
        // A refusal of a segment the call created forgot only the call's own records.
        self.rewinds = start.rewinds;
        Ok(())
    }

    /// Seals the active segment and starts a new one at `next_seq`.
    pub(crate) fn roll(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        self.flush(durability)?;
        self.active_mut().seal(durability)?;
        let seg = Segment::create(&self.dir, self.next_seq, durability)?;
        self.segments.insert(seg.base_seq, seg);
        self.pending_at = HEADER_LEN;
        Ok(())
    }

    /// Live records with sequence `>= from` and `<= upto`, at most `max`.
    pub(crate) fn read_from(
        &self,
        from: u64,
        upto: u64,
        max: usize,
    ) -> Result<Vec<Record>, LogError> {
        let mut out = Vec::new();
        let first_base = self
            .segments
            .range(..=from)
            .next_back()
            .map_or(0, |(b, _)| *b);
        for seg in self.segments.range(first_base..).map(|(_, s)| s) {
            if out.len() >= max || (seg.base_seq > upto && seg.corrupt.is_none()) {
                break;
            }
            let want = from.max(seg.base_seq);
            if want < seg.next_seq {
                self.read_segment(seg, want, upto, max, &mut out)?;
            }
            if let (Some((offset, reason)), true) = (&seg.corrupt, out.len() < max) {
                // The records after the bad bytes are unknown: refuse rather than skip them.
                // What was read before them is served; the next read from there fails.
                if !out.is_empty() {
                    return Ok(out);
                }
                return Err(LogError::Corrupt {
                    segment: seg.path.clone(),
                    offset: *offset,
                    reason: reason.clone(),
                });
            }
        }
        Ok(out)
    }

    fn read_segment(
        &self,
        seg: &Segment,
        from: u64,
        upto: u64,
        max: usize,
        out: &mut Vec<Record>,
    ) -> Result<(), LogError> {
        let end = self.readable_end(seg);
        let end_seq = upto.min(seg.next_seq - 1);
        let stop = scan(seg, seg.offset_for_seq(from), end, |_, rec, _| {
            if rec.seq > end_seq || out.len() >= max {
                return Step::Stop;
            }
            if rec.seq >= from && !seg.tombstones.contains(rec.seq) {
                out.push(to_record(rec));
            }
            Step::Continue
        })?;
        match stop {
            // Decoding looks one record ahead: bad bytes after the last record asked for are
            // for a later read to report.
            ScanEnd::Invalid { .. } if out.len() >= max => Ok(()),
            ScanEnd::Invalid { offset, reason } => Err(LogError::Corrupt {
                segment: seg.path.clone(),
                offset,
                reason,
            }),
            ScanEnd::End | ScanEnd::Stopped => Ok(()),
        }
    }

    /// Bytes of `seg` that are on file and decodable.
    fn readable_end(&self, seg: &Segment) -> u64 {
        let written = if seg.base_seq == self.active().base_seq {
            self.pending_at
        } else {
            seg.len
        };
        seg.corrupt
            .as_ref()
            .map_or(written, |(o, _)| (*o).min(written))
    }

    /// The first sequence `<= upto` whose timestamp is `>= ts`.
    pub(crate) fn seq_at_or_after(&self, ts: u64, upto: u64) -> Option<u64> {
        let seg = self
            .segments
            .values()
            .find(|s| s.next_seq > s.base_seq && s.last_ts >= ts && s.base_seq <= upto)?;
        if seg.first_ts >= ts {
            return Some(seg.base_seq);
        }
        let mut found = None;
        scan(
            seg,
            seg.offset_for_ts(ts),
            self.readable_end(seg),
            |_, rec, _| {
                if rec.timestamp_ns >= ts {
                    found = Some(rec.seq);
                    return Step::Stop;
                }
                Step::Continue
            },
        )
        .ok()?;
        found.filter(|s| *s <= upto)
    }

    /// Framed size of record `seq` in `seg`, if it is there.
    fn record_len(&self, seg: &Segment, seq: u64) -> Result<Option<u64>, LogError> {
        let mut len = None;
        scan(
            seg,
            seg.offset_for_seq(seq),
            self.readable_end(seg),
            |_, rec, n| {
                if rec.seq >= seq {
                    len = (rec.seq == seq).then_some(n as u64);
                    return Step::Stop;
                }
                Step::Continue
            },
        )?;
        Ok(len)
    }

    /// Durably marks `seq` deleted; removes its segment when nothing live remains in it.
    pub(crate) fn delete(
        &mut self,
        seq: u64,
        upto: u64,
        sync: bool,
        durability: &dyn Durability,
    ) -> Result<bool, LogError> {
        let Some((&base, seg)) = self.segments.range(..=seq).next_back() else {
            return Ok(false);
        };
        if seq > upto || seq >= seg.next_seq || seg.tombstones.contains(seq) {
            return Ok(false);
        }
        let Some(len) = self.record_len(seg, seq)? else {
            return Ok(false);
        };
        let dir = self.dir.clone();
        let seg = self.segments.get_mut(&base).expect("segment found above");
        let r = seg.tombstones.add(seq, sync, &dir, durability);
        self.guard(r)?;
        let seg = self.segments.get_mut(&base).expect("segment found above");
        seg.deleted_bytes += len;
        seg.advance_first_live();
        self.remove_dead_prefix(durability)?;
        Ok(true)
    }

    /// Removes the oldest sealed segments whose every record is deleted. Only the oldest go: a
    /// removed segment in the middle would be a hole that recovery could not tell from lost
    /// data, so a fully deleted one further on waits until the segments before it are gone.
    fn remove_dead_prefix(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        let active = self.active().base_seq;
        while let Some((&oldest, seg)) = self.segments.iter().next() {
            if oldest == active || seg.live() > 0 {
                break;
            }
            let r = self.remove_segment(oldest, durability);
            self.guard(r)?;
        }
        Ok(())
    }

    /// Removes a segment's files: the log first, so a crash in between leaves an orphan
    /// tombstone file (removed at open), never resurrected deletes.
    pub(crate) fn remove_segment(
        &mut self,
        base: u64,
        durability: &dyn Durability,
    ) -> Result<Segment, LogError> {
        let seg = self
            .segments
            .remove(&base)
            .expect("removing a known segment");
        durability
            .remove_file(&seg.path)
            .map_err(|e| LogError::io("remove segment", &seg.path, e))?;
        remove_if_present(durability, seg.tombstones.path())
            .map_err(|e| LogError::io("remove tombstones", seg.tombstones.path(), e))?;
        durability
            .sync_dir(&self.dir)
            .map_err(|e| sync_failed(&self.dir, &e))?;
        Ok(seg)
    }

    /// Drops the oldest whole segments that lie entirely outside the retention limits.
    pub(crate) fn apply_retention(
        &mut self,
        config: &LogConfig,
        now_ns: u64,
        durability: &dyn Durability,
    ) -> Result<RetentionReport, LogError> {
        let mut report = RetentionReport::default();
        loop {
            let (msgs, bytes) = self.totals();
            let oldest = self.segments.values().next().expect("active segment");
            if !outside_limits(oldest, msgs, bytes, config, now_ns) {
                return Ok(report);
            }
            let base = oldest.base_seq;
            if base == self.active().base_seq {
                if oldest.next_seq == oldest.base_seq {
                    return Ok(report);
                }
                let r = self.roll(durability);
                self.guard(r)?;
            }
            let r = self.remove_segment(base, durability);
            let seg = self.guard(r)?;
            report.segments_dropped += 1;
            report.messages_dropped += seg.live();
            report.bytes_dropped += seg.live_bytes();
        }
    }

    /// Live messages and bytes over all segments.
    pub(crate) fn totals(&self) -> (u64, u64) {
        self.segments
            .values()
            .fold((0, 0), |(m, b), s| (m + s.live(), b + s.live_bytes()))
    }

    /// Syncs every tombstone file written without a sync.
    pub(crate) fn sync_tombstones(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        for seg in self.segments.values_mut() {
            seg.tombstones.sync(durability)?;
        }
        Ok(())
    }
}

/// True when every record of `seg` is outside a limit: too old, or the newer segments alone
/// already hold `max_msgs` / `max_bytes`. A segment with no live message is always outside.
fn outside_limits(seg: &Segment, msgs: u64, bytes: u64, config: &LogConfig, now_ns: u64) -> bool {
    let r = &config.retention;
    let has_records = seg.next_seq > seg.base_seq;
    let too_old = r.max_age.is_some_and(|age| {
        has_records && seg.last_ts.saturating_add(age.as_nanos() as u64) <= now_ns
    });
    let by_msgs = r.max_msgs.is_some_and(|m| msgs - seg.live() >= m);
    let by_bytes = r.max_bytes.is_some_and(|m| bytes - seg.live_bytes() >= m);
    too_old || (has_records && (by_msgs || by_bytes)) || seg.live() == 0
}

fn scan(
    seg: &Segment,
    from: u64,
    end: u64,
    f: impl FnMut(u64, &RecordRef<'_>, usize) -> Step,
) -> Result<ScanEnd, LogError> {
    crate::segment::scan(&seg.file, from, end, f)
        .map_err(|e| LogError::io("read segment", &seg.path, e))
}

fn to_record(rec: &RecordRef<'_>) -> Record {
    Record {
        seq: rec.seq,
        timestamp_ns: rec.timestamp_ns,
        subject: rec.subject.to_owned(),
        headers: Bytes::copy_from_slice(rec.headers),
        payload: Bytes::copy_from_slice(rec.payload),
    }
}

/// Lists the base sequences of the `*.log` files in `dir`, and removes orphan `*.del` files.
pub(crate) fn list_segments(dir: &Path, durability: &dyn Durability) -> Result<Vec<u64>, LogError> {
    let entries = std::fs::read_dir(dir).map_err(|e| LogError::io("list log directory", dir, e))?;
    let mut logs = Vec::new();
    let mut dels = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io("list log directory", dir, e))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name
            .strip_suffix(".log")
            .and_then(|b| b.parse::<u64>().ok())
        {
            logs.push(base);
        } else if let Some(base) = name
            .strip_suffix(".del")
            .and_then(|b| b.parse::<u64>().ok())
        {
            dels.push(base);
        } else if name.ends_with(".del.tmp") {
            // A tombstone rewrite that crashed before its rename: the original is intact.
            let path = entry.path();
            durability
                .remove_file(&path)
                .map_err(|e| LogError::io("remove stale tombstone rewrite", &path, e))?;
        }
    }
    logs.sort_unstable();
    for orphan in dels.into_iter().filter(|d| logs.binary_search(d).is_err()) {
        let path = dir.join(format!("{orphan:020}.del"));
        durability
            .remove_file(&path)
            .map_err(|e| LogError::io("remove orphan tombstones", &path, e))?;
    }
    Ok(logs)
}
