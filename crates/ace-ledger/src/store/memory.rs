//! [`MemoryStore`]: a [`LedgerStore`] in memory, for tests of callers (the pipeline, the HTTP
//! API). Clones share one state, so a test can drop a ledger and "reopen" it on the same store.

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
    checkpoints: Vec<Checkpoint>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
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

    fn append(&mut self, entries: &[Entry]) -> Result<(), LedgerError> {
        self.state.lock().entries.extend_from_slice(entries);
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
