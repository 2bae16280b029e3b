//! [`PostgresStore`]: a [`LedgerStore`] in PostgreSQL, for deployments that scale out
//! (`ledger: postgres`). Two tables in one schema:
//!
//! - `entries(seq BIGINT PRIMARY KEY, ts_nanos BIGINT, kind TEXT, line TEXT)`: `line` is the
//!   exact stored line of the file store (canonical JSON with `chain_hash`), so a dump verifies
//!   the same way; `ts_nanos` and `kind` are indexed copies for queries;
//! - `checkpoints(id BIGSERIAL PRIMARY KEY, size BIGINT, line TEXT)`.
//!
//! An append batch is one transaction; its `COMMIT` is the acknowledgement. A synced append
//! commits with `synchronous_commit = on` (the WAL is flushed before `COMMIT` answers); an
//! unsynced one with `off` for the session — PostgreSQL's own bounded-loss mode: the commit is
//! visible and survives a crash of our process at once, and PostgreSQL's WAL writer flushes it
//! within `3 × wal_writer_delay` (600 ms by default), so a crash of the database machine loses
//! at most that. [`LedgerStore::sync`] therefore has nothing to ask for (PostgreSQL offers no
//! flush without a write); what matters is that a checkpoint is inserted with
//! `synchronous_commit = on`, and since the WAL is flushed in order, a durable checkpoint means
//! every entry committed before it is durable too.
//!
//! The client is the synchronous `postgres` crate, which runs its own small tokio runtime: it
//! must not be called from async code (callers use `spawn_blocking` or a thread of their own),
//! and it is closed on a thread of its own when the store drops, wherever that happens.

use postgres::{Client, NoTls};

use super::{EntryFilter, LedgerStore};
use crate::checkpoint::Checkpoint;
use crate::entry::Entry;
use crate::error::LedgerError;

/// How long [`PostgresStore::connect`] waits for the schema's writer lock.
const WRITER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Rows fetched per round trip when replaying.
const REPLAY_PAGE: i64 = 10_000;

/// A ledger store in a PostgreSQL schema.
pub struct PostgresStore {
    /// Always `Some` until dropped (taken to be closed on a thread of its own).
    client: Option<Client>,
    schema: String,
    /// The session's `synchronous_commit`, once set (so it is only sent when it changes).
    synchronous_commit: Option<bool>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to `url` as the one writer of `schema` and creates (if needed) the schema and
    /// its tables. `schema` must be a plain identifier (`[a-z_][a-z0-9_]*`).
    ///
    /// One writer per schema: the ledger keeps its chain head and tree in memory, so a second
    /// writer would append at sequences that exist and fail every batch after. The writer holds
    /// a session advisory lock on the schema's name for as long as it is connected; a second
    /// one waits up to five seconds (a restarting server's old session may still be
    /// closing) and is then refused, naming the schema.
    pub fn connect(url: &str, schema: &str) -> Result<Self, LedgerError> {
        let mut store = PostgresStore::connect_only(url, schema)?;
        let wait = format!("{}ms", WRITER_LOCK_WAIT.as_millis());
        let locked = store
            .client()
            .batch_execute(&format!("SET lock_timeout = '{wait}'"))
            .and_then(|()| {
                let key = format!("ace-ledger:{schema}");
                store
                    .client()
                    .execute("SELECT pg_advisory_lock(hashtext($1))", &[&key])
            })
            .and_then(|_| store.client().batch_execute("SET lock_timeout = 0"));
        if let Err(e) = locked {
            return Err(pg_error(
                "lock the schema",
                format!(
                    "schema {schema} already has a writer (another ace-comms server?): one server \
                     per schema ({})",
                    reason(&e)
                ),
            ));
        }
        store
            .client()
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.entries (
                     seq BIGINT PRIMARY KEY, ts_nanos BIGINT NOT NULL, kind TEXT NOT NULL, line TEXT NOT NULL);
                 CREATE INDEX IF NOT EXISTS entries_ts ON {schema}.entries (ts_nanos);
                 CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
                     id BIGSERIAL PRIMARY KEY, size BIGINT NOT NULL, line TEXT NOT NULL);"
            ))
            .map_err(|e| pg_error("create tables", e.to_string()))?;
        Ok(store)
    }

    /// Connects to `url` to read the ledger already in `schema` (`ace-comms ledger verify
    /// --postgres`): unlike [`PostgresStore::connect`] it creates nothing, so a wrong URL or
    /// schema is an error rather than an empty ledger that verifies.
    pub fn connect_existing(url: &str, schema: &str) -> Result<Self, LedgerError> {
        let mut store = PostgresStore::connect_only(url, schema)?;
        store
            .client()
            .batch_execute(&format!(
                "SELECT 1 FROM {schema}.entries LIMIT 0; SELECT 1 FROM {schema}.checkpoints LIMIT 0"
            ))
            .map_err(|e| {
                pg_error(
                    "find the ledger tables",
                    format!("schema {schema}: {}", reason(&e)),
                )
            })?;
        Ok(store)
    }

    fn connect_only(url: &str, schema: &str) -> Result<Self, LedgerError> {
        if !PostgresStore::is_plain_schema(schema) {
            return Err(pg_error(
                "schema",
                format!("`{schema}` is not a plain identifier"),
            ));
        }
        let client = Client::connect(url, NoTls).map_err(|e| pg_error("connect", reason(&e)))?;
        Ok(PostgresStore {
            client: Some(client),
            schema: schema.to_owned(),
            synchronous_commit: None,
        })
    }

    /// `url` without its password, for messages: `postgres://user@host:port/db` rebuilt from
    /// the parsed configuration (so no form of password can slip through; the port defaults to
    /// 5432), or a placeholder when `url` does not parse.
    pub fn url_without_password(url: &str) -> String {
        let Ok(config) = url.parse::<postgres::Config>() else {
            return "<unparsable PostgreSQL URL>".to_owned();
        };
        let user = config
            .get_user()
            .map(|u| format!("{u}@"))
            .unwrap_or_default();
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let host = match host {
                    postgres::config::Host::Tcp(name) => name.clone(),
                    postgres::config::Host::Unix(path) => path.display().to_string(),
                };
                let ports = config.get_ports();
                let port = ports.get(i).or(ports.first()).unwrap_or(&5432);
                format!("{host}:{port}")
            })
            .collect();
        let db = config.get_dbname().unwrap_or_default();
        format!("postgres://{user}{}/{db}", hosts.join(","))
    }

    /// Up to `limit` stored entry rows `(seq, line)` with `seq > after` (from the first when
    /// `None`), in seq order, exactly as stored: the verifier parses and checks them itself.
    pub(crate) fn entry_rows(
        &mut self,
        after: Option<i64>,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, LedgerError> {
        let sql = format!(
            "SELECT seq, line FROM {}.entries WHERE ($1::BIGINT IS NULL OR seq > $1)
             ORDER BY seq LIMIT $2",
            self.schema
        );
        let rows = self
            .client()
            .query(&sql, &[&after, &limit])
            .map_err(|e| pg_error("select entries", e.to_string()))?;
        Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
    }

    /// Every stored checkpoint line, oldest first, exactly as stored.
    pub(crate) fn checkpoint_rows(&mut self) -> Result<Vec<String>, LedgerError> {
        let sql = format!("SELECT line FROM {}.checkpoints ORDER BY id", self.schema);
        let rows = self
            .client()
            .query(&sql, &[])
            .map_err(|e| pg_error("select checkpoints", e.to_string()))?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    /// The schema this store uses.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// Whether `schema` is a plain identifier (`[a-z_][a-z0-9_]*`), the only kind
    /// [`PostgresStore::connect`] takes (it is spliced into SQL).
    pub fn is_plain_schema(schema: &str) -> bool {
        schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    fn client(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("the client is only taken when the store drops")
    }

    /// Sets the session's `synchronous_commit` when it differs from what it is.
    fn synchronous_commit(&mut self, on: bool) -> Result<(), LedgerError> {
        if self.synchronous_commit == Some(on) {
            return Ok(());
        }
        let value = if on { "on" } else { "off" };
        self.client()
            .batch_execute(&format!("SET synchronous_commit TO {value}"))
            .map_err(|e| pg_error("set synchronous_commit", e.to_string()))?;
        self.synchronous_commit = Some(on);
        Ok(())
    }

    fn lines(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Entry>, LedgerError> {
        let rows = self
            .client()
            .query(sql, params)
            .map_err(|e| pg_error("select entries", e.to_string()))?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.get(0);
                let line: String = row.get(1);
                parse_entry(seq, &line)
            })
            .collect()
    }
}

impl LedgerStore for PostgresStore {
    fn replay(
        &mut self,
        visit: &mut dyn FnMut(Entry) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        let sql = format!(
            "SELECT seq, line FROM {}.entries WHERE seq >= $1 ORDER BY seq LIMIT $2",
            self.schema
        );
        let mut from = 0i64;
        loop {
            let page = self.lines(&sql, &[&from, &REPLAY_PAGE])?;
            let done = (page.len() as i64) < REPLAY_PAGE;
            for entry in page {
                from = to_i64(entry.seq)? + 1;
                visit(entry)?;
            }
            if done {
                return Ok(());
            }
        }
    }

    fn append(&mut self, entries: &[Entry], sync: bool) -> Result<(), LedgerError> {
        let sql = format!(
            "INSERT INTO {}.entries (seq, ts_nanos, kind, line) VALUES ($1, $2, $3, $4)",
            self.schema
        );
        self.synchronous_commit(sync)?;
        let mut tx = self
            .client()
            .transaction()
            .map_err(|e| pg_error("begin", e.to_string()))?;
        let statement = tx
            .prepare(&sql)
            .map_err(|e| pg_error("prepare insert", e.to_string()))?;
        for entry in entries {
            let line = String::from_utf8_lossy(&entry.to_line()).into_owned();
            let ts = entry.ts.timestamp_nanos_opt().unwrap_or(i64::MAX);
            tx.execute(
                &statement,
                &[&to_i64(entry.seq)?, &ts, &entry.kind.as_str(), &line],
            )
            .map_err(|e| pg_error("insert entry", e.to_string()))?;
        }
        tx.commit().map_err(|e| pg_error("commit", e.to_string()))
    }

    /// Nothing to ask for: see the module documentation (PostgreSQL flushes asynchronous commits
    /// itself, and a checkpoint commits synchronously, flushing every earlier commit with it).
    fn sync(&mut self) -> Result<(), LedgerError> {
        Ok(())
    }

    fn get(&mut self, seq: u64) -> Result<Option<Entry>, LedgerError> {
        let sql = format!(
            "SELECT seq, line FROM {}.entries WHERE seq = $1",
            self.schema
        );
        Ok(self.lines(&sql, &[&to_i64(seq)?])?.pop())
    }

    fn scan(&mut self, filter: &EntryFilter) -> Result<Vec<Entry>, LedgerError> {
        let sql = format!(
            "SELECT seq, line FROM {}.entries WHERE seq >= $1
               AND ($2::TEXT IS NULL OR kind = $2) AND ($3::BIGINT IS NULL OR ts_nanos >= $3)
               AND ($4::BIGINT IS NULL OR ts_nanos < $4) ORDER BY seq LIMIT $5",
            self.schema
        );
        let kind = filter.kind.map(|k| k.as_str());
        let nanos = |t: Option<chrono::DateTime<chrono::Utc>>| {
            t.map(|t| t.timestamp_nanos_opt().unwrap_or(i64::MAX))
        };
        let limit = i64::try_from(filter.max()).unwrap_or(i64::MAX);
        self.lines(
            &sql,
            &[
                &to_i64(filter.from_seq)?,
                &kind,
                &nanos(filter.since),
                &nanos(filter.until),
                &limit,
            ],
        )
    }

    fn append_checkpoint(&mut self, checkpoint: &Checkpoint) -> Result<(), LedgerError> {
        let line = serde_json::to_string(checkpoint).map_err(|source| LedgerError::Encode {
            field: "checkpoint",
            source,
        })?;
        let sql = format!(
            "INSERT INTO {}.checkpoints (size, line) VALUES ($1, $2)",
            self.schema
        );
        self.synchronous_commit(true)?;
        self.client()
            .execute(&sql, &[&to_i64(checkpoint.size)?, &line])
            .map(drop)
            .map_err(|e| pg_error("insert checkpoint", e.to_string()))
    }

    fn checkpoints(&mut self) -> Result<Vec<Checkpoint>, LedgerError> {
        let sql = format!(
            "SELECT id, line FROM {}.checkpoints ORDER BY id",
            self.schema
        );
        let rows = self
            .client()
            .query(&sql, &[])
            .map_err(|e| pg_error("select checkpoints", e.to_string()))?;
        rows.iter()
            .map(|row| {
                let (id, line): (i64, String) = (row.get(0), row.get(1));
                serde_json::from_str(&line)
                    .map_err(|e| malformed(id, format!("not a checkpoint: {e}")))
            })
            .collect()
    }
}

impl Drop for PostgresStore {
    /// Closes the client on a thread of its own: `postgres::Client` closes by blocking on its
    /// runtime, which panics inside an async context (where a server may drop its last handle).
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let closing = std::thread::Builder::new()
                .name("ace-ledger-pg-close".to_owned())
                .spawn(move || drop(client));
            if let Ok(closing) = closing {
                let _ = closing.join();
            }
        }
    }
}

fn parse_entry(seq: i64, line: &str) -> Result<Entry, LedgerError> {
    serde_json::from_str(line).map_err(|e| malformed(seq, format!("not a ledger entry: {e}")))
}

fn malformed(row: i64, reason: String) -> LedgerError {
    LedgerError::Malformed {
        path: "postgres".into(),
        line: u64::try_from(row).unwrap_or(0),
        reason,
    }
}

fn to_i64(seq: u64) -> Result<i64, LedgerError> {
    i64::try_from(seq).map_err(|_| pg_error("seq", format!("{seq} does not fit a BIGINT")))
}

/// What went wrong, in full: the server's message for a database error, else the error and
/// its cause (`error connecting to server: Connection refused`).
pub(crate) fn reason(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_owned();
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

pub(crate) fn pg_error(operation: &'static str, reason: String) -> LedgerError {
    LedgerError::Postgres { operation, reason }
}
