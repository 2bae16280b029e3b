//! End-to-end tests of `ace-client`: each starts the real server in process (`ace_server::run`
//! on `127.0.0.1:0` with a temporary data directory) and drives it through the client only.
//!
//! Modules:
//! - `approvals`: a held publish over HTTP and WebSocket is `ClientError::Held`; list, approve,
//!   reject, and a second decision refused `CONFLICT`.
//! - `failover`: a client given several servers — one that cannot be reached is left for the
//!   next over HTTP and WebSocket; two servers on one NATS (`engine: nats`), the first stopped
//!   mid-run, the client carries on with the second and reads every message it published.
//! - `http`: every HTTP method of `Client` — publish, batch, streams, consumers, fetch,
//!   ack/nak/term, stored messages, health — and the error mapping (404 unknown stream,
//!   400 bad envelope, 413 oversized body, an unreachable server).
//! - `pool`: the bounded connection pool through a counting proxy — 300 concurrent publishes
//!   over a pool of 4 never hold more than 4 connections and reuse them, 400 over the default
//!   pool stay within it, and a request waiting for a busy pool times out.
//! - `presence`: agents (heartbeat, list with a capability filter, one agent, 404) and sessions
//!   (create, versioned update, 412 stale, 428 without precondition, 404).
//! - `tls`: the server with TLS (certificates made by rcgen in a temporary directory): publish
//!   and fetch over https, a subscription over wss, an untrusted server refused, and mutual TLS
//!   (no client certificate refused, a certificate from the client CA accepted and, with
//!   `auth.mtls` enforced, the principal its SPIFFE id names).
//! - `ws`: `WsConnection` — live and queue-group subscriptions, consumer push with ack/nak,
//!   publish, request/reply, error frames, and the 1009, 4008 and 1001 closes.

mod approvals;
mod failover;
mod http;
mod pool;
mod presence;
mod tls;
mod ws;

use std::path::Path;

use ace_client::{Client, ClientBuilder};
use ace_envelope::{Envelope, Kind};
use ace_server::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A subject captured by the server's default `ACE_EVENTS` stream.
pub(crate) const EVENT_SUBJECT: &str = "ace.comms.http.service.kpi.evt.v1";

/// A server running in this process, and a client of it.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ace_server::ServerError>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts a server with default settings in a fresh temporary data directory.
    pub(crate) async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusts its config.
    pub(crate) async fn start_with(tweak: impl FnOnce(&mut Config)) -> Server {
        Server::start_with_client(tweak, |builder| builder).await
    }

    /// Starts a server after `tweak` adjusts its config, with a client `client` sets up (its
    /// CA, its certificate). The URL is `https://` when the config has a `tls` section.
    pub(crate) async fn start_with_client(
        tweak: impl FnOnce(&mut Config),
        client: impl FnOnce(ClientBuilder) -> ClientBuilder,
    ) -> Server {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut config = config(dir.path());
        tweak(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free port");
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", listener.local_addr().expect("bound"));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(ace_server::run(listener, config, async move {
            let _ = stopped.await;
        }));
        let client = client(Client::builder(&base))
            .build()
            .expect("a valid URL and TLS files");
        wait_ready(&client, &task).await;
        Server {
            base,
            client,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// Signals shutdown and waits for the server to drain.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("joins").expect("clean shutdown");
        }
    }
}

fn config(data_dir: &Path) -> Config {
    Config {
        data_dir: data_dir.to_path_buf(),
        ..Config::default()
    }
}

/// Polls `/ready` until the server takes traffic (it opens its engine after binding).
async fn wait_ready(client: &Client, task: &JoinHandle<Result<(), ace_server::ServerError>>) {
    for _ in 0..200 {
        assert!(!task.is_finished(), "the server stopped while starting");
        if matches!(client.ready().await, Ok(true)) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the server never became ready");
}

/// A valid event envelope on `subject` with a small JSON payload.
pub(crate) fn event(subject: &str, n: u64) -> Envelope {
    Envelope::builder(Kind::Event, subject)
        .payload_json(serde_json::json!({ "n": n }))
        .build()
        .expect("a valid envelope")
}
