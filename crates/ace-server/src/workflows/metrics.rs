//! The workflow families of `/metrics`, copied at each scrape from the engine's [`Stats`]:
//! `ace_comms_workflow_events_received_total`, `ace_comms_workflow_events_filtered_total{reason}`,
//! `ace_comms_workflow_events_rate_limited_total`, `ace_comms_workflow_runs_total{workflow,
//! outcome}` (`triggered`, `completed`, `failed`), `ace_comms_workflow_actions_retried_total`,
//! `ace_comms_workflow_actions_timed_out_total` and the run latency percentiles
//! `ace_comms_workflow_run_latency_ms{workflow, quantile}` (0.5, 0.9, 0.99). The per-workflow
//! series name the first [`MAX_WORKFLOWS`] workflows by name.

use ace_workflows::StatsSnapshot;
use prometheus::{CounterVec, GaugeVec, Opts, Registry, TextEncoder};

/// Most workflows the per-workflow families name.
pub(crate) const MAX_WORKFLOWS: usize = 256;

/// The families of `stats` in the Prometheus text format.
pub(crate) fn render(stats: &StatsSnapshot) -> String {
    match families(stats) {
        Ok(registry) => TextEncoder::new()
            .encode_to_string(&registry.gather())
            .unwrap_or_default(),
        Err(err) => {
            tracing::error!(error = %err, "/metrics could not build the workflow families");
            String::new()
        }
    }
}

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<CounterVec, prometheus::Error> {
    let vec = CounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(vec.clone()))?;
    Ok(vec)
}

fn families(stats: &StatsSnapshot) -> Result<Registry, prometheus::Error> {
    let registry = Registry::new();
    let total = |name: &str, help: &str, value: u64| -> Result<(), prometheus::Error> {
        counter(&registry, name, help, &[])?
            .with_label_values::<&str>(&[])
            .inc_by(value as f64);
        Ok(())
    };
    total(
        "ace_comms_workflow_events_received_total",
        "Events the workflow router looked at",
        stats.events_received,
    )?;
    total(
        "ace_comms_workflow_events_rate_limited_total",
        "(event, workflow) pairs a token bucket dropped",
        stats.events_rate_limited,
    )?;
    total(
        "ace_comms_workflow_actions_retried_total",
        "Workflow action attempts after the first",
        stats.actions_retried,
    )?;
    total(
        "ace_comms_workflow_actions_timed_out_total",
        "Workflow action attempts that timed out",
        stats.actions_timed_out,
    )?;
    let filtered = counter(
        &registry,
        "ace_comms_workflow_events_filtered_total",
        "(event, workflow) pairs a filter dropped, by reason",
        &["reason"],
    )?;
    for (reason, count) in &stats.filtered_by_reason {
        filtered
            .with_label_values(&[reason.as_str()])
            .inc_by(*count as f64);
    }
    let runs = counter(
        &registry,
        "ace_comms_workflow_runs_total",
        "Workflow runs by outcome",
        &["workflow", "outcome"],
    )?;
    let latency = GaugeVec::new(
        Opts::new(
            "ace_comms_workflow_run_latency_ms",
            "Workflow run latency percentiles, milliseconds",
        ),
        &["workflow", "quantile"],
    )?;
    registry.register(Box::new(latency.clone()))?;
    for (name, counts) in stats.workflows.iter().take(MAX_WORKFLOWS) {
        let name = name.as_str();
        for (outcome, value) in [
            ("triggered", counts.triggered),
            ("completed", counts.completed),
            ("failed", counts.failed),
        ] {
            runs.with_label_values(&[name, outcome])
                .inc_by(value as f64);
        }
        for (quantile, value) in [
            ("0.5", counts.latency_p50_ms),
            ("0.9", counts.latency_p90_ms),
            ("0.99", counts.latency_p99_ms),
        ] {
            latency
                .with_label_values(&[name, quantile])
                .set(value as f64);
        }
    }
    Ok(registry)
}
