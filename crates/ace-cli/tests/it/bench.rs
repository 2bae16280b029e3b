//! `ace-comms bench` against the real server with its default limits: four HTTP publishers
//! with 64 publishes in flight each (256 at once, the server's per-address connection limit)
//! finish without a refusal because the client's pool holds one kept-alive connection per
//! publisher; the report names the server process found by its port, with its CPU per message
//! and peak memory, and labels durability from the stream's own `sync`. Against the local NATS
//! server too, `bench --nats` measures it and removes the JetStream stream it made. With
//! `--batch`, publishers send `publish_batch` frames and every message is still stored once.

use crate::serve::start;

#[test]
fn given_a_default_server_when_bench_runs_4_http_publishers_then_every_publish_succeeds_and_the_server_process_is_measured()
 {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let args = [
        "--server",
        server.url.as_str(),
        "bench",
        "--transport",
        "http",
        "--pubs",
        "4",
        "--count",
        "2000",
        "--durable",
        "--json",
    ];
    let run = crate::ace(&args, b"");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("one JSON line");
    assert_eq!(report["published"], 2000, "{report}");
    assert_eq!(report["delivered"], 2000, "{report}");
    assert_eq!(report["transport"], "http");
    assert_eq!(report["durability"], "ace-fsync-group-commit", "{report}");
    assert_eq!(report["durability_source"], "stream ACE_EVENTS");
    let process = &report["server_process"];
    assert_eq!(process["pid"], server.pid(), "{report}");
    assert_eq!(process["found_by"], format!("port {port}"));
    assert!(
        process["cpu_us_per_msg"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert!(process["peak_rss_kib"].as_u64().unwrap() > 0, "{report}");
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
}

#[test]
fn given_batches_when_bench_runs_over_websocket_then_every_message_is_published_and_delivered() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let args = [
        "--server",
        server.url.as_str(),
        "bench",
        "--batch",
        "64",
        "--in-flight",
        "2",
        "--count",
        "1000",
        "--durable",
        "--json",
    ];
    let run = crate::ace(&args, b"");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).expect("one JSON line");
    assert_eq!(report["batch"], 64, "{report}");
    assert_eq!(report["transport"], "ws", "{report}");
    // 1,000 is not a multiple of 64: the last publish_batch frame carries the remaining 40.
    assert_eq!(report["published"], 1000, "{report}");
    assert_eq!(report["delivered"], 1000, "{report}");
    let info = crate::ace(
        &[
            "--server",
            server.url.as_str(),
            "stream",
            "info",
            "ACE_EVENTS",
            "-o",
            "json",
        ],
        b"",
    );
    let info: serde_json::Value = serde_json::from_str(info.stdout.trim()).expect("stream info");
    assert_eq!(
        (&info["messages"], &info["counters"]["duplicates"]),
        (&serde_json::json!(1000), &serde_json::json!(0)),
        "every message stored once: {info}"
    );
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
}

#[test]
fn given_a_server_pid_that_is_not_running_when_bench_runs_then_the_report_says_why_it_was_not_measured()
 {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let args = [
        "--server",
        server.url.as_str(),
        "bench",
        "--count",
        "50",
        "--server-pid",
        "4294967295",
    ];
    let run = crate::ace(&args, b"");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("server process not measured: reading /proc/4294967295/stat"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("[live over ws; durability from no stream stores the subject]"),
        "{}",
        run.stdout
    );
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
}

#[test]
fn given_a_nats_server_when_bench_runs_durable_against_it_then_both_are_measured_and_its_stream_is_removed()
 {
    let test = "bench_nats";
    let Some(nats) = ace_testkit::nats_url(test) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let args = [
        "--server",
        server.url.as_str(),
        "bench",
        "--count",
        "200",
        "--durable",
        "--nats",
        nats.as_str(),
        "--nats-sync",
        "default",
        "--json",
    ];
    let run = crate::ace(&args, b"");
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let reports: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(reports.len(), 2, "{}", run.stdout);
    assert_eq!(reports[1]["published"], 200, "{}", reports[1]);
    // the JetStream stream made for the run is gone
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let left = runtime.block_on(async {
        let client = async_nats::connect(nats.as_str()).await.unwrap();
        async_nats::jetstream::new(client)
            .get_stream("ACE_BENCH")
            .await
            .is_ok()
    });
    assert!(!left, "bench left its stream ACE_BENCH on the NATS server");
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
}
