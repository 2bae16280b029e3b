//! Live subscriptions and request/reply on core NATS.
//!
//! A plain subscription is one NATS subscription read by a task that applies the subscriber's
//! `Accept` and hands the envelope to a buffer bounded in messages and bytes (`LiveConfig`); a
//! subscriber whose buffer is full is cut off (it keeps what it holds, then ends), as in the
//! embedded hub. A queue group is one NATS queue subscription per server (NATS gives each message
//! to one server of the group) whose task hands the message to one local member, in turn,
//! skipping a member whose `Accept` refuses it or whose buffer is full.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

use ace_envelope::{Envelope, SubjectPattern};
use async_trait::async_trait;
use futures::StreamExt as _;
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::Inner;
use super::publish::{body, headers};
use crate::bus::{Accept, LiveSubscription};
use crate::error::BusError;
use crate::live::{INBOX_PREFIX, REPLY_TO_HEADER, envelope_bytes};

/// The receiving end of one subscriber: messages in order, and the bytes they hold.
struct Slot {
    tx: mpsc::Sender<Arc<Envelope>>,
    bytes: Arc<AtomicUsize>,
    max_bytes: usize,
}

impl Slot {
    /// Offers a message; `false` when the subscriber must be cut off (full, or gone).
    fn offer(&self, envelope: &Arc<Envelope>, size: usize) -> bool {
        let held = self.bytes.load(AtomicOrdering::Acquire);
        if held > 0 && held + size > self.max_bytes {
            return false;
        }
        if self.tx.try_send(envelope.clone()).is_err() {
            return false;
        }
        self.bytes.fetch_add(size, AtomicOrdering::AcqRel);
        true
    }
}

/// A live subscription of the NATS engine.
struct NatsSubscription {
    id: u64,
    rx: mpsc::Receiver<Arc<Envelope>>,
    bytes: Arc<AtomicUsize>,
    _guard: Guard,
}

/// What dropping a subscription undoes.
enum Guard {
    /// The task reading its own NATS subscription.
    Task(tokio::task::JoinHandle<()>),
    /// Its place in a queue group.
    Member {
        groups: Groups,
        key: (String, String),
        id: u64,
    },
}

impl Drop for Guard {
    fn drop(&mut self) {
        match self {
            Guard::Task(task) => task.abort(),
            Guard::Member { groups, key, id } => {
                let mut groups = groups.lock();
                let empty = match groups.get(key) {
                    Some(group) => {
                        let mut members = group.members.lock();
                        members.retain(|m| m.id != *id);
                        members.is_empty()
                    }
                    None => false,
                };
                if empty && let Some(group) = groups.remove(key) {
                    group.stop();
                }
            }
        }
    }
}

#[async_trait]
impl LiveSubscription for NatsSubscription {
    fn id(&self) -> u64 {
        self.id
    }

    async fn next(&mut self) -> Option<Arc<Envelope>> {
        let got = self.rx.recv().await?;
        let size = envelope_bytes(&got);
        self.bytes.fetch_sub(
            size.min(self.bytes.load(AtomicOrdering::Acquire)),
            AtomicOrdering::AcqRel,
        );
        Some(got)
    }
}

/// The queue groups of this server, by (pattern, queue).
pub(super) type Groups = Arc<Mutex<std::collections::HashMap<(String, String), Arc<Group>>>>;

/// One member of a local queue group.
struct Member {
    id: u64,
    slot: Slot,
    accept: Option<Accept>,
}

/// The members of one queue group on this server, fed by one NATS queue subscription.
pub(super) struct Group {
    members: Mutex<Vec<Member>>,
    turn: AtomicUsize,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Group {
    /// Ends the NATS queue subscription of the group.
    pub(super) fn stop(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }

    /// Hands a message to one member that accepts it, in turn; a member that cannot take it is
    /// cut off and the next one asked.
    fn deliver(&self, envelope: &Arc<Envelope>, size: usize) {
        let mut members = self.members.lock();
        let n = members.len();
        if n == 0 {
            return;
        }
        let start = self.turn.fetch_add(1, AtomicOrdering::Relaxed) % n;
        let mut cut = Vec::new();
        for k in 0..n {
            let i = (start + k) % n;
            let m = &members[i];
            if m.accept.as_ref().is_some_and(|a| !a(envelope)) {
                continue;
            }
            if m.slot.offer(envelope, size) {
                break;
            }
            cut.push(m.id);
        }
        if !cut.is_empty() {
            members.retain(|m| !cut.contains(&m.id));
        }
    }
}

/// Decodes the envelope of a live NATS message (`None`, logged, for a body that is not one).
fn decode(msg: &async_nats::Message) -> Option<Arc<Envelope>> {
    match serde_json::from_slice::<Envelope>(&msg.payload) {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            tracing::debug!(subject = %msg.subject, error = %e, "live message is not an envelope; skipped");
            None
        }
    }
}

/// A live subscription (module docs).
pub(super) async fn subscribe(
    inner: &Arc<Inner>,
    pattern: &str,
    queue: Option<&str>,
    accept: Option<Accept>,
) -> Result<Box<dyn LiveSubscription>, BusError> {
    SubjectPattern::new(pattern).map_err(|e| BusError::InvalidSubject {
        subject: pattern.to_owned(),
        reason: e.to_string(),
    })?;
    let id = inner.next_sub.fetch_add(1, AtomicOrdering::Relaxed);
    let live = &inner.config.live;
    let (tx, rx) = mpsc::channel(live.subscriber_buffer.max(1));
    let bytes = Arc::new(AtomicUsize::new(0));
    let slot = Slot {
        tx,
        bytes: bytes.clone(),
        max_bytes: live.subscriber_buffer_bytes,
    };
    let wire = inner.wire(pattern);
    let failed = |e: async_nats::SubscribeError| BusError::Engine {
        op: format!("subscribe to {pattern}"),
        reason: e.to_string(),
    };
    let guard = match queue {
        None => {
            let mut sub = inner.client.subscribe(wire).await.map_err(failed)?;
            inner.server_has_seen().await;
            Guard::Task(tokio::spawn(async move {
                while let Some(msg) = sub.next().await {
                    let Some(envelope) = decode(&msg) else {
                        continue;
                    };
                    if accept.as_ref().is_some_and(|a| !a(&envelope)) {
                        continue;
                    }
                    if !slot.offer(&envelope, envelope_bytes(&envelope)) {
                        tracing::debug!(
                            subscription = id,
                            "live subscriber cut off: slow consumer"
                        );
                        break;
                    }
                }
            }))
        }
        Some(queue) => {
            let key = (pattern.to_owned(), queue.to_owned());
            let member = Member { id, slot, accept };
            let existing = inner.groups.lock().get(&key).cloned();
            match existing {
                Some(group) => group.members.lock().push(member),
                None => {
                    let mut sub = inner
                        .client
                        .queue_subscribe(wire, queue.to_owned())
                        .await
                        .map_err(failed)?;
                    inner.server_has_seen().await;
                    let group = Arc::new(Group {
                        members: Mutex::new(vec![member]),
                        turn: AtomicUsize::new(0),
                        task: Mutex::new(None),
                    });
                    let feeding = group.clone();
                    let task = tokio::spawn(async move {
                        while let Some(msg) = sub.next().await {
                            if let Some(envelope) = decode(&msg) {
                                let size = envelope_bytes(&envelope);
                                feeding.deliver(&envelope, size);
                            }
                        }
                    });
                    *group.task.lock() = Some(task);
                    let mut groups = inner.groups.lock();
                    match groups.get(&key) {
                        // Another subscriber made the group meanwhile: join it, drop ours.
                        Some(other) => {
                            let mine = group.members.lock().pop();
                            group.stop();
                            if let Some(m) = mine {
                                other.members.lock().push(m);
                            }
                        }
                        None => {
                            groups.insert(key.clone(), group);
                        }
                    }
                }
            }
            Guard::Member {
                groups: inner.groups.clone(),
                key,
                id,
            }
        }
    };
    Ok(Box::new(NatsSubscription {
        id,
        rx,
        bytes,
        _guard: guard,
    }))
}

/// Publishes `envelope` as a request and waits for the first envelope on its inbox.
pub(super) async fn request(
    inner: &Arc<Inner>,
    mut envelope: Envelope,
    timeout: Duration,
) -> Result<Envelope, BusError> {
    let subject = envelope.subject.clone();
    let inbox = format!("{INBOX_PREFIX}{}", uuid::Uuid::now_v7().simple());
    envelope
        .headers
        .insert(REPLY_TO_HEADER.to_owned(), inbox.clone());
    let wire_inbox = inner.wire(&inbox);
    let mut sub = inner
        .client
        .subscribe(wire_inbox.clone())
        .await
        .map_err(|e| BusError::Engine {
            op: format!("request on {subject}"),
            reason: e.to_string(),
        })?;
    inner
        .client
        .publish_with_reply_and_headers(
            inner.wire(&subject),
            wire_inbox,
            headers(&envelope),
            body(&envelope)?,
        )
        .await
        .map_err(|e| BusError::Engine {
            op: format!("request on {subject}"),
            reason: e.to_string(),
        })?;
    let _ = inner.client.flush().await;
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Err(_) | Ok(None) => {
                return Err(BusError::Timeout {
                    subject,
                    after: timeout,
                });
            }
            Ok(Some(msg)) => {
                if msg.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                    return Err(BusError::NoResponders { subject });
                }
                // JetStream's PubAck (a stream captured the request) is not the reply.
                if let Some(reply) = decode(&msg) {
                    return Ok(Arc::unwrap_or_clone(reply));
                }
            }
        }
    }
}
