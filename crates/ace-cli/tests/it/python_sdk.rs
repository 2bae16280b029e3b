//! The Python SDK (`sdk/python`, package `ace-comms`) against the real binary: `ace-comms
//! serve` started from the repository root with the tour's configuration (enforced API keys of
//! an admin, an agent and an approver), then
//! - the SDK's whole pytest suite, `python -m pytest sdk/python/tests`, with the server's URL and
//!   the three keys in `ACE_TEST_SERVER`, `ACE_TEST_ADMIN_KEY`, `ACE_TEST_AGENT_KEY`,
//!   `ACE_TEST_APPROVER_KEY` (publish -> subscribe, batches, request/reply with a Python
//!   responder, a consumer's redelivery and dead letters, approvals, a ledger proof verified in
//!   Python, CloudEvents, every refusal as an exception with its code, and the offline checks
//!   of the models against `contracts/`);
//! - the README's Python example, verbatim, as the tour's agent.
//!
//! The interpreter is `ACE_TEST_PYTHON` with the SDK installed (`.ci/run` does `pip install
//! ./sdk/python` into its virtual environment); without it the tests skip loudly, and under
//! `CI=true` they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::serve::{Serving, start_in};

/// The modules the suite imports (mypy: `test_typing.py`).
const MODULES: &[&str] = &["ace_comms", "pytest", "pytest_asyncio", "mypy"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tour's server on a free port over a fresh data directory.
fn tour_server(data: &Path) -> Serving {
    start_in(&root(), data, &["--config", "examples/tour.yaml"])
}

/// Runs `python args…` from the repository root with `env`, writing no bytecode or cache
/// into the repository.
fn run(python: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(python)
        .args(args)
        .current_dir(root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(env.iter().copied())
        .output()
        .expect("the interpreter starts")
}

fn text(output: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn given_the_tour_server_when_the_python_sdk_suite_runs_then_every_test_passes() {
    let test = "given_the_tour_server_when_the_python_sdk_suite_runs_then_every_test_passes";
    let Some(python) = ace_testkit::python(test, MODULES) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let server = tour_server(data.path());
    let output = run(
        &python,
        &[
            "-m",
            "pytest",
            "sdk/python/tests",
            "-q",
            "-p",
            "no:cacheprovider",
            "-rs",
        ],
        &[
            ("ACE_TEST_SERVER", server.url.as_str()),
            ("ACE_TEST_ADMIN_KEY", "tour-admin-key"),
            ("ACE_TEST_AGENT_KEY", "tour-agent-key"),
            ("ACE_TEST_APPROVER_KEY", "tour-approver-key"),
        ],
    );
    let (code, _, stderr) = server.terminate();
    let report = text(&output);
    assert!(output.status.success(), "the SDK's suite failed: {report}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(" passed") && !stdout.contains("skipped"),
        "every test ran and passed: {report}"
    );
    assert_eq!(code, 0, "{stderr}");
}

/// The ```python block of the README's `## Python SDK` section.
fn readme_example(readme: &str) -> String {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Python SDK"))
        .expect("README.md has a `## Python SDK` section");
    let mut lines = section.lines().skip_while(|l| l.trim_end() != "```python");
    lines.next().expect("the section has a ```python block");
    let block: Vec<&str> = lines.take_while(|l| l.trim_end() != "```").collect();
    block.join("\n")
}

#[test]
fn given_the_readme_python_example_when_run_verbatim_against_the_tour_server_then_it_prints_the_delivery()
 {
    let test = "given_the_readme_python_example_when_run_verbatim_against_the_tour_server_then_it_prints_the_delivery";
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let example = readme_example(&readme);
    assert!(
        example.lines().count() <= 10,
        "the README's Python example is {} lines:\n{example}",
        example.lines().count()
    );
    let Some(python) = ace_testkit::python(test, &["ace_comms"]) else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let server = tour_server(data.path());
    let output = run(
        &python,
        &["-c", &example],
        &[("ACE_SERVER", server.url.as_str())],
    );
    let (code, _, stderr) = server.terminate();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ACE_EVENTS 1 planner-agent {'hi': 2}"),
        "{}",
        text(&output)
    );
    assert_eq!(code, 0, "{stderr}");
}
