//! The workflow runtime of the server (`workflows.*`): the `ace-workflows` registry, router and
//! engine over [`CoreEffects`], fed by the durable consumer `ace-workflows` on `ACE_EVENTS`.
//!
//! A trigger is acknowledged only after every run it started is journaled as finished, so a
//! process killed mid-run loses no trigger: at the next start, the runs journaled as running
//! are resumed first (their completed actions skipped), then the consumer redelivers the
//! unacknowledged triggers, which find their runs finished and are acknowledged. Triggers are
//! routed one at a time, in delivery order (filter state is read and written per event), and
//! their runs go on concurrently, at most `workflows.fetch_batch` triggers at once. A second
//! task fires debounced events (`workflows.tick_ms`) and reads the directory again
//! (`workflows.reload_interval_ms`): a changed file is loaded, a broken one reported (logged, and
//! listed by `GET /api/v1/workflows`) while its last good version keeps running.

mod config;
mod effects;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use ace_bus::ConsumerConfig;
use ace_core::{AckKind, Core, RequestContext};
use ace_envelope::Clock;
use ace_workflows::{Engine, Event, Registry, ReloadReport, Router, RunStatus, State, Stats};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

pub use config::WorkflowsConfig;
pub(crate) use effects::CoreEffects;

use crate::error::ServerError;

/// The stream whose events trigger workflows.
pub const TRIGGER_STREAM: &str = "ACE_EVENTS";

/// The durable consumer of the workflow engine on [`TRIGGER_STREAM`].
pub const TRIGGER_CONSUMER: &str = "ace-workflows";

/// The running workflow layer.
#[derive(Debug)]
pub(crate) struct Workflows {
    pub(crate) engine: Arc<Engine>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) stats: Arc<Stats>,
    core: Core,
    config: WorkflowsConfig,
    /// Set once at shutdown: the tasks cancel their runs (journaled, resumed at the next start)
    /// and end, so nothing holds the engine while it closes.
    stop: watch::Sender<bool>,
}

impl Workflows {
    /// Loads the directory and the state (`{data_dir}/workflows.redb`) and creates the durable
    /// consumer; `None` when `workflows.enabled` is off.
    pub(crate) async fn open(
        config: &crate::Config,
        core: &Core,
        clock: Arc<dyn Clock>,
    ) -> Result<Option<Arc<Workflows>>, ServerError> {
        let settings = &config.workflows;
        if !settings.enabled {
            return Ok(None);
        }
        let failed = |message: String| ServerError::Workflows { message };
        let state = Arc::new(
            State::open(&config.data_dir.join("workflows.redb"))
                .map_err(|e| failed(e.to_string()))?,
        );
        let (registry, report) =
            Registry::open(&settings.dir, Arc::clone(&state)).map_err(|e| failed(e.to_string()))?;
        log_report(&report);
        let registry = Arc::new(registry);
        let stats = Arc::new(Stats::default());
        let router = Router::new(
            Arc::clone(&registry),
            Arc::clone(&state),
            Arc::clone(&stats),
        );
        let effects = CoreEffects {
            core: core.clone(),
            clock: Arc::clone(&clock),
            http: reqwest::Client::new(),
            approval_wait: Duration::from_millis(settings.approval_wait_ms),
            clearance: settings.clearance,
        };
        let engine = Engine::new(router, Arc::new(effects), state, Arc::clone(&stats), clock);
        let consumer = ConsumerConfig {
            ack_wait: Duration::from_millis(settings.ack_wait_ms),
            max_ack_pending: settings.fetch_batch.max(1) * 4,
            ..ConsumerConfig::new(TRIGGER_CONSUMER)
        };
        core.add_consumer(&RequestContext::internal(), TRIGGER_STREAM, consumer)
            .await
            .map_err(|e| failed(format!("creating the consumer {TRIGGER_CONSUMER}: {e}")))?;
        Ok(Some(Arc::new(Workflows {
            engine: Arc::new(engine),
            registry,
            stats,
            core: core.clone(),
            config: settings.clone(),
            stop: watch::Sender::new(false),
        })))
    }

    /// The workflow families of `/metrics`.
    pub(crate) fn metrics_text(&self) -> String {
        metrics::render(&self.stats.snapshot())
    }

    /// Reads the directory again now.
    pub(crate) fn reload(&self) -> ReloadReport {
        let report = self.registry.reload();
        log_report(&report);
        report
    }

    /// Starts the consumer and the timer tasks; [`Workflows::shutdown`] ends them.
    pub(crate) fn spawn(self: &Arc<Self>) -> Vec<JoinHandle<()>> {
        let consumer = tokio::spawn(Arc::clone(self).consume());
        let timer = tokio::spawn(Arc::clone(self).timers());
        vec![consumer, timer]
    }

    /// Stops taking triggers, cancels the runs in progress (they resume at the next start:
    /// their triggers are not acknowledged) and waits for `tasks` to end.
    pub(crate) async fn shutdown(&self, tasks: Vec<JoinHandle<()>>) {
        self.stop.send_replace(true);
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Waits until shutdown is asked.
    async fn stopping(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// Resumes the journaled runs, then takes triggers until aborted.
    async fn consume(self: Arc<Self>) {
        let mut runs = JoinSet::new();
        tokio::select! {
            () = self.stopping() => {}
            () = Arc::clone(&self).take_triggers(&mut runs) => {}
        }
        runs.abort_all();
        while runs.join_next().await.is_some() {}
    }

    /// Resumes the journaled runs, then takes triggers, their runs in `runs`.
    async fn take_triggers(self: Arc<Self>, runs: &mut JoinSet<()>) {
        match self.engine.resume().await {
            Ok(resumed) if !resumed.is_empty() => {
                tracing::info!(count = resumed.len(), "workflow runs resumed");
            }
            Ok(_) => {}
            Err(err) => tracing::error!(%err, "resuming workflow runs failed"),
        }
        let in_flight = Arc::new(Semaphore::new(self.config.fetch_batch));
        let internal = RequestContext::internal();
        loop {
            while runs.try_join_next().is_some() {}
            let fetched = self
                .core
                .fetch(
                    &internal,
                    TRIGGER_STREAM,
                    TRIGGER_CONSUMER,
                    self.config.fetch_batch,
                    Duration::from_secs(5),
                )
                .await;
            let deliveries = match fetched {
                Ok(deliveries) => deliveries,
                Err(err) => {
                    tracing::warn!(%err, "fetching workflow triggers failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            for delivery in deliveries {
                let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                    return;
                };
                let seq = delivery.seq;
                let Some(event) = Event::from_envelope(&delivery.envelope) else {
                    self.ack(seq, AckKind::Ack).await;
                    continue;
                };
                // Routed here, in order: filter state sees events one at a time.
                let fires = match self.engine.route(&event) {
                    Ok(fires) => fires,
                    Err(err) => {
                        tracing::error!(%err, event = %event.id, "routing a trigger failed; redelivering");
                        self.ack(seq, AckKind::Nak(Some(Duration::from_secs(1))))
                            .await;
                        continue;
                    }
                };
                let this = Arc::clone(&self);
                runs.spawn(async move {
                    let outcome = this.engine.run_all(fires).await;
                    let kind = match outcome {
                        // A run still going on another delivery of this trigger (redelivered
                        // past its ack wait): that delivery acknowledges it when it ends.
                        Ok(runs) if runs.iter().any(|r| r.status == RunStatus::Running) => {
                            drop(permit);
                            return;
                        }
                        Ok(_) => AckKind::Ack,
                        Err(err) => {
                            tracing::error!(%err, seq, "journaling a workflow run failed; redelivering");
                            AckKind::Nak(Some(Duration::from_secs(1)))
                        }
                    };
                    this.ack(seq, kind).await;
                    drop(permit);
                });
            }
        }
    }

    async fn ack(&self, seq: u64, kind: AckKind) {
        let internal = RequestContext::internal();
        if let Err(err) = self
            .core
            .acknowledge(&internal, TRIGGER_STREAM, TRIGGER_CONSUMER, &[seq], &kind)
            .await
        {
            tracing::warn!(%err, seq, "acknowledging a workflow trigger failed");
        }
    }

    /// Fires debounced events and reloads the directory until shutdown.
    async fn timers(self: Arc<Self>) {
        let mut ticks = JoinSet::new();
        tokio::select! {
            () = self.stopping() => {}
            () = Arc::clone(&self).tick(&mut ticks) => {}
        }
        ticks.abort_all();
        while ticks.join_next().await.is_some() {}
    }

    async fn tick(self: Arc<Self>, ticks: &mut JoinSet<()>) {
        let mut tick = tokio::time::interval(Duration::from_millis(self.config.tick_ms));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reload_every = Duration::from_millis(self.config.reload_interval_ms);
        let mut last_reload = tokio::time::Instant::now();
        loop {
            tick.tick().await;
            while ticks.try_join_next().is_some() {}
            // One tick at a time: a tick whose runs are still going took its due events already.
            if ticks.is_empty() {
                let this = Arc::clone(&self);
                ticks.spawn(async move {
                    if let Err(err) = this.engine.tick().await {
                        tracing::error!(%err, "firing debounced workflow triggers failed");
                    }
                });
            }
            if last_reload.elapsed() >= reload_every {
                last_reload = tokio::time::Instant::now();
                let report = self.registry.reload();
                if !report.changed.is_empty() {
                    log_report(&report);
                }
            }
        }
    }
}

fn log_report(report: &ReloadReport) {
    tracing::info!(workflows = report.workflows, changed = ?report.changed, problems = report.problems.len(), "workflows loaded");
}
