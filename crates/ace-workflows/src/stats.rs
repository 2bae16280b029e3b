//! [`Stats`]: the counters of the workflow layer — events received, workflows triggered,
//! completed and failed, events filtered (by reason) and rate limited, actions retried and timed
//! out — and per workflow the same plus run latency percentiles (an HDR histogram of
//! milliseconds). Counted where they happen; [`Stats::snapshot`] is what the API, the CLI and
//! `/metrics` show.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

/// The live counters.
#[derive(Debug, Default)]
pub struct Stats {
    events_received: AtomicU64,
    workflows_triggered: AtomicU64,
    workflows_completed: AtomicU64,
    workflows_failed: AtomicU64,
    events_filtered: AtomicU64,
    events_rate_limited: AtomicU64,
    events_debounced: AtomicU64,
    actions_retried: AtomicU64,
    actions_timed_out: AtomicU64,
    by_reason: Mutex<BTreeMap<String, u64>>,
    per_workflow: Mutex<BTreeMap<String, PerWorkflow>>,
}

#[derive(Debug)]
struct PerWorkflow {
    counts: WorkflowCounts,
    latency: Histogram<u64>,
}

impl Default for PerWorkflow {
    fn default() -> Self {
        PerWorkflow {
            counts: WorkflowCounts::default(),
            // one hour in ms at 3 significant digits; larger values are clamped
            latency: Histogram::new_with_bounds(1, 3_600_000, 3).expect("valid histogram bounds"),
        }
    }
}

/// The counts of one workflow.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkflowCounts {
    /// Runs started.
    pub triggered: u64,
    /// Runs completed.
    pub completed: u64,
    /// Runs failed.
    pub failed: u64,
    /// Events its filters dropped.
    pub filtered: u64,
    /// Events its token buckets dropped.
    pub rate_limited: u64,
    /// Run latency, 50th percentile, ms.
    pub latency_p50_ms: u64,
    /// 90th percentile.
    pub latency_p90_ms: u64,
    /// 99th percentile.
    pub latency_p99_ms: u64,
}

/// A copy of every counter.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Events the router looked at.
    pub events_received: u64,
    /// Runs started.
    pub workflows_triggered: u64,
    /// Runs completed.
    pub workflows_completed: u64,
    /// Runs failed.
    pub workflows_failed: u64,
    /// (event, workflow) pairs a filter dropped.
    pub events_filtered: u64,
    /// (event, workflow) pairs a token bucket dropped.
    pub events_rate_limited: u64,
    /// Events held by a debounce window.
    pub events_debounced: u64,
    /// Action attempts after the first.
    pub actions_retried: u64,
    /// Action attempts that timed out.
    pub actions_timed_out: u64,
    /// `events_filtered` by reason (`compare`, `delta`, `dedup`, `disabled`, `subject`, …).
    pub filtered_by_reason: BTreeMap<String, u64>,
    /// Per workflow.
    pub workflows: BTreeMap<String, WorkflowCounts>,
}

impl Stats {
    /// One more event looked at.
    pub fn received(&self) {
        self.events_received.fetch_add(1, Ordering::Relaxed);
    }

    /// An event dropped for `workflow` because of `reason`.
    pub fn filtered(&self, workflow: &str, reason: &str) {
        self.events_filtered.fetch_add(1, Ordering::Relaxed);
        *self.by_reason.lock().entry(reason.to_owned()).or_default() += 1;
        self.with(workflow, |w| w.counts.filtered += 1);
    }

    /// An event dropped by a token bucket of `workflow`.
    pub fn rate_limited(&self, workflow: &str) {
        self.events_rate_limited.fetch_add(1, Ordering::Relaxed);
        self.with(workflow, |w| w.counts.rate_limited += 1);
    }

    /// An event held by a debounce window.
    pub fn debounced(&self) {
        self.events_debounced.fetch_add(1, Ordering::Relaxed);
    }

    /// A run of `workflow` started.
    pub fn triggered(&self, workflow: &str) {
        self.workflows_triggered.fetch_add(1, Ordering::Relaxed);
        self.with(workflow, |w| w.counts.triggered += 1);
    }

    /// A run of `workflow` ended after `latency_ms`.
    pub fn finished(&self, workflow: &str, ok: bool, latency_ms: u64) {
        let counter = if ok {
            &self.workflows_completed
        } else {
            &self.workflows_failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        self.with(workflow, |w| {
            if ok {
                w.counts.completed += 1;
            } else {
                w.counts.failed += 1;
            }
            w.latency.saturating_record(latency_ms.max(1));
        });
    }

    /// An action attempt after the first.
    pub fn retried(&self) {
        self.actions_retried.fetch_add(1, Ordering::Relaxed);
    }

    /// An action attempt that timed out.
    pub fn timed_out(&self) {
        self.actions_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    fn with(&self, workflow: &str, f: impl FnOnce(&mut PerWorkflow)) {
        let mut map = self.per_workflow.lock();
        match map.get_mut(workflow) {
            Some(w) => f(w),
            None => f(map.entry(workflow.to_owned()).or_default()),
        }
    }

    /// Every counter now.
    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsSnapshot {
            events_received: load(&self.events_received),
            workflows_triggered: load(&self.workflows_triggered),
            workflows_completed: load(&self.workflows_completed),
            workflows_failed: load(&self.workflows_failed),
            events_filtered: load(&self.events_filtered),
            events_rate_limited: load(&self.events_rate_limited),
            events_debounced: load(&self.events_debounced),
            actions_retried: load(&self.actions_retried),
            actions_timed_out: load(&self.actions_timed_out),
            filtered_by_reason: self.by_reason.lock().clone(),
            workflows: self
                .per_workflow
                .lock()
                .iter()
                .map(|(name, w)| {
                    let mut counts = w.counts.clone();
                    if !w.latency.is_empty() {
                        counts.latency_p50_ms = w.latency.value_at_quantile(0.5);
                        counts.latency_p90_ms = w.latency.value_at_quantile(0.9);
                        counts.latency_p99_ms = w.latency.value_at_quantile(0.99);
                    }
                    (name.clone(), counts)
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_runs_when_counted_then_the_snapshot_has_totals_reasons_and_percentiles() {
        let stats = Stats::default();
        stats.received();
        stats.filtered("w", "compare");
        stats.rate_limited("w");
        stats.triggered("w");
        for ms in 1..=100 {
            stats.finished("w", ms != 100, ms);
        }
        let snap = stats.snapshot();
        assert_eq!(snap.events_received, 1);
        assert_eq!(snap.filtered_by_reason["compare"], 1);
        assert_eq!(snap.workflows_completed, 99);
        assert_eq!(snap.workflows_failed, 1);
        let w = &snap.workflows["w"];
        assert_eq!((w.filtered, w.rate_limited, w.triggered), (1, 1, 1));
        assert_eq!(w.latency_p50_ms, 50);
        assert_eq!(w.latency_p99_ms, 99);
    }
}
