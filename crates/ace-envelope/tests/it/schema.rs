//! The JSON Schemas of `contracts/comms/` against the Rust types: what the builder makes is
//! valid for both, and every hand-made bad envelope is refused by both.

use ace_envelope::{
    Clock, Envelope, ErrorBody, ErrorCode, Governance, Kind, Label, ManualClock, PayloadRef,
    Priority, Qos, SourceType,
};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

const ENVELOPE_SCHEMA: &str = include_str!("../../../../contracts/comms/envelope.schema.json");
const ERRORS_SCHEMA: &str = include_str!("../../../../contracts/comms/errors.schema.json");
const RPC_SCHEMA: &str = include_str!("../../../../contracts/comms/rpc.schema.json");

fn validator(text: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(text).expect("schema is JSON");
    jsonschema::validator_for(&schema).expect("schema compiles")
}

fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Several varieties of builder output: minimal, every field set, binary, by reference,
/// reply, error reply, signed.
fn builder_outputs() -> Vec<Envelope> {
    let clock = ManualClock::fixed();
    let minimal = Envelope::builder(Kind::Event, "a.b")
        .clock(&clock)
        .payload_json(json!({}))
        .build()
        .expect("valid");
    let full = Envelope::builder(Kind::Command, "ace.comms.mcp.agent.chuck.cmd.tool_call.v2")
        .clock(&clock)
        .domain("intelligence")
        .name("INTEL_INFER_REQUESTED")
        .source(SourceType::Agent, "chuck")
        .schema("intel.request@2.1.0-rc.1+b7")
        .payload_json(json!({"q": "why", "n": [1, 2.5, -3], "nested": {"ok": true}}))
        .priority(Priority::P0)
        .qos(Qos::Realtime)
        .idempotency_key("idem-1")
        .correlation_id("corr-1")
        .causation_id("cause-1")
        .partition_key("chuck")
        .new_trace()
        .deadline(clock.now() + chrono::Duration::seconds(30))
        .not_before(clock.now() + chrono::Duration::seconds(1))
        .max_attempts(3)
        .rbac(["intel.read", "intel.write"])
        .governance(Governance {
            label: Label::Confidential,
            pii: vec!["payload.q".to_owned()],
            consent_scope: Some("research".to_owned()),
            ehi_score: Some(0.42),
            requires_approval: true,
            approval_id: Some("appr-9".to_owned()),
        })
        .header("x-tenant", "acme")
        .build()
        .expect("valid");
    let binary = Envelope::builder(Kind::Event, "a.bin")
        .clock(&clock)
        .payload_bytes("application/protobuf", &[8, 150, 1, 0, 255])
        .ttl(std::time::Duration::from_secs(60))
        .build()
        .expect("valid");
    let by_ref = Envelope::builder(Kind::Event, "a.big")
        .clock(&clock)
        .payload_ref(
            "video/mp4",
            PayloadRef {
                uri: "s3://bucket/key.mp4".to_owned(),
                sha256: "a".repeat(64),
                size: 10_000_000,
            },
        )
        .build()
        .expect("valid");
    let reply = full
        .reply_builder("ace.comms.mcp.agent.chuck.rsp.tool_call.v2")
        .payload_json(json!({"answer": 42}))
        .build()
        .expect("valid");
    let error = full
        .error_reply(
            "ace.comms.mcp.agent.chuck.err.tool_call.v2",
            &ErrorBody::new(ErrorCode::Timeout, "tool did not answer"),
        )
        .build()
        .expect("valid");
    let mut signed = full.clone();
    signed.sign(&SigningKey::from_bytes(&[3; 32]), "key-1");
    vec![minimal, full, binary, by_ref, reply, error, signed]
}

#[test]
fn given_builder_outputs_when_checked_against_the_envelope_schema_then_all_are_valid() {
    let schema = validator(ENVELOPE_SCHEMA);
    for env in builder_outputs() {
        let instance = serde_json::to_value(&env).expect("serialises");
        assert_eq!(
            schema_errors(&schema, &instance),
            Vec::<String>::new(),
            "{instance:#}"
        );
        assert!(env.validate().is_empty());
    }
}

#[test]
fn given_builder_outputs_when_checked_against_the_rpc_schema_then_all_are_valid() {
    let rpc = validator(RPC_SCHEMA);
    for env in builder_outputs() {
        let instance = serde_json::to_value(&env).expect("serialises");
        assert_eq!(
            schema_errors(&rpc, &instance),
            Vec::<String>::new(),
            "{instance:#}"
        );
    }
}

#[test]
fn given_an_uncorrelated_reply_when_checked_against_the_rpc_schema_then_it_is_refused() {
    let rpc = validator(RPC_SCHEMA);
    let reply = Envelope::builder(Kind::Reply, "a.rsp")
        .payload_json(json!({}))
        .build()
        .expect("valid envelope");
    assert!(!rpc.is_valid(&serde_json::to_value(&reply).expect("serialises")));
}

type Mutation = fn(&mut serde_json::Map<String, Value>);

/// `(what, mutation, the path Envelope::validate names, or None when serde refuses the shape)`.
fn bad_envelopes() -> Vec<(&'static str, Mutation, Option<&'static str>)> {
    vec![
        (
            "wrong spec",
            |m| {
                m.insert("spec".into(), json!("gme/2"));
            },
            Some("/spec"),
        ),
        (
            "nil id",
            |m| {
                m.insert("id".into(), json!("00000000-0000-0000-0000-000000000000"));
            },
            Some("/id"),
        ),
        (
            "max id",
            |m| {
                m.insert("id".into(), json!("ffffffff-ffff-ffff-ffff-ffffffffffff"));
            },
            Some("/id"),
        ),
        (
            "id of the NCS variant",
            |m| {
                m.insert("id".into(), json!("6f1c2a3e-1b2c-4d3e-7f4a-1234567890ab"));
            },
            Some("/id"),
        ),
        (
            "id of version 9",
            |m| {
                m.insert("id".into(), json!("6f1c2a3e-1b2c-9d3e-8f4a-1234567890ab"));
            },
            Some("/id"),
        ),
        (
            "empty subject token",
            |m| {
                m.insert("subject".into(), json!("a..b"));
            },
            Some("/subject"),
        ),
        (
            "wildcard publish subject",
            |m| {
                m.insert("subject".into(), json!("a.*"));
            },
            Some("/subject"),
        ),
        (
            "subject with a space",
            |m| {
                m.insert("subject".into(), json!("a b"));
            },
            Some("/subject"),
        ),
        (
            "unknown kind",
            |m| {
                m.insert("kind".into(), json!("notice"));
            },
            None,
        ),
        (
            "no payload at all",
            |m| {
                m.remove("payload");
            },
            Some("/payload"),
        ),
        (
            "payload and payload_ref",
            |m| {
                m.insert(
                    "payload_ref".into(),
                    json!({"uri": "s3://b/k", "sha256": "a".repeat(64), "size": 1}),
                );
            },
            Some("/payload"),
        ),
        (
            "null payload",
            |m| {
                m.insert("payload".into(), Value::Null);
            },
            Some("/payload"),
        ),
        (
            "object payload for binary content",
            |m| {
                m.insert("content_type".into(), json!("application/octet-stream"));
            },
            Some("/payload"),
        ),
        (
            "bad base64 for binary content",
            |m| {
                m.insert("content_type".into(), json!("application/octet-stream"));
                m.insert("payload".into(), json!("not base64!"));
            },
            Some("/payload"),
        ),
        (
            "content type without subtype",
            |m| {
                m.insert("content_type".into(), json!("json"));
            },
            Some("/content_type"),
        ),
        (
            "schema without patch",
            |m| {
                m.insert("schema".into(), json!("orders@1.0"));
            },
            Some("/schema"),
        ),
        (
            "schema with leading zero",
            |m| {
                m.insert("schema".into(), json!("orders@01.0.0"));
            },
            Some("/schema"),
        ),
        (
            "ttl_ms and deadline",
            |m| {
                m.insert("ttl_ms".into(), json!(1000));
                m.insert("deadline".into(), json!("2026-01-01T00:01:00Z"));
            },
            Some("/deadline"),
        ),
        (
            "zero ttl",
            |m| {
                m.insert("ttl_ms".into(), json!(0));
            },
            Some("/ttl_ms"),
        ),
        (
            "hops past the limit",
            |m| {
                m.insert("hops".into(), json!(33));
            },
            Some("/hops"),
        ),
        (
            "negative hops",
            |m| {
                m.insert("hops".into(), json!(-1));
            },
            None,
        ),
        (
            "zero max_attempts",
            |m| {
                m.insert("max_attempts".into(), json!(0));
            },
            Some("/max_attempts"),
        ),
        (
            "ehi_score above 1",
            |m| {
                m.insert("governance".into(), json!({"ehi_score": 1.5}));
            },
            Some("/governance/ehi_score"),
        ),
        (
            "ehi_score below 0",
            |m| {
                m.insert("governance".into(), json!({"ehi_score": -0.1}));
            },
            Some("/governance/ehi_score"),
        ),
        (
            "unknown label",
            |m| {
                m.insert("governance".into(), json!({"label": "restricted"}));
            },
            None,
        ),
        (
            "empty pii entry",
            |m| {
                m.insert("governance".into(), json!({"pii": [""]}));
            },
            Some("/governance/pii/0"),
        ),
        (
            "malformed traceparent",
            |m| {
                m.insert("trace".into(), json!({"traceparent": "00-xyz-01"}));
            },
            Some("/trace/traceparent"),
        ),
        (
            "all-zero trace id",
            |m| {
                m.insert("trace".into(), json!({"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}));
            },
            Some("/trace/traceparent"),
        ),
        (
            "upper-case traceparent",
            |m| {
                m.insert("trace".into(), json!({"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"}));
            },
            Some("/trace/traceparent"),
        ),
        (
            "payload_ref with bad sha256",
            |m| {
                m.remove("payload");
                m.insert(
                    "payload_ref".into(),
                    json!({"uri": "s3://b/k", "sha256": "XYZ", "size": 1}),
                );
            },
            Some("/payload_ref/sha256"),
        ),
        (
            "payload_ref with relative uri",
            |m| {
                m.remove("payload");
                m.insert(
                    "payload_ref".into(),
                    json!({"uri": "key.mp4", "sha256": "a".repeat(64), "size": 1}),
                );
            },
            Some("/payload_ref/uri"),
        ),
        (
            "priority P4",
            |m| {
                m.insert("priority".into(), json!("P4"));
            },
            None,
        ),
        (
            "unknown qos",
            |m| {
                m.insert("qos".into(), json!("fast"));
            },
            None,
        ),
        (
            "unknown field",
            |m| {
                m.insert("colour".into(), json!("red"));
            },
            None,
        ),
        (
            "signature with another alg",
            |m| {
                m.insert(
                    "signature".into(),
                    json!({"alg": "rsa", "key_id": "k", "sig": format!("{}A==", "A".repeat(85))}),
                );
            },
            Some("/signature/alg"),
        ),
        (
            "signature of the wrong length",
            |m| {
                m.insert(
                    "signature".into(),
                    json!({"alg": "ed25519", "key_id": "k", "sig": "AAAA"}),
                );
            },
            Some("/signature/sig"),
        ),
        (
            "header key with a space",
            |m| {
                m.insert("headers".into(), json!({"bad key": "v"}));
            },
            Some("/headers/bad key"),
        ),
        (
            "empty idempotency key",
            |m| {
                m.insert("idempotency_key".into(), json!(""));
            },
            Some("/idempotency_key"),
        ),
        (
            "overlong correlation id",
            |m| {
                m.insert("correlation_id".into(), json!("c".repeat(257)));
            },
            Some("/correlation_id"),
        ),
        (
            "name with a slash",
            |m| {
                m.insert("name".into(), json!("gme/1.event"));
            },
            Some("/name"),
        ),
        (
            "empty source id",
            |m| {
                m.insert("source".into(), json!({"type": "agent", "id": ""}));
            },
            Some("/source/id"),
        ),
        (
            "unknown source type",
            |m| {
                m.insert("source".into(), json!({"type": "robot", "id": "r"}));
            },
            None,
        ),
        (
            "created_at not a time",
            |m| {
                m.insert("created_at".into(), json!("yesterday"));
            },
            None,
        ),
        (
            "no subject",
            |m| {
                m.remove("subject");
            },
            None,
        ),
        (
            "empty rbac entry",
            |m| {
                m.insert("rbac".into(), json!([""]));
            },
            Some("/rbac/0"),
        ),
    ]
}

/// The valid envelope the mutation tables start from.
fn base_envelope() -> Envelope {
    Envelope::builder(Kind::Event, "a.b")
        .clock(&ManualClock::fixed())
        .payload_json(json!({"k": 1}))
        .build()
        .expect("valid")
}

#[test]
fn given_ids_of_every_rfc_9562_version_when_checked_then_schema_and_validate_both_accept_them() {
    let schema = validator(ENVELOPE_SCHEMA);
    let good = base_envelope();
    for id in [
        "c232ab00-9414-11ec-b3c8-9f6bdeced846",
        "5df41881-3aed-3515-88a7-2f4a814cf09e",
        "919108f7-52d1-4320-9bac-f847db4148a8",
        "2ed6657d-e927-568b-95e1-2665a8aea6a2",
        "1ec9414c-232a-6b00-b3c8-9f6bdeced846",
        "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0",
    ] {
        let mut env = good.clone();
        env.id = id.parse().expect("a UUID");
        let instance = serde_json::to_value(&env).expect("serialises");
        assert_eq!(
            schema_errors(&schema, &instance),
            Vec::<String>::new(),
            "{id}"
        );
        assert_eq!(env.validate(), vec![], "{id}");
    }
}

#[test]
fn given_hand_made_bad_envelopes_when_checked_then_schema_and_validate_both_refuse_each() {
    let schema = validator(ENVELOPE_SCHEMA);
    let good = base_envelope();
    let Value::Object(base) = serde_json::to_value(&good).expect("serialises") else {
        panic!("an envelope serialises to an object");
    };
    assert!(
        schema.is_valid(&Value::Object(base.clone())),
        "the base envelope is valid"
    );
    for (what, mutate, expected_path) in bad_envelopes() {
        let mut map = base.clone();
        mutate(&mut map);
        let instance = Value::Object(map);
        assert!(
            !schema.is_valid(&instance),
            "schema accepted: {what}: {instance}"
        );
        let parsed = serde_json::from_value::<Envelope>(instance);
        match (parsed, expected_path) {
            (Err(_), None) => {}
            (Ok(env), Some(path)) => {
                let paths: Vec<String> = env.validate().into_iter().map(|v| v.path).collect();
                assert!(
                    paths.iter().any(|p| p == path),
                    "{what}: expected {path}, got {paths:?}"
                );
            }
            (Ok(env), None) => panic!("{what}: serde accepted it: {env:?} ({:?})", env.validate()),
            (Err(e), Some(path)) => {
                panic!("{what}: expected a violation at {path}, serde refused: {e}")
            }
        }
    }
}

#[test]
fn given_the_errors_schema_when_read_then_it_lists_exactly_the_rust_error_codes() {
    let schema: Value = serde_json::from_str(ERRORS_SCHEMA).expect("JSON");
    let listed: Vec<(String, u64)> = schema["$defs"]["code"]["oneOf"]
        .as_array()
        .expect("oneOf list")
        .iter()
        .map(|c| {
            (
                c["const"].as_str().expect("const").to_owned(),
                c["x-http-status"].as_u64().expect("status"),
            )
        })
        .collect();
    let rust: Vec<(String, u64)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), u64::from(c.http_status())))
        .collect();
    assert_eq!(listed, rust);
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
    }
}

#[test]
fn given_error_bodies_when_checked_against_the_errors_schema_then_they_are_valid() {
    let schema = validator(ERRORS_SCHEMA);
    let invalid = Envelope::builder(Kind::Event, "a..b")
        .build()
        .expect_err("invalid");
    for body in [
        ErrorBody::new(ErrorCode::Backpressure, "stream orders is full"),
        ErrorBody::from(&invalid),
    ] {
        let value = serde_json::to_value(&body).expect("serialises");
        assert_eq!(schema_errors(&schema, &value), Vec::<String>::new());
        let back: ErrorBody = serde_json::from_value(value).expect("deserialises");
        assert_eq!(back, body);
    }
    let wrong = json!({"error": {"code": "NOT_A_CODE", "message": "x"}});
    assert!(!schema.is_valid(&wrong));
    assert!(serde_json::from_value::<ErrorBody>(wrong).is_err());
}

/// Values that break, or happen to satisfy, the rules of many fields.
fn odd_value() -> impl proptest::strategy::Strategy<Value = Value> {
    proptest::sample::select(vec![
        json!(""),
        json!("a"),
        json!("a.b"),
        json!("a..b"),
        json!("a.*"),
        json!("gme/1"),
        json!("P1"),
        json!("event"),
        json!("x y"),
        json!("application/json"),
        json!("text/plain"),
        json!("AAAA"),
        json!("orders@1.0.0"),
        json!("c".repeat(300)),
        json!("2026-01-01T00:00:00Z"),
        json!(0),
        json!(1),
        json!(-1),
        json!(32),
        json!(33),
        json!(1.5),
        json!(true),
        Value::Null,
        json!({}),
        json!([]),
        json!(["a"]),
        json!([""]),
        json!({"type": "agent", "id": "x"}),
        json!({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}),
        json!({"ehi_score": 2}),
        json!({"label": "secret"}),
        json!({"k": "v"}),
        json!({"bad key": "v"}),
    ])
}

const FIELDS: &[&str] = &[
    "spec",
    "id",
    "kind",
    "subject",
    "domain",
    "name",
    "source",
    "schema",
    "content_type",
    "payload",
    "payload_ref",
    "priority",
    "qos",
    "idempotency_key",
    "correlation_id",
    "causation_id",
    "partition_key",
    "trace",
    "hops",
    "created_at",
    "ttl_ms",
    "deadline",
    "not_before",
    "attempt",
    "max_attempts",
    "rbac",
    "governance",
    "signature",
    "headers",
    "unknown",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// The schema and the Rust side (serde shape + `validate`) agree on every mutated envelope:
    /// the schema is exact to the Rust type, not merely stricter or looser.
    #[test]
    fn schema_and_rust_agree_on_mutated_envelopes(
        env in crate::roundtrip::envelope(),
        field in proptest::sample::select(FIELDS),
        value in proptest::option::of(odd_value()),
    ) {
        let Value::Object(mut map) = serde_json::to_value(&env).expect("serialises") else {
            panic!("an envelope serialises to an object");
        };
        match value {
            Some(value) => { map.insert(field.to_owned(), value); }
            None => { map.remove(field); }
        }
        let instance = Value::Object(map);
        let by_schema = schema().is_valid(&instance);
        let by_rust = serde_json::from_value::<Envelope>(instance.clone())
            .map(|e| e.validate())
            .map_err(|e| e.to_string());
        let rust_ok = matches!(&by_rust, Ok(v) if v.is_empty());
        proptest::prop_assert_eq!(by_schema, rust_ok, "{} -> rust {:?}", instance, by_rust);
    }
}

fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| validator(ENVELOPE_SCHEMA))
}
