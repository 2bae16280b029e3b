//! Consumers on JetStream: pulls (`$JS.API.CONSUMER.MSG.NEXT`), the checks kept on top of
//! JetStream (TTL, `not_before`, fetch filters), acknowledgements on the delivery's `$JS.ACK`
//! subject, and dead letters from `term` and from the advisories.
//!
//! A fetch first pulls without waiting (`no_wait`) for the whole batch; when that yields nothing
//! it pulls one message waiting up to the fetch's `expires`, then the rest without waiting, so
//! no pull is left open on the server when the fetch returns (a message it delivered then would
//! wait out its `ack_wait` unseen).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::Envelope;
use ace_envelope::api::system::DeadLetterReason;
use futures::StreamExt as _;
use serde_json::{Value, json};

use super::{Handed, Inner};
use crate::bus::{Accept, AckPolicy, Backoff, ConsumerConfig, Delivered};
use crate::dead_letter;
use crate::error::BusError;

/// How long past the refusing fetch's end a refused message is held back (its nak's delay is the
/// fetch's remaining wait plus this).
const REFUSAL_DELAY: Duration = Duration::from_millis(50);

/// The `expires` of a pull that does not wait. NATS 2.9 keeps a `no_wait` pull that found some
/// but not all of its batch open until it expires, and would hand it later messages (a
/// redelivery, a new publish) after the fetch returned; with this bound the pull ends with a
/// `408` the engine waits for, so nothing is delivered to a pull nobody reads.
const NO_WAIT_EXPIRES: Duration = Duration::from_millis(50);

/// How long past a pull's `expires` the engine waits for the server's closing status before it
/// stops listening (a server gone silent).
const NO_WAIT_GRACE: Duration = Duration::from_secs(2);

/// The delivery count and stream sequence of a `$JS.ACK` subject: `$JS.ACK.<stream>.
/// <consumer>.<count>.<sseq>.<dseq>.<ts>.<pending>` (9 tokens), or the 2.10+ form with domain
/// and account hash in front (12 tokens or more).
fn ack_info(reply: &str) -> Option<(u32, u64)> {
    let tokens: Vec<&str> = reply.split('.').collect();
    let (count, seq) = match tokens.len() {
        9 => (tokens[4], tokens[5]),
        n if n >= 11 => (tokens[6], tokens[7]),
        _ => return None,
    };
    Some((count.parse().ok()?, seq.parse().ok()?))
}

impl Inner {
    /// One pull request: up to `batch` messages, waiting up to `wait` (`None`: `no_wait`).
    async fn pull(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        wait: Option<Duration>,
    ) -> Result<Vec<async_nats::Message>, BusError> {
        let inbox = self.client.new_inbox();
        let engine = |e: String| BusError::Engine {
            op: format!("fetch from {stream}/{consumer}"),
            reason: e,
        };
        let mut sub = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| engine(e.to_string()))?;
        let request = match wait {
            Some(w) => json!({ "batch": batch, "expires": super::api::nanos(w) }),
            None => json!({
                "batch": batch,
                "no_wait": true,
                "expires": super::api::nanos(NO_WAIT_EXPIRES),
            }),
        };
        let subject = format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{consumer}",
            self.js_name(stream)
        );
        self.client
            .publish_with_reply(subject, inbox, request.to_string().into())
            .await
            .map_err(|e| engine(e.to_string()))?;
        let _ = self.client.flush().await;
        let deadline =
            tokio::time::Instant::now() + wait.unwrap_or(NO_WAIT_EXPIRES) + NO_WAIT_GRACE;
        let mut out = Vec::new();
        while out.len() < batch {
            let Ok(Some(msg)) = tokio::time::timeout_at(deadline, sub.next()).await else {
                break;
            };
            match msg.status {
                None => out.push(msg),
                Some(async_nats::StatusCode::IDLE_HEARTBEAT) => {}
                Some(async_nats::StatusCode::NO_RESPONDERS) => {
                    return Err(BusError::ConsumerNotFound {
                        stream: stream.to_owned(),
                        consumer: consumer.to_owned(),
                    });
                }
                // 404 no messages, 408 request expired, 409 (consumer deleted, too many
                // waiting pulls): this pull is over.
                Some(_) => break,
            }
        }
        Ok(out)
    }

    pub(super) async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
        accept: Option<Accept>,
    ) -> Result<Vec<Delivered>, BusError> {
        let batch = batch.max(1);
        let deadline = tokio::time::Instant::now() + expires;
        let config = self.consumer_config(stream, consumer).await?;
        let mut out = Vec::new();
        // What this fetch's `accept` refused: a message back within the same fetch (its nak's
        // delay and the pull's expiry are timers of the server) is not asked about again.
        let mut refused = HashSet::new();
        let msgs = self.pull(stream, consumer, batch, None).await?;
        self.take(
            stream,
            &config,
            msgs,
            deadline,
            &accept,
            &mut refused,
            &mut out,
        )
        .await;
        while out.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left < Duration::from_millis(10) {
                break;
            }
            let msgs = self.pull(stream, consumer, 1, Some(left)).await?;
            if msgs.is_empty() {
                break;
            }
            self.take(
                stream,
                &config,
                msgs,
                deadline,
                &accept,
                &mut refused,
                &mut out,
            )
            .await;
            if !out.is_empty() && out.len() < batch {
                let msgs = self.pull(stream, consumer, batch - out.len(), None).await?;
                self.take(
                    stream,
                    &config,
                    msgs,
                    deadline,
                    &accept,
                    &mut refused,
                    &mut out,
                )
                .await;
            }
        }
        Ok(out)
    }

    /// Turns pulled messages into deliveries: an expired one is acked and counted, one before
    /// its `not_before` nak'ed until then, one `accept` refuses nak'ed past this fetch.
    #[allow(clippy::too_many_arguments)]
    async fn take(
        &self,
        stream: &str,
        config: &ConsumerConfig,
        msgs: Vec<async_nats::Message>,
        deadline: tokio::time::Instant,
        accept: &Option<Accept>,
        refused: &mut HashSet<u64>,
        out: &mut Vec<Delivered>,
    ) {
        let consumer = config.name.as_str();
        let now = self.config.clock.now();
        let key = (stream.to_owned(), consumer.to_owned());
        for msg in msgs {
            let Some(reply) = msg.reply.as_ref().map(|r| r.to_string()) else {
                continue;
            };
            let Some((count, seq)) = ack_info(&reply) else {
                continue;
            };
            let mut envelope: Envelope = match serde_json::from_slice(&msg.payload) {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(stream, consumer, seq, error = %e,
                        "stored message is not an envelope; terminated");
                    self.send_ack(&reply, "+TERM").await.ok();
                    continue;
                }
            };
            if envelope.is_expired(now) {
                self.send_ack(&reply, "+ACK").await.ok();
                self.consumer_counters
                    .lock()
                    .entry(key.clone())
                    .or_default()
                    .expired += 1;
                continue;
            }
            if let Some(at) = envelope.not_before.filter(|at| *at > now) {
                let delay = (at - now).to_std().unwrap_or_default();
                self.send_nak(&reply, Some(delay)).await.ok();
                continue;
            }
            if refused.contains(&seq) || accept.as_ref().is_some_and(|a| !a(&envelope)) {
                refused.insert(seq);
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                self.send_nak(&reply, Some(left + REFUSAL_DELAY)).await.ok();
                continue;
            }
            {
                let mut counters = self.consumer_counters.lock();
                let c = counters.entry(key.clone()).or_default();
                if count <= 1 {
                    c.delivered += 1;
                } else {
                    c.redelivered += 1;
                }
            }
            if config.ack == AckPolicy::Explicit {
                let wait = match config.backoff {
                    Backoff::None => config.ack_wait,
                    ref backoff => backoff_delay(backoff, count),
                };
                self.handed.lock().insert(
                    (stream.to_owned(), consumer.to_owned(), seq),
                    Handed {
                        reply,
                        deliveries: count,
                        due: tokio::time::Instant::now() + wait,
                        last: config.max_deliver.is_some_and(|m| count >= m),
                    },
                );
            }
            envelope.attempt = count;
            out.push(Delivered {
                stream: stream.to_owned(),
                consumer: consumer.to_owned(),
                seq,
                delivery_count: count,
                envelope,
            });
        }
    }

    /// Sends an acknowledgement (`+ACK`, `+TERM`, `+WPI`) and waits for the server to confirm
    /// it, so a fetch right after it sees its effect.
    async fn send_ack(&self, reply: &str, what: &'static str) -> Result<(), BusError> {
        self.client
            .request(reply.to_owned(), what.into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::Engine {
                op: what.to_owned(),
                reason: e.to_string(),
            })
    }

    async fn send_nak(&self, reply: &str, delay: Option<Duration>) -> Result<(), BusError> {
        let body = match delay {
            Some(d) => format!("-NAK {}", json!({ "delay": super::api::nanos(d) })),
            None => "-NAK".to_owned(),
        };
        self.client
            .request(reply.to_owned(), body.into())
            .await
            .map(|_| ())
            .map_err(|e| BusError::Engine {
                op: "nak".to_owned(),
                reason: e.to_string(),
            })
    }

    /// The delivery this process handed out, or why there is none.
    async fn handed(&self, stream: &str, consumer: &str, seq: u64) -> Result<Handed, BusError> {
        let found = self
            .handed
            .lock()
            .get(&(stream.to_owned(), consumer.to_owned(), seq))
            .cloned();
        match found {
            Some(h) => Ok(h),
            None => {
                // Name a missing consumer as such; otherwise it is not pending here.
                self.consumer_info(stream, consumer).await?;
                Err(BusError::NotPending {
                    stream: stream.to_owned(),
                    consumer: consumer.to_owned(),
                    seq,
                })
            }
        }
    }

    fn forget(&self, stream: &str, consumer: &str, seq: u64) {
        self.handed
            .lock()
            .remove(&(stream.to_owned(), consumer.to_owned(), seq));
    }

    fn count(&self, stream: &str, consumer: &str, f: impl FnOnce(&mut crate::ConsumerCounters)) {
        let mut counters = self.consumer_counters.lock();
        f(counters
            .entry((stream.to_owned(), consumer.to_owned()))
            .or_default());
    }

    pub(super) async fn ack(&self, stream: &str, consumer: &str, seq: u64) -> Result<(), BusError> {
        let h = self.handed(stream, consumer, seq).await?;
        self.send_ack(&h.reply, "+ACK").await?;
        self.forget(stream, consumer, seq);
        self.count(stream, consumer, |c| c.acked += 1);
        Ok(())
    }

    pub(super) async fn nak(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        delay: Option<Duration>,
    ) -> Result<(), BusError> {
        let h = self.handed(stream, consumer, seq).await?;
        if h.last {
            // No delivery is left: the nak ends it, as a dead letter now.
            self.count(stream, consumer, |c| c.naked += 1);
            return self.give_up(stream, consumer, seq, &h, "nak").await;
        }
        let delay = match delay {
            Some(d) => Some(d),
            None => match self.consumer_config(stream, consumer).await?.backoff {
                Backoff::None => None,
                backoff => Some(backoff_delay(&backoff, h.deliveries)),
            },
        };
        self.send_nak(&h.reply, delay).await?;
        self.count(stream, consumer, |c| c.naked += 1);
        // A nak'ed delivery is no longer pending here: the next delivery has its own subject.
        self.forget(stream, consumer, seq);
        Ok(())
    }

    pub(super) async fn in_progress(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
    ) -> Result<(), BusError> {
        let h = self.handed(stream, consumer, seq).await?;
        let ack_wait = self.consumer_config(stream, consumer).await?.ack_wait;
        if let Some(entry) =
            self.handed
                .lock()
                .get_mut(&(stream.to_owned(), consumer.to_owned(), seq))
        {
            entry.due = tokio::time::Instant::now() + ack_wait;
        }
        self.send_ack(&h.reply, "+WPI").await
    }

    /// `term`: the dead letter is published first (with the caller's reason), then `+TERM`; if
    /// the dead letter cannot be published the delivery stays pending and is redelivered.
    pub(super) async fn term(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        reason: &str,
    ) -> Result<(), BusError> {
        let h = self.handed(stream, consumer, seq).await?;
        let stored = self
            .dead_letter(
                stream,
                consumer,
                seq,
                h.deliveries,
                DeadLetterReason::Term,
                reason,
            )
            .await?;
        self.send_ack(&h.reply, "+TERM").await?;
        self.forget(stream, consumer, seq);
        self.count(stream, consumer, |c| {
            c.termed += 1;
            c.dead_lettered += u64::from(stored);
        });
        Ok(())
    }

    /// Publishes the dead letter of `seq`; `true` when this call stored it (not a duplicate of
    /// another server's), `false` also when the original is no longer stored.
    async fn dead_letter(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        deliveries: u32,
        reason: DeadLetterReason,
        detail: &str,
    ) -> Result<bool, BusError> {
        let Some(original) = self.get_message(stream, seq).await? else {
            return Ok(false);
        };
        let config = self.stream_info(stream).await?.config;
        let origin = dead_letter::Origin {
            stream,
            subject: config.dead_letter_subject(),
            consumer,
            seq,
            deliveries,
            reason,
            detail,
        };
        let envelope = dead_letter::envelope(original.envelope, &origin, &*self.config.clock)?;
        let ack = self.publish(envelope).await?;
        Ok(!ack.duplicate)
    }

    /// Handles one `MAX_DELIVERIES` or `MSG_TERMINATED` advisory of a stream of this engine.
    async fn on_advisory(&self, advisory: &Value, reason: DeadLetterReason) {
        let field = |k: &str| advisory.get(k).and_then(Value::as_str).unwrap_or("");
        let Some(stream) = self.ace_name(field("stream")).map(str::to_owned) else {
            return;
        };
        let consumer = field("consumer").to_owned();
        let Some(seq) = advisory.get("stream_seq").and_then(Value::as_u64) else {
            return;
        };
        let deliveries = advisory
            .get("deliveries")
            .and_then(Value::as_u64)
            .map_or(0, |d| u32::try_from(d).unwrap_or(u32::MAX));
        let detail = match reason {
            DeadLetterReason::MaxDeliver => {
                format!("max_deliver {deliveries} reached; last: ack_wait expired")
            }
            _ => "terminated by a client of the NATS server".to_owned(),
        };
        match self
            .dead_letter(&stream, &consumer, seq, deliveries, reason, &detail)
            .await
        {
            Ok(stored) => {
                let key = (stream.clone(), consumer.clone(), seq);
                let handed = self.handed.lock().remove(&key);
                if let Some(h) = handed {
                    // Still pending on the delivery this process handed out: done.
                    self.send_ack(&h.reply, "+ACK").await.ok();
                }
                self.count(&stream, &consumer, |c| c.dead_lettered += u64::from(stored));
            }
            Err(e) => tracing::warn!(stream, consumer, seq, error = %e,
                "dead letter from a JetStream advisory not published"),
        }
    }
}

impl Inner {
    /// Ends the last delivery `max_deliver` allowed of `seq`: its dead letter (reason
    /// `max_deliver`, `last` the cause), then an ack so the consumer moves past it. If the dead
    /// letter cannot be published the delivery stays, and JetStream's advisory retries.
    async fn give_up(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        h: &Handed,
        last: &str,
    ) -> Result<(), BusError> {
        let detail = format!("max_deliver {} reached; last: {last}", h.deliveries);
        let stored = self
            .dead_letter(
                stream,
                consumer,
                seq,
                h.deliveries,
                DeadLetterReason::MaxDeliver,
                &detail,
            )
            .await?;
        self.send_ack(&h.reply, "+ACK").await?;
        self.forget(stream, consumer, seq);
        self.count(stream, consumer, |c| c.dead_lettered += u64::from(stored));
        Ok(())
    }
}

/// How long past its ack deadline a delivery's entry is kept for a late ack.
const FORGET_AFTER: Duration = Duration::from_secs(60);

/// How often the engine looks for last deliveries past their ack deadline.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// Starts the task that dead-letters the last deliveries this process handed out once their
/// ack deadline passed (the embedded engine does it in the background; NATS 2.9 only when the
/// consumer is pulled again).
pub(super) fn sweep_last_deliveries(inner: &Arc<Inner>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(inner);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let Some(inner) = weak.upgrade() else { break };
            let now = tokio::time::Instant::now();
            // A delivery left unacknowledged past its deadline is JetStream's to redeliver (to
            // any server); its entry is kept a while for a late ack, then forgotten, so the
            // table stays bounded by what is in flight.
            inner
                .handed
                .lock()
                .retain(|_, h| h.last || h.due + FORGET_AFTER > now);
            let due: Vec<((String, String, u64), Handed)> = inner
                .handed
                .lock()
                .iter()
                .filter(|(_, h)| h.last && h.due <= now)
                .map(|(k, h)| (k.clone(), h.clone()))
                .collect();
            for ((stream, consumer, seq), h) in due {
                // Taken out first, so a concurrent ack of it answers NotPending.
                if inner
                    .handed
                    .lock()
                    .remove(&(stream.clone(), consumer.clone(), seq))
                    .is_none()
                {
                    continue;
                }
                if let Err(e) = inner
                    .give_up(&stream, &consumer, seq, &h, "ack_wait expired")
                    .await
                {
                    tracing::warn!(stream, consumer, seq, error = %e,
                        "dead letter of a last delivery not published; JetStream's advisory retries");
                }
            }
        }
    })
}

/// The delay the backoff schedule gives the `deliveries`-th delivery.
fn backoff_delay(backoff: &Backoff, deliveries: u32) -> Duration {
    let n = deliveries.max(1) as usize;
    match backoff {
        Backoff::None => Duration::ZERO,
        Backoff::List(list) => list.get(n - 1).or(list.last()).copied().unwrap_or_default(),
        Backoff::Exponential {
            initial,
            max,
            multiplier,
            ..
        } => {
            let d = initial.as_secs_f64() * multiplier.powi(i32::try_from(n - 1).unwrap_or(30));
            Duration::from_secs_f64(d.min(max.as_secs_f64()))
        }
    }
}

/// Starts the tasks that turn JetStream advisories into dead letters, and stream changes (by any
/// server) into a cleared route cache.
pub(super) async fn watch_advisories(
    inner: &Arc<Inner>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BusError> {
    let subscribe = |subject: &'static str| {
        let client = inner.client.clone();
        async move {
            client
                .subscribe(subject)
                .await
                .map_err(|e| BusError::Engine {
                    op: format!("subscribe to {subject}"),
                    reason: e.to_string(),
                })
        }
    };
    let mut tasks = Vec::new();
    for (subject, reason) in [
        (
            "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
            DeadLetterReason::MaxDeliver,
        ),
        (
            "$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.>",
            DeadLetterReason::Term,
        ),
    ] {
        let mut sub = subscribe(subject).await?;
        let weak = Arc::downgrade(inner);
        tasks.push(tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let Some(inner) = weak.upgrade() else { break };
                let Ok(advisory) = serde_json::from_slice::<Value>(&msg.payload) else {
                    continue;
                };
                // Each in its own task: building a dead letter takes round trips.
                tokio::spawn(async move { inner.on_advisory(&advisory, reason).await });
            }
        }));
    }
    let mut streams = subscribe("$JS.EVENT.ADVISORY.STREAM.>").await?;
    let weak = Arc::downgrade(inner);
    tasks.push(tokio::spawn(async move {
        while streams.next().await.is_some() {
            let Some(inner) = weak.upgrade() else { break };
            inner.invalidate_routes();
        }
    }));
    let _ = inner.client.flush().await;
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_ack_subjects_of_both_forms_when_parsed_then_count_and_seq_are_read() {
        assert_eq!(
            ack_info("$JS.ACK.orders.c.3.17.20.1700000000000000000.5"),
            Some((3, 17))
        );
        assert_eq!(
            ack_info("$JS.ACK.hub.ACCHASH.orders.c.2.9.11.1700000000000000000.0.rand"),
            Some((2, 9))
        );
        assert_eq!(ack_info("$JS.ACK.orders"), None);
    }

    #[test]
    fn given_a_backoff_list_when_asked_past_its_end_then_the_last_delay_repeats() {
        let b = Backoff::List(vec![Duration::from_secs(1), Duration::from_secs(5)]);
        assert_eq!(backoff_delay(&b, 1), Duration::from_secs(1));
        assert_eq!(backoff_delay(&b, 9), Duration::from_secs(5));
    }
}
