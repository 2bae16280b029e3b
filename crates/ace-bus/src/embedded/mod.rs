//! The embedded engine: the default `Bus` of ACE::COMMS, with nothing to install. Everything
//! lives under one data directory:
//!
//! ```text
//! <data_dir>/state.redb            stream configs, consumer configs, consumer state (redb)
//! <data_dir>/streams/<name>/       the stream's ace-log segments
//! ```
//!
//! Core pub/sub and request/reply go through the live hub (`crate::live`); streams and consumers
//! are `stream::Stream` and `consumer::ConsumerCore`. Two background workers keep state moving
//! without a caller: a flusher thread that writes dirty consumer state to redb in one transaction
//! every `state_flush_interval`, and a maintenance task that applies age limits and moves
//! over-delivered messages to their dead-letter subject even when nobody fetches.
//!
//! Dead letters are envelopes of kind `event`, name `dead_letter`, on the stream's dead-letter
//! subject, with the idempotency key `dlq:<stream>:<consumer>:<seq>` (a crash between publishing
//! the dead letter and recording it cannot make two), the headers `ace-dlq-stream`,
//! `ace-dlq-seq`, `ace-dlq-consumer`, `ace-dlq-deliveries`, `ace-dlq-reason`, and the payload
//! `{"stream", "seq", "consumer", "deliveries", "reason", "original": <the original envelope>}`.

mod consumer;
mod record;
mod state;
mod stream;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use ace_envelope::{Clock, Envelope, Kind, SourceType, Subject, SubjectPattern, SystemClock};
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};

use self::consumer::{ConsumerCore, DeadLetter, Handout, NotPending};
use self::record::{Header, decode_envelope, unix_nanos};
use self::state::{StateDb, StoredConsumer, consumer_key};
use self::stream::{Consumer, Item, Stream};
use crate::bus::{
    Bus, ConsumerConfig, ConsumerInfo, DeliverPolicy, Delivered, LiveSubscription, PublishAck,
    RetentionPolicy, StorageKind, StoredMessage, StreamConfig, StreamInfo,
};
use crate::error::BusError;
use crate::live::{LiveConfig, LiveHub, Subscription};

/// How often a waiting fetch looks again even without a publish (a manual clock may have moved).
const FETCH_POLL: Duration = Duration::from_millis(50);

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
}

impl EmbeddedConfig {
    /// Defaults for `data_dir`: the system clock, a 20 ms state flush, 100 ms maintenance.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EmbeddedConfig {
            data_dir: data_dir.into(),
            clock: Arc::new(SystemClock),
            live: LiveConfig::default(),
            state_flush_interval: Duration::from_millis(20),
            maintenance_interval: Duration::from_millis(100),
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
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedBus")
            .field("data_dir", &self.config.data_dir)
            .finish_non_exhaustive()
    }
}

impl EmbeddedBus {
    /// Opens the data directory: reopens every stream and durable consumer where it stopped.
    /// Starts the maintenance task when called inside a tokio runtime.
    pub fn open(config: EmbeddedConfig) -> Result<Self, BusError> {
        let streams_dir = config.data_dir.join("streams");
        std::fs::create_dir_all(&streams_dir).map_err(|source| BusError::Io {
            path: streams_dir.display().to_string(),
            source,
        })?;
        let db = Arc::new(StateDb::open(&config.data_dir)?);
        let inner = Arc::new(Inner {
            live: LiveHub::new(config.live.clone()),
            config,
            db: RwLock::new(Some(db.clone())),
            streams: RwLock::new(BTreeMap::new()),
            closed: AtomicBool::new(false),
            flusher: Mutex::new(None),
            maintenance: Mutex::new(None),
            admin: tokio::sync::Mutex::new(()),
        });
        for cfg in db.streams()? {
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
        let stream = Stream::open(&self.stream_dir(&name), cfg, self.config.clock.clone())?;
        for stored in db.consumers(&name)? {
            let filter = parse_filter(&stored.config)?;
            let (core, from) = match db.consumer_state(&name, &stored.config.name)? {
                Some(p) => {
                    let from = p.ack_floor + 1;
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
            stream.replay_into(&mut core, from)?;
            let consumer = Consumer::new(stored.config.name.clone(), core);
            stream
                .consumers
                .write()
                .insert(consumer.name.clone(), consumer);
        }
        stream.rebuild_retention()?;
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
    }

    /// Publishes dead letters, then records each as done (or keeps it pending if that failed).
    async fn dead_letter(&self, s: &Arc<Stream>, c: &Arc<Consumer>, dead: Vec<DeadLetter>) {
        for d in dead {
            let published = match self.dead_letter_envelope(s, &c.name, &d) {
                Ok(env) => self.publish(env).await.map(|_| ()),
                Err(e) => Err(e),
            };
            let now = self.now_ns();
            match published {
                Ok(()) => {
                    let out = c.core.lock().dead_lettered(&d, now);
                    s.settle_done(&out.done);
                }
                Err(e) => {
                    tracing::warn!(stream = %s.name, consumer = %c.name, seq = d.seq, error = %e,
                        "dead letter not published; kept pending");
                    c.core.lock().dead_letter_failed(d, now);
                }
            }
            c.touch();
        }
    }

    fn dead_letter_envelope(
        &self,
        s: &Stream,
        consumer: &str,
        d: &DeadLetter,
    ) -> Result<Envelope, BusError> {
        let original = match s.log.read(d.seq) {
            Ok(Some(rec)) => Some(decode_envelope(&s.name, d.seq, &rec.payload)?),
            Ok(None) => None,
            Err(source) => {
                return Err(BusError::Log {
                    stream: s.name.clone(),
                    source,
                });
            }
        };
        let subject = s.config().dead_letter_subject();
        let payload = serde_json::json!({
            "stream": s.name,
            "seq": d.seq,
            "consumer": consumer,
            "deliveries": d.deliveries,
            "reason": d.reason,
            "original": original,
        });
        let priority = original.as_ref().map(|o| o.priority).unwrap_or_default();
        Envelope::builder(Kind::Event, subject.clone())
            .clock(&*self.config.clock)
            .name("dead_letter")
            .source(SourceType::Service, "ace-bus")
            .priority(priority)
            .idempotency_key(format!("dlq:{}:{consumer}:{}", s.name, d.seq))
            .header("ace-dlq-stream", s.name.clone())
            .header("ace-dlq-seq", d.seq.to_string())
            .header("ace-dlq-consumer", consumer)
            .header("ace-dlq-deliveries", d.deliveries.to_string())
            .header("ace-dlq-reason", d.reason.clone())
            .payload_json(payload)
            .build()
            .map_err(|e| BusError::InvalidEnvelope {
                subject,
                reason: e.to_string(),
            })
    }

    async fn publish(&self, envelope: Envelope) -> Result<PublishAck, BusError> {
        let mut answers = self.publish_batch(vec![envelope]).await;
        answers.pop().unwrap_or(Err(BusError::Closed))
    }

    /// Routes each envelope to the stream capturing its subject, appends each stream's share in
    /// one request, then delivers live what was not a duplicate.
    async fn publish_batch(&self, envelopes: Vec<Envelope>) -> Vec<Result<PublishAck, BusError>> {
        if self.check_open().is_err() {
            return envelopes.iter().map(|_| Err(BusError::Closed)).collect();
        }
        let mut answers: Vec<Option<Result<PublishAck, BusError>>> =
            Vec::with_capacity(envelopes.len());
        let mut groups: Vec<(Arc<Stream>, Vec<usize>, Vec<Item>)> = Vec::new();
        for (i, env) in envelopes.iter().enumerate() {
            if let Err(e) = Subject::new(env.subject.as_str()) {
                answers.push(Some(Err(BusError::InvalidSubject {
                    subject: env.subject.clone(),
                    reason: e.to_string(),
                })));
                continue;
            }
            let Some(stream) = self.route(&env.subject) else {
                answers.push(Some(Ok(PublishAck {
                    stream: None,
                    seq: None,
                    duplicate: false,
                })));
                continue;
            };
            answers.push(None);
            let item = Item {
                subject: env.subject.clone(),
                header: Header::of(env),
                payload: record::encode_envelope(env),
            };
            match groups.iter_mut().find(|(s, _, _)| Arc::ptr_eq(s, &stream)) {
                Some((_, idx, items)) => {
                    idx.push(i);
                    items.push(item);
                }
                None => groups.push((stream, vec![i], vec![item])),
            }
        }
        for (stream, idx, items) in groups {
            for (i, answer) in idx.into_iter().zip(stream.append(items).await) {
                answers[i] = Some(answer);
            }
        }
        envelopes
            .into_iter()
            .zip(answers)
            .map(|(env, answer)| {
                let answer = answer.unwrap_or(Err(BusError::Closed));
                if matches!(&answer, Ok(ack) if !ack.duplicate) {
                    self.live.publish(Arc::new(env));
                }
                answer
            })
            .collect()
    }

    /// The stream capturing `subject`, if any (streams never overlap).
    fn route(&self, subject: &str) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .values()
            .find(|s| s.captures(subject))
            .cloned()
    }

    /// Reads the envelopes of a batch of handouts; a message dropped by limits meanwhile is done.
    fn read_handouts(
        &self,
        s: &Stream,
        c: &Consumer,
        handouts: Vec<Handout>,
    ) -> Result<Vec<Delivered>, BusError> {
        let mut out = Vec::with_capacity(handouts.len());
        for h in handouts {
            let rec = s.log.read(h.seq).map_err(|source| BusError::Log {
                stream: s.name.clone(),
                source,
            })?;
            match rec {
                Some(rec) => out.push(Delivered {
                    stream: s.name.clone(),
                    consumer: c.name.clone(),
                    seq: h.seq,
                    delivery_count: h.delivery_count,
                    envelope: decode_envelope(&s.name, h.seq, &rec.payload)?,
                }),
                None => {
                    let done = c.core.lock().forget(h.seq, self.now_ns());
                    s.settle_done(&done.done);
                }
            }
        }
        Ok(out)
    }

    async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<Delivered>, BusError> {
        let (s, c) = self.consumer(stream, consumer)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        let deadline = tokio::time::Instant::now() + expires;
        loop {
            let notified = s.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.now_ns();
            let out = c.core.lock().next_batch(batch, now);
            if !out.handouts.is_empty() || !out.done.is_empty() || !out.dead.is_empty() {
                c.touch();
            }
            s.settle_done(&out.done);
            self.dead_letter(&s, &c, out.dead).await;
            let delivered = self.read_handouts(&s, &c, out.handouts)?;
            let t = tokio::time::Instant::now();
            if !delivered.is_empty() || t >= deadline {
                return Ok(delivered);
            }
            self.check_open()?;
            let wake = c.core.lock().next_wakeup_ns();
            let until_due =
                wake.map_or(FETCH_POLL, |w| Duration::from_nanos(w.saturating_sub(now)));
            let wait = deadline.min(t + until_due.min(FETCH_POLL));
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(wait) => {}
            }
        }
    }

    /// Runs an ack-like call on a consumer's state and settles what it finished.
    fn settle_call(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        f: impl FnOnce(&mut ConsumerCore, u64) -> Result<Vec<u64>, NotPending>,
    ) -> Result<(), BusError> {
        let (s, c) = self.consumer(stream, consumer)?;
        let done =
            f(&mut c.core.lock(), self.now_ns()).map_err(|NotPending| BusError::NotPending {
                stream: stream.to_owned(),
                consumer: consumer.to_owned(),
                seq,
            })?;
        c.touch();
        s.settle_done(&done);
        s.notify.notify_waiters();
        Ok(())
    }

    async fn term(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        reason: &str,
    ) -> Result<(), BusError> {
        let (s, c) = self.consumer(stream, consumer)?;
        let dead = c
            .core
            .lock()
            .term(seq, reason)
            .map_err(|NotPending| BusError::NotPending {
                stream: stream.to_owned(),
                consumer: consumer.to_owned(),
                seq,
            })?;
        self.dead_letter(&s, &c, vec![dead]).await;
        s.notify.notify_waiters();
        Ok(())
    }

    fn stream_info(&self, s: &Stream) -> StreamInfo {
        let state = s.log.state();
        StreamInfo {
            config: s.config(),
            messages: state.messages,
            bytes: state.bytes,
            first_seq: if state.messages == 0 {
                0
            } else {
                state.first_seq
            },
            last_seq: state.last_seq,
            consumers: s.consumers.read().len(),
            counters: s.counters(),
        }
    }

    fn consumer_info(s: &Stream, c: &Consumer) -> ConsumerInfo {
        let core = c.core.lock();
        ConsumerInfo {
            stream: s.name.clone(),
            config: core.config().clone(),
            ack_floor: core.ack_floor(),
            ack_pending: core.ack_pending(),
            waiting: core.waiting(),
            counters: core.counters(),
        }
    }

    async fn add_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        let _admin = self.admin.lock().await;
        validate_stream(&config)?;
        if let Ok(existing) = self.stream(&config.name) {
            if existing.config() == config {
                return Ok(self.stream_info(&existing));
            }
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: "a stream of that name exists with another config".to_owned(),
            });
        }
        self.check_overlap(&config)?;
        self.db()?.put_stream(&config)?;
        let stream = Stream::open(
            &self.stream_dir(&config.name),
            config,
            self.config.clock.clone(),
        )?;
        self.streams
            .write()
            .insert(stream.name.clone(), stream.clone());
        Ok(self.stream_info(&stream))
    }

    async fn update_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        let _admin = self.admin.lock().await;
        validate_stream(&config)?;
        let old = self.stream(&config.name)?;
        let before = old.config();
        if before.retention != config.retention || before.storage != config.storage {
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: "retention and storage cannot change".to_owned(),
            });
        }
        self.check_overlap(&config)?;
        self.db()?.put_stream(&config)?;
        old.shutdown();
        let fresh = Stream::open(
            &self.stream_dir(&config.name),
            config,
            self.config.clock.clone(),
        )?;
        fresh.adopt(&old);
        self.streams
            .write()
            .insert(fresh.name.clone(), fresh.clone());
        Ok(self.stream_info(&fresh))
    }

    /// Refuses a stream whose subjects overlap another stream's.
    fn check_overlap(&self, config: &StreamConfig) -> Result<(), BusError> {
        for other in self.streams.read().values() {
            if other.name == config.name {
                continue;
            }
            for a in &config.subjects {
                if let Some(b) = other.config().subjects.iter().find(|b| overlaps(a, b)) {
                    return Err(BusError::Conflict {
                        what: a.clone(),
                        reason: format!("overlaps `{b}` of stream `{}`", other.name),
                    });
                }
            }
        }
        Ok(())
    }

    async fn delete_stream(&self, name: &str) -> Result<(), BusError> {
        let _admin = self.admin.lock().await;
        let s = self.stream(name)?;
        self.streams.write().remove(name);
        s.shutdown();
        self.db()?.delete_stream(name)?;
        let dir = self.stream_dir(name);
        std::fs::remove_dir_all(&dir).map_err(|source| BusError::Io {
            path: dir.display().to_string(),
            source,
        })
    }

    async fn add_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, BusError> {
        let _admin = self.admin.lock().await;
        let s = self.stream(stream)?;
        validate_consumer(&config)?;
        let filter = parse_filter(&config)?;
        if let Some(existing) = s.consumers.read().get(&config.name).cloned() {
            if existing.core.lock().config() == &config {
                return Ok(Self::consumer_info(&s, &existing));
            }
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: format!("a consumer of that name exists on `{stream}` with another config"),
            });
        }
        if s.config().retention == RetentionPolicy::Workqueue {
            check_workqueue_filters(&s, &config)?;
        }
        let start_seq = self.start_seq(&s, &config)?;
        if config.durable {
            let stored = StoredConsumer {
                config: config.clone(),
                start_seq,
            };
            self.db()?.put_consumer(stream, &stored)?;
        }
        let mut core = ConsumerCore::new(config.clone(), filter, start_seq);
        let consumer = {
            let mut consumers = s.consumers.write();
            s.replay_into(&mut core, start_seq)?;
            let held = core.outstanding();
            let consumer = Consumer::new(config.name.clone(), core);
            consumers.insert(config.name.clone(), consumer.clone());
            s.add_interest(&held);
            consumer
        };
        s.notify.notify_waiters();
        Ok(Self::consumer_info(&s, &consumer))
    }

    /// The first sequence a new consumer looks at, per its deliver policy.
    fn start_seq(&self, s: &Stream, config: &ConsumerConfig) -> Result<u64, BusError> {
        let state = s.log.state();
        let next = state.last_seq + 1;
        Ok(match config.deliver {
            DeliverPolicy::All => 1,
            DeliverPolicy::New => next,
            DeliverPolicy::BySeq(seq) => seq.max(1),
            DeliverPolicy::ByTime(t) => s.log.seq_at_or_after(unix_nanos(t)).unwrap_or(next),
            DeliverPolicy::Last => {
                let filter = parse_filter(config)?;
                let mut last = None;
                s.scan(state.first_seq, |rec, _| {
                    if filter.as_ref().is_none_or(|f| f.matches(&rec.subject)) {
                        last = Some(rec.seq);
                    }
                })?;
                last.unwrap_or(next)
            }
        })
    }

    async fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<(), BusError> {
        let _admin = self.admin.lock().await;
        let (s, c) = self.consumer(stream, consumer)?;
        s.consumers.write().remove(consumer);
        if s.config().retention == RetentionPolicy::Interest {
            s.settle_done(&c.core.lock().outstanding());
        }
        self.db()?.delete_consumer(stream, consumer)
    }
}

/// Stream names, subjects and options this engine accepts.
fn validate_stream(config: &StreamConfig) -> Result<(), BusError> {
    validate_name("stream.name", &config.name)?;
    if config.subjects.is_empty() {
        return Err(BusError::InvalidConfig {
            field: "stream.subjects".to_owned(),
            reason: "at least one subject pattern is required".to_owned(),
        });
    }
    stream::patterns(config)?;
    if let Some(dl) = &config.dead_letter {
        Subject::new(dl.as_str()).map_err(|e| BusError::InvalidConfig {
            field: "stream.dead_letter".to_owned(),
            reason: e.to_string(),
        })?;
    }
    if config.storage == StorageKind::Memory {
        return Err(BusError::Unsupported {
            feature: "stream.storage = memory (the embedded engine stores streams as files)"
                .to_owned(),
        });
    }
    Ok(())
}

fn validate_consumer(config: &ConsumerConfig) -> Result<(), BusError> {
    validate_name("consumer.name", &config.name)?;
    if config.max_ack_pending == 0 {
        return Err(BusError::InvalidConfig {
            field: "consumer.max_ack_pending".to_owned(),
            reason: "must be at least 1".to_owned(),
        });
    }
    if config.max_deliver == Some(0) {
        return Err(BusError::InvalidConfig {
            field: "consumer.max_deliver".to_owned(),
            reason: "must be at least 1 (or null for unlimited)".to_owned(),
        });
    }
    Ok(())
}

fn validate_name(field: &str, name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidConfig {
            field: field.to_owned(),
            reason: format!("`{name}` must be 1..=128 characters of [A-Za-z0-9_-]"),
        })
    }
}

fn parse_filter(config: &ConsumerConfig) -> Result<Option<SubjectPattern>, BusError> {
    config
        .filter
        .as_ref()
        .map(|f| {
            SubjectPattern::new(f.as_str()).map_err(|e| BusError::InvalidSubject {
                subject: f.clone(),
                reason: e.to_string(),
            })
        })
        .transpose()
}

/// A work queue hands each message to one consumer: filters may not overlap.
fn check_workqueue_filters(s: &Stream, config: &ConsumerConfig) -> Result<(), BusError> {
    let mine = config.filter.as_deref().unwrap_or(">");
    for (name, c) in s.consumers.read().iter() {
        let theirs = c.core.lock().config().filter.clone();
        let theirs = theirs.as_deref().unwrap_or(">");
        if overlaps(mine, theirs) {
            return Err(BusError::Conflict {
                what: config.name.clone(),
                reason: format!(
                    "work-queue filter `{mine}` overlaps `{theirs}` of consumer `{name}`"
                ),
            });
        }
    }
    Ok(())
}

/// Whether some subject matches both patterns.
fn overlaps(a: &str, b: &str) -> bool {
    fn go(a: &[&str], b: &[&str]) -> bool {
        match (a.first(), b.first()) {
            (Some(&">"), Some(_)) | (Some(_), Some(&">")) | (None, None) => true,
            (None, _) | (_, None) => false,
            (Some(x), Some(y)) => (*x == "*" || *y == "*" || x == y) && go(&a[1..], &b[1..]),
        }
    }
    let a: Vec<&str> = a.split('.').collect();
    let b: Vec<&str> = b.split('.').collect();
    go(&a, &b)
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

    async fn subscribe(
        &self,
        pattern: &str,
        queue: Option<&str>,
    ) -> Result<Box<dyn LiveSubscription>, BusError> {
        self.inner.check_open()?;
        let sub = self.inner.live.subscribe(pattern, queue)?;
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

    async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<Delivered>, BusError> {
        self.inner.fetch(stream, consumer, batch, expires).await
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
        let rec = s.log.read(seq).map_err(|source| BusError::Log {
            stream: stream.to_owned(),
            source,
        })?;
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

    async fn close(&self) -> Result<(), BusError> {
        self.inner.shutdown();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::overlaps;

    #[test]
    fn given_patterns_when_checking_overlap_then_wildcards_are_honoured() {
        assert!(overlaps("orders.>", "orders.eu.*"));
        assert!(overlaps("a.*.c", "a.b.*"));
        assert!(!overlaps("orders.>", "orders"));
        assert!(!overlaps("a.b", "a.c"));
        assert!(overlaps(">", "x"));
        assert!(!overlaps("a.*", "a.b.c"));
    }
}
