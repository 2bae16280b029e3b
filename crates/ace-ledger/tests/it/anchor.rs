//! Anchoring: the ledger checked against checkpoints kept outside it (`verify_anchors_dir`), and
//! the witnesses that keep them (`FileWitness`, `PostgresWitness` through `Witnesses`).
//!
//! Histories are built deterministically (manual clock, fixed key, Ed25519 is deterministic), so
//! a "rolled back" or "rewritten" ledger is exactly what an attacker holding the data directory
//! and the signing key could write: it verifies on its own, and only an anchor tells.

use std::path::Path;
use std::time::Duration;

use ace_ledger::{
    Anchor, AnchorProblem, Checkpoint, FileStore, FileWitness, Ledger, LedgerKey, NewEntry,
    PostgresWitness, Witness, WitnessOptions, Witnesses, read_witness_file, read_witness_postgres,
    verify_anchors_dir, verify_dir_with_key,
};
use ed25519_dalek::VerifyingKey;

use crate::support::{new_entry, options};

const SEED: [u8; 32] = [9; 32];

fn key() -> VerifyingKey {
    LedgerKey::from_seed(SEED).verifying_key()
}

fn open(data: &Path) -> Ledger {
    let store = FileStore::open(&ace_ledger::ledger_dir(data)).unwrap();
    Ledger::with_store(Box::new(store), LedgerKey::from_seed(SEED), options().0).unwrap()
}

/// Writes `n` entries one second apart into `data`, signing a checkpoint when the ledger holds
/// each size of `checkpoint_at`; entry `edit` (if any) says something else. Returns the
/// checkpoints.
fn history(data: &Path, n: u64, checkpoint_at: &[u64], edit: Option<u64>) -> Vec<Checkpoint> {
    let (options, clock) = options();
    let store = FileStore::open(&ace_ledger::ledger_dir(data)).unwrap();
    let ledger = Ledger::with_store(Box::new(store), LedgerKey::from_seed(SEED), options).unwrap();
    let mut checkpoints = Vec::new();
    for i in 0..=n {
        if checkpoint_at.contains(&i) {
            checkpoints.push(ledger.checkpoint().unwrap());
        }
        if i == n {
            break;
        }
        let entry = if edit == Some(i) {
            NewEntry::new(ace_ledger::EntryKind::Accepted, "mallory", "rewritten").decision("allow")
        } else {
            new_entry(i)
        };
        ledger.append(entry).unwrap();
        clock.advance(Duration::from_secs(1));
    }
    checkpoints
}

fn anchor(checkpoint: &Checkpoint) -> Anchor {
    Anchor {
        source: format!("saved checkpoint of size {}", checkpoint.size),
        checkpoint: checkpoint.clone(),
    }
}

fn problems(data: &Path, anchors: &[Anchor]) -> Vec<Option<AnchorProblem>> {
    verify_anchors_dir(data, &key(), anchors)
        .checks
        .into_iter()
        .map(|c| c.problem)
        .collect()
}

#[test]
fn given_a_ledger_rolled_back_with_its_checkpoints_when_checked_against_a_saved_checkpoint_then_the_rollback_is_caught()
 {
    let original = tempfile::tempdir().unwrap();
    let saved = history(original.path(), 10, &[5, 10], None);
    // The same ledger as it was at 5 entries: entries and checkpoints rolled back together.
    let rolled = tempfile::tempdir().unwrap();
    history(rolled.path(), 5, &[5], None);

    let local = verify_dir_with_key(rolled.path(), &key());
    assert!(local.is_ok(), "on its own the rollback verifies: {local}");
    assert_eq!(
        problems(rolled.path(), &[anchor(&saved[0]), anchor(&saved[1])]),
        vec![
            None,
            Some(AnchorProblem::RolledBack {
                size: 10,
                entries: 5
            })
        ]
    );
}

#[test]
fn given_a_ledger_rolled_back_and_grown_again_when_checked_against_a_saved_checkpoint_then_the_different_history_is_caught()
 {
    let original = tempfile::tempdir().unwrap();
    let saved = history(original.path(), 10, &[5, 10], None);
    let regrown = tempfile::tempdir().unwrap();
    history(regrown.path(), 12, &[5, 12], Some(7));

    assert!(verify_dir_with_key(regrown.path(), &key()).is_ok());
    let found = problems(regrown.path(), &[anchor(&saved[1])]);
    assert!(
        matches!(
            &found[..],
            [Some(AnchorProblem::Diverged {
                size: 10,
                entries: 12,
                ..
            })]
        ),
        "{found:?}"
    );
}

#[test]
fn given_an_entry_rewritten_after_the_last_local_checkpoint_when_checked_against_a_later_witness_checkpoint_then_it_is_caught()
 {
    let original = tempfile::tempdir().unwrap();
    let checkpoints = history(original.path(), 8, &[5, 8], None);
    // The witness kept the checkpoint at 8; the data directory now holds entry 6 rewritten,
    // the chain recomputed after it, and only the local checkpoint at 5.
    let witness = tempfile::tempdir().unwrap();
    let witness_file = witness.path().join("witness.jsonl");
    let mut file_witness = FileWitness::new(&witness_file);
    file_witness.send(&checkpoints[1]).unwrap();
    let forged = tempfile::tempdir().unwrap();
    history(forged.path(), 8, &[5], Some(6));

    let local = verify_dir_with_key(forged.path(), &key());
    assert!(local.is_ok(), "{local}");
    assert_eq!(
        local.uncovered, 3,
        "entries 5..8 are protected by the chain only"
    );
    let kept = read_witness_file(&witness_file).unwrap();
    assert_eq!(kept, vec![checkpoints[1].clone()]);
    let found = problems(forged.path(), &[anchor(&kept[0])]);
    assert!(
        matches!(
            &found[..],
            [Some(AnchorProblem::Diverged {
                size: 8,
                entries: 8,
                ..
            })]
        ),
        "{found:?}"
    );
    let message = found[0].as_ref().unwrap().to_string();
    assert!(message.contains("different history"), "{message}");
}

#[test]
fn given_a_clean_ledger_when_checked_against_each_of_its_checkpoints_then_all_pass_and_a_foreign_one_fails_its_signature()
 {
    let data = tempfile::tempdir().unwrap();
    let checkpoints = history(data.path(), 9, &[0, 1, 4, 8, 9], None);
    // It keeps growing after the anchors were saved.
    let ledger = open(data.path());
    ledger.append(new_entry(9)).unwrap();
    drop(ledger);

    let anchors: Vec<Anchor> = checkpoints.iter().map(anchor).collect();
    let report = verify_anchors_dir(data.path(), &key(), &anchors);
    assert_eq!(report.entries, 10);
    assert!(report.is_ok(), "{report:?}");

    let foreign = LedgerKey::from_seed([1; 32]).sign(
        checkpoints[2].size,
        checkpoints[2].root_hash,
        checkpoints[2].chain_head,
        checkpoints[2].ts,
    );
    let found = problems(data.path(), &[anchor(&foreign)]);
    assert!(
        matches!(&found[..], [Some(AnchorProblem::Signature(reason))] if reason.contains("key_id")),
        "{found:?}"
    );
}

fn quick() -> WitnessOptions {
    WitnessOptions {
        retry_min: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
    }
}

#[test]
fn given_a_file_witness_when_checkpoints_are_signed_then_each_is_appended_as_a_json_line_that_anchors_the_ledger()
 {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let path = elsewhere.path().join("checkpoints.jsonl");
    let ledger = open(data.path());
    let witnesses = Witnesses::start(vec![Box::new(FileWitness::new(&path))], quick()).unwrap();
    assert!(ledger.set_witnesses(witnesses).is_ok());
    let mut signed = Vec::new();
    for i in 0..3 {
        ledger.append(new_entry(i)).unwrap();
        signed.push(ledger.checkpoint().unwrap());
        assert!(ledger.witnesses().unwrap().flush(Duration::from_secs(5)));
    }

    assert_eq!(read_witness_file(&path).unwrap(), signed);
    let stats = ledger.witnesses().unwrap().stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(
        (stats[0].sent, stats[0].failures, stats[0].size),
        (3, 0, Some(3))
    );
    assert_eq!(stats[0].name, format!("file:{}", path.display()));
    let anchors: Vec<Anchor> = signed.iter().map(anchor).collect();
    assert!(verify_anchors_dir(data.path(), &key(), &anchors).is_ok());
}

#[test]
fn given_a_symlink_at_the_witness_path_when_sending_then_it_is_refused_counted_and_retried_while_appends_go_on()
 {
    let data = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let target = elsewhere.path().join("target.jsonl");
    std::fs::write(&target, "").unwrap();
    let path = elsewhere.path().join("witness.jsonl");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    let ledger = open(data.path());
    let witnesses = Witnesses::start(vec![Box::new(FileWitness::new(&path))], quick()).unwrap();
    ledger.set_witnesses(witnesses).unwrap();

    ledger.append(new_entry(0)).unwrap();
    ledger.checkpoint().unwrap();
    let witnesses = ledger.witnesses().unwrap();
    assert!(!witnesses.flush(Duration::from_millis(300)));
    let stats = &witnesses.stats()[0];
    assert!(stats.failures >= 2, "retried: {stats:?}");
    assert_eq!(stats.sent, 0);
    let error = stats.last_error.as_deref().unwrap();
    assert!(error.contains("refusing to follow symlink"), "{error}");
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "",
        "nothing through the link"
    );
    // Appends and checkpoints never wait for the witness.
    ledger.append(new_entry(1)).unwrap();
    let latest = ledger.checkpoint().unwrap();

    // Repaired: the latest checkpoint is sent at the next try.
    std::fs::remove_file(&path).unwrap();
    assert!(witnesses.flush(Duration::from_secs(5)));
    assert_eq!(read_witness_file(&path).unwrap(), vec![latest]);
    assert_eq!(witnesses.stats()[0].last_error, None);
}

#[test]
fn given_a_witness_file_with_a_torn_last_line_when_read_then_the_complete_lines_are_kept_and_a_bad_line_is_named()
 {
    let data = tempfile::tempdir().unwrap();
    let checkpoints = history(data.path(), 3, &[1, 3], None);
    let path = data.path().join("w.jsonl");
    let mut witness = FileWitness::new(&path);
    checkpoints.iter().for_each(|cp| witness.send(cp).unwrap());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(b"{\"size\": 4, \"root");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(read_witness_file(&path).unwrap(), checkpoints);

    std::fs::write(&path, b"{}\n").unwrap();
    let err = read_witness_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("line 1") && err.contains("not a signed checkpoint"),
        "{err}"
    );
}

#[test]
fn given_an_unreachable_postgres_witness_when_checkpoints_are_signed_then_failures_are_counted_and_appends_go_on()
 {
    let data = tempfile::tempdir().unwrap();
    let ledger = open(data.path());
    let witness = PostgresWitness::new("postgres://nobody@127.0.0.1:1/none", "w").unwrap();
    assert_eq!(
        witness.name(),
        "postgres:postgres://nobody@127.0.0.1:1/none (schema w)"
    );
    let witnesses = Witnesses::start(vec![Box::new(witness)], quick()).unwrap();
    ledger.set_witnesses(witnesses).unwrap();
    for i in 0..3 {
        ledger.append(new_entry(i)).unwrap();
        ledger.checkpoint().unwrap();
    }
    assert_eq!(ledger.size(), 3);
    assert!(
        !ledger
            .witnesses()
            .unwrap()
            .flush(Duration::from_millis(200))
    );
    let stats = &ledger.witnesses().unwrap().stats()[0];
    assert!(stats.failures >= 1 && stats.sent == 0, "{stats:?}");
    assert!(PostgresWitness::new("postgres://x@h/db", "bad-schema").is_err());
}

#[test]
fn given_a_postgres_witness_when_checkpoints_are_signed_then_its_table_keeps_them_and_they_anchor_the_ledger()
 {
    let Some(url) = ace_testkit::postgres_url("postgres_witness") else {
        return;
    };
    let schema = format!("ace_witness_it_{}", std::process::id());
    let _cleanup = DropSchema(url.clone(), schema.clone());
    let data = tempfile::tempdir().unwrap();
    let ledger = open(data.path());
    // Created idempotently: a second witness on the same schema finds the table there.
    let mut first = PostgresWitness::new(&url, &schema).unwrap();
    let mut signed = vec![ledger.checkpoint().unwrap()];
    first.send(&signed[0]).unwrap();
    let witnesses = Witnesses::start(
        vec![Box::new(PostgresWitness::new(&url, &schema).unwrap())],
        quick(),
    )
    .unwrap();
    ledger.set_witnesses(witnesses).unwrap();
    assert!(ledger.witnesses().unwrap().flush(Duration::from_secs(10)));
    for i in 0..2 {
        ledger.append(new_entry(i)).unwrap();
        signed.push(ledger.checkpoint().unwrap());
        assert!(ledger.witnesses().unwrap().flush(Duration::from_secs(10)));
    }

    // The first checkpoint again (offered when the witnesses were set), then the two new ones.
    let kept = read_witness_postgres(&url, &schema).unwrap();
    assert_eq!(
        kept,
        vec![
            signed[0].clone(),
            signed[0].clone(),
            signed[1].clone(),
            signed[2].clone()
        ]
    );
    let anchors: Vec<Anchor> = kept.iter().map(anchor).collect();
    assert!(verify_anchors_dir(data.path(), &key(), &anchors).is_ok());
    let err = read_witness_postgres(&url, "no_such_witness_schema")
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_witness_schema"), "{err}");
}

/// Drops the schema when the test ends, pass or fail.
struct DropSchema(String, String);

impl Drop for DropSchema {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.0, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.1));
        }
    }
}

#[test]
fn given_an_open_ledger_when_checking_outside_checkpoints_then_a_rollback_and_a_different_history_are_named()
 {
    let original = tempfile::tempdir().unwrap();
    let saved = history(original.path(), 10, &[5, 10], None);
    assert_eq!(open(original.path()).check_anchor(&saved[0]), Ok(()));
    assert_eq!(open(original.path()).check_anchor(&saved[1]), Ok(()));

    let rolled = tempfile::tempdir().unwrap();
    history(rolled.path(), 5, &[5], None);
    assert_eq!(
        open(rolled.path()).check_anchor(&saved[1]),
        Err(AnchorProblem::RolledBack {
            size: 10,
            entries: 5
        })
    );
    let forged = tempfile::tempdir().unwrap();
    history(forged.path(), 11, &[5], Some(8));
    assert!(matches!(
        open(forged.path()).check_anchor(&saved[1]),
        Err(AnchorProblem::Diverged {
            size: 10,
            entries: 11,
            ..
        })
    ));
}
