//! `/mcp`, the streamable HTTP MCP endpoint, spoken to as JSON-RPC over real HTTP: the gate
//! refuses a foreign `Host` (DNS rebinding), a browser `Origin` not allowed, and a request
//! without credentials (401 with `WWW-Authenticate`), each with the error body; an
//! authenticated session initializes, lists the tools with their schemas, and a tool call is
//! judged as the caller — the agent's call on a subject its role may not publish on is an
//! error result carrying `FORBIDDEN` and a `denied` ledger entry, the admin's is stored.
//! A bearer JWT is a principal as on `/api/v1`; an expired one is 401. An open event stream does
//! not hold up the server's shutdown.
//! (The official Python client over both transports is in `ace-cli`'s `mcp` test.)

use reqwest::header::{ACCEPT, CONTENT_TYPE, HOST, ORIGIN, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::auth::{Cred, claims, get_as, role, signed, start_enforced};
use crate::{Server, answer, assert_error};

const MCP_ACCEPT: &str = "application/json, text/event-stream";

fn initialize() -> Value {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "ace-server-test", "version": "0"}
        }
    })
}

/// `POST /mcp` with `body`, the API key of `cred`, and a session id once there is one.
async fn post(
    server: &Server,
    cred: &Cred,
    session: Option<&str>,
    body: &Value,
) -> reqwest::Response {
    let mut request = server
        .http
        .post(server.url("/mcp"))
        .header(ACCEPT, MCP_ACCEPT)
        .header(CONTENT_TYPE, "application/json")
        .header("MCP-Protocol-Version", "2025-11-25")
        .json(body);
    match cred {
        Cred::Key(key) => request = request.header("X-ACE-API-Key", key),
        Cred::Bearer(token) => request = request.bearer_auth(token),
        Cred::Nothing => {}
    }
    if let Some(id) = session {
        request = request.header("Mcp-Session-Id", id);
    }
    request.send().await.unwrap()
}

/// The JSON-RPC answer in a response: the body itself, or the last `data:` event of an event
/// stream.
async fn rpc(response: reqwest::Response) -> Value {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let json = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .rfind(|data| !data.is_empty())
        .unwrap_or(text.as_str())
        .to_owned();
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {text}"))
}

/// An initialized session of `cred`: its id.
async fn open(server: &Server, cred: &Cred) -> String {
    let response = post(server, cred, None, &initialize()).await;
    let id = response
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .unwrap()
        .to_owned();
    let init = rpc(response).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "ace-comms", "{init}");
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let done = post(server, cred, Some(&id), &initialized).await;
    assert!(done.status().is_success(), "{}", done.status());
    id
}

async fn call(server: &Server, cred: &Cred, session: &str, tool: &str, args: Value) -> Value {
    let body = json!({
        "jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": tool, "arguments": args}
    });
    rpc(post(server, cred, Some(session), &body).await).await["result"].clone()
}

#[tokio::test]
async fn given_the_gate_when_host_origin_or_credentials_are_wrong_then_each_is_refused_with_the_error_body()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let admin = match role("admin") {
        Cred::Key(key) => key,
        _ => unreachable!(),
    };
    let send = |request: reqwest::RequestBuilder| async {
        answer(request.json(&initialize()).send().await.unwrap()).await
    };
    let base = || {
        server
            .http
            .post(server.url("/mcp"))
            .header(ACCEPT, MCP_ACCEPT)
            .header("X-ACE-API-Key", &admin)
    };

    let foreign_host = send(base().header(HOST, "evil.example.com")).await;
    assert_error(&foreign_host, 403, "FORBIDDEN");
    assert!(
        foreign_host.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed_hosts")
    );

    let foreign_origin = send(base().header(ORIGIN, "https://evil.example.com")).await;
    assert_error(&foreign_origin, 403, "FORBIDDEN");
    assert!(
        foreign_origin.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("allowed_origins")
    );

    let anonymous = server
        .http
        .post(server.url("/mcp"))
        .header(ACCEPT, MCP_ACCEPT)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.headers()[WWW_AUTHENTICATE], "Bearer");
    assert_error(&answer(anonymous).await, 401, "UNAUTHENTICATED");

    let wrong_key = send(
        server
            .http
            .post(server.url("/mcp"))
            .header(ACCEPT, MCP_ACCEPT)
            .header("X-ACE-API-Key", "not-a-key"),
    )
    .await;
    assert_error(&wrong_key, 401, "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn given_an_allowed_host_and_origin_in_the_config_when_they_call_then_they_pass_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |config| {
        config.limits.mcp.allowed_hosts = vec!["comms.example.com".to_owned()];
        config.limits.mcp.allowed_origins = vec!["https://app.example.com".to_owned()];
    })
    .await;
    let Cred::Key(admin) = role("admin") else {
        unreachable!()
    };
    let response = server
        .http
        .post(server.url("/mcp"))
        .header(ACCEPT, MCP_ACCEPT)
        .header(HOST, "comms.example.com:8500")
        .header(ORIGIN, "https://app.example.com")
        .header("X-ACE-API-Key", &admin)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    let init = rpc(response).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "ace-comms", "{init}");
    let loopback = server
        .http
        .post(server.url("/mcp"))
        .header(ACCEPT, MCP_ACCEPT)
        .header("X-ACE-API-Key", &admin)
        .json(&initialize())
        .send()
        .await
        .unwrap();
    assert_error(&answer(loopback).await, 403, "FORBIDDEN");
    server.stop().await;
}

#[tokio::test]
async fn given_a_session_when_tools_are_called_then_each_is_judged_as_its_caller_and_a_denial_is_in_the_ledger()
 {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let agent = role("agent");
    let session = open(&server, &agent).await;

    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let tools = rpc(post(&server, &agent, Some(&session), &list).await).await;
    let tools = tools["result"]["tools"].as_array().unwrap().clone();
    assert_eq!(tools.len(), 11);
    for tool in &tools {
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
        assert_eq!(tool["outputSchema"]["type"], "object", "{tool}");
    }

    let drop_table =
        json!({"subject": "ace.comms.http.ops.db.cmd.drop_table.v1", "payload": {"t": 1}});
    let denied = call(&server, &agent, &session, "send_message", drop_table).await;
    assert_eq!(denied["isError"], true, "{denied}");
    assert_eq!(
        denied["structuredContent"]["error"]["code"], "FORBIDDEN",
        "{denied}"
    );

    let allowed =
        json!({"subject": "ace.comms.a2a.agent.agent-1.evt.hello.v1", "payload": {"hi": 1}});
    let sent = call(&server, &agent, &session, "send_message", allowed).await;
    assert_eq!(sent["structuredContent"]["status"], "accepted", "{sent}");
    assert_eq!(sent["structuredContent"]["stream"], "ACE_EVENTS", "{sent}");

    let entries = get_as(
        &server,
        &role("admin"),
        "/api/v1/ledger/entries?kind=denied",
    )
    .await;
    let entries = entries.1["entries"].as_array().unwrap().clone();
    assert!(
        entries.iter().any(|e| e["actor"] == "agent-1"
            && e["subject"] == "ace.comms.http.ops.db.cmd.drop_table.v1"),
        "{entries:?}"
    );
    let accepted = get_as(
        &server,
        &role("admin"),
        "/api/v1/ledger/entries?kind=accepted",
    )
    .await;
    let accepted = accepted.1["entries"].as_array().unwrap().clone();
    assert!(
        accepted.iter().any(|e| e["actor"] == "agent-1"
            && e["subject"] == "ace.comms.a2a.agent.agent-1.evt.hello.v1"),
        "{accepted:?}"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_a_bearer_jwt_when_a_session_calls_a_tool_then_the_token_is_the_principal() {
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let jwt = Cred::Bearer(signed(&claims()));
    let session = open(&server, &jwt).await;
    let hello =
        json!({"subject": "ace.comms.a2a.agent.jwt-agent.evt.hello.v1", "payload": {"hi": 2}});
    let sent = call(&server, &jwt, &session, "send_message", hello).await;
    assert_eq!(sent["structuredContent"]["status"], "accepted", "{sent}");
    let accepted = get_as(
        &server,
        &role("admin"),
        "/api/v1/ledger/entries?kind=accepted",
    )
    .await;
    let accepted = accepted.1["entries"].as_array().unwrap().clone();
    assert!(
        accepted.iter().any(|e| e["actor"] == "jwt-agent"),
        "{accepted:?}"
    );

    let counted = r#"ace_comms_messages_total{protocol="mcp",type="event"} 1"#;
    assert!(server.metrics().await.contains(counted), "{counted}");

    let mut expired = claims();
    expired["exp"] = json!(crate::auth::now() - 10);
    let stale = post(
        &server,
        &Cred::Bearer(signed(&expired)),
        None,
        &initialize(),
    )
    .await;
    assert_error(&answer(stale).await, 401, "UNAUTHENTICATED");
    server.stop().await;
}

#[tokio::test]
async fn given_an_open_event_stream_when_the_server_shuts_down_then_the_drain_does_not_wait_for_it()
{
    let dir = tempfile::tempdir().unwrap();
    let server = start_enforced(dir.path(), |_| {}).await;
    let agent = role("agent");
    let session = open(&server, &agent).await;
    let Cred::Key(key) = &agent else {
        unreachable!()
    };
    let stream = server
        .http
        .get(server.url("/mcp"))
        .header(ACCEPT, "text/event-stream")
        .header("MCP-Protocol-Version", "2025-11-25")
        .header("Mcp-Session-Id", &session)
        .header("X-ACE-API-Key", key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200, "the standalone event stream is open");
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), server.stop()).await;
    assert!(
        stopped.is_ok(),
        "shutdown waited on the open /mcp event stream"
    );
    drop(stream);
}
