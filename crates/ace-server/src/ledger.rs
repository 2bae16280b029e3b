//! The server's ledger: opening `{data_dir}/ledger/` and making it the core's recorder
//! ([`attach`]), the `config_changed` entry of every start ([`record_start`]), and the two
//! background tasks ([`spawn_tasks`]) — signing checkpoints when due and recording dead letters.
//! The final checkpoint is signed by `Core::close` at shutdown.

use std::sync::Arc;
use std::time::Duration;

use ace_core::{Core, CoreError, LedgerRecorder, RequestContext};
use ace_envelope::{Clock, SYSTEM_DLQ};
use ace_ledger::{EntryKind, Hash, Ledger, LedgerError, LedgerOptions, NewEntry};
use chrono::TimeDelta;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::error::ServerError;

/// Opens the ledger under `config.data_dir` (refusing a corrupt one) and makes it the core's
/// recorder; the core as it was when `ledger.enabled` is false.
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
    };
    // Synchronous like the engine's own open: the ledger replays and re-checks its chain.
    let opened = Ledger::open(&config.data_dir, options).map_err(|source| ServerError::Ledger {
        data_dir: config.data_dir.display().to_string(),
        source,
    })?;
    tracing::info!(
        entries = opened.size(),
        key_id = opened.key_id(),
        "ledger opened"
    );
    let recorder =
        LedgerRecorder::start(Arc::new(opened), clock).map_err(|source| ServerError::Core {
            op: "starting the ledger writer",
            source,
        })?;
    Ok(core.with_ledger(Arc::new(recorder)))
}

/// Records the start: a `config_changed` entry by the server carrying the SHA-256 of the
/// effective configuration (its JSON), so a reader can tell which configuration each stretch of
/// the ledger ran under without the ledger ever holding a secret of it.
pub(crate) async fn record_start(core: &Core, config: &Config) -> Result<(), ServerError> {
    if core.ledger().is_none() {
        return Ok(());
    }
    let json = serde_json::to_vec(config).map_err(|source| ServerError::Ledger {
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
