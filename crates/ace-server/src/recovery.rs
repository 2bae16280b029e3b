//! What stream recovery did, recorded in the ledger at start: one `storage_recovered` entry per
//! stream whose storage, when the engine opened it, had torn tails cut (never acknowledged
//! records; `recovery_truncated_bytes`) or damage found (`read_only` / `halted`, with reason,
//! segment and offset). The engine logs the same at WARN when it opens the stream; `/metrics`
//! counts it (`ace_comms_recovery_truncated_bytes_total`, `ace_comms_stream_state`) and `/ready`
//! lists the degraded streams.

use ace_bus::{StreamInfo, StreamState};
use ace_core::{Core, RequestContext};
use ace_ledger::{EntryKind, NewEntry};

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
