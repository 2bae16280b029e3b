//! The client verbs end to end: each test starts the real `ace-comms serve` on a free port with
//! a temporary data directory (the `serve` module's helper) and runs `pub`, `sub`, `req`,
//! `stream …`, `consumer …` and `agents ls` as separate processes with `--server`, checking
//! output and exit codes: 0 done, 1 refused by the server (code printed), 2 usage or unreachable.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use ace_envelope::{Envelope, Kind};

use crate::serve::{Serving, start};
use crate::{Run, ace};

/// A server for one test, stopped when the test ends (also when it fails).
pub(crate) struct Server {
    serving: Option<Serving>,
    pub(crate) url: String,
    /// Global flags every run carries after `--server URL` (`--tls-ca FILE`).
    flags: Vec<String>,
    _data: tempfile::TempDir,
}

impl Server {
    pub(crate) fn start() -> Self {
        Server::start_with(&[], &[])
    }

    /// A server started with `serve` flags `serving` (`--config FILE`), run with the global
    /// `flags`.
    pub(crate) fn start_with(serving: &[&str], flags: &[&str]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let serving = start(data.path(), serving);
        Server {
            url: serving.url.clone(),
            serving: Some(serving),
            flags: flags.iter().map(|&f| f.to_owned()).collect(),
            _data: data,
        }
    }

    /// `ace-comms --server URL FLAGS ARGS`.
    pub(crate) fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--server", self.url.as_str()];
        all.extend(self.flags.iter().map(String::as_str));
        all.extend_from_slice(args);
        ace(&all, b"")
    }

    /// Like [`Server::run`], and the run must exit 0.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let run = self.run(args);
        assert_eq!(
            run.code, 0,
            "{args:?}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        run.stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(serving) = self.serving.take() {
            let _ = serving.terminate();
        }
    }
}

pub(crate) const EVENT: &str = "ace.comms.a2a.agent.planner.evt.task_done.v1";

#[test]
fn given_a_server_when_publishing_then_the_stream_and_sequence_are_printed() {
    let server = Server::start();
    let out = server.ok(&["pub", EVENT, r#"{"task":"t1"}"#, "--name", "TASK_DONE"]);
    assert!(out.starts_with("published id="), "{out}");
    assert!(
        out.contains("stream=ACE_EVENTS seq=1 duplicate=false"),
        "{out}"
    );

    let keyed = [
        "pub",
        EVENT,
        "plain text",
        "--raw",
        "--idempotency-key",
        "k1",
        "--json",
    ];
    let first: serde_json::Value = serde_json::from_str(&server.ok(&keyed)).unwrap();
    assert_eq!(first["seq"], 2, "{first}");
    let out = server.ok(&keyed);
    let again: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(again["duplicate"], true, "{out}");
    assert_eq!(again["seq"], 2, "the original sequence: {out}");

    let out = server.ok(&[
        "pub",
        EVENT,
        "--count",
        "5",
        "--priority",
        "P1",
        "--header",
        "tenant=acme",
    ]);
    assert!(
        out.starts_with("published 5 messages (0 duplicates, 0 held for approval)"),
        "{out}"
    );
    assert!(out.contains("seq=7"), "{out}");
}

#[test]
fn given_a_payload_breaking_its_contract_when_published_once_or_in_batches_then_exit_1_with_the_code()
 {
    let server = Server::start();
    let experience = "ace.comms.a2a.agent.planner.evt.experience.v1";
    let bad = [
        experience,
        r#"{"not":"an experience"}"#,
        "--schema",
        "mlt.experience@1.0.0",
    ];
    let once = server.run(&[&["pub"][..], &bad].concat());
    assert_eq!(once.code, 1, "{}", once.stderr);
    let code = once
        .stderr
        .split(':')
        .nth(1)
        .expect("error: CODE: message")
        .trim();
    assert!(
        code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
        "{}",
        once.stderr
    );
    let mut batched = [&["pub"][..], &bad].concat();
    batched.extend(["--count", "150"]);
    let run = server.run(&batched);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(&format!("error: {code}: ")),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "", "nothing reported as published");
}

#[test]
fn given_streams_when_add_ls_info_rm_then_each_verb_shows_the_change() {
    let server = Server::start();
    let out = server.ok(&[
        "stream",
        "add",
        "ORDERS",
        "--subjects",
        "ace.comms.service.orders.>,ace.comms.service.refunds.>",
        "--retention",
        "workqueue",
        "--max-msgs",
        "100",
        "--discard",
        "new",
        "--max-age",
        "1h",
        "--dedup-window",
        "30s",
        "--sync",
        "never",
    ]);
    assert!(out.contains("retention:"), "{out}");
    assert!(out.contains("workqueue"), "{out}");

    let table = server.ok(&["stream", "ls"]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("NAME") && header.contains("MESSAGES"),
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with("ORDERS"))
        .expect("ORDERS listed");
    assert!(
        row.contains("ace.comms.service.orders.>,ace.comms.service.refunds.>"),
        "{row}"
    );

    let json = server.ok(&["stream", "info", "ORDERS", "--json"]);
    let info: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(info["config"]["max_msgs"], 100, "{json}");
    assert_eq!(info["config"]["max_age"], 3_600_000, "{json}");
    assert_eq!(info["config"]["dedup_window"], 30_000, "{json}");
    assert_eq!(info["config"]["discard"], "new", "{json}");

    let out = server.ok(&["stream", "rm", "ORDERS", "--force"]);
    assert_eq!(out.trim(), "stream ORDERS deleted");
    let listed: serde_json::Value =
        serde_json::from_str(&server.ok(&["stream", "ls", "--json"])).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["config"]["name"].as_str())
        .collect();
    assert!(!names.contains(&"ORDERS"), "{names:?}");
    assert!(names.contains(&"ACE_EVENTS"), "{names:?}");
}

#[test]
fn given_a_consumer_when_next_without_ack_then_ack_by_seq_then_ls_counts_the_ack() {
    let server = Server::start();
    server.ok(&["pub", EVENT, r#"{"n":1}"#, "--name", "FIRST"]);
    server.ok(&["pub", EVENT, r#"{"n":2}"#, "--name", "SECOND"]);
    let out = server.ok(&[
        "consumer",
        "add",
        "ACE_EVENTS",
        "worker",
        "--ack-wait",
        "30s",
        "--max-deliver",
        "3",
        "--backoff",
        "1s,5s",
        "--deliver",
        "all",
        "--ordering",
        "per_key",
    ]);
    assert_eq!(out.trim(), "consumer worker added to stream ACE_EVENTS");

    let out = server.ok(&["consumer", "next", "ACE_EVENTS", "worker", "--no-ack"]);
    assert!(
        out.starts_with("[seq 1 delivery 1]") && out.contains("FIRST"),
        "{out}"
    );
    let out = server.ok(&["consumer", "ack", "ACE_EVENTS", "worker", "1"]);
    assert_eq!(out.trim(), "acked [1]");

    let out = server.ok(&[
        "consumer",
        "next",
        "ACE_EVENTS",
        "worker",
        "--count",
        "5",
        "--json",
    ]);
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["seq"], 2, "{out}");
    assert_eq!(line["envelope"]["name"], "SECOND", "{out}");

    let table = server.ok(&["consumer", "ls", "ACE_EVENTS"]);
    let row = table
        .lines()
        .find(|l| l.starts_with("worker"))
        .expect("worker listed");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cells, ["worker", "-", "2", "0", "2", "2", "0"], "{table}");
    let out = server.ok(&["consumer", "next", "ACE_EVENTS", "worker"]);
    assert_eq!(out.trim(), "no message pending");
}

#[test]
fn given_unknown_names_or_a_bad_subject_when_run_then_the_code_is_printed_and_exit_1() {
    let server = Server::start();
    let run = server.run(&["stream", "info", "NOPE"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .starts_with("error: STREAM_NOT_FOUND: stream `NOPE`"),
        "{}",
        run.stderr
    );
    let run = server.run(&["consumer", "next", "ACE_EVENTS", "nobody"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NOT_FOUND"), "{}", run.stderr);
    let run = server.run(&["pub", "not a subject", "{}"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("INVALID_ENVELOPE") && run.stderr.contains("/subject"),
        "{}",
        run.stderr
    );
    let run = server.run(&["stream", "add", "BAD NAME", "--subjects", "ace.comms.x.>"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: "), "{}", run.stderr);
}

#[test]
fn given_no_server_when_a_client_verb_runs_then_exit_2_naming_the_server() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let run = ace(&["--server", &url, "stream", "ls"], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&url["http://".len()..]),
        "{}",
        run.stderr
    );
}

#[test]
fn given_ace_server_in_the_environment_when_no_flag_then_it_is_the_server() {
    let server = Server::start();
    let output = Command::new(env!("CARGO_BIN_EXE_ace-comms"))
        .args(["stream", "info", "ACE_EVENTS", "--json"])
        .env("ACE_SERVER", &server.url)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let info: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(info["config"]["name"], "ACE_EVENTS");
}

#[test]
fn given_rm_without_force_and_no_terminal_when_run_then_exit_2_and_the_stream_stays() {
    let server = Server::start();
    let run = server.run(&["stream", "rm", "ACE_EVENTS"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--force"), "{}", run.stderr);
    server.ok(&["stream", "info", "ACE_EVENTS"]);
}

#[test]
fn given_bad_flag_values_when_parsed_then_clap_exits_2_naming_the_value() {
    for (args, named) in [
        (
            &[
                "stream",
                "add",
                "X",
                "--subjects",
                "a.>",
                "--retention",
                "forever",
            ][..],
            "forever",
        ),
        (
            &[
                "stream",
                "add",
                "X",
                "--subjects",
                "a.>",
                "--max-age",
                "soon",
            ][..],
            "soon",
        ),
        (
            &["consumer", "add", "S", "C", "--deliver", "by_seq:x"][..],
            "by_seq:x",
        ),
        (&["pub", EVENT, "--count", "0"][..], "0"),
        (&["sub", "--queue", "q"][..], "PATTERN"),
    ] {
        let run = ace(args, b"");
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(named), "{args:?}: {}", run.stderr);
    }
}

#[test]
fn given_every_client_verb_when_asked_for_help_then_it_ends_with_examples() {
    let verbs: [&[&str]; 17] = [
        &["pub"],
        &["sub"],
        &["req"],
        &["stream", "add"],
        &["stream", "ls"],
        &["stream", "info"],
        &["stream", "rm"],
        &["consumer", "add"],
        &["consumer", "ls"],
        &["consumer", "next"],
        &["consumer", "ack"],
        &["agents", "ls"],
        &["approvals", "ls"],
        &["approvals", "approve"],
        &["approvals", "reject"],
        &["session", "get"],
        &["session", "put"],
    ];
    for verb in verbs {
        let mut args = verb.to_vec();
        args.push("--help");
        let run = ace(&args, b"");
        assert_eq!(run.code, 0, "{args:?}");
        assert!(
            run.stdout.contains("Examples:\n  ace-comms "),
            "{args:?}:\n{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("--server <URL>"),
            "{args:?}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn given_a_live_subscription_when_messages_are_published_then_sub_prints_them_and_exits_after_count()
 {
    let server = Server::start();
    let mut sub = Command::new(env!("CARGO_BIN_EXE_ace-comms"))
        .args([
            "--server",
            &server.url,
            "sub",
            "ace.comms.a2a.>",
            "--count",
            "1",
            "--json",
        ])
        .args(["--timeout", "30s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The subscription starts asynchronously: publish until the subscriber has its message.
    let mut stdout = BufReader::new(sub.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line
    });
    for _ in 0..100 {
        if reader.is_finished() {
            break;
        }
        server.ok(&["pub", EVENT, r#"{"live":true}"#, "--name", "LIVE"]);
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = reader.join().unwrap();
    let message: serde_json::Value = serde_json::from_str(&line).expect("one JSON line");
    assert_eq!(message["envelope"]["name"], "LIVE", "{line}");
    assert_eq!(message["envelope"]["payload"]["live"], true, "{line}");
    let status = sub.wait().unwrap();
    assert_eq!(status.code(), Some(0), "sub exits 0 after --count 1");
}

#[test]
fn given_a_durable_consumer_when_sub_acks_its_deliveries_then_the_consumer_counts_them_acked() {
    let server = Server::start();
    server.ok(&["pub", EVENT, r#"{"n":1}"#, "--name", "ONE"]);
    server.ok(&["pub", EVENT, r#"{"n":2}"#, "--name", "TWO"]);
    server.ok(&["consumer", "add", "ACE_EVENTS", "pusher"]);
    let out = server.ok(&[
        "sub",
        "--stream",
        "ACE_EVENTS",
        "--consumer",
        "pusher",
        "--ack",
        "--count",
        "2",
        "--timeout",
        "30s",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("[seq 1 delivery 1] ") && lines[0].contains("ONE"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("[seq 2 delivery 1] ") && lines[1].contains("TWO"),
        "{out}"
    );
    let json = server.ok(&["consumer", "ls", "ACE_EVENTS", "--json"]);
    let consumers: serde_json::Value = serde_json::from_str(&json).unwrap();
    let pusher = consumers
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["config"]["name"] == "pusher")
        .unwrap();
    assert_eq!(pusher["counters"]["acked"], 2, "{json}");
}

#[test]
fn given_nothing_to_receive_when_sub_times_out_then_exit_0_and_unknown_consumers_exit_1() {
    let server = Server::start();
    let out = server.ok(&["sub", "ace.comms.a2a.>", "--timeout", "300ms"]);
    assert_eq!(out, "");
    let run = server.run(&[
        "sub",
        "--stream",
        "ACE_EVENTS",
        "--consumer",
        "nobody",
        "--timeout",
        "5s",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("NOT_FOUND"), "{}", run.stderr);
}

/// Answers every query on `pattern` once with `{"answer": <the query's payload>}`, in a
/// thread with its own runtime; returns when the subscription is open.
fn responder(url: &str, pattern: &str) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (url, pattern) = (url.to_owned(), pattern.to_owned());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let client = ace_client::Client::new(&url).unwrap();
            let connection = client.connect_ws().await.unwrap();
            let mut queries = connection.subscribe(&pattern, None).await.unwrap();
            ready_tx.send(()).unwrap();
            while let Some(Ok(query)) = queries.next().await {
                let inbox = query.envelope.headers[ace_client::REPLY_TO_HEADER].clone();
                let reply = Envelope::builder(Kind::Reply, inbox)
                    .payload_json(serde_json::json!({"answer": query.envelope.payload}))
                    .correlation_id(query.envelope.id.to_string())
                    .build()
                    .unwrap();
                connection.publish(&reply).await.unwrap();
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the responder subscribed");
}

#[test]
fn given_a_responder_when_req_then_its_reply_prints_and_without_one_timeout_exits_1() {
    let server = Server::start();
    let query = "ace.comms.http.tool.search.qry.v1";
    let run = server.run(&["req", query, r#"{"q":"rust"}"#, "--timeout", "300ms"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.starts_with("error: TIMEOUT: "), "{}", run.stderr);

    responder(&server.url, "ace.comms.http.tool.search.qry.>");
    let out = server.ok(&[
        "req",
        query,
        r#"{"q":"rust"}"#,
        "--timeout",
        "10s",
        "--json",
    ]);
    let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reply["kind"], "reply", "{out}");
    assert_eq!(reply["payload"]["answer"]["q"], "rust", "{out}");
    let out = server.ok(&["req", query, "plain", "--raw", "--timeout", "10s"]);
    assert!(out.contains(r#"{"answer":"plain"}"#), "{out}");
}

#[test]
fn given_cli_habits_when_misused_then_one_clean_line_with_a_hint() {
    let server = Server::start();
    // a payload that is not JSON is refused before anything is sent, unless --raw
    let run = server.run(&["pub", EVENT, "{n:1}"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--raw"), "{}", run.stderr);
    // `host:port` needs no scheme
    let bare = server.url.trim_start_matches("http://");
    let run = ace(&["--server", bare, "pub", EVENT, r#"{"n":1}"#], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    // a refusal names its code once
    let run = server.run(&["stream", "info", "NO_SUCH_STREAM"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let line = run.stderr.lines().next().unwrap_or_default().to_owned();
    assert!(line.starts_with("error: STREAM_NOT_FOUND: "), "{line}");
    assert!(
        !line.to_lowercase().contains("not found: stream not found"),
        "{line}"
    );
    // an unreachable server says what to check
    let down = ace(&["--server", "127.0.0.1:9", "stream", "ls"], b"");
    assert_eq!(down.code, 2, "{}", down.stderr);
    assert!(
        down.stderr.contains("could not be reached"),
        "{}",
        down.stderr
    );
    assert!(down.stderr.contains("ace-comms serve"), "{}", down.stderr);
}

#[test]
fn given_a_heartbeating_agent_when_agents_ls_then_it_is_listed_with_its_capabilities() {
    let server = Server::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = ace_client::Client::new(&server.url).unwrap();
    let heartbeat = ace_client::Heartbeat {
        agent_type: Some("planner".to_owned()),
        capabilities: vec!["plan".to_owned(), "search".to_owned()],
        clearance: Some(2),
        ttl_ms: Some(60_000),
        meta: None,
    };
    runtime
        .block_on(client.heartbeat("planner-1", &heartbeat))
        .unwrap();
    let table = server.ok(&["agents", "ls"]);
    assert!(table.starts_with("ID"), "{table}");
    let row = table
        .lines()
        .find(|l| l.starts_with("planner-1"))
        .expect("listed");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..4],
        ["planner-1", "planner", "plan,search", "2"],
        "{table}"
    );
    let json = server.ok(&["agents", "ls", "--json"]);
    let agents: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(agents[0]["id"], "planner-1", "{json}");
}
