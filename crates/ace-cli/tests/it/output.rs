//! `-o table|json|yaml` (and `--json`) against the real server: every data command prints the
//! same document as JSON and as YAML (parsed back by `serde_yaml_ng` and, independently, by
//! PyYAML), tables with aligned headers for people, one document per message for the streaming
//! commands; and every failure as `{"error": {code, message, details?, hint?}}` on standard
//! error under JSON or YAML, or as one `error:` line and a `hint:` line, with the same exit
//! codes, its message never restating its code.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

use crate::client::{EVENT, Server};
use crate::serve::start_in;
use crate::{Run, ace};

/// The run's standard output as JSON.
fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// The run's standard output as one YAML document.
fn yaml(run: &Run) -> Value {
    serde_yaml_ng::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("not YAML ({e}):\n{}\n{}", run.stdout, run.stderr))
}

/// Every `---` document of a YAML stream.
fn yaml_documents(text: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("a YAML document"))
        .collect()
}

/// The error document a failed run printed on standard error, under `-o json` or `-o yaml`.
fn error_doc(run: &Run) -> Value {
    let doc: Value = serde_yaml_ng::from_str(&run.stderr)
        .unwrap_or_else(|e| panic!("stderr is no error document ({e}):\n{}", run.stderr));
    let error = &doc["error"];
    assert!(error["code"].is_string(), "{doc}");
    assert!(error["message"].is_string(), "{doc}");
    let code = ace_envelope::ErrorCode::parse(error["code"].as_str().unwrap());
    if let Some(code) = code {
        let message = error["message"].as_str().unwrap();
        assert!(!code.is_restated_by(message), "{doc}");
    }
    doc
}

/// Asserts `text` is a table whose first line holds `headers` and whose every cell starts in
/// its header's column.
fn assert_table(text: &str, headers: &[&str]) {
    let mut lines = text.lines();
    let head = lines.next().unwrap_or_default();
    let starts: Vec<usize> = headers
        .iter()
        .map(|h| head.find(h).unwrap_or_else(|| panic!("no {h} in {head:?}")))
        .collect();
    assert!(starts.windows(2).all(|w| w[0] < w[1]), "{head}");
    for line in lines {
        let chars: Vec<char> = line.chars().collect();
        for &start in &starts[1..] {
            assert!(
                chars.get(start - 1) == Some(&' ')
                    && chars.get(start - 2) == Some(&' ')
                    && chars.get(start).is_some_and(|c| *c != ' '),
                "a cell of {line:?} does not start under its header in\n{text}"
            );
        }
    }
}

/// `args` with `-o json`, `--json` and `-o yaml`: the three print one and the same document.
fn same_in_json_and_yaml(server: &Server, args: &[&str]) -> Value {
    let with = |flags: &[&str]| server.ok(&[args, flags].concat());
    let as_json: Value = serde_json::from_str(&with(&["-o", "json"])).unwrap();
    let alias: Value = serde_json::from_str(&with(&["--json"])).unwrap();
    let as_yaml: Value = serde_yaml_ng::from_str(&with(&["-o", "yaml"])).unwrap();
    assert_eq!(as_json, alias, "{args:?}: --json is -o json");
    assert_eq!(as_json, as_yaml, "{args:?}: YAML and JSON disagree");
    as_json
}

#[test]
fn given_a_server_when_each_listing_prints_in_each_format_then_json_and_yaml_agree_and_tables_align()
 {
    let server = Server::start();
    server.ok(&["pub", EVENT, r#"{"task":"t1"}"#, "--name", "TASK_DONE"]);
    server.ok(&["consumer", "add", "ACE_EVENTS", "worker"]);

    let streams = same_in_json_and_yaml(&server, &["stream", "ls"]);
    assert!(
        streams
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["config"]["name"] == "ACE_EVENTS"),
        "{streams}"
    );
    let table = server.ok(&["stream", "ls", "-o", "table"]);
    assert_eq!(table, server.ok(&["stream", "ls"]), "table is the default");
    assert_table(
        &table,
        &["NAME", "SUBJECTS", "RETENTION", "MESSAGES", "LAST SEQ"],
    );

    let info = same_in_json_and_yaml(&server, &["stream", "info", "ACE_EVENTS"]);
    assert_eq!(info["messages"], 1, "{info}");
    let lines = server.ok(&["stream", "info", "ACE_EVENTS"]);
    assert!(lines.starts_with("name:"), "{lines}");
    let column = lines.lines().next().unwrap().find("ACE_EVENTS").unwrap();
    assert!(
        lines
            .lines()
            .all(|l| l.chars().nth(column - 1) == Some(' ') && l.len() > column),
        "values align:\n{lines}"
    );

    let consumers = same_in_json_and_yaml(&server, &["consumer", "ls", "ACE_EVENTS"]);
    assert_eq!(consumers[0]["config"]["name"], "worker", "{consumers}");
    assert_table(
        &server.ok(&["consumer", "ls", "ACE_EVENTS"]),
        &["NAME", "FILTER", "ACK FLOOR", "PENDING", "DELIVERED"],
    );

    same_in_json_and_yaml(&server, &["agents", "ls"]);
    assert_table(
        &server.ok(&["agents", "ls"]),
        &["ID", "TYPE", "CAPABILITIES"],
    );

    same_in_json_and_yaml(&server, &["approvals", "ls", "--status", "all"]);
    assert_table(
        &server.ok(&["approvals", "ls"]),
        &["APPROVAL", "STATUS", "SUBJECT"],
    );

    let entries = same_in_json_and_yaml(&server, &["ledger", "entries", "--limit", "3"]);
    assert_eq!(entries["entries"].as_array().unwrap().len(), 3, "{entries}");
    let page = server.ok(&["ledger", "entries", "--limit", "3"]);
    let (rows, next) = page.split_once("more: ").expect("a next page");
    assert_eq!(next.trim(), "--after 2", "{page}");
    assert_table(rows, &["SEQ", "TIME", "KIND", "ACTOR", "SUBJECT"]);

    let contracts = same_in_json_and_yaml(&server, &["contracts", "list"]);
    assert!(contracts.as_array().unwrap().len() > 3, "{contracts}");
    assert_table(
        &server.ok(&["contracts", "list"]),
        &["SUBJECT", "LATEST", "VERSIONS", "COMPATIBILITY"],
    );
    let schema = same_in_json_and_yaml(&server, &["contracts", "show", "mlt.experience@1.0.0"]);
    assert!(schema.get("$schema").is_some() || schema.get("type").is_some());
}

#[test]
fn given_a_server_when_actions_print_in_each_format_then_each_answer_is_the_api_document() {
    let server = Server::start();
    let published = json(&server.run(&["pub", EVENT, r#"{"n":1}"#, "-o", "json"]));
    assert_eq!(published["stream"], "ACE_EVENTS", "{published}");
    let published = yaml(&server.run(&["pub", EVENT, r#"{"n":2}"#, "-o", "yaml"]));
    assert_eq!(published["seq"], 2, "{published}");
    let many = yaml(&server.run(&["pub", EVENT, "{}", "--count", "3", "-o", "yaml"]));
    assert_eq!(
        (many["published"].as_u64(), many["held"].as_u64()),
        (Some(3), Some(0))
    );
    assert_eq!(many["last"]["seq"], 5, "{many}");

    let held = yaml(&server.run(&[
        "pub",
        "ace.comms.http.ops.db.evt.dropped.v1",
        r#"{"table":"t"}"#,
        "--ehi",
        "0.95",
        "--header",
        "ace-action=delete",
        "-o",
        "yaml",
    ]));
    let approval = held["approval_id"].as_str().expect("held: approval_id");
    let decided = json(&server.run(&["approvals", "approve", approval, "-o", "json"]));
    assert_eq!(decided["approval"]["status"], "approved", "{decided}");

    let added = yaml(&server.run(&[
        "stream",
        "add",
        "ORDERS",
        "--subjects",
        "orders.>",
        "-o",
        "yaml",
    ]));
    assert_eq!(added["config"]["name"], "ORDERS", "{added}");
    let consumer = json(&server.run(&["consumer", "add", "ORDERS", "c1", "--json"]));
    assert_eq!(consumer["stream"], "ORDERS", "{consumer}");
    let removed = yaml(&server.run(&["stream", "rm", "ORDERS", "--force", "-o", "yaml"]));
    assert_eq!(
        removed,
        serde_json::json!({"stream": "ORDERS", "deleted": true})
    );
    let unknown = server.run(&["stream", "rm", "ORDERS", "--force", "-o", "json"]);
    assert_eq!(unknown.code, 1, "{}", unknown.stderr);
    assert!(unknown.stdout.is_empty(), "{}", unknown.stdout);
    assert_eq!(error_doc(&unknown)["error"]["code"], "STREAM_NOT_FOUND");
}

#[test]
fn given_messages_when_streaming_commands_print_then_one_json_line_or_yaml_document_each() {
    let server = Server::start();
    for n in 1..=3 {
        server.ok(&["pub", EVENT, &format!(r#"{{"n":{n}}}"#), "--name", "N"]);
    }
    server.ok(&["consumer", "add", "ACE_EVENTS", "json", "--deliver", "all"]);
    server.ok(&["consumer", "add", "ACE_EVENTS", "yaml", "--deliver", "all"]);
    let lines = server.ok(&[
        "consumer",
        "next",
        "ACE_EVENTS",
        "json",
        "--count",
        "3",
        "-o",
        "json",
    ]);
    let docs: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(docs.len(), 3, "{lines}");
    assert_eq!(docs[2]["envelope"]["payload"]["n"], 3, "{lines}");

    let text = server.ok(&[
        "consumer",
        "next",
        "ACE_EVENTS",
        "yaml",
        "--count",
        "3",
        "-o",
        "yaml",
    ]);
    assert_eq!(text.matches("---\n").count(), 3, "{text}");
    let docs = yaml_documents(&text);
    assert_eq!(docs.len(), 3, "{text}");
    assert_eq!(docs[0]["seq"], 1, "{text}");
    assert_eq!(docs[0]["envelope"]["payload"]["n"], 1, "{text}");

    // Live subscriptions start asynchronously: publish until both have their two messages.
    let mut subs: Vec<_> = ["json", "yaml"]
        .map(|format| {
            Command::new(env!("CARGO_BIN_EXE_ace-comms"))
                .args([
                    "--server",
                    &server.url,
                    "sub",
                    "ace.comms.a2a.>",
                    "--count",
                    "2",
                ])
                .args(["--timeout", "60s", "-o", format])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .into_iter()
        .collect();
    for n in 0..150 {
        if subs.iter_mut().all(|s| s.try_wait().unwrap().is_some()) {
            break;
        }
        server.ok(&["pub", EVENT, &format!(r#"{{"live":{n}}}"#)]);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let outputs: Vec<String> = subs
        .into_iter()
        .map(|s| {
            let out = s.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap()
        })
        .collect();
    let lines: Vec<Value> = outputs[0]
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(outputs[1].matches("---\n").count(), 2, "{}", outputs[1]);
    let docs = yaml_documents(&outputs[1]);
    for messages in [&lines, &docs] {
        assert_eq!(messages.len(), 2, "{outputs:?}");
        assert!(
            messages
                .iter()
                .all(|m| m["envelope"]["subject"] == EVENT
                    && m["envelope"]["payload"]["live"].is_u64()),
            "{outputs:?}"
        );
    }
}

#[test]
fn given_refusals_when_printed_under_each_format_then_json_and_yaml_carry_code_message_and_hint() {
    let server = Server::start();
    let text = server.run(&["stream", "info", "NOPE"]);
    assert_eq!(text.code, 1);
    assert_eq!(
        text.stderr,
        "error: STREAM_NOT_FOUND: stream `NOPE` not found\n\
         hint: `ace-comms stream ls` lists the streams\n"
    );
    for flags in [&["-o", "json"][..], &["--json"], &["-o", "yaml"]] {
        let run = server.run(&[&["stream", "info", "NOPE"][..], flags].concat());
        assert_eq!(run.code, 1, "{flags:?}: {}", run.stderr);
        assert!(run.stdout.is_empty(), "{flags:?}: {}", run.stdout);
        let doc = error_doc(&run);
        assert_eq!(
            doc,
            serde_json::json!({"error": {
                "code": "STREAM_NOT_FOUND",
                "message": "stream `NOPE` not found",
                "hint": "`ace-comms stream ls` lists the streams",
            }}),
            "{flags:?}"
        );
    }
    let json_line = server.run(&["stream", "info", "NOPE", "-o", "json"]).stderr;
    assert_eq!(json_line.lines().count(), 1, "one JSON line: {json_line}");

    // The payload's contract: every pointer, in the details and on the lines for people.
    let bad = [
        "pub",
        "ace.comms.a2a.agent.planner.evt.experience.v1",
        r#"{"not":"an experience"}"#,
        "--schema",
        "mlt.experience@1.0.0",
    ];
    let run = server.run(&[&bad[..], &["-o", "json"]].concat());
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = error_doc(&run);
    assert_eq!(doc["error"]["code"], "CONTRACT_VIOLATION", "{doc}");
    let errors = doc["error"]["details"]["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{doc}");
    let run = server.run(&bad);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: CONTRACT_VIOLATION: "),
        "{}",
        run.stderr
    );
    assert_eq!(
        lines.len(),
        errors.len() + 2,
        "one line per problem: {}",
        run.stderr
    );
    assert!(
        lines.last().unwrap().starts_with("hint: "),
        "{}",
        run.stderr
    );

    // Refused before sending: the builder's code and violations, in the same shape.
    let run = server.run(&["pub", "ace..bad", "{}", "-o", "yaml"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let doc = error_doc(&run);
    assert_eq!(doc["error"]["code"], "INVALID_ENVELOPE", "{doc}");
    assert_eq!(
        doc["error"]["details"]["violations"][0]["path"], "/subject",
        "{doc}"
    );
    let run = server.run(&["pub", "ace..bad", "{}"]);
    assert!(run.stderr.contains("\n  /subject: "), "{}", run.stderr);

    // Acks the server refuses: the answer on stdout, the refusal on stderr.
    server.ok(&["consumer", "add", "ACE_EVENTS", "w"]);
    server.ok(&["pub", EVENT, "{}"]);
    server.ok(&["pub", EVENT, "{}"]);
    server.ok(&[
        "consumer",
        "next",
        "ACE_EVENTS",
        "w",
        "--count",
        "2",
        "--no-ack",
    ]);
    let run = server.run(&[
        "consumer",
        "ack",
        "ACE_EVENTS",
        "w",
        "1",
        "42",
        "-o",
        "json",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let answer = json(&run);
    assert_eq!(
        (
            answer["done"][0].as_u64(),
            answer["failed"][0]["seq"].as_u64()
        ),
        (Some(1), Some(42))
    );
    let doc = error_doc(&run);
    assert_eq!(doc["error"]["details"]["failed"][0]["seq"], 42, "{doc}");
    let run = server.run(&["consumer", "ack", "ACE_EVENTS", "w", "2", "43"]);
    assert_eq!(run.stdout, "acked [2]\n");
    assert!(
        run.stderr.starts_with("error: NOT_FOUND: 1 of 2 "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("\n  43: "), "{}", run.stderr);

    // A proof past the signed checkpoint is not verified (exit 1), in the same shape.
    let run = server.run(&["ledger", "proof", "0", "--size", "100000", "-o", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(error_doc(&run)["error"]["code"], "NOT_VERIFIED");
}

#[test]
fn given_usage_errors_when_printed_under_json_then_the_code_is_usage_or_unreachable_and_exit_2() {
    let down = ace(
        &["--server", "127.0.0.1:9", "stream", "ls", "-o", "json"],
        b"",
    );
    assert_eq!(down.code, 2, "{}", down.stderr);
    let doc = error_doc(&down);
    assert_eq!(doc["error"]["code"], "UNREACHABLE", "{doc}");
    assert!(
        doc["error"]["hint"]
            .as_str()
            .unwrap()
            .contains("ace-comms serve")
    );

    // clap's refusals: JSON when the line asks for it, clap's text otherwise.
    let run = ace(&["stream", "info", "-o", "json"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = error_doc(&run);
    assert_eq!(doc["error"]["code"], "USAGE", "{doc}");
    assert_eq!(
        doc["error"]["message"], "the following required arguments were not provided: <NAME>",
        "{doc}"
    );
    let run = ace(&["stream", "info"], b"");
    assert_eq!(run.code, 2);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
    assert!(run.stderr.contains("Usage:"), "{}", run.stderr);
    let run = ace(&["stream", "ls", "-o", "xml"], b"");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("table, json, yaml"), "{}", run.stderr);
    let run = ace(&["stream", "ls", "--json", "-o", "yaml"], b"");
    assert_eq!(run.code, 2, "--json and -o yaml conflict: {}", run.stderr);
    assert_eq!(error_doc(&run)["error"]["code"], "USAGE");

    // The CLI's own refusal of an argument, under YAML.
    let run = ace(&["pub", EVENT, "{n:1}", "-o", "yaml"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    let doc = error_doc(&run);
    assert_eq!(doc["error"]["code"], "USAGE");
    assert!(
        doc["error"]["message"].as_str().unwrap().contains("--raw"),
        "{doc}"
    );
    let run = ace(
        &[
            "envelope",
            "convert",
            "/no/such.json",
            "--to",
            "json",
            "--json",
        ],
        b"",
    );
    assert_eq!(run.code, 2);
    assert!(
        error_doc(&run)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/no/such.json")
    );
}

#[test]
fn given_an_enforcing_server_when_refused_then_the_message_names_who_and_why_not_the_code_again() {
    let data = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let serving = start_in(&root, data.path(), &["--config", "examples/tour.yaml"]);
    let url = serving.url.clone();
    let run = |args: &[&str]| ace(&[&["--server", url.as_str()][..], args].concat(), b"");

    let anonymous = run(&["pub", EVENT, "{}", "-o", "json"]);
    assert_eq!(anonymous.code, 1, "{}", anonymous.stderr);
    let doc = error_doc(&anonymous);
    assert_eq!(doc["error"]["code"], "UNAUTHENTICATED", "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("no credentials"),
        "{doc}"
    );
    assert!(
        doc["error"]["hint"].as_str().unwrap().contains("--api-key"),
        "{doc}"
    );

    let drop_table = "ace.comms.http.ops.db.cmd.drop_table.v1";
    let agent = [
        "--api-key",
        "tour-agent-key",
        "pub",
        drop_table,
        r#"{"t":"users"}"#,
    ];
    let forbidden = run(&agent);
    assert_eq!(forbidden.code, 1, "{}", forbidden.stderr);
    let line = forbidden.stderr.lines().next().unwrap();
    assert!(
        line.starts_with("error: FORBIDDEN: planner-agent may not publish "),
        "{line}"
    );
    let doc = error_doc(&run(&[&agent[..], &["-o", "yaml"]].concat()));
    assert_eq!(doc["error"]["code"], "FORBIDDEN", "{doc}");
    assert!(
        !doc["error"]["details"]["reasons"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{doc}"
    );

    let (code, _, stderr) = serving.terminate();
    assert_eq!(code, 0, "{stderr}");
}

/// PyYAML reading YAML 1.2's core schema, which `-o yaml` writes: PyYAML knows YAML 1.1 only,
/// whose timestamps (`2026-01-31T…`) and boolean words (`yes`, `on`) 1.2 reads as strings; its
/// safe loader with those two resolvers replaced by 1.2's. Prints the document as JSON.
const YAML_1_2_TO_JSON: &str = r#"
import json, re, sys, yaml
class Core(yaml.SafeLoader):
    pass
Core.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers
            if tag not in ("tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Core.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
print(json.dumps(yaml.load(sys.stdin, Loader=Core)))
"#;

#[test]
fn given_yaml_output_when_pyyaml_reads_it_then_it_is_the_json_document() {
    let Some(python) = ace_testkit::python(
        "given_yaml_output_when_pyyaml_reads_it_then_it_is_the_json_document",
        &["yaml", "json"],
    ) else {
        return;
    };
    let server = Server::start();
    server.ok(&["pub", EVENT, r#"{"text":"a: b\n- c","n":1.5,"none":null}"#]);
    for args in [
        &["stream", "ls"][..],
        &["ledger", "entries", "--limit", "5"],
        &["contracts", "list"],
    ] {
        let as_yaml = server.ok(&[args, &["-o", "yaml"]].concat());
        let as_json: Value =
            serde_json::from_str(&server.ok(&[args, &["-o", "json"]].concat())).unwrap();
        let mut child = Command::new(&python)
            .args(["-c", YAML_1_2_TO_JSON])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(as_yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let read: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(read, as_json, "{args:?}: PyYAML reads another document");
    }
}

#[test]
fn given_a_session_when_written_and_read_in_each_format_then_versions_advance_and_races_are_refused()
 {
    let server = Server::start();
    let created = yaml(&server.run(&["session", "put", "s-1", r#"{"step":1}"#, "-o", "yaml"]));
    assert_eq!(
        (
            created["version"].as_u64(),
            created["data"]["step"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let read = same_in_json_and_yaml(&server, &["session", "get", "s-1"]);
    assert_eq!(read, created);
    let lines = server.ok(&[
        "session",
        "put",
        "s-1",
        r#"{"step":2}"#,
        "--if-version",
        "1",
    ]);
    assert!(lines.starts_with("id:       s-1\nversion:  2\n"), "{lines}");
    assert!(lines.ends_with("data:     {\"step\":2}\n"), "{lines}");

    // A blind overwrite and a stale version are refused, in the error shape.
    let blind = server.run(&["session", "put", "s-1", "{}", "-o", "json"]);
    assert_eq!(blind.code, 1, "{}", blind.stderr);
    assert_eq!(error_doc(&blind)["error"]["code"], "PRECONDITION_REQUIRED");
    let stale = server.run(&[
        "session",
        "put",
        "s-1",
        "{}",
        "--if-version",
        "1",
        "-o",
        "json",
    ]);
    assert_eq!(stale.code, 1, "{}", stale.stderr);
    let doc = error_doc(&stale);
    assert_eq!(doc["error"]["code"], "PRECONDITION_FAILED", "{doc}");
    assert_eq!(doc["error"]["details"]["current_version"], 2, "{doc}");
    let missing = server.run(&["session", "get", "nobody"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.starts_with("error: NOT_FOUND: "),
        "{}",
        missing.stderr
    );
    let bad = server.run(&["session", "put", "s-2", "{step:1}"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("not JSON"), "{}", bad.stderr);
}
