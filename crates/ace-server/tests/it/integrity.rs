//! Required signatures and personal data over real HTTP: a server whose `signatures` section
//! registers a key file and requires signatures on one subject pattern, and whose `pii` section
//! redacts stored payloads or not. Every refusal is checked for its status, code and the words
//! that tell the sender what to fix; every acceptance by reading the stored message back.

use std::path::Path;

use ace_envelope::{Envelope, Kind, Source, SourceType};
use ace_server::{App, Config};
use ed25519_dalek::SigningKey;
use serde_json::{Value, json};

use crate::{EVENT_SUBJECT, Server, assert_error};

/// Subjects this pattern matches must be signed (they land in the default `ACE_EVENTS`).
const REQUIRE: &str = "ace.comms.http.*.payments.evt.>";
const PAYMENTS: &str = "ace.comms.http.service.payments.evt.refund.v1";
const EMAIL: &str = "grace.hopper@example.org";
const PHONE: &str = "+1 202 555 0100";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[21; 32])
}

/// Writes the registered public key (hex of the raw 32 bytes) and points the config at it.
fn with_signatures(config: &mut Config, dir: &Path) {
    let path = dir.join("billing.pub");
    std::fs::write(&path, hex::encode(key().verifying_key().to_bytes())).unwrap();
    config.signatures.keys.insert("billing".into(), path);
    config.signatures.require = vec![REQUIRE.to_owned()];
}

fn envelope(subject: &str) -> Envelope {
    let mut env = Envelope::builder(Kind::Event, subject)
        .payload_json(json!({
            "amount": 42,
            "email": EMAIL,
            "customer": {"phone": PHONE, "tier": "gold"}
        }))
        .build()
        .expect("valid");
    env.source = Some(Source::new(SourceType::Service, "billing"));
    env
}

fn signed_by(subject: &str, signer: &SigningKey, key_id: &str) -> Envelope {
    let mut env = envelope(subject);
    env.sign(signer, key_id);
    env
}

fn json_of(env: &Envelope) -> Value {
    serde_json::to_value(env).unwrap()
}

/// Asserts a 401 naming the pattern and the problem.
fn assert_refused(answer: &(u16, Value), problem: &str, words: &str) {
    assert_error(answer, 401, "UNAUTHENTICATED");
    let error = &answer.1["error"];
    assert_eq!(error["details"]["problem"], problem, "{error}");
    assert_eq!(error["details"]["pattern"], REQUIRE, "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains(REQUIRE), "{message}");
    assert!(message.contains(words), "{message}");
}

#[tokio::test]
async fn given_a_required_subject_when_publishing_then_only_a_registered_valid_signature_is_stored()
{
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| with_signatures(c, keys.path())).await;

    let unsigned = server
        .post("/api/v1/messages", &json_of(&envelope(PAYMENTS)))
        .await;
    assert_refused(&unsigned, "missing", "signature missing");

    let stranger = SigningKey::from_bytes(&[99; 32]);
    let unknown = signed_by(PAYMENTS, &stranger, "stranger");
    let answer = server.post("/api/v1/messages", &json_of(&unknown)).await;
    assert_refused(&answer, "unknown_key", "`stranger` is not a key registered");

    let mut tampered = json_of(&signed_by(PAYMENTS, &key(), "billing"));
    tampered["payload"]["amount"] = json!(4_200_000);
    let answer = server.post("/api/v1/messages", &tampered).await;
    assert_refused(&answer, "bad_signature", "does not verify");

    let impostor = signed_by(PAYMENTS, &stranger, "billing");
    let answer = server.post("/api/v1/messages", &json_of(&impostor)).await;
    assert_refused(&answer, "bad_signature", "does not verify");

    let good = signed_by(PAYMENTS, &key(), "billing");
    let (status, accepted) = server.post("/api/v1/messages", &json_of(&good)).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["seq"], 1, "no refused message was appended");
    let (status, stored) = server.get("/api/v1/streams/ACE_EVENTS/messages/1").await;
    assert_eq!(status, 200, "{stored}");
    let stored: Envelope = serde_json::from_value(stored["envelope"].clone()).unwrap();
    assert_eq!(
        stored.signature, good.signature,
        "stored with its signature"
    );
    stored
        .verify(&key().verifying_key())
        .expect("the stored message still verifies");
    server.stop().await;
}

#[tokio::test]
async fn given_a_subject_not_required_when_signed_then_a_registered_key_is_verified_and_an_unknown_one_passes()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| with_signatures(c, keys.path())).await;

    let unsigned = server
        .post("/api/v1/messages", &json_of(&envelope(EVENT_SUBJECT)))
        .await;
    assert_eq!(unsigned.0, 202, "{}", unsigned.1);

    let elsewhere = signed_by(EVENT_SUBJECT, &SigningKey::from_bytes(&[7; 32]), "partner");
    let answer = server.post("/api/v1/messages", &json_of(&elsewhere)).await;
    assert_eq!(
        answer.0, 202,
        "an unknown key id passes unchecked: {}",
        answer.1
    );

    let mut tampered = json_of(&signed_by(EVENT_SUBJECT, &key(), "billing"));
    tampered["payload"]["amount"] = json!(1);
    let answer = server.post("/api/v1/messages", &tampered).await;
    assert_error(&answer, 401, "UNAUTHENTICATED");
    assert_eq!(answer.1["error"]["details"]["problem"], "bad_signature");
    assert_eq!(answer.1["error"]["details"]["pattern"], Value::Null);

    let mut sourceless = envelope(EVENT_SUBJECT);
    sourceless.source = None;
    sourceless.sign(&key(), "billing");
    let answer = server.post("/api/v1/messages", &json_of(&sourceless)).await;
    assert_error(&answer, 401, "UNAUTHENTICATED");
    assert_eq!(answer.1["error"]["details"]["problem"], "no_source");
    let message = answer.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("must set `source`"), "{message}");
    server.stop().await;
}

/// Publishes `envelope` in one WebSocket `publish` frame and returns the answer frame.
async fn publish_over_ws(server: &Server, envelope: &Envelope) -> Value {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{}/ws", server.addr());
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("upgrade");
    let frame = json!({"type": "publish", "id": "p1", "envelope": envelope});
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    loop {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time")
            .expect("the socket is open")
            .expect("a readable frame");
        if let Message::Text(text) = next {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn given_a_required_subject_when_publishing_over_websocket_then_the_same_rules_apply() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| with_signatures(c, keys.path())).await;
    let refused = publish_over_ws(&server, &envelope(PAYMENTS)).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(refused["id"], "p1", "{refused}");
    assert_eq!(refused["error"]["code"], "UNAUTHENTICATED", "{refused}");
    assert_eq!(refused["error"]["details"]["pattern"], REQUIRE, "{refused}");
    let accepted = publish_over_ws(&server, &signed_by(PAYMENTS, &key(), "billing")).await;
    assert_eq!(accepted["type"], "ok", "{accepted}");
    assert_eq!(accepted["result"]["seq"], 1, "{accepted}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_batch_when_one_item_lacks_its_signature_then_only_it_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| with_signatures(c, keys.path())).await;
    let batch = json!([
        json_of(&signed_by(PAYMENTS, &key(), "billing")),
        json_of(&envelope(PAYMENTS)),
        json_of(&envelope(EVENT_SUBJECT)),
    ]);
    let (status, body) = server.post("/api/v1/messages/batch", &batch).await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(results[0]["status"], 202, "{body}");
    assert_eq!(results[1]["error"]["code"], "UNAUTHENTICATED", "{body}");
    assert_eq!(results[1]["error"]["details"]["problem"], "missing");
    assert_eq!(results[2]["status"], 202, "{body}");
    server.stop().await;
}

/// Publishes an event naming two PII fields and reads its stored payload back.
async fn stored_payload(server: &Server) -> Value {
    let mut env = envelope(EVENT_SUBJECT);
    env.governance.pii = vec!["email".into(), "/customer/phone".into()];
    let (status, accepted) = server.post("/api/v1/messages", &json_of(&env)).await;
    assert_eq!(status, 202, "{accepted}");
    let seq = accepted["seq"].as_u64().unwrap();
    let (status, stored) = server
        .get(&format!("/api/v1/streams/ACE_EVENTS/messages/{seq}"))
        .await;
    assert_eq!(status, 200, "{stored}");
    stored["envelope"]["payload"].clone()
}

#[tokio::test]
async fn given_redact_stored_when_a_message_names_pii_then_the_stored_payload_is_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| {
        c.pii.redact_stored = true;
        c.pii.replacement = "<removed>".into();
    })
    .await;
    let payload = stored_payload(&server).await;
    assert_eq!(payload["email"], "<removed>", "{payload}");
    assert_eq!(payload["customer"]["phone"], "<removed>", "{payload}");
    assert_eq!(payload["customer"]["tier"], "gold", "{payload}");
    assert_eq!(payload["amount"], 42, "{payload}");
    server.stop().await;
}

#[tokio::test]
async fn given_redact_stored_off_when_a_message_names_pii_then_the_stored_payload_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let payload = stored_payload(&server).await;
    assert_eq!(payload["email"], EMAIL, "{payload}");
    assert_eq!(payload["customer"]["phone"], PHONE, "{payload}");
    server.stop().await;
}

#[tokio::test]
async fn given_redact_stored_when_a_signed_message_holds_pii_then_it_is_refused_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| {
        with_signatures(c, keys.path());
        c.pii.redact_stored = true;
    })
    .await;
    let mut env = envelope(PAYMENTS);
    env.governance.pii = vec!["email".into()];
    env.sign(&key(), "billing");
    let answer = server.post("/api/v1/messages", &json_of(&env)).await;
    assert_error(&answer, 400, "INVALID_REQUEST");
    let message = answer.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("governance.pii"), "{message}");
    assert!(message.contains("break the"), "{message}");
    let (_, info) = server.get("/api/v1/streams/ACE_EVENTS").await;
    assert_eq!(info["messages"], 0, "{info}");
    server.stop().await;
}

#[tokio::test]
async fn given_bad_signature_settings_when_the_server_opens_then_the_error_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let base = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };

    let mut missing_file = base.clone();
    missing_file
        .signatures
        .keys
        .insert("billing".into(), keys.path().join("nope.pub"));
    let err = App::open(&missing_file).await.unwrap_err().to_string();
    assert!(err.contains("signatures.keys.billing"), "{err}");
    assert!(err.contains("nope.pub"), "{err}");

    let garbage = keys.path().join("garbage.pub");
    std::fs::write(&garbage, "not a key at all").unwrap();
    let mut not_a_key = base.clone();
    not_a_key.signatures.keys.insert("billing".into(), garbage);
    let err = App::open(&not_a_key).await.unwrap_err().to_string();
    assert!(err.contains("not an Ed25519 public key"), "{err}");

    let mut no_keys = base.clone();
    no_keys.signatures.require = vec![REQUIRE.to_owned()];
    let err = no_keys.validate().unwrap_err().to_string();
    assert!(err.contains("signatures.keys"), "{err}");

    let mut bad_pattern = base.clone();
    with_signatures(&mut bad_pattern, keys.path());
    bad_pattern.signatures.require = vec!["ace..>".to_owned()];
    let err = bad_pattern.validate().unwrap_err().to_string();
    assert!(err.contains("signatures.require[0]"), "{err}");
}

#[tokio::test]
async fn given_a_signed_message_held_for_approval_when_approved_then_the_released_copy_still_verifies()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| with_signatures(c, keys.path())).await;
    // The EHI gate holds a `delete` at 0.95 (threshold 0.9) even in development mode.
    let mut risky = envelope(PAYMENTS);
    risky.governance.ehi_score = Some(0.95);
    risky.headers.insert("ace-action".into(), "delete".into());
    risky.sign(&key(), "billing");
    let (status, pending) = server.post("/api/v1/messages", &json_of(&risky)).await;
    assert_eq!(status, 202, "{pending}");
    assert_eq!(pending["status"], "pending_approval", "{pending}");
    let approval_id = pending["approval_id"].as_str().unwrap().to_owned();
    let (status, decided) = server
        .post(
            &format!("/api/v1/approval/{approval_id}"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    let seq = decided["accepted"]["seq"].as_u64().unwrap();
    let (_, stored) = server
        .get(&format!("/api/v1/streams/ACE_EVENTS/messages/{seq}"))
        .await;
    let released: Envelope = serde_json::from_value(stored["envelope"].clone()).unwrap();
    assert_eq!(
        released.governance.approval_id.as_deref(),
        Some(approval_id.as_str())
    );
    released
        .verify(&key().verifying_key())
        .expect("the approval id set on release is outside the signed bytes");
    server.stop().await;
}
