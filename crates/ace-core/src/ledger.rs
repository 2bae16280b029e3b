//! The ledger behind the pipeline: [`LedgerRecorder`], the [`Recorder`] that makes every
//! decision durable in an `ace_ledger::Ledger` with group commit, and the core's ledger reads
//! (checkpoint, proofs, entries, key) — each authorized as [`Action::ReadLedger`].
//!
//! `ace_ledger::Ledger` is blocking (file I/O, one fsync per batch). One dedicated writer thread
//! owns the appends: publishers hand their entries over a bounded channel and await a oneshot;
//! the thread takes everything queued, appends it with one `append_batch` (one fsync for many
//! publishers), signs a checkpoint if one is due, then answers every waiter. A full channel makes the
//! publisher wait (backpressure); nothing is ever dropped. Reads run on tokio's blocking pool.
//!
//! Under `LedgerSync::Interval` the append only writes, and the ledger syncs with the first batch
//! once the interval has passed; while no batch comes, the thread waits for one at most until
//! the next sync is due and then syncs (`Ledger::sync_if_due`), so an idle ledger is durable
//! within the interval too. The wait is a timeout on the channel's receive, run on a small
//! current-thread runtime the thread owns.
//!
//! # Invariants
//!
//! - `record` answers `Ok` only once its entries are durable under `LedgerSync::Always` (the
//!   default); under `LedgerSync::Interval` once written (they survive a crash of the process,
//!   and are durable within the interval). Either way in the order they were given; entries of
//!   one call are never split across two batches.
//! - A signed checkpoint only covers durable entries (the ledger syncs before it signs).
//! - After [`LedgerRecorder::close`] every queued entry is written and durable, a final
//!   checkpoint covers them, and later records fail with `UNAVAILABLE`. Closing the core then
//!   waits (at most [`WITNESS_FLUSH`]) for the ledger's witnesses, if any, to hold that checkpoint;
//!   sending checkpoints to witnesses otherwise never waits (`ace_ledger::Witnesses`).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ace_envelope::{Clock, Envelope};
use ace_ledger::{
    Checkpoint, ConsistencyProof, Entry, EntryFilter, EntryKind, InclusionProof, Ledger,
    LedgerError, NewEntry,
};
use async_trait::async_trait;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use crate::context::RequestContext;
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::{Action, Recorder};

/// Most `record` calls queued for the writer thread before publishers wait.
pub const RECORD_QUEUE: usize = 4_096;

/// Most entries one `GET /ledger/entries` answers.
pub const MAX_ENTRIES_PAGE: usize = 1_000;

/// How long closing waits for the ledger's witnesses to hold the final checkpoint.
pub(crate) const WITNESS_FLUSH: Duration = Duration::from_secs(5);

enum Job {
    Record(Vec<NewEntry>, oneshot::Sender<Result<(), CoreError>>),
    Close(oneshot::Sender<Result<Option<Checkpoint>, CoreError>>),
}

/// The [`Recorder`] over an `ace_ledger::Ledger`, with a writer thread doing group commit.
pub struct LedgerRecorder {
    ledger: Arc<Ledger>,
    jobs: mpsc::Sender<Job>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LedgerRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerRecorder")
            .field("size", &self.ledger.size())
            .finish_non_exhaustive()
    }
}

impl LedgerRecorder {
    /// Starts the writer thread over `ledger`; checkpoints are judged on `clock`.
    pub fn start(ledger: Arc<Ledger>, clock: Arc<dyn Clock>) -> Result<Self, CoreError> {
        let (jobs, rx) = mpsc::channel(RECORD_QUEUE);
        let writer = std::thread::Builder::new()
            .name("ace-ledger-writer".to_owned())
            .spawn({
                let ledger = ledger.clone();
                move || write_loop(&ledger, &*clock, rx)
            })
            .map_err(|source| CoreError::Ledger {
                op: "starting the writer thread",
                source: Arc::new(LedgerError::Io {
                    path: "ace-ledger-writer".into(),
                    source,
                }),
            })?;
        Ok(LedgerRecorder {
            ledger,
            jobs,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The ledger written to.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// Writes everything queued, signs a final checkpoint if any entry is not yet covered and
    /// stops the writer thread; returns that checkpoint. Later records fail (`UNAVAILABLE`).
    pub async fn close(&self) -> Result<Option<Checkpoint>, CoreError> {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Close(tx)).await.is_err() {
            return Ok(None); // closed already
        }
        let answer = rx.await.map_err(|_| CoreError::LedgerClosed)?;
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(writer) = writer {
            // The thread answered and is returning; joining it cannot wait on anything else.
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        }
        answer
    }
}

#[async_trait]
impl Recorder for LedgerRecorder {
    async fn record(&self, entries: Vec<NewEntry>) -> Result<(), CoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Job::Record(entries, tx))
            .await
            .map_err(|_| CoreError::LedgerClosed)?;
        rx.await.map_err(|_| CoreError::LedgerClosed)?
    }
}

/// After a failed idle sync, how long the writer waits before it tries again.
const SYNC_RETRY: Duration = Duration::from_secs(1);

/// The next job, waiting at most until the ledger's next sync is due and syncing then (under
/// `LedgerSync::Interval`); `None` once every sender is gone.
fn next_job(
    ledger: &Ledger,
    timer: Option<&tokio::runtime::Runtime>,
    rx: &mut mpsc::Receiver<Job>,
) -> Option<Job> {
    let mut retry = Duration::ZERO;
    loop {
        let (Some(timer), Some(wait)) = (timer, ledger.next_sync_in()) else {
            return rx.blocking_recv();
        };
        let wait = wait.max(retry);
        if let Ok(job) = timer.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
            return job;
        }
        retry = match ledger.sync_if_due() {
            Ok(_) => Duration::ZERO,
            Err(err) => {
                tracing::error!(error = %err, "ledger sync failed");
                SYNC_RETRY
            }
        };
    }
}

/// The small runtime whose timer bounds the writer's wait under `LedgerSync::Interval`.
fn sync_timer(ledger: &Ledger) -> Option<tokio::runtime::Runtime> {
    if ledger.sync_mode() == ace_ledger::LedgerSync::Always {
        return None;
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
    {
        Ok(timer) => Some(timer),
        Err(err) => {
            tracing::error!(
                error = %err,
                "no ledger sync timer: an idle ledger syncs only at its next batch or checkpoint"
            );
            None
        }
    }
}

/// The writer thread: group commit until a `Close` (or every sender is gone).
fn write_loop(ledger: &Ledger, clock: &dyn Clock, mut rx: mpsc::Receiver<Job>) {
    let timer = sync_timer(ledger);
    while let Some(first) = next_job(ledger, timer.as_ref(), &mut rx) {
        let mut batch = vec![first];
        while let Ok(job) = rx.try_recv() {
            batch.push(job);
        }
        let mut entries = Vec::new();
        let mut waiters = Vec::new();
        let mut closing = Vec::new();
        for job in batch {
            match job {
                Job::Record(mut some, tx) => {
                    entries.append(&mut some);
                    waiters.push(tx);
                }
                Job::Close(tx) => closing.push(tx),
            }
        }
        let written = ledger.append_batch(entries).map(drop).map_err(Arc::new);
        match &written {
            Err(err) => tracing::error!(error = %err, "ledger append failed"),
            // Before answering, so a publisher that sees `Ok` also sees the checkpoint it made due.
            Ok(()) if closing.is_empty() => {
                if let Err(err) = ledger.maybe_checkpoint(clock.now()) {
                    tracing::error!(error = %err, "ledger checkpoint failed");
                }
            }
            Ok(()) => {}
        }
        for tx in waiters {
            let _ = tx.send(written.clone().map_err(|source| CoreError::Ledger {
                op: "appending entries",
                source,
            }));
        }
        if !closing.is_empty() {
            let covered = ledger.latest_checkpoint().map_or(0, |cp| cp.size);
            // Signing syncs first; without one to sign, the sync still makes everything durable.
            let last = if ledger.size() > covered {
                ledger.checkpoint().map(Some)
            } else {
                ledger.sync().map(|()| None)
            }
            .map_err(Arc::new);
            for tx in closing {
                let _ = tx.send(last.clone().map_err(|source| CoreError::Ledger {
                    op: "signing the final checkpoint",
                    source,
                }));
            }
            rx.close();
            // Whatever raced in behind the close is refused: its waiter sees the channel drop.
            return;
        }
    }
    // Every sender is gone without a close: still leave nothing unsynced.
    if let Err(err) = ledger.sync() {
        tracing::error!(error = %err, "ledger sync at the writer's end failed");
    }
}

/// The ledger's public key, so a client can check checkpoint signatures
/// (`GET /api/v1/ledger/key`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerPublicKey {
    /// Always `ed25519`.
    pub algorithm: &'static str,
    /// The `key_id` checkpoints carry: the first 16 hex characters of SHA-256(public key).
    pub key_id: String,
    /// The 32-byte Ed25519 public key, hex.
    pub public_key: String,
}

/// A query of `GET /api/v1/ledger/entries`, checked by [`Core::ledger_entries`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryQuery {
    /// Only this kind.
    pub kind: Option<EntryKind>,
    /// Only entries recorded at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only entries recorded before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Only entries after this seq (the last seq of the previous page).
    pub after: Option<u64>,
    /// At most this many, 1 to [`MAX_ENTRIES_PAGE`] (default 100).
    pub limit: Option<usize>,
}

impl Core {
    /// The same core recording every decision in `recorder`'s ledger (it replaces the hooks'
    /// recorder) and answering the ledger reads from it.
    pub fn with_ledger(mut self, recorder: Arc<LedgerRecorder>) -> Self {
        self.hooks.recorder = recorder.clone();
        self.ledger = Some(recorder);
        self
    }

    /// The ledger recorder, when the core keeps a ledger.
    pub fn ledger(&self) -> Option<&Arc<LedgerRecorder>> {
        self.ledger.as_ref()
    }

    /// Records `entries` as the server (a `config_changed` at start, a dead letter): returns the
    /// recorder's answer, unlike the pipeline's own records which can only log.
    pub async fn record(&self, entries: Vec<NewEntry>) -> Result<(), CoreError> {
        self.hooks.recorder.record(entries).await
    }

    async fn ledger_for(&self, ctx: &RequestContext) -> Result<Arc<Ledger>, CoreError> {
        self.allow(ctx, Action::ReadLedger).await?;
        self.ledger
            .as_ref()
            .map(|r| r.ledger.clone())
            .ok_or(CoreError::LedgerDisabled)
    }

    /// The latest signed checkpoint; when there is none yet, one is made now.
    pub async fn ledger_checkpoint(&self, ctx: &RequestContext) -> Result<Checkpoint, CoreError> {
        let ledger = self.ledger_for(ctx).await?;
        blocking("reading the checkpoint", move || {
            match ledger.latest_checkpoint() {
                Some(cp) => Ok(cp),
                None => ledger.checkpoint(),
            }
        })
        .await
    }

    /// Signs a checkpoint if one is due (enough entries or old enough): the server's timer.
    pub async fn ledger_tick(&self) -> Result<Option<Checkpoint>, CoreError> {
        let Some(recorder) = &self.ledger else {
            return Ok(None);
        };
        let (ledger, now) = (recorder.ledger.clone(), self.clock.now());
        blocking("signing a checkpoint", move || ledger.maybe_checkpoint(now)).await
    }

    /// Proof that entry `seq` is in the tree of `size` entries (default: the latest
    /// checkpoint's size, or the current size when there is no checkpoint yet).
    pub async fn ledger_inclusion_proof(
        &self,
        ctx: &RequestContext,
        seq: u64,
        size: Option<u64>,
    ) -> Result<InclusionProof, CoreError> {
        let ledger = self.ledger_for(ctx).await?;
        blocking("proving inclusion", move || {
            let size = size.unwrap_or_else(|| {
                ledger
                    .latest_checkpoint()
                    .map_or_else(|| ledger.size(), |cp| cp.size)
            });
            ledger.inclusion_proof(seq, size)
        })
        .await
    }

    /// Proof that the tree of `from` entries is a prefix of the tree of `to` entries.
    pub async fn ledger_consistency_proof(
        &self,
        ctx: &RequestContext,
        from: u64,
        to: u64,
    ) -> Result<ConsistencyProof, CoreError> {
        if from > to {
            return Err(CoreError::InvalidRequest {
                field: "from",
                reason: format!("must not be greater than `to` ({from} > {to})"),
            });
        }
        let ledger = self.ledger_for(ctx).await?;
        blocking("proving consistency", move || {
            ledger.consistency_proof(from, to)
        })
        .await
    }

    /// Entries matching `query`, oldest first, at most `query.limit`.
    pub async fn ledger_entries(
        &self,
        ctx: &RequestContext,
        query: EntryQuery,
    ) -> Result<Vec<Entry>, CoreError> {
        let limit = query.limit.unwrap_or(100);
        if limit == 0 || limit > MAX_ENTRIES_PAGE {
            return Err(CoreError::InvalidRequest {
                field: "limit",
                reason: format!("must be 1 to {MAX_ENTRIES_PAGE}, got {limit}"),
            });
        }
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since > until
        {
            return Err(CoreError::InvalidRequest {
                field: "since",
                reason: format!("must not be after `until` ({since} > {until})"),
            });
        }
        let ledger = self.ledger_for(ctx).await?;
        let filter = EntryFilter {
            kind: query.kind,
            since: query.since,
            until: query.until,
            from_seq: query.after.map_or(0, |a| a.saturating_add(1)),
            limit: Some(limit),
        };
        blocking("reading entries", move || ledger.entries(&filter)).await
    }

    /// The public key checkpoints are signed with.
    pub async fn ledger_key(&self, ctx: &RequestContext) -> Result<LedgerPublicKey, CoreError> {
        let ledger = self.ledger_for(ctx).await?;
        let public_key = ledger
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(LedgerPublicKey {
            algorithm: "ed25519",
            key_id: ledger.key_id().to_owned(),
            public_key,
        })
    }

    /// Writes the ledger's queued entries, signs a final checkpoint and stops its writer; then
    /// waits up to [`WITNESS_FLUSH`] for the ledger's witnesses to hold that checkpoint (a
    /// witness still failing is logged, never an error of the close).
    pub(crate) async fn close_ledger(&self) -> Result<(), CoreError> {
        let Some(recorder) = &self.ledger else {
            return Ok(());
        };
        if let Some(cp) = recorder.close().await? {
            tracing::info!(size = cp.size, root = %cp.root_hash, "final ledger checkpoint");
        }
        if recorder.ledger().witnesses().is_some() {
            let ledger = recorder.ledger().clone();
            let flushed = tokio::task::spawn_blocking(move || {
                ledger.witnesses().is_none_or(|w| w.flush(WITNESS_FLUSH))
            })
            .await
            .unwrap_or(false);
            if !flushed {
                tracing::warn!(
                    wait_ms = WITNESS_FLUSH.as_millis() as u64,
                    "a ledger witness does not hold the final checkpoint"
                );
            }
        }
        Ok(())
    }
}

/// Runs a blocking ledger call on tokio's blocking pool; a size or index out of range is the
/// caller's fault (`INVALID_REQUEST` naming the argument), anything else is ours.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    call: impl FnOnce() -> Result<T, LedgerError> + Send + 'static,
) -> Result<T, CoreError> {
    let result = tokio::task::spawn_blocking(call)
        .await
        .map_err(|_| CoreError::LedgerClosed)?;
    result.map_err(|err| ledger_error(op, err))
}

/// A ledger failure as a core error: out-of-range arguments name the field.
pub(crate) fn ledger_error(op: &'static str, err: LedgerError) -> CoreError {
    match err {
        LedgerError::OutOfRange { what, value, size } => CoreError::InvalidRequest {
            field: what,
            reason: format!("{value} is out of range: the ledger holds {size} entries"),
        },
        other => CoreError::Ledger {
            op,
            source: Arc::new(other),
        },
    }
}

/// The `dead_lettered` entry of one dead letter as the bus publishes it (subject
/// `ace.comms.system.dlq.<stream>.evt.dead_letter.v1`, headers `ace-dlq-*`, payload
/// `comms.dlq.dead_letter` with the `original` envelope): about the original message when it is
/// still readable, with the dead letter's headers and its `detail` as details.
pub fn dead_letter_entry(dead: &Envelope) -> NewEntry {
    let header = |name: &str| dead.headers.get(name).cloned();
    let original = dead
        .payload
        .as_ref()
        .and_then(|p| p.get("original"))
        .filter(|o| !o.is_null())
        .and_then(|o| serde_json::from_value::<Envelope>(o.clone()).ok());
    let actor = crate::context::SYSTEM_PRINCIPAL_ID;
    let entry = match &original {
        Some(original) => NewEntry::for_envelope(EntryKind::DeadLettered, actor, original),
        None => NewEntry::new(EntryKind::DeadLettered, actor, dead.subject.clone()),
    };
    let reason = header("ace-dlq-reason").unwrap_or_default();
    let detail = dead
        .payload
        .as_ref()
        .and_then(|p| p.get("detail"))
        .and_then(serde_json::Value::as_str);
    let decision = match detail {
        Some(detail) => format!("dead-letter: {reason}: {detail}"),
        None => format!("dead-letter: {reason}"),
    };
    entry.decision(decision).details(serde_json::json!({
        "dead_letter_id": dead.id,
        "dead_letter_subject": dead.subject,
        "stream": header("ace-dlq-stream"),
        "seq": header("ace-dlq-seq").and_then(|s| s.parse::<u64>().ok()),
        "consumer": header("ace-dlq-consumer"),
        "deliveries": header("ace-dlq-deliveries").and_then(|s| s.parse::<u64>().ok()),
        "reason": reason,
        "detail": detail,
    }))
}

/// Whether `dead` is a refused held message, which the approvals path dead-letters and records
/// itself (header `ace-dlq-approval-id`): recording it here too would count it twice.
fn recorded_by_approvals(dead: &Envelope) -> bool {
    dead.headers.contains_key("ace-dlq-approval-id")
}

/// The durable consumer through which the core records dead letters.
pub const DEAD_LETTER_CONSUMER: &str = "ace-ledger";

impl Core {
    /// Records every dead letter stored in `stream` (the stream over
    /// `ace.comms.system.dlq.>`, `ACE_DLQ` by default) as a `dead_lettered` entry, until the bus
    /// closes. Runs as the server's background task.
    ///
    /// Why a durable consumer and not the places that dead-letter: the bus moves messages to the
    /// dead-letter subject itself, both on a `term` and when a consumer's `max_deliver` runs out
    /// (no core call sees the second), and a live subscription would miss what arrives while the
    /// server is down or while it is cut off as a slow consumer. The consumer `ace-ledger`
    /// acknowledges a dead letter only once its entry is durable, so every dead letter is
    /// recorded at least once — after a crash between the two, twice (the entries carry the
    /// dead letter's id in `details.dead_letter_id`, so a reader can tell).
    pub async fn record_dead_letters(&self, stream: &str) -> Result<(), CoreError> {
        let mut config = ace_bus::ConsumerConfig::new(DEAD_LETTER_CONSUMER);
        config.max_deliver = None; // never dead-letter a dead letter
        self.bus.add_consumer(stream, config).await?;
        loop {
            let wait = std::time::Duration::from_secs(5);
            let batch = match self
                .bus
                .fetch(stream, DEAD_LETTER_CONSUMER, 256, wait)
                .await
            {
                Ok(batch) => batch,
                Err(ace_bus::BusError::Closed) => return Ok(()),
                Err(err) => return Err(err.into()),
            };
            if batch.is_empty() {
                continue;
            }
            let entries = batch
                .iter()
                .filter(|d| !recorded_by_approvals(&d.envelope))
                .map(|d| dead_letter_entry(&d.envelope))
                .collect();
            if let Err(err) = self.record(entries).await {
                // Not acknowledged: redelivered after the consumer's ack_wait.
                tracing::error!(error = %err, count = batch.len(), "recording dead letters failed");
                continue;
            }
            for delivered in &batch {
                self.bus
                    .ack(stream, DEAD_LETTER_CONSUMER, delivered.seq)
                    .await?;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_bus::{EmbeddedBus, EmbeddedConfig, StreamConfig};
    use ace_contracts::Registry;
    use ace_envelope::{ErrorCode, Kind, SystemClock};
    use ace_ledger::{LedgerKey, LedgerOptions, MemoryStore};
    use serde_json::json;

    use crate::{CoreLimits, Hooks};

    fn ledger(every: u64) -> Arc<Ledger> {
        let options = LedgerOptions {
            checkpoint_every_entries: every,
            ..LedgerOptions::default()
        };
        Arc::new(
            Ledger::with_store(
                Box::new(MemoryStore::new()),
                LedgerKey::from_seed([7; 32]),
                options,
            )
            .expect("ledger"),
        )
    }

    fn recorder(every: u64) -> Arc<LedgerRecorder> {
        Arc::new(LedgerRecorder::start(ledger(every), Arc::new(SystemClock)).expect("starts"))
    }

    /// A recorder whose ledger syncs every `interval` of `clock` (checkpoints only on demand).
    fn interval_recorder(interval: Duration, clock: Arc<dyn Clock>) -> Arc<LedgerRecorder> {
        let options = LedgerOptions {
            checkpoint_every_entries: 1_000_000,
            checkpoint_interval: chrono::TimeDelta::days(1),
            clock: clock.clone(),
            sync: ace_ledger::LedgerSync::Interval(interval),
        };
        let ledger = Ledger::with_store(
            Box::new(MemoryStore::new()),
            LedgerKey::from_seed([7; 32]),
            options,
        )
        .expect("ledger");
        Arc::new(LedgerRecorder::start(Arc::new(ledger), clock).expect("starts"))
    }

    #[tokio::test]
    async fn given_interval_sync_when_recorded_then_answered_before_the_sync_and_close_makes_all_durable_under_a_checkpoint()
     {
        let recorder = interval_recorder(Duration::from_secs(3_600), Arc::new(SystemClock));
        // The first batch is checkpointed (there was none), so it is synced with it.
        recorder.record(vec![entry(0), entry(1)]).await.unwrap();
        let ledger = recorder.ledger().clone();
        assert_eq!(ledger.durable_size(), 2);
        recorder.record(vec![entry(2)]).await.unwrap();
        recorder.record(vec![entry(3)]).await.unwrap();
        assert_eq!((ledger.size(), ledger.durable_size()), (4, 2));
        let last = recorder.close().await.unwrap().expect("final checkpoint");
        assert_eq!(last.size, 4);
        assert_eq!(
            ledger.durable_size(),
            4,
            "the final checkpoint synced first"
        );
    }

    #[tokio::test]
    async fn given_interval_sync_and_an_idle_ledger_when_the_interval_passes_then_the_writer_syncs_on_its_timer()
     {
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let clock = Arc::new(ace_envelope::ManualClock::new(start));
        let recorder = interval_recorder(Duration::from_millis(20), clock.clone());
        // The first batch is checkpointed (there was none), so it is synced with it.
        recorder.record(vec![entry(0)]).await.unwrap();
        recorder.record(vec![entry(1)]).await.unwrap();
        let ledger = recorder.ledger().clone();
        assert_eq!(ledger.durable_size(), 1, "the interval has not passed");
        clock.advance(Duration::from_millis(20));
        // No record comes: only the writer's timer can sync (it wakes every 20 ms of real time).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while ledger.durable_size() < 2 {
            assert!(
                std::time::Instant::now() < deadline,
                "the idle writer never synced"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(recorder.close().await.unwrap().map(|cp| cp.size), Some(2));
    }

    fn entry(n: usize) -> NewEntry {
        NewEntry::new(EntryKind::ConfigChanged, "alice", format!("k{n}"))
    }

    fn core(dir: &std::path::Path, recorder: Option<Arc<LedgerRecorder>>) -> Core {
        let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).expect("bus opens");
        let core = Core::new(
            Arc::new(bus),
            Arc::new(Registry::embedded().expect("contracts")),
            Arc::new(SystemClock),
            Hooks::development(),
            CoreLimits::default(),
        );
        match recorder {
            Some(r) => core.with_ledger(r),
            None => core,
        }
    }

    #[tokio::test]
    async fn given_many_concurrent_records_when_awaited_then_every_entry_is_written_once_in_call_order()
     {
        let recorder = recorder(1_000_000);
        let calls = (0..64).map(|i| {
            let recorder = recorder.clone();
            tokio::spawn(async move { recorder.record(vec![entry(i * 2), entry(i * 2 + 1)]).await })
        });
        for call in futures_join(calls).await {
            call.expect("joined").expect("recorded");
        }
        let ledger = recorder.ledger();
        assert_eq!(ledger.size(), 128);
        let all = ledger.entries(&EntryFilter::default()).expect("entries");
        // The two entries of one call are adjacent and in order.
        for pair in all.chunks(2) {
            let first: usize = pair[0].subject[1..].parse().unwrap();
            assert_eq!(first % 2, 0, "{:?}", pair[0].subject);
            assert_eq!(pair[1].subject, format!("k{}", first + 1));
        }
    }

    async fn futures_join<T>(
        handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
    ) -> Vec<Result<T, tokio::task::JoinError>> {
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await);
        }
        out
    }

    #[tokio::test]
    async fn given_entries_past_the_checkpoint_count_when_recorded_then_a_checkpoint_follows_the_batch()
     {
        let recorder = recorder(3);
        recorder
            .record(vec![entry(0), entry(1), entry(2)])
            .await
            .unwrap();
        let cp = recorder.ledger().latest_checkpoint().expect("checkpointed");
        assert_eq!(cp.size, 3);
        cp.verify_signature(&recorder.ledger().verifying_key())
            .expect("signed by the ledger key");
    }

    #[tokio::test]
    async fn given_uncovered_entries_when_closed_then_a_final_checkpoint_covers_them_and_later_records_are_unavailable()
     {
        let recorder = recorder(1_000);
        recorder.record(vec![entry(0), entry(1)]).await.unwrap();
        // The first batch is checkpointed (there was none); the next is not due yet.
        recorder.record(vec![entry(2)]).await.unwrap();
        assert_eq!(
            recorder.ledger().latest_checkpoint().map(|cp| cp.size),
            Some(2)
        );
        let last = recorder
            .close()
            .await
            .expect("closes")
            .expect("final checkpoint");
        assert_eq!(last.size, 3);
        let err = recorder.record(vec![entry(3)]).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unavailable);
        assert!(
            recorder
                .close()
                .await
                .expect("closing twice is fine")
                .is_none()
        );
    }

    #[tokio::test]
    async fn given_a_core_with_a_ledger_when_publishing_then_the_accepted_entry_names_the_message_and_its_content()
     {
        let dir = tempfile::tempdir().unwrap();
        let recorder = recorder(1_000);
        let core = core(dir.path(), Some(recorder.clone()));
        let ctx = RequestContext::new("test");
        core.add_stream(&ctx, StreamConfig::new("KPI", &["ace.comms.http.>"]))
            .await
            .unwrap();
        let envelope = Envelope::builder(Kind::Event, "ace.comms.http.service.kpi.evt.v1")
            .payload_json(json!({"v": 1}))
            .build()
            .unwrap();
        core.publish(&ctx, envelope.clone())
            .await
            .expect("accepted");
        let query = EntryQuery {
            kind: Some(EntryKind::Accepted),
            ..EntryQuery::default()
        };
        let entries = core.ledger_entries(&ctx, query).await.unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].message_id, Some(envelope.id.to_string()));
        let expected = NewEntry::for_envelope(EntryKind::Accepted, "x", &envelope).content_sha256;
        assert!(expected.is_some());
        assert_eq!(entries[0].content_sha256, expected);
        assert_eq!(entries[0].details["stream"], "KPI");
    }

    #[tokio::test]
    async fn given_stream_and_consumer_changes_when_made_then_each_is_a_config_changed_entry_by_its_principal()
     {
        let dir = tempfile::tempdir().unwrap();
        let recorder = recorder(1_000);
        let core = core(dir.path(), Some(recorder.clone()));
        let ctx = RequestContext::new("test");
        core.add_stream(&ctx, StreamConfig::new("KPI", &["ace.comms.http.>"]))
            .await
            .unwrap();
        core.add_consumer(&ctx, "KPI", ace_bus::ConsumerConfig::new("w"))
            .await
            .unwrap();
        core.delete_consumer(&ctx, "KPI", "w").await.unwrap();
        core.delete_stream(&ctx, "KPI").await.unwrap();
        let entries = recorder.ledger().entries(&EntryFilter::default()).unwrap();
        let ops: Vec<&str> = entries.iter().map(|e| e.decision.as_str()).collect();
        assert_eq!(
            ops,
            [
                "add_stream",
                "add_consumer",
                "delete_consumer",
                "delete_stream"
            ]
        );
        for entry in &entries {
            assert_eq!(entry.kind, EntryKind::ConfigChanged);
            assert_eq!(entry.actor, crate::DEVELOPMENT_PRINCIPAL_ID);
            assert_eq!(entry.subject, "stream.KPI");
        }
        assert_eq!(
            entries[0].details["config"]["subjects"][0],
            "ace.comms.http.>"
        );
        assert_eq!(entries[1].details["config"]["name"], "w");
    }

    #[tokio::test]
    async fn given_bad_ledger_reads_when_asked_then_the_field_at_fault_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = recorder(1_000);
        recorder.record(vec![entry(0), entry(1)]).await.unwrap();
        let core = core(dir.path(), Some(recorder));
        let ctx = RequestContext::new("test");
        let field = |err: CoreError| match err {
            CoreError::InvalidRequest { field, .. } => field,
            other => panic!("expected INVALID_REQUEST, got {other:?}"),
        };
        let err = core
            .ledger_inclusion_proof(&ctx, 5, None)
            .await
            .unwrap_err();
        assert_eq!(field(err), "seq");
        let err = core
            .ledger_inclusion_proof(&ctx, 0, Some(9))
            .await
            .unwrap_err();
        assert_eq!(field(err), "tree_size");
        let err = core.ledger_consistency_proof(&ctx, 2, 1).await.unwrap_err();
        assert_eq!(field(err), "from");
        let err = core.ledger_consistency_proof(&ctx, 1, 3).await.unwrap_err();
        assert_eq!(field(err), "to");
        let limit = EntryQuery {
            limit: Some(MAX_ENTRIES_PAGE + 1),
            ..EntryQuery::default()
        };
        assert_eq!(
            field(core.ledger_entries(&ctx, limit).await.unwrap_err()),
            "limit"
        );
        let now = chrono::Utc::now();
        let times = EntryQuery {
            since: Some(now),
            until: Some(now - chrono::TimeDelta::seconds(1)),
            ..EntryQuery::default()
        };
        assert_eq!(
            field(core.ledger_entries(&ctx, times).await.unwrap_err()),
            "since"
        );
    }

    #[tokio::test]
    async fn given_no_checkpoint_yet_when_the_checkpoint_is_read_then_one_is_made_and_proofs_default_to_it()
     {
        let dir = tempfile::tempdir().unwrap();
        let recorder = recorder(1_000);
        recorder
            .record(vec![entry(0), entry(1), entry(2)])
            .await
            .unwrap();
        let core = core(dir.path(), Some(recorder));
        let ctx = RequestContext::new("test");
        let cp = core.ledger_checkpoint(&ctx).await.expect("made");
        assert_eq!(cp.size, 3);
        assert_eq!(
            core.ledger_checkpoint(&ctx).await.unwrap(),
            cp,
            "the same one after"
        );
        let proof = core.ledger_inclusion_proof(&ctx, 1, None).await.unwrap();
        assert_eq!(proof.tree_size, 3);
        proof.verify(&cp.root_hash).expect("verifies");
        let key = core.ledger_key(&ctx).await.unwrap();
        assert_eq!(key.key_id, cp.key_id);
        assert_eq!(key.public_key.len(), 64);
    }

    #[tokio::test]
    async fn given_a_core_without_a_ledger_when_read_then_not_found_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), None);
        let err = core
            .ledger_checkpoint(&RequestContext::new("test"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        assert!(err.to_string().contains("ledger.enabled"), "{err}");
    }

    #[test]
    fn given_a_dead_letter_when_turned_into_an_entry_then_it_is_about_the_original_with_the_headers_as_details()
     {
        let original = Envelope::builder(Kind::Event, "ace.comms.http.service.kpi.evt.v1")
            .payload_json(json!({"v": 1}))
            .build()
            .unwrap();
        let dead = Envelope::builder(Kind::Event, "ace.comms.system.dlq.KPI.evt.dead_letter.v1")
            .header("ace-dlq-stream", "KPI")
            .header("ace-dlq-seq", "4")
            .header("ace-dlq-consumer", "worker")
            .header("ace-dlq-deliveries", "5")
            .header("ace-dlq-reason", "max_deliver")
            .payload_json(json!({
                "stream": "KPI", "seq": 4, "reason": "max_deliver",
                "detail": "max_deliver 5 reached; last: nak", "original": original,
            }))
            .build()
            .unwrap();
        let entry = dead_letter_entry(&dead);
        assert_eq!(entry.kind, EntryKind::DeadLettered);
        assert_eq!(entry.actor, crate::SYSTEM_PRINCIPAL_ID);
        assert_eq!(entry.subject, original.subject);
        assert_eq!(entry.message_id, Some(original.id.to_string()));
        assert_eq!(entry.details["seq"], 4);
        assert_eq!(entry.details["consumer"], "worker");
        assert_eq!(entry.details["deliveries"], 5);
        assert_eq!(entry.details["reason"], "max_deliver");
        assert_eq!(entry.details["detail"], "max_deliver 5 reached; last: nak");
        assert_eq!(
            entry.decision,
            "dead-letter: max_deliver: max_deliver 5 reached; last: nak"
        );
        assert!(
            !recorded_by_approvals(&dead),
            "the bus's dead letters are ours to record"
        );
        let mut refused = dead;
        refused
            .headers
            .insert("ace-dlq-approval-id".into(), "ap-1".into());
        assert!(
            recorded_by_approvals(&refused),
            "the approvals path records its own"
        );
    }
}
