//! `mcp`: an MCP server on standard input and output, for desktop agents (Claude Desktop and
//! any client that starts its MCP servers as processes). It announces the same tools and
//! resources as the server's `/mcp` endpoint (`ace_server::mcp::McpServer`) and carries out
//! each call on the server at `--server` through `ace-client`, with the `--token` or
//! `--api-key` given: the server authenticates, authorizes, gates and records every call as
//! that principal. `request` and `query_agent` go over the WebSocket (an inbox subscription);
//! contracts and `validate_payload` use the contracts compiled into this binary, the registry
//! the server embeds, without a round trip. Nothing but MCP messages is written to standard
//! output.

use std::time::Duration;

use ace_client::{Client, ClientError};
use ace_contracts::Registry;
use ace_envelope::api::http::{
    AckAnswer, AgentPresence, Approval, FetchedMessage, StoredMessage, StreamInfo,
};
use ace_envelope::{Envelope, ErrorBody, ErrorCode};
use ace_ledger::{Checkpoint, InclusionProof};
use ace_server::mcp::{Backend, Contract, McpServer, Publication, Verdict};
use anyhow::{Context, Result};
use async_trait::async_trait;
use rmcp::service::RequestContext as McpContext;
use rmcp::{RoleServer, ServiceExt};
use serde_json::{Value, json};

use super::Outcome;
use super::client::client;
use crate::args::ServerArgs;

/// Serves MCP on stdio until the client closes it.
pub(crate) fn run(server: &ServerArgs) -> Result<Outcome> {
    let backend = ClientBackend {
        client: client(server)?,
        registry: std::sync::Arc::new(Registry::embedded().context("loading the contracts")?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let running = McpServer::new(backend)
            .serve(rmcp::transport::stdio())
            .await
            .context("starting the MCP session on stdio")?;
        running.waiting().await.context("serving MCP on stdio")?;
        anyhow::Ok(())
    })?;
    Ok(Outcome::Success)
}

/// The MCP operations as calls on a remote server.
#[derive(Clone)]
struct ClientBackend {
    client: Client,
    registry: std::sync::Arc<Registry>,
}

/// The server's error body for a failed client call: its own when it answered, else the
/// closest code with what went wrong.
fn body(err: ClientError) -> ErrorBody {
    match err {
        ClientError::Api { body, .. } => body,
        ClientError::Held(pending) => ErrorBody::with_details(
            ErrorCode::PendingApproval,
            format!(
                "message {} is held for approval {}",
                pending.id, pending.approval_id
            ),
            json!({ "id": pending.id, "approval_id": pending.approval_id }),
        ),
        ClientError::Timeout { .. } => ErrorBody::new(ErrorCode::Timeout, err.to_string()),
        other => ErrorBody::new(ErrorCode::Unavailable, other.to_string()),
    }
}

#[async_trait]
impl Backend for ClientBackend {
    type Caller = ();

    fn caller(&self, _: &McpContext<RoleServer>) -> Result<(), ErrorBody> {
        Ok(())
    }

    async fn publish(&self, _: &(), envelope: Envelope) -> Result<Publication, ErrorBody> {
        match self.client.publish(&envelope).await {
            Ok(accepted) => Ok(Publication::Accepted(accepted)),
            Err(ClientError::Held(pending)) => Ok(Publication::Held(pending)),
            Err(err) => Err(body(err)),
        }
    }

    async fn request(
        &self,
        _: &(),
        envelope: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, ErrorBody> {
        let ws = self.client.connect_ws().await.map_err(body)?;
        let reply = ws.request(envelope, timeout).await.map_err(body);
        if let Err(err) = ws.close().await {
            tracing::debug!(error = %err, "closing the request's WebSocket failed");
        }
        reply
    }

    async fn fetch(
        &self,
        _: &(),
        stream: &str,
        consumer: &str,
        batch: usize,
        wait: Duration,
    ) -> Result<Vec<FetchedMessage>, ErrorBody> {
        self.client
            .fetch(stream, consumer, batch, wait)
            .await
            .map_err(body)
    }

    async fn ack(
        &self,
        _: &(),
        stream: &str,
        consumer: &str,
        seqs: &[u64],
    ) -> Result<AckAnswer, ErrorBody> {
        self.client.ack(stream, consumer, seqs).await.map_err(body)
    }

    async fn agents(
        &self,
        _: &(),
        capability: Option<&str>,
    ) -> Result<Vec<AgentPresence>, ErrorBody> {
        self.client.agents(capability).await.map_err(body)
    }

    async fn agent(&self, _: &(), id: &str) -> Result<AgentPresence, ErrorBody> {
        self.client.agent(id).await.map_err(body)
    }

    async fn streams(&self, _: &()) -> Result<Vec<StreamInfo>, ErrorBody> {
        self.client.list_streams().await.map_err(body)
    }

    async fn stream(&self, _: &(), name: &str) -> Result<StreamInfo, ErrorBody> {
        self.client.stream_info(name).await.map_err(body)
    }

    async fn message(&self, _: &(), stream: &str, seq: u64) -> Result<StoredMessage, ErrorBody> {
        self.client.get_message(stream, seq).await.map_err(body)
    }

    async fn approval(&self, _: &(), id: &str) -> Result<Approval, ErrorBody> {
        self.client.approval(id).await.map_err(body)
    }

    async fn contracts(&self, _: &()) -> Result<Vec<String>, ErrorBody> {
        let mut subjects: Vec<&str> = self.registry.subjects().collect();
        subjects.sort_unstable();
        let mut all = Vec::new();
        for subject in subjects {
            for version in self.registry.versions(subject).unwrap_or_default() {
                all.push(format!("{subject}@{version}"));
            }
        }
        Ok(all)
    }

    async fn contract(&self, _: &(), schema_ref: &str) -> Result<Contract, ErrorBody> {
        let schema = self.resolve(schema_ref)?;
        Ok(Contract {
            schema_ref: schema.schema_ref(),
            schema: schema.schema().clone(),
        })
    }

    async fn validate(
        &self,
        _: &(),
        schema_ref: &str,
        payload: &Value,
    ) -> Result<Verdict, ErrorBody> {
        let schema = self.resolve(schema_ref)?;
        Ok(match schema.validate(payload) {
            Ok(()) => Ok(schema.schema_ref()),
            Err(errors) => Err((
                schema.schema_ref(),
                errors
                    .iter()
                    .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                    .collect(),
            )),
        })
    }

    async fn checkpoint(&self, _: &()) -> Result<(Checkpoint, String), ErrorBody> {
        let checkpoint: Checkpoint = self.client.ledger_checkpoint().await.map_err(body)?;
        let key: Value = self.client.ledger_key().await.map_err(body)?;
        let key = key["public_key"].as_str().unwrap_or_default().to_owned();
        Ok((checkpoint, key))
    }

    async fn inclusion_proof(
        &self,
        _: &(),
        seq: u64,
        size: u64,
    ) -> Result<InclusionProof, ErrorBody> {
        self.client
            .ledger_inclusion_proof(seq, Some(size))
            .await
            .map_err(body)
    }
}

impl ClientBackend {
    fn resolve(
        &self,
        schema_ref: &str,
    ) -> Result<std::sync::Arc<ace_contracts::RegisteredSchema>, ErrorBody> {
        self.registry.resolve(schema_ref).map_err(|err| {
            ErrorBody::with_details(
                ErrorCode::UnknownSchema,
                format!("contract `{schema_ref}` is not registered: {err}"),
                json!({ "schema": schema_ref }),
            )
        })
    }
}
