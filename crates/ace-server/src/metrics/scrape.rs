//! The metrics computed at each scrape from state the server already keeps — the engine's
//! stream and consumer infos, the present agents, the session store, the core's approval
//! counters and `/proc/self` — so the paths that change that state pay nothing for them.
//!
//! Families (labels in braces):
//! - streams: `ace_comms_stream_messages`, `ace_comms_stream_bytes`,
//!   `ace_comms_stream_first_seq`, `ace_comms_stream_last_seq` `{stream}` and
//!   `ace_comms_messages_discarded_total{stream}` (dropped by the stream's limits since the
//!   engine opened);
//! - consumers `{stream, consumer}`: `ace_comms_consumer_pending` (the stream's last sequence
//!   minus the consumer's ack floor: every sequence not yet settled, an upper bound under a
//!   filter), `ace_comms_consumer_waiting` (not yet delivered), `ace_comms_consumer_ack_pending`
//!   (delivered, not yet acknowledged), and the consumer's persisted counters
//!   `ace_comms_consumer_{delivered,redelivered,dead_lettered,expired}_total`;
//! - `ace_comms_metrics_skipped{what}`: the streams and consumers this scrape left out (below);
//! - `ace_comms_active_agents{type}` (agents present now by their announced `agent_type`,
//!   `none` for those announcing none) and `ace_comms_active_sessions` (sessions stored);
//! - `ace_comms_hitl_requests_total` (messages held for approval),
//!   `ace_comms_hitl_approvals_total{decision}` (`approved`, `rejected`, `expired`) and
//!   `ace_comms_ehi_triggers_total{rule}` (holds by the rule behind one of their reasons:
//!   `requires_approval`, `ehi_threshold`, `policy`; a hold with reasons of two rules counts
//!   under both), from the core's [`Counters`];
//! - the standard `process_*` metrics (`process.rs`).
//!
//! Cardinality is bounded: the first [`MAX_STREAMS`] streams by name and, over them, the first
//! [`MAX_CONSUMERS`] consumers are exported; the rest are counted in
//! `ace_comms_metrics_skipped{what="streams"|"consumers"}` (an alert says so).
//! `ace_comms_active_agents` names the first [`MAX_AGENT_TYPES`] types by name (`none` first
//! when there is one) and sums the others under `type="other"`. The bus is
//! asked once for the streams and once per exported stream with consumers.

use std::collections::BTreeMap;

use ace_bus::{ConsumerInfo, StreamInfo};
use ace_core::{Core, Counters, RequestContext};
use ace_policy::HoldRule;
use prometheus::{CounterVec, GaugeVec, Opts, Registry};

/// Most streams whose depth and consumers one scrape exports.
pub const MAX_STREAMS: usize = 256;

/// Most consumers one scrape exports, over every exported stream.
pub const MAX_CONSUMERS: usize = 1_024;

/// Most agent types `ace_comms_active_agents` names; the others are summed as `other`.
pub const MAX_AGENT_TYPES: usize = 32;

/// How many streams and consumers one scrape exports.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bounds {
    streams: usize,
    consumers: usize,
}

/// The bounds of every scrape.
pub(super) const BOUNDS: Bounds = Bounds {
    streams: MAX_STREAMS,
    consumers: MAX_CONSUMERS,
};

/// What one scrape read.
#[derive(Debug, Default)]
pub(super) struct Scrape {
    /// Every stream, by name (its state and recovery counts are exported for all of them).
    pub(super) streams: Vec<StreamInfo>,
    /// How many of `streams`, from the first, have their depth exported.
    exported_streams: usize,
    /// The consumers exported, each with the last sequence of its stream.
    consumers: Vec<(ConsumerInfo, u64)>,
    skipped_streams: usize,
    skipped_consumers: usize,
    /// Present agents by type.
    agents: BTreeMap<Option<String>, usize>,
    /// Sessions stored (`None`: the store did not answer).
    sessions: Option<u64>,
    /// Holds, outcomes and rules, copied from the core.
    requested: u64,
    outcomes: Vec<(&'static str, u64)>,
    rules: Vec<(&'static str, u64)>,
    process: Vec<super::process::Sample>,
}

impl Scrape {
    /// Reads everything a scrape exports from `core` and this process, within `bounds`. A
    /// failing read is logged and leaves its families out; the scrape itself always answers.
    pub(super) async fn read(core: &Core, bounds: Bounds) -> Scrape {
        let mut streams = core
            .list_streams(&RequestContext::internal())
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "/metrics could not list the streams");
                Vec::new()
            });
        streams.sort_by(|a, b| a.config.name.cmp(&b.config.name));
        let mut scrape = Scrape {
            exported_streams: streams.len().min(bounds.streams),
            skipped_streams: streams.len().saturating_sub(bounds.streams),
            agents: core.present_agents(),
            sessions: core
                .session_count()
                .await
                .inspect_err(
                    |err| tracing::warn!(error = %err, "/metrics could not count sessions"),
                )
                .ok(),
            process: super::process::samples(),
            ..Scrape::default()
        };
        scrape.copy_counters(core.counters());
        scrape.read_consumers(core, &streams, bounds).await;
        scrape.streams = streams;
        scrape
    }

    /// Lists the consumers of the first `bounds.streams` of `streams` (sorted by name), keeping
    /// the first `bounds.consumers` and counting the rest as skipped.
    async fn read_consumers(&mut self, core: &Core, streams: &[StreamInfo], bounds: Bounds) {
        let internal = RequestContext::internal();
        for (i, info) in streams.iter().enumerate() {
            let room = bounds.consumers - self.consumers.len();
            if i >= bounds.streams || room == 0 {
                self.skipped_consumers += info.consumers;
                continue;
            }
            if info.consumers == 0 {
                continue;
            }
            let name = &info.config.name;
            match core.list_consumers(&internal, name).await {
                Ok(mut consumers) => {
                    consumers.sort_by(|a, b| a.config.name.cmp(&b.config.name));
                    self.skipped_consumers += consumers.len().saturating_sub(room);
                    let last = info.last_seq;
                    let taken = consumers.into_iter().take(room).map(|c| (c, last));
                    self.consumers.extend(taken);
                }
                // Gone between the two calls, or unreadable: nothing to export for it.
                Err(err) => tracing::debug!(stream = %name, error = %err,
                    "/metrics could not list the consumers"),
            }
        }
    }

    fn copy_counters(&mut self, counters: &Counters) {
        self.requested = counters.requested();
        self.outcomes = Counters::OUTCOMES
            .iter()
            .map(|s| (s.as_str(), counters.outcome(*s)))
            .collect();
        self.rules = HoldRule::ALL
            .iter()
            .map(|r| (r.as_str(), counters.rule(*r)))
            .collect();
    }

    /// Registers this scrape's families, with their values, in `registry`.
    pub(super) fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        self.register_streams(registry)?;
        self.register_consumers(registry)?;
        self.register_core(registry)?;
        for (name, help, counter, value) in &self.process {
            let family = Family::new(registry, name, help, &[], *counter)?;
            family.set(&[], *value);
        }
        Ok(())
    }

    fn register_streams(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        type Read = fn(&StreamInfo) -> u64;
        let families: [(&str, &str, bool, Read); 5] = [
            (
                "ace_comms_stream_messages",
                "Messages stored in a stream now.",
                false,
                |i| i.messages,
            ),
            (
                "ace_comms_stream_bytes",
                "Bytes stored in a stream now.",
                false,
                |i| i.bytes,
            ),
            (
                "ace_comms_stream_first_seq",
                "First sequence stored in a stream (0 when empty).",
                false,
                |i| i.first_seq,
            ),
            (
                "ace_comms_stream_last_seq",
                "Last sequence a stream assigned (0 when none).",
                false,
                |i| i.last_seq,
            ),
            (
                "ace_comms_messages_discarded_total",
                "Messages a stream dropped by its limits (max_msgs, max_bytes, max_age) since the engine opened.",
                true,
                |i| i.counters.dropped_by_limits,
            ),
        ];
        for (name, help, counter, read) in families {
            let family = Family::new(registry, name, help, &["stream"], counter)?;
            for info in &self.streams[..self.exported_streams] {
                family.set(&[&info.config.name], read(info) as f64);
            }
        }
        let skipped = Family::new(
            registry,
            "ace_comms_metrics_skipped",
            "Streams and consumers this scrape left out to bound the number of series.",
            &["what"],
            false,
        )?;
        skipped.set(&["streams"], self.skipped_streams as f64);
        skipped.set(&["consumers"], self.skipped_consumers as f64);
        Ok(())
    }

    fn register_consumers(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        type Read = fn(&ConsumerInfo, u64) -> u64;
        let families: [(&str, &str, bool, Read); 7] = [
            (
                "ace_comms_consumer_pending",
                "Sequences a consumer has not settled: the stream's last sequence minus its ack floor.",
                false,
                |c, last| last.saturating_sub(c.ack_floor),
            ),
            (
                "ace_comms_consumer_waiting",
                "Messages not yet delivered to a consumer.",
                false,
                |c, _| c.waiting as u64,
            ),
            (
                "ace_comms_consumer_ack_pending",
                "Messages delivered to a consumer and not yet acknowledged.",
                false,
                |c, _| c.ack_pending as u64,
            ),
            (
                "ace_comms_consumer_delivered_total",
                "First deliveries of a consumer.",
                true,
                |c, _| c.counters.delivered,
            ),
            (
                "ace_comms_consumer_redelivered_total",
                "Redeliveries of a consumer.",
                true,
                |c, _| c.counters.redelivered,
            ),
            (
                "ace_comms_consumer_dead_lettered_total",
                "Messages of a consumer moved to the dead letters.",
                true,
                |c, _| c.counters.dead_lettered,
            ),
            (
                "ace_comms_consumer_expired_total",
                "Messages of a consumer whose TTL passed before delivery.",
                true,
                |c, _| c.counters.expired,
            ),
        ];
        for (name, help, counter, read) in families {
            let family = Family::new(registry, name, help, &["stream", "consumer"], counter)?;
            for (info, last) in &self.consumers {
                let labels = [info.stream.as_str(), info.config.name.as_str()];
                family.set(&labels, read(info, *last) as f64);
            }
        }
        Ok(())
    }

    fn register_core(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        let agents = Family::new(
            registry,
            "ace_comms_active_agents",
            "Agents present now (heartbeat not expired), by announced agent_type.",
            &["type"],
            false,
        )?;
        for (kind, count) in agent_types(&self.agents) {
            agents.set(&[kind], count as f64);
        }
        if let Some(sessions) = self.sessions {
            Family::new(
                registry,
                "ace_comms_active_sessions",
                "Sessions stored.",
                &[],
                false,
            )?
            .set(&[], sessions as f64);
        }
        Family::new(
            registry,
            "ace_comms_hitl_requests_total",
            "Messages held for a human's approval.",
            &[],
            true,
        )?
        .set(&[], self.requested as f64);
        let approvals = Family::new(
            registry,
            "ace_comms_hitl_approvals_total",
            "Held messages decided or expired, by outcome.",
            &["decision"],
            true,
        )?;
        for (decision, count) in &self.outcomes {
            approvals.set(&[decision], *count as f64);
        }
        let rules = Family::new(
            registry,
            "ace_comms_ehi_triggers_total",
            "Messages held for approval, by the rule behind one of their reasons.",
            &["rule"],
            true,
        )?;
        for (rule, count) in &self.rules {
            rules.set(&[rule], *count as f64);
        }
        Ok(())
    }
}

/// `agents` as label values: `none` for no type, then types by name, at most
/// [`MAX_AGENT_TYPES`] of them all, and the rest summed as `other`.
fn agent_types(agents: &BTreeMap<Option<String>, usize>) -> BTreeMap<&str, usize> {
    let mut types = BTreeMap::new();
    for (i, (kind, count)) in agents.iter().enumerate() {
        let label = match kind {
            None => "none",
            Some(_) if i >= MAX_AGENT_TYPES => "other",
            Some(kind) => kind.as_str(),
        };
        *types.entry(label).or_default() += count;
    }
    types
}

/// A family built for one scrape: a counter or a gauge with its labels.
enum Family {
    Counter(CounterVec),
    Gauge(GaugeVec),
}

impl Family {
    fn new(
        registry: &Registry,
        name: &str,
        help: &str,
        labels: &[&str],
        counter: bool,
    ) -> Result<Family, prometheus::Error> {
        let opts = Opts::new(name, help);
        let family = if counter {
            let vec = CounterVec::new(opts, labels)?;
            registry.register(Box::new(vec.clone()))?;
            Family::Counter(vec)
        } else {
            let vec = GaugeVec::new(opts, labels)?;
            registry.register(Box::new(vec.clone()))?;
            Family::Gauge(vec)
        };
        Ok(family)
    }

    /// Sets the series of `labels` to `value` (a counter starts at zero, so adding is setting).
    fn set(&self, labels: &[&str], value: f64) {
        match self {
            Family::Counter(vec) => vec.with_label_values(labels).inc_by(value),
            Family::Gauge(vec) => vec.with_label_values(labels).set(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use ace_bus::{ConsumerConfig, EmbeddedBus, EmbeddedConfig, StreamConfig};
    use ace_core::{CoreLimits, Hooks};
    use ace_envelope::SystemClock;

    /// A development core over an engine in `dir` holding streams `C`, `A`, `B`, each with
    /// consumers `y` and `x`.
    async fn core_with_streams(dir: &std::path::Path) -> Core {
        let bus = EmbeddedBus::open(EmbeddedConfig::new(dir)).unwrap();
        let registry = Arc::new(ace_contracts::Registry::embedded().unwrap());
        let hooks = Hooks::development();
        let core = Core::new(
            Arc::new(bus),
            registry,
            Arc::new(SystemClock),
            hooks,
            CoreLimits::default(),
        );
        let ctx = RequestContext::new("test");
        for name in ["C", "A", "B"] {
            let subjects = vec![format!("test.{name}.>")];
            let stream = StreamConfig {
                name: name.into(),
                subjects,
                ..StreamConfig::default()
            };
            core.add_stream(&ctx, stream).await.unwrap();
            for consumer in ["y", "x"] {
                let config = ConsumerConfig {
                    name: consumer.into(),
                    ..ConsumerConfig::default()
                };
                core.add_consumer(&ctx, name, config).await.unwrap();
            }
        }
        core
    }

    #[tokio::test]
    async fn given_more_streams_and_consumers_than_the_bounds_when_read_then_the_first_by_name_are_exported_and_the_rest_counted()
     {
        let dir = tempfile::tempdir().unwrap();
        let core = core_with_streams(dir.path()).await;
        let bounds = Bounds {
            streams: 2,
            consumers: 3,
        };
        let scrape = Scrape::read(&core, bounds).await;
        let registry = Registry::new();
        scrape.register(&registry).unwrap();
        let families = registry.gather();
        let series = |name: &str| -> Vec<(Vec<String>, f64)> {
            let Some(family) = families.iter().find(|f| f.name() == name) else {
                return Vec::new();
            };
            let value = |m: &prometheus::proto::Metric| {
                m.get_gauge().get_value() + m.get_counter().get_value()
            };
            family
                .get_metric()
                .iter()
                .map(|m| {
                    (
                        m.get_label().iter().map(|l| l.value().to_owned()).collect(),
                        value(m),
                    )
                })
                .collect()
        };
        let labels =
            |name: &str| -> Vec<Vec<String>> { series(name).into_iter().map(|s| s.0).collect() };
        assert_eq!(labels("ace_comms_stream_messages"), [["A"], ["B"]]);
        let consumers: Vec<Vec<&str>> = vec![vec!["x", "A"], vec!["x", "B"], vec!["y", "A"]];
        assert_eq!(labels("ace_comms_consumer_pending"), consumers);
        assert_eq!(
            series("ace_comms_metrics_skipped"),
            [
                (vec!["consumers".to_owned()], 3.0),
                (vec!["streams".to_owned()], 1.0)
            ],
            "B's y, and both of C's; and C"
        );
        assert_eq!(
            scrape.streams.len(),
            3,
            "every stream keeps its state series"
        );
        core.close().await.unwrap();
    }

    #[test]
    fn given_more_agent_types_than_the_bound_when_labelled_then_the_rest_are_summed_as_other() {
        let mut agents: BTreeMap<Option<String>, usize> = (0..MAX_AGENT_TYPES + 3)
            .map(|i| (Some(format!("t{i:03}")), 2))
            .collect();
        agents.insert(None, 5);
        let types = agent_types(&agents);
        assert_eq!(
            types.len(),
            MAX_AGENT_TYPES + 1,
            "the bound's worth of types (none first), then other"
        );
        assert_eq!(types["none"], 5);
        assert_eq!(types["t000"], 2);
        assert_eq!(
            types["other"],
            2 * 4,
            "the 4 past the bound (none took a place)"
        );
        assert_eq!(types.values().sum::<usize>(), 5 + 2 * (MAX_AGENT_TYPES + 3));
    }

    #[test]
    fn given_counters_when_registered_then_every_outcome_and_rule_is_a_series_even_at_zero() {
        let mut scrape = Scrape::default();
        scrape.copy_counters(&Counters::default());
        let registry = Registry::new();
        scrape.register(&registry).unwrap();
        let families = registry.gather();
        let series = |name: &str| -> Vec<String> {
            let family = families.iter().find(|f| f.name() == name).expect(name);
            family
                .get_metric()
                .iter()
                .map(|m| m.get_label().iter().map(|l| l.value().to_owned()).collect())
                .collect()
        };
        assert_eq!(
            series("ace_comms_hitl_approvals_total"),
            ["approved", "expired", "rejected"]
        );
        assert_eq!(
            series("ace_comms_ehi_triggers_total"),
            ["ehi_threshold", "policy", "requires_approval"]
        );
        assert_eq!(
            series("ace_comms_metrics_skipped"),
            ["consumers", "streams"]
        );
        assert!(
            families
                .iter()
                .all(|f| f.name() != "ace_comms_active_sessions"),
            "left out when the store did not answer"
        );
    }
}
