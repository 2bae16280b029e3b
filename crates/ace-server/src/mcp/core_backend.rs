//! [`CoreBackend`]: the MCP operations as `ace_core::Core` calls, the way the HTTP and
//! WebSocket handlers make them. The caller of each MCP request is the [`McpCaller`] the
//! `/mcp` route's gate put on that HTTP request (its transport `mcp`, its peer and its
//! credentials, authenticated before rmcp saw the request), so every call is authenticated,
//! authorized (RBAC, Rego), EHI-gated and recorded as that principal; a refusal is the core's
//! `denied` ledger entry.

use std::time::Duration;

use ace_core::{AckKind, RequestContext};
use ace_envelope::api::http::{
    AckAnswer, AckFailure, AgentPresence, Approval, FetchedMessage, Pending, StoredMessage,
    StreamInfo,
};
use ace_envelope::{Envelope, ErrorBody, ErrorCode};
use ace_ledger::{Checkpoint, InclusionProof};
use async_trait::async_trait;
use axum::http::request::Parts;
use rmcp::RoleServer;
use rmcp::service::RequestContext as McpContext;
use serde_json::Value;

use super::backend::{Backend, Contract, Publication, Verdict};
use crate::http::AppState;

/// The credentials of one `/mcp` HTTP request, put on it by the route's gate.
#[derive(Debug, Clone)]
pub(crate) struct McpCaller(pub(crate) RequestContext);

/// The MCP operations over the server's core.
#[derive(Debug, Clone)]
pub struct CoreBackend {
    state: AppState,
}

impl CoreBackend {
    /// The backend of the `/mcp` endpoint of `state`.
    pub fn new(state: AppState) -> Self {
        CoreBackend { state }
    }
}

fn body(err: &ace_core::CoreError) -> ErrorBody {
    if err.is_internal() {
        tracing::error!(error = %err, "mcp: internal error");
    }
    err.body()
}

#[async_trait]
impl Backend for CoreBackend {
    type Caller = RequestContext;

    fn caller(&self, context: &McpContext<RoleServer>) -> Result<RequestContext, ErrorBody> {
        context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<McpCaller>())
            .map(|caller| caller.0.clone())
            .ok_or_else(|| {
                ErrorBody::new(
                    ErrorCode::Unauthenticated,
                    "the MCP request carries no credentials",
                )
            })
    }

    async fn publish(
        &self,
        ctx: &RequestContext,
        envelope: Envelope,
    ) -> Result<Publication, ErrorBody> {
        let kind = envelope.kind;
        match self.state.core.publish(ctx, envelope).await {
            Ok(accepted) => {
                self.state.count_published(&accepted, "mcp", kind);
                Ok(Publication::Accepted(accepted))
            }
            Err(ace_core::CoreError::PendingApproval { id, approval_id }) => {
                Ok(Publication::Held(Pending::new(id, approval_id)))
            }
            Err(err) => Err(body(&err)),
        }
    }

    /// Subscribes the caller to a fresh inbox, publishes the request naming it as `reply_to`,
    /// and waits for the first message there: two core operations, each judged as the caller
    /// (as `ace-client`'s request does over the WebSocket).
    async fn request(
        &self,
        ctx: &RequestContext,
        mut envelope: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, ErrorBody> {
        let inbox = format!(
            "{}{}",
            ace_core::pipeline::INBOX_PREFIX,
            uuid::Uuid::now_v7().simple()
        );
        let mut replies = self
            .state
            .core
            .subscribe(ctx, &inbox, None)
            .await
            .map_err(|e| body(&e))?;
        envelope.headers.insert("reply_to".to_owned(), inbox);
        if envelope.correlation_id.is_none() {
            envelope.correlation_id = Some(envelope.id.to_string());
        }
        let subject = envelope.subject.clone();
        self.state
            .core
            .publish(ctx, envelope)
            .await
            .map_err(|e| body(&e))?;
        match tokio::time::timeout(timeout, replies.next()).await {
            Ok(Some(reply)) => Ok(std::sync::Arc::unwrap_or_clone(reply)),
            Ok(None) => Err(ErrorBody::new(
                ErrorCode::Unavailable,
                "the reply subscription closed",
            )),
            Err(_) => Err(ErrorBody::with_details(
                ErrorCode::Timeout,
                format!("no reply on `{subject}` within {} ms", timeout.as_millis()),
                serde_json::json!({ "subject": subject, "timeout_ms": timeout.as_millis() as u64 }),
            )),
        }
    }

    async fn fetch(
        &self,
        ctx: &RequestContext,
        stream: &str,
        consumer: &str,
        batch: usize,
        wait: Duration,
    ) -> Result<Vec<FetchedMessage>, ErrorBody> {
        let got = self
            .state
            .core
            .fetch(ctx, stream, consumer, batch, wait)
            .await
            .map_err(|e| body(&e))?;
        Ok(got.into_iter().map(FetchedMessage::from).collect())
    }

    async fn ack(
        &self,
        ctx: &RequestContext,
        stream: &str,
        consumer: &str,
        seqs: &[u64],
    ) -> Result<AckAnswer, ErrorBody> {
        let outcome = self
            .state
            .core
            .acknowledge(ctx, stream, consumer, seqs, &AckKind::Ack)
            .await
            .map_err(|e| body(&e))?;
        let failed = outcome
            .failed
            .into_iter()
            .map(|(seq, err)| AckFailure {
                seq,
                error: body(&err).error,
            })
            .collect();
        Ok(AckAnswer {
            done: outcome.done,
            failed,
        })
    }

    async fn agents(
        &self,
        ctx: &RequestContext,
        capability: Option<&str>,
    ) -> Result<Vec<AgentPresence>, ErrorBody> {
        self.state
            .core
            .agents(ctx, capability)
            .await
            .map_err(|e| body(&e))
    }

    async fn agent(&self, ctx: &RequestContext, id: &str) -> Result<AgentPresence, ErrorBody> {
        self.state.core.agent(ctx, id).await.map_err(|e| body(&e))
    }

    async fn streams(&self, ctx: &RequestContext) -> Result<Vec<StreamInfo>, ErrorBody> {
        self.state
            .core
            .list_streams(ctx)
            .await
            .map_err(|e| body(&e))
    }

    async fn stream(&self, ctx: &RequestContext, name: &str) -> Result<StreamInfo, ErrorBody> {
        self.state
            .core
            .stream_info(ctx, name)
            .await
            .map_err(|e| body(&e))
    }

    async fn message(
        &self,
        ctx: &RequestContext,
        stream: &str,
        seq: u64,
    ) -> Result<StoredMessage, ErrorBody> {
        self.state
            .core
            .get_message(ctx, stream, seq)
            .await
            .map_err(|e| body(&e))
    }

    async fn approval(&self, ctx: &RequestContext, id: &str) -> Result<Approval, ErrorBody> {
        self.state
            .core
            .approval(ctx, id)
            .await
            .map_err(|e| body(&e))
    }

    async fn contracts(&self, ctx: &RequestContext) -> Result<Vec<String>, ErrorBody> {
        let all = self.state.core.contract_list(ctx).map_err(|e| body(&e))?;
        Ok(all.iter().map(|schema| schema.schema_ref()).collect())
    }

    async fn contract(
        &self,
        ctx: &RequestContext,
        schema_ref: &str,
    ) -> Result<Contract, ErrorBody> {
        let schema = self
            .state
            .core
            .contract(ctx, schema_ref)
            .map_err(|e| body(&e))?;
        Ok(Contract {
            schema_ref: schema.schema_ref(),
            schema: schema.schema().clone(),
        })
    }

    async fn validate(
        &self,
        ctx: &RequestContext,
        schema_ref: &str,
        payload: &Value,
    ) -> Result<Verdict, ErrorBody> {
        match self.state.core.validate_payload(ctx, schema_ref, payload) {
            Ok(schema) => Ok(Ok(schema.schema_ref())),
            Err(ace_core::CoreError::ContractViolation { schema, errors }) => {
                let errors = errors
                    .iter()
                    .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
                    .collect();
                Ok(Err((schema, errors)))
            }
            Err(err) => Err(body(&err)),
        }
    }

    async fn checkpoint(&self, ctx: &RequestContext) -> Result<(Checkpoint, String), ErrorBody> {
        let checkpoint = self
            .state
            .core
            .ledger_checkpoint(ctx)
            .await
            .map_err(|e| body(&e))?;
        let key = self
            .state
            .core
            .ledger_key(ctx)
            .await
            .map_err(|e| body(&e))?;
        Ok((checkpoint, key.public_key))
    }

    async fn inclusion_proof(
        &self,
        ctx: &RequestContext,
        seq: u64,
        size: u64,
    ) -> Result<InclusionProof, ErrorBody> {
        self.state
            .core
            .ledger_inclusion_proof(ctx, seq, Some(size))
            .await
            .map_err(|e| body(&e))
    }
}
