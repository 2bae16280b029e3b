//! Workflows end to end: the server runs the repository's `workflows/` (or a directory a test
//! writes), a kernel handler is a real WebSocket client subscribed on
//! `ace.comms.internal.kernel.*.cmd.>` that answers each command on its `reply_to` inbox, and an
//! observer subscribed to `ace.comms.>` sees the follow-up and lifecycle events.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ace_envelope::{Envelope, Kind};
use ace_server::{Config, WorkflowsConfig};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::Server;
use crate::ws::connect;

/// How long a test waits for something it expects.
const PATIENCE: Duration = Duration::from_secs(15);

/// The repository's workflow directory.
fn shipped() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows"))
}

/// A development-mode server running the workflows of `dir`.
async fn start(data: &Path, dir: &Path) -> Server {
    start_with(data, dir, |_| {}).await
}

async fn start_with(data: &Path, dir: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
    let dir = dir.to_path_buf();
    Server::start_with(data, |config| {
        config.workflows = WorkflowsConfig {
            enabled: true,
            dir,
            reload_interval_ms: 100,
            tick_ms: 50,
            ..WorkflowsConfig::default()
        };
        tweak(config);
    })
    .await
}

type Answer = Arc<dyn Fn(&Value) -> Option<Value> + Send + Sync>;

/// What a live subscription saw, in order.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Value>>>);

impl Seen {
    /// Waits for an envelope satisfying `pred`, and returns it.
    async fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if let Some(found) = self.0.lock().unwrap().iter().find(|e| pred(e)).cloned() {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never saw {what}; saw {:#?}",
                self.0
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|e| (e["subject"].clone(), e["name"].clone()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.0.lock().unwrap().iter().filter(|e| pred(e)).count()
    }
}

/// A WebSocket client subscribed to `pattern`: every envelope it receives is kept, and when
/// `answer` gives a payload for one with a `reply_to`, a reply is published there.
async fn client(server: &Server, pattern: &str, answer: Option<Answer>) -> (Seen, JoinHandle<()>) {
    let mut socket = connect(server).await;
    let answer_frame = crate::ws::ask(
        &mut socket,
        json!({"type": "subscribe", "id": "sub", "sid": "s", "pattern": pattern}),
    )
    .await;
    crate::ws::assert_ok(&answer_frame, "sub");
    let seen = Seen::default();
    let kept = seen.clone();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else {
                continue;
            };
            let frame: Value = serde_json::from_str(&text).unwrap();
            if frame["type"] != "message" {
                continue;
            }
            let envelope = frame["envelope"].clone();
            kept.0.lock().unwrap().push(envelope.clone());
            let (Some(answer), Some(inbox)) = (&answer, envelope["headers"]["reply_to"].as_str())
            else {
                continue;
            };
            let Some(payload) = answer(&envelope) else {
                continue;
            };
            let kind = if payload.get("error").is_some() {
                Kind::Error
            } else {
                Kind::Reply
            };
            let reply = Envelope::builder(kind, inbox)
                .correlation_id(envelope["correlation_id"].as_str().unwrap_or("none"))
                .payload_json(payload)
                .build()
                .unwrap();
            n += 1;
            let frame = json!({"type": "publish", "id": format!("r{n}"), "envelope": reply});
            socket
                .send(Message::Text(frame.to_string().into()))
                .await
                .unwrap();
        }
    });
    (seen, task)
}

/// The example kernel's answer: a result naming the handler, with ids the workflows template.
fn kernel_answer() -> Answer {
    Arc::new(|command: &Value| {
        Some(json!({
            "handled_by": command["subject"],
            "tracking_id": "track-1",
            "audit_id": "audit-1",
        }))
    })
}

/// A kernel handler on every kernel command, and an observer of everything.
async fn kernel_and_observer(server: &Server, answer: Answer) -> (Seen, Seen, [JoinHandle<()>; 2]) {
    let (commands, kernel) =
        client(server, "ace.comms.internal.kernel.*.cmd.>", Some(answer)).await;
    let (events, observer) = client(server, "ace.comms.>", None).await;
    (commands, events, [kernel, observer])
}

/// An orchestration event as its producer publishes it (name, domain, contract).
fn trigger(name: &str, subject: &str, payload: Value) -> Value {
    let envelope = Envelope::builder(Kind::Event, subject)
        .domain(name.split('.').next().unwrap())
        .name(name)
        .schema(format!("orchestration.{name}@1.0.0"))
        .payload_json(payload)
        .build()
        .expect("a valid trigger");
    serde_json::to_value(envelope).unwrap()
}

async fn publish(server: &Server, envelope: &Value) {
    let (status, answer) = server.post("/api/v1/messages", envelope).await;
    assert_eq!(status, 202, "{answer}");
}

/// One workflow proven: its trigger reaches each handler with the rendered parameters, and
/// its follow-up event and `workflow.completed` are observed.
struct Case {
    workflow: &'static str,
    trigger: Value,
    /// (command subject, rendered parameters)
    calls: Vec<(&'static str, Value)>,
    /// (follow-up event name, fields its payload must hold)
    follow_up: (&'static str, Value),
}

async fn prove(case: Case) {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &shipped()).await;
    let (commands, events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    publish(&server, &case.trigger).await;
    let principal = format!("workflow:{}", case.workflow);
    for (subject, params) in &case.calls {
        let command = commands
            .wait_for(subject, |e| e["subject"] == *subject)
            .await;
        assert_eq!(
            &command["payload"], params,
            "the rendered parameters of {subject}"
        );
        assert_eq!(
            command["source"]["id"], principal,
            "sent as the workflow's own principal"
        );
        assert_eq!(command["kind"], "command");
    }
    let (name, fields) = &case.follow_up;
    let follow = events.wait_for(name, |e| e["name"] == *name).await;
    assert_eq!(follow["source"]["id"], principal, "{follow}");
    for (key, value) in fields.as_object().unwrap() {
        assert_eq!(&follow["payload"][key], value, "{key} of {follow}");
    }
    let completed = events
        .wait_for("workflow.completed", |e| {
            e["name"] == "workflow.completed" && e["payload"]["workflow"] == case.workflow
        })
        .await;
    assert_eq!(
        completed["subject"],
        format!(
            "ace.comms.system.workflow.{}.evt.workflow_completed.v1",
            case.workflow
        )
    );
    for lifecycle in ["workflow.started", "workflow.action_executed"] {
        assert!(
            events.count(|e| e["name"] == lifecycle && e["payload"]["workflow"] == case.workflow)
                >= 1,
            "{lifecycle}"
        );
    }
    let (_, stats) = server.get("/api/v1/workflows/stats").await;
    assert_eq!(stats["workflows"][case.workflow]["completed"], 1, "{stats}");
    let (_, entries) = server.get("/api/v1/ledger/entries?limit=1000").await;
    assert!(
        entries["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == principal && e["kind"] == "accepted"),
        "the workflow's publishes are ledger entries under its principal: {entries}"
    );
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

const KPI: &str = "ace.comms.internal.kernel.kpi_monitor.evt.kpi_threshold_breach.v1";
const QUALITY: &str =
    "ace.comms.internal.kernel.test_quality_monitor.evt.test_quality_healing_required.v1";

fn breach(component: &str, severity: &str) -> Value {
    trigger(
        "kpi.threshold_breach",
        KPI,
        json!({"metric_name": "response_time_p95", "component_id": component, "value": 950.0,
               "threshold": 500.0, "severity": severity}),
    )
}

#[tokio::test]
async fn given_a_critical_kpi_breach_when_published_then_kpi_critical_healing_escalates_to_avn_core()
 {
    prove(Case {
        workflow: "kpi_critical_healing",
        trigger: breach("api_gateway", "CRITICAL"),
        calls: vec![(
            "ace.comms.internal.kernel.avn_core.cmd.escalate_healing.v1",
            json!({"component_id": "api_gateway", "metric_name": "response_time_p95",
                   "value": 950.0, "threshold": 500.0, "severity": "CRITICAL"}),
        )],
        follow_up: (
            "healing.escalation_requested",
            json!({"component_id": "api_gateway", "escalation_level": "AVN_CORE"}),
        ),
    })
    .await;
}

#[tokio::test]
async fn given_a_warning_kpi_breach_when_published_then_kpi_warning_adaptation_asks_the_learning_kernel()
 {
    prove(Case {
        workflow: "kpi_warning_adaptation",
        trigger: breach("api_gateway", "WARNING"),
        calls: vec![(
            "ace.comms.internal.kernel.learning_kernel.cmd.adapt_thresholds.v1",
            json!({"component_id": "api_gateway", "metric_name": "response_time_p95",
                   "value": 950.0, "threshold": 500.0}),
        )],
        follow_up: (
            "healing.escalation_requested",
            json!({"escalation_level": "LEARNING_KERNEL"}),
        ),
    })
    .await;
}

#[tokio::test]
async fn given_a_trust_degradation_when_published_then_trust_degradation_review_asks_governance() {
    prove(Case {
        workflow: "trust_degradation_review",
        trigger: trigger(
            "trust.degradation_detected",
            "ace.comms.internal.kernel.kpi_monitor.evt.trust_degradation_detected.v1",
            json!({"component_id": "memory_kernel", "previous_score": 0.9, "current_score": 0.5, "severity": "DEGRADED"}),
        ),
        calls: vec![(
            "ace.comms.internal.kernel.governance.cmd.review_trust.v1",
            json!({"component_id": "memory_kernel", "previous_score": 0.9, "current_score": 0.5, "severity": "DEGRADED"}),
        )],
        follow_up: ("healing.escalation_requested", json!({"component_id": "memory_kernel", "escalation_level": "GOVERNANCE"})),
    })
    .await;
}

#[tokio::test]
async fn given_critical_test_quality_when_published_then_test_quality_critical_healing_escalates() {
    prove(Case {
        workflow: "test_quality_critical_healing",
        trigger: trigger(
            "test_quality.healing_required",
            QUALITY,
            json!({"component_id": "ingress_kernel", "status": "CRITICAL", "score": 45.0, "severity": "CRITICAL"}),
        ),
        calls: vec![(
            "ace.comms.internal.kernel.avn_core.cmd.escalate_healing.v1",
            json!({"component_id": "ingress_kernel", "score": 45.0, "status": "CRITICAL",
                   "recommended_actions": ["review_error_patterns", "initiate_healing_sequence"]}),
        )],
        follow_up: ("healing.escalation_requested", json!({"component_id": "ingress_kernel", "escalation_level": "AVN_CORE"})),
    })
    .await;
}

#[tokio::test]
async fn given_degraded_test_quality_when_published_then_test_quality_degraded_learning_runs() {
    prove(Case {
        workflow: "test_quality_degraded_learning",
        trigger: trigger(
            "test_quality.healing_required",
            QUALITY,
            json!({"component_id": "ingress_kernel", "status": "DEGRADED", "score": 62.5, "severity": "DEGRADED"}),
        ),
        calls: vec![(
            "ace.comms.internal.kernel.learning_kernel.cmd.learn_from_degradation.v1",
            json!({"component_id": "ingress_kernel", "score": 62.5}),
        )],
        follow_up: ("healing.escalation_requested", json!({"escalation_level": "LEARNING_KERNEL"})),
    })
    .await;
}

#[tokio::test]
async fn given_an_improvement_suggestion_when_published_then_test_quality_improvement_tracking_runs()
 {
    prove(Case {
        workflow: "test_quality_improvement_tracking",
        trigger: trigger(
            "test_quality.improvement_suggested",
            "ace.comms.internal.kernel.test_quality_monitor.evt.test_quality_improvement_suggested.v1",
            json!({"component_id": "ingress_kernel", "score": 72.0, "suggestions": ["add property tests"]}),
        ),
        calls: vec![(
            "ace.comms.internal.kernel.learning_kernel.cmd.track_improvement.v1",
            json!({"component_id": "ingress_kernel", "score": 72.0, "suggestions": ["add property tests"]}),
        )],
        follow_up: ("healing.action_taken", json!({"action": "track_improvement", "details": {"tracking_id": "track-1"}})),
    })
    .await;
}

#[tokio::test]
async fn given_a_completed_recovery_when_published_then_healing_recovery_metrics_records_it() {
    prove(Case {
        workflow: "healing_recovery_metrics",
        trigger: trigger(
            "healing.recovery_complete",
            "ace.comms.internal.kernel.avn_core.evt.healing_recovery_complete.v1",
            json!({"component_id": "ingress_kernel", "success": true, "recovery_time_ms": 1200,
                   "score_before": 40.0, "score_after": 90.0}),
        ),
        calls: vec![(
            "ace.comms.internal.kernel.kpi_monitor.cmd.record_recovery.v1",
            json!({"component_id": "ingress_kernel", "recovery_time_ms": 1200, "score_before": 40.0, "score_after": 90.0}),
        )],
        follow_up: ("kpi.metric_updated", json!({"metric_name": "recovery_time_ms", "value": 1200, "unit": "ms"})),
    })
    .await;
}

#[tokio::test]
async fn given_a_critical_table_change_when_published_then_db_critical_audit_asks_governance() {
    prove(Case {
        workflow: "db_critical_audit",
        trigger: trigger(
            "db.table_updated",
            "ace.comms.internal.kernel.fusion_db.evt.db_table_updated.v1",
            json!({"table": "trust_scores", "operation": "UPDATE", "record_id": "r-7", "critical": true, "changed_by": "ops"}),
        ),
        calls: vec![(
            "ace.comms.internal.kernel.governance.cmd.audit_change.v1",
            json!({"table": "trust_scores", "operation": "UPDATE", "record_id": "r-7", "changed_by": "ops"}),
        )],
        follow_up: ("healing.action_taken", json!({"component_id": "db:trust_scores", "details": {"audit_id": "audit-1", "operation": "UPDATE"}})),
    })
    .await;
}

#[tokio::test]
async fn given_a_kernel_crash_when_published_then_kernel_crash_response_calls_both_handlers() {
    prove(Case {
        workflow: "kernel_crash_response",
        trigger: trigger(
            "system.critical_error",
            "ace.comms.internal.kernel.ingress_kernel.evt.system_critical_error.v1",
            json!({"component_id": "ingress_kernel", "error_type": "crash", "message": "segfault in parser", "severity": "CRITICAL"}),
        ),
        calls: vec![
            (
                "ace.comms.internal.kernel.avn_core.cmd.emergency_response.v1",
                json!({"component_id": "ingress_kernel", "error_type": "crash", "message": "segfault in parser"}),
            ),
            (
                "ace.comms.internal.kernel.governance.cmd.notify_crash.v1",
                json!({"component_id": "ingress_kernel", "error_type": "crash"}),
            ),
        ],
        follow_up: ("healing.escalation_requested", json!({"reason": "crash: segfault in parser"})),
    })
    .await;
}

/// The stats of the server's workflows.
async fn stats(server: &Server) -> Value {
    let (status, stats) = server.get("/api/v1/workflows/stats").await;
    assert_eq!(status, 200, "{stats}");
    stats
}

/// Waits until the stats satisfy `pred`.
async fn stats_until(server: &Server, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let now = stats(server).await;
        if pred(&now) {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never {what}: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn given_an_event_no_filter_passes_when_published_then_nothing_runs_and_it_is_counted_by_reason()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &shipped()).await;
    let (commands, _events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    publish(&server, &breach("api_gateway", "INFO")).await;
    let now = stats_until(&server, "the event filtered", |s| s["events_filtered"] == 2).await;
    assert_eq!(
        now["filtered_by_reason"]["compare"], 2,
        "critical and warning both refuse INFO: {now}"
    );
    assert_eq!(now["workflows_triggered"], 0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(commands.count(|_| true), 0, "no handler was called");
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_a_burst_over_the_rate_limit_when_published_then_the_excess_is_counted_rate_limited()
{
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &shipped()).await;
    let (commands, _events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    // kpi_warning_adaptation: 10 per minute per component
    for _ in 0..12 {
        publish(&server, &breach("api_gateway", "WARNING")).await;
    }
    let now = stats_until(&server, "the burst handled", |s| {
        s["workflows_completed"] == 10 && s["events_rate_limited"] == 2
    })
    .await;
    assert_eq!(
        now["workflows"]["kpi_warning_adaptation"]["rate_limited"], 2,
        "{now}"
    );
    assert_eq!(commands.count(|_| true), 10);
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

/// A directory holding one workflow file with `text`.
fn workflow_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("test.yaml"), text).unwrap();
    dir
}

const PROBE: &str = r#"
configuration:
  default_timeout_ms: 400
  retry_policy: { max_retries: 1, backoff_ms: [50] }
workflows:
  - name: probe
    trigger:
      event: kpi.threshold_breach
      filters:
        - { field: payload.severity, op: eq, value: CRITICAL }
    actions:
      - name: call
        kernel: probe_kernel.handle
        params: { component_id: "{{ payload.component_id }}" }
    on_failure:
      - event: system.critical_error
        subject: ace.comms.internal.kernel.probe_kernel.evt.system_critical_error.v1
        params: { component_id: "{{ payload.component_id }}", error_type: workflow_failed, message: "probe failed" }
"#;

#[tokio::test]
async fn given_a_handler_that_misses_its_first_deadline_when_run_then_the_retry_completes_and_both_are_counted()
 {
    let data = tempfile::tempdir().unwrap();
    let dir = workflow_dir(PROBE);
    let server = start(data.path(), dir.path()).await;
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = Arc::clone(&calls);
    let answer: Answer = Arc::new(move |_| {
        // the first command goes unanswered: the engine times out and tries again
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        (n > 0).then(|| json!({"ok": true}))
    });
    let (commands, events, tasks) = kernel_and_observer(&server, answer).await;
    publish(&server, &breach("c1", "CRITICAL")).await;
    events
        .wait_for("workflow.completed", |e| e["name"] == "workflow.completed")
        .await;
    let executed = events
        .wait_for("action_executed", |e| {
            e["name"] == "workflow.action_executed"
        })
        .await;
    assert_eq!(executed["payload"]["attempt"], 2, "{executed}");
    assert_eq!(executed["payload"]["status"], "success");
    assert_eq!(commands.count(|_| true), 2);
    let now = stats(&server).await;
    assert_eq!(
        (
            now["actions_timed_out"].clone(),
            now["actions_retried"].clone()
        ),
        (json!(1), json!(1)),
        "{now}"
    );
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_a_handler_that_answers_an_error_when_run_then_the_run_fails_and_on_failure_is_emitted()
 {
    let data = tempfile::tempdir().unwrap();
    let dir = workflow_dir(PROBE);
    let server = start(data.path(), dir.path()).await;
    let answer: Answer = Arc::new(|_| {
        Some(json!({"error": {"code": "KERNEL_DOWN", "message": "probe kernel is down"}}))
    });
    let (commands, events, tasks) = kernel_and_observer(&server, answer).await;
    publish(&server, &breach("c1", "CRITICAL")).await;
    let failed = events
        .wait_for("workflow.failed", |e| e["name"] == "workflow.failed")
        .await;
    assert_eq!(
        failed["payload"]["error"]["code"], "KERNEL_DOWN",
        "{failed}"
    );
    assert_eq!(failed["payload"]["failed_action"], "call");
    events
        .wait_for("on_failure", |e| {
            e["name"] == "system.critical_error" && e["payload"]["error_type"] == "workflow_failed"
        })
        .await;
    assert_eq!(
        commands.count(|_| true),
        2,
        "the first attempt and one retry"
    );
    let now = stats(&server).await;
    assert_eq!(now["workflows_failed"], 1, "{now}");
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_a_running_server_when_its_workflow_file_is_edited_then_behaviour_changes_and_a_broken_edit_changes_nothing()
 {
    let data = tempfile::tempdir().unwrap();
    let dir = workflow_dir(PROBE);
    let server = start(data.path(), dir.path()).await;
    let (commands, _events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    publish(&server, &breach("c1", "WARNING")).await;
    stats_until(&server, "WARNING filtered", |s| s["events_filtered"] == 1).await;
    // the edit: WARNING now triggers
    std::fs::write(
        dir.path().join("test.yaml"),
        PROBE.replace("value: CRITICAL", "value: WARNING"),
    )
    .unwrap();
    let (_, report) = server.post("/api/v1/workflows/reload", &json!({})).await;
    assert_eq!(report["problems"], json!([]), "{report}");
    publish(&server, &breach("c2", "WARNING")).await;
    commands
        .wait_for("the edited trigger", |e| {
            e["payload"]["component_id"] == "c2"
        })
        .await;
    // a broken edit: reported, and the last good version keeps running
    std::fs::write(
        dir.path().join("test.yaml"),
        PROBE.replace("op: eq", "op: equals"),
    )
    .unwrap();
    let (status, report) = server.post("/api/v1/workflows/reload", &json!({})).await;
    assert_eq!(status, 200);
    let problem = &report["problems"][0];
    assert_eq!(problem["file"], "test.yaml", "{report}");
    assert_eq!(problem["workflow"], "probe");
    assert!(
        problem["path"]
            .as_str()
            .unwrap()
            .starts_with("/workflows/0/trigger/filters/0"),
        "{problem}"
    );
    let (_, listed) = server.get("/api/v1/workflows").await;
    assert_eq!(listed["problems"][0]["file"], "test.yaml");
    publish(&server, &breach("c3", "WARNING")).await;
    commands
        .wait_for("the last good version", |e| {
            e["payload"]["component_id"] == "c3"
        })
        .await;
    // and the reload task picks an edit up by itself
    std::fs::write(
        dir.path().join("test.yaml"),
        PROBE.replace("value: CRITICAL", "value: INFO"),
    )
    .unwrap();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, w) = server.get("/api/v1/workflows/probe").await;
        if w["definition"]["trigger"]["filters"][0]["value"] == "INFO" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the edit was never picked up: {w}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_a_disabled_workflow_when_its_trigger_arrives_then_it_does_not_run_until_enabled_again()
 {
    let data = tempfile::tempdir().unwrap();
    let dir = workflow_dir(PROBE);
    let server = start(data.path(), dir.path()).await;
    let (commands, _events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    let (status, w) = server
        .post("/api/v1/workflows/probe/disable", &json!({}))
        .await;
    assert_eq!((status, w["enabled"].clone()), (200, json!(false)), "{w}");
    publish(&server, &breach("c1", "CRITICAL")).await;
    stats_until(&server, "filtered as disabled", |s| {
        s["filtered_by_reason"]["disabled"] == 1
    })
    .await;
    let (status, _) = server
        .post("/api/v1/workflows/probe/enable", &json!({}))
        .await;
    assert_eq!(status, 200);
    publish(&server, &breach("c2", "CRITICAL")).await;
    commands
        .wait_for("enabled again", |e| e["payload"]["component_id"] == "c2")
        .await;
    assert_eq!(commands.count(|e| e["payload"]["component_id"] == "c1"), 0);
    let (status, missing) = server
        .post("/api/v1/workflows/nope/enable", &json!({}))
        .await;
    assert_eq!(status, 404, "{missing}");
    let (status, _) = server.post("/api/v1/workflows/reload", &json!({})).await;
    assert_eq!(status, 200);
    let (_, page) = server
        .get("/api/v1/ledger/entries?kind=config_changed&limit=1000")
        .await;
    let changes: Vec<&str> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["details"]["change"].as_str())
        .filter(|c| c.starts_with("workflow"))
        .collect();
    assert_eq!(
        changes,
        [
            "workflow disabled",
            "workflow enabled",
            "workflows reloaded"
        ],
        "each switch and reload is a config_changed entry: {page}"
    );
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_workflows_off_when_their_routes_are_asked_then_they_answer_404_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path()).await;
    let answer = server.get("/api/v1/workflows").await;
    crate::assert_error(&answer, 404, "NOT_FOUND");
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("workflows.enabled")
    );
    server.stop().await;
}

const TWO_STEPS: &str = r#"
configuration:
  default_timeout_ms: 300
  retry_policy: { max_retries: 0 }
workflows:
  - name: two_steps
    trigger: { event: kpi.threshold_breach }
    steps:
      - actions:
          - name: first
            kernel: probe_kernel.first
            params: { component_id: "{{ payload.component_id }}" }
      - actions:
          - name: second
            kernel: probe_kernel.second
            params: { ticket: "{{ steps.first.result.ticket }}" }
"#;

#[tokio::test]
async fn given_a_run_stopped_mid_way_when_the_server_starts_again_then_it_resumes_without_repeating_the_completed_step()
 {
    let data = tempfile::tempdir().unwrap();
    // A resumed command may go out before the test's kernel is back on the bus (live delivery):
    // the retry reaches it.
    let dir = workflow_dir(
        &TWO_STEPS
            .replace("default_timeout_ms: 300", "default_timeout_ms: 1500")
            .replace("max_retries: 0", "max_retries: 5, backoff_ms: [200]"),
    );
    let quick_redelivery = |config: &mut Config| config.workflows.ack_wait_ms = 1_000;
    let server = start_with(data.path(), dir.path(), quick_redelivery).await;
    // the first step is answered, the second never: the server stops while the run waits
    let answer: Answer = Arc::new(|c| {
        (c["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.first.v1")
            .then(|| json!({"ticket": 7}))
    });
    let (before, _events, tasks) = kernel_and_observer(&server, answer).await;
    publish(&server, &breach("c1", "CRITICAL")).await;
    before
        .wait_for("the second step", |e| {
            e["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.second.v1"
        })
        .await;
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;

    let server = start_with(data.path(), dir.path(), quick_redelivery).await;
    let (after, events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    let completed = events
        .wait_for("workflow.completed", |e| e["name"] == "workflow.completed")
        .await;
    assert_eq!(completed["payload"]["workflow"], "two_steps");
    let second = after
        .wait_for("the second step again", |e| {
            e["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.second.v1"
        })
        .await;
    assert_eq!(
        second["payload"],
        json!({"ticket": 7}),
        "rendered from the journaled result of the first step"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        after.count(|e| e["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.first.v1"),
        0,
        "the completed step is not repeated"
    );
    // the trigger, redelivered, finds its run finished: acknowledged, nothing runs again
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (_, consumer) = server
            .get("/api/v1/streams/ACE_EVENTS/consumers/ace-workflows")
            .await;
        if consumer["ack_pending"] == 0 && consumer["counters"]["acked"] == 1 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the trigger was never acknowledged: {consumer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        after.count(|e| e["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.first.v1"),
        0,
        "the redelivered trigger repeated nothing"
    );
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_an_action_over_its_ehi_threshold_when_run_then_it_waits_for_a_human_and_resumes_once_approved()
 {
    let data = tempfile::tempdir().unwrap();
    let held = TWO_STEPS
        .replace("default_timeout_ms: 300", "default_timeout_ms: 5000")
        .replace(
            "kernel: probe_kernel.first\n",
            "kernel: probe_kernel.first\n            ehi_score: 0.95\n",
        );
    let dir = workflow_dir(&held);
    let server = start(data.path(), dir.path()).await;
    let answer: Answer = Arc::new(|_| Some(json!({"ticket": 9})));
    let (commands, events, tasks) = kernel_and_observer(&server, answer).await;
    publish(&server, &breach("c1", "CRITICAL")).await;
    let requested = events
        .wait_for("approval_requested", |e| {
            e["name"] == "approval.requested"
                || e["subject"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("approval_requested.v1"))
        })
        .await;
    assert_eq!(
        commands.count(|_| true),
        0,
        "nothing reaches the kernel before the decision"
    );
    let approval_id = requested["payload"]["approval_id"]
        .as_str()
        .expect("an approval id")
        .to_owned();
    let (status, decided) = server
        .post(
            &format!("/api/v1/approval/{approval_id}"),
            &json!({"decision": "approve"}),
        )
        .await;
    assert_eq!(status, 200, "{decided}");
    let first = commands
        .wait_for("the released command", |e| {
            e["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.first.v1"
        })
        .await;
    assert_eq!(first["governance"]["approval_id"], approval_id.as_str());
    commands
        .wait_for("the second step", |e| {
            e["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.second.v1"
        })
        .await;
    events
        .wait_for("workflow.completed", |e| e["name"] == "workflow.completed")
        .await;
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_a_workflow_whose_action_its_role_may_not_publish_when_run_then_it_is_refused_and_recorded_like_any_principal()
 {
    let tmp = tempfile::tempdir().unwrap();
    let dir = workflow_dir(
        r#"
workflows:
  - name: overreach
    trigger: { event: kpi.threshold_breach }
    actions:
      - name: announce
        emit: { event: kpi.metric_updated, subject: ace.comms.http.service.dashboard.evt.kpi.v1 }
        params: { component_id: "{{ payload.component_id }}" }
"#,
    );
    let wf = dir.path().to_path_buf();
    let server = crate::auth::start_enforced(tmp.path(), |config| {
        config.workflows = WorkflowsConfig {
            enabled: true,
            dir: wf,
            reload_interval_ms: 100,
            tick_ms: 50,
            ..WorkflowsConfig::default()
        };
    })
    .await;
    let key = crate::auth::key_of("admin");
    let send = server
        .http
        .post(server.url("/api/v1/messages"))
        .header("X-ACE-API-Key", &key);
    let response = send.json(&breach("c1", "CRITICAL")).send().await.unwrap();
    assert_eq!(response.status(), 202);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let denied = loop {
        let get = server
            .http
            .get(server.url("/api/v1/ledger/entries?kind=denied&limit=100"));
        let (_, entries) =
            crate::answer(get.header("X-ACE-API-Key", &key).send().await.unwrap()).await;
        let found = entries["entries"].as_array().and_then(|a| {
            a.iter()
                .find(|e| e["actor"] == "workflow:overreach")
                .cloned()
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no denied entry for the workflow: {entries}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        denied["subject"], "ace.comms.http.service.dashboard.evt.kpi.v1",
        "{denied}"
    );
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let stats = loop {
        let get = server
            .http
            .get(server.url("/api/v1/workflows/stats"))
            .header("X-ACE-API-Key", &key);
        let (_, stats) = crate::answer(get.send().await.unwrap()).await;
        if stats["workflows"]["overreach"]["failed"] == 1 {
            break stats;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the run never failed: {stats}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        stats["actions_retried"], 0,
        "a refusal is not retried: {stats}"
    );
    // and the workflow routes are governed too: an observer may not reload
    let post = server
        .http
        .post(server.url("/api/v1/workflows/reload"))
        .header("X-ACE-API-Key", crate::auth::key_of("agent"));
    let refused = crate::answer(post.send().await.unwrap()).await;
    crate::assert_error(&refused, 403, "FORBIDDEN");
    server.stop().await;
}

#[tokio::test]
async fn given_runs_when_metrics_are_scraped_then_the_workflow_families_hold_the_stats() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), &shipped()).await;
    let (_commands, _events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    publish(&server, &breach("api_gateway", "CRITICAL")).await;
    stats_until(&server, "the run completed", |s| {
        s["workflows_completed"] == 1
    })
    .await;
    let text = server.metrics().await;
    let received = text
        .lines()
        .find_map(|l| l.strip_prefix("ace_comms_workflow_events_received_total "))
        .expect("events received");
    assert!(
        received.parse::<f64>().unwrap() >= 1.0,
        "the trigger and its follow-up: {received}"
    );
    for line in [
        "ace_comms_workflow_events_filtered_total{reason=\"compare\"} 1",
        "ace_comms_workflow_runs_total{outcome=\"completed\",workflow=\"kpi_critical_healing\"} 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} missing from:\n{text}"
        );
    }
    assert!(text.contains(
        "ace_comms_workflow_run_latency_ms{quantile=\"0.99\",workflow=\"kpi_critical_healing\"}"
    ));
    tasks.iter().for_each(JoinHandle::abort);
    server.stop().await;
}

#[tokio::test]
async fn given_a_webhook_action_when_run_then_the_rendered_body_is_posted_and_its_answer_feeds_the_next_step()
 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // A plain HTTP/1.1 endpoint: keeps each request's x-ace-workflow header and JSON body and
    // answers {"ticket": "T-42"}.
    let received = Arc::new(Mutex::new(Vec::<(String, Value)>::new()));
    let kept = Arc::clone(&received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let web = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, body) = loop {
                let n = stream.read(&mut buf).await.unwrap();
                raw.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&raw).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let workflow = head
                .lines()
                .find_map(|l| l.strip_prefix("x-ace-workflow: "))
                .unwrap_or_default()
                .to_owned();
            kept.lock()
                .unwrap()
                .push((workflow, serde_json::from_str(&body).unwrap()));
            let answer = r#"{"ticket":"T-42"}"#;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
        }
    });
    let data = tempfile::tempdir().unwrap();
    let dir = workflow_dir(&format!(
        r#"
workflows:
  - name: hooked
    trigger: {{ event: kpi.threshold_breach }}
    steps:
      - actions:
          - name: notify
            webhook: {{ url: "{url}", headers: {{ x-severity: "{{{{ payload.severity }}}}" }} }}
            params: {{ component: "{{{{ payload.component_id }}}}", value: "{{{{ payload.value }}}}" }}
      - actions:
          - name: record
            kernel: probe_kernel.record
            params: {{ ticket: "{{{{ steps.notify.result.ticket }}}}" }}
"#
    ));
    let server = start(data.path(), dir.path()).await;
    let (commands, _events, tasks) = kernel_and_observer(&server, kernel_answer()).await;
    publish(&server, &breach("c9", "CRITICAL")).await;
    let record = commands
        .wait_for("the next step", |e| {
            e["subject"] == "ace.comms.internal.kernel.probe_kernel.cmd.record.v1"
        })
        .await;
    assert_eq!(record["payload"], json!({"ticket": "T-42"}));
    let posted = received.lock().unwrap().clone();
    assert_eq!(
        posted,
        vec![(
            "hooked".to_owned(),
            json!({"component": "c9", "value": 950.0})
        )]
    );
    tasks.iter().for_each(JoinHandle::abort);
    web.abort();
    server.stop().await;
}
