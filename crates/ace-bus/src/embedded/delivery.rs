//! The message path of the embedded engine: publishing (routing to the capturing stream, one
//! writer request per stream share, live delivery of what was not a duplicate), fetching
//! (waiting for a publish, a due redelivery or the deadline), acknowledgements, and dead letters
//! as a real move (publish first, then record the original as done).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Envelope, Subject};

use super::consumer::{ConsumerCore, DeadLetter, Handout, NotPending};
use super::record::{self, Header, Meta, decode_envelope};
use super::stream::{Consumer, Item, Stream};
use super::{FETCH_POLL, Inner};
use crate::bus::{Accept, Delivered, PublishAck};
use crate::error::BusError;

impl Inner {
    /// Publishes dead letters, then records each as done (or keeps it pending if that failed).
    /// A message no longer stored has no dead letter: it is done.
    pub(super) async fn dead_letter(
        &self,
        s: &Arc<Stream>,
        c: &Arc<Consumer>,
        dead: Vec<DeadLetter>,
    ) {
        for d in dead {
            let published = match self.dead_letter_envelope(s, &c.name, &d) {
                Ok(Some(env)) => self.publish(env).await.map(|_| true),
                Ok(None) => Ok(false),
                Err(e) => Err(e),
            };
            let now = self.now_ns();
            match published {
                Ok(true) => {
                    let out = c.core.lock().dead_lettered(&d, now);
                    s.settle_done(&out.done);
                }
                Ok(false) => {
                    tracing::debug!(stream = %s.name, consumer = %c.name, seq = d.seq,
                        "message to dead-letter no longer stored; done");
                    let out = c.core.lock().dead_letter_gone(&d, now);
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

    /// The dead letter of `d` (see the crate docs, "Dead letters"); `None` when its message is no
    /// longer stored.
    pub(super) fn dead_letter_envelope(
        &self,
        s: &Stream,
        consumer: &str,
        d: &DeadLetter,
    ) -> Result<Option<Envelope>, BusError> {
        let original = match s.log.read(d.seq) {
            Ok(Some(rec)) => decode_envelope(&s.name, d.seq, &rec.payload)?,
            Ok(None) => return Ok(None),
            Err(source) => return Err(s.log_error(source)),
        };
        let origin = crate::dead_letter::Origin {
            stream: &s.name,
            subject: s.config().dead_letter_subject(),
            consumer,
            seq: d.seq,
            deliveries: d.deliveries,
            reason: d.reason,
            detail: &d.detail,
        };
        crate::dead_letter::envelope(original, &origin, &*self.config.clock).map(Some)
    }

    pub(super) async fn publish(&self, envelope: Envelope) -> Result<PublishAck, BusError> {
        let mut answers = self.publish_batch(vec![envelope]).await;
        answers.pop().unwrap_or(Err(BusError::Closed))
    }

    /// Routes each envelope to the stream capturing its subject, appends each stream's share in
    /// one request, then delivers live what was not a duplicate.
    pub(super) async fn publish_batch(
        &self,
        envelopes: Vec<Envelope>,
    ) -> Vec<Result<PublishAck, BusError>> {
        if self.check_open().is_err() {
            return envelopes.iter().map(|_| Err(BusError::Closed)).collect();
        }
        let mut answers: Vec<Option<Answer>> = Vec::with_capacity(envelopes.len());
        let mut groups: Vec<Group> = Vec::new();
        for (i, env) in envelopes.iter().enumerate() {
            if let Err(e) = Subject::new(env.subject.as_str()) {
                answers.push(Some(Err(BusError::InvalidSubject {
                    subject: env.subject.clone(),
                    reason: e.to_string(),
                })));
                continue;
            }
            let Some(stream) = self.route(&env.subject) else {
                answers.push(Some(Ok(not_stored())));
                continue;
            };
            answers.push(None);
            let item = Item {
                subject: env.subject.clone(),
                header: Header::of(env),
                payload: record::encode_envelope(env),
            };
            add_to_group(&mut groups, stream, i, item);
        }
        self.append_groups(groups, &mut answers).await;
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

    /// Appends each stream's share; items handed back by a stream that was shut down meanwhile
    /// (replaced by `update_stream`, or deleted) are routed again, for up to a second.
    async fn append_groups(&self, mut groups: Vec<Group>, answers: &mut [Option<Answer>]) {
        for _ in 0..ROUTE_ATTEMPTS {
            let mut again = Vec::new();
            for (stream, idx, items) in groups.drain(..) {
                match stream.append(items).await {
                    Ok(done) => {
                        for (i, answer) in idx.into_iter().zip(done) {
                            answers[i] = Some(answer);
                        }
                    }
                    Err(items) => again.extend(idx.into_iter().zip(items)),
                }
            }
            if again.is_empty() || self.check_open().is_err() {
                return;
            }
            tokio::time::sleep(REROUTE_PAUSE).await;
            for (i, item) in again {
                match self.route(&item.subject) {
                    Some(stream) => add_to_group(&mut groups, stream, i, item),
                    None => answers[i] = Some(Ok(not_stored())),
                }
            }
        }
    }

    /// The stream capturing `subject`, if any (streams never overlap).
    pub(super) fn route(&self, subject: &str) -> Option<Arc<Stream>> {
        self.streams
            .read()
            .values()
            .find(|s| s.captures(subject))
            .cloned()
    }

    /// Reads the envelopes of a batch of handouts (taking those the fetch filter already read
    /// from `read`); a message dropped by limits meanwhile is done. Each envelope's `attempt`
    /// is its delivery count (1 on the first delivery, 2 on the first redelivery...).
    pub(super) fn read_handouts(
        &self,
        s: &Stream,
        c: &Consumer,
        handouts: Vec<Handout>,
        mut read: HashMap<u64, Envelope>,
    ) -> Result<Vec<Delivered>, BusError> {
        let mut out = Vec::with_capacity(handouts.len());
        for h in handouts {
            let mut envelope = match read.remove(&h.seq) {
                Some(envelope) => envelope,
                None => match s.log.read(h.seq).map_err(|source| s.log_error(source))? {
                    Some(rec) => decode_envelope(&s.name, h.seq, &rec.payload)?,
                    None => {
                        let done = c.core.lock().forget(h.seq, self.now_ns());
                        s.settle_done(&done.done);
                        continue;
                    }
                },
            };
            envelope.attempt = h.delivery_count;
            out.push(Delivered {
                stream: s.name.clone(),
                consumer: c.name.clone(),
                seq: h.seq,
                delivery_count: h.delivery_count,
                envelope,
            });
        }
        Ok(out)
    }

    /// Hands out up to `batch` messages `accept` accepts (all without a filter), waiting up to
    /// `expires` for the first. The filter reads and decodes each candidate envelope while the
    /// consumer's state is locked (the state machine asks it message by message, so a refused
    /// message is never counted); the envelopes it accepted are handed out without a second
    /// read, and a message it refused is not asked about again during this fetch. A fetch that
    /// refused something does not spin on it: it waits for a publish, an ack or the next poll
    /// like an empty fetch.
    pub(super) async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
        accept: Option<Accept>,
    ) -> Result<Vec<Delivered>, BusError> {
        let (s, c) = self.consumer(stream, consumer)?;
        if batch == 0 {
            return Ok(Vec::new());
        }
        let deadline = tokio::time::Instant::now() + expires;
        // What this fetch's filter refused: asked once per message per fetch, however often the
        // fetch looks again while it waits (a refusal metric counts fetches, not polls).
        let mut refused = HashSet::new();
        loop {
            let notified = s.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = self.now_ns();
            let mut read = HashMap::new();
            let out = match &accept {
                None => c.core.lock().next_batch(batch, now),
                Some(accept) => {
                    let mut check = |meta: &Arc<Meta>| {
                        !refused.contains(&meta.seq)
                            && (filter(&s, accept, meta, &mut read) || {
                                refused.insert(meta.seq);
                                false
                            })
                    };
                    c.core.lock().next_batch_filtered(batch, now, &mut check)
                }
            };
            if !out.handouts.is_empty() || !out.done.is_empty() || !out.dead.is_empty() {
                c.touch();
            }
            s.settle_done(&out.done);
            self.dead_letter(&s, &c, out.dead).await;
            let delivered = self.read_handouts(&s, &c, out.handouts, read)?;
            let t = tokio::time::Instant::now();
            if !delivered.is_empty() || t >= deadline {
                return Ok(delivered);
            }
            self.check_open()?;
            // A due redelivery this fetch refused is no reason to look again at once.
            let wake = c.core.lock().next_wakeup_ns();
            let wake = wake.filter(|w| out.refused == 0 || *w > now);
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
    pub(super) fn settle_call(
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

    pub(super) async fn term(
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
}

/// Asks a fetch filter about one candidate, reading its envelope; an accepted envelope is kept
/// in `read` for the handout. A message that is gone or unreadable is accepted: the handout
/// then forgets it or reports the read error, as an unfiltered fetch does.
fn filter(
    s: &Stream,
    accept: &Accept,
    meta: &Arc<Meta>,
    read: &mut HashMap<u64, Envelope>,
) -> bool {
    let envelope = match s.log.read(meta.seq) {
        Ok(Some(rec)) => match decode_envelope(&s.name, meta.seq, &rec.payload) {
            Ok(envelope) => envelope,
            Err(_) => return true,
        },
        Ok(None) | Err(_) => return true,
    };
    let accepted = accept(&envelope);
    if accepted {
        read.insert(meta.seq, envelope);
    }
    accepted
}

/// One answer to a publish.
type Answer = Result<PublishAck, BusError>;

/// A stream's share of a batch: the stream, the batch positions, the encoded items.
type Group = (Arc<Stream>, Vec<usize>, Vec<Item>);

/// Attempts to route a publish whose stream was shut down under it, `REROUTE_PAUSE` apart.
const ROUTE_ATTEMPTS: usize = 100;
const REROUTE_PAUSE: Duration = Duration::from_millis(10);

fn add_to_group(groups: &mut Vec<Group>, stream: Arc<Stream>, i: usize, item: Item) {
    match groups.iter_mut().find(|(s, _, _)| Arc::ptr_eq(s, &stream)) {
        Some((_, idx, items)) => {
            idx.push(i);
            items.push(item);
        }
        None => groups.push((stream, vec![i], vec![item])),
    }
}

/// The answer to a publish no stream captures.
fn not_stored() -> PublishAck {
    PublishAck {
        stream: None,
        seq: None,
        duplicate: false,
    }
}
