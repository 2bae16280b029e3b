//! Durable single-message deletes: one `<base>.del` file per segment.
//!
//! ```text
//! offset 0   slot 0: magic "ACEDEL\0\x02" | generation u64 | synced u64 | crc32c(previous 24) u32 | pad
//! offset 32  slot 1: same; the valid slot with the higher generation wins
//! offset 64  entries: [seq u64][crc32c(seq) u32], 12 bytes each, append-only
//! ```
//! A slot says "every byte below `synced` was durable": each sync writes the length the
//! *previous* sync made durable into the slot not written last, inside the same sync (the segment
//! watermark's rule), so it never claims an entry a power cut could still take; a rewrite syncs
//! the whole file before its rename, so its slot covers it all. The header is synced, and the
//! file's name made durable, before the first entry is written.
//!
//! Several deletes can be written before one sync (`delete_batch`, `SyncPolicy::Never`), and a
//! power cut may keep any of them, in any sector: at load, an entry that does not decode at or
//! past the watermark is a torn tail — deletes never acknowledged — and it and everything after
//! it are cut; below the watermark it is corruption (the open fails naming the file: opening
//! anyway would silently resurrect deleted messages). A file cut below its watermark is
//! corruption too. A file whose header never became durable holds no entry (it is all zeros or
//! empty) and is taken as no file.
//!
//! Files written before the header existed (entries from offset 0) load by their old rule — only
//! the final entry may be torn — and are rewritten with a header. Deleted sequences are kept in
//! memory as a set.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::durability::{Durability, OpenMode, is_no_space};
use crate::error::LogError;
use crate::slot::{self, SLOT};

const ENTRY: usize = 12;
/// Bytes before the first entry: two watermark slots.
const HEADER: u64 = 64;
const MAGIC: &[u8; 8] = b"ACEDEL\0\x02";

/// The deleted sequences of one segment and the file that persists them.
#[derive(Debug)]
pub(crate) struct Tombstones {
    path: PathBuf,
    /// The open file, once it has a durable header and name.
    file: Option<File>,
    /// Bytes of header and whole entries.
    len: u64,
    /// Bytes the last sync made durable (what the next slot write records).
    synced: u64,
    generation: u64,
    dirty: bool,
    set: HashSet<u64>,
}

/// What a file on disk holds.
struct Loaded {
    set: HashSet<u64>,
    /// Bytes of header and whole entries to keep.
    good: u64,
    /// The watermark found (bytes known durable).
    synced: u64,
    generation: u64,
    /// Written before the header existed: to be rewritten.
    legacy: bool,
}

impl Tombstones {
    /// Loads `path` if it exists (see the module docs). Returns the torn bytes cut from its end.
    pub(crate) fn load(
        path: PathBuf,
        durability: &dyn Durability,
    ) -> Result<(Tombstones, u64), LogError> {
        let mut t = Tombstones {
            path,
            file: None,
            len: HEADER,
            synced: HEADER,
            generation: 0,
            dirty: false,
            set: HashSet::new(),
        };
        let bytes = match read_nofollow(&t.path)? {
            Some(b) if b.iter().any(|&x| x != 0) => b,
            // Absent, or created without its header ever becoming durable.
            _ => return Ok((t, 0)),
        };
        let loaded = match read_header(&bytes) {
            Some((generation, synced)) => parse(&bytes, generation, synced, &t.path)?,
            None => parse_legacy(&bytes, &t.path)?,
        };
        let torn = bytes.len() as u64 - loaded.good;
        t.set = loaded.set;
        t.generation = loaded.generation;
        if loaded.legacy {
            let dir = t.path.parent().unwrap_or(Path::new("")).to_path_buf();
            t.rewrite(&dir, durability)?;
            return Ok((t, torn));
        }
        let file = open_rw(&t.path, durability)?;
        if torn > 0 {
            durability
                .set_len(&file, &t.path, loaded.good)
                .map_err(|e| LogError::io("truncate tombstones", &t.path, e))?;
        }
        t.file = Some(file);
        t.len = loaded.good;
        // Entries past the watermark may sit only in the page cache (a process crash keeps
        // them): the next sync makes them durable before a slot ever claims them.
        t.synced = loaded.synced;
        t.dirty = loaded.good > loaded.synced;
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
            self.create(dir, durability)?;
        }
        let file = self.file.as_ref().expect("tombstone file was just created");
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

    /// Creates the file with its header, durably (content and name), before any entry.
    fn create(&mut self, dir: &Path, durability: &dyn Durability) -> Result<(), LogError> {
        let file = crate::nofollow::open_for_write(
            durability,
            &self.path,
            OpenMode::Truncate,
            "create tombstones",
        )?;
        let header = header(1, HEADER);
        let written = durability
            .write_at(&file, &self.path, &header, 0)
            .map_err(|e| match is_no_space(&e) {
                true => LogError::NoSpace {
                    path: self.path.clone(),
                },
                false => LogError::io("write tombstones header", &self.path, e),
            });
        written?;
        durability
            .sync_file(&file, &self.path)
            .map_err(|e| sync_failed(&self.path, &e))?;
        durability.sync_dir(dir).map_err(|e| sync_failed(dir, &e))?;
        self.file = Some(file);
        (self.len, self.synced, self.generation) = (HEADER, HEADER, 1);
        Ok(())
    }

    /// Forgets deletes of sequences `>= next_seq` (records recovery truncated), rewriting the
    /// file atomically when there are any.
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
        self.rewrite(dir, durability)
    }

    /// Replaces the file by one holding exactly the set: temporary file, fsync, rename,
    /// directory fsync.
    fn rewrite(&mut self, dir: &Path, durability: &dyn Durability) -> Result<(), LogError> {
        let len = HEADER + (self.set.len() * ENTRY) as u64;
        let mut bytes = Vec::with_capacity(len as usize);
        let generation = self.generation + 1;
        bytes.extend_from_slice(&header(generation, len));
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
        (self.len, self.synced, self.generation) = (len, len, generation);
        self.dirty = false;
        Ok(())
    }

    /// Syncs the entries written without a sync (`delete_batch`, `SyncPolicy::Never`),
    /// recording in the header what the previous sync made durable.
    pub(crate) fn sync(&mut self, durability: &dyn Durability) -> Result<(), LogError> {
        let (true, Some(file)) = (self.dirty, self.file.as_ref()) else {
            return Ok(());
        };
        let generation = self.generation + 1;
        let at = slot::offset(generation);
        durability
            .write_at(
                file,
                &self.path,
                &slot::encode(MAGIC, generation, self.synced),
                at,
            )
            .map_err(|e| LogError::io("write tombstones watermark", &self.path, e))?;
        durability
            .sync_file(file, &self.path)
            .map_err(|e| sync_failed(&self.path, &e))?;
        (self.generation, self.synced, self.dirty) = (generation, self.len, false);
        Ok(())
    }
}

/// `(generation, synced)` of the valid slot with the higher generation, if any.
fn read_header(bytes: &[u8]) -> Option<(u64, u64)> {
    slot::latest(MAGIC, bytes.get(..HEADER as usize)?).filter(|&(_, synced)| synced >= HEADER)
}

/// The entries of a file with a header whose watermark is `synced`.
fn parse(bytes: &[u8], generation: u64, synced: u64, path: &Path) -> Result<Loaded, LogError> {
    let mut set = HashSet::new();
    let mut good = HEADER as usize;
    for chunk in bytes[good..].chunks(ENTRY) {
        match decode_entry(chunk) {
            Some(seq) => {
                set.insert(seq);
                good += ENTRY;
            }
            None => break,
        }
    }
    let corrupt = |offset: u64, reason: String| LogError::Corrupt {
        segment: path.to_path_buf(),
        offset,
        reason,
    };
    if (good as u64) < synced {
        let reason = if good == bytes.len() {
            format!("file is {good} bytes, its synced watermark says {synced}")
        } else {
            "tombstone entry fails its crc32c below the synced watermark".to_owned()
        };
        return Err(corrupt(good as u64, reason));
    }
    Ok(Loaded {
        set,
        good: good as u64,
        synced,
        generation,
        legacy: false,
    })
}

/// The entries of a file written before the header existed: only the final entry may be torn.
fn parse_legacy(bytes: &[u8], path: &Path) -> Result<Loaded, LogError> {
    let mut set = HashSet::new();
    let mut good = 0;
    for chunk in bytes.chunks(ENTRY) {
        match decode_entry(chunk) {
            Some(seq) => {
                set.insert(seq);
                good += ENTRY;
            }
            None if bytes.len() - good <= ENTRY => break,
            None => {
                return Err(LogError::Corrupt {
                    segment: path.to_path_buf(),
                    offset: good as u64,
                    reason: "tombstone entry fails its crc32c".into(),
                });
            }
        }
    }
    Ok(Loaded {
        set,
        good: good as u64,
        synced: HEADER,
        generation: 0,
        legacy: true,
    })
}

/// A header whose one valid slot, in its generation's place, holds `synced`.
fn header(generation: u64, synced: u64) -> [u8; HEADER as usize] {
    let mut h = [0u8; HEADER as usize];
    let at = slot::offset(generation) as usize;
    h[at..at + SLOT].copy_from_slice(&slot::encode(MAGIC, generation, synced));
    h
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

    fn with(seqs: &[u64], sync: bool) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.del");
        let (mut t, _) = Tombstones::load(path.clone(), &OsDurability).unwrap();
        for &seq in seqs {
            t.add(seq, sync, dir.path(), &OsDurability).unwrap();
        }
        (dir, path)
    }

    #[test]
    fn given_deletes_and_a_torn_last_entry_when_loaded_then_whole_entries_survive() {
        let (_dir, path) = with(&[3, 9], true);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).unwrap();
        let (t, torn) = Tombstones::load(path, &OsDurability).unwrap();
        assert_eq!(torn, 3);
        assert!(t.contains(3) && t.contains(9) && t.count() == 2);
    }

    #[test]
    fn given_unsynced_deletes_torn_anywhere_when_loaded_then_the_tail_from_the_first_bad_entry_is_cut()
     {
        // Deletes 1 and 2 synced (the second sync's slot covers the first), 3..=5 never synced.
        let (dir, path) = with(&[1, 2], true);
        let (mut t, _) = Tombstones::load(path.clone(), &OsDurability).unwrap();
        for seq in [3, 4, 5] {
            t.add(seq, false, dir.path(), &OsDurability).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        let third = HEADER as usize + 2 * ENTRY;
        bytes[third..third + ENTRY].fill(0);
        std::fs::write(&path, &bytes).unwrap();
        let (t, torn) = Tombstones::load(path, &OsDurability).unwrap();
        assert_eq!(
            torn,
            3 * ENTRY as u64,
            "entry 3 torn, 4 and 5 after it go too"
        );
        assert!(t.contains(1) && t.contains(2) && t.count() == 2);
    }

    #[test]
    fn given_a_bad_entry_below_the_synced_watermark_when_loaded_then_it_is_corruption() {
        let (_dir, path) = with(&[1, 2, 3], true);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[HEADER as usize] ^= 0xff;
        std::fs::write(&path, &bytes).unwrap();
        let err = Tombstones::load(path, &OsDurability).unwrap_err();
        assert!(
            matches!(err, LogError::Corrupt { offset: HEADER, .. }),
            "{err}"
        );
    }

    #[test]
    fn given_a_file_cut_below_its_watermark_when_loaded_then_it_is_corruption() {
        let (_dir, path) = with(&[1, 2, 3], true);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..HEADER as usize + ENTRY]).unwrap();
        let err = Tombstones::load(path, &OsDurability).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { .. }), "{err}");
    }

    #[test]
    fn given_a_header_that_never_became_durable_when_loaded_then_there_are_no_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.del");
        std::fs::write(&path, [0u8; HEADER as usize]).unwrap();
        let (mut t, torn) = Tombstones::load(path.clone(), &OsDurability).unwrap();
        assert_eq!((t.count(), torn), (0, 0));
        t.add(4, true, dir.path(), &OsDurability).unwrap();
        let (t, _) = Tombstones::load(path, &OsDurability).unwrap();
        assert!(t.contains(4) && t.count() == 1);
    }

    #[test]
    fn given_a_file_written_before_the_header_existed_when_loaded_then_it_is_read_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.del");
        let mut legacy = Vec::new();
        for seq in [2, 7] {
            legacy.extend_from_slice(&encode_entry(seq));
        }
        std::fs::write(&path, &legacy).unwrap();
        let (mut t, _) = Tombstones::load(path.clone(), &OsDurability).unwrap();
        assert!(t.contains(2) && t.contains(7));
        let rewritten = std::fs::read(&path).unwrap();
        assert!(read_header(&rewritten).is_some(), "rewritten with a header");
        t.add(8, true, dir.path(), &OsDurability).unwrap();
        let (t, _) = Tombstones::load(path, &OsDurability).unwrap();
        assert_eq!(t.count(), 3);
    }

    #[test]
    fn given_a_legacy_file_with_a_bad_entry_before_good_ones_when_loaded_then_it_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.del");
        let mut legacy = Vec::new();
        for seq in [1, 2, 3] {
            legacy.extend_from_slice(&encode_entry(seq));
        }
        legacy[0] ^= 0xff;
        std::fs::write(&path, &legacy).unwrap();
        let err = Tombstones::load(path, &OsDurability).unwrap_err();
        assert!(matches!(err, LogError::Corrupt { offset: 0, .. }), "{err}");
    }
}
