//! Prometheus metrics of the server, under the `ace_comms_*` names:
//! published messages, publish latency, errors by code, HTTP requests by route and status, and
//! the policy engine's decisions (`ace_comms_policy_denials_total` and friends: copied from the
//! engine's own atomic counters at every scrape, so the hot path pays no extra metric update;
//! all zero in development mode, where no engine decides), reloads by result, and the network
//! bounds: WebSocket closes by reason (`ace_comms_ws_closes_total`: `slow_consumer` for a queue
//! over its frame or byte bound, `credentials` for a token past its `exp` or a key a reload
//! removed, `protocol_error`, `invalid_utf8`, `too_big`, `keepalive`, `shutdown`), the bytes
//! queued for WebSocket clients now (`ace_comms_ws_queued_bytes`), idle HTTP connections
//! closed to make room when every slot was taken (`ace_comms_http_evictions_total`), and the
//! ledger's witnesses and uncovered tail (`ace_comms_ledger_*`, copied from the ledger at each
//! scrape).
//!
//! A reload swaps in a new engine whose own counters start at zero, so the mirror keeps, per
//! engine, what it has already copied: at the first scrape after a swap it copies the last
//! increase of the replaced engine, then follows the new one from zero. The exported counters
//! never go backwards and never freeze; decisions the old engine makes after that scrape
//! (requests in flight across the swap and the scrape) go uncounted, and so do all of an
//! engine's decisions if it is replaced again before any scrape saw it.
//!
//! Stream storage: `ace_comms_recovery_truncated_bytes_total{stream}` (torn tails, never
//! acknowledged, that recovery cut when the stream opened) and `ace_comms_stream_state{stream,
//! state}` (1 for the stream's current state among `ok`, `read_only`, `halted`, 0 for the other
//! two) are copied from the engine's stream info at every scrape ([`Metrics::observe_streams`]).
//!
//! `prometheus` without default features (no protobuf, no process collector) is the lean
//! choice: a handful of small dependencies, and its own registry rather than a global one, so
//! two servers in one test process keep separate counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ace_bus::{StreamInfo, StreamState};
use ace_core::PolicyAuthorizer;
use ace_policy::PolicyEngine;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// The server's metrics and the registry that exposes them.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
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
    policy: PolicyMetrics,
    /// Bytes of torn tails cut by recovery, by stream.
    recovery_truncated: IntCounterVec,
    /// What was already copied into `recovery_truncated`, by stream.
    truncated_copied: Arc<Mutex<std::collections::HashMap<String, u64>>>,
    /// Each stream's state (`ok`, `read_only`, `halted`): 1 for the current one.
    stream_state: IntGaugeVec,
    /// The ledger's witness and checkpoint counts, mirrored at each scrape.
    ledger: crate::ledger::LedgerMetrics,
}

/// The `ace_comms_policy_*` counters and the authorizer whose current engine they mirror.
#[derive(Debug, Clone)]
struct PolicyMetrics {
    authorizer: Option<PolicyAuthorizer>,
    /// The engine copied last and how much of each counter was copied from it; locked while
    /// copying, so two scrapes at once never add the same increase twice.
    followed: Arc<Mutex<Followed>>,
    allowed: IntCounter,
    denied: IntCounter,
    held: IntCounter,
    receive_denied: IntCounter,
    engine_failures: IntCounter,
}

/// The engine the counters follow and its counts already exported (in the order of
/// [`PolicyMetrics::counters`]).
#[derive(Debug, Default)]
struct Followed {
    engine: Option<Arc<PolicyEngine>>,
    copied: [u64; 5],
}

impl PolicyMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        Ok(PolicyMetrics {
            authorizer: None,
            followed: Arc::default(),
            allowed: counter(
                "ace_comms_policy_allowed_total",
                "Requests the policy engine allowed.",
            )?,
            denied: counter(
                "ace_comms_policy_denials_total",
                "Requests the policy engine denied (RBAC, Rego or engine failure).",
            )?,
            held: counter(
                "ace_comms_policy_held_total",
                "Messages the policy engine held for approval.",
            )?,
            receive_denied: counter(
                "ace_comms_policy_receive_denials_total",
                "Deliveries withheld from a subscriber (envelope rbac permissions or label).",
            )?,
            engine_failures: counter(
                "ace_comms_policy_engine_failures_total",
                "Rego evaluations that failed (each answered as a denial).",
            )?,
        })
    }

    fn counters(&self) -> [&IntCounter; 5] {
        [
            &self.allowed,
            &self.denied,
            &self.held,
            &self.receive_denied,
            &self.engine_failures,
        ]
    }

    /// Adds what the current engine counted since the last copy; after a reload, first what
    /// the replaced engine counted since then.
    fn sync(&self) {
        let Some(authorizer) = &self.authorizer else {
            return;
        };
        let current = authorizer.engine();
        let mut followed = self
            .followed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let replaced = followed
            .engine
            .take_if(|engine| !Arc::ptr_eq(engine, &current));
        if let Some(replaced) = replaced {
            self.copy(&mut followed.copied, &replaced);
            followed.copied = [0; 5];
        }
        self.copy(&mut followed.copied, &current);
        followed.engine = Some(current);
    }

    fn copy(&self, copied: &mut [u64; 5], engine: &PolicyEngine) {
        let counters = engine.counters();
        let load = |source: &AtomicU64| source.load(Ordering::Relaxed);
        let failures = engine.rego().map_or(0, |rego| load(&rego.stats().failures));
        let now = [
            load(&counters.allowed),
            load(&counters.denied),
            load(&counters.held),
            load(&counters.receive_denied),
            failures,
        ];
        for ((counter, seen), now) in self.counters().into_iter().zip(copied).zip(now) {
            counter.inc_by(now.saturating_sub(*seen));
            *seen = now.max(*seen);
        }
    }
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
        let policy = PolicyMetrics::new(&registry)?;
        let ledger = crate::ledger::LedgerMetrics::new(&registry)?;
        Ok(Metrics {
            recovery_truncated,
            truncated_copied: Arc::default(),
            stream_state,
            registry,
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
    pub(crate) fn observe_streams(&self, streams: &[StreamInfo]) {
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

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.policy.sync();
        self.ledger.sync();
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
