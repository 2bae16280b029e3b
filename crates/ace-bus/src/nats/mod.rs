//! The NATS JetStream engine: [`NatsBus`] implements [`Bus`] over a NATS server with
//! JetStream (2.9 and later), so several ACE::COMMS servers share one set of streams, consumers
//! and live subjects.
//!
//! # How the `Bus` maps onto NATS
//!
//! | ACE::COMMS | NATS |
//! | --- | --- |
//! | subject `a.b.c` (patterns `*`, `>`) | subject `<subject_prefix>a.b.c` (the prefix is empty by default) |
//! | stream `orders` | JetStream stream `<stream_prefix>orders` over the same subjects; its ACE configuration is kept in the stream's `description` (`ace-comms/1 {json}`) |
//! | consumer `c` | durable pull consumer `c` (created idempotently through `$JS.API.CONSUMER.DURABLE.CREATE`, which 2.9 and 2.10+ answer), ACE configuration in its `description` |
//! | publish on a subject a stream captures | a JetStream publish (request, answered by a `PubAck`) |
//! | publish on any other subject | a core NATS publish |
//! | dedup (envelope id, sender-scoped idempotency key) | `Nats-Msg-Id`: `k-<32 hex>` (the first 128 bits of the sender-scoped key hash the embedded engine uses) when the envelope has an `idempotency_key`, else `id-<envelope id>`; the window is the stream's `duplicate_window` |
//! | ack / nak(delay) / term / in_progress | `+ACK` (acknowledged by the server) / `-NAK {"delay": ns}` / `+TERM` / `+WPI` on the delivery's `$JS.ACK` subject |
//! | `ack_wait`, `max_deliver`, `backoff`, `max_ack_pending`, deliver policies | the JetStream consumer fields of the same meaning (a backoff list is cut to `max_deliver - 1` delays, JetStream's rule; an exponential one is expanded without jitter) |
//! | dead letters | built by the engine with the embedded engine's builder (same subject, payload, headers and idempotency key): on `term` before the `+TERM` is sent, and from the `MAX_DELIVERIES` and `MSG_TERMINATED` advisories (every server receives them; the idempotency key `dlq:<stream>:<consumer>:<seq>` stores one) |
//! | live subscriptions, queue groups | core NATS subscriptions; a queue group is one NATS queue subscription per server, handed to a local member that accepts the message |
//! | request/reply | a core publish with the inbox `ace.comms.system.inbox.<id>` as `headers.reply_to` and as the NATS reply subject, so a request nobody listens to is answered `503` (no responders) at once |
//!
//! The message body is the envelope's JSON, exactly as `get_message` returns it. Headers, for
//! routing and for clients that do not decode the body: `Nats-Msg-Id` (above),
//! `Content-Type: application/json`, `ace-id`, `ace-kind`, `ace-priority`, and when set
//! `ace-source` (`<type>:<id>`), `ace-schema`, `ace-correlation-id`, `ace-causation-id`,
//! `ace-partition-key`, `ace-idempotency-key`.
//!
//! # Where it differs from the embedded engine
//!
//! Each is a tested exception of the conformance kit (`crates/ace-bus/tests/it/on_nats.rs`).
//!
//! - **Priority lanes**: JetStream delivers a consumer's messages in stream order; NATS 2.9 has
//!   no per-message priority, so `priority_lanes` is accepted and has no effect (a P0 message
//!   waits behind the backlog before it).
//! - **`ordering: per_key`** is served as `strict`: one delivery in flight at a time
//!   (`max_ack_pending: 1`). Order per key holds because order holds for the whole consumer;
//!   keys do not go in parallel. On NATS 2.9 a nak'ed delivery of such a consumer comes back
//!   only after its `ack_wait` (JetStream 2.9 holds pulls while `max_ack_pending` is reached),
//!   still before anything later in the stream.
//! - **Fetch filters**: a message a fetcher's `Accept` refuses has already been delivered by
//!   JetStream; it is nak'ed with a delay of the fetch's remaining wait plus 50 ms (and not
//!   asked about again should it come back within that fetch), so it counts as a delivery toward
//!   `max_deliver`, and another member sees it after that delay.
//! - **`not_before`** is kept on top: a message fetched early is nak'ed until its time, so its
//!   first real delivery has a delivery count of 2. Expired messages (TTL, deadline) are acked
//!   and counted when a fetch meets them.
//! - **Counters** (`StreamCounters`, `ConsumerCounters`) are this process's since it connected;
//!   JetStream keeps no such counts. Messages, bytes, sequences, ack floor and pending counts are
//!   JetStream's, shared by every server.
//! - **Acknowledgements** name the JetStream delivery, which the engine remembers for the
//!   deliveries it handed out: an ack of a delivery another server (or this one before a
//!   reconnect) handed out answers `NotPending`, and the message is redelivered after its
//!   `ack_wait`.
//! - **Durability** is the NATS server's: JetStream acknowledges once the message is in its
//!   store; NATS 2.9 fsyncs on `sync_interval` (default 2 minutes), so a power loss can take
//!   acknowledged messages; 2.10+ with `sync_interval: always` fsyncs before acknowledging. The
//!   stream's `sync` policy is not applied per stream.
//! - A duplicate publish is not stored again, but core NATS subscribers see it again (core
//!   delivery happens before JetStream's dedup). A request on a subject a stream captures is
//!   stored by JetStream.
//! - `repair_stream` and `watch_health` are not offered (JetStream repairs its own store).
//! - The last delivery `max_deliver` allows is dead-lettered by the server that handed it out
//!   once its ack deadline passes (NATS 2.9 itself notices only when the consumer is pulled
//!   again, and then sends the `MAX_DELIVERIES` advisory); a delivery whose server went away is
//!   dead-lettered from that advisory by any server connected when NATS sends it. A backoff list
//!   is cut to `max_deliver - 1` delays, so JetStream's own timer for the last delivery is the
//!   list's last kept delay (the dead letter still waits for the full schedule).
//! - A message over `max_msg_size` is judged by JetStream on the body and headers together
//!   (the embedded engine: the stored record).

mod api;
mod consume;
mod live;
mod publish;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as AtomicOrdering};
use std::time::Duration;

use ace_envelope::{Clock, Envelope, SubjectPattern, SystemClock};
use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::bus::{
    Accept, Bus, ConsumerConfig, ConsumerCounters, ConsumerInfo, Delivered, LiveSubscription,
    PublishAck, StoredMessage, StreamConfig, StreamCounters, StreamInfo, StreamState,
};
use crate::error::BusError;
use crate::live::LiveConfig;

use self::api::ApiError;

/// How the engine reaches NATS and names what it creates there.
#[derive(Clone)]
pub struct NatsConfig {
    /// Server URLs, comma separated (`nats://127.0.0.1:4222`); the client reconnects to any.
    pub url: String,
    /// Prefix of every JetStream stream name the engine creates (empty by default).
    pub stream_prefix: String,
    /// Prefix of every NATS subject (empty by default): ACE subject `a.b` is NATS `<prefix>a.b`.
    /// Lets several deployments (or tests) share one NATS server.
    pub subject_prefix: String,
    /// Bounds of live subscriptions (messages and bytes held per subscriber).
    pub live: LiveConfig,
    /// How long a JetStream API call or publish waits for its answer.
    pub request_timeout: Duration,
    /// The connection name the NATS server shows.
    pub connection_name: String,
    /// The engine's clock (TTL, `not_before`, dead letters' times).
    pub clock: Arc<dyn Clock>,
}

impl NatsConfig {
    /// Defaults for `url`: no prefixes, 10 s requests, the system clock.
    pub fn new(url: impl Into<String>) -> Self {
        NatsConfig {
            url: url.into(),
            stream_prefix: String::new(),
            subject_prefix: String::new(),
            live: LiveConfig::default(),
            request_timeout: Duration::from_secs(10),
            connection_name: "ace-comms".to_owned(),
            clock: Arc::new(SystemClock),
        }
    }
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("url", &self.url)
            .field("stream_prefix", &self.stream_prefix)
            .field("subject_prefix", &self.subject_prefix)
            .finish_non_exhaustive()
    }
}

/// The NATS JetStream engine (see the module docs for the mapping and its exceptions).
pub struct NatsBus {
    inner: Arc<Inner>,
}

/// A delivery this process handed out and may still acknowledge.
#[derive(Debug, Clone)]
struct Handed {
    /// The delivery's `$JS.ACK…` subject.
    reply: String,
    /// Its delivery count.
    deliveries: u32,
    /// When its ack is due (`ack_wait` or the backoff schedule's delay, pushed back by
    /// `in_progress`).
    due: tokio::time::Instant,
    /// Whether it is the last delivery `max_deliver` allows: past `due` without an ack, the
    /// engine dead-letters it (NATS 2.9 notices only when a later pull comes).
    last: bool,
}

type ConsumerKey = (String, String);

struct Inner {
    client: async_nats::Client,
    config: NatsConfig,
    closed: AtomicBool,
    /// Subject (ACE) → the ACE stream capturing it (`None`: no stream), invalidated by the
    /// stream advisories of every server.
    routes: Mutex<HashMap<String, Option<String>>>,
    stream_counters: Mutex<HashMap<String, StreamCounters>>,
    consumer_counters: Mutex<HashMap<ConsumerKey, ConsumerCounters>>,
    configs: Mutex<HashMap<ConsumerKey, ConsumerConfig>>,
    handed: Mutex<HashMap<(String, String, u64), Handed>>,
    groups: live::Groups,
    next_sub: AtomicU64,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// Most subjects remembered in the route cache before it starts over.
const MAX_ROUTES: usize = 100_000;

impl NatsBus {
    /// Connects to NATS (retrying while the server is down is the client's job after the first
    /// connection) and starts the advisory watchers (dead letters, route invalidation).
    pub async fn connect(config: NatsConfig) -> Result<NatsBus, BusError> {
        let client = async_nats::ConnectOptions::new()
            .name(&config.connection_name)
            .request_timeout(Some(config.request_timeout))
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(config.url.as_str())
            .await
            .map_err(|e| BusError::Engine {
                op: "connect".to_owned(),
                reason: format!("{}: {e}", config.url),
            })?;
        let inner = Arc::new(Inner {
            client,
            config,
            closed: AtomicBool::new(false),
            routes: Mutex::new(HashMap::new()),
            stream_counters: Mutex::new(HashMap::new()),
            consumer_counters: Mutex::new(HashMap::new()),
            configs: Mutex::new(HashMap::new()),
            handed: Mutex::new(HashMap::new()),
            groups: Arc::new(Mutex::new(HashMap::new())),
            next_sub: AtomicU64::new(1),
            tasks: Mutex::new(Vec::new()),
        });
        let watchers = consume::watch_advisories(&inner).await?;
        inner.tasks.lock().extend(watchers);
        let sweeper = consume::sweep_last_deliveries(&inner);
        inner.tasks.lock().push(sweeper);
        Ok(NatsBus { inner })
    }

    /// The NATS client the engine uses (for tests and tools reading what it wrote).
    pub fn client(&self) -> async_nats::Client {
        self.inner.client.clone()
    }
}

impl Inner {
    fn check_open(&self) -> Result<(), BusError> {
        if self.closed.load(AtomicOrdering::Acquire) {
            Err(BusError::Closed)
        } else {
            Ok(())
        }
    }

    /// The NATS subject of an ACE subject or pattern.
    fn wire(&self, subject: &str) -> String {
        format!("{}{subject}", self.config.subject_prefix)
    }

    /// The JetStream name of an ACE stream.
    fn js_name(&self, stream: &str) -> String {
        format!("{}{stream}", self.config.stream_prefix)
    }

    /// The ACE name of a JetStream stream (`None` outside the prefix).
    fn ace_name<'a>(&self, js: &'a str) -> Option<&'a str> {
        js.strip_prefix(self.config.stream_prefix.as_str())
    }

    async fn api(&self, subject: &str, body: &Value) -> Result<Value, ApiError> {
        api::request(&self.client, subject, body).await
    }

    /// Returns once the server has processed everything this connection sent before (a
    /// subscription is active for publishers on other connections too): a request nobody
    /// answers, which the server refuses at once (`503`) after the commands before it.
    async fn server_has_seen(&self) {
        let probe = self.client.new_inbox();
        let _ = self.client.request(probe, bytes::Bytes::new()).await;
    }

    fn invalidate_routes(&self) {
        self.routes.lock().clear();
    }

    async fn add_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        self.check_open()?;
        check_name("stream", &config.name)?;
        for s in &config.subjects {
            SubjectPattern::new(s).map_err(|e| BusError::InvalidSubject {
                subject: s.clone(),
                reason: e.to_string(),
            })?;
        }
        let js = self.js_name(&config.name);
        let body = api::stream_config(&js, &config, |s| self.wire(s));
        let answer = self.api(&format!("STREAM.CREATE.{js}"), &body).await;
        self.invalidate_routes();
        let answer = answer.map_err(|e| e.into_bus("add_stream", &config.name, None))?;
        Ok(self.stream_info_of(&config.name, &answer))
    }

    async fn update_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        self.check_open()?;
        let js = self.js_name(&config.name);
        let body = api::stream_config(&js, &config, |s| self.wire(s));
        let answer = self.api(&format!("STREAM.UPDATE.{js}"), &body).await;
        self.invalidate_routes();
        let answer = answer.map_err(|e| e.into_bus("update_stream", &config.name, None))?;
        Ok(self.stream_info_of(&config.name, &answer))
    }

    async fn delete_stream(&self, stream: &str) -> Result<(), BusError> {
        self.check_open()?;
        let js = self.js_name(stream);
        let answer = self.api(&format!("STREAM.DELETE.{js}"), &json!({})).await;
        self.invalidate_routes();
        answer.map_err(|e| e.into_bus("delete_stream", stream, None))?;
        self.stream_counters.lock().remove(stream);
        self.consumer_counters
            .lock()
            .retain(|(s, _), _| s != stream);
        self.configs.lock().retain(|(s, _), _| s != stream);
        self.handed.lock().retain(|(s, _, _), _| s != stream);
        Ok(())
    }

    async fn stream_info(&self, stream: &str) -> Result<StreamInfo, BusError> {
        self.check_open()?;
        let js = self.js_name(stream);
        let answer = self
            .api(&format!("STREAM.INFO.{js}"), &json!({}))
            .await
            .map_err(|e| e.into_bus("stream_info", stream, None))?;
        Ok(self.stream_info_of(stream, &answer))
    }

    /// A JetStream stream info as the ACE `StreamInfo` (counters are this process's).
    fn stream_info_of(&self, stream: &str, info: &Value) -> StreamInfo {
        let state = |k: &str| info.pointer(&format!("/state/{k}")).and_then(Value::as_u64);
        let config =
            api::ace_config(info).unwrap_or_else(|| StreamConfig::new(stream, &[] as &[&str]));
        let last_seq = state("last_seq").unwrap_or(0);
        let messages = state("messages").unwrap_or(0);
        StreamInfo {
            config,
            messages,
            bytes: state("bytes").unwrap_or(0),
            first_seq: if messages == 0 {
                0
            } else {
                state("first_seq").unwrap_or(0)
            },
            last_seq,
            consumers: usize::try_from(state("consumer_count").unwrap_or(0)).unwrap_or(0),
            counters: self
                .stream_counters
                .lock()
                .get(stream)
                .cloned()
                .unwrap_or_default(),
            state: StreamState::Ok,
            damage: None,
            high_water: last_seq,
        }
    }

    async fn list_streams(&self) -> Result<Vec<StreamInfo>, BusError> {
        self.check_open()?;
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let page = self
                .api("STREAM.LIST", &json!({ "offset": offset }))
                .await
                .map_err(|e| e.into_bus("list_streams", "", None))?;
            let streams = page
                .get("streams")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if streams.is_empty() {
                break;
            }
            offset += streams.len() as u64;
            for info in &streams {
                let js = info.pointer("/config/name").and_then(Value::as_str);
                let ours = api::ace_config::<StreamConfig>(info).is_some();
                if let (Some(name), true) = (js.and_then(|n| self.ace_name(n)), ours) {
                    out.push(self.stream_info_of(name, info));
                }
            }
            let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
            if offset >= total {
                break;
            }
        }
        out.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        Ok(out)
    }

    async fn add_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, BusError> {
        self.check_open()?;
        check_name("consumer", &config.name)?;
        let filter = match &config.filter {
            Some(f) => {
                SubjectPattern::new(f).map_err(|e| BusError::InvalidSubject {
                    subject: f.clone(),
                    reason: e.to_string(),
                })?;
                Some(self.wire(f))
            }
            None => None,
        };
        match self.consumer_info(stream, &config.name).await {
            Ok(existing) if existing.config == config => return Ok(existing),
            Ok(_) => {
                return Err(BusError::Conflict {
                    what: format!("consumer {}", config.name),
                    reason: "it exists with another configuration".to_owned(),
                });
            }
            Err(BusError::ConsumerNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let js = self.js_name(stream);
        let body = json!({
            "stream_name": js,
            "config": api::consumer_config(&config, filter),
        });
        let subject = format!("CONSUMER.DURABLE.CREATE.{js}.{}", config.name);
        let answer = self
            .api(&subject, &body)
            .await
            .map_err(|e| e.into_bus("add_consumer", stream, Some(&config.name)))?;
        Ok(self.consumer_info_of(stream, &config.name, &answer))
    }

    async fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<(), BusError> {
        self.check_open()?;
        let subject = format!("CONSUMER.DELETE.{}.{consumer}", self.js_name(stream));
        self.api(&subject, &json!({}))
            .await
            .map_err(|e| e.into_bus("delete_consumer", stream, Some(consumer)))?;
        let key = (stream.to_owned(), consumer.to_owned());
        self.consumer_counters.lock().remove(&key);
        self.configs.lock().remove(&key);
        self.handed
            .lock()
            .retain(|(s, c, _), _| !(s == stream && c == consumer));
        Ok(())
    }

    async fn consumer_info(&self, stream: &str, consumer: &str) -> Result<ConsumerInfo, BusError> {
        self.check_open()?;
        let subject = format!("CONSUMER.INFO.{}.{consumer}", self.js_name(stream));
        let answer = self
            .api(&subject, &json!({}))
            .await
            .map_err(|e| e.into_bus("consumer_info", stream, Some(consumer)))?;
        Ok(self.consumer_info_of(stream, consumer, &answer))
    }

    /// A JetStream consumer info as the ACE `ConsumerInfo` (counters are this process's).
    fn consumer_info_of(&self, stream: &str, consumer: &str, info: &Value) -> ConsumerInfo {
        let get = |p: &str| info.pointer(p).and_then(Value::as_u64).unwrap_or(0);
        let config = api::ace_config(info).unwrap_or_else(|| ConsumerConfig::new(consumer));
        let key = (stream.to_owned(), consumer.to_owned());
        self.configs.lock().insert(key.clone(), config.clone());
        ConsumerInfo {
            stream: stream.to_owned(),
            config,
            ack_floor: get("/ack_floor/stream_seq"),
            ack_pending: usize::try_from(get("/num_ack_pending")).unwrap_or(0),
            waiting: usize::try_from(get("/num_pending")).unwrap_or(0),
            counters: self
                .consumer_counters
                .lock()
                .get(&key)
                .cloned()
                .unwrap_or_default(),
        }
    }

    async fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, BusError> {
        self.check_open()?;
        let js = self.js_name(stream);
        let mut out = Vec::new();
        let mut offset = 0u64;
        loop {
            let page = self
                .api(&format!("CONSUMER.LIST.{js}"), &json!({ "offset": offset }))
                .await
                .map_err(|e| e.into_bus("list_consumers", stream, None))?;
            let consumers = page
                .get("consumers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if consumers.is_empty() {
                break;
            }
            offset += consumers.len() as u64;
            for info in &consumers {
                if let Some(name) = info.get("name").and_then(Value::as_str) {
                    out.push(self.consumer_info_of(stream, name, info));
                }
            }
            let total = page.get("total").and_then(Value::as_u64).unwrap_or(0);
            if offset >= total {
                break;
            }
        }
        out.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        Ok(out)
    }

    /// The configuration of a consumer, from this process's cache or the server.
    async fn consumer_config(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<ConsumerConfig, BusError> {
        let key = (stream.to_owned(), consumer.to_owned());
        if let Some(c) = self.configs.lock().get(&key) {
            return Ok(c.clone());
        }
        Ok(self.consumer_info(stream, consumer).await?.config)
    }

    async fn get_message(&self, stream: &str, seq: u64) -> Result<Option<StoredMessage>, BusError> {
        self.check_open()?;
        let subject = format!("STREAM.MSG.GET.{}", self.js_name(stream));
        let answer = match self.api(&subject, &json!({ "seq": seq })).await {
            Ok(a) => a,
            Err(e) if e.err_code == api::codes::NO_MESSAGE_FOUND => return Ok(None),
            Err(e) => return Err(e.into_bus("get_message", stream, None)),
        };
        let data = answer
            .pointer("/message/data")
            .and_then(Value::as_str)
            .unwrap_or("");
        let corrupt = |reason: String| BusError::Corrupt {
            what: format!("stream {stream} seq {seq}"),
            reason,
        };
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| corrupt(e.to_string()))?;
        let envelope: Envelope =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if envelope.is_expired(self.config.clock.now()) {
            return Ok(None);
        }
        let stored_at = answer
            .pointer("/message/time")
            .and_then(Value::as_str)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(|| self.config.clock.now(), |t| t.to_utc());
        Ok(Some(StoredMessage {
            seq,
            stored_at,
            envelope,
        }))
    }
}

/// Names of streams and consumers: `[A-Za-z0-9_-]+`, as everywhere in ACE::COMMS (JetStream
/// accepts these as they are).
fn check_name(what: &str, name: &str) -> Result<(), BusError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(BusError::InvalidConfig {
            field: format!("{what}.name"),
            reason: format!("`{name}` is not [A-Za-z0-9_-]+"),
        })
    }
}

#[async_trait]
impl Bus for NatsBus {
    async fn publish(&self, envelope: Envelope) -> Result<PublishAck, BusError> {
        self.inner.check_open()?;
        self.inner.publish(envelope).await
    }

    async fn publish_batch(&self, envelopes: Vec<Envelope>) -> Vec<Result<PublishAck, BusError>> {
        if self.inner.check_open().is_err() {
            return envelopes.iter().map(|_| Err(BusError::Closed)).collect();
        }
        self.inner.publish_batch(envelopes).await
    }

    async fn subscribe_filtered(
        &self,
        pattern: &str,
        queue: Option<&str>,
        accept: Option<Accept>,
    ) -> Result<Box<dyn LiveSubscription>, BusError> {
        self.inner.check_open()?;
        live::subscribe(&self.inner, pattern, queue, accept).await
    }

    async fn request(&self, envelope: Envelope, timeout: Duration) -> Result<Envelope, BusError> {
        self.inner.check_open()?;
        live::request(&self.inner, envelope, timeout).await
    }

    async fn add_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        self.inner.add_stream(config).await
    }

    async fn update_stream(&self, config: StreamConfig) -> Result<StreamInfo, BusError> {
        self.inner.update_stream(config).await
    }

    async fn delete_stream(&self, stream: &str) -> Result<(), BusError> {
        self.inner.delete_stream(stream).await
    }

    async fn stream_info(&self, stream: &str) -> Result<StreamInfo, BusError> {
        self.inner.stream_info(stream).await
    }

    async fn list_streams(&self) -> Result<Vec<StreamInfo>, BusError> {
        self.inner.list_streams().await
    }

    async fn add_consumer(
        &self,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, BusError> {
        self.inner.add_consumer(stream, config).await
    }

    async fn delete_consumer(&self, stream: &str, consumer: &str) -> Result<(), BusError> {
        self.inner.delete_consumer(stream, consumer).await
    }

    async fn consumer_info(&self, stream: &str, consumer: &str) -> Result<ConsumerInfo, BusError> {
        self.inner.consumer_info(stream, consumer).await
    }

    async fn list_consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, BusError> {
        self.inner.list_consumers(stream).await
    }

    async fn fetch_filtered(
        &self,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
        accept: Option<Accept>,
    ) -> Result<Vec<Delivered>, BusError> {
        self.inner.check_open()?;
        self.inner
            .fetch(stream, consumer, batch, expires, accept)
            .await
    }

    async fn ack(&self, stream: &str, consumer: &str, seq: u64) -> Result<(), BusError> {
        self.inner.check_open()?;
        self.inner.ack(stream, consumer, seq).await
    }

    async fn nak(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        delay: Option<Duration>,
    ) -> Result<(), BusError> {
        self.inner.check_open()?;
        self.inner.nak(stream, consumer, seq, delay).await
    }

    async fn term(
        &self,
        stream: &str,
        consumer: &str,
        seq: u64,
        reason: &str,
    ) -> Result<(), BusError> {
        self.inner.check_open()?;
        self.inner.term(stream, consumer, seq, reason).await
    }

    async fn in_progress(&self, stream: &str, consumer: &str, seq: u64) -> Result<(), BusError> {
        self.inner.check_open()?;
        self.inner.in_progress(stream, consumer, seq).await
    }

    async fn get_message(&self, stream: &str, seq: u64) -> Result<Option<StoredMessage>, BusError> {
        self.inner.get_message(stream, seq).await
    }

    async fn close(&self) -> Result<(), BusError> {
        if self.inner.closed.swap(true, AtomicOrdering::AcqRel) {
            return Ok(());
        }
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
        for (_, group) in self.inner.groups.lock().drain() {
            group.stop();
        }
        // Flush what was published, then close the connection (its subscriptions end).
        let _ = self.inner.client.drain().await;
        Ok(())
    }
}

impl Drop for NatsBus {
    fn drop(&mut self) {
        for task in self.inner.tasks.lock().drain(..) {
            task.abort();
        }
    }
}
