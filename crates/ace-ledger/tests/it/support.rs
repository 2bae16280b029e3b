//! Helpers: a file ledger on a manual clock, and line-level surgery on its files.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ace_envelope::ManualClock;
use ace_ledger::{EntryKind, Ledger, LedgerOptions, NewEntry};
use chrono::DateTime;
use serde_json::json;

/// Options with a manual clock starting at 2026-01-01T00:00:00Z.
pub(crate) fn options() -> (LedgerOptions, Arc<ManualClock>) {
    let start = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .unwrap()
        .to_utc();
    let clock = Arc::new(ManualClock::new(start));
    let options = LedgerOptions {
        clock: clock.clone(),
        ..LedgerOptions::default()
    };
    (options, clock)
}

/// Entry `i` of a test ledger: kinds rotate, details vary.
pub(crate) fn new_entry(i: u64) -> NewEntry {
    let kind = EntryKind::ALL[(i % EntryKind::ALL.len() as u64) as usize];
    NewEntry::new(
        kind,
        format!("agent-{}", i % 3),
        format!("ace.comms.test.{i}"),
    )
    .message_id(format!("msg-{i}"))
    .decision(if i.is_multiple_of(2) {
        "allow"
    } else {
        "deny: no role"
    })
    .details(json!({"i": i, "note": "ünïcode \"quoted\""}))
}

/// A ledger in a fresh temporary data directory with `n` entries, one second apart.
pub(crate) fn ledger_with(n: u64) -> (tempfile::TempDir, Ledger, Arc<ManualClock>) {
    let data = tempfile::tempdir().unwrap();
    let (options, clock) = options();
    let ledger = Ledger::open(data.path(), options).unwrap();
    for i in 0..n {
        ledger.append(new_entry(i)).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    (data, ledger, clock)
}

/// `<data>/ledger/<name>`.
pub(crate) fn ledger_file(data: &Path, name: &str) -> PathBuf {
    ace_ledger::ledger_dir(data).join(name)
}

/// The lines of a ledger file (without their `\n`).
pub(crate) fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Rewrites a ledger file from lines, each ending in `\n`.
pub(crate) fn write_lines(path: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    if !lines.is_empty() {
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// The seqs of the entries `filter` selects.
pub(crate) fn seqs(ledger: &Ledger, filter: &ace_ledger::EntryFilter) -> Vec<u64> {
    ledger
        .entries(filter)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect()
}

/// A filter on one kind.
pub(crate) fn of_kind(kind: EntryKind) -> ace_ledger::EntryFilter {
    ace_ledger::EntryFilter {
        kind: Some(kind),
        ..ace_ledger::EntryFilter::default()
    }
}
