//! The whole server on the NATS JetStream engine (`engine: nats`), two servers on one NATS
//! server (`ACE_TEST_NATS_URL`; fails under `CI=true` when unreachable, skips loudly otherwise):
//! a message published over HTTP on one reaches a WebSocket subscriber of the other, both see
//! the same streams and consumers, and a durable consumer's messages fetched and acknowledged
//! on one are done for the other.

use std::path::Path;
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::ws::{ask, connect};
use crate::{Server, event};

/// Prefixes of its own for one test, so it shares the NATS server with any other.
fn prefixes() -> (String, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("s{:x}{}", nanos % (1 << 48), std::process::id());
    (format!("{tag}_"), format!("{tag}."))
}

async fn start(dir: &Path, url: &str, names: &(String, String)) -> Server {
    start_with(dir, url, names, |_| {}).await
}

async fn start_with(
    dir: &Path,
    url: &str,
    (streams, subjects): &(String, String),
    tweak: impl FnOnce(&mut ace_server::Config),
) -> Server {
    Server::start_with(dir, |c| {
        c.engine = ace_server::Engine::Nats;
        c.nats.url = url.to_owned();
        c.nats.stream_prefix = streams.clone();
        c.nats.subject_prefix = subjects.clone();
        tweak(c);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_servers_on_one_nats_when_publishing_on_one_then_the_other_delivers_and_shares_the_consumer()
 {
    let Some(url) = ace_testkit::nats_url("server on nats") else {
        return;
    };
    let names = prefixes();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start(dir_a.path(), &url, &names).await;
    let b = start(dir_b.path(), &url, &names).await;

    let mut socket = connect(&b).await;
    let ok = ask(
        &mut socket,
        json!({"type": "subscribe", "id": "1", "sid": "s1", "pattern": "ace.comms.http.>"}),
    )
    .await;
    assert_eq!(ok["type"], "ok", "{ok}");
    let first = event(1);
    let (status, accepted) = a.post("/api/v1/messages", &first).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["stream"], "ACE_EVENTS");
    assert_eq!(accepted["seq"], 1);
    let message = next_message(&mut socket).await;
    assert_eq!(message["sid"], "s1");
    assert_eq!(
        message["envelope"]["id"], first["id"],
        "published on A, delivered by B"
    );

    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    let (status, info) = a
        .post(base, &json!({"name": "worker", "ack_wait": 60000}))
        .await;
    assert_eq!(status, 201, "{info}");
    let (status, list) = b.get(base).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["consumers"][0]["config"]["name"], "worker",
        "B sees A's consumer"
    );
    for n in 2..=4 {
        assert_eq!(b.post("/api/v1/messages", &event(n)).await.0, 202);
    }
    let on_b = b.fetch_seqs("ACE_EVENTS", "worker", 2).await;
    let on_a = a.fetch_seqs("ACE_EVENTS", "worker", 2).await;
    assert_eq!(on_b, [1, 2]);
    assert_eq!(on_a, [3, 4], "A gets the rest, nothing twice");
    for (server, seqs) in [(&b, on_b), (&a, on_a)] {
        let (status, acked) = server
            .post(&format!("{base}/worker/ack"), &json!({ "seqs": seqs }))
            .await;
        assert_eq!(status, 200, "{acked}");
        assert_eq!(acked["done"], json!(seqs));
    }
    let (status, info) = a.get(&format!("{base}/worker")).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(
        (info["ack_floor"].as_u64(), info["ack_pending"].as_u64()),
        (Some(4), Some(0))
    );
    let (_, none) = a
        .post(
            &format!("{base}/worker/fetch"),
            &json!({"batch": 10, "expires_ms": 300}),
        )
        .await;
    assert_eq!(none["messages"], json!([]), "all done, on either server");

    drop(socket);
    a.stop().await;
    b.stop().await;
    ace_testkit::delete_nats_streams(&url, &names.0).await;
}

/// The next `message` frame of `socket`.
async fn next_message(
    socket: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("readable");
        if let Message::Text(text) = frame {
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == "message" {
                return v;
            }
        }
    }
}

/// Two servers on one NATS whose `tweak`ed state lives in one fresh PostgreSQL schema of
/// `state.postgres`; `None` (after the notice) without NATS or PostgreSQL.
async fn pair_on_postgres(
    test: &str,
    tweak: fn(&mut ace_server::Config),
) -> Option<(Server, Server, Shared)> {
    let url = ace_testkit::nats_url(test)?;
    let pg = ace_testkit::postgres_url(test)?;
    let names = prefixes();
    let schema = format!("ace_state_{}", names.0.trim_end_matches('_'));
    let shared = |c: &mut ace_server::Config| {
        tweak(c);
        c.state.postgres.url = pg.clone();
        c.state.postgres.schema = schema.clone();
    };
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = start_with(dirs.0.path(), &url, &names, shared).await;
    let b = start_with(dirs.1.path(), &url, &names, shared).await;
    Some((
        a,
        b,
        Shared {
            url,
            names,
            pg,
            schema,
            _dirs: dirs,
        },
    ))
}

/// What a pair of servers shares, removed by `cleanup`.
struct Shared {
    url: String,
    names: (String, String),
    pg: String,
    schema: String,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Shared {
    /// Stops both servers, then deletes the streams and the schema.
    async fn cleanup(self, a: Server, b: Server) {
        a.stop().await;
        b.stop().await;
        ace_testkit::delete_nats_streams(&self.url, &self.names.0).await;
        let (pg, drop_schema) = (self.pg, format!("DROP SCHEMA {} CASCADE", self.schema));
        tokio::task::spawn_blocking(move || {
            let mut client = postgres::Client::connect(&pg, postgres::NoTls).expect("cleanup");
            client.batch_execute(&drop_schema).expect("schema dropped");
        })
        .await
        .unwrap();
    }
}

/// Two servers on one NATS and one PostgreSQL (`state.sessions: postgres`): a session written on
/// one is read on the other, and a write with a version the other server already replaced is
/// refused (412), so the two keep one history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_servers_sharing_postgres_sessions_when_one_writes_then_the_other_reads_and_guards_it()
 {
    let Some((a, b, shared)) = pair_on_postgres("sessions across servers", |c| {
        c.state.sessions = ace_server::SessionsStoreKind::Postgres;
    })
    .await
    else {
        return;
    };
    let path = "/api/v1/sessions/chat-7";
    let (status, tag, made) = a.put_with(path, &json!({"data": {"turn": 1}}), &[]).await;
    assert_eq!((status, tag.as_deref()), (201, Some("\"1\"")), "{made}");
    let (status, read) = b.get(path).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["data"], json!({"turn": 1}), "written on A, read on B");
    let next = json!({"data": {"turn": 2}});
    let (status, _, body) = b.put_with(path, &next, &[("if-match", "\"1\"")]).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, stale) = a.put_with(path, &next, &[("if-match", "\"1\"")]).await;
    assert_eq!(
        status, 412,
        "A's version 1 is stale after B wrote 2: {stale}"
    );
    let (_, read) = a.get(path).await;
    assert_eq!(read["version"], 2);
    shared.cleanup(a, b).await;
}

/// Two servers on one NATS and one PostgreSQL (`approvals.store: postgres`): a message held by
/// one is listed by the other, approved there, and released into the shared stream with its
/// approval id, which the first server reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_message_held_by_one_server_when_another_approves_it_then_it_is_released_once() {
    let Some((a, b, shared)) = pair_on_postgres("approvals across servers", |c| {
        c.approvals.store = ace_server::SessionsStoreKind::Postgres;
    })
    .await
    else {
        return;
    };
    let (id, approval_id) = crate::approvals::hold(&a).await;
    let (status, list) = b.get("/api/v1/approvals").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        list["approvals"][0]["approval_id"],
        approval_id.as_str(),
        "B lists A's hold"
    );
    let path = format!("/api/v1/approval/{approval_id}");
    let (status, decided) = b.post(&path, &json!({"decision": "approve"})).await;
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["accepted"]["stream"], "ACE_EVENTS");
    let seq = decided["accepted"]["seq"].as_u64().expect("released");
    let (status, stored) = a
        .get(&format!("/api/v1/streams/ACE_EVENTS/messages/{seq}"))
        .await;
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["envelope"]["id"], id.as_str());
    assert_eq!(
        stored["envelope"]["governance"]["approval_id"],
        approval_id.as_str()
    );
    let (status, again) = a.post(&path, &json!({"decision": "reject"})).await;
    assert_eq!(status, 409, "decided once, on either server: {again}");
    shared.cleanup(a, b).await;
}
