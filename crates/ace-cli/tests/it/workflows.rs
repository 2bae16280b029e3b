//! `ace-comms workflows …`: `validate` offline on the shipped directory and on a broken file
//! (exit 1, every problem with file, workflow and path), and the server verbs against a real
//! `ace-comms serve` running the shipped workflows.

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
