//! The server's ledger: opening its store — `{data_dir}/ledger/` or a PostgreSQL schema
//! (`ledger.store`) — with the sync mode of `ledger.sync`, and making it the core's recorder
//! ([`attach`]); the `config_changed` entry of every start ([`record_start`]); and the two
//! background tasks ([`spawn_tasks`]) — signing checkpoints when due and recording dead letters.
//! The final checkpoint is signed by `Core::close` at shutdown.
//!
//! The signing key is `{data_dir}/ledger/signing.key` whichever the store: the key is the
//! server's identity, not data to share with whoever can read the database.
//!
//! `ledger.witness` names witnesses outside the data directory (a file, a PostgreSQL schema)
//! that receive every signed checkpoint from a thread of their own (`ace_ledger::Witnesses`):
//! a failing one is logged, counted in `ace_comms_ledger_witness_failures_total` and retried,
//! and never holds up a publish. At start the ledger must extend the latest checkpoint the
//! witness file holds, or the server refuses to start, naming the file and what differs. Checkpoints are signed every `ledger.checkpoint_interval_ms`
//! (1 s by default) while entries come, so the tail only the chain protects stays that short.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ace_core::{Core, CoreError, LedgerRecorder, RequestContext};
use ace_envelope::{Clock, SYSTEM_DLQ};
use ace_ledger::{
    EntryKind, FileWitness, Hash, Ledger, LedgerError, LedgerKey, LedgerOptions, NewEntry,
    PostgresStore, PostgresWitness, Witness, WitnessOptions, Witnesses, ledger_dir,
};
use chrono::TimeDelta;
use tokio::task::JoinHandle;

use crate::config::{Config, LedgerConfig, LedgerStoreKind, LedgerSyncMode, LedgerWitnessConfig};
use crate::error::ServerError;

/// Opens the ledger's store (refusing a corrupt ledger or an unreachable database) and makes it
/// the core's recorder; the core as it was when `ledger.enabled` is false.
pub(crate) fn attach(
    config: &Config,
    clock: Arc<dyn Clock>,
    core: Core,
) -> Result<Core, ServerError> {
    if !config.ledger.enabled {
        tracing::warn!("the ledger is disabled (ledger.enabled: false): nothing is recorded");
        return Ok(core);
    }
    let options = LedgerOptions {
        checkpoint_every_entries: config.ledger.checkpoint_every_entries,
        checkpoint_interval: TimeDelta::milliseconds(
            i64::try_from(config.ledger.checkpoint_interval_ms).unwrap_or(i64::MAX),
        ),
        clock: clock.clone(),
        sync: config.ledger.sync_policy(),
    };
    // Synchronous like the engine's own open (the ledger replays and re-checks its chain), on a
    // thread of its own: the PostgreSQL client blocks on a runtime of its own, which must not
    // run inside ours.
    let opened = std::thread::scope(|scope| {
        scope
            .spawn(|| open(&config.ledger, &config.data_dir, options))
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    announce(&config.ledger, &opened);
    check_witness_file(&config.ledger.witness, &config.data_dir, &opened)?;
    if let Some(witnesses) = witnesses(&config.ledger.witness)? {
        // Set once, on a ledger just opened: it cannot already have witnesses.
        let _ = opened.set_witnesses(witnesses);
    }
    let recorder =
        LedgerRecorder::start(Arc::new(opened), clock).map_err(|source| ServerError::Core {
            op: "starting the ledger writer",
            source,
        })?;
    Ok(core.with_ledger(Arc::new(recorder)))
}

/// The ledger of `config.store` under `data_dir` (the signing key is there for both stores).
fn open(
    config: &LedgerConfig,
    data_dir: &Path,
    options: LedgerOptions,
) -> Result<Ledger, ServerError> {
    let in_dir = |source| ServerError::Ledger {
        data_dir: data_dir.display().to_string(),
        source,
    };
    match config.store {
        LedgerStoreKind::File => Ledger::open(data_dir, options).map_err(in_dir),
        LedgerStoreKind::Postgres => {
            let in_db = |source| ServerError::LedgerStore {
                store: postgres_name(config),
                source,
            };
            let store = PostgresStore::connect(&config.postgres.url, &config.postgres.schema)
                .map_err(in_db)?;
            let dir = ledger_dir(data_dir);
            std::fs::create_dir_all(&dir).map_err(|source| {
                in_dir(LedgerError::Io {
                    path: dir.clone(),
                    source,
                })
            })?;
            let key = LedgerKey::load_or_create(&dir).map_err(in_dir)?;
            Ledger::with_store(Box::new(store), key, options).map_err(in_db)
        }
    }
}

/// Refuses to start on a ledger that does not extend the latest checkpoint the witness file
/// holds (rolled back, with its checkpoints or not, or rewritten): appending would fork the
/// history the witness vouches for. A missing file (a new witness) is fine; an unreadable one
/// is only warned about (the witness is retried like any failing one).
fn check_witness_file(
    config: &LedgerWitnessConfig,
    data_dir: &Path,
    ledger: &Ledger,
) -> Result<(), ServerError> {
    if config.file.is_empty() {
        return Ok(());
    }
    let path = Path::new(&config.file);
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    let latest = match ace_ledger::read_witness_file(path) {
        Ok(mut kept) => kept.pop(),
        Err(err) => {
            tracing::warn!(witness = %path.display(), error = %err, "cannot read the ledger witness file to check the ledger against it");
            return Ok(());
        }
    };
    let Some(latest) = latest else {
        return Ok(());
    };
    ledger
        .check_anchor(&latest)
        .map_err(|problem| ServerError::Ledger {
            data_dir: data_dir.display().to_string(),
            source: LedgerError::Corrupt {
                seq: latest.size.min(ledger.size()),
                reason: format!(
                    "it does not extend the latest checkpoint the witness file {} holds (size {}, \
                 signed at {}): {problem}. See every difference with `ace-comms ledger verify \
                 --checkpoint {}`; to start from this ledger anyway (a restored backup), move \
                 the witness file aside",
                    path.display(),
                    latest.size,
                    latest.ts.to_rfc3339(),
                    path.display()
                ),
            },
        })
}

/// The witnesses `ledger.witness` names, started (they connect and open lazily, so an
/// unreachable witness never stops the start); `None` when it names none.
fn witnesses(config: &LedgerWitnessConfig) -> Result<Option<Witnesses>, ServerError> {
    let mut list: Vec<Box<dyn Witness>> = Vec::new();
    if !config.file.is_empty() {
        list.push(Box::new(FileWitness::new(&config.file)));
    }
    if !config.postgres.url.trim().is_empty() {
        let witness = PostgresWitness::new(&config.postgres.url, &config.postgres.schema).map_err(
            |source| ServerError::LedgerStore {
                store: format!("the ledger witness in schema {}", config.postgres.schema),
                source,
            },
        )?;
        list.push(Box::new(witness));
    }
    if list.is_empty() {
        tracing::info!(
            "no ledger witness (ledger.witness): a rollback of the ledger together with its \
             checkpoints is detectable only against a checkpoint saved elsewhere"
        );
        return Ok(None);
    }
    let names: Vec<String> = list.iter().map(|w| w.name()).collect();
    let options = WitnessOptions {
        retry_max: Duration::from_millis(config.retry_max_ms),
        ..WitnessOptions::default()
    };
    let started = Witnesses::start(list, options).map_err(|source| ServerError::LedgerStore {
        store: "the ledger witnesses".to_owned(),
        source,
    })?;
    tracing::info!(witnesses = ?names, "ledger checkpoints are sent to witnesses");
    Ok(Some(started))
}

/// `PostgreSQL at <url without password> (schema <schema>)`.
fn postgres_name(config: &LedgerConfig) -> String {
    format!(
        "PostgreSQL at {} (schema {})",
        ace_ledger::PostgresStore::url_without_password(&config.postgres.url),
        config.postgres.schema
    )
}

/// Says which store and sync mode the ledger runs with; under `interval`, warns what a power
/// loss can take.
fn announce(config: &LedgerConfig, ledger: &Ledger) {
    let store = match config.store {
        LedgerStoreKind::File => "file".to_owned(),
        LedgerStoreKind::Postgres => postgres_name(config),
    };
    tracing::info!(
        entries = ledger.size(),
        key_id = ledger.key_id(),
        %store,
        sync = ?config.sync,
        "ledger opened"
    );
    if config.sync == LedgerSyncMode::Interval {
        tracing::warn!(
            sync_interval_ms = config.sync_interval_ms,
            "ledger.sync is interval: a publish is answered once its ledger entries are written, \
             before they are synced; a crash of the server process loses none, but a power loss \
             or operating-system crash can lose the entries not yet synced (file store: the last \
             {} ms; PostgreSQL with synchronous_commit off: up to three wal_writer_delay, 600 ms \
             by default) and may leave a torn tail to repair; never an entry a signed checkpoint \
             covers (every checkpoint, and shutdown, syncs first)",
            config.sync_interval_ms
        );
    }
}

/// Records the start: a `config_changed` entry by the server carrying the SHA-256 of the
/// effective configuration (its JSON, without the PostgreSQL password) and of every credential
/// and policy file it loaded (`files`, by path, as a reload records them), so a reader can tell
/// which configuration and policies each stretch of the ledger ran under.
pub(crate) async fn record_start(
    core: &Core,
    config: &Config,
    files: BTreeMap<String, String>,
) -> Result<(), ServerError> {
    if core.ledger().is_none() {
        return Ok(());
    }
    // The password of the PostgreSQL store is a secret, not configuration: hashed without it.
    let mut shown = config.clone();
    if !config.ledger.postgres.url.is_empty() {
        let url = &config.ledger.postgres.url;
        shown.ledger.postgres.url = ace_ledger::PostgresStore::url_without_password(url);
    }
    if !config.ledger.witness.postgres.url.is_empty() {
        let url = &config.ledger.witness.postgres.url;
        shown.ledger.witness.postgres.url = ace_ledger::PostgresStore::url_without_password(url);
    }
    let json = serde_json::to_vec(&shown).map_err(|source| ServerError::Ledger {
        data_dir: config.data_dir.display().to_string(),
        source: LedgerError::Encode {
            field: "details",
            source,
        },
    })?;
    let sha256 = Hash::of(&[&json]).to_hex();
    let entry = NewEntry::new(
        EntryKind::ConfigChanged,
        ace_core::SYSTEM_PRINCIPAL_ID,
        "server.start",
    )
    .decision("start")
    .details(serde_json::json!({
        "op": "start",
        "config_sha256": sha256,
        "files": files,
        "version": env!("CARGO_PKG_VERSION"),
    }));
    core.record(vec![entry])
        .await
        .map_err(|source| ServerError::Core {
            op: "recording the start in the ledger",
            source,
        })
}

/// The ledger's background tasks; [`LedgerTasks::abort`] stops them at shutdown.
#[derive(Debug)]
pub(crate) struct LedgerTasks {
    handles: Vec<JoinHandle<()>>,
}

impl LedgerTasks {
    /// Stops every task (the final checkpoint is `Core::close`'s).
    pub(crate) fn abort(self) {
        self.handles.iter().for_each(JoinHandle::abort);
    }
}

/// Starts the checkpoint timer (every half `checkpoint_interval`, so a checkpoint is never much
/// later than due) and the dead-letter recorder, when the core keeps a ledger.
pub(crate) fn spawn_tasks(core: &Core, checkpoint_interval: Duration) -> LedgerTasks {
    if core.ledger().is_none() {
        return LedgerTasks {
            handles: Vec::new(),
        };
    }
    let tick = (checkpoint_interval / 2).max(Duration::from_millis(10));
    LedgerTasks {
        handles: vec![
            tokio::spawn(checkpoints(core.clone(), tick)),
            tokio::spawn(dead_letters(core.clone())),
        ],
    }
}

/// Signs a checkpoint whenever one is due, until aborted.
async fn checkpoints(core: Core, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match core.ledger_tick().await {
            Ok(Some(cp)) => tracing::debug!(size = cp.size, "ledger checkpoint"),
            Ok(None) => {}
            Err(err) => tracing::error!(error = %err, "ledger checkpoint failed"),
        }
    }
}

/// Records dead letters from the stream that keeps them (the one whose subjects include
/// `ace.comms.system.dlq.>`, `ACE_DLQ` by default). Without such a stream dead letters are not
/// kept at all, so there is nothing to record: the server says so once.
async fn dead_letters(core: Core) {
    let streams = match core.list_streams(&RequestContext::internal()).await {
        Ok(streams) => streams,
        Err(err) => {
            tracing::error!(error = %err, "dead letters are not recorded: listing streams failed");
            return;
        }
    };
    let Some(stream) = streams
        .into_iter()
        .find(|s| s.config.subjects.iter().any(|p| p == SYSTEM_DLQ))
        .map(|s| s.config.name)
    else {
        tracing::warn!(
            "no stream keeps `{SYSTEM_DLQ}`: dead letters are neither kept nor recorded in the ledger"
        );
        return;
    };
    loop {
        match core.record_dead_letters(&stream).await {
            Ok(()) => return, // the bus closed
            Err(CoreError::Bus(ace_bus::BusError::Closed)) => return,
            Err(err) => {
                tracing::error!(error = %err, %stream, "recording dead letters failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The ledger's metrics, copied from the ledger at each scrape (the ledger keeps its own
/// counts, so the append path pays nothing): `ace_comms_ledger_witness_sent_total{witness}`,
/// `ace_comms_ledger_witness_failures_total{witness}`, `ace_comms_ledger_witness_size{witness}`
/// (entries the latest checkpoint a witness holds covers) and `ace_comms_ledger_uncovered_entries`
/// (entries after the latest checkpoint, protected by the chain only).
#[derive(Debug, Clone)]
pub(crate) struct LedgerMetrics {
    ledger: Option<Arc<Ledger>>,
    /// Held while copying, so two scrapes at once never add the same increase twice.
    copying: Arc<std::sync::Mutex<()>>,
    sent: prometheus::IntCounterVec,
    failures: prometheus::IntCounterVec,
    size: prometheus::IntGaugeVec,
    uncovered: prometheus::IntGauge,
}

impl LedgerMetrics {
    /// Registers the ledger's metrics in `registry`.
    pub(crate) fn new(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        use prometheus::Opts;
        let sent = prometheus::IntCounterVec::new(
            Opts::new(
                "ace_comms_ledger_witness_sent_total",
                "Signed ledger checkpoints a witness stored, by witness.",
            ),
            &["witness"],
        )?;
        let failures = prometheus::IntCounterVec::new(
            Opts::new(
                "ace_comms_ledger_witness_failures_total",
                "Failed sends of a ledger checkpoint to a witness (each retried), by witness.",
            ),
            &["witness"],
        )?;
        let size = prometheus::IntGaugeVec::new(
            Opts::new(
                "ace_comms_ledger_witness_size",
                "Entries covered by the latest checkpoint a witness stored, by witness.",
            ),
            &["witness"],
        )?;
        let uncovered = prometheus::IntGauge::new(
            "ace_comms_ledger_uncovered_entries",
            "Ledger entries after the latest signed checkpoint (protected by the chain only).",
        )?;
        registry.register(Box::new(sent.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        registry.register(Box::new(size.clone()))?;
        registry.register(Box::new(uncovered.clone()))?;
        Ok(LedgerMetrics {
            ledger: None,
            copying: Arc::default(),
            sent,
            failures,
            size,
            uncovered,
        })
    }

    /// Follows `ledger` (none when the ledger is disabled).
    pub(crate) fn follow(&mut self, ledger: Option<Arc<Ledger>>) {
        self.ledger = ledger;
    }

    /// Copies the ledger's counts into the metrics.
    pub(crate) fn sync(&self) {
        let Some(ledger) = &self.ledger else {
            return;
        };
        let covered = ledger.latest_checkpoint().map_or(0, |cp| cp.size);
        self.uncovered
            .set(i64::try_from(ledger.size().saturating_sub(covered)).unwrap_or(i64::MAX));
        let Some(witnesses) = ledger.witnesses() else {
            return;
        };
        let _copying = self
            .copying
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for stats in witnesses.stats() {
            let label = [stats.name.as_str()];
            let sent = self.sent.with_label_values(&label);
            sent.inc_by(stats.sent.saturating_sub(sent.get()));
            let failures = self.failures.with_label_values(&label);
            failures.inc_by(stats.failures.saturating_sub(failures.get()));
            self.size.with_label_values(&label).set(
                stats
                    .size
                    .map_or(0, |s| i64::try_from(s).unwrap_or(i64::MAX)),
            );
        }
    }
}
