//! Stream storage in the ledger. At start, what stream recovery did: one `storage_recovered`
//! entry per stream whose storage, when the engine opened it, had torn tails cut (never
//! acknowledged records; `recovery_truncated_bytes`) or damage found (`read_only` / `halted`,
//! with reason, segment and offset). While running ([`record_damage`]), one `storage_damaged`
//! entry per stream that stops taking writes — a failed write or fsync (`halted`), corruption
//! found on a read or damage found while rebuilding its state (`read_only`) — once per
//! transition, as the engine announces it (`Bus::watch_health`). The engine logs both at WARN;
//! `/metrics` shows the state (`ace_comms_stream_state`,
//! `ace_comms_recovery_truncated_bytes_total`) and `/ready` lists the degraded streams. A repair
//! is its own `stream_repaired` entry (`ace_core::Core::repair_stream`).

use ace_bus::{HealthChange, StreamInfo, StreamState};
use ace_core::{Core, RequestContext};
use ace_ledger::{EntryKind, NewEntry};
use tokio::sync::broadcast::{Receiver, error::RecvError};

use crate::error::ServerError;

/// Records a `storage_recovered` entry for every stream whose recovery cut or found something.
pub(crate) async fn record_recovery(core: &Core) -> Result<(), ServerError> {
    if core.ledger().is_none() {
        return Ok(());
    }
    let streams = core
        .list_streams(&RequestContext::internal())
        .await
        .map_err(|source| ServerError::Core {
            op: "listing the streams to record their recovery",
            source,
        })?;
    let entries: Vec<NewEntry> = streams.iter().filter_map(entry).collect();
    if entries.is_empty() {
        return Ok(());
    }
    core.record(entries)
        .await
        .map_err(|source| ServerError::Core {
            op: "recording stream recovery in the ledger",
            source,
        })
}

/// Records a `storage_damaged` entry for every stream the engine announces stopped taking
/// writes, until the announcements end or the task is aborted.
pub(crate) async fn record_damage(core: Core, mut changes: Receiver<HealthChange>) {
    loop {
        match changes.recv().await {
            Ok(change) => {
                let entry = ace_core::storage_damaged_entry(&change);
                if let Err(e) = core.record(vec![entry]).await {
                    tracing::error!(stream = %change.stream, error = %e, "recording storage damage failed");
                }
            }
            Err(RecvError::Lagged(missed)) => tracing::warn!(
                missed,
                "storage damage announcements missed: the streams' state is in /ready and stream info"
            ),
            Err(RecvError::Closed) => break,
        }
    }
}

/// The entry of one stream, when its recovery did or found anything.
fn entry(info: &StreamInfo) -> Option<NewEntry> {
    let truncated = info.counters.recovery_truncated_bytes;
    if info.state == StreamState::Ok && truncated == 0 {
        return None;
    }
    let damage = info.damage.as_ref();
    let decision = match damage {
        Some(d) => format!("{}: {}", info.state.as_str(), d.reason),
        None => format!("ok: cut {truncated} bytes of torn tails never acknowledged"),
    };
    let name = info.config.name.as_str();
    let entry = NewEntry::new(
        EntryKind::StorageRecovered,
        ace_core::SYSTEM_PRINCIPAL_ID,
        name,
    )
    .decision(decision)
    .details(serde_json::json!({
        "stream": name,
        "state": info.state.as_str(),
        "reason": damage.map(|d| d.reason.as_str()),
        "segment": damage.and_then(|d| d.segment.as_deref()),
        "offset": damage.and_then(|d| d.offset),
        "truncated_bytes": truncated,
        "last_seq": info.last_seq,
        "high_water": info.high_water,
    }));
    Some(entry)
}
