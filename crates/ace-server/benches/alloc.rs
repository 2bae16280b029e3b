//! The allocation budget of the publish path: heap allocations and bytes per message, counted by
//! `dhat`'s global allocator, which sees every allocation (and reallocation) on every thread of
//! the process (tokio workers, the stream's writer, the ledger's writer). Counts do not depend on
//! the machine's load, so they compare across runs where timings do not.
//!
//! Workloads, each in process through `Core` (what every adapter calls), 256 B payloads:
//!
//! - `dev_publish`: `auth.mode: development`, no ledger, a stream with `sync: never`;
//! - `governed_publish`: API key, RBAC, Rego and EHI from the shipped policies, the file ledger
//!   recording an `accepted` entry per message (`ledger.sync: interval`: the same entries and
//!   writes as `always`, without waiting for an fsync per message), the same stream;
//! - `governed_publish_batch_64`: the same, 64 envelopes per `Core::publish_batch`;
//! - `governed_publish_live_1`: `governed_publish` with one live subscriber (in process) taking
//!   every message.
//!
//! Each prints (on stderr, like the other benches' reports) allocations and bytes per message
//! and the budget it is held to; the run fails (exit 1) when a workload is over its budget, so a
//! change that adds allocations to the path shows here before it shows in a profile.
//!
//! `cargo bench -p ace-server --bench alloc` (`ACE_ALLOC_PROFILE=dhat.json` to also write every
//! allocation site, with its backtrace, for DHAT's viewer)

use ace_core::{Credentials, RequestContext};
use ace_envelope::{Envelope, Kind};
use ace_server::LedgerSyncMode;
use serde_json::json;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Messages measured per workload, after as many again to warm caches and buffers.
const MESSAGES: u64 = 5_000;
/// Envelopes per `publish_batch` call in the batch workload.
const BATCH: usize = 64;

/// Allocations and bytes since the profiler started.
fn counted() -> (u64, u64) {
    let stats = dhat::HeapStats::get();
    (stats.total_blocks, stats.total_bytes)
}

fn envelope(subject: &str, pad: &str) -> Envelope {
    Envelope::builder(Kind::Event, subject)
        .payload_json(json!({ "pad": pad }))
        .build()
        .expect("valid")
}

/// One workload: its name, its budget (allocations per message) and what it measured.
struct Measured {
    name: &'static str,
    budget: u64,
    allocations: f64,
    bytes: f64,
}

#[derive(Clone, Copy)]
enum Shape {
    Single,
    Batch,
}

/// Publishes `MESSAGES` envelopes (built before counting starts) as `shape` says, once to warm
/// caches and buffers and once measured; the allocations and bytes per message of the second.
async fn measure(core: &ace_core::Core, ctx: &RequestContext, shape: Shape) -> (f64, f64) {
    round(core, ctx, shape).await;
    let (allocations, bytes) = round(core, ctx, shape).await;
    (
        allocations as f64 / MESSAGES as f64,
        bytes as f64 / MESSAGES as f64,
    )
}

/// One round of `MESSAGES` publishes; the allocations and bytes it took.
async fn round(core: &ace_core::Core, ctx: &RequestContext, shape: Shape) -> (u64, u64) {
    let subject = common::subject("never");
    let pad = "x".repeat(256);
    let envelopes: Vec<Envelope> = (0..MESSAGES).map(|_| envelope(&subject, &pad)).collect();
    let before = counted();
    match shape {
        Shape::Single => {
            for envelope in envelopes {
                core.publish(ctx, envelope).await.expect("accepted");
            }
        }
        Shape::Batch => {
            let mut rest = envelopes.into_iter();
            loop {
                let batch: Vec<Envelope> = rest.by_ref().take(BATCH).collect();
                if batch.is_empty() {
                    break;
                }
                for answer in core.publish_batch(ctx, batch).await.expect("judged") {
                    answer.expect("accepted");
                }
            }
        }
    }
    let after = counted();
    (after.0 - before.0, after.1 - before.1)
}

async fn run() -> Vec<Measured> {
    let root = std::env::var_os("ACE_BENCH_DIR").map_or_else(
        || tempfile::tempdir().unwrap(),
        |d| tempfile::tempdir_in(d).unwrap(),
    );
    let dir = |name: &str| {
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    };
    let mut governed_ctx = RequestContext::new("bench");
    governed_ctx.credentials = Credentials::ApiKey(common::API_KEY.to_owned());
    let mut out = Vec::new();

    let dev = common::open(&dir("dev"), false, None).await;
    let (allocations, bytes) = measure(
        dev.state().core(),
        &RequestContext::new("bench"),
        Shape::Single,
    )
    .await;
    out.push(Measured {
        name: "dev_publish",
        budget: 40,
        allocations,
        bytes,
    });

    let governed = common::open(&dir("governed"), true, Some(LedgerSyncMode::Interval)).await;
    let core = governed.state().core();
    for (name, budget, shape) in [
        ("governed_publish", 80, Shape::Single),
        ("governed_publish_batch_64", 36, Shape::Batch),
    ] {
        let (allocations, bytes) = measure(core, &governed_ctx, shape).await;
        out.push(Measured {
            name,
            budget,
            allocations,
            bytes,
        });
    }

    let mut live = core
        .subscribe(&governed_ctx, &common::subject("never"), None)
        .await
        .expect("subscribed");
    let drain = tokio::spawn(async move {
        let mut taken = 0_u64;
        while taken < 2 * MESSAGES {
            if live.next().await.is_none() {
                break;
            }
            taken += 1;
        }
        taken
    });
    let (allocations, bytes) = measure(core, &governed_ctx, Shape::Single).await;
    let taken = drain.await.expect("the subscriber");
    assert_eq!(taken, 2 * MESSAGES, "the subscriber took every message");
    out.push(Measured {
        name: "governed_publish_live_1",
        budget: 80,
        allocations,
        bytes,
    });
    out
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--list` from other tooling is not ours.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    // With `ACE_ALLOC_PROFILE=FILE`, the whole run's allocation sites go to FILE (open it in
    // DHAT's viewer, `dh_view.html`) to find where a budget went.
    let _profiler = match std::env::var_os("ACE_ALLOC_PROFILE") {
        Some(file) => dhat::Profiler::builder().file_name(file).build(),
        None => dhat::Profiler::builder().testing().build(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let measured = runtime.block_on(run());
    let mut over = 0;
    eprintln!(
        "{:<28} {:>12} {:>12} {:>8}",
        "workload", "allocs/msg", "bytes/msg", "budget"
    );
    for m in &measured {
        let verdict = if m.allocations <= m.budget as f64 {
            ""
        } else {
            over += 1;
            "  OVER BUDGET"
        };
        eprintln!(
            "{:<28} {:>12.1} {:>12.0} {:>8}{verdict}",
            m.name, m.allocations, m.bytes, m.budget
        );
    }
    if over > 0 {
        std::process::exit(1);
    }
}
