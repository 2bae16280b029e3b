//! Benchmarks of the subject index and the live hub (BENCHMARKS.md, "ace-bus: subject index and
//! live hub"). Criterion groups: wildcard match cost at 1k/10k/100k subscriptions, walking the
//! trie or through the match cache (hit and mostly-miss); insert+remove cost; live publish to
//! 1/4/16 subscribers plus a `>` tap, drained in the same thread. Printed before criterion starts:
//! resident bytes per subscription, publish → wake-up latency of a subscriber task on another
//! thread (HDR histogram), and publish throughput from 1 vs 2 threads on one hub (does the
//! read-mostly lock let publishers run in parallel?).
//!
//! Memory is the growth of the process's resident set (`/proc/self/statm`) while 100k
//! subscriptions are inserted: a counting global allocator would need `unsafe`, which the
//! workspace forbids.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ace_bus::index::SubjectIndex;
use ace_bus::{LiveConfig, LiveHub};
use ace_envelope::{Envelope, Kind, Subject};
use criterion::{BenchmarkId, Criterion, Throughput};
use hdrhistogram::Histogram;

#[path = "../tests/it/index/workload.rs"]
mod workload;

use workload::{pattern, subjects};

fn index_of(size: usize, cache: usize) -> SubjectIndex<u64> {
    let mut index = SubjectIndex::with_cache(cache);
    for i in 0..size {
        index.insert(&pattern(i), i as u64);
    }
    index
}

/// One uncached match: walks the trie and sums what it finds, so nothing is optimised away.
fn walk(index: &SubjectIndex<u64>, subject: &Subject) -> u64 {
    let mut hits = 0u64;
    index.matches(subject.as_str(), |_, v| hits += v);
    black_box(hits)
}

fn match_cost(c: &mut Criterion) {
    let hot = subjects(1_000);
    let mut group = c.benchmark_group("index_match");
    group.throughput(Throughput::Elements(1));
    for size in [1_000, 10_000, 100_000] {
        let plain = index_of(size, 0);
        let mut next = hot.iter().cycle();
        group.bench_function(BenchmarkId::new("walk", size), |b| {
            b.iter(|| walk(&plain, next.next().expect("cycle")))
        });
        let cached = index_of(size, 4_096);
        group.bench_function(BenchmarkId::new("cached", size), |b| {
            b.iter(|| black_box(cached.matching(next.next().expect("cycle").as_str()).len()))
        });
    }
    // 20,000 distinct subjects (more of the trie out of CPU caches), walked, and through a
    // 4,096-entry match cache: mostly misses, the cache's worst case.
    let spread = subjects(20_000);
    let mut next = spread.iter().cycle();
    let plain = index_of(100_000, 0);
    group.bench_function(BenchmarkId::new("walk_spread", 100_000), |b| {
        b.iter(|| walk(&plain, next.next().expect("cycle")))
    });
    let cached = index_of(100_000, 4_096);
    group.bench_function(BenchmarkId::new("cached_mostly_miss", 100_000), |b| {
        b.iter(|| black_box(cached.matching(next.next().expect("cycle").as_str()).len()))
    });
    group.finish();
}

fn insert_remove_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("index_insert_remove");
    for size in [1_000, 100_000] {
        let mut index = index_of(size, 0);
        let mut fresh = (size..).map(pattern);
        group.bench_function(BenchmarkId::new("pair", size), |b| {
            b.iter(|| {
                let id = index.insert(&fresh.next().expect("endless"), 0);
                black_box(index.remove(id))
            })
        });
    }
    group.finish();
}

/// Resident bytes of the process, from `/proc/self/statm` (Linux); `None` elsewhere.
fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn report_memory_per_subscription() {
    const SIZE: usize = 100_000;
    let patterns: Vec<_> = (0..SIZE).map(pattern).collect();
    let before = resident_bytes();
    let mut index = SubjectIndex::new();
    for (i, p) in patterns.iter().enumerate() {
        index.insert(p, i as u64);
    }
    let after = resident_bytes();
    if let (Some(before), Some(after)) = (before, after) {
        let per = after.saturating_sub(before) as f64 / SIZE as f64;
        eprintln!(
            "index_memory: {SIZE} subscriptions, resident growth {} KiB, {per:.0} bytes/subscription",
            (after - before) / 1024
        );
    }
    drop(black_box(index));
}

/// 1,000 events of 128 bytes of payload, on 1,000 subjects under `bench.live.`.
fn live_messages() -> Vec<Arc<Envelope>> {
    (0..1_000)
        .map(|i| {
            let payload = serde_json::json!({ "data": "x".repeat(115) });
            let msg = Envelope::builder(Kind::Event, format!("bench.live.s{i}.evt.v1"))
                .payload_json(payload);
            Arc::new(msg.build().expect("valid envelope"))
        })
        .collect()
}

/// W1 in process: one publisher, 1/4/16 subscribers on `bench.live.*.evt.>` plus a `>` tap that
/// every message also reaches; each iteration publishes one message and drains every buffer.
fn live_publish(c: &mut Criterion) {
    let messages = live_messages();
    let mut group = c.benchmark_group("live_publish_drain");
    group.throughput(Throughput::Elements(1));
    for subscribers in [1, 4, 16] {
        let hub = LiveHub::new(LiveConfig::default());
        let mut subs: Vec<_> = (0..subscribers)
            .map(|_| {
                hub.subscribe("bench.live.*.evt.>", None)
                    .expect("subscribe")
            })
            .collect();
        subs.push(hub.subscribe(">", None).expect("subscribe"));
        let mut next = messages.iter().cycle();
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter(|| {
                let delivered = hub.publish(Arc::clone(next.next().expect("cycle")));
                subs.iter_mut().for_each(|s| drop(black_box(s.try_next())));
                delivered
            })
        });
    }
    group.finish();
}

/// Publish → a subscriber task on another worker thread wakes up with it: one message at a time
/// (closed loop, no queueing), 20,000 samples into an HDR histogram.
fn report_cross_thread_latency() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let hub = Arc::new(LiveHub::new(LiveConfig::default()));
    let mut sub = hub.subscribe("bench.live.>", None).expect("subscribe");
    let (woke_tx, mut woke_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    runtime.spawn(async move {
        while sub.next().await.is_some() {
            let _ = woke_tx.send(Instant::now());
        }
    });
    let messages = live_messages();
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    runtime.block_on(async {
        for (i, msg) in messages.iter().cycle().take(21_000).enumerate() {
            let sent = Instant::now();
            hub.publish(Arc::clone(msg));
            let woke = woke_rx.recv().await.expect("subscriber alive");
            if i >= 1_000 {
                histogram
                    .record(woke.duration_since(sent).as_nanos() as u64)
                    .expect("in range");
            }
        }
    });
    let us = |q: f64| histogram.value_at_quantile(q) as f64 / 1_000.0;
    eprintln!(
        "live_latency: publish -> subscriber task woke, cross-thread, {} samples: p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        histogram.len(),
        us(0.5),
        us(0.99),
        us(0.999),
        histogram.max() as f64 / 1_000.0
    );
}

/// Publishes `count` messages from each of `threads` threads, each to its own subjects with 4
/// subscribers it drains itself, over `hubs` hubs: threads sharing a hub contend only on its
/// index's read lock and its counters. Returns millions of published messages per second.
fn parallel_publish_rate(threads: usize, hubs: usize, count: usize) -> f64 {
    let hubs: Vec<_> = (0..hubs)
        .map(|_| LiveHub::new(LiveConfig::default()))
        .collect();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let hub = &hubs[t % hubs.len()];
            scope.spawn(move || {
                let mut subs: Vec<_> = (0..4)
                    .map(|_| {
                        hub.subscribe(&format!("bench.t{t}.>"), None)
                            .expect("subscribe")
                    })
                    .collect();
                let messages: Vec<_> = (0..1_000)
                    .map(|i| {
                        let subject = format!("bench.t{t}.s{i}.evt.v1");
                        let msg = Envelope::builder(Kind::Event, subject)
                            .payload_json(serde_json::json!({}));
                        Arc::new(msg.build().expect("valid envelope"))
                    })
                    .collect();
                for msg in messages.iter().cycle().take(count) {
                    hub.publish(Arc::clone(msg));
                    subs.iter_mut().for_each(|s| drop(s.try_next()));
                }
            });
        }
    });
    (threads * count) as f64 / started.elapsed().as_secs_f64() / 1e6
}

/// 1 thread, 2 threads on one hub, and 2 threads on a hub each (the control: nothing shared, so
/// whatever it loses against 2x is the machine, not the hub), twice, interleaved.
fn report_parallel_publish() {
    for (threads, hubs) in [(1, 1), (2, 1), (2, 2), (1, 1), (2, 1), (2, 2)] {
        let rate = parallel_publish_rate(threads, hubs, 300_000);
        eprintln!(
            "live_parallel_publish: {threads} publisher thread(s) on {hubs} hub(s), 4 subscribers each: {rate:.2} M msgs/s in total"
        );
    }
}

fn main() {
    report_memory_per_subscription();
    report_cross_thread_latency();
    report_parallel_publish();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .configure_from_args();
    match_cost(&mut c);
    insert_remove_cost(&mut c);
    live_publish(&mut c);
    c.final_summary();
}
