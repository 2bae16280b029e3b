//! `ace-comms stream repair` against the real binary: a stream damaged while the server is
//! stopped is dry-run offline (the report as lines and as JSON, no byte of the stream changed),
//! repaired with `--accept-loss`, and served again by the next `serve` — `ok`, taking publishes
//! above its high-water mark, the repair a `stream_repaired` ledger entry naming the operator,
//! `ledger verify` still passing. While a server runs, the offline repair is refused naming its
//! pid, and so is a second `serve` on the same data directory.

use std::path::{Path, PathBuf};

use ace_testkit::{assert_same_files, files};
use serde_json::Value;

use crate::client::EVENT;
use crate::serve::{Serving, start};
use crate::{Run, ace};

const STREAM: &str = "ACE_EVENTS";
const SEGMENT: &str = "00000000000000000001.log";

fn stream_dir(data: &Path) -> PathBuf {
    data.join("streams").join(STREAM)
}

/// `ace-comms --server URL ARGS`, which must exit 0.
fn online(serving: &Serving, args: &[&str]) -> String {
    let run = ace(
        &[&["--server", serving.url.as_str()][..], args].concat(),
        b"",
    );
    assert_eq!(run.code, 0, "{args:?}: {}{}", run.stdout, run.stderr);
    run.stdout
}

/// `ace-comms stream repair ACE_EVENTS --data DATA EXTRA`.
fn offline(data: &Path, extra: &[&str]) -> Run {
    let data = data.to_str().unwrap();
    ace(
        &[&["stream", "repair", STREAM, "--data", data][..], extra].concat(),
        b"",
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn stop(serving: Serving) {
    let (code, _, stderr) = serving.terminate();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn given_a_stream_damaged_with_the_server_stopped_when_repaired_offline_then_the_next_serve_has_it_ok_with_the_repair_in_a_verified_ledger()
 {
    let data = tempfile::tempdir().unwrap();
    let serving = start(data.path(), &[]);
    online(&serving, &["consumer", "add", STREAM, "worker"]);
    online(&serving, &["pub", EVENT, r#"{"n":1}"#, "--count", "20"]);
    online(
        &serving,
        &[
            "consumer", "next", STREAM, "worker", "--count", "20", "--ack",
        ],
    );
    stop(serving);
    let segment = stream_dir(data.path()).join(SEGMENT);
    let mut bytes = std::fs::read(&segment).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&segment, bytes).unwrap();

    let before = files(&stream_dir(data.path()));
    let dry = offline(data.path(), &[]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert_same_files(&before, &files(&stream_dir(data.path())));
    for line in [
        "state:",
        "read_only",
        SEGMENT,
        "intact:       1 to",
        "lost:",
        "to 20",
    ] {
        assert!(dry.stdout.contains(line), "no `{line}` in\n{}", dry.stdout);
    }
    assert!(
        dry.stdout.contains("worker (ack floor 20)"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("dry run, nothing changed"),
        "{}",
        dry.stdout
    );
    let report = json(&offline(data.path(), &["--json"]).stdout);
    assert_eq!(
        (&report["dry_run"], &report["high_water"]),
        (&Value::from(true), &Value::from(20))
    );
    let last_intact = report["intact"]["last"].as_u64().unwrap();
    assert!(last_intact < 20, "{report}");
    assert_eq!(report["lost"]["first"], last_intact + 1);

    let done = offline(data.path(), &["--accept-loss", "--json"]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let done = json(&done.stdout);
    assert_eq!(
        (&done["repaired"], &done["state_after"]),
        (&Value::from(true), &Value::from("ok"))
    );
    let moved = done["moved_to"].as_str().unwrap();
    assert!(
        stream_dir(data.path())
            .join(moved)
            .join("REPAIR.txt")
            .is_file(),
        "{done}"
    );

    let serving = start(data.path(), &[]);
    let info = json(&online(&serving, &["stream", "info", STREAM, "--json"]));
    assert_eq!(
        (&info["state"], &info["high_water"]),
        (&Value::from("ok"), &Value::from(20))
    );
    let published = online(&serving, &["pub", EVENT, r#"{"n":21}"#]);
    assert!(published.contains("seq=21"), "{published}");
    let entries = json(&online(
        &serving,
        &["ledger", "entries", "--kind", "stream_repaired", "--json"],
    ));
    let entries = entries["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["subject"], STREAM);
    assert!(
        entries[0]["actor"].as_str().unwrap().starts_with("local:"),
        "{}",
        entries[0]
    );
    assert_eq!(entries[0]["details"]["via"], "offline");
    assert_eq!(entries[0]["details"]["lost"], done["lost"]);
    stop(serving);

    let verify = ace(
        &["ledger", "verify", "--data", data.path().to_str().unwrap()],
        b"",
    );
    assert_eq!(verify.code, 0, "{}{}", verify.stdout, verify.stderr);
    let again = offline(data.path(), &["--accept-loss"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("nothing to repair"),
        "{}",
        again.stdout
    );
}

#[test]
fn given_a_running_server_when_repairing_offline_or_serving_the_same_data_then_each_is_refused_naming_its_pid()
 {
    let data = tempfile::tempdir().unwrap();
    let serving = start(data.path(), &[]);
    let pid = format!("pid {}", serving.pid());

    let refused = offline(data.path(), &[]);
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    let expected = format!(
        "the server is running ({pid}): use the admin API `POST /api/v1/streams/{STREAM}/repair`"
    );
    assert!(refused.stderr.contains(&expected), "{}", refused.stderr);

    let dir = data.path().to_str().unwrap();
    let second = ace(&["serve", "--listen", "127.0.0.1:0", "--data", dir], b"");
    assert_eq!(second.code, 2, "{}", second.stdout);
    assert!(
        second.stderr.contains("in use by another process"),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains(&pid), "{}", second.stderr);

    let over_http = online(&serving, &["stream", "repair", STREAM]);
    assert!(over_http.contains("nothing to repair"), "{over_http}");
    stop(serving);

    let unknown = ace(&["stream", "repair", "NOPE", "--data", dir], b"");
    assert_eq!(unknown.code, 1, "{}", unknown.stdout);
    assert!(
        unknown.stderr.contains("STREAM_NOT_FOUND"),
        "{}",
        unknown.stderr
    );
}
