//! Where entries and checkpoints live: the [`LedgerStore`] trait, the durable [`FileStore`]
//! (the default, under `<data>/ledger/`), [`PostgresStore`], and the in-memory [`MemoryStore`]
//! for tests.
//!
//! A store only keeps what it is given, in order; hashing, sequencing and checking belong to
//! [`crate::Ledger`], so a store implements persistence and nothing else — [`PostgresStore`] is
//! the scale-out one.

pub(crate) mod file;
mod memory;
pub(crate) mod postgres;

pub use file::{CHECKPOINTS_FILE, ENTRIES_FILE, FileStore, TORN_FILE, TornTail};
pub use memory::MemoryStore;
pub use postgres::PostgresStore;

use chrono::{DateTime, Utc};

use crate::checkpoint::Checkpoint;
use crate::entry::{Entry, EntryKind};
use crate::error::LedgerError;

/// Persistence for a ledger. Calls are serialized by the ledger (it holds the store behind a
/// mutex), so implementations need no locking of their own.
pub trait LedgerStore: Send + std::fmt::Debug {
    /// Calls `visit` with every stored entry in order (used once, when the ledger opens).
    fn replay(
        &mut self,
        visit: &mut dyn FnMut(Entry) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError>;

    /// Appends `entries` (consecutive, following the last stored one); all or none. When `sync`,
    /// they are durable (survive power loss) when this returns `Ok`; otherwise they are written
    /// so that they survive a crash of the process, and become durable at the next [`sync`]
    /// (or the next append with `sync`). `Ok` is the acknowledgement of either promise.
    ///
    /// [`sync`]: LedgerStore::sync
    fn append(&mut self, entries: &[Entry], sync: bool) -> Result<(), LedgerError>;

    /// Makes every entry appended so far durable (nothing to do when every append synced).
    fn sync(&mut self) -> Result<(), LedgerError>;

    /// The entry at `seq`, if stored.
    fn get(&mut self, seq: u64) -> Result<Option<Entry>, LedgerError>;

    /// Entries matching `filter`, in `seq` order.
    fn scan(&mut self, filter: &EntryFilter) -> Result<Vec<Entry>, LedgerError>;

    /// Appends a checkpoint, durably. The ledger calls [`LedgerStore::sync`] first, so a
    /// checkpoint never covers an entry that is not durable.
    fn append_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), LedgerError>;

    /// Every stored checkpoint, oldest first.
    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, LedgerError>;
}

/// Which entries [`crate::Ledger::entries`] returns (`GET /api/v1/ledger/entries?kind=&since=&until=`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Only this kind.
    pub kind: Option<EntryKind>,
    /// Only entries with `ts >= since`.
    pub since: Option<DateTime<Utc>>,
    /// Only entries with `ts < until`.
    pub until: Option<DateTime<Utc>>,
    /// Start at this seq (a pagination cursor: the last seen seq + 1).
    pub from_seq: u64,
    /// At most this many (all when `None`).
    pub limit: Option<usize>,
}

impl EntryFilter {
    /// Whether `entry` passes every condition except `limit`.
    pub fn matches(&self, entry: &Entry) -> bool {
        entry.seq >= self.from_seq
            && self.kind.is_none_or(|k| entry.kind == k)
            && self.since.is_none_or(|t| entry.ts >= t)
            && self.until.is_none_or(|t| entry.ts < t)
    }

    /// The maximum count as a plain number.
    pub(crate) fn max(&self) -> usize {
        self.limit.unwrap_or(usize::MAX)
    }
}
