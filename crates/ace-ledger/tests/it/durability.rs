//! Restarts and crashes: reopening continues the chain and the tree; a torn last line (a crash
//! before acknowledgement) is moved aside on open and reported, never silently lost; a ledger
//! whose files were tampered with refuses to open for appending.

use std::time::Duration;

use ace_ledger::{Ledger, LedgerError, Problem, verify_dir};

use crate::support::{ledger_file, ledger_with, new_entry, options, read_lines, write_lines};

#[test]
fn given_a_closed_ledger_when_reopened_then_appends_continue_the_chain_and_the_tree() {
    let (data, ledger, clock) = ledger_with(5);
    let head_before = ledger.chain_head();
    let root_before = ledger.tree_head(5).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);

    let (options, _) = options();
    let reopened = Ledger::open(data.path(), options).unwrap();
    assert_eq!(reopened.size(), 5);
    assert_eq!(reopened.chain_head(), head_before);
    assert_eq!(
        reopened.latest_checkpoint().map(|c| c.root_hash),
        Some(root_before)
    );
    clock.advance(Duration::from_secs(1));
    let next = reopened.append(new_entry(5)).unwrap();
    assert_eq!(next.seq, 5);
    assert!(next.chains_from(&head_before));
    reopened
        .consistency_proof(5, 6)
        .unwrap()
        .verify(&root_before, &reopened.tree_head(6).unwrap())
        .unwrap();
    assert!(verify_dir(data.path()).is_ok());
}

#[test]
fn given_a_torn_last_line_when_the_ledger_reopens_then_it_is_moved_aside_and_reported() {
    let (data, ledger, _) = ledger_with(3);
    drop(ledger);
    let path = ledger_file(data.path(), "entries.jsonl");
    let mut bytes = std::fs::read(&path).unwrap();
    let clean_len = bytes.len();
    bytes.extend_from_slice(b"{\"actor\":\"torn");
    std::fs::write(&path, &bytes).unwrap();

    let store = ace_ledger::FileStore::open(&ace_ledger::ledger_dir(data.path())).unwrap();
    assert_eq!(store.torn_tails().len(), 1);
    assert_eq!(
        (store.torn_tails()[0].offset, store.torn_tails()[0].bytes),
        (clean_len as u64, 14)
    );
    drop(store);

    assert_eq!(std::fs::read(&path).unwrap().len(), clean_len);
    let kept = std::fs::read_to_string(ledger_file(data.path(), "entries.jsonl.torn")).unwrap();
    assert_eq!(kept, "{\"actor\":\"torn\n");
    let report = verify_dir(data.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.torn_bytes_kept, 15);
    assert!(
        report
            .to_string()
            .contains("torn unacknowledged bytes kept")
    );

    let (options, _) = options();
    let reopened = Ledger::open(data.path(), options).unwrap();
    assert_eq!(reopened.append(new_entry(3)).unwrap().seq, 3);
    assert!(verify_dir(data.path()).is_ok());
}

#[test]
fn given_an_edited_entry_when_the_ledger_opens_then_it_refuses_naming_the_seq() {
    let (data, ledger, _) = ledger_with(4);
    drop(ledger);
    let path = ledger_file(data.path(), "entries.jsonl");
    let mut lines = read_lines(&path);
    lines[1] = lines[1].replace("agent-1", "agent-9");
    write_lines(&path, &lines);
    let (options, _) = options();
    let err = Ledger::open(data.path(), options).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { seq: 1, .. }), "{err}");
    assert_eq!(
        verify_dir(data.path()).problem,
        Some(Problem::Edited { seq: 1, line: 2 })
    );
}

#[test]
fn given_entries_cut_below_the_latest_checkpoint_when_the_ledger_opens_then_it_refuses() {
    let (data, ledger, _) = ledger_with(4);
    ledger.checkpoint().unwrap();
    drop(ledger);
    let path = ledger_file(data.path(), "entries.jsonl");
    let mut lines = read_lines(&path);
    lines.truncate(2);
    write_lines(&path, &lines);
    let (options, _) = options();
    let err = Ledger::open(data.path(), options).unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
}

#[cfg(unix)]
#[test]
fn given_a_new_data_dir_when_opened_then_the_signing_key_is_private_and_the_public_key_written() {
    use std::os::unix::fs::PermissionsExt as _;
    let (data, ledger, _) = ledger_with(0);
    let mode = std::fs::metadata(ledger_file(data.path(), "signing.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let public = std::fs::read_to_string(ledger_file(data.path(), "signing.pub")).unwrap();
    assert_eq!(
        public.trim(),
        hex::encode(ledger.verifying_key().as_bytes())
    );
}

#[test]
fn given_a_validly_signed_checkpoint_that_disagrees_with_the_entries_when_opening_then_it_refuses()
{
    let (data, ledger, _) = ledger_with(4);
    let real = ledger.checkpoint().unwrap();
    drop(ledger);
    let dir = ace_ledger::ledger_dir(data.path());
    // Whoever holds the key can sign anything; the entries must still agree with it.
    let key = ace_ledger::LedgerKey::load_or_create(&dir).unwrap();
    let path = ledger_file(data.path(), "checkpoints.jsonl");
    for (forged, expected) in [
        (
            key.sign(4, ace_ledger::Hash::ZERO, real.chain_head, real.ts),
            "root at size 4",
        ),
        (
            key.sign(4, real.root_hash, ace_ledger::Hash::ZERO, real.ts),
            "chain hash at size 4",
        ),
    ] {
        write_lines(&path, &[serde_json::to_string(&forged).unwrap()]);
        let (options, _) = options();
        let err = Ledger::open(data.path(), options).unwrap_err();
        assert!(err.to_string().contains(expected), "{err}");
    }
}
