//! Prometheus metrics of the server, under the `ace_comms_*` names and the standard
//! `process_*` ones; `deploy/` holds a Grafana dashboard and alert rules over them.
//!
//! Counted where they happen: messages accepted from clients by protocol and envelope kind
//! (`ace_comms_messages_total{protocol, type}`: `protocol` is `http`, `ws`, `mcp` or `cloudevents` —
//! a CloudEvent over HTTP, structured, binary or batched —, `type` the envelope `kind`;
//! duplicates answered from the dedup window count too; the server's own messages do not) and
//! by stream (`ace_comms_messages_published_total{stream, duplicate}`), publish latency, errors
//! by code, HTTP requests by route and status, reloads by result, and the network bounds:
//! WebSocket closes by reason (`ace_comms_ws_closes_total`: `slow_consumer` for a queue over its
//! frame or byte bound, `credentials` for a token past its `exp` or a key a reload removed,
//! `protocol_error`, `invalid_utf8`, `too_big`, `keepalive`, `shutdown`), the bytes queued for
//! WebSocket clients now (`ace_comms_ws_queued_bytes`), and idle HTTP connections closed to
//! make room when every slot was taken (`ace_comms_http_evictions_total`).
//!
//! Copied at every scrape from counters kept elsewhere, so the hot path pays no extra metric
//! update: the policy engine's decisions (`ace_comms_policy_denials_total` and friends,
//! `policy.rs`; all zero in development mode, where no engine decides), the ledger's witnesses
//! and uncovered tail (`ace_comms_ledger_*`), and everything of `scrape.rs`: stream depth,
//! consumer lag, present agents, stored sessions, held messages and their outcomes
//! (`ace_comms_hitl_*`, `ace_comms_ehi_triggers_total`), the process, with the bound on how
//! many streams and consumers one scrape exports.
//!
//! A reload swaps in a new policy engine whose own counters start at zero, so the mirror keeps,
//! per engine, what it has already copied: at the first scrape after a swap it copies the last
//! increase of the replaced engine, then follows the new one from zero. The exported counters
//! never go backwards and never freeze; decisions the old engine makes after that scrape
//! (requests in flight across the swap and the scrape) go uncounted, and so do all of an
//! engine's decisions if it is replaced again before any scrape saw it.
//!
//! Stream storage: `ace_comms_recovery_truncated_bytes_total{stream}` (torn tails, never
//! acknowledged, that recovery cut when the stream opened) and `ace_comms_stream_state{stream,
//! state}` (1 for the stream's current state among `ok`, `read_only`, `halted`, 0 for the other
//! two) are copied from the engine's stream info at every scrape, for every stream.
//!
//! `prometheus` without default features (no protobuf, no process collector) is the lean
//! choice: a handful of small dependencies, and its own registry rather than a global one, so
//! two servers in one test process keep separate counts.

mod policy;
mod process;
mod scrape;

pub use scrape::{MAX_AGENT_TYPES, MAX_CONSUMERS, MAX_STREAMS};

use std::sync::{Arc, Mutex};

use ace_bus::{StreamInfo, StreamState};
use ace_core::{Core, PolicyAuthorizer};
use ace_envelope::Kind;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The server's metrics and the registry that exposes them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Messages accepted from clients, by protocol and envelope kind.
    pub(crate) messages: IntCounterVec,
    /// Messages accepted by the pipeline, by stream (`none` when no stream captured them) and
    /// whether they were duplicates.
    pub(crate) published: IntCounterVec,
    /// Time from a publish request's parsed envelope to its durable acknowledgement.
    pub(crate) latency: Histogram,
    /// Error answers by wire code.
    pub(crate) errors: IntCounterVec,
    /// HTTP requests by route, method and status.
    pub(crate) requests: IntCounterVec,
    /// Connections open now.
    pub(crate) connections: IntGauge,
    /// WebSocket connections open now.
    pub(crate) ws_connections: IntGauge,
    /// Idle HTTP connections closed to make room for a new one when every slot was taken.
    pub(crate) evictions: IntCounter,
    /// WebSocket connections closed by the server, by reason (`slow_consumer`, `too_big`,
    /// `keepalive`, `shutdown`, `protocol_error`, `invalid_utf8`, `credentials`).
    pub(crate) ws_closes: IntCounterVec,
    /// Bytes of frames queued for WebSocket clients now, over every connection (bounded by
    /// `limits.ws.max_queued_bytes_total`).
    pub(crate) ws_queued_bytes: IntGauge,
    /// Reloads of the credentials and policies, by result (`ok`, `error`).
    pub(crate) reloads: IntCounterVec,
    /// The policy engine's counters, mirrored at each scrape.
    policy: policy::PolicyMetrics,
    /// Bytes of torn tails cut by recovery, by stream.
    recovery_truncated: IntCounterVec,
    /// What was already copied into `recovery_truncated`, by stream.
    truncated_copied: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    /// Each stream's state (`ok`, `read_only`, `halted`): 1 for the current one.
    stream_state: IntGaugeVec,
    /// The ledger's witness and checkpoint counts, mirrored at each scrape.
    ledger: crate::ledger::LedgerMetrics,
}

impl Metrics {
    /// Registers every metric in a new registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let published = IntCounterVec::new(
            Opts::new(
                "ace_comms_messages_published_total",
                "Messages accepted by the ingress pipeline.",
            ),
            &["stream", "duplicate"],
        )?;
        let latency = Histogram::with_opts(
            HistogramOpts::new(
                "ace_comms_message_latency_seconds",
                "Publish latency from parsed envelope to durable acknowledgement.",
            )
            .buckets(vec![
                0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5,
            ]),
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "ace_comms_errors_total",
                "Error answers by wire error code.",
            ),
            &["code"],
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "ace_comms_http_requests_total",
                "HTTP requests by matched route, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let connections =
            IntGauge::new("ace_comms_http_connections", "HTTP connections open now.")?;
        let ws_connections = IntGauge::new(
            "ace_comms_ws_connections",
            "WebSocket connections open now.",
        )?;
        let evictions = IntCounter::new(
            "ace_comms_http_evictions_total",
            "Idle HTTP connections closed to make room when every connection slot was taken.",
        )?;
        registry.register(Box::new(evictions.clone()))?;
        let ws_queued_bytes = IntGauge::new(
            "ace_comms_ws_queued_bytes",
            "Bytes of frames queued for WebSocket clients now.",
        )?;
        let ws_closes = IntCounterVec::new(
            Opts::new(
                "ace_comms_ws_closes_total",
                "WebSocket connections closed by the server, by reason.",
            ),
            &["reason"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "ace_comms_reloads_total",
                "Reloads of credentials and policies (SIGHUP, POST /api/v1/admin/reload), by result.",
            ),
            &["result"],
        )?;
        for reason in WS_CLOSE_REASONS {
            ws_closes.with_label_values(&[reason]);
        }
        for result in ["ok", "error"] {
            reloads.with_label_values(&[result]);
        }
        registry.register(Box::new(reloads.clone()))?;
        registry.register(Box::new(ws_connections.clone()))?;
        registry.register(Box::new(ws_closes.clone()))?;
        registry.register(Box::new(ws_queued_bytes.clone()))?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        let recovery_truncated = IntCounterVec::new(
            Opts::new(
                "ace_comms_recovery_truncated_bytes_total",
                "Bytes of torn tails (never acknowledged) that recovery cut when a stream opened.",
            ),
            &["stream"],
        )?;
        let stream_state = IntGaugeVec::new(
            Opts::new(
                "ace_comms_stream_state",
                "1 for a stream's current storage state (ok, read_only, halted), 0 for the others.",
            ),
            &["stream", "state"],
        )?;
        registry.register(Box::new(recovery_truncated.clone()))?;
        registry.register(Box::new(stream_state.clone()))?;
        let messages = IntCounterVec::new(
            Opts::new(
                "ace_comms_messages_total",
                "Messages accepted from clients, by protocol (http, ws, cloudevents, mcp) and envelope kind.",
            ),
            &["protocol", "type"],
        )?;
        for protocol in PROTOCOLS {
            for kind in Kind::ALL {
                messages.with_label_values(&[protocol, kind.as_str()]);
            }
        }
        registry.register(Box::new(messages.clone()))?;
        let policy = policy::PolicyMetrics::new(&registry)?;
        let ledger = crate::ledger::LedgerMetrics::new(&registry)?;
        Ok(Metrics {
            recovery_truncated,
            truncated_copied: Arc::default(),
            stream_state,
            registry,
            messages,
            published,
            latency,
            errors,
            requests,
            connections,
            ws_connections,
            evictions,
            ws_closes,
            ws_queued_bytes,
            reloads,
            policy,
            ledger,
        })
    }

    /// Exports the counters of the engine `authorizer` decides with (enforced mode), whichever
    /// engine a reload put there, as `ace_comms_policy_*`.
    pub fn with_policy(mut self, authorizer: Option<PolicyAuthorizer>) -> Self {
        self.policy.authorizer = authorizer;
        self
    }

    /// Copies the streams' recovery counts and states (the whole list: a stream not in it is
    /// gone and leaves `ace_comms_stream_state`).
    fn observe_streams(&self, streams: &[StreamInfo]) {
        let mut copied = self
            .truncated_copied
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        self.stream_state.reset();
        for info in streams {
            let name = info.config.name.as_str();
            let now = info.counters.recovery_truncated_bytes;
            let seen = copied.entry(name.to_owned()).or_insert(0);
            // A stream deleted and created again counts from zero: follow it from there.
            if now < *seen {
                *seen = 0;
            }
            self.recovery_truncated
                .with_label_values(&[name])
                .inc_by(now - *seen);
            *seen = now;
            for state in [StreamState::Ok, StreamState::ReadOnly, StreamState::Halted] {
                self.stream_state
                    .with_label_values(&[name, state.as_str()])
                    .set(i64::from(info.state == state));
            }
        }
    }

    /// Exports the witness and checkpoint counts of `ledger` (`ace_comms_ledger_*`).
    pub fn with_ledger(mut self, ledger: Option<Arc<ace_ledger::Ledger>>) -> Self {
        self.ledger.follow(ledger);
        self
    }

    /// Reads what is computed at scrape time from `core` and this process (see `scrape.rs`)
    /// and answers the Prometheus text exposition of every metric.
    pub async fn scrape(&self, core: &Core) -> String {
        let scrape = scrape::Scrape::read(core, scrape::BOUNDS).await;
        self.observe_streams(&scrape.streams);
        self.policy.sync();
        self.ledger.sync();
        let mut families = self.registry.gather();
        let scraped = Registry::new();
        match scrape.register(&scraped) {
            Ok(()) => families.extend(scraped.gather()),
            Err(err) => {
                tracing::error!(error = %err, "/metrics could not build the scraped families")
            }
        }
        families.sort_by(|a, b| a.name().cmp(b.name()));
        TextEncoder::new()
            .encode_to_string(&families)
            .unwrap_or_else(|err| {
                tracing::error!(error = %err, "/metrics could not encode the metrics");
                String::new()
            })
    }
}

/// The `reason` labels of `ace_comms_ws_closes_total` (the WebSocket adapter's), each series
/// present from the start so a rate over it is right from the first close.
const WS_CLOSE_REASONS: [&str; 7] = [
    "slow_consumer",
    "too_big",
    "keepalive",
    "shutdown",
    "protocol_error",
    "invalid_utf8",
    "credentials",
];

/// The `protocol` labels of `ace_comms_messages_total`, each series present from the start.
pub(crate) const PROTOCOLS: [&str; 4] = ["http", "ws", "cloudevents", "mcp"];
