//! `ace-core` (layer L4): THE command path of ACE::COMMS. Every adapter (HTTP, WebSocket, MCP,
//! the CLI) and every workflow effect turns what it received into a call on [`Core`], so
//! governance can never be skipped.
//!
//! - `pipeline`: the ingress steps as separate functions, in order —
//!   [`pipeline::authenticate`], [`pipeline::validate`], [`pipeline::contract`],
//!   [`pipeline::authorize`], [`pipeline::gate`], [`pipeline::append`], [`pipeline::record`].
//! - `core`: [`Core`] (injected `Arc<dyn Bus>`, contracts [`Registry`](ace_contracts::Registry),
//!   [`Clock`](ace_envelope::Clock), governance [`Hooks`], [`CoreLimits`]) with
//!   [`Core::publish`] and [`Core::publish_batch`] answering [`Accepted`].
//! - `contracts`: [`Core::contracts`], [`Core::contract`] and [`Core::validate_payload`], the
//!   registry read by authenticated callers (the MCP adapter's contracts and `validate_payload`).
//! - `live`: [`Core::subscribe`], live subscriptions authorized like every other operation.
//! - `ops`: streams, consumers, fetch, [`Core::acknowledge`] (ack/nak/term), get one message.
//! - `governance`: the hook traits ([`Authenticator`], [`Authorizer`], [`Gate`], [`Recorder`])
//!   and their development pass-throughs ([`Hooks::development`]), until the governance issue
//!   fills them in.
//! - `ledger`: [`LedgerRecorder`], the [`Recorder`] over an `ace_ledger::Ledger` (a writer thread
//!   doing group commit, periodic and final checkpoints), the ledger reads
//!   ([`Core::ledger_checkpoint`], proofs, entries, key) and [`Core::record_dead_letters`].
//! - `integrity`: required Ed25519 signatures ([`SignaturePolicy`]) and personal data named by
//!   `governance.pii` ([`PiiPolicy`] for stored payloads, [`redact_for_log`]/[`LogSafe`] for
//!   every log line showing an envelope), set with [`Core::with_integrity`].
//! - `approvals`: messages held for a human — the [`ApprovalStore`] ([`RedbApprovalStore`],
//!   [`MemoryApprovalStore`], set with [`Core::with_approvals`]), [`Core::decide_approval`],
//!   [`Core::expire_approvals`], [`Core::approvals`]; approval events on
//!   `ace.comms.system.hitl.{id}.evt.{approval_requested|approval_decided}.v1`.
//! - `auth`: the real hooks over `ace-policy` — [`PolicyAuthenticator`] (JWT with a cache of
//!   verified tokens, API key, mTLS certificate), [`PolicyAuthorizer`] (every [`Action`] judged
//!   as a publish or subscribe on a subject, see its table) and [`DevAuthorizer`] (development:
//!   all allowed, EHI holds kept).
//! - `agents`: presence — [`Core::heartbeat`], [`Core::agents`], [`Core::agent`],
//!   [`Core::sweep_agents`]; `agent_online`/`agent_offline` events on
//!   `ace.comms.system.agent.{id}.evt.{agent_online|agent_offline}.v1`, published through
//!   [`Core::publish`].
//! - `sessions`: versioned session state — [`Core::session`], [`Core::put_session`] with a
//!   [`Precondition`] (strict: replacing needs `If-Match`), behind the [`SessionStore`] trait
//!   ([`RedbSessionStore`], [`MemorySessionStore`]).
//! - `storage`: [`Core::repair_stream`] (admin: managing the stream), [`Core::watch_stream_health`],
//!   and the `stream_repaired` / `storage_damaged` ledger entries ([`stream_repaired_entry`],
//!   [`storage_damaged_entry`]).
//! - `counters`: [`Counters`] ([`Core::counters`]): messages held for approval, their
//!   outcomes, and the rules behind the holds, for the server's metrics.
//! - `context`: [`RequestContext`] (transport, credentials) and [`Principal`].
//! - `error`: [`CoreError`] and the one mapping to wire codes ([`CoreError::code`],
//!   [`CoreError::body`]).
//!
//! # Invariants
//!
//! - Steps run in this order; steps 1–5 have no side effect, so a refused message is
//!   never half-done: nothing is appended and the caller gets one error body.
//! - Only `pipeline::append` writes a message; `Ok(Accepted)` means it is durable per its
//!   stream's sync policy.
//! - Every operation authenticates and authorizes before touching the bus.
//! - In development mode every caller is the principal named [`DEVELOPMENT_PRINCIPAL_ID`], and
//!   [`Core::is_development`] says so, so the server can announce it.
//! - Presence is judged on the injected clock, and an expired agent is never answered: every
//!   read sweeps first, and each expiry publishes exactly one `offline` event.
//! - A session write applies [`sessions::decide`] and stores in one atomic step: two writers
//!   holding the same version never both succeed, and versions only grow by one.
//! - Internal failures never leak into an error body: [`CoreError::body`] answers them with the
//!   code's generic meaning.

mod agents;
pub mod approvals;
mod approvals_pg;
mod auth;
mod context;
pub mod contracts;
mod core;
mod counters;
mod error;
mod governance;
pub mod integrity;
mod ledger;
mod live;
mod ops;
mod pg;
pub mod pipeline;
pub mod sessions;
mod sessions_pg;
mod storage;

pub use crate::core::{Accepted, Core, CoreLimits};
pub use agents::{
    AgentPresence, Heartbeat, MAX_AGENT_ID_LEN, PresenceConfig, heartbeat_subject, presence_subject,
};
pub use approvals::{
    Approval, ApprovalStatus, ApprovalStore, ApprovalStoreError, Decided, MemoryApprovalStore,
    Pending, RedbApprovalStore, Verdict,
};
pub use approvals_pg::PostgresApprovalStore;
pub use auth::{
    DevAuthorizer, LEDGER_SUBJECTS, NO_CREDENTIALS, PolicyAuthenticator, PolicyAuthorizer,
    RELOAD_SUBJECT, action_subject, decide_subject, manage_agent_subject, manage_session_subject,
    manage_subject, session_subject,
};
pub use context::{
    Credentials, DEVELOPMENT_PRINCIPAL_ID, Principal, RequestContext, SYSTEM_PRINCIPAL_ID,
    system_principal,
};
pub use contracts::{
    ContractStore, MemoryContractStore, RedbContractStore, Registered, RegistryChange, Requirement,
};
pub use counters::Counters;
pub use error::{CoreError, NO_SPACE_RETRY_MS};
pub use governance::{
    Action, AllowAll, Authenticator, Authorizer, Decision, DevAuthenticator, Hooks, NoRecord,
    Recorder,
};
pub use integrity::{
    Integrity, LogSafe, PiiPolicy, SignaturePolicy, parse_public_key, parse_signing_key,
    redact_for_log,
};
pub use ledger::{
    DEAD_LETTER_CONSUMER, EntryQuery, LedgerPublicKey, LedgerRecorder, MAX_ENTRIES_PAGE,
    RECORD_QUEUE, dead_letter_entry,
};
pub use ops::{AckKind, AckOutcome};
pub use sessions::{
    MemorySessionStore, Precondition, RedbSessionStore, Session, SessionStore, StoreError, Writer,
};
pub use sessions_pg::PostgresSessionStore;
pub use storage::{storage_damaged_entry, stream_repaired_entry};

#[cfg(test)]
mod tests;
