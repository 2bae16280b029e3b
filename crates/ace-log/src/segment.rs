//! One segment file: its header with the durability watermark, its sparse index, the scanner
//! that walks its records, and its recovery on open.
//!
//! ```text
//! offset 0   magic "ACELOG\0\x01" | base_seq u64 | crc32c(previous 16 bytes) u32 | pad
//! offset 32  watermark slot 0: generation u64 | offset u64 | last_seq u64 | crc32c(previous 24) u32 | pad
//! offset 64  watermark slot 1: same; the valid slot with the higher generation wins
//! offset 128 records
//! ```
//! The watermark says "every byte below `offset` was durable": each sync writes the offset the
//! *previous* sync made durable into the slot it does not overwrite last, inside the same
//! fdatasync. A crash mid-sync can therefore never leave a watermark that claims unsynced bytes.
//! Sealing (roll, close) syncs the data first and then writes `offset = file length`, so a sealed
//! segment is entirely covered.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::codec::{self, DecodeError, RecordRef};
use crate::durability::{Durability, OpenMode, is_no_space};
use crate::error::LogError;
use crate::tombstones::{Tombstones, sync_failed};

/// Bytes before the first record.
pub(crate) const HEADER_LEN: u64 = 128;
const MAGIC: &[u8; 8] = b"ACELOG\0\x01";
const SLOT_AT: [u64; 2] = [32, 64];
const READ_CHUNK: usize = 256 * 1024;
const FIRST_READ: usize = 8 * 1024;

/// A sparse-index entry: the record `seq` starts at `offset` and has timestamp `ts`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IndexEntry {
    pub(crate) seq: u64,
    pub(crate) offset: u64,
    pub(crate) ts: u64,
}

/// The last durability watermark written to the header.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Watermark {
    generation: u64,
    pub(crate) offset: u64,
    pub(crate) last_seq: u64,
}

/// One segment file and what the log knows about it.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_seq: u64,
    pub(crate) path: PathBuf,
    pub(crate) file: Arc<File>,
    /// Logical end: bytes written to the file plus bytes still in the log's write buffer.
    pub(crate) len: u64,
    /// Sequence the next record of this segment would get (`base_seq` when empty).
    pub(crate) next_seq: u64,
    pub(crate) first_ts: u64,
    pub(crate) last_ts: u64,
    pub(crate) index: Vec<IndexEntry>,
    bytes_since_index: u64,
    pub(crate) watermark: Watermark,
    /// Bytes and last sequence known durable (what the next watermark write records).
    pub(crate) synced: (u64, u64),
    pub(crate) tombstones: Tombstones,
    pub(crate) deleted_bytes: u64,
    first_live: u64,
    /// Offset and reason of the first undecodable durable record, if any.
    pub(crate) corrupt: Option<(u64, String)>,
}

/// A segment's in-memory state at a point, to go back to when buffered records are refused.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub(crate) next_seq: u64,
    pub(crate) len: u64,
    first_ts: u64,
    last_ts: u64,
    index_len: usize,
    bytes_since_index: u64,
}

/// How a scan ended.
#[derive(Debug)]
pub(crate) enum ScanEnd {
    /// Reached the end offset on a record boundary.
    End,
    /// The callback asked to stop.
    Stopped,
    /// Bytes at `offset` are not the record expected there.
    Invalid { offset: u64, reason: String },
}

/// What the callback wants after seeing a record.
pub(crate) enum Step {
    Continue,
    Stop,
    Reject(String),
}

/// What recovery did to one segment.
#[derive(Debug)]
pub(crate) enum Outcome {
    Clean,
    /// A torn tail past the watermark was cut at `offset`, dropping `bytes`.
    Truncated {
        offset: u64,
        bytes: u64,
    },
    /// Durable bytes at `offset` do not decode; nothing was changed.
    Corrupt {
        offset: u64,
        reason: String,
    },
}

/// Walks the records of `file` in `[from, end)`, calling `f(offset, record, framed_len)`.
pub(crate) fn scan(
    file: &File,
    from: u64,
    end: u64,
    mut f: impl FnMut(u64, &RecordRef<'_>, usize) -> Step,
) -> std::io::Result<ScanEnd> {
    let mut buf: Vec<u8> = Vec::new();
    let mut buf_at = from; // file offset of buf[0]
    let mut pos = 0usize;
    // Point reads touch one index interval; long scans grow the reads up to READ_CHUNK.
    let mut chunk = FIRST_READ;
    loop {
        let at = buf_at + pos as u64;
        if at >= end {
            return Ok(ScanEnd::End);
        }
        match codec::decode(&buf[pos..]) {
            Ok((rec, n)) => match f(at, &rec, n) {
                Step::Continue => pos += n,
                Step::Stop => return Ok(ScanEnd::Stopped),
                Step::Reject(reason) => return Ok(ScanEnd::Invalid { offset: at, reason }),
            },
            Err(DecodeError::Incomplete { need, .. }) if buf_at + (buf.len() as u64) < end => {
                buf.drain(..pos);
                buf_at = at;
                pos = 0;
                let want = need.max(chunk) as u64;
                chunk = (chunk * 4).min(READ_CHUNK);
                let upto = (at + want).min(end);
                let have = buf.len();
                buf.resize((upto - at) as usize, 0);
                file.read_exact_at(&mut buf[have..], at + have as u64)?;
            }
            Err(e) => {
                return Ok(ScanEnd::Invalid {
                    offset: at,
                    reason: e.to_string(),
                });
            }
        }
    }
}

impl Segment {
    /// File name of the segment starting at `base_seq`.
    pub(crate) fn file_name(base_seq: u64) -> String {
        format!("{base_seq:020}.log")
    }

    /// Creates a new empty segment durably (file, header and directory entry). A full device
    /// (`ENOSPC` at any step) removes the partial file again, durably, and answers
    /// [`LogError::NoSpace`]: the log is left as it was, and the next roll tries again.
    pub(crate) fn create(
        dir: &Path,
        base_seq: u64,
        durability: &dyn Durability,
    ) -> Result<Segment, LogError> {
        let path = dir.join(Self::file_name(base_seq));
        let file = crate::nofollow::open_for_write(
            durability,
            &path,
            OpenMode::Truncate,
            "create segment",
        )?;
        let mut header = [0u8; HEADER_LEN as usize];
        header[..8].copy_from_slice(MAGIC);
        header[8..16].copy_from_slice(&base_seq.to_le_bytes());
        let crc = crc32c::crc32c(&header[..16]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        let wm = Watermark {
            generation: 1,
            offset: HEADER_LEN,
            last_seq: base_seq - 1,
        };
        header[32..64].copy_from_slice(&encode_slot(&wm));
        let del = dir.join(format!("{base_seq:020}.del"));
        let made = durability
            .write_at(&file, &path, &header, 0)
            .map_err(|e| (e, false))
            .and_then(|()| durability.sync_file(&file, &path).map_err(|e| (e, true)))
            // A stale delete file of an earlier segment of this base must not delete records of
            // this one: it goes before the directory sync that makes this segment's name durable.
            .and_then(|()| remove_if_present(durability, &del).map_err(|e| (e, false)))
            .and_then(|()| durability.sync_dir(dir).map_err(|e| (e, true)));
        match made {
            Ok(()) => {}
            Err((e, _)) if is_no_space(&e) => {
                drop(file);
                return Err(abandon(dir, &path, durability));
            }
            Err((e, true)) => return Err(sync_failed(&path, &e)),
            Err((e, false)) => return Err(LogError::io("write segment header", &path, e)),
        }
        let (tombstones, _) = Tombstones::load(del, durability)?;
        Ok(Segment::new(base_seq, path, file, wm, tombstones))
    }

    fn new(base_seq: u64, path: PathBuf, file: File, wm: Watermark, t: Tombstones) -> Segment {
        Segment {
            base_seq,
            path,
            file: Arc::new(file),
            len: HEADER_LEN,
            next_seq: base_seq,
            first_ts: 0,
            last_ts: 0,
            index: Vec::new(),
            bytes_since_index: 0,
            watermark: wm,
            synced: (HEADER_LEN, base_seq - 1),
            tombstones: t,
            deleted_bytes: 0,
            first_live: base_seq,
            corrupt: None,
        }
    }

    /// Opens an existing segment and recovers it. Only the last segment may have a torn tail,
    /// and only past both its watermark and `high_water` (the highest sequence ever
    /// acknowledged): anything undecodable below them (or in a sealed segment) is reported as
    /// corruption and left untouched, with every record before it still readable.
    pub(crate) fn recover(
        dir: &Path,
        base_seq: u64,
        is_last: bool,
        interval: u32,
        high_water: u64,
        durability: &dyn Durability,
    ) -> Result<(Segment, Outcome), LogError> {
        let path = dir.join(Self::file_name(base_seq));
        let file =
            crate::nofollow::open_for_write(durability, &path, OpenMode::Existing, "open segment")?;
        let flen = file
            .metadata()
            .map_err(|e| LogError::io("stat segment", &path, e))?
            .len();
        let del = dir.join(format!("{base_seq:020}.del"));
        let (tombstones, _torn) = Tombstones::load(del, durability)?;
        let header = read_header(&file, &path, flen)?;
        let wm = match parse_header(&header, base_seq) {
            Ok(wm) => wm,
            Err(_)
                if is_last
                    && flen <= HEADER_LEN
                    && tombstones.count() == 0
                    && high_water < base_seq =>
            {
                // Creation was torn before the header was synced, and no acknowledged sequence
                // lies in it: nothing was ever in it.
                drop(file);
                let seg = Segment::create(dir, base_seq, durability)?;
                let bytes = flen;
                return Ok((seg, Outcome::Truncated { offset: 0, bytes }));
            }
            Err((offset, mut reason)) => {
                if high_water >= base_seq {
                    reason = format!(
                        "{reason} (file is {flen} bytes; sequences from {base_seq} up to the \
                         high-water mark {high_water} were acknowledged)"
                    );
                }
                let mut seg = Segment::new(base_seq, path, file, empty_wm(base_seq), tombstones);
                seg.corrupt = Some((offset, reason.clone()));
                return Ok((seg, Outcome::Corrupt { offset, reason }));
            }
        };
        let mut seg = Segment::new(base_seq, path, file, wm, tombstones);
        if wm.offset > flen {
            // Cut below what was synced: index what survived so it stays readable, change
            // nothing on disk.
            let end = seg.scan_records(flen, interval)?;
            seg.len = match &end {
                ScanEnd::Invalid { offset, .. } => *offset,
                ScanEnd::End | ScanEnd::Stopped => flen,
            };
            let (offset, reason) = match end {
                ScanEnd::Invalid { offset, reason } => (offset, reason),
                ScanEnd::End | ScanEnd::Stopped => (
                    flen,
                    format!(
                        "file is {flen} bytes, its synced watermark says {}",
                        wm.offset
                    ),
                ),
            };
            seg.corrupt = Some((offset, reason.clone()));
            seg.synced = (seg.len, seg.next_seq - 1);
            seg.first_live = seg.base_seq;
            seg.advance_first_live();
            return Ok((seg, Outcome::Corrupt { offset, reason }));
        }
        let outcome = seg.scan_for_recovery(flen, is_last, interval, high_water, durability)?;
        // A delete can only name a durable record, but the lagging watermark lets recovery cut
        // the last synced records; their tombstones must not delete future records.
        if seg.corrupt.is_none() {
            seg.tombstones.retain_below(seg.next_seq, dir, durability)?;
        }
        seg.synced = (seg.len, seg.next_seq - 1);
        seg.first_live = seg.base_seq;
        seg.advance_first_live();
        Ok((seg, outcome))
    }

    /// Indexes every record in `[HEADER_LEN, flen)` that decodes in sequence; how the scan ended.
    fn scan_records(&mut self, flen: u64, interval: u32) -> Result<ScanEnd, LogError> {
        let file = Arc::clone(&self.file);
        scan(&file, HEADER_LEN, flen, |at, rec, n| {
            if rec.seq != self.next_seq {
                return Step::Reject(format!(
                    "record has sequence {}, expected {}",
                    rec.seq, self.next_seq
                ));
            }
            if self.tombstones.contains(rec.seq) {
                self.deleted_bytes += n as u64;
            }
            self.note_appended(rec.seq, rec.timestamp_ns, at, n as u64, interval);
            Step::Continue
        })
        .map_err(|e| LogError::io("read segment", &self.path, e))
    }

    fn scan_for_recovery(
        &mut self,
        flen: u64,
        is_last: bool,
        interval: u32,
        high_water: u64,
        durability: &dyn Durability,
    ) -> Result<Outcome, LogError> {
        let end = self.scan_records(flen, interval)?;
        self.len = match end {
            ScanEnd::End | ScanEnd::Stopped => flen,
            ScanEnd::Invalid { offset, .. } => offset,
        };
        let ScanEnd::Invalid { offset, reason } = end else {
            if is_last {
                // Records past the watermark decoded fine but may sit only in the page cache:
                // make them durable before anyone can read them.
                self.seal(durability)?;
            }
            return Ok(Outcome::Clean);
        };
        if offset < self.watermark.offset || !is_last {
            self.corrupt = Some((offset, reason.clone()));
            return Ok(Outcome::Corrupt { offset, reason });
        }
        if self.next_seq <= high_water {
            // Past the watermark, but an acknowledged record lies there: not a torn tail.
            let reason = format!(
                "{reason}; sequence {} up to the high-water mark {high_water} was acknowledged",
                self.next_seq
            );
            self.corrupt = Some((offset, reason.clone()));
            return Ok(Outcome::Corrupt { offset, reason });
        }
        durability
            .set_len(&self.file, &self.path, offset)
            .map_err(|e| LogError::io("truncate torn tail", &self.path, e))?;
        self.seal(durability)?;
        Ok(Outcome::Truncated {
            offset,
            bytes: flen - offset,
        })
    }

    /// Records that a record of `len` bytes with `seq` and `ts` now lives at `offset`.
    /// `interval` is the sparse-index density in bytes.
    pub(crate) fn note_appended(
        &mut self,
        seq: u64,
        ts: u64,
        offset: u64,
        len: u64,
        interval: u32,
    ) {
        if self.index.is_empty() || self.bytes_since_index >= u64::from(interval) {
            self.index.push(IndexEntry { seq, offset, ts });
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += len;
        if self.next_seq == self.base_seq {
            self.first_ts = ts;
        }
        self.next_seq = seq + 1;
        self.last_ts = ts;
        self.len = offset + len;
    }

    /// Where the segment stands now.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            next_seq: self.next_seq,
            len: self.len,
            first_ts: self.first_ts,
            last_ts: self.last_ts,
            index_len: self.index.len(),
            bytes_since_index: self.bytes_since_index,
        }
    }

    /// The state of this segment holding no record.
    pub(crate) fn empty_mark(&self) -> Mark {
        Mark {
            next_seq: self.base_seq,
            len: HEADER_LEN,
            first_ts: 0,
            last_ts: 0,
            index_len: 0,
            bytes_since_index: 0,
        }
    }

    /// Forgets every record noted after `mark` (they were never written).
    pub(crate) fn rewind(&mut self, mark: &Mark) {
        self.next_seq = mark.next_seq;
        self.len = mark.len;
        self.first_ts = mark.first_ts;
        self.last_ts = mark.last_ts;
        self.index.truncate(mark.index_len);
        self.bytes_since_index = mark.bytes_since_index;
    }

    /// Writes the watermark `(offset, last_seq)` into the slot not written last (no sync).
    pub(crate) fn write_watermark(
        &mut self,
        offset: u64,
        last_seq: u64,
        durability: &dyn Durability,
    ) -> Result<(), LogError> {
        let wm = Watermark {
            generation: self.watermark.generation + 1,
            offset,
            last_seq,
        };
        let at = SLOT_AT[(wm.generation % 2) as usize];
        durability
            .write_at(&self.file, &self.path, &encode_slot(&wm), at)
            .map_err(|e| LogError::io("write watermark", &self.path, e))?;
        self.watermark = wm;
        Ok(())
    }

    /// Syncs all bytes, then records a watermark covering the whole file and syncs that too.
    pub(crate) fn seal(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        let sync = |seg: &Segment| {
            durability
                .sync_file(&seg.file, &seg.path)
                .map_err(|e| sync_failed(&seg.path, &e))
        };
        sync(self)?;
        self.synced = (self.len, self.next_seq - 1);
        if self.watermark.offset != self.len {
            self.write_watermark(self.len, self.next_seq - 1, durability)?;
            sync(self)?;
        }
        Ok(())
    }

    /// Live (not deleted) records.
    pub(crate) fn live(&self) -> u64 {
        (self.next_seq - self.base_seq).saturating_sub(self.tombstones.count())
    }

    /// Live record bytes.
    pub(crate) fn live_bytes(&self) -> u64 {
        self.len - HEADER_LEN - self.deleted_bytes
    }

    /// The smallest live sequence (`next_seq` when none).
    pub(crate) fn first_live(&self) -> u64 {
        self.first_live
    }

    pub(crate) fn advance_first_live(&mut self) {
        while self.first_live < self.next_seq && self.tombstones.contains(self.first_live) {
            self.first_live += 1;
        }
    }

    /// File offset to start scanning from to find `seq` (or the first record after it).
    pub(crate) fn offset_for_seq(&self, seq: u64) -> u64 {
        let i = self.index.partition_point(|e| e.seq <= seq);
        i.checked_sub(1)
            .map_or(HEADER_LEN, |i| self.index[i].offset)
    }

    /// File offset to start scanning from to find the first record with timestamp `>= ts`.
    pub(crate) fn offset_for_ts(&self, ts: u64) -> u64 {
        let i = self.index.partition_point(|e| e.ts < ts);
        i.checked_sub(1)
            .map_or(HEADER_LEN, |i| self.index[i].offset)
    }
}

/// Removes `path`; an absent file is fine.
pub(crate) fn remove_if_present(durability: &dyn Durability, path: &Path) -> std::io::Result<()> {
    match durability.remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Takes back a segment whose creation the device refused: its file goes, durably, so that no
/// empty segment is left after records the log keeps appending to the one before it. The answer
/// is [`LogError::NoSpace`], or the error that stopped the clean-up (which halts the log).
fn abandon(dir: &Path, path: &Path, durability: &dyn Durability) -> LogError {
    let removed = remove_if_present(durability, path)
        .map_err(|e| LogError::io("remove refused segment", path, e))
        .and_then(|()| durability.sync_dir(dir).map_err(|e| sync_failed(dir, &e)));
    match removed {
        Ok(()) => LogError::NoSpace {
            path: path.to_path_buf(),
        },
        Err(e) => e,
    }
}

fn empty_wm(base_seq: u64) -> Watermark {
    Watermark {
        generation: 0,
        offset: HEADER_LEN,
        last_seq: base_seq - 1,
    }
}

fn read_header(file: &File, path: &Path, flen: u64) -> Result<Vec<u8>, LogError> {
    let mut header = vec![0u8; flen.min(HEADER_LEN) as usize];
    file.read_exact_at(&mut header, 0)
        .map_err(|e| LogError::io("read segment header", path, e))?;
    Ok(header)
}

fn parse_header(h: &[u8], base_seq: u64) -> Result<Watermark, (u64, String)> {
    if h.len() < HEADER_LEN as usize {
        return Err((
            0,
            format!("header is {} bytes, needs {HEADER_LEN}", h.len()),
        ));
    }
    let crc = u32::from_le_bytes([h[16], h[17], h[18], h[19]]);
    if &h[..8] != MAGIC || crc32c::crc32c(&h[..16]) != crc {
        return Err((0, "bad segment header magic or crc32c".into()));
    }
    if codec::u64_at(h, 8) != base_seq {
        return Err((
            8,
            "header base sequence does not match the file name".into(),
        ));
    }
    SLOT_AT
        .iter()
        .filter_map(|&at| decode_slot(&h[at as usize..at as usize + 32]))
        .max_by_key(|wm| wm.generation)
        .ok_or_else(|| (SLOT_AT[0], "both watermark slots fail their crc32c".into()))
}

fn encode_slot(wm: &Watermark) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&wm.generation.to_le_bytes());
    s[8..16].copy_from_slice(&wm.offset.to_le_bytes());
    s[16..24].copy_from_slice(&wm.last_seq.to_le_bytes());
    let crc = crc32c::crc32c(&s[..24]);
    s[24..28].copy_from_slice(&crc.to_le_bytes());
    s
}

fn decode_slot(s: &[u8]) -> Option<Watermark> {
    let crc = u32::from_le_bytes([s[24], s[25], s[26], s[27]]);
    let wm = Watermark {
        generation: codec::u64_at(s, 0),
        offset: codec::u64_at(s, 8),
        last_seq: codec::u64_at(s, 16),
    };
    (crc32c::crc32c(&s[..24]) == crc && wm.generation > 0 && wm.offset >= HEADER_LEN).then_some(wm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::OsDurability;

    fn header(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()[..HEADER_LEN as usize].to_vec()
    }

    #[test]
    fn given_a_torn_latest_watermark_slot_when_parsed_then_the_previous_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 5, &OsDurability).unwrap();
        seg.write_watermark(200, 6, &OsDurability).unwrap();
        seg.write_watermark(300, 7, &OsDurability).unwrap();
        let mut h = header(&seg.path);
        assert_eq!(parse_header(&h, 5).unwrap().offset, 300);
        let latest = SLOT_AT[(seg.watermark.generation % 2) as usize] as usize;
        h[latest + 9] ^= 0x40;
        let wm = parse_header(&h, 5).unwrap();
        assert_eq!((wm.offset, wm.last_seq), (200, 6));
    }

    #[test]
    fn given_a_header_for_another_base_when_parsed_then_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 5, &OsDurability).unwrap();
        assert!(parse_header(&header(&seg.path), 6).is_err());
        assert!(parse_header(&header(&seg.path)[..40], 5).is_err());
    }
}
