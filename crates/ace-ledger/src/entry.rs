//! What one ledger entry is and the exact bytes that are hashed for it.
//!
//! # Encoding (stable: changing it breaks every existing ledger)
//!
//! - **Leaf bytes** of an entry: the canonical JSON (`ace_envelope::canonical::to_canonical_vec`:
//!   keys sorted, no whitespace) of the object with exactly the nine fields `seq` (integer, 0-based,
//!   equal to the Merkle leaf index), `ts` (RFC 3339 UTC string as chrono writes it), `kind`
//!   (snake_case), `actor`, `subject`, `message_id` (string or `null`), `content_sha256` (string or
//!   `null`), `decision`, `details` (any JSON).
//! - **Chain hash**: `h_n = SHA-256(h_{n-1} || leaf_bytes_n)` with `h_{-1}` = 32 zero bytes.
//! - **Stored line**: the canonical JSON of those nine fields plus `chain_hash` (hex), then `\n`.
//!   A verifier re-derives the leaf bytes from the stored line by removing `chain_hash` and
//!   re-canonicalizing, so it never depends on this crate's structs reading the line back.

use std::fmt;
use std::str::FromStr;

use ace_envelope::Envelope;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::hash::Hash;
use crate::merkle;

/// The name of the chain-hash field of a stored line (the only field outside the leaf bytes).
pub const CHAIN_HASH_FIELD: &str = "chain_hash";

/// What happened, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EntryKind {
    /// A message was accepted and appended.
    Accepted,
    /// A message was denied by policy.
    Denied,
    /// A message was held for human approval.
    Held,
    /// A held message was approved.
    Approved,
    /// A held message was rejected.
    Rejected,
    /// A held message expired undecided.
    Expired,
    /// A message was dead-lettered.
    DeadLettered,
    /// The configuration changed.
    ConfigChanged,
    /// A workflow ran.
    WorkflowRun,
    /// A session's state was written (the subject names the session, the content hash its data).
    SessionWritten,
    /// A stream's storage, when opened, had a torn tail cut or damage found (the subject names
    /// the stream; details say state, segment, offset and bytes).
    StorageRecovered,
    /// A stream became `read_only` or `halted` while the server ran (a failed write or fsync,
    /// corruption found on a read, damage found while rebuilding its state): one entry per
    /// transition; the subject names the stream, details say state, reason, segment and offset.
    StorageDamaged,
    /// A damaged stream was repaired by accepting a loss (the actor is who asked; details say
    /// what was lost — sequences, bytes, segment files — and where it was moved).
    StreamRepaired,
}

impl EntryKind {
    /// Every kind, in declaration order.
    pub const ALL: [EntryKind; 13] = [
        EntryKind::Accepted,
        EntryKind::Denied,
        EntryKind::Held,
        EntryKind::Approved,
        EntryKind::Rejected,
        EntryKind::Expired,
        EntryKind::DeadLettered,
        EntryKind::ConfigChanged,
        EntryKind::WorkflowRun,
        EntryKind::SessionWritten,
        EntryKind::StorageRecovered,
        EntryKind::StorageDamaged,
        EntryKind::StreamRepaired,
    ];

    /// The snake_case name used in JSON and query strings.
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Accepted => "accepted",
            EntryKind::Denied => "denied",
            EntryKind::Held => "held",
            EntryKind::Approved => "approved",
            EntryKind::Rejected => "rejected",
            EntryKind::Expired => "expired",
            EntryKind::DeadLettered => "dead_lettered",
            EntryKind::ConfigChanged => "config_changed",
            EntryKind::WorkflowRun => "workflow_run",
            EntryKind::SessionWritten => "session_written",
            EntryKind::StorageRecovered => "storage_recovered",
            EntryKind::StorageDamaged => "storage_damaged",
            EntryKind::StreamRepaired => "stream_repaired",
        }
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EntryKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EntryKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown ledger entry kind `{s}`"))
    }
}

/// An entry as the caller hands it in; the ledger adds `seq`, `ts` and the chain hash.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// What happened.
    pub kind: EntryKind,
    /// Who did it (a principal id, `system`, …).
    pub actor: String,
    /// The subject concerned (a message subject, a config key, a workflow name).
    pub subject: String,
    /// The message concerned, if any.
    pub message_id: Option<String>,
    /// SHA-256 (hex) of the content concerned, if any.
    pub content_sha256: Option<String>,
    /// The decision taken, in a word or a sentence (`allow`, `deny: no role`, …).
    pub decision: String,
    /// Anything else worth keeping, as JSON.
    pub details: Value,
}

impl NewEntry {
    /// An entry with no message, no content hash, an empty decision and `details: {}`.
    pub fn new(kind: EntryKind, actor: impl Into<String>, subject: impl Into<String>) -> Self {
        NewEntry {
            kind,
            actor: actor.into(),
            subject: subject.into(),
            message_id: None,
            content_sha256: None,
            decision: String::new(),
            details: Value::Object(Map::new()),
        }
    }

    /// An entry about a message: its subject and id, and as `content_sha256` the SHA-256 of the
    /// canonical JSON of its inline `payload`, else the `payload_ref.sha256` it carries, else
    /// none. What the pipeline's recorder calls for every decision on a message.
    pub fn for_envelope(kind: EntryKind, actor: impl Into<String>, envelope: &Envelope) -> Self {
        let content = match (&envelope.payload, &envelope.payload_ref) {
            (Some(payload), _) => {
                Some(Hash::of(&[&ace_envelope::canonical::to_canonical_vec(payload)]).to_hex())
            }
            (None, Some(reference)) => Some(reference.sha256.clone()),
            (None, None) => None,
        };
        NewEntry {
            message_id: Some(envelope.id.to_string()),
            content_sha256: content,
            ..NewEntry::new(kind, actor, envelope.subject.clone())
        }
    }

    /// Sets the message id.
    pub fn message_id(mut self, id: impl Into<String>) -> Self {
        self.message_id = Some(id.into());
        self
    }

    /// Sets the content hash (hex SHA-256).
    pub fn content_sha256(mut self, hex: impl Into<String>) -> Self {
        self.content_sha256 = Some(hex.into());
        self
    }

    /// Sets the decision.
    pub fn decision(mut self, decision: impl Into<String>) -> Self {
        self.decision = decision.into();
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// A recorded entry: the caller's fields plus its place in the ledger and its chain hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// 0-based position; equal to the Merkle leaf index.
    pub seq: u64,
    /// When the ledger recorded it (the ledger's clock).
    pub ts: DateTime<Utc>,
    /// What happened.
    pub kind: EntryKind,
    /// Who did it.
    pub actor: String,
    /// The subject concerned.
    pub subject: String,
    /// The message concerned, if any.
    pub message_id: Option<String>,
    /// SHA-256 (hex) of the content concerned, if any.
    pub content_sha256: Option<String>,
    /// The decision taken.
    pub decision: String,
    /// Anything else, as JSON.
    pub details: Value,
    /// `h_seq = SHA-256(h_{seq-1} || leaf_bytes)`.
    pub chain_hash: Hash,
}

impl Entry {
    /// Builds entry `seq` from `new`, chaining it onto `prev_chain` (the previous entry's
    /// chain hash, or [`Hash::ZERO`] for seq 0).
    pub fn seal(new: NewEntry, seq: u64, ts: DateTime<Utc>, prev_chain: Hash) -> Entry {
        Self::seal_with_leaf(new, seq, ts, prev_chain).0
    }

    /// [`Entry::seal`], also returning the leaf hash (the leaf bytes are encoded once).
    pub fn seal_with_leaf(
        new: NewEntry,
        seq: u64,
        ts: DateTime<Utc>,
        prev_chain: Hash,
    ) -> (Entry, Hash) {
        let mut entry = Entry {
            seq,
            ts,
            kind: new.kind,
            actor: new.actor,
            subject: new.subject,
            message_id: new.message_id,
            content_sha256: new.content_sha256,
            decision: new.decision,
            details: new.details,
            chain_hash: Hash::ZERO,
        };
        let leaf = entry.leaf_bytes();
        entry.chain_hash = chain_hash(&prev_chain, &leaf);
        (entry, merkle::leaf_hash(&leaf))
    }

    /// The canonical leaf bytes (see the module documentation).
    pub fn leaf_bytes(&self) -> Vec<u8> {
        self.encode(None)
    }

    /// The RFC 6962 leaf hash `SHA-256(0x00 || leaf_bytes)`.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.leaf_bytes())
    }

    /// The stored line: canonical JSON with `chain_hash`, without the trailing newline.
    pub fn to_line(&self) -> Vec<u8> {
        self.encode(Some(&self.chain_hash))
    }

    /// Whether this entry's chain hash follows from `prev_chain` and its content.
    pub fn chains_from(&self, prev_chain: &Hash) -> bool {
        chain_hash(prev_chain, &self.leaf_bytes()) == self.chain_hash
    }

    /// Canonical JSON written field by field, keys already in sorted order, so the hot path
    /// builds no `serde_json::Value`; equal to `to_canonical_vec` of the entry's JSON object
    /// (a unit test holds the two together, and `verify_dir` uses the generic path).
    fn encode(&self, chain: Option<&Hash>) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        out.extend_from_slice(b"{\"actor\":");
        write_json(&mut out, &self.actor);
        if let Some(chain) = chain {
            out.extend_from_slice(b",\"chain_hash\":");
            write_json(&mut out, chain);
        }
        out.extend_from_slice(b",\"content_sha256\":");
        write_json(&mut out, &self.content_sha256);
        out.extend_from_slice(b",\"decision\":");
        write_json(&mut out, &self.decision);
        out.extend_from_slice(b",\"details\":");
        ace_envelope::canonical::write_canonical(&mut out, &self.details);
        out.extend_from_slice(b",\"kind\":");
        write_json(&mut out, &self.kind);
        out.extend_from_slice(b",\"message_id\":");
        write_json(&mut out, &self.message_id);
        out.extend_from_slice(b",\"seq\":");
        write_json(&mut out, &self.seq);
        out.extend_from_slice(b",\"subject\":");
        write_json(&mut out, &self.subject);
        out.extend_from_slice(b",\"ts\":");
        write_json(&mut out, &self.ts);
        out.push(b'}');
        out
    }
}

/// Appends the JSON of a scalar (string, number, null, timestamp, hash, kind).
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    // Serializing these types into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

/// `SHA-256(prev || leaf_bytes)`.
pub fn chain_hash(prev: &Hash, leaf_bytes: &[u8]) -> Hash {
    Hash::of(&[&prev.0, leaf_bytes])
}

/// The leaf bytes of a stored line already parsed as JSON: `chain_hash` removed, canonical form.
pub fn leaf_bytes_of_line(line: &Value) -> Vec<u8> {
    let mut value = line.clone();
    if let Value::Object(map) = &mut value {
        map.remove(CHAIN_HASH_FIELD);
    }
    ace_envelope::canonical::to_canonical_vec(&value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(seq: u64, prev: Hash) -> Entry {
        let new = NewEntry::new(EntryKind::Accepted, "alice", "ace.comms.x")
            .message_id("m-1")
            .decision("allow")
            .details(json!({"b": 2, "a": [1, 2.5]}));
        Entry::seal(new, seq, DateTime::UNIX_EPOCH, prev)
    }

    #[test]
    fn given_an_entry_when_encoded_then_leaf_bytes_are_sorted_canonical_json_of_nine_fields() {
        let bytes = sample(0, Hash::ZERO).leaf_bytes();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            r#"{"actor":"alice","content_sha256":null,"decision":"allow","details":{"a":[1,2.5],"b":2},"kind":"accepted","message_id":"m-1","seq":0,"subject":"ace.comms.x","ts":"1970-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn given_a_stored_line_when_reparsed_then_its_leaf_bytes_and_chain_hash_agree() {
        let first = sample(0, Hash::ZERO);
        let second = sample(1, first.chain_hash);
        let line: Value = serde_json::from_slice(&second.to_line()).unwrap();
        assert_eq!(leaf_bytes_of_line(&line), second.leaf_bytes());
        assert!(second.chains_from(&first.chain_hash));
        assert!(!second.chains_from(&Hash::ZERO));
        let back: Entry = serde_json::from_value(line).unwrap();
        assert_eq!(back, second);
    }

    #[test]
    fn given_awkward_values_when_encoded_field_by_field_then_it_equals_generic_canonical_json() {
        let new = NewEntry::new(EntryKind::DeadLettered, "a\"b\\c\u{1}é😀", "")
            .content_sha256("00")
            .details(
                json!({"z": null, "é": [1.5e-7, -0.0, 1e300], "": {"b": true, "a": "\u{7f}"}}),
            );
        let entry = Entry::seal(new, u64::MAX, Utc::now(), Hash::ZERO);
        let mut value = serde_json::to_value(&entry).unwrap();
        assert_eq!(
            entry.to_line(),
            ace_envelope::canonical::to_canonical_vec(&value)
        );
        value.as_object_mut().unwrap().remove(CHAIN_HASH_FIELD);
        assert_eq!(
            entry.leaf_bytes(),
            ace_envelope::canonical::to_canonical_vec(&value)
        );
    }

    #[test]
    fn given_an_envelope_when_recorded_then_subject_id_and_payload_hash_are_taken() {
        let envelope = Envelope::builder(
            ace_envelope::Kind::Event,
            "ace.comms.http.service.kpi.evt.v1",
        )
        .name("kpi.breach")
        .payload_json(json!({"b": 1, "a": 2}))
        .build()
        .unwrap();
        let new = NewEntry::for_envelope(EntryKind::Accepted, "alice", &envelope);
        assert_eq!(new.subject, envelope.subject);
        assert_eq!(new.message_id, Some(envelope.id.to_string()));
        assert_eq!(
            new.content_sha256,
            Some(Hash::of(&[br#"{"a":2,"b":1}"#]).to_hex())
        );
    }

    #[test]
    fn given_every_kind_when_parsed_from_its_name_then_it_round_trips() {
        for kind in EntryKind::ALL {
            assert_eq!(kind.as_str().parse::<EntryKind>(), Ok(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(kind.as_str()));
        }
        assert!("nope".parse::<EntryKind>().is_err());
    }
}
