//! `ace-log`: one stream's messages as a segmented, crash-safe, append-only log. Synchronous (no
//! async runtime); the embedded engine of `ace-bus` calls it from its writer thread.
//!
//! # Layout on disk
//! A directory per stream. `<base_seq:020>.log` segment files, named by the first sequence they
//! hold, each a 128-byte header (magic, base sequence, two durability-watermark slots) followed
//! by records framed as
//! `[len u32][crc32c u32][seq u64][ts u64][subject len u16][headers len u32][subject][headers][payload]`
//! (little endian, CRC32C over everything after the crc field; see [`codec`]). A segment rolls
//! when the next record would take it past `segment_bytes`. `<base_seq:020>.del` holds the
//! segment's single-message deletes: a 64-byte header of two watermark slots, then 12-byte
//! entries with their own CRC32C (see `tombstones.rs`).
//!
//! # No symlinks
//! The log never reads or writes through a symbolic link. The log directory is refused after an
//! `lstat` when it is a link; every segment, tombstone and tombstone-rewrite file is opened with
//! `O_NOFOLLOW`, so a link planted in place of a file is refused by the kernel at the open itself.
//! Either way `Log::open` (or the roll that creates the segment) fails with
//! [`LogError::Symlink`] naming the link ("refusing to follow symlink <path>") and nothing is
//! written to its target. This is an open failure, like an unreadable file, not the read-only
//! mode of a damaged segment: a link has no bytes of the log to serve.
//!
//! # Durability
//! - `SyncPolicy::Always`: write + fdatasync before each call returns.
//! - `SyncPolicy::Batch` (default): group commit, see `log.rs`: all writers waiting in the same
//!   window share one fdatasync. Records are readable only once durable.
//! - `SyncPolicy::Never`: write(2) only. A process crash loses nothing acknowledged; an OS crash
//!   or power loss loses everything since the last sealed segment (roll or close fsync).
//! - New segments and removals fsync the directory. Deletes are synced before `delete` returns
//!   (except under `Never`); `delete_batch` shares one sync per touched tombstone file.
//! - Storage's one seam is [`Durability`] (`Log::open_with`): every call that changes the device
//!   — opening for writing, writing at an offset (records, headers, watermark and high-water
//!   slots, tombstones), `set_len`, creating a directory, renaming, removing, syncing a file or a
//!   directory — goes through it, so tests inject failing syncs, a full device, or a simulated
//!   power cut that forgets everything not yet synced.
//! - A full device (`ENOSPC` while writing records, or at any step of creating the next segment
//!   at a roll) is a temporary refusal, not a halt: the refused records (the whole group-commit
//!   batch they were in) are forgotten — the segment is cut back to its last whole record,
//!   sequences and index go back, a partly created segment is removed again (durably) — every
//!   caller whose records they were gets [`LogError::NoSpace`], nothing acknowledged is touched,
//!   and the next write simply tries again, so writes resume by themselves once space is freed.
//!   A refused `append_batch` stores none of its records, even those a roll it needed had
//!   already written. (A full device while syncing records, or while cleaning up a refused
//!   segment, still halts.)
//! - A failed fsync (or write) halts the log: that call, every waiter of the same group commit and
//!   every later write get `LogError::SyncFailed`, and `LogState::read_only` says why. It is never
//!   retried (after a failed fsync the kernel may have dropped the dirty pages: "fsyncgate").
//!
//! # Recovery
//! Each sync also records, in the segment header, the offset the *previous* sync made durable
//! (the watermark; sealing records the full length). On open every segment is scanned and every
//! CRC checked. In the last segment, an undecodable record at or past the watermark is a torn
//! tail: it and everything after it are truncated and reported in
//! [`RecoveryReport::truncated`] (segment, offset, bytes). Anything undecodable below the
//! watermark, or anywhere in a sealed segment, is corruption: nothing is truncated or skipped, the
//! log opens read-only with [`RecoveryReport::corruption`] naming segment and offset, reads of
//! records before it still work and writes return [`LogError::Corrupt`]. Tombstone files follow
//! the same rule with their own watermark (deletes written before one sync may be torn in any
//! order): a bad entry at or past it is a torn tail, cut; below it (or a file cut below it) it
//! fails `Log::open` itself with `LogError::Corrupt` naming the `.del` file: opening anyway would
//! silently resurrect deleted messages.
//!
//! That no acknowledged record is lost, reordered or given a reused sequence by a power cut at
//! any operation — unsynced writes dropped, or torn per 512-byte sector, directory changes kept
//! as a prefix — is proven by the crash-point sweeps in `tests/it/powerloss.rs`, run on the
//! simulated device of `ace_testkit::powerloss` behind the [`Durability`] seam.
//!
//! # High-water mark
//! `highwater` in the log directory (two CRC'd slots, see `highwater.rs`) holds the highest
//! sequence ever acknowledged. It is raised and fdatasync'ed after the segment sync of a group
//! commit and before its acknowledgement (under `Never`: at `sync`/`close`). At open it is the
//! durable evidence segments are checked against; each of these is corruption (read-only, reported
//! with segment, offset and the missing sequences, nothing changed on disk):
//! - the segments end below the mark (a segment replaced by an older copy, a cut acknowledged
//!   record: a tail is only ever "torn" past both the watermark and the mark);
//! - a gap between two segments (only the oldest segments are ever removed, so a hole is lost
//!   data; a fully deleted segment further on is kept until the ones before it are gone),
//!   except the exact hole a repair recorded in `gaps`;
//! - a last segment at or under its header size whose base sequence the mark covers (it is
//!   rebuilt as "just created" only when no acknowledged sequence lies in it);
//! - no segment at all under a non-zero mark.
//!
//! The mark never goes back, so the next sequence is never below one ever acknowledged. A log
//! without the file (created by an older version) gets one from what recovery found. A segment
//! cut below its synced watermark keeps every record before the cut readable.
//!
//! # Repair
//! A read-only or halted log comes back only by an explicit repair, which accepts a loss
//! recovery never makes on its own ([`Log::repair_plan`] shows it first, changing nothing):
//! the log is cut to its last intact record, what is cut is moved under `lost/<timestamp>/`
//! (never deleted), the hole up to the high-water mark is recorded in `gaps` so recovery
//! opens the log `ok` over it, and the next sequence is above every one ever acknowledged.
//! A halted log is reopened in place first and cut only if that recovery finds damage.
//!
//! # Retention and deletes
//! `apply_retention` drops the oldest *whole* segments whose every record lies outside a limit
//! (older than `max_age`, or the newer segments alone already hold `max_msgs` / `max_bytes`): it
//! keeps at least the limit, like Kafka; callers wanting exact counts delete single messages. When
//! the active segment itself expires it is rolled first, so sequences never restart. A sealed
//! segment whose messages are all deleted is removed.
//!
//! # Invariants
//! - Sequences start at 1 and increase by exactly one per record, across restarts, except over
//!   a hole a repair accepted (recorded in `gaps`, never reused); a segment holds a contiguous
//!   run starting at its base sequence.
//! - An acknowledged record (per the sync policy) is never truncated by recovery: a damaged one
//!   is reported as corruption, and no sequence up to the high-water mark is handed out again.
//! - Stored timestamps never decrease, so time → sequence is a binary search on the sparse index.
//! - Readers never see a record that is not yet durable (except under `Never`).
//! - After corruption or a failed sync the log accepts no write until it is reopened or
//!   repaired; a repair never hands out a sequence at or below the high-water mark.
//! - The index is in memory, rebuilt by the scan at open (which also verifies every CRC), so
//!   opening costs one sequential read of the stream.
//! - Readers share a read lock and see only durable records; appends, the group-commit flush,
//!   deletes and retention take it exclusively, and under `Batch` no lock is held across fsync.

pub mod codec;
mod config;
mod durability;
mod error;
mod gaps;
mod highwater;
mod log;
mod nofollow;
mod repair;
mod segment;
mod slot;
mod store;
mod tombstones;
mod types;

pub use config::{LogConfig, Retention, SyncPolicy};
pub use durability::{Durability, OpenMode, OsDurability, create_dir_all};
pub use error::LogError;
pub use log::Log;
pub use repair::{LOST_DIR, MANIFEST, RepairOptions, RepairPlan, Repaired, SegmentCut};
pub use types::{
    Appended, Corruption, Failure, LogState, NewRecord, Record, RecoveryReport, RetentionReport,
    Truncation,
};
