//! Opening files without following symbolic links.
//!
//! Every segment (`.log`), tombstone (`.del`) and tombstone rewrite (`.del.tmp`) file is opened
//! with `O_NOFOLLOW`, so the kernel refuses a link in the last path component atomically (no
//! window between a check and the open); the log directory itself is checked with `lstat`
//! before it is used. A refusal is [`LogError::Symlink`] naming the link. Opens for writing go
//! through the storage seam ([`Durability::open`], whose contract includes `O_NOFOLLOW`).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use crate::durability::{Durability, OpenMode};
use crate::error::LogError;

/// Opens `path` for writing through `durability`; a symlink is [`LogError::Symlink`], a full
/// device [`LogError::NoSpace`], any other failure [`LogError::Io`] with `op`.
pub(crate) fn open_for_write(
    durability: &dyn Durability,
    path: &Path,
    mode: OpenMode,
    op: &'static str,
) -> Result<File, LogError> {
    durability.open(path, mode).map_err(|e| {
        refusal(path).unwrap_or_else(|| {
            if crate::durability::is_no_space(&e) {
                LogError::NoSpace {
                    path: path.to_path_buf(),
                }
            } else {
                LogError::io(op, path, e)
            }
        })
    })
}

/// Opens `path` with `options` plus `O_NOFOLLOW`; a symlink is [`LogError::Symlink`], any
/// other failure [`LogError::Io`] with `op`.
pub(crate) fn open(
    options: &mut OpenOptions,
    path: &Path,
    op: &'static str,
) -> Result<File, LogError> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| refusal(path).unwrap_or_else(|| LogError::io(op, path, e)))
}

/// Fails with [`LogError::Symlink`] when `path` is a symbolic link (absent is fine).
pub(crate) fn refuse_link(path: &Path) -> Result<(), LogError> {
    refusal(path).map_or(Ok(()), Err)
}

/// The refusal for `path` when it is a symbolic link.
fn refusal(path: &Path) -> Option<LogError> {
    std::fs::symlink_metadata(path)
        .ok()
        .filter(|m| m.file_type().is_symlink())
        .map(|_| LogError::Symlink {
            path: path.to_path_buf(),
        })
}
