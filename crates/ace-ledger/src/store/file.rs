//! [`FileStore`]: the default store, two append-only JSON-lines files under `<data>/ledger/`.
//!
//! - `entries.jsonl`: one entry per line, its canonical JSON with `chain_hash` (see
//!   [`crate::entry`]); line `n + 1` holds seq `n`.
//! - `checkpoints.jsonl`: one signed [`Checkpoint`] per line.
//!
//! # Durability rule
//!
//! An append (one entry or a batch: group commit) writes all its lines with one `write` and,
//! when asked to sync, `fdatasync`s; only then does it return `Ok`, which is the
//! acknowledgement. An append without sync is in the kernel's page cache when acknowledged: it
//! survives a crash of the process but not of the machine until [`LedgerStore::sync`] (or the
//! next synced append, or opening the store again, or dropping it) `fdatasync`s it. So every
//! acknowledged entry is a complete line ending in `\n`, and a last line *without* `\n` can only
//! be the torn write of an append that crashed before it was acknowledged (or, after a power
//! loss, of an unsynced one). On open such a tail
//! is never silently dropped: its bytes are appended to `entries.jsonl.torn` (or
//! `checkpoints.jsonl.torn`), the file is cut back to its last complete line, and the tail is
//! reported ([`FileStore::torn_tails`]; `verify_dir` reports a torn tail still in place and any
//! bytes kept aside). A failed append cuts the file back to its length before the append.
//!
//! Reads seek through an in-memory index of line offsets (8 bytes per entry).
//!
//! # No symlinks
//!
//! The store never reads or writes through a symbolic link: the ledger directory, and the
//! signing key files [`crate::checkpoint`] keeps beside the entries, are refused after an
//! `lstat` when they are links, and every file of the store (entries, checkpoints, torn tails)
//! is opened with `O_NOFOLLOW`. A refusal fails [`FileStore::open`] (or the append) with
//! [`LedgerError::Io`] whose reason is `refusing to follow symlink <path>`; nothing is written
//! to the link's target.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::{EntryFilter, LedgerStore};
use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::error::LedgerError;

/// The entries file, under the ledger directory.
pub const ENTRIES_FILE: &str = "entries.jsonl";
/// The checkpoints file, under the ledger directory.
pub const CHECKPOINTS_FILE: &str = "checkpoints.jsonl";
/// Where torn (unacknowledged) tails of the entries file are kept, under the ledger directory.
pub const TORN_FILE: &str = "entries.jsonl.torn";

/// A torn last line found and moved aside when the store opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The file it was cut from.
    pub file: PathBuf,
    /// Byte offset where the torn line started.
    pub offset: u64,
    /// Its length in bytes.
    pub bytes: u64,
}

/// Entries and checkpoints in append-only files under one directory.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    entries_path: PathBuf,
    checkpoints_path: PathBuf,
    writer: File,
    reader: File,
    offsets: Vec<u64>,
    len: u64,
    torn: Vec<TornTail>,
    /// Whether some append since the last `fdatasync` was not synced.
    unsynced: bool,
    /// Whether an `fdatasync` failed. Linux reports a writeback error once per open file and may
    /// already have dropped the dirty pages, so a later sync answering `Ok` proves nothing: the
    /// store refuses every write from then on (as PostgreSQL does) until it is opened again,
    /// which replays the file and finds what really reached the disk.
    sync_failed: bool,
}

impl FileStore {
    /// Opens (creating if needed) the store in `dir` (normally `<data>/ledger`), moving any torn
    /// tail aside as the durability rule says.
    pub fn open(dir: &Path) -> Result<Self, LedgerError> {
        refuse_link(dir)?;
        fs::create_dir_all(dir).map_err(|e| LedgerError::io(dir, e))?;
        for key_file in [
            crate::checkpoint::SIGNING_KEY_FILE,
            crate::checkpoint::PUBLIC_KEY_FILE,
        ] {
            refuse_link(&dir.join(key_file))?;
        }
        let entries_path = dir.join(ENTRIES_FILE);
        let checkpoints_path = dir.join(CHECKPOINTS_FILE);
        let mut torn = Vec::new();
        for (path, aside) in [
            (&entries_path, dir.join(TORN_FILE)),
            (
                &checkpoints_path,
                dir.join(format!("{CHECKPOINTS_FILE}.torn")),
            ),
        ] {
            torn.extend(repair_torn_tail(path, &aside)?);
        }
        let writer = open_nofollow(OpenOptions::new().create(true).append(true), &entries_path)?;
        let reader = open_nofollow(OpenOptions::new().read(true), &entries_path)?;
        let len = file_len(&writer, &entries_path)?;
        // Unsynced appends of a process that crashed are still only in the page cache.
        writer
            .sync_data()
            .map_err(|e| LedgerError::io(&entries_path, e))?;
        sync_dir(dir)?;
        Ok(FileStore {
            dir: dir.to_path_buf(),
            entries_path,
            checkpoints_path,
            writer,
            reader,
            offsets: Vec::new(),
            len,
            torn,
            unsynced: false,
            sync_failed: false,
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Torn tails moved aside by [`FileStore::open`] (empty after a clean shutdown).
    pub fn torn_tails(&self) -> &[TornTail] {
        &self.torn
    }

    fn read_range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, LedgerError> {
        let path = &self.entries_path;
        let mut buf = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
        self.reader
            .seek(SeekFrom::Start(start))
            .and_then(|_| self.reader.read_exact(&mut buf))
            .map_err(|e| LedgerError::io(path, e))?;
        Ok(buf)
    }

    fn line_end(&self, index: usize) -> u64 {
        self.offsets.get(index + 1).copied().unwrap_or(self.len)
    }
}

impl LedgerStore for FileStore {
    fn replay(
        &mut self,
        visit: &mut dyn FnMut(Entry) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.offsets.clear();
        let path = self.entries_path.clone();
        self.reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| LedgerError::io(&path, e))?;
        let mut lines = BufReader::new(&self.reader);
        let (mut offset, mut line) = (0u64, Vec::new());
        loop {
            line.clear();
            let read = lines
                .read_until(b'\n', &mut line)
                .map_err(|e| LedgerError::io(&path, e))?;
            if read == 0 {
                return Ok(());
            }
            self.offsets.push(offset);
            offset += read as u64;
            visit(parse_line(&path, self.offsets.len() as u64, &line)?)?;
        }
    }

    fn append(&mut self, entries: &[Entry], sync: bool) -> Result<(), LedgerError> {
        self.refuse_after_failed_sync()?;
        let mut buf = Vec::with_capacity(entries.len() * 256);
        let mut starts = Vec::with_capacity(entries.len());
        for entry in entries {
            starts.push(self.len + buf.len() as u64);
            buf.extend(entry.to_line());
            buf.push(b'\n');
        }
        let mut written = self.writer.write_all(&buf);
        if sync && written.is_ok() {
            written = self.writer.sync_data();
            self.sync_failed = written.is_err();
        }
        if let Err(e) = written {
            // Best effort: never leave a partial line for the next append to glue onto.
            let _ = self.writer.set_len(self.len);
            return Err(LedgerError::io(&self.entries_path, e));
        }
        self.offsets.extend(starts);
        self.len += buf.len() as u64;
        self.unsynced = !sync;
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LedgerError> {
        self.refuse_after_failed_sync()?;
        if self.unsynced {
            if let Err(e) = self.writer.sync_data() {
                self.sync_failed = true;
                return Err(LedgerError::io(&self.entries_path, e));
            }
            self.unsynced = false;
        }
        Ok(())
    }

    fn get(&mut self, seq: u64) -> Result<Option<Entry>, LedgerError> {
        let Some(index) = usize::try_from(seq)
            .ok()
            .filter(|&i| i < self.offsets.len())
        else {
            return Ok(None);
        };
        let line = self.read_range(self.offsets[index], self.line_end(index))?;
        parse_line(&self.entries_path, seq + 1, &line).map(Some)
    }

    fn scan(&mut self, filter: &EntryFilter) -> Result<Vec<Entry>, LedgerError> {
        let Some(&start) = usize::try_from(filter.from_seq)
            .ok()
            .and_then(|i| self.offsets.get(i))
        else {
            return Ok(Vec::new());
        };
        let path = self.entries_path.clone();
        self.reader
            .seek(SeekFrom::Start(start))
            .map_err(|e| LedgerError::io(&path, e))?;
        let mut lines = BufReader::new((&self.reader).take(self.len - start));
        let (mut found, mut line, mut line_no) = (Vec::new(), Vec::new(), filter.from_seq);
        while found.len() < filter.max() {
            line.clear();
            line_no += 1;
            let read = lines
                .read_until(b'\n', &mut line)
                .map_err(|e| LedgerError::io(&path, e))?;
            if read == 0 {
                break;
            }
            let entry = parse_line(&path, line_no, &line)?;
            if filter.matches(&entry) {
                found.push(entry);
            }
        }
        Ok(found)
    }

    fn append_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), LedgerError> {
        // Never sign over entries whose sync failed.
        self.refuse_after_failed_sync()?;
        let path = &self.checkpoints_path;
        let mut line = serde_json::to_vec(checkpoint).map_err(|source| LedgerError::Encode {
            field: "checkpoint",
            source,
        })?;
        line.push(b'\n');
        let mut file = open_nofollow(OpenOptions::new().create(true).append(true), path)?;
        file.write_all(&line)
            .and_then(|()| file.sync_data())
            .map_err(|e| LedgerError::io(path, e))
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, LedgerError> {
        read_checkpoints(&self.checkpoints_path)
    }
}

impl FileStore {
    fn refuse_after_failed_sync(&self) -> Result<(), LedgerError> {
        if self.sync_failed {
            let reason = "an earlier fdatasync failed, so entries written since the last good sync \
                          may not be on disk; the store refuses writes until it is opened again";
            return Err(LedgerError::io(
                &self.entries_path,
                std::io::Error::other(reason),
            ));
        }
        Ok(())
    }
}

impl Drop for FileStore {
    /// Syncs unsynced appends: a clean close never leaves acknowledged entries in the page cache.
    fn drop(&mut self) {
        // Nobody to report a failure to here; `Ledger` syncs before every checkpoint (and so
        // before the final one), and the next open syncs again.
        let _ = self.sync();
    }
}

/// Every checkpoint in `path` (none if the file does not exist).
pub(crate) fn read_checkpoints(path: &Path) -> Result<Vec<Checkpoint>, LedgerError> {
    let Some(bytes) = read_nofollow(path)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8(bytes).map_err(|e| {
        LedgerError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })?;
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| LedgerError::Malformed {
                path: path.to_path_buf(),
                line: i as u64 + 1,
                reason: format!("not a checkpoint: {e}"),
            })
        })
        .collect()
}

fn parse_line(path: &Path, line_no: u64, line: &[u8]) -> Result<Entry, LedgerError> {
    serde_json::from_slice(line).map_err(|e| LedgerError::Malformed {
        path: path.to_path_buf(),
        line: line_no,
        reason: format!("not a ledger entry: {e}"),
    })
}

fn file_len(file: &File, path: &Path) -> Result<u64, LedgerError> {
    file.metadata()
        .map(|m| m.len())
        .map_err(|e| LedgerError::io(path, e))
}

pub(crate) fn sync_dir(dir: &Path) -> Result<(), LedgerError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LedgerError::io(dir, e))
}

/// Opens `path` with `options` plus `O_NOFOLLOW`: a symlink is refused by the kernel, and the
/// error says so and names it.
pub(crate) fn open_nofollow(options: &mut OpenOptions, path: &Path) -> Result<File, LedgerError> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match refuse_link(path) {
            Err(refusal) => refusal,
            Ok(()) => LedgerError::io(path, e),
        })
}

/// Fails when `path` is a symbolic link (absent is fine), naming it.
fn refuse_link(path: &Path) -> Result<(), LedgerError> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(LedgerError::io(
            path,
            std::io::Error::other(format!("refusing to follow symlink {}", path.display())),
        )),
        _ => Ok(()),
    }
}

/// The whole file at `path` (`None` when absent), never read through a symlink.
pub(crate) fn read_nofollow(path: &Path) -> Result<Option<Vec<u8>>, LedgerError> {
    let mut file = match open_nofollow(OpenOptions::new().read(true), path) {
        Ok(file) => file,
        Err(LedgerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| LedgerError::io(path, e))?;
    Ok(Some(bytes))
}

/// Whether `path` is absent, empty or ends in `\n` (reads one byte).
fn ends_cleanly(path: &Path) -> Result<bool, LedgerError> {
    let mut file = match open_nofollow(OpenOptions::new().read(true), path) {
        Ok(file) => file,
        Err(LedgerError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Ok(true);
        }
        Err(e) => return Err(e),
    };
    let len = file_len(&file, path)?;
    if len == 0 {
        return Ok(true);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))
        .and_then(|_| file.read_exact(&mut last))
        .map_err(|e| LedgerError::io(path, e))?;
    Ok(last[0] == b'\n')
}

/// Where the last complete line of `bytes` ends (0 if there is none).
pub(crate) fn complete_prefix(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// If `path` ends in a partial line, appends it to `aside`, cuts it off and says so.
fn repair_torn_tail(path: &Path, aside: &Path) -> Result<Option<TornTail>, LedgerError> {
    if ends_cleanly(path)? {
        return Ok(None);
    }
    // Rare path (after a crash): the whole file is read once to find the last complete line.
    let Some(bytes) = read_nofollow(path)? else {
        return Ok(None);
    };
    let cut = complete_prefix(&bytes);
    if cut == bytes.len() {
        return Ok(None);
    }
    let mut kept = open_nofollow(OpenOptions::new().create(true).append(true), aside)?;
    kept.write_all(&bytes[cut..])
        .and_then(|()| kept.write_all(b"\n"))
        .and_then(|()| kept.sync_data())
        .map_err(|e| LedgerError::io(aside, e))?;
    let file = open_nofollow(OpenOptions::new().write(true), path)?;
    file.set_len(cut as u64)
        .and_then(|()| file.sync_all())
        .map_err(|e| LedgerError::io(path, e))?;
    Ok(Some(TornTail {
        file: path.to_path_buf(),
        offset: cut as u64,
        bytes: (bytes.len() - cut) as u64,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{EntryKind, NewEntry};
    use crate::hash::Hash;

    fn entry(seq: u64) -> Entry {
        let new = NewEntry::new(EntryKind::Accepted, "a", "ace.comms.http.x.y.evt.v1");
        Entry::seal_with_leaf(new, seq, chrono::Utc::now(), Hash::ZERO).0
    }

    #[test]
    fn given_a_failed_fdatasync_when_writing_again_then_every_write_is_refused_until_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = FileStore::open(dir.path()).unwrap();
        store.append(&[entry(0)], false).unwrap();
        // A failed fdatasync cannot be provoked on a healthy disk; this is the state it leaves.
        store.sync_failed = true;
        for refused in [store.append(&[entry(1)], true), store.sync()] {
            let err = refused.unwrap_err().to_string();
            assert!(err.contains("an earlier fdatasync failed"), "{err}");
        }
        drop(store);
        let mut reopened = FileStore::open(dir.path()).unwrap();
        reopened.append(&[entry(1)], true).unwrap();
        let text = std::fs::read_to_string(dir.path().join("entries.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 2, "the refused append wrote nothing");
    }

    const VICTIM: &[u8] = b"victim bytes that must never change\n";

    /// Plants `name` in a fresh ledger directory as a symlink to a victim file outside it.
    fn planted(name: &str) -> (tempfile::TempDir, tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        fs::write(&victim, VICTIM).unwrap();
        let link = dir.path().join(name);
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        (dir, outside, link, victim)
    }

    #[test]
    fn given_an_entries_file_that_is_a_symlink_when_opened_then_it_is_refused_naming_it_and_the_victim_is_unchanged()
     {
        for name in [ENTRIES_FILE, CHECKPOINTS_FILE, TORN_FILE] {
            let (dir, _outside, link, victim) = planted(name);
            if name == TORN_FILE {
                // A torn tail makes the store write its bytes aside, into the planted link.
                fs::write(dir.path().join(ENTRIES_FILE), b"{\"torn").unwrap();
            }
            let err = FileStore::open(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains(&format!("refusing to follow symlink {}", link.display())),
                "{name}: {err}"
            );
            assert_eq!(fs::read(&victim).unwrap(), VICTIM, "{name}");
        }
    }

    #[test]
    fn given_a_signing_key_file_that_is_a_symlink_when_opened_then_it_is_refused() {
        for name in [
            crate::checkpoint::SIGNING_KEY_FILE,
            crate::checkpoint::PUBLIC_KEY_FILE,
        ] {
            let (dir, _outside, link, victim) = planted(name);
            let err = FileStore::open(dir.path()).unwrap_err().to_string();
            assert!(
                err.contains(&format!("refusing to follow symlink {}", link.display())),
                "{name}: {err}"
            );
            assert_eq!(fs::read(&victim).unwrap(), VICTIM, "{name}");
        }
    }

    #[test]
    fn given_a_ledger_directory_that_is_a_symlink_when_opened_then_it_is_refused() {
        let real = tempfile::tempdir().unwrap();
        let links = tempfile::tempdir().unwrap();
        let link = links.path().join("ledger");
        std::os::unix::fs::symlink(real.path(), &link).unwrap();
        let err = FileStore::open(&link).unwrap_err().to_string();
        assert!(
            err.contains(&format!("refusing to follow symlink {}", link.display())),
            "{err}"
        );
        assert_eq!(
            fs::read_dir(real.path()).unwrap().count(),
            0,
            "nothing was created"
        );
    }
}
