//! The high-water mark: the highest sequence the log ever acknowledged, kept in `highwater` in
//! the log directory, outside every segment.
//!
//! ```text
//! offset 0   slot 0: magic "ACEHWM\0\x01" | generation u64 | last_seq u64 | crc32c(previous 24) u32 | pad
//! offset 32  slot 1: same; the valid slot with the higher generation wins
//! ```
//! Each update overwrites the slot not written last and is fdatasync'ed *after* the segment
//! sync that made those records durable and *before* any of them is acknowledged, so the mark
//! never claims a record that is not on disk and never lags an acknowledged one. A segment
//! replaced by an older copy, deleted or cut then ends below the mark, and recovery reports it as
//! damage instead of silently reusing the lost sequences.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::durability::{Durability, OpenMode};
use crate::error::LogError;
use crate::slot::{self, SLOT};
use crate::tombstones::sync_failed;

/// File name of the high-water mark inside the log directory.
pub(crate) const FILE_NAME: &str = "highwater";
const MAGIC: &[u8; 8] = b"ACEHWM\0\x01";

/// The open high-water file and the mark it holds.
#[derive(Debug)]
pub(crate) struct HighWater {
    path: PathBuf,
    file: File,
    generation: u64,
    /// The highest acknowledged sequence (0: none yet).
    pub(crate) seq: u64,
}

impl HighWater {
    /// Reads the mark of `dir`; `None` when the file is absent or holds no valid slot (a log
    /// written before the mark existed, or whose creation of the file was torn).
    pub(crate) fn read(dir: &Path) -> Result<Option<(u64, u64)>, LogError> {
        let path = dir.join(FILE_NAME);
        let mut opts = OpenOptions::new();
        let file = match crate::nofollow::open(opts.read(true), &path, "open high-water mark") {
            Ok(f) => f,
            Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut bytes = vec![0u8; 2 * SLOT];
        let n = read_upto(&file, &mut bytes)
            .map_err(|e| LogError::io("read high-water mark", &path, e))?;
        Ok(slot::latest(MAGIC, &bytes[..n]))
    }

    /// Opens (creating when needed) the file with the mark `seq`, durably.
    pub(crate) fn create(
        dir: &Path,
        seq: u64,
        generation: u64,
        durability: &dyn Durability,
    ) -> Result<HighWater, LogError> {
        let path = dir.join(FILE_NAME);
        let file = crate::nofollow::open_for_write(
            durability,
            &path,
            OpenMode::Create,
            "open high-water mark",
        )?;
        let mut hw = HighWater {
            path,
            file,
            generation,
            seq: 0,
        };
        hw.set(seq, durability)?;
        durability.sync_dir(dir).map_err(|e| sync_failed(dir, &e))?;
        Ok(hw)
    }

    /// The mark at least `at_least`, given what [`HighWater::read`] `found`: when the file
    /// already holds exactly that, it is opened and nothing is written (a start, or a dry run,
    /// changes no byte and pays no fdatasync); otherwise [`HighWater::create`] writes it.
    pub(crate) fn open(
        dir: &Path,
        found: Option<(u64, u64)>,
        at_least: u64,
        durability: &dyn Durability,
    ) -> Result<HighWater, LogError> {
        let (generation, seq) = found.unwrap_or((0, 0));
        if found.is_none() || seq < at_least {
            return HighWater::create(dir, seq.max(at_least), generation, durability);
        }
        let path = dir.join(FILE_NAME);
        let file = crate::nofollow::open(
            OpenOptions::new().read(true).write(true),
            &path,
            "open high-water mark",
        )?;
        Ok(HighWater {
            path,
            file,
            generation,
            seq,
        })
    }

    /// Durably raises the mark to `seq` (a lower `seq` is ignored: the mark never goes back).
    pub(crate) fn raise(&mut self, seq: u64, durability: &dyn Durability) -> Result<(), LogError> {
        if seq <= self.seq {
            return Ok(());
        }
        self.set(seq, durability)
    }

    fn set(&mut self, seq: u64, durability: &dyn Durability) -> Result<(), LogError> {
        let generation = self.generation + 1;
        let at = slot::offset(generation);
        durability
            .write_at(
                &self.file,
                &self.path,
                &slot::encode(MAGIC, generation, seq),
                at,
            )
            .map_err(|e| LogError::io("write high-water mark", &self.path, e))?;
        durability
            .sync_file(&self.file, &self.path)
            .map_err(|e| sync_failed(&self.path, &e))?;
        self.generation = generation;
        self.seq = seq;
        Ok(())
    }
}

fn read_upto(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64)? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::OsDurability;

    #[test]
    fn given_a_raised_mark_when_read_back_then_the_latest_value_wins_and_it_never_goes_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(HighWater::read(dir.path()).unwrap(), None);
        let mut hw = HighWater::create(dir.path(), 0, 0, &OsDurability).unwrap();
        hw.raise(7, &OsDurability).unwrap();
        hw.raise(9, &OsDurability).unwrap();
        hw.raise(3, &OsDurability).unwrap();
        assert_eq!(
            HighWater::read(dir.path()).unwrap().map(|(_, s)| s),
            Some(9)
        );
    }

    #[test]
    fn given_a_mark_already_on_file_when_opened_at_or_below_it_then_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut hw = HighWater::create(dir.path(), 4, 0, &OsDurability).unwrap();
        hw.raise(9, &OsDurability).unwrap();
        let path = dir.path().join(FILE_NAME);
        let bytes = std::fs::read(&path).unwrap();
        let found = HighWater::read(dir.path()).unwrap();
        let kept = HighWater::open(dir.path(), found, 7, &OsDurability).unwrap();
        assert_eq!((kept.seq, std::fs::read(&path).unwrap()), (9, bytes));
        let raised = HighWater::open(dir.path(), found, 12, &OsDurability).unwrap();
        assert_eq!(raised.seq, 12);
        assert_eq!(
            HighWater::read(dir.path()).unwrap().map(|(_, s)| s),
            Some(12)
        );
    }

    #[test]
    fn given_a_torn_latest_slot_when_read_then_the_previous_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let mut hw = HighWater::create(dir.path(), 0, 0, &OsDurability).unwrap();
        hw.raise(5, &OsDurability).unwrap();
        hw.raise(6, &OsDurability).unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        let latest = (hw.generation % 2) as usize * SLOT;
        bytes[latest + 17] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            HighWater::read(dir.path()).unwrap().map(|(_, s)| s),
            Some(5)
        );
    }
}
