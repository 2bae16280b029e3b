//! End-to-end tests of the `ace-comms` binary: each runs the real executable and checks its
//! output and exit code (0 valid, 1 invalid, 2 usage).
//!
//! Modules:
//! - `approvals`: `pub --ehi` held, `approvals ls | approve | reject` against the real server,
//!   deciding twice (exit 1, `CONFLICT`), an unknown id (exit 1, `NOT_FOUND`).
//! - `bench`: `bench --transport http --pubs 4` against a default server succeeds and measures
//!   the server process found by its port; a `--server-pid` that is not running is reported.
//! - `client`: the client verbs (`pub`, `sub`, `req`, `stream …`, `consumer …`, `agents ls`)
//!   against the real server, every exit code.
//! - `contracts`: `contracts list | show | validate | compat`, every exit code.
//! - `envelope`: `envelope new | convert`, round trips through every format.
//! - `kill`: the whole server SIGKILLed mid-load 50 times (`ACE_KILL_CYCLES` for more) on one
//!   data directory: no acknowledged publish lost, no sequence reused, each publisher's order
//!   kept, idempotency keys answered across kills, no answered ack lost beyond the flush window,
//!   and every acknowledged message delivered.
//! - `ledger`: `ledger verify` on an intact ledger, then one tampered on disk; `ledger
//!   checkpoint|entries|proof` against the real server, then `verify` on what it wrote.
//! - `mcp`: the official Python MCP client against the real `serve` enforcing API keys, over
//!   `/mcp` (streamable HTTP) and `ace-comms mcp` (stdio): every tool, resource and template, a
//!   denied call in the ledger, a held call released by the approver, a request answered.
//! - `memory`: the server's resident memory under sixteen never-reading WebSocket subscribers
//!   and 0.9 MB publishes stays under its bound, and another principal is served throughout.
//! - `output`: `-o table|json|yaml` and `--json` on every data command (JSON and YAML the same
//!   document, also as PyYAML reads it; tables aligned under their headers; one document per
//!   message for `sub` and `consumer next`), and every failure under each format: code,
//!   message that does not restate it, details, hint, exit code; `session get | put` with its
//!   preconditions.
//! - `python_sdk`: the Python SDK's pytest suite (`sdk/python/tests`) and the README's Python
//!   example run verbatim, each against the tour's server.
//! - `repair`: `stream repair` offline with the server stopped (dry run, `--accept-loss`, the
//!   next `serve` with the stream `ok`, the `stream_repaired` entry, `ledger verify`), refused
//!   while a server holds the data directory, as is a second `serve` on it.
//! - `serve`: the server on a free port — publish, SIGTERM, exit 0, restart; bad config exit 2.
//! - `tls`: the client verbs against a TLS server with `--tls-ca` (pub, sub over wss, stream
//!   ls), refused without it; a missing CA file and `--tls-cert` without `--tls-key` exit 2.
//! - `tour`: the README's five-minute tour, run verbatim against a fresh server in a temporary
//!   directory.
//! - `workflows`: `workflows validate` offline (the shipped directory, a broken file naming
//!   file, workflow and path, exit 1) and `list`, `show`, `disable`, `enable`, `reload`, `stats`
//!   against a server running the shipped workflows; a server SIGKILLed while a run waits on its
//!   second step restarts, resumes the run and completes it without repeating the first.

mod approvals;
mod bench;
mod client;
mod contracts;
mod envelope;
mod kill;
mod ledger;
mod mcp;
mod memory;
mod output;
mod python_sdk;
mod repair;
mod serve;
mod tls;
mod tour;
mod workflows;

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

/// The result of one run of the binary.
pub(crate) struct Run {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `ace-comms ARGS` with `stdin` as standard input.
pub(crate) fn ace(args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ace-comms"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `contracts/` at the workspace root.
pub(crate) fn contracts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

/// Writes `text` to a new file in `dir` and returns its path as a string.
pub(crate) fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn given_a_reader_that_closed_the_pipe_when_a_command_writes_then_it_ends_quietly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_ace-comms"))
        .args(["contracts", "list"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn given_each_shell_when_completions_are_asked_then_a_script_naming_the_commands_prints() {
    for shell in ["bash", "zsh", "fish"] {
        let run = ace(&["completions", shell], b"");
        assert_eq!(run.code, 0, "{shell}: {}", run.stderr);
        for word in ["ace-comms", "stream", "approvals", "server"] {
            assert!(run.stdout.contains(word), "{shell} script lacks {word}");
        }
    }
    assert_eq!(ace(&["completions", "tcsh"], b"").code, 2);
}
