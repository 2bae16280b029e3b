//! [`Ledger`]: the thread-safe front of the crate — sequencing, chaining and Merkle-hashing
//! appended entries, signing checkpoints, and answering proof and query calls.
//!
//! One `parking_lot::Mutex` guards the store and the in-memory tree: appends are serialized
//! anyway (each needs the previous chain hash), and holding the lock across the store's fsync is
//! what makes an acknowledged entry's position final. Batches ([`Ledger::append_batch`]) share
//! one fsync. Calls block (file I/O); async callers use `spawn_blocking`.
//!
//! [`LedgerSync`] says when appends are made durable: every batch (`Always`, the default), or
//! once an interval has passed since the last sync (`Interval`) — and in both modes before a
//! checkpoint is signed, so a signed checkpoint never covers an entry a power loss could take.
//!
//! With [`Ledger::set_witnesses`], every signed checkpoint is also offered to witnesses outside
//! the store ([`crate::witness`]); the offer never waits, so a slow or failing witness never
//! holds up an append or a checkpoint.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ace_envelope::{Clock, SystemClock};
use chrono::{DateTime, TimeDelta, Utc};
use ed25519_dalek::VerifyingKey;
use parking_lot::Mutex;

use crate::checkpoint::{Checkpoint, LedgerKey};
use crate::entry::{Entry, NewEntry};
use crate::error::LedgerError;
use crate::hash::Hash;
use crate::merkle::Tree;
use crate::proof::{ConsistencyProof, InclusionProof};
use crate::store::{EntryFilter, FileStore, LedgerStore};
use crate::verify::AnchorProblem;
use crate::witness::Witnesses;

/// The ledger's directory under a data directory: `<data>/ledger`.
pub fn ledger_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("ledger")
}

/// How a ledger stamps entries and when it checkpoints.
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// [`Ledger::maybe_checkpoint`] signs once this many entries are not yet covered.
    pub checkpoint_every_entries: u64,
    /// … or once the last checkpoint is this old (and some entry is not yet covered).
    pub checkpoint_interval: TimeDelta,
    /// The time written into entries and into [`Ledger::checkpoint`], and the one
    /// [`LedgerSync::Interval`] is measured on.
    pub clock: Arc<dyn Clock>,
    /// When appends are made durable.
    pub sync: LedgerSync,
}

/// When the ledger makes appended entries durable (`fdatasync` for the file store, a
/// synchronous commit for PostgreSQL) — the operator's trade of durability for throughput, like
/// a stream's `sync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LedgerSync {
    /// Every append batch is durable before it returns (the default).
    #[default]
    Always,
    /// An append batch is written and returns at once: it survives a crash of the process
    /// (e.g. SIGKILL), not a power loss or an operating-system crash. It is made durable with
    /// the first append once this long has passed since the last sync, by
    /// [`Ledger::sync_if_due`] (a caller's timer for an idle ledger), and always before a
    /// checkpoint is signed. A power loss loses at most the entries of about one interval, and
    /// never one that a signed checkpoint covers.
    Interval(Duration),
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            checkpoint_every_entries: 1000,
            checkpoint_interval: TimeDelta::seconds(60),
            clock: Arc::new(SystemClock),
            sync: LedgerSync::Always,
        }
    }
}

/// A tamper-evident, append-only ledger. `Send + Sync`; share it as `Arc<Ledger>`.
#[derive(Debug)]
pub struct Ledger {
    state: Mutex<State>,
    key: LedgerKey,
    options: LedgerOptions,
    /// Where every signed checkpoint is also sent ([`Ledger::set_witnesses`]).
    witnesses: OnceLock<Witnesses>,
}

#[derive(Debug)]
struct State {
    store: Box<dyn LedgerStore>,
    tree: Tree,
    chain_head: Hash,
    latest: Option<Checkpoint>,
    /// How many entries are durable (the rest were appended without sync since).
    durable: u64,
    /// When the store last synced (on the ledger's clock).
    last_sync: DateTime<Utc>,
}

impl Ledger {
    /// Opens (creating if needed) the file ledger under `<data_dir>/ledger/` with its signing key.
    pub fn open(data_dir: &Path, options: LedgerOptions) -> Result<Ledger, LedgerError> {
        let dir = ledger_dir(data_dir);
        let store = FileStore::open(&dir)?;
        let key = LedgerKey::load_or_create(&dir)?;
        Ledger::with_store(Box::new(store), key, options)
    }

    /// A ledger over any store. Replays it, re-checking every chain link and the latest
    /// checkpoint; refuses ([`LedgerError::Corrupt`]) to append onto a broken ledger.
    pub fn with_store(
        mut store: Box<dyn LedgerStore>,
        key: LedgerKey,
        options: LedgerOptions,
    ) -> Result<Ledger, LedgerError> {
        let latest = store.checkpoints()?.pop();
        let covered = latest.as_ref().map_or(0, |cp| cp.size);
        let (mut tree, mut chain_head, mut head_at_checkpoint) =
            (Tree::new(), Hash::ZERO, Hash::ZERO);
        store.replay(&mut |entry| {
            let seq = tree.size();
            if entry.seq != seq {
                return Err(corrupt(
                    seq,
                    format!("found seq {} in its place", entry.seq),
                ));
            }
            if !entry.chains_from(&chain_head) {
                return Err(corrupt(seq, "chain hash mismatch".to_owned()));
            }
            tree.push(entry.leaf_hash());
            chain_head = entry.chain_hash;
            if tree.size() == covered {
                head_at_checkpoint = chain_head;
            }
            Ok(())
        })?;
        if let Some(cp) = &latest {
            check_checkpoint(cp, &tree, head_at_checkpoint, &key)?;
        }
        // What a crashed process left unsynced becomes durable before anything builds on it.
        store.sync()?;
        Ok(Ledger {
            state: Mutex::new(State {
                store,
                durable: tree.size(),
                tree,
                chain_head,
                latest,
                last_sync: options.clock.now(),
            }),
            key,
            options,
            witnesses: OnceLock::new(),
        })
    }

    /// Sends every checkpoint signed from now on — and the latest one now, if any — to
    /// `witnesses` (never waiting for them). Set once; a second call hands `witnesses` back.
    pub fn set_witnesses(&self, witnesses: Witnesses) -> Result<(), Witnesses> {
        self.witnesses.set(witnesses)?;
        if let (Some(w), Some(cp)) = (self.witnesses.get(), self.latest_checkpoint()) {
            w.offer(&cp);
        }
        Ok(())
    }

    /// The witnesses checkpoints are sent to, if any.
    pub fn witnesses(&self) -> Option<&Witnesses> {
        self.witnesses.get()
    }

    /// Appends one entry; it is durable when this returns under [`LedgerSync::Always`], written
    /// (durable within the interval) under [`LedgerSync::Interval`].
    pub fn append(&self, entry: NewEntry) -> Result<Entry, LedgerError> {
        let mut sealed = self.append_batch(vec![entry])?;
        sealed
            .pop()
            .ok_or_else(|| corrupt(self.size(), "empty batch".to_owned()))
    }

    /// Appends entries with one write (group commit) and, when [`LedgerSync`] says so, one
    /// sync; all or none are recorded.
    pub fn append_batch(&self, entries: Vec<NewEntry>) -> Result<Vec<Entry>, LedgerError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ts = self.options.clock.now();
        let mut state = self.state.lock();
        let (mut seq, mut prev) = (state.tree.size(), state.chain_head);
        let mut sealed = Vec::with_capacity(entries.len());
        let mut leaves = Vec::with_capacity(entries.len());
        for new in entries {
            let (entry, leaf) = Entry::seal_with_leaf(new, seq, ts, prev);
            leaves.push(leaf);
            (seq, prev) = (seq + 1, entry.chain_hash);
            sealed.push(entry);
        }
        let sync = match self.options.sync {
            LedgerSync::Always => true,
            LedgerSync::Interval(every) => sync_due(&state, ts, every),
        };
        state.store.append(&sealed, sync)?;
        leaves.into_iter().for_each(|leaf| state.tree.push(leaf));
        state.chain_head = prev;
        if sync {
            (state.durable, state.last_sync) = (seq, ts);
        }
        Ok(sealed)
    }

    /// Makes every appended entry durable now (nothing to do when all are).
    pub fn sync(&self) -> Result<(), LedgerError> {
        let now = self.options.clock.now();
        sync_locked(&mut self.state.lock(), now)
    }

    /// Under [`LedgerSync::Interval`], syncs if some entry is not durable and the interval has
    /// passed since the last sync; says whether it synced.
    pub fn sync_if_due(&self) -> Result<bool, LedgerError> {
        let LedgerSync::Interval(every) = self.options.sync else {
            return Ok(false);
        };
        let now = self.options.clock.now();
        let mut state = self.state.lock();
        if state.durable == state.tree.size() || !sync_due(&state, now, every) {
            return Ok(false);
        }
        sync_locked(&mut state, now).map(|()| true)
    }

    /// How long until [`Ledger::sync_if_due`] has something to do: `None` when every entry is
    /// durable (or under [`LedgerSync::Always`]), zero when a sync is overdue.
    pub fn next_sync_in(&self) -> Option<Duration> {
        let LedgerSync::Interval(every) = self.options.sync else {
            return None;
        };
        let state = self.state.lock();
        if state.durable == state.tree.size() {
            return None;
        }
        let since = (self.options.clock.now() - state.last_sync)
            .to_std()
            .unwrap_or(Duration::ZERO);
        Some(every.saturating_sub(since))
    }

    /// How many entries are durable: every one under [`LedgerSync::Always`]; under
    /// [`LedgerSync::Interval`], those up to the last sync. Every checkpoint's size is at most this.
    pub fn durable_size(&self) -> u64 {
        self.state.lock().durable
    }

    /// When appends are made durable.
    pub fn sync_mode(&self) -> LedgerSync {
        self.options.sync
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.state.lock().tree.size()
    }

    /// Chain hash of the last entry ([`Hash::ZERO`] when empty).
    pub fn chain_head(&self) -> Hash {
        self.state.lock().chain_head
    }

    /// The RFC 6962 tree head at `size` (any size up to the current one).
    pub fn tree_head(&self, size: u64) -> Result<Hash, LedgerError> {
        let state = self.state.lock();
        state.tree.root(size).ok_or(LedgerError::OutOfRange {
            what: "tree_size",
            value: size,
            size: state.tree.size(),
        })
    }

    /// Signs and stores a checkpoint of the current state, stamped with the ledger's clock.
    pub fn checkpoint(&self) -> Result<Checkpoint, LedgerError> {
        let now = self.options.clock.now();
        self.checkpoint_locked(&mut self.state.lock(), now)
    }

    /// Checkpoints if [`LedgerOptions`] says it is due at `now`: some entry is uncovered and
    /// either enough entries are uncovered or the last checkpoint is old enough (or there is none).
    pub fn maybe_checkpoint(&self, now: DateTime<Utc>) -> Result<Option<Checkpoint>, LedgerError> {
        let mut state = self.state.lock();
        let size = state.tree.size();
        let due = match &state.latest {
            None => size > 0,
            Some(cp) => {
                size > cp.size
                    && (size - cp.size >= self.options.checkpoint_every_entries
                        || now - cp.ts >= self.options.checkpoint_interval)
            }
        };
        if !due {
            return Ok(None);
        }
        self.checkpoint_locked(&mut state, now).map(Some)
    }

    fn checkpoint_locked(
        &self,
        state: &mut State,
        now: DateTime<Utc>,
    ) -> Result<Checkpoint, LedgerError> {
        let size = state.tree.size();
        let root = state
            .tree
            .root(size)
            .unwrap_or_else(crate::merkle::empty_root);
        // Never sign for an entry a power loss could still take.
        sync_locked(state, now)?;
        let checkpoint = self.key.sign(size, root, state.chain_head, now);
        state.store.append_checkpoint(&checkpoint)?;
        state.latest = Some(checkpoint.clone());
        if let Some(witnesses) = self.witnesses.get() {
            witnesses.offer(&checkpoint);
        }
        Ok(checkpoint)
    }

    /// Checks that this ledger extends `checkpoint` — one kept outside it, by a witness or an
    /// operator: signed by this ledger's key, covering no more entries than the ledger holds,
    /// and the RFC 6962 consistency proof from its tree to the current tree verifies. The same
    /// checks as [`crate::verify_anchors_dir`], on the tree in memory.
    pub fn check_anchor(&self, checkpoint: &Checkpoint) -> Result<(), AnchorProblem> {
        checkpoint
            .verify_signature(&self.key.verifying_key())
            .map_err(AnchorProblem::Signature)?;
        let state = self.state.lock();
        let (size, entries) = (checkpoint.size, state.tree.size());
        if size > entries {
            return Err(AnchorProblem::RolledBack { size, entries });
        }
        let diverged = |reason: String| AnchorProblem::Diverged {
            size,
            entries,
            reason,
        };
        let current = state
            .tree
            .root(entries)
            .unwrap_or_else(crate::merkle::empty_root);
        let proof = state
            .tree
            .consistency_proof(size, entries)
            .ok_or_else(|| diverged("no consistency proof between these sizes".to_owned()))?;
        crate::merkle::verify_consistency(size, entries, &checkpoint.root_hash, &current, &proof)
            .map_err(|e| diverged(e.to_string()))
    }

    /// The most recent checkpoint (`GET /api/v1/ledger/checkpoint`).
    pub fn latest_checkpoint(&self) -> Option<Checkpoint> {
        self.state.lock().latest.clone()
    }

    /// Every stored checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, LedgerError> {
        self.state.lock().store.checkpoints()
    }

    /// Proof that entry `seq` is in the tree of `tree_size` entries.
    pub fn inclusion_proof(&self, seq: u64, tree_size: u64) -> Result<InclusionProof, LedgerError> {
        let state = self.state.lock();
        let size = state.tree.size();
        let out_of_range = |what, value| LedgerError::OutOfRange { what, value, size };
        if tree_size > size {
            return Err(out_of_range("tree_size", tree_size));
        }
        let path = state
            .tree
            .inclusion_path(seq, tree_size)
            .ok_or_else(|| out_of_range("seq", seq))?;
        Ok(InclusionProof {
            seq,
            tree_size,
            leaf_hash: state
                .tree
                .leaf(seq)
                .ok_or_else(|| out_of_range("seq", seq))?,
            root_hash: state
                .tree
                .root(tree_size)
                .ok_or_else(|| out_of_range("tree_size", tree_size))?,
            path,
        })
    }

    /// Proof that the tree of `from` entries is a prefix of the tree of `to` entries.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<ConsistencyProof, LedgerError> {
        let state = self.state.lock();
        let size = state.tree.size();
        let out_of_range = |what, value| LedgerError::OutOfRange { what, value, size };
        if to > size {
            return Err(out_of_range("to", to));
        }
        let path = state
            .tree
            .consistency_proof(from, to)
            .ok_or_else(|| out_of_range("from", from))?;
        Ok(ConsistencyProof {
            from,
            to,
            from_root: state
                .tree
                .root(from)
                .ok_or_else(|| out_of_range("from", from))?,
            to_root: state.tree.root(to).ok_or_else(|| out_of_range("to", to))?,
            path,
        })
    }

    /// The entry at `seq`.
    pub fn entry(&self, seq: u64) -> Result<Option<Entry>, LedgerError> {
        self.state.lock().store.get(seq)
    }

    /// Entries matching `filter` (`GET /api/v1/ledger/entries?kind=&since=&until=`).
    pub fn entries(&self, filter: &EntryFilter) -> Result<Vec<Entry>, LedgerError> {
        self.state.lock().store.scan(filter)
    }

    /// The public key checkpoints verify with.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// The key id written into checkpoints.
    pub fn key_id(&self) -> &str {
        self.key.key_id()
    }
}

/// Whether `every` has passed at `now` since the last sync.
fn sync_due(state: &State, now: DateTime<Utc>, every: Duration) -> bool {
    (now - state.last_sync).to_std().unwrap_or(Duration::ZERO) >= every
}

/// Syncs the store if some entry is not durable yet.
fn sync_locked(state: &mut State, now: DateTime<Utc>) -> Result<(), LedgerError> {
    if state.durable < state.tree.size() {
        state.store.sync()?;
        state.durable = state.tree.size();
    }
    state.last_sync = now;
    Ok(())
}

fn corrupt(seq: u64, reason: String) -> LedgerError {
    LedgerError::Corrupt { seq, reason }
}

/// The latest checkpoint must be signed by our key and match the replayed tree and chain
/// (`chain_at` is the chain hash of entry `cp.size - 1`).
fn check_checkpoint(
    cp: &Checkpoint,
    tree: &Tree,
    chain_at: Hash,
    key: &LedgerKey,
) -> Result<(), LedgerError> {
    let size = tree.size();
    let bad = |reason: String| corrupt(cp.size.min(size), reason);
    cp.verify_signature(&key.verifying_key())
        .map_err(|e| bad(format!("latest checkpoint (size {}): {e}", cp.size)))?;
    if cp.size > size {
        return Err(bad(format!(
            "latest checkpoint covers {} entries but only {size} are stored (truncated)",
            cp.size
        )));
    }
    if tree.root(cp.size) != Some(cp.root_hash) {
        return Err(bad(format!(
            "root at size {} differs from the latest checkpoint",
            cp.size
        )));
    }
    if chain_at != cp.chain_head {
        return Err(bad(format!(
            "chain hash at size {} differs from the latest checkpoint",
            cp.size
        )));
    }
    Ok(())
}
