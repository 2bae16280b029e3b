//! Consumption figures of the embedded engine:
//! - `fetch_ack` (criterion): a pull consumer drains 20,000 stored 256 B messages with
//!   `fetch(batch 500)` and one `ack` per message;
//! - latency (printed): publish -> deliver, open loop — a publisher at a constant rate stamps
//!   each envelope with its *scheduled* send time, one consumer fetches and acks; the HDR
//!   histogram of deliver time minus scheduled time (so queueing delay is not hidden);
//! - memory per idle consumer (printed): RSS growth over 10,000 consumers on one stream.
//!
//! Run: `cargo bench -p ace-bus --bench consume -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;
use std::time::{Duration, Instant};

use ace_bus::{Bus, ConsumerConfig, EmbeddedBus, EmbeddedConfig, StreamConfig, SyncPolicy};
use ace_envelope::{Envelope, Kind};
use criterion::{Criterion, Throughput, criterion_group};
use hdrhistogram::Histogram;

const STORED: usize = 20_000;
const FETCH_BATCH: usize = 500;

fn envelope(i: usize, sent_ns: Option<u128>) -> Envelope {
    let mut b = Envelope::builder(Kind::Event, format!("ace.comms.bench.orders.{}", i % 64))
        .payload_json(serde_json::json!({ "body": "x".repeat(256) }));
    if let Some(ns) = sent_ns {
        b = b.header("bench-sent-ns", ns.to_string());
    }
    b.build().expect("valid envelope")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn open(dir: &std::path::Path, sync: SyncPolicy) -> Arc<EmbeddedBus> {
    let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).expect("opens");
    let stream = StreamConfig {
        sync,
        ..StreamConfig::new("bench", &["ace.comms.bench.>"])
    };
    bus.add_stream(stream).await.expect("stream");
    Arc::new(bus)
}

async fn drain(bus: &EmbeddedBus, consumer: &str, n: usize) {
    let mut got = 0;
    while got < n {
        let batch = bus
            .fetch("bench", consumer, FETCH_BATCH, Duration::from_secs(1))
            .await
            .expect("fetch");
        for d in &batch {
            bus.ack("bench", consumer, d.seq).await.expect("ack");
        }
        got += batch.len();
    }
}

fn bench_fetch_ack(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let bus = rt.block_on(async {
        let bus = open(dir.path(), SyncPolicy::Never).await;
        let envs: Vec<Envelope> = (0..STORED).map(|i| envelope(i, None)).collect();
        for answer in bus.publish_batch(envs).await {
            answer.expect("stored");
        }
        bus
    });
    let mut group = c.benchmark_group("consume");
    group.sample_size(10);
    group.throughput(Throughput::Elements(STORED as u64));
    let mut round = 0;
    group.bench_function("fetch500_ack_each/256B", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                let name = format!("c{round}");
                let config = ConsumerConfig {
                    max_ack_pending: 10_000,
                    durable: false,
                    ..ConsumerConfig::new(name.clone())
                };
                rt.block_on(bus.add_consumer("bench", config))
                    .expect("consumer");
                let start = Instant::now();
                rt.block_on(drain(&bus, &name, STORED));
                total += start.elapsed();
                rt.block_on(bus.delete_consumer("bench", &name))
                    .expect("deleted");
            }
            total
        });
    });
    group.finish();
    rt.block_on(async { bus.close().await.expect("closes") });
}

fn unix_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Open-loop publish -> deliver latency at `rate` msgs/s for `secs` seconds (batch sync).
fn report_latency(rate: u64, secs: u64) {
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    let hist = rt.block_on(async {
        let bus = open(dir.path(), SyncPolicy::Batch).await;
        let config = ConsumerConfig {
            max_ack_pending: 100_000,
            ..ConsumerConfig::new("lat")
        };
        bus.add_consumer("bench", config).await.expect("consumer");
        let total = usize::try_from(rate * secs).unwrap_or(usize::MAX);
        let publisher = {
            let bus = bus.clone();
            tokio::spawn(async move {
                let period = Duration::from_nanos(1_000_000_000 / rate);
                let start_ns = unix_ns();
                let start = tokio::time::Instant::now();
                let mut inflight = futures::stream::FuturesUnordered::new();
                for i in 0..total {
                    let due = start + period * u32::try_from(i).unwrap_or(u32::MAX);
                    tokio::time::sleep_until(due).await;
                    let scheduled = start_ns + (period * u32::try_from(i).unwrap_or(0)).as_nanos();
                    let bus = bus.clone();
                    inflight.push(tokio::spawn(async move {
                        bus.publish(envelope(i, Some(scheduled)))
                            .await
                            .expect("published");
                    }));
                }
                use futures::StreamExt;
                while let Some(r) = inflight.next().await {
                    r.expect("publish task");
                }
            })
        };
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).expect("histogram");
        let mut got = 0;
        while got < total {
            let batch = bus
                .fetch("bench", "lat", 100, Duration::from_secs(1))
                .await
                .expect("fetch");
            let now = unix_ns();
            for d in &batch {
                let sent: u128 = d.envelope.headers["bench-sent-ns"].parse().expect("stamp");
                let ns = u64::try_from(now.saturating_sub(sent)).unwrap_or(u64::MAX);
                hist.record(ns.max(1)).expect("recorded");
                bus.ack("bench", "lat", d.seq).await.expect("ack");
            }
            got += batch.len();
        }
        publisher.await.expect("publisher");
        bus.close().await.expect("closes");
        hist
    });
    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    eprintln!(
        "latency publish->deliver (ace-fsync, open loop {rate} msgs/s, {secs} s, n={}): \
         p50 {:.0} us, p95 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
        hist.len(),
        us(0.5),
        us(0.95),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0
    );
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// RSS growth per idle (durable) consumer, over 10,000 consumers on one stream.
fn report_memory_per_consumer() {
    const N: usize = 10_000;
    let rt = runtime();
    let dir = tempfile::tempdir().expect("temp dir");
    rt.block_on(async {
        let bus = open(dir.path(), SyncPolicy::Never).await;
        let before = rss_bytes();
        for i in 0..N {
            let config = ConsumerConfig {
                filter: Some(format!("ace.comms.bench.orders.{i}")),
                ..ConsumerConfig::new(format!("idle{i}"))
            };
            bus.add_consumer("bench", config).await.expect("consumer");
        }
        let after = rss_bytes();
        if let (Some(a), Some(b)) = (before, after) {
            eprintln!(
                "memory per idle durable consumer: {} bytes (RSS +{} KiB over {N})",
                b.saturating_sub(a) / N as u64,
                b.saturating_sub(a) / 1024
            );
        }
        bus.close().await.expect("closes");
    });
}

criterion_group!(benches, bench_fetch_ack);

fn main() {
    benches();
    report_latency(5_000, 3);
    report_latency(20_000, 3);
    report_memory_per_consumer();
    Criterion::default().configure_from_args().final_summary();
}
