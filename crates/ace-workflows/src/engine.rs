//! [`Engine`]: runs workflows. A run is a small state machine journaled in [`State`]
//! (`r/{run id}`): `running` with the results of the actions completed so far, then
//! `completed` or `failed`. The run id is derived from the trigger's envelope id and the
//! workflow, so a redelivered trigger finds its run: a finished run is not run again, a
//! running one (the process died) resumes and skips every action whose result is journaled.
//!
//! Steps run in order, the actions of a step in parallel; an action is tried up to
//! `1 + max_retries` times with the backoff of its retry policy (a policy refusal or a template
//! error is not retried), each attempt bounded by its timeout. Every effect goes through
//! [`Effects`], lifecycle events included: `workflow.started`, one `workflow.action_executed`
//! per action, then `workflow.completed` or `workflow.failed`, and the `on_success` /
//! `on_failure` events. Runs of one file's workflows are bounded by its
//! `max_parallel_workflows`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::Clock;
use chrono::SecondsFormat;
use futures::future::join_all;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::effects::{Call, Effects, Lifecycle, WebhookRequest};
use crate::error::{RunError, StateError};
use crate::event::Event;
use crate::format::{Action, ActionKind, Emit, RetryPolicy};
use crate::router::{Fire, Router};
use crate::state::State;
use crate::stats::Stats;
use crate::template::Templates;
use crate::validate::Compiled;

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Started, not finished.
    Running,
    /// Every required action succeeded.
    Completed,
    /// Stopped on a failure.
    Failed,
}

/// The journal of one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RunRecord {
    fire: Fire,
    status: RunStatus,
    /// Results of the completed actions (and follow-up events) by name.
    done: BTreeMap<String, Value>,
    actions_failed: u32,
}

/// What a run came to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// The workflow.
    pub workflow: String,
    /// The run.
    pub run_id: String,
    /// Its end (a run found already finished is reported as it ended, `repeated: true`).
    pub status: RunStatus,
    /// The error of a failed run.
    pub error: Option<RunError>,
    /// True when the run had already finished and nothing was done again.
    pub repeated: bool,
}

/// The id of the run `fire` starts.
pub fn run_id(fire: &Fire) -> String {
    format!("{}-{}", fire.event.id, fire.workflow)
}

/// The engine.
#[derive(Debug)]
pub struct Engine {
    router: Router,
    effects: Arc<dyn Effects>,
    state: Arc<State>,
    stats: Arc<Stats>,
    clock: Arc<dyn Clock>,
    templates: Templates,
    limits: Mutex<HashMap<String, (usize, Arc<Semaphore>)>>,
    /// Runs executing in this process: a second delivery of a trigger whose run is still going
    /// (the bus redelivered it past its ack wait) does not run it twice.
    active: Mutex<HashSet<String>>,
}

impl Engine {
    /// An engine routing with `router` and acting through `effects`.
    pub fn new(
        router: Router,
        effects: Arc<dyn Effects>,
        state: Arc<State>,
        stats: Arc<Stats>,
        clock: Arc<dyn Clock>,
    ) -> Engine {
        Engine {
            router,
            effects,
            state,
            stats,
            clock,
            templates: Templates::default(),
            limits: Mutex::default(),
            active: Mutex::default(),
        }
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0)
    }

    fn timestamp(&self) -> String {
        self.clock
            .now()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Routes `event` and runs every workflow it starts, concurrently; returns when each run
    /// is finished and journaled (acknowledge the trigger then, not before).
    pub async fn handle(&self, event: &Event) -> Result<Vec<RunSummary>, StateError> {
        let fires = self.route(event)?;
        self.run_all(fires).await
    }

    /// The workflows `event` starts now (its decision journaled): call in delivery order, one
    /// event at a time, then [`Engine::run_all`] may go on concurrently.
    pub fn route(&self, event: &Event) -> Result<Vec<Fire>, StateError> {
        self.router.route(event, self.now_ms())
    }

    /// Runs `fires` concurrently; returns when each run is finished and journaled.
    pub async fn run_all(&self, fires: Vec<Fire>) -> Result<Vec<RunSummary>, StateError> {
        join_all(fires.into_iter().map(|fire| self.run(fire)))
            .await
            .into_iter()
            .collect()
    }

    /// Runs the debounced events whose quiet period ended.
    pub async fn tick(&self) -> Result<Vec<RunSummary>, StateError> {
        let due = self.router.due(self.now_ms())?;
        let mut runs = Vec::new();
        for (key, fire) in due {
            self.begin(&fire)?;
            self.router.consumed(&key)?;
            runs.push(fire);
        }
        join_all(runs.into_iter().map(|fire| self.run(fire)))
            .await
            .into_iter()
            .collect()
    }

    /// Resumes every run journaled as running (after a crash), skipping its completed actions.
    pub async fn resume(&self) -> Result<Vec<RunSummary>, StateError> {
        let running: Vec<Fire> = self
            .state
            .scan::<RunRecord>("r/")?
            .into_iter()
            .filter(|(_, r)| r.status == RunStatus::Running)
            .map(|(_, r)| r.fire)
            .collect();
        join_all(running.into_iter().map(|fire| self.run(fire)))
            .await
            .into_iter()
            .collect()
    }

    /// The journal record of `fire`'s run, created (and `workflow.started` announced) if new.
    fn begin(&self, fire: &Fire) -> Result<(RunRecord, bool), StateError> {
        let key = format!("r/{}", run_id(fire));
        if let Some(record) = self.state.get::<RunRecord>(&key)? {
            return Ok((record, false));
        }
        let record = RunRecord {
            fire: fire.clone(),
            status: RunStatus::Running,
            done: BTreeMap::new(),
            actions_failed: 0,
        };
        self.state.put(&key, &record)?;
        Ok((record, true))
    }

    fn semaphore(&self, compiled: &Compiled) -> Arc<Semaphore> {
        let size = compiled.configuration.max_parallel_workflows.max(1);
        let mut limits = self.limits.lock();
        let entry = limits
            .entry(compiled.file.clone())
            .or_insert_with(|| (size, Arc::new(Semaphore::new(size))));
        if entry.0 != size {
            *entry = (size, Arc::new(Semaphore::new(size)));
        }
        Arc::clone(&entry.1)
    }

    /// Runs (or resumes, or reports as already finished) the run `fire` starts.
    pub async fn run(&self, fire: Fire) -> Result<RunSummary, StateError> {
        let id = run_id(&fire);
        let Some(compiled) = self
            .router
            .registry()
            .snapshot()
            .get(&fire.workflow)
            .cloned()
        else {
            tracing::warn!(workflow = %fire.workflow, run = %id, "workflow no longer loaded; run dropped");
            return Ok(RunSummary {
                workflow: fire.workflow,
                run_id: id,
                status: RunStatus::Failed,
                error: Some(RunError::new(
                    "workflow_unloaded",
                    "the workflow is no longer loaded",
                )),
                repeated: false,
            });
        };
        if !self.active.lock().insert(id.clone()) {
            return Ok(RunSummary {
                workflow: fire.workflow,
                run_id: id,
                status: RunStatus::Running,
                error: None,
                repeated: true,
            });
        }
        let key = id.clone();
        let _active = Active(&self.active, &key);
        let (record, _) = self.begin(&fire)?;
        if record.status != RunStatus::Running {
            return Ok(RunSummary {
                workflow: fire.workflow,
                run_id: id,
                status: record.status,
                error: None,
                repeated: true,
            });
        }
        let semaphore = self.semaphore(&compiled);
        let _permit = semaphore.acquire_owned().await.ok();
        let run = Run {
            engine: self,
            compiled: &compiled,
            id: &id,
            record: Mutex::new(record),
            started: Instant::now(),
        };
        run.execute().await
    }
}

/// Removes a run from the active set when it ends, however it ends.
struct Active<'a>(&'a Mutex<HashSet<String>>, &'a str);

impl Drop for Active<'_> {
    fn drop(&mut self) {
        self.0.lock().remove(self.1);
    }
}

/// One run in progress.
struct Run<'e> {
    engine: &'e Engine,
    compiled: &'e Compiled,
    id: &'e str,
    record: Mutex<RunRecord>,
    started: Instant,
}

impl Run<'_> {
    fn name(&self) -> &str {
        &self.compiled.workflow.name
    }

    fn trigger(&self) -> Event {
        self.record.lock().fire.event.clone()
    }

    fn call<'a>(&'a self, action: &'a str, attempt: u32, trigger: &'a Event) -> Call<'a> {
        Call {
            workflow: self.name(),
            run_id: self.id,
            action,
            attempt,
            trigger,
            ehi_score: None,
        }
    }

    fn save(&self) -> Result<(), StateError> {
        let record = self.record.lock().clone();
        self.engine.state.put(&format!("r/{}", self.id), &record)
    }

    /// The template context: `payload`, `event`, `steps.<action>.result`, `events.<name>`.
    fn context(&self) -> Value {
        let record = self.record.lock();
        let mut doc = record.fire.event.doc();
        let steps: serde_json::Map<String, Value> = record
            .done
            .iter()
            .map(|(name, result)| (name.clone(), json!({ "result": result })))
            .collect();
        doc["steps"] = Value::Object(steps);
        doc["events"] = record.fire.events.clone().unwrap_or(json!({}));
        doc
    }

    async fn announce(&self, lifecycle: Lifecycle, payload: Value) {
        let trigger = self.trigger();
        let call = self.call(lifecycle.name(), 1, &trigger);
        if let Err(err) = self
            .engine
            .effects
            .announce(&call, lifecycle, payload)
            .await
        {
            tracing::warn!(workflow = %self.name(), run = %self.id, event = lifecycle.name(), %err, "lifecycle event not published");
        }
    }

    async fn execute(&self) -> Result<RunSummary, StateError> {
        let fresh = self.record.lock().done.is_empty();
        if fresh {
            self.engine.stats.triggered(self.name());
            let trigger = self.trigger();
            self.announce(Lifecycle::Started, json!({
                "workflow": self.name(),
                "run_id": self.id,
                "trigger": { "id": trigger.id, "name": trigger.name, "subject": trigger.subject },
                "started_at": self.engine.timestamp(),
            }))
            .await;
        }
        let mut failure = None;
        for step in self.compiled.workflow.groups() {
            let pending: Vec<&Action> = {
                let record = self.record.lock();
                step.actions
                    .iter()
                    .filter(|a| !record.done.contains_key(&a.name))
                    .collect()
            };
            let outcomes = join_all(pending.iter().map(|a| self.action(a))).await;
            for (action, outcome) in pending.into_iter().zip(outcomes) {
                match outcome {
                    Ok(result) => {
                        self.record.lock().done.insert(action.name.clone(), result);
                    }
                    Err(err) if action.continue_on_error => {
                        let mut record = self.record.lock();
                        record.actions_failed += 1;
                        record
                            .done
                            .insert(action.name.clone(), json!({ "error": err }));
                    }
                    Err(err) => {
                        failure.get_or_insert((action.name.clone(), err));
                    }
                }
                self.save()?;
            }
            if failure.is_some() {
                break;
            }
        }
        match failure {
            None => self.finish_ok().await,
            Some((action, err)) => self.finish_failed(Some(action), err).await,
        }
    }

    async fn finish_ok(&self) -> Result<RunSummary, StateError> {
        if let Err(err) = self
            .follow_up("on_success", &self.compiled.workflow.on_success)
            .await
        {
            return self.finish_failed(None, err).await;
        }
        let (total, failed) = {
            let record = self.record.lock();
            let total = self
                .compiled
                .workflow
                .groups()
                .iter()
                .map(|s| s.actions.len())
                .sum::<usize>();
            (total, record.actions_failed)
        };
        let duration_ms = self.started.elapsed().as_millis() as u64;
        // Counted before it is announced: whoever sees the event sees the count.
        self.engine.stats.finished(self.name(), true, duration_ms);
        self.announce(
            Lifecycle::Completed,
            json!({
                "workflow": self.name(),
                "run_id": self.id,
                "duration_ms": duration_ms,
                "actions_total": total,
                "actions_failed": failed,
                "completed_at": self.engine.timestamp(),
            }),
        )
        .await;
        self.close(RunStatus::Completed, None)
    }

    async fn finish_failed(
        &self,
        action: Option<String>,
        err: RunError,
    ) -> Result<RunSummary, StateError> {
        if let Err(follow) = self
            .follow_up("on_failure", &self.compiled.workflow.on_failure)
            .await
        {
            tracing::warn!(workflow = %self.name(), run = %self.id, %follow, "on_failure event not published");
        }
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let mut payload = json!({
            "workflow": self.name(),
            "run_id": self.id,
            "error": { "code": sanitize_code(&err.code), "message": truncate(&err.message) },
            "duration_ms": duration_ms,
            "failed_at": self.engine.timestamp(),
        });
        if let Some(action) = action {
            payload["failed_action"] = json!(action);
        }
        self.engine.stats.finished(self.name(), false, duration_ms);
        self.announce(Lifecycle::Failed, payload).await;
        self.close(RunStatus::Failed, Some(err))
    }

    fn close(&self, status: RunStatus, error: Option<RunError>) -> Result<RunSummary, StateError> {
        self.record.lock().status = status;
        self.save()?;
        Ok(RunSummary {
            workflow: self.name().to_owned(),
            run_id: self.id.to_owned(),
            status,
            error,
            repeated: false,
        })
    }

    /// The `on_success` / `on_failure` events, each once (journaled as `list.i`).
    async fn follow_up(&self, list: &str, emits: &[Emit]) -> Result<(), RunError> {
        for (i, emit) in emits.iter().enumerate() {
            let name = format!("{list}.{i}");
            if self.record.lock().done.contains_key(&name) {
                continue;
            }
            let context = self.context();
            let payload = match &emit.params {
                Some(params) => self.engine.templates.render(params, &context)?,
                None => Value::Null,
            };
            let subject = self
                .engine
                .templates
                .render_string(&emit.target.subject, &context)?;
            let trigger = self.trigger();
            let call = self.call(&name, 1, &trigger);
            self.engine
                .effects
                .emit(
                    &call,
                    &emit.target.event,
                    &subject,
                    emit.target.schema.as_deref(),
                    payload,
                )
                .await?;
            self.record.lock().done.insert(name, Value::Null);
            self.save()
                .map_err(|e| RunError::new("state_error", e.to_string()))?;
        }
        Ok(())
    }

    /// One action with its retries; announces `workflow.action_executed` once it is decided.
    async fn action(&self, action: &Action) -> Result<Value, RunError> {
        let configuration = &self.compiled.configuration;
        let timeout = Duration::from_millis(
            action
                .timeout_ms
                .unwrap_or(configuration.default_timeout_ms),
        );
        let policy: &RetryPolicy = action
            .retry_policy
            .as_ref()
            .unwrap_or(&configuration.retry_policy);
        let started = Instant::now();
        let mut attempt = 1;
        let outcome = loop {
            let outcome = self.attempt(action, attempt, timeout).await;
            match &outcome {
                Err(err) if err.code == "TIMEOUT" => self.engine.stats.timed_out(),
                _ => {}
            }
            match outcome {
                Err(err) if err.retryable() && attempt <= policy.max_retries => {
                    tracing::debug!(workflow = %self.name(), action = %action.name, attempt, %err, "action failed; retrying");
                    tokio::time::sleep(Duration::from_millis(policy.backoff(attempt))).await;
                    self.engine.stats.retried();
                    attempt += 1;
                }
                other => break other,
            }
        };
        let (kind, target) = action.kind_and_target();
        let status = match &outcome {
            Ok(_) => "success",
            Err(err) if err.code == "TIMEOUT" => "timeout",
            Err(_) => "failure",
        };
        let mut payload = json!({
            "workflow": self.name(),
            "run_id": self.id,
            "action": action.name,
            "kind": kind,
            "target": truncate_to(&target, 2048),
            "status": status,
            "latency_ms": started.elapsed().as_millis() as u64,
            "attempt": attempt,
        });
        if let Err(err) = &outcome {
            payload["error"] = json!(truncate(&err.to_string()));
        }
        self.announce(Lifecycle::ActionExecuted, payload).await;
        outcome
    }

    async fn attempt(
        &self,
        action: &Action,
        attempt: u32,
        timeout: Duration,
    ) -> Result<Value, RunError> {
        let context = self.context();
        let templates = &self.engine.templates;
        let params = match &action.params {
            Some(p) => templates.render(p, &context)?,
            None => json!({}),
        };
        let trigger = self.trigger();
        let call = Call {
            ehi_score: action.ehi_score,
            ..self.call(&action.name, attempt, &trigger)
        };
        let effects = &self.engine.effects;
        match action.kind() {
            Some(ActionKind::Kernel(kernel, handler)) => {
                effects
                    .kernel(&call, kernel, handler, params, timeout)
                    .await
            }
            Some(ActionKind::Webhook(hook)) => {
                let headers = hook
                    .headers
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), templates.render_string(v, &context)?)))
                    .collect::<Result<_, RunError>>()?;
                let request = WebhookRequest {
                    method: hook.method.clone(),
                    url: templates.render_string(&hook.url, &context)?,
                    headers,
                    body: params,
                };
                effects.webhook(&call, request, timeout).await
            }
            Some(ActionKind::Emit(target)) => {
                let subject = templates.render_string(&target.subject, &context)?;
                effects
                    .emit(
                        &call,
                        &target.event,
                        &subject,
                        target.schema.as_deref(),
                        params,
                    )
                    .await
                    .map(|()| json!({ "emitted": target.event, "subject": subject }))
            }
            None => Err(RunError::new(
                "invalid_action",
                "the action names no kernel, webhook or emit",
            )),
        }
    }
}

/// A code the `workflow.failed` contract accepts (`^[A-Za-z][A-Za-z0-9_]{0,63}$`).
fn sanitize_code(code: &str) -> String {
    let cleaned: String = code
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if cleaned.starts_with(|c: char| c.is_ascii_alphabetic()) {
        cleaned
    } else {
        format!("E{}", &cleaned[..cleaned.len().min(63)])
    }
}

fn truncate(text: &str) -> String {
    let text = if text.is_empty() {
        "unknown error"
    } else {
        text
    };
    truncate_to(text, 4000)
}

fn truncate_to(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
