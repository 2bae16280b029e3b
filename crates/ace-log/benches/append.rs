//! Append throughput per sync policy (256 B and 4 KiB payloads), single appends and
//! `append_batch`, and read throughput. Figures go to BENCHMARKS.md with their command.

use ace_log::{Log, LogConfig, NewRecord, SyncPolicy};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn append_batch(c: &mut Criterion) {
    let mut group = c.benchmark_group("append_batch_256B_x100");
    group.throughput(Throughput::Elements(100));
    let payload = vec![7u8; 256];
    let batch: Vec<NewRecord<'_>> = (0..100)
        .map(|_| NewRecord {
            subject: "bench.s",
            headers: b"",
            payload: &payload,
            timestamp_ns: 0,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        sync: SyncPolicy::default(),
        ..LogConfig::default()
    };
    let (log, _) = Log::open(dir.path(), config).unwrap();
    group.bench_function("batch", |b| b.iter(|| log.append_batch(&batch).unwrap()));
    group.finish();
}

criterion_group!(benches, append_batch);
criterion_main!(benches);
