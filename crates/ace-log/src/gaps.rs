//! The sequences a repair gave up, kept in `gaps` in the log directory so that recovery can
//! tell a loss an operator accepted from a loss nobody knows about.
//!
//! ```text
//! one entry per repair that left a gap: first u64 | last u64 | crc32c(previous 16 bytes) u32
//! ```
//! Recovery treats a hole between two segments as lost data (only the oldest segments are ever
//! removed). A repair cuts the log to its last intact record `L` and starts the next segment
//! above the high-water mark `H`, so sequences `L+1..=H` are never handed out again; it appends
//! `(L+1, H)` here, synced, before it creates that segment. Recovery then opens the log `ok`
//! over exactly that hole, and still reports any other one. Append-only: a crash can only tear
//! the last entry (its repair had not created the next segment yet, so the hole it would excuse
//! does not exist); a bad entry followed by good ones is corruption.

use std::fs::OpenOptions;
use std::io::Read as _;
use std::path::Path;

use crate::codec;
use crate::durability::{Durability, OpenMode};
use crate::error::LogError;
use crate::tombstones::sync_failed;

/// File name of the accepted gaps inside the log directory.
pub(crate) const FILE_NAME: &str = "gaps";
const ENTRY: usize = 20;

/// The accepted gaps of one log, as inclusive sequence ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Gaps {
    ranges: Vec<(u64, u64)>,
}

impl Gaps {
    /// Reads the gaps of `dir` (none when the file is absent), never through a symlink.
    pub(crate) fn read(dir: &Path) -> Result<Gaps, LogError> {
        let path = dir.join(FILE_NAME);
        let mut file =
            match crate::nofollow::open(OpenOptions::new().read(true), &path, "open gaps") {
                Ok(file) => file,
                Err(LogError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Ok(Gaps::default());
                }
                Err(e) => return Err(e),
            };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| LogError::io("read gaps", &path, e))?;
        decode(&bytes, &path)
    }

    /// True when an accepted gap holds every sequence of `first..=last`.
    pub(crate) fn covers(&self, first: u64, last: u64) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= first && last <= b)
    }

    /// Durably records the gap `first..=last` (nothing when one already covers it).
    pub(crate) fn append(
        &mut self,
        dir: &Path,
        first: u64,
        last: u64,
        durability: &dyn Durability,
    ) -> Result<(), LogError> {
        if self.covers(first, last) {
            return Ok(());
        }
        let path = dir.join(FILE_NAME);
        let file = durability
            .open(&path, OpenMode::Create)
            .map_err(|e| LogError::io("open gaps", &path, e))?;
        let at = (self.ranges.len() * ENTRY) as u64;
        durability
            .write_at(&file, &path, &encode(first, last), at)
            .map_err(|e| LogError::io("write gaps", &path, e))?;
        durability
            .sync_file(&file, &path)
            .map_err(|e| sync_failed(&path, &e))?;
        durability.sync_dir(dir).map_err(|e| sync_failed(dir, &e))?;
        self.ranges.push((first, last));
        Ok(())
    }
}

fn decode(bytes: &[u8], path: &Path) -> Result<Gaps, LogError> {
    let mut ranges = Vec::new();
    for (i, chunk) in bytes.chunks(ENTRY).enumerate() {
        let crc_ok = chunk.len() == ENTRY
            && u32::from_le_bytes([chunk[16], chunk[17], chunk[18], chunk[19]])
                == crc32c::crc32c(&chunk[..16]);
        if crc_ok {
            ranges.push((codec::u64_at(chunk, 0), codec::u64_at(chunk, 8)));
        } else if (i + 1) * ENTRY < bytes.len() {
            return Err(LogError::Corrupt {
                segment: path.to_path_buf(),
                offset: (i * ENTRY) as u64,
                reason: "gap entry fails its crc32c".into(),
            });
        }
    }
    Ok(Gaps { ranges })
}

fn encode(first: u64, last: u64) -> [u8; ENTRY] {
    let mut entry = [0u8; ENTRY];
    entry[..8].copy_from_slice(&first.to_le_bytes());
    entry[8..16].copy_from_slice(&last.to_le_bytes());
    let crc = crc32c::crc32c(&entry[..16]);
    entry[16..].copy_from_slice(&crc.to_le_bytes());
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::OsDurability;

    #[test]
    fn given_recorded_gaps_when_read_back_then_each_covers_exactly_its_range() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Gaps::read(dir.path()).unwrap(), Gaps::default());
        let mut gaps = Gaps::default();
        gaps.append(dir.path(), 11, 40, &OsDurability).unwrap();
        gaps.append(dir.path(), 12, 30, &OsDurability).unwrap();
        gaps.append(dir.path(), 90, 95, &OsDurability).unwrap();
        let read = Gaps::read(dir.path()).unwrap();
        assert_eq!(
            read.ranges,
            vec![(11, 40), (90, 95)],
            "a covered gap is not added"
        );
        assert!(read.covers(11, 40) && read.covers(20, 20) && read.covers(90, 95));
        assert!(!read.covers(10, 40) && !read.covers(41, 41) && !read.covers(40, 90));
    }

    #[test]
    fn given_a_torn_last_entry_when_read_then_it_is_ignored_but_a_bad_middle_entry_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut gaps = Gaps::default();
        gaps.append(dir.path(), 5, 9, &OsDurability).unwrap();
        gaps.append(dir.path(), 20, 29, &OsDurability).unwrap();
        let path = dir.path().join(FILE_NAME);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..ENTRY + 7]).unwrap();
        assert_eq!(Gaps::read(dir.path()).unwrap().ranges, vec![(5, 9)]);
        let mut bad = whole.clone();
        bad[3] ^= 0x01;
        std::fs::write(&path, &bad).unwrap();
        let err = Gaps::read(dir.path()).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { offset: 0, .. }), "{err}");
    }
}
