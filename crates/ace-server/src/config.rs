//! The server's configuration: serde structs with defaults, overlaid by a YAML file, then by
//! `ACE_*` environment variables, then checked by a separate [`Config::validate`] whose errors
//! name the key at fault.
//!
//! The library never reads the environment itself: the binary hands the variables to
//! [`Config::load`]. An environment variable names a key by its path, upper-cased and joined by
//! `_` (`limits.max_body_bytes` ← `ACE_LIMITS_MAX_BODY_BYTES`); its value is read as YAML, so
//! numbers, booleans and whole lists (`ACE_STREAMS_DEFAULTS='[{name: A, subjects: [a.>]}]'`)
//! work. `ACE_*` variables naming no key are left to their owners (`ACE_LOG` is the binary's).
//! Unknown keys in the file fail loudly, with their line and column.
//! `config/ace-comms.example.yaml` documents every key (a test keeps it equal to the defaults).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ace_bus::{RetentionPolicy, StreamConfig, SyncPolicy};
use ace_core::{CoreLimits, Integrity, PiiPolicy, PresenceConfig, SignaturePolicy};
use ace_envelope::SubjectPattern;
use ace_envelope::codec::cloudevents::Mapping;
use ace_policy::{EhiConfig, JwtConfig};
use serde::{Deserialize, Serialize};
use serde_yaml_ng::Value;

use crate::error::ConfigError;

/// Everything `ace-comms serve` can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (the binary binds it; `run` takes a bound listener).
    pub listen: String,
    /// Directory holding every file of the server (streams, consumer state).
    pub data_dir: PathBuf,
    /// The message engine.
    pub engine: Engine,
    /// The NATS server of `engine: nats`.
    pub nats: NatsConfig,
    /// Authentication.
    pub auth: AuthConfig,
    /// Authorization policies (RBAC, Rego) and EHI thresholds.
    pub policy: PolicyConfig,
    /// TLS on the listener (absent: plain TCP).
    pub tls: Option<TlsConfig>,
    /// Bounds on requests, connections and operations.
    pub limits: LimitsConfig,
    /// Streams made at first start.
    pub streams: StreamsConfig,
    /// Agent presence and session state.
    pub state: StateConfig,
    /// The tamper-evident ledger of every governance decision (`{data_dir}/ledger/`).
    pub ledger: LedgerConfig,
    /// Messages held for a human's approval.
    pub approvals: ApprovalsConfig,
    /// Registered Ed25519 public keys and the subjects that require a signature by one.
    pub signatures: SignaturesConfig,
    /// Personal data named by `governance.pii` in stored payloads.
    pub pii: PiiConfig,
    /// Where a foreign CloudEvent (one without the `acekind` extension) is published: rules
    /// from its `type`, `source` and `subject` to an ACE subject and kind.
    pub cloudevents: Mapping,
    /// The schema registry at run time: what subjects require a contract.
    pub contracts: ContractsConfig,
    /// The ML kernel under `/api/ml/v1`: its insight thresholds and windows, and the EHI of a
    /// plan by its risk level.
    pub mlt: ace_mlt::MltConfig,
    /// The workflows run on the events of `ACE_EVENTS`.
    pub workflows: crate::workflows::WorkflowsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8500".to_owned(),
            data_dir: PathBuf::from("./data"),
            engine: Engine::default(),
            nats: NatsConfig::default(),
            auth: AuthConfig::default(),
            policy: PolicyConfig::default(),
            tls: None,
            limits: LimitsConfig::default(),
            streams: StreamsConfig::default(),
            state: StateConfig::default(),
            ledger: LedgerConfig::default(),
            approvals: ApprovalsConfig::default(),
            signatures: SignaturesConfig::default(),
            pii: PiiConfig::default(),
            cloudevents: Mapping::default(),
            contracts: ContractsConfig::default(),
            mlt: ace_mlt::MltConfig::default(),
            workflows: crate::workflows::WorkflowsConfig::default(),
        }
    }
}

/// Which engine carries the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Streams as files under `data_dir`.
    #[default]
    Embedded,
    /// NATS JetStream (`nats.*`): several servers share its streams, consumers and subjects.
    Nats,
}

/// The NATS server of `engine: nats` (`nats.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// Server URLs, comma separated; the client reconnects to any of them.
    pub url: String,
    /// Prefix of the JetStream stream names this deployment creates.
    pub stream_prefix: String,
    /// Prefix of every NATS subject (ACE subject `a.b` is `<prefix>a.b` on NATS), so several
    /// deployments can share one NATS server.
    pub subject_prefix: String,
    /// How long a JetStream call or publish waits for its answer.
    pub request_timeout_ms: u64,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: "nats://127.0.0.1:4222".to_owned(),
            stream_prefix: String::new(),
            subject_prefix: String::new(),
            request_timeout_ms: 10_000,
        }
    }
}

impl NatsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.url.trim().is_empty() {
            return bad("nats.url", "must name at least one server");
        }
        if self.request_timeout_ms == 0 {
            return bad("nats.request_timeout_ms", "must be above 0");
        }
        let name_ok = |s: &str| {
            s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !name_ok(&self.stream_prefix) {
            return bad("nats.stream_prefix", "must be [A-Za-z0-9_-]*");
        }
        let p = &self.subject_prefix;
        let subject_ok = p.is_empty()
            || (p.ends_with('.')
                && p[..p.len() - 1]
                    .split('.')
                    .all(|t| !t.is_empty() && name_ok(t)));
        if !subject_ok {
            return bad(
                "nats.subject_prefix",
                "must be empty or tokens of [A-Za-z0-9_-] each followed by `.` (`acme.`)",
            );
        }
        Ok(())
    }
}

/// How callers are authenticated (`auth.*`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// The authentication mode.
    pub mode: AuthMode,
    /// JWT bearer tokens: issuer, audience, leeway, `iat` and lifetime bounds
    /// (`require_iat`, `max_lifetime_secs`) and verification keys.
    pub jwt: Option<JwtConfig>,
    /// A YAML file of hashed API keys and their principals (`ace_policy::ApiKeyStore`).
    pub api_keys: Option<PathBuf>,
    /// Client certificates verified by TLS (`tls.client_auth` optional or required) name the
    /// principal.
    pub mtls: bool,
    /// Who may read `/metrics`: `open` (anyone who reaches the listener, the default, as
    /// Prometheus scrapers expect) or `authenticated` (the same credentials as `/api/v1`; 401
    /// without them).
    pub metrics: MetricsAccess,
}

/// Who may read `/metrics` (`auth.metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsAccess {
    /// Anyone who reaches the listener.
    #[default]
    Open,
    /// A caller the server authenticates, as on `/api/v1` (in development mode, everyone).
    Authenticated,
}

/// Authentication modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// No authentication: every caller is the development principal (announced loudly); RBAC
    /// and Rego are off, EHI holds stay on.
    #[default]
    Development,
    /// Every request authenticates (JWT, API key or client certificate) and is authorized by
    /// RBAC, Rego and EHI.
    Enforced,
}

impl AuthConfig {
    fn validate(&self, tls: Option<&TlsConfig>) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: &str| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        let methods = self.jwt.is_some() || self.api_keys.is_some() || self.mtls;
        match self.mode {
            AuthMode::Enforced if !methods => bad(
                "auth.mode",
                "enforced needs at least one method: auth.jwt, auth.api_keys or auth.mtls",
            ),
            // An operator who configured credentials but forgot the mode would otherwise run
            // an open server believing it closed.
            AuthMode::Development if methods => bad(
                "auth.mode",
                "is development (no authentication) but auth.jwt, auth.api_keys or auth.mtls \
                 is set: set auth.mode to enforced, or remove them",
            ),
            _ if self.mtls && tls.is_none_or(|t| t.client_auth == ClientAuth::None) => bad(
                "auth.mtls",
                "needs tls with client_auth optional or required (and client_ca)",
            ),
            _ if self.jwt.as_ref().is_some_and(|j| j.keys.is_empty()) => {
                bad("auth.jwt.keys", "must name at least one key")
            }
            _ if self.jwt.as_ref().is_some_and(|j| j.max_lifetime_secs == 0) => bad(
                "auth.jwt.max_lifetime_secs",
                "must be at least 1 (the longest token lifetime `exp - iat` accepted, in \
                 seconds)",
            ),
            _ => Ok(()),
        }
    }
}

/// Authorization policies (`policy.*`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PolicyConfig {
    /// A directory holding `rbac.yaml`, `*.rego` and optionally `environments.yaml` (the
    /// environments of target subjects); absent, the repository's `policies/`
    /// compiled into the binary are used (so the server works from any directory).
    pub dir: Option<PathBuf>,
    /// EHI thresholds: a message scoring at or above its action's threshold is held for
    /// approval (an `ehi` block given replaces the defaults, `tool_thresholds` included).
    pub ehi: EhiConfig,
}

/// TLS on the listener (`tls.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain of the server, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the server (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM CA certificates client certificates must chain to.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Whether clients present certificates.
    #[serde(default)]
    pub client_auth: ClientAuth,
}

/// Client certificates in the TLS handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// Not asked for.
    #[default]
    None,
    /// Asked for and verified when presented; a client without one still connects.
    Optional,
    /// The handshake fails without a valid one.
    Required,
}

/// Bounds that keep one client from exhausting the server; every one is configurable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body of any route, bytes (streamed bodies included).
    pub max_body_bytes: usize,
    /// Most envelopes in one batch publish.
    pub max_batch_messages: usize,
    /// Most connections served at once; further ones wait in the accept backlog.
    pub max_connections: usize,
    /// Most connections open at once from one client IP address; a connection past it is
    /// answered 429 `BACKPRESSURE` and closed, so one client cannot take every slot.
    pub max_connections_per_address: usize,
    /// Longest a client may take to send a request's headers, milliseconds.
    pub header_timeout_ms: u64,
    /// Longest a whole request body may take to arrive, milliseconds: one deadline from the
    /// moment the request's headers are read, not a timeout per chunk (408 `TIMEOUT` past it).
    pub body_timeout_ms: u64,
    /// Longest a request may take to be answered, milliseconds (above `max_fetch_wait_ms`).
    pub request_timeout_ms: u64,
    /// A connection with no traffic for this long is closed, milliseconds.
    pub idle_timeout_ms: u64,
    /// Longest a graceful shutdown waits for in-flight requests, milliseconds.
    pub shutdown_timeout_ms: u64,
    /// Highest `hops` accepted (loop guard), at most 32.
    pub max_hops: u32,
    /// Most messages one fetch may ask for.
    pub max_fetch_batch: usize,
    /// Longest a fetch may wait for its first message, milliseconds.
    pub max_fetch_wait_ms: u64,
    /// Most sequences one ack, nak or term may name.
    pub max_ack_seqs: usize,
    /// How far ahead of the server's clock an envelope's `created_at` may be, milliseconds.
    pub max_clock_skew_ms: u64,
    /// The WebSocket endpoint `/ws`.
    pub ws: WsLimits,
    /// The MCP endpoint `/mcp`.
    pub mcp: McpLimits,
}

/// Who may reach the MCP endpoint `/mcp` (`limits.mcp.*`), checked before its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpLimits {
    /// `Host` names (any port) or `host:port` authorities a request may name, or `*` for any;
    /// loopback names by default, so a web page cannot reach a local server through DNS
    /// rebinding. Another host is refused 403.
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed (`scheme://host[:port]` exactly, or `*` for any); a request
    /// without `Origin` (not a browser) is always allowed, another one is refused 403.
    pub allowed_origins: Vec<String>,
}

impl Default for McpLimits {
    fn default() -> Self {
        McpLimits {
            allowed_hosts: ["localhost", "127.0.0.1", "::1"]
                .map(str::to_owned)
                .to_vec(),
            allowed_origins: Vec::new(),
        }
    }
}

/// Bounds and policy of the WebSocket endpoint `/ws` (`limits.ws.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsLimits {
    /// Largest message a client may send, bytes; a larger one closes the connection with 1009.
    pub max_message_bytes: usize,
    /// Largest single frame a client may send, bytes (at most `max_message_bytes`).
    pub max_frame_bytes: usize,
    /// Frames waiting to be written to one connection; a live message finding it full closes
    /// the connection with 4008 (slow consumer).
    pub queue: usize,
    /// Bytes waiting to be written to one connection; a live message that does not fit closes
    /// the connection with 4008 (slow consumer), a consumer push waits for room.
    pub max_queued_bytes: usize,
    /// Bytes waiting to be written to all the connections of one principal together (4008 for
    /// the connection whose message does not fit).
    pub max_queued_bytes_per_principal: usize,
    /// Bytes waiting to be written to every WebSocket of the server together (4008 likewise).
    pub max_queued_bytes_total: usize,
    /// Bytes of `publish` frames of one connection in flight at once; past it the server stops
    /// reading that connection's frames until one completes.
    pub max_inflight_publish_bytes: usize,
    /// Most subscriptions one connection may hold.
    pub max_subscriptions: usize,
    /// Most `publish` frames of one connection in flight at once (handled concurrently, answered
    /// by `id` as each completes); at the limit the server stops reading that connection's
    /// frames until one completes. `1` handles them one at a time, in order.
    pub max_inflight_publishes: usize,
    /// Most WebSocket connections open at once (an upgrade past it is answered 503).
    pub max_connections: usize,
    /// Most WebSocket connections open at once from one client IP address (429 past it).
    pub max_connections_per_address: usize,
    /// The server pings every connection this often, milliseconds.
    pub ping_interval_ms: u64,
    /// Pings in a row left unanswered before the connection is closed (1011).
    pub max_missed_pongs: u32,
    /// Browser origins allowed to upgrade (`scheme://host[:port]` exactly, or `*` for any); a
    /// request without `Origin` (not a browser) is always allowed, another one is refused 403.
    pub allowed_origins: Vec<String>,
}

impl Default for WsLimits {
    fn default() -> Self {
        WsLimits {
            max_message_bytes: 1024 * 1024,
            max_frame_bytes: 1024 * 1024,
            queue: 1_024,
            max_queued_bytes: 8 * 1024 * 1024,
            max_queued_bytes_per_principal: 32 * 1024 * 1024,
            max_queued_bytes_total: 128 * 1024 * 1024,
            max_inflight_publish_bytes: 16 * 1024 * 1024,
            max_subscriptions: 128,
            max_inflight_publishes: 256,
            max_connections: 1_024,
            max_connections_per_address: 64,
            ping_interval_ms: 20_000,
            max_missed_pongs: 2,
            allowed_origins: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_body_bytes: 1024 * 1024,
            max_batch_messages: 1_000,
            max_connections: 1_024,
            max_connections_per_address: 256,
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            request_timeout_ms: 60_000,
            idle_timeout_ms: 120_000,
            shutdown_timeout_ms: 30_000,
            max_hops: ace_envelope::MAX_HOPS,
            max_fetch_batch: 1_000,
            max_fetch_wait_ms: 30_000,
            max_ack_seqs: 1_000,
            max_clock_skew_ms: 60_000,
            ws: WsLimits::default(),
            mcp: McpLimits::default(),
        }
    }
}

impl LimitsConfig {
    /// The bounds the core enforces.
    pub fn core(&self) -> CoreLimits {
        CoreLimits {
            max_hops: self.max_hops,
            max_fetch_batch: self.max_fetch_batch,
            max_fetch_wait: Duration::from_millis(self.max_fetch_wait_ms),
            max_ack_seqs: self.max_ack_seqs,
            max_clock_skew: Duration::from_millis(self.max_clock_skew_ms),
        }
    }
}

/// Agent presence and session state (`state.*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// How long an agent stays present after a heartbeat that names no `ttl_ms`, milliseconds.
    pub agent_ttl_ms: u64,
    /// Longest `ttl_ms` a heartbeat may ask for, milliseconds.
    pub max_agent_ttl_ms: u64,
    /// How often the server looks for expired agents (and publishes `agent.offline`), ms.
    pub agent_sweep_ms: u64,
    /// Largest session `data`, bytes of compact JSON (413 `PAYLOAD_TOO_LARGE` beyond).
    pub max_session_bytes: usize,
    /// Where sessions are kept: `redb` (`{data_dir}/sessions.redb`, this server's) or
    /// `postgres` (`state.postgres`, shared by every server using it).
    pub sessions: SessionsStoreKind,
    /// The PostgreSQL database of `sessions: postgres`.
    pub postgres: StatePostgresConfig,
}

/// Where sessions (`state.sessions`) or approvals (`approvals.store`) are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionsStoreKind {
    /// `{data_dir}/sessions.redb` (or `approvals.redb`).
    #[default]
    Redb,
    /// PostgreSQL (`state.postgres`), shared by several servers.
    Postgres,
}

/// `state.postgres.*`: the PostgreSQL database of shared state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatePostgresConfig {
    /// Connection URL (`postgres://user:password@host:5432/db`); required with
    /// `sessions: postgres`.
    pub url: String,
    /// Schema of the tables (versioned migrations), created if missing: `[a-z_][a-z0-9_]*`.
    pub schema: String,
}

impl Default for StatePostgresConfig {
    fn default() -> Self {
        StatePostgresConfig {
            url: String::new(),
            schema: "ace_state".to_owned(),
        }
    }
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            agent_ttl_ms: 30_000,
            max_agent_ttl_ms: 3_600_000,
            agent_sweep_ms: 1_000,
            max_session_bytes: 256 * 1024,
            sessions: SessionsStoreKind::Redb,
            postgres: StatePostgresConfig::default(),
        }
    }
}

impl StateConfig {
    /// The presence ttls the core applies.
    pub fn presence(&self) -> PresenceConfig {
        PresenceConfig {
            default_ttl: Duration::from_millis(self.agent_ttl_ms),
            max_ttl: Duration::from_millis(self.max_agent_ttl_ms),
        }
    }

    fn validate(&self, approvals: SessionsStoreKind) -> Result<(), ConfigError> {
        let positive = [
            ("state.agent_ttl_ms", self.agent_ttl_ms),
            ("state.agent_sweep_ms", self.agent_sweep_ms),
            ("state.max_session_bytes", self.max_session_bytes as u64),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid {
                key: (*key).to_owned(),
                reason: "must be above 0".to_owned(),
            });
        }
        if self.sessions == SessionsStoreKind::Postgres || approvals == SessionsStoreKind::Postgres
        {
            let refuse = |key: &str, reason: String| {
                Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    reason,
                })
            };
            if self.postgres.url.trim().is_empty() {
                return refuse(
                    "state.postgres.url",
                    "is required with state.sessions or approvals.store: postgres".to_owned(),
                );
            }
            if asks_for_tls(&self.postgres.url) {
                return refuse(
                    "state.postgres.url",
                    "asks for TLS (sslmode=require/verify-*), which the state's PostgreSQL \
                     connection does not speak yet (sslmode=disable)"
                        .to_owned(),
                );
            }
            let schema = &self.postgres.schema;
            if !ace_ledger::PostgresStore::is_plain_schema(schema) {
                return refuse(
                    "state.postgres.schema",
                    format!("`{schema}` is not a plain identifier ([a-z_][a-z0-9_]*)"),
                );
            }
        }
        if self.agent_ttl_ms > self.max_agent_ttl_ms {
            return Err(ConfigError::Invalid {
                key: "state.agent_ttl_ms".to_owned(),
                reason: format!(
                    "{} must not exceed state.max_agent_ttl_ms ({})",
                    self.agent_ttl_ms, self.max_agent_ttl_ms
                ),
            });
        }
        Ok(())
    }
}

/// Messages held for a human's approval (`approvals.*`); pending approvals are kept in
/// `{data_dir}/approvals.redb`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApprovalsConfig {
    /// How long a held message waits for a decision before it expires (like a rejection), ms.
    pub ttl_ms: u64,
    /// How often the server looks for expired approvals, milliseconds.
    pub sweep_ms: u64,
    /// How long a decided or expired approval stays readable (`GET /api/v1/approvals/{id}`)
    /// before the sweep forgets it, milliseconds; the ledger keeps its decisions.
    pub retain_decided_ms: u64,
    /// Where held messages are kept: `redb` (`{data_dir}/approvals.redb`, this server's) or
    /// `postgres` (`state.postgres`, shared: any server lists, decides and releases them).
    pub store: SessionsStoreKind,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            ttl_ms: 24 * 3_600_000,
            sweep_ms: 1_000,
            retain_decided_ms: 7 * 24 * 3_600_000,
            store: SessionsStoreKind::Redb,
        }
    }
}

impl ApprovalsConfig {
    /// How long a hold lasts.
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }

    /// How long a decided approval is kept.
    pub fn retain_decided(&self) -> Duration {
        Duration::from_millis(self.retain_decided_ms)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("approvals.ttl_ms", self.ttl_ms),
            ("approvals.sweep_ms", self.sweep_ms),
            ("approvals.retain_decided_ms", self.retain_decided_ms),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid {
                key: (*key).to_owned(),
                reason: "must be above 0".to_owned(),
            });
        }
        Ok(())
    }
}

/// The ledger (`ledger.*`): every decision on a message, every configuration change and every
/// dead letter, hash-chained in `{data_dir}/ledger/` (or a PostgreSQL schema) and covered by
/// signed checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Whether the server keeps the ledger (off only for measurements: nothing is recorded and
    /// `/api/v1/ledger/*` answers 404).
    pub enabled: bool,
    /// A checkpoint is signed once this many entries are not yet covered by one …
    pub checkpoint_every_entries: u64,
    /// … or once the latest is this old (milliseconds) and some entry is not yet covered: the
    /// bound, in time, of the tail only the unkeyed chain protects, whatever the rate.
    pub checkpoint_interval_ms: u64,
    /// When entries are made durable before or after the publish is answered.
    pub sync: LedgerSyncMode,
    /// Under `sync: interval`, the longest time between two syncs, milliseconds.
    pub sync_interval_ms: u64,
    /// Where entries and checkpoints are kept.
    pub store: LedgerStoreKind,
    /// The PostgreSQL store (`store: postgres`).
    pub postgres: LedgerPostgresConfig,
    /// Where every signed checkpoint is also sent, outside the data directory.
    pub witness: LedgerWitnessConfig,
}

/// `ledger.witness.*`: copies of every signed checkpoint kept outside `data_dir`, so that a
/// ledger rolled back or rewritten together with its own checkpoints is caught by
/// `ace-comms ledger verify --checkpoint` / `--witness-postgres`. A failing witness is logged,
/// counted (`ace_comms_ledger_witness_failures_total`) and retried; it never holds up a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerWitnessConfig {
    /// A file outside `data_dir` each checkpoint is appended to as a JSON line (fsynced, never
    /// through a symlink); an absolute path, empty for none. At start the ledger must extend
    /// its latest checkpoint, or the server refuses to start.
    pub file: String,
    /// A PostgreSQL witness (`witness_checkpoints` in `postgres.schema`); empty url for none.
    pub postgres: LedgerPostgresConfig,
    /// The longest wait between two tries of a failing witness, milliseconds (the first is one
    /// second, doubling up to this).
    pub retry_max_ms: u64,
}

impl Default for LedgerWitnessConfig {
    fn default() -> Self {
        LedgerWitnessConfig {
            file: String::new(),
            postgres: LedgerPostgresConfig {
                url: String::new(),
                schema: "ace_ledger_witness".to_owned(),
            },
            retry_max_ms: 30_000,
        }
    }
}

impl LedgerWitnessConfig {
    fn validate(&self, data_dir: &Path) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason,
            })
        };
        if !self.file.is_empty() {
            let file = Path::new(&self.file);
            if !file.is_absolute() {
                return bad(
                    "ledger.witness.file",
                    format!("`{}` must be an absolute path", self.file),
                );
            }
            if file.file_name().is_none() || self.file.ends_with('/') {
                return bad(
                    "ledger.witness.file",
                    format!("`{}` must name a file", self.file),
                );
            }
            let data = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
            let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            let parent = file.parent().map(canonical).unwrap_or_default();
            if file.starts_with(&data) || parent.starts_with(canonical(&data)) {
                return bad(
                    "ledger.witness.file",
                    format!(
                        "`{}` is inside data_dir `{}`: a witness must live outside it (whoever \
                         can rewrite the ledger can rewrite that directory too)",
                        self.file,
                        data_dir.display()
                    ),
                );
            }
        }
        if !self.postgres.url.trim().is_empty() {
            if asks_for_tls(&self.postgres.url) {
                return bad(
                    "ledger.witness.postgres.url",
                    "asks for TLS (sslmode=require/verify-*), which the ledger's PostgreSQL \
                     connection does not speak yet: use a local socket or a trusted network \
                     (sslmode=disable)"
                        .to_owned(),
                );
            }
            let schema = &self.postgres.schema;
            if !ace_ledger::PostgresStore::is_plain_schema(schema) {
                return bad(
                    "ledger.witness.postgres.schema",
                    format!("`{schema}` is not a plain identifier ([a-z_][a-z0-9_]*)"),
                );
            }
        }
        if self.retry_max_ms < 1_000 {
            return bad(
                "ledger.witness.retry_max_ms",
                format!("{} is below the first wait of 1000 ms", self.retry_max_ms),
            );
        }
        Ok(())
    }
}

/// Whether a PostgreSQL URL asks for TLS, which the ledger's connections do not speak.
fn asks_for_tls(url: &str) -> bool {
    let url = url.to_ascii_lowercase();
    ["require", "verify-ca", "verify-full"]
        .iter()
        .any(|mode| url.contains(&format!("sslmode={mode}")))
}

/// `ledger.sync`: when a ledger entry is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerSyncMode {
    /// Every group commit is synced (`fdatasync`, or a synchronous PostgreSQL commit) before the
    /// publishes it records are answered.
    #[default]
    Always,
    /// Written and answered at once (it survives a crash of the process), synced every
    /// `sync_interval_ms`, before every checkpoint and at shutdown.
    Interval,
}

/// `ledger.store`: where the ledger keeps its entries and checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerStoreKind {
    /// `{data_dir}/ledger/entries.jsonl` and `checkpoints.jsonl`.
    #[default]
    File,
    /// Two tables in the schema `ledger.postgres.schema` of `ledger.postgres.url`.
    Postgres,
}

/// `ledger.postgres.*`: the PostgreSQL store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerPostgresConfig {
    /// Connection URL (`postgres://user:password@host:5432/db`); required with
    /// `store: postgres`. Never logged with its password.
    pub url: String,
    /// Schema of the two tables, created if missing: a plain identifier `[a-z_][a-z0-9_]*`.
    pub schema: String,
}

impl Default for LedgerPostgresConfig {
    fn default() -> Self {
        LedgerPostgresConfig {
            url: String::new(),
            schema: "ace_ledger".to_owned(),
        }
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            enabled: true,
            checkpoint_every_entries: 1_000,
            checkpoint_interval_ms: 1_000,
            sync: LedgerSyncMode::Always,
            sync_interval_ms: 100,
            store: LedgerStoreKind::File,
            postgres: LedgerPostgresConfig::default(),
            witness: LedgerWitnessConfig::default(),
        }
    }
}

impl LedgerConfig {
    /// How often the server checks whether a checkpoint is due.
    pub fn checkpoint_interval(&self) -> Duration {
        Duration::from_millis(self.checkpoint_interval_ms)
    }

    /// `sync` and `sync_interval_ms` as the ledger takes them.
    pub fn sync_policy(&self) -> ace_ledger::LedgerSync {
        match self.sync {
            LedgerSyncMode::Always => ace_ledger::LedgerSync::Always,
            LedgerSyncMode::Interval => {
                ace_ledger::LedgerSync::Interval(Duration::from_millis(self.sync_interval_ms))
            }
        }
    }

    fn validate(&self, data_dir: &Path) -> Result<(), ConfigError> {
        self.witness.validate(data_dir)?;
        let positive = [
            (
                "ledger.checkpoint_every_entries",
                self.checkpoint_every_entries,
            ),
            ("ledger.checkpoint_interval_ms", self.checkpoint_interval_ms),
            ("ledger.sync_interval_ms", self.sync_interval_ms),
        ];
        let bad = |key: &str, reason: String| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason,
            })
        };
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return bad(key, "must be above 0".to_owned());
        }
        if self.store == LedgerStoreKind::Postgres {
            let schema = &self.postgres.schema;
            if self.postgres.url.trim().is_empty() {
                return bad(
                    "ledger.postgres.url",
                    "is required with ledger.store: postgres".to_owned(),
                );
            }
            if asks_for_tls(&self.postgres.url) {
                return bad(
                    "ledger.postgres.url",
                    "asks for TLS (sslmode=require/verify-*), which the ledger's PostgreSQL \
                     connection does not speak yet: use a local socket or a trusted network \
                     (sslmode=disable)"
                        .to_owned(),
                );
            }
            if !ace_ledger::PostgresStore::is_plain_schema(schema) {
                return bad(
                    "ledger.postgres.schema",
                    format!("`{schema}` is not a plain identifier ([a-z_][a-z0-9_]*)"),
                );
            }
        }
        Ok(())
    }
}

/// Streams the server makes when they do not exist yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamsConfig {
    /// Whether to create `defaults` at start (existing streams are never changed).
    pub create_defaults: bool,
    /// The default streams (`contracts/comms/topics.yaml`): their subjects never overlap.
    pub defaults: Vec<StreamConfig>,
    /// Most envelope ids plus idempotency keys one stream's dedup window remembers (about 80
    /// bytes each); past it the oldest are forgotten before the stream's `dedup_window` ends.
    pub dedup_max_entries: usize,
    /// When true, `/ready` answers 503 `UNAVAILABLE` while a stream's storage is `read_only`
    /// (damage found) or `halted` (a failed write or fsync); when false (the default) the server
    /// stays ready and `/ready` lists them under `degraded_streams`.
    pub ready_strict: bool,
}

impl Default for StreamsConfig {
    fn default() -> Self {
        StreamsConfig {
            create_defaults: true,
            defaults: default_streams(),
            dedup_max_entries: ace_bus::DEFAULT_DEDUP_MAX_ENTRIES,
            ready_strict: false,
        }
    }
}

/// The application protocols of the ACE subject hierarchy; system subjects have their own streams.
const PROTOCOLS: [&str; 6] = ["internal", "mcp", "matrix", "http", "ws", "a2a"];

fn per_protocol(verbs: &[&str]) -> Vec<String> {
    verbs
        .iter()
        .flat_map(|verb| {
            PROTOCOLS
                .iter()
                .map(move |p| format!("ace.comms.{p}.*.*.{verb}.>"))
        })
        .collect()
}

/// The default streams of `contracts/comms/topics.yaml` (without partitions, which the
/// embedded engine does not split): commands as a work queue, events, replies and errors, the
/// dead letters, approvals and workflow events.
pub fn default_streams() -> Vec<StreamConfig> {
    let stream = |name: &str, subjects: Vec<String>| StreamConfig {
        name: name.to_owned(),
        subjects,
        ..StreamConfig::default()
    };
    let hour = Duration::from_secs(3_600);
    vec![
        StreamConfig {
            retention: RetentionPolicy::Workqueue,
            ..stream("ACE_COMMANDS", per_protocol(&["cmd"]))
        },
        stream("ACE_EVENTS", per_protocol(&["evt"])),
        StreamConfig {
            max_age: Some(hour),
            ..stream("ACE_REPLIES", per_protocol(&["rsp", "err"]))
        },
        StreamConfig {
            max_age: Some(hour * 24 * 14),
            ..stream("ACE_DLQ", vec!["ace.comms.system.dlq.>".to_owned()])
        },
        StreamConfig {
            sync: SyncPolicy::Always,
            ..stream("ACE_HITL", vec!["ace.comms.system.hitl.>".to_owned()])
        },
        stream(
            "ACE_WORKFLOW",
            vec!["ace.comms.system.workflow.>".to_owned()],
        ),
    ]
}

impl Config {
    /// Defaults, overlaid by the YAML `file` text (if any), then by the `ACE_*` variables of
    /// `env`. Call [`Config::validate`] afterwards (the binary applies its flags in between).
    pub fn load(
        file: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let from_file: Config = match file {
            Some(text) => serde_yaml_ng::from_str::<Config>(text).map_err(ConfigError::File)?,
            None => Config::default(),
        };
        let mut tree = serde_yaml_ng::to_value(&from_file).map_err(ConfigError::File)?;
        let keys =
            leaf_keys(&serde_yaml_ng::to_value(Config::default()).map_err(ConfigError::File)?);
        let mut config = from_file;
        for (var, value) in env {
            if let Some(path) = keys.iter().find(|path| env_name(path) == var) {
                let parsed = parse_env(&tree, path, &value);
                set(&mut tree, path, parsed);
                // Checked one variable at a time, so the error names the variable at fault.
                config = serde_yaml_ng::from_value(tree.clone()).map_err(|e| ConfigError::Env {
                    var,
                    key: path.join("."),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(config)
    }

    /// Checks every value; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| {
            Err(ConfigError::Invalid {
                key: key.to_owned(),
                reason,
            })
        };
        if self.listen.parse::<SocketAddr>().is_err() {
            return bad(
                "listen",
                format!("`{}` is not an IP address and port", self.listen),
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty".to_owned());
        }
        self.limits.validate()?;
        self.nats.validate()?;
        self.state.validate(self.approvals.store)?;
        self.auth.validate(self.tls.as_ref())?;
        if let Err(err) = self.policy.ehi.validate() {
            return bad("policy.ehi", err.to_string());
        }
        if let Err(reason) = self.mlt.validate() {
            return bad("mlt", reason);
        }
        if let Some(tls) = &self.tls
            && tls.client_auth != ClientAuth::None
            && tls.client_ca.is_none()
        {
            return bad(
                "tls.client_ca",
                "is required when tls.client_auth is optional or required".to_owned(),
            );
        }
        self.ledger.validate(&self.data_dir)?;
        self.signatures.validate()?;
        self.approvals.validate()?;
        self.workflows.validate()?;
        let mut names: Vec<&str> = self
            .streams
            .defaults
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        names.sort_unstable();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return bad(
                "streams.defaults",
                format!("stream `{}` is listed twice", pair[0]),
            );
        }
        if self.streams.dedup_max_entries == 0 {
            return bad(
                "streams.dedup_max_entries",
                "must be at least 1 (a stream must remember what it just stored)".to_owned(),
            );
        }
        if let Err((key, reason)) = self.cloudevents.check() {
            return bad(&format!("cloudevents.{key}"), reason);
        }
        self.contracts.requirements()?;
        Ok(())
    }

    /// Every key as its `ACE_*` variable name, in file order (for documentation and tests).
    pub fn env_names() -> Vec<String> {
        serde_yaml_ng::to_value(Config::default())
            .map(|v| leaf_keys(&v).iter().map(|p| env_name(p)).collect())
            .unwrap_or_default()
    }
}

impl LimitsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("limits.max_body_bytes", self.max_body_bytes as u64),
            ("limits.max_batch_messages", self.max_batch_messages as u64),
            ("limits.max_connections", self.max_connections as u64),
            (
                "limits.max_connections_per_address",
                self.max_connections_per_address as u64,
            ),
            ("limits.header_timeout_ms", self.header_timeout_ms),
            ("limits.body_timeout_ms", self.body_timeout_ms),
            ("limits.request_timeout_ms", self.request_timeout_ms),
            ("limits.idle_timeout_ms", self.idle_timeout_ms),
            ("limits.max_fetch_batch", self.max_fetch_batch as u64),
            ("limits.max_ack_seqs", self.max_ack_seqs as u64),
            (
                "limits.ws.max_message_bytes",
                self.ws.max_message_bytes as u64,
            ),
            ("limits.ws.max_frame_bytes", self.ws.max_frame_bytes as u64),
            ("limits.ws.queue", self.ws.queue as u64),
            (
                "limits.ws.max_queued_bytes",
                self.ws.max_queued_bytes as u64,
            ),
            (
                "limits.ws.max_queued_bytes_per_principal",
                self.ws.max_queued_bytes_per_principal as u64,
            ),
            (
                "limits.ws.max_queued_bytes_total",
                self.ws.max_queued_bytes_total as u64,
            ),
            (
                "limits.ws.max_inflight_publish_bytes",
                self.ws.max_inflight_publish_bytes as u64,
            ),
            (
                "limits.ws.max_subscriptions",
                self.ws.max_subscriptions as u64,
            ),
            (
                "limits.ws.max_inflight_publishes",
                self.ws.max_inflight_publishes as u64,
            ),
            ("limits.ws.max_connections", self.ws.max_connections as u64),
            (
                "limits.ws.max_connections_per_address",
                self.ws.max_connections_per_address as u64,
            ),
            ("limits.ws.ping_interval_ms", self.ws.ping_interval_ms),
            (
                "limits.ws.max_missed_pongs",
                u64::from(self.ws.max_missed_pongs),
            ),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(ConfigError::Invalid {
                key: (*key).to_owned(),
                reason: "must be above 0".to_owned(),
            });
        }
        if self.ws.max_frame_bytes > self.ws.max_message_bytes {
            return Err(ConfigError::Invalid {
                key: "limits.ws.max_frame_bytes".to_owned(),
                reason: format!(
                    "{} must not exceed limits.ws.max_message_bytes ({})",
                    self.ws.max_frame_bytes, self.ws.max_message_bytes
                ),
            });
        }
        let queued = [
            (
                "limits.ws.max_queued_bytes",
                self.ws.max_queued_bytes,
                "limits.ws.max_queued_bytes_per_principal",
                self.ws.max_queued_bytes_per_principal,
            ),
            (
                "limits.ws.max_queued_bytes_per_principal",
                self.ws.max_queued_bytes_per_principal,
                "limits.ws.max_queued_bytes_total",
                self.ws.max_queued_bytes_total,
            ),
        ];
        for (key, value, above, bound) in queued {
            if value > bound {
                return Err(ConfigError::Invalid {
                    key: key.to_owned(),
                    reason: format!("{value} must not exceed {above} ({bound})"),
                });
            }
        }
        if self.max_hops == 0 || self.max_hops > ace_envelope::MAX_HOPS {
            return Err(ConfigError::Invalid {
                key: "limits.max_hops".to_owned(),
                reason: format!(
                    "must be 1 to {}, got {}",
                    ace_envelope::MAX_HOPS,
                    self.max_hops
                ),
            });
        }
        if self.max_fetch_wait_ms >= self.request_timeout_ms {
            return Err(ConfigError::Invalid {
                key: "limits.max_fetch_wait_ms".to_owned(),
                reason: format!(
                    "{} must be below limits.request_timeout_ms ({}) or long fetches time out",
                    self.max_fetch_wait_ms, self.request_timeout_ms
                ),
            });
        }
        Ok(())
    }
}

/// Required Ed25519 signatures (the rules are in `ace_core::integrity`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SignaturesConfig {
    /// Registered public keys: key id (the envelope's `signature.key_id`) → a file holding the
    /// key as a PEM `PUBLIC KEY` block or the raw 32 bytes in hex or base64. Read at start; a
    /// relative path is relative to the working directory.
    pub keys: BTreeMap<String, PathBuf>,
    /// Subject patterns whose messages must carry a signature by a registered key.
    pub require: Vec<String>,
}

impl SignaturesConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: String, reason: String| Err(ConfigError::Invalid { key, reason });
        for (i, pattern) in self.require.iter().enumerate() {
            if let Err(err) = SubjectPattern::new(pattern.as_str()) {
                return bad(format!("signatures.require[{i}]"), err.to_string());
            }
        }
        if !self.require.is_empty() && self.keys.is_empty() {
            return bad(
                "signatures.keys".to_owned(),
                "signatures.require lists subjects but no key is registered, so no message on \
                 them could ever be accepted"
                    .to_owned(),
            );
        }
        for (id, path) in &self.keys {
            let len = id.chars().count();
            if len == 0 || len > ace_envelope::MAX_ID_LEN {
                return bad(
                    format!("signatures.keys.{id}"),
                    format!(
                        "a key id must be 1 to {} characters",
                        ace_envelope::MAX_ID_LEN
                    ),
                );
            }
            if path.as_os_str().is_empty() {
                return bad(
                    format!("signatures.keys.{id}"),
                    "the key file path is empty".to_owned(),
                );
            }
        }
        Ok(())
    }

    /// Reads every registered key file into the policy the core applies; an unreadable file or
    /// one that holds no Ed25519 public key fails naming its key and path.
    pub fn load(&self) -> Result<SignaturePolicy, ConfigError> {
        let mut keys = Vec::with_capacity(self.keys.len());
        for (id, path) in &self.keys {
            let invalid = |reason: String| ConfigError::Invalid {
                key: format!("signatures.keys.{id}"),
                reason: format!("`{}`: {reason}", path.display()),
            };
            let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
            let key = ace_core::parse_public_key(&text).map_err(|e| invalid(e.to_string()))?;
            keys.push((id.clone(), key));
        }
        let mut require = Vec::with_capacity(self.require.len());
        for (i, pattern) in self.require.iter().enumerate() {
            require.push(SubjectPattern::new(pattern.as_str()).map_err(|err| {
                ConfigError::Invalid {
                    key: format!("signatures.require[{i}]"),
                    reason: err.to_string(),
                }
            })?);
        }
        Ok(SignaturePolicy::new(keys, require))
    }
}

/// The schema registry at run time (registrations are kept in `{data_dir}/contracts.redb`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContractsConfig {
    /// Subject patterns whose messages must satisfy a contract, whatever their `schema` names.
    pub require: Vec<ContractRequirement>,
}

/// One `contracts.require` rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractRequirement {
    /// The message subjects covered (a pattern: `*` one token, `>` the rest).
    pub subjects: String,
    /// The contract's subject (`kpi.threshold_breach`), registered when the server starts.
    pub contract: String,
}

impl ContractsConfig {
    /// The rules as the core takes them; a bad pattern or contract name is an error naming it.
    pub fn requirements(&self) -> Result<Vec<ace_core::Requirement>, ConfigError> {
        self.require
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                let bad = |field: &str, reason: String| ConfigError::Invalid {
                    key: format!("contracts.require[{i}].{field}"),
                    reason,
                };
                let subjects = ace_envelope::SubjectPattern::new(rule.subjects.as_str())
                    .map_err(|e| bad("subjects", e.to_string()))?;
                rule.contract
                    .parse::<ace_contracts::SchemaRef>()
                    .ok()
                    .filter(|r| r.version.is_none())
                    .ok_or_else(|| {
                        bad(
                            "contract",
                            format!(
                                "`{}` is not a contract subject (dotted name, no version)",
                                rule.contract
                            ),
                        )
                    })?;
                Ok(ace_core::Requirement {
                    subjects,
                    contract: rule.contract.clone(),
                })
            })
            .collect()
    }
}

/// Personal data in stored payloads (in logs it is always redacted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PiiConfig {
    /// Replace the payload fields `governance.pii` names before the message is stored; a name
    /// that matches nothing in the payload is then refused (`INVALID_REQUEST` naming the path).
    pub redact_stored: bool,
    /// What replaces each of those fields in a stored payload.
    pub replacement: String,
}

impl Default for PiiConfig {
    fn default() -> Self {
        let policy = PiiPolicy::default();
        PiiConfig {
            redact_stored: policy.redact_stored,
            replacement: policy.replacement,
        }
    }
}

impl Config {
    /// The signature and personal-data policies of the core, reading the registered key files.
    pub fn integrity(&self) -> Result<Integrity, ConfigError> {
        Ok(Integrity {
            signatures: self.signatures.load()?,
            pii: PiiPolicy {
                redact_stored: self.pii.redact_stored,
                replacement: self.pii.replacement.clone(),
            },
        })
    }
}

/// The paths of every leaf of a mapping tree (a list counts as a leaf).
pub(crate) fn leaf_keys(tree: &Value) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), &mut out);
    out
}

fn walk(value: &Value, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Mapping(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(key.as_str().unwrap_or_default().to_owned());
                walk(child, path, out);
                path.pop();
            }
        }
        _ => out.push(path.clone()),
    }
}

fn env_name(path: &[String]) -> String {
    format!("ACE_{}", path.join("_").to_ascii_uppercase())
}

/// The variable's value as YAML, except where the key holds text (an address like `::1:80`
/// or a path must not turn into a number or a mapping).
fn parse_env(tree: &Value, path: &[String], raw: &str) -> Value {
    match get(tree, path) {
        Some(Value::String(_)) => Value::String(raw.to_owned()),
        _ => serde_yaml_ng::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned())),
    }
}

fn get<'v>(tree: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(tree, |node, key| node.get(key.as_str()))
}

fn set(tree: &mut Value, path: &[String], value: Value) {
    let mut node = tree;
    for key in path {
        let Some(next) = node.get_mut(key.as_str()) else {
            return;
        };
        node = next;
    }
    *node = value;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn given_nothing_when_loaded_then_defaults_listen_on_8500_under_data() {
        let config = Config::load(None, env(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.listen, "127.0.0.1:8500");
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        config.validate().unwrap();
    }

    #[test]
    fn given_a_file_and_env_when_loaded_then_env_overrides_the_file() {
        let file = "listen: 0.0.0.0:9000\nlimits:\n  max_body_bytes: 10\n";
        let config = Config::load(
            Some(file),
            env(&[
                ("ACE_LIMITS_MAX_BODY_BYTES", "20"),
                ("ACE_DATA_DIR", "/var/ace"),
                ("ACE_LOG", "debug"),
            ]),
        )
        .unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.limits.max_body_bytes, 20);
        assert_eq!(config.data_dir, PathBuf::from("/var/ace"));
    }

    #[test]
    fn given_a_list_in_env_when_loaded_then_it_replaces_the_default_streams() {
        let config = Config::load(
            None,
            env(&[("ACE_STREAMS_DEFAULTS", "[{name: A, subjects: [a.>]}]")]),
        )
        .unwrap();
        assert_eq!(
            config.streams.defaults,
            vec![StreamConfig::new("A", &["a.>"])]
        );
    }

    #[test]
    fn given_an_unknown_key_in_the_file_when_loaded_then_it_fails_naming_it() {
        let err = Config::load(Some("limits:\n  max_body_byts: 5\n"), env(&[])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("max_body_byts"), "{text}");
        assert!(text.contains("line 2"), "{text}");
    }

    #[test]
    fn given_a_bad_env_value_when_loaded_then_it_fails() {
        let err = Config::load(None, env(&[("ACE_LIMITS_MAX_HOPS", "many")])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("ACE_LIMITS_MAX_HOPS"), "{text}");
        assert!(text.contains("`limits.max_hops`"), "{text}");
    }

    #[test]
    fn given_bad_values_when_validated_then_the_error_names_the_key() {
        let mut config = Config {
            listen: "nowhere".into(),
            ..Config::default()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("`listen`")
        );
        config.listen = "127.0.0.1:1".into();
        config.limits.max_fetch_wait_ms = config.limits.request_timeout_ms;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("limits.max_fetch_wait_ms"), "{err}");
        config.limits = LimitsConfig {
            max_connections: 0,
            ..LimitsConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("limits.max_connections"), "{err}");
    }

    #[test]
    fn given_auth_settings_when_validated_then_inconsistent_ones_name_the_key() {
        let enforced = |auth: AuthConfig| Config {
            auth: AuthConfig {
                mode: AuthMode::Enforced,
                ..auth
            },
            ..Config::default()
        };
        let err = |config: Config| config.validate().unwrap_err().to_string();
        let none = err(enforced(AuthConfig::default()));
        assert!(
            none.contains("`auth.mode`") && none.contains("at least one"),
            "{none}"
        );
        let forgot = Config {
            auth: AuthConfig {
                api_keys: Some("keys.yaml".into()),
                ..AuthConfig::default()
            },
            ..Config::default()
        };
        assert!(err(forgot).contains("set auth.mode to enforced"));
        let mtls = enforced(AuthConfig {
            mtls: true,
            ..AuthConfig::default()
        });
        assert!(err(mtls.clone()).contains("`auth.mtls`"));
        let without_ca = Config {
            tls: Some(TlsConfig {
                cert: "c.pem".into(),
                key: "k.pem".into(),
                client_ca: None,
                client_auth: ClientAuth::Required,
            }),
            ..mtls
        };
        assert!(err(without_ca.clone()).contains("`tls.client_ca`"));
        let complete = Config {
            tls: without_ca.tls.map(|t| TlsConfig {
                client_ca: Some("ca.pem".into()),
                ..t
            }),
            ..without_ca
        };
        complete.validate().unwrap();
        let mut ehi = Config::default();
        ehi.policy.ehi.default_threshold = 1.5;
        assert!(err(ehi).contains("`policy.ehi`"));
    }

    #[test]
    fn given_auth_in_yaml_and_env_when_loaded_then_jwt_and_tls_are_read() {
        let file = "auth:\n  mode: enforced\n  jwt:\n    issuer: ace-auth\n    keys:\n      \
                    - {source: pem, path: /k.pem, alg: RS256}\n";
        let config = Config::load(
            Some(file),
            env(&[
                ("ACE_TLS", "{cert: /c.pem, key: /k.pem}"),
                ("ACE_AUTH_MTLS", "false"),
            ]),
        )
        .unwrap();
        let jwt = config.auth.jwt.as_ref().expect("jwt");
        assert_eq!(jwt.issuer.as_deref(), Some("ace-auth"));
        assert_eq!(jwt.leeway_secs, 30);
        assert!(jwt.require_iat);
        assert_eq!(
            jwt.max_lifetime_secs,
            ace_policy::DEFAULT_MAX_TOKEN_LIFETIME_SECS
        );
        let tls = config.tls.as_ref().expect("tls");
        assert_eq!(tls.client_auth, ClientAuth::None);
        config.validate().unwrap();
    }

    #[test]
    fn given_a_zero_jwt_max_lifetime_when_validated_then_the_key_is_named() {
        let file = "auth:\n  mode: enforced\n  jwt:\n    max_lifetime_secs: 0\n    \
                    require_iat: false\n    keys:\n      - {source: pem, path: /k.pem, alg: RS256}\n";
        let config = Config::load(Some(file), env(&[])).unwrap();
        let jwt = config.auth.jwt.as_ref().expect("jwt");
        assert!(!jwt.require_iat);
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("`auth.jwt.max_lifetime_secs`"), "{err}");
        assert!(err.contains("at least 1"), "{err}");
    }

    #[test]
    fn given_ledger_witness_keys_when_loaded_then_they_reach_the_config_and_bad_ones_name_the_key()
    {
        let file = "data_dir: /var/lib/ace\nledger:\n  checkpoint_interval_ms: 500\n  witness:\n    file: /mnt/audit/ace-witness.jsonl\n    retry_max_ms: 5000\n";
        let url = "postgres://audit:pw@witness-db:5432/audit";
        let config =
            Config::load(Some(file), env(&[("ACE_LEDGER_WITNESS_POSTGRES_URL", url)])).unwrap();
        assert_eq!(config.ledger.checkpoint_interval_ms, 500);
        assert_eq!(config.ledger.witness.file, "/mnt/audit/ace-witness.jsonl");
        assert_eq!(config.ledger.witness.postgres.url, url);
        assert_eq!(config.ledger.witness.postgres.schema, "ace_ledger_witness");
        assert_eq!(config.ledger.witness.retry_max_ms, 5_000);
        config.validate().unwrap();
        assert_eq!(LedgerConfig::default().checkpoint_interval_ms, 1_000);

        let refused = |tweak: &dyn Fn(&mut LedgerWitnessConfig)| {
            let mut bad = config.clone();
            tweak(&mut bad.ledger.witness);
            bad.validate().unwrap_err().to_string()
        };
        let err = refused(&|w| w.file = "relative/witness.jsonl".to_owned());
        assert!(
            err.contains("`ledger.witness.file`") && err.contains("must be an absolute path"),
            "{err}"
        );
        let err = refused(&|w| w.file = "/var/lib/ace/ledger/witness.jsonl".to_owned());
        assert!(
            err.contains("`ledger.witness.file`") && err.contains("inside data_dir"),
            "{err}"
        );
        let err = refused(&|w| w.file = "/mnt/audit/".to_owned());
        assert!(err.contains("must name a file"), "{err}");
        let err = refused(&|w| w.postgres.schema = "audit-log".to_owned());
        assert!(err.contains("`ledger.witness.postgres.schema`"), "{err}");
        let err = refused(&|w| {
            w.postgres.url = "postgres://u@db/x?sslmode=verify-full".to_owned();
        });
        assert!(
            err.contains("`ledger.witness.postgres.url`: asks for TLS"),
            "{err}"
        );
        let err = refused(&|w| w.retry_max_ms = 10);
        assert!(err.contains("`ledger.witness.retry_max_ms`"), "{err}");
        // A relative data_dir is compared as the absolute path it names.
        let mut relative = config.clone();
        relative.data_dir = "data".into();
        relative.ledger.witness.file = std::path::absolute("data/w.jsonl")
            .unwrap()
            .display()
            .to_string();
        let err = relative.validate().unwrap_err().to_string();
        assert!(err.contains("inside data_dir"), "{err}");
    }

    const EXAMPLE: &str = include_str!("../../../config/ace-comms.example.yaml");

    #[test]
    fn given_ledger_sync_and_store_keys_when_loaded_then_they_reach_the_ledger_and_bad_ones_name_the_key()
     {
        let file = "ledger:\n  sync: interval\n  sync_interval_ms: 250\n  store: postgres\n";
        let url = "postgres://ace:pw@db:5432/ace";
        let config = Config::load(Some(file), env(&[("ACE_LEDGER_POSTGRES_URL", url)])).unwrap();
        assert_eq!(config.ledger.store, LedgerStoreKind::Postgres);
        assert_eq!(config.ledger.postgres.url, url);
        assert_eq!(config.ledger.postgres.schema, "ace_ledger");
        assert_eq!(
            config.ledger.sync_policy(),
            ace_ledger::LedgerSync::Interval(Duration::from_millis(250))
        );
        config.validate().unwrap();
        assert_eq!(
            LedgerConfig::default().sync_policy(),
            ace_ledger::LedgerSync::Always
        );

        let refused = |tweak: fn(&mut LedgerConfig)| {
            let mut bad = config.clone();
            tweak(&mut bad.ledger);
            bad.validate().unwrap_err().to_string()
        };
        let err = refused(|l| l.sync_interval_ms = 0);
        assert!(
            err.contains("`ledger.sync_interval_ms`: must be above 0"),
            "{err}"
        );
        let err = refused(|l| l.postgres.url = String::new());
        assert!(err.contains("`ledger.postgres.url`: is required"), "{err}");
        let err = refused(|l| l.postgres.schema = "ace-ledger".to_owned());
        assert!(err.contains("`ledger.postgres.schema`"), "{err}");
        assert!(err.contains("not a plain identifier"), "{err}");
        let err = refused(|l| l.postgres.url = "postgres://u@db/x?sslmode=Require".to_owned());
        assert!(err.contains("`ledger.postgres.url`: asks for TLS"), "{err}");
        let err = Config::load(Some("ledger:\n  sync: sometimes\n"), Vec::new()).unwrap_err();
        assert!(err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn given_a_zero_dedup_max_entries_when_validated_then_the_key_is_named() {
        let file = "streams:\n  dedup_max_entries: 0\n";
        let config = Config::load(Some(file), env(&[])).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("streams.dedup_max_entries"), "{err}");
        let file = "streams:\n  dedup_max_entries: 5000\n";
        let config = Config::load(Some(file), env(&[])).unwrap();
        config.validate().unwrap();
        assert_eq!(config.streams.dedup_max_entries, 5000);
    }

    #[test]
    fn given_cloudevents_rules_when_loaded_then_bad_ones_name_their_key() {
        let file = "cloudevents:\n  rules:\n    - match: {type: \"com.*\"}\n      subject: \"a.{type}\"\n      kind: command\n";
        let config = Config::load(Some(file), env(&[])).unwrap();
        config.validate().unwrap();
        assert_eq!(
            config.cloudevents.rules[0].kind,
            ace_envelope::Kind::Command
        );
        let file = "cloudevents:\n  rules:\n    - subject: \"a.{typ}\"\n";
        let err = Config::load(Some(file), env(&[]))
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("cloudevents.rules[0].subject"), "{err}");
        let config = Config::load(
            None,
            env(&[("ACE_CLOUDEVENTS_DEFAULT_SUBJECT", "a..{type}")]),
        )
        .unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("cloudevents.default.subject"), "{err}");
        let unknown = "cloudevents:\n  rules:\n    - subject: a.b\n      kinds: event\n";
        assert!(Config::load(Some(unknown), env(&[])).is_err());
    }

    #[test]
    fn given_bad_nats_settings_when_validated_then_the_error_names_the_key() {
        type Spoil = fn(&mut NatsConfig);
        let cases: [(&str, Spoil); 4] = [
            ("nats.url", |n| n.url = " ".to_owned()),
            ("nats.request_timeout_ms", |n| n.request_timeout_ms = 0),
            ("nats.stream_prefix", |n| n.stream_prefix = "a.b".to_owned()),
            ("nats.subject_prefix", |n| {
                n.subject_prefix = "acme".to_owned()
            }),
        ];
        for (key, spoil) in cases {
            let mut config = Config {
                engine: Engine::Nats,
                ..Config::default()
            };
            spoil(&mut config.nats);
            match config.validate() {
                Err(ConfigError::Invalid { key: got, .. }) => assert_eq!(got, key),
                other => panic!("{key}: {other:?}"),
            }
        }
        let mut good = Config::default();
        good.nats.subject_prefix = "acme.eu.".to_owned();
        good.validate().expect("a dotted prefix is fine");
    }

    #[test]
    fn given_postgres_sessions_without_a_url_or_with_a_bad_schema_when_validated_then_the_key_is_named()
     {
        let mut config = Config::default();
        config.state.sessions = SessionsStoreKind::Postgres;
        match config.validate() {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "state.postgres.url"),
            other => panic!("{other:?}"),
        }
        config.state.postgres.url = "postgres://postgres@127.0.0.1/test".to_owned();
        config.state.postgres.schema = "Bad-Name".to_owned();
        match config.validate() {
            Err(ConfigError::Invalid { key, .. }) => assert_eq!(key, "state.postgres.schema"),
            other => panic!("{other:?}"),
        }
        config.state.postgres.schema = "ace_state".to_owned();
        config.validate().expect("valid");
    }

    #[test]
    fn given_the_example_file_when_loaded_then_it_equals_the_defaults() {
        let config = Config::load(Some(EXAMPLE), env(&[])).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn given_the_example_file_when_read_then_it_sets_every_key_explicitly() {
        let example: Value = serde_yaml_ng::from_str(EXAMPLE).unwrap();
        let defaults = serde_yaml_ng::to_value(Config::default()).unwrap();
        assert_eq!(leaf_keys(&example), leaf_keys(&defaults));
    }

    #[test]
    fn given_the_defaults_when_listing_env_names_then_each_key_has_one() {
        let names = Config::env_names();
        assert!(names.contains(&"ACE_LIMITS_MAX_BODY_BYTES".to_owned()));
        assert!(names.contains(&"ACE_STREAMS_DEFAULTS".to_owned()));
        assert!(names.contains(&"ACE_AUTH_MODE".to_owned()));
    }
}
