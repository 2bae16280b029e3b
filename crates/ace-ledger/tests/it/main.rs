//! The one integration-test binary of `ace-ledger`, over real files in temporary directories.
//!
//! Module index:
//! - `anchor`: the ledger checked against checkpoints kept outside it (rollbacks with their
//!   checkpoints, rewritten tails), and the file and PostgreSQL witnesses that keep them;
//! - `reference`: an independent RFC 6962 implementation written straight from the RFC (naive
//!   recursive MTH, PATH, PROOF, and root-recomputing verifiers) — it never calls the crate;
//! - `vectors`: the published RFC 6962 / Certificate Transparency test vectors;
//! - `proofs`: every inclusion and consistency proof of a real ledger up to 64 entries checked
//!   against `reference`;
//! - `tamper`: edit, drop, reorder, append, truncate, forge checkpoints on the file and check that
//!   `verify_dir` names each;
//! - `durability`: reopen continues the chain, a torn last line is moved aside and reported;
//! - `api`: entry queries, checkpoint policy, the in-memory store;
//! - `sync`: `LedgerSync::Interval` — written at once, synced when due, always before a
//!   checkpoint (a simulated power loss never takes a covered entry);
//! - `postgres`: the ledger on `PostgresStore` against a real server (skips loudly without one);
//! - `support`: shared helpers (a ledger on a manual clock, line-level file surgery).

mod anchor;
mod api;
mod durability;
mod postgres;
mod proofs;
mod reference;
mod support;
mod sync;
mod tamper;
mod vectors;
