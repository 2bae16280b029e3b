//! The one storage seam of the log: every call that changes what is on the device goes through
//! [`Durability`] — opening a file for writing (creating or emptying it), writing at an offset
//! (records, segment headers, watermark and high-water slots, tombstones), `set_len`, creating a
//! directory, renaming, removing, and making a file or a directory durable. Reads go straight to
//! the files: they change nothing.
//!
//! Production uses [`OsDurability`]: `open(2)` with `O_NOFOLLOW`, `pwrite(2)`, `ftruncate(2)`,
//! `mkdir(2)`, `rename(2)`, `unlink(2)`, `fdatasync(2)` for files and `fsync(2)` on an opened
//! directory. Tests put another implementation in its place to inject failing syncs and a full
//! device, or to simulate a power cut that forgets every write not yet made durable.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt as _, OpenOptionsExt as _};
use std::path::Path;

/// How [`Durability::open`] treats the file at the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// The file must exist; its bytes are kept.
    Existing,
    /// Created (empty) when absent; an existing file keeps its bytes.
    Create,
    /// Created when absent; an existing file is cut to empty.
    Truncate,
}

/// Every mutating storage call of the log. Each method defaults to the operating system's call,
/// so an implementation for tests overrides only the calls it injects faults into, and
/// [`OsDurability`] is exactly the defaults.
///
/// Contract of every implementation:
/// - `open` opens for reading and writing and never follows a symbolic link in the last path
///   component (`O_NOFOLLOW`): the log refuses links (see the crate docs).
/// - An error is reported as the `io::Error` the device gave; the log tells a full device
///   (`ENOSPC`, a temporary refusal) from every other error (which halts it).
/// - Nothing is durable until `sync_file` (the file's bytes and size) or `sync_dir` (the
///   directory's entries: creations, renames and removals) says so; `sync_file` does not make a
///   new name durable.
pub trait Durability: Send + Sync + std::fmt::Debug {
    /// Opens `path` for reading and writing per `mode`, never through a symlink.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<File> {
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW);
        match mode {
            OpenMode::Existing => {}
            OpenMode::Create => {
                options.create(true);
            }
            OpenMode::Truncate => {
                options.create(true).truncate(true);
            }
        }
        options.open(path)
    }

    /// Writes all of `buf` at `offset` of `file` (`path`): records, headers, slots, tombstones.
    fn write_at(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        let _ = path;
        file.write_all_at(buf, offset)
    }

    /// Sets the length of `file` (`path`): cuts a torn or refused tail, or empties a file.
    fn set_len(&self, file: &File, path: &Path, len: u64) -> io::Result<()> {
        let _ = path;
        file.set_len(len)
    }

    /// Flushes the file's data (and the metadata needed to read it back, e.g. its size).
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()> {
        let _ = path;
        file.sync_data()
    }

    /// Creates one directory (its parent must exist).
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    /// Renames `from` to `to` (same directory), replacing `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    /// Removes the file at `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    /// Flushes a directory so that created, renamed and removed entries survive a crash.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The real thing: the operating system's calls, `fdatasync(2)` for files and `fsync(2)` on an
/// opened directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsDurability;

impl Durability for OsDurability {}

/// Creates `dir` and every missing ancestor through `durability`, syncing each new directory's
/// parent so that the whole path survives a crash. An existing `dir` is left alone.
pub fn create_dir_all(durability: &dyn Durability, dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent {
        create_dir_all(durability, parent)?;
    }
    match durability.create_dir(dir) {
        Ok(()) => {}
        // Another opener made it meanwhile: it is there, which is all that is asked.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    match parent {
        Some(parent) => durability.sync_dir(parent),
        None => Ok(()),
    }
}

/// True when `e` says the device is full.
pub(crate) fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_nested_missing_path_when_created_then_every_level_exists() {
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        create_dir_all(&OsDurability, &deep).unwrap();
        assert!(deep.is_dir());
        create_dir_all(&OsDurability, &deep).unwrap();
    }

    #[test]
    fn given_each_open_mode_then_the_file_is_created_kept_or_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(OsDurability.open(&path, OpenMode::Existing).is_err());
        let f = OsDurability.open(&path, OpenMode::Create).unwrap();
        OsDurability.write_at(&f, &path, b"abc", 0).unwrap();
        let f = OsDurability.open(&path, OpenMode::Create).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 3, "create keeps the bytes");
        let f = OsDurability.open(&path, OpenMode::Truncate).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 0, "truncate empties");
    }

    #[test]
    fn given_a_symlink_when_opened_then_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"x").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for mode in [OpenMode::Existing, OpenMode::Create, OpenMode::Truncate] {
            assert!(OsDurability.open(&link, mode).is_err(), "{mode:?}");
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
    }
}
