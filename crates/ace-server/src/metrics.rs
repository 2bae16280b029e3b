//! Prometheus metrics of the server, under the seed's `ace_comms_*` names that apply so far:
//! published messages, publish latency, errors by code, HTTP requests by route and status, and
//! the policy engine's decisions (`ace_comms_policy_denials_total` and friends: copied from the
//! engine's own atomic counters at every scrape, so the hot path pays no extra metric update;
//! all zero in development mode, where no engine decides).
//!
//! `prometheus` without default features (no protobuf, no process collector) is the lean
//! choice: a handful of small dependencies, and its own registry rather than a global one, so
//! two servers in one test process keep separate counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ace_policy::PolicyEngine;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
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
    /// WebSocket connections closed by the server, by reason (`slow_consumer`, `too_big`,
    /// `keepalive`, `shutdown`).
    pub(crate) ws_closes: IntCounterVec,
    /// The policy engine's counters, mirrored at each scrape.
    policy: PolicyMetrics,
}

/// The `ace_comms_policy_*` counters and the engine they mirror.
#[derive(Debug, Clone)]
struct PolicyMetrics {
    engine: Option<Arc<PolicyEngine>>,
    /// Held while copying, so two scrapes at once never add the same increase twice.
    sync: Arc<Mutex<()>>,
    allowed: IntCounter,
    denied: IntCounter,
    held: IntCounter,
    receive_denied: IntCounter,
    engine_failures: IntCounter,
}

impl PolicyMetrics {
    fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        Ok(PolicyMetrics {
            engine: None,
            sync: Arc::new(Mutex::new(())),
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

    fn sync(&self) {
        let Some(engine) = &self.engine else { return };
        let _guard = self
            .sync
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let copy = |counter: &IntCounter, source: &AtomicU64| {
            let now = source.load(Ordering::Relaxed);
            counter.inc_by(now.saturating_sub(counter.get()));
        };
        let counters = engine.counters();
        copy(&self.allowed, &counters.allowed);
        copy(&self.denied, &counters.denied);
        copy(&self.held, &counters.held);
        copy(&self.receive_denied, &counters.receive_denied);
        if let Some(rego) = engine.rego() {
            copy(&self.engine_failures, &rego.stats().failures);
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
        let ws_closes = IntCounterVec::new(
            Opts::new(
                "ace_comms_ws_closes_total",
                "WebSocket connections closed by the server, by reason.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(ws_connections.clone()))?;
        registry.register(Box::new(ws_closes.clone()))?;
        registry.register(Box::new(published.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        let policy = PolicyMetrics::new(&registry)?;
        Ok(Metrics {
            registry,
            published,
            latency,
            errors,
            requests,
            connections,
            ws_connections,
            ws_closes,
            policy,
        })
    }

    /// Exports the counters of `engine` (enforced mode) as `ace_comms_policy_*`.
    pub fn with_policy(mut self, engine: Option<Arc<PolicyEngine>>) -> Self {
        self.policy.engine = engine;
        self
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        self.policy.sync();
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
