//! `/metrics` read by the official Python parser (`prometheus_client`), after traffic of every
//! kind over real sockets: each family of the specification is there with its labels and the
//! value the traffic implies. Then `deploy/check.py` holds the Grafana dashboard and the alert
//! rules of `deploy/` to a real scrape, so their metric names cannot drift from the code.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ace_envelope::{Envelope, Kind, to_cloudevent_json};
use serde_json::{Value, json};

use crate::ws::{ask, assert_ok, connect};
use crate::{EVENT_SUBJECT, Server, envelope_on, event};

/// Captured by `ACE_EVENTS`; held by the EHI gate when scored 0.95 for `delete`.
const RISKY: &str = "ace.comms.http.ops.db.evt.dropped.v1";

/// A server whose ledger also writes checkpoints to a file witness (outside `data`), so the
/// ledger's witness series are in the scrape.
async fn start(data: &Path, outside: &Path) -> Server {
    let witness = outside.join("witness.jsonl").display().to_string();
    Server::start_with(data, |c| c.ledger.witness.file = witness).await
}

/// One sample as the Python parser read it.
#[derive(Debug, Clone)]
struct Sample {
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape as read by `prometheus_client.parser`: the type of each family by sample name,
/// and the samples by name.
struct Parsed {
    types: BTreeMap<String, String>,
    samples: BTreeMap<String, Vec<Sample>>,
}

impl Parsed {
    /// The value of `name` with exactly `labels`; panics naming what is there otherwise.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let samples = self.samples(name);
        samples
            .iter()
            .find(|s| s.labels == want)
            .unwrap_or_else(|| panic!("{name}{want:?} not in {samples:?}"))
            .value
    }

    fn samples(&self, name: &str) -> &[Sample] {
        self.samples
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` in the scrape"))
    }

    /// Asserts the family type of sample `name` and that every sample has exactly `labels`.
    fn family(&self, name: &str, kind: &str, labels: &[&str]) {
        assert_eq!(
            self.types.get(name).map(String::as_str),
            Some(kind),
            "{name}"
        );
        for sample in self.samples(name) {
            let keys: Vec<&str> = sample.labels.keys().map(String::as_str).collect();
            assert_eq!(keys, labels, "labels of {name}");
        }
    }

    /// The sum of the values of `name`.
    fn sum(&self, name: &str) -> f64 {
        self.samples(name).iter().map(|s| s.value).sum()
    }
}

/// What the official parser makes of `text`; `None` (skipped, loudly) without the checker.
fn parse(test: &str, text: &str, dir: &Path) -> Option<Parsed> {
    let python = ace_testkit::python(test, &["prometheus_client"])?;
    let file = dir.join("scrape.txt");
    std::fs::write(&file, text).unwrap();
    let program = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        out = [[f.type, s.name, s.labels, s.value]\n\
               for f in text_string_to_metric_families(open(sys.argv[1]).read())\n\
               for s in f.samples]\n\
        print(json.dumps(out, allow_nan=False))";
    let out = std::process::Command::new(python)
        .args(["-c", program])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "prometheus_client refused the scrape:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, String, BTreeMap<String, String>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    let mut parsed = Parsed {
        types: BTreeMap::new(),
        samples: BTreeMap::new(),
    };
    for (kind, name, labels, value) in rows {
        parsed.types.insert(name.clone(), kind);
        let sample = Sample { labels, value };
        parsed.samples.entry(name).or_default().push(sample);
    }
    Some(parsed)
}

/// A risky envelope, held for approval; `ask` also sets `requires_approval`, `ttl_ms` a
/// lifetime (the approval expires with it).
fn risky(asks: bool, ttl_ms: Option<u64>) -> Value {
    let mut envelope = envelope_on(RISKY, json!({"table": "users"}));
    envelope["governance"] = json!({"ehi_score": 0.95, "requires_approval": asks});
    envelope["headers"] = json!({"ace-action": "delete"});
    if let Some(ttl) = ttl_ms {
        envelope["ttl_ms"] = json!(ttl);
    }
    envelope
}

/// Publishes `envelope`; answers the approval id holding it.
async fn hold(server: &Server, envelope: &Value) -> String {
    let (status, pending) = server.post("/api/v1/messages", envelope).await;
    assert_eq!(
        (status, &pending["status"]),
        (202, &json!("pending_approval"))
    );
    pending["approval_id"].as_str().unwrap().to_owned()
}

async fn decide(server: &Server, approval_id: &str, decision: &str) {
    let path = format!("/api/v1/approval/{approval_id}");
    let (status, body) = server.post(&path, &json!({ "decision": decision })).await;
    assert_eq!(status, 200, "{body}");
}

/// Publishes over HTTP (two events, one again as a duplicate, one command), a structured
/// CloudEvent and two events over WebSocket; answers how many messages `ACE_EVENTS` stored.
async fn publish_everywhere(server: &Server) -> u64 {
    let first = event(1);
    for envelope in [&first, &first, &event(2)] {
        assert_eq!(server.post("/api/v1/messages", envelope).await.0, 202);
    }
    let command = Envelope::builder(Kind::Command, "ace.comms.http.service.kpi.cmd.v1")
        .payload_json(json!({"do": "recompute"}))
        .build()
        .unwrap();
    let command = serde_json::to_value(command).unwrap();
    assert_eq!(server.post("/api/v1/messages", &command).await.0, 202);
    let ce = Envelope::builder(Kind::Event, EVENT_SUBJECT)
        .payload_json(json!({"via": "cloudevents"}))
        .build()
        .unwrap();
    let ce = to_cloudevent_json(&ce).unwrap();
    let (status, body) = server
        .post_raw("/api/v1/messages", "application/cloudevents+json", ce)
        .await;
    assert_eq!(status, 202, "{body}");
    let mut socket = connect(server).await;
    for id in ["w1", "w2"] {
        let frame = json!({"type": "publish", "id": id, "envelope": event(3)});
        assert_ok(&ask(&mut socket, frame).await, id);
    }
    5 // 2 HTTP events (the duplicate is not stored again), the CloudEvent, 2 over WebSocket
}

#[tokio::test]
async fn given_traffic_of_every_kind_when_scraped_then_the_official_parser_reads_each_family_with_its_labels_and_values()
 {
    let test = "metrics_families";
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start(dir.path(), outside.path()).await;
    let stored = publish_everywhere(&server).await;

    // A consumer: two fetched, the first acked, the second nak'ed and fetched again.
    let base = "/api/v1/streams/ACE_EVENTS/consumers";
    let (status, _) = server.post(base, &json!({"name": "reader"})).await;
    assert_eq!(status, 201);
    assert_eq!(server.fetch_seqs("ACE_EVENTS", "reader", 2).await, [1, 2]);
    server
        .post(&format!("{base}/reader/ack"), &json!({"seqs": [1]}))
        .await;
    let nak = json!({"seqs": [2], "delay_ms": 0});
    server.post(&format!("{base}/reader/nak"), &nak).await;
    let fetch = format!("{base}/reader/fetch");
    let (_, again) = server
        .post(&fetch, &json!({"batch": 1, "expires_ms": 500}))
        .await;
    assert_eq!(
        (
            &again["messages"][0]["seq"],
            &again["messages"][0]["delivery"]
        ),
        (&json!(2), &json!(2)),
        "{again}"
    );

    // Approvals: one approved (score and the sender's request), one rejected, one expired.
    let approved = hold(&server, &risky(true, None)).await;
    decide(&server, &approved, "approve").await;
    let rejected = hold(&server, &risky(false, None)).await;
    decide(&server, &rejected, "reject").await;
    hold(&server, &risky(false, Some(300))).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, expired) = server.get("/api/v1/approvals?status=expired").await;
    assert_eq!(
        expired["approvals"].as_array().unwrap().len(),
        1,
        "{expired}"
    );

    // Presence and sessions.
    for (id, beat) in [
        ("bot-1", json!({"type": "worker"})),
        ("bot-2", json!({"type": "worker"})),
        ("bot-3", json!({})),
    ] {
        let path = format!("/api/v1/agents/{id}/heartbeat");
        assert_eq!(server.post(&path, &beat).await.0, 200);
    }
    let session = json!({"data": {"turn": 1}});
    let put = server.http.put(server.url("/api/v1/sessions/chat-1"));
    assert_eq!(put.json(&session).send().await.unwrap().status(), 201);

    let text = server.metrics().await;
    let Some(scrape) = parse(test, &text, outside.path()) else {
        return server.stop().await;
    };

    let messages = "ace_comms_messages_total";
    scrape.family(messages, "counter", &["protocol", "type"]);
    for (protocol, kind, count) in [
        ("http", "event", 3.0),
        ("http", "command", 1.0),
        ("cloudevents", "event", 1.0),
        ("ws", "event", 2.0),
    ] {
        let labels = [("protocol", protocol), ("type", kind)];
        assert_eq!(scrape.value(messages, &labels), count, "{labels:?}");
    }
    assert_eq!(
        scrape.sum(messages),
        7.0,
        "nothing else counted, holds neither"
    );
    assert_eq!(
        scrape.sum("ace_comms_messages_published_total"),
        7.0,
        "the same messages by stream"
    );

    scrape.family("ace_comms_active_agents", "gauge", &["type"]);
    assert_eq!(
        scrape.value("ace_comms_active_agents", &[("type", "worker")]),
        2.0
    );
    assert_eq!(
        scrape.value("ace_comms_active_agents", &[("type", "none")]),
        1.0
    );
    scrape.family("ace_comms_active_sessions", "gauge", &[]);
    assert_eq!(scrape.value("ace_comms_active_sessions", &[]), 1.0);

    let approvals = "ace_comms_hitl_approvals_total";
    scrape.family(approvals, "counter", &["decision"]);
    for decision in ["approved", "rejected", "expired"] {
        assert_eq!(scrape.value(approvals, &[("decision", decision)]), 1.0);
    }
    assert_eq!(scrape.value("ace_comms_hitl_requests_total", &[]), 3.0);
    let rules = "ace_comms_ehi_triggers_total";
    scrape.family(rules, "counter", &["rule"]);
    assert_eq!(scrape.value(rules, &[("rule", "ehi_threshold")]), 3.0);
    assert_eq!(scrape.value(rules, &[("rule", "requires_approval")]), 1.0);
    assert_eq!(
        scrape.value(rules, &[("rule", "policy")]),
        0.0,
        "no Rego here"
    );

    // ACE_EVENTS: the stored messages, then the approved one released into it.
    let (_, info) = server.get("/api/v1/streams/ACE_EVENTS").await;
    let last = info["last_seq"].as_f64().unwrap();
    assert_eq!(last, (stored + 1) as f64, "{info}");
    let events = [("stream", "ACE_EVENTS")];
    for (name, want) in [
        ("ace_comms_stream_messages", last),
        ("ace_comms_stream_first_seq", 1.0),
        ("ace_comms_stream_last_seq", last),
        ("ace_comms_messages_discarded_total", 0.0),
    ] {
        scrape.family(
            name,
            if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            },
            &["stream"],
        );
        assert_eq!(scrape.value(name, &events), want, "{name}");
    }
    let bytes = scrape.value("ace_comms_stream_bytes", &events);
    assert!(bytes > 100.0 * last, "{bytes} bytes for {last} envelopes");

    let reader = [("consumer", "reader"), ("stream", "ACE_EVENTS")];
    for (name, kind, want) in [
        // Lag: every message but the acked first is unsettled.
        ("ace_comms_consumer_pending", "gauge", last - 1.0),
        ("ace_comms_consumer_ack_pending", "gauge", 1.0),
        ("ace_comms_consumer_waiting", "gauge", last - 2.0),
        ("ace_comms_consumer_delivered_total", "counter", 2.0),
        ("ace_comms_consumer_redelivered_total", "counter", 1.0),
        ("ace_comms_consumer_dead_lettered_total", "counter", 0.0),
        ("ace_comms_consumer_expired_total", "counter", 0.0),
    ] {
        scrape.family(name, kind, &["consumer", "stream"]);
        assert_eq!(scrape.value(name, &reader), want, "{name}");
    }
    for what in ["streams", "consumers"] {
        assert_eq!(
            scrape.value("ace_comms_metrics_skipped", &[("what", what)]),
            0.0
        );
    }

    for (name, kind) in [
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_cpu_seconds_total", "counter"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        scrape.family(name, kind, &[]);
    }
    let value = |name: &str| scrape.value(name, &[]);
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
    assert!(value("process_cpu_seconds_total") > 0.0);
    let fds = value("process_open_fds");
    assert!(fds > 3.0 && fds <= value("process_max_fds"), "{fds}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let start = value("process_start_time_seconds");
    assert!(
        start <= now + 1.0 && start > now - 3_600.0,
        "{start} vs {now}"
    );

    let latency = "ace_comms_message_latency_seconds_count";
    assert_eq!(scrape.types[latency], "histogram");
    assert_eq!(value(latency), 7.0);
    server.stop().await;
}

#[tokio::test]
async fn given_a_real_scrape_when_the_dashboard_and_alert_rules_are_checked_then_every_metric_and_label_they_use_exists()
 {
    let test = "deploy_check";
    let Some(python) = ace_testkit::python(test, &["prometheus_client", "promql_parser", "yaml"])
    else {
        return;
    };
    let (dir, outside) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let server = start(dir.path(), outside.path()).await;
    assert_eq!(server.post("/api/v1/messages", &event(1)).await.0, 202);
    let beat = json!({"type": "worker"});
    assert_eq!(
        server.post("/api/v1/agents/a1/heartbeat", &beat).await.0,
        200
    );
    assert_eq!(server.get("/api/v1/streams/NOPE").await.0, 404);
    let scrape = outside.path().join("scrape.txt");
    std::fs::write(&scrape, server.metrics().await).unwrap();
    server.stop().await;

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let checked = |scrape: &Path| {
        std::process::Command::new(&python)
            .arg(root.join("deploy/check.py"))
            .arg(scrape)
            .output()
            .unwrap()
    };
    assert_ran("deploy/check.py", &checked(&scrape));

    promtool(&root, &scrape);

    // The check bites: a scrape without the consumer families fails it, naming one.
    let text = std::fs::read_to_string(&scrape).unwrap();
    let without: String = text
        .lines()
        .filter(|l| !l.contains("ace_comms_consumer_pending"))
        .map(|l| format!("{l}\n"))
        .collect();
    let cut = outside.path().join("cut.txt");
    std::fs::write(&cut, without).unwrap();
    let out = checked(&cut);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("`ace_comms_consumer_pending` is in no scrape of the server"),
        "{said}"
    );
}

/// Where `promtool` (Prometheus's own checker) is installed, it lints the scrape
/// (`check metrics`) and loads the rule file (`check rules`); elsewhere `deploy/check.py` above
/// is the check, and this says so.
fn promtool(root: &Path, scrape: &Path) {
    let Ok(version) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
    else {
        eprintln!(
            "NOTE deploy_check: no promtool on PATH; the rules were checked by deploy/check.py"
        );
        return;
    };
    assert!(version.status.success());
    let rules = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(root.join("deploy/prometheus/alerts.yml"))
        .output()
        .unwrap();
    assert_ran("promtool check rules", &rules);
    let lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(scrape).unwrap())
        .output()
        .unwrap();
    assert_ran("promtool check metrics", &lint);
}

/// Asserts that `out` is a success, showing what `what` printed otherwise.
fn assert_ran(what: &str, out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{what} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
