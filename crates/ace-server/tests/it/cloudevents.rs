//! CloudEvents from a producer that knows nothing of envelopes: the official CloudEvents Python
//! SDK (`cloudevents` from PyPI, `cloudevents_sdk.py`) builds structured, binary and batched
//! events and posts them with a real JWT; they arrive under the configured mapping with their
//! ids kept, the sender taken from the token, and a repeated event recognised as a duplicate.
//! The other way, the server's CloudEvent of a stored message is parsed by the SDK's
//! `from_http`. Without the SDK, the refusals: a bad token, a mapping the caller may not
//! publish on, a `source` naming someone else, a subject a rule cannot render.

use std::path::PathBuf;
use std::process::Command;

use ace_envelope::codec::cloudevents::{Mapping, Match, Rule, Target};
use ace_envelope::{Envelope, Kind};
use serde_json::{Value, json};
use tempfile::TempDir;

use crate::auth::{Cred, claims, get_as, key_of, role, signed, start_enforced};
use crate::{Server, answer, assert_error};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/cloudevents_sdk.py");

/// Orders go to the shop's events; everything else to the default target.
fn mapping() -> Mapping {
    Mapping {
        rules: vec![Rule {
            matches: Match {
                event_type: Some("com.example.order.*".to_owned()),
                source: Some("https://shop.example/*".to_owned()),
                subject: None,
            },
            subject: "ace.comms.http.service.shop.evt.{type}.v1".to_owned(),
            kind: Kind::Event,
        }],
        default: Target::default(),
    }
}

/// A JWT of the human role for principal `ce-producer` (humans publish `ace.comms.http.>`).
fn producer_token() -> String {
    let mut claims = claims();
    claims["sub"] = json!("ce-producer");
    claims["roles"] = json!(["human"]);
    claims["principal_type"] = json!("human");
    signed(&claims)
}

/// For a test that needs the SDK: its interpreter, the server's directory, an enforced
/// server with [`mapping`], the producer's token, and the admin's credentials (reading a
/// stream of every protocol's events is the admin's). `None` when the SDK is missing.
async fn with_sdk(test: &str) -> Option<(PathBuf, TempDir, Server, String, Cred)> {
    let python = ace_testkit::python(test, &["cloudevents"])?;
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |config| config.cloudevents = mapping()).await;
    Some((python, dir, server, producer_token(), role("admin")))
}

/// Runs the SDK script with `args` off the runtime's threads (the server answers meanwhile)
/// and returns its JSON output.
async fn sdk(python: PathBuf, args: Vec<String>) -> Value {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(SCRIPT)
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the SDK script failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the script prints JSON")
}

/// The path of the stored message of a publish answer `{stream, seq}`.
fn message_path(accepted: &Value) -> String {
    format!(
        "/api/v1/streams/{}/messages/{}",
        accepted["stream"].as_str().expect("stored in a stream"),
        accepted["seq"]
    )
}

/// The stored envelope of a publish answer `{stream, seq}`.
async fn stored(server: &Server, cred: &Cred, accepted: &Value) -> Envelope {
    let (status, message) = get_as(server, cred, &message_path(accepted)).await;
    assert_eq!(status, 200, "{message}");
    serde_json::from_value(message["envelope"].clone()).expect("an envelope")
}

#[tokio::test]
async fn given_the_official_sdk_when_it_posts_events_then_they_arrive_mapped_with_their_ids() {
    let test = "given_the_official_sdk_when_it_posts_events_then_they_arrive_mapped_with_their_ids";
    let Some((python, _dir, server, token, cred)) = with_sdk(test).await else {
        return;
    };
    let sent = sdk(python, vec!["post".into(), server.base.clone(), token]).await;

    // Structured, matched by the rule.
    let order = &sent["order"];
    assert_eq!(order["first"]["status"], 202, "{order}");
    assert_eq!(order["first"]["answer"]["duplicate"], false, "{order}");
    let env = stored(&server, &cred, &order["first"]["answer"]).await;
    assert_eq!(
        env.subject,
        "ace.comms.http.service.shop.evt.com.example.order.created.v1"
    );
    assert_eq!(env.kind, Kind::Event);
    assert_eq!(env.name.as_deref(), Some("com.example.order.created"));
    assert_eq!(env.headers["ce-id"], order["id"].as_str().unwrap());
    assert_eq!(env.headers["ce-source"], "https://shop.example/orders");
    assert_eq!(env.headers["ce-subject"], "order-7");
    assert_eq!(env.headers["ce-tenant"], "acme");
    assert_eq!(
        env.headers["ce-dataschema"],
        "https://shop.example/schemas/order.json"
    );
    assert_eq!(env.payload, Some(json!({"total": 12})));
    let source = env.source.as_ref().expect("the server names the sender");
    assert_eq!(
        (source.source_type.as_str(), source.id.as_str()),
        ("human", "ce-producer"),
        "the sender is the token's principal, never the event's source"
    );
    // The same event again (same source and id, same sender) is a duplicate.
    assert_eq!(order["again"]["status"], 202, "{order}");
    assert_eq!(order["again"]["answer"]["duplicate"], true, "{order}");
    assert_eq!(
        order["again"]["answer"]["seq"],
        order["first"]["answer"]["seq"]
    );

    // Binary, placed by the default target.
    let ping = &sent["ping"];
    assert_eq!(ping["binary"]["status"], 202, "{ping}");
    let env = stored(&server, &cred, &ping["binary"]["answer"]).await;
    assert_eq!(
        env.subject,
        "ace.comms.http.service.cloudevents.evt.com.example.ping"
    );
    assert_eq!(env.headers["ce-id"], ping["id"].as_str().unwrap());
    assert_eq!(env.headers["ce-source"], "/pinger");
    assert_eq!(env.payload, Some(json!({"ping": 1})));

    // A batch of structured events.
    let batch = &sent["batch"];
    assert_eq!(batch["status"], 200, "{batch}");
    assert_eq!(batch["answer"]["accepted"], 2, "{batch}");
    for (i, item) in batch["answer"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        let env = stored(&server, &cred, item).await;
        assert_eq!(env.headers["ce-id"], batch["ids"][i].as_str().unwrap());
        assert_eq!(env.payload, Some(json!({"n": i})));
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_stored_message_when_read_as_a_cloudevent_then_the_sdk_parses_it() {
    let test = "given_a_stored_message_when_read_as_a_cloudevent_then_the_sdk_parses_it";
    let Some((python, _dir, server, token, cred)) = with_sdk(test).await else {
        return;
    };
    let envelope = Envelope::builder(Kind::Event, "ace.comms.http.service.kpi.evt.v1")
        .name("comms.health")
        .schema("comms.health@1.0.0")
        .payload_json(json!({"status": "ok", "version": "1.2.3"}))
        .build()
        .unwrap();
    let response = server
        .http
        .post(server.url("/api/v1/messages"))
        .bearer_auth(&token)
        .json(&envelope)
        .send()
        .await
        .unwrap();
    let (status, accepted) = answer(response).await;
    assert_eq!(status, 202, "{accepted}");
    let path = message_path(&accepted);
    let parsed = sdk(
        python,
        vec!["read".into(), server.base.clone(), key_of("admin"), path],
    )
    .await;
    let attributes = &parsed["attributes"];
    assert_eq!(attributes["specversion"], "1.0");
    assert_eq!(attributes["id"], envelope.id.to_string());
    assert_eq!(attributes["type"], "comms.health");
    assert_eq!(attributes["source"], "/ace-comms/human/ce-producer");
    assert_eq!(attributes["subject"], "ace.comms.http.service.kpi.evt.v1");
    assert_eq!(
        attributes["dataschema"],
        "urn:ace:schema:comms.health@1.0.0"
    );
    assert_eq!(attributes["acekind"], "event");
    assert_eq!(parsed["data"], json!({"status": "ok", "version": "1.2.3"}));
    let seq = parsed["headers"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("ace-seq"))
        .map(|(_, v)| v.clone());
    assert_eq!(seq, Some(json!(accepted["seq"].to_string())));
    // Without the Accept header the answer stays the JSON of the stored message.
    let (status, message) = get_as(&server, &cred, &message_path(&accepted)).await;
    assert_eq!(status, 200);
    assert_eq!(message["envelope"]["id"], envelope.id.to_string());
    server.stop().await;
}

/// POSTs a structured CloudEvent with the bearer `token`.
async fn post_event(server: &Server, token: &str, event: &Value) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/api/v1/messages"))
        .bearer_auth(token)
        .header("content-type", "application/cloudevents+json")
        .body(event.to_string())
        .send()
        .await
        .unwrap();
    answer(response).await
}

#[tokio::test]
async fn given_foreign_events_that_must_not_pass_when_posted_then_each_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |config| {
        config.cloudevents = Mapping {
            rules: vec![Rule {
                matches: Match {
                    event_type: Some("com.example.agent.*".to_owned()),
                    ..Match::default()
                },
                subject: "ace.comms.agent.agent.a1.evt.{type}".to_owned(),
                kind: Kind::Event,
            }],
            default: Target {
                subject: "ace.comms.http.service.shop.evt.{subject}".to_owned(),
                kind: Kind::Event,
            },
        };
    })
    .await;
    let token = producer_token();
    let event = |event_type: &str| {
        json!({"specversion": "1.0", "id": "e-1", "source": "/s", "type": event_type,
               "subject": "order-1", "data": {"n": 1}})
    };

    let bad_token = post_event(&server, "not-a-jwt", &event("com.example.x")).await;
    assert_error(&bad_token, 401, "UNAUTHENTICATED");

    // Mapped onto a subject the human role may not publish on.
    let forbidden = post_event(&server, &token, &event("com.example.agent.moved")).await;
    assert_error(&forbidden, 403, "FORBIDDEN");

    // The default target needs `subject`.
    let mut no_subject = event("com.example.x");
    no_subject.as_object_mut().unwrap().remove("subject");
    let unplaced = post_event(&server, &token, &no_subject).await;
    assert_error(&unplaced, 400, "INVALID_ENVELOPE");
    let message = unplaced.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("needs the attribute subject"), "{message}");

    // An envelope's own event naming another sender is refused as before.
    let own = Envelope::builder(Kind::Event, "ace.comms.http.service.shop.evt.x")
        .source(ace_envelope::SourceType::Service, "admin")
        .payload_json(json!({"n": 1}))
        .build()
        .unwrap();
    let own: Value =
        serde_json::from_slice(&ace_envelope::to_cloudevent_json(&own).unwrap()).unwrap();
    let impostor = post_event(&server, &token, &own).await;
    assert_error(&impostor, 403, "FORBIDDEN");

    // Not a CloudEvent attribute name.
    let mut bad_name = event("com.example.x");
    bad_name["Tenant-Id"] = json!("acme");
    let refused = post_event(&server, &token, &bad_name).await;
    assert_error(&refused, 400, "INVALID_ENVELOPE");

    let good = post_event(&server, &token, &event("com.example.x")).await;
    assert_eq!(good.0, 202, "{}", good.1);
    server.stop().await;
}
