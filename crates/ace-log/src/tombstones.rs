//! Durable single-message deletes: one `<base>.del` file per segment holding 12-byte entries
//! `[seq u64][crc32c(seq) u32]`. Append-only, so a crash can only tear the final entry (that
//! delete was never acknowledged and is dropped on load); a bad entry followed by more entries is
//! corruption. Deleted sequences are kept in memory as a set.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::durability::{Durability, OpenMode, is_no_space};
use crate::error::LogError;

const ENTRY: usize = 12;

/// The deleted sequences of one segment and the file that persists them.
#[derive(Debug)]
pub(crate) struct Tombstones {
    path: PathBuf,
    file: Option<File>,
    len: u64,
    dirty: bool,
    set: HashSet<u64>,
}

impl Tombstones {
    /// Loads `path` if it exists. Returns the torn bytes dropped from its end, if any.
    pub(crate) fn load(
        path: PathBuf,
        durability: &dyn Durability,
    ) -> Result<(Tombstones, u64), LogError> {
        let mut t = Tombstones {
            path,
            file: None,
            len: 0,
            dirty: false,
            set: HashSet::new(),
        };
        let bytes = match read_nofollow(&t.path)? {
            Some(b) => b,
            None => return Ok((t, 0)),
        };
        let mut good = 0;
        for chunk in bytes.chunks(ENTRY) {
            match decode_entry(chunk) {
                Some(seq) => {
                    t.set.insert(seq);
                    good += ENTRY;
                }
                None if bytes.len() - good <= ENTRY => break,
                None => {
                    return Err(LogError::Corrupt {
                        segment: t.path.clone(),
                        offset: good as u64,
                        reason: "tombstone entry fails its crc32c".into(),
                    });
                }
            }
        }
        let file = open_rw(&t.path, durability)?;
        let torn = (bytes.len() - good) as u64;
        if torn > 0 {
            durability
                .set_len(&file, &t.path, good as u64)
                .map_err(|e| LogError::io("truncate tombstones", &t.path, e))?;
        }
        t.file = Some(file);
        t.len = good as u64;
        Ok((t, torn))
    }

    pub(crate) fn contains(&self, seq: u64) -> bool {
        self.set.contains(&seq)
    }

    pub(crate) fn count(&self) -> u64 {
        self.set.len() as u64
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Persists the delete of `seq`; with `sync` it is durable when this returns. A sync
    /// failure is returned as `SyncFailed` for the caller to halt the log; a full device as
    /// `NoSpace`, with nothing changed.
    pub(crate) fn add(
        &mut self,
        seq: u64,
        sync: bool,
        dir: &Path,
        durability: &dyn Durability,
    ) -> Result<(), LogError> {
        if self.file.is_none() {
            let file = open_rw(&self.path, durability)?;
            durability.sync_dir(dir).map_err(|e| sync_failed(dir, &e))?;
            self.file = Some(file);
        }
        let file = self.file.as_ref().expect("tombstone file was just opened");
        match durability.write_at(file, &self.path, &encode_entry(seq), self.len) {
            Ok(()) => {}
            Err(e) if is_no_space(&e) => {
                // A full device refuses the delete: cut any partial entry, nothing changed.
                durability
                    .set_len(file, &self.path, self.len)
                    .map_err(|e| LogError::io("cut refused tombstone", &self.path, e))?;
                return Err(LogError::NoSpace {
                    path: self.path.clone(),
                });
            }
            Err(e) => return Err(LogError::io("write tombstone", &self.path, e)),
        }
        self.len += ENTRY as u64;
        self.set.insert(seq);
        self.dirty = true;
        if sync {
            self.sync(durability)?;
        }
        Ok(())
    }

    /// Forgets deletes of sequences `>= next_seq` (records recovery truncated), rewriting the
    /// file atomically (temporary file, fsync, rename, directory fsync) when there are any.
    pub(crate) fn retain_below(
        &mut self,
        next_seq: u64,
        dir: &Path,
        durability: &dyn Durability,
    ) -> Result<(), LogError> {
        if self.set.iter().all(|&s| s < next_seq) {
            return Ok(());
        }
        self.set.retain(|&s| s < next_seq);
        let mut bytes = Vec::with_capacity(self.set.len() * ENTRY);
        for &seq in &self.set {
            bytes.extend_from_slice(&encode_entry(seq));
        }
        let tmp = self.path.with_extension("del.tmp");
        let file = crate::nofollow::open_for_write(
            durability,
            &tmp,
            OpenMode::Truncate,
            "open tombstones",
        )?;
        durability
            .write_at(&file, &tmp, &bytes, 0)
            .map_err(|e| LogError::io("write tombstones", &tmp, e))?;
        durability
            .sync_file(&file, &tmp)
            .map_err(|e| sync_failed(&tmp, &e))?;
        durability
            .rename(&tmp, &self.path)
            .map_err(|e| LogError::io("rename tombstones", &tmp, e))?;
        durability.sync_dir(dir).map_err(|e| sync_failed(dir, &e))?;
        self.file = Some(open_rw(&self.path, durability)?);
        self.len = bytes.len() as u64;
        Ok(())
    }

    /// Syncs pending tombstones (those written under `SyncPolicy::Never`).
    pub(crate) fn sync(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        if let (true, Some(file)) = (self.dirty, self.file.as_ref()) {
            durability
                .sync_file(file, &self.path)
                .map_err(|e| sync_failed(&self.path, &e))?;
            self.dirty = false;
        }
        Ok(())
    }
}

fn encode_entry(seq: u64) -> [u8; ENTRY] {
    let mut entry = [0u8; ENTRY];
    entry[..8].copy_from_slice(&seq.to_le_bytes());
    let crc = crc32c::crc32c(&entry[..8]);
    entry[8..].copy_from_slice(&crc.to_le_bytes());
    entry
}

fn decode_entry(chunk: &[u8]) -> Option<u64> {
    if chunk.len() != ENTRY {
        return None;
    }
    let crc = u32::from_le_bytes([chunk[8], chunk[9], chunk[10], chunk[11]]);
    (crc32c::crc32c(&chunk[..8]) == crc).then(|| crate::codec::u64_at(chunk, 0))
}

/// The whole file at `path` (`None` when absent), never read through a symlink.
fn read_nofollow(path: &Path) -> Result<Option<Vec<u8>>, LogError> {
    use std::io::Read as _;
    let mut file =
        match crate::nofollow::open(OpenOptions::new().read(true), path, "read tombstones") {
            Ok(file) => file,
            Err(LogError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| LogError::io("read tombstones", path, e))?;
    Ok(Some(bytes))
}

fn open_rw(path: &Path, durability: &dyn Durability) -> Result<File, LogError> {
    crate::nofollow::open_for_write(durability, path, OpenMode::Create, "open tombstones")
}

pub(crate) fn sync_failed(path: &Path, e: &std::io::Error) -> LogError {
    LogError::SyncFailed {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durability::OsDurability;

    #[test]
    fn given_deletes_and_a_torn_last_entry_when_loaded_then_whole_entries_survive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.del");
        let (mut t, _) = Tombstones::load(path.clone(), &OsDurability).unwrap();
        for seq in [3, 9] {
            t.add(seq, true, dir.path(), &OsDurability).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let (t, torn) = Tombstones::load(path, &OsDurability).unwrap();
        assert_eq!(torn, 3);
        assert!(t.contains(3) && t.contains(9) && t.count() == 2);
    }

    #[test]
    fn given_a_bad_entry_before_good_ones_when_loaded_then_it_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.del");
        let (mut t, _) = Tombstones::load(path.clone(), &OsDurability).unwrap();
        for seq in [1, 2, 3] {
            t.add(seq, false, dir.path(), &OsDurability).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[0] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = Tombstones::load(path, &OsDurability).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { offset: 0, .. }), "{err}");
    }
}
