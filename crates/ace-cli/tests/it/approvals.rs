//! `approvals ls | approve | reject` end to end: the real server in development mode holds a
//! message published with `pub --ehi 0.95 --header ace-action=delete` (exit 0, `held … approval_id=…`),
//! `approvals ls` shows it, `approve` releases it onto its stream, `reject` refuses another,
//! and deciding twice or an unknown id exits 1 with the server's code.

use crate::client::Server;

/// Publishes a message the EHI gate holds and answers its approval id from `pub`'s line.
fn hold(server: &Server, table: &str) -> String {
    let payload = format!("{{\"table\":\"{table}\"}}");
    let out = server.ok(&[
        "pub",
        "ace.comms.http.ops.db.evt.dropped.v1",
        &payload,
        "--ehi",
        "0.95",
        "--header",
        "ace-action=delete",
    ]);
    assert!(out.starts_with("held id="), "{out}");
    let approval_id = out
        .split_whitespace()
        .find_map(|word| word.strip_prefix("approval_id="))
        .expect("the approval id is printed");
    approval_id.to_owned()
}

#[test]
fn given_held_messages_when_approved_and_rejected_then_ls_and_the_stream_show_each_decision() {
    let server = Server::start();
    let first = hold(&server, "users");
    let second = hold(&server, "orders");
    let table = server.ok(&["approvals", "ls"]);
    assert!(table.starts_with("APPROVAL"), "{table}");
    assert!(table.contains(&first) && table.contains(&second), "{table}");
    assert!(table.contains("ehi_score 0.95"), "{table}");

    let approved = server.ok(&[
        "approvals",
        "approve",
        &first,
        "--comment",
        "backup checked",
    ]);
    assert!(
        approved.starts_with(&format!("approved {first} message=")),
        "{approved}"
    );
    assert!(approved.contains("stream=ACE_EVENTS seq=1"), "{approved}");
    let stored = server.ok(&["stream", "info", "ACE_EVENTS", "--json"]);
    assert!(stored.contains("\"messages\": 1"), "{stored}");

    let rejected = server.ok(&["approvals", "reject", &second, "--comment", "no", "--json"]);
    let decided: serde_json::Value = serde_json::from_str(&rejected).unwrap();
    assert_eq!(decided["approval"]["status"], "rejected");
    assert_eq!(decided["approval"]["comment"], "no");

    let pending = server.ok(&["approvals", "ls", "--json"]);
    assert_eq!(pending.trim(), "[]");
    let all = server.ok(&["approvals", "ls", "--status", "all"]);
    assert!(
        all.contains("approved") && all.contains("rejected"),
        "{all}"
    );

    let twice = server.run(&["approvals", "reject", &first]);
    assert_eq!(twice.code, 1, "{}", twice.stderr);
    assert!(twice.stderr.contains("CONFLICT"), "{}", twice.stderr);
    let unknown = server.run(&["approvals", "approve", "no-such"]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(unknown.stderr.contains("NOT_FOUND"), "{}", unknown.stderr);
    let bad = server.run(&["approvals", "ls", "--status", "done"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}
