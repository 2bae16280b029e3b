//! `ace-comms workflows …`: `validate` offline on the shipped directory and on a broken file
//! (exit 1, every problem with file, workflow and path), the server verbs against a real
//! `ace-comms serve` running the shipped workflows, and a kill -9 mid-run.

use std::path::Path;

use crate::client::Server;
use crate::{ace, write};

fn shipped() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../workflows")
        .to_str()
        .unwrap()
        .to_owned()
}

#[test]
fn given_workflow_files_when_validated_offline_then_good_ones_pass_and_a_broken_one_exits_1_naming_where()
 {
    let run = ace(&["workflows", "validate", &shipped()], b"");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("9 workflows"), "{}", run.stdout);

    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "workflows:\n  - name: w\n    trigger: { event: a.b, filters: [ { field: payload.x, op: equals, value: 1 } ] }\n    actions: [ { name: a, kernel: k.h } ]\n",
    );
    let run = ace(
        &[
            "workflows",
            "validate",
            dir.path().to_str().unwrap(),
            "-o",
            "json",
        ],
        b"",
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let answer: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let problem = &answer["problems"][0];
    assert_eq!(problem["file"], "bad.yaml", "{answer}");
    assert_eq!(problem["workflow"], "w");
    assert!(
        problem["path"]
            .as_str()
            .unwrap()
            .starts_with("/workflows/0/trigger/filters/0"),
        "{answer}"
    );
}

#[test]
fn given_a_server_running_workflows_when_the_verbs_run_then_they_list_switch_reload_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(
        dir.path(),
        "ace.yaml",
        &format!("workflows:\n  enabled: true\n  dir: {}\n", shipped()),
    );
    let server = Server::start_with(&["--config", &config], &[]);
    let listed = server.ok(&["workflows", "list"]);
    assert!(
        listed.contains("kpi_critical_healing") && listed.contains("kernel_crash_response"),
        "{listed}"
    );
    let shown = server.ok(&["workflows", "show", "db_critical_audit", "-o", "json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["definition"]["actions"][0]["kernel"],
        "governance.audit_change"
    );
    assert!(
        server
            .ok(&["workflows", "disable", "kpi_warning_adaptation"])
            .contains("disabled")
    );
    let listed = server.ok(&["workflows", "list", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let warning = listed["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "kpi_warning_adaptation")
        .unwrap();
    assert_eq!(warning["enabled"], false);
    assert!(
        server
            .ok(&["workflows", "enable", "kpi_warning_adaptation"])
            .contains("enabled")
    );
    assert!(
        server
            .ok(&["workflows", "reload"])
            .contains("9 workflows loaded")
    );
    let stats = server.ok(&["workflows", "stats"]);
    assert!(stats.contains("events_received="), "{stats}");
    let missing = server.run(&["workflows", "show", "nope"]);
    assert_eq!(missing.code, 1, "{}{}", missing.stdout, missing.stderr);
    assert!(missing.stderr.contains("NOT_FOUND"), "{}", missing.stderr);
}

/// A kernel on `url` answering every command except those of `silent_handler`; the subjects of
/// the commands it saw.
async fn kernel(
    url: &str,
    silent_handler: Option<&'static str>,
) -> (
    std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use ace_envelope::{Envelope, Kind};
    let client = ace_client::Client::new(url).unwrap();
    let connection = client.connect_ws().await.unwrap();
    let mut commands = connection
        .subscribe("ace.comms.internal.kernel.*.cmd.>", None)
        .await
        .unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = std::sync::Arc::clone(&seen);
    let task = tokio::spawn(async move {
        while let Some(Ok(message)) = commands.next().await {
            let command = message.envelope;
            kept.lock().unwrap().push(command.subject.clone());
            if silent_handler.is_some_and(|h| command.subject.contains(h)) {
                continue;
            }
            let inbox = command.headers["reply_to"].clone();
            let reply = Envelope::builder(Kind::Reply, inbox)
                .correlation_id(command.id.to_string())
                .payload_json(serde_json::json!({"ticket": 7}))
                .build()
                .unwrap();
            connection.publish(&reply).await.unwrap();
        }
    });
    (seen, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_run_mid_way_when_the_server_is_killed_9_then_the_restart_neither_loses_the_trigger_nor_repeats_the_completed_step()
 {
    let dir = tempfile::tempdir().unwrap();
    let flows = dir.path().join("flows");
    std::fs::create_dir(&flows).unwrap();
    write(
        &flows,
        "two.yaml",
        "configuration:\n  default_timeout_ms: 1500\n  retry_policy: { max_retries: 5, backoff_ms: [200] }\nworkflows:\n  - name: two_steps\n    trigger: { event: kpi.threshold_breach }\n    steps:\n      - actions: [ { name: first, kernel: probe_kernel.first, params: { c: \"{{ payload.component_id }}\" } } ]\n      - actions: [ { name: second, kernel: probe_kernel.second, params: { ticket: \"{{ steps.first.result.ticket }}\" } } ]\n",
    );
    let config = write(
        dir.path(),
        "ace.yaml",
        &format!(
            "workflows:\n  enabled: true\n  dir: {}\n  ack_wait_ms: 1000\n",
            flows.display()
        ),
    );
    let data = dir.path().join("data");
    let serving = crate::serve::start(&data, &["--config", &config]);
    let (before, task) = kernel(&serving.url, Some(".cmd.second.")).await;
    let trigger = ace_envelope::Envelope::builder(
        ace_envelope::Kind::Event,
        "ace.comms.internal.kernel.kpi_monitor.evt.kpi_threshold_breach.v1",
    )
    .domain("kpi")
    .name("kpi.threshold_breach")
    .payload_json(serde_json::json!({"component_id": "c1"}))
    .build()
    .unwrap();
    ace_client::Client::new(&serving.url)
        .unwrap()
        .publish(&trigger)
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !before
        .lock()
        .unwrap()
        .iter()
        .any(|s| s.contains(".cmd.second."))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the second step never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    serving.kill();
    task.abort();

    let serving = crate::serve::start(&data, &["--config", &config]);
    let (after, task) = kernel(&serving.url, None).await;
    let client = ace_client::Client::new(&serving.url).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let stats: serde_json::Value = client.workflow_stats().await.unwrap();
        if stats["workflows_completed"] == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never completed after the restart: {stats}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let firsts = |seen: &std::sync::Mutex<Vec<String>>| {
        seen.lock()
            .unwrap()
            .iter()
            .filter(|s| s.contains(".cmd.first."))
            .count()
    };
    assert_eq!(
        firsts(&before) + firsts(&after),
        1,
        "the completed first step ran once across the kill"
    );
    assert!(
        after
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.contains(".cmd.second."))
    );
    task.abort();
    let _ = serving.terminate();
}
