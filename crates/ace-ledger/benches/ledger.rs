//! Ledger throughput: appends per second through the file store (every append or batch is
//! fsynced — the store has no unsynced mode, so "without fsync" is measured with the in-memory
//! store, which leaves the ledger's own cost: canonical JSON, two SHA-256 chains, Merkle tree),
//! proof generation at ~65k entries, and `verify_dir` over a file ledger.
//! Figures go to BENCHMARKS.md ("ace-ledger") with their command.

use ace_ledger::{EntryKind, Ledger, LedgerKey, LedgerOptions, MemoryStore, NewEntry, verify_dir};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

/// A typical "accepted" entry (~330 bytes on disk).
fn entry(i: u64) -> NewEntry {
    NewEntry::new(
        EntryKind::Accepted,
        "svc-orders",
        "ace.comms.http.service.kpi.evt.v1",
    )
    .message_id(format!("0193a5f0-7c1e-7000-8000-{i:012x}"))
    .content_sha256("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
    .decision("allow")
    .details(json!({"stream": "KPI", "stream_seq": i, "policy": "default"}))
}

/// Data directories live under `ACE_LEDGER_BENCH_DIR` when set (e.g. `/dev/shm`), else in the
/// system temporary directory.
fn data_dir() -> tempfile::TempDir {
    match std::env::var_os("ACE_LEDGER_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

fn memory_ledger() -> Ledger {
    let key = LedgerKey::from_seed([1; 32]);
    Ledger::with_store(Box::new(MemoryStore::new()), key, LedgerOptions::default()).unwrap()
}

fn appends(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    for batch in [1u64, 100, 1000] {
        group.throughput(Throughput::Elements(batch));
        let data = data_dir();
        let ledger = Ledger::open(data.path(), LedgerOptions::default()).unwrap();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("file_fsync", batch), |b| {
            b.iter(|| {
                let batch_entries = (i..i + batch).map(entry).collect();
                i += batch;
                ledger.append_batch(batch_entries).unwrap()
            })
        });
        let ledger = memory_ledger();
        let mut i = 0;
        group.bench_function(BenchmarkId::new("memory_no_io", batch), |b| {
            b.iter(|| {
                let batch_entries = (i..i + batch).map(entry).collect();
                i += batch;
                ledger.append_batch(batch_entries).unwrap()
            })
        });
    }
    group.finish();
}

fn proofs(c: &mut Criterion) {
    const SIZE: u64 = (1 << 16) + 1000;
    let ledger = memory_ledger();
    for start in (0..SIZE).step_by(1000) {
        ledger
            .append_batch((start..(start + 1000).min(SIZE)).map(entry).collect())
            .unwrap();
    }
    let mut group = c.benchmark_group("proof_65k");
    let mut seq = 0;
    group.bench_function("inclusion", |b| {
        b.iter(|| {
            seq = (seq + 7919) % SIZE;
            ledger.inclusion_proof(seq, SIZE).unwrap()
        })
    });
    let mut from = 1;
    group.bench_function("consistency", |b| {
        b.iter(|| {
            from = (from + 7919) % SIZE;
            ledger.consistency_proof(from.max(1), SIZE).unwrap()
        })
    });
    group.bench_function("tree_head", |b| {
        b.iter(|| ledger.tree_head(SIZE - 1).unwrap())
    });
    group.finish();
}

fn verify(c: &mut Criterion) {
    const SIZE: u64 = 10_000;
    let data = data_dir();
    let ledger = Ledger::open(data.path(), LedgerOptions::default()).unwrap();
    for start in (0..SIZE).step_by(1000) {
        ledger
            .append_batch((start..start + 1000).map(entry).collect())
            .unwrap();
        ledger.checkpoint().unwrap();
    }
    let mut group = c.benchmark_group("verify_dir");
    group.throughput(Throughput::Elements(SIZE));
    group.sample_size(10);
    group.bench_function("10k_entries_10_checkpoints", |b| {
        b.iter(|| assert!(verify_dir(data.path()).is_ok()))
    });
    group.finish();
}

criterion_group!(benches, appends, proofs, verify);
criterion_main!(benches);
