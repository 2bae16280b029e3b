//! Crash simulation on real files: cut the last segment at every byte of its last record, flip
//! every bit of it, and flip bits of records the watermark covers; then reopen. A cut or damaged
//! tail past the watermark is truncated and reported; damage below it is corruption, reported with
//! segment and offset, and the log goes read-only without losing or skipping anything. A record
//! that was acknowledged (the high-water mark covers it) is never a torn tail: cutting it is
//! damage, and its sequence is never handed out again.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use ace_log::codec::frame_len;
use ace_log::{Log, LogConfig, LogError, SyncPolicy};

use crate::api::rec;

pub(crate) const RECORDS: u64 = 24;

pub(crate) fn payload(seq: u64) -> Vec<u8> {
    format!("payload-{seq}-")
        .repeat(seq as usize % 4 + 1)
        .into_bytes()
}

pub(crate) fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 512,
        sync: SyncPolicy::Always,
        ..LogConfig::default()
    }
}

/// A log of `RECORDS` records written with `Always` and dropped without `close`: the watermark
/// covers all but the last record, and the high-water mark is put back to what it was before
/// the last append (a crash after the last record's segment sync, before its acknowledgement).
pub(crate) fn crashed_log() -> (tempfile::TempDir, PathBuf, u64, u64) {
    let (dir, last, last_at, prev_at) = acked_log();
    let hw = dir.path().join("highwater");
    std::fs::write(
        &hw,
        std::fs::read(dir.path().join("highwater.before")).unwrap(),
    )
    .unwrap();
    (dir, last, last_at, prev_at)
}

/// Like `crashed_log`, with every record acknowledged (the high-water mark says `RECORDS`);
/// `highwater.before` holds the mark as it was before the last append.
pub(crate) fn acked_log() -> (tempfile::TempDir, PathBuf, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(dir.path(), config()).unwrap();
    for seq in 1..=RECORDS {
        if seq == RECORDS {
            let hw = std::fs::read(dir.path().join("highwater")).unwrap();
            std::fs::write(dir.path().join("highwater.before"), hw).unwrap();
        }
        assert_eq!(
            log.append(rec("crash.s", &payload(seq), seq)).unwrap().seq,
            seq
        );
    }
    drop(log);
    let last = last_segment(dir.path());
    let len = std::fs::metadata(&last).unwrap().len();
    let last_rec = frame_len(7, 0, payload(RECORDS).len());
    let prev_rec = frame_len(7, 0, payload(RECORDS - 1).len());
    (dir, last, len - last_rec, len - last_rec - prev_rec)
}

pub(crate) fn last_segment(dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop().unwrap()
}

pub(crate) fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, to.path().join(path.file_name().unwrap())).unwrap();
    }
    to
}

pub(crate) fn flip_bit(path: &Path, bit: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[(bit / 8) as usize] ^= 1 << (bit % 8);
    std::fs::write(path, bytes).unwrap();
}

pub(crate) fn assert_first_records_intact(log: &Log, upto: u64) {
    for seq in 1..=upto {
        let r = log
            .read(seq)
            .unwrap()
            .unwrap_or_else(|| panic!("seq {seq} lost"));
        assert_eq!(r.payload, payload(seq));
    }
}

#[test]
fn given_the_last_record_cut_at_every_byte_when_reopened_then_the_torn_tail_is_truncated_and_reported()
 {
    let (dir, last, last_at, _) = crashed_log();
    let len = std::fs::metadata(&last).unwrap().len();
    for cut in last_at..len {
        let copy = copy_dir(dir.path());
        let seg = copy.path().join(last.file_name().unwrap());
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (log, report) = Log::open(copy.path(), config()).unwrap();
        assert!(report.corruption.is_none(), "cut {cut}: {report:?}");
        if cut > last_at {
            let t = &report.truncated[..];
            assert_eq!(t.len(), 1, "cut {cut}");
            assert_eq!(
                (t[0].segment.as_path(), t[0].offset, t[0].bytes),
                (seg.as_path(), last_at, cut - last_at)
            );
        }
        assert_first_records_intact(&log, RECORDS - 1);
        assert_eq!(log.state().last_seq, RECORDS - 1);
        assert_eq!(
            log.append(rec("crash.s", b"again", 0)).unwrap().seq,
            RECORDS
        );
    }
}

#[test]
fn given_a_flipped_bit_in_the_unwatermarked_last_record_when_reopened_then_it_is_a_reported_torn_tail()
 {
    let (dir, last, last_at, _) = crashed_log();
    let len = std::fs::metadata(&last).unwrap().len();
    for bit in (last_at * 8..len * 8).step_by(3) {
        let copy = copy_dir(dir.path());
        let seg = copy.path().join(last.file_name().unwrap());
        flip_bit(&seg, bit);
        let (log, report) = Log::open(copy.path(), config()).unwrap();
        assert!(report.corruption.is_none(), "bit {bit}: {report:?}");
        assert_eq!(report.truncated[0].offset, last_at, "bit {bit}");
        assert_first_records_intact(&log, RECORDS - 1);
    }
}

#[test]
fn given_a_flipped_bit_below_the_watermark_when_reopened_then_the_log_is_read_only_naming_segment_and_offset()
 {
    let (dir, last, last_at, prev_at) = crashed_log();
    for bit in (prev_at * 8..last_at * 8).step_by(5) {
        let copy = copy_dir(dir.path());
        let seg = copy.path().join(last.file_name().unwrap());
        let before = std::fs::read(&seg).unwrap();
        flip_bit(&seg, bit);
        let (log, report) = Log::open(copy.path(), config()).unwrap();
        let c = report
            .corruption
            .clone()
            .unwrap_or_else(|| panic!("bit {bit}: {report:?}"));
        assert_eq!(
            (c.segment.as_path(), c.offset),
            (seg.as_path(), prev_at),
            "bit {bit}"
        );
        assert!(report.truncated.is_empty(), "nothing truncated");
        let mut after = std::fs::read(&seg).unwrap();
        after[(bit / 8) as usize] ^= 1 << (bit % 8);
        assert_eq!(after, before, "the file is left untouched");
        assert!(log.state().read_only.is_some());
        let write = log.append(rec("crash.s", b"refused", 0));
        assert!(matches!(write, Err(LogError::Corrupt { offset, .. }) if offset == prev_at));
        assert!(matches!(
            log.read(RECORDS - 1),
            Err(LogError::Corrupt { .. })
        ));
        assert_first_records_intact(&log, RECORDS - 2);
    }
}

#[test]
fn given_a_flipped_bit_in_a_sealed_segment_when_reopened_then_it_is_corruption_and_later_segments_still_read()
 {
    let (dir, _, _, _) = crashed_log();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "{logs:?}");
    let copy = copy_dir(dir.path());
    let sealed = copy.path().join(logs[0].file_name().unwrap());
    let len = std::fs::metadata(&sealed).unwrap().len();
    flip_bit(&sealed, (len - 1) * 8);
    let (log, report) = Log::open(copy.path(), config()).unwrap();
    let c = report.corruption.unwrap();
    assert_eq!(c.segment, sealed);
    let before = log.read_from(1, 100).unwrap();
    let bad = before.last().unwrap().seq + 1;
    assert_eq!(
        before.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..bad).collect::<Vec<_>>(),
        "the records before the bad one are served"
    );
    assert!(
        matches!(log.read_from(bad, 100), Err(LogError::Corrupt { .. })),
        "a range read does not skip the bad record"
    );
    assert_eq!(
        log.read(RECORDS - 1).unwrap().unwrap().payload,
        payload(RECORDS - 1)
    );
}

#[test]
fn given_a_torn_segment_creation_when_reopened_then_the_empty_segment_is_rebuilt() {
    let (dir, _, _, _) = crashed_log();
    let copy = copy_dir(dir.path());
    let next = copy.path().join(format!("{:020}.log", RECORDS + 1));
    std::fs::write(&next, b"ACELOG").unwrap();
    let (log, report) = Log::open(copy.path(), config()).unwrap();
    assert!(report.corruption.is_none(), "{report:?}");
    assert_eq!(report.truncated[0].segment, next);
    assert_first_records_intact(&log, RECORDS);
    assert_eq!(
        log.append(rec("crash.s", b"next", 0)).unwrap().seq,
        RECORDS + 1
    );
}

#[test]
fn given_a_file_cut_below_its_watermark_when_reopened_then_it_is_corruption_not_a_torn_tail() {
    let (dir, last, _, prev_at) = crashed_log();
    let copy = copy_dir(dir.path());
    let seg = copy.path().join(last.file_name().unwrap());
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(prev_at + 3)
        .unwrap();
    let (log, report) = Log::open(copy.path(), config()).unwrap();
    let c = report.corruption.unwrap();
    assert_eq!(
        (c.segment, c.offset),
        (seg, prev_at),
        "the first record not whole"
    );
    assert!(report.truncated.is_empty());
    assert!(matches!(log.delete(1), Err(LogError::Corrupt { .. })));
    assert_first_records_intact(&log, RECORDS - 2);
    let state = log.state();
    assert_eq!(
        (state.last_seq, state.high_water),
        (RECORDS - 2, RECORDS - 1)
    );
    assert!(matches!(
        log.read(RECORDS - 1),
        Err(LogError::Corrupt { .. })
    ));
}

#[test]
fn given_an_acknowledged_last_record_cut_when_reopened_then_it_is_damage_and_its_sequence_is_not_reused()
 {
    let (dir, last, last_at, _) = acked_log();
    let len = std::fs::metadata(&last).unwrap().len();
    for cut in [last_at, last_at + 1, len - 1] {
        let copy = copy_dir(dir.path());
        let seg = copy.path().join(last.file_name().unwrap());
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (log, report) = Log::open(copy.path(), config()).unwrap();
        assert!(report.truncated.is_empty(), "cut {cut}: {report:?}");
        let c = report.corruption.unwrap();
        assert_eq!(c.segment, seg, "cut {cut}");
        assert!(c.reason.contains("high-water mark 24"), "{}", c.reason);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), cut, "nothing cut");
        assert_first_records_intact(&log, RECORDS - 1);
        let state = log.state();
        assert_eq!((state.last_seq, state.high_water), (RECORDS - 1, RECORDS));
        assert!(matches!(
            log.append(rec("crash.s", b"refused", 0)),
            Err(LogError::Corrupt { .. })
        ));
    }
}

#[test]
fn given_a_last_segment_cut_inside_its_header_after_acks_when_reopened_then_it_is_damage_not_an_empty_stream()
 {
    let (dir, last, _, _) = acked_log();
    for cut in [0, 6, 127, 128] {
        let copy = copy_dir(dir.path());
        let seg = copy.path().join(last.file_name().unwrap());
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(cut)
            .unwrap();
        let (log, report) = Log::open(copy.path(), config()).unwrap();
        let c = report
            .corruption
            .clone()
            .unwrap_or_else(|| panic!("cut {cut}: {report:?}"));
        let at = if cut < 128 { 0 } else { cut };
        assert_eq!(
            (c.segment.as_path(), c.offset),
            (seg.as_path(), at),
            "cut {cut}"
        );
        let base: u64 = seg.file_stem().unwrap().to_str().unwrap().parse().unwrap();
        assert_first_records_intact(&log, base - 1);
        assert_eq!(log.state().last_seq, base - 1);
        assert!(log.append(rec("crash.s", b"refused", 0)).is_err());
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), cut, "left as found");
    }
}

/// A one-segment log of 20 acknowledged records whose segment was then replaced by its copy
/// from when it held 10 (the high-water mark still says 20); the segment and the config.
pub(crate) fn rolled_back_log() -> (tempfile::TempDir, PathBuf, LogConfig) {
    let dir = tempfile::tempdir().unwrap();
    let big = LogConfig {
        segment_bytes: 1 << 20,
        ..config()
    };
    let (log, _) = Log::open(dir.path(), big.clone()).unwrap();
    for seq in 1..=10 {
        log.append(rec("crash.s", &payload(seq), seq)).unwrap();
    }
    log.close().unwrap();
    let seg = last_segment(dir.path());
    let old = std::fs::read(&seg).unwrap();
    let (log, _) = Log::open(dir.path(), big.clone()).unwrap();
    for seq in 11..=20 {
        log.append(rec("crash.s", &payload(seq), seq)).unwrap();
    }
    log.close().unwrap();
    std::fs::write(&seg, old).unwrap();
    (dir, seg, big)
}

#[test]
fn given_a_segment_rolled_back_to_an_older_copy_when_reopened_then_the_log_is_damaged_and_no_sequence_is_reused()
 {
    let (dir, seg, big) = rolled_back_log();
    let (log, report) = Log::open(dir.path(), big).unwrap();
    let c = report.corruption.unwrap();
    assert_eq!(c.segment, seg);
    assert!(c.reason.contains("11 to 20 are missing"), "{}", c.reason);
    assert_eq!(report.high_water, Some(20));
    assert_first_records_intact(&log, 10);
    assert!(matches!(
        log.append(rec("crash.s", b"would be 11", 0)),
        Err(LogError::Corrupt { .. })
    ));
    assert_eq!(log.state().high_water, 20);
}

#[test]
fn given_a_middle_segment_deleted_when_reopened_then_the_gap_is_damage_naming_the_missing_sequences()
 {
    let (dir, _, _, _) = acked_log();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "{logs:?}");
    std::fs::remove_file(&logs[1]).unwrap();
    let (log, report) = Log::open(dir.path(), config()).unwrap();
    let c = report.corruption.unwrap();
    assert_eq!((c.segment.as_path(), c.offset), (logs[2].as_path(), 0));
    let base = |p: &Path| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let missing = format!(
        "sequences {} to {} are missing",
        base(&logs[1]),
        base(&logs[2]) - 1
    );
    assert!(c.reason.contains(&missing), "{}", c.reason);
    assert_first_records_intact(&log, base(&logs[1]) - 1);
    assert!(log.append(rec("crash.s", b"refused", 0)).is_err());
}

#[test]
fn given_a_deleted_record_lost_in_a_torn_tail_when_its_sequence_is_reused_then_the_new_record_is_live()
 {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = Log::open(dir.path(), config()).unwrap();
    let mut hw_before = Vec::new();
    for seq in 1..=RECORDS {
        if seq == RECORDS {
            hw_before = std::fs::read(dir.path().join("highwater")).unwrap();
        }
        log.append(rec("crash.s", &payload(seq), seq)).unwrap();
    }
    assert!(
        log.delete(RECORDS).unwrap(),
        "a durable delete of the record past the watermark"
    );
    drop(log);
    let last = last_segment(dir.path());
    let last_at = std::fs::metadata(&last).unwrap().len() - frame_len(7, 0, payload(RECORDS).len());
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(last_at + 5)
        .unwrap();
    // The crash came before the last append was acknowledged: the mark is from before it.
    std::fs::write(dir.path().join("highwater"), hw_before).unwrap();
    let (log, report) = Log::open(dir.path(), config()).unwrap();
    assert_eq!(report.truncated.len(), 1, "{report:?}");
    assert_eq!(
        log.append(rec("crash.s", b"reborn", 0)).unwrap().seq,
        RECORDS
    );
    drop(log);
    let (log, _) = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.read(RECORDS).unwrap().unwrap().payload, &b"reborn"[..]);
}

#[test]
fn given_every_message_of_a_middle_segment_deleted_when_reopened_then_no_gap_is_reported_and_it_goes_with_the_older_ones()
 {
    let (dir, _, _, _) = acked_log();
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "{logs:?}");
    let base = |p: &Path| -> u64 { p.file_stem().unwrap().to_str().unwrap().parse().unwrap() };
    let (log, _) = Log::open(dir.path(), config()).unwrap();
    for seq in base(&logs[1])..base(&logs[2]) {
        assert!(log.delete(seq).unwrap(), "{seq}");
    }
    assert!(logs[1].exists(), "a fully deleted middle segment stays");
    drop(log);
    let (log, report) = Log::open(dir.path(), config()).unwrap();
    assert!(report.corruption.is_none(), "{report:?}");
    for seq in 1..base(&logs[1]) {
        assert!(log.delete(seq).unwrap(), "{seq}");
    }
    assert!(
        !logs[0].exists() && !logs[1].exists(),
        "both go once it is the oldest"
    );
    drop(log);
    let (log, report) = Log::open(dir.path(), config()).unwrap();
    assert!(report.corruption.is_none(), "{report:?}");
    assert_eq!(log.state().first_seq, base(&logs[2]));
    assert_eq!(log.state().last_seq, RECORDS);
}
