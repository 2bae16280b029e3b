//! The four Leyline targets, measured as encode + decode of the message each describes
//! (stricter than a "serialization" target, which is the encode alone): encoded
//! sizes are printed to stderr once at start.
//!
//! Run: `cargo bench -p ace-envelope --bench leyline -- --warm-up-time 1 --measurement-time 3`

mod common;

use std::hint::black_box;

use ace_envelope::leyline as pb;
use criterion::{Criterion, criterion_group, criterion_main};
use prost::Message;

fn encode_decode<M: Message + Default>(c: &mut Criterion, name: &str, message: &M) {
    eprintln!("size {name}: {} bytes", message.encoded_len());
    let mut group = c.benchmark_group(name);
    group.bench_function("encode", |b| b.iter(|| black_box(message).encode_to_vec()));
    let bytes = message.encode_to_vec();
    group.bench_function("decode", |b| {
        b.iter(|| M::decode(black_box(bytes.as_slice())).expect("decodes"))
    });
    group.bench_function("encode_decode", |b| {
        b.iter(|| M::decode(black_box(message).encode_to_vec().as_slice()).expect("decodes"))
    });
    group.finish();
}

fn leyline(c: &mut Criterion) {
    encode_decode(
        c,
        "system_state_packet_10_seeds_5_metrics",
        &common::system_state_packet(),
    );
    encode_decode(c, "adaptation_command", &common::adaptation_command());
    encode_decode(
        c,
        "structural_pruning_request_full_stats",
        &common::structural_pruning_request(),
    );

    // "EventEnvelope wrapping, 200-byte payload": build the envelope around the payload,
    // encode it, decode it.
    let template = common::event_envelope();
    eprintln!("size event_envelope_200b: {} bytes", template.encoded_len());
    let payload = vec![0xABu8; 200];
    c.bench_function("event_envelope_200b/wrap_encode", |b| {
        b.iter(|| {
            let envelope = pb::EventEnvelope {
                payload: black_box(&payload).clone(),
                ..template.clone()
            };
            envelope.encode_to_vec()
        })
    });
    c.bench_function("event_envelope_200b/wrap_encode_decode", |b| {
        b.iter(|| {
            let envelope = pb::EventEnvelope {
                payload: black_box(&payload).clone(),
                ..template.clone()
            };
            pb::EventEnvelope::decode(envelope.encode_to_vec().as_slice()).expect("decodes")
        })
    });

    // The same for the gme/1 envelope in protobuf form (the Rust envelope converted both ways).
    let gme = common::gme_event();
    eprintln!(
        "size gme_envelope_protobuf: {} bytes",
        gme.to_protobuf_vec().expect("encodes").len()
    );
    c.bench_function("gme_envelope_200b/to_protobuf_and_back", |b| {
        b.iter(|| {
            let bytes = black_box(&gme).to_protobuf_vec().expect("encodes");
            ace_envelope::Envelope::from_protobuf_slice(&bytes).expect("decodes")
        })
    });
}

criterion_group!(benches, leyline);
criterion_main!(benches);
