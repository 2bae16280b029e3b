//! Append throughput per sync policy (256 B and 4 KiB payloads): single `append`, `append_batch`
//! of 100 and 1,000 records, concurrent single appends sharing group commits, and `read_from`
//! throughput. Retention keeps the disk footprint bounded and runs outside the timed region.
//! Figures go to BENCHMARKS.md ("ace-log") with their command.

use std::time::{Duration, Instant};

use ace_log::{Log, LogConfig, NewRecord, Retention, SyncPolicy};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const POLICIES: [(&str, SyncPolicy); 3] = [
    ("always", SyncPolicy::Always),
    (
        "batch",
        SyncPolicy::Batch {
            max_delay: Duration::ZERO,
        },
    ),
    ("never", SyncPolicy::Never),
];
const SIZES: [(&str, usize); 2] = [("256B", 256), ("4KiB", 4096)];

/// Logs live under `ACE_LOG_BENCH_DIR` when set (e.g. `/dev/shm`, to separate the log's own cost
/// from the disk's fsync latency), else in the system temporary directory.
fn open(sync: SyncPolicy) -> (tempfile::TempDir, Log) {
    let dir = match std::env::var_os("ACE_LOG_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let config = LogConfig {
        segment_bytes: 16 << 20,
        sync,
        retention: Retention {
            max_bytes: Some(32 << 20),
            ..Retention::default()
        },
        ..LogConfig::default()
    };
    let (log, _) = Log::open(dir.path(), config).unwrap();
    (dir, log)
}

fn record(payload: &[u8]) -> NewRecord<'_> {
    NewRecord {
        subject: "bench.orders.eu",
        headers: b"",
        payload,
        timestamp_ns: 0,
    }
}

/// Times `iters` calls of `f`, running retention (untimed) every 64 calls.
fn timed(log: &Log, iters: u64, mut f: impl FnMut()) -> Duration {
    let mut total = Duration::ZERO;
    for i in 0..iters {
        let start = Instant::now();
        f();
        total += start.elapsed();
        if i % 64 == 63 {
            log.apply_retention(0).unwrap();
        }
    }
    total
}

fn single(c: &mut Criterion) {
    for (size_name, size) in SIZES {
        let mut group = c.benchmark_group(format!("append_{size_name}"));
        group.throughput(Throughput::Elements(1));
        let payload = vec![7u8; size];
        // The floor in the same run: a bare positional write + fdatasync of the same bytes.
        let dir = tempfile::tempdir().unwrap();
        let file = std::fs::File::create(dir.path().join("baseline")).unwrap();
        let mut at = 0u64;
        group.bench_function("write_fdatasync_baseline", |b| {
            b.iter(|| {
                std::os::unix::fs::FileExt::write_all_at(&file, &payload, at).unwrap();
                at += payload.len() as u64;
                file.sync_data().unwrap();
            })
        });
        for (name, policy) in POLICIES {
            let (_dir, log) = open(policy);
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    timed(&log, iters, || {
                        log.append(record(&payload)).unwrap();
                    })
                })
            });
        }
        group.finish();
    }
}

fn batched(c: &mut Criterion) {
    for (size_name, size) in SIZES {
        let mut group = c.benchmark_group(format!("append_batch_{size_name}"));
        let payload = vec![7u8; size];
        for batch in [100usize, 1000] {
            let recs = vec![record(&payload); batch];
            group.throughput(Throughput::Elements(batch as u64));
            for (name, policy) in POLICIES {
                let (_dir, log) = open(policy);
                group.bench_function(BenchmarkId::new(name, batch), |b| {
                    b.iter_custom(|iters| {
                        timed(&log, iters, || drop(log.append_batch(&recs).unwrap()))
                    })
                });
            }
        }
        group.finish();
    }
}

fn concurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("concurrent_append_256B_batch");
    let payload = vec![7u8; 256];
    for threads in [8u64, 64] {
        group.throughput(Throughput::Elements(threads));
        let (_dir, log) = open(SyncPolicy::default());
        group.bench_function(BenchmarkId::from_parameter(threads), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        s.spawn(|| {
                            for _ in 0..iters {
                                log.append(record(&payload)).unwrap();
                            }
                        });
                    }
                });
                let took = start.elapsed();
                log.apply_retention(0).unwrap();
                took
            })
        });
    }
    group.finish();
}

fn read(c: &mut Criterion) {
    let mut group = c.benchmark_group("read_256B");
    let payload = vec![7u8; 256];
    let (_dir, log) = open(SyncPolicy::Never);
    let recs = vec![record(&payload); 1000];
    for _ in 0..50 {
        log.append_batch(&recs).unwrap();
    }
    group.throughput(Throughput::Elements(500));
    let mut from = 1;
    group.bench_function("read_from_500", |b| {
        b.iter(|| {
            let got = log.read_from(from, 500).unwrap();
            from = if got.len() < 500 { 1 } else { from + 500 };
            got
        })
    });
    group.throughput(Throughput::Elements(1));
    let mut seq = 1u64;
    group.bench_function("point_read", |b| {
        b.iter(|| {
            seq = seq * 7919 % 50_000 + 1;
            log.read(seq).unwrap().unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, single, batched, concurrent, read);
criterion_main!(benches);
