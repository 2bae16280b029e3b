//! Witnesses: copies of the signed checkpoints kept outside the ledger's own storage, so that
//! a ledger rolled back or rewritten *together with its checkpoints* is still caught — by
//! `verify_anchors_dir` / `verify_anchors_postgres` against a checkpoint a witness kept.
//!
//! - [`FileWitness`]: appends each checkpoint as one JSON line to a file (created mode 0644,
//!   opened `O_APPEND | O_NOFOLLOW`, so never through a symlink at the file's own name), then
//!   `fdatasync`s it; the directory is synced once when the file is created. A failed write is
//!   cut back to the file's length before it, so the file only ever holds complete lines.
//! - [`PostgresWitness`]: inserts each checkpoint into `<schema>.witness_checkpoints(id
//!   BIGSERIAL, key_id TEXT, size BIGINT, line TEXT, received_at TIMESTAMPTZ)`; the schema and
//!   table are created if missing (idempotent), the commit is synchronous.
//! - [`Witnesses`]: the sender. [`Witnesses::offer`] never blocks and never fails: it replaces
//!   the pending checkpoint (a later checkpoint covers everything an earlier one does, so only
//!   the latest is worth sending) and wakes the sender thread, which hands it to every witness.
//!   A witness that fails is logged (WARN, naming it and the reason), counted
//!   ([`WitnessStats::failures`]) and retried with the latest checkpoint after a back-off that
//!   doubles from [`WitnessOptions::retry_min`] to [`WitnessOptions::retry_max`]; appends and
//!   checkpoints go on regardless. [`Witnesses::flush`] waits (bounded) until every witness holds
//!   the latest checkpoint — shutdown uses it for the final checkpoint.
//!
//! What a witness proves: the ledger, at the time of that checkpoint, had that tree head.
//! Everything up to the latest checkpoint a witness holds is fixed; entries after it are covered
//! only by the ledger's own checkpoints and chain, which whoever controls the data directory can
//! rewrite.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use postgres::{Client, NoTls};

use crate::checkpoint::Checkpoint;
use crate::error::LedgerError;
use crate::store::PostgresStore;
use crate::store::file::{open_nofollow, read_nofollow, sync_dir};
use crate::store::postgres::{pg_error, reason};

/// The table a [`PostgresWitness`] writes, in its schema.
pub const WITNESS_TABLE: &str = "witness_checkpoints";

/// How long a [`PostgresWitness`] waits for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Somewhere outside the ledger's storage that keeps its signed checkpoints.
pub trait Witness: Send {
    /// A name for logs and metrics (`file:/path`, `postgres:host/db/schema`), never a password.
    fn name(&self) -> String;
    /// Stores `checkpoint` durably; `Ok` only once it is.
    fn send(&mut self, checkpoint: &Checkpoint) -> Result<(), LedgerError>;
}

/// Appends checkpoints as JSON lines to a file (see the module documentation).
#[derive(Debug)]
pub struct FileWitness {
    path: PathBuf,
    file: Option<File>,
}

impl FileWitness {
    /// A witness writing to `path`; the file is opened (created if absent) at the first send,
    /// and again after a failure.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        FileWitness {
            path: path.into(),
            file: None,
        }
    }

    fn open(&self) -> Result<File, LedgerError> {
        let existed = std::fs::symlink_metadata(&self.path).is_ok();
        let file = open_nofollow(
            OpenOptions::new().append(true).create(true).mode(0o644),
            &self.path,
        )?;
        let meta = file
            .metadata()
            .map_err(|e| LedgerError::io(&self.path, e))?;
        if !meta.is_file() {
            return Err(LedgerError::io(
                &self.path,
                std::io::Error::other("a witness file must be a regular file"),
            ));
        }
        if !existed && let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            sync_dir(dir)?;
        }
        Ok(file)
    }
}

impl Witness for FileWitness {
    fn name(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn send(&mut self, checkpoint: &Checkpoint) -> Result<(), LedgerError> {
        let mut line = serde_json::to_vec(checkpoint).map_err(|source| LedgerError::Encode {
            field: "checkpoint",
            source,
        })?;
        line.push(b'\n');
        let file = match self.file.take() {
            Some(file) => file,
            None => self.open()?,
        };
        let before = file
            .metadata()
            .map_err(|e| LedgerError::io(&self.path, e))?
            .len();
        let written = (&file).write_all(&line).and_then(|()| file.sync_data());
        if let Err(e) = written {
            // Never leave a partial line behind; reopen at the next try.
            let _ = file.set_len(before);
            return Err(LedgerError::io(&self.path, e));
        }
        self.file = Some(file);
        Ok(())
    }
}

/// Reads the checkpoints a [`FileWitness`] wrote, oldest first. A last line without its `\n`
/// (a write torn by a crash, never reported as sent) is skipped; any other line that is not a
/// checkpoint is [`LedgerError::Malformed`], naming its line.
pub fn read_witness_file(path: &Path) -> Result<Vec<Checkpoint>, LedgerError> {
    let bytes = read_nofollow(path)?.ok_or_else(|| {
        LedgerError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such witness file"),
        )
    })?;
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(end) => &bytes[..=end],
        None => &[][..],
    };
    parse_checkpoint_lines(complete, path)
}

/// Parses checkpoint JSON lines (blank lines skipped), naming the line at fault.
pub fn parse_checkpoint_lines(text: &[u8], path: &Path) -> Result<Vec<Checkpoint>, LedgerError> {
    let mut out = Vec::new();
    for (number, line) in (1..).zip(text.split(|b| *b == b'\n')) {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let checkpoint = serde_json::from_slice(line).map_err(|e| LedgerError::Malformed {
            path: path.to_path_buf(),
            line: number,
            reason: format!("not a signed checkpoint: {e}"),
        })?;
        out.push(checkpoint);
    }
    Ok(out)
}

/// Inserts checkpoints into a PostgreSQL table (see the module documentation).
pub struct PostgresWitness {
    url: String,
    schema: String,
    client: Option<Client>,
}

impl std::fmt::Debug for PostgresWitness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresWitness")
            .field("name", &self.name())
            .finish_non_exhaustive()
    }
}

impl PostgresWitness {
    /// A witness writing to `schema` at `url`, connected at the first send (and again after a
    /// failure). `schema` must be a plain identifier (`[a-z_][a-z0-9_]*`).
    pub fn new(url: &str, schema: &str) -> Result<Self, LedgerError> {
        if !PostgresStore::is_plain_schema(schema) {
            return Err(pg_error(
                "schema",
                format!("`{schema}` is not a plain identifier"),
            ));
        }
        Ok(PostgresWitness {
            url: url.to_owned(),
            schema: schema.to_owned(),
            client: None,
        })
    }

    fn connect(&self) -> Result<Client, LedgerError> {
        let mut config: postgres::Config = self
            .url
            .parse()
            .map_err(|e: postgres::Error| pg_error("parse url", reason(&e)))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        let mut client = config
            .connect(NoTls)
            .map_err(|e| pg_error("connect", reason(&e)))?;
        client
            .batch_execute(&format!(
                "CREATE SCHEMA IF NOT EXISTS {schema};
                 CREATE TABLE IF NOT EXISTS {schema}.{WITNESS_TABLE} (
                     id BIGSERIAL PRIMARY KEY, key_id TEXT NOT NULL, size BIGINT NOT NULL,
                     line TEXT NOT NULL, received_at TIMESTAMPTZ NOT NULL DEFAULT now());",
                schema = self.schema
            ))
            .map_err(|e| pg_error("create the witness table", reason(&e)))?;
        Ok(client)
    }
}

impl Witness for PostgresWitness {
    fn name(&self) -> String {
        format!(
            "postgres:{} (schema {})",
            PostgresStore::url_without_password(&self.url),
            self.schema
        )
    }

    fn send(&mut self, checkpoint: &Checkpoint) -> Result<(), LedgerError> {
        let line = serde_json::to_string(checkpoint).map_err(|source| LedgerError::Encode {
            field: "checkpoint",
            source,
        })?;
        let size = i64::try_from(checkpoint.size).unwrap_or(i64::MAX);
        let mut client = match self.client.take() {
            Some(client) => client,
            None => self.connect()?,
        };
        let sql = format!(
            "INSERT INTO {}.{WITNESS_TABLE} (key_id, size, line) VALUES ($1, $2, $3)",
            self.schema
        );
        client
            .execute(&sql, &[&checkpoint.key_id, &size, &line])
            .map_err(|e| pg_error("insert witness checkpoint", reason(&e)))?;
        self.client = Some(client);
        Ok(())
    }
}

/// Reads the checkpoints a [`PostgresWitness`] wrote into `schema` at `url`, oldest first.
/// Creates nothing: a missing table is an error naming the schema.
pub fn read_witness_postgres(url: &str, schema: &str) -> Result<Vec<Checkpoint>, LedgerError> {
    if !PostgresStore::is_plain_schema(schema) {
        return Err(pg_error(
            "schema",
            format!("`{schema}` is not a plain identifier"),
        ));
    }
    let mut client = Client::connect(url, NoTls).map_err(|e| pg_error("connect", reason(&e)))?;
    let rows = client
        .query(
            &format!("SELECT id, line FROM {schema}.{WITNESS_TABLE} ORDER BY id"),
            &[],
        )
        .map_err(|e| {
            pg_error(
                "select witness checkpoints",
                format!("schema {schema}: {}", reason(&e)),
            )
        })?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (id, line): (i64, String) = (row.get(0), row.get(1));
        out.push(
            serde_json::from_str(&line).map_err(|e| LedgerError::Malformed {
                path: PathBuf::from(format!("{schema}.{WITNESS_TABLE}")),
                line: u64::try_from(id).unwrap_or(0),
                reason: format!("row id {id} is not a signed checkpoint: {e}"),
            })?,
        );
    }
    Ok(out)
}

/// How [`Witnesses`] retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WitnessOptions {
    /// The first wait after a failure.
    pub retry_min: Duration,
    /// The longest wait between two tries (the wait doubles up to this).
    pub retry_max: Duration,
}

impl Default for WitnessOptions {
    fn default() -> Self {
        WitnessOptions {
            retry_min: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
        }
    }
}

/// What one witness has done since the start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessStats {
    /// [`Witness::name`].
    pub name: String,
    /// Checkpoints it stored.
    pub sent: u64,
    /// Sends that failed (each retried).
    pub failures: u64,
    /// Size of the latest checkpoint it stored (`None` before the first).
    pub size: Option<u64>,
    /// Why the latest send failed, until one succeeds.
    pub last_error: Option<String>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<HubState>,
    wake: Condvar,
}

#[derive(Debug)]
struct HubState {
    /// The latest checkpoint offered and its number (1 for the first offered).
    latest: Option<(u64, Checkpoint)>,
    /// Per witness: the number of the latest checkpoint it stored.
    done: Vec<u64>,
    stats: Vec<WitnessStats>,
    stop: bool,
}

/// Sends signed checkpoints to witnesses from a thread of its own (see the module
/// documentation). Dropping it stops the thread after the send in progress.
#[derive(Debug)]
pub struct Witnesses {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Witnesses {
    /// Starts the sender thread over `witnesses`.
    pub fn start(
        witnesses: Vec<Box<dyn Witness>>,
        options: WitnessOptions,
    ) -> Result<Self, LedgerError> {
        let stats = witnesses
            .iter()
            .map(|w| WitnessStats {
                name: w.name(),
                sent: 0,
                failures: 0,
                size: None,
                last_error: None,
            })
            .collect();
        let shared = Arc::new(Shared {
            state: Mutex::new(HubState {
                latest: None,
                done: vec![0; witnesses.len()],
                stats,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new()
            .name("ace-ledger-witness".to_owned())
            .spawn({
                let shared = shared.clone();
                move || send_loop(&shared, witnesses, options)
            })
            .map_err(|e| LedgerError::io("ace-ledger-witness", e))?;
        Ok(Witnesses {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands `checkpoint` to every witness; returns at once (it replaces one not yet sent).
    pub fn offer(&self, checkpoint: &Checkpoint) {
        let mut state = self.shared.state.lock();
        let number = state.latest.as_ref().map_or(0, |(n, _)| *n) + 1;
        state.latest = Some((number, checkpoint.clone()));
        drop(state);
        self.shared.wake.notify_all();
    }

    /// Waits up to `timeout` until every witness holds the latest offered checkpoint; says
    /// whether they all do.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state.lock();
        loop {
            let latest = state.latest.as_ref().map_or(0, |(n, _)| *n);
            if state.done.iter().all(|d| *d == latest) {
                return true;
            }
            if self
                .shared
                .wake
                .wait_until(&mut state, deadline)
                .timed_out()
            {
                let latest = state.latest.as_ref().map_or(0, |(n, _)| *n);
                return state.done.iter().all(|d| *d == latest);
            }
        }
    }

    /// What each witness has done, in the order given to [`Witnesses::start`].
    pub fn stats(&self) -> Vec<WitnessStats> {
        self.shared.state.lock().stats.clone()
    }
}

impl Drop for Witnesses {
    fn drop(&mut self) {
        self.shared.state.lock().stop = true;
        self.shared.wake.notify_all();
        // Not joined: a send may be waiting on the network; the thread ends after it.
        drop(self.thread.take());
    }
}

/// The sender thread: every witness behind the latest checkpoint (and not backing off) gets it.
fn send_loop(shared: &Shared, mut witnesses: Vec<Box<dyn Witness>>, options: WitnessOptions) {
    let count = witnesses.len();
    let mut retry_at: Vec<Option<Instant>> = vec![None; count];
    let mut backoff: Vec<Duration> = vec![options.retry_min; count];
    loop {
        let (number, checkpoint, due) = {
            let mut state = shared.state.lock();
            loop {
                if state.stop {
                    return;
                }
                let now = Instant::now();
                let latest = state.latest.as_ref().map_or(0, |(n, _)| *n);
                let behind: Vec<usize> = (0..count).filter(|i| state.done[*i] < latest).collect();
                let due: Vec<usize> = behind
                    .iter()
                    .copied()
                    .filter(|i| retry_at[*i].is_none_or(|at| at <= now))
                    .collect();
                if let (false, Some((number, cp))) = (due.is_empty(), &state.latest) {
                    break (*number, cp.clone(), due);
                }
                match behind.iter().filter_map(|i| retry_at[*i]).min() {
                    Some(at) if !behind.is_empty() => {
                        shared.wake.wait_until(&mut state, at);
                    }
                    _ => shared.wake.wait(&mut state),
                }
            }
        };
        for i in due {
            let result = witnesses[i].send(&checkpoint);
            let mut state = shared.state.lock();
            let stats = &mut state.stats[i];
            match result {
                Ok(()) => {
                    stats.sent += 1;
                    stats.size = Some(checkpoint.size);
                    stats.last_error = None;
                    state.done[i] = state.done[i].max(number);
                    (retry_at[i], backoff[i]) = (None, options.retry_min);
                }
                Err(err) => {
                    stats.failures += 1;
                    stats.last_error = Some(err.to_string());
                    tracing::warn!(
                        witness = %stats.name,
                        size = checkpoint.size,
                        error = %err,
                        retry_in_ms = backoff[i].as_millis() as u64,
                        "ledger witness failed to store a checkpoint; retrying"
                    );
                    retry_at[i] = Some(Instant::now() + backoff[i]);
                    backoff[i] = (backoff[i] * 2).min(options.retry_max);
                }
            }
            drop(state);
            shared.wake.notify_all();
        }
    }
}
