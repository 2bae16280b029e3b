//! The delivery state machine of one consumer, free of I/O so every rule is unit-tested with
//! plain numbers for time: which message goes next (priority lanes with weighted turns, per-key
//! order, `not_before`, TTL), what awaits an ack, when it is redelivered (ack_wait, backoff,
//! nak delay), when it is dead-lettered (`max_deliver`, `term`), and the ack floor.
//!
//! Every admitted message is *outstanding* until it is done (acked, dead-lettered or expired);
//! the ack floor is one below the lowest outstanding sequence, so a filter or out-of-order acks
//! never leave holes below it. Done sequences above the floor are kept in `acked` so a restart
//! can skip them; that, the pending deliveries and the counters are the persisted state
//! ([`Persisted`]). Everything else is rebuilt from the stream on open.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::SubjectPattern;
use ace_envelope::api::system::DeadLetterReason;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::record::Meta;
use crate::bus::{AckPolicy, Backoff, ConsumerConfig, ConsumerCounters, Ordering};

/// Lane turns: P0 8, P1 4, P2 2, P3 1 in every 15, interleaved so no lane waits long.
const TURNS: [usize; 15] = [0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0];

/// The key every message shares under `ordering: strict`.
const STRICT_KEY: &str = "";

/// A delivery awaiting its ack.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub(crate) meta: Arc<Meta>,
    /// Deliveries so far (1 after the first).
    pub(crate) deliveries: u32,
    /// Unix nanos at which it is redelivered unless acked.
    pub(crate) due_ns: u64,
    /// The last reason it came back (nak, ack timeout).
    pub(crate) reason: Option<String>,
}

/// One message handed out by [`ConsumerCore::next_batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Handout {
    pub(crate) seq: u64,
    pub(crate) delivery_count: u32,
}

/// A message that must move to the dead-letter subject.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetter {
    pub(crate) seq: u64,
    pub(crate) deliveries: u32,
    /// `max_deliver` or `term` (the dead-letter contract's `reason`).
    pub(crate) reason: DeadLetterReason,
    /// The consumer's own reason (`term`) or the last redelivery cause (`max_deliver`).
    pub(crate) detail: String,
    pending: Pending,
}

/// What a call changed beyond the consumer: sequences now done (for workqueue/interest
/// retention) and dead letters to publish.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) handouts: Vec<Handout>,
    pub(crate) done: Vec<u64>,
    pub(crate) dead: Vec<DeadLetter>,
    /// Ready messages the fetcher's filter refused (left as they were).
    pub(crate) refused: usize,
}

/// Most refusals one `next_batch_filtered` call collects before it gives up: a member that may
/// receive little of a large backlog costs a bounded scan per fetch, not the whole backlog
/// (it may then miss an acceptable message deeper in the backlog until the refused ones move).
pub(crate) const MAX_REFUSED_PER_FETCH: usize = 1024;

/// Why an ack-like call was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotPending;

/// The persisted part of a consumer's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Persisted {
    pub(crate) ack_floor: u64,
    pub(crate) acked: Vec<u64>,
    pub(crate) pending: Vec<PersistedPending>,
    pub(crate) counters: ConsumerCounters,
}

/// A pending delivery as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct PersistedPending {
    pub(crate) seq: u64,
    pub(crate) deliveries: u32,
    pub(crate) due_ns: u64,
    pub(crate) reason: Option<String>,
}

#[derive(Debug, Default)]
struct KeyQueue {
    active: u64,
    waiting: BTreeMap<u64, Arc<Meta>>,
}

/// The live state of one consumer.
#[derive(Debug)]
pub(crate) struct ConsumerCore {
    config: ConsumerConfig,
    filter: Option<SubjectPattern>,
    /// Highest stream sequence looked at (admitted or filtered out).
    seen: u64,
    outstanding: BTreeSet<u64>,
    acked: BTreeSet<u64>,
    pending: BTreeMap<u64, Pending>,
    lanes: [BTreeMap<u64, Arc<Meta>>; 4],
    delayed: BTreeMap<(u64, u64), Arc<Meta>>,
    keys: HashMap<Arc<str>, KeyQueue>,
    /// Pending entries restored from disk, claimed as the rebuild scan meets their sequence.
    restoring: HashMap<u64, PersistedPending>,
    turn: usize,
    counters: ConsumerCounters,
}

impl ConsumerCore {
    /// A consumer that has looked at nothing below `start_seq`.
    pub(crate) fn new(
        config: ConsumerConfig,
        filter: Option<SubjectPattern>,
        start_seq: u64,
    ) -> Self {
        let floor = start_seq.saturating_sub(1);
        ConsumerCore {
            config,
            filter,
            seen: floor,
            outstanding: BTreeSet::new(),
            acked: BTreeSet::new(),
            pending: BTreeMap::new(),
            lanes: Default::default(),
            delayed: BTreeMap::new(),
            keys: HashMap::new(),
            restoring: HashMap::new(),
            turn: 0,
            counters: ConsumerCounters::default(),
        }
    }

    /// A consumer resumed from its persisted state; feed it the stream from `ack_floor + 1` with
    /// [`ConsumerCore::offer`].
    pub(crate) fn restore(
        config: ConsumerConfig,
        filter: Option<SubjectPattern>,
        p: Persisted,
    ) -> Self {
        let mut core = ConsumerCore::new(config, filter, p.ack_floor + 1);
        core.acked = p.acked.into_iter().collect();
        core.restoring = p.pending.into_iter().map(|e| (e.seq, e)).collect();
        core.counters = p.counters;
        core
    }

    /// The config it runs with.
    pub(crate) fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// True when the filter lets `subject` through.
    pub(crate) fn wants(&self, subject: &str) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches(subject))
    }

    /// Offers a stored message (in sequence order); returns true when it became outstanding.
    pub(crate) fn offer(&mut self, subject: &str, meta: &Arc<Meta>, now_ns: u64) -> bool {
        if meta.seq <= self.seen {
            return false;
        }
        self.seen = meta.seq;
        if !self.wants(subject) || self.acked.contains(&meta.seq) {
            return false;
        }
        self.outstanding.insert(meta.seq);
        if let Some(p) = self.restoring.remove(&meta.seq) {
            self.claim_key(meta);
            let pending = Pending {
                meta: meta.clone(),
                deliveries: p.deliveries,
                due_ns: p.due_ns,
                reason: p.reason,
            };
            self.pending.insert(meta.seq, pending);
            return true;
        }
        if self.claim_key(meta) {
            self.schedule(meta.clone(), now_ns);
        }
        true
    }

    /// Marks everything up to `seq` as looked at (an empty stream tail, or a new consumer).
    pub(crate) fn skip_to(&mut self, seq: u64) {
        self.seen = self.seen.max(seq);
        self.restoring.clear();
    }

    /// The ordering key of a message under this consumer's ordering, if any.
    fn order_key(&self, meta: &Meta) -> Option<Arc<str>> {
        match self.config.ordering {
            Ordering::None => None,
            Ordering::PerKey => meta.key.clone(),
            Ordering::Strict => Some(Arc::from(STRICT_KEY)),
        }
    }

    /// Makes `meta` the active message of its key, or queues it behind the active one; true when
    /// it may be scheduled now.
    fn claim_key(&mut self, meta: &Arc<Meta>) -> bool {
        let Some(key) = self.order_key(meta) else {
            return true;
        };
        match self.keys.get_mut(&key) {
            Some(q) => {
                q.waiting.insert(meta.seq, meta.clone());
                false
            }
            None => {
                let q = KeyQueue {
                    active: meta.seq,
                    waiting: BTreeMap::new(),
                };
                self.keys.insert(key, q);
                true
            }
        }
    }

    fn schedule(&mut self, meta: Arc<Meta>, now_ns: u64) {
        if meta.not_before_ns > now_ns {
            self.delayed.insert((meta.not_before_ns, meta.seq), meta);
        } else {
            let lane = self.lane_of(&meta);
            self.lanes[lane].insert(meta.seq, meta);
        }
    }

    fn lane_of(&self, meta: &Meta) -> usize {
        let lanes_on = self.config.priority_lanes && self.config.ordering != Ordering::Strict;
        if lanes_on {
            usize::from(meta.priority.min(3))
        } else {
            0
        }
    }

    /// Up to `batch` deliveries at `now_ns`: due redeliveries first, then new messages by lane.
    /// Also moves expired messages to done and over-delivered ones to the dead-letter list.
    pub(crate) fn next_batch(&mut self, batch: usize, now_ns: u64) -> Outcome {
        self.next_batch_filtered(batch, now_ns, &mut |_| true)
    }

    /// `next_batch` for a fetcher whose filter is `accept`: a message it refuses is left exactly
    /// as it was — a due redelivery stays due with its delivery count, a new message goes back
    /// to its lane and stays the active message of its ordering key — so the next fetcher that
    /// accepts it gets it, in order, and a refusal never moves it toward `max_deliver`. At most
    /// [`MAX_REFUSED_PER_FETCH`] refusals are collected per call.
    pub(crate) fn next_batch_filtered(
        &mut self,
        batch: usize,
        now_ns: u64,
        accept: &mut dyn FnMut(&Arc<Meta>) -> bool,
    ) -> Outcome {
        let mut out = Outcome::default();
        self.sweep_pending(now_ns, &mut out);
        self.release_delayed(now_ns);
        self.redeliver(batch, now_ns, accept, &mut out);
        let mut refused = Vec::new();
        while out.handouts.len() < batch
            && self.pending.len() < self.config.max_ack_pending
            && out.refused < MAX_REFUSED_PER_FETCH
        {
            let Some(meta) = self.pop_lane() else { break };
            if meta.is_expired(now_ns) {
                self.counters.expired += 1;
                self.finish(meta.seq, Some(&meta), now_ns, &mut out);
                continue;
            }
            if !accept(&meta) {
                out.refused += 1;
                refused.push(meta);
                continue;
            }
            self.counters.delivered += 1;
            out.handouts.push(Handout {
                seq: meta.seq,
                delivery_count: 1,
            });
            if self.config.ack == AckPolicy::None {
                self.finish(meta.seq, Some(&meta), now_ns, &mut out);
            } else {
                let due_ns = now_ns.saturating_add(nanos(self.wait_after(1)));
                let p = Pending {
                    meta,
                    deliveries: 1,
                    due_ns,
                    reason: None,
                };
                self.pending.insert(p.meta.seq, p);
            }
        }
        for meta in refused {
            let lane = self.lane_of(&meta);
            self.lanes[lane].insert(meta.seq, meta);
        }
        out
    }

    /// Expires and dead-letters due pending entries.
    fn sweep_pending(&mut self, now_ns: u64, out: &mut Outcome) {
        let due: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.due_ns <= now_ns)
            .map(|(s, _)| *s)
            .collect();
        for seq in due {
            let Some(p) = self.pending.get(&seq) else {
                continue;
            };
            if p.meta.is_expired(now_ns) {
                let meta = p.meta.clone();
                self.pending.remove(&seq);
                self.counters.expired += 1;
                self.finish(seq, Some(&meta), now_ns, out);
            } else if self
                .config
                .max_deliver
                .is_some_and(|max| p.deliveries >= max)
            {
                let Some(p) = self.pending.remove(&seq) else {
                    continue;
                };
                let last = p
                    .reason
                    .clone()
                    .unwrap_or_else(|| "ack_wait expired".to_owned());
                let detail = format!("max_deliver {} reached; last: {last}", p.deliveries);
                out.dead.push(DeadLetter {
                    seq,
                    deliveries: p.deliveries,
                    reason: DeadLetterReason::MaxDeliver,
                    detail,
                    pending: p,
                });
            }
        }
    }

    fn release_delayed(&mut self, now_ns: u64) {
        while let Some(entry) = self.delayed.first_entry() {
            if entry.key().0 > now_ns {
                break;
            }
            let meta = entry.remove();
            let lane = self.lane_of(&meta);
            self.lanes[lane].insert(meta.seq, meta);
        }
    }

    fn redeliver(
        &mut self,
        batch: usize,
        now_ns: u64,
        accept: &mut dyn FnMut(&Arc<Meta>) -> bool,
        out: &mut Outcome,
    ) {
        for (seq, p) in &mut self.pending {
            if out.handouts.len() >= batch || out.refused >= MAX_REFUSED_PER_FETCH {
                break;
            }
            if p.due_ns > now_ns {
                continue;
            }
            if !accept(&p.meta) {
                out.refused += 1;
                continue;
            }
            p.deliveries += 1;
            p.due_ns = now_ns.saturating_add(nanos(wait_after(&self.config, p.deliveries)));
            self.counters.redelivered += 1;
            out.handouts.push(Handout {
                seq: *seq,
                delivery_count: p.deliveries,
            });
        }
    }

    fn pop_lane(&mut self) -> Option<Arc<Meta>> {
        for i in 0..TURNS.len() {
            let lane = TURNS[(self.turn + i) % TURNS.len()];
            if let Some((_, meta)) = self.lanes[lane].pop_first() {
                self.turn = (self.turn + i + 1) % TURNS.len();
                return Some(meta);
            }
        }
        None
    }

    /// How long delivery number `n` waits for its ack.
    fn wait_after(&self, n: u32) -> Duration {
        wait_after(&self.config, n)
    }

    /// Acknowledges a pending delivery.
    pub(crate) fn ack(&mut self, seq: u64, now_ns: u64) -> Result<Outcome, NotPending> {
        let p = self.pending.remove(&seq).ok_or(NotPending)?;
        self.counters.acked += 1;
        let mut out = Outcome::default();
        self.finish(seq, Some(&p.meta), now_ns, &mut out);
        Ok(out)
    }

    /// Schedules a redelivery after `delay` (or the backoff, or at once).
    pub(crate) fn nak(
        &mut self,
        seq: u64,
        delay: Option<Duration>,
        now_ns: u64,
    ) -> Result<(), NotPending> {
        let backoff = !matches!(self.config.backoff, Backoff::None);
        let p = self.pending.get_mut(&seq).ok_or(NotPending)?;
        let delay = match delay {
            Some(d) => d,
            None if backoff => wait_after(&self.config, p.deliveries),
            None => Duration::ZERO,
        };
        p.due_ns = now_ns.saturating_add(nanos(delay));
        p.reason = Some("nak".to_owned());
        self.counters.naked += 1;
        Ok(())
    }

    /// Gives up on a pending delivery: it must move to the dead-letter subject.
    pub(crate) fn term(&mut self, seq: u64, reason: &str) -> Result<DeadLetter, NotPending> {
        let p = self.pending.remove(&seq).ok_or(NotPending)?;
        self.counters.termed += 1;
        Ok(DeadLetter {
            seq,
            deliveries: p.deliveries,
            reason: DeadLetterReason::Term,
            detail: reason.to_owned(),
            pending: p,
        })
    }

    /// Restarts the ack timer of a pending delivery.
    pub(crate) fn in_progress(&mut self, seq: u64, now_ns: u64) -> Result<(), NotPending> {
        let wait = {
            let p = self.pending.get(&seq).ok_or(NotPending)?;
            self.wait_after(p.deliveries)
        };
        if let Some(p) = self.pending.get_mut(&seq) {
            p.due_ns = now_ns.saturating_add(nanos(wait));
        }
        Ok(())
    }

    /// The dead letter was published: the message is done for this consumer.
    pub(crate) fn dead_lettered(&mut self, dead: &DeadLetter, now_ns: u64) -> Outcome {
        self.counters.dead_lettered += 1;
        let mut out = Outcome::default();
        self.finish(dead.seq, Some(&dead.pending.meta), now_ns, &mut out);
        out
    }

    /// The dead letter could not be published: keep the message pending and retry after
    /// `ack_wait`.
    pub(crate) fn dead_letter_failed(&mut self, dead: DeadLetter, now_ns: u64) {
        let mut p = dead.pending;
        p.due_ns = now_ns.saturating_add(nanos(self.config.ack_wait));
        self.pending.insert(dead.seq, p);
    }

    /// The message of a dead letter is no longer stored (limits dropped it meanwhile): there is
    /// nothing left to move, so it is done without a dead letter, as a fetch treats it.
    pub(crate) fn dead_letter_gone(&mut self, dead: &DeadLetter, now_ns: u64) -> Outcome {
        let mut out = Outcome::default();
        self.finish(dead.seq, Some(&dead.pending.meta), now_ns, &mut out);
        out
    }

    /// Marks `seq` done, moves the floor and releases the next message of its key.
    fn finish(&mut self, seq: u64, meta: Option<&Arc<Meta>>, now_ns: u64, out: &mut Outcome) {
        self.outstanding.remove(&seq);
        self.acked.insert(seq);
        let floor = self.ack_floor();
        self.acked = self.acked.split_off(&(floor + 1));
        out.done.push(seq);
        let Some(key) = meta.and_then(|m| self.order_key(m)) else {
            return;
        };
        let next = match self.keys.get_mut(&key) {
            Some(q) if q.active == seq => q.waiting.pop_first(),
            _ => return,
        };
        match next {
            Some((next_seq, next_meta)) => {
                if let Some(q) = self.keys.get_mut(&key) {
                    q.active = next_seq;
                }
                self.schedule(next_meta, now_ns);
            }
            None => {
                self.keys.remove(&key);
            }
        }
    }

    /// A handed-out message that no longer exists (dropped by limits): done, without counting.
    pub(crate) fn forget(&mut self, seq: u64, now_ns: u64) -> Outcome {
        let meta = self.pending.remove(&seq).map(|p| p.meta);
        let mut out = Outcome::default();
        self.finish(seq, meta.as_ref(), now_ns, &mut out);
        out
    }

    /// Every outstanding sequence (interest bookkeeping).
    pub(crate) fn outstanding(&self) -> Vec<u64> {
        self.outstanding.iter().copied().collect()
    }

    /// Every sequence at or below it is done.
    pub(crate) fn ack_floor(&self) -> u64 {
        self.outstanding
            .first()
            .map_or(self.seen, |first| first - 1)
    }

    /// Whether `seq` is still outstanding (interest retention rebuild).
    pub(crate) fn holds(&self, seq: u64) -> bool {
        self.outstanding.contains(&seq)
    }

    /// Deliveries awaiting an ack.
    pub(crate) fn ack_pending(&self) -> usize {
        self.pending.len()
    }

    /// Outstanding messages not yet delivered.
    pub(crate) fn waiting(&self) -> usize {
        self.outstanding.len() - self.pending.len()
    }

    /// The counters.
    pub(crate) fn counters(&self) -> ConsumerCounters {
        self.counters
    }

    /// The earliest time (unix nanos) something becomes deliverable without a new publish.
    pub(crate) fn next_wakeup_ns(&self) -> Option<u64> {
        let pending = self.pending.values().map(|p| p.due_ns).min();
        let delayed = self.delayed.keys().next().map(|(nb, _)| *nb);
        pending.into_iter().chain(delayed).min()
    }

    /// True when a fetch now could hand something out.
    pub(crate) fn has_ready(&self) -> bool {
        self.lanes.iter().any(|l| !l.is_empty()) && self.pending.len() < self.config.max_ack_pending
    }

    /// The state to persist.
    pub(crate) fn persisted(&self) -> Persisted {
        Persisted {
            ack_floor: self.ack_floor(),
            acked: self.acked.iter().copied().collect(),
            pending: self
                .pending
                .iter()
                .map(|(seq, p)| PersistedPending {
                    seq: *seq,
                    deliveries: p.deliveries,
                    due_ns: p.due_ns,
                    reason: p.reason.clone(),
                })
                .collect(),
            counters: self.counters,
        }
    }
}

/// How long delivery number `n` (1-based) waits for its ack under `config`.
fn wait_after(config: &ConsumerConfig, n: u32) -> Duration {
    match &config.backoff {
        Backoff::None => config.ack_wait,
        Backoff::List(list) => {
            let i = usize::try_from(n.saturating_sub(1)).unwrap_or(usize::MAX);
            list.get(i)
                .or(list.last())
                .copied()
                .unwrap_or(config.ack_wait)
        }
        Backoff::Exponential {
            initial,
            max,
            multiplier,
            jitter,
        } => {
            let exp = i32::try_from(n.saturating_sub(1)).unwrap_or(i32::MAX);
            let base = initial.as_secs_f64() * multiplier.max(1.0).powi(exp);
            let capped = base.min(max.as_secs_f64());
            let extra = capped * jitter.clamp(0.0, 1.0) * rand::rng().random::<f64>();
            Duration::try_from_secs_f64(capped + extra).unwrap_or(*max)
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn meta(seq: u64, priority: u8, key: Option<&str>) -> Arc<Meta> {
        Arc::new(Meta {
            seq,
            priority,
            expires_ns: 0,
            not_before_ns: 0,
            key: key.map(Arc::from),
        })
    }

    fn core(config: ConsumerConfig) -> ConsumerCore {
        ConsumerCore::new(config, None, 1)
    }

    fn seqs(out: &Outcome) -> Vec<u64> {
        out.handouts.iter().map(|h| h.seq).collect()
    }

    #[test]
    fn given_p3_backlog_when_a_p0_arrives_then_it_is_among_the_first_delivered() {
        let mut c = core(ConsumerConfig::new("c"));
        for seq in 1..=10_000 {
            c.offer("s", &meta(seq, 3, None), 0);
        }
        c.offer("s", &meta(10_001, 0, None), 0);
        let out = c.next_batch(3, 0);
        assert!(seqs(&out).contains(&10_001), "got {:?}", seqs(&out));
    }

    #[test]
    fn given_p0_and_p3_backlogs_when_draining_then_p3_gets_one_turn_in_nine() {
        let mut c = core(ConsumerConfig {
            max_ack_pending: 100_000,
            ..ConsumerConfig::new("c")
        });
        for seq in 1..=100 {
            c.offer("s", &meta(seq, 0, None), 0);
        }
        for seq in 101..=200 {
            c.offer("s", &meta(seq, 3, None), 0);
        }
        let out = c.next_batch(90, 0);
        let p3 = out.handouts.iter().filter(|h| h.seq > 100).count();
        assert_eq!(p3, 10, "8 P0 turns then 1 P3 turn when P1/P2 are empty");
    }

    #[test]
    fn given_per_key_ordering_when_the_first_is_naked_then_the_second_waits_for_it() {
        let mut c = core(ConsumerConfig {
            ordering: Ordering::PerKey,
            ..ConsumerConfig::new("c")
        });
        c.offer("s", &meta(1, 2, Some("a")), 0);
        c.offer("s", &meta(2, 2, Some("a")), 0);
        c.offer("s", &meta(3, 2, Some("b")), 0);
        assert_eq!(seqs(&c.next_batch(10, 0)), vec![1, 3]);
        c.nak(1, None, 0).expect("pending");
        assert_eq!(seqs(&c.next_batch(10, 0)), vec![1]);
        c.ack(1, 0).expect("pending");
        assert_eq!(seqs(&c.next_batch(10, 0)), vec![2]);
    }

    #[test]
    fn given_per_key_and_lanes_when_a_p0_follows_a_p3_of_its_key_then_key_order_wins() {
        let mut c = core(ConsumerConfig {
            ordering: Ordering::PerKey,
            ..ConsumerConfig::new("c")
        });
        c.offer("s", &meta(1, 3, Some("a")), 0);
        c.offer("s", &meta(2, 3, Some("b")), 0);
        c.offer("s", &meta(3, 0, Some("a")), 0);
        c.offer("s", &meta(4, 0, Some("c")), 0);
        assert_eq!(
            seqs(&c.next_batch(1, 0)),
            vec![4],
            "P0 of a free key goes first"
        );
        assert_eq!(
            seqs(&c.next_batch(10, 0)),
            vec![1, 2],
            "the P0 of key a waits for 1"
        );
        c.ack(1, 0).expect("pending");
        assert_eq!(seqs(&c.next_batch(10, 0)), vec![3]);
    }

    #[test]
    fn given_a_backoff_list_when_never_acked_then_redelivery_follows_it_then_dead_letters() {
        let mut c = core(ConsumerConfig {
            backoff: Backoff::List(vec![Duration::from_secs(1), Duration::from_secs(5)]),
            max_deliver: Some(3),
            ..ConsumerConfig::new("c")
        });
        c.offer("s", &meta(1, 2, None), 0);
        assert_eq!(c.next_batch(1, 0).handouts[0].delivery_count, 1);
        assert!(c.next_batch(1, SEC - 1).handouts.is_empty());
        assert_eq!(c.next_batch(1, SEC).handouts[0].delivery_count, 2);
        assert!(c.next_batch(1, 6 * SEC - 1).handouts.is_empty());
        assert_eq!(c.next_batch(1, 6 * SEC).handouts[0].delivery_count, 3);
        let out = c.next_batch(1, 11 * SEC);
        assert!(out.handouts.is_empty());
        assert_eq!(out.dead.len(), 1);
        assert_eq!(out.dead[0].reason, DeadLetterReason::MaxDeliver);
        assert_eq!(
            out.dead[0].detail,
            "max_deliver 3 reached; last: ack_wait expired"
        );
        let done = c.dead_lettered(&out.dead[0], 11 * SEC);
        assert_eq!(done.done, vec![1]);
        assert_eq!(c.ack_floor(), 1);
    }

    #[test]
    fn given_max_ack_pending_when_fetching_then_no_more_are_in_flight() {
        let mut c = core(ConsumerConfig {
            max_ack_pending: 2,
            ..ConsumerConfig::new("c")
        });
        for seq in 1..=5 {
            c.offer("s", &meta(seq, 2, None), 0);
        }
        assert_eq!(c.next_batch(10, 0).handouts.len(), 2);
        assert!(c.next_batch(10, 0).handouts.is_empty());
        c.ack(1, 0).expect("pending");
        assert_eq!(seqs(&c.next_batch(10, 0)), vec![3]);
    }

    #[test]
    fn given_out_of_order_acks_when_the_gap_closes_then_the_floor_moves_past_all() {
        let mut c = core(ConsumerConfig::new("c"));
        for seq in 1..=3 {
            c.offer("s", &meta(seq, 2, None), 0);
        }
        c.next_batch(3, 0);
        c.ack(3, 0).expect("pending");
        c.ack(2, 0).expect("pending");
        assert_eq!(c.ack_floor(), 0);
        assert_eq!(c.persisted().acked, vec![2, 3]);
        c.ack(1, 0).expect("pending");
        assert_eq!(c.ack_floor(), 3);
        assert!(c.persisted().acked.is_empty());
    }

    #[test]
    fn given_not_before_in_the_future_when_fetching_then_it_waits_until_then() {
        let mut c = core(ConsumerConfig::new("c"));
        let m = Arc::new(Meta {
            not_before_ns: 10 * SEC,
            ..(*meta(1, 2, None)).clone()
        });
        c.offer("s", &m, 0);
        assert!(c.next_batch(1, 10 * SEC - 1).handouts.is_empty());
        assert_eq!(c.next_wakeup_ns(), Some(10 * SEC));
        assert_eq!(seqs(&c.next_batch(1, 10 * SEC)), vec![1]);
    }

    #[test]
    fn given_an_expired_message_when_fetching_then_it_is_counted_not_delivered() {
        let mut c = core(ConsumerConfig::new("c"));
        let m = Arc::new(Meta {
            expires_ns: SEC,
            ..(*meta(1, 2, None)).clone()
        });
        c.offer("s", &m, 0);
        let out = c.next_batch(1, SEC);
        assert!(out.handouts.is_empty());
        assert_eq!(out.done, vec![1]);
        assert_eq!(c.counters().expired, 1);
    }

    #[test]
    fn given_persisted_state_when_restored_then_pending_and_acked_are_kept() {
        let mut c = core(ConsumerConfig::new("c"));
        for seq in 1..=4 {
            c.offer("s", &meta(seq, 2, None), 0);
        }
        c.next_batch(2, 0);
        c.ack(2, 0).expect("pending");
        let p = c.persisted();
        let mut r = ConsumerCore::restore(ConsumerConfig::new("c"), None, p);
        for seq in 1..=4 {
            r.offer("s", &meta(seq, 2, None), 0);
        }
        assert_eq!(r.ack_pending(), 1);
        assert_eq!(seqs(&r.next_batch(10, 0)), vec![3, 4]);
    }

    #[test]
    fn given_exponential_backoff_when_growing_then_it_is_capped_and_jittered_within_bounds() {
        let config = ConsumerConfig {
            backoff: Backoff::Exponential {
                initial: Duration::from_millis(100),
                max: Duration::from_secs(1),
                multiplier: 2.0,
                jitter: 0.5,
            },
            ..ConsumerConfig::new("c")
        };
        let third = wait_after(&config, 3);
        assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(600));
        let tenth = wait_after(&config, 10);
        assert!(tenth >= Duration::from_secs(1) && tenth <= Duration::from_millis(1500));
    }

    #[test]
    fn given_a_refusing_fetcher_when_it_fetches_then_the_message_stays_undelivered_for_the_next() {
        let mut c = core(ConsumerConfig {
            max_deliver: Some(2),
            ..ConsumerConfig::new("c")
        });
        c.offer("s", &meta(1, 2, None), 0);
        c.offer("s", &meta(2, 2, None), 0);
        let mut not_one = |m: &Arc<Meta>| m.seq != 1;
        for _ in 0..10 {
            let out = c.next_batch_filtered(10, 0, &mut not_one);
            assert!(out.dead.is_empty());
            assert!(out.handouts.iter().all(|h| h.seq == 2));
        }
        assert_eq!(c.counters().delivered, 1);
        let out = c.next_batch(10, 0);
        assert_eq!(
            out.handouts,
            vec![Handout {
                seq: 1,
                delivery_count: 1
            }]
        );
    }

    #[test]
    fn given_a_due_redelivery_when_a_fetcher_refuses_it_then_its_count_does_not_move() {
        let mut c = core(ConsumerConfig {
            ack_wait: Duration::from_secs(1),
            max_deliver: Some(2),
            ..ConsumerConfig::new("c")
        });
        c.offer("s", &meta(1, 2, None), 0);
        assert_eq!(seqs(&c.next_batch(1, 0)), vec![1]);
        for n in 1..=10 {
            let out = c.next_batch_filtered(1, n * SEC, &mut |_| false);
            assert!(out.handouts.is_empty() && out.dead.is_empty());
            assert_eq!(out.refused, 1);
        }
        let out = c.next_batch(1, 11 * SEC);
        assert_eq!(
            out.handouts,
            vec![Handout {
                seq: 1,
                delivery_count: 2
            }]
        );
        assert_eq!(c.counters().redelivered, 1);
    }

    #[test]
    fn given_per_key_ordering_when_the_head_is_refused_then_its_key_waits_and_others_flow() {
        let mut c = core(ConsumerConfig {
            ordering: Ordering::PerKey,
            ..ConsumerConfig::new("c")
        });
        c.offer("s", &meta(1, 2, Some("a")), 0);
        c.offer("s", &meta(2, 2, Some("a")), 0);
        c.offer("s", &meta(3, 2, Some("b")), 0);
        let mut not_one = |m: &Arc<Meta>| m.seq != 1;
        assert_eq!(seqs(&c.next_batch_filtered(10, 0, &mut not_one)), vec![3]);
        assert_eq!(seqs(&c.next_batch(10, 0)), vec![1]);
        c.ack(1, 0).expect("pending");
        assert_eq!(seqs(&c.next_batch_filtered(10, 0, &mut not_one)), vec![2]);
    }

    #[test]
    fn given_a_large_refused_backlog_when_fetching_then_the_scan_is_bounded() {
        let mut c = core(ConsumerConfig {
            max_ack_pending: 100_000,
            ..ConsumerConfig::new("c")
        });
        for seq in 1..=5_000 {
            c.offer("s", &meta(seq, 2, None), 0);
        }
        let mut asked = 0;
        let out = c.next_batch_filtered(10, 0, &mut |_| {
            asked += 1;
            false
        });
        assert_eq!(
            (out.refused, asked),
            (MAX_REFUSED_PER_FETCH, MAX_REFUSED_PER_FETCH)
        );
        assert_eq!(c.waiting(), 5_000, "every refused message is still there");
        assert_eq!(seqs(&c.next_batch(3, 0)), vec![1, 2, 3]);
    }
}
