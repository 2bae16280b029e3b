"""Drives an ACE::COMMS MCP server with the official Python MCP client (PyPI `mcp`).

Usage: mcp_client.py CONFIG_JSON, where CONFIG_JSON is
  {"transport": "http" | "stdio",
   "base": "http://127.0.0.1:PORT",            # the server's HTTP API (approvals are decided there)
   "stdio": ["ace-comms", "mcp", "--server", URL],  # stdio only: the command, credentials appended
   "keys": {"admin": KEY, "agent": KEY, "approver": KEY},
   "stream": NAME, "consumer": NAME, "agent_id": ID, "responder": ID}

Or CONFIG_JSON is a desktop agent's configuration {"mcpServers": {"ace-comms": {command, args,
env}}} (the README's): the client starts that server as given, lists its tools and publishes
once where the tour's agent may and once where it may not.

As the admin it lists every tool, resource and template, reads resources, and calls every tool;
as the agent it makes a denied call, a held call (EHI) that the approver releases over the HTTP
API while the agent polls `approval_status`, and a `request_approval`. Prints one JSON object
with what it saw; the Rust test asserts on it and on the server's ledger.
"""

import asyncio
import json
import sys
from contextlib import asynccontextmanager

import httpx
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client


@asynccontextmanager
async def session(config, key):
    """An initialized MCP session authenticated with API key `key`."""
    if config["transport"] == "http":
        headers = {"X-ACE-API-Key": key}
        async with httpx.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(config["base"] + "/mcp", http_client=http) as (r, w, _):
                async with ClientSession(r, w) as s:
                    await s.initialize()
                    yield s
    else:
        command, *args = config["stdio"]
        params = StdioServerParameters(command=command, args=[*args, "--api-key", key])
        async with stdio_client(params) as (r, w):
            async with ClientSession(r, w) as s:
                await s.initialize()
                yield s


async def call(s, tool, arguments):
    """The structured result of a tool call, or {"is_error": True, "error": {...}}."""
    result = await s.call_tool(tool, arguments)
    if result.isError:
        return {"is_error": True, **(result.structuredContent or {})}
    return result.structuredContent


async def as_admin(config, out):
    async with session(config, config["keys"]["admin"]) as s:
        tools = (await s.list_tools()).tools
        out["tools"] = sorted(t.name for t in tools)
        out["tools_with_schemas"] = sorted(
            t.name for t in tools if t.inputSchema.get("type") == "object"
            and (t.outputSchema or {}).get("type") == "object")
        out["info"] = s.get_server_capabilities() is not None
        resources = (await s.list_resources()).resources
        out["resources"] = sorted(str(r.uri) for r in resources)
        templates = (await s.list_resource_templates()).resourceTemplates
        out["templates"] = sorted(t.uriTemplate for t in templates)
        stream = (await s.read_resource(f"stream://{config['stream']}")).contents[0]
        out["stream_resource"] = json.loads(stream.text)
        contract = (await s.read_resource("contract://mlt.experience@1.0.0")).contents[0]
        out["contract_resource"] = json.loads(contract.text)
        agent = (await s.read_resource(f"agent://{config['agent_id']}")).contents[0]
        out["agent_resource"] = json.loads(agent.text)
        try:
            await s.read_resource("nowhere://x")
            out["unknown_resource"] = "read"
        except Exception as e:  # the JSON-RPC error of an unknown resource
            out["unknown_resource"] = str(e)

        out["send_message"] = await call(s, "send_message", {
            "subject": "ace.comms.a2a.agent.planner.evt.task_done.v1",
            "payload": {"task": "t-1", "ok": True}, "name": "TASK_DONE"})
        out["bad_kind"] = await call(s, "send_message", {
            "subject": "ace.comms.a2a.agent.planner.evt.task_done.v1",
            "payload": {}, "kind": "shout"})
        out["list_streams"] = await call(s, "list_streams", {})
        out["list_agents"] = await call(s, "list_agents", {})
        out["fetch_messages"] = await call(s, "fetch_messages", {
            "stream": config["stream"], "consumer": config["consumer"], "batch": 100, "wait_ms": 2000})
        seqs = [m["seq"] for m in out["fetch_messages"]["messages"]]
        out["ack"] = await call(s, "ack", {
            "stream": config["stream"], "consumer": config["consumer"], "seqs": seqs})
        out["refetch"] = await call(s, "fetch_messages", {
            "stream": config["stream"], "consumer": config["consumer"], "batch": 100, "wait_ms": 100})
        out["validate_bad"] = await call(s, "validate_payload", {
            "contract": "mlt.experience@1.0.0", "payload": {"not": "an experience"}})
        out["validate_unknown"] = await call(s, "validate_payload", {
            "contract": "no.such.contract@1.0.0", "payload": {}})
        out["query_agent"] = await call(s, "query_agent", {
            "agent_id": config["responder"], "query": "what is 6 times 7?", "timeout_ms": 10000})
        out["request"] = await call(s, "request", {
            "subject": f"ace.comms.a2a.agent.{config['responder']}.cmd.query.v1",
            "payload": {"question": "ping"}, "timeout_ms": 10000})
        out["request_unanswered"] = await call(s, "request", {
            "subject": "ace.comms.a2a.agent.nobody.cmd.query.v1", "payload": {}, "timeout_ms": 300})
        # the signed checkpoint comes every second: wait until entry 0 is in one
        for _ in range(50):
            out["ledger_proof"] = await call(s, "ledger_proof", {"seq": 0})
            if not out["ledger_proof"].get("is_error"):
                break
            await asyncio.sleep(0.2)


async def as_agent(config, out):
    async with session(config, config["keys"]["agent"]) as s:
        out["agent_resources"] = sorted(str(r.uri) for r in (await s.list_resources()).resources)
        out["denied"] = await call(s, "send_message", {
            "subject": "ace.comms.http.ops.db.cmd.drop_table.v1", "payload": {"table": "users"}})
        out["held"] = await call(s, "send_message", {
            "subject": "ace.comms.a2a.agent.planner.evt.dropped.v1", "payload": {"table": "users"},
            "ehi_score": 0.95, "headers": {"ace-action": "delete"}})
        approval_id = out["held"]["approval_id"]
        out["held_status"] = await call(s, "approval_status", {"approval_id": approval_id})
        async with httpx.AsyncClient(timeout=30) as http:
            decided = await http.post(
                f"{config['base']}/api/v1/approval/{approval_id}",
                headers={"X-ACE-API-Key": config["keys"]["approver"]},
                json={"decision": "approve", "comment": "checked by the MCP test"})
            out["approver_answer"] = decided.status_code
        for _ in range(50):
            out["released_status"] = await call(s, "approval_status", {"approval_id": approval_id})
            if out["released_status"].get("status") != "pending":
                break
            await asyncio.sleep(0.1)
        out["request_approval"] = await call(s, "request_approval", {
            "subject": "ace.comms.a2a.agent.planner.cmd.deploy.v1", "payload": {"service": "search"},
            "kind": "command"})
        out["requested_status"] = await call(s, "approval_status", {
            "approval_id": out["request_approval"]["approval_id"]})
        out["unknown_tool"] = await call(s, "no_such_tool", {})


async def desktop(config):
    server = config["mcpServers"]["ace-comms"]
    params = StdioServerParameters(
        command=server["command"], args=server["args"], env=server.get("env"))
    async with stdio_client(params) as (r, w):
        async with ClientSession(r, w) as s:
            await s.initialize()
            tools = sorted(t.name for t in (await s.list_tools()).tools)
            sent = await call(s, "send_message", {
                "subject": "ace.comms.a2a.agent.planner.evt.hello.v1", "payload": {"hi": 1}})
            denied = await call(s, "send_message", {
                "subject": "ace.comms.http.ops.db.cmd.drop_table.v1", "payload": {"table": "users"}})
    print(json.dumps({"tools": tools, "sent": sent, "denied": denied}))


async def main():
    config = json.loads(sys.argv[1])
    if "mcpServers" in config:
        await desktop(config)
        return
    out = {}
    await as_admin(config, out)
    await as_agent(config, out)
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main())
