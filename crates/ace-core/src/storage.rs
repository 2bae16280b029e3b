//! Stream storage through the core: [`Core::repair_stream`] (judged as managing the stream, so
//! with the shipped roles only `admin` may; a refusal is a `denied` entry like every other),
//! [`Core::watch_stream_health`], and the ledger entries of storage events —
//! [`stream_repaired_entry`] (a loss someone accepted: who, the sequences, bytes and segment
//! files given up, where they were moved) and [`storage_damaged_entry`] (a stream that stopped
//! taking writes while running, once per transition).

use ace_bus::{HealthChange, StreamRepair};
use ace_ledger::{EntryKind, NewEntry};

use crate::context::RequestContext;
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::Action;
use crate::pipeline;

impl Core {
    /// Repairs a damaged stream: a dry run that changes nothing without `accept_loss`, a cut to
    /// its last intact record with it (see `Bus::repair_stream`). Authorized as managing the
    /// stream; a repair that changed the stream is a `stream_repaired` entry by the caller,
    /// recorded before the answer (a recording failure is logged: the repair is done).
    pub async fn repair_stream(
        &self,
        ctx: &RequestContext,
        stream: &str,
        accept_loss: bool,
    ) -> Result<StreamRepair, CoreError> {
        let principal = self.allow(ctx, Action::Manage(stream)).await?;
        let repair = self.bus.repair_stream(stream, accept_loss).await?;
        if repair.repaired {
            let entry = stream_repaired_entry(&principal.id, ctx.transport, &repair);
            pipeline::record(&*self.hooks.recorder, vec![entry]).await;
        }
        Ok(repair)
    }

    /// The streams that stop taking writes from now on, one change per transition (`None`
    /// when the engine does not report them). The server records each as a `storage_damaged`
    /// entry.
    pub fn watch_stream_health(&self) -> Option<tokio::sync::broadcast::Receiver<HealthChange>> {
        self.bus.watch_health()
    }
}

/// The `stream_repaired` entry of a repair `actor` asked for over `via` (`http`, `offline`):
/// subject the stream, details what was lost and where it went.
pub fn stream_repaired_entry(actor: &str, via: &str, repair: &StreamRepair) -> NewEntry {
    let lost = repair.lost.map_or_else(
        || "nothing lost".to_owned(),
        |r| format!("sequences {} to {} given up", r.first, r.last),
    );
    NewEntry::new(EntryKind::StreamRepaired, actor, repair.stream.as_str())
        .decision(format!(
            "repair: {lost}; {} -> {}",
            repair.state.as_str(),
            repair.state_after.as_str()
        ))
        .details(serde_json::json!({
            "stream": repair.stream,
            "via": via,
            "state_before": repair.state.as_str(),
            "state_after": repair.state_after.as_str(),
            "damage": repair.damage,
            "intact": repair.intact,
            "lost": repair.lost,
            "lost_bytes": repair.lost_bytes,
            "segments": repair.segments,
            "moved_to": repair.moved_to,
            "high_water": repair.high_water,
            "next_seq": repair.next_seq,
            "consumers": repair.consumers,
        }))
}

/// The `storage_damaged` entry of a stream that stopped taking writes while running.
pub fn storage_damaged_entry(change: &HealthChange) -> NewEntry {
    let damage = change.damage.as_ref();
    let reason = damage.map_or("", |d| d.reason.as_str());
    NewEntry::new(
        EntryKind::StorageDamaged,
        crate::context::SYSTEM_PRINCIPAL_ID,
        change.stream.as_str(),
    )
    .decision(format!("{}: {reason}", change.state.as_str()))
    .details(serde_json::json!({
        "stream": change.stream,
        "state": change.state.as_str(),
        "reason": reason,
        "segment": damage.and_then(|d| d.segment.as_deref()),
        "offset": damage.and_then(|d| d.offset),
        "last_seq": change.last_seq,
        "high_water": change.high_water,
    }))
}
