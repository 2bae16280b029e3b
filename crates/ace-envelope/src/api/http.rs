//! The HTTP bodies of `/api/v1`: what a client sends and what the server answers, as serde
//! data shared by the server and `ace-client`.
//!
//! The stream and consumer configurations, their info snapshots and counters, the publish
//! acknowledgement and the delivered/stored message types are also the vocabulary of the `Bus`
//! trait: `ace-bus` re-exports them from here, so an engine, the server and a client speak one
//! definition. Durations travel as integer milliseconds.
//!
//! | route | request | answer |
//! | --- | --- | --- |
//! | `POST /api/v1/messages` | an [`Envelope`] | 202 [`Accepted`] |
//! | `POST /api/v1/messages/batch` | `[Envelope]` | 200 [`BatchAnswer`] |
//! | `GET /api/v1/streams` | | [`StreamList`] |
//! | `POST /api/v1/streams` | [`StreamConfig`] | 201 [`StreamInfo`] |
//! | `GET /api/v1/streams/{s}` | | [`StreamInfo`] |
//! | `POST /api/v1/streams/{s}/repair` | [`RepairRequest`] | [`StreamRepair`] (in [`super::repair`]) |
//! | `GET /api/v1/streams/{s}/consumers` | | [`ConsumerList`] |
//! | `POST /api/v1/streams/{s}/consumers` | [`ConsumerConfig`] | 201 [`ConsumerInfo`] |
//! | `GET /api/v1/streams/{s}/consumers/{c}` | | [`ConsumerInfo`] |
//! | `POST …/consumers/{c}/fetch` | [`FetchRequest`] | [`FetchAnswer`] |
//! | `POST …/consumers/{c}/ack`, `nak`, `term` | [`AckRequest`] | [`AckAnswer`] |
//! | `GET /api/v1/streams/{s}/messages/{seq}` | | [`StoredMessage`] |
//! | `POST /api/v1/agents/{id}/heartbeat` | [`Heartbeat`] | [`AgentPresence`] |
//! | `GET /api/v1/agents`, `GET /api/v1/agents/{id}` | | [`AgentList`], [`AgentPresence`] |
//! | `GET /api/v1/sessions/{id}` | | [`Session`] (with `ETag: "<version>"`) |
//! | `PUT /api/v1/sessions/{id}` | [`SessionWrite`] with `If-Match` / `If-None-Match` | [`Session`] |
//! | `GET /api/v1/approvals?status=` | | [`ApprovalList`] |
//! | `GET /api/v1/approvals/{id}` | | [`Approval`] |
//! | `POST /api/v1/approval/{id}` | [`ApprovalDecision`] | [`Decided`] |
//!
//! A publish held for approval answers 202 [`Pending`] (in a batch, [`BatchItem::Held`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{Envelope, ErrorDetail};

pub use super::repair::{ConsumerFloor, LostSegment, RepairRequest, SeqRange, StreamRepair};

/// The answer to `POST /api/v1/messages` (202): the envelope id and where it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Accepted {
    /// The envelope id.
    pub id: Uuid,
    /// The stream that stored it, `None` when no stream captures its subject.
    pub stream: Option<String>,
    /// Its stream sequence (the original one for a duplicate).
    pub seq: Option<u64>,
    /// True when its idempotency key was already accepted inside the dedup window.
    pub duplicate: bool,
}

/// The answer to `POST /api/v1/messages/batch`: one result per envelope, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchAnswer {
    /// How many envelopes were accepted.
    pub accepted: usize,
    /// How many were refused.
    pub refused: usize,
    /// How many were held for approval (neither stored nor refused yet).
    #[serde(default)]
    pub held: usize,
    /// One result per envelope of the batch, in the batch's order.
    pub results: Vec<BatchItem>,
}

/// The result of one envelope of a batch: accepted (`status` 202) or refused with its error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum BatchItem {
    /// Stored (or recognised as a duplicate).
    Accepted {
        /// Always 202.
        status: u16,
        /// Where it went.
        #[serde(flatten)]
        accepted: Accepted,
    },
    /// Held for a human approval (`status` 202): nothing is stored until it is approved.
    Held {
        /// Always 202.
        status: u16,
        /// The approval holding it.
        held: Pending,
    },
    /// Refused; `status` is the HTTP status a single publish would have answered.
    Refused {
        /// The HTTP status of the error code.
        status: u16,
        /// Why.
        error: ErrorDetail,
    },
}

impl BatchItem {
    /// The item as a `Result`: `Ok(Some)` stored, `Ok(None)` held for approval (see
    /// [`BatchItem::held`]), `Err` refused.
    pub fn result(&self) -> Result<Option<&Accepted>, &ErrorDetail> {
        match self {
            BatchItem::Accepted { accepted, .. } => Ok(Some(accepted)),
            BatchItem::Held { .. } => Ok(None),
            BatchItem::Refused { error, .. } => Err(error),
        }
    }

    /// The approval holding the item, when it was held.
    pub fn held(&self) -> Option<&Pending> {
        match self {
            BatchItem::Held { held, .. } => Some(held),
            _ => None,
        }
    }
}

/// The answer to `GET /api/v1/streams`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamList {
    /// Every stream, by name.
    pub streams: Vec<StreamInfo>,
}

/// The answer to `GET /api/v1/streams/{s}/consumers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerList {
    /// Every consumer of the stream, by name.
    pub consumers: Vec<ConsumerInfo>,
}

/// The body of `POST …/consumers/{c}/fetch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    /// Most messages wanted (default 1).
    #[serde(default = "one")]
    pub batch: usize,
    /// Longest wait for the first message, milliseconds (default 0: answer at once).
    #[serde(default)]
    pub expires_ms: u64,
}

impl Default for FetchRequest {
    fn default() -> Self {
        FetchRequest {
            batch: 1,
            expires_ms: 0,
        }
    }
}

fn one() -> usize {
    1
}

/// The answer to a fetch: the deliveries, possibly none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FetchAnswer {
    /// The messages handed out, in delivery order.
    pub messages: Vec<FetchedMessage>,
}

/// One delivery in a [`FetchAnswer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FetchedMessage {
    /// Its stream sequence: the handle for ack, nak and term.
    pub seq: u64,
    /// 1 on first delivery, then incremented on every redelivery.
    pub delivery: u32,
    /// The envelope as published.
    pub envelope: Envelope,
}

impl From<Delivered> for FetchedMessage {
    fn from(d: Delivered) -> Self {
        FetchedMessage {
            seq: d.seq,
            delivery: d.delivery_count,
            envelope: d.envelope,
        }
    }
}

/// The body of `POST …/consumers/{c}/ack`, `nak` or `term`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AckRequest {
    /// The stream sequences of the deliveries.
    pub seqs: Vec<u64>,
    /// Nak only: redeliver after this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Term only: why the message is given up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The answer to an ack, nak or term: which sequences were handled and which were refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckAnswer {
    /// The sequences handled.
    pub done: Vec<u64>,
    /// The sequences refused, each with its error.
    pub failed: Vec<AckFailure>,
}

/// One refused sequence of an [`AckAnswer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AckFailure {
    /// The sequence.
    pub seq: u64,
    /// Why it was refused.
    pub error: ErrorDetail,
}

/// What an agent says about itself in `POST /api/v1/agents/{id}/heartbeat`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The kind of agent (`llm`, `human`, `service`...), free text.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// What it can do; `GET /api/v1/agents?capability=` filters on these.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Clearance 0..=5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearance: Option<u8>,
    /// How long this beat keeps it present, milliseconds (the server's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
    /// Anything else it wants known (a JSON object).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
}

/// One present agent, as the server answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentPresence {
    /// The agent id.
    pub id: String,
    /// The kind of agent, as its last heartbeat said.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub agent_type: Option<String>,
    /// What it can do.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Clearance 0..=5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearance: Option<u8>,
    /// Anything else it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    /// The time to live of its last heartbeat, milliseconds.
    pub ttl_ms: u64,
    /// When its presence began.
    pub online_since: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
    /// When it stops being present without another heartbeat.
    pub expires_at: DateTime<Utc>,
}

/// The answer to `GET /api/v1/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentList {
    /// The present agents.
    pub agents: Vec<AgentPresence>,
}

/// A session's state, as `GET`/`PUT /api/v1/sessions/{id}` answer it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// The session id.
    pub id: String,
    /// Its version: 1 when created, +1 on every write; the `ETag` is `"<version>"`.
    pub version: u64,
    /// The state, any JSON.
    pub data: serde_json::Value,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// The principal that created it: only it (or a principal allowed to manage sessions) may
    /// read or write it. Absent on sessions written before owners were kept, which only such a
    /// manager may touch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The body of `PUT /api/v1/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SessionWrite {
    /// The new state.
    pub data: serde_json::Value,
}

/// Where a held message stands: `pending` until a human decides or its time runs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Pending,
    /// Approved: the message was published with `governance.approval_id` set.
    Approved,
    /// Rejected: the message went to the dead letters and its requester was answered.
    Rejected,
    /// Not decided in time: handled like a rejection.
    Expired,
}

impl ApprovalStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ApprovalStatus; 4] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
    ];

    /// The wire name (`pending`).
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Rejected => "rejected",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// The status of a wire name, `None` for any other text.
    pub fn parse(name: &str) -> Option<ApprovalStatus> {
        ApprovalStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl std::fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who published a held message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Requester {
    /// The principal id.
    pub id: String,
    /// Its roles when it published.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// A message held for a human's approval, as `GET /api/v1/approvals` answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Approval {
    /// The approval id (a UUIDv7: ids sort by creation time).
    pub approval_id: String,
    /// Where it stands.
    pub status: ApprovalStatus,
    /// The held message, whole, as it will be published if approved.
    pub envelope: Envelope,
    /// Who published it.
    pub requested_by: Requester,
    /// Why it is held (the policy's and the EHI gate's reasons).
    pub reasons: Vec<String>,
    /// When it was held.
    pub created_at: DateTime<Utc>,
    /// When it expires undecided.
    pub expires_at: DateTime<Utc>,
    /// Who decided it (`ace-comms-system` for an expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// When it was decided or expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<DateTime<Utc>>,
    /// The decider's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The answer to `POST /api/v1/admin/reload`: what the server read again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reloaded {
    /// The configuration keys whose files were read again (`auth.jwt`, `auth.api_keys`,
    /// `policy.dir`); empty in development mode.
    pub reloaded: Vec<String>,
    /// The SHA-256 (lowercase hex) of every file read, by path.
    #[serde(default)]
    pub files: std::collections::BTreeMap<String, String>,
    /// One line for people.
    pub message: String,
}

/// The answer to `GET /api/v1/approvals`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApprovalList {
    /// The approvals of the status asked for, oldest first.
    pub approvals: Vec<Approval>,
}

/// What a human decides about a held message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Publish it.
    Approve,
    /// Refuse it.
    Reject,
}

/// The body of `POST /api/v1/approval/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecision {
    /// `approve` or `reject`.
    pub decision: Verdict,
    /// Why, in the decider's words (kept in the approval, the ledger and the rejection answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// The answer to `POST /api/v1/approval/{id}`: the decided approval and, when approved, where
/// the released message was stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decided {
    /// The approval after the decision.
    pub approval: Approval,
    /// The publish answer of the released message (approve only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<Accepted>,
}

/// The `status` of a [`Pending`] answer: always `pending_approval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PendingStatus {
    /// Held until a human decides.
    PendingApproval,
}

/// The 202 answer to a publish that was held for approval: nothing is stored yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pending {
    /// Always `pending_approval`.
    pub status: PendingStatus,
    /// The envelope id.
    pub id: Uuid,
    /// The approval that will release or refuse it.
    pub approval_id: String,
}

impl Pending {
    /// The answer for envelope `id` held as `approval_id`.
    pub fn new(id: Uuid, approval_id: impl Into<String>) -> Self {
        Pending {
            status: PendingStatus::PendingApproval,
            id,
            approval_id: approval_id.into(),
        }
    }
}

/// The answer to a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishAck {
    /// The stream that stored the message, `None` when no stream captures the subject.
    pub stream: Option<String>,
    /// The stream sequence (the original one for a duplicate).
    pub seq: Option<u64>,
    /// True when the idempotency key was seen inside the dedup window.
    pub duplicate: bool,
}

/// One message handed to a consumer (on the wire as a [`FetchedMessage`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// The stream it is stored in.
    pub stream: String,
    /// The consumer it is delivered to.
    pub consumer: String,
    /// Its stream sequence: the handle for ack, nak, term and in_progress.
    pub seq: u64,
    /// 1 on first delivery, then incremented on every redelivery.
    pub delivery_count: u32,
    /// The envelope as published.
    pub envelope: Envelope,
}

/// A message read by sequence; also the answer to `GET /api/v1/streams/{s}/messages/{seq}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredMessage {
    /// Its stream sequence.
    pub seq: u64,
    /// When the stream stored it.
    pub stored_at: DateTime<Utc>,
    /// The envelope as published.
    pub envelope: Envelope,
}

/// What is kept once stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RetentionPolicy {
    /// Kept until a limit (max_msgs, max_bytes, max_age) drops it.
    #[default]
    Limits,
    /// Deleted once acknowledged (or dead-lettered) by its consumer; one consumer per filter.
    Workqueue,
    /// Deleted once every consumer that matches it acknowledged it; not kept without consumers.
    Interest,
}

/// What happens when a stream reaches `max_msgs` or `max_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DiscardPolicy {
    /// The oldest messages are dropped (counted).
    #[default]
    Old,
    /// The new message is refused with `BusError::StreamFull`.
    New,
}

/// Where a stream keeps its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StorageKind {
    /// Segment files under the data directory.
    #[default]
    File,
    /// In memory only.
    Memory,
}

/// When a publish counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// One fsync per append batch before any publisher of the batch is answered (group commit).
    Always,
    /// Group commit: publishers arriving together share one fsync before they are answered.
    #[default]
    Batch,
    /// No fsync on the publish path (the OS writes back); fastest, loses the tail on power loss.
    Never,
}

/// A stream: an append-only, durable record of every message whose subject matches `subjects`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Name: `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Subject patterns captured (no two streams may overlap).
    pub subjects: Vec<String>,
    /// What is kept.
    pub retention: RetentionPolicy,
    /// Most messages kept.
    pub max_msgs: Option<u64>,
    /// Most bytes kept.
    pub max_bytes: Option<u64>,
    /// Oldest message kept, in milliseconds.
    #[serde(with = "opt_ms")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub max_age: Option<Duration>,
    /// Largest encoded message accepted, in bytes.
    pub max_msg_size: Option<u64>,
    /// What happens when full.
    pub discard: DiscardPolicy,
    /// How long an idempotency key is remembered, in milliseconds (default 2 minutes).
    #[serde(with = "ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, default = openapi_schema::dedup_window_ms)
    )]
    pub dedup_window: Duration,
    /// Where the messages live.
    pub storage: StorageKind,
    /// When a publish counts as durable.
    pub sync: SyncPolicy,
    /// Dead-letter subject; default `ace.comms.system.dlq.<name>.evt.dead_letter.v1`.
    pub dead_letter: Option<String>,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            name: String::new(),
            subjects: Vec::new(),
            retention: RetentionPolicy::default(),
            max_msgs: None,
            max_bytes: None,
            max_age: None,
            max_msg_size: None,
            discard: DiscardPolicy::default(),
            dedup_window: Duration::from_secs(120),
            storage: StorageKind::default(),
            sync: SyncPolicy::default(),
            dead_letter: None,
        }
    }
}

impl StreamConfig {
    /// A limits stream named `name` over `subjects`, every other field at its default.
    pub fn new(name: impl Into<String>, subjects: &[&str]) -> Self {
        StreamConfig {
            name: name.into(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            ..StreamConfig::default()
        }
    }

    /// The subject dead letters of this stream are published to.
    pub fn dead_letter_subject(&self) -> String {
        self.dead_letter
            .clone()
            .unwrap_or_else(|| super::system::dead_letter_subject(&self.name))
    }
}

/// Prefix of the default dead-letter subjects
/// (`ace.comms.system.dlq.<stream>.evt.dead_letter.v1`, [`super::system::dead_letter_subject`]).
pub const DEAD_LETTER_PREFIX: &str = "ace.comms.system.dlq.";

/// Where a new consumer starts in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeliverPolicy {
    /// From the first stored message.
    #[default]
    All,
    /// From the last stored message matching the filter.
    Last,
    /// Only messages stored after the consumer is created.
    New,
    /// From this sequence (replay).
    BySeq(u64),
    /// From the first message stored at or after this time (replay).
    ByTime(DateTime<Utc>),
}

/// Whether deliveries wait for an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AckPolicy {
    /// Every delivery must be acked, nak'ed or termed; unacked ones are redelivered.
    #[default]
    Explicit,
    /// A delivery counts as acked when handed out.
    None,
}

/// In which order a consumer hands out messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Ordering {
    /// Any order (priority lanes apply); maximum parallelism.
    #[default]
    None,
    /// One message in flight per `partition_key`, in stream order per key (also under
    /// redelivery); messages of different keys, or without a key, go in parallel.
    PerKey,
    /// One message in flight at all, in stream order (priority lanes do not apply).
    Strict,
}

/// When an unacknowledged (or nak'ed) message is redelivered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Redeliver after `ack_wait` (nak without delay: at once).
    #[default]
    None,
    /// The n-th delivery waits the n-th delay (milliseconds) for its ack; the last repeats.
    List(#[serde(with = "ms_list")] Vec<Duration>),
    /// `initial * multiplier^(n-1)`, capped at `max`, plus up to `jitter` (0..=1) of it at random.
    Exponential {
        /// First delay, milliseconds.
        #[serde(with = "ms")]
        initial: Duration,
        /// Cap, milliseconds.
        #[serde(with = "ms")]
        max: Duration,
        /// Growth per delivery.
        multiplier: f64,
        /// Random extra, as a fraction of the delay.
        jitter: f64,
    },
}

/// A consumer: a cursor with acknowledgement state over one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerConfig {
    /// Name: `[A-Za-z0-9_-]+`.
    pub name: String,
    /// Durable consumers survive restarts; ephemeral ones are forgotten on close.
    pub durable: bool,
    /// Only messages whose subject matches this pattern.
    pub filter: Option<String>,
    /// Where it starts.
    pub deliver: DeliverPolicy,
    /// Whether deliveries need acks.
    pub ack: AckPolicy,
    /// How long a delivery waits for its ack before redelivery, milliseconds (default 30 s).
    #[serde(with = "ms")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, default = openapi_schema::ack_wait_ms)
    )]
    pub ack_wait: Duration,
    /// Deliveries before the message moves to the dead-letter subject (`None`: unlimited).
    pub max_deliver: Option<u32>,
    /// Redelivery schedule.
    pub backoff: Backoff,
    /// Most deliveries awaiting an ack at once (default 1,000).
    pub max_ack_pending: usize,
    /// Delivery order.
    pub ordering: Ordering,
    /// P0 before P1 before P2 before P3, with weighted turns 8:4:2:1 so P3 still moves.
    pub priority_lanes: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            name: String::new(),
            durable: true,
            filter: None,
            deliver: DeliverPolicy::default(),
            ack: AckPolicy::default(),
            ack_wait: Duration::from_secs(30),
            max_deliver: Some(5),
            backoff: Backoff::default(),
            max_ack_pending: 1000,
            ordering: Ordering::default(),
            priority_lanes: true,
        }
    }
}

impl ConsumerConfig {
    /// A durable consumer named `name`, every other field at its default.
    pub fn new(name: impl Into<String>) -> Self {
        ConsumerConfig {
            name: name.into(),
            ..ConsumerConfig::default()
        }
    }
}

/// A stream's configuration, state and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamInfo {
    /// Its configuration.
    pub config: StreamConfig,
    /// Messages stored now.
    pub messages: u64,
    /// Bytes stored now.
    pub bytes: u64,
    /// First stored sequence (0 when empty).
    pub first_seq: u64,
    /// Last assigned sequence (0 when nothing was ever stored).
    pub last_seq: u64,
    /// Number of consumers.
    pub consumers: usize,
    /// Counters since the engine opened.
    pub counters: StreamCounters,
    /// Whether the stream accepts writes: `ok`, `read_only` (damage found in its storage: the
    /// records before it are served, writes answer `STREAM_DAMAGED`) or `halted` (a write or
    /// fsync failed: writes answer `STREAM_DAMAGED` until the server restarts).
    #[serde(default)]
    pub state: StreamState,
    /// What is wrong when `state` is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<StreamDamage>,
    /// The highest sequence the stream ever acknowledged (kept outside its segments); above
    /// `last_seq` only when acknowledged messages were lost.
    #[serde(default)]
    pub high_water: u64,
}

/// Whether a stream accepts writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Reads and writes work.
    #[default]
    Ok,
    /// Damage was found in its storage: what survived before it is served, writes are refused.
    ReadOnly,
    /// A write or fsync failed: its outcome is unknowable, so writes are refused.
    Halted,
}

impl StreamState {
    /// The wire name (`ok`, `read_only`, `halted`).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamState::Ok => "ok",
            StreamState::ReadOnly => "read_only",
            StreamState::Halted => "halted",
        }
    }
}

/// Where and why a stream is `read_only` or `halted`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamDamage {
    /// What was found or what failed.
    pub reason: String,
    /// The file at fault (a segment's file name, `<base_seq:020>.log`), when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Byte offset of the damage in that file, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
}

/// What happened on a stream since the engine opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamCounters {
    /// Messages stored.
    pub stored: u64,
    /// Publishes answered as duplicates.
    pub duplicates: u64,
    /// Publishes refused because the stream was full (`discard: new`).
    pub refused_full: u64,
    /// Publishes refused for exceeding `max_msg_size`.
    pub refused_too_large: u64,
    /// Messages dropped by limits (max_msgs, max_bytes, max_age).
    pub dropped_by_limits: u64,
    /// Messages deleted by workqueue or interest retention once acked.
    pub removed_after_ack: u64,
    /// Messages of an interest stream deleted at once because no consumer wanted them.
    pub removed_no_interest: u64,
    /// Bytes of torn tails (never acknowledged) that recovery cut when the stream opened.
    #[serde(default)]
    pub recovery_truncated_bytes: u64,
}

/// A consumer's configuration, state and counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerInfo {
    /// The stream it reads.
    pub stream: String,
    /// Its configuration.
    pub config: ConsumerConfig,
    /// Every sequence at or below it is done (acked, dead-lettered, expired or filtered out).
    pub ack_floor: u64,
    /// Deliveries awaiting an ack (or a scheduled redelivery).
    pub ack_pending: usize,
    /// Messages not yet delivered (including those held by `not_before` or per-key order).
    pub waiting: usize,
    /// Counters (persisted with the consumer state).
    pub counters: ConsumerCounters,
}

/// What happened on a consumer over its life (persisted with its state).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerCounters {
    /// First deliveries.
    pub delivered: u64,
    /// Redeliveries.
    pub redelivered: u64,
    /// Acks.
    pub acked: u64,
    /// Naks.
    pub naked: u64,
    /// Terms.
    pub termed: u64,
    /// Messages moved to the dead-letter subject (after term or max_deliver).
    pub dead_lettered: u64,
    /// Messages whose TTL or deadline passed before delivery: counted, never delivered.
    pub expired: u64,
}

/// What the derives cannot read from the code: the schema of [`Backoff`] as it travels (the
/// `Duration`s of its list variant as integer milliseconds) and the default durations.
#[cfg(feature = "openapi")]
mod openapi_schema {
    use std::borrow::Cow;

    use utoipa::openapi::{RefOr, schema::Schema};

    /// When an unacknowledged (or nak'ed) message is redelivered.
    #[derive(utoipa::ToSchema)]
    #[schema(rename_all = "snake_case")]
    #[allow(dead_code)]
    enum Backoff {
        /// Redeliver after `ack_wait` (nak without delay: at once).
        None,
        /// The n-th delivery waits the n-th delay (milliseconds) for its ack; the last repeats.
        List(Vec<u64>),
        /// `initial * multiplier^(n-1)`, capped at `max`, plus up to `jitter` (0..=1) of it.
        Exponential {
            /// First delay, milliseconds.
            initial: u64,
            /// Cap, milliseconds.
            max: u64,
            /// Growth per delivery.
            multiplier: f64,
            /// Random extra, as a fraction of the delay.
            jitter: f64,
        },
    }

    impl utoipa::PartialSchema for super::Backoff {
        fn schema() -> RefOr<Schema> {
            <Backoff as utoipa::PartialSchema>::schema()
        }
    }

    impl utoipa::ToSchema for super::Backoff {
        fn name() -> Cow<'static, str> {
            Cow::Borrowed("Backoff")
        }
    }

    /// The default `dedup_window` of a stream, as it travels.
    pub(super) fn dedup_window_ms() -> u64 {
        millis(super::StreamConfig::default().dedup_window)
    }

    /// The default `ack_wait` of a consumer, as it travels.
    pub(super) fn ack_wait_ms() -> u64 {
        millis(super::ConsumerConfig::default().ack_wait)
    }

    fn millis(d: std::time::Duration) -> u64 {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
    }
}

/// Serde of a `Duration` as integer milliseconds.
mod ms {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// Serde of an `Option<Duration>` as integer milliseconds or null.
mod opt_ms {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|v| v.map(Duration::from_millis))
    }
}

/// Serde of a list of `Duration`s as integer milliseconds.
mod ms_list {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        d.iter()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<u64>::deserialize(d).map(|v| v.into_iter().map(Duration::from_millis).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_a_minimal_stream_json_when_parsed_then_defaults_fill_the_rest() {
        let cfg: StreamConfig =
            serde_json::from_str(r#"{"name":"orders","subjects":["orders.>"],"max_age":60000}"#)
                .expect("parses");
        assert_eq!(cfg.max_age, Some(Duration::from_secs(60)));
        assert_eq!(cfg.dedup_window, Duration::from_secs(120));
        assert_eq!(
            cfg.dead_letter_subject(),
            "ace.comms.system.dlq.orders.evt.dead_letter.v1"
        );
    }

    #[test]
    fn given_a_consumer_config_when_round_tripped_then_it_is_unchanged() {
        let cfg = ConsumerConfig {
            backoff: Backoff::List(vec![Duration::from_millis(10), Duration::from_secs(1)]),
            deliver: DeliverPolicy::BySeq(7),
            ordering: Ordering::PerKey,
            ..ConsumerConfig::new("worker")
        };
        let json = serde_json::to_string(&cfg).expect("encodes");
        let back: ConsumerConfig = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, cfg);
    }

    #[test]
    fn given_an_unknown_field_when_parsed_then_it_is_refused() {
        let err = serde_json::from_str::<ConsumerConfig>(r#"{"name":"a","ack_wiat":5}"#);
        assert!(err.is_err());
    }

    #[test]
    fn given_a_batch_answer_when_parsed_then_each_item_is_accepted_or_refused() {
        let answer: BatchAnswer = serde_json::from_value(json!({
            "accepted": 1, "refused": 1,
            "results": [
                {"status": 202, "id": "0190b6f0-0000-7000-8000-000000000001",
                 "stream": null, "seq": null, "duplicate": false},
                {"status": 400, "error": {"code": "INVALID_ENVELOPE", "message": "batch[1]: bad",
                 "details": {"index": 1}}}
            ]
        }))
        .expect("parses");
        assert!(
            answer.results[0]
                .result()
                .is_ok_and(|a| a.is_some_and(|a| a.stream.is_none()))
        );
        let refused = answer.results[1].result().expect_err("refused");
        assert_eq!(refused.code, crate::ErrorCode::InvalidEnvelope);
    }

    #[test]
    fn given_a_held_batch_item_when_parsed_then_it_is_held_not_accepted_nor_refused() {
        let item: BatchItem = serde_json::from_value(json!({"status": 202, "held": {
            "status": "pending_approval", "id": "0190b6f0-0000-7000-8000-000000000001",
            "approval_id": "a-1"}}))
        .expect("parses");
        assert!(item.result().is_ok_and(|a| a.is_none()));
        assert_eq!(item.held().map(|p| p.approval_id.as_str()), Some("a-1"));
        let single = serde_json::to_value(Pending::new(Uuid::nil(), "a-1")).expect("encodes");
        assert_eq!(single["status"], "pending_approval");
    }

    #[test]
    fn given_decision_bodies_when_parsed_then_only_approve_or_reject_without_extra_keys_pass() {
        let ok: ApprovalDecision =
            serde_json::from_value(json!({"decision": "reject", "comment": "no"})).expect("ok");
        assert_eq!(ok.decision, Verdict::Reject);
        assert!(serde_json::from_value::<ApprovalDecision>(json!({"decision": "maybe"})).is_err());
        assert!(
            serde_json::from_value::<ApprovalDecision>(json!({"decision": "approve", "x": 1}))
                .is_err()
        );
        assert_eq!(
            ApprovalStatus::parse("expired"),
            Some(ApprovalStatus::Expired)
        );
        assert_eq!(ApprovalStatus::parse("gone"), None);
    }

    #[test]
    fn given_an_ack_request_without_options_when_encoded_then_only_seqs_are_sent() {
        let body = AckRequest {
            seqs: vec![1, 2],
            ..AckRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&body).expect("encodes"),
            json!({"seqs": [1, 2]})
        );
    }

    #[test]
    fn given_an_empty_fetch_body_when_parsed_then_one_message_without_waiting_is_asked() {
        let ask: FetchRequest = serde_json::from_str("{}").expect("parses");
        assert_eq!(ask, FetchRequest::default());
    }
}
