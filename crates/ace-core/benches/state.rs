//! Cost of the state operations in process: a session write through `Core::put_session` kept in
//! memory and in redb (one durable transaction, so one fsync, per write), a session read from
//! redb, and a heartbeat refreshing a present agent (no event: it is already online).
//!
//! `cargo bench -p ace-core --bench state -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;

use ace_bus::{EmbeddedBus, EmbeddedConfig};
use ace_contracts::Registry;
use ace_core::{
    Core, CoreLimits, Heartbeat, Hooks, MemorySessionStore, Precondition, RedbSessionStore,
    RequestContext, SessionStore,
};
use ace_envelope::SystemClock;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn core(dir: &std::path::Path, store: Arc<dyn SessionStore>) -> Core {
    let bus = EmbeddedBus::open(EmbeddedConfig::new(dir.join("bus"))).expect("bus opens");
    Core::new(
        Arc::new(bus),
        Arc::new(Registry::embedded().expect("contracts load")),
        Arc::new(SystemClock),
        Hooks::development(),
        CoreLimits::default(),
    )
    .with_sessions(store, 256 * 1024)
}

fn bench_state(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ctx = RequestContext::new("bench");
    let data = json!({"turn": 12, "summary": "x".repeat(512), "tags": ["a", "b"]});
    let redb = Arc::new(RedbSessionStore::open(&dir.path().join("sessions.redb")).unwrap());
    for (name, store) in [
        (
            "memory",
            Arc::new(MemorySessionStore::default()) as Arc<dyn SessionStore>,
        ),
        ("redb", redb as Arc<dyn SessionStore>),
    ] {
        let core = core(&dir.path().join(name), store);
        let mut version = runtime
            .block_on(core.put_session(&ctx, "s", data.clone(), Precondition::None))
            .unwrap()
            .version;
        c.bench_function(&format!("session_put_{name}"), |b| {
            b.iter(|| {
                let written = runtime
                    .block_on(core.put_session(
                        &ctx,
                        "s",
                        data.clone(),
                        Precondition::Version(vec![version]),
                    ))
                    .unwrap();
                version = written.version;
            });
        });
        c.bench_function(&format!("session_get_{name}"), |b| {
            b.iter(|| runtime.block_on(core.session(&ctx, "s")).unwrap());
        });
        if name == "memory" {
            let beat = Heartbeat {
                capabilities: vec!["summarize".into()],
                ..Heartbeat::default()
            };
            runtime
                .block_on(core.heartbeat(&ctx, "a1", beat.clone()))
                .unwrap();
            c.bench_function("heartbeat_refresh", |b| {
                b.iter(|| {
                    runtime
                        .block_on(core.heartbeat(&ctx, "a1", beat.clone()))
                        .unwrap()
                });
            });
        }
    }
}

criterion_group!(benches, bench_state);
criterion_main!(benches);
