//! Tampering with a real ledger's files, one kind at a time; `verify_dir` must name each one
//! precisely. The ledger under test: 10 entries, a signed checkpoint at size 6, so entries 6..10
//! are protected by the chain alone.

use ace_ledger::{Entry, Hash, LedgerKey, NewEntry, Problem, verify_dir};
use serde_json::Value;

use crate::support::{ledger_file, ledger_with, read_lines, write_lines};

const CHECKPOINTED: u64 = 6;
const TOTAL: u64 = 10;

/// The ledger directory, closed: 10 entries, checkpoint at 6.
fn fixture() -> tempfile::TempDir {
    let (data, ledger, _) = ledger_with(CHECKPOINTED);
    ledger.checkpoint().unwrap();
    for i in CHECKPOINTED..TOTAL {
        ledger.append(crate::support::new_entry(i)).unwrap();
    }
    data
}

fn entries_path(data: &tempfile::TempDir) -> std::path::PathBuf {
    ledger_file(data.path(), "entries.jsonl")
}

/// Applies `edit` to the entry lines and returns the first problem `verify_dir` reports.
fn tamper(edit: impl FnOnce(&mut Vec<String>)) -> Option<Problem> {
    let data = fixture();
    let path = entries_path(&data);
    let mut lines = read_lines(&path);
    edit(&mut lines);
    write_lines(&path, &lines);
    let report = verify_dir(data.path());
    assert_eq!(report.is_ok(), report.problem.is_none());
    report.problem
}

fn set_field(line: &mut String, field: &str, value: Value) {
    let mut json: Value = serde_json::from_str(line).unwrap();
    json[field] = value;
    *line = serde_json::to_string(&json).unwrap();
}

/// Re-seals every line from `from` on so the chain is internally consistent again (what an
/// attacker who knows the format does).
fn rechain(lines: &mut [String], from: usize) {
    let mut prev = if from == 0 {
        Hash::ZERO
    } else {
        serde_json::from_str::<Entry>(&lines[from - 1])
            .unwrap()
            .chain_hash
    };
    for line in &mut lines[from..] {
        let old: Entry = serde_json::from_str(line).unwrap();
        let new = NewEntry::new(old.kind, old.actor, old.subject)
            .decision(old.decision)
            .details(old.details);
        let new = NewEntry {
            message_id: old.message_id,
            content_sha256: old.content_sha256,
            ..new
        };
        let sealed = Entry::seal(new, old.seq, old.ts, prev);
        prev = sealed.chain_hash;
        *line = String::from_utf8(sealed.to_line()).unwrap();
    }
}

#[test]
fn given_an_untouched_ledger_when_verified_then_everything_checks_and_the_tail_is_counted() {
    let data = fixture();
    let report = verify_dir(data.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        (
            report.entries,
            report.checkpoints_verified,
            report.uncovered
        ),
        (TOTAL, 1, 4)
    );
    assert!(report.to_string().starts_with("OK: 10 entries verified"));
}

#[test]
fn given_a_checkpointed_entry_edited_when_verified_then_its_seq_is_named() {
    let problem = tamper(|lines| set_field(&mut lines[2], "actor", "mallory".into()));
    assert_eq!(problem, Some(Problem::Edited { seq: 2, line: 3 }));
    assert!(
        problem
            .unwrap()
            .to_string()
            .contains("entry seq 2 (line 3) was edited")
    );
}

#[test]
fn given_an_entry_after_the_checkpoint_edited_when_verified_then_it_is_named_edited() {
    let problem = tamper(|lines| set_field(&mut lines[8], "details", serde_json::json!({"i": 0})));
    assert_eq!(problem, Some(Problem::Edited { seq: 8, line: 9 }));
}

#[test]
fn given_an_entry_dropped_when_verified_then_the_missing_seq_is_named() {
    let problem = tamper(|lines| {
        lines.remove(3);
    });
    assert_eq!(problem, Some(Problem::Dropped { seq: 3, line: 4 }));
}

#[test]
fn given_two_entries_swapped_when_verified_then_the_reorder_is_named_at_its_line() {
    let problem = tamper(|lines| lines.swap(4, 5));
    assert_eq!(
        problem,
        Some(Problem::Reordered {
            seq: 5,
            expected: 4,
            line: 5
        })
    );
}

#[test]
fn given_an_entry_duplicated_when_verified_then_it_is_named_out_of_order() {
    let problem = tamper(|lines| {
        let copy = lines[3].clone();
        lines.insert(4, copy);
    });
    assert_eq!(
        problem,
        Some(Problem::Reordered {
            seq: 3,
            expected: 4,
            line: 5
        })
    );
}

#[test]
fn given_a_forged_entry_appended_without_the_chain_when_verified_then_it_is_named() {
    let problem = tamper(|lines| {
        let mut forged = lines[lines.len() - 1].clone();
        set_field(&mut forged, "seq", TOTAL.into());
        set_field(&mut forged, "subject", "ace.comms.forged".into());
        lines.push(forged);
    });
    assert_eq!(
        problem,
        Some(Problem::UnchainedAppend {
            seq: TOTAL,
            line: TOTAL + 1,
            last_checkpoint: CHECKPOINTED
        })
    );
}

#[test]
fn given_a_forged_entry_appended_with_a_recomputed_chain_when_verified_then_it_is_only_uncovered() {
    // The documented limit: after the last checkpoint the unkeyed chain alone protects entries.
    let data = fixture();
    let path = entries_path(&data);
    let mut lines = read_lines(&path);
    let mut forged = lines[lines.len() - 1].clone();
    set_field(&mut forged, "seq", TOTAL.into());
    lines.push(forged);
    rechain(&mut lines, TOTAL as usize);
    write_lines(&path, &lines);
    let report = verify_dir(data.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.uncovered, TOTAL + 1 - CHECKPOINTED);
}

#[test]
fn given_a_checkpointed_entry_edited_and_the_chain_recomputed_when_verified_then_the_checkpoint_root_mismatches()
 {
    let problem = tamper(|lines| {
        set_field(&mut lines[1], "actor", "mallory".into());
        rechain(lines, 1);
    });
    assert_eq!(
        problem,
        Some(Problem::CheckpointRootMismatch {
            line: 1,
            size: CHECKPOINTED
        })
    );
}

#[test]
fn given_checkpointed_entries_cut_off_when_verified_then_truncation_is_named() {
    let problem = tamper(|lines| lines.truncate(5));
    assert_eq!(
        problem,
        Some(Problem::Truncated {
            checkpoint_size: CHECKPOINTED,
            entries: 5
        })
    );
}

#[test]
fn given_a_line_that_is_not_an_entry_when_verified_then_its_line_is_named() {
    let problem = tamper(|lines| lines[6] = "{\"seq\": 6, \"oops\": true}".to_owned());
    assert!(
        matches!(problem, Some(Problem::MalformedEntry { line: 7, .. })),
        "{problem:?}"
    );
}

#[test]
fn given_a_torn_last_line_when_verified_then_it_is_reported_not_dropped() {
    let data = fixture();
    let path = entries_path(&data);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"actor\":\"half");
    std::fs::write(&path, bytes).unwrap();
    let report = verify_dir(data.path());
    assert_eq!(
        report.problem,
        Some(Problem::TornTail {
            file: path,
            line: TOTAL + 1,
            bytes: 14
        })
    );
    assert_eq!(report.entries, TOTAL);
}

fn tamper_checkpoint(edit: impl FnOnce(&mut Value)) -> Option<Problem> {
    let data = fixture();
    let path = ledger_file(data.path(), "checkpoints.jsonl");
    let mut lines = read_lines(&path);
    let mut json: Value = serde_json::from_str(&lines[0]).unwrap();
    edit(&mut json);
    lines[0] = json.to_string();
    write_lines(&path, &lines);
    verify_dir(data.path()).problem
}

#[test]
fn given_a_checkpoint_field_edited_when_verified_then_its_signature_is_named_invalid() {
    let problem = tamper_checkpoint(|cp| cp["size"] = 5.into());
    assert!(
        matches!(&problem, Some(Problem::CheckpointSignature { line: 1, size: 5, reason }) if reason.contains("does not verify")),
        "{problem:?}"
    );
}

#[test]
fn given_a_checkpoint_signed_by_another_key_when_verified_then_the_key_is_named() {
    let problem = tamper_checkpoint(|cp| {
        let original: ace_ledger::Checkpoint = serde_json::from_value(cp.clone()).unwrap();
        let forged = LedgerKey::from_seed([9; 32]).sign(
            original.size,
            original.root_hash,
            original.chain_head,
            original.ts,
        );
        *cp = serde_json::to_value(forged).unwrap();
    });
    assert!(
        matches!(&problem, Some(Problem::CheckpointSignature { reason, .. }) if reason.contains("key_id")),
        "{problem:?}"
    );
}

#[test]
fn given_a_missing_public_key_when_verified_then_the_file_is_named() {
    let data = fixture();
    std::fs::remove_file(ledger_file(data.path(), "signing.pub")).unwrap();
    let problem = verify_dir(data.path()).problem;
    assert!(
        matches!(&problem, Some(Problem::Unreadable { file, .. }) if file.ends_with("signing.pub")),
        "{problem:?}"
    );
}
