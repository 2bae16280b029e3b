//! The server's ledger: opening its store — `{data_dir}/ledger/` or a PostgreSQL schema
//! (`ledger.store`) — with the sync mode of `ledger.sync`, and making it the core's recorder
//! ([`attach`]); the `config_changed` entry of every start ([`record_start`]); and the two
//! background tasks ([`spawn_tasks`]) — signing checkpoints when due and recording dead letters.
//! The final checkpoint is signed by `Core::close` at shutdown.
//!
//! The signing key is `{data_dir}/ledger/signing.key` whichever the store: the key is the
//! server's identity, not data to share with whoever can read the database.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ace_core::{Core, CoreError, LedgerRecorder, RequestContext};
use ace_envelope::{Clock, SYSTEM_DLQ};
use ace_ledger::{
    EntryKind, Hash, Ledger, LedgerError, LedgerKey, LedgerOptions, NewEntry, PostgresStore,
    ledger_dir,
};
use chrono::TimeDelta;
use tokio::task::JoinHandle;

use crate::config::{Config, LedgerConfig, LedgerStoreKind, LedgerSyncMode};
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
