//! Where the kernel keeps what it learned: the [`Store`] trait and its records, with the
//! embedded [`RedbStore`] and the [`PostgresStore`]. Every method is one atomic step of the store and blocking; the
//! kernel calls them off the async threads.

mod postgres;
mod redb;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use self::postgres::PostgresStore;
pub use self::redb::RedbStore;
use crate::MltError;

/// A plan and where it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// The plan's id.
    pub plan_id: String,
    /// `pending`, `approved`, `rejected` or `applied`.
    pub status: String,
    /// The plan as proposed (valid against `mlt.adaptation_plan`).
    pub plan: Value,
    /// The id of its governance validation.
    pub validation_id: String,
    /// The approval holding its validation, when a human must decide.
    pub approval_id: Option<String>,
    /// When it was proposed.
    pub created_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
    /// When governance decided it (set with the decision).
    pub decided_at: Option<DateTime<Utc>>,
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    /// Its id.
    pub snapshot_id: String,
    /// `governance` or `mlt`.
    pub kind: String,
    /// The `state_hash` it was written with.
    pub state_hash: String,
    /// Where it is exported.
    pub uri: String,
    /// The whole snapshot document (a `GovernanceSnapshot` or `MLTSnapshot`).
    pub document: Value,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
}

/// An experience as stored: the document and the keys it is found by.
#[derive(Debug, Clone, PartialEq)]
pub struct ExperienceRecord {
    /// Its id.
    pub experience_id: String,
    /// The series it belongs to (its model, else its task).
    pub series: String,
    /// Its `timestamp`.
    pub ts: DateTime<Utc>,
    /// The whole validated document.
    pub document: Value,
}

/// The first and last experiences of a series, oldest first, and how many it holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Windows {
    /// The first `baseline` experiences.
    pub baseline: Vec<Value>,
    /// The last `current` experiences.
    pub current: Vec<Value>,
    /// How many the series holds.
    pub total: u64,
}

/// The kernel's persistence. Implementations make each call atomic and durable before it
/// returns.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Stores an experience; `false` when its id is stored already (nothing changes).
    fn insert_experience(&self, record: &ExperienceRecord) -> Result<bool, MltError>;
    /// The first `baseline` and last `current` experiences of `series`, by timestamp.
    fn windows(&self, series: &str, baseline: usize, current: usize) -> Result<Windows, MltError>;
    /// Stores an insight (valid against `mlt.insight`).
    fn insert_insight(&self, id: &str, ts: DateTime<Utc>, document: &Value)
    -> Result<(), MltError>;
    /// Insights with `timestamp >= since`, oldest first, at most `limit`.
    fn insights_since(&self, since: DateTime<Utc>, limit: usize) -> Result<Vec<Value>, MltError>;
    /// The insight id an open condition (`drift:model:metric`) was raised as, if open.
    fn open_alert(&self, key: &str) -> Result<Option<String>, MltError>;
    /// Opens (`Some(insight id)`) or closes (`None`) a condition.
    fn set_alert(&self, key: &str, insight_id: Option<&str>) -> Result<(), MltError>;
    /// The plan `id`.
    fn plan(&self, id: &str) -> Result<Option<PlanRecord>, MltError>;
    /// Inserts or replaces a plan (and indexes its approval id).
    fn put_plan(&self, plan: &PlanRecord) -> Result<(), MltError>;
    /// The plan whose validation approval `approval_id` holds.
    fn plan_for_approval(&self, approval_id: &str) -> Result<Option<String>, MltError>;
    /// Stores a snapshot.
    fn insert_snapshot(&self, snapshot: &SnapshotRecord) -> Result<(), MltError>;
    /// The snapshot `id`.
    fn snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, MltError>;
    /// The snapshot of `kind` taken of the state hashing to `state_hash`, if any.
    fn snapshot_by_hash(
        &self,
        kind: &str,
        state_hash: &str,
    ) -> Result<Option<SnapshotRecord>, MltError>;
    /// The kernel state `name` (`mlt`, `governance`).
    fn state(&self, name: &str) -> Result<Option<Value>, MltError>;
    /// Replaces the kernel state `name`.
    fn put_state(&self, name: &str, state: &Value) -> Result<(), MltError>;
    /// The answer remembered under an idempotency key.
    fn remembered(&self, key: &str) -> Result<Option<Value>, MltError>;
    /// Remembers `answer` under an idempotency key (the first one stays).
    fn remember(&self, key: &str, answer: &Value) -> Result<(), MltError>;
}

/// The sortable text of a timestamp (fixed width, nanoseconds, UTC).
pub(crate) fn ts_key(ts: DateTime<Utc>) -> String {
    ts.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}
