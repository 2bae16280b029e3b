//! The one integration-test binary of `ace-log`. Index:
//! - `api`: append, read, roll, delete, retention, time search and group commit on real files.
//! - `crash`: torn tails cut at every byte and flipped bits, judged against the watermark.
//! - `faults`: injected fsync failures halt the log and are never acknowledged.
//! - `kill`: a child writer SIGKILLed 200 times loses no acknowledged record (self re-exec).
//! - `repair`: each damage kind repaired: the dry run's exact range, no byte changed by it, the
//!   log `ok` after the cut with the cut bytes under `lost/`; a halted log reopened.
//! - `model`: proptest of appends, deletes, retention and reopen against an in-memory model.
//! - `powerloss`: a simulated power cut after every operation of each workload (unsynced writes
//!   dropped or torn per sector); no acknowledged record lost, reordered or given a reused
//!   sequence.
//! - `symlinks`: a linked segment, tombstone file or log directory is refused, its target untouched.

mod api;
mod crash;
mod faults;
mod kill;
mod model;
mod powerloss;
mod repair;
mod symlinks;
