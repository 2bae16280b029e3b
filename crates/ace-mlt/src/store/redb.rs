//! [`RedbStore`]: the embedded store, one redb database file (`mlt.redb` under the server's
//! data directory). Each table maps text keys to JSON bytes; the series and insight tables are
//! keyed by fixed-width timestamps so a range scan reads them in time order.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::Value;

use super::{ExperienceRecord, PlanRecord, SnapshotRecord, Store, Windows, ts_key};
use crate::MltError;

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

const EXPERIENCES: Table = TableDefinition::new("experiences");
/// `series/ts/id` → experience document.
const SERIES: Table = TableDefinition::new("series");
const SERIES_COUNT: TableDefinition<'static, &'static str, u64> =
    TableDefinition::new("series_count");
/// `ts/id` → insight document.
const INSIGHTS: Table = TableDefinition::new("insights");
const ALERTS: Table = TableDefinition::new("alerts");
const PLANS: Table = TableDefinition::new("plans");
const PLAN_APPROVALS: Table = TableDefinition::new("plan_approvals");
const SNAPSHOTS: Table = TableDefinition::new("snapshots");
/// `kind/state_hash` → snapshot id.
const SNAPSHOT_HASHES: Table = TableDefinition::new("snapshot_hashes");
const STATE: Table = TableDefinition::new("state");
const IDEMPOTENCY: Table = TableDefinition::new("idempotency");

const TABLES: [Table; 10] = [
    EXPERIENCES,
    SERIES,
    INSIGHTS,
    ALERTS,
    PLANS,
    PLAN_APPROVALS,
    SNAPSHOTS,
    SNAPSHOT_HASHES,
    STATE,
    IDEMPOTENCY,
];

/// The embedded store; cheap to clone.
#[derive(Debug, Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

fn err(op: &'static str) -> impl Fn(&dyn std::fmt::Display) -> MltError {
    move |e| MltError::store(op, e)
}

fn json(bytes: &[u8], op: &'static str) -> Result<Value, MltError> {
    serde_json::from_slice(bytes).map_err(|e| MltError::store(op, e))
}

fn bytes(value: &impl serde::Serialize) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

impl RedbStore {
    /// Opens (creating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, MltError> {
        let e = err("open");
        let db = Database::create(path).map_err(|x| e(&x))?;
        let txn = db.begin_write().map_err(|x| e(&x))?;
        for table in TABLES {
            txn.open_table(table).map_err(|x| e(&x))?;
        }
        txn.open_table(SERIES_COUNT).map_err(|x| e(&x))?;
        txn.commit().map_err(|x| e(&x))?;
        Ok(RedbStore { db: Arc::new(db) })
    }

    fn get(&self, table: Table, key: &str, op: &'static str) -> Result<Option<Value>, MltError> {
        let e = err(op);
        let txn = self.db.begin_read().map_err(|x| e(&x))?;
        let table = txn.open_table(table).map_err(|x| e(&x))?;
        let found = table.get(key).map_err(|x| e(&x))?;
        found.map(|v| json(v.value(), op)).transpose()
    }

    fn put(&self, table: Table, key: &str, value: &[u8], op: &'static str) -> Result<(), MltError> {
        let e = err(op);
        let txn = self.db.begin_write().map_err(|x| e(&x))?;
        txn.open_table(table)
            .map_err(|x| e(&x))?
            .insert(key, value)
            .map_err(|x| e(&x))?;
        txn.commit().map_err(|x| e(&x))
    }

    fn typed<T: serde::de::DeserializeOwned>(
        value: Option<Value>,
        op: &'static str,
    ) -> Result<Option<T>, MltError> {
        value
            .map(|v| serde_json::from_value(v).map_err(|e| MltError::store(op, e)))
            .transpose()
    }
}

impl Store for RedbStore {
    fn insert_experience(&self, record: &ExperienceRecord) -> Result<bool, MltError> {
        let e = err("insert_experience");
        let txn = self.db.begin_write().map_err(|x| e(&x))?;
        {
            let mut experiences = txn.open_table(EXPERIENCES).map_err(|x| e(&x))?;
            if experiences
                .get(record.experience_id.as_str())
                .map_err(|x| e(&x))?
                .is_some()
            {
                return Ok(false);
            }
            let doc = bytes(&record.document);
            experiences
                .insert(record.experience_id.as_str(), doc.as_slice())
                .map_err(|x| e(&x))?;
            let key = format!(
                "{}/{}/{}",
                record.series,
                ts_key(record.ts),
                record.experience_id
            );
            let mut series = txn.open_table(SERIES).map_err(|x| e(&x))?;
            series
                .insert(key.as_str(), doc.as_slice())
                .map_err(|x| e(&x))?;
            let mut counts = txn.open_table(SERIES_COUNT).map_err(|x| e(&x))?;
            let count = counts
                .get(record.series.as_str())
                .map_err(|x| e(&x))?
                .map_or(0, |v| v.value());
            counts
                .insert(record.series.as_str(), count + 1)
                .map_err(|x| e(&x))?;
        }
        txn.commit().map_err(|x| e(&x))?;
        Ok(true)
    }

    fn windows(&self, series: &str, baseline: usize, current: usize) -> Result<Windows, MltError> {
        let op = "windows";
        let e = err(op);
        let txn = self.db.begin_read().map_err(|x| e(&x))?;
        let total = txn
            .open_table(SERIES_COUNT)
            .map_err(|x| e(&x))?
            .get(series)
            .map_err(|x| e(&x))?
            .map_or(0, |v| v.value());
        let table = txn.open_table(SERIES).map_err(|x| e(&x))?;
        // '/' + 1 is '0': the range of every key starting with "series/".
        let (start, end) = (format!("{series}/"), format!("{series}0"));
        let range = || table.range(start.as_str()..end.as_str()).map_err(|x| e(&x));
        let read = |entry: Result<_, redb::StorageError>| -> Result<Value, MltError> {
            let (_, v): (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &[u8]>) =
                entry.map_err(|x| e(&x))?;
            json(v.value(), op)
        };
        let first = range()?
            .take(baseline)
            .map(read)
            .collect::<Result<_, _>>()?;
        let mut last = range()?
            .rev()
            .take(current)
            .map(read)
            .collect::<Result<Vec<_>, _>>()?;
        last.reverse();
        Ok(Windows {
            baseline: first,
            current: last,
            total,
        })
    }

    fn insert_insight(
        &self,
        id: &str,
        ts: DateTime<Utc>,
        document: &Value,
    ) -> Result<(), MltError> {
        let key = format!("{}/{id}", ts_key(ts));
        self.put(INSIGHTS, &key, &bytes(document), "insert_insight")
    }

    fn insights_since(&self, since: DateTime<Utc>, limit: usize) -> Result<Vec<Value>, MltError> {
        let op = "insights_since";
        let e = err(op);
        let txn = self.db.begin_read().map_err(|x| e(&x))?;
        let table = txn.open_table(INSIGHTS).map_err(|x| e(&x))?;
        let start = ts_key(since);
        let mut out = Vec::new();
        for entry in table
            .range(start.as_str()..)
            .map_err(|x| e(&x))?
            .take(limit)
        {
            let (_, v) = entry.map_err(|x| e(&x))?;
            out.push(json(v.value(), op)?);
        }
        Ok(out)
    }

    fn open_alert(&self, key: &str) -> Result<Option<String>, MltError> {
        Self::typed(self.get(ALERTS, key, "open_alert")?, "open_alert")
    }

    fn set_alert(&self, key: &str, insight_id: Option<&str>) -> Result<(), MltError> {
        let e = err("set_alert");
        let txn = self.db.begin_write().map_err(|x| e(&x))?;
        {
            let mut table = txn.open_table(ALERTS).map_err(|x| e(&x))?;
            match insight_id {
                Some(id) => {
                    table
                        .insert(key, bytes(&id).as_slice())
                        .map_err(|x| e(&x))?;
                }
                None => {
                    table.remove(key).map_err(|x| e(&x))?;
                }
            }
        }
        txn.commit().map_err(|x| e(&x))
    }

    fn plan(&self, id: &str) -> Result<Option<PlanRecord>, MltError> {
        Self::typed(self.get(PLANS, id, "plan")?, "plan")
    }

    fn put_plan(&self, plan: &PlanRecord) -> Result<(), MltError> {
        let e = err("put_plan");
        let txn = self.db.begin_write().map_err(|x| e(&x))?;
        {
            let mut plans = txn.open_table(PLANS).map_err(|x| e(&x))?;
            plans
                .insert(plan.plan_id.as_str(), bytes(plan).as_slice())
                .map_err(|x| e(&x))?;
            if let Some(approval) = &plan.approval_id {
                let mut index = txn.open_table(PLAN_APPROVALS).map_err(|x| e(&x))?;
                index
                    .insert(approval.as_str(), bytes(&plan.plan_id).as_slice())
                    .map_err(|x| e(&x))?;
            }
        }
        txn.commit().map_err(|x| e(&x))
    }

    fn plan_for_approval(&self, approval_id: &str) -> Result<Option<String>, MltError> {
        let op = "plan_for_approval";
        Self::typed(self.get(PLAN_APPROVALS, approval_id, op)?, op)
    }

    fn insert_snapshot(&self, snapshot: &SnapshotRecord) -> Result<(), MltError> {
        let e = err("insert_snapshot");
        let txn = self.db.begin_write().map_err(|x| e(&x))?;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(|x| e(&x))?;
            table
                .insert(snapshot.snapshot_id.as_str(), bytes(snapshot).as_slice())
                .map_err(|x| e(&x))?;
            let key = format!("{}/{}", snapshot.kind, snapshot.state_hash);
            let mut hashes = txn.open_table(SNAPSHOT_HASHES).map_err(|x| e(&x))?;
            hashes
                .insert(key.as_str(), bytes(&snapshot.snapshot_id).as_slice())
                .map_err(|x| e(&x))?;
        }
        txn.commit().map_err(|x| e(&x))
    }

    fn snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, MltError> {
        Self::typed(self.get(SNAPSHOTS, id, "snapshot")?, "snapshot")
    }

    fn snapshot_by_hash(
        &self,
        kind: &str,
        state_hash: &str,
    ) -> Result<Option<SnapshotRecord>, MltError> {
        let op = "snapshot_by_hash";
        let key = format!("{kind}/{state_hash}");
        let id: Option<String> = Self::typed(self.get(SNAPSHOT_HASHES, &key, op)?, op)?;
        match id {
            Some(id) => self.snapshot(&id),
            None => Ok(None),
        }
    }

    fn state(&self, name: &str) -> Result<Option<Value>, MltError> {
        self.get(STATE, name, "state")
    }

    fn put_state(&self, name: &str, state: &Value) -> Result<(), MltError> {
        self.put(STATE, name, &bytes(state), "put_state")
    }

    fn remembered(&self, key: &str) -> Result<Option<Value>, MltError> {
        self.get(IDEMPOTENCY, key, "remembered")
    }

    fn remember(&self, key: &str, answer: &Value) -> Result<(), MltError> {
        if self.remembered(key)?.is_some() {
            return Ok(());
        }
        self.put(IDEMPOTENCY, key, &bytes(answer), "remember")
    }
}
