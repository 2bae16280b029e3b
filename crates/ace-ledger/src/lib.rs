//! `ace-ledger` (layer L2): the tamper-evident ledger of ACE::COMMS. Every governance decision
//! on a message (accepted, denied, held, approved, rejected, expired, dead-lettered), every
//! configuration change and every workflow run becomes an [`Entry`] that nobody can quietly
//! rewrite.
//!
//! - [`Entry`], [`NewEntry`], [`EntryKind`] and the exact hashed bytes — `entry.rs`;
//! - [`Hash`]: SHA-256, hex on the wire — `hash.rs`;
//! - [`merkle`]: RFC 6962 leaf/node hashes, [`Frontier`], [`Tree`], proof generation and
//!   verification — `merkle.rs`; [`InclusionProof`], [`ConsistencyProof`] — `proof.rs`;
//! - [`Checkpoint`], [`LedgerKey`]: Ed25519-signed tree heads and the key files — `checkpoint.rs`;
//! - [`LedgerStore`], [`FileStore`] (default, `<data>/ledger/`), [`PostgresStore`],
//!   [`MemoryStore`] — `store/`;
//! - [`Ledger`]: append, checkpoint, prove, query; `Send + Sync` — `ledger.rs`;
//! - [`verify_dir`] (files), [`verify_postgres`] (a [`PostgresStore`]) → [`VerifyReport`]: the
//!   offline check naming the first bad entry, and [`verify_anchors_dir`] /
//!   [`verify_anchors_postgres`]: the ledger checked against checkpoints kept outside it
//!   ([`Anchor`]), with a consistency proof — `verify.rs`;
//! - [`Witnesses`], [`FileWitness`], [`PostgresWitness`]: every signed checkpoint also sent
//!   outside the data directory, never holding up an append — `witness.rs`.
//!
//! ```
//! use ace_ledger::{EntryKind, Ledger, LedgerOptions, NewEntry, verify_dir};
//!
//! let data = tempfile::tempdir()?;
//! let ledger = Ledger::open(data.path(), LedgerOptions::default())?;
//! let entry = ledger.append(NewEntry::new(EntryKind::Accepted, "alice", "ace.comms.demo").decision("allow"))?;
//! let checkpoint = ledger.checkpoint()?;
//! ledger.inclusion_proof(entry.seq, checkpoint.size)?.verify(&checkpoint.root_hash)?;
//! assert!(verify_dir(data.path()).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Invariants
//!
//! - `seq` is 0-based, gap-free and equal to the entry's Merkle leaf index.
//! - `chain_hash(seq) = SHA-256(chain_hash(seq - 1) || leaf_bytes)`, with 32 zero bytes before
//!   seq 0; leaf bytes are the canonical JSON of the nine entry fields ([`entry`] documents them).
//! - Leaf hash `SHA-256(0x00 || leaf_bytes)`, node hash `SHA-256(0x01 || left || right)`, tree
//!   heads per RFC 6962 §2.1; the empty tree's head is `SHA-256()`.
//! - An append is acknowledged only once durable (fsync per batch) under [`LedgerSync::Always`]
//!   (the default); under [`LedgerSync::Interval`] once written (it survives a crash of the
//!   process), durable within the interval. Either way every entry a checkpoint covers is
//!   durable before the checkpoint is signed. A torn last line is never an acknowledged entry
//!   and is moved aside and reported, never silently dropped.
//! - A checkpoint signs `(size, root_hash, chain_head, ts, key_id)` with Ed25519 under a domain
//!   prefix ([`checkpoint`] documents the bytes); checkpoint sizes never decrease.
//! - The ledger refuses to open (and so to append) on a broken chain or a checkpoint that does not
//!   match its entries.
//! - A checkpoint handed to [`Witnesses`] never waits for them: a failing witness is retried
//!   with the latest checkpoint, counted, and never fails an append or a checkpoint. What the
//!   ledger alone cannot show — a rollback of entries together with their checkpoints, or
//!   entries rewritten after the last checkpoint — shows against a checkpoint kept outside it
//!   ([`verify_anchors_dir`], [`Ledger::check_anchor`]).
//! - Memory: the ledger keeps every leaf hash and complete subtree hash (~64 bytes per entry) and
//!   one 8-byte file offset per entry; entries themselves are read from the store on demand.

pub mod checkpoint;
pub mod entry;
mod error;
mod hash;
mod ledger;
pub mod merkle;
mod proof;
pub mod store;
mod verify;
pub mod witness;

pub use checkpoint::{Checkpoint, LedgerKey};
pub use entry::{Entry, EntryKind, NewEntry};
pub use error::LedgerError;
pub use hash::Hash;
pub use ledger::{Ledger, LedgerOptions, LedgerSync, ledger_dir};
pub use merkle::{Frontier, ProofError, Tree};
pub use proof::{ConsistencyProof, InclusionProof};
pub use store::{EntryFilter, FileStore, LedgerStore, MemoryStore, PostgresStore};
pub use verify::{
    Anchor, AnchorCheck, AnchorProblem, AnchorReport, Problem, VerifyReport, verify_anchors_dir,
    verify_anchors_postgres, verify_dir, verify_dir_with_key, verify_postgres,
};
pub use witness::{
    FileWitness, PostgresWitness, Witness, WitnessOptions, WitnessStats, Witnesses,
    read_witness_file, read_witness_postgres,
};
