//! Browser-friendly WebSocket credentials: a bearer token offered as the subprotocol
//! `ace.bearer.<token>` next to `ace.comms.v1` (answered with `ace.comms.v1` only), or as the
//! `access_token` query parameter; a bad token refused 401 before any socket either way, a
//! token subprotocol without `ace.comms.v1` refused 400, and the token in no log line.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::Server;
use crate::auth::{Socket, claims, signed, start_enforced, ws_ask};

/// Upgrades to `path` (`/ws`, or `/ws?access_token=…`) offering `protocols`, if any; the socket
/// and the subprotocol the server answered.
async fn connect(
    server: &Server,
    path: &str,
    protocols: Option<&str>,
) -> Result<(Socket, Option<String>), tungstenite::Error> {
    let mut request = format!("ws://{}{path}", server.addr())
        .into_client_request()
        .unwrap();
    if let Some(protocols) = protocols {
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(protocols).unwrap(),
        );
    }
    let (socket, response) = tokio_tungstenite::connect_async(request).await?;
    let answered = response
        .headers()
        .get("sec-websocket-protocol")
        .map(|v| v.to_str().unwrap().to_owned());
    Ok((socket, answered))
}

/// Publishes one event the agent role may publish, and expects `ok`.
async fn publish_works(socket: &mut Socket) {
    let envelope = ace_envelope::Envelope::builder(
        ace_envelope::Kind::Event,
        "ace.comms.agent.agent.a1.evt.status.v1",
    )
    .payload_json(json!({"n": 1}))
    .build()
    .unwrap();
    let answer = ws_ask(
        socket,
        json!({"type": "publish", "id": "p1", "envelope": envelope}),
    )
    .await;
    assert_eq!(answer["type"], "ok", "{answer}");
    socket.close(None).await.unwrap();
}

/// Asserts the upgrade was refused with `status` and the error `code`.
fn assert_refused(
    result: Result<(Socket, Option<String>), tungstenite::Error>,
    status: u16,
    code: &str,
) {
    match result {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), status);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap())
                .expect("the error body");
            assert_eq!(body["error"]["code"], code, "{body}");
        }
        Err(other) => panic!("expected {status}, got {other}"),
        Ok(_) => panic!("expected {status}, got a socket"),
    }
}

#[tokio::test]
async fn given_a_token_as_subprotocol_when_upgrading_then_accepted_and_answered_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let token = signed(&claims());
    let offered = format!("ace.comms.v1, ace.bearer.{token}");
    let (mut socket, answered) = connect(&server, "/ws", Some(&offered))
        .await
        .expect("upgrade");
    assert_eq!(answered.as_deref(), Some("ace.comms.v1"));
    publish_works(&mut socket).await;

    // The token offered first: the answer is still the real protocol.
    let offered = format!("ace.bearer.{token}, ace.comms.v1");
    let (mut socket, answered) = connect(&server, "/ws", Some(&offered))
        .await
        .expect("upgrade");
    assert_eq!(answered.as_deref(), Some("ace.comms.v1"));
    publish_works(&mut socket).await;

    let bad = format!("ace.comms.v1, ace.bearer.{token}x");
    assert_refused(
        connect(&server, "/ws", Some(&bad)).await,
        401,
        "UNAUTHENTICATED",
    );
    let alone = format!("ace.bearer.{token}");
    assert_refused(
        connect(&server, "/ws", Some(&alone)).await,
        400,
        "INVALID_REQUEST",
    );
    // A page of an origin not allowed is refused for that first, whatever it offers.
    let mut request = format!("ws://{}/ws", server.addr())
        .into_client_request()
        .unwrap();
    let headers = request.headers_mut();
    headers.insert("origin", HeaderValue::from_static("https://evil.example"));
    headers.insert(
        "sec-websocket-protocol",
        HeaderValue::from_str(&alone).unwrap(),
    );
    let refused = tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| (socket, None));
    assert_refused(refused, 403, "FORBIDDEN");
    server.stop().await;
}

#[tokio::test]
async fn given_a_token_as_query_parameter_when_upgrading_then_accepted_and_a_bad_one_is_401() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let token = signed(&claims());
    let (mut socket, answered) = connect(&server, &format!("/ws?access_token={token}"), None)
        .await
        .expect("upgrade");
    assert_eq!(answered, None, "no subprotocol offered, none answered");
    publish_works(&mut socket).await;

    let (mut socket, answered) = connect(
        &server,
        &format!("/ws?x=1&access_token={token}"),
        Some("ace.comms.v1"),
    )
    .await
    .expect("upgrade");
    assert_eq!(answered.as_deref(), Some("ace.comms.v1"));
    publish_works(&mut socket).await;

    let expired = {
        let mut claims = claims();
        claims["exp"] = json!(crate::auth::now() - 10);
        signed(&claims)
    };
    for path in [
        "/ws?access_token=not-a-jwt".to_owned(),
        format!("/ws?access_token={expired}"),
        "/ws?access_token=".to_owned(),
        "/ws".to_owned(),
    ] {
        assert_refused(connect(&server, &path, None).await, 401, "UNAUTHENTICATED");
    }
    server.stop().await;
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The probe below, in a process of its own: `tracing` caches per call site whether anyone
/// listens, across every thread of the process, so a subscriber of one test's thread misses
/// lines while other tests run in parallel.
#[tokio::test]
async fn given_tokens_in_the_query_and_subprotocol_when_logged_at_trace_then_no_line_holds_them() {
    let out = tokio::task::spawn_blocking(|| {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "ws_auth::probe_logs_of_token_upgrades",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the probe failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
#[ignore = "run alone in its own process by the test above"]
async fn probe_logs_of_token_upgrades() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Alone in its process: the server's tasks, on any thread, log through this subscriber.
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let token = signed(&claims());
    let (mut socket, _) = connect(&server, &format!("/ws?access_token={token}"), None)
        .await
        .expect("upgrade");
    publish_works(&mut socket).await;
    let offered = format!("ace.comms.v1, ace.bearer.{token}");
    let (mut socket, _) = connect(&server, "/ws", Some(&offered))
        .await
        .expect("upgrade");
    publish_works(&mut socket).await;
    let bad = "eyJhbGciOiJSUzI1NiJ9.bm90LWEtY2xhaW0.c2lnbmF0dXJl";
    assert_refused(
        connect(&server, &format!("/ws?access_token={bad}"), None).await,
        401,
        "UNAUTHENTICATED",
    );
    server.stop().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("/ws?access_token=[REDACTED]"),
        "the request spans were captured:\n{text}"
    );
    for secret in [token.as_str(), bad] {
        let signature = secret.rsplit('.').next().unwrap();
        assert!(
            !text.contains(signature),
            "a token reached the logs:\n{text}"
        );
    }
}
