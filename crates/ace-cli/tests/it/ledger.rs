//! `ace-comms ledger verify` end to end: a ledger written by `ace-ledger`, checked by the binary,
//! then tampered with on disk.

use ace_ledger::{EntryKind, Ledger, LedgerOptions, NewEntry};
use serde_json::Value;

use crate::ace;

/// A data directory whose ledger holds `n` entries and one checkpoint over them.
fn ledger_with(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path(), LedgerOptions::default()).unwrap();
    for i in 0..n {
        let entry = NewEntry::new(
            EntryKind::Accepted,
            "agent-1",
            format!("ace.comms.a2a.agent.a1.evt.e{i}.v1"),
        )
        .decision("allow");
        ledger.append(entry).unwrap();
    }
    ledger.checkpoint().unwrap();
    dir
}

#[test]
fn given_an_intact_ledger_when_verified_then_exit_0_with_the_counts() {
    let dir = ledger_with(5);
    let data = dir.path().to_str().unwrap();
    let run = ace(&["ledger", "verify", "--data", data], b"");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("OK: 5 entries verified, 1 checkpoints verified"),
        "{}",
        run.stdout
    );

    let run = ace(&["ledger", "verify", "--data", data, "--json"], b"");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["entries"], 5);
    assert_eq!(report["problem"], Value::Null);
}

#[test]
fn given_an_edited_entry_when_verified_then_exit_1_naming_it() {
    let dir = ledger_with(5);
    let file = dir.path().join("ledger/entries.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"allow\"", "\"deny\"", 1)).unwrap();

    let run = ace(
        &[
            "ledger",
            "verify",
            "--data",
            dir.path().to_str().unwrap(),
            "--json",
        ],
        b"",
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let problem = report["problem"].as_str().unwrap();
    assert!(
        problem.contains("seq 0"),
        "the first entry is named: {problem}"
    );
}

#[test]
fn given_a_dropped_entry_when_verified_then_exit_1() {
    let dir = ledger_with(5);
    let file = dir.path().join("ledger/entries.jsonl");
    let text = std::fs::read_to_string(&file).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&file, kept.join("\n") + "\n").unwrap();

    let run = ace(
        &["ledger", "verify", "--data", dir.path().to_str().unwrap()],
        b"",
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("FAILED"), "{}", run.stdout);
}

#[test]
fn given_no_ledger_or_no_directory_when_verified_then_exit_1_or_2() {
    let empty = tempfile::tempdir().unwrap();
    let run = ace(
        &["ledger", "verify", "--data", empty.path().to_str().unwrap()],
        b"",
    );
    assert_eq!(
        run.code, 1,
        "a data directory without a ledger cannot be vouched for"
    );
    let run = ace(&["ledger", "verify", "--data", "/no/such/dir"], b"");
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("/no/such/dir"), "{}", run.stderr);
}
