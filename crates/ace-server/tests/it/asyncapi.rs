//! `/asyncapi.json` against the code: served without credentials in enforced mode, AsyncAPI
//! 3.0.0 in shape with every `$ref` resolving, one message per variant of the Rust frame enums
//! (both ways), and frames serialized by the Rust types valid against their message's schema
//! — broken ones not — by python-jsonschema, the document loaded by the `asyncapi3` object
//! model (both from PyPI, `asyncapi_check.py`).

use std::collections::BTreeSet;

use ace_envelope::api::ws::{
    Acknowledge, ClientFrame, Message, Publish, PublishBatch, ServerFrame, Subscribe, Unsubscribe,
};
use ace_envelope::{Envelope, ErrorBody, ErrorCode, Kind};
use serde_json::{Value, json};

use crate::Server;
use crate::auth::start_enforced;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/asyncapi_check.py");

/// The message a client frame is: an exhaustive match, so a new variant does not compile until
/// it is named here (and given an example in [`client_frames`]).
fn client_tag(frame: &ClientFrame) -> &'static str {
    match frame {
        ClientFrame::Subscribe(_) => "subscribe",
        ClientFrame::Unsubscribe(_) => "unsubscribe",
        ClientFrame::Publish(_) => "publish",
        ClientFrame::PublishBatch(_) => "publish_batch",
        ClientFrame::Ack(_) => "ack",
        ClientFrame::Nak(_) => "nak",
        ClientFrame::Term(_) => "term",
    }
}

/// The message a server frame is (exhaustive, as [`client_tag`]).
fn server_tag(frame: &ServerFrame) -> &'static str {
    match frame {
        ServerFrame::Message(_) => "message",
        ServerFrame::Ok { .. } => "ok",
        ServerFrame::Error { .. } => "error",
    }
}

fn envelope() -> Box<Envelope> {
    Box::new(
        Envelope::builder(Kind::Event, "ace.comms.ws.service.kpi.evt.v1")
            .payload_json(json!({"n": 1}))
            .rbac(["kpi.read"])
            .header("tenant", "acme")
            .new_trace()
            .build()
            .unwrap(),
    )
}

/// Every client frame variant, with optional fields set and unset.
fn client_frames() -> Vec<ClientFrame> {
    let ack = Acknowledge {
        id: Some("a1".into()),
        sid: "s2".into(),
        seq: 42,
        delay_ms: None,
        reason: None,
    };
    vec![
        ClientFrame::Subscribe(Subscribe::live("s1", "ace.comms.>")),
        ClientFrame::Subscribe(Subscribe {
            id: Some("1".into()),
            queue: Some("workers".into()),
            ..Subscribe::live("s3", "ace.comms.*.service.>")
        }),
        ClientFrame::Subscribe(Subscribe::consumer("s2", "ACE_EVENTS", "worker")),
        ClientFrame::Unsubscribe(Unsubscribe {
            id: None,
            sid: "s1".into(),
        }),
        ClientFrame::Publish(Publish {
            id: Some("p1".into()),
            envelope: envelope(),
        }),
        ClientFrame::PublishBatch(PublishBatch {
            id: Some("b1".into()),
            envelopes: vec![*envelope(), *envelope()],
        }),
        ClientFrame::Ack(ack.clone()),
        ClientFrame::Nak(Acknowledge {
            delay_ms: Some(1000),
            ..ack.clone()
        }),
        ClientFrame::Term(Acknowledge {
            reason: Some("poison".into()),
            ..ack
        }),
    ]
}

/// Every server frame variant.
fn server_frames() -> Vec<ServerFrame> {
    vec![
        ServerFrame::Message(Message {
            sid: "s1".into(),
            envelope: envelope(),
            stream: None,
            seq: None,
            delivery: None,
        }),
        ServerFrame::Message(Message {
            sid: "s2".into(),
            envelope: envelope(),
            stream: Some("ACE_EVENTS".into()),
            seq: Some(7),
            delivery: Some(2),
        }),
        ServerFrame::Ok {
            id: Some("p1".into()),
            result: Some(json!({"id": "x", "stream": "ACE_EVENTS", "seq": 1, "duplicate": false})),
        },
        ServerFrame::Ok {
            id: None,
            result: None,
        },
        ServerFrame::error(
            Some("9".into()),
            ErrorBody::new(ErrorCode::NotFound, "no subscription `s9`"),
        ),
    ]
}

/// The examples as `{message: [frame JSON, ...]}`.
fn valid_frames() -> serde_json::Map<String, Value> {
    let mut by_tag = serde_json::Map::new();
    let client = client_frames()
        .into_iter()
        .map(|f| (client_tag(&f), serde_json::to_value(&f).unwrap()));
    let server = server_frames()
        .into_iter()
        .map(|f| (server_tag(&f), serde_json::to_value(&f).unwrap()));
    for (tag, frame) in client.chain(server) {
        assert_eq!(frame["type"], tag, "the tag is the wire `type`");
        let list = by_tag.entry(tag).or_insert_with(|| json!([]));
        list.as_array_mut().unwrap().push(frame);
    }
    by_tag
}

/// Frames the Rust types would refuse, by message.
fn invalid_frames() -> Value {
    let publish = serde_json::to_value(ClientFrame::Publish(Publish {
        id: None,
        envelope: envelope(),
    }))
    .unwrap();
    let mut bad_envelope = publish.clone();
    bad_envelope["envelope"]["kind"] = json!("shout");
    json!({
        "subscribe": [{"type": "subscribe", "pattern": "a.b"}, {"type": "subscribe", "sid": 7}],
        "unsubscribe": [{"type": "unsubscribe"}],
        "publish": [{"type": "publish", "id": "p"}, bad_envelope],
        "ack": [{"type": "ack", "sid": "s", "seq": "one"}, {"type": "ack", "sid": "s", "seq": -1}],
        "nak": [{"type": "nak", "seq": 1}],
        "term": [{"type": "term", "sid": "s"}],
        "message": [{"type": "message", "envelope": publish["envelope"]}],
        "ok": [{"type": "ok", "id": 5}],
        "error": [{"type": "error", "id": "1"}, {"type": "error", "error": {"code": "NOPE", "message": "m"}}],
    })
}

/// The value at a local `$ref` (`#/a/b`) of `doc`.
fn resolve<'d>(doc: &'d Value, reference: &str) -> Option<&'d Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

async fn served(server: &Server) -> Value {
    let response = server
        .http
        .get(server.url("/asyncapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "served without credentials");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn given_the_served_document_when_read_then_it_is_asyncapi_3_with_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let doc = served(&server).await;
    server.stop().await;

    assert_eq!(doc["asyncapi"], "3.0.0");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(doc["channels"]["ws"]["address"], "/ws");
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for reference in &all {
        assert!(
            resolve(&doc, reference).is_some(),
            "dangling $ref {reference}"
        );
    }

    let messages: BTreeSet<String> = doc["components"]["messages"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let variants: BTreeSet<String> = valid_frames().keys().cloned().collect();
    assert_eq!(
        messages, variants,
        "one message per frame variant, both ways"
    );
    let channel: BTreeSet<String> = doc["channels"]["ws"]["messages"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(channel, messages);

    // The server receives every client frame and answers ok or error; it sends `message`.
    for frame in client_frames() {
        let tag = client_tag(&frame);
        let op = &doc["operations"][format!("receive_{tag}")];
        assert_eq!(op["action"], "receive", "{tag}");
        assert_eq!(
            op["messages"][0]["$ref"],
            format!("#/channels/ws/messages/{tag}")
        );
        assert_eq!(
            op["reply"]["messages"].as_array().unwrap().len(),
            2,
            "{tag}"
        );
    }
    assert_eq!(doc["operations"]["send_message"]["action"], "send");
    let security = doc["servers"]["ace-comms"]["security"].to_string();
    for scheme in ["bearer", "access_token", "api_key", "mutual_tls"] {
        assert!(security.contains(scheme), "{security}");
    }
}

#[tokio::test]
async fn given_frames_of_the_rust_types_when_checked_by_independent_tools_then_they_fit_the_document()
 {
    let test = "given_frames_of_the_rust_types_when_checked_by_independent_tools_then_they_fit_the_document";
    let Some(python) = ace_testkit::python(test, &["jsonschema", "asyncapi3"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let doc = served(&server).await;
    server.stop().await;
    let doc_file = dir.path().join("asyncapi.json");
    std::fs::write(&doc_file, doc.to_string()).unwrap();
    let frames_file = dir.path().join("frames.json");
    let frames = json!({"valid": valid_frames(), "invalid": invalid_frames()});
    std::fs::write(&frames_file, frames.to_string()).unwrap();
    let out = std::process::Command::new(python)
        .arg(SCRIPT)
        .arg(&doc_file)
        .arg(&frames_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the document and the frames disagree:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The copy of the document kept with the other language-neutral contracts.
const COPY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../contracts/comms/asyncapi.json"
);

#[tokio::test]
async fn given_the_copy_in_contracts_when_compared_then_it_is_the_served_document() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let doc = served(&server).await;
    server.stop().await;
    if std::env::var_os("ACE_WRITE_CONTRACTS").is_some() {
        let text = serde_json::to_string_pretty(&doc).unwrap();
        std::fs::write(COPY, format!("{text}\n")).unwrap();
    }
    let copy: Value = serde_json::from_str(&std::fs::read_to_string(COPY).unwrap()).unwrap();
    assert!(
        copy == doc,
        "contracts/comms/asyncapi.json is not the served document; write it anew with \
         `ACE_WRITE_CONTRACTS=1 cargo test -p ace-server --test it asyncapi`"
    );
}
