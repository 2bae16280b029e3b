//! Routing cost with 1,000 workflows loaded: an event no workflow names (the common case on a
//! busy bus, which must stay a small fraction of a publish) and an event one workflow names,
//! judged by a comparison filter that passes, its decision journaled in memory.
//!
//! `cargo bench -p ace-workflows --bench route`

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;

use ace_workflows::{Event, Registry, Router, State, Stats};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;

fn thousand() -> String {
    let mut text = String::from("workflows:\n");
    for i in 0..1_000 {
        // one in ten by glob, the rest by exact name
        let event = if i % 10 == 0 {
            format!("family{i}.*")
        } else {
            format!("bench.event_{i}")
        };
        write!(
            text,
            "  - name: wf_{i}\n    trigger:\n      event: \"{event}\"\n      filters:\n        - {{ field: payload.severity, op: eq, value: CRITICAL }}\n    actions: [ {{ name: a, kernel: k.h }} ]\n"
        )
        .unwrap();
    }
    text
}

fn event(id: u64, name: &str) -> Event {
    Event {
        id: id.to_string(),
        name: name.to_owned(),
        subject: "ace.comms.internal.kernel.k.evt.e.v1".to_owned(),
        domain: None,
        source: None,
        hops: 0,
        correlation_id: None,
        payload: json!({"severity": "CRITICAL"}),
    }
}

fn route(c: &mut Criterion) {
    let text = thousand();
    let state = Arc::new(State::memory());
    let (registry, report) =
        Registry::from_texts(&[("bench.yaml", &text)], Arc::clone(&state)).unwrap();
    assert_eq!(report.workflows, 1_000);
    let router = Router::new(Arc::new(registry), state, Arc::new(Stats::default()));
    let unmatched = event(0, "kpi.metric_updated");
    c.bench_function("route/1000_workflows/unmatched", |b| {
        b.iter(|| black_box(router.route(black_box(&unmatched), 0).unwrap()))
    });
    let mut id = 0;
    c.bench_function("route/1000_workflows/one_match", |b| {
        b.iter(|| {
            id += 1;
            black_box(router.route(&event(id, "bench.event_501"), 0).unwrap())
        })
    });
}

criterion_group!(benches, route);
criterion_main!(benches);
