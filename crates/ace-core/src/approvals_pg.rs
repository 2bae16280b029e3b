//! Approvals in PostgreSQL (`approvals.store: postgres`), so an approval held by one server is
//! listed, decided and released by any other (the schema and its migrations: `pg.rs`).
//! `settle` is one transaction on the approval's locked row (`SELECT … FOR UPDATE`): of two
//! servers deciding (or expiring) one approval at once, one settles it and the other is
//! answered `NotPending`, so it is released or dead-lettered once.

use chrono::{DateTime, Utc};

use crate::approvals::{
    Approval, ApprovalStatus, ApprovalStore, ApprovalStoreError, Settled, Settlement,
};
use crate::pg::{Pg, PgError, decode, encode, pg};

/// Approvals in a PostgreSQL schema (see the module docs).
#[derive(Debug, Clone)]
pub struct PostgresApprovalStore {
    pg: Pg,
}

impl From<PgError> for ApprovalStoreError {
    fn from(e: PgError) -> Self {
        ApprovalStoreError {
            op: e.op,
            reason: e.reason,
        }
    }
}

impl PostgresApprovalStore {
    /// Connects to `url` (blocking: call it through `spawn_blocking`) and brings `schema` (a
    /// plain identifier) to the latest migration.
    pub fn connect(url: &str, schema: &str) -> Result<Self, ApprovalStoreError> {
        Ok(PostgresApprovalStore {
            pg: Pg::connect(url, schema)?,
        })
    }
}

/// The wire name of a status (the `status` column).
fn status_name(status: ApprovalStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

#[async_trait::async_trait]
impl ApprovalStore for PostgresApprovalStore {
    async fn put(&self, approval: Approval) -> Result<(), ApprovalStoreError> {
        self.pg
            .blocking("put", move |client, schema| {
                let doc = encode(&approval)?;
                client
                    .execute(
                        &format!(
                            "INSERT INTO {schema}.approvals
                                 (id, status, created_nanos, decided_nanos, doc)
                             VALUES ($1, $2, $3, $4, $5)
                             ON CONFLICT (id) DO UPDATE SET status = $2, created_nanos = $3,
                                 decided_nanos = $4, doc = $5"
                        ),
                        &[
                            &approval.approval_id,
                            &status_name(approval.status),
                            &nanos(approval.created_at),
                            &approval.decided_at.map(nanos),
                            &doc,
                        ],
                    )
                    .map_err(pg("put"))?;
                Ok(())
            })
            .await
            .map_err(ApprovalStoreError::from)
    }

    async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalStoreError> {
        let id = id.to_owned();
        self.pg
            .blocking("get", move |client, schema| {
                let row = client
                    .query_opt(
                        &format!("SELECT doc FROM {schema}.approvals WHERE id = $1"),
                        &[&id],
                    )
                    .map_err(pg("get"))?;
                row.map(|r| decode::<Approval>(r.get::<_, &str>(0)))
                    .transpose()
            })
            .await
            .map_err(ApprovalStoreError::from)
    }

    async fn list(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, ApprovalStoreError> {
        self.pg
            .blocking("list", move |client, schema| {
                let rows = match status {
                    Some(s) => client.query(
                        &format!(
                            "SELECT doc FROM {schema}.approvals WHERE status = $1
                             ORDER BY created_nanos, id"
                        ),
                        &[&status_name(s)],
                    ),
                    None => client.query(
                        &format!("SELECT doc FROM {schema}.approvals ORDER BY created_nanos, id"),
                        &[],
                    ),
                }
                .map_err(pg("list"))?;
                rows.iter()
                    .map(|r| decode::<Approval>(r.get::<_, &str>(0)))
                    .collect()
            })
            .await
            .map_err(ApprovalStoreError::from)
    }

    async fn settle(
        &self,
        id: &str,
        settlement: Settlement,
    ) -> Result<Settled, ApprovalStoreError> {
        let id = id.to_owned();
        self.pg
            .blocking("settle", move |client, schema| {
                let mut txn = client.transaction().map_err(pg("settle"))?;
                let row = txn
                    .query_opt(
                        &format!("SELECT doc FROM {schema}.approvals WHERE id = $1 FOR UPDATE"),
                        &[&id],
                    )
                    .map_err(pg("settle"))?;
                let Some(row) = row else {
                    return Ok(Settled::NotFound);
                };
                let mut approval: Approval = decode(row.get::<_, &str>(0))?;
                if approval.status != ApprovalStatus::Pending {
                    return Ok(Settled::NotPending(approval));
                }
                crate::approvals::apply(&mut approval, settlement);
                txn.execute(
                    &format!(
                        "UPDATE {schema}.approvals SET status = $2, decided_nanos = $3, doc = $4
                         WHERE id = $1"
                    ),
                    &[
                        &id,
                        &status_name(approval.status),
                        &approval.decided_at.map(nanos),
                        &encode(&approval)?,
                    ],
                )
                .map_err(pg("settle"))?;
                txn.commit().map_err(pg("settle"))?;
                Ok(Settled::Done(approval))
            })
            .await
            .map_err(ApprovalStoreError::from)
    }

    async fn purge_decided(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<String>, ApprovalStoreError> {
        self.pg
            .blocking("purge", move |client, schema| {
                let rows = client
                    .query(
                        &format!(
                            "DELETE FROM {schema}.approvals
                             WHERE status <> 'pending' AND decided_nanos < $1 RETURNING id"
                        ),
                        &[&nanos(cutoff)],
                    )
                    .map_err(pg("purge"))?;
                Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
            })
            .await
            .map_err(ApprovalStoreError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approvals::tests::{approval, settlement};

    /// Two stores on one schema are two servers: an approval held through one is listed and
    /// read through the other; of eight deciders on both at once exactly one settles it; a
    /// purge removes only what was decided before the cutoff.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn given_two_servers_on_one_schema_when_deciding_at_once_then_exactly_one_settles() {
        let Some(url) = ace_testkit::postgres_url("postgres approvals") else {
            return;
        };
        let schema = crate::pg::testing::schema("approvals");
        let (u, s) = (url.clone(), schema.clone());
        let (a, b) = tokio::task::spawn_blocking(move || {
            let a = PostgresApprovalStore::connect(&u, &s).expect("first server");
            let b = PostgresApprovalStore::connect(&u, &s).expect("second server");
            (a, b)
        })
        .await
        .unwrap();
        let held = approval("held");
        a.put(held.clone()).await.expect("held on A");
        let pending = b.list(Some(ApprovalStatus::Pending)).await.expect("list");
        assert_eq!(pending.len(), 1, "B lists A's approval");
        assert_eq!(pending[0], held, "as it was stored");
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = if i % 2 == 0 { a.clone() } else { b.clone() };
                tokio::spawn(async move { store.settle("held", settlement(&i.to_string())).await })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            let settled = task.await.unwrap().expect("answered");
            wins += usize::from(matches!(settled, Settled::Done(_)));
        }
        assert_eq!(wins, 1, "one decision across both servers");
        assert_eq!(
            a.settle("nope", settlement("x")).await.unwrap(),
            Settled::NotFound
        );
        assert!(
            b.list(Some(ApprovalStatus::Pending))
                .await
                .unwrap()
                .is_empty()
        );
        let decided = b.get("held").await.unwrap().expect("kept");
        assert_eq!(decided.status, ApprovalStatus::Approved);
        let before = Utc::now() - chrono::TimeDelta::days(1);
        assert!(a.purge_decided(before).await.unwrap().is_empty());
        let after = Utc::now() + chrono::TimeDelta::seconds(1);
        assert_eq!(a.purge_decided(after).await.unwrap(), vec!["held"]);
        crate::pg::testing::drop_schema(url, schema).await;
    }
}
