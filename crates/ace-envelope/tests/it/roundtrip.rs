//! Lossless views: arbitrary valid envelopes survive JSON -> protobuf -> JSON and
//! JSON -> CloudEvents (structured and binary) -> JSON unchanged.

use std::collections::BTreeMap;

use ace_envelope::{
    Envelope, Governance, Kind, Label, PayloadRef, Priority, Qos, Signature, Source, SourceType,
    TraceContext, TraceParent, from_binary, from_cloudevent_json, to_binary, to_cloudevent_json,
};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::Value;

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,8}"
}

fn subject() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..6).prop_map(|t| t.join("."))
}

fn text() -> impl Strategy<Value = String> {
    // Any characters, including ones that need escaping in JSON, URIs and headers.
    "[a-zA-Z0-9 é\"%/\\\\:\u{1F600}]{1,12}"
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:-]{1,16}"
}

fn time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..4_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).expect("in range"))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `(content_type, payload, payload_ref)`: JSON inline, binary inline, or by reference.
fn content() -> impl Strategy<Value = (String, Option<Value>, Option<PayloadRef>)> {
    let b64 = base64::engine::general_purpose::STANDARD;
    prop_oneof![
        json_value()
            .prop_filter("not null", |v| !v.is_null())
            .prop_map(|v| ("application/json".to_owned(), Some(v), None)),
        prop::collection::vec(any::<u8>(), 0..64).prop_map(move |bytes| {
            (
                "application/octet-stream".to_owned(),
                Some(Value::String(b64.encode(bytes))),
                None,
            )
        }),
        ("[a-z0-9]{1,10}", "[0-9a-f]{64}", any::<u64>()).prop_map(|(key, sha256, size)| {
            let reference = PayloadRef {
                uri: format!("s3://bucket/{key}"),
                sha256,
                size,
            };
            ("video/mp4".to_owned(), None, Some(reference))
        }),
    ]
}

fn governance() -> impl Strategy<Value = Governance> {
    (
        prop::sample::select(Label::ALL.to_vec()),
        prop::collection::vec(text(), 0..3),
        prop::option::of(text()),
        prop::option::of(0.0f64..=1.0),
        any::<bool>(),
        prop::option::of(text()),
    )
        .prop_map(
            |(label, pii, consent_scope, ehi_score, requires_approval, approval_id)| Governance {
                label,
                pii,
                consent_scope,
                ehi_score,
                requires_approval,
                approval_id,
            },
        )
}

fn trace() -> impl Strategy<Value = TraceContext> {
    (
        any::<[u8; 16]>(),
        any::<[u8; 8]>(),
        any::<u8>(),
        prop::option::of("[a-z]{1,8}=[a-z0-9]{1,8}"),
    )
        .prop_filter("ids not all zero", |(t, p, _, _)| {
            t.iter().any(|b| *b != 0) && p.iter().any(|b| *b != 0)
        })
        .prop_map(|(trace_id, parent_id, flags, tracestate)| TraceContext {
            traceparent: TraceParent {
                trace_id,
                parent_id,
                flags,
            }
            .to_string(),
            tracestate,
        })
}

fn signature() -> impl Strategy<Value = Signature> {
    (text(), prop::collection::vec(any::<u8>(), 64)).prop_map(|(key_id, sig)| Signature {
        alg: "ed25519".to_owned(),
        key_id,
        sig: base64::engine::general_purpose::STANDARD.encode(sig),
    })
}

prop_compose! {
    /// Arbitrary valid envelopes.
    pub(crate) fn envelope()(
        kind in prop::sample::select(Kind::ALL.to_vec()),
        subject in subject(),
        (domain, name) in (prop::option::of(name()), prop::option::of(name())),
        source in prop::option::of((prop::sample::select(SourceType::ALL.to_vec()), text())),
        schema in prop::option::of(("[a-z.]{1,8}", 0u32..20, 0u32..20).prop_map(|(n, a, b)| format!("{n}@{a}.{b}.0"))),
        (content_type, payload, payload_ref) in content(),
        (priority, qos) in (prop::sample::select(Priority::ALL.to_vec()), prop::sample::select(Qos::ALL.to_vec())),
        ids in prop::collection::vec(prop::option::of(text()), 4),
        trace in prop::option::of(trace()),
        (hops, attempt, max_attempts) in (0u32..=32, any::<u32>(), 1u32..),
        (created_at, expiry, not_before) in (time(), prop::option::of(prop_oneof![
            (1u64..).prop_map(|ms| (Some(ms), None)),
            time().prop_map(|t| (None, Some(t))),
        ]), prop::option::of(time())),
        rbac in prop::collection::vec(text(), 0..3),
        governance in governance(),
        signature in prop::option::of(signature()),
        headers in prop::collection::btree_map(name(), text(), 0..3),
    ) -> Envelope {
        let (ttl_ms, deadline) = expiry.unwrap_or((None, None));
        Envelope {
            spec: "gme/1".to_owned(),
            id: ace_envelope::uuid_v7_at(created_at),
            kind,
            subject,
            domain,
            name,
            source: source.map(|(t, id)| Source::new(t, id)),
            schema,
            content_type,
            payload,
            payload_ref,
            priority,
            qos,
            idempotency_key: ids[0].clone(),
            correlation_id: ids[1].clone(),
            causation_id: ids[2].clone(),
            partition_key: ids[3].clone(),
            trace,
            hops,
            created_at,
            ttl_ms,
            deadline,
            not_before,
            attempt,
            max_attempts,
            rbac,
            governance,
            signature,
            headers: headers.into_iter().collect::<BTreeMap<_, _>>(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_envelopes_are_valid(env in envelope()) {
        prop_assert_eq!(env.validate(), vec![]);
    }

    #[test]
    fn json_round_trip_is_lossless(env in envelope()) {
        let back = Envelope::from_json_slice(&env.to_json_vec()).expect("decodes");
        prop_assert_eq!(back, env);
    }

    #[test]
    fn json_protobuf_json_round_trip_is_lossless(env in envelope()) {
        let from_json = Envelope::from_json_slice(&env.to_json_vec()).expect("decodes");
        let bytes = from_json.to_protobuf_vec().expect("encodes");
        let back = Envelope::from_protobuf_slice(&bytes).expect("decodes");
        prop_assert_eq!(back.to_json_vec(), env.to_json_vec());
        prop_assert_eq!(back, env);
    }

    #[test]
    fn json_cloudevents_structured_json_round_trip_is_lossless(env in envelope()) {
        let from_json = Envelope::from_json_slice(&env.to_json_vec()).expect("decodes");
        let event = to_cloudevent_json(&from_json).expect("encodes");
        let back = from_cloudevent_json(&event).expect("decodes");
        prop_assert_eq!(back, env);
    }

    #[test]
    fn json_cloudevents_binary_json_round_trip_is_lossless(env in envelope()) {
        let from_json = Envelope::from_json_slice(&env.to_json_vec()).expect("decodes");
        let (headers, body) = to_binary(&from_json).expect("encodes");
        for (name, value) in &headers {
            prop_assert!(value.bytes().all(|b| (0x20..0x7f).contains(&b)), "{name}: {value}");
        }
        let back = from_binary(headers, &body).expect("decodes");
        prop_assert_eq!(back, env);
    }

    #[test]
    fn canonical_form_is_stable_across_codecs(env in envelope()) {
        let back = Envelope::from_protobuf_slice(&env.to_protobuf_vec().expect("encodes")).expect("decodes");
        prop_assert_eq!(back.to_canonical_json(), env.to_canonical_json());
    }
}

proptest! {
    /// Decoders face untrusted input: any bytes give an envelope or an error, never a panic;
    /// whatever they accept as valid survives the canonical JSON form unchanged.
    #[test]
    fn decoders_never_panic_on_arbitrary_input(
        bytes in prop::collection::vec(any::<u8>(), 0..256),
        headers in prop::collection::vec(("(ce-)?[a-z]{1,12}", "[ -~é%]{0,24}"), 0..8),
    ) {
        let decoded = [
            Envelope::from_json_slice(&bytes),
            Envelope::from_protobuf_slice(&bytes),
            from_cloudevent_json(&bytes),
            from_binary(headers, &bytes),
        ];
        for env in decoded.into_iter().flatten().filter(|e| e.validate().is_empty()) {
            prop_assert_eq!(Envelope::from_json_slice(&env.to_json_vec()).expect("decodes"), env);
        }
    }

    /// A valid envelope's protobuf bytes, truncated anywhere, decode to an error or to an
    /// envelope, never a panic; uncut, they decode to the envelope.
    #[test]
    fn truncated_protobuf_never_panics(env in envelope(), cut in any::<prop::sample::Index>()) {
        let bytes = env.to_protobuf_vec().expect("encodes");
        let end = cut.index(bytes.len() + 1);
        let decoded = Envelope::from_protobuf_slice(&bytes[..end]);
        if end == bytes.len() {
            prop_assert_eq!(decoded.expect("whole message decodes"), env);
        }
    }
}
