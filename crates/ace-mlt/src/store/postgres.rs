//! [`PostgresStore`]: the kernel's store in PostgreSQL, in a schema of its own. Versioned
//! migrations are applied at open, each once, recorded in `mlt_schema_migrations`: migration 1
//! is `contracts/ml/ml_database_schema.sql` as shipped, migration 2 (`migrations.sql`) adds what
//! the kernel keeps beyond the contract types (plans' validation and approval ids, open
//! conditions, states, idempotency keys). Every document is kept whole in its `jsonb` column,
//! beside the columns the kernel queries on. One connection behind a mutex: the kernel
//! serialises its writes already.

use std::sync::Mutex;

use chrono::{DateTime, Utc};
use postgres::{Client, NoTls};
use serde_json::Value;

use super::{ExperienceRecord, PlanRecord, SnapshotRecord, Store, Windows};
use crate::MltError;

/// The migrations, in order: version and SQL.
const MIGRATIONS: [(i32, &str); 2] = [
    (
        1,
        include_str!("../../../../contracts/ml/ml_database_schema.sql"),
    ),
    (2, include_str!("migrations.sql")),
];

/// The store over one PostgreSQL connection.
pub struct PostgresStore {
    client: Mutex<Conn>,
}

/// The connection, there until the store is dropped.
struct Conn(Option<Client>);

impl std::ops::Deref for Conn {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.0
            .as_ref()
            .expect("the client lives until the store is dropped")
    }
}

impl std::ops::DerefMut for Conn {
    fn deref_mut(&mut self) -> &mut Client {
        self.0
            .as_mut()
            .expect("the client lives until the store is dropped")
    }
}

impl Drop for PostgresStore {
    /// The blocking client closes its connection by running a runtime of its own, which panics
    /// on a thread that drives async tasks (where the kernel is usually dropped): close it on
    /// a thread of its own.
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .take();
        if let Some(client) = client {
            std::thread::spawn(move || drop(client));
        }
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

fn err(op: &'static str) -> impl Fn(postgres::Error) -> MltError {
    move |e| {
        MltError::store(
            op,
            e.as_db_error()
                .map_or_else(|| e.to_string(), |d| d.to_string()),
        )
    }
}

/// Whether `name` is a plain SQL identifier (the schema is put into SQL text).
fn plain(name: &str) -> bool {
    name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl PostgresStore {
    /// Connects to `url`, creates `schema` if missing, and applies the migrations it lacks.
    pub fn open(url: &str, schema: &str) -> Result<Self, MltError> {
        if !plain(schema) {
            return Err(MltError::BadRequest {
                field: "schema",
                reason: format!("`{schema}` is not a lowercase SQL identifier"),
            });
        }
        let mut client = Client::connect(url, NoTls).map_err(err("connect"))?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}; SET search_path TO {schema};
                 CREATE TABLE IF NOT EXISTS mlt_schema_migrations (
                     version integer PRIMARY KEY,
                     applied_at timestamptz NOT NULL DEFAULT now());"
            ))
            .map_err(err("open"))?;
        for (version, sql) in MIGRATIONS {
            let applied = client
                .query_opt(
                    "SELECT 1 FROM mlt_schema_migrations WHERE version = $1",
                    &[&version],
                )
                .map_err(err("migrate"))?
                .is_some();
            if !applied {
                tracing::info!(version, schema, "applying ML store migration");
                client.batch_execute(sql).map_err(err("migrate"))?;
                client
                    .execute(
                        "INSERT INTO mlt_schema_migrations (version) VALUES ($1)",
                        &[&version],
                    )
                    .map_err(err("migrate"))?;
            }
        }
        Ok(PostgresStore {
            client: Mutex::new(Conn(Some(client))),
        })
    }

    fn client(&self) -> std::sync::MutexGuard<'_, Conn> {
        self.client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn documents(
        &self,
        op: &'static str,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Value>, MltError> {
        let rows = self.client().query(sql, params).map_err(err(op))?;
        Ok(rows.iter().map(|r| r.get::<_, Value>(0)).collect())
    }
}

const SERIES: &str = "COALESCE(model_key::text, 'task_' || task::text)";

impl Store for PostgresStore {
    fn insert_experience(&self, record: &ExperienceRecord) -> Result<bool, MltError> {
        let d = &record.document;
        let inserted = self
            .client()
            .execute(
                "INSERT INTO mlt_experiences
                   (experience_id, source, task, env, model_key, ground_truth_lag_s, ts, document)
                 VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6, $7, $8)
                 ON CONFLICT (experience_id) DO NOTHING",
                &[
                    &record.experience_id,
                    &d["source"].as_str(),
                    &d["task"].as_str(),
                    &d["context"]["env"].as_str(),
                    &d["context"]["model_key"].as_str(),
                    &d["ground_truth_lag_s"].as_f64(),
                    &record.ts,
                    d,
                ],
            )
            .map_err(err("insert_experience"))?;
        Ok(inserted == 1)
    }

    fn windows(&self, series: &str, baseline: usize, current: usize) -> Result<Windows, MltError> {
        let (b, c) = (baseline as i64, current as i64);
        let first = self.documents(
            "windows",
            &format!("SELECT document FROM mlt_experiences WHERE {SERIES} = $1::text ORDER BY ts, experience_id LIMIT $2"),
            &[&series, &b],
        )?;
        let mut last = self.documents(
            "windows",
            &format!("SELECT document FROM mlt_experiences WHERE {SERIES} = $1::text ORDER BY ts DESC, experience_id DESC LIMIT $2"),
            &[&series, &c],
        )?;
        last.reverse();
        let total: i64 = self
            .client()
            .query_one(
                &format!("SELECT count(*) FROM mlt_experiences WHERE {SERIES} = $1::text"),
                &[&series],
            )
            .map_err(err("windows"))?
            .get(0);
        Ok(Windows {
            baseline: first,
            current: last,
            total: total as u64,
        })
    }

    fn insert_insight(
        &self,
        id: &str,
        ts: DateTime<Utc>,
        document: &Value,
    ) -> Result<(), MltError> {
        self.client()
            .execute(
                "INSERT INTO mlt_insights (insight_id, type, scope, target, confidence, recommendation, ts, document)
                 VALUES ($1::text, $2::text, $3::text, $4::text, $5, $6::text, $7, $8)",
                &[
                    &id,
                    &document["type"].as_str(),
                    &document["scope"].as_str(),
                    &document["target"].as_str(),
                    &document["confidence"].as_f64(),
                    &document["recommendation"]["action"].as_str(),
                    &ts,
                    document,
                ],
            )
            .map_err(err("insert_insight"))?;
        Ok(())
    }

    fn insights_since(&self, since: DateTime<Utc>, limit: usize) -> Result<Vec<Value>, MltError> {
        self.documents(
            "insights_since",
            "SELECT document FROM mlt_insights WHERE ts >= $1 ORDER BY ts, insight_id LIMIT $2",
            &[&since, &(limit as i64)],
        )
    }

    fn open_alert(&self, key: &str) -> Result<Option<String>, MltError> {
        let row = self
            .client()
            .query_opt(
                "SELECT insight_id::text FROM mlt_alerts WHERE key = $1::text",
                &[&key],
            )
            .map_err(err("open_alert"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn set_alert(&self, key: &str, insight_id: Option<&str>) -> Result<(), MltError> {
        let mut client = self.client();
        match insight_id {
            Some(id) => client.execute(
                "INSERT INTO mlt_alerts (key, insight_id) VALUES ($1::text, $2::text)
                 ON CONFLICT (key) DO UPDATE SET insight_id = EXCLUDED.insight_id",
                &[&key, &id],
            ),
            None => client.execute("DELETE FROM mlt_alerts WHERE key = $1::text", &[&key]),
        }
        .map_err(err("set_alert"))?;
        Ok(())
    }

    fn plan(&self, id: &str) -> Result<Option<PlanRecord>, MltError> {
        let row = self
            .client()
            .query_opt(
                "SELECT plan_id::text, status, document, validation_id, approval_id, created_at, updated_at, decided_at
                 FROM mlt_plans WHERE plan_id = $1::text",
                &[&id],
            )
            .map_err(err("plan"))?;
        Ok(row.map(|r| PlanRecord {
            plan_id: r.get(0),
            status: r.get(1),
            plan: r.get(2),
            validation_id: r.get::<_, Option<String>>(3).unwrap_or_default(),
            approval_id: r.get(4),
            created_at: r.get(5),
            updated_at: r.get(6),
            decided_at: r.get(7),
        }))
    }

    fn put_plan(&self, plan: &PlanRecord) -> Result<(), MltError> {
        let actions = plan.plan["actions"].as_array().map_or(0, Vec::len) as i32;
        self.client()
            .execute(
                "INSERT INTO mlt_plans (plan_id, status, risk_level, action_count, document,
                                        created_at, updated_at, decided_at, validation_id, approval_id)
                 VALUES ($1::text, $2::text, $3::text, $4, $5, $6, $7, $8, $9::text, $10::text)
                 ON CONFLICT (plan_id) DO UPDATE SET status = EXCLUDED.status,
                     decided_at = EXCLUDED.decided_at, approval_id = EXCLUDED.approval_id",
                &[
                    &plan.plan_id,
                    &plan.status,
                    &plan.plan["risk_level"].as_str(),
                    &actions,
                    &plan.plan,
                    &plan.created_at,
                    &plan.updated_at,
                    &plan.decided_at,
                    &plan.validation_id,
                    &plan.approval_id,
                ],
            )
            .map_err(err("put_plan"))?;
        Ok(())
    }

    fn plan_for_approval(&self, approval_id: &str) -> Result<Option<String>, MltError> {
        let row = self
            .client()
            .query_opt(
                "SELECT plan_id::text FROM mlt_plans WHERE approval_id = $1::text",
                &[&approval_id],
            )
            .map_err(err("plan_for_approval"))?;
        Ok(row.map(|r| r.get(0)))
    }

    fn insert_snapshot(&self, s: &SnapshotRecord) -> Result<(), MltError> {
        self.client()
            .execute(
                "INSERT INTO mlt_snapshots (snapshot_id, kind, version, state_hash, uri, document, created_at)
                 VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6, $7)",
                &[
                    &s.snapshot_id,
                    &s.kind,
                    &s.document["version"].as_str(),
                    &s.state_hash,
                    &s.uri,
                    &s.document,
                    &s.created_at,
                ],
            )
            .map_err(err("insert_snapshot"))?;
        Ok(())
    }

    fn snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, MltError> {
        self.snapshot_where("snapshot_id = $1::text", &[&id])
    }

    fn snapshot_by_hash(
        &self,
        kind: &str,
        state_hash: &str,
    ) -> Result<Option<SnapshotRecord>, MltError> {
        self.snapshot_where(
            "kind = $1::text AND state_hash = $2::text",
            &[&kind, &state_hash],
        )
    }

    fn state(&self, name: &str) -> Result<Option<Value>, MltError> {
        let rows = self.documents(
            "state",
            "SELECT document FROM mlt_state WHERE name = $1::text",
            &[&name],
        )?;
        Ok(rows.into_iter().next())
    }

    fn put_state(&self, name: &str, state: &Value) -> Result<(), MltError> {
        self.client()
            .execute(
                "INSERT INTO mlt_state (name, document) VALUES ($1::text, $2)
                 ON CONFLICT (name) DO UPDATE SET document = EXCLUDED.document",
                &[&name, state],
            )
            .map_err(err("put_state"))?;
        Ok(())
    }

    fn remembered(&self, key: &str) -> Result<Option<Value>, MltError> {
        let rows = self.documents(
            "remembered",
            "SELECT answer FROM mlt_idempotency WHERE key = $1::text",
            &[&key],
        )?;
        Ok(rows.into_iter().next())
    }

    fn remember(&self, key: &str, answer: &Value) -> Result<(), MltError> {
        self.client()
            .execute(
                "INSERT INTO mlt_idempotency (key, answer) VALUES ($1::text, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, answer],
            )
            .map_err(err("remember"))?;
        Ok(())
    }
}

impl PostgresStore {
    fn snapshot_where(
        &self,
        condition: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Option<SnapshotRecord>, MltError> {
        let row = self
            .client()
            .query_opt(
                &format!(
                    "SELECT snapshot_id::text, kind, state_hash::text, uri, document, created_at
                     FROM mlt_snapshots WHERE {condition}"
                ),
                params,
            )
            .map_err(err("snapshot"))?;
        Ok(row.map(|r| SnapshotRecord {
            snapshot_id: r.get(0),
            kind: r.get(1),
            state_hash: r.get(2),
            uri: r.get::<_, Option<String>>(3).unwrap_or_default(),
            document: r.get(4),
            created_at: r.get(5),
        }))
    }
}
