//! Cost of reading the reloadable state on the authorization hot path: the same warm decision
//! (a human publishing on a matrix subject, RBAC → Rego → EHI over the embedded policies) made
//! by the `PolicyEngine` directly and through `PolicyAuthorizer`, whose engine sits behind the
//! slot a reload swaps; the difference is what the slot costs per request. Also the decision
//! while another thread replaces the engine in a loop (readers never wait on the reload's work,
//! only on the pointer swap).
//!
//! `cargo bench -p ace-core --bench auth -- --warm-up-time 1 --measurement-time 3`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ace_core::{Action, Authorizer, PolicyAuthorizer, Principal};
use ace_envelope::{Envelope, Kind, SourceType};
use ace_policy::{Action as PolicyAction, EhiConfig, PolicyEngine};
use criterion::{Criterion, criterion_group, criterion_main};

const SUBJECT: &str = "ace.comms.matrix.room.ops.evt.v1";

fn engine() -> Arc<PolicyEngine> {
    Arc::new(PolicyEngine::embedded(EhiConfig::default()).expect("embedded policies"))
}

fn bench_auth(c: &mut Criterion) {
    let human = Principal::new("h", SourceType::Human, vec!["human".into()], 1).unwrap();
    let envelope = Envelope::builder(Kind::Event, SUBJECT).build_unchecked();
    let direct = engine();
    let authorizer = PolicyAuthorizer::new(engine());
    let mut group = c.benchmark_group("authorize_publish");
    group.bench_function("engine_direct", |b| {
        b.iter(|| direct.authorize(&human, PolicyAction::Publish, SUBJECT, Some(&envelope)));
    });
    group.bench_function("through_reload_slot", |b| {
        b.iter(|| authorizer.authorize(&human, Action::Publish(SUBJECT), Some(&envelope)));
    });
    let stop = Arc::new(AtomicBool::new(false));
    let reloader = {
        let (authorizer, stop, spare) = (authorizer.clone(), stop.clone(), engine());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                authorizer.replace(spare.clone());
            }
        })
    };
    group.bench_function("while_another_thread_reloads", |b| {
        b.iter(|| authorizer.authorize(&human, Action::Publish(SUBJECT), Some(&envelope)));
    });
    stop.store(true, Ordering::Relaxed);
    reloader.join().unwrap();
    group.finish();
}

criterion_group!(benches, bench_auth);
criterion_main!(benches);
