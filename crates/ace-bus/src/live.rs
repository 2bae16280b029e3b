//! The live hub: core pub/sub between subscribers in this process, with no persistence.
//!
//! What it owns and why:
//! - **Fan-out without blocking.** Each subscription has a bounded tokio mpsc; `publish` only ever
//!   `try_send`s. The buffer is bounded in messages (`subscriber_buffer`) and in bytes
//!   (`subscriber_buffer_bytes`, by [`envelope_bytes`]: a thousand large messages are not held
//!   for a reader that stopped). A subscriber whose buffer is full by either is *cut off* on the spot (its subscription ends
//!   with [`CloseReason::SlowConsumer`] once it has drained what it already holds, and the cutoff is
//!   counted): memory never grows to absorb a slow reader, and the publisher never waits for one.
//! - **Read-mostly locking.** The [`SubjectIndex`] sits behind one `parking_lot::RwLock`: every
//!   publish takes it for reading only, so publishers run in parallel; only subscribe, unsubscribe
//!   and a cutoff take it for writing, briefly and never across an await.
//! - **Queue groups.** Among the matching members of one queue group exactly one live member gets
//!   each message, picked at random (no shared counter to contend on); a full member is cut off and
//!   the next one is tried, so a message is lost only when every member is full.
//! - **Receive filters.** A subscription may carry an [`Accept`] predicate (`subscribe_filtered`;
//!   the core passes the subscriber's right to receive). It is asked when the message is offered,
//!   before the buffer: a plain subscriber that refuses does not get the message; in a queue group
//!   a member that refuses is skipped like a closed one and the next member is asked, so the group
//!   gets the message whenever any member accepts it. A plain subscriber that refuses, and a group
//!   whose members took nothing because they refused, are counted in [`LiveStats::refused`]. The
//!   predicate runs under the index's read lock, on the publisher's thread: cheap, never calling
//!   back into the hub. Unfiltered subscriptions pay one branch on `None`.
//! - **Request/reply.** A request carries its reply subject in `headers["reply_to"]`, a one-token
//!   inbox under `ace.comms.system.inbox.`. Pending requests wait on a oneshot in a map instead of a
//!   subscription of their own, so requests do not churn the index (the same trick as NATS's
//!   multiplexed `_INBOX` subscription). Nobody subscribed to the request subject is answered at
//!   once with [`BusError::NoResponders`]; silence past the timeout with [`BusError::Timeout`].
//! - **Expiry.** A message whose TTL or deadline has passed (by the injected [`Clock`]) is not
//!   delivered, and is counted in [`LiveStats::expired`].
//! - **`not_before`.** A message not due yet is held by a timer task and offered when it is due
//!   (to the subscribers there are then), as a durable consumer would hand it out. What waits
//!   is bounded in bytes (`deferred_bytes`, by [`envelope_bytes`]); past the bound a message is
//!   dropped and counted in [`LiveStats::deferred_dropped`] — live delivery is at most once. Outside
//!   a tokio runtime there is no timer, and the message is offered at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ace_envelope::{Clock, Envelope, Subject, SubjectPattern, SystemClock};
use parking_lot::{Mutex, RwLock};
use rand::Rng;
use tokio::sync::{mpsc, oneshot};

use crate::bus::Accept;
use crate::error::BusError;
use crate::index::{EntryId, SubjectIndex};

/// Subjects under this prefix are request inboxes; one extra token names the request.
pub const INBOX_PREFIX: &str = "ace.comms.system.inbox.";

/// The header a request's reply subject travels in.
pub const REPLY_TO_HEADER: &str = "reply_to";

/// Limits of a [`LiveHub`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveConfig {
    /// Messages a subscription may hold unread before it is cut off as a slow consumer (min 1).
    pub subscriber_buffer: usize,
    /// Bytes of messages (by [`envelope_bytes`]) a subscription may hold unread before it is cut
    /// off as a slow consumer; a message always fits in an empty buffer.
    pub subscriber_buffer_bytes: usize,
    /// Subscriptions the hub accepts; more are refused with `BusError::TooManySubscriptions`.
    pub max_subscriptions: usize,
    /// Bytes of messages (by [`envelope_bytes`]) the hub holds until their `not_before`.
    pub deferred_bytes: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        Self {
            subscriber_buffer: 1024,
            subscriber_buffer_bytes: 64 * 1024 * 1024,
            max_subscriptions: 1_000_000,
            deferred_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a subscription stopped receiving.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// It fell `subscriber_buffer` messages or `subscriber_buffer_bytes` bytes behind and was
    /// cut off.
    SlowConsumer,
    /// The hub it belonged to was dropped.
    HubClosed,
}

/// Counters of a [`LiveHub`] since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveStats {
    /// Subscriptions open now.
    pub subscriptions: usize,
    /// Messages handed to `publish` (including replies).
    pub published: u64,
    /// Messages placed in a subscriber's buffer or handed to a waiting request.
    pub delivered: u64,
    /// Subscriptions cut off because their buffer was full.
    pub slow_consumer_cutoffs: u64,
    /// Publishes that reached nobody.
    pub no_interest: u64,
    /// Publishes not delivered because the message's TTL or deadline had passed.
    pub expired: u64,
    /// Messages held until their `not_before` (offered when due).
    pub deferred: u64,
    /// Messages not due yet dropped because `deferred_bytes` were already waiting.
    pub deferred_dropped: u64,
    /// Receivers a message was withheld from by their [`Accept`] predicate: once per plain
    /// subscriber that refused it, and once per queue group that did not get it because its
    /// members refused (a member skipped for another one that accepts is not counted: the group
    /// got the message).
    pub refused: u64,
}

const OPEN: u8 = 0;
const SLOW: u8 = 1;
const HUB_CLOSED: u8 = 2;

/// One subscription as the hub sees it.
struct Member {
    queue: Option<Box<str>>,
    /// Asked before each offer; `None` takes everything.
    accept: Option<Accept>,
    tx: mpsc::Sender<(Arc<Envelope>, usize)>,
    state: Arc<AtomicU8>,
    /// Bytes of the messages in the buffer (shared with the [`Subscription`], which gives them
    /// back as it reads).
    held: Arc<AtomicUsize>,
    /// `subscriber_buffer_bytes` of the hub.
    max_bytes: usize,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    delivered: AtomicU64,
    slow_consumer_cutoffs: AtomicU64,
    no_interest: AtomicU64,
    expired: AtomicU64,
    refused: AtomicU64,
    deferred: AtomicU64,
    deferred_dropped: AtomicU64,
}

struct Shared {
    config: LiveConfig,
    index: RwLock<SubjectIndex<Member>>,
    /// Requests waiting for their reply, by inbox subject.
    pending: Mutex<HashMap<String, oneshot::Sender<Arc<Envelope>>>>,
    counters: Counters,
    /// Judges expiry; injected so tests move time instead of sleeping.
    clock: Arc<dyn Clock>,
    /// Bytes of the messages waiting for their `not_before`.
    deferred_bytes: AtomicUsize,
}

/// The in-process pub/sub hub. `Send + Sync`; share it in an `Arc`.
pub struct LiveHub {
    shared: Arc<Shared>,
}

/// A live subscription. Dropping it unsubscribes.
pub struct Subscription {
    id: EntryId,
    rx: mpsc::Receiver<(Arc<Envelope>, usize)>,
    state: Arc<AtomicU8>,
    held: Arc<AtomicUsize>,
    hub: Weak<Shared>,
}

impl LiveHub {
    /// A hub with the given limits, judging expiry by the system clock.
    pub fn new(config: LiveConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A hub with the given limits, judging expiry by `clock`.
    pub fn with_clock(mut config: LiveConfig, clock: Arc<dyn Clock>) -> Self {
        // tokio's bounded channel needs room for at least one message.
        config.subscriber_buffer = config.subscriber_buffer.max(1);
        let shared = Shared {
            config,
            index: RwLock::new(SubjectIndex::new()),
            pending: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            clock,
            deferred_bytes: AtomicUsize::new(0),
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Subscribes to `pattern` (wildcards allowed), optionally as a member of queue group `queue`.
    pub fn subscribe(&self, pattern: &str, queue: Option<&str>) -> Result<Subscription, BusError> {
        self.subscribe_filtered(pattern, queue, None)
    }

    /// Subscribes like [`LiveHub::subscribe`], receiving only what `accept` (when given) accepts;
    /// in a queue group a refusing member is skipped and the next one asked (see the module doc).
    pub fn subscribe_filtered(
        &self,
        pattern: &str,
        queue: Option<&str>,
        accept: Option<Accept>,
    ) -> Result<Subscription, BusError> {
        let pattern = SubjectPattern::new(pattern).map_err(|e| invalid_subject(pattern, &e))?;
        if let Some(queue) = queue.filter(|q| q.is_empty() || q.chars().any(char::is_whitespace)) {
            return Err(BusError::InvalidConfig {
                field: "queue".to_owned(),
                reason: format!("queue group name `{queue}` must be non-empty, without whitespace"),
            });
        }
        let (tx, rx) = mpsc::channel(self.shared.config.subscriber_buffer);
        let state = Arc::new(AtomicU8::new(OPEN));
        let held = Arc::new(AtomicUsize::new(0));
        let member = Member {
            queue: queue.map(Into::into),
            accept,
            tx,
            state: Arc::clone(&state),
            held: Arc::clone(&held),
            max_bytes: self.shared.config.subscriber_buffer_bytes,
        };
        let mut index = self.shared.index.write();
        if index.len() >= self.shared.config.max_subscriptions {
            return Err(BusError::TooManySubscriptions {
                max: self.shared.config.max_subscriptions,
            });
        }
        let id = index.insert(&pattern, member);
        Ok(Subscription {
            id,
            rx,
            state,
            held,
            hub: Arc::downgrade(&self.shared),
        })
    }

    /// Delivers `msg` to every matching subscriber (one member per queue group) and to the request
    /// waiting on its subject, if any. Never blocks; returns how many received it.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the agreed interface: the caller hands its Arc over, as a send would"
    )]
    pub fn publish(&self, msg: Arc<Envelope>) -> usize {
        if let Some(due) = msg.not_before {
            let early = (due - self.shared.clock.now()).to_std();
            if let (Ok(wait), Ok(runtime)) = (early, tokio::runtime::Handle::try_current())
                && !wait.is_zero()
            {
                self.shared.defer(&runtime, msg, wait);
                return 0;
            }
        }
        self.shared.publish(&msg)
    }

    /// Publishes `msg` as a request and waits up to `timeout` for the first reply on its inbox.
    pub async fn request(
        &self,
        mut msg: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, BusError> {
        let subject = msg.subject.clone();
        Subject::new(subject.as_str()).map_err(|e| invalid_subject(&subject, &e))?;
        if !self.shared.index.read().has_match(&subject) {
            return Err(BusError::NoResponders { subject });
        }
        let inbox = format!("{INBOX_PREFIX}{}", uuid::Uuid::new_v4().simple());
        msg.headers
            .insert(REPLY_TO_HEADER.to_owned(), inbox.clone());
        msg.correlation_id.get_or_insert_with(|| msg.id.to_string());
        let (tx, rx) = oneshot::channel();
        let waiting = PendingGuard::new(&self.shared, inbox, tx);
        if self.publish(Arc::new(msg)) == 0 {
            return Err(BusError::NoResponders { subject });
        }
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => return Err(BusError::Closed),
            Err(_) => {
                return Err(BusError::Timeout {
                    subject,
                    after: timeout,
                });
            }
        };
        drop(waiting);
        Ok(Arc::unwrap_or_clone(reply))
    }

    /// Counters since the hub was created.
    pub fn stats(&self) -> LiveStats {
        let counters = &self.shared.counters;
        LiveStats {
            subscriptions: self.shared.index.read().len(),
            published: counters.published.load(Ordering::Relaxed),
            delivered: counters.delivered.load(Ordering::Relaxed),
            slow_consumer_cutoffs: counters.slow_consumer_cutoffs.load(Ordering::Relaxed),
            no_interest: counters.no_interest.load(Ordering::Relaxed),
            expired: counters.expired.load(Ordering::Relaxed),
            refused: counters.refused.load(Ordering::Relaxed),
            deferred: counters.deferred.load(Ordering::Relaxed),
            deferred_dropped: counters.deferred_dropped.load(Ordering::Relaxed),
        }
    }
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new(LiveConfig::default())
    }
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("config", &self.shared.config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The bytes an envelope holds, estimated cheaply for the byte bound of subscriber buffers: a
/// fixed overhead for the envelope's fields, its subject and headers, and its payload walked
/// once (a string counts its length, so a large text payload costs one step).
pub fn envelope_bytes(msg: &Envelope) -> usize {
    const FIELDS: usize = 512;
    let headers: usize = msg.headers.iter().map(|(k, v)| k.len() + v.len()).sum();
    FIELDS + msg.subject.len() + headers + msg.payload.as_ref().map_or(0, value_bytes)
}

fn value_bytes(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => 2 + items.iter().map(value_bytes).sum::<usize>(),
        Value::Object(fields) => {
            2 + fields
                .iter()
                .map(|(key, value)| key.len() + 3 + value_bytes(value))
                .sum::<usize>()
        }
    }
}

/// The reply subject a request carries, for a responder to publish its reply to.
pub fn reply_subject(request: &Envelope) -> Option<&str> {
    request.headers.get(REPLY_TO_HEADER).map(String::as_str)
}

fn invalid_subject(subject: &str, error: &impl std::fmt::Display) -> BusError {
    BusError::InvalidSubject {
        subject: subject.to_owned(),
        reason: error.to_string(),
    }
}

/// Outcome of offering a message to one member.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offer {
    Delivered,
    /// The member's `accept` predicate refused the message.
    Refused,
    /// The member was full and is now cut off; its entry must leave the index.
    CutOff,
    /// The member is already closed (cut off, or its receiver dropped).
    Gone,
}

impl Member {
    fn offer(&self, msg: &Arc<Envelope>, size: usize, counters: &Counters) -> Offer {
        if self.state.load(Ordering::Acquire) != OPEN {
            return Offer::Gone;
        }
        if self.accept.as_ref().is_some_and(|accept| !accept(msg)) {
            return Offer::Refused;
        }
        let before = self.held.fetch_add(size, Ordering::AcqRel);
        let sent = if before > 0 && before.saturating_add(size) > self.max_bytes {
            Err(mpsc::error::TrySendError::Full((Arc::clone(msg), size)))
        } else {
            self.tx.try_send((Arc::clone(msg), size))
        };
        if sent.is_err() {
            self.held.fetch_sub(size, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => Offer::Delivered,
            Err(mpsc::error::TrySendError::Closed(_)) => Offer::Gone,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Only the publisher that flips the state counts the cutoff (publishers race).
                if self
                    .state
                    .compare_exchange(OPEN, SLOW, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                {
                    counters
                        .slow_consumer_cutoffs
                        .fetch_add(1, Ordering::Relaxed);
                    Offer::CutOff
                } else {
                    Offer::Gone
                }
            }
        }
    }
}

/// What one publish did, gathered under the read lock and acted on after it.
#[derive(Default)]
struct Fanout {
    /// [`envelope_bytes`] of the message.
    size: usize,
    delivered: usize,
    /// Receivers whose predicate withheld the message (see `LiveStats::refused`).
    refused: u64,
    cut_off: Vec<EntryId>,
}

impl Fanout {
    /// Offers to one member and books the outcome (delivered, or cut off).
    fn offer(
        &mut self,
        id: EntryId,
        member: &Member,
        msg: &Arc<Envelope>,
        counters: &Counters,
    ) -> Offer {
        let outcome = member.offer(msg, self.size, counters);
        match outcome {
            Offer::Delivered => self.delivered += 1,
            Offer::CutOff => self.cut_off.push(id),
            Offer::Refused | Offer::Gone => {}
        }
        outcome
    }

    /// Offers to a subscriber outside any queue group; a refusal is counted.
    fn offer_plain(
        &mut self,
        id: EntryId,
        member: &Member,
        msg: &Arc<Envelope>,
        counters: &Counters,
    ) {
        if self.offer(id, member, msg, counters) == Offer::Refused {
            self.refused += 1;
        }
    }

    /// Gives the message to one member of each queue group in `members` (sorted by group, in
    /// index order within a group): a random start, then the next live member that accepts it.
    /// A group that took nothing because members refused is counted once.
    fn offer_queue_groups(
        &mut self,
        members: &[(EntryId, &Member)],
        msg: &Arc<Envelope>,
        counters: &Counters,
    ) {
        let mut rng = rand::rng();
        for group in members.chunk_by(|a, b| a.1.queue == b.1.queue) {
            let start = rng.random_range(0..group.len());
            let mut refused = false;
            for &(id, member) in group[start..].iter().chain(&group[..start]) {
                match self.offer(id, member, msg, counters) {
                    Offer::Delivered => {
                        refused = false;
                        break;
                    }
                    Offer::Refused => refused = true,
                    Offer::CutOff | Offer::Gone => {}
                }
            }
            self.refused += u64::from(refused);
        }
    }
}

impl Shared {
    /// Holds `msg` for `wait` on a timer task, then offers it; dropped (and counted) when the
    /// bytes already waiting leave no room for it.
    fn defer(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        msg: Arc<Envelope>,
        wait: Duration,
    ) {
        let size = envelope_bytes(&msg);
        let limit = self.config.deferred_bytes;
        let taken = self
            .deferred_bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held + size <= limit).then_some(held + size)
            });
        if taken.is_err() {
            self.counters
                .deferred_dropped
                .fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.counters.deferred.fetch_add(1, Ordering::Relaxed);
        let hub = Arc::downgrade(self);
        runtime.spawn(async move {
            tokio::time::sleep(wait).await;
            if let Some(hub) = hub.upgrade() {
                hub.deferred_bytes.fetch_sub(size, Ordering::AcqRel);
                hub.publish(&msg);
            }
        });
    }

    fn publish(&self, msg: &Arc<Envelope>) -> usize {
        self.counters.published.fetch_add(1, Ordering::Relaxed);
        // Only a message that can expire pays for reading the clock.
        if msg.expires_at().is_some() && msg.is_expired(self.clock.now()) {
            self.counters.expired.fetch_add(1, Ordering::Relaxed);
            return 0;
        }
        let mut fanout = Fanout {
            size: envelope_bytes(msg),
            ..Fanout::default()
        };
        fanout.delivered += self.answer_request(msg);
        {
            let index = self.index.read();
            let mut queued: Vec<(EntryId, &Member)> = Vec::new();
            index.matches(&msg.subject, |id, member| match member.queue {
                None => fanout.offer_plain(id, member, msg, &self.counters),
                Some(_) => queued.push((id, member)),
            });
            if !queued.is_empty() {
                queued.sort_by(|a, b| a.1.queue.cmp(&b.1.queue));
                fanout.offer_queue_groups(&queued, msg, &self.counters);
            }
        }
        self.remove_cut_off(&fanout.cut_off);
        if fanout.refused > 0 {
            self.counters
                .refused
                .fetch_add(fanout.refused, Ordering::Relaxed);
        }
        self.count_delivered(fanout.delivered);
        fanout.delivered
    }

    /// Hands `msg` to the request waiting on its subject, if it is such an inbox; 1 if it did.
    fn answer_request(&self, msg: &Arc<Envelope>) -> usize {
        let subject = msg.subject.as_str();
        if !subject.starts_with(INBOX_PREFIX) {
            return 0;
        }
        let waiting = self.pending.lock().remove(subject);
        waiting
            .is_some_and(|tx| tx.send(Arc::clone(msg)).is_ok())
            .into()
    }

    fn count_delivered(&self, delivered: usize) {
        if delivered == 0 {
            self.counters.no_interest.fetch_add(1, Ordering::Relaxed);
        } else {
            self.counters
                .delivered
                .fetch_add(delivered as u64, Ordering::Relaxed);
        }
    }

    /// Drops cut-off members from the index, which drops their senders: their receivers then
    /// drain what they hold and end.
    fn remove_cut_off(&self, ids: &[EntryId]) {
        if ids.is_empty() {
            return;
        }
        let mut index = self.index.write();
        for &id in ids {
            index.remove(id);
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.index.get_mut().for_each(|_, member| {
            let _ = member.state.compare_exchange(
                OPEN,
                HUB_CLOSED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        });
    }
}

/// Removes a pending request from the map however the request ends (reply, timeout, or the
/// caller dropping the future), so abandoned inboxes never accumulate.
struct PendingGuard<'a> {
    shared: &'a Shared,
    inbox: String,
}

impl<'a> PendingGuard<'a> {
    fn new(shared: &'a Shared, inbox: String, tx: oneshot::Sender<Arc<Envelope>>) -> Self {
        shared.pending.lock().insert(inbox.clone(), tx);
        Self { shared, inbox }
    }
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.shared.pending.lock().remove(&self.inbox);
    }
}

impl Subscription {
    /// The subscription's id, unique within its hub.
    pub fn id(&self) -> u64 {
        self.id.get()
    }

    /// The next message; `None` once the subscription is closed and drained (see
    /// [`Subscription::close_reason`]).
    pub async fn next(&mut self) -> Option<Arc<Envelope>> {
        let (msg, size) = self.rx.recv().await?;
        self.held.fetch_sub(size, Ordering::AcqRel);
        Some(msg)
    }

    /// The next message if one is buffered now, without waiting.
    pub fn try_next(&mut self) -> Option<Arc<Envelope>> {
        let (msg, size) = self.rx.try_recv().ok()?;
        self.held.fetch_sub(size, Ordering::AcqRel);
        Some(msg)
    }

    /// Why the subscription stopped receiving; `None` while it is open.
    pub fn close_reason(&self) -> Option<CloseReason> {
        match self.state.load(Ordering::Acquire) {
            SLOW => Some(CloseReason::SlowConsumer),
            HUB_CLOSED => Some(CloseReason::HubClosed),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("close_reason", &self.close_reason())
            .finish()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.index.write().remove(self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(subject: &str) -> Envelope {
        Envelope::builder(ace_envelope::Kind::Query, subject)
            .payload_json(serde_json::json!({}))
            .build()
            .expect("valid envelope")
    }

    #[tokio::test]
    async fn given_a_request_that_times_out_when_it_returns_then_its_inbox_is_forgotten() {
        let hub = LiveHub::default();
        let _silent = hub.subscribe("svc.echo", None).expect("subscribe");
        let answer = hub
            .request(query("svc.echo"), Duration::from_millis(10))
            .await;
        assert!(
            matches!(answer, Err(BusError::Timeout { .. })),
            "{answer:?}"
        );
        assert!(hub.shared.pending.lock().is_empty(), "no inbox left behind");
    }

    #[tokio::test]
    async fn given_a_request_whose_caller_gives_up_when_dropped_then_its_inbox_is_forgotten() {
        let hub = LiveHub::default();
        let _silent = hub.subscribe("svc.echo", None).expect("subscribe");
        let request = hub.request(query("svc.echo"), Duration::from_secs(60));
        let abandoned = tokio::time::timeout(Duration::from_millis(10), request).await;
        assert!(abandoned.is_err(), "the caller stopped waiting first");
        assert!(hub.shared.pending.lock().is_empty(), "no inbox left behind");
    }

    #[test]
    fn given_an_inbox_nobody_waits_on_when_publishing_to_it_then_it_counts_as_no_interest() {
        let hub = LiveHub::default();
        let stray = Envelope::builder(ace_envelope::Kind::Reply, format!("{INBOX_PREFIX}gone"))
            .build_unchecked();
        assert_eq!(hub.publish(Arc::new(stray)), 0);
        assert_eq!(hub.stats().no_interest, 1);
    }

    #[test]
    fn given_a_zero_buffer_when_creating_the_hub_then_each_subscriber_still_holds_one_message() {
        let hub = LiveHub::new(LiveConfig {
            subscriber_buffer: 0,
            ..LiveConfig::default()
        });
        let mut sub = hub.subscribe("a.b", None).expect("subscribe");
        let msg = Arc::new(Envelope::builder(ace_envelope::Kind::Event, "a.b").build_unchecked());
        assert_eq!(hub.publish(Arc::clone(&msg)), 1);
        assert_eq!(sub.try_next().map(|m| m.id), Some(msg.id));
    }

    #[test]
    fn given_a_subscriber_holding_its_byte_bound_when_another_message_comes_then_it_is_cut_off() {
        let big = |n: usize| {
            let payload = serde_json::json!({ "blob": "b".repeat(n) });
            Arc::new(
                Envelope::builder(ace_envelope::Kind::Event, "a.b")
                    .payload_json(payload)
                    .build_unchecked(),
            )
        };
        let hub = LiveHub::new(LiveConfig {
            subscriber_buffer_bytes: 10_000,
            ..LiveConfig::default()
        });
        let mut sub = hub.subscribe("a.b", None).expect("subscribe");
        // A message larger than the bound still goes to an empty buffer.
        assert_eq!(hub.publish(big(20_000)), 1);
        assert!(sub.try_next().is_some());
        assert_eq!(hub.publish(big(4_000)), 1);
        assert_eq!(hub.publish(big(4_000)), 1);
        assert_eq!(hub.publish(big(4_000)), 0, "a third passes 10,000 bytes");
        assert_eq!(sub.close_reason(), Some(CloseReason::SlowConsumer));
        assert_eq!(hub.stats().slow_consumer_cutoffs, 1);
        assert!(sub.try_next().is_some() && sub.try_next().is_some());
        assert_eq!(
            sub.held.load(Ordering::Acquire),
            0,
            "reading gives the bytes back"
        );
    }
}
