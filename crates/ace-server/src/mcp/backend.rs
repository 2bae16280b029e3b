//! [`Backend`]: what the MCP tools and resources need from ACE::COMMS, one method per
//! operation. The `/mcp` endpoint implements it over `ace_core::Core` with each HTTP request's
//! credentials ([`super::CoreBackend`]); `ace-comms mcp` implements it over `ace-client`
//! against a remote server. Either way every call is one governed operation of the server,
//! authenticated as the caller.

use std::time::Duration;

use ace_envelope::api::http::{
    Accepted, AckAnswer, AgentPresence, Approval, FetchedMessage, Pending, StoredMessage,
    StreamInfo,
};
use ace_envelope::{Envelope, ErrorBody};
use ace_ledger::{Checkpoint, InclusionProof};
use async_trait::async_trait;
use rmcp::RoleServer;
use rmcp::service::RequestContext as McpContext;
use serde_json::Value;

/// What a publish came to: stored, or held for a human.
#[derive(Debug, Clone, PartialEq)]
pub enum Publication {
    /// Stored, with its stream and sequence.
    Accepted(Accepted),
    /// Held until an approver decides.
    Held(Pending),
}

/// A registered contract as the MCP resources show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    /// `name@version`.
    pub schema_ref: String,
    /// The JSON Schema.
    pub schema: Value,
}

/// The verdict on a payload: `Ok` names the contract it satisfies; `Err` lists every problem
/// (a violation, not a failure of the call).
pub type Verdict = Result<String, (String, Vec<Value>)>;

/// The operations behind the MCP tools and resources; every error is the server's error body.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Who is calling, as the backend needs it for each operation.
    type Caller: Send + Sync;

    /// The caller of one MCP request (over HTTP: the credentials of that HTTP request).
    fn caller(&self, context: &McpContext<RoleServer>) -> Result<Self::Caller, ErrorBody>;

    /// Publishes one envelope.
    async fn publish(
        &self,
        caller: &Self::Caller,
        envelope: Envelope,
    ) -> Result<Publication, ErrorBody>;

    /// Publishes `envelope` as a request and waits up to `timeout` for its first reply.
    async fn request(
        &self,
        caller: &Self::Caller,
        envelope: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, ErrorBody>;

    /// Takes up to `batch` messages from a durable consumer, waiting up to `wait`.
    async fn fetch(
        &self,
        caller: &Self::Caller,
        stream: &str,
        consumer: &str,
        batch: usize,
        wait: Duration,
    ) -> Result<Vec<FetchedMessage>, ErrorBody>;

    /// Acknowledges deliveries of a durable consumer.
    async fn ack(
        &self,
        caller: &Self::Caller,
        stream: &str,
        consumer: &str,
        seqs: &[u64],
    ) -> Result<AckAnswer, ErrorBody>;

    /// The present agents, only those with `capability` when given.
    async fn agents(
        &self,
        caller: &Self::Caller,
        capability: Option<&str>,
    ) -> Result<Vec<AgentPresence>, ErrorBody>;

    /// One present agent.
    async fn agent(&self, caller: &Self::Caller, id: &str) -> Result<AgentPresence, ErrorBody>;

    /// The streams the caller may read.
    async fn streams(&self, caller: &Self::Caller) -> Result<Vec<StreamInfo>, ErrorBody>;

    /// One stream.
    async fn stream(&self, caller: &Self::Caller, name: &str) -> Result<StreamInfo, ErrorBody>;

    /// One stored message.
    async fn message(
        &self,
        caller: &Self::Caller,
        stream: &str,
        seq: u64,
    ) -> Result<StoredMessage, ErrorBody>;

    /// One approval.
    async fn approval(&self, caller: &Self::Caller, id: &str) -> Result<Approval, ErrorBody>;

    /// Every registered contract's `name@version`.
    async fn contracts(&self, caller: &Self::Caller) -> Result<Vec<String>, ErrorBody>;

    /// One registered contract.
    async fn contract(
        &self,
        caller: &Self::Caller,
        schema_ref: &str,
    ) -> Result<Contract, ErrorBody>;

    /// Checks `payload` against the contract `schema_ref` names.
    async fn validate(
        &self,
        caller: &Self::Caller,
        schema_ref: &str,
        payload: &Value,
    ) -> Result<Verdict, ErrorBody>;

    /// The latest signed checkpoint and the hex Ed25519 key that signs the ledger.
    async fn checkpoint(&self, caller: &Self::Caller) -> Result<(Checkpoint, String), ErrorBody>;

    /// The inclusion proof of entry `seq` in the tree of `size` entries.
    async fn inclusion_proof(
        &self,
        caller: &Self::Caller,
        seq: u64,
        size: u64,
    ) -> Result<InclusionProof, ErrorBody>;
}
