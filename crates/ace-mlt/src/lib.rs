//! `ace-mlt` (layer L3): the ML kernel (MLT: memory, learning, trust) of
//! `contracts/ml/` — experiences in, insights out, adaptation plans through governance,
//! hash-verified snapshots and rollback. It knows no transport and no bus: the server maps its
//! HTTP routes onto [`Kernel`] and publishes its events through the injected [`Publisher`],
//! which goes through the governed command path.
//!
//! - `kernel`: [`Kernel`] — [`Kernel::submit_experience`], [`Kernel::insights`],
//!   [`Kernel::propose`], [`Kernel::decided`], [`Kernel::plan_status`],
//!   [`Kernel::export_snapshot`], [`Kernel::rollback`], [`Kernel::health`].
//! - `insights`: the rules (metric drift by PSI with a KS confidence, p95 latency regression,
//!   fairness gap, compliance flags) as pure functions over a series' windows.
//! - `stats`: PSI, the two-sample Kolmogorov–Smirnov test, percentiles.
//! - `events`: one [`EventKind`] per event of `ml_events.json` with its catalogued subject and
//!   contract; [`Publisher`] and [`Submitted`].
//! - `state`: the MLT and governance states, their canonical SHA-256, snapshot documents, and
//!   what each plan action changes.
//! - `store`: the [`Store`] trait, [`RedbStore`] (embedded) and [`PostgresStore`]
//!   (`contracts/ml/ml_database_schema.sql` as migration 1, versioned migrations at open).
//! - `contracts`: every body checked against its contract, compiled once.
//! - `config`: [`MltConfig`], the rules' thresholds and windows and the EHI of each risk level.
//!
//! # Invariants
//!
//! - Nothing is stored that breaks its contract: experiences, plans, insights and snapshots are
//!   validated before they are written, and a refusal lists every violation with its pointers.
//! - Every event payload is built to its `ml_events.json` definition and named by its registry
//!   reference, so the publisher's contract step checks it again.
//! - A plan is applied only after governance approved it (policy, and a human when its EHI
//!   reaches the threshold), and only after the MLT state was snapshotted, so each applied plan
//!   has a rollback point.
//! - A snapshot is restored only if the SHA-256 of its canonical state equals its recorded
//!   `state_hash`; otherwise the rollback completes as `failed` and nothing changes.
//! - Writes are serialised (one lock), so the insight rules and state changes never interleave.

mod config;
mod contracts;
mod error;
pub mod events;
pub mod insights;
mod kernel;
pub mod state;
pub mod stats;
pub mod store;

pub use config::{EhiByRisk, MltConfig, PostgresConfig, StoreKind};
pub use contracts::{Contracts, api_document, schemas_document};
pub use error::MltError;
pub use events::{Event, EventKind, Publisher, Submitted};
pub use kernel::{Decision, Kernel, POLICY_APPROVER, iso, principal};
pub use store::{PostgresStore, RedbStore, Store};
