//! Prometheus metrics of the server, under the seed's `ace_comms_*` names that apply so far:
//! published messages, publish latency, errors by code, HTTP requests by route and status.
//!
//! `prometheus` without default features (no protobuf, no process collector) is the lean
//! choice: a handful of small dependencies, and its own registry rather than a global one, so
//! two servers in one test process keep separate counts.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

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
        Ok(Metrics {
            registry,
            published,
            latency,
            errors,
            requests,
            connections,
            ws_connections,
            ws_closes,
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}
