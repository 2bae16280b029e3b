//! The messages the server publishes itself: for each, the subject the catalogue
//! (`contracts/comms/events.master.yaml`) gives it, the envelope `name` and `schema`
//! (`subject@version` in `contracts/comms/registry.yaml`) it carries, and its payload type.
//!
//! | message | subject | `name` | `schema` | payload |
//! | --- | --- | --- | --- | --- |
//! | dead letter | `ace.comms.system.dlq.{stream}.evt.dead_letter.v1` ([`dead_letter_subject`]) | `dead_letter` | [`DEAD_LETTER_SCHEMA`] | [`DeadLetter`] |
//! | approval requested | `ace.comms.system.hitl.{approval_id}.evt.approval_requested.v1` | `approval_requested` | [`APPROVAL_REQUESTED_SCHEMA`] | [`ApprovalRequested`] |
//! | approval decided | `ace.comms.system.hitl.{approval_id}.evt.approval_decided.v1`, and a refused message's `reply_to` | `approval_decided` | [`APPROVAL_DECIDED_SCHEMA`] | [`ApprovalDecided`] |
//! | agent online / offline | `ace.comms.system.agent.{id}.evt.agent_online.v1` / `…agent_offline.v1` | `agent_online` / `agent_offline` | [`AGENT_PRESENCE_SCHEMA`] | [`AgentPresence`](super::http::AgentPresence) |
//!
//! Every one carries the envelope `domain` [`DOMAIN`]. The payload types serialize to exactly
//! the closed JSON Schemas named (optional fields are left out, never `null`); text fields the
//! contract bounds are cut to the bound by [`clip`], the whole text staying where it came from
//! (the approval record, the ledger).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Envelope, SourceType};

/// The envelope `domain` of every message the server publishes itself.
pub const DOMAIN: &str = "comms";

/// The `name` of a dead letter.
pub const DEAD_LETTER_NAME: &str = "dead_letter";
/// The contract of a dead letter's payload.
pub const DEAD_LETTER_SCHEMA: &str = "comms.dlq.dead_letter@1.1.0";
/// The `name` of an approval request.
pub const APPROVAL_REQUESTED_NAME: &str = "approval_requested";
/// The contract of an approval request's payload.
pub const APPROVAL_REQUESTED_SCHEMA: &str = "comms.hitl.approval_requested@1.1.0";
/// The `name` of an approval decision (approved, rejected or expired).
pub const APPROVAL_DECIDED_NAME: &str = "approval_decided";
/// The contract of an approval decision's payload.
pub const APPROVAL_DECIDED_SCHEMA: &str = "comms.hitl.approval_decided@1.1.0";
/// The `name` of the event of an agent coming online.
pub const AGENT_ONLINE_NAME: &str = "agent_online";
/// The `name` of the event of an agent's presence expiring.
pub const AGENT_OFFLINE_NAME: &str = "agent_offline";
/// The contract of both presence events' payload.
pub const AGENT_PRESENCE_SCHEMA: &str = "comms.agent.presence@1.0.0";

/// Longest `detail` of a dead letter and `reason` of a decision, in characters.
pub const MAX_DETAIL_CHARS: usize = 2_000;
/// Longest item of an approval request's `reasons`, in characters.
pub const MAX_REASON_CHARS: usize = 1_000;

/// The default dead-letter subject of stream `stream`.
pub fn dead_letter_subject(stream: &str) -> String {
    format!("ace.comms.system.dlq.{stream}.evt.{DEAD_LETTER_NAME}.v1")
}

/// The subject of approval `approval_id`'s event `name` ([`APPROVAL_REQUESTED_NAME`] or
/// [`APPROVAL_DECIDED_NAME`]).
pub fn approval_subject(approval_id: &str, name: &str) -> String {
    format!("ace.comms.system.hitl.{approval_id}.evt.{name}.v1")
}

/// The subject of agent `id`'s presence event `name` ([`AGENT_ONLINE_NAME`] or
/// [`AGENT_OFFLINE_NAME`]).
pub fn presence_subject(id: &str, name: &str) -> String {
    format!("ace.comms.system.agent.{id}.evt.{name}.v1")
}

/// A principal as the contracts write it: `<type>:<id>` (`human:kbroder`).
pub fn principal_ref(kind: SourceType, id: &str) -> String {
    format!("{}:{id}", kind.as_str())
}

/// `text` cut to at most `max` characters (JSON Schema's `maxLength` counts characters).
pub fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

/// Why a message became a dead letter: the contract's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterReason {
    /// A consumer had it delivered `max_deliver` times without an acknowledgement.
    MaxDeliver,
    /// A consumer gave up on it (`term`).
    Term,
    /// It was held for approval and nobody decided in time.
    Expired,
    /// It was held for approval and a human rejected it.
    Rejected,
}

impl DeadLetterReason {
    /// The wire name (also the `ace-dlq-reason` header).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::MaxDeliver => "max_deliver",
            DeadLetterReason::Term => "term",
            DeadLetterReason::Expired => "expired",
            DeadLetterReason::Rejected => "rejected",
        }
    }
}

impl std::fmt::Display for DeadLetterReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The payload of a dead letter (`comms.dlq.dead_letter@1.1.0`). A stored message a consumer
/// gave up on has `stream`, `seq`, `consumer` and `deliveries`; a held message that was refused
/// was never stored and has `approval_id` instead (and `stream` when one captures its subject).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetter {
    /// The original message's id.
    pub message_id: String,
    /// The stream it was stored in (or would have been).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    /// Its sequence there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The original message's subject.
    pub subject: String,
    /// The consumer that gave up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// How many times that consumer had it delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<u32>,
    /// Why, from the contract's list.
    pub reason: DeadLetterReason,
    /// Why, in words: the consumer's reason, the last redelivery cause, the decider's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it became a dead letter.
    pub dead_lettered_at: DateTime<Utc>,
    /// The original envelope, unchanged: what a replay publishes again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<Box<Envelope>>,
    /// The approval of a refused held message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

/// The payload of an approval request (`comms.hitl.approval_requested@1.1.0`): a summary, never
/// the held payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequested {
    /// The approval id.
    pub approval_id: String,
    /// The held message's id.
    pub message_id: String,
    /// The held message's subject.
    pub subject: String,
    /// The held message's `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Who published it, as [`principal_ref`].
    pub requested_by: String,
    /// Why it is held (at least one reason).
    pub reasons: Vec<String>,
    /// When it expires undecided.
    pub expires_at: DateTime<Utc>,
}

/// How a held message's approval ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalOutcome {
    /// Released onto its stream.
    Approved,
    /// Refused by a human.
    Rejected,
    /// Not decided in time.
    Expired,
}

/// The payload of an approval decision (`comms.hitl.approval_decided@1.1.0`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecided {
    /// The approval id.
    pub approval_id: String,
    /// The held message's id.
    pub message_id: String,
    /// How it ended.
    pub decision: ApprovalOutcome,
    /// Who decided, as [`principal_ref`] (the server itself for an expiry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The decider's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub decided_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_text_longer_than_the_bound_when_clipped_then_it_keeps_that_many_characters() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("abcdef", 3), "abc");
        assert_eq!(clip("ééé", 2), "éé", "characters, not bytes");
        assert_eq!(clip("", 0), "");
        assert_eq!(clip("a", 0), "");
    }

    #[test]
    fn given_the_subject_builders_when_called_then_they_name_the_catalogue_subjects() {
        assert_eq!(
            dead_letter_subject("ORDERS"),
            "ace.comms.system.dlq.ORDERS.evt.dead_letter.v1"
        );
        assert_eq!(
            approval_subject("a1", APPROVAL_REQUESTED_NAME),
            "ace.comms.system.hitl.a1.evt.approval_requested.v1"
        );
        assert_eq!(
            presence_subject("chuck", AGENT_OFFLINE_NAME),
            "ace.comms.system.agent.chuck.evt.agent_offline.v1"
        );
        assert_eq!(principal_ref(SourceType::Human, "kb"), "human:kb");
    }

    #[test]
    fn given_a_dead_letter_without_the_optional_fields_when_serialized_then_none_is_written() {
        let letter = DeadLetter {
            message_id: "m".into(),
            stream: None,
            seq: None,
            subject: "a.b".into(),
            consumer: None,
            deliveries: None,
            reason: DeadLetterReason::Rejected,
            detail: None,
            dead_lettered_at: DateTime::<Utc>::UNIX_EPOCH,
            original: None,
            approval_id: Some("ap".into()),
        };
        let json = serde_json::to_value(&letter).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "message_id": "m", "subject": "a.b", "reason": "rejected",
                "dead_lettered_at": "1970-01-01T00:00:00Z", "approval_id": "ap",
            })
        );
        let back: DeadLetter = serde_json::from_value(json).unwrap();
        assert_eq!(back, letter);
        let unknown = serde_json::json!({
            "message_id": "m", "subject": "a.b", "reason": "term",
            "dead_lettered_at": "1970-01-01T00:00:00Z", "extra": 1,
        });
        assert!(serde_json::from_value::<DeadLetter>(unknown).is_err());
        let free_text = serde_json::json!({
            "message_id": "m", "subject": "a.b", "reason": "term: poison",
            "dead_lettered_at": "1970-01-01T00:00:00Z",
        });
        assert!(serde_json::from_value::<DeadLetter>(free_text).is_err());
    }
}
