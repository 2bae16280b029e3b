//! Attacks defended by the network layer (see `attacks/mod.rs`), each against the real server
//! on 127.0.0.1, most over raw TCP so every byte of the attack is the test's:
//!
//! - memory: subscribers that never read while large messages are published are cut off (4008)
//!   by the byte bounds of the connection and of the principal, the queued-bytes gauge returns
//!   to zero, and another principal is served throughout (the resident memory of the real binary
//!   under the same attack is measured in `ace-cli`'s `memory` tests);
//! - lapsed credentials: a live socket whose JWT reaches its `exp`, or whose API key a reload
//!   removed, is closed with 4001 and the reason;
//! - slow clients: slow-header connections from five addresses holding every slot do not delay
//!   another client; a slow body is cut at one total deadline (408); a request without valid
//!   credentials is answered 401 before its body; an oversized `Content-Length` is 413 at once,
//!   and never `100 Continue`;
//! - WebSocket protocol errors: an unmasked client frame and a reserved opcode close with 1002,
//!   a text frame that is not UTF-8 with 1007, each with a reason;
//! - refused already (answers pinned here): headers too large (431). The oversized WebSocket
//!   message (1009), the `Origin` refusal (403) and the per-address limits (429, HTTP and
//!   WebSocket) and bad JSON frames are pinned in `ws.rs` and `lifecycle.rs`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ace_envelope::{Envelope, Kind};
use ace_policy::{JwtConfig, KeySource};
use ace_server::{AuthConfig, AuthMode};
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::Server;
use crate::auth::{key_of, keys_yaml, now, start_with_keys};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a test waits for what it expects: generous for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(15);

/// A query subject the `observer` role may publish and subscribe (no default stream keeps it).
const QUERY: &str = "ace.comms.http.service.kpi.qry.v1";
/// A subject the `human` role may publish and subscribe.
const MATRIX: &str = "ace.comms.matrix.room.ops.evt.v1";

async fn ws_as(server: &Server, key: Option<&str>, bearer: Option<&str>) -> Socket {
    let mut request = format!("ws://{}/ws", server.addr())
        .into_client_request()
        .unwrap();
    if let Some(key) = key {
        let value = HeaderValue::from_str(key).unwrap();
        request.headers_mut().insert("x-ace-api-key", value);
    }
    if let Some(token) = bearer {
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        request.headers_mut().insert("authorization", value);
    }
    tokio_tungstenite::connect_async(request)
        .await
        .expect("upgrade")
        .0
}

/// Sends `frame` and returns the first answer that is not a delivered message.
async fn ask(socket: &mut Socket, frame: Value) -> Value {
    socket
        .send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    loop {
        if let Message::Text(text) = next(socket).await {
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] != "message" {
                return frame;
            }
        }
    }
}

async fn next(socket: &mut Socket) -> Message {
    tokio::time::timeout(PATIENCE, socket.next())
        .await
        .expect("a frame in time")
        .expect("open")
        .expect("readable")
}

/// Reads until the server's close frame.
async fn close_frame(socket: &mut Socket) -> CloseFrame {
    loop {
        match tokio::time::timeout(PATIENCE, socket.next())
            .await
            .expect("the close in time")
        {
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            Some(Ok(Message::Close(None))) | None => panic!("closed without a close frame"),
            Some(Ok(_)) => {}
            Some(Err(err)) => panic!("read failed before the close frame: {err}"),
        }
    }
}

fn envelope(kind: Kind, subject: &str, payload: Value) -> Value {
    let envelope = Envelope::builder(kind, subject)
        .payload_json(payload)
        .build()
        .expect("valid envelope");
    serde_json::to_value(envelope).unwrap()
}

async fn post_with_key(server: &Server, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = server
        .http
        .post(server.url(path))
        .header("x-ace-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    crate::answer(response).await
}

/// The value of the metric line starting with `name ` (0 when absent).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

// --- finding 3: memory bounded in bytes -------------------------------------------------------

#[tokio::test]
async fn given_sixteen_subscribers_that_never_read_when_large_messages_are_published_then_bytes_bounds_cut_them_off_and_another_principal_is_served()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        ("observer", "observer", "service", 1),
        ("human", "human", "human", 1),
    ];
    let file = dir.path().join("api-keys.yaml");
    std::fs::write(&file, keys_yaml(&keys)).unwrap();
    let server = Server::start_with(&dir.path().join("data"), |config| {
        config.auth = AuthConfig {
            mode: AuthMode::Enforced,
            api_keys: Some(file),
            ..AuthConfig::default()
        };
        config.streams.create_defaults = false;
        config.limits.ws.max_queued_bytes = 2 * 1024 * 1024;
        config.limits.ws.max_queued_bytes_per_principal = 8 * 1024 * 1024;
    })
    .await;
    let attacker = key_of("observer");
    let mut idle = Vec::new();
    for i in 0..16 {
        let mut socket = ws_as(&server, Some(&attacker), None).await;
        let subscribe = json!({"type": "subscribe", "id": "s", "sid": format!("s{i}"),
            "pattern": QUERY});
        let answer = ask(&mut socket, subscribe).await;
        assert_eq!(answer["type"], "ok", "{answer}");
        idle.push(socket);
    }
    let mut other = ws_as(&server, Some(&key_of("human")), None).await;
    let subscribe = json!({"type": "subscribe", "id": "1", "sid": "m", "pattern": MATRIX});
    assert_eq!(ask(&mut other, subscribe).await["type"], "ok");

    // 0.9 MB messages until every idle subscriber is cut off (16 x 0.9 MB per publish).
    let big = envelope(Kind::Query, QUERY, json!({ "blob": "q".repeat(900_000) }));
    let cut = "ace_comms_ws_closes_total{reason=\"slow_consumer\"}";
    let mut published = 0;
    let mut round_trips = 0;
    loop {
        let text = server.metrics().await;
        let queued = metric(&text, "ace_comms_ws_queued_bytes");
        assert!(
            queued <= 8.0 * 1024.0 * 1024.0 + 1_000_000.0,
            "queued {queued} bytes: past the principal's bound"
        );
        if metric(&text, cut) >= 16.0 {
            break;
        }
        assert!(published < 400, "not every idle subscriber was cut off");
        for _ in 0..4 {
            let (status, body) = post_with_key(&server, &attacker, "/api/v1/messages", &big).await;
            assert_eq!(status, 202, "{body}");
            published += 1;
        }
        // The other principal's round trip works during the attack.
        let frame = json!({"type": "publish", "id": format!("p{published}"),
            "envelope": envelope(Kind::Event, MATRIX, json!({"n": published}))});
        other
            .send(Message::Text(frame.to_string().into()))
            .await
            .unwrap();
        let (mut ok, mut delivered) = (false, false);
        while !(ok && delivered) {
            let Message::Text(text) = next(&mut other).await else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            match frame["type"].as_str() {
                Some("ok") => ok = true,
                Some("message") => delivered = true,
                _ => panic!("the other principal got {frame}"),
            }
        }
        round_trips += 1;
    }
    assert!(
        published as f64 * 0.9 * 16.0 > 3.0 * 8.0,
        "the attack offered several times the bound"
    );
    assert!(round_trips > 0);
    for socket in &mut idle {
        let frame = close_frame(socket).await;
        assert_eq!(u16::from(frame.code), 4008, "{frame:?}");
        assert!(
            frame.reason.contains("limits.ws.max_queued_bytes"),
            "{frame:?}"
        );
    }
    drop(idle);
    let deadline = Instant::now() + PATIENCE;
    while metric(&server.metrics().await, "ace_comms_ws_queued_bytes") > 0.0 {
        assert!(Instant::now() < deadline, "queued bytes never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

// --- finding 6: credentials re-checked on live connections -----------------------------------

fn secret() -> String {
    "net-secret-0123456789abcdef0123456789abcdef".to_owned()
}

#[tokio::test]
async fn given_a_live_socket_whose_jwt_expires_when_exp_passes_then_it_is_closed_with_4001() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("jwt.secret");
    std::fs::write(&secret_file, secret()).unwrap();
    let server = Server::start_with(&dir.path().join("data"), |config| {
        config.auth = AuthConfig {
            mode: AuthMode::Enforced,
            jwt: Some(JwtConfig {
                leeway_secs: 0,
                ..JwtConfig::with_keys(vec![KeySource::HmacSecret {
                    path: secret_file,
                    kid: None,
                }])
            }),
            ..AuthConfig::default()
        };
    })
    .await;
    let claims = json!({
        "sub": "short-lived", "iat": now(), "exp": now() + 3,
        "roles": ["human"], "clearance": 1, "principal_type": "human",
    });
    let key = EncodingKey::from_secret(secret().as_bytes());
    let token =
        jsonwebtoken::encode(&Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key).unwrap();
    let opened = Instant::now();
    let mut socket = ws_as(&server, None, Some(&token)).await;
    let subscribe = json!({"type": "subscribe", "id": "1", "sid": "m", "pattern": MATRIX});
    assert_eq!(ask(&mut socket, subscribe).await["type"], "ok");
    let frame = close_frame(&mut socket).await;
    let after = opened.elapsed();
    assert_eq!(u16::from(frame.code), 4001, "{frame:?}");
    assert!(frame.reason.contains("expired"), "{frame:?}");
    assert!(
        after >= Duration::from_secs(1),
        "closed before exp: {after:?}"
    );
    assert!(
        server
            .metrics()
            .await
            .contains("ace_comms_ws_closes_total{reason=\"credentials\"} 1")
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_live_subscription_when_its_api_key_is_removed_and_reloaded_then_it_is_closed_with_4001()
 {
    let dir = tempfile::tempdir().unwrap();
    let both = [
        ("admin", "admin", "service", 5),
        ("human", "human", "human", 1),
    ];
    let server = start_with_keys(dir.path(), &both).await;
    let mut socket = ws_as(&server, Some(&key_of("human")), None).await;
    let subscribe = json!({"type": "subscribe", "id": "1", "sid": "m", "pattern": MATRIX});
    assert_eq!(ask(&mut socket, subscribe).await["type"], "ok");
    let mut kept = ws_as(&server, Some(&key_of("admin")), None).await;

    std::fs::write(
        dir.path().join("api-keys.yaml"),
        keys_yaml(&[("admin", "admin", "service", 5)]),
    )
    .unwrap();
    let (status, body) = post_with_key(
        &server,
        &key_of("admin"),
        "/api/v1/admin/reload",
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let frame = close_frame(&mut socket).await;
    assert_eq!(u16::from(frame.code), 4001, "{frame:?}");
    assert!(frame.reason.contains("reload"), "{frame:?}");
    // A connection whose key is still valid stays.
    let answer = ask(
        &mut kept,
        json!({"type": "unsubscribe", "id": "2", "sid": "none"}),
    )
    .await;
    assert_eq!(answer["error"]["code"], "NOT_FOUND", "{answer}");
    server.stop().await;
}

// --- finding 10: slow clients -----------------------------------------------------------------

/// A TCP connection to `server` from `source` (any 127.0.0.0/8 address is this host).
async fn connect_from(server: &Server, source: [u8; 4]) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    let addr: SocketAddr = server.addr().parse().unwrap();
    socket.connect(addr).await.unwrap()
}

/// Reads the answer's status line and headers (and whatever body came with them).
async fn read_head(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(PATIENCE, async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer in time");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn given_five_addresses_holding_every_slot_with_slow_headers_when_another_client_asks_then_it_is_answered_at_once()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| {
        c.limits.max_connections = 10;
        c.limits.max_connections_per_address = 2;
        c.limits.header_timeout_ms = 20_000;
    })
    .await;
    let mut slow = Vec::new();
    for source in 2..=6u8 {
        for _ in 0..2 {
            let mut stream = connect_from(&server, [127, 0, 0, source]).await;
            stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
            slow.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut legit = connect_from(&server, [127, 0, 0, 1]).await;
    legit
        .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut legit).await;
    let took = started.elapsed();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(took < Duration::from_secs(3), "answered after {took:?}");
    let evicted = metric(&server.metrics().await, "ace_comms_http_evictions_total");
    assert!(evicted >= 1.0, "an idle connection made room: {evicted}");
    server.stop().await;
}

const PUBLISH_HEAD: &str =
    "POST /api/v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n";

/// Reads the answer's head from a read half.
async fn read_head_of(reader: &mut tokio::net::tcp::OwnedReadHalf) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(PATIENCE, async {
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = reader.read(&mut buf).await.unwrap_or(0);
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer in time");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn given_a_body_sent_one_byte_at_a_time_when_the_total_deadline_passes_then_408_though_each_byte_was_on_time()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.body_timeout_ms = 1_000).await;
    let stream = TcpStream::connect(server.addr()).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head = format!("{PUBLISH_HEAD}content-length: 100\r\n\r\n");
    writer.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        // One byte every 200 ms: each one well within any timeout per chunk.
        for _ in 0..60 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let answer = read_head_of(&mut reader).await;
    let took = started.elapsed();
    trickle.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"TIMEOUT\""), "{answer}");
    assert!(answer.contains("limits.body_timeout_ms"), "{answer}");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "answered after {took:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_no_valid_credentials_and_a_body_that_never_comes_when_publishing_then_401_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_keys(dir.path(), &[("human", "human", "human", 1)]).await;
    for credentials in ["", "x-ace-api-key: not-a-key\r\n"] {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        let head = format!("{PUBLISH_HEAD}{credentials}content-length: 5000\r\n\r\n{{");
        let started = Instant::now();
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = read_head(&mut stream).await;
        let took = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
        assert!(answer.contains("\"UNAUTHENTICATED\""), "{answer}");
        assert!(took < Duration::from_secs(3), "answered after {took:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn given_a_content_length_over_the_limit_when_announced_then_413_before_the_body_and_never_100_continue()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with(dir.path(), |c| c.limits.max_body_bytes = 1024).await;
    for expect in ["", "expect: 100-continue\r\n"] {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        let head = format!("{PUBLISH_HEAD}{expect}content-length: 2000000\r\n\r\n");
        let started = Instant::now();
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = read_head(&mut stream).await;
        let took = started.elapsed();
        assert!(answer.starts_with("HTTP/1.1 413"), "{expect:?}: {answer}");
        assert!(!answer.contains("100 Continue"), "{answer}");
        assert!(answer.contains("\"PAYLOAD_TOO_LARGE\""), "{answer}");
        assert!(answer.contains("limits.max_body_bytes"), "{answer}");
        assert!(took < Duration::from_secs(3), "answered after {took:?}");
    }
    server.stop().await;
}

#[tokio::test]
async fn given_headers_larger_than_the_server_reads_when_sent_then_431() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    let huge = "a".repeat(1024 * 1024);
    let request = format!("GET /health HTTP/1.1\r\nhost: x\r\nx-big: {huge}\r\n\r\n");
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_head(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    server.stop().await;
}

// --- finding 13: WebSocket protocol errors --------------------------------------------------

/// A raw upgraded connection: the handshake written by hand, the 101 read.
async fn raw_upgrade(server: &Server) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
              sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n",
        )
        .await
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    stream
}

/// Reads server frames (unmasked) until a close frame: its code and reason.
async fn raw_close(stream: &mut TcpStream) -> (u16, String) {
    tokio::time::timeout(PATIENCE, async {
        loop {
            let mut head = [0u8; 2];
            stream.read_exact(&mut head).await.expect("a frame");
            let mut len = u64::from(head[1] & 0x7f);
            if len == 126 {
                len = u64::from(stream.read_u16().await.unwrap());
            } else if len == 127 {
                len = stream.read_u64().await.unwrap();
            }
            let mut payload = vec![0u8; usize::try_from(len).unwrap()];
            stream.read_exact(&mut payload).await.unwrap();
            if head[0] & 0x0f == 0x8 {
                assert!(payload.len() >= 2, "an empty close frame");
                let code = u16::from_be_bytes([payload[0], payload[1]]);
                return (code, String::from_utf8_lossy(&payload[2..]).into_owned());
            }
        }
    })
    .await
    .expect("a close frame in time")
}

#[tokio::test]
async fn given_raw_frames_breaking_the_protocol_when_sent_then_1002_or_1007_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let cases: [(&str, Vec<u8>, u16); 3] = [
        // FIN + text, no mask bit: clients must mask (RFC 6455 5.1).
        ("an unmasked frame", vec![0x81, 0x02, b'{', b'}'], 1002),
        // FIN + opcode 0x3 (reserved), masked, empty.
        ("a reserved opcode", vec![0x83, 0x80, 1, 2, 3, 4], 1002),
        // FIN + text, masked with zeros, payload 0xC3 0x28 (not UTF-8).
        (
            "invalid UTF-8",
            vec![0x81, 0x82, 0, 0, 0, 0, 0xC3, 0x28],
            1007,
        ),
    ];
    for (what, frame, expected) in cases {
        let mut stream = raw_upgrade(&server).await;
        stream.write_all(&frame).await.unwrap();
        let (code, reason) = raw_close(&mut stream).await;
        assert_eq!(code, expected, "{what}: {reason}");
        assert!(!reason.is_empty(), "{what}: the close carries a reason");
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains("ace_comms_ws_closes_total{reason=\"protocol_error\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ace_comms_ws_closes_total{reason=\"invalid_utf8\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}
