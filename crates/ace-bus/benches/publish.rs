//! In-process publish throughput of the embedded engine, per sync policy (always / batch /
//! never) and payload size (256 B, 4 KiB), every publish answered only once durable per the
//! policy. Two shapes: `single` — four publisher tasks with 1,024 `publish` calls in flight
//! each; `batch` — four publisher tasks with four `publish_batch` calls of 256 envelopes in
//! flight each (the same 1,024 messages in flight). Envelopes are built before
//! the clock starts; encoding, dedup, append, fsync and the answers are inside the measurement.
//!
//! Run: `cargo bench -p ace-bus --bench publish -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;
use std::time::{Duration, Instant};

use ace_bus::{Bus, EmbeddedBus, EmbeddedConfig, StreamConfig, SyncPolicy};
use ace_envelope::{Envelope, Kind};
use criterion::{Criterion, Throughput, criterion_group};

/// Messages per measured iteration.
const BATCH: usize = 40_000;
/// Publisher tasks.
const PUBLISHERS: usize = 4;
/// Publishes in flight per publisher (as single calls, or as batches of `BATCH_CALL`).
const IN_FLIGHT: usize = 1024;
/// Envelopes per `publish_batch` call.
const BATCH_CALL: usize = 256;

fn envelopes(n: usize, payload: usize) -> Vec<Envelope> {
    envelopes_on("ace.comms.bench.orders", n, payload)
}

fn envelopes_on(prefix: &str, n: usize, payload: usize) -> Vec<Envelope> {
    let body = "x".repeat(payload);
    (0..n)
        .map(|i| {
            Envelope::builder(Kind::Event, format!("{prefix}.{}", i % 64))
                .payload_json(serde_json::json!({ "body": body }))
                .build()
                .expect("valid envelope")
        })
        .collect()
}

/// A temporary data directory, under `ACE_BUS_BENCH_DIR` when set (e.g. `/dev/shm` to take the
/// disk's fsync latency out and see the engine's own cost).
fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("ACE_BUS_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).expect("temp dir in ACE_BUS_BENCH_DIR"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Single,
    Batch,
}

async fn publish_all(bus: Arc<EmbeddedBus>, envs: Vec<Envelope>, shape: Shape) {
    use futures::StreamExt;
    let chunk = envs.len().div_ceil(PUBLISHERS);
    let mut envs = envs;
    let mut tasks = Vec::new();
    while !envs.is_empty() {
        let mine: Vec<Envelope> = envs.drain(..chunk.min(envs.len())).collect();
        let bus = bus.clone();
        tasks.push(tokio::spawn(async move {
            if let Shape::Batch = shape {
                let mut mine = mine;
                let mut parts = Vec::new();
                while !mine.is_empty() {
                    parts.push(mine.drain(..BATCH_CALL.min(mine.len())).collect::<Vec<_>>());
                }
                futures::stream::iter(parts)
                    .map(|part| {
                        let bus = bus.clone();
                        async move {
                            for answer in bus.publish_batch(part).await {
                                answer.expect("published");
                            }
                        }
                    })
                    .buffer_unordered(IN_FLIGHT / BATCH_CALL)
                    .for_each(|_| async {})
                    .await;
                return;
            }
            futures::stream::iter(mine)
                .map(|e| {
                    let bus = bus.clone();
                    async move { bus.publish(e).await.expect("published") }
                })
                .buffer_unordered(IN_FLIGHT)
                .for_each(|_| async {})
                .await;
        }));
    }
    for t in tasks {
        t.await.expect("publisher ran");
    }
}

fn bench_publish(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("publish");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH as u64));
    for shape in [Shape::Single, Shape::Batch] {
        for (label, sync) in [
            ("always", SyncPolicy::Always),
            ("batch", SyncPolicy::Batch),
            ("never", SyncPolicy::Never),
        ] {
            for payload in [256, 4096] {
                let dir = bench_dir();
                let bus = rt.block_on(async {
                    let bus = EmbeddedBus::open(EmbeddedConfig::new(dir.path())).expect("opens");
                    let stream = StreamConfig {
                        sync,
                        // Keep the disk bounded across iterations: whole old segments are dropped.
                        max_bytes: Some(512 * 1024 * 1024),
                        ..StreamConfig::new("bench", &["ace.comms.bench.>"])
                    };
                    bus.add_stream(stream).await.expect("stream");
                    Arc::new(bus)
                });
                let name = format!("{shape:?}/{label}/{payload}B").to_lowercase();
                group.bench_function(name, |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let envs = envelopes(BATCH, payload);
                            let start = Instant::now();
                            rt.block_on(publish_all(bus.clone(), envs, shape));
                            total += start.elapsed();
                        }
                        total
                    });
                });
                rt.block_on(async { bus.close().await.expect("closes") });
            }
        }
    }
    group.finish();
}

/// The per-message work outside the engine's control, for context: encoding the envelope to its
/// stored JSON form, and dropping a published envelope.
fn bench_parts(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish_parts");
    let env = envelopes(1, 256).remove(0);
    group.bench_function("envelope_to_json_256B", |b| b.iter(|| env.to_json_vec()));
    group.bench_function("envelope_clone_drop_256B", |b| b.iter(|| env.clone()));
    group.finish();
}

/// CPU-seconds of this process so far (user + system), from `/proc/self/stat`.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// The cost figure BENCHMARKING.md asks for, which contention on a shared machine does not
/// distort the way it distorts throughput: process CPU-seconds per million messages published
/// (batch sync, 256 B, both shapes), with the wall-clock rate of the same run; and, as the
/// baseline, the same publishes on a subject no stream captures (live path only).
fn report_cpu_cost() {
    const N: usize = 200_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = bench_dir();
    let bus = rt.block_on(async {
        let bus = EmbeddedBus::open(EmbeddedConfig::new(dir.path())).expect("opens");
        let stream = StreamConfig::new("bench", &["ace.comms.bench.>"]);
        bus.add_stream(stream).await.expect("stream");
        Arc::new(bus)
    });
    for (shape, prefix) in [
        (Shape::Batch, "ace.comms.bench.orders"),
        (Shape::Single, "ace.comms.bench.orders"),
        (Shape::Batch, "ace.comms.nostream.orders"),
    ] {
        let envs = envelopes_on(prefix, N, 256);
        let (cpu0, t0) = (cpu_seconds(), Instant::now());
        rt.block_on(publish_all(bus.clone(), envs, shape));
        let (cpu1, wall) = (cpu_seconds(), t0.elapsed().as_secs_f64());
        if let (Some(a), Some(b)) = (cpu0, cpu1) {
            let per_million = (b - a) * 1e6 / N as f64;
            eprintln!(
                "cpu-cost {shape:?}/batch-sync/256B on {prefix}: {per_million:.2} CPU-s per million msgs \
                 ({:.0} msgs/s wall, {:.0} msgs/s per CPU-second)",
                N as f64 / wall,
                N as f64 / (b - a).max(1e-9),
            );
        }
    }
    rt.block_on(async { bus.close().await.expect("closes") });
}

criterion_group!(benches, bench_publish, bench_parts);

fn main() {
    benches();
    report_cpu_cost();
    Criterion::default().configure_from_args().final_summary();
}
