//! [`McpServer`]: the rmcp `ServerHandler` both transports run. It announces the tools of
//! `tools` and the resources below, parses each call's arguments into the tool's input type
//! (so what the input schema says is what is enforced), runs it as one [`Backend`] operation
//! as the caller, and answers with the tool's structured output — or, for a refusal, an error
//! result carrying the server's error body `{error: {code, message, details}}`.
//!
//! Resources: `stream://{name}` (the stream's info and its most recent messages),
//! `contract://{name}@{version}` (the JSON Schema), `agent://{id}` (a present agent's presence)
//! and `approval://{id}` (a held message's approval). `resources/list` lists the streams the
//! caller may read, every contract and the present agents; approvals are read by id (the
//! template): listing them is the approvers' right, and each refusal would be a ledger entry.

use std::time::Duration;

use ace_envelope::api::http::{Approval, ApprovalStatus, FetchedMessage};
use ace_envelope::{Envelope, ErrorBody, ErrorCode, Kind};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, InitializeResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities,
};
use rmcp::service::RequestContext as McpContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::backend::{Backend, Publication};
use super::tools::{self, *};

/// How many of a stream's latest messages its resource shows.
pub const RECENT_MESSAGES: u64 = 10;

/// The MCP server over a [`Backend`]; cheap to clone when the backend is.
#[derive(Debug, Clone)]
pub struct McpServer<B> {
    backend: B,
}

impl<B: Backend> McpServer<B> {
    /// The server answering through `backend`.
    pub fn new(backend: B) -> Self {
        McpServer { backend }
    }

    /// Runs tool `name` with `arguments` as `caller`.
    async fn run(
        &self,
        caller: &B::Caller,
        name: &str,
        arguments: Value,
    ) -> Result<Value, ErrorBody> {
        match name {
            "send_message" => to_value(self.send(caller, args(arguments)?, false).await?),
            "request_approval" => to_value(self.send(caller, args(arguments)?, true).await?),
            "request" => to_value(self.request(caller, args(arguments)?).await?),
            "query_agent" => to_value(self.query_agent(caller, args(arguments)?).await?),
            "fetch_messages" => to_value(self.fetch(caller, args(arguments)?).await?),
            "ack" => to_value(self.ack(caller, args(arguments)?).await?),
            "list_agents" => {
                let filter: ListAgents = args(arguments)?;
                let agents = self
                    .backend
                    .agents(caller, filter.capability.as_deref())
                    .await?;
                to_value(Agents {
                    agents: values(&agents)?,
                })
            }
            "list_streams" => {
                let NoArguments {} = args(arguments)?;
                let streams = self.backend.streams(caller).await?;
                to_value(Streams {
                    streams: values(&streams)?,
                })
            }
            "approval_status" => {
                let ask: ApprovalStatusArgs = args(arguments)?;
                to_value(approval_state(
                    self.backend.approval(caller, &ask.approval_id).await?,
                )?)
            }
            "validate_payload" => {
                let ask: ValidatePayload = args(arguments)?;
                let verdict = self
                    .backend
                    .validate(caller, &ask.contract, &ask.payload)
                    .await?;
                to_value(match verdict {
                    Ok(contract) => Validation {
                        valid: true,
                        contract,
                        errors: Vec::new(),
                    },
                    Err((contract, errors)) => Validation {
                        valid: false,
                        contract,
                        errors,
                    },
                })
            }
            "ledger_proof" => to_value(self.ledger_proof(caller, args(arguments)?).await?),
            other => Err(ErrorBody::with_details(
                ErrorCode::NotFound,
                format!("no tool named `{other}`; tools/list names them"),
                json!({ "tool": other, "tools": tools::TOOL_NAMES }),
            )),
        }
    }

    async fn send(
        &self,
        caller: &B::Caller,
        ask: SendMessage,
        requires_approval: bool,
    ) -> Result<Published, ErrorBody> {
        let mut envelope = message(&ask)?;
        envelope.governance.requires_approval |= requires_approval;
        Ok(match self.backend.publish(caller, envelope).await? {
            Publication::Accepted(a) => Published {
                status: "accepted".to_owned(),
                id: a.id.to_string(),
                stream: a.stream,
                seq: a.seq,
                duplicate: Some(a.duplicate),
                approval_id: None,
            },
            Publication::Held(p) => Published {
                status: "pending_approval".to_owned(),
                id: p.id.to_string(),
                stream: None,
                seq: None,
                duplicate: None,
                approval_id: Some(p.approval_id),
            },
        })
    }

    async fn request(&self, caller: &B::Caller, ask: Request) -> Result<Reply, ErrorBody> {
        let mut builder = Envelope::builder(Kind::Query, ask.subject).payload_json(ask.payload);
        if let Some(name) = ask.name {
            builder = builder.name(name);
        }
        if let Some(schema) = ask.schema {
            builder = builder.schema(schema);
        }
        let envelope = built(builder)?;
        let reply = self
            .backend
            .request(caller, envelope, timeout(ask.timeout_ms)?)
            .await?;
        reply_of(reply)
    }

    async fn query_agent(&self, caller: &B::Caller, ask: QueryAgent) -> Result<Reply, ErrorBody> {
        let subject = format!("ace.comms.a2a.agent.{}.cmd.query.v1", ask.agent_id);
        let request = Request {
            subject,
            payload: json!({ "query": ask.query }),
            name: Some("QUERY".to_owned()),
            schema: None,
            timeout_ms: ask.timeout_ms,
        };
        self.request(caller, request).await
    }

    async fn fetch(&self, caller: &B::Caller, ask: FetchMessages) -> Result<Fetched, ErrorBody> {
        let batch = ask.batch.unwrap_or(DEFAULT_FETCH_BATCH);
        let wait = Duration::from_millis(ask.wait_ms.unwrap_or(DEFAULT_FETCH_WAIT_MS));
        let got: Vec<FetchedMessage> = self
            .backend
            .fetch(caller, &ask.stream, &ask.consumer, batch, wait)
            .await?;
        Ok(Fetched {
            messages: values(&got)?,
        })
    }

    async fn ack(&self, caller: &B::Caller, ask: Ack) -> Result<Acked, ErrorBody> {
        let answer = self
            .backend
            .ack(caller, &ask.stream, &ask.consumer, &ask.seqs)
            .await?;
        Ok(Acked {
            done: answer.done,
            failed: values(&answer.failed)?,
        })
    }

    /// The proof of entry `seq` in the latest signed checkpoint, checked here: the checkpoint's
    /// signature with the ledger's key, the proof's question, and its path to the root.
    async fn ledger_proof(
        &self,
        caller: &B::Caller,
        ask: LedgerProofArgs,
    ) -> Result<LedgerProof, ErrorBody> {
        let (checkpoint, key) = self.backend.checkpoint(caller).await?;
        if ask.seq >= checkpoint.size {
            return Err(ErrorBody::with_details(
                ErrorCode::NotFound,
                format!(
                    "entry {} is not in the latest signed checkpoint ({} entries); try again \
                     after the next checkpoint",
                    ask.seq, checkpoint.size
                ),
                json!({ "seq": ask.seq, "checkpoint_size": checkpoint.size }),
            ));
        }
        let proof = self
            .backend
            .inclusion_proof(caller, ask.seq, checkpoint.size)
            .await?;
        let verdict = verify_proof(&checkpoint, &key, &proof, ask.seq);
        Ok(LedgerProof {
            seq: ask.seq,
            verified: verdict.is_ok(),
            reason: verdict.err(),
            proof: to_value(&proof)?,
            checkpoint: to_value(&checkpoint)?,
        })
    }

    async fn resources(&self, caller: &B::Caller) -> Result<Vec<Resource>, ErrorBody> {
        let mut all = Vec::new();
        for info in self.backend.streams(caller).await? {
            let name = &info.config.name;
            all.push(
                Resource::new(format!("stream://{name}"), format!("stream {name}"))
                    .with_description(format!(
                        "stream {name}: {} messages on {}; its info and latest messages",
                        info.messages,
                        info.config.subjects.join(", ")
                    ))
                    .with_mime_type("application/json"),
            );
        }
        for schema_ref in self.backend.contracts(caller).await? {
            all.push(
                Resource::new(
                    format!("contract://{schema_ref}"),
                    format!("contract {schema_ref}"),
                )
                .with_description(format!("the JSON Schema of contract {schema_ref}"))
                .with_mime_type("application/schema+json"),
            );
        }
        for agent in self.backend.agents(caller, None).await? {
            let id = &agent.id;
            all.push(
                Resource::new(format!("agent://{id}"), format!("agent {id}"))
                    .with_mime_type("application/json"),
            );
        }
        Ok(all)
    }

    async fn read(&self, caller: &B::Caller, uri: &str) -> Result<(String, Value), ErrorBody> {
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| unknown_resource(uri))?;
        match scheme {
            "stream" => Ok((
                "application/json".to_owned(),
                self.stream(caller, rest).await?,
            )),
            "contract" => {
                let contract = self.backend.contract(caller, rest).await?;
                Ok(("application/schema+json".to_owned(), contract.schema))
            }
            "agent" => Ok((
                "application/json".to_owned(),
                to_value(self.backend.agent(caller, rest).await?)?,
            )),
            "approval" => Ok((
                "application/json".to_owned(),
                to_value(self.backend.approval(caller, rest).await?)?,
            )),
            _ => Err(unknown_resource(uri)),
        }
    }

    /// A stream's info and its [`RECENT_MESSAGES`] latest messages (those still stored and
    /// that the caller may receive), newest last.
    async fn stream(&self, caller: &B::Caller, name: &str) -> Result<Value, ErrorBody> {
        let info = self.backend.stream(caller, name).await?;
        let from = info
            .first_seq
            .max(info.last_seq.saturating_sub(RECENT_MESSAGES - 1))
            .max(1);
        let mut recent = Vec::new();
        for seq in from..=info.last_seq {
            match self.backend.message(caller, name, seq).await {
                Ok(message) => recent.push(to_value(&message)?),
                Err(body) if body.error.code == ErrorCode::NotFound => {}
                Err(body) => return Err(body),
            }
        }
        Ok(json!({ "info": info, "recent_messages": recent }))
    }
}

/// The envelope a `send_message` or `request_approval` describes.
fn message(ask: &SendMessage) -> Result<Envelope, ErrorBody> {
    let kind = match ask.kind.as_deref() {
        None => Kind::Event,
        Some(text) => Kind::parse(text).ok_or_else(|| {
            ErrorBody::with_details(
                ErrorCode::InvalidRequest,
                format!("`kind` must be event, command, query, reply or error, got `{text}`"),
                json!({ "field": "kind" }),
            )
        })?,
    };
    let mut builder =
        Envelope::builder(kind, ask.subject.clone()).payload_json(ask.payload.clone());
    if let Some(name) = &ask.name {
        builder = builder.name(name.clone());
    }
    if let Some(schema) = &ask.schema {
        builder = builder.schema(schema.clone());
    }
    if let Some(score) = ask.ehi_score {
        builder = builder.ehi_score(score);
    }
    if let Some(key) = &ask.idempotency_key {
        builder = builder.idempotency_key(key.clone());
    }
    if let Some(id) = &ask.correlation_id {
        builder = builder.correlation_id(id.clone());
    }
    for (key, value) in &ask.headers {
        builder = builder.header(key.clone(), value.clone());
    }
    built(builder)
}

/// The envelope, or `INVALID_ENVELOPE` naming every rule it breaks.
fn built(builder: ace_envelope::EnvelopeBuilder) -> Result<Envelope, ErrorBody> {
    builder.build().map_err(|err| {
        ErrorBody::with_details(
            ErrorCode::InvalidEnvelope,
            err.to_string(),
            json!({ "reason": err.to_string() }),
        )
    })
}

/// `timeout_ms`, defaulted and bounded.
fn timeout(ms: Option<u64>) -> Result<Duration, ErrorBody> {
    match ms.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS) {
        ms @ 1..=MAX_REQUEST_TIMEOUT_MS => Ok(Duration::from_millis(ms)),
        ms => Err(ErrorBody::with_details(
            ErrorCode::InvalidRequest,
            format!("`timeout_ms` must be 1 to {MAX_REQUEST_TIMEOUT_MS}, got {ms}"),
            json!({ "field": "timeout_ms" }),
        )),
    }
}

fn reply_of(reply: Envelope) -> Result<Reply, ErrorBody> {
    let envelope = to_value(&reply)?;
    Ok(Reply {
        subject: reply.subject,
        kind: reply.kind.to_string(),
        source: reply.source.map(|s| s.id),
        payload: reply.payload.unwrap_or(Value::Null),
        envelope,
    })
}

fn approval_state(approval: Approval) -> Result<ApprovalState, ErrorBody> {
    let status = match approval.status {
        ApprovalStatus::Pending => "pending",
        ApprovalStatus::Approved => "approved",
        ApprovalStatus::Rejected => "rejected",
        ApprovalStatus::Expired => "expired",
    };
    let whole = to_value(&approval)?;
    Ok(ApprovalState {
        approval_id: approval.approval_id,
        status: status.to_owned(),
        decided_by: approval.decided_by,
        comment: approval.comment,
        approval: whole,
    })
}

/// Checks `proof` of entry `seq` against `checkpoint`, signed by the hex Ed25519 `key`.
fn verify_proof(
    checkpoint: &ace_ledger::Checkpoint,
    key: &str,
    proof: &ace_ledger::InclusionProof,
    seq: u64,
) -> Result<(), String> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(key.trim(), &mut bytes)
        .map_err(|e| format!("the ledger key is not 32 bytes of hex: {e}"))?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
        .map_err(|e| format!("the ledger key is not an Ed25519 point: {e}"))?;
    checkpoint
        .verify_signature(&key)
        .map_err(|e| format!("the checkpoint's signature does not verify: {e}"))?;
    if proof.seq != seq || proof.tree_size != checkpoint.size {
        return Err(format!(
            "the proof is of entry {} in {} entries, not of entry {seq} in {}",
            proof.seq, proof.tree_size, checkpoint.size
        ));
    }
    proof
        .verify(&checkpoint.root_hash)
        .map_err(|e| e.to_string())
}

/// The tool's arguments as its input type: `INVALID_REQUEST` naming what does not fit.
fn args<T: DeserializeOwned>(arguments: Value) -> Result<T, ErrorBody> {
    serde_json::from_value(arguments).map_err(|err| {
        ErrorBody::with_details(
            ErrorCode::InvalidRequest,
            format!("the tool's arguments do not match its input schema: {err}"),
            json!({ "reason": err.to_string() }),
        )
    })
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, ErrorBody> {
    serde_json::to_value(value)
        .map_err(|err| ErrorBody::new(ErrorCode::Internal, format!("encoding an answer: {err}")))
}

fn values<T: serde::Serialize>(items: &[T]) -> Result<Vec<Value>, ErrorBody> {
    items.iter().map(to_value).collect()
}

fn unknown_resource(uri: &str) -> ErrorBody {
    ErrorBody::with_details(
        ErrorCode::NotFound,
        format!(
            "no resource `{uri}`: resources are stream://NAME, contract://NAME@VERSION, \
             agent://ID and approval://ID"
        ),
        json!({ "uri": uri }),
    )
}

/// A refusal as a tool result: the error body as structured content, flagged as an error, so
/// the calling model reads the code and message.
fn refused(body: &ErrorBody) -> CallToolResult {
    CallToolResult::structured_error(serde_json::to_value(body).unwrap_or(Value::Null))
}

/// A refusal outside a tool call (resources): a JSON-RPC error whose data is the error body.
fn protocol_error(body: &ErrorBody) -> ErrorData {
    let data = serde_json::to_value(body).ok();
    let message = format!("{}: {}", body.error.code, body.error.message);
    match body.error.code {
        ErrorCode::NotFound => ErrorData::resource_not_found(message, data),
        ErrorCode::InvalidRequest => ErrorData::invalid_params(message, data),
        _ => ErrorData::invalid_request(message, data),
    }
}

impl<B: Backend> ServerHandler for McpServer<B> {
    fn get_info(&self) -> InitializeResult {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build();
        InitializeResult::new(capabilities)
            .with_server_info(Implementation::new("ace-comms", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "ACE::COMMS, a governed message backbone: publish (send_message), ask \
                 (request, query_agent), consume durably (fetch_messages, ack), see who is here \
                 (list_agents, list_streams), ask a human (request_approval, approval_status), \
                 check payloads (validate_payload) and prove what happened (ledger_proof). Every \
                 call is authenticated as you, authorized and recorded in the ledger.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: McpContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::catalogue()))
    }

    fn get_tool(&self, name: &str) -> Option<rmcp::model::Tool> {
        tools::catalogue()
            .into_iter()
            .find(|tool| tool.name == name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: McpContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = match self.backend.caller(&context) {
            Ok(caller) => caller,
            Err(body) => return Ok(refused(&body).into()),
        };
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let result = match self.run(&caller, &request.name, arguments).await {
            Ok(value) => CallToolResult::structured(value),
            Err(body) => refused(&body),
        };
        Ok(result.into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: McpContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = self
            .backend
            .caller(&context)
            .map_err(|b| protocol_error(&b))?;
        let all = self
            .resources(&caller)
            .await
            .map_err(|b| protocol_error(&b))?;
        Ok(ListResourcesResult::with_all_items(all))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: McpContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let template = |uri: &str, name: &str, what: &str| {
            ResourceTemplate::new(uri, name)
                .with_description(what)
                .with_mime_type("application/json")
        };
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            template(
                "stream://{name}",
                "stream",
                "a stream's info and its latest messages",
            ),
            template(
                "contract://{name}@{version}",
                "contract",
                "a registered contract's JSON Schema",
            ),
            template("agent://{id}", "agent", "a present agent's presence"),
            template(
                "approval://{id}",
                "approval",
                "an approval and its held message",
            ),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: McpContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let caller = self
            .backend
            .caller(&context)
            .map_err(|b| protocol_error(&b))?;
        let (mime, value) = self
            .read(&caller, &request.uri)
            .await
            .map_err(|b| protocol_error(&b))?;
        let text = serde_json::to_string_pretty(&value).unwrap_or_default();
        let contents = ResourceContents::text(text, request.uri.clone()).with_mime_type(mime);
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(kind: Option<&str>) -> SendMessage {
        serde_json::from_value(json!({
            "subject": "ace.comms.a2a.agent.planner.evt.task_done.v1",
            "payload": {"task": "t-1"},
            "kind": kind,
            "headers": {"ace-action": "deploy"},
            "ehi_score": 0.5,
        }))
        .unwrap()
    }

    #[test]
    fn given_send_message_arguments_when_built_then_the_envelope_carries_them() {
        let envelope = message(&ask(Some("command"))).unwrap();
        assert_eq!(envelope.kind, Kind::Command);
        assert_eq!(envelope.headers["ace-action"], "deploy");
        assert_eq!(envelope.governance.ehi_score, Some(0.5));
        assert_eq!(envelope.payload, Some(json!({"task": "t-1"})));
    }

    #[test]
    fn given_bad_arguments_when_parsed_then_each_is_a_clear_invalid_request() {
        let bad_kind = message(&ask(Some("shout"))).unwrap_err();
        assert_eq!(bad_kind.error.code, ErrorCode::InvalidRequest);
        assert!(
            bad_kind.error.message.contains("`kind`"),
            "{}",
            bad_kind.error.message
        );
        let unknown = args::<SendMessage>(json!({"subject": "a.b", "payload": 1, "extra": 1}));
        assert_eq!(unknown.unwrap_err().error.code, ErrorCode::InvalidRequest);
        let too_long = timeout(Some(MAX_REQUEST_TIMEOUT_MS + 1)).unwrap_err();
        assert!(too_long.error.message.contains("timeout_ms"));
        assert_eq!(
            timeout(None).unwrap(),
            Duration::from_millis(DEFAULT_REQUEST_TIMEOUT_MS)
        );
    }
}
