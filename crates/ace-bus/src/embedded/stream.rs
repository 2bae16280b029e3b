//! One stream of the embedded engine: its `ace-log`, its writer thread, its dedup window, its
//! consumers and its retention.
//!
//! Why a dedicated writer thread: `ace-log` is synchronous and a durable append waits for an
//! fsync. Publishers queue on a bounded channel; the writer drains everything queued (up to
//! `MAX_BATCH`), checks dedup and `discard: new` limits, appends the batch with ONE
//! `append_batch` (one sync), hands the new messages to every consumer (one lock per consumer per
//! batch), and only then answers each publisher. The channel bound is the backpressure: a
//! publisher waits when the writer is `CHANNEL_BOUND` messages behind.
//!
//! Deletions for workqueue/interest retention go through the same thread and are batched, so an
//! ack never waits for a delete to reach the disk (the consumer state already says "done").
//!
//! Damage: opening logs every torn tail recovery cut and every damage it found at WARN (stream,
//! segment, offset, bytes) and counts the cut bytes (`StreamCounters::recovery_truncated_bytes`).
//! A stream whose log is read-only (damage found) or halted (a failed write or fsync), or whose
//! engine found damage itself (a consumer's ack floor above the log's high-water mark, a header
//! block that does not decode while rebuilding the dedup window or a consumer), keeps serving
//! every record before the damage — scans stop there instead of failing the open, so other
//! streams and the server keep running — and answers every write with
//! `BusError::StreamDamaged` naming the state, segment and offset ([`Stream::health`]). Bytes
//! that stop decoding on a read while running make the stream read-only too, remembering the
//! first sequence that no longer reads so a repair cuts there; every transition to `read_only`
//! or `halted` while running is logged at WARN and sent once on the engine's health channel
//! (`Stream::note_health`). A full
//! device is not damage: the publishes of that batch answer `BusError::NoSpace`, the stream
//! stays `ok` and takes the next write as soon as space is freed.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::thread::JoinHandle;

use ace_envelope::{Clock, SubjectPattern};
use ace_log::{Log, LogConfig, LogError, NewRecord, Record, RecoveryReport, RepairOptions};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use super::consumer::ConsumerCore;
use super::record::{Header, Meta, unix_nanos};
use crate::bus::{
    DiscardPolicy, HealthChange, PublishAck, RetentionPolicy, StreamConfig, StreamCounters,
    StreamDamage, StreamState, SyncPolicy,
};
use crate::error::BusError;

/// Most publishes appended in one batch.
const MAX_BATCH: usize = 8192;
/// Publishes queued before publishers wait.
const CHANNEL_BOUND: usize = 16_384;
/// Segment size of a stream without a byte limit.
const DEFAULT_SEGMENT_BYTES: u64 = 64 * 1024 * 1024;
/// Smallest segment size used for a tight byte limit.
const MIN_SEGMENT_BYTES: u64 = 4096;
/// Records read per step when scanning the log.
const SCAN_STEP: usize = 1024;

/// One encoded envelope on its way to the writer.
#[derive(Debug)]
pub(crate) struct Item {
    pub(crate) subject: String,
    pub(crate) header: Header,
    pub(crate) payload: Vec<u8>,
}

/// The answers to one request, in the order of its items.
type Answers = Vec<Result<PublishAck, BusError>>;

enum Req {
    Publish(Vec<Item>, oneshot::Sender<Answers>),
    Delete(Vec<u64>),
}

/// One consumer of a stream: its state machine and whether its persisted state is stale.
#[derive(Debug)]
pub(crate) struct Consumer {
    pub(crate) name: String,
    pub(crate) core: Mutex<ConsumerCore>,
    dirty: AtomicBool,
}

impl Consumer {
    pub(crate) fn new(name: String, core: ConsumerCore) -> Arc<Self> {
        Arc::new(Consumer {
            name,
            core: Mutex::new(core),
            dirty: AtomicBool::new(true),
        })
    }

    /// Records that the persisted state is stale.
    pub(crate) fn touch(&self) {
        self.dirty.store(true, AtomicOrdering::Release);
    }

    /// Clears the stale flag, returning whether it was set.
    pub(crate) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, AtomicOrdering::AcqRel)
    }
}

/// What the dedup window remembers of each stored message, inside the stream's
/// `dedup_window` (age) and the engine's `dedup_max_entries` (count):
///
/// - its envelope id, as the UUID's 128 bits: the same envelope stored again (a replay, a
///   client retry) is a duplicate;
/// - its sender-scoped idempotency key (`record::scoped_idempotency_key`, 128 bits of SHA-256
///   over source type, source id and key): one sender's key never suppresses another's.
///
/// A repeat of either is answered with the original sequence and `duplicate: true`. A value is
/// kept as `[u64; 2]` (8-byte aligned, so a table entry is 24 bytes, not the 32 of a padded
/// `(u128, u64)`): one hash-table entry plus one 24-byte arrival record, about 78 bytes per
/// remembered value with a million of them (`Dedup::heap_bytes`, tested). Past
/// `dedup_max_entries` the oldest values are forgotten before their time, so a flood of
/// publishes cannot grow the window without bound; a replay of a forgotten one is stored again.
#[derive(Debug)]
struct Dedup {
    ids: Window,
    keys: Window,
    max: usize,
}

/// One kind of remembered value: value -> seq, and arrival order `(stored at, value)`.
#[derive(Debug, Default)]
struct Window {
    seqs: HashMap<[u64; 2], u64>,
    order: VecDeque<(u64, [u64; 2])>,
}

impl Window {
    fn pop_front(&mut self) {
        if let Some((_, value)) = self.order.pop_front() {
            self.seqs.remove(&value);
        }
    }

    fn front_ns(&self) -> Option<u64> {
        self.order.front().map(|(at, _)| *at)
    }

    fn get(&self, value: Option<u128>) -> Option<u64> {
        value.and_then(|v| self.seqs.get(&split(v)).copied())
    }

    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        // A hashbrown table of capacity `c` has `c * 8 / 7` (a power of two) buckets, each an
        // entry plus one control byte, and 16 more control bytes.
        let buckets = if self.seqs.capacity() == 0 {
            0
        } else {
            (self.seqs.capacity() * 8 / 7).next_power_of_two()
        };
        buckets * (std::mem::size_of::<([u64; 2], u64)>() + 1)
            + 16
            + self.order.capacity() * std::mem::size_of::<(u64, [u64; 2])>()
    }
}

/// A 128-bit value as two 8-byte-aligned halves.
fn split(v: u128) -> [u64; 2] {
    // Truncation is the point: the high and the low 64 bits.
    [(v >> 64) as u64, v as u64]
}

impl Dedup {
    fn new(max: usize) -> Self {
        Dedup {
            ids: Window::default(),
            keys: Window::default(),
            max: max.max(1),
        }
    }

    fn len(&self) -> usize {
        self.ids.order.len() + self.keys.order.len()
    }

    fn evict_before(&mut self, cutoff_ns: u64) {
        for w in [&mut self.ids, &mut self.keys] {
            while w.front_ns().is_some_and(|at| at < cutoff_ns) {
                w.pop_front();
            }
        }
    }

    /// Forgets the oldest remembered value of either kind.
    fn pop_oldest(&mut self) {
        match (self.ids.front_ns(), self.keys.front_ns()) {
            (Some(i), Some(k)) if k < i => self.keys.pop_front(),
            (Some(_), _) => self.ids.pop_front(),
            (None, _) => self.keys.pop_front(),
        }
    }

    /// The stored sequence of a message with this header's id or scoped key, if remembered.
    fn seen(&self, header: &Header) -> Option<u64> {
        self.ids
            .get(header.id)
            .or_else(|| self.keys.get(header.idem_scope))
    }

    /// Remembers the id and scoped key of a message stored at `seq`.
    fn insert(&mut self, header: &Header, seq: u64, at_ns: u64) {
        for (value, is_key) in [(header.id, false), (header.idem_scope, true)] {
            let Some(value) = value else { continue };
            while self.len() >= self.max {
                self.pop_oldest();
            }
            let w = if is_key {
                &mut self.keys
            } else {
                &mut self.ids
            };
            let value = split(value);
            w.seqs.insert(value, seq);
            w.order.push_back((at_ns, value));
        }
    }

    /// The heap bytes the window holds now, from the capacities of its tables.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.ids.heap_bytes() + self.keys.heap_bytes()
    }
}

/// A stream and everything it owns.
pub(crate) struct Stream {
    pub(crate) name: String,
    config: RwLock<(StreamConfig, Vec<SubjectPattern>)>,
    pub(crate) log: Arc<Log>,
    clock: Arc<dyn Clock>,
    tx: Mutex<Option<mpsc::Sender<Req>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    pub(crate) consumers: RwLock<BTreeMap<String, Arc<Consumer>>>,
    dedup: Mutex<Dedup>,
    counters: Mutex<StreamCounters>,
    /// Interest retention: how many consumers still hold each message.
    interest: Mutex<HashMap<u64, u32>>,
    /// Woken after every batch, so waiting fetches look again.
    pub(crate) notify: Notify,
    /// Damage the engine found itself (the log's own is in `log.state()`).
    damage: Mutex<Option<StreamDamage>>,
    /// The first sequence whose record the engine could not use (its header block does not
    /// decode): a repair cuts the log before it.
    bad_seq: Mutex<Option<u64>>,
    /// The state last reported on `events` (the state at open, then each transition).
    reported: Mutex<StreamState>,
    /// Where a transition to `read_only` or `halted` while running is announced.
    events: broadcast::Sender<HealthChange>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The `ace-log` config of a stream config.
pub(crate) fn log_config(cfg: &StreamConfig) -> LogConfig {
    let sync = match cfg.sync {
        SyncPolicy::Always => ace_log::SyncPolicy::Always,
        SyncPolicy::Batch => ace_log::SyncPolicy::default(),
        SyncPolicy::Never => ace_log::SyncPolicy::Never,
    };
    let limits = cfg.discard == DiscardPolicy::Old;
    // Limits drop whole segments: keep segments small next to `max_bytes` so the limit is tight.
    let segment_bytes = cfg.max_bytes.map_or(DEFAULT_SEGMENT_BYTES, |b| {
        (b / 8).clamp(MIN_SEGMENT_BYTES, DEFAULT_SEGMENT_BYTES)
    });
    LogConfig {
        segment_bytes,
        sync,
        retention: ace_log::Retention {
            max_msgs: cfg.max_msgs.filter(|_| limits),
            max_bytes: cfg.max_bytes.filter(|_| limits),
            max_age: cfg.max_age,
        },
        ..LogConfig::default()
    }
}

/// Parses a config's subject patterns, naming the one at fault.
pub(crate) fn patterns(cfg: &StreamConfig) -> Result<Vec<SubjectPattern>, BusError> {
    cfg.subjects
        .iter()
        .map(|s| {
            SubjectPattern::new(s.clone()).map_err(|e| BusError::InvalidSubject {
                subject: s.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

impl Stream {
    /// Opens (or creates) the stream's log under `dir` and starts its writer.
    pub(crate) fn open(
        dir: &Path,
        config: StreamConfig,
        engine: &super::EmbeddedConfig,
        events: &broadcast::Sender<HealthChange>,
    ) -> Result<Arc<Self>, BusError> {
        patterns(&config)?;
        let durability = engine.durability.clone();
        let (log, report) =
            Log::open_with(dir, log_config(&config), durability).map_err(|source| {
                BusError::Log {
                    stream: config.name.clone(),
                    source,
                }
            })?;
        Self::start(dir, Arc::new(log), &report, config, engine, events)
    }

    /// Starts a stream over its open log (a repair keeps the `Log` it repaired in place): logs
    /// what recovery `report`s, rebuilds the dedup window and starts the writer.
    pub(crate) fn start(
        dir: &Path,
        log: Arc<Log>,
        report: &RecoveryReport,
        config: StreamConfig,
        engine: &super::EmbeddedConfig,
        events: &broadcast::Sender<HealthChange>,
    ) -> Result<Arc<Self>, BusError> {
        let pats = patterns(&config)?;
        let (clock, dedup_max_entries) = (engine.clock.clone(), engine.dedup_max_entries);
        let mut counters = StreamCounters::default();
        for t in &report.truncated {
            counters.recovery_truncated_bytes += t.bytes;
            tracing::warn!(
                stream = %config.name,
                segment = %t.segment.display(),
                offset = t.offset,
                bytes = t.bytes,
                "recovery cut a torn tail that was never acknowledged"
            );
        }
        if let Some(c) = &report.corruption {
            tracing::warn!(
                stream = %config.name,
                segment = %c.segment.display(),
                offset = c.offset,
                reason = %c.reason,
                "stream storage is damaged: the stream is read-only, the records before the damage are served"
            );
        }
        let (tx, rx) = mpsc::channel(CHANNEL_BOUND);
        let stream = Arc::new(Stream {
            name: config.name.clone(),
            config: RwLock::new((config, pats)),
            log,
            clock,
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(None),
            consumers: RwLock::new(BTreeMap::new()),
            dedup: Mutex::new(Dedup::new(dedup_max_entries)),
            counters: Mutex::new(counters),
            interest: Mutex::new(HashMap::new()),
            notify: Notify::new(),
            damage: Mutex::new(None),
            bad_seq: Mutex::new(None),
            reported: Mutex::new(StreamState::Ok),
            events: events.clone(),
        });
        *stream.reported.lock() = stream.health().0;
        stream.rebuild_dedup();
        let worker = stream.clone();
        let handle = std::thread::Builder::new()
            .name(format!("ace-bus-writer-{}", stream.name))
            .spawn(move || worker.run_writer(rx))
            .map_err(|source| BusError::Io {
                path: dir.display().to_string(),
                source,
            })?;
        *stream.writer.lock() = Some(handle);
        Ok(stream)
    }

    /// Stops the writer (after it drained what is queued) and syncs the log.
    pub(crate) fn shutdown(&self) {
        self.tx.lock().take();
        if let Some(handle) = self.writer.lock().take() {
            // A panicked writer already answered nobody; there is nothing left to join for.
            let _ = handle.join();
        }
        if let Err(e) = self.log.sync() {
            tracing::warn!(stream = %self.name, error = %e, "final sync failed");
        }
    }

    /// Whether the stream takes writes, and what is wrong when it does not.
    pub(crate) fn health(&self) -> (StreamState, Option<StreamDamage>) {
        let state = self.log.state();
        if let Some(c) = state.damage {
            let damage = StreamDamage {
                reason: c.reason,
                segment: Some(file_name(&c.segment)),
                offset: Some(c.offset),
            };
            return (StreamState::ReadOnly, Some(damage));
        }
        if let Some(f) = state.failed {
            let damage = StreamDamage {
                reason: format!(
                    "a write or fsync failed ({}); it is never retried, its outcome is unknowable: \
                     restart the server once the device is healthy",
                    f.reason
                ),
                segment: (!f.path.as_os_str().is_empty()).then(|| file_name(&f.path)),
                offset: None,
            };
            return (StreamState::Halted, Some(damage));
        }
        match self.damage.lock().clone() {
            Some(d) => (StreamState::ReadOnly, Some(d)),
            None => (StreamState::Ok, None),
        }
    }

    /// The refusal of a write, when the stream is damaged or halted.
    pub(crate) fn refusal(&self) -> Option<BusError> {
        match self.health() {
            (StreamState::Ok, _) | (_, None) => None,
            (state, Some(d)) => Some(BusError::StreamDamaged {
                stream: self.name.clone(),
                state: state.as_str(),
                damage: Box::new(d),
            }),
        }
    }

    /// Records damage the engine found; the stream refuses writes from now on.
    pub(crate) fn mark_damaged(&self, reason: String) {
        let damage = StreamDamage {
            reason,
            segment: None,
            offset: None,
        };
        self.mark_damaged_at(damage, None);
    }

    /// Records damage the engine found, where it lies, and the first sequence it could not use
    /// (a repair cuts before it); announces the transition when the stream was taking writes.
    fn mark_damaged_at(&self, damage: StreamDamage, bad_seq: Option<u64>) {
        tracing::warn!(
            stream = %self.name,
            reason = %damage.reason,
            segment = damage.segment.as_deref().unwrap_or(""),
            offset = damage.offset.unwrap_or(0),
            "stream storage is damaged: the stream is read-only, the records before the damage are served"
        );
        self.damage.lock().get_or_insert(damage);
        if let Some(seq) = bad_seq {
            let mut bad = self.bad_seq.lock();
            *bad = Some(bad.map_or(seq, |b| b.min(seq)));
        }
        self.note_health();
    }

    /// Announces a transition to `read_only` or `halted` (once: the state last reported is
    /// remembered), after any operation that may have stopped the stream's writes.
    pub(crate) fn note_health(&self) {
        let (state, damage) = self.health();
        {
            let mut reported = self.reported.lock();
            if *reported == state {
                return;
            }
            *reported = state;
        }
        if state == StreamState::Ok {
            return;
        }
        let log = self.log.state();
        tracing::warn!(
            stream = %self.name,
            state = state.as_str(),
            reason = damage.as_ref().map_or("", |d| d.reason.as_str()),
            "stream stopped taking writes while running"
        );
        // Nobody watching is not an error: the state is in the stream's info either way.
        let _ = self.events.send(HealthChange {
            stream: self.name.clone(),
            state,
            damage,
            last_seq: log.last_seq,
            high_water: log.high_water,
        });
    }

    /// What a repair of this stream must know beyond its log: the record the engine could not
    /// use, and the highest ack floor of its consumers.
    pub(crate) fn repair_options(&self) -> RepairOptions {
        let acknowledged = self
            .consumers
            .read()
            .values()
            .map(|c| c.core.lock().ack_floor())
            .max()
            .unwrap_or(0);
        RepairOptions {
            cut_before: *self.bad_seq.lock(),
            acknowledged,
        }
    }

    /// The first sequence of the segment file `segment` that no longer reads (a repair cuts
    /// before it): reads forward from its base, halving the step on a failure.
    fn first_unreadable(&self, segment: &str) -> Option<u64> {
        let mut next: u64 = segment.strip_suffix(".log")?.parse().ok()?;
        let mut step = SCAN_STEP;
        loop {
            match self.log.read_from(next, step) {
                Ok(recs) => next = recs.last()?.seq + 1,
                Err(_) if step > 1 => step /= 2,
                Err(_) => return Some(next),
            }
        }
    }

    /// A log failure as the bus answers it: damage and halts name the stream's state. Bytes
    /// that no longer decode on a read, where the log found none when it opened, make the
    /// stream read-only from now on.
    pub(crate) fn log_error(&self, source: LogError) -> BusError {
        if let LogError::Corrupt {
            segment,
            offset,
            reason,
        } = &source
            && self.log.state().damage.is_none()
        {
            let segment = file_name(segment);
            let bad = self.first_unreadable(&segment);
            let damage = StreamDamage {
                reason: format!("found on a read: {reason}"),
                segment: Some(segment),
                offset: Some(*offset),
            };
            self.mark_damaged_at(damage, bad);
        }
        match &source {
            LogError::Corrupt { .. } | LogError::SyncFailed { .. } => {
                self.refusal().unwrap_or(BusError::Log {
                    stream: self.name.clone(),
                    source,
                })
            }
            _ => BusError::Log {
                stream: self.name.clone(),
                source,
            },
        }
    }

    /// The config as it is now.
    pub(crate) fn config(&self) -> StreamConfig {
        self.config.read().0.clone()
    }

    /// True when the stream stores messages published on `subject`.
    pub(crate) fn captures(&self, subject: &str) -> bool {
        self.config.read().1.iter().any(|p| p.matches(subject))
    }

    /// The counters.
    pub(crate) fn counters(&self) -> StreamCounters {
        *self.counters.lock()
    }

    /// Appends encoded envelopes and waits until they are durable; one answer per item, in
    /// order. Items over `max_msg_size` are refused here, the rest go to the writer together.
    /// A stream that was shut down (deleted, or replaced by `update_stream`) hands the items
    /// back so the caller can route them again.
    pub(crate) async fn append(&self, items: Vec<Item>) -> Result<Answers, Vec<Item>> {
        if self.tx.lock().is_none() {
            return Err(items);
        }
        let max = self.config.read().0.max_msg_size;
        let mut answers: Vec<Option<Result<PublishAck, BusError>>> =
            Vec::with_capacity(items.len());
        let mut send = Vec::with_capacity(items.len());
        for item in items {
            let size = item.payload.len() + item.subject.len();
            match max.filter(|m| u64::try_from(size).unwrap_or(u64::MAX) > *m) {
                Some(max) => {
                    self.counters.lock().refused_too_large += 1;
                    answers.push(Some(Err(BusError::MessageTooLarge {
                        stream: self.name.clone(),
                        subject: item.subject,
                        size,
                        max,
                    })));
                }
                None => {
                    answers.push(None);
                    send.push(item);
                }
            }
        }
        let mut written = if send.is_empty() {
            Vec::new()
        } else {
            self.send(send).await
        }
        .into_iter();
        Ok(answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| written.next().unwrap_or(Err(BusError::Closed))))
            .collect())
    }

    async fn send(&self, items: Vec<Item>) -> Answers {
        let n = items.len();
        let closed = || (0..n).map(|_| Err(BusError::Closed)).collect();
        let (reply, rx) = oneshot::channel();
        let tx = self.tx.lock().clone();
        let Some(tx) = tx else {
            return closed();
        };
        if tx.send(Req::Publish(items, reply)).await.is_err() {
            return closed();
        }
        rx.await.unwrap_or_else(|_| closed())
    }

    /// Queues deletions of messages no consumer needs any more.
    pub(crate) fn delete_later(&self, seqs: Vec<u64>) {
        if seqs.is_empty() {
            return;
        }
        let tx = self.tx.lock().clone();
        if let Some(tx) = tx {
            // A full channel only delays the delete: the open-time scan deletes what was missed.
            if tx.try_send(Req::Delete(seqs)).is_err() {
                tracing::debug!(stream = %self.name, "delete queue full; left for the next open");
            }
        }
    }

    /// Messages of `seqs` now done for one consumer: applies workqueue/interest retention.
    pub(crate) fn settle_done(&self, done: &[u64]) {
        let retention = self.config.read().0.retention;
        let gone: Vec<u64> = match retention {
            RetentionPolicy::Limits => return,
            RetentionPolicy::Workqueue => done.to_vec(),
            RetentionPolicy::Interest => {
                let mut interest = self.interest.lock();
                done.iter()
                    .copied()
                    .filter(|seq| match interest.get_mut(seq) {
                        Some(n) if *n > 1 => {
                            *n -= 1;
                            false
                        }
                        Some(_) => {
                            interest.remove(seq);
                            true
                        }
                        None => false,
                    })
                    .collect()
            }
        };
        if !gone.is_empty() {
            self.counters.lock().removed_after_ack += u64::try_from(gone.len()).unwrap_or(0);
            self.delete_later(gone);
        }
    }

    /// Interest retention: a new consumer holds `seqs` too.
    pub(crate) fn add_interest(&self, seqs: &[u64]) {
        if self.config.read().0.retention != RetentionPolicy::Interest {
            return;
        }
        let mut interest = self.interest.lock();
        for seq in seqs {
            *interest.entry(*seq).or_insert(0) += 1;
        }
    }

    /// Takes over the consumers, interest counts and counters of the stream it replaces.
    pub(crate) fn adopt(&self, old: &Stream) {
        *self.consumers.write() = std::mem::take(&mut *old.consumers.write());
        *self.interest.lock() = std::mem::take(&mut *old.interest.lock());
        *self.counters.lock() = *old.counters.lock();
    }

    fn run_writer(&self, mut rx: mpsc::Receiver<Req>) {
        let mut groups = Vec::new();
        let mut deletes = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut next = Some(first);
            let mut items = 0;
            while let Some(req) = next.take() {
                match req {
                    Req::Publish(batch, reply) => {
                        items += batch.len();
                        groups.push((batch, reply));
                    }
                    Req::Delete(seqs) => deletes.extend(seqs),
                }
                if items < MAX_BATCH {
                    next = rx.try_recv().ok();
                }
            }
            if !groups.is_empty() {
                self.write_batch(std::mem::take(&mut groups));
            }
            if !deletes.is_empty() {
                self.delete_now(&std::mem::take(&mut deletes));
            }
        }
    }

    fn delete_now(&self, seqs: &[u64]) {
        for seq in seqs {
            if let Err(e) = self.log.delete(*seq) {
                tracing::warn!(stream = %self.name, seq, error = %e, "delete failed");
                self.note_health();
            }
        }
    }

    fn now_ns(&self) -> u64 {
        unix_nanos(self.clock.now())
    }

    /// Dedup, limits, one append, hand-off to consumers, then the answers.
    fn write_batch(&self, groups: Vec<(Vec<Item>, oneshot::Sender<Answers>)>) {
        if self.refusal().is_some() {
            return self.fail_all(groups, || self.refusal());
        }
        let now_ns = self.now_ns();
        let (cfg, _) = self.config.read().clone();
        let batch: Vec<&Item> = groups.iter().flat_map(|(items, _)| items).collect();
        let mut dedup = self.dedup.lock();
        let window = u64::try_from(cfg.dedup_window.as_nanos()).unwrap_or(u64::MAX);
        dedup.evict_before(now_ns.saturating_sub(window));
        let plan = self.plan(&cfg, &batch, &dedup);
        let accepted: Vec<&Item> = plan
            .iter()
            .zip(&batch)
            .filter(|(p, _)| matches!(p, Plan::Append))
            .map(|(_, r)| *r)
            .collect();
        let encoded: Vec<Vec<u8>> = accepted.iter().map(|r| r.header.encode()).collect();
        let records: Vec<NewRecord<'_>> = accepted
            .iter()
            .zip(&encoded)
            .map(|(r, h)| NewRecord {
                subject: &r.subject,
                headers: h,
                payload: &r.payload,
                timestamp_ns: now_ns,
            })
            .collect();
        let appended = if records.is_empty() {
            Ok(Vec::new())
        } else {
            self.log.append_batch(&records)
        };
        let seqs: Vec<u64> = match appended {
            Ok(app) => app.iter().map(|a| a.seq).collect(),
            Err(e) => {
                drop(dedup);
                let reason = e.to_string();
                tracing::error!(stream = %self.name, error = %reason, "append failed");
                self.note_health();
                return self.fail_all(groups, || {
                    match &e {
                        LogError::Corrupt { .. } | LogError::SyncFailed { .. } => self.refusal(),
                        LogError::NoSpace { .. } => Some(BusError::NoSpace {
                            stream: self.name.clone(),
                        }),
                        _ => None,
                    }
                    .or_else(|| {
                        Some(BusError::Storage {
                            stream: self.name.clone(),
                            reason: reason.clone(),
                        })
                    })
                });
            }
        };
        for (r, seq) in accepted.iter().zip(&seqs) {
            dedup.insert(&r.header, *seq, now_ns);
        }
        drop(dedup);
        self.dispatch(&cfg, &accepted, &seqs, now_ns);
        self.after_append(&cfg, &plan, seqs.len(), now_ns);
        self.notify.notify_waiters();
        let answers = self.answers(&plan, &seqs);
        drop(batch);
        split_answers(groups, answers);
    }

    /// Decides the fate of each publish of a batch.
    fn plan(&self, cfg: &StreamConfig, batch: &[&Item], dedup: &Dedup) -> Vec<Plan> {
        let state = self.log.state();
        let mut msgs = state.messages;
        let mut bytes = state.bytes;
        // Ids and scoped keys of this batch's appends: (is_key, value) -> append index.
        let mut in_batch: HashMap<(bool, u128), usize> = HashMap::new();
        let mut appended = 0;
        batch
            .iter()
            .map(|r| {
                if let Some(seq) = dedup.seen(&r.header) {
                    return Plan::Duplicate(seq);
                }
                let values = [(false, r.header.id), (true, r.header.idem_scope)];
                let mine = || values.iter().filter_map(|(k, v)| v.map(|v| (*k, v)));
                if let Some(i) = mine().find_map(|v| in_batch.get(&v)) {
                    return Plan::DuplicateInBatch(*i);
                }
                let size = u64::try_from(r.payload.len() + r.subject.len()).unwrap_or(u64::MAX);
                if cfg.discard == DiscardPolicy::New {
                    if cfg.max_msgs.is_some_and(|m| msgs >= m) {
                        return Plan::Full("max_msgs");
                    }
                    if cfg.max_bytes.is_some_and(|m| bytes + size > m) {
                        return Plan::Full("max_bytes");
                    }
                }
                msgs += 1;
                bytes += size;
                for v in mine() {
                    in_batch.insert(v, appended);
                }
                appended += 1;
                Plan::Append
            })
            .collect()
    }

    /// Offers new messages to every consumer; interest retention counts who wants each.
    fn dispatch(&self, cfg: &StreamConfig, accepted: &[&Item], seqs: &[u64], now_ns: u64) {
        let consumers = self.consumers.read();
        let interest = cfg.retention == RetentionPolicy::Interest;
        if consumers.is_empty() && !interest {
            return;
        }
        let metas: Vec<Arc<Meta>> = accepted
            .iter()
            .zip(seqs)
            .map(|(r, seq)| r.header.meta(*seq))
            .collect();
        let mut wanted = vec![0u32; metas.len()];
        for consumer in consumers.values() {
            let mut core = consumer.core.lock();
            for ((item, meta), n) in accepted.iter().zip(&metas).zip(wanted.iter_mut()) {
                if core.offer(&item.subject, meta, now_ns) {
                    *n += 1;
                }
            }
        }
        drop(consumers);
        if !interest {
            return;
        }
        let mut unwanted = Vec::new();
        let mut counts = self.interest.lock();
        for (meta, n) in metas.iter().zip(wanted) {
            if n == 0 {
                unwanted.push(meta.seq);
            } else {
                counts.insert(meta.seq, n);
            }
        }
        drop(counts);
        if !unwanted.is_empty() {
            self.counters.lock().removed_no_interest += u64::try_from(unwanted.len()).unwrap_or(0);
            self.delete_now(&unwanted);
        }
    }

    /// Counters and limits retention after a batch.
    fn after_append(&self, cfg: &StreamConfig, plan: &[Plan], stored: usize, now_ns: u64) {
        let mut c = self.counters.lock();
        c.stored += u64::try_from(stored).unwrap_or(0);
        for p in plan {
            match p {
                Plan::Duplicate(_) | Plan::DuplicateInBatch(_) => c.duplicates += 1,
                Plan::Full(_) => c.refused_full += 1,
                Plan::Append => {}
            }
        }
        drop(c);
        let limited = cfg.max_age.is_some()
            || (cfg.discard == DiscardPolicy::Old
                && (cfg.max_msgs.is_some() || cfg.max_bytes.is_some()));
        if limited {
            self.apply_limits(now_ns);
        }
    }

    /// Drops what the limits no longer keep, counted.
    pub(crate) fn apply_limits(&self, now_ns: u64) {
        match self.log.apply_retention(now_ns) {
            Ok(report) => {
                self.counters.lock().dropped_by_limits += report.messages_dropped;
            }
            Err(e) => {
                tracing::warn!(stream = %self.name, error = %e, "retention failed");
                self.note_health();
            }
        }
    }

    /// The answer of every publish of a batch, in batch order.
    fn answers(&self, plan: &[Plan], seqs: &[u64]) -> Answers {
        let mut own = seqs.iter();
        plan.iter()
            .map(|p| match p {
                Plan::Append => Ok(self.ack(own.next().copied(), false)),
                Plan::Duplicate(s) => Ok(self.ack(Some(*s), true)),
                Plan::DuplicateInBatch(i) => Ok(self.ack(seqs.get(*i).copied(), true)),
                Plan::Full(limit) => Err(BusError::StreamFull {
                    stream: self.name.clone(),
                    limit: (*limit).to_owned(),
                }),
            })
            .collect()
    }

    fn ack(&self, seq: Option<u64>, duplicate: bool) -> PublishAck {
        PublishAck {
            stream: Some(self.name.clone()),
            seq,
            duplicate,
        }
    }

    /// Answers every publish of `groups` with the error `err` builds.
    fn fail_all(
        &self,
        groups: Vec<(Vec<Item>, oneshot::Sender<Answers>)>,
        err: impl Fn() -> Option<BusError>,
    ) {
        let answers = groups
            .iter()
            .flat_map(|(items, _)| items)
            .map(|_| Err(err().unwrap_or(BusError::Closed)))
            .collect();
        split_answers(groups, answers);
    }

    /// Rebuilds the dedup window (ids and scoped idempotency keys) from the header blocks of the
    /// records stored inside it, so a replay after a restart is still a duplicate. Damage found
    /// on the way stops the rebuild there and makes this stream read-only; it never fails the
    /// open (the writes a partial window could wrongly accept are refused anyway).
    fn rebuild_dedup(&self) {
        let window = self.config.read().0.dedup_window;
        let window_ns = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        let cutoff = self.now_ns().saturating_sub(window_ns);
        let Some(from) = self.log.seq_at_or_after(cutoff) else {
            return;
        };
        let mut dedup = self.dedup.lock();
        let scanned = self.scan(from, |rec, header| {
            dedup.insert(&header, rec.seq, rec.timestamp_ns);
        });
        drop(dedup);
        if let Err(e) = scanned {
            self.mark_damaged(format!("rebuilding the dedup window: {e}"));
        }
    }

    /// Calls `f` on every live record from `from`, with its decoded header block. Stops without
    /// an error at damage the log found (the stream is read-only and says why): what lies before
    /// it is all there is to serve.
    pub(crate) fn scan(
        &self,
        from: u64,
        mut f: impl FnMut(&Record, Header),
    ) -> Result<(), BusError> {
        let mut next = from.max(1);
        loop {
            let recs = match self.log.read_from(next, SCAN_STEP) {
                Ok(recs) => recs,
                Err(LogError::Corrupt { .. }) if self.log.state().damage.is_some() => {
                    tracing::debug!(stream = %self.name, seq = next, "scan stopped at damage");
                    return Ok(());
                }
                Err(source) => return Err(self.log_error(source)),
            };
            let Some(last) = recs.last() else {
                return Ok(());
            };
            next = last.seq + 1;
            for rec in &recs {
                let header = match Header::decode(&rec.headers) {
                    Ok(header) => header,
                    Err(reason) => return Err(self.undecodable(rec.seq, reason)),
                };
                f(rec, header);
            }
        }
    }

    /// A record whose header block does not decode: damage from that sequence on.
    fn undecodable(&self, seq: u64, reason: String) -> BusError {
        let damage = StreamDamage {
            reason: format!("the header block of sequence {seq} does not decode: {reason}"),
            segment: None,
            offset: None,
        };
        self.mark_damaged_at(damage, Some(seq));
        BusError::Corrupt {
            what: format!("{}/{seq}", self.name),
            reason,
        }
    }

    /// Feeds a consumer every stored message from `from`, then marks the tail as seen. Called
    /// with the consumer map write-locked so no batch is dispatched in between.
    pub(crate) fn replay_into(&self, core: &mut ConsumerCore, from: u64) -> Result<(), BusError> {
        let now_ns = self.now_ns();
        self.scan(from, |rec, header| {
            core.offer(&rec.subject, &header.meta(rec.seq), now_ns);
        })?;
        core.skip_to(self.log.state().last_seq);
        Ok(())
    }

    /// After consumers are restored: rebuilds interest counts and deletes what no consumer
    /// needs on workqueue/interest streams (acks whose deletes were lost in a crash).
    pub(crate) fn rebuild_retention(&self) -> Result<(), BusError> {
        let retention = self.config.read().0.retention;
        if retention == RetentionPolicy::Limits {
            return Ok(());
        }
        let consumers: Vec<Arc<Consumer>> = self.consumers.read().values().cloned().collect();
        let mut interest = HashMap::new();
        let mut gone = Vec::new();
        let first = self.log.state().first_seq;
        self.scan(first, |rec, _| {
            let cores = consumers.iter().map(|c| c.core.lock());
            let (mut holders, mut wanted) = (0u32, false);
            for core in cores {
                if core.holds(rec.seq) {
                    holders += 1;
                }
                wanted |= core.wants(&rec.subject);
            }
            let keep = match retention {
                RetentionPolicy::Interest => holders > 0,
                _ => holders > 0 || !wanted,
            };
            if !keep {
                gone.push(rec.seq);
            } else if holders > 0 {
                interest.insert(rec.seq, holders);
            }
        })?;
        *self.interest.lock() = interest;
        self.delete_now(&gone);
        Ok(())
    }
}

/// The file name of a log file (the directory is the stream's own).
fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Sends each request its share of a batch's answers.
fn split_answers(groups: Vec<(Vec<Item>, oneshot::Sender<Answers>)>, answers: Answers) {
    let mut answers = answers.into_iter();
    for (items, reply) in groups {
        let mine: Answers = answers.by_ref().take(items.len()).collect();
        // A publisher that gave up waiting is not an error of the stream.
        let _ = reply.send(mine);
    }
}

/// The fate of one publish in a batch.
#[derive(Debug, Clone, Copy)]
enum Plan {
    Append,
    Duplicate(u64),
    DuplicateInBatch(usize),
    Full(&'static str),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(id: u128, idem_scope: Option<u128>) -> Header {
        Header {
            priority: 2,
            expires_ns: 0,
            not_before_ns: 0,
            key: None,
            idempotency_key: idem_scope.map(|_| "k".to_owned()),
            id: Some(id),
            idem_scope,
        }
    }

    #[test]
    fn given_ids_and_keys_when_remembered_then_either_finds_the_original_seq() {
        let mut d = Dedup::new(100);
        d.insert(&header(7, Some(70)), 1, 0);
        assert_eq!(d.seen(&header(7, None)), Some(1), "same id");
        assert_eq!(d.seen(&header(8, Some(70))), Some(1), "same scoped key");
        assert_eq!(d.seen(&header(8, Some(71))), None);
        d.evict_before(1);
        assert_eq!(d.seen(&header(7, Some(70))), None, "aged out");
    }

    #[test]
    fn given_more_values_than_the_cap_when_remembered_then_the_oldest_go_first() {
        let mut d = Dedup::new(3);
        for id in 1..=5u128 {
            d.insert(&header(id, None), u64::try_from(id).unwrap(), 0);
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.seen(&header(2, None)), None);
        assert_eq!(d.seen(&header(3, None)), Some(3));
    }

    /// The figure the dedup docs quote: heap bytes per remembered id with a million of them.
    #[test]
    fn given_a_million_remembered_ids_then_each_costs_under_80_bytes() {
        const N: u64 = 1_000_000;
        let mut d = Dedup::new(usize::MAX);
        for i in 0..N {
            d.insert(&header(u128::from(i) << 64 | 0xABCD, None), i, i);
        }
        let per_id = d.heap_bytes() as f64 / N as f64;
        eprintln!("dedup window: {per_id:.1} heap bytes per remembered id ({N} ids)");
        assert!(per_id < 80.0, "{per_id}");
    }
}
