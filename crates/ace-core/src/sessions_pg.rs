//! Sessions in PostgreSQL (`state.sessions: postgres`), so several servers read and write the
//! same sessions (the schema and its migrations: `pg.rs`). Each write is one transaction that locks
//! the session's row (`SELECT … FOR UPDATE`) and applies the same precondition and owner rule
//! as every store (`sessions::apply`), so two servers writing one session serialise and the
//! loser's precondition fails. A session that does not exist yet is inserted with
//! `ON CONFLICT DO NOTHING`: a concurrent creator makes it lose and start over on the row.

use chrono::{DateTime, Utc};

use crate::pg::{Pg, PgError, decode, encode, pg};
use crate::sessions::{PutOutcome, Session, SessionStore, StoreError, apply};
use crate::{Precondition, Writer};

/// Sessions in a PostgreSQL schema (see the module docs).
#[derive(Debug, Clone)]
pub struct PostgresSessionStore {
    pg: Pg,
}

impl From<PgError> for StoreError {
    fn from(e: PgError) -> Self {
        StoreError {
            op: e.op,
            reason: e.reason,
        }
    }
}

impl PostgresSessionStore {
    /// Connects to `url` (blocking: call it outside the async runtime's workers, or through
    /// `spawn_blocking`) and brings `schema` (a plain identifier) to the latest migration.
    pub fn connect(url: &str, schema: &str) -> Result<Self, StoreError> {
        Ok(PostgresSessionStore {
            pg: Pg::connect(url, schema)?,
        })
    }
}

#[async_trait::async_trait]
impl SessionStore for PostgresSessionStore {
    async fn get(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let id = id.to_owned();
        self.pg
            .blocking("get", move |client, schema| {
                let row = client
                    .query_opt(
                        &format!("SELECT doc FROM {schema}.sessions WHERE id = $1"),
                        &[&id],
                    )
                    .map_err(pg("get"))?;
                row.map(|r| decode::<Session>(r.get::<_, &str>(0)))
                    .transpose()
            })
            .await
            .map_err(StoreError::from)
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
        self.pg
            .blocking("put", move |client, schema| {
                loop {
                    let mut txn = client.transaction().map_err(pg("put"))?;
                    let row = txn
                        .query_opt(
                            &format!("SELECT doc FROM {schema}.sessions WHERE id = $1 FOR UPDATE"),
                            &[&id],
                        )
                        .map_err(pg("put"))?;
                    let current = row
                        .map(|r| decode::<Session>(r.get::<_, &str>(0)))
                        .transpose()?;
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
            .map_err(StoreError::from)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        self.pg
            .blocking("count", |client, schema| {
                let n: i64 = client
                    .query_one(&format!("SELECT COUNT(*) FROM {schema}.sessions"), &[])
                    .map_err(pg("count"))?
                    .get(0);
                Ok(u64::try_from(n).unwrap_or(0))
            })
            .await
            .map_err(StoreError::from)
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
        let schema = crate::pg::testing::schema("sessions");
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
        crate::pg::testing::drop_schema(url, schema).await;
    }
}
