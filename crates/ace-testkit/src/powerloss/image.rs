//! The crash image: what a power cut leaves of the model's files and directories (see the
//! module docs of `powerloss` for the rules), written out as real files.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use super::{Crash, Entry, FileState, State, Tear};

/// Bytes per sector: the unit a torn write is made of.
const SECTOR: u64 = 512;

/// Writes the crash image of `st` under `crash.image`. Panics on an I/O error: a sweep cannot
/// judge a crash point whose image it could not write.
pub(super) fn write(st: &State, crash: &Crash) {
    let mut rng = match crash.tear {
        Tear::Drop => None,
        Tear::Sectors { seed } => Some(Rng(seed)),
    };
    std::fs::create_dir_all(&crash.image).expect("create the crash image directory");
    write_dir(st, Path::new(""), &crash.image, &mut rng);
}

fn write_dir(st: &State, rel: &Path, out: &Path, rng: &mut Option<Rng>) {
    for (name, entry) in surviving_entries(st, rel, rng) {
        let path = out.join(&name);
        match entry {
            Entry::Dir => {
                std::fs::create_dir(&path).expect("create a crash image directory");
                write_dir(st, &rel.join(&name), &path, rng);
            }
            Entry::File(id) => {
                let content = surviving_content(&st.files[&id], rng);
                std::fs::write(&path, content).expect("write a crash image file");
            }
        }
    }
}

/// The durable entries of directory `rel` plus a prefix of its changes since (none when
/// dropping).
fn surviving_entries(st: &State, rel: &Path, rng: &mut Option<Rng>) -> BTreeMap<OsString, Entry> {
    let dir = &st.dirs[rel];
    let kept = rng
        .as_mut()
        .map_or(0, |r| r.below(dir.pending.len() as u64 + 1) as usize);
    let mut entries = dir.durable.clone();
    for change in &dir.pending[..kept] {
        change.apply(&mut entries);
    }
    entries
}

/// The bytes of a file after the cut: its durable content, or torn per sector.
fn surviving_content(file: &FileState, rng: &mut Option<Rng>) -> Vec<u8> {
    match rng {
        None => file.durable.clone(),
        Some(rng) => torn(file, rng),
    }
}

/// Each sector holds its content after a random number (0 to all) of the changes that touched
/// it since the last sync, in their order; the length is a random sector-aligned point of the
/// growth (either end when the file shrank).
fn torn(file: &FileState, rng: &mut Rng) -> Vec<u8> {
    let old_len = file.durable.len() as u64;
    let len = surviving_len(old_len, file.len, rng);
    let sectors = len.div_ceil(SECTOR) as usize;
    let mut touches = vec![0u64; sectors];
    for (change, before) in with_len_before(file, old_len) {
        for s in touched(change, before, len) {
            touches[s] += 1;
        }
    }
    let keep: Vec<u64> = touches.iter().map(|&t| rng.below(t + 1)).collect();
    let mut bytes = file.durable.clone();
    bytes.resize(len as usize, 0);
    let mut applied = vec![0u64; sectors];
    for (change, before) in with_len_before(file, old_len) {
        for s in touched(change, before, len) {
            if applied[s] < keep[s] {
                apply_in_sector(change, before, s, &mut bytes);
            }
            applied[s] += 1;
        }
    }
    bytes
}

/// The file's changes, each with the file's length before it.
fn with_len_before(
    file: &FileState,
    old_len: u64,
) -> impl Iterator<Item = (&super::Change, u64)> + '_ {
    file.pending.iter().scan(old_len, |len, change| {
        let before = *len;
        *len = change.len_after(before);
        Some((change, before))
    })
}

fn surviving_len(old_len: u64, new_len: u64, rng: &mut Rng) -> u64 {
    if new_len < old_len {
        return if rng.below(2) == 0 { old_len } else { new_len };
    }
    // `old_len`, every sector boundary strictly inside the growth, `new_len`.
    let first = old_len / SECTOR + 1;
    let inner = (new_len.saturating_sub(1) / SECTOR).saturating_sub(first - 1);
    let inner = if new_len > old_len { inner } else { 0 };
    match rng.below(inner + 2) {
        0 => old_len,
        n if n == inner + 1 => new_len,
        n => (first + n - 1) * SECTOR,
    }
}

/// The byte range a change affects: a write its bytes, a `set_len` the bytes between the old
/// and the new length (cut off, or new zeros).
fn range(change: &super::Change, before: u64) -> (u64, u64) {
    match change {
        super::Change::Write { at, data } => (*at, at + data.len() as u64),
        super::Change::SetLen(l) => ((*l).min(before), (*l).max(before)),
    }
}

/// The sectors below `len` a change touches.
fn touched(change: &super::Change, before: u64, len: u64) -> std::ops::Range<usize> {
    let (lo, hi) = range(change, before);
    let hi = hi.min(len);
    if lo >= hi {
        return 0..0;
    }
    (lo / SECTOR) as usize..hi.div_ceil(SECTOR) as usize
}

/// Applies the part of `change` inside sector `s` to `bytes`.
fn apply_in_sector(change: &super::Change, before: u64, s: usize, bytes: &mut [u8]) {
    let (lo, hi) = range(change, before);
    let start = lo.max(s as u64 * SECTOR);
    let end = hi.min((s as u64 + 1) * SECTOR).min(bytes.len() as u64);
    if start >= end {
        return;
    }
    let (start, end) = (start as usize, end as usize);
    match change {
        super::Change::Write { at, data } => {
            let from = start - *at as usize;
            bytes[start..end].copy_from_slice(&data[from..from + (end - start)]);
        }
        super::Change::SetLen(_) => bytes[start..end].fill(0),
    }
}

/// SplitMix64: small, fast, and the same everywhere, so a seed names an image.
#[derive(Debug)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A seed for one crash point from a run's seed and the operation.
pub(super) fn mix(seed: u64, at_op: u64) -> u64 {
    Rng(seed ^ at_op.wrapping_mul(0xA24B_AED4_963E_E407)).next()
}
