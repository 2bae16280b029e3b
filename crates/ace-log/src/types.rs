//! The plain data the log takes and gives back: records in and out, and the reports of
//! recovery, retention and state.

use std::path::PathBuf;

use bytes::Bytes;

/// A record to append. The log assigns its sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewRecord<'a> {
    /// Subject (at most 65,535 bytes of UTF-8).
    pub subject: &'a str,
    /// Opaque header block, encoded by the caller.
    pub headers: &'a [u8],
    /// Payload.
    pub payload: &'a [u8],
    /// Nanoseconds since the Unix epoch; `0` means "now". Stored timestamps never go backwards:
    /// one older than the previous record's is raised to it (see `Appended::timestamp_ns`).
    pub timestamp_ns: u64,
}

/// What an acknowledged append got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its sequence (the first record of a log is 1).
    pub seq: u64,
    /// The timestamp actually stored.
    pub timestamp_ns: u64,
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Sequence.
    pub seq: u64,
    /// Timestamp, nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// Subject.
    pub subject: String,
    /// Opaque header block.
    pub headers: Bytes,
    /// Payload.
    pub payload: Bytes,
}

/// The log at a glance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogState {
    /// The smallest live sequence; `last_seq + 1` when the log holds no live message.
    pub first_seq: u64,
    /// The last acknowledged sequence (0 before the first append).
    pub last_seq: u64,
    /// Live messages (appended, not deleted, not dropped by retention).
    pub messages: u64,
    /// Framed bytes of the live messages.
    pub bytes: u64,
    /// Why the log refuses writes, when it does (corruption found, a failed fsync).
    pub read_only: Option<String>,
    /// The damage found at open, when that is why it refuses writes (`None` with `read_only`
    /// set means a failed write or fsync halted it).
    pub damage: Option<Corruption>,
    /// The failed write or fsync that halted it, when that is why it refuses writes.
    pub failed: Option<Failure>,
    /// The highest sequence ever acknowledged (kept outside the segments).
    pub high_water: u64,
}

/// A write or fsync that failed and halted the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The file it was applied to.
    pub path: PathBuf,
    /// The operating-system error text.
    pub reason: String,
}

/// A torn tail cut off by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment file that was cut.
    pub segment: PathBuf,
    /// The new length of the file: the first byte that was not a whole, valid record.
    pub offset: u64,
    /// How many bytes were removed.
    pub bytes: u64,
}

/// Durable bytes that do not decode. The log is read-only while this is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The file holding them.
    pub segment: PathBuf,
    /// Offset of the first bad byte range (a record start).
    pub offset: u64,
    /// What was wrong.
    pub reason: String,
}

/// What `Log::open` found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Segment files opened.
    pub segments: usize,
    /// Records found (including deleted ones still in their segment).
    pub records: u64,
    /// Torn tails removed (only ever past a segment's durability watermark).
    pub truncated: Vec<Truncation>,
    /// The first corruption found, if any (the log is then read-only).
    pub corruption: Option<Corruption>,
    /// The high-water mark found on disk; `None` when the log had none (new, or written by a
    /// version without it: the mark is then created from what recovery found).
    pub high_water: Option<u64>,
}

/// What `Log::apply_retention` dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// Whole segments removed.
    pub segments_dropped: usize,
    /// Live messages they held.
    pub messages_dropped: u64,
    /// Live bytes they held.
    pub bytes_dropped: u64,
}
