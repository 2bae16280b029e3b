//! Payload validation per message with a cached validator: the `contract` step of the ingress
//! pipeline. The document is the shipped `mlt.experience` example (about 600 B of compact JSON,
//! nested context and signals, formats and patterns to check), validated against the schema
//! compiled once. Also measured: the same with `subject@version` resolution through the
//! registry, an invalid document (collecting every error), compiling from scratch, to show
//! what the cache saves, and loading every embedded contract at start.

use std::hint::black_box;

use ace_contracts::{Registry, embedded_files};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use serde_json::Value;

const MANIFEST: &str = "schemas:\n  - {subject: mlt.experience, version: 1.0.0, file: ml/ml_schemas.json, pointer: /$defs/Experience}\n";

/// The embedded documents with a one-entry manifest, so the bench depends only on the ML schemas.
fn load_registry() -> Registry {
    let files = embedded_files()
        .iter()
        .filter(|(p, _)| *p != ace_contracts::MANIFEST)
        .copied();
    Registry::from_files(files.chain([(ace_contracts::MANIFEST, MANIFEST)]))
        .expect("ML schemas load")
}

fn example() -> Value {
    let (_, text) = embedded_files()
        .iter()
        .find(|(p, _)| *p == "ml/examples/mlt.experience.json")
        .expect("the mlt.experience example is embedded");
    serde_json::from_str(text).expect("example parses")
}

fn bench(c: &mut Criterion) {
    let registry = load_registry();
    let valid = example();
    let mut invalid = valid.clone();
    invalid.as_object_mut().expect("object").remove("signals");
    let schema = registry
        .resolve("mlt.experience@1.0.0")
        .expect("registered");
    assert!(schema.is_valid(&valid) && !schema.is_valid(&invalid));
    let bytes = serde_json::to_vec(&valid).expect("serializes").len();
    let mut group = c.benchmark_group(format!("mlt.experience ({bytes} B)"));
    group.bench_function("cached validator, valid", |b| {
        b.iter(|| schema.validate(black_box(&valid)))
    });
    group.bench_function("registry.validate(subject@version), valid", |b| {
        b.iter(|| registry.validate(black_box("mlt.experience@1.0.0"), black_box(&valid)))
    });
    group.bench_function("cached validator, invalid (all errors)", |b| {
        b.iter(|| schema.validate(black_box(&invalid)))
    });
    group.bench_function("compile per message (no cache), valid", |b| {
        let reference = serde_json::json!({"$ref": "ml/ml_schemas.json#/$defs/Experience"});
        b.iter_batched(
            load_registry,
            |mut fresh| {
                let version = ace_contracts::Version::new(1, 0, 0);
                fresh
                    .register("bench.experience", version, reference.clone())
                    .expect("compiles");
                let verdict = fresh
                    .validate("bench.experience", black_box(&valid))
                    .is_ok();
                (fresh, verdict) // dropped after the measurement
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
    c.bench_function(
        "Registry::embedded() (every shipped contract compiled and checked)",
        |b| b.iter(|| Registry::embedded().expect("embedded contracts load")),
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
