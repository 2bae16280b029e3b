//! The PostgreSQL connection of the shared state stores (`PostgresSessionStore`,
//! `PostgresApprovalStore`): one schema brought to the latest of one list of versioned
//! migrations (`<schema>.schema_migrations`, applied in one transaction under an advisory lock,
//! so servers starting together apply each once), and the blocking client driven from
//! `spawn_blocking`.

use std::sync::{Arc, Mutex};

use postgres::{Client, NoTls};

/// The migrations of the state schema, in order; a version is never changed once shipped.
const MIGRATIONS: &[(i32, &str)] = &[
    (
        1,
        "CREATE TABLE {schema}.sessions (
             id TEXT PRIMARY KEY,
             version BIGINT NOT NULL,
             doc TEXT NOT NULL)",
    ),
    (
        2,
        "CREATE TABLE {schema}.approvals (
             id TEXT PRIMARY KEY,
             status TEXT NOT NULL,
             created_nanos BIGINT NOT NULL,
             decided_nanos BIGINT,
             doc TEXT NOT NULL);
         CREATE INDEX approvals_status ON {schema}.approvals (status, created_nanos)",
    ),
];

/// A failure, with the operation it broke.
#[derive(Debug)]
pub(crate) struct PgError {
    pub(crate) op: &'static str,
    pub(crate) reason: String,
}

/// Maps a driver error (its server message when there is one).
pub(crate) fn pg(op: &'static str) -> impl Fn(postgres::Error) -> PgError {
    move |e| PgError {
        op,
        reason: e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
    }
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

/// One connection to the state schema.
#[derive(Clone)]
pub(crate) struct Pg {
    client: Arc<Mutex<Conn>>,
    pub(crate) schema: String,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl Pg {
    /// Connects (blocking) and migrates `schema`, a plain identifier.
    pub(crate) fn connect(url: &str, schema: &str) -> Result<Pg, PgError> {
        if !ace_ledger::PostgresStore::is_plain_schema(schema) {
            return Err(PgError {
                op: "schema",
                reason: format!("`{schema}` is not a plain identifier [a-z_][a-z0-9_]*"),
            });
        }
        let mut client = Client::connect(url, NoTls).map_err(pg("connect"))?;
        let mut txn = client.transaction().map_err(pg("migrate"))?;
        let key = format!("ace-state:{schema}");
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
        Ok(Pg {
            client: Arc::new(Mutex::new(Conn(Some(client)))),
            schema: schema.to_owned(),
        })
    }

    /// Runs `f` on the connection on a blocking thread.
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Client, &str) -> Result<T, PgError> + Send + 'static,
    ) -> Result<T, PgError> {
        let (client, schema) = (self.client.clone(), self.schema.clone());
        let failed = |reason: String| PgError { op, reason };
        tokio::task::spawn_blocking(move || {
            let mut conn = client.lock().map_err(|e| failed(e.to_string()))?;
            let client = conn
                .0
                .as_mut()
                .ok_or_else(|| failed("the connection is closed".to_owned()))?;
            f(client, &schema)
        })
        .await
        .map_err(|e| failed(e.to_string()))?
    }
}

/// Decodes a stored JSON document.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(doc: &str) -> Result<T, PgError> {
    serde_json::from_str(doc).map_err(|e| PgError {
        op: "decode",
        reason: e.to_string(),
    })
}

/// Encodes a JSON document to store.
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Result<String, PgError> {
    serde_json::to_string(value).map_err(|e| PgError {
        op: "encode",
        reason: e.to_string(),
    })
}

#[cfg(test)]
pub(crate) mod testing {
    /// A fresh schema name for one test.
    pub(crate) fn schema(kind: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("ace_{kind}_t{}", nanos % 1_000_000_000_000)
    }

    /// Drops `schema` (a test's).
    pub(crate) async fn drop_schema(url: String, schema: String) {
        tokio::task::spawn_blocking(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).expect("cleanup");
            c.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .expect("dropped");
        })
        .await
        .expect("cleanup ran");
    }
}
