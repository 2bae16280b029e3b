//! `ace-workflows`: the event-triggered orchestration layer of ACE::COMMS.
//!
//! - [`format`] — the YAML workflow format (serde types); `contracts/orchestration/workflow.schema.json`
//!   is its JSON Schema.
//! - [`validate`] — loading one file: schema check, then what a schema cannot check; every
//!   [`Problem`] names file, workflow and JSON path.
//! - [`registry`] — the directory of files, indexed by trigger, hot reloaded with the last good
//!   version of a broken file kept, run-time enable/disable.
//! - [`router`] and [`filters`] — which workflows an event starts: comparisons, deltas, token
//!   buckets, debounce, dedup, multi-event conditions ([`expr`]), every drop counted by reason.
//! - [`template`] — minijinja over `payload`, `event`, `steps.<action>.result`, `events.<name>`.
//! - [`engine`] — runs as journaled state machines over injected [`Effects`] (kernel
//!   request/reply, webhook, emit, lifecycle events).
//! - [`state`] — the redb store of filter state, run journals and switches; [`stats`] — counters
//!   and latency percentiles.
//!
//! # Invariants
//!
//! - A workflow file is either loaded whole or refused whole with every problem; a refused
//!   edit leaves the file's last good version running.
//! - Nothing here touches the bus, a socket or the system clock: effects go through
//!   [`Effects`], time through `ace_envelope::Clock`, so the server decides under which
//!   principal and pipeline every effect runs.
//! - Filter state, routing decisions, run journals and switches are durable in [`State`]
//!   before the engine returns, so a trigger acknowledged after [`Engine::handle`] is never
//!   lost and a completed action is never repeated by a redelivery or a resume.
//! - Routing an event no workflow names is one hash lookup plus the glob list, with no state
//!   access.

pub mod effects;
pub mod engine;
pub mod error;
pub mod event;
pub mod expr;
pub mod filters;
pub mod format;
pub mod path;
pub mod registry;
pub mod router;
pub mod state;
pub mod stats;
pub mod template;
pub mod validate;

pub use effects::{Call, Effects, Lifecycle, WebhookRequest};
pub use engine::{Engine, RunStatus, RunSummary, run_id};
pub use error::{LoadError, Problem, RunError, StateError};
pub use event::Event;
pub use format::{Workflow, WorkflowFile, principal_of};
pub use registry::{Registry, ReloadReport, Snapshot, validate_dir};
pub use router::{Fire, Router};
pub use state::State;
pub use stats::{Stats, StatsSnapshot, WorkflowCounts};
