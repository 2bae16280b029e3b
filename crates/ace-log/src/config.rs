//! `LogConfig` and its parts: roll size, sync policy, retention limits. Validation lives here so
//! that a bad value is refused at `Log::open` with the field named, never discovered mid-write.

use std::time::Duration;

use crate::codec::{MAX_FRAME_BYTES, MIN_FRAME_BYTES};
use crate::error::LogError;

/// When an append is made durable before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Every `append`/`append_batch` call writes and `fdatasync`s before it returns, alone.
    Always,
    /// Group commit (the default): a writer appends to the buffer, then waits for an `fdatasync`
    /// that covers its bytes; every writer that arrived while the previous sync was in flight
    /// shares the next one. `max_delay` (zero by default) makes the syncing writer first wait
    /// that long for company, trading latency for fewer syncs.
    Batch {
        /// How long the syncing writer waits for more writers before it syncs.
        max_delay: Duration,
    },
    /// Lazy: each call `write`s its bytes to the kernel and returns; nothing is `fsync`ed except
    /// when a segment is sealed (roll, close). Loss window: a process crash loses nothing that was
    /// acknowledged, an operating-system crash or power loss loses everything written since the
    /// last sealed segment — recovery truncates it as a torn tail. Never the default.
    Never,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        SyncPolicy::Batch {
            max_delay: Duration::ZERO,
        }
    }
}

/// Retention limits; whole segments that lie entirely outside a limit are dropped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep at least the newest `max_msgs` live messages; older whole segments go.
    pub max_msgs: Option<u64>,
    /// Keep at least the newest `max_bytes` of live records; older whole segments go.
    pub max_bytes: Option<u64>,
    /// Drop segments whose newest record is older than this (by record timestamp).
    pub max_age: Option<Duration>,
}

/// How one log is laid out and synced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// A segment is rolled when the next record would take it past this size (default 64 MiB).
    pub segment_bytes: u64,
    /// When appends are made durable (default group commit).
    pub sync: SyncPolicy,
    /// Retention limits applied by `Log::apply_retention`.
    pub retention: Retention,
    /// Appends whose framed record is bigger are refused (default 8 MiB).
    pub max_record_bytes: u32,
    /// One sparse-index entry per this many bytes of records (default 4 KiB).
    pub index_interval_bytes: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 64 * 1024 * 1024,
            sync: SyncPolicy::default(),
            retention: Retention::default(),
            max_record_bytes: 8 * 1024 * 1024,
            index_interval_bytes: 4096,
        }
    }
}

impl LogConfig {
    /// Refuses values the log cannot honour, naming the field.
    pub fn validate(&self) -> Result<(), LogError> {
        let bad = |field, reason: String| Err(LogError::InvalidConfig { field, reason });
        if self.max_record_bytes < MIN_FRAME_BYTES || self.max_record_bytes > MAX_FRAME_BYTES {
            return bad(
                "max_record_bytes",
                format!("must be within {MIN_FRAME_BYTES}..={MAX_FRAME_BYTES}"),
            );
        }
        if self.segment_bytes < 512 {
            return bad("segment_bytes", "must be at least 512".into());
        }
        if self.index_interval_bytes == 0 {
            return bad("index_interval_bytes", "must be at least 1".into());
        }
        Ok(())
    }
}
