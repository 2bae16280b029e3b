//! `stream info`: a stream's configuration, state and counters, as `key: value` lines.

use std::io::Write;

use ace_envelope::api::http::{StreamDamage, StreamInfo};
use anyhow::Result;
use serde::Serialize;

use crate::args::NameArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::{Format, write_aligned};

pub(super) fn run(
    session: &Session,
    args: &NameArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match session.block_on(session.client.stream_info(&args.name)) {
        Ok(info) => {
            print_info(&info, format, out)?;
            Ok(Outcome::Success)
        }
        Err(err) => failed(err),
    }
}

/// The stream as the API answers it, or as aligned `key: value` lines for people.
pub(super) fn print_info(info: &StreamInfo, format: Format, out: &mut dyn Write) -> Result<()> {
    format.print(out, info, |out| print_lines(info, out))
}

fn print_lines(info: &StreamInfo, out: &mut dyn Write) -> Result<()> {
    let c = &info.config;
    let limit = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
    let n = &info.counters;
    let damage = info
        .damage
        .as_ref()
        .map_or_else(String::new, |d| format!(": {}", damage_text(d)));
    let lines = [
        ("name", c.name.clone()),
        ("state", format!("{}{damage}", word(&info.state))),
        ("high water", info.high_water.to_string()),
        ("subjects", c.subjects.join(", ")),
        ("retention", word(&c.retention)),
        ("storage", word(&c.storage)),
        ("sync", word(&c.sync)),
        ("discard", word(&c.discard)),
        ("max msgs", limit(c.max_msgs)),
        ("max bytes", limit(c.max_bytes)),
        (
            "max age",
            c.max_age.map_or_else(
                || "unlimited".to_owned(),
                |d| humantime::format_duration(d).to_string(),
            ),
        ),
        ("max msg size", limit(c.max_msg_size)),
        (
            "dedup window",
            humantime::format_duration(c.dedup_window).to_string(),
        ),
        ("dead letter", c.dead_letter_subject()),
        ("messages", info.messages.to_string()),
        ("bytes", info.bytes.to_string()),
        ("first seq", info.first_seq.to_string()),
        ("last seq", info.last_seq.to_string()),
        ("consumers", info.consumers.to_string()),
        ("stored", n.stored.to_string()),
        ("duplicates", n.duplicates.to_string()),
        ("refused full", n.refused_full.to_string()),
        ("refused too large", n.refused_too_large.to_string()),
        ("dropped by limits", n.dropped_by_limits.to_string()),
        ("removed after ack", n.removed_after_ack.to_string()),
        ("removed no interest", n.removed_no_interest.to_string()),
    ];
    write_aligned(&lines, out)
}

/// What is wrong with a stream and where: `reason (segment at byte offset)`.
pub(super) fn damage_text(d: &StreamDamage) -> String {
    let at = match (&d.segment, d.offset) {
        (Some(segment), Some(offset)) => format!(" ({segment} at byte {offset})"),
        (Some(segment), None) => format!(" ({segment})"),
        _ => String::new(),
    };
    format!("{}{at}", d.reason)
}

/// A policy as the word the wire uses for it (`workqueue`, `per_key`, …).
pub(crate) fn word(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(word)) => word,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_owned(),
    }
}
