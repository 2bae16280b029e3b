//! kill -9 of the whole server: `ace-comms serve` (development mode) on one data directory is
//! started, loaded and SIGKILLed `ACE_KILL_CYCLES` times (50 by default), so recovery of the
//! streams, the consumer state and the ledger also runs over its own earlier recoveries.
//!
//! Each cycle, four publishers `POST /api/v1/messages` one at a time on a subject of
//! `ACE_EVENTS`, every message carrying its publisher id and that publisher's counter in its
//! payload and `kill-<publisher>-<counter>` as its idempotency key, while a durable consumer
//! fetches and acks over HTTP; after a random 50–500 ms the server gets SIGKILL mid-load. After
//! every restart, before new load:
//! - every publish answered 202 is read back at its sequence with its exact payload (lost);
//! - no sequence was ever answered to two different messages (reused), and each publisher's
//!   sequences grow with its counter (order);
//! - the last acknowledged publish of each publisher, sent again with its key, answers
//!   `duplicate` at its original sequence; the publish a kill left unanswered is sent again
//!   with its key and answers either `duplicate` at the sequence its first attempt got (the
//!   record was written before the kill) or a new sequence (it was not) — never both, which the
//!   final scan of the stream checks by counting every (publisher, counter) once;
//! - the consumer's ack floor never goes back; a message whose ack was answered is delivered
//!   again only after a kill that came within [`ACK_FLUSH_BOUND`] of sending that ack (the
//!   engine flushes consumer state every 20 ms and documents at-least-once delivery), never in
//!   the same run and never for an older ack. The ack's sending time is what counts: its answer
//!   may be read after the kill, from the socket the dead server wrote it to.
//!
//! At the end the consumer must have received every acknowledged message, a fresh consumer
//! reads the whole subject back, the server stops cleanly on SIGTERM and `ledger verify`
//! accepts the ledger the kills left. The summary line prints cycles, acknowledged, lost,
//! reused and order violations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ace_client::{Accepted, AckPolicy, Client, ClientError, ConsumerConfig, FetchedMessage};
use ace_envelope::{Envelope, ErrorCode, Kind};
use serde_json::{Value, json};

use crate::serve::{Serving, start};

/// Captured by the default `ACE_EVENTS` stream.
const SUBJECT: &str = "ace.comms.http.service.killtest.evt.v1";
const STREAM: &str = "ACE_EVENTS";
const CONSUMER: &str = "kill-reader";
const PUBLISHERS: u32 = 4;
/// Cycles in CI; `ACE_KILL_CYCLES` runs more.
const CYCLES: usize = 50;
/// How long after its answered ack was sent a message may still come back after a kill: the engine
/// writes consumer state every 20 ms (`state_flush_interval`); the rest is room for the redb
/// commit and the scheduler of a loaded machine.
const ACK_FLUSH_BOUND: Duration = Duration::from_secs(2);
/// Redelivery of a fetched, unacked message (short, so the final drain is quick).
const ACK_WAIT: Duration = Duration::from_secs(2);
/// How long the final drain waits for every acknowledged message.
const DRAIN: Duration = Duration::from_secs(60);

/// (publisher, counter): which message.
type Key = (u32, u64);

fn idempotency_key((p, n): Key) -> String {
    format!("kill-{p}-{n}")
}

/// The payload of message `(p, n)`; its size varies with `n` so records straddle pages.
fn payload((p, n): Key) -> Value {
    json!({ "p": p, "n": n, "pad": "k".repeat((n % 29) as usize * 17) })
}

fn envelope(key: Key) -> Envelope {
    Envelope::builder(Kind::Event, SUBJECT)
        .payload_json(payload(key))
        .idempotency_key(idempotency_key(key))
        .build()
        .unwrap()
}

/// The (publisher, counter) a stored payload names.
fn key_of(payload: Option<&Value>) -> Option<Key> {
    let p = payload?;
    Some((u32::try_from(p["p"].as_u64()?).ok()?, p["n"].as_u64()?))
}

/// One publisher across every cycle.
#[derive(Debug, Clone)]
struct Publisher {
    id: u32,
    /// The next counter to publish.
    next: u64,
    /// The publish a kill left unanswered.
    in_doubt: Option<u64>,
}

/// A success answer to a publish.
#[derive(Debug)]
struct Answer {
    key: Key,
    seq: u64,
}

/// What the consumer saw in one cycle.
#[derive(Debug, Default)]
struct Consumed {
    /// Every delivery: its sequence and the key its payload names.
    delivered: Vec<(u64, Option<Key>)>,
    /// Sequences whose ack was answered, with when the ack was sent.
    acked: Vec<(u64, Instant)>,
    /// Deliveries of a message whose ack had been answered: (seq, delivery count, ack sent,
    /// delivered).
    after_ack: Vec<(u64, u32, Instant, Instant)>,
}

/// Everything the test knows across cycles, and every violation found.
#[derive(Debug, Default)]
struct Books {
    /// seq -> the message answered with it.
    by_seq: BTreeMap<u64, Key>,
    /// message -> the seq it was answered with.
    acked: BTreeMap<Key, u64>,
    /// Answered, not yet read back after a restart.
    unverified: Vec<u64>,
    /// Each publisher's last answered (counter, seq).
    last: HashMap<u32, (u64, u64)>,
    /// When the latest answered ack of each seq was sent.
    ack_answered: HashMap<u64, Instant>,
    /// Every seq the consumer ever received.
    delivered: BTreeSet<u64>,
    kills: Vec<Instant>,
    floor: u64,
    lost: Vec<String>,
    reused: Vec<String>,
    order: Vec<String>,
    idempotency: Vec<String>,
    consumer: Vec<String>,
    retried_original: usize,
    retried_new: usize,
    redelivered_after_kill: usize,
    /// The longest time between sending an answered ack and the kill that lost it.
    oldest_lost_ack: Duration,
}

impl Books {
    /// Records a success answer, checking reuse and order.
    fn answered(&mut self, Answer { key, seq }: Answer) {
        if let Some(other) = self.by_seq.insert(seq, key)
            && other != key
        {
            self.reused
                .push(format!("seq {seq} answered to {other:?} and to {key:?}"));
        }
        if let Some(before) = self.acked.insert(key, seq)
            && before != seq
        {
            self.idempotency
                .push(format!("{key:?} answered seq {before}, then seq {seq}"));
        }
        if let Some(&(n, s)) = self.last.get(&key.0)
            && n < key.1
            && s >= seq
        {
            self.order.push(format!(
                "publisher {}: counter {n} at seq {s}, counter {} at seq {seq}",
                key.0, key.1
            ));
        }
        if self.last.get(&key.0).is_none_or(|&(n, _)| n < key.1) {
            self.last.insert(key.0, (key.1, seq));
        }
        self.unverified.push(seq);
    }

    /// Which start of the server (0 the first) was running at `at`.
    fn run_at(&self, at: Instant) -> usize {
        self.kills.iter().filter(|&&k| k < at).count()
    }

    /// Merges one cycle of the consumer, classifying every delivery after an answered ack.
    fn consumed(&mut self, got: Consumed) {
        for (seq, key) in got.delivered {
            if key.is_none() || self.by_seq.get(&seq).is_some_and(|k| Some(*k) != key) {
                self.consumer.push(format!(
                    "seq {seq} delivered as {key:?}, answered to another"
                ));
            }
            self.delivered.insert(seq);
        }
        for (seq, delivery, acked_at, delivered_at) in got.after_ack {
            let kill = self.kills.iter().find(|&&k| k > acked_at);
            match kill {
                Some(&k) if k < delivered_at && k.duration_since(acked_at) <= ACK_FLUSH_BOUND => {
                    self.redelivered_after_kill += 1;
                    self.oldest_lost_ack = self.oldest_lost_ack.max(k.duration_since(acked_at));
                }
                Some(&k) if k < delivered_at => self.consumer.push(format!(
                    "seq {seq} delivered again (delivery {delivery}) after a kill {:?} after its \
                     ack was sent (run {})",
                    k.duration_since(acked_at),
                    self.run_at(delivered_at)
                )),
                _ => self.consumer.push(format!(
                    "seq {seq} delivered again (delivery {delivery}) {:?} after its ack, with no \
                     kill between (run {})",
                    delivered_at.duration_since(acked_at),
                    self.run_at(delivered_at)
                )),
            }
        }
        for (seq, at) in got.acked {
            self.ack_answered.insert(seq, at);
        }
    }
}

/// A small xorshift: the kill delays only need to vary, not to be good randomness.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn client(server: &Serving) -> Client {
    Client::new(&server.url)
        .unwrap()
        .with_timeout(Duration::from_secs(20))
}

/// Reads back every answered publish not yet checked: its exact payload and key at its seq.
async fn verify(client: &Client, books: &mut Books) {
    for seq in std::mem::take(&mut books.unverified) {
        let key = books.by_seq[&seq];
        match client.get_message(STREAM, seq).await {
            Ok(m)
                if m.envelope.subject.as_str() == SUBJECT
                    && m.envelope.payload.as_ref() == Some(&payload(key))
                    && m.envelope.idempotency_key.as_deref() == Some(&*idempotency_key(key)) => {}
            Ok(m) => books.lost.push(format!(
                "seq {seq} of {key:?} holds {:?} {:?}",
                m.envelope.subject, m.envelope.payload
            )),
            Err(err) => books.lost.push(format!("seq {seq} of {key:?}: {err}")),
        }
    }
}

/// Sends again, with its key, each publisher's last answered publish (it must answer its
/// original seq) and the publish a kill left unanswered (its original seq, or a new one).
async fn retry(client: &Client, publishers: &mut [Publisher], books: &mut Books) {
    for publisher in publishers.iter_mut() {
        if let Some(&(n, seq)) = books.last.get(&publisher.id) {
            let again = client.publish(&envelope((publisher.id, n))).await.unwrap();
            if !again.duplicate || again.seq != Some(seq) {
                books.idempotency.push(format!(
                    "({}, {n}) answered seq {seq}, sent again: {again:?}",
                    publisher.id
                ));
            }
        }
        if let Some(n) = publisher.in_doubt.take() {
            let key = (publisher.id, n);
            let Accepted { seq, duplicate, .. } = client.publish(&envelope(key)).await.unwrap();
            let seq = seq.expect("ACE_EVENTS captures the subject");
            if duplicate {
                books.retried_original += 1;
            } else {
                books.retried_new += 1;
            }
            books.answered(Answer { key, seq });
        }
    }
}

/// Publishes one message at a time until the server goes away.
async fn publish(client: Client, mut me: Publisher) -> (Publisher, Vec<Answer>) {
    let mut answers = Vec::new();
    loop {
        let key = (me.id, me.next);
        match client.publish(&envelope(key)).await {
            Ok(accepted) => {
                let seq = accepted.seq.expect("ACE_EVENTS captures the subject");
                assert!(!accepted.duplicate, "a new key answered duplicate: {key:?}");
                answers.push(Answer { key, seq });
                me.next += 1;
            }
            Err(ClientError::Transport { .. }) => {
                me.in_doubt = Some(me.next);
                me.next += 1;
                return (me, answers);
            }
            Err(err) => panic!("publish {key:?} refused: {err}"),
        }
    }
}

/// Fetches and acks until the server goes away (or, with `until`, until every one of those
/// sequences was received).
async fn consume(
    client: Client,
    answered: HashMap<u64, Instant>,
    until: Option<(BTreeSet<u64>, Instant)>,
) -> Consumed {
    let mut got = Consumed::default();
    // when the latest answered ack of each seq was sent
    let mut answered = answered;
    let mut missing = until.as_ref().map(|(m, _)| m.clone());
    loop {
        if let (Some(missing), Some((_, deadline))) = (&missing, &until)
            && (missing.is_empty() || Instant::now() > *deadline)
        {
            return got;
        }
        let fetched = match client
            .fetch(STREAM, CONSUMER, 64, Duration::from_millis(200))
            .await
        {
            Ok(fetched) => fetched,
            Err(ClientError::Transport { .. }) => return got,
            Err(err) => panic!("fetch refused: {err}"),
        };
        let now = Instant::now();
        let seqs: Vec<u64> = fetched.iter().map(|m| m.seq).collect();
        for FetchedMessage {
            seq,
            envelope,
            delivery,
        } in fetched
        {
            if let Some(&at) = answered.get(&seq) {
                got.after_ack.push((seq, delivery, at, now));
            }
            got.delivered.push((seq, key_of(envelope.payload.as_ref())));
            if let Some(missing) = &mut missing {
                missing.remove(&seq);
            }
        }
        if seqs.is_empty() {
            continue;
        }
        // The server handled the ack after this instant: its answer can arrive after the kill
        // (it was in the socket), so the answer's own arrival does not say which run acked.
        let sent = Instant::now();
        match client.ack(STREAM, CONSUMER, &seqs).await {
            Ok(answer) => {
                let at = sent;
                for seq in answer.done {
                    answered.insert(seq, at);
                    got.acked.push((seq, at));
                }
            }
            // none was pending any more (an ack later than `ack_wait`): not acked, redelivered
            Err(err) if err.code() == Some(ErrorCode::NotFound) => {}
            Err(ClientError::Transport { .. }) => return got,
            Err(err) => panic!("ack refused: {err}"),
        }
    }
}

/// The checks after a restart: read back, the floor, and the retries.
async fn after_restart(client: &Client, publishers: &mut [Publisher], books: &mut Books) {
    verify(client, books).await;
    let floor = client
        .consumer_info(STREAM, CONSUMER)
        .await
        .unwrap()
        .ack_floor;
    if floor < books.floor {
        books.consumer.push(format!(
            "ack floor went back from {} to {floor}",
            books.floor
        ));
    }
    books.floor = floor;
    retry(client, publishers, books).await;
}

/// One cycle: start, check, load, SIGKILL after `load`.
fn cycle(
    runtime: &tokio::runtime::Runtime,
    data: &Path,
    publishers: &mut Vec<Publisher>,
    books: &mut Books,
    load: Duration,
) {
    let server = start(data, &[]);
    let client = client(&server);
    runtime.block_on(after_restart(&client, publishers, books));
    let consumer = runtime.spawn(consume(client.clone(), books.ack_answered.clone(), None));
    let running: Vec<_> = publishers
        .drain(..)
        .map(|p| runtime.spawn(publish(client.clone(), p)))
        .collect();
    std::thread::sleep(load);
    server.kill();
    // after the process is gone: every answer it gave came before this instant
    books.kills.push(Instant::now());
    for task in running {
        let (publisher, answers) = runtime.block_on(task).unwrap();
        publishers.push(publisher);
        for answer in answers {
            books.answered(answer);
        }
    }
    books.consumed(runtime.block_on(consumer).unwrap());
}

/// The last start: every check once more, the drain, the whole subject read back, SIGTERM.
fn finish(
    runtime: &tokio::runtime::Runtime,
    data: &Path,
    publishers: &mut [Publisher],
    books: &mut Books,
) {
    let server = start(data, &[]);
    let client = client(&server);
    runtime.block_on(after_restart(&client, publishers, books));
    books.unverified = books.by_seq.keys().copied().collect();
    runtime.block_on(verify(&client, books));
    let missing: BTreeSet<u64> = books
        .acked
        .values()
        .filter(|seq| !books.delivered.contains(seq))
        .copied()
        .collect();
    let until = Some((missing, Instant::now() + DRAIN));
    let drained = runtime.block_on(consume(client.clone(), books.ack_answered.clone(), until));
    books.consumed(drained);
    for seq in books.acked.values() {
        if !books.delivered.contains(seq) {
            books
                .consumer
                .push(format!("seq {seq} was acknowledged and never delivered"));
        }
    }
    runtime.block_on(audit(&client, books));
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
}

/// Reads the whole subject with a fresh consumer: every message stored at most once.
async fn audit(client: &Client, books: &mut Books) {
    let config = ConsumerConfig {
        filter: Some(SUBJECT.to_owned()),
        ack: AckPolicy::None,
        ..ConsumerConfig::new("kill-audit")
    };
    client.add_consumer(STREAM, &config).await.unwrap();
    let mut stored: BTreeMap<Key, Vec<u64>> = BTreeMap::new();
    loop {
        let batch = client
            .fetch(STREAM, "kill-audit", 1000, Duration::ZERO)
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        for m in batch {
            let key = key_of(m.envelope.payload.as_ref()).expect("a test payload");
            stored.entry(key).or_default().push(m.seq);
        }
    }
    for (key, seqs) in &stored {
        if seqs.len() > 1 {
            books
                .idempotency
                .push(format!("{key:?} stored {} times: {seqs:?}", seqs.len()));
        }
    }
    for (key, seq) in &books.acked {
        if stored.get(key).is_none_or(|seqs| !seqs.contains(seq)) {
            books
                .lost
                .push(format!("{key:?} at seq {seq} missing from the stream"));
        }
    }
}

fn first(list: &[String]) -> &[String] {
    &list[..list.len().min(5)]
}

#[test]
fn given_a_loaded_server_killed_50_times_then_no_acknowledged_publish_or_ack_is_lost_reused_or_reordered()
 {
    let cycles = std::env::var("ACE_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CYCLES);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("kill test: seed {seed}");
    let mut publishers: Vec<Publisher> = (0..PUBLISHERS)
        .map(|id| Publisher {
            id,
            next: 1,
            in_doubt: None,
        })
        .collect();
    let mut books = Books::default();
    let started = Instant::now();
    {
        let server = start(&data, &[]);
        let config = ConsumerConfig {
            filter: Some(SUBJECT.to_owned()),
            ack_wait: ACK_WAIT,
            max_deliver: None,
            ..ConsumerConfig::new(CONSUMER)
        };
        runtime
            .block_on(client(&server).add_consumer(STREAM, &config))
            .unwrap();
        let (code, _, stderr) = server.terminate();
        assert_eq!(code, 0, "stderr:\n{stderr}");
    }
    for _ in 0..cycles {
        let load = Duration::from_millis(50 + next(&mut seed) % 450);
        cycle(&runtime, &data, &mut publishers, &mut books, load);
    }
    finish(&runtime, &data, &mut publishers, &mut books);
    let verify = crate::ace(&["ledger", "verify", "--data", data.to_str().unwrap()], b"");
    assert_eq!(verify.code, 0, "{}\n{}", verify.stdout, verify.stderr);

    eprintln!(
        "kill -9: {cycles} cycles, {} acknowledged, {} lost, {} reused, {} order violations; \
         idempotency violations {}, consumer violations {}; retried after a kill: {} answered \
         their original seq, {} stored anew; {} acked deliveries redelivered after a kill (acks \
         sent at most {:?} before it; bound {:?}); {:.1?}",
        books.acked.len(),
        books.lost.len(),
        books.reused.len(),
        books.order.len(),
        books.idempotency.len(),
        books.consumer.len(),
        books.retried_original,
        books.retried_new,
        books.redelivered_after_kill,
        books.oldest_lost_ack,
        ACK_FLUSH_BOUND,
        started.elapsed()
    );
    assert!(books.lost.is_empty(), "lost: {:?}", first(&books.lost));
    assert!(
        books.reused.is_empty(),
        "reused: {:?}",
        first(&books.reused)
    );
    assert!(books.order.is_empty(), "order: {:?}", first(&books.order));
    assert!(
        books.idempotency.is_empty(),
        "idempotency: {:?}",
        first(&books.idempotency)
    );
    assert!(
        books.consumer.is_empty(),
        "consumer: {:?}",
        first(&books.consumer)
    );
    assert!(
        books.acked.len() >= cycles,
        "the load was acknowledged: {} publishes",
        books.acked.len()
    );
}
