//! The MCP server end to end with the official Python MCP client (PyPI `mcp`), over both
//! transports, against the real `ace-comms serve` enforcing the tour's API keys: streamable
//! HTTP at `/mcp` and stdio through `ace-comms mcp --server URL --api-key KEY`. The client
//! (`crates/ace-server/tests/it/mcp_client.py`) lists every tool, resource and template, reads
//! resources and calls every tool: a publish, a fetch and its ack, a request and a
//! `query_agent` answered by a responder subscribed on the bus (the Python SDK, as the tour's
//! agent: `mcp_responder.py`), a
//! contract check, a verified ledger proof; as the agent, a denied call (recorded as a `denied`
//! ledger entry), a call held by its EHI score that the approver releases while the agent polls
//! `approval_status`, and a `request_approval`. Last, the README's desktop-agent configuration
//! (its `mcpServers` JSON, verbatim but for the server's URL) starts `ace-comms mcp` from the
//! `PATH` as the tour's agent.

use std::path::{Path, PathBuf};
use std::process::Command;

use ace_client::Client;
use ace_envelope::api::http::Heartbeat;
use serde_json::{Value, json};

use crate::client::Server;

const ADMIN: &str = "tour-admin-key";
const AGENT: &str = "tour-agent-key";
const APPROVER: &str = "tour-approver-key";
const RESPONDER: &str = "responder";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A server enforcing the tour's API keys (admin, agent, approver).
fn enforced(dir: &Path) -> Server {
    let keys = repo().join("examples/tour-api-keys.yaml");
    let config = dir.join("config.yaml");
    let yaml = format!("auth:\n  mode: enforced\n  api_keys: {}\n", keys.display());
    std::fs::write(&config, yaml).unwrap();
    Server::start_with(&["--config", config.to_str().unwrap()], &[])
}

/// The Python SDK responder (`mcp_responder.py`) as the tour's agent: answers every query on
/// the responder's subject with `{"answer": 42, "asked": payload}` until killed. Returns once it
/// has subscribed.
fn python_responder(python: &Path, url: &str) -> std::process::Child {
    use std::io::BufRead;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/mcp_responder.py");
    let mut child = Command::new(python)
        .arg(script)
        .args([url, AGENT, RESPONDER])
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the responder starts");
    let stdout = child.stdout.take().expect("its stdout");
    let mut first = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut first)
        .expect("the responder speaks");
    assert_eq!(first.trim(), "ready", "the responder subscribed");
    child
}

/// Runs the Python MCP client with `config` and returns what it printed; `ace-comms` is on
/// its `PATH`, as a desktop agent finds it.
fn drive(python: &Path, config: &Value) -> Value {
    let script = repo().join("crates/ace-server/tests/it/mcp_client.py");
    let bin = Path::new(env!("CARGO_BIN_EXE_ace-comms")).parent().unwrap();
    let path = std::env::join_paths(std::iter::once(bin.to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .unwrap();
    let out = Command::new(python)
        .env("PATH", path)
        .arg(script)
        .arg(config.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the MCP client failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}

/// The `json` block of the README's "MCP" section: a desktop agent's configuration.
fn readme_mcp_config(readme: &str) -> String {
    let section = readme
        .split("\n## MCP\n")
        .nth(1)
        .expect("a `## MCP` section");
    let block = section
        .split("```json\n")
        .nth(1)
        .expect("a json block in it");
    block.split("```").next().unwrap().to_owned()
}

/// The checks every transport must pass.
fn assert_scenario(seen: &Value, transport: &str) {
    let tools = [
        "ack",
        "approval_status",
        "fetch_messages",
        "ledger_proof",
        "list_agents",
        "list_streams",
        "query_agent",
        "request",
        "request_approval",
        "send_message",
        "validate_payload",
    ];
    assert_eq!(seen["tools"], json!(tools), "{transport}");
    assert_eq!(seen["tools_with_schemas"], json!(tools), "{transport}");
    let resources = seen["resources"].as_array().unwrap();
    for uri in [
        "stream://ACE_EVENTS",
        "contract://mlt.experience@1.0.0",
        "agent://planner-agent",
    ] {
        assert!(
            resources.contains(&json!(uri)),
            "{transport}: {uri} in {resources:?}"
        );
    }
    assert_eq!(
        seen["templates"].as_array().unwrap().len(),
        4,
        "{transport}"
    );
    assert_eq!(
        seen["stream_resource"]["info"]["config"]["name"],
        "ACE_EVENTS"
    );
    assert!(seen["stream_resource"]["recent_messages"].is_array());
    assert_eq!(seen["contract_resource"]["type"], "object", "{transport}");
    assert_eq!(seen["agent_resource"]["id"], "planner-agent", "{transport}");
    assert!(
        seen["unknown_resource"]
            .as_str()
            .unwrap()
            .contains("NOT_FOUND"),
        "{transport}"
    );

    let sent = &seen["send_message"];
    assert_eq!(sent["status"], "accepted", "{transport}: {sent}");
    assert_eq!(sent["stream"], "ACE_EVENTS", "{transport}: {sent}");
    assert_eq!(
        seen["bad_kind"]["error"]["code"], "INVALID_REQUEST",
        "{transport}"
    );
    let streams = seen["list_streams"]["streams"].as_array().unwrap();
    assert!(
        streams.iter().any(|s| s["config"]["name"] == "ACE_EVENTS"),
        "{transport}"
    );
    let agents = seen["list_agents"]["agents"].as_array().unwrap();
    assert!(
        agents.iter().any(|a| a["id"] == "planner-agent"),
        "{transport}: {agents:?}"
    );

    let fetched = seen["fetch_messages"]["messages"].as_array().unwrap();
    let seq = sent["seq"].clone();
    assert!(
        fetched.iter().any(|m| m["seq"] == seq),
        "{transport}: {seq} in {fetched:?}"
    );
    assert_eq!(
        seen["ack"]["done"].as_array().unwrap().len(),
        fetched.len(),
        "{transport}"
    );
    assert_eq!(
        seen["refetch"]["messages"],
        json!([]),
        "{transport}: acked, not redelivered"
    );

    assert_eq!(seen["validate_bad"]["valid"], false, "{transport}");
    assert!(
        !seen["validate_bad"]["errors"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{transport}"
    );
    assert_eq!(
        seen["validate_unknown"]["error"]["code"], "UNKNOWN_SCHEMA",
        "{transport}"
    );

    let answer = &seen["query_agent"];
    assert_eq!(answer["payload"]["answer"], 42, "{transport}: {answer}");
    assert_eq!(
        answer["payload"]["asked"]["query"], "what is 6 times 7?",
        "{transport}"
    );
    assert_eq!(answer["kind"], "reply", "{transport}");
    assert_eq!(
        seen["request"]["payload"]["asked"]["question"], "ping",
        "{transport}"
    );
    assert_eq!(
        seen["request_unanswered"]["error"]["code"], "TIMEOUT",
        "{transport}"
    );
    let proof = &seen["ledger_proof"];
    assert_eq!(proof["verified"], true, "{transport}: {proof}");

    let agent_resources = seen["agent_resources"].as_array().unwrap();
    assert!(
        agent_resources.contains(&json!("contract://mlt.experience@1.0.0")),
        "{transport}: the agent lists resources too: {agent_resources:?}"
    );
    let denied = &seen["denied"]["error"];
    assert_eq!(denied["code"], "FORBIDDEN", "{transport}: {denied}");
    assert_eq!(seen["held"]["status"], "pending_approval", "{transport}");
    assert_eq!(seen["held_status"]["status"], "pending", "{transport}");
    assert_eq!(seen["approver_answer"], 200, "{transport}");
    let released = &seen["released_status"];
    assert_eq!(released["status"], "approved", "{transport}: {released}");
    assert_eq!(released["decided_by"], "reviewer-bob", "{transport}");
    assert_eq!(
        seen["request_approval"]["status"], "pending_approval",
        "{transport}"
    );
    assert_eq!(seen["requested_status"]["status"], "pending", "{transport}");
    assert_eq!(
        seen["unknown_tool"]["error"]["code"], "NOT_FOUND",
        "{transport}"
    );
}

/// The denied calls of the agent in the ledger, read by the admin.
fn denied_entries(server: &Server) -> Vec<Value> {
    let out = server.ok(&[
        "--api-key",
        ADMIN,
        "ledger",
        "entries",
        "--kind",
        "denied",
        "-o",
        "json",
    ]);
    let doc: Value = serde_json::from_str(&out).unwrap();
    let entries = doc["entries"].as_array().cloned().unwrap_or_default();
    entries
        .into_iter()
        .filter(|e| {
            e["actor"] == "planner-agent"
                && e["subject"] == "ace.comms.http.ops.db.cmd.drop_table.v1"
        })
        .collect()
}

#[test]
fn given_the_python_mcp_client_when_it_calls_every_tool_over_http_and_stdio_then_each_is_governed()
{
    let Some(python) = ace_testkit::python(
        "given_the_python_mcp_client_when_it_calls_every_tool_over_http_and_stdio_then_each_is_governed",
        &["mcp", "ace_comms"],
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = enforced(dir.path());
    server.ok(&[
        "--api-key",
        ADMIN,
        "consumer",
        "add",
        "ACE_EVENTS",
        "mcp-worker",
        "--deliver",
        "all",
        "--ack-wait",
        "30s",
    ]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let agent = Client::new(&server.url).unwrap().with_api_key(AGENT);
    let beat = Heartbeat {
        ttl_ms: Some(600_000),
        ..Heartbeat::default()
    };
    runtime
        .block_on(agent.heartbeat("planner-agent", &beat))
        .unwrap();
    let mut responder = python_responder(&python, &server.url);

    let mut config = json!({
        "base": server.url,
        "keys": {"admin": ADMIN, "agent": AGENT, "approver": APPROVER},
        "stream": "ACE_EVENTS", "consumer": "mcp-worker",
        "agent_id": "planner-agent", "responder": RESPONDER,
    });
    config["transport"] = json!("http");
    let over_http = drive(&python, &config);
    assert_scenario(&over_http, "http");
    assert_eq!(
        denied_entries(&server).len(),
        1,
        "the denied HTTP call is a ledger entry"
    );

    config["transport"] = json!("stdio");
    config["stdio"] = json!([
        env!("CARGO_BIN_EXE_ace-comms"),
        "mcp",
        "--server",
        server.url
    ]);
    let over_stdio = drive(&python, &config);
    assert_scenario(&over_stdio, "stdio");
    assert_eq!(
        denied_entries(&server).len(),
        2,
        "the denied stdio call is a ledger entry"
    );

    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let desktop = readme_mcp_config(&readme).replace("http://127.0.0.1:8500", &server.url);
    let desktop: Value = serde_json::from_str(&desktop).expect("the README's MCP configuration");
    let seen = drive(&python, &desktop);
    assert_eq!(seen["tools"].as_array().unwrap().len(), 11, "{seen}");
    assert_eq!(seen["sent"]["status"], "accepted", "{seen}");
    assert_eq!(seen["denied"]["error"]["code"], "FORBIDDEN", "{seen}");
    assert_eq!(
        denied_entries(&server).len(),
        3,
        "the README agent's denied call too"
    );
    let _ = responder.kill();
    let _ = responder.wait();
}
