//! Repair of every damage kind recovery reports: a segment rolled back to an older copy, a
//! deleted middle segment, a last segment cut inside its header, a segment cut below its
//! watermark, a flipped bit in a sealed segment and in the last one. For each, the dry run
//! (`Log::repair_plan`) names exactly the intact and lost sequences and the cut, and changes no
//! byte; the repair leaves the log `ok` with every intact record readable, appends continuing
//! above the high-water mark, the cut bytes under `lost/` as they were, and a reopen that finds
//! nothing wrong. A halted log is reopened; a healthy one is left alone.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ace_log::codec::frame_len;
use ace_log::{LOST_DIR, Log, LogConfig, MANIFEST, RepairOptions, RepairPlan, SyncPolicy};
use ace_testkit::files;

use crate::api::rec;
use crate::crash::{
    RECORDS, acked_log, assert_first_records_intact, config, crashed_log, flip_bit, last_segment,
    payload, rolled_back_log,
};
use crate::faults::FailingSync;

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs
}

fn base(path: &Path) -> u64 {
    path.file_stem().unwrap().to_str().unwrap().parse().unwrap()
}

/// The plan of the damaged log in `dir` opened with `cfg`, checked to change nothing on disk,
/// and the files as the dry run found them.
fn dry_run(dir: &Path, cfg: LogConfig) -> (Log, RepairPlan, BTreeMap<PathBuf, Vec<u8>>) {
    let (log, report) = Log::open(dir, cfg).unwrap();
    assert!(report.corruption.is_some(), "damaged: {report:?}");
    let before = files(dir);
    let plan = log.repair_plan(&RepairOptions::default()).unwrap();
    ace_testkit::assert_same_files(&before, &files(dir));
    assert!(plan.needed, "{plan:?}");
    (log, plan, before)
}

/// The name in `lost/<ts>/` and the bytes of what a cut of `file` from `offset` moves.
fn moved(files: &BTreeMap<PathBuf, Vec<u8>>, file: &Path, offset: u64) -> (String, Vec<u8>) {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let bytes = files[file][offset as usize..].to_vec();
    if offset == 0 {
        (name, bytes)
    } else {
        (format!("{name}.from-{offset}"), bytes)
    }
}

/// A log of `RECORDS` acknowledged records in one segment; the offset of record `seq`.
fn one_segment_log(seq: u64) -> (tempfile::TempDir, PathBuf, u64, LogConfig) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 1 << 20,
        ..config()
    };
    let (log, _) = Log::open(dir.path(), cfg.clone()).unwrap();
    for s in 1..=RECORDS {
        log.append(rec("crash.s", &payload(s), s)).unwrap();
    }
    drop(log);
    let at = 128
        + (1..seq)
            .map(|s| frame_len(7, 0, payload(s).len()))
            .sum::<u64>();
    let seg = last_segment(dir.path());
    (dir, seg, at, cfg)
}

/// Repairs, then checks: `ok`, the intact records readable, the next append at `next`, what
/// was cut under `lost/` (`moved`: file name in `lost/<ts>/` -> its original bytes), and a
/// reopen finding nothing wrong.
fn repair_and_check(dir: &Path, log: &Log, upto: u64, next: u64, moved: &[(String, Vec<u8>)]) {
    let repaired = log.repair(&RepairOptions::default()).unwrap();
    assert!(repaired.report.corruption.is_none(), "{repaired:?}");
    let state = log.state();
    assert_eq!(state.read_only, None, "ok after the repair: {state:?}");
    assert_eq!((state.last_seq, state.high_water), (next - 1, next - 1));
    assert_first_records_intact(log, upto);
    let lost = dir.join(LOST_DIR);
    match &repaired.moved_to {
        Some(to) => {
            assert!(to.starts_with(&lost), "{to:?}");
            assert!(to.join(MANIFEST).is_file());
            for (name, bytes) in moved {
                assert_eq!(&std::fs::read(to.join(name)).unwrap(), bytes, "{name}");
            }
        }
        None => assert!(moved.is_empty() && !lost.exists(), "{repaired:?}"),
    }
    assert_eq!(log.append(rec("crash.s", b"after", 0)).unwrap().seq, next);
    assert_eq!(log.read(next).unwrap().unwrap().payload, &b"after"[..]);
    log.sync().unwrap();
    let (again, report) = Log::open(dir, config()).unwrap();
    assert!(report.corruption.is_none(), "{report:?}");
    assert_first_records_intact(&again, upto);
    assert_eq!(again.read(next).unwrap().unwrap().payload, &b"after"[..]);
    assert_eq!(
        again.append(rec("crash.s", b"more", 0)).unwrap().seq,
        next + 1
    );
}

#[test]
fn given_a_segment_rolled_back_to_an_older_copy_when_repaired_then_the_lost_sequences_are_never_reused()
 {
    let (dir, _, big) = rolled_back_log();

    let (log, plan, _) = dry_run(dir.path(), big);
    assert_eq!((plan.intact, plan.lost), (Some((1, 10)), Some((11, 20))));
    assert_eq!((plan.high_water, plan.next_seq), (20, 21));
    assert!(plan.cuts.is_empty(), "the newer records are gone: {plan:?}");
    repair_and_check(dir.path(), &log, 10, 21, &[]);
}

#[test]
fn given_a_middle_segment_deleted_when_repaired_then_the_later_segments_move_to_lost_whole() {
    let (dir, _, _, _) = acked_log();
    let logs = segments(dir.path());
    assert!(logs.len() >= 3, "{logs:?}");
    std::fs::remove_file(&logs[1]).unwrap();

    let (log, plan, files) = dry_run(dir.path(), config());
    let last_intact = base(&logs[1]) - 1;
    assert_eq!(plan.intact, Some((1, last_intact)));
    assert_eq!(plan.lost, Some((last_intact + 1, RECORDS)));
    let cut: Vec<(&Path, u64, bool)> = plan
        .cuts
        .iter()
        .map(|c| (c.segment.as_path(), c.offset, c.whole))
        .collect();
    let expected: Vec<(&Path, u64, bool)> =
        logs[2..].iter().map(|p| (p.as_path(), 0, true)).collect();
    assert_eq!(cut, expected);
    let later: Vec<(String, Vec<u8>)> = logs[2..].iter().map(|p| moved(&files, p, 0)).collect();
    let bytes: u64 = later.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(plan.lost_bytes, bytes);
    repair_and_check(dir.path(), &log, last_intact, RECORDS + 1, &later);
    assert!(!logs[2].exists(), "moved, not copied");
}

#[test]
fn given_the_last_segment_cut_inside_its_header_when_repaired_then_it_moves_whole_and_the_log_continues()
 {
    let (dir, last, _, _) = acked_log();
    OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(100)
        .unwrap();

    let (log, plan, files) = dry_run(dir.path(), config());
    let first_lost = base(&last);
    assert_eq!(plan.intact, Some((1, first_lost - 1)));
    assert_eq!(plan.lost, Some((first_lost, RECORDS)));
    assert_eq!(plan.cuts.len(), 1, "{plan:?}");
    assert_eq!(
        (
            &plan.cuts[0].segment,
            plan.cuts[0].bytes,
            plan.cuts[0].whole
        ),
        (&last, 100, true)
    );
    let moved = [moved(&files, &last, 0)];
    repair_and_check(dir.path(), &log, first_lost - 1, RECORDS + 1, &moved);
}

#[test]
fn given_a_segment_cut_below_its_watermark_when_repaired_then_it_is_truncated_at_the_last_whole_record()
 {
    let (dir, seg, at, cfg) = one_segment_log(20);
    OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(at + 3)
        .unwrap();

    let (log, plan, files) = dry_run(dir.path(), cfg);
    assert_eq!(
        (plan.intact, plan.lost),
        (Some((1, 19)), Some((20, RECORDS)))
    );
    assert_eq!(plan.cuts.len(), 1, "{plan:?}");
    let cut = &plan.cuts[0];
    assert_eq!(
        (&cut.segment, cut.offset, cut.bytes, cut.whole),
        (&seg, at, 3, false)
    );
    let moved = [moved(&files, &seg, at)];
    repair_and_check(dir.path(), &log, 19, RECORDS + 1, &moved);
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), at, "truncated");
}

#[test]
fn given_a_flipped_bit_in_a_sealed_segment_when_repaired_then_it_is_cut_there_and_every_later_segment_moves()
 {
    let (dir, _, _, _) = acked_log();
    let logs = segments(dir.path());
    assert!(logs.len() >= 3, "{logs:?}");
    let len = std::fs::metadata(&logs[0]).unwrap().len();
    flip_bit(&logs[0], (len - 1) * 8);

    let (log, plan, files) = dry_run(dir.path(), config());
    let (first, last_intact) = plan.intact.unwrap();
    assert_eq!(first, 1);
    assert!(last_intact < base(&logs[1]) - 1, "{plan:?}");
    assert_eq!(plan.lost, Some((last_intact + 1, RECORDS)));
    assert_eq!(plan.cuts.len(), logs.len(), "{plan:?}");
    let at = plan.cuts[0].offset;
    assert_eq!(
        (
            &plan.cuts[0].segment,
            plan.cuts[0].bytes,
            plan.cuts[0].whole
        ),
        (&logs[0], len - at, false)
    );
    assert!(plan.cuts[1..].iter().all(|c| c.whole && c.offset == 0));
    let mut moved_files = vec![moved(&files, &logs[0], at)];
    moved_files.extend(logs[1..].iter().map(|p| moved(&files, p, 0)));
    repair_and_check(dir.path(), &log, last_intact, RECORDS + 1, &moved_files);
}

#[test]
fn given_a_flipped_bit_in_the_last_segment_when_repaired_then_the_bad_record_and_the_rest_move() {
    let (dir, seg, at, cfg) = one_segment_log(20);
    flip_bit(&seg, at * 8 + 100);

    let (log, plan, files) = dry_run(dir.path(), cfg);
    assert_eq!(
        (plan.intact, plan.lost),
        (Some((1, 19)), Some((20, RECORDS)))
    );
    assert_eq!(plan.cuts.len(), 1, "{plan:?}");
    let len = files[&seg].len() as u64;
    let cut = &plan.cuts[0];
    assert_eq!(
        (&cut.segment, cut.offset, cut.bytes, cut.whole),
        (&seg, at, len - at, false)
    );
    let moved = [moved(&files, &seg, at)];
    repair_and_check(dir.path(), &log, 19, RECORDS + 1, &moved);
}

#[test]
fn given_a_first_record_damaged_below_the_watermark_when_repaired_then_its_segment_moves_whole() {
    let (dir, last, _, prev_at) = crashed_log();
    assert_eq!(
        prev_at, 128,
        "the last segment starts with the damaged record"
    );
    flip_bit(&last, prev_at * 8 + 100);

    let (log, plan, files) = dry_run(dir.path(), config());
    let first_bad = base(&last);
    assert_eq!(plan.intact, Some((1, first_bad - 1)));
    assert_eq!(plan.lost, Some((first_bad, RECORDS - 1)), "up to the mark");
    assert_eq!(plan.cuts.len(), 1, "{plan:?}");
    assert!(plan.cuts[0].whole, "no intact record in it: {plan:?}");
    let moved = [moved(&files, &last, 0)];
    repair_and_check(dir.path(), &log, first_bad - 1, RECORDS, &moved);
}

#[test]
fn given_a_healthy_log_when_repaired_then_nothing_is_needed_and_nothing_changes() {
    let (dir, _, _, _) = acked_log();
    let (log, report) = Log::open(dir.path(), config()).unwrap();
    assert!(report.corruption.is_none());
    let before = files(dir.path());
    let repaired = log.repair(&RepairOptions::default()).unwrap();
    assert!(!repaired.plan.needed, "{repaired:?}");
    assert_eq!((repaired.plan.lost, repaired.moved_to), (None, None));
    assert_eq!(repaired.plan.intact, Some((1, RECORDS)));
    ace_testkit::assert_same_files(&before, &files(dir.path()));
    assert_eq!(
        log.append(rec("crash.s", b"next", 0)).unwrap().seq,
        RECORDS + 1
    );
}

#[test]
fn given_an_ack_known_above_the_mark_when_repaired_then_the_next_sequence_is_above_it() {
    let (dir, _, _, _) = acked_log();
    let (log, _) = Log::open(dir.path(), config()).unwrap();
    let options = RepairOptions {
        acknowledged: RECORDS + 5,
        ..RepairOptions::default()
    };
    let plan = log.repair_plan(&options).unwrap();
    assert_eq!(
        (plan.needed, plan.lost, plan.next_seq),
        (true, Some((RECORDS + 1, RECORDS + 5)), RECORDS + 6)
    );
    assert!(plan.cuts.is_empty());
    log.repair(&options).unwrap();
    assert_eq!(
        log.append(rec("crash.s", b"next", 0)).unwrap().seq,
        RECORDS + 6
    );
    drop(log);
    let (log, report) = Log::open(dir.path(), config()).unwrap();
    assert!(report.corruption.is_none(), "{report:?}");
    assert_first_records_intact(&log, RECORDS);
}

#[test]
fn given_a_record_the_caller_cannot_use_when_repaired_then_the_log_is_cut_before_it() {
    let (dir, _, _, _) = acked_log();
    let (log, _) = Log::open(dir.path(), config()).unwrap();
    let options = RepairOptions {
        cut_before: Some(10),
        ..RepairOptions::default()
    };
    let plan = log.repair_plan(&options).unwrap();
    assert_eq!(
        (plan.intact, plan.lost),
        (Some((1, 9)), Some((10, RECORDS)))
    );
    let repaired = log.repair(&options).unwrap();
    assert!(repaired.moved_to.is_some());
    assert_first_records_intact(&log, 9);
    assert_eq!(log.read(10).unwrap(), None, "cut");
    assert_eq!(
        log.append(rec("crash.s", b"next", 0)).unwrap().seq,
        RECORDS + 1
    );
}

#[test]
fn given_a_log_halted_by_a_failed_fsync_when_repaired_then_it_is_reopened_and_takes_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(FailingSync::default());
    let cfg = LogConfig {
        sync: SyncPolicy::Always,
        ..LogConfig::default()
    };
    let (log, _) = Log::open_with(dir.path(), cfg, io.clone()).unwrap();
    log.append(rec("a", b"kept", 0)).unwrap();
    io.fail.store(true, Ordering::SeqCst);
    assert!(log.append(rec("a", b"refused", 0)).is_err());
    assert!(log.state().failed.is_some());
    let refused = log.repair(&RepairOptions::default());
    assert!(refused.is_err(), "the device still fails: {refused:?}");
    assert!(log.state().read_only.is_some(), "still refusing writes");

    io.fail.store(false, Ordering::SeqCst);
    let repaired = log.repair(&RepairOptions::default()).unwrap();
    assert!(repaired.report.corruption.is_none(), "{repaired:?}");
    assert!(log.state().read_only.is_none(), "{:?}", log.state());
    assert_eq!(log.read(1).unwrap().unwrap().payload, &b"kept"[..]);
    // The refused record may have reached the file: recovery decides, it is never acknowledged.
    let next = log.append(rec("a", b"again", 0)).unwrap().seq;
    assert!(next > 1, "{next}");
}
