//! [`MemoryStore`]: a [`LedgerStore`] in memory, for tests of callers (the pipeline, the HTTP
//! API). Clones share one state, so a test can drop a ledger and "reopen" it on the same store,
//! and [`MemoryStore::power_loss`] drops what was never synced, as a machine crash would drop
//! the file store's unsynced writes.

use std::sync::Arc;

use parking_lot::Mutex;

use super::{EntryFilter, LedgerStore};
use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::error::LedgerError;

/// Entries and checkpoints in shared memory; nothing survives the process.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry>,
    /// How many of `entries` are "durable" (appended with sync, or synced since).
    synced: usize,
    checkpoints: Vec<Checkpoint>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every entry appended since the last sync, as a power loss forgets the file store's
    /// unsynced writes (checkpoints are always stored durably).
    pub fn power_loss(&self) {
        let mut state = self.state.lock();
        let synced = state.synced;
        state.entries.truncate(synced);
    }
}

impl LedgerStore for MemoryStore {
    fn replay(
        &mut self,
        visit: &mut dyn FnMut(Entry) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let entries = self.state.lock().entries.clone();
        entries.into_iter().try_for_each(visit)
    }

    fn append(&mut self, entries: &[Entry], sync: bool) -> Result<(), LedgerError> {
        let mut state = self.state.lock();
        state.entries.extend_from_slice(entries);
        if sync {
            state.synced = state.entries.len();
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), LedgerError> {
        let mut state = self.state.lock();
        state.synced = state.entries.len();
        Ok(())
    }

    fn get(&mut self, seq: u64) -> Result<Option<Entry>, LedgerError> {
        let state = self.state.lock();
        Ok(usize::try_from(seq)
            .ok()
            .and_then(|i| state.entries.get(i))
            .cloned())
    }

    fn scan(&mut self, filter: &EntryFilter) -> Result<Vec<Entry>, LedgerError> {
        let state = self.state.lock();
        Ok(state
            .entries
            .iter()
            .filter(|e| filter.matches(e))
            .take(filter.max())
            .cloned()
            .collect())
    }

    fn append_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), LedgerError> {
        self.state.lock().checkpoints.push(checkpoint.clone());
        Ok(())
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, LedgerError> {
        Ok(self.state.lock().checkpoints.clone())
    }
}
