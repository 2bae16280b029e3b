//! The one storage seam of the log: how a file or directory is made durable, and how records
//! are written to a segment. Production uses [`OsDurability`] (`pwrite`, `fdatasync`, directory
//! `fsync`); tests inject failures to prove that a failed fsync is never retried and then
//! acknowledged, and that a full disk (`ENOSPC` on a record write) is a temporary refusal.

use std::fs::File;
use std::io;
use std::path::Path;

/// Makes written bytes and directory entries durable.
pub trait Durability: Send + Sync + std::fmt::Debug {
    /// Flushes the file's data (and the metadata needed to read it back, e.g. its size).
    fn sync_file(&self, file: &File, path: &Path) -> io::Result<()>;
    /// Flushes a directory so that created, renamed and removed entries survive a crash.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Writes the encoded records `buf` at `offset` of the segment `file` (`path`).
    fn write_records(&self, file: &File, path: &Path, buf: &[u8], offset: u64) -> io::Result<()> {
        let _ = path;
        std::os::unix::fs::FileExt::write_all_at(file, buf, offset)
    }
}

/// The real thing: `fdatasync(2)` for files, `fsync(2)` on an opened directory.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsDurability;

impl Durability for OsDurability {
    fn sync_file(&self, file: &File, _path: &Path) -> io::Result<()> {
        file.sync_data()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}
