//! [`Client`]: one typed method per `/api/v1` route (plus `/health` and `/ready`), over one
//! pooled `reqwest` connection set.
//!
//! The pool is bounded: at most `max_connections` requests are on the wire at once (a request
//! waits for a free place first), and as many idle connections are kept alive for the next
//! ones. The server speaks HTTP/1.1, one request at a time per connection, so without the bound
//! every concurrent request opens a connection of its own and a busy client runs into the
//! server's per-address connection limit (429).
//!
//! Every method sends the credentials the client was built with, maps a non-2xx answer to
//! [`ClientError::Api`] with the server's error body, and decodes a 2xx answer into the shared
//! wire type of `ace_envelope::api::http`. Path segments (stream, consumer, agent and session
//! ids) are percent-encoded, so an id can never step into another route.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::api::http::{
    Accepted, AckAnswer, AckRequest, AgentList, AgentPresence, Approval, ApprovalDecision,
    ApprovalList, ApprovalStatus, BatchAnswer, ConsumerConfig, ConsumerInfo, ConsumerList, Decided,
    FetchAnswer, FetchRequest, FetchedMessage, Heartbeat, Pending, RepairRequest, Session,
    SessionWrite, StoredMessage, StreamConfig, StreamInfo, StreamList, StreamRepair, Verdict,
};
use ace_envelope::api::registry::{
    CompatibilityAnswer, CompatibilityRequest, RegisterSchema, RegisteredSchema, SchemaVersion,
};
use ace_envelope::{Envelope, ErrorBody};
use reqwest::header::{HeaderValue, IF_MATCH, IF_NONE_MATCH};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::error::ClientError;
use crate::tls::{ClientBuilder, TlsSettings, WsTls};

/// How the client proves who it is; sent with every request (and the WebSocket upgrade).
#[derive(Clone)]
pub(crate) enum Credentials {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `X-ACE-API-Key: <key>`.
    ApiKey(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // never print a secret
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(..)"),
            Credentials::ApiKey(_) => f.write_str("ApiKey(..)"),
        }
    }
}

impl Credentials {
    /// The header that carries them.
    pub(crate) fn header(&self) -> (&'static str, String) {
        match self {
            Credentials::Bearer(token) => ("authorization", format!("Bearer {token}")),
            Credentials::ApiKey(key) => ("x-ace-api-key", key.clone()),
        }
    }
}

/// The filters of [`Client::ledger_entries`]; `None` leaves one out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LedgerQuery {
    /// Only this kind (`accepted`, `denied`, `held`, `dead_lettered`, `config_changed`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Only entries recorded at or after this RFC 3339 time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// Only entries recorded before this RFC 3339 time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Only entries after this seq (the previous page's `next_after`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<u64>,
    /// At most this many (the server allows 1 to 1000, default 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
}

/// What a session write asserts about the session's current version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No header: the server accepts it only to create the session (an existing session
    /// answers 428 `PRECONDITION_REQUIRED`).
    None,
    /// `If-None-Match: *`: only if the session does not exist yet.
    Absent,
    /// `If-Match: *`: only if the session exists.
    Exists,
    /// `If-Match: "<version>"`: only if the current version is this one (else 412).
    Version(u64),
}

/// Requests on the wire at once, and so HTTP/1.1 connections, unless
/// [`ClientBuilder::max_connections`] says otherwise: well under the server's default
/// per-address limit (`limits.max_connections_per_address`, 256).
pub const DEFAULT_MAX_CONNECTIONS: NonZeroUsize = NonZeroUsize::new(32).unwrap();

/// A client of one ACE::COMMS server. Cheap to clone (the connection pool, and its bound, is
/// shared by every clone).
///
/// `http://` or `https://` (TLS with rustls: Mozilla's roots plus the CAs given to
/// [`Client::builder`], and a client certificate for mutual TLS).
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    /// One permit per connection: held from sending a request until its answer is read.
    permits: Arc<Semaphore>,
    /// The servers, in the order given; requests go to `current` and move on to the next when
    /// it cannot be reached.
    bases: Arc<Vec<Url>>,
    current: Arc<std::sync::atomic::AtomicUsize>,
    credentials: Option<Credentials>,
    timeout: Option<Duration>,
    ws_tls: WsTls,
}

impl Client {
    /// A client of the server at `server` (`http://host:port` or `https://host:port`,
    /// optionally with a path prefix), trusting Mozilla's roots for `https`.
    pub fn new(server: &str) -> Result<Client, ClientError> {
        Client::builder(server).build()
    }

    /// A [`ClientBuilder`] for the server at `server`: a CA of its own to trust, a client
    /// certificate to present.
    pub fn builder(server: &str) -> ClientBuilder {
        ClientBuilder::new(server)
    }

    /// The client of [`ClientBuilder::build`]: one rustls configuration, given to the HTTP pool
    /// (ALPN `h2`, `http/1.1`) and to every WebSocket (`http/1.1`); at most `max_connections`
    /// requests at once, as many connections kept alive.
    pub(crate) fn build(
        server: &str,
        tls: &TlsSettings,
        max_connections: NonZeroUsize,
    ) -> Result<Client, ClientError> {
        let bases = server
            .split(',')
            .map(|one| parse_base(one.trim()))
            .collect::<Result<Vec<Url>, ClientError>>()?;
        let mut config = tls.client_config()?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let ws_tls = WsTls(Arc::new(config.clone()));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // No redirects: reqwest would follow one to another origin (or from https to http)
        // carrying `X-ACE-API-Key`, which only `Authorization` is stripped of.
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(config)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(max_connections.get())
            .build()
            .map_err(|e| ClientError::transport("build the HTTP client", e))?;
        Ok(Client {
            http,
            permits: Arc::new(Semaphore::new(max_connections.get())),
            bases: Arc::new(bases),
            current: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            credentials: None,
            timeout: None,
            ws_tls,
        })
    }

    /// Sends `Authorization: Bearer <token>` with every request.
    pub fn with_bearer_token(mut self, token: impl Into<String>) -> Client {
        self.credentials = Some(Credentials::Bearer(token.into()));
        self
    }

    /// Sends `X-ACE-API-Key: <key>` with every request.
    pub fn with_api_key(mut self, key: impl Into<String>) -> Client {
        self.credentials = Some(Credentials::ApiKey(key.into()));
        self
    }

    /// Gives up on any request after `timeout` ([`ClientError::Transport`]); none by default.
    /// A fetch's own `expires` wait must fit inside it. Waiting for a free connection gets
    /// the same time again ([`ClientError::Timeout`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = Some(timeout);
        self
    }

    /// The base URL of the server requests go to now (the first given, until it could not be
    /// reached).
    pub fn server(&self) -> &Url {
        &self.bases[self.at()]
    }

    /// Every server given, in order.
    pub fn servers(&self) -> &[Url] {
        &self.bases
    }

    fn at(&self) -> usize {
        self.current.load(std::sync::atomic::Ordering::Acquire) % self.bases.len()
    }

    /// Moves on from server `from` to the next one (unless another request already did).
    pub(crate) fn fail_over(&self, from: usize) {
        let next = (from + 1) % self.bases.len();
        let _ = self.current.compare_exchange(
            from,
            next,
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
        );
    }

    pub(crate) fn credentials(&self) -> Option<&Credentials> {
        self.credentials.as_ref()
    }

    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The rustls configuration of this client's WebSockets.
    pub(crate) fn ws_tls(&self) -> &Arc<rustls::ClientConfig> {
        &self.ws_tls.0
    }

    // -- health

    /// `GET /health`: `Ok` while the server process answers.
    pub async fn health(&self) -> Result<(), ClientError> {
        self.send::<serde_json::Value>(Method::GET, &["health"], |r| r)
            .await
            .map(drop)
    }

    /// `GET /ready`: true when the server takes traffic, false while it starts or drains
    /// (503 `UNAVAILABLE`).
    pub async fn ready(&self) -> Result<bool, ClientError> {
        match self
            .send::<serde_json::Value>(Method::GET, &["ready"], |r| r)
            .await
        {
            Ok(_) => Ok(true),
            Err(ClientError::Api { status: 503, .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    // -- messages

    /// `POST /api/v1/messages`: publishes one envelope. A message the server holds for a
    /// human's approval is [`ClientError::Held`] with its approval id.
    pub async fn publish(&self, envelope: &Envelope) -> Result<Accepted, ClientError> {
        let answer: PublishAnswer = self
            .send(Method::POST, &["api", "v1", "messages"], |r| {
                r.json(envelope)
            })
            .await?;
        answer.into_result()
    }

    /// `POST /api/v1/messages/batch`: publishes several envelopes; each is answered in its place
    /// (a refused item does not fail the call).
    pub async fn publish_batch(&self, envelopes: &[Envelope]) -> Result<BatchAnswer, ClientError> {
        self.send(Method::POST, &["api", "v1", "messages", "batch"], |r| {
            r.json(envelopes)
        })
        .await
    }

    // -- streams

    /// `GET /api/v1/streams`: every stream, by name.
    pub async fn list_streams(&self) -> Result<Vec<StreamInfo>, ClientError> {
        let list: StreamList = self
            .send(Method::GET, &["api", "v1", "streams"], |r| r)
            .await?;
        Ok(list.streams)
    }

    /// `POST /api/v1/streams`: creates a stream (the same config again is a no-op).
    pub async fn add_stream(&self, config: &StreamConfig) -> Result<StreamInfo, ClientError> {
        self.send(Method::POST, &["api", "v1", "streams"], |r| r.json(config))
            .await
    }

    /// `GET /api/v1/streams/{stream}`.
    pub async fn stream_info(&self, stream: &str) -> Result<StreamInfo, ClientError> {
        self.send(Method::GET, &["api", "v1", "streams", stream], |r| r)
            .await
    }

    /// `DELETE /api/v1/streams/{stream}`: the stream, its messages and its consumers.
    pub async fn delete_stream(&self, stream: &str) -> Result<(), ClientError> {
        self.send_empty(Method::DELETE, &["api", "v1", "streams", stream])
            .await
    }

    /// `POST /api/v1/streams/{stream}/repair`: what is damaged and what a repair keeps and gives
    /// up (a dry run without `accept_loss`), or the repair itself (admin only).
    pub async fn repair_stream(
        &self,
        stream: &str,
        accept_loss: bool,
    ) -> Result<StreamRepair, ClientError> {
        let body = RepairRequest { accept_loss };
        let path = ["api", "v1", "streams", stream, "repair"];
        self.send(Method::POST, &path, |r| r.json(&body)).await
    }

    /// `GET /api/v1/streams/{stream}/messages/{seq}`: one stored message.
    pub async fn get_message(&self, stream: &str, seq: u64) -> Result<StoredMessage, ClientError> {
        let seq = seq.to_string();
        let path = ["api", "v1", "streams", stream, "messages", &seq];
        self.send(Method::GET, &path, |r| r).await
    }

    // -- consumers

    /// `GET /api/v1/streams/{stream}/consumers`.
    pub async fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, ClientError> {
        let path = ["api", "v1", "streams", stream, "consumers"];
        let list: ConsumerList = self.send(Method::GET, &path, |r| r).await?;
        Ok(list.consumers)
    }

    /// `POST /api/v1/streams/{stream}/consumers`: creates a consumer (the same config again
    /// keeps it).
    pub async fn add_consumer(
        &self,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerInfo, ClientError> {
        let path = ["api", "v1", "streams", stream, "consumers"];
        self.send(Method::POST, &path, |r| r.json(config)).await
    }

    /// `GET /api/v1/streams/{stream}/consumers/{consumer}`.
    pub async fn consumer_info(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<ConsumerInfo, ClientError> {
        let path = consumer_path(stream, consumer, None);
        self.send(Method::GET, &path, |r| r).await
    }

    /// `DELETE /api/v1/streams/{stream}/consumers/{consumer}`.
    pub async fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<(), ClientError> {
        self.send_empty(Method::DELETE, &consumer_path(stream, consumer, None))
            .await
    }

    /// `POST …/consumers/{consumer}/fetch`: up to `batch` messages, waiting up to `expires` for
    /// the first; an empty list when none came.
    pub async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<FetchedMessage>, ClientError> {
        let ask = FetchRequest {
            batch,
            expires_ms: u64::try_from(expires.as_millis()).unwrap_or(u64::MAX),
        };
        let path = consumer_path(stream, consumer, Some("fetch"));
        let answer: FetchAnswer = self.send(Method::POST, &path, |r| r.json(&ask)).await?;
        Ok(answer.messages)
    }

    /// `POST …/consumers/{consumer}/ack`: these deliveries are done. Sequences the server could
    /// not handle are in [`AckAnswer::failed`]; when none could be, the first refusal is the
    /// error.
    pub async fn ack(
        &self,
        stream: &str,
        consumer: &str,
        seqs: &[u64],
    ) -> Result<AckAnswer, ClientError> {
        let ask = AckRequest {
            seqs: seqs.to_vec(),
            ..AckRequest::default()
        };
        self.acknowledge(stream, consumer, "ack", &ask).await
    }

    /// `POST …/consumers/{consumer}/nak`: redeliver these after `delay` (or per the consumer's
    /// backoff when `None`).
    pub async fn nak(
        &self,
        stream: &str,
        consumer: &str,
        seqs: &[u64],
        delay: Option<Duration>,
    ) -> Result<AckAnswer, ClientError> {
        let ask = AckRequest {
            seqs: seqs.to_vec(),
            delay_ms: delay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            reason: None,
        };
        self.acknowledge(stream, consumer, "nak", &ask).await
    }

    /// `POST …/consumers/{consumer}/term`: give these up; they move to the dead-letter subject
    /// with `reason`.
    pub async fn term(
        &self,
        stream: &str,
        consumer: &str,
        seqs: &[u64],
        reason: Option<&str>,
    ) -> Result<AckAnswer, ClientError> {
        let ask = AckRequest {
            seqs: seqs.to_vec(),
            delay_ms: None,
            reason: reason.map(str::to_owned),
        };
        self.acknowledge(stream, consumer, "term", &ask).await
    }

    async fn acknowledge(
        &self,
        stream: &str,
        consumer: &str,
        verb: &str,
        ask: &AckRequest,
    ) -> Result<AckAnswer, ClientError> {
        let path = consumer_path(stream, consumer, Some(verb));
        self.send(Method::POST, &path, |r| r.json(ask)).await
    }

    // -- agents

    /// `GET /api/v1/agents`, optionally only those with `capability`.
    pub async fn agents(
        &self,
        capability: Option<&str>,
    ) -> Result<Vec<AgentPresence>, ClientError> {
        let list: AgentList = self
            .send(
                Method::GET,
                &["api", "v1", "agents"],
                |r| match capability {
                    Some(c) => r.query(&[("capability", c)]),
                    None => r,
                },
            )
            .await?;
        Ok(list.agents)
    }

    /// `GET /api/v1/agents/{id}`.
    pub async fn agent(&self, id: &str) -> Result<AgentPresence, ClientError> {
        self.send(Method::GET, &["api", "v1", "agents", id], |r| r)
            .await
    }

    /// `POST /api/v1/agents/{id}/heartbeat`: registers or refreshes the agent's presence.
    pub async fn heartbeat(
        &self,
        id: &str,
        heartbeat: &Heartbeat,
    ) -> Result<AgentPresence, ClientError> {
        let path = ["api", "v1", "agents", id, "heartbeat"];
        self.send(Method::POST, &path, |r| r.json(heartbeat)).await
    }

    // -- sessions

    /// `GET /api/v1/sessions/{id}`: the state and its version.
    pub async fn session(&self, id: &str) -> Result<Session, ClientError> {
        self.send(Method::GET, &["api", "v1", "sessions", id], |r| r)
            .await
    }

    /// `PUT /api/v1/sessions/{id}`: writes `data` if `precondition` holds (412
    /// `PRECONDITION_FAILED` when the version moved on).
    pub async fn put_session(
        &self,
        id: &str,
        data: serde_json::Value,
        precondition: Precondition,
    ) -> Result<Session, ClientError> {
        let body = SessionWrite { data };
        self.send(Method::PUT, &["api", "v1", "sessions", id], |r| {
            let r = r.json(&body);
            match precondition {
                Precondition::None => r,
                Precondition::Absent => r.header(IF_NONE_MATCH, HeaderValue::from_static("*")),
                Precondition::Exists => r.header(IF_MATCH, HeaderValue::from_static("*")),
                Precondition::Version(v) => r.header(IF_MATCH, format!("\"{v}\"")),
            }
        })
        .await
    }

    // -- schema registry

    /// `GET /api/v1/registry/subjects`: every contract subject, sorted.
    pub async fn contract_subjects(&self) -> Result<Vec<String>, ClientError> {
        self.send(Method::GET, &["api", "v1", "registry", "subjects"], |r| r)
            .await
    }

    /// `GET /api/v1/registry/subjects/{subject}/versions/{version}` (`latest` for the newest).
    pub async fn contract(
        &self,
        subject: &str,
        version: &str,
    ) -> Result<SchemaVersion, ClientError> {
        let path = [
            "api", "v1", "registry", "subjects", subject, "versions", version,
        ];
        self.send(Method::GET, &path, |r| r).await
    }

    /// `POST /api/v1/registry/subjects/{subject}/versions`: registers `schema` as `version`
    /// (409 `CONFLICT` with `details.incompatibilities` when the subject's mode refuses it).
    pub async fn register_contract(
        &self,
        subject: &str,
        version: &str,
        schema: serde_json::Value,
    ) -> Result<RegisteredSchema, ClientError> {
        let body = RegisterSchema {
            version: version.to_owned(),
            schema,
        };
        let path = ["api", "v1", "registry", "subjects", subject, "versions"];
        self.send(Method::POST, &path, |r| r.json(&body)).await
    }

    /// `POST /api/v1/registry/compatibility/subjects/{subject}/versions/{version}?verbose=true`:
    /// whether `schema` would be admitted as `version` of `subject`, under `compatibility` or
    /// the subject's own mode, with every incompatibility.
    pub async fn check_contract(
        &self,
        subject: &str,
        version: &str,
        schema: serde_json::Value,
        compatibility: Option<String>,
    ) -> Result<CompatibilityAnswer, ClientError> {
        let body = CompatibilityRequest {
            schema,
            compatibility,
        };
        let path = [
            "api",
            "v1",
            "registry",
            "compatibility",
            "subjects",
            subject,
            "versions",
            version,
        ];
        self.send(Method::POST, &path, |r| {
            r.query(&[("verbose", "true")]).json(&body)
        })
        .await
    }

    // -- approvals

    /// `GET /api/v1/approvals?status=`: the approvals of `status` (every one when `None`),
    /// oldest first.
    pub async fn approvals(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, ClientError> {
        let status = status.map_or("all", ApprovalStatus::as_str);
        let list: ApprovalList = self
            .send(Method::GET, &["api", "v1", "approvals"], |r| {
                r.query(&[("status", status)])
            })
            .await?;
        Ok(list.approvals)
    }

    /// `GET /api/v1/approvals/{id}`.
    pub async fn approval(&self, id: &str) -> Result<Approval, ClientError> {
        self.send(Method::GET, &["api", "v1", "approvals", id], |r| r)
            .await
    }

    /// `POST /api/v1/approval/{id}`: approves or rejects a pending approval (409 `CONFLICT`
    /// once it is decided or expired).
    pub async fn decide(
        &self,
        id: &str,
        decision: Verdict,
        comment: Option<&str>,
    ) -> Result<Decided, ClientError> {
        let body = ApprovalDecision {
            decision,
            comment: comment.map(str::to_owned),
        };
        self.send(Method::POST, &["api", "v1", "approval", id], |r| {
            r.json(&body)
        })
        .await
    }

    /// `POST /api/v1/admin/reload`: the server reads its credential and policy files again and
    /// swaps them in only if all loaded (the same reload as SIGHUP); answers `{reloaded: [config
    /// keys], files: {path: sha256}, message}`. A file that does not load is
    /// `INVALID_REQUEST` naming it, and the previous state keeps serving.
    pub async fn reload<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let path = ["api", "v1", "admin", "reload"];
        self.send(Method::POST, &path, |r| r).await
    }

    // -- workflows: the answers are `ace-workflows`' JSON shapes (decode them into its types or
    // into `serde_json::Value`; this crate does not depend on it).

    /// `GET /api/v1/workflows`: `{workflows: [{name, file, enabled, definition}], problems}`.
    pub async fn workflows<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        self.send(Method::GET, &["api", "v1", "workflows"], |r| r)
            .await
    }

    /// `GET /api/v1/workflows/{name}`: `{name, file, enabled, definition}`.
    pub async fn workflow<T: DeserializeOwned>(&self, name: &str) -> Result<T, ClientError> {
        self.send(Method::GET, &["api", "v1", "workflows", name], |r| r)
            .await
    }

    /// `POST /api/v1/workflows/{name}/enable` (or `disable`): the run-time switch, kept across
    /// restarts; answers the workflow.
    pub async fn set_workflow_enabled<T: DeserializeOwned>(
        &self,
        name: &str,
        enabled: bool,
    ) -> Result<T, ClientError> {
        let verb = if enabled { "enable" } else { "disable" };
        let path = ["api", "v1", "workflows", name, verb];
        self.send(Method::POST, &path, |r| r).await
    }

    /// `POST /api/v1/workflows/reload`: `{changed, workflows, problems}`.
    pub async fn reload_workflows<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let path = ["api", "v1", "workflows", "reload"];
        self.send(Method::POST, &path, |r| r).await
    }

    /// `GET /api/v1/workflows/stats`: the workflow counters and latency percentiles.
    pub async fn workflow_stats<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let path = ["api", "v1", "workflows", "stats"];
        self.send(Method::GET, &path, |r| r).await
    }

    // -- ledger: the answers are `ace-ledger`'s own JSON shapes (hashes and signatures in hex);
    // decode them into `ace_ledger::{Checkpoint, InclusionProof, ConsistencyProof}` or into
    // `serde_json::Value` (this crate does not depend on `ace-ledger`).

    /// `GET /api/v1/ledger/checkpoint`: the latest signed checkpoint `{size, root_hash,
    /// chain_head, ts, key_id, signature}` (one is made if there is none yet).
    pub async fn ledger_checkpoint<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        let path = ["api", "v1", "ledger", "checkpoint"];
        self.send(Method::GET, &path, |r| r).await
    }

    /// `GET /api/v1/ledger/key`: `{algorithm: "ed25519", key_id, public_key}`, the key that
    /// checks checkpoint signatures.
    pub async fn ledger_key<T: DeserializeOwned>(&self) -> Result<T, ClientError> {
        self.send(Method::GET, &["api", "v1", "ledger", "key"], |r| r)
            .await
    }

    /// `GET /api/v1/ledger/entries`: `{entries: [...], next_after}`, oldest first.
    pub async fn ledger_entries<T: DeserializeOwned>(
        &self,
        query: &LedgerQuery,
    ) -> Result<T, ClientError> {
        let path = ["api", "v1", "ledger", "entries"];
        self.send(Method::GET, &path, |r| r.query(query)).await
    }

    /// `GET /api/v1/ledger/proof/inclusion/{seq}?size=`: entry `seq` is in the tree of `size`
    /// entries (default: the latest checkpoint's size).
    pub async fn ledger_inclusion_proof<T: DeserializeOwned>(
        &self,
        seq: u64,
        size: Option<u64>,
    ) -> Result<T, ClientError> {
        let seq = seq.to_string();
        let path = ["api", "v1", "ledger", "proof", "inclusion", seq.as_str()];
        self.send(Method::GET, &path, |r| match size {
            Some(size) => r.query(&[("size", size)]),
            None => r,
        })
        .await
    }

    /// `GET /api/v1/ledger/proof/consistency?from=&to=`: the tree of `from` entries is a prefix
    /// of the tree of `to` entries.
    pub async fn ledger_consistency_proof<T: DeserializeOwned>(
        &self,
        from: u64,
        to: u64,
    ) -> Result<T, ClientError> {
        let path = ["api", "v1", "ledger", "proof", "consistency"];
        self.send(Method::GET, &path, |r| {
            r.query(&[("from", from), ("to", to)])
        })
        .await
    }

    // -- plumbing

    /// The URL of `segments` under the current server, each percent-encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        self.url_at(self.at(), segments)
    }

    /// The URL of `segments` under server `i`.
    pub(crate) fn url_at(&self, i: usize, segments: &[&str]) -> Url {
        let mut url = self.bases[i % self.bases.len()].clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let mut request = self.http.request(method, url);
        if let Some((name, value)) = self.credentials.as_ref().map(Credentials::header) {
            request = request.header(name, value);
        }
        if let Some(timeout) = self.timeout {
            request = request.timeout(timeout);
        }
        request
    }

    /// A place on the wire: waits while `max_connections` requests are in flight (at most the
    /// client's timeout).
    async fn permit(&self, what: &str) -> Result<SemaphorePermit<'_>, ClientError> {
        let acquire = self.permits.acquire();
        let acquired =
            match self.timeout {
                Some(after) => tokio::time::timeout(after, acquire).await.map_err(|_| {
                    ClientError::Timeout {
                        what: format!("{what} (waiting for a free connection)"),
                        after,
                    }
                })?,
                None => acquire.await,
            };
        // The semaphore is never closed.
        acquired.map_err(|e| ClientError::transport(what, e))
    }

    /// Sends a request to `segments` (shaped by `shape`) and decodes its JSON answer.
    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        shape: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<T, ClientError> {
        let url = self.url(segments);
        let what = format!("{method} {url}");
        // held until the body is read: only then is the connection free for another request
        let _permit = self.permit(&what).await?;
        let request = shape(self.request(method, url));
        let response = self.exchange(request, segments, &what).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(&what, e))?;
        serde_json::from_slice(&bytes).map_err(|source| ClientError::Decode { what, source })
    }

    /// Sends a request whose success has no body (204).
    async fn send_empty(&self, method: Method, segments: &[&str]) -> Result<(), ClientError> {
        let url = self.url(segments);
        let what = format!("{method} {url}");
        let _permit = self.permit(&what).await?;
        self.exchange(self.request(method, url), segments, &what)
            .await
            .map(drop)
    }

    /// Sends, and turns a non-2xx answer into [`ClientError::Api`]. A server that cannot be
    /// reached (no connection: the request never left) is left for the next one given, each
    /// tried once, so a client of several servers carries on when one is down; any other
    /// failure is not retried (the server may have acted on it).
    async fn exchange(
        &self,
        request: RequestBuilder,
        segments: &[&str],
        what: &str,
    ) -> Result<Response, ClientError> {
        let request = request
            .build()
            .map_err(|e| ClientError::transport(what, e))?;
        let first = self.at();
        let mut attempt = 0;
        let response = loop {
            let i = (first + attempt) % self.bases.len();
            let mut this = request.try_clone().ok_or_else(|| ClientError::InvalidUrl {
                url: what.to_owned(),
                reason: "a streamed body cannot be sent twice".to_owned(),
            })?;
            // The server's place, with the query the request was shaped with.
            let mut url = self.url_at(i, segments);
            url.set_query(request.url().query());
            *this.url_mut() = url;
            match self.http.execute(this).await {
                Ok(response) => break response,
                Err(e) if e.is_connect() && attempt + 1 < self.bases.len() => {
                    self.fail_over(i);
                    attempt += 1;
                }
                Err(e) => return Err(ClientError::transport(what, e)),
            }
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::transport(what, e))?;
        api_error(status, &bytes, what)
    }
}

/// One server URL: http or https, a host, a path prefix at most (no query or fragment).
fn parse_base(server: &str) -> Result<Url, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: server.to_owned(),
        reason: reason.to_owned(),
    };
    let mut base = Url::parse(server).map_err(|e| invalid(&e.to_string()))?;
    match base.scheme() {
        "http" | "https" => {}
        other => return Err(invalid(&format!("scheme {other:?} is not http or https"))),
    }
    if base.cannot_be_a_base() || base.host().is_none() {
        return Err(invalid("no host"));
    }
    if base.query().is_some() || base.fragment().is_some() {
        return Err(invalid("a server URL has no query or fragment"));
    }
    let path = base.path().trim_end_matches('/').to_owned();
    base.set_path(&path);
    Ok(base)
}

/// The 202 answer of a publish: stored, or held for approval.
#[derive(serde::Deserialize)]
#[serde(untagged)]
pub(crate) enum PublishAnswer {
    /// Stored.
    Accepted(Accepted),
    /// Held.
    Held(Pending),
}

impl PublishAnswer {
    pub(crate) fn into_result(self) -> Result<Accepted, ClientError> {
        match self {
            PublishAnswer::Accepted(accepted) => Ok(accepted),
            PublishAnswer::Held(pending) => Err(ClientError::Held(pending)),
        }
    }
}

/// The error of a non-2xx answer: its error body, or a decode error naming the status when the
/// body is not one (a proxy's page, say).
fn api_error<T>(status: StatusCode, bytes: &[u8], what: &str) -> Result<T, ClientError> {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => Err(ClientError::Api {
            status: status.as_u16(),
            body,
        }),
        Err(source) => Err(ClientError::Decode {
            what: format!("{what} (HTTP {status})"),
            source,
        }),
    }
}

/// `api/v1/streams/{stream}/consumers/{consumer}[/{verb}]`.
fn consumer_path<'a>(stream: &'a str, consumer: &'a str, verb: Option<&'a str>) -> Vec<&'a str> {
    let mut path = vec!["api", "v1", "streams", stream, "consumers", consumer];
    path.extend(verb);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_base_with_a_trailing_slash_when_joined_then_segments_are_encoded() {
        let client = Client::new("http://127.0.0.1:8500/prefix/").expect("valid");
        let url = client.url(&["api", "v1", "agents", "a/b c"]);
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:8500/prefix/api/v1/agents/a%2Fb%20c"
        );
    }

    #[test]
    fn given_an_https_url_when_a_client_is_made_then_it_is_accepted() {
        let client = Client::new("https://example.com:8500").expect("TLS is built in");
        assert_eq!(client.url(&["ws"]).as_str(), "https://example.com:8500/ws");
    }

    #[test]
    fn given_another_scheme_when_a_client_is_made_then_it_is_refused_naming_it() {
        let err = Client::new("ftp://example.com").expect_err("not http");
        assert!(matches!(err, ClientError::InvalidUrl { .. }), "{err}");
        assert!(err.to_string().contains("\"ftp\""), "{err}");
    }

    #[test]
    fn given_a_url_without_scheme_when_a_client_is_made_then_it_is_refused() {
        assert!(Client::new("localhost:8500").is_err());
        assert!(Client::new("not a url").is_err());
    }

    #[test]
    fn given_a_non_error_body_when_a_request_fails_then_the_status_is_named() {
        let err = api_error::<()>(StatusCode::BAD_GATEWAY, b"<html>", "GET x").unwrap_err();
        assert!(err.to_string().contains("502"), "{err}");
    }
}
