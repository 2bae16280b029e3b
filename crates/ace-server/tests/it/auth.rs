//! Enforced mode end to end: a real server with an API-key file and a JWT configuration
//! written to a temporary directory, the shipped policies compiled in.
//!
//! - the allow/deny matrix of the roles admin, agent, human, observer, approver and auditor:
//!   publish over HTTP and over WebSocket, subscribe over WebSocket, stream fetch over HTTP —
//!   every cell asserted (202/200/ok or 403 with the RBAC reason naming the subject or the
//!   denying role's pattern);
//! - every JWT attack and every missing or unknown credential answered 401, the WebSocket
//!   upgrade included (refused before any socket exists);
//! - a Rego denial of the shipped example policy, and a broken policy answering 403
//!   `policy_engine_failure`;
//! - receive filtering: a fetch withholds what the caller's clearance may not see, and the
//!   message stays for a reader who may;
//! - the policy counters in `/metrics`;
//! - TLS with client certificates (generated with rcgen): a certificate mapped to a principal
//!   publishes what its roles allow, no certificate is 401 (`optional`) or a refused handshake
//!   (`required`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ace_envelope::{Envelope, Kind, Label};
use ace_policy::{JwtAlgorithm, JwtConfig, KeySource, hash_api_key};
use ace_server::{AuthConfig, AuthMode, ClientAuth, Config, MetricsAccess, TlsConfig};
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

use crate::{Server, answer, assert_error};

const ISSUER: &str = "ace-auth";
const AUDIENCE: &str = "ace-comms";

/// The roles tested, with the principal kind and clearance of their API key.
const ROLES: [(&str, &str, u8); 6] = [
    ("admin", "service", 5),
    ("agent", "agent", 1),
    ("human", "human", 1),
    ("observer", "service", 0),
    ("approver", "human", 1),
    ("auditor", "service", 0),
];

/// The plain-text API key of `role` (only its SHA-256 is written to the key file).
pub(crate) fn key_of(role: &str) -> String {
    format!("key-{role}-0123456789abcdef0123456789abcdef")
}

/// A file of `ace-policy`'s test fixtures (RSA keys for RS256).
pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../ace-policy/tests/fixtures")
        .join(name)
}

pub(crate) fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// An API-key file: per `(name, role, kind, clearance)`, the key [`key_of`]`(name)` naming
/// principal `{name}-1` with that one role.
pub(crate) fn keys_yaml(keys: &[(&str, &str, &str, u8)]) -> String {
    let mut yaml = String::from("keys:\n");
    for (name, role, kind, clearance) in keys {
        yaml.push_str(&format!(
            "  - sha256: {}\n    principal: {{id: {name}-1, type: {kind}, roles: [{role}], \
             clearance: {clearance}}}\n",
            hash_api_key(&key_of(name))
        ));
    }
    yaml
}

/// Writes the API-key file of [`ROLES`] under `dir` and returns the enforced auth section.
pub(crate) fn enforced_auth(dir: &Path) -> AuthConfig {
    let roles: Vec<_> = ROLES
        .iter()
        .map(|&(role, kind, clearance)| (role, role, kind, clearance))
        .collect();
    let keys = dir.join("api-keys.yaml");
    std::fs::write(&keys, keys_yaml(&roles)).unwrap();
    AuthConfig {
        mode: AuthMode::Enforced,
        jwt: Some(JwtConfig {
            issuer: Some(ISSUER.into()),
            audience: Some(AUDIENCE.into()),
            leeway_secs: 0,
            ..JwtConfig::with_keys(vec![KeySource::Pem {
                path: fixture("rsa.pub.pem"),
                alg: JwtAlgorithm::RS256,
                kid: None,
            }])
        }),
        api_keys: Some(keys),
        ..AuthConfig::default()
    }
}

/// An enforced server authenticating only the API keys of [`keys_yaml`]`(keys)`, written under
/// `dir`.
pub(crate) async fn start_with_keys(dir: &Path, keys: &[(&str, &str, &str, u8)]) -> Server {
    let file = dir.join("api-keys.yaml");
    std::fs::write(&file, keys_yaml(keys)).unwrap();
    Server::start_with(&dir.join("data"), |config| {
        config.auth = AuthConfig {
            mode: AuthMode::Enforced,
            api_keys: Some(file),
            ..AuthConfig::default()
        };
    })
    .await
}

pub(crate) async fn start_enforced(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
    let auth = enforced_auth(dir);
    Server::start_with(&dir.join("data"), |config| {
        config.auth = auth;
        tweak(config);
    })
    .await
}

/// How a request authenticates.
#[derive(Clone)]
pub(crate) enum Cred {
    Key(String),
    Bearer(String),
    Nothing,
}

pub(crate) fn role(name: &str) -> Cred {
    Cred::Key(key_of(name))
}

fn with(request: reqwest::RequestBuilder, cred: &Cred) -> reqwest::RequestBuilder {
    match cred {
        Cred::Key(key) => request.header("X-ACE-API-Key", key),
        Cred::Bearer(token) => request.bearer_auth(token),
        Cred::Nothing => request,
    }
}

pub(crate) async fn post_as(
    server: &Server,
    cred: &Cred,
    path: &str,
    body: &Value,
) -> (u16, Value) {
    let request = with(server.http.post(server.url(path)).json(body), cred);
    answer(request.send().await.unwrap()).await
}

pub(crate) async fn get_as(server: &Server, cred: &Cred, path: &str) -> (u16, Value) {
    answer(
        with(server.http.get(server.url(path)), cred)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A valid envelope on `subject`, its kind following the subject's verb.
fn envelope(subject: &str) -> Envelope {
    let kind = if subject.contains(".cmd.") {
        Kind::Command
    } else if subject.contains(".qry.") {
        Kind::Query
    } else {
        Kind::Event
    };
    Envelope::builder(kind, subject)
        .payload_json(json!({"n": 1}))
        .build()
        .expect("valid envelope")
}

pub(crate) fn message(subject: &str) -> Value {
    serde_json::to_value(envelope(subject)).unwrap()
}

/// The publish matrix: subject, then `A`/`D` for admin, agent, human, observer, approver,
/// auditor. With each denial, the text its first reason must contain.
const PUBLISH: [(&str, &str); 6] = [
    ("ace.comms.agent.agent.a1.evt.status.v1", "AADDDD"),
    ("ace.comms.a2a.agent.b7.evt.v1", "AADDDD"),
    ("ace.comms.matrix.room.ops.evt.v1", "ADADDD"),
    ("ace.comms.http.service.kpi.evt.v1", "ADADDD"),
    ("ace.comms.http.service.kpi.qry.status.v1", "ADAADD"),
    ("ace.comms.ws.service.kpi.evt.v1", "ADDDDD"),
];

/// The subscribe matrix, same columns.
const SUBSCRIBE: [(&str, &str); 6] = [
    ("ace.comms.agent.>", "AADDDD"),
    ("ace.comms.matrix.>", "ADADDD"),
    // could match ace.comms.system.….qry.…, which the observer role denies
    ("ace.comms.*.*.*.qry.>", "ADDDDD"),
    ("ace.comms.http.*.*.qry.>", "ADAADD"),
    ("ace.comms.system.hitl.>", "ADDDAD"),
    ("ace.comms.system.ledger.>", "ADDDAA"),
];

/// Asserts a 403 whose reasons are RBAC's and name `what` (the subject, or the pattern of
/// the role that denies it).
fn assert_rbac_denial(answer: &(u16, Value), what: &str, cell: &str) {
    assert_error(answer, 403, "FORBIDDEN");
    let reasons = answer.1["error"]["details"]["reasons"].to_string();
    assert!(
        reasons.contains("rbac:") && reasons.contains(what),
        "{cell}: {reasons}"
    );
}

#[tokio::test]
async fn given_each_role_when_publishing_over_http_then_the_matrix_holds() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    for (subject, row) in PUBLISH {
        for ((name, _, _), expected) in ROLES.iter().zip(row.chars()) {
            let got = post_as(&server, &role(name), "/api/v1/messages", &message(subject)).await;
            let cell = format!("{name} publish {subject}");
            if expected == 'A' {
                assert_eq!(got.0, 202, "{cell}: {}", got.1);
            } else {
                assert_rbac_denial(&got, subject, &cell);
            }
        }
    }
    // The admin's own deny pattern is the reason named (four eyes on approvals).
    let hitl = "ace.comms.system.hitl.approval.x1.evt.note.v1";
    let got = post_as(&server, &role("admin"), "/api/v1/messages", &message(hitl)).await;
    assert_rbac_denial(
        &got,
        "role `admin` denies publish on `ace.comms.system.hitl.>`",
        hitl,
    );
    server.stop().await;
}

#[tokio::test]
async fn given_each_role_when_fetching_a_stream_then_only_roles_covering_its_subjects_read() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let admin = role("admin");
    let stream = json!({"name": "QUERIES", "subjects": ["ace.comms.http.*.*.qry.>"]});
    let created = post_as(&server, &admin, "/api/v1/streams", &stream).await;
    assert_eq!(created.0, 201, "{}", created.1);
    // Managing streams is a publish on ace.comms.system.stream.{name}.cmd.manage.v1: admin only.
    let other = json!({"name": "MINE", "subjects": ["ace.comms.matrix.>"]});
    let refused = post_as(&server, &role("human"), "/api/v1/streams", &other).await;
    assert_rbac_denial(
        &refused,
        "ace.comms.system.stream.MINE.cmd.manage.v1",
        "human manage",
    );
    for stream in ["QUERIES", "ACE_EVENTS"] {
        let consumers = format!("/api/v1/streams/{stream}/consumers");
        let made = post_as(&server, &admin, &consumers, &json!({"name": "c"})).await;
        assert_eq!(made.0, 201, "{}", made.1);
    }
    // stream, then admin, agent, human, observer, approver, auditor
    let table = [("QUERIES", "ADAADD"), ("ACE_EVENTS", "ADDDDD")];
    let fetch = json!({"batch": 1, "expires_ms": 10});
    for (stream, row) in table {
        let path = format!("/api/v1/streams/{stream}/consumers/c/fetch");
        for ((name, _, _), expected) in ROLES.iter().zip(row.chars()) {
            let got = post_as(&server, &role(name), &path, &fetch).await;
            let cell = format!("{name} fetch {stream}");
            if expected == 'A' {
                assert_eq!(got.0, 200, "{cell}: {}", got.1);
            } else {
                assert_rbac_denial(&got, "subscribe", &cell);
            }
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_message_above_a_readers_clearance_when_fetched_then_it_is_withheld_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let admin = role("admin");
    let stream = json!({"name": "QUERIES", "subjects": ["ace.comms.http.*.*.qry.>"]});
    assert_eq!(
        post_as(&server, &admin, "/api/v1/streams", &stream).await.0,
        201
    );
    let consumers = "/api/v1/streams/QUERIES/consumers";
    let made = post_as(&server, &admin, consumers, &json!({"name": "shared"})).await;
    assert_eq!(made.0, 201, "{}", made.1);
    let subject = "ace.comms.http.service.kpi.qry.status.v1";
    let mut secret = envelope(subject);
    secret.governance.label = Label::Confidential;
    let secret = serde_json::to_value(secret).unwrap();
    assert_eq!(
        post_as(&server, &admin, "/api/v1/messages", &secret)
            .await
            .0,
        202
    );
    let fetch = json!({"batch": 10, "expires_ms": 50});
    let path = format!("{consumers}/shared/fetch");
    // The human (clearance 1) may read the stream but not a confidential message (3).
    let (status, got) = post_as(&server, &role("human"), &path, &fetch).await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["messages"].as_array().unwrap().len(), 0, "{got}");
    // Withheld, not lost: the admin (clearance 5) reading the same consumer gets it.
    let (status, got) = post_as(&server, &admin, &path, &fetch).await;
    assert_eq!(status, 200, "{got}");
    let messages = got["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{got}");
    assert_eq!(messages[0]["envelope"]["id"], secret["id"]);
    // Read by sequence, it is as missing for the human and there for the admin.
    let seq = messages[0]["seq"].as_u64().expect("a sequence");
    let by_seq = format!("/api/v1/streams/QUERIES/messages/{seq}");
    assert_error(
        &get_as(&server, &role("human"), &by_seq).await,
        404,
        "NOT_FOUND",
    );
    assert_eq!(get_as(&server, &admin, &by_seq).await.0, 200);
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("ace_comms_policy_receive_denials_total 2"),
        "{text}"
    );
    server.stop().await;
}

pub(crate) type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(server: &Server, cred: &Cred) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://{}/ws", server.addr())
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    match cred {
        Cred::Key(key) => {
            headers.insert("x-ace-api-key", HeaderValue::from_str(key).unwrap());
        }
        Cred::Bearer(token) => {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
            headers.insert("authorization", value);
        }
        Cred::Nothing => {}
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// Sends `frame` and returns the first answer frame that is not a delivered message.
pub(crate) async fn ws_ask(socket: &mut Socket, frame: Value) -> Value {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an answer in time")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = next {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] != "message" {
                return frame;
            }
        }
    }
}

fn assert_ws_answer(answer: &Value, expected: char, what: &str, cell: &str) {
    if expected == 'A' {
        assert_eq!(answer["type"], "ok", "{cell}: {answer}");
        return;
    }
    assert_eq!(answer["type"], "error", "{cell}: {answer}");
    assert_eq!(answer["error"]["code"], "FORBIDDEN", "{cell}: {answer}");
    let reasons = answer["error"]["details"]["reasons"].to_string();
    assert!(
        reasons.contains("rbac:") && reasons.contains(what),
        "{cell}: {reasons}"
    );
}

#[tokio::test]
async fn given_each_role_when_publishing_and_subscribing_over_websocket_then_the_matrix_holds() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    for (n, (name, _, _)) in ROLES.iter().enumerate() {
        let mut socket = ws_connect(&server, &role(name)).await.expect("upgrade");
        for (i, (subject, row)) in PUBLISH.iter().enumerate() {
            let expected = row.chars().nth(n).unwrap();
            let frame =
                json!({"type": "publish", "id": format!("p{i}"), "envelope": message(subject)});
            let answer = ws_ask(&mut socket, frame).await;
            assert_ws_answer(
                &answer,
                expected,
                subject,
                &format!("ws {name} publish {subject}"),
            );
        }
        for (i, (pattern, row)) in SUBSCRIBE.iter().enumerate() {
            let expected = row.chars().nth(n).unwrap();
            let frame = json!({"type": "subscribe", "id": format!("s{i}"), "sid": format!("s{i}"), "pattern": pattern});
            let answer = ws_ask(&mut socket, frame).await;
            assert_ws_answer(
                &answer,
                expected,
                "subscribe",
                &format!("ws {name} subscribe {pattern}"),
            );
        }
        socket.close(None).await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn given_no_or_bad_credentials_when_upgrading_to_websocket_then_401_before_any_socket() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    for cred in [
        Cred::Nothing,
        Cred::Key("key-nobody-0123456789abcdef0123".into()),
    ] {
        match ws_connect(&server, &cred).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 401);
                let body: Value = serde_json::from_slice(response.body().as_deref().unwrap())
                    .expect("the error body");
                assert_eq!(body["error"]["code"], "UNAUTHENTICATED", "{body}");
            }
            Err(other) => panic!("expected a 401, got {other}"),
            Ok(_) => panic!("an unauthenticated client got a socket"),
        }
    }
    server.stop().await;
}

pub(crate) fn claims() -> Value {
    json!({
        "sub": "jwt-agent", "iss": ISSUER, "aud": AUDIENCE, "exp": now() + 600, "iat": now() - 60,
        "roles": ["agent"], "clearance": 1, "principal_type": "agent",
    })
}

pub(crate) fn rs256(header: &Header, claims: &Value) -> String {
    let pem = std::fs::read(fixture("rsa.key.pem")).unwrap();
    let key = EncodingKey::from_rsa_pem(&pem).unwrap();
    jsonwebtoken::encode(header, claims, &key).unwrap()
}

pub(crate) fn signed(claims: &Value) -> String {
    rs256(&Header::new(Algorithm::RS256), claims)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn given_every_jwt_attack_and_bad_credential_when_publishing_then_each_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let subject = "ace.comms.agent.agent.a1.evt.status.v1";
    let body = message(subject);
    let good = signed(&claims());
    let ok = post_as(
        &server,
        &Cred::Bearer(good.clone()),
        "/api/v1/messages",
        &body,
    )
    .await;
    assert_eq!(ok.0, 202, "a valid RS256 token passes: {}", ok.1);
    // The second use is answered from the cache of verified tokens, the same way.
    let again = post_as(
        &server,
        &Cred::Bearer(good),
        "/api/v1/messages",
        &message(subject),
    )
    .await;
    assert_eq!(again.0, 202, "{}", again.1);

    let with_claim = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        signed(&c)
    };
    let none = format!(
        "{}.{}.",
        b64(br#"{"alg":"none","typ":"JWT"}"#),
        b64(claims().to_string().as_bytes())
    );
    let public_pem = std::fs::read(fixture("rsa.pub.pem")).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims(),
        &EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    let other_key = {
        let pem = std::fs::read(fixture("rsa-other.key.pem")).unwrap();
        let key = EncodingKey::from_rsa_pem(&pem).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &key).unwrap()
    };
    let unknown_kid = {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("who-knows".into());
        rs256(&header, &claims())
    };
    let no_sub = {
        let mut c = claims();
        c.as_object_mut().unwrap().remove("sub");
        signed(&c)
    };
    // credential, then a word the 401 message must contain
    let attacks = [
        (Cred::Bearer(none), "malformed"),
        (Cred::Bearer(confused), "algorithm"),
        (Cred::Bearer(with_claim("iss", json!("mallory"))), "issuer"),
        (
            Cred::Bearer(with_claim("aud", json!("elsewhere"))),
            "audience",
        ),
        (
            Cred::Bearer(with_claim("exp", json!(now() - 120))),
            "expired",
        ),
        (
            Cred::Bearer(with_claim("nbf", json!(now() + 3600))),
            "not yet valid",
        ),
        (Cred::Bearer(other_key), "signature"),
        (Cred::Bearer(unknown_kid), "who-knows"),
        (Cred::Bearer("not.a.token".into()), "malformed"),
        (Cred::Bearer(no_sub), "sub"),
        (
            Cred::Key("key-nobody-0123456789abcdef0123".into()),
            "unknown API key",
        ),
        (Cred::Nothing, "X-ACE-API-Key"),
    ];
    for (n, (cred, word)) in attacks.into_iter().enumerate() {
        let got = post_as(&server, &cred, "/api/v1/messages", &message(subject)).await;
        assert_error(&got, 401, "UNAUTHENTICATED");
        let text = got.1["error"]["message"].as_str().unwrap().to_owned();
        assert!(text.contains(word), "attack {n}: `{text}` lacks `{word}`");
    }
    // Reads are refused the same way.
    let streams = get_as(&server, &Cred::Nothing, "/api/v1/streams").await;
    assert_error(&streams, 401, "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn given_the_shipped_rego_policy_when_an_agent_commands_a_service_then_403_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let agent = role("agent");
    // RBAC allows ace.comms.agent.> to agents; the shipped policy allows commands to agents only.
    let to_agent = message("ace.comms.agent.agent.planner.cmd.v1");
    let got = post_as(&server, &agent, "/api/v1/messages", &to_agent).await;
    assert_eq!(got.0, 202, "{}", got.1);
    let to_db = message("ace.comms.agent.db.orders.cmd.v1");
    let got = post_as(&server, &agent, "/api/v1/messages", &to_db).await;
    assert_error(&got, 403, "FORBIDDEN");
    let reasons = got.1["error"]["details"]["reasons"].to_string();
    assert!(
        reasons.contains("agents may only send commands and queries to agents, not to db"),
        "{reasons}"
    );
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    let denials = text
        .lines()
        .find_map(|l| l.strip_prefix("ace_comms_policy_denials_total "))
        .expect("the denials counter is exported");
    assert_eq!(denials, "1", "{text}");
    assert!(text.contains("ace_comms_policy_allowed_total 1"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn given_a_failing_policy_when_publishing_then_403_policy_engine_failure_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    std::fs::write(policies.join("rbac.yaml"), ace_policy::EMBEDDED_RBAC).unwrap();
    // to_number of a subject fails at evaluation time: the engine errs, the request is denied.
    std::fs::write(
        policies.join("broken.rego"),
        "package ace.comms\ndeny contains x if { x := to_number(input.subject) }\n",
    )
    .unwrap();
    let server = start_enforced(dir.path(), |config| config.policy.dir = Some(policies)).await;
    let subject = "ace.comms.matrix.room.ops.evt.v1";
    let got = post_as(
        &server,
        &role("human"),
        "/api/v1/messages",
        &message(subject),
    )
    .await;
    assert_error(&got, 403, "FORBIDDEN");
    let reasons = got.1["error"]["details"]["reasons"].to_string();
    assert!(reasons.contains("policy_engine_failure"), "{reasons}");
    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("ace_comms_policy_engine_failures_total 1"),
        "{text}"
    );
    assert!(text.contains("ace_comms_policy_denials_total 1"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn given_heartbeats_when_enforced_then_agents_beat_and_the_server_announces_presence() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let beat = json!({"ttl_ms": 60000});
    let got = post_as(
        &server,
        &role("agent"),
        "/api/v1/agents/agent-1/heartbeat",
        &beat,
    )
    .await;
    assert_eq!(
        got.0, 200,
        "an agent beats as itself without rights on system subjects: {}",
        got.1
    );
    let refused = post_as(
        &server,
        &role("human"),
        "/api/v1/agents/a2/heartbeat",
        &beat,
    )
    .await;
    assert_rbac_denial(
        &refused,
        "ace.comms.agent.agent.a2.evt.heartbeat.v1",
        "human beat",
    );
    server.stop().await;
}

// ---- TLS and client certificates ----

struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    client_chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    client_key: rustls::pki_types::PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, SanType,
    };
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "ace test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut server_params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server = server_params.signed_by(&server_key, &issuer).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    client_params.subject_alt_names = vec![SanType::URI(
        "spiffe://ace.local/agent/tls-agent".try_into().unwrap(),
    )];
    client_params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "agent clearance=1");
    client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client = client_params.signed_by(&client_key, &issuer).unwrap();

    std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.path().join("server.pem"), server.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        client_chain: vec![client.der().clone()],
        client_key: rustls::pki_types::PrivateKeyDer::try_from(client_key.serialize_der()).unwrap(),
        dir,
        ca,
    }
}

async fn start_tls(data: &Path, pki: &Pki, client_auth: ClientAuth) -> Server {
    let auth = enforced_auth(data);
    let at = |name: &str| pki.dir.path().join(name);
    Server::start_with(&data.join("data"), |config| {
        config.auth = AuthConfig { mtls: true, ..auth };
        config.tls = Some(TlsConfig {
            cert: at("server.pem"),
            key: at("server.key"),
            client_ca: Some(at("ca.pem")),
            client_auth,
        });
    })
    .await
}

/// One HTTP/1.1 request over TLS (with the client certificate when `present`): the status,
/// or the I/O error of a refused handshake.
async fn tls_request(
    server: &Server,
    pki: &Pki,
    present: bool,
    head: &str,
    body: &str,
) -> std::io::Result<u16> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if present {
        builder
            .with_client_auth_cert(pki.client_chain.clone(), pki.client_key.clone_key())
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr()).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await?;
    let request = format!(
        "{head}\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tls.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in `{text}`")))?;
    Ok(status)
}

#[tokio::test]
async fn given_optional_client_certificates_when_publishing_over_tls_then_the_certificate_is_the_principal()
 {
    let pki = pki();
    let data = tempfile::tempdir().unwrap();
    let server = start_tls(data.path(), &pki, ClientAuth::Optional).await;
    let post = "POST /api/v1/messages HTTP/1.1";
    let allowed = message("ace.comms.agent.agent.a1.evt.status.v1").to_string();
    let denied = message("ace.comms.matrix.room.ops.evt.v1").to_string();
    // The certificate's OU names the agent role: agent subjects pass, Matrix ones do not.
    assert_eq!(
        tls_request(&server, &pki, true, post, &allowed)
            .await
            .unwrap(),
        202
    );
    assert_eq!(
        tls_request(&server, &pki, true, post, &denied)
            .await
            .unwrap(),
        403
    );
    // Without a certificate the handshake completes (optional) and the request is 401.
    assert_eq!(
        tls_request(&server, &pki, false, post, &allowed)
            .await
            .unwrap(),
        401
    );
    // Plain HTTP to a TLS listener gets no answer.
    let plain = server
        .http
        .get(server.url("/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP must not be served: {plain:?}");
    server.stop().await;
}

#[tokio::test]
async fn given_required_client_certificates_when_a_client_has_none_then_the_handshake_is_refused() {
    let pki = pki();
    let data = tempfile::tempdir().unwrap();
    let server = start_tls(data.path(), &pki, ClientAuth::Required).await;
    let post = "POST /api/v1/messages HTTP/1.1";
    let allowed = message("ace.comms.agent.agent.a1.evt.status.v1").to_string();
    assert_eq!(
        tls_request(&server, &pki, true, post, &allowed)
            .await
            .unwrap(),
        202
    );
    let refused = tls_request(&server, &pki, false, post, &allowed).await;
    assert!(
        refused.is_err(),
        "no certificate, no connection: {refused:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_metrics_open_or_authenticated_when_scraped_then_credentials_are_asked_only_when_configured()
 {
    async fn scrape(server: &Server, key: Option<&str>) -> reqwest::Response {
        let mut request = server.http.get(server.url("/metrics"));
        if let Some(key) = key {
            request = request.header("X-ACE-API-Key", key);
        }
        request.send().await.unwrap()
    }
    // open by default, also in enforced mode: a scraper needs no credentials
    let dir = tempfile::tempdir().unwrap();
    let open = start_enforced(dir.path(), |_| {}).await;
    assert_eq!(scrape(&open, None).await.status(), 200);

    let dir = tempfile::tempdir().unwrap();
    let closed = start_enforced(dir.path(), |config| {
        config.auth.metrics = MetricsAccess::Authenticated;
    })
    .await;
    let unknown = "key-nobody-0123456789abcdef0123456789abcdef";
    for key in [None, Some(unknown)] {
        let refused = answer(scrape(&closed, key).await).await;
        assert_error(&refused, 401, "UNAUTHENTICATED");
    }
    let scraped = scrape(&closed, Some(&key_of("observer"))).await;
    assert_eq!(scraped.status(), 200);
    assert!(scraped.text().await.unwrap().contains("ace_comms_"));
}
