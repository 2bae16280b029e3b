//! What governance costs a publisher: end-to-end HTTP publishes (`POST /api/v1/messages` on
//! loopback, in process) against two servers started side by side in the same run —
//!
//! - **off**: `auth.mode: development` (every caller the development principal, RBAC and Rego
//!   off; EHI still scores every message, as development mode does) and `ledger.enabled: false`
//!   (nothing recorded);
//! - **on**: `auth.mode: enforced` with an API key (`X-ACE-API-Key`, SHA-256 store), RBAC, Rego
//!   and EHI from the shipped policies, and the file ledger recording an `accepted` entry per
//!   message (writer thread, group commit, one fdatasync per batch, checkpoints when due);
//!
//! - **policy**: `on` without the ledger, to tell the two costs apart;
//! - **on_interval**: `on` with `ledger.sync: interval` (100 ms, the default interval): each
//!   group commit is written and answered at once, fdatasync'ed once 100 ms have passed since
//!   the last sync and before every checkpoint — the operator's bounded-loss choice;
//!
//! with 1 and with 32 concurrent publishers (each a closed loop: publish, await the 202,
//! publish again), on a stream with `sync: never` and one with `sync: always`.
//!
//! `cargo bench -p ace-server --bench governance -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;
use std::time::{Duration, Instant};

use ace_envelope::{Envelope, Kind};
use ace_server::LedgerSyncMode;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

mod common;

use common::{API_KEY, subject};

fn body(subject: &str) -> Vec<u8> {
    let envelope = Envelope::builder(Kind::Event, subject)
        .payload_json(json!({"kpi": "latency_ms", "value": 812, "tags": ["a", "b"]}))
        .build()
        .expect("valid");
    serde_json::to_vec(&envelope).expect("serializes")
}

/// A server over a fresh directory (see [`common::open`]); its `/api/v1/messages` URL.
async fn start(dir: &std::path::Path, governed: bool, ledger: Option<LedgerSyncMode>) -> String {
    let app = common::open(dir, governed, ledger).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/v1/messages", listener.local_addr().unwrap());
    tokio::spawn(app.serve(listener, std::future::pending()));
    url
}

/// `publishers` closed loops of `per_publisher` publishes each; the wall time of all.
async fn run(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    subject: &str,
    publishers: u64,
    per_publisher: u64,
) -> Duration {
    let started = Instant::now();
    let loops = (0..publishers).map(|_| {
        let (http, url, subject) = (http.clone(), url.to_owned(), subject.to_owned());
        let key = key.map(str::to_owned);
        tokio::spawn(async move {
            for _ in 0..per_publisher {
                let mut request = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body(&subject));
                if let Some(key) = &key {
                    request = request.header("X-ACE-API-Key", key);
                }
                let response = request.send().await.expect("sent");
                assert_eq!(
                    response.status().as_u16(),
                    202,
                    "{:?}",
                    response.text().await
                );
            }
        })
    });
    for task in loops.collect::<Vec<_>>() {
        task.await.expect("publisher");
    }
    started.elapsed()
}

fn bench_governance(c: &mut Criterion) {
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
    );
    let root = std::env::var_os("ACE_BENCH_DIR").map_or_else(
        || tempfile::tempdir().unwrap(),
        |d| tempfile::tempdir_in(d).unwrap(),
    );
    let (off, policy, on, on_interval) = runtime.block_on(async {
        let dir = |name: &str| {
            let dir = root.path().join(name);
            std::fs::create_dir_all(&dir).unwrap();
            dir
        };
        let off = start(&dir("off"), false, None).await;
        let policy = start(&dir("policy"), true, None).await;
        let on = start(&dir("on"), true, Some(LedgerSyncMode::Always)).await;
        let interval = Some(LedgerSyncMode::Interval);
        let on_interval = start(&dir("on_interval"), true, interval).await;
        (off, policy, on, on_interval)
    });
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    for sync in ["never", "always"] {
        for publishers in [1_u64, 32] {
            let mut group = c.benchmark_group(format!("governance/sync_{sync}/{publishers}_pub"));
            group.throughput(Throughput::Elements(publishers));
            group.sample_size(10);
            let modes = [
                ("off", &off, None),
                ("policy", &policy, Some(API_KEY)),
                ("on", &on, Some(API_KEY)),
                ("on_interval", &on_interval, Some(API_KEY)),
            ];
            for (mode, url, key) in modes {
                let subject = subject(sync);
                group.bench_function(mode, |b| {
                    b.iter_custom(|iters| {
                        runtime.block_on(run(&http, url, key, &subject, publishers, iters))
                    });
                });
            }
            group.finish();
        }
    }
}

criterion_group!(benches, bench_governance);
criterion_main!(benches);
