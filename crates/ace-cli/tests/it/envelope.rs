//! `ace-comms envelope …` end to end.

use serde_json::Value;

use crate::{ace, write};

const SUBJECT: &str = "ace.comms.agent.planner.a1.evt.task_done.v1";

fn new_envelope(extra: &[&str]) -> Value {
    let mut args = vec!["envelope", "new", "--subject", SUBJECT];
    args.extend_from_slice(extra);
    let run = ace(&args, b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn given_no_options_when_an_envelope_is_made_then_it_has_the_contract_defaults() {
    let envelope = new_envelope(&[]);
    assert_eq!(envelope["spec"], "gme/1");
    assert_eq!(envelope["kind"], "event");
    assert_eq!(envelope["priority"], "P2");
    assert_eq!(envelope["qos"], "standard");
    assert_eq!(envelope["subject"], SUBJECT);
    let id = envelope["id"].as_str().unwrap();
    assert_eq!(&id[14..15], "7", "a UUIDv7 id: {id}");
}

#[test]
fn given_every_option_when_an_envelope_is_made_then_each_lands_in_its_field() {
    let envelope = new_envelope(&[
        "--kind",
        "command",
        "--name",
        "TASK_DONE",
        "--domain",
        "planning",
        "--source-type",
        "agent",
        "--source-id",
        "a1",
        "--payload",
        r#"{"task":"t1"}"#,
        "--priority",
        "P0",
        "--qos",
        "realtime",
        "--label",
        "confidential",
        "--idempotency-key",
        "k1",
        "--partition-key",
        "p1",
        "--correlation-id",
        "c1",
        "--ttl-ms",
        "5000",
        "--trace",
        "--header",
        "tenant=acme",
        "--compact",
    ]);
    assert_eq!(envelope["kind"], "command");
    assert_eq!(envelope["name"], "TASK_DONE");
    assert_eq!(envelope["domain"], "planning");
    assert_eq!(envelope["source"]["type"], "agent");
    assert_eq!(envelope["source"]["id"], "a1");
    assert_eq!(envelope["payload"]["task"], "t1");
    assert_eq!(envelope["priority"], "P0");
    assert_eq!(envelope["qos"], "realtime");
    assert_eq!(envelope["governance"]["label"], "confidential");
    assert_eq!(envelope["idempotency_key"], "k1");
    assert_eq!(envelope["partition_key"], "p1");
    assert_eq!(envelope["correlation_id"], "c1");
    assert_eq!(envelope["ttl_ms"], 5000);
    assert!(
        envelope["trace"]["traceparent"]
            .as_str()
            .unwrap()
            .starts_with("00-")
    );
    assert_eq!(envelope["headers"]["tenant"], "acme");
}

#[test]
fn given_bad_options_when_an_envelope_is_made_then_exit_2_naming_the_problem() {
    let run = ace(&["envelope", "new", "--subject", "ace.comms.>"], b"");
    assert_eq!(run.code, 2, "a wildcard is not a publish subject");
    assert!(run.stderr.contains("subject"), "{}", run.stderr);

    let run = ace(
        &["envelope", "new", "--subject", SUBJECT, "--priority", "P7"],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("P0, P1, P2, P3"), "{}", run.stderr);

    let run = ace(
        &[
            "envelope",
            "new",
            "--subject",
            SUBJECT,
            "--payload",
            "{not json",
        ],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--payload"), "{}", run.stderr);

    let run = ace(
        &[
            "envelope",
            "new",
            "--subject",
            SUBJECT,
            "--header",
            "novalue",
        ],
        b"",
    );
    assert_eq!(run.code, 2);
}

#[test]
fn given_an_envelope_when_converted_through_protobuf_and_back_then_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let original = new_envelope(&[
        "--payload",
        r#"{"n":1.5,"s":"x"}"#,
        "--partition-key",
        "p",
        "--trace",
    ]);
    let json = write(dir.path(), "in.json", &original.to_string());
    let pb = dir.path().join("out.pb");
    let run = ace(
        &[
            "envelope",
            "convert",
            &json,
            "--to",
            "protobuf",
            "--out",
            pb.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let bytes = std::fs::read(&pb).unwrap();
    assert!(!bytes.is_empty() && bytes[0] != b'{', "binary protobuf");

    let run = ace(
        &["envelope", "convert", pb.to_str().unwrap(), "--to", "json"],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let back: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(back, original);
}

#[test]
fn given_an_envelope_when_converted_to_cloudevents_and_back_then_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let original = new_envelope(&[
        "--name",
        "TASK_DONE",
        "--schema",
        "mlt.experience@1.0.0",
        "--header",
        "a=b",
    ]);
    let json = write(dir.path(), "in.json", &original.to_string());

    let run = ace(&["envelope", "convert", &json, "--to", "cloudevents"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let event: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["id"], original["id"]);
    assert_eq!(event["type"], "TASK_DONE");

    let ce = write(dir.path(), "ce.json", &run.stdout);
    let run = ace(&["envelope", "convert", &ce, "--to", "json"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let back: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(back, original);

    let binary = to_binary_mode(&json);
    let (head, _body) = binary
        .split_once("\n\n")
        .expect("headers, a blank line, the body");
    assert!(
        head.lines()
            .any(|l| l.to_ascii_lowercase().starts_with("ce-specversion: 1.0")),
        "{head}"
    );
}

/// The envelope file `json` converted to CloudEvents binary mode.
fn to_binary_mode(json: &str) -> String {
    let run = ace(
        &[
            "envelope",
            "convert",
            json,
            "--to",
            "cloudevents",
            "--binary",
        ],
        b"",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
}

#[test]
fn given_a_payload_ending_in_a_newline_when_converted_to_binary_and_back_then_its_bytes_are_exact()
{
    let dir = tempfile::tempdir().unwrap();
    let mut original = new_envelope(&[]);
    original["content_type"] = Value::from("text/plain");
    // "line one\n" in base64: the body must end in exactly one newline, the payload's own.
    original["payload"] = Value::from("bGluZSBvbmUK");
    let json = write(dir.path(), "in.json", &original.to_string());

    let binary = to_binary_mode(&json);
    let (_head, body) = binary.split_once("\n\n").expect("headers, a blank line");
    assert_eq!(body, "line one\n", "the body is the payload, nothing added");

    let run = ace(
        &["envelope", "convert", "-", "--to", "json"],
        binary.as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let back: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(back, original);
}

#[test]
fn given_garbage_when_converted_then_exit_1_with_the_reason() {
    let run = ace(
        &["envelope", "convert", "-", "--to", "json"],
        b"\xff\xfe\x00garbage",
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let run = ace(
        &["envelope", "convert", "-", "--to", "json"],
        br#"{"spec":"gme/1"}"#,
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
}

/// The 32-byte seed of the test signing key, in hex (the form `--sign-key` also reads).
const SEED_HEX: &str = "0909090909090909090909090909090909090909090909090909090909090909";

#[test]
fn given_a_sign_key_when_an_envelope_is_made_then_it_carries_pii_and_verifies_with_the_public_key()
{
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "billing.key", SEED_HEX);
    let envelope = new_envelope(&[
        "--source-type",
        "service",
        "--source-id",
        "billing",
        "--payload",
        r#"{"email":"ada@example.org"}"#,
        "--pii",
        "email",
        "--pii",
        "/customer/phone",
        "--sign-key",
        &key,
        "--key-id",
        "billing-2026",
    ]);
    assert_eq!(envelope["governance"]["pii"][1], "/customer/phone");
    assert_eq!(envelope["signature"]["key_id"], "billing-2026");
    let mut signed: ace_envelope::Envelope = serde_json::from_value(envelope).unwrap();
    let public = ace_core::parse_signing_key(SEED_HEX)
        .unwrap()
        .verifying_key();
    signed.verify(&public).expect("the signature verifies");
    signed.payload = Some(serde_json::json!({"email": "eve@example.org"}));
    assert!(signed.verify(&public).is_err(), "and covers the payload");
}

/// Runs `envelope new` on [`SUBJECT`] with `extra`, expecting a usage error (exit 2) whose
/// message holds each of `words`.
fn refused(extra: &[&str], words: &[&str]) {
    let mut args = vec!["envelope", "new", "--subject", SUBJECT];
    args.extend_from_slice(extra);
    let run = ace(&args, b"");
    assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
    for word in words {
        assert!(run.stderr.contains(word), "{extra:?}: {}", run.stderr);
    }
}

const SOURCE: [&str; 4] = ["--source-type", "service", "--source-id", "billing"];

#[test]
fn given_a_sign_key_without_source_or_key_id_when_an_envelope_is_made_then_it_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "billing.key", SEED_HEX);
    refused(&["--sign-key", &key, "--key-id", "k"], &["--source-id"]);
    refused(
        &[&SOURCE[..], &["--sign-key", &key]].concat(),
        &["--key-id"],
    );
    refused(&["--key-id", "k"], &["--sign-key"]);
}

#[test]
fn given_a_file_that_is_no_private_key_when_signing_then_it_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(
        dir.path(),
        "public.pem",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    );
    fn signing(path: &str) -> Vec<&str> {
        [&SOURCE[..], &["--sign-key", path, "--key-id", "k"]].concat()
    }
    refused(
        &signing(&key),
        &["public.pem", "not an Ed25519 private key"],
    );
    refused(
        &signing("/no/such/key"),
        &["/no/such/key", "cannot read it"],
    );
}
