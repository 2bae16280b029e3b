//! The MCP tools as data: each tool's input and output type (their JSON Schemas are derived
//! with `schemars`, so what `tools/list` announces is what `tools/call` parses and answers) and
//! [`catalogue`], the list both transports announce. The `/mcp` endpoint and `ace-comms mcp`
//! (stdio) share these definitions through [`super::McpServer`].

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::handler::server::common::{schema_for_input, schema_for_output};
use rmcp::model::{Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Longest a `request` or `query_agent` waits for its reply, milliseconds.
pub const MAX_REQUEST_TIMEOUT_MS: u64 = 60_000;
/// How long a `request` or `query_agent` waits when the call names no timeout, milliseconds.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;
/// Messages a `fetch_messages` asks for when the call names no batch.
pub const DEFAULT_FETCH_BATCH: usize = 10;
/// How long a `fetch_messages` waits for its first message when the call names no wait.
pub const DEFAULT_FETCH_WAIT_MS: u64 = 1_000;

/// A message to publish: `send_message`, and `request_approval` (which also asks for a human).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// The subject, e.g. `ace.comms.a2a.agent.planner.evt.task_done.v1`.
    pub subject: String,
    /// The JSON payload.
    pub payload: Value,
    /// `event` (default), `command`, `query`, `reply` or `error`.
    #[serde(default)]
    pub kind: Option<String>,
    /// The message name (e.g. `TASK_DONE`).
    #[serde(default)]
    pub name: Option<String>,
    /// The contract the payload must satisfy, `name@version` (checked before it is stored).
    #[serde(default)]
    pub schema: Option<String>,
    /// Headers (e.g. `ace-action`, `reply_to`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The EHI score the sender gives the message, 0 to 1; a high one is held for a human.
    #[serde(default)]
    pub ehi_score: Option<f64>,
    /// A key the server deduplicates retries by.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// Ties the message to a conversation or task.
    #[serde(default)]
    pub correlation_id: Option<String>,
}

/// What a publish did: stored (`accepted`, with its stream and sequence) or held for a human
/// (`pending_approval`, with the approval id `approval_status` polls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Published {
    /// `accepted` or `pending_approval`.
    pub status: String,
    /// The envelope id.
    pub id: String,
    /// The stream that stored it (accepted only; none when no stream captures the subject).
    pub stream: Option<String>,
    /// Its sequence in that stream (accepted only).
    pub seq: Option<u64>,
    /// True when the idempotency key was seen before (accepted only).
    pub duplicate: Option<bool>,
    /// The approval that will release or reject it (pending_approval only).
    pub approval_id: Option<String>,
}

/// A request to whoever answers on `subject`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The subject a responder listens on, e.g. `ace.comms.a2a.agent.search.cmd.query.v1`.
    pub subject: String,
    /// The JSON payload of the request.
    pub payload: Value,
    /// The message name.
    #[serde(default)]
    pub name: Option<String>,
    /// The contract the payload must satisfy, `name@version`.
    #[serde(default)]
    pub schema: Option<String>,
    /// How long to wait for the reply, milliseconds (default 5000, at most 60000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// A question to one agent, sent as a `query` on `ace.comms.a2a.agent.{agent_id}.cmd.query.v1`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryAgent {
    /// The agent's id (its principal id).
    pub agent_id: String,
    /// The question: text or any JSON.
    pub query: Value,
    /// How long to wait for the answer, milliseconds (default 5000, at most 60000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

/// The reply to a `request` or `query_agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Reply {
    /// The reply's subject (the request's inbox).
    pub subject: String,
    /// The reply's kind (`reply`, or `error` when the responder failed).
    pub kind: String,
    /// Who answered.
    pub source: Option<String>,
    /// The reply's payload.
    pub payload: Value,
    /// The whole reply envelope (gme/1).
    pub envelope: Value,
}

/// Messages from a durable consumer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FetchMessages {
    /// The stream, e.g. `ACE_EVENTS`.
    pub stream: String,
    /// The durable consumer's name.
    pub consumer: String,
    /// Most messages to take (default 10).
    #[serde(default)]
    pub batch: Option<usize>,
    /// How long to wait for the first message, milliseconds (default 1000).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// The deliveries of a `fetch_messages`, possibly none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Fetched {
    /// Each `{seq, delivery, envelope}`: `seq` is the handle `ack` takes, `delivery` counts
    /// from 1 and grows with every redelivery.
    pub messages: Vec<Value>,
}

/// Acknowledges deliveries of a durable consumer.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// The stream.
    pub stream: String,
    /// The durable consumer's name.
    pub consumer: String,
    /// The stream sequences of the deliveries processed.
    pub seqs: Vec<u64>,
}

/// What an `ack` did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Acked {
    /// The sequences acknowledged.
    pub done: Vec<u64>,
    /// The sequences refused, each `{seq, error: {code, message, details}}`.
    pub failed: Vec<Value>,
}

/// Filters the present agents.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListAgents {
    /// Only agents announcing this capability.
    #[serde(default)]
    pub capability: Option<String>,
}

/// The present agents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Agents {
    /// Each agent's presence (id, status, capabilities, last heartbeat, expiry).
    pub agents: Vec<Value>,
}

/// No arguments.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

/// The streams the caller may read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Streams {
    /// Each stream's configuration, state and counters.
    pub streams: Vec<Value>,
}

/// One approval.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalStatusArgs {
    /// The approval id a held `send_message` or `request_approval` answered.
    pub approval_id: String,
}

/// Where an approval stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ApprovalState {
    /// The approval id.
    pub approval_id: String,
    /// `pending`, `approved`, `rejected` or `expired`.
    pub status: String,
    /// Who decided it, once decided.
    pub decided_by: Option<String>,
    /// The decider's comment.
    pub comment: Option<String>,
    /// The whole approval: the held envelope, its requester, reasons and times.
    pub approval: Value,
}

/// A payload to check against a registered contract.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidatePayload {
    /// The contract, `name@version` (or `name` for its latest version), e.g.
    /// `mlt.experience@1.0.0`.
    pub contract: String,
    /// The JSON payload to check.
    pub payload: Value,
}

/// The verdict of `validate_payload`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Validation {
    /// True when the payload satisfies the contract.
    pub valid: bool,
    /// The contract checked, `name@version`.
    pub contract: String,
    /// Every problem, each with its instance and schema pointers and a reason.
    pub errors: Vec<Value>,
}

/// A ledger entry to prove.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerProofArgs {
    /// The entry's sequence (from 0).
    pub seq: u64,
}

/// An RFC 6962 inclusion proof of a ledger entry in the latest signed checkpoint, checked by
/// the MCP server before it answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LedgerProof {
    /// The entry.
    pub seq: u64,
    /// True when the checkpoint's Ed25519 signature verifies with the ledger's key and the
    /// audit path leads from the entry's leaf to the checkpoint's root.
    pub verified: bool,
    /// Why it does not verify (none when it does).
    pub reason: Option<String>,
    /// The proof: `seq`, `tree_size`, `leaf_hash`, `root_hash`, `path`.
    pub proof: Value,
    /// The signed checkpoint the proof is checked against.
    pub checkpoint: Value,
}

/// One tool's announcement: name, description, input and output schemas, hints.
fn tool<I: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    description: &'static str,
    read_only: bool,
) -> Tool {
    let input = schema_for_input::<I>().unwrap_or_else(|_| Arc::new(serde_json::Map::new()));
    let mut annotations = ToolAnnotations::default();
    annotations.read_only_hint = Some(read_only);
    annotations.open_world_hint = Some(false);
    Tool::new(name, description, input)
        .with_raw_output_schema(schema_for_output::<O>())
        .with_annotations(annotations)
}

/// The tool names, in the order [`catalogue`] lists them.
pub const TOOL_NAMES: [&str; 11] = [
    "send_message",
    "request",
    "query_agent",
    "fetch_messages",
    "ack",
    "list_agents",
    "list_streams",
    "request_approval",
    "approval_status",
    "validate_payload",
    "ledger_proof",
];

/// Every tool both transports announce.
pub fn catalogue() -> Vec<Tool> {
    vec![
        tool::<SendMessage, Published>(
            "send_message",
            "Publish a message on a subject. It is authenticated as you, validated (and checked \
             against `schema` when given), authorized, stored durably and recorded in the \
             ledger; a message a policy or its EHI score holds for a human answers \
             `pending_approval` with the approval id to poll with `approval_status`.",
            false,
        ),
        tool::<Request, Reply>(
            "request",
            "Send a request and wait for the first reply (request/reply through a private \
             inbox), up to `timeout_ms`.",
            false,
        ),
        tool::<QueryAgent, Reply>(
            "query_agent",
            "Ask one agent a question: a `query` on `ace.comms.a2a.agent.{agent_id}.cmd.query.v1`, \
             answered by the agent's reply, up to `timeout_ms`.",
            false,
        ),
        tool::<FetchMessages, Fetched>(
            "fetch_messages",
            "Take up to `batch` messages from a durable consumer of a stream. Each must be \
             acknowledged with `ack` (by its `seq`) or it is redelivered after the consumer's \
             ack wait, and dead-lettered after its max deliveries.",
            false,
        ),
        tool::<Ack, Acked>(
            "ack",
            "Acknowledge deliveries of a durable consumer (by stream sequence): they are done \
             and never redelivered.",
            false,
        ),
        tool::<ListAgents, Agents>(
            "list_agents",
            "The agents present now (those whose heartbeat has not expired), optionally only \
             those announcing a capability.",
            true,
        ),
        tool::<NoArguments, Streams>(
            "list_streams",
            "The streams you may read, with their subjects, message counts and state.",
            true,
        ),
        tool::<SendMessage, Published>(
            "request_approval",
            "Publish a message that a human must approve first: it is held (`pending_approval` \
             with its approval id) until an approver releases or rejects it; poll \
             `approval_status`.",
            false,
        ),
        tool::<ApprovalStatusArgs, ApprovalState>(
            "approval_status",
            "Where an approval stands: pending, approved (the message is published), rejected \
             or expired, with who decided and why.",
            true,
        ),
        tool::<ValidatePayload, Validation>(
            "validate_payload",
            "Check a JSON payload against a registered contract (`name@version`) without \
             publishing it; every problem comes with its JSON pointers.",
            true,
        ),
        tool::<LedgerProofArgs, LedgerProof>(
            "ledger_proof",
            "Prove that a ledger entry is in the tamper-evident ledger: an RFC 6962 inclusion \
             proof checked against the latest Ed25519-signed checkpoint.",
            true,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_catalogue_when_listed_then_every_tool_has_object_schemas_in_and_out() {
        let tools = catalogue();
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(names, TOOL_NAMES);
        for tool in &tools {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            let output = tool.output_schema.as_ref().expect("output schema");
            assert_eq!(output["type"], "object", "{}", tool.name);
        }
        let send = &tools[0].input_schema;
        assert_eq!(send["required"], serde_json::json!(["subject", "payload"]));
    }
}
