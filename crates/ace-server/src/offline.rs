//! Repairing a stream while the server is stopped ([`repair_offline`], behind `ace-comms stream
//! repair NAME --data DIR`): the embedded engine opened on the data directory with only that
//! stream — which takes the directory's lock, so a running server refuses it
//! (`BusError::Locked` naming its pid: use the admin API instead) — and the same repair as
//! `POST /api/v1/streams/{name}/repair`.
//!
//! A repair that accepts a loss is recorded like the online one: the server's ledger (as
//! configured: file or PostgreSQL, its witness file checked) is opened *before* anything is cut,
//! so a repair never happens unrecorded, and the `stream_repaired` entry is appended, synced and
//! covered by the final checkpoint signed when the ledger closes. The actor is who ran the
//! command on the host (the caller names it), the details say `via: offline`.

use std::sync::Arc;

use ace_bus::{Bus, EmbeddedBus, EmbeddedConfig, StreamRepair};
use ace_contracts::Registry;
use ace_core::{Core, CoreError, Hooks};
use ace_envelope::SystemClock;

use crate::config::Config;
use crate::error::ServerError;

/// Repairs `stream` under `config.data_dir` with no server running (see the module docs): a
/// dry run without `accept_loss`; `operator` is the actor of the ledger entry.
pub async fn repair_offline(
    config: &Config,
    stream: &str,
    accept_loss: bool,
    operator: &str,
) -> Result<StreamRepair, ServerError> {
    config.validate()?;
    let engine = EmbeddedConfig {
        dedup_max_entries: config.streams.dedup_max_entries,
        ..EmbeddedConfig::new(&config.data_dir)
    };
    let bus =
        Arc::new(
            EmbeddedBus::open_one(engine, stream).map_err(|source| ServerError::Engine {
                data_dir: config.data_dir.display().to_string(),
                source,
            })?,
        );
    // Opened before anything is cut: a repair that cannot be recorded does not happen.
    let core = if accept_loss {
        match recording_core(config, bus.clone()) {
            Ok(core) => Some(core),
            Err(e) => {
                close(&bus).await;
                return Err(e);
            }
        }
    } else {
        None
    };
    let repaired = bus.repair_stream(stream, accept_loss).await;
    let recorded = match (&repaired, &core) {
        (Ok(repair), Some(core)) if repair.repaired => {
            let entry = ace_core::stream_repaired_entry(operator, "offline", repair);
            core.record(vec![entry]).await
        }
        _ => Ok(()),
    };
    let closed = match &core {
        Some(core) => core.close().await,
        None => {
            close(&bus).await;
            Ok(())
        }
    };
    let repair = repaired.map_err(|e| failed("repairing the stream", CoreError::Bus(e)))?;
    recorded.map_err(|e| failed("recording the repair in the ledger", e))?;
    closed.map_err(|e| failed("closing the engine and the ledger", e))?;
    Ok(repair)
}

/// A core over `bus` whose only use is recording in the server's ledger.
fn recording_core(config: &Config, bus: Arc<EmbeddedBus>) -> Result<Core, ServerError> {
    let clock = Arc::new(SystemClock);
    let core = Core::new(
        bus,
        Arc::new(Registry::new()),
        clock.clone(),
        Hooks::development(),
        config.limits.core(),
    );
    crate::ledger::attach(config, clock, core)
}

fn failed(op: &'static str, source: CoreError) -> ServerError {
    ServerError::Core { op, source }
}

/// Closes the engine; a failure to flush is logged by the engine itself.
async fn close(bus: &EmbeddedBus) {
    let _ = bus.close().await;
}
