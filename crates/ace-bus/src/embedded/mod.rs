//! The embedded engine: the default `Bus` of ACE::COMMS, with nothing to install. Everything
//! lives under one data directory:
//!
//! ```text
//! <data_dir>/LOCK                  flock'ed while the engine is open: one process per directory
//! <data_dir>/state.redb            stream configs, consumer configs, consumer state (redb)
//! <data_dir>/streams/<name>/       the stream's ace-log segments (`lost/`: what repairs cut)
//! ```
//!
//! Opening takes the directory's lock first (`lock.rs`): a second engine on the same directory
//! — a second server, or an offline repair while the server runs — fails with
//! `BusError::Locked` naming the holder's pid.
//!
//! Core pub/sub and request/reply go through the live hub (`crate::live`). The parts:
//! `stream` (a stream's log, writer thread, dedup window, retention), `consumer` (the delivery
//! state machine, no I/O), `state` (the redb tables), `record` (the stored record layout),
//! `delivery` (publish, fetch, acks, dead letters) and `admin` (stream and consumer management).
//! This file opens and closes the engine and maps the `Bus` trait onto those parts. Two
//! background workers keep state moving without a caller: a flusher thread that writes dirty
//! consumer state to redb in one transaction every `state_flush_interval`, and a maintenance
//! task that applies age limits and moves over-delivered messages to their dead-letter subject
//! even when nobody fetches.
//!
//! Dead letters are envelopes of kind `event`, name `dead_letter`, schema
//! `comms.dlq.dead_letter@1.1.0`, on the stream's dead-letter subject, with the idempotency key
//! `dlq:<stream>:<consumer>:<seq>` (a retry after a crash between publishing the dead letter and
//! recording it is dropped as a duplicate by a DLQ stream within its dedup window), the headers
//! `ace-dlq-stream`, `ace-dlq-seq`, `ace-dlq-consumer`, `ace-dlq-deliveries`, `ace-dlq-reason`,
//! and the payload `ace_envelope::api::system::DeadLetter` (the crate docs list its fields).
//!
//! Storage faults stay inside their stream: a stream whose log recovery found damage (segments
//! ending below the high-water mark, a gap between segments, a cut or flipped bit in acknowledged
//! records), whose consumer acknowledged past that mark, or whose header blocks do not decode,
//! opens `read_only`; one whose write or fsync failed becomes `halted`. Either serves every
//! record before the damage, answers writes with `BusError::StreamDamaged`, and shows its state
//! in `StreamInfo::state`/`damage`; the engine and the other streams keep running. A full device
//! answers `BusError::NoSpace` and the stream resumes by itself (see `stream.rs`). A stream that
//! stops taking writes while the engine runs is announced once per transition on
//! `Bus::watch_health`; `Bus::repair_stream` brings a damaged or halted one back (`repair.rs`).
//!
//! Nothing inside the data directory is followed through a symbolic link: `streams/` and each
//! `streams/<name>/` are refused when they are links (`ace-log` checks the stream directory and
//! opens every segment and tombstone file with `O_NOFOLLOW`), and `state.redb` is opened with
//! `O_NOFOLLOW`. A link fails `EmbeddedBus::open` (so the server refuses to start) or the
//! `add_stream` that would use it, with an error naming the path: "refusing to follow symlink
//! <path>". The data directory itself may be a link (it is the operator's choice of location).

mod admin;
mod consumer;
mod delivery;
mod lock;
mod record;
mod repair;
mod state;
mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use ace_envelope::{Clock, Envelope, SystemClock};
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};

use self::admin::parse_filter;
use self::consumer::ConsumerCore;
use self::lock::DataDirLock;
pub(crate) use self::record::scoped_idempotency_key;
use self::record::{decode_envelope, unix_nanos};
use self::state::{StateDb, consumer_key};
use self::stream::{Consumer, Stream};
use crate::bus::{
    Accept, Bus, ConsumerConfig, ConsumerInfo, Delivered, HealthChange, LiveSubscription,
    PublishAck, StoredMessage, StreamConfig, StreamInfo, StreamRepair,
};
use crate::error::BusError;
use crate::live::{LiveConfig, LiveHub, Subscription};

/// How often a waiting fetch looks again even without a publish (a manual clock may have moved).
const FETCH_POLL: Duration = Duration::from_millis(50);
/// Health changes buffered for a slow watcher before it is told it missed some.
const HEALTH_BUFFER: usize = 256;

/// How the embedded engine is set up.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The data directory (created when missing).
    pub data_dir: PathBuf,
    /// The time source for ack_wait, backoff, TTL, not_before and dedup windows.
    pub clock: Arc<dyn Clock>,
    /// The live hub's buffers and limits.
    pub live: LiveConfig,
    /// Most time between a consumer-state change and its write to redb.
    pub state_flush_interval: Duration,
    /// How often age limits and overdue redeliveries are processed without a caller.
    pub maintenance_interval: Duration,
    /// Most values (envelope ids plus idempotency keys) one stream's dedup window remembers;
    /// past it the oldest are forgotten before the stream's `dedup_window` ends. About 80 bytes
    /// each: the default, 1,048,576, caps a stream's window near 80 MiB.
    pub dedup_max_entries: usize,
    /// The storage seam every mutating call of the engine goes through — the streams' logs,
    /// `state.redb` and the directories: the operating system's calls by default; tests inject
    /// a full device, a failing fsync or a simulated power cut.
    pub durability: Arc<dyn ace_log::Durability>,
}

/// The default `EmbeddedConfig::dedup_max_entries`.
pub const DEFAULT_DEDUP_MAX_ENTRIES: usize = 1 << 20;

impl EmbeddedConfig {
    /// Defaults for `data_dir`: the system clock, a 20 ms state flush, 100 ms maintenance.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            clock: Arc::new(SystemClock),
            live: LiveConfig::default(),
            state_flush_interval: Duration::from_millis(20),
            maintenance_interval: Duration::from_millis(100),
            dedup_max_entries: DEFAULT_DEDUP_MAX_ENTRIES,
            durability: Arc::new(ace_log::OsDurability),
        }
    }

    /// The same with another clock (tests move a `ManualClock`).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

/// The embedded engine. Dropping it closes it (flushes state, stops its threads).
#[derive(Debug)]
pub struct EmbeddedBus {
    inner: Arc<Inner>,
}

struct Inner {
    config: EmbeddedConfig,
    live: LiveHub,
    db: RwLock<Option<Arc<StateDb>>>,
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    closed: AtomicBool,
    flusher: Mutex<Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>>,
    maintenance: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Serialises stream and consumer management (rare, and simpler to reason about alone).
    admin: tokio::sync::Mutex<()>,
    /// Every stream sends here when it stops taking writes while the engine runs.
    health: tokio::sync::broadcast::Sender<HealthChange>,
    /// The data directory's `LOCK`, held until shutdown.
    lock: Mutex<Option<DataDirLock>>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBus")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedBus {
    /// Opens the data directory: takes its lock (`BusError::Locked` when another process holds
    /// it), then reopens every stream and durable consumer where it stopped. Starts the
    /// maintenance task when called inside a tokio runtime.
    pub fn open(config: EmbeddedConfig) -> Result<Self, BusError> {
        Self::open_filtered(config, |_| true)
    }

    /// Like [`EmbeddedBus::open`], with only the stream `name` (when it exists): maintenance of
    /// one stream while the server is stopped, without opening the others' files.
    pub fn open_one(config: EmbeddedConfig, name: &str) -> Result<Self, BusError> {
        Self::open_filtered(config, |stream| stream == name)
    }

    fn open_filtered(
        config: EmbeddedConfig,
        keep: impl Fn(&str) -> bool,
    ) -> Result<Self, BusError> {
        ace_log::create_dir_all(&*config.durability, &config.data_dir)
            .map_err(|source| refusal(&config.data_dir, source))?;
        let lock = DataDirLock::acquire(&config.data_dir)?;
        let streams_dir = config.data_dir.join("streams");
        refuse_link(&streams_dir)?;
        ace_log::create_dir_all(&*config.durability, &streams_dir)
            .map_err(|source| refusal(&streams_dir, source))?;
        let db = Arc::new(StateDb::open(&config.data_dir, config.durability.clone())?);
        let inner = Arc::new(Inner {
            live: LiveHub::new(config.live.clone()),
            config,
            db: RwLock::new(Some(db.clone())),
            streams: RwLock::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
            flusher: Mutex::new(None),
            maintenance: Mutex::new(None),
            admin: tokio::sync::Mutex::new(()),
            health: tokio::sync::broadcast::channel(HEALTH_BUFFER).0,
            lock: Mutex::new(Some(lock)),
        });
        let stored = db.streams()?;
        inner.discard_leftovers(&stored)?;
        for cfg in stored.into_iter().filter(|c| keep(&c.name)) {
            let stream = inner.reopen_stream(&db, cfg)?;
            inner.streams.write().insert(stream.name.clone(), stream);
        }
        inner.start_flusher()?;
        inner.start_maintenance();
        Ok(EmbeddedBus { inner })
    }

    /// The live hub (statistics: subscriptions, cut-offs).
    pub fn live(&self) -> &LiveHub {
        &self.inner.live
    }
}

impl Drop for EmbeddedBus {
    fn drop(&mut self) {
        self.inner.shutdown();
    }
}

impl Inner {
    fn now_ns(&self) -> u64 {
        unix_nanos(self.config.clock.now())
    }

    fn check_open(&self) -> Result<(), BusError> {
        if self.closed.load(AtomicOrdering::Acquire) {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    fn db(&self) -> Result<Arc<StateDb>, BusError> {
        self.db.read().clone().ok_or(BusError::Closed)
    }

    fn stream_dir(&self, name: &str) -> PathBuf {
        self.config.data_dir.join("streams").join(name)
    }

    /// Takes a deleted stream's directory away for good: it is renamed aside (a name no stream
    /// can have) and the rename made durable before its files are removed, so a crash at any
    /// point can never leave the old segments — or its high-water mark — under the name for a
    /// new stream of the same name to pick up.
    fn discard_stream_dir(&self, name: &str) -> Result<(), BusError> {
        let streams = self.config.data_dir.join("streams");
        let (dir, aside) = (
            streams.join(name),
            streams.join(format!("{DISCARDED}{name}-{}", self.now_ns())),
        );
        let durability = &*self.config.durability;
        durability
            .rename(&dir, &aside)
            .and_then(|()| durability.sync_dir(&streams))
            .map_err(|source| refusal(&dir, source))?;
        if let Err(e) = std::fs::remove_dir_all(&aside) {
            // Nothing refers to it any more; the next start removes it.
            tracing::warn!(path = %aside.display(), error = %e, "could not remove a deleted stream's files");
        }
        Ok(())
    }

    /// At open: removes what deletions left behind — directories renamed aside, and the
    /// directory of a stream whose deletion was recorded but not carried out before a crash
    /// (a stream's row is written before its directory is made, so a directory without a row
    /// is always one being deleted).
    fn discard_leftovers(&self, stored: &[StreamConfig]) -> Result<(), BusError> {
        let streams = self.config.data_dir.join("streams");
        let entries = std::fs::read_dir(&streams).map_err(|source| refusal(&streams, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| refusal(&streams, source))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(DISCARDED) {
                if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                    tracing::warn!(path = %entry.path().display(), error = %e, "could not remove a deleted stream's files");
                }
            } else if entry.path().is_dir() && !stored.iter().any(|c| c.name == name) {
                tracing::warn!(stream = %name, "removing the directory of a stream whose deletion a crash interrupted");
                self.discard_stream_dir(&name)?;
            }
        }
        Ok(())
    }

    fn stream(&self, name: &str) -> Result<Arc<Stream>, BusError> {
        self.check_open()?;
        self.streams
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| BusError::StreamNotFound {
                stream: name.to_owned(),
            })
    }

    fn consumer(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<(Arc<Stream>, Arc<Consumer>), BusError> {
        let s = self.stream(stream)?;
        let c = s.consumers.read().get(consumer).cloned();
        let c = c.ok_or_else(|| BusError::ConsumerNotFound {
            stream: stream.to_owned(),
            consumer: consumer.to_owned(),
        })?;
        Ok((s, c))
    }

    /// Reopens a stored stream with its durable consumers, each resumed from its state.
    fn reopen_stream(&self, db: &StateDb, cfg: StreamConfig) -> Result<Arc<Stream>, BusError> {
        let name = cfg.name.clone();
        let stream = Stream::open(&self.stream_dir(&name), cfg, &self.config, &self.health)?;
        for stored in db.consumers(&name)? {
            let filter = parse_filter(&stored.config)?;
            let (core, from) = match db.consumer_state(&name, &stored.config.name)? {
                Some(p) => {
                    let from = p.ack_floor + 1;
                    let high_water = stream.log.state().high_water;
                    if p.ack_floor > high_water {
                        stream.mark_damaged(format!(
                            "consumer `{}` acknowledged up to sequence {}, above the stream's \
                             high-water mark {high_water}: the stream's files were rolled back",
                            stored.config.name, p.ack_floor
                        ));
                    }
                    (
                        ConsumerCore::restore(stored.config.clone(), filter, p),
                        from,
                    )
                }
                None => (
                    ConsumerCore::new(stored.config.clone(), filter, stored.start_seq),
                    stored.start_seq,
                ),
            };
            let mut core = core;
            if let Err(e) = stream.replay_into(&mut core, from) {
                // Damage in one stream never stops the engine: serve what was replayed.
                stream.mark_damaged(format!("replaying consumer `{}`: {e}", stored.config.name));
            }
            let consumer = Consumer::new(stored.config.name.clone(), core);
            stream
                .consumers
                .write()
                .insert(consumer.name.clone(), consumer);
        }
        if let Err(e) = stream.rebuild_retention() {
            stream.mark_damaged(format!("rebuilding retention: {e}"));
        }
        Ok(stream)
    }

    fn start_flusher(self: &Arc<Self>) -> Result<(), BusError> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let inner = self.clone();
        let interval = self.config.state_flush_interval;
        let handle = std::thread::Builder::new()
            .name("ace-bus-state-flusher".to_owned())
            .spawn(move || {
                use std::sync::mpsc::RecvTimeoutError;
                loop {
                    let stop = !matches!(rx.recv_timeout(interval), Err(RecvTimeoutError::Timeout));
                    if let Err(e) = inner.flush_state() {
                        tracing::error!(error = %e, "consumer state flush failed");
                    }
                    if stop {
                        break;
                    }
                }
            })
            .map_err(|source| BusError::Io {
                path: self.config.data_dir.display().to_string(),
                source,
            })?;
        *self.flusher.lock() = Some((tx, handle));
        Ok(())
    }

    fn start_maintenance(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak: Weak<Inner> = Arc::downgrade(self);
        let interval = self.config.maintenance_interval;
        let task = rt.spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(inner) = weak.upgrade() else { break };
                if inner.check_open().is_err() {
                    break;
                }
                inner.maintain().await;
            }
        });
        *self.maintenance.lock() = Some(task);
    }

    /// Age limits, then overdue deliveries and due `not_before` messages of every consumer.
    async fn maintain(&self) {
        let streams: Vec<Arc<Stream>> = self.streams.read().values().cloned().collect();
        for s in streams {
            if s.config().max_age.is_some() {
                s.apply_limits(self.now_ns());
            }
            let consumers: Vec<Arc<Consumer>> = s.consumers.read().values().cloned().collect();
            for c in consumers {
                let out = c.core.lock().next_batch(0, self.now_ns());
                if !out.done.is_empty() || !out.dead.is_empty() {
                    c.touch();
                    s.settle_done(&out.done);
                    self.dead_letter(&s, &c, out.dead).await;
                }
                if c.core.lock().has_ready() {
                    s.notify.notify_waiters();
                }
            }
        }
    }

    /// Writes every dirty durable consumer's state in one transaction.
    fn flush_state(&self) -> Result<(), BusError> {
        let Some(db) = self.db.read().clone() else {
            return Ok(());
        };
        let mut rows = Vec::new();
        for s in self.streams.read().values() {
            for c in s.consumers.read().values() {
                if c.take_dirty() {
                    let core = c.core.lock();
                    if core.config().durable {
                        rows.push((consumer_key(&s.name, &c.name), core.persisted()));
                    }
                }
            }
        }
        db.put_states(&rows)
    }

    /// Stops everything, in an order that loses nothing: writers drain, state flushes, files close.
    fn shutdown(&self) {
        if self.closed.swap(true, AtomicOrdering::AcqRel) {
            return;
        }
        if let Some(task) = self.maintenance.lock().take() {
            task.abort();
        }
        let streams: Vec<Arc<Stream>> = self.streams.read().values().cloned().collect();
        for s in &streams {
            s.shutdown();
        }
        if let Some((tx, handle)) = self.flusher.lock().take() {
            drop(tx);
            // The flusher's last pass already logged any failure.
            let _ = handle.join();
        }
        if let Err(e) = self.flush_state() {
            tracing::error!(error = %e, "final consumer state flush failed");
        }
        self.streams.write().clear();
        self.db.write().take();
        self.lock.lock().take();
    }
}

/// Fails with `BusError::Io` ("refusing to follow symlink <path>") when `path` is a symbolic
/// link; an absent path is fine.
pub(crate) fn refuse_link(path: &std::path::Path) -> Result<(), BusError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(BusError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(format!("refusing to follow symlink {}", path.display())),
        }),
        _ => Ok(()),
    }
}

/// The error of a failed call on `path`: a symlink named as `refuse_link` does, any other
/// failure as `BusError::Io`.
/// The prefix of a deleted stream's directory while its files are removed (a stream name
/// cannot start with a dot).
const DISCARDED: &str = ".deleted-";

pub(crate) fn refusal(path: &std::path::Path, source: std::io::Error) -> BusError {
    refuse_link(path).err().unwrap_or_else(|| BusError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[async_trait]
impl LiveSubscription for Subscription {
    fn id(&self) -> u64 {
        Subscription::id(self)
    }

    async fn next(&mut self) -> Option<Arc<Envelope>> {
        Subscription::next(self).await
    }
}

#[async_trait]
impl Bus for EmbeddedBus {
    async fn publish(&self, envelope: Envelope) -> Result<PublishAck, BusError> {
        self.inner.publish(envelope).await
    }

    async fn publish_batch(&self, envelopes: Vec<Envelope>) -> Vec<Result<PublishAck, BusError>> {
        self.inner.publish_batch(envelopes).await
    }

    async fn subscribe_filtered(
        &self,
        pattern: &str,
        queue: Option<&str>,
        accept: Option<Accept>,
    ) -> Result<Box<dyn LiveSubscription>, BusError> {
        self.inner.check_open()?;
        let sub = self.inner.live.subscribe_filtered(pattern, queue, accept)?;
        Ok(Box::new(sub))
    }

    async fn request(&self, envelope: Envelope, timeout: Duration) -> Result<Envelope, BusError> {
        self.inner.check_open()?;
        self.inner.live.request(envelope, timeout).await
    }

    async fn add_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        self.inner.add_stream(config).await
    }

    async fn update_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        self.inner.update_stream(config).await
    }

    async fn delete_stream(&self, stream: &str) -> Result<(), BusError> {
        self.inner.delete_stream(stream).await
    }

    async fn stream_info(&self, stream: &str) -> Result<StreamInfo, BusError> {
        let s = self.inner.stream(stream)?;
        Ok(self.inner.stream_info(&s))
    }

    async fn list_streams(&self) -> Result<Vec<StreamInfo>, BusError> {
        self.inner.check_open()?;
        let streams: Vec<Arc<Stream>> = self.inner.streams.read().values().cloned().collect();
        Ok(streams.iter().map(|s| self.inner.stream_info(s)).collect())
    }

    async fn add_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, BusError> {
        self.inner.add_consumer(stream, config).await
    }

    async fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<(), BusError> {
        self.inner.delete_consumer(stream, consumer).await
    }

    async fn consumer_info(&self, stream: &str, consumer: &str) -> Result<ConsumerInfo, BusError> {
        let (s, c) = self.inner.consumer(stream, consumer)?;
        Ok(Inner::consumer_info(&s, &c))
    }

    async fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, BusError> {
        let s = self.inner.stream(stream)?;
        let consumers: Vec<Arc<Consumer>> = s.consumers.read().values().cloned().collect();
        Ok(consumers
            .iter()
            .map(|c| Inner::consumer_info(&s, c))
            .collect())
    }

    async fn fetch_filtered(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
        accept: Option<Accept>,
    ) -> Result<Vec<Delivered>, BusError> {
        self.inner
            .fetch(stream, consumer, batch, expires, accept)
            .await
    }

    async fn ack(&self, stream: &str, consumer: &str, seq: u64) -> Result<(), BusError> {
        self.inner.settle_call(stream, consumer, seq, |core, now| {
            core.ack(seq, now).map(|o| o.done)
        })
    }

    async fn nak(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        delay: Option<Duration>,
    ) -> Result<(), BusError> {
        self.inner.settle_call(stream, consumer, seq, |core, now| {
            core.nak(seq, delay, now).map(|()| Vec::new())
        })
    }

    async fn term(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        reason: &str,
    ) -> Result<(), BusError> {
        self.inner.term(stream, consumer, seq, reason).await
    }

    async fn in_progress(&self, stream: &str, consumer: &str, seq: u64) -> Result<(), BusError> {
        self.inner.settle_call(stream, consumer, seq, |core, now| {
            core.in_progress(seq, now).map(|()| Vec::new())
        })
    }

    async fn get_message(&self, stream: &str, seq: u64) -> Result<Option<StoredMessage>, BusError> {
        let s = self.inner.stream(stream)?;
        let rec = s.log.read(seq).map_err(|source| s.log_error(source))?;
        if rec.is_none() {
            // An acknowledged message the damage took: say so rather than "not found".
            let state = s.log.state();
            if seq > state.last_seq
                && seq <= state.high_water
                && let Some(refusal) = s.refusal()
            {
                return Err(refusal);
            }
        }
        rec.map(|rec| {
            Ok(StoredMessage {
                seq,
                stored_at: chrono::DateTime::from_timestamp_nanos(
                    i64::try_from(rec.timestamp_ns).unwrap_or(i64::MAX),
                ),
                envelope: decode_envelope(stream, seq, &rec.payload)?,
            })
        })
        .transpose()
    }

    async fn repair_stream(
        &self,
        stream: &str,
        accept_loss: bool,
    ) -> Result<StreamRepair, BusError> {
        // A task of its own: a caller that gives up (a request timeout) must not stop a repair
        // half-way, between taking the stream offline and putting the repaired one back.
        let inner = Arc::clone(&self.inner);
        let name = stream.to_owned();
        tokio::spawn(async move { inner.repair_stream(&name, accept_loss).await })
            .await
            .map_err(|e| BusError::Storage {
                stream: stream.to_owned(),
                reason: format!("the repair stopped: {e}"),
            })?
    }

    fn watch_health(&self) -> Option<tokio::sync::broadcast::Receiver<HealthChange>> {
        Some(self.inner.health.subscribe())
    }

    async fn close(&self) -> Result<(), BusError> {
        self.inner.shutdown();
        Ok(())
    }
}
