//! End-to-end tests of the server: each starts the real server (`App::open` + `App::serve`) on
//! `127.0.0.1:0` with a temporary data directory and talks real HTTP to it.
//!
//! Modules:
//! - `auth`: enforced mode — the role matrix over HTTP and WebSocket (publish, subscribe, fetch),
//!   every JWT attack and missing credential as 401, Rego and engine-failure denials, receive
//!   filtering on fetch, the policy metrics, and TLS with optional and required client
//!   certificates.
//! - `messages`: publish an envelope, a structured and a binary CloudEvent, duplicates, batches,
//!   and every error code of the publish routes with a malformed, oversized or unknown input.
//! - `cloudevents`: the official CloudEvents Python SDK posts structured, binary and batched
//!   events with a JWT (mapped subject and kind, ids kept, sender from the token, a repeat is a
//!   duplicate) and parses a stored message read as a CloudEvent; foreign events refused 401,
//!   403 and 400.
//! - `streams`: streams, consumers, fetch, ack/nak/term, one message by sequence, and their
//!   404/409/400/405 answers.
//! - `router`: the router in process — readiness before start, the request timeout (504).
//! - `agents`: heartbeats, listing and filtering, expiry on a manual clock with the
//!   online/offline events, and the 400/404 answers.
//! - `sessions`: create, read with `ETag`, replace with `If-Match`, 412/428/413/404/400, and a
//!   restart that keeps every session.
//! - `ws`: the WebSocket endpoint — every frame, every error frame, queue groups, consumer push
//!   with ack and redelivery, the close codes (1009, 4008, 1011, 1001) and the upgrade refusals.
//! - `ws_auth`: browser credentials on the upgrade — a bearer token as the `ace.bearer.`
//!   subprotocol (answered `ace.comms.v1`) or the `access_token` query parameter, bad tokens
//!   401, a lone token subprotocol 400, and no token in any log line at trace level.
//! - `agents`: heartbeats, listing and filtering, expiry on a manual clock with the
//!   online/offline events, and the 400/404 answers.
//! - `sessions`: create, read with `ETag`, replace with `If-Match`, 412/428/413/404/400, and a
//!   restart that keeps every session.
//! - `approvals`: held messages — 202 `pending_approval`, approve (released with
//!   `approval_id`), reject (dead letter, requester answered), expiry on a manual clock, a
//!   restart while pending, a held batch item, the ledger entries of each decision, only the
//!   approver role deciding in enforced mode (403 for human and admin), and the
//!   400/404/409/415 answers.
//! - `integrity`: required signatures (missing, unknown key, tampered, impostor → 401 naming the
//!   pattern; a good one stored and still verifying), and `governance.pii` fields redacted in
//!   the stored payload or kept, per `pii.redact_stored`.
//! - `asyncapi`: `/asyncapi.json` is AsyncAPI 3.0.0, served without credentials, one message per
//!   variant of the Rust frame enums both ways, frames of the Rust types valid against it and
//!   broken ones not (python-jsonschema), loaded by the `asyncapi3` object model.
//! - `mlt`: the ML kernel's API under `/api/ml/v1` — its document equal to
//!   `contracts/ml/ml_api.json`, the ML event flow end to end (experiences, drift insight, a
//!   plan held for a human, approved, applied, snapshot, rollback) with every event checked by
//!   python-jsonschema and found in the ledger, schemathesis over every operation, the errors.
//! - `openapi`: `/openapi.json` is OpenAPI 3.1, agrees with the router both ways, and real
//!   answers validate against the schemas it gives.
//! - `ledger`: entries, checkpoints, inclusion and consistency proofs over HTTP, checked with an
//!   independent RFC 6962 verifier and `ed25519-dalek`; config changes and dead letters as
//!   entries; bad parameters; `verify_dir` after shutdown.
//! - `registry`: the schema registry over HTTP — admin-only registration (403 and a `denied`
//!   entry otherwise), 409 with each incompatibility's pointer and reason, the dry-run check,
//!   per-subject modes, `config_changed` entries, registrations kept across a restart, and a
//!   required contract refusing messages without a valid payload; bad input 400/404/409.
//! - `reload`: credentials and policies reloaded by `POST /api/v1/admin/reload` — keys added
//!   and removed, a rotated JWT secret, a new Rego rule, broken files refused with the old
//!   policy serving, monotonic policy counters, admin only, the `config_changed` entry.
//! - `system_messages`: one run provoking every message the server publishes itself (presence,
//!   dead letters after `term` and `max_deliver`, approvals requested, approved, rejected and
//!   expired, the requester's answer), all captured over a WebSocket subscription to `>` and
//!   checked by python-jsonschema against `contracts/` and the catalogue's subjects.
//! - `attacks`: the security regression suite (see its module index and SECURITY.md).
//! - `on_nats`: two servers with `engine: nats` on one NATS server: published over HTTP on one,
//!   delivered over WebSocket by the other; one durable consumer's work shared, none twice.
//! - `mcp`: `/mcp` as JSON-RPC over HTTP — a foreign Host or Origin refused 403, no or a wrong
//!   credential 401, configured hosts and origins admitted; a session's tool calls judged as
//!   its caller (a denial as an error result with `FORBIDDEN` and a `denied` ledger entry).
//! - `metrics`: `/metrics` after traffic of every kind (HTTP, CloudEvents, WebSocket, a
//!   consumer, approvals, agents, a session) read by the official `prometheus_client` parser,
//!   each family of the specification with its labels and values; `deploy/check.py` holding
//!   the Grafana dashboard and alert rules to a real scrape.
//! - `qos`: the `realtime` class's lifetime on every path (ingress refusal, durable consumer,
//!   approval) and the classes that have none.
//! - `lifecycle`: health, readiness, metrics, the connection limits, and a restart on the same
//!   data directory that loses no acknowledged message.
//! - `storage_faults`: a stream's files damaged between two runs (a segment rolled back, a bit
//!   flipped inside the dedup window, a segment cut inside its header, a torn tail): the server
//!   starts, the damaged stream is `read_only` serving what survived and refusing writes with
//!   `STREAM_DAMAGED`, the others serve, `/ready` and `/metrics` say so.
//! - `repair`: a damaged stream repaired over HTTP (dry run changing nothing, the repair, a
//!   publish above the high-water mark, the durable consumer continuing, the `stream_repaired`
//!   entry), admin only (403 and a `denied` entry otherwise), and a stream halted by a failed
//!   fsync while running recorded once as `storage_damaged`, then repaired.
//! - `workflows`: the nine shipped workflows, each from its trigger published to the server to a
//!   real handler subscribed on its kernel subject (the rendered parameters, the workflow's own
//!   principal) and its follow-up event; a filtered, a rate-limited, a timed-out-and-retried and
//!   a failed run counted; a workflow file edited and broken while the server runs; the
//!   run-time switch; the routes when workflows are off.

mod agents;
mod approvals;
mod asyncapi;
mod attacks;
mod auth;
mod cloudevents;
mod integrity;
mod ledger;
mod lifecycle;
mod mcp;
mod messages;
mod metrics;
mod mlt;
mod on_nats;
mod openapi;
mod qos;
mod registry;
mod reload;
mod repair;
mod router;
mod sessions;
mod storage_faults;
mod streams;
mod system_messages;
mod workflows;
mod ws;
mod ws_auth;

use std::path::Path;
use std::sync::Arc;

use ace_envelope::{Clock, Envelope, Kind, SystemClock};
use ace_server::{App, Config};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A subject captured by the default `ACE_EVENTS` stream.
pub(crate) const EVENT_SUBJECT: &str = "ace.comms.http.service.kpi.evt.v1";

/// A running server and how to stop it.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), ace_server::ServerError>>>,
}

impl Server {
    /// Starts a server with default settings under `data_dir`.
    pub(crate) async fn start(data_dir: &Path) -> Server {
        Server::start_with(data_dir, |_| {}).await
    }

    /// Starts a server under `data_dir` after `tweak` adjusts its config.
    pub(crate) async fn start_with(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
        let mut config = Config {
            data_dir: data_dir.to_path_buf(),
            ..Config::default()
        };
        tweak(&mut config);
        Server::start_clocked(&config, Arc::new(SystemClock)).await
    }

    /// Starts a server on `config` reading time from `clock` (a `ManualClock` in tests of
    /// expiry).
    pub(crate) async fn start_clocked(config: &Config, clock: Arc<dyn Clock>) -> Server {
        Server::start_durable(config, clock, Arc::new(ace_bus::OsDurability)).await
    }

    /// Starts a server on `config` whose streams write and sync through `durability` (a
    /// device that fails on demand).
    pub(crate) async fn start_durable(
        config: &Config,
        clock: Arc<dyn Clock>,
        durability: Arc<dyn ace_bus::Durability>,
    ) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = App::open_with(config, clock, durability)
            .await
            .expect("the server opens");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listener, async move {
            let _ = stopped.await;
        }));
        Server {
            base,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The address as `host:port`.
    pub(crate) fn addr(&self) -> &str {
        self.base.trim_start_matches("http://")
    }

    /// The full URL of `path`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signals shutdown and waits for `serve` to drain and close the engine.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().expect("clean shutdown");
        }
    }

    /// `POST path` with a JSON body; the status and the JSON answer (`Null` when empty).
    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        answer(self.http.get(self.url(path)).send().await.unwrap()).await
    }

    /// The Prometheus text of `GET /metrics`.
    pub(crate) async fn metrics(&self) -> String {
        let response = self.http.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Fetches up to `batch` messages for `consumer` of `stream` (waiting at most 500 ms for
    /// the first) and answers their sequences.
    pub(crate) async fn fetch_seqs(&self, stream: &str, consumer: &str, batch: usize) -> Vec<u64> {
        let path = format!("/api/v1/streams/{stream}/consumers/{consumer}/fetch");
        let (status, got) = self
            .post(&path, &json!({"batch": batch, "expires_ms": 500}))
            .await;
        assert_eq!(status, 200, "{got}");
        got["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["seq"].as_u64().unwrap())
            .collect()
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str) -> (u16, Value) {
        answer(self.http.delete(self.url(path)).send().await.unwrap()).await
    }

    /// `POST path` with raw bytes and a content type.
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, Value) {
        let response = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        answer(response).await
    }
}

/// The status and the JSON body of a response (`Null` when the body is empty).
pub(crate) async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let bytes = response.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "status {status}: body is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, body)
}

/// A valid event envelope on `subject`, as JSON.
pub(crate) fn envelope_on(subject: &str, payload: Value) -> Value {
    let envelope = Envelope::builder(Kind::Event, subject)
        .payload_json(payload)
        .build()
        .expect("valid envelope");
    serde_json::to_value(envelope).unwrap()
}

/// A valid event envelope on [`EVENT_SUBJECT`].
pub(crate) fn event(n: u64) -> Value {
    envelope_on(EVENT_SUBJECT, json!({ "n": n }))
}

/// Asserts an error answer: its status, its code, and the shape of the error body.
pub(crate) fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    let (got_status, body) = answer;
    assert_eq!(*got_status, status, "status of {body}");
    assert_eq!(body["error"]["code"], code, "code of {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    let decoded: ace_envelope::ErrorBody =
        serde_json::from_value(body.clone()).expect("the body is an ErrorBody");
    assert_eq!(decoded.error.code.as_str(), code);
    if let Err(errors) = error_schema().validate(body) {
        panic!("the body breaks contracts/comms/errors.schema.json: {errors:?}\n{body}");
    }
}

/// `contracts/comms/errors.schema.json`, compiled once.
fn error_schema() -> &'static ace_contracts::RegisteredSchema {
    static SCHEMA: std::sync::OnceLock<std::sync::Arc<ace_contracts::RegisteredSchema>> =
        std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        let text = include_str!("../../../../contracts/comms/errors.schema.json");
        let mut registry = ace_contracts::Registry::new();
        let version = ace_contracts::Version::new(1, 0, 0);
        registry
            .register("comms.error", version, serde_json::from_str(text).unwrap())
            .expect("the errors schema compiles");
        let schema = registry.latest("comms.error").unwrap();
        assert!(
            schema.validate(&json!({"error": {}})).is_err(),
            "the schema checks"
        );
        schema
    })
}
