//! Publish cost through the ingress pipeline, in process (`Core::publish`) and over HTTP on
//! loopback (`POST /api/v1/messages`), on a stream without fsync (`sync: never`, the pipeline's
//! and the adapter's own cost) and on a durable one (`sync: always`, one fsync per request).
//!
//! `cargo bench -p ace-server --bench publish -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use ace_bus::{StreamConfig, SyncPolicy};
use ace_core::RequestContext;
use ace_envelope::{Envelope, Kind};
use ace_server::{App, Config};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn envelope(subject: &str) -> Envelope {
    Envelope::builder(Kind::Event, subject)
        .payload_json(json!({"kpi": "latency_ms", "value": 812, "tags": ["a", "b"]}))
        .build()
        .expect("valid")
}

fn bench_publish(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::var_os("ACE_BENCH_DIR").map_or_else(
        || tempfile::tempdir().unwrap(),
        |d| tempfile::tempdir_in(d).unwrap(),
    );
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let (app, base) = runtime.block_on(async {
        let app = App::open(&config).await.unwrap();
        let ctx = RequestContext::new("bench");
        for (name, sync) in [("FAST", SyncPolicy::Never), ("DURABLE", SyncPolicy::Always)] {
            let stream = StreamConfig {
                sync,
                ..StreamConfig::new(name, &[&format!("bench.{}.>", name.to_lowercase())])
            };
            app.state().core().add_stream(&ctx, stream).await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api/v1/messages", listener.local_addr().unwrap());
        tokio::spawn(app.clone().serve(listener, std::future::pending()));
        (app, base)
    });
    let core = app.state().core().clone();
    let ctx = RequestContext::new("bench");
    let http = reqwest::Client::new();

    let mut group = c.benchmark_group("publish");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("core_sync_never", |b| {
        b.iter(|| {
            runtime
                .block_on(core.publish(&ctx, envelope("bench.fast.x")))
                .unwrap()
        });
    });
    for (name, subject) in [
        ("http_sync_never", "bench.fast.x"),
        ("http_sync_always", "bench.durable.x"),
    ] {
        let body = serde_json::to_vec(&envelope(subject)).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    // A fresh id each time, so dedup never short-cuts the append.
                    let mut env: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    env["id"] = json!(envelope(subject).id);
                    let response = http.post(&base).json(&env).send().await.unwrap();
                    assert_eq!(response.status().as_u16(), 202);
                })
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_publish);
criterion_main!(benches);
