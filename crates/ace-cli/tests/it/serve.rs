//! `ace-comms serve` end to end: the real binary on a free port with a temporary data
//! directory — publish over HTTP, SIGTERM, exit 0, and a restart that still serves the message.
//! Also: `--log-format json` logs JSON lines; a bad config exits 2 naming the key; SIGHUP
//! reloads the API keys of an enforced server without a restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ace_envelope::{Envelope, Kind};

/// A running `ace-comms serve` and the URL it printed. Dropped while the server still runs (a
/// test that failed before stopping it), it kills the server, so no process outlives its test.
pub(crate) struct Serving {
    child: Child,
    pub(crate) addr: String,
    /// `http://<addr>`, or `https://<addr>` when it serves TLS.
    pub(crate) url: String,
    stdout: BufReader<std::process::ChildStdout>,
    /// The thread collecting stderr; taken by [`Serving::terminate`].
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// Starts `ace-comms serve` on a free port over `data`, with `extra` flags; waits for the
/// listening line.
pub(crate) fn start(data: &Path, extra: &[&str]) -> Serving {
    start_in(Path::new("."), data, extra)
}

/// [`start`] with the server's working directory at `cwd` (relative paths of a config file
/// are read from there).
pub(crate) fn start_in(cwd: &Path, data: &Path, extra: &[&str]) -> Serving {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ace-comms"))
        .current_dir(cwd)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .args(extra)
        .env("ACE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut stderr = child.stderr.take().unwrap();
    // Drained on a thread so a chatty log never blocks the server on a full pipe.
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .split_whitespace()
        .find(|word| word.starts_with("http://") || word.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    let addr = url.split("://").nth(1).unwrap_or_default().to_owned();
    Serving {
        child,
        addr,
        url,
        stdout,
        stderr: Some(stderr),
    }
}

impl Serving {
    /// The server's process id (its `/proc/<pid>` is read by the memory tests).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (`HUP`, `TERM`, ...) to the server.
    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// SIGKILL: no drain, no flush, no last checkpoint; waits until the process is gone.
    pub(crate) fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit code, the rest of stdout and all of stderr.
    pub(crate) fn terminate(mut self) -> (i32, String, String) {
        self.signal("TERM");
        let code = self
            .child
            .wait()
            .unwrap()
            .code()
            .expect("exited, not killed");
        let mut rest = String::new();
        self.stdout.read_to_string(&mut rest).unwrap();
        let stderr = self.stderr.take().map(|t| t.join().unwrap());
        (code, rest, stderr.unwrap_or_default())
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One HTTP/1.1 request with `Connection: close`; the status and the body.
fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    http_with(addr, method, path, body, "")
}

/// [`http`] with extra header lines (`"Name: value\r\n"` each).
fn http_with(
    addr: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    headers: &str,
) -> (u16, String) {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = body.unwrap_or("");
    write!(
        socket,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    socket.read_to_string(&mut reply).unwrap();
    let status = reply[9..12].parse().unwrap();
    let body = reply
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

#[test]
fn given_a_served_message_when_sigterm_and_restart_then_exit_0_and_the_message_is_still_served() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path(), &[]);
    let envelope = Envelope::builder(Kind::Event, "ace.comms.http.service.cli.evt.v1")
        .payload_json(serde_json::json!({"from": "the cli test"}))
        .build()
        .unwrap();
    let json = serde_json::to_string(&envelope).unwrap();
    let (status, body) = http(&server.addr, "POST", "/api/v1/messages", Some(&json));
    assert_eq!(status, 202, "{body}");
    assert!(body.contains("\"seq\":1"), "{body}");
    let (code, stdout, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(stdout.contains("stopped"), "{stdout}");
    assert!(stderr.contains("DEVELOPMENT MODE"), "{stderr}");

    let again = start(data.path(), &["--log-format", "json"]);
    let (status, body) = http(
        &again.addr,
        "GET",
        "/api/v1/streams/ACE_EVENTS/messages/1",
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&envelope.id.to_string()), "{body}");
    let (code, _, stderr) = again.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
    let json_lines = stderr.lines().filter(|l| l.starts_with('{'));
    let parsed: Vec<serde_json::Value> = json_lines
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect();
    assert!(
        parsed.iter().any(|l| l["level"] == "INFO"),
        "JSON log lines expected with --log-format json:\n{stderr}"
    );
}

#[test]
fn given_a_config_with_an_out_of_bounds_value_when_serving_then_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::write(dir.path(), "bad.yaml", "limits:\n  max_hops: 99\n");
    let run = crate::ace(&["serve", "--config", &config], b"");
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("limits.max_hops"), "{}", run.stderr);
}

#[test]
fn given_an_enforced_server_when_an_admin_runs_reload_then_a_new_key_works_at_once_and_others_may_not()
 {
    let dir = tempfile::tempdir().unwrap();
    let keys = crate::write(dir.path(), "keys.yaml", &tour_keys(false));
    let config = format!("auth:\n  mode: enforced\n  api_keys: {keys}\n");
    let config = crate::write(dir.path(), "ace.yaml", &config);
    let server = start(&dir.path().join("data"), &["--config", &config]);
    let as_key = |key: &str, verb: &[&str]| {
        let mut args = vec!["--server", server.url.as_str(), "--api-key", key];
        args.extend_from_slice(verb);
        crate::ace(&args, b"")
    };
    let streams = || as_key("tour-agent-key", &["stream", "ls"]);
    assert_eq!(streams().code, 1, "the agent's key is not in the file yet");
    crate::write(dir.path(), "keys.yaml", &tour_keys(true));
    let reload = as_key("tour-admin-key", &["reload"]);
    assert_eq!(reload.code, 0, "{}", reload.stderr);
    assert!(reload.stdout.contains("keys.yaml"), "{}", reload.stdout);
    // The reload is done when the answer comes: no waiting.
    let listed = streams();
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let json = as_key("tour-admin-key", &["reload", "--json"]);
    let answer: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(
        answer["reloaded"],
        serde_json::json!(["auth.api_keys"]),
        "{answer}"
    );
    let refused = as_key("tour-agent-key", &["reload"]);
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("FORBIDDEN"), "{}", refused.stderr);
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
}

/// A key file of the tour's demo keys: `tour-admin-key`, and `tour-agent-key` when `agent`.
pub(crate) fn tour_keys(agent: bool) -> String {
    let mut yaml = String::from(
        "keys:\n  - sha256: ad648c2de3f13f8762a15c0360ccbe65d3f479cb3f870da3dc4a4f6eb4829c27\n    \
         principal: {id: ops-alice, type: human, roles: [admin], clearance: 3}\n",
    );
    if agent {
        yaml.push_str(
            "  - sha256: 1d01ebeae9fef0e68f370d7a8da271af6f5501cb9dddead952e7a6b309302d7c\n    \
             principal: {id: planner-agent, type: agent, roles: [agent], clearance: 1}\n",
        );
    }
    yaml
}

#[test]
fn given_an_enforced_server_when_a_key_is_added_and_sighup_sent_then_the_key_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let keys = crate::write(dir.path(), "keys.yaml", &tour_keys(false));
    let config = format!("auth:\n  mode: enforced\n  api_keys: {keys}\n");
    let config = crate::write(dir.path(), "ace.yaml", &config);
    let server = start(&dir.path().join("data"), &["--config", &config]);
    let envelope = Envelope::builder(Kind::Event, "ace.comms.agent.agent.planner.evt.v1")
        .payload_json(serde_json::json!({"n": 1}))
        .build()
        .unwrap();
    let json = serde_json::to_string(&envelope).unwrap();
    let publish = || {
        let key = "X-ACE-API-Key: tour-agent-key\r\n";
        http_with(&server.addr, "POST", "/api/v1/messages", Some(&json), key)
    };
    assert_eq!(publish().0, 401, "not in the file yet");
    crate::write(dir.path(), "keys.yaml", &tour_keys(true));
    server.signal("HUP");
    // The reload runs on the server's own time: wait for it, a bounded number of times.
    let accepted = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        publish().0 == 202
    });
    assert!(accepted, "the added key is accepted after SIGHUP");
    let (code, _, stderr) = server.terminate();
    assert_eq!(code, 0, "stderr:\n{stderr}");
    assert!(stderr.contains("governance reloaded"), "{stderr}");
}
