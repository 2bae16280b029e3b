//! The one error type of `ace-log`. Every variant names the file, field or record at fault so an
//! operator can act on the message alone.

use std::path::PathBuf;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// An operating-system call failed (open, read, write, rename, remove...).
    #[error("{op} {path}: {source}")]
    Io {
        /// The operation that failed, e.g. `"write segment"`.
        op: &'static str,
        /// The file or directory it was applied to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Bytes the log had already made durable do not decode: the stream is read-only until an
    /// operator repairs or removes the named segment. Nothing was skipped or truncated.
    #[error("corrupt segment {segment} at byte offset {offset}: {reason}; the stream is read-only")]
    Corrupt {
        /// The segment (or tombstone) file holding the bad bytes.
        segment: PathBuf,
        /// Byte offset of the first bad record in that file.
        offset: u64,
        /// What failed to decode.
        reason: String,
    },
    /// An fsync failed. Its outcome is unknowable (the kernel may have dropped the dirty pages),
    /// so it is never retried: the log stops acknowledging writes until it is reopened.
    #[error("fsync of {path} failed: {reason}; the log no longer acknowledges writes")]
    SyncFailed {
        /// The file whose sync failed.
        path: PathBuf,
        /// The operating-system error text.
        reason: String,
    },
    /// The device is full (`ENOSPC`) while writing records or creating the next segment.
    /// Nothing of the refused records was kept (the segment is cut back to its last record, a
    /// partly created segment removed) and nothing acknowledged is lost; the log stays writable,
    /// so the same write succeeds once space is freed.
    #[error(
        "no space left on the device of {path}; the records were not written, retry once space is freed"
    )]
    NoSpace {
        /// The segment being written or created.
        path: PathBuf,
    },
    /// A file or directory of the log is a symbolic link. The log never reads or writes through
    /// a link (a linked segment would append into whatever file it points at), so it refuses to
    /// open; an operator replaces the link by the real file or removes it.
    #[error("refusing to follow symlink {path}: log files and directories must not be links")]
    Symlink {
        /// The link.
        path: PathBuf,
    },
    /// A record is larger than `LogConfig::max_record_bytes` once framed.
    #[error("record for subject {subject:?} is {size} bytes framed, over max_record_bytes = {max}")]
    RecordTooLarge {
        /// The record's subject.
        subject: String,
        /// Its framed size in bytes.
        size: u64,
        /// The configured limit.
        max: u32,
    },
    /// A configuration value is out of range.
    #[error("invalid log config `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field of `LogConfig`.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LogError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}
