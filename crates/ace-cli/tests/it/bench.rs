//! `ace-comms bench` against the real server with its default limits: four HTTP publishers
//! with 64 publishes in flight each (256 at once, the server's per-address connection limit)
//! finish without a refusal because the client's pool holds one kept-alive connection per
//! publisher; the report names the server process found by its port, with its CPU per message
//! and peak memory, and labels durability from the stream's own `sync`.

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
