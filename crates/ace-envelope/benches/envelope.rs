//! The gme/1 envelope on its hot paths: JSON encode, decode and validate, the builder,
//! CloudEvents, signing, and subject pattern matching.
//!
//! Run: `cargo bench -p ace-envelope --bench envelope -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::hint::black_box;

use ace_envelope::{Envelope, Kind, SubjectPattern};
use criterion::{Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;

fn envelope(c: &mut Criterion) {
    let env = common::gme_event();
    let json = env.to_json_vec();
    eprintln!("size gme_envelope_json: {} bytes", json.len());
    let mut group = c.benchmark_group("envelope_json");
    group.bench_function("encode", |b| b.iter(|| black_box(&env).to_json_vec()));
    group.bench_function("decode", |b| {
        b.iter(|| Envelope::from_json_slice(black_box(&json)).expect("decodes"))
    });
    group.bench_function("validate", |b| b.iter(|| black_box(&env).validate()));
    group.bench_function("decode_validate", |b| {
        b.iter(|| {
            Envelope::from_json_slice(black_box(&json))
                .expect("decodes")
                .validate()
        })
    });
    group.finish();

    let payload = env.payload.clone().expect("inline payload");
    c.bench_function("envelope_builder/build_validated", |b| {
        b.iter(|| {
            Envelope::builder(Kind::Event, "ace.comms.internal.service.kasmina.evt.v1")
                .name("SEED_GERMINATED")
                .payload_json(black_box(&payload).clone())
                .build()
                .expect("valid")
        })
    });

    c.bench_function("cloudevents/structured_round_trip", |b| {
        b.iter(|| {
            let bytes = ace_envelope::to_cloudevent_json(black_box(&env)).expect("encodes");
            ace_envelope::from_cloudevent_json(&bytes).expect("decodes")
        })
    });

    let key = SigningKey::from_bytes(&[7; 32]);
    let mut signed = env.clone();
    signed.sign(&key, "k1");
    c.bench_function("signature/sign", |b| {
        b.iter(|| black_box(env.clone()).sign(&key, "k1"))
    });
    let verifying = key.verifying_key();
    c.bench_function("signature/verify", |b| {
        b.iter(|| black_box(&signed).verify(&verifying).expect("verifies"))
    });

    let patterns: Vec<SubjectPattern> = [
        "ace.comms.>",
        "ace.comms.*.service.*.evt.>",
        "ace.comms.internal.agent.*.cmd.v1",
    ]
    .into_iter()
    .map(|p| SubjectPattern::new(p).expect("valid"))
    .collect();
    c.bench_function("subject/match_3_patterns", |b| {
        b.iter(|| {
            patterns
                .iter()
                .filter(|p| p.matches(black_box(&env.subject)))
                .count()
        })
    });
}

criterion_group!(benches, envelope);
criterion_main!(benches);
