//! The resident memory of the real `ace-comms serve` under the memory-exhaustion attack: an
//! enforced server, sixteen WebSocket subscriptions of the least-privileged tour key that never
//! read, and 0.9 MB messages published to them until the offered bytes are many times the
//! server's byte bounds (`limits.ws.max_queued_bytes*`). The server's `VmRSS`
//! (`/proc/<pid>/status`) must stay under [`RSS_BOUND`], every idle subscriber is cut off, and
//! another principal's publish/subscribe round trip over WebSocket keeps working throughout.
//!
//! The WebSocket clients are written by hand over `std::net::TcpStream` (a masked frame per
//! client message), so the test needs no WebSocket library and reads exactly what it chooses to.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use ace_envelope::{Envelope, Kind};

/// The bound of the server's resident memory during the attack (the documented default bound
/// for it: the sum of the `limits.ws.max_queued_bytes_*` defaults leaves room under it).
const RSS_BOUND_MIB: u64 = 256;
/// The subject the attacker's subscriptions follow (the tour agent may publish and subscribe).
const AGENT: &str = "ace.comms.agent.agent.planner.evt.v1";
/// The subject of the other principal's round trips.
const OPS: &str = "ace.comms.http.service.ops.evt.v1";

/// The server's resident set, in MiB, from `/proc/<pid>/status`.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib / 1024
}

/// A client frame: FIN, `opcode`, masked `payload`.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | u8::try_from(len).unwrap());
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&u64::try_from(len).unwrap().to_be_bytes());
    }
    let mask = [7u8, 31, 127, 3];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// Upgrades a new connection to `/ws` with `key`, after the 101.
fn upgrade(addr: &str, key: &str) -> TcpStream {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        socket,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         X-ACE-API-Key: {key}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        socket.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    socket
}

/// The next server frame: its opcode and payload.
fn read_frame(socket: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    socket.read_exact(&mut head).unwrap();
    let mut len = u64::from(head[1] & 0x7f);
    if len == 126 {
        let mut ext = [0u8; 2];
        socket.read_exact(&mut ext).unwrap();
        len = u64::from(u16::from_be_bytes(ext));
    } else if len == 127 {
        let mut ext = [0u8; 8];
        socket.read_exact(&mut ext).unwrap();
        len = u64::from_be_bytes(ext);
    }
    let mut payload = vec![0u8; usize::try_from(len).unwrap()];
    socket.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// Sends a text frame and reads until both its `ok` and a delivered `message` came (answering
/// pings on the way).
fn round_trip(socket: &mut TcpStream, text: &str) {
    socket.write_all(&frame(0x1, text.as_bytes())).unwrap();
    let (mut ok, mut delivered) = (false, false);
    while !(ok && delivered) {
        match read_frame(socket) {
            (0x1, payload) => {
                let answer: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                match answer["type"].as_str() {
                    Some("ok") => ok = true,
                    Some("message") => delivered = true,
                    _ => panic!("the other principal got {answer}"),
                }
            }
            (0x9, payload) => socket.write_all(&frame(0xA, &payload)).unwrap(),
            (0x8, payload) => panic!("the other principal was closed: {payload:?}"),
            _ => {}
        }
    }
}

fn envelope(subject: &str, payload: serde_json::Value) -> String {
    let envelope = Envelope::builder(Kind::Event, subject)
        .payload_json(payload)
        .build()
        .unwrap();
    serde_json::to_string(&envelope).unwrap()
}

/// `POST /api/v1/messages` with `key`; the status.
fn publish(addr: &str, key: &str, body: &str) -> u16 {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        socket,
        "POST /api/v1/messages HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-ACE-API-Key: {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    socket.write_all(body.as_bytes()).unwrap();
    let mut reply = String::new();
    socket.read_to_string(&mut reply).unwrap();
    reply[9..12].parse().unwrap()
}

/// The value of the metric line `name value`.
fn metric(addr: &str, name: &str) -> f64 {
    let mut socket = TcpStream::connect(addr).unwrap();
    write!(
        socket,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    socket.read_to_string(&mut reply).unwrap();
    reply
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[test]
fn given_sixteen_subscribers_that_never_read_when_0_9_mb_messages_are_published_then_the_servers_rss_stays_bounded_and_others_are_served()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = crate::write(dir.path(), "keys.yaml", &crate::serve::tour_keys(true));
    let config = format!(
        "auth:\n  mode: enforced\n  api_keys: {keys}\nstreams:\n  create_defaults: false\n"
    );
    let config = crate::write(dir.path(), "ace.yaml", &config);
    let server = crate::serve::start(&dir.path().join("data"), &["--config", &config]);
    let (addr, pid) = (server.addr.clone(), server.pid());
    let before = rss_mib(pid);

    let mut idle = Vec::new();
    for i in 0..16 {
        let mut socket = upgrade(&addr, "tour-agent-key");
        let subscribe =
            format!(r#"{{"type":"subscribe","id":"s","sid":"s{i}","pattern":"{AGENT}"}}"#);
        socket.write_all(&frame(0x1, subscribe.as_bytes())).unwrap();
        let (op, answer) = read_frame(&mut socket);
        assert_eq!(op, 0x1);
        assert!(
            String::from_utf8_lossy(&answer).contains(r#""type":"ok""#),
            "{}",
            String::from_utf8_lossy(&answer)
        );
        idle.push(socket); // never read again
    }
    let mut other = upgrade(&addr, "tour-admin-key");
    let subscribe = format!(r#"{{"type":"subscribe","id":"s","sid":"o","pattern":"{OPS}"}}"#);
    other.write_all(&frame(0x1, subscribe.as_bytes())).unwrap();
    assert_eq!(read_frame(&mut other).0, 0x1);

    let big = envelope(AGENT, serde_json::json!({ "blob": "a".repeat(900_000) }));
    let started = Instant::now();
    let mut peak = before;
    for n in 0..160 {
        assert_eq!(publish(&addr, "tour-agent-key", &big), 202, "publish {n}");
        if n % 8 == 7 {
            peak = peak.max(rss_mib(pid));
            let probe = format!(
                r#"{{"type":"publish","id":"p{n}","envelope":{}}}"#,
                envelope(OPS, serde_json::json!({ "n": n }))
            );
            round_trip(&mut other, &probe);
        }
    }
    let attack = started.elapsed();
    peak = peak.max(rss_mib(pid));
    let cut = metric(&addr, "ace_comms_ws_closes_total{reason=\"slow_consumer\"}");
    let after = rss_mib(pid);
    eprintln!(
        "RSS before {before} MiB, peak {peak} MiB, after {after} MiB; 160 x 0.9 MB to 16 idle \
         subscribers in {attack:?}; {cut} cut off"
    );
    assert!(
        peak < RSS_BOUND_MIB,
        "the server grew to {peak} MiB (bound {RSS_BOUND_MIB} MiB)"
    );
    assert_eq!(
        cut, 16.0,
        "every idle subscriber is cut off as a slow consumer"
    );
    drop(idle);
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
}
