//! Sessions in PostgreSQL (`state.sessions: postgres`), so several servers read and write the
//! same sessions. Versioned migrations (`<schema>.schema_migrations`, applied under an advisory
//! lock so servers starting together apply each once); each write is one transaction that locks
//! the session's row (`SELECT … FOR UPDATE`) and applies the same precondition and owner rule
//! as every store (`sessions::apply`), so two servers writing one session serialise and the
//! loser's precondition fails. A session that does not exist yet is inserted with
//! `ON CONFLICT DO NOTHING`: a concurrent creator makes it lose and start over on the row.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use postgres::{Client, NoTls};

use crate::sessions::{PutOutcome, Session, SessionStore, StoreError, apply};
use crate::{Precondition, Writer};

/// The migrations, in order; a version is never changed once shipped.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    "CREATE TABLE {schema}.sessions (
         id TEXT PRIMARY KEY,
         version BIGINT NOT NULL,
         doc TEXT NOT NULL)",
)];

/// Sessions in a PostgreSQL schema (see the module docs).
#[derive(Clone)]
pub struct PostgresSessionStore {
    client: Arc<Mutex<Conn>>,
    schema: String,
}

/// The connection, closed on a thread of its own: the blocking client's drop runs a runtime,
/// which may not happen on an async worker.
struct Conn(Option<Client>);

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(client) = self.0.take() {
            std::thread::spawn(move || drop(client));
        }
    }
}

impl std::fmt::Debug for PostgresSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSessionStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

fn pg(op: &'static str) -> impl Fn(postgres::Error) -> StoreError {
    move |e| StoreError {
        op,
        reason: e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
    }
}

impl PostgresSessionStore {
    /// Connects to `url` (blocking: call it outside the async runtime's workers, or through
    /// `spawn_blocking`) and brings `schema` (a plain identifier) to the latest migration.
    pub fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        if !ace_ledger::PostgresStore::is_plain_schema(schema) {
            return Err(StoreError {
                op: "schema",
                reason: format!("`{schema}` is not a plain identifier [a-z_][a-z0-9_]*"),
            });
        }
        let mut client = Client::connect(url, NoTls).map_err(pg("connect"))?;
        let mut txn = client.transaction().map_err(pg("migrate"))?;
        let key = format!("ace-sessions:{schema}");
        txn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&key])
            .map_err(pg("migrate"))?;
        txn.batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_migrations (
                 version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        ))
        .map_err(pg("migrate"))?;
        let applied: i32 = txn
            .query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {schema}.schema_migrations"),
                &[],
            )
            .map_err(pg("migrate"))?
            .get(0);
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > applied) {
            txn.batch_execute(&sql.replace("{schema}", schema))
                .map_err(pg("migrate"))?;
            txn.execute(
                &format!("INSERT INTO {schema}.schema_migrations (version) VALUES ($1)"),
                &[version],
            )
            .map_err(pg("migrate"))?;
        }
        txn.commit().map_err(pg("migrate"))?;
        Ok(PostgresSessionStore {
            client: Arc::new(Mutex::new(Conn(Some(client)))),
            schema: schema.to_owned(),
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Client, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (client, schema) = (self.client.clone(), self.schema.clone());
        tokio::task::spawn_blocking(move || {
            let mut conn = client.lock().map_err(|e| StoreError {
                op,
                reason: e.to_string(),
            })?;
            let client = conn.0.as_mut().ok_or(StoreError {
                op,
                reason: "the connection is closed".to_owned(),
            })?;
            f(client, &schema)
        })
        .await
        .map_err(|e| StoreError {
            op,
            reason: e.to_string(),
        })?
    }
}

fn decode(doc: &str) -> Result<Session, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError {
        op: "decode",
        reason: e.to_string(),
    })
}

fn encode(session: &Session) -> Result<String, StoreError> {
    serde_json::to_string(session).map_err(|e| StoreError {
        op: "encode",
        reason: e.to_string(),
    })
}

#[async_trait::async_trait]
impl SessionStore for PostgresSessionStore {
    async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let id = id.to_owned();
        self.blocking("get", move |client, schema| {
            let row = client
                .query_opt(
                    &format!("SELECT doc FROM {schema}.sessions WHERE id = $1"),
                    &[&id],
                )
                .map_err(pg("get"))?;
            row.map(|r| decode(r.get::<_, &str>(0))).transpose()
        })
        .await
    }

    async fn put(
        &self,
        id: &str,
        data: serde_json::Value,
        precondition: Precondition,
        writer: Writer,
        now: DateTime<Utc>,
    ) -> Result<PutOutcome, StoreError> {
        let id = id.to_owned();
        self.blocking("put", move |client, schema| {
            loop {
                let mut txn = client.transaction().map_err(pg("put"))?;
                let row = txn
                    .query_opt(
                        &format!("SELECT doc FROM {schema}.sessions WHERE id = $1 FOR UPDATE"),
                        &[&id],
                    )
                    .map_err(pg("put"))?;
                let current = row.map(|r| decode(r.get::<_, &str>(0))).transpose()?;
                let outcome = apply(
                    current.as_ref(),
                    &id,
                    data.clone(),
                    &precondition,
                    &writer,
                    now,
                );
                let Ok(session) = &outcome else {
                    return Ok(outcome);
                };
                let doc = encode(session)?;
                let version = i64::try_from(session.version).unwrap_or(i64::MAX);
                let written = if current.is_some() {
                    txn.execute(
                        &format!(
                            "UPDATE {schema}.sessions SET version = $2, doc = $3 WHERE id = $1"
                        ),
                        &[&id, &version, &doc],
                    )
                } else {
                    txn.execute(
                        &format!(
                            "INSERT INTO {schema}.sessions (id, version, doc) VALUES ($1, $2, $3)
                             ON CONFLICT (id) DO NOTHING"
                        ),
                        &[&id, &version, &doc],
                    )
                }
                .map_err(pg("put"))?;
                if written == 0 {
                    // Created by another server meanwhile: judge again against its row.
                    txn.rollback().map_err(pg("put"))?;
                    continue;
                }
                txn.commit().map_err(pg("put"))?;
                return Ok(outcome);
            }
        })
        .await
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.blocking("count", |client, schema| {
            let n: i64 = client
                .query_one(&format!("SELECT COUNT(*) FROM {schema}.sessions"), &[])
                .map_err(pg("count"))?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(id: &str) -> Writer {
        Writer {
            id: id.to_owned(),
            may_manage: false,
        }
    }

    /// Two stores on one schema are two servers: a session written through one is read through
    /// the other, a stale version from either is refused, another principal may not write it,
    /// and a second start applies no migration twice.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_two_servers_on_one_schema_when_writing_a_session_then_both_see_one_history() {
        let Some(url) = ace_testkit::postgres_url("postgres sessions") else {
            return;
        };
        let schema = format!(
            "ace_sessions_t{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000_000
        );
        let (u, s) = (url.clone(), schema.clone());
        let (a, b) = tokio::task::spawn_blocking(move || {
            let a = PostgresSessionStore::connect(&u, &s).expect("first server");
            let b =
                PostgresSessionStore::connect(&u, &s).expect("second server, no migration twice");
            (a, b)
        })
        .await
        .unwrap();
        let now = Utc::now();
        let data = serde_json::json!({"step": 1});
        let made = a
            .put(
                "s1",
                data.clone(),
                Precondition::Absent,
                writer("alice"),
                now,
            )
            .await
            .expect("stored")
            .expect("created");
        assert_eq!(made.version, 1);
        let read = b.get("s1").await.expect("read").expect("seen by the other");
        assert_eq!(
            (read.version, read.data, read.owner.as_deref()),
            (1, data, Some("alice"))
        );
        let next = b
            .put(
                "s1",
                serde_json::json!({"step": 2}),
                Precondition::Version(vec![1]),
                writer("alice"),
                now,
            )
            .await
            .expect("stored");
        assert_eq!(next.expect("updated").version, 2);
        let stale = a
            .put(
                "s1",
                serde_json::json!({"step": 9}),
                Precondition::Version(vec![1]),
                writer("alice"),
                now,
            )
            .await
            .expect("answered");
        assert!(
            stale.is_err(),
            "a stale version from the other server is refused"
        );
        let stranger = a
            .put(
                "s1",
                serde_json::json!({}),
                Precondition::Exists,
                writer("mallory"),
                now,
            )
            .await
            .expect("answered");
        assert!(stranger.is_err(), "only the owner writes it");
        assert_eq!(a.count().await.expect("count"), 1);
        tokio::task::spawn_blocking(move || {
            let mut c = Client::connect(&url, NoTls).expect("cleanup");
            c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .expect("dropped");
        })
        .await
        .unwrap();
    }
}
