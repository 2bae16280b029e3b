//! Bringing a damaged log back: what a repair would cut ([`Log::repair_plan`], a dry run that
//! reads the recovered state and changes nothing), and the cut itself ([`Log::repair`]).
//!
//! A repair accepts the loss recovery refused to make silently. It keeps every record up to the
//! last intact one `L` — the record before the first damage, walking the segments in order — and
//! takes out everything after it:
//!
//! - the damaged segment is truncated at the damage offset (a segment whose header is damaged,
//!   or holding no intact record, is taken out whole), and every later segment is taken out;
//! - nothing is deleted: the bytes cut from the damaged segment and the segments taken out are
//!   moved under `lost/<UTC timestamp>/` in the log directory, beside a `REPAIR.txt` saying
//!   what they are;
//! - the next sequence is above the high-water mark, above every sequence found in a file and
//!   above [`RepairOptions::acknowledged`], so no sequence ever acknowledged (or stored) is
//!   handed out again: the hole `L+1..next` is recorded in `gaps` (see `gaps.rs`) so recovery
//!   opens the log `ok` over it, and the next append starts a new segment at `next`;
//! - the log is then recovered again in place: every holder of the `Log` reads the repaired one.
//!
//! Each step is durable before the next (copies and moves, then the gap, then the truncation,
//! then the new segment), so a crash part-way leaves a log that recovery still reports damaged
//! and that the same repair finishes.
//!
//! A log halted by a failed write or fsync is first reopened in place: recovery decides what
//! survived, and a repair cuts only when that recovery found damage.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::durability::{Durability, OpenMode};
use crate::error::LogError;
use crate::log::Log;
use crate::segment::{ScanEnd, Segment, Step, scan};
use crate::store::{Halt, Store};
use crate::tombstones::sync_failed;
use crate::types::RecoveryReport;

/// The directory, inside the log directory, where repairs move what they cut.
pub const LOST_DIR: &str = "lost";
/// The file describing one repair inside its `lost/<timestamp>/` directory.
pub const MANIFEST: &str = "REPAIR.txt";

/// What the caller knows beyond the log's own files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepairOptions {
    /// The first sequence whose record the caller could not use (its contents do not decode):
    /// the log is cut before it even though its frame is intact.
    pub cut_before: Option<u64>,
    /// The highest sequence known acknowledged outside the log (a consumer's ack floor): the
    /// next sequence is above it too.
    pub acknowledged: u64,
}

/// What a repair cuts (a dry run) or cut.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairPlan {
    /// False when the log is healthy: nothing to cut, nothing to reopen.
    pub needed: bool,
    /// The first and last intact sequence that stay; `None` when no record survives.
    pub intact: Option<(u64, u64)>,
    /// The sequences given up (`last intact + 1 ..= next_seq - 1`): those of the records cut
    /// and those acknowledged once but found in no file. `None` when nothing is lost.
    pub lost: Option<(u64, u64)>,
    /// Bytes moved out of the segments (the sum of `cuts`).
    pub lost_bytes: u64,
    /// Each segment file cut, in order: the damaged one first.
    pub cuts: Vec<SegmentCut>,
    /// The high-water mark (the highest sequence ever acknowledged) before the repair.
    pub high_water: u64,
    /// The sequence the next append gets after the repair.
    pub next_seq: u64,
}

/// One segment file a repair cuts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentCut {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the cut starts; the bytes from here to the end of the file move to `lost/`.
    pub offset: u64,
    /// How many bytes move.
    pub bytes: u64,
    /// True when the whole file moves (a later segment, or one with nothing intact).
    pub whole: bool,
}

/// What [`Log::repair`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repaired {
    /// What was cut (`needed: false` when the log was, or after its reopen turned out, healthy).
    pub plan: RepairPlan,
    /// The `lost/<timestamp>/` directory holding what was cut, when something was.
    pub moved_to: Option<PathBuf>,
    /// What the recovery after the repair (or the reopen of a halted log) found.
    pub report: RecoveryReport,
}

impl Log {
    /// What [`Log::repair`] would cut, from the state recovery found: reads segment sizes (and,
    /// for `cut_before`, the records of one segment), writes nothing.
    pub fn repair_plan(&self, options: &RepairOptions) -> Result<RepairPlan, LogError> {
        let high_water = self.state().high_water;
        plan(&self.store(), high_water, options)
    }

    /// Cuts the log to its last intact record and reopens it in place (see the module docs).
    /// A log halted by a failed write or fsync is reopened first. Returns what was cut; a
    /// healthy log is left alone (`plan.needed` false).
    pub fn repair(&self, options: &RepairOptions) -> Result<Repaired, LogError> {
        let mut report = RecoveryReport::default();
        if self.state().failed.is_some() {
            report = self.reopen()?;
        }
        let high_water = self.state().high_water;
        let dry = plan(&self.store(), high_water, options)?;
        if !dry.needed {
            return Ok(Repaired {
                plan: dry,
                moved_to: None,
                report,
            });
        }
        let ((plan, moved_to), report) = self.recover_after(|store, durability| {
            let plan = plan(store, high_water, options)?;
            let moved_to = apply(store, &plan, durability)?;
            Ok((plan, moved_to))
        })?;
        Ok(Repaired {
            plan,
            moved_to,
            report,
        })
    }

    /// Recovers the log's directory again in place (a halted log: recovery decides what
    /// survived the failed write or fsync); what that recovery found.
    pub fn reopen(&self) -> Result<RecoveryReport, LogError> {
        self.recover_after(|_, _| Ok(())).map(|((), report)| report)
    }
}

/// Where the intact records end.
#[derive(Debug, Clone, Copy)]
enum Cut {
    /// The segment `base` and every later one go whole.
    Whole(u64),
    /// The segment `base` is cut at `offset`; every later one goes whole.
    At(u64, u64),
}

impl Cut {
    fn base(self) -> u64 {
        match self {
            Cut::Whole(base) | Cut::At(base, _) => base,
        }
    }
}

fn plan(store: &Store, high_water: u64, options: &RepairOptions) -> Result<RepairPlan, LogError> {
    let (cut, last) = find_cut(store, options)?;
    let found = store.next_seq - 1;
    let next_seq = high_water.max(options.acknowledged).max(found).max(last) + 1;
    let mut cuts = Vec::new();
    if let Some(cut) = cut {
        for seg in store.segments.range(cut.base()..).map(|(_, s)| s) {
            let len = seg
                .file
                .metadata()
                .map_err(|e| LogError::io("stat segment", &seg.path, e))?
                .len();
            let offset = match cut {
                Cut::At(base, offset) if base == seg.base_seq => offset,
                _ => 0,
            };
            cuts.push(SegmentCut {
                segment: seg.path.clone(),
                offset,
                bytes: len.saturating_sub(offset),
                whole: offset == 0,
            });
        }
    }
    let first = store
        .segments
        .values()
        .filter(|s| s.live() > 0)
        .map(Segment::first_live)
        .next();
    Ok(RepairPlan {
        needed: cut.is_some() || store.halted.is_some() || next_seq > last + 1,
        intact: first.filter(|f| *f <= last).map(|f| (f, last)),
        lost: (next_seq > last + 1).then_some((last + 1, next_seq - 1)),
        lost_bytes: cuts.iter().map(|c| c.bytes).sum(),
        cuts,
        high_water,
        next_seq,
    })
}

/// The first cut walking the segments in order, and the last intact sequence before it: a
/// hole or overlap before a segment (not an accepted gap), `cut_before`, or a segment recovery
/// found damaged.
fn find_cut(store: &Store, options: &RepairOptions) -> Result<(Option<Cut>, u64), LogError> {
    let mut expected: Option<u64> = None;
    for seg in store.segments.values() {
        let base = seg.base_seq;
        if let Some(exp) = expected {
            let accepted = base > exp && store.gaps.covers(exp, base - 1);
            if base != exp && !accepted {
                return Ok((Some(Cut::Whole(base)), exp - 1));
            }
        }
        if let Some(bad) = options
            .cut_before
            .filter(|s| (base..seg.next_seq).contains(s))
        {
            if bad == base {
                return Ok((Some(Cut::Whole(base)), bad - 1));
            }
            return Ok((Some(Cut::At(base, record_offset(seg, bad)?)), bad - 1));
        }
        if seg.corrupt.is_some() {
            let cut = if seg.next_seq == base {
                Cut::Whole(base)
            } else {
                Cut::At(base, seg.len)
            };
            return Ok((Some(cut), seg.next_seq - 1));
        }
        expected = Some(seg.next_seq);
    }
    Ok((None, store.active().next_seq - 1))
}

/// The file offset of record `seq` of `seg` (it is there: recovery indexed it).
fn record_offset(seg: &Segment, seq: u64) -> Result<u64, LogError> {
    let mut found = None;
    let end = scan(&seg.file, seg.offset_for_seq(seq), seg.len, |at, rec, _| {
        if rec.seq >= seq {
            found = Some(at);
            return Step::Stop;
        }
        Step::Continue
    })
    .map_err(|e| LogError::io("read segment", &seg.path, e))?;
    match (found, end) {
        (Some(at), _) => Ok(at),
        (None, ScanEnd::Invalid { offset, .. }) => Ok(offset),
        (None, _) => Ok(seg.len),
    }
}

/// Moves what `plan` cuts under `lost/`, records the gap, truncates the damaged segment and
/// starts the segment at `plan.next_seq`, each step durable before the next.
fn apply(
    store: &mut Store,
    plan: &RepairPlan,
    durability: &dyn Durability,
) -> Result<Option<PathBuf>, LogError> {
    let dir = store.dir.clone();
    let last = plan.lost.map_or(plan.next_seq - 1, |(first, _)| first - 1);
    let moved_to = if plan.cuts.is_empty() {
        None
    } else {
        let moved = lost_dir(&dir, durability)?;
        write_manifest(&moved, plan, store.halted.as_ref(), durability)?;
        for cut in &plan.cuts {
            move_out(store, cut, &moved, durability)?;
        }
        durability
            .sync_dir(&moved)
            .map_err(|e| sync_failed(&moved, &e))?;
        durability
            .sync_dir(&dir)
            .map_err(|e| sync_failed(&dir, &e))?;
        Some(moved)
    };
    if let Some((first, end)) = plan.lost {
        store.gaps.append(&dir, first, end, durability)?;
    }
    if let Some(cut) = plan.cuts.first().filter(|c| !c.whole) {
        truncate(store, cut, last, durability)?;
    }
    if !store.segments.contains_key(&plan.next_seq) {
        Segment::create(&dir, plan.next_seq, durability)?;
    }
    Ok(moved_to)
}

/// Copies the cut bytes of a damaged segment under `moved` (`<name>.from-<offset>`), or renames
/// a whole segment (and its tombstones) there.
fn move_out(
    store: &mut Store,
    cut: &SegmentCut,
    moved: &Path,
    durability: &dyn Durability,
) -> Result<(), LogError> {
    let name = cut
        .segment
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if cut.whole {
        rename(&cut.segment, &moved.join(&name), durability)?;
        let del = cut.segment.with_extension("del");
        if std::fs::symlink_metadata(&del).is_ok() {
            rename(&del, &moved.join(format!("{name}.del")), durability)?;
        }
        store.segments.retain(|_, s| s.path != cut.segment);
        return Ok(());
    }
    let seg = store
        .segments
        .values()
        .find(|s| s.path == cut.segment)
        .expect("a cut names a segment of the store");
    let mut bytes = vec![0u8; usize::try_from(cut.bytes).unwrap_or(usize::MAX)];
    seg.file
        .read_exact_at(&mut bytes, cut.offset)
        .map_err(|e| LogError::io("read segment", &seg.path, e))?;
    let copy = moved.join(format!("{name}.from-{}", cut.offset));
    write_new(&copy, &bytes, durability)
}

/// Cuts the damaged segment at `cut.offset` and records that its records end there.
fn truncate(
    store: &mut Store,
    cut: &SegmentCut,
    last: u64,
    durability: &dyn Durability,
) -> Result<(), LogError> {
    let dir = store.dir.clone();
    let seg = store
        .segments
        .values_mut()
        .find(|s| s.path == cut.segment)
        .expect("a cut names a segment of the store");
    durability
        .set_len(&seg.file, &seg.path, cut.offset)
        .map_err(|e| LogError::io("truncate damaged segment", &seg.path, e))?;
    seg.write_watermark(cut.offset, last, durability)?;
    durability
        .sync_file(&seg.file, &seg.path)
        .map_err(|e| sync_failed(&seg.path, &e))?;
    seg.tombstones.retain_below(last + 1, &dir, durability)
}

/// Creates `lost/<UTC timestamp>/` (a suffix when a repair of the same second made one).
fn lost_dir(dir: &Path, durability: &dyn Durability) -> Result<PathBuf, LogError> {
    let root = dir.join(LOST_DIR);
    crate::nofollow::refuse_link(&root)?;
    crate::create_dir_all(durability, &root)
        .map_err(|e| LogError::io("create lost directory", &root, e))?;
    let stamp = utc_stamp(SystemTime::now());
    let mut path = root.join(&stamp);
    let mut n = 1;
    while std::fs::symlink_metadata(&path).is_ok() {
        n += 1;
        path = root.join(format!("{stamp}-{n}"));
    }
    durability
        .create_dir(&path)
        .map_err(|e| LogError::io("create lost directory", &path, e))?;
    durability
        .sync_dir(&root)
        .map_err(|e| sync_failed(&root, &e))?;
    durability.sync_dir(dir).map_err(|e| sync_failed(dir, &e))?;
    Ok(path)
}

/// `REPAIR.txt`: what the repair found, kept and moved, for whoever opens `lost/` later.
fn write_manifest(
    moved: &Path,
    plan: &RepairPlan,
    damage: Option<&Halt>,
    durability: &dyn Durability,
) -> Result<(), LogError> {
    let mut text = String::from("ace-log repair: the log was cut to its last intact record\n");
    if let Some(halt) = damage {
        text.push_str(&format!("damage: {}\n", halt.to_error()));
    }
    let range =
        |r: Option<(u64, u64)>| r.map_or_else(|| "none".to_owned(), |(a, b)| format!("{a}..={b}"));
    text.push_str(&format!(
        "intact sequences kept: {}\nsequences given up: {}\nhigh-water mark: {}\nnext sequence: {}\n",
        range(plan.intact),
        range(plan.lost),
        plan.high_water,
        plan.next_seq
    ));
    for cut in &plan.cuts {
        let name = cut
            .segment
            .file_name()
            .unwrap_or_default()
            .to_string_lossy();
        if cut.whole {
            text.push_str(&format!(
                "{name}: the whole segment ({} bytes)\n",
                cut.bytes
            ));
        } else {
            text.push_str(&format!(
                "{name}.from-{}: bytes {} to {} of {name} ({} bytes)\n",
                cut.offset,
                cut.offset,
                cut.offset + cut.bytes,
                cut.bytes
            ));
        }
    }
    write_new(&moved.join(MANIFEST), text.as_bytes(), durability)
}

/// Writes a new file durably (never through a symlink).
fn write_new(path: &Path, bytes: &[u8], durability: &dyn Durability) -> Result<(), LogError> {
    // A fresh name in a fresh `lost/<stamp>/` directory: nothing is there to keep.
    let file = durability
        .open(path, OpenMode::Truncate)
        .map_err(|e| LogError::io("create lost file", path, e))?;
    durability
        .write_at(&file, path, bytes, 0)
        .map_err(|e| LogError::io("write lost file", path, e))?;
    durability
        .sync_file(&file, path)
        .map_err(|e| sync_failed(path, &e))
}

fn rename(from: &Path, to: &Path, durability: &dyn Durability) -> Result<(), LogError> {
    durability
        .rename(from, to)
        .map_err(|e| LogError::io("move to lost directory", from, e))
}

/// `YYYYMMDDTHHMMSSZ` of `at` (UTC).
fn utc_stamp(at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_known_instants_when_stamped_then_the_utc_date_and_time_are_right() {
        let at = |secs| UNIX_EPOCH + std::time::Duration::from_secs(secs);
        assert_eq!(utc_stamp(at(0)), "19700101T000000Z");
        assert_eq!(utc_stamp(at(951_782_400)), "20000229T000000Z");
        assert_eq!(utc_stamp(at(1_798_761_599)), "20261231T235959Z");
    }
}
