use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::{Clock, ManualClock};
use ace_workflows::{
    Call, Effects, Engine, Event, Lifecycle, Registry, Router, RunError, RunStatus, State, Stats,
    WebhookRequest,
};
use chrono::{TimeZone, Utc};
use parking_lot::Mutex;
use serde_json::{Value, json};

/// Records every effect; kernel answers are taken from a script (default: `{"ok": true, "ticket": 0}`).
#[derive(Debug, Default)]
struct Recorder {
    calls: Mutex<Vec<(String, String, Value)>>,
    script: Mutex<VecDeque<Result<Value, RunError>>>,
    /// A handler that never answers.
    hang: Mutex<Option<String>>,
}

impl Recorder {
    fn of(&self, kind: &str) -> Vec<(String, Value)> {
        self.calls
            .lock()
            .iter()
            .filter(|(k, _, _)| k == kind)
            .map(|(_, t, v)| (t.clone(), v.clone()))
            .collect()
    }

    fn lifecycle(&self) -> Vec<String> {
        self.of("announce").into_iter().map(|(t, _)| t).collect()
    }
}

#[async_trait::async_trait]
impl Effects for Recorder {
    async fn kernel(
        &self,
        _call: &Call<'_>,
        kernel: &str,
        handler: &str,
        params: Value,
        _timeout: Duration,
    ) -> Result<Value, RunError> {
        let target = format!("{kernel}.{handler}");
        self.calls
            .lock()
            .push(("kernel".into(), target.clone(), params));
        if self.hang.lock().as_deref() == Some(target.as_str()) {
            std::future::pending::<()>().await;
        }
        self.script
            .lock()
            .pop_front()
            .unwrap_or(Ok(json!({"ok": true, "ticket": 0})))
    }

    async fn webhook(
        &self,
        _call: &Call<'_>,
        request: WebhookRequest,
        _timeout: Duration,
    ) -> Result<Value, RunError> {
        self.calls
            .lock()
            .push(("webhook".into(), request.url, request.body));
        Ok(Value::Null)
    }

    async fn emit(
        &self,
        _call: &Call<'_>,
        name: &str,
        subject: &str,
        _schema: Option<&str>,
        payload: Value,
    ) -> Result<(), RunError> {
        self.calls
            .lock()
            .push(("emit".into(), format!("{name}@{subject}"), payload));
        Ok(())
    }

    async fn announce(
        &self,
        _call: &Call<'_>,
        lifecycle: Lifecycle,
        payload: Value,
    ) -> Result<(), RunError> {
        static CONTRACTS: std::sync::OnceLock<ace_contracts::Registry> = std::sync::OnceLock::new();
        CONTRACTS
            .get_or_init(|| ace_contracts::Registry::embedded().unwrap())
            .validate(&lifecycle.schema(), &payload)
            .unwrap_or_else(|e| panic!("{} does not conform: {e} in {payload}", lifecycle.name()));
        self.calls
            .lock()
            .push(("announce".into(), lifecycle.name().into(), payload));
        Ok(())
    }
}

const FILE: &str = r#"
configuration:
  default_timeout_ms: 1000
  retry_policy: { max_retries: 2, backoff_ms: [10, 20] }
workflows:
  - name: heal
    trigger:
      event: kpi.threshold_breach
      filters:
        - { field: payload.severity, op: eq, value: CRITICAL }
    steps:
      - actions:
          - name: escalate
            kernel: avn_core.escalate_healing
            params: { component_id: "{{ payload.component_id }}", value: "{{ payload.value }}" }
      - actions:
          - name: record
            kernel: memory.record
            params: { ticket: "{{ steps.escalate.result.ticket }}" }
    on_success:
      - event: healing.escalation_requested
        subject: "ace.comms.internal.kernel.avn_core.evt.healing_escalation_requested.v1"
        params: { component_id: "{{ payload.component_id }}" }
    on_failure:
      - event: system.critical_error
        subject: "ace.comms.internal.kernel.workflows.evt.system_critical_error.v1"
        params: { run: "{{ event.id }}" }
  - name: debounced
    trigger:
      event: kpi.metric_updated
      filters:
        - debounce: { quiet_ms: 100, key: payload.component_id }
    actions: [ { name: a, kernel: learning.adapt, params: { v: "{{ payload.value }}" } } ]
  - name: multi
    trigger:
      conditions:
        events:
          breach: { event: kpi.threshold_breach }
          crash: { event: system.critical_error }
          degraded: { event: trust.degradation_detected }
        expression: "breach && (degraded || crash)"
        window_ms: 1000
        key: payload.component_id
    actions:
      - name: a
        kernel: governance.review
        params: { value: "{{ events.breach.payload.value }}" }
"#;

struct Rig {
    engine: Engine,
    effects: Arc<Recorder>,
    clock: Arc<ManualClock>,
    stats: Arc<Stats>,
}

fn rig_on(state: Arc<State>) -> Rig {
    let (registry, report) = Registry::from_texts(&[("t.yaml", FILE)], Arc::clone(&state)).unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let stats = Arc::new(Stats::default());
    let router = Router::new(Arc::new(registry), Arc::clone(&state), Arc::clone(&stats));
    let effects = Arc::new(Recorder::default());
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ));
    let engine = Engine::new(
        router,
        Arc::clone(&effects) as Arc<dyn Effects>,
        state,
        Arc::clone(&stats),
        Arc::clone(&clock) as Arc<dyn Clock>,
    );
    Rig {
        engine,
        effects,
        clock,
        stats,
    }
}

fn rig() -> Rig {
    rig_on(Arc::new(State::memory()))
}

fn event(id: &str, name: &str, payload: Value) -> Event {
    Event {
        id: id.into(),
        name: name.into(),
        subject: "ace.comms.internal.kernel.kpi_monitor.evt.x.v1".into(),
        domain: None,
        source: None,
        hops: 1,
        correlation_id: None,
        payload,
    }
}

fn breach(id: &str, severity: &str) -> Event {
    event(
        id,
        "kpi.threshold_breach",
        json!({"component_id": "ingress", "value": 0.4, "severity": severity}),
    )
}

#[tokio::test]
async fn given_a_matching_trigger_when_handled_then_steps_run_in_order_with_rendered_params() {
    let rig = rig();
    rig.effects
        .script
        .lock()
        .push_back(Ok(json!({"ticket": 42})));
    let runs = rig.engine.handle(&breach("e1", "CRITICAL")).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, RunStatus::Completed);
    let kernels = rig.effects.of("kernel");
    assert_eq!(
        kernels[0],
        (
            "avn_core.escalate_healing".into(),
            json!({"component_id": "ingress", "value": 0.4})
        )
    );
    assert_eq!(kernels[1], ("memory.record".into(), json!({"ticket": 42})));
    assert_eq!(
        rig.effects.of("emit")[0].1,
        json!({"component_id": "ingress"})
    );
    assert_eq!(
        rig.effects.lifecycle(),
        [
            "workflow.started",
            "workflow.action_executed",
            "workflow.action_executed",
            "workflow.completed"
        ]
    );
}

#[tokio::test]
async fn given_a_non_matching_field_when_handled_then_nothing_runs_and_it_is_counted() {
    let rig = rig();
    assert!(
        rig.engine
            .handle(&breach("e1", "WARNING"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(rig.effects.calls.lock().is_empty());
    let stats = rig.stats.snapshot();
    assert_eq!(stats.filtered_by_reason["compare"], 1);
    assert_eq!(stats.workflows["heal"].filtered, 1);
}

#[tokio::test]
async fn given_a_timeout_when_retried_then_the_run_completes_and_both_are_counted() {
    let rig = rig();
    rig.effects
        .script
        .lock()
        .push_back(Err(RunError::new("TIMEOUT", "no reply in 1000 ms")));
    let runs = rig.engine.handle(&breach("e1", "CRITICAL")).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(
        rig.effects.of("kernel").len(),
        3,
        "escalate twice, record once"
    );
    let executed = rig.effects.of("announce");
    assert_eq!(executed[1].1["attempt"], 2);
    let stats = rig.stats.snapshot();
    assert_eq!((stats.actions_timed_out, stats.actions_retried), (1, 1));
}

#[tokio::test]
async fn given_a_handler_that_keeps_failing_when_run_then_it_fails_after_the_retries() {
    let rig = rig();
    for _ in 0..3 {
        rig.effects
            .script
            .lock()
            .push_back(Err(RunError::new("INTERNAL", "boom")));
    }
    let runs = rig.engine.handle(&breach("e1", "CRITICAL")).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(
        rig.effects.of("kernel").len(),
        3,
        "first attempt and two retries"
    );
    assert_eq!(
        rig.effects.of("emit")[0].0,
        "system.critical_error@ace.comms.internal.kernel.workflows.evt.system_critical_error.v1"
    );
    let failed = rig.effects.of("announce").pop().unwrap();
    assert_eq!(failed.0, "workflow.failed");
    assert_eq!(failed.1["failed_action"], "escalate");
    assert_eq!(rig.stats.snapshot().workflows_failed, 1);
}

#[tokio::test]
async fn given_a_policy_refusal_when_run_then_it_is_not_retried() {
    let rig = rig();
    rig.effects
        .script
        .lock()
        .push_back(Err(RunError::new("FORBIDDEN", "no")));
    let runs = rig.engine.handle(&breach("e1", "CRITICAL")).await.unwrap();
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(rig.effects.of("kernel").len(), 1);
}

#[tokio::test]
async fn given_a_redelivered_trigger_when_handled_again_then_nothing_is_repeated() {
    let rig = rig();
    rig.engine.handle(&breach("e1", "CRITICAL")).await.unwrap();
    let again = rig.engine.handle(&breach("e1", "CRITICAL")).await.unwrap();
    assert!(again[0].repeated);
    assert_eq!(rig.effects.of("kernel").len(), 2);
}

#[tokio::test]
async fn given_a_run_cut_mid_way_when_resumed_then_completed_actions_are_not_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.redb");
    {
        let rig = rig_on(Arc::new(State::open(&path).unwrap()));
        rig.effects
            .script
            .lock()
            .push_back(Ok(json!({"ticket": 7})));
        *rig.effects.hang.lock() = Some("memory.record".into());
        // the process "dies" while the second step waits for its handler
        let trigger = breach("e1", "CRITICAL");
        let cut = tokio::time::timeout(Duration::from_millis(100), rig.engine.handle(&trigger));
        assert!(cut.await.is_err());
        assert_eq!(rig.effects.of("kernel").len(), 2);
    }
    let rig = rig_on(Arc::new(State::open(&path).unwrap()));
    let resumed = rig.engine.resume().await.unwrap();
    assert_eq!(resumed.len(), 1);
    assert_eq!(resumed[0].status, RunStatus::Completed);
    let kernels = rig.effects.of("kernel");
    assert_eq!(
        kernels,
        [("memory.record".to_owned(), json!({"ticket": 7}))],
        "escalate is not repeated"
    );
    // the trigger redelivered afterwards finds the finished run
    let again = rig.engine.handle(&breach("e1", "CRITICAL")).await.unwrap();
    assert!(again[0].repeated);
    assert_eq!(rig.effects.of("kernel").len(), 1);
}

#[tokio::test]
async fn given_a_burst_when_debounced_then_one_run_follows_the_quiet_period() {
    let rig = rig();
    for (i, v) in [1, 2, 3].into_iter().enumerate() {
        let e = event(
            &format!("m{i}"),
            "kpi.metric_updated",
            json!({"component_id": "c", "value": v}),
        );
        assert!(rig.engine.handle(&e).await.unwrap().is_empty());
        rig.clock.advance(Duration::from_millis(50));
    }
    assert!(
        rig.engine.tick().await.unwrap().is_empty(),
        "still within the quiet period"
    );
    rig.clock.advance(Duration::from_millis(60));
    let runs = rig.engine.tick().await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(rig.effects.of("kernel")[0].1, json!({"v": 3}));
    assert!(rig.engine.tick().await.unwrap().is_empty());
    assert_eq!(rig.stats.snapshot().events_debounced, 3);
}

#[tokio::test]
async fn given_several_named_events_when_the_condition_holds_then_the_workflow_runs_once() {
    let rig = rig();
    let crash = |id: &str, c: &str| event(id, "system.critical_error", json!({"component_id": c}));
    rig.effects
        .script
        .lock()
        .push_back(Ok(json!({"ticket": 1})));
    // breach alone starts `heal` (CRITICAL) but not `multi`
    let runs = rig.engine.handle(&breach("b1", "CRITICAL")).await.unwrap();
    assert_eq!(
        runs.iter().map(|r| r.workflow.as_str()).collect::<Vec<_>>(),
        ["heal"]
    );
    // a crash of another component does not complete it
    assert!(
        rig.engine
            .handle(&crash("c0", "other"))
            .await
            .unwrap()
            .iter()
            .all(|r| r.workflow != "multi")
    );
    let runs = rig.engine.handle(&crash("c1", "ingress")).await.unwrap();
    assert!(runs.iter().any(|r| r.workflow == "multi"));
    assert!(
        rig.effects
            .of("kernel")
            .iter()
            .any(|(t, p)| t == "governance.review" && p == &json!({"value": 0.4}))
    );
    // the window was emptied: another crash alone does nothing
    rig.clock.advance(Duration::from_millis(10));
    assert!(
        rig.engine
            .handle(&crash("c2", "ingress"))
            .await
            .unwrap()
            .iter()
            .all(|r| r.workflow != "multi")
    );
    // and the window closes: a breach long after a crash does not combine with it
    rig.clock.advance(Duration::from_millis(2_000));
    let runs = rig.engine.handle(&breach("b2", "WARNING")).await.unwrap();
    assert!(runs.is_empty());
}
