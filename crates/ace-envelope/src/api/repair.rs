//! The body and answer of `POST /api/v1/streams/{name}/repair` (and of `ace-comms stream
//! repair`, online or offline): what is damaged, what a repair keeps and gives up, and what it
//! did. Kept apart from [`super::http`] (which re-exports them) because a repair report is one
//! concern with its own small vocabulary.
//!
//! Without `accept_loss` the answer is a dry run: nothing changed, `repaired` false. With it, a
//! damaged stream is cut to its last intact record (what is cut is moved under the stream's
//! `lost/` directory, named in `moved_to`), keeps its high-water mark so `next_seq` is above
//! every sequence ever acknowledged, and is `ok` again (`state_after`).

use serde::{Deserialize, Serialize};

use super::http::{StreamDamage, StreamState};

/// The body of `POST /api/v1/streams/{name}/repair`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RepairRequest {
    /// False (the default): a dry run that changes nothing. True: cut the stream to its last
    /// intact record, giving up what the answer lists as lost.
    #[serde(default)]
    pub accept_loss: bool,
}

/// What a repair found, keeps and gives up, and whether it changed anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StreamRepair {
    /// The stream.
    pub stream: String,
    /// True when `accept_loss` was false: nothing was changed.
    pub dry_run: bool,
    /// True when the repair changed the stream (cut it, or reopened a halted one).
    pub repaired: bool,
    /// The state before the repair (`ok`: nothing to repair).
    pub state: StreamState,
    /// What is wrong, where (segment file, byte offset), when `state` is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage: Option<StreamDamage>,
    /// The first and last intact sequence, which stay; absent when no record survives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intact: Option<SeqRange>,
    /// The sequences given up: the records cut and those acknowledged once but found in no
    /// file. Absent when nothing is lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<SeqRange>,
    /// Bytes moved out of the segment files.
    pub lost_bytes: u64,
    /// The segment files cut, the damaged one first.
    pub segments: Vec<LostSegment>,
    /// The highest sequence the stream ever acknowledged, before the repair.
    pub high_water: u64,
    /// The sequence the next message gets after the repair (above `high_water`).
    pub next_seq: u64,
    /// The consumers whose ack floor lies in the lost range: they acknowledged messages that
    /// are given up.
    pub consumers: Vec<ConsumerFloor>,
    /// Where what was cut now lies, relative to the stream's directory (`lost/<timestamp>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<String>,
    /// The state after the repair (the same as `state` for a dry run).
    pub state_after: StreamState,
    /// One sentence for people: what was done, or what `accept_loss` would do.
    pub message: String,
}

/// An inclusive range of stream sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeqRange {
    /// The first sequence.
    pub first: u64,
    /// The last sequence.
    pub last: u64,
}

/// One segment file a repair cuts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LostSegment {
    /// The segment's file name (`<base_seq:020>.log`).
    pub segment: String,
    /// The byte offset the cut starts at (0 with `whole`).
    pub offset: u64,
    /// How many bytes move out.
    pub bytes: u64,
    /// True when the whole file moves.
    pub whole: bool,
}

/// A consumer whose ack floor lies in the lost range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsumerFloor {
    /// The consumer.
    pub consumer: String,
    /// Every sequence at or below it is done for that consumer.
    pub ack_floor: u64,
}
