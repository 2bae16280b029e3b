//! The calls the HTTP API and the pipeline make: batches, entry queries, checkpoint policy,
//! single-entry reads, and the in-memory store behaving like the file store.

use std::sync::Arc;
use std::time::Duration;

use ace_envelope::Clock as _;
use ace_ledger::{
    EntryFilter, EntryKind, Ledger, LedgerKey, LedgerOptions, MemoryStore, verify_dir,
};
use chrono::TimeDelta;

use crate::support::{ledger_with, new_entry, of_kind, options, seqs};

#[test]
fn given_a_batch_when_appended_then_entries_are_consecutive_share_a_timestamp_and_verify() {
    let (data, ledger, _) = ledger_with(2);
    let batch = ledger
        .append_batch((2..7).map(new_entry).collect())
        .unwrap();
    assert_eq!(
        batch.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3, 4, 5, 6]
    );
    assert!(batch.iter().all(|e| e.ts == batch[0].ts));
    assert_eq!(ledger.size(), 7);
    assert!(ledger.append_batch(Vec::new()).unwrap().is_empty());
    assert_eq!(ledger.size(), 7);
    assert_eq!(ledger.entry(4).unwrap(), Some(batch[2].clone()));
    assert_eq!(ledger.entry(7).unwrap(), None);
    assert!(verify_dir(data.path()).is_ok());
}

#[test]
fn given_entries_of_many_kinds_when_filtered_then_kind_time_cursor_and_limit_apply() {
    let (_data, ledger, _) = ledger_with(30);
    let all = ledger.entries(&EntryFilter::default()).unwrap();
    assert_eq!(all.len(), 30);

    // Kinds rotate over `EntryKind::ALL`; `Denied` is the second.
    let denied: Vec<u64> = (0..30)
        .filter(|i| i % EntryKind::ALL.len() as u64 == 1)
        .collect();
    assert_eq!(seqs(&ledger, &of_kind(EntryKind::Denied)), denied);

    let (since, until) = (all[5].ts, all[9].ts);
    let window = ledger
        .entries(&EntryFilter {
            since: Some(since),
            until: Some(until),
            ..EntryFilter::default()
        })
        .unwrap();
    assert_eq!(
        window.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![5, 6, 7, 8]
    );

    let page = ledger
        .entries(&EntryFilter {
            from_seq: 25,
            limit: Some(3),
            ..EntryFilter::default()
        })
        .unwrap();
    assert_eq!(
        page.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![25, 26, 27]
    );
    assert!(
        ledger
            .entries(&EntryFilter {
                from_seq: 30,
                ..EntryFilter::default()
            })
            .unwrap()
            .is_empty()
    );
}

#[test]
fn given_a_checkpoint_policy_when_time_and_entries_pass_then_maybe_checkpoint_signs_only_when_due()
{
    let (mut options, clock) = options();
    options.checkpoint_every_entries = 5;
    options.checkpoint_interval = TimeDelta::seconds(60);
    let data = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(data.path(), options).unwrap();
    assert_eq!(
        ledger.maybe_checkpoint(clock.now()).unwrap(),
        None,
        "nothing to cover"
    );

    ledger.append(new_entry(0)).unwrap();
    let first = ledger
        .maybe_checkpoint(clock.now())
        .unwrap()
        .expect("first entry, no checkpoint yet");
    assert_eq!(first.size, 1);

    ledger
        .append_batch((1..4).map(new_entry).collect())
        .unwrap();
    assert_eq!(
        ledger.maybe_checkpoint(clock.now()).unwrap(),
        None,
        "3 new entries, 0 s"
    );
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        ledger
            .maybe_checkpoint(clock.now())
            .unwrap()
            .map(|c| c.size),
        Some(4),
        "interval"
    );

    ledger
        .append_batch((4..9).map(new_entry).collect())
        .unwrap();
    assert_eq!(
        ledger
            .maybe_checkpoint(clock.now())
            .unwrap()
            .map(|c| c.size),
        Some(9),
        "5 entries"
    );
    assert_eq!(ledger.checkpoints().unwrap().len(), 3);
    let latest = ledger.latest_checkpoint().unwrap();
    assert_eq!(latest.verify_signature(&ledger.verifying_key()), Ok(()));
    assert_eq!(latest.key_id, ledger.key_id());
    let report = verify_dir(data.path());
    assert_eq!(
        (report.checkpoints_verified, report.uncovered),
        (3, 0),
        "{report}"
    );
}

#[test]
fn given_a_memory_store_when_reopened_then_it_keeps_entries_checkpoints_and_proofs() {
    let store = MemoryStore::new();
    let key_seed = [3; 32];
    let ledger = Ledger::with_store(
        Box::new(store.clone()),
        LedgerKey::from_seed(key_seed),
        LedgerOptions::default(),
    )
    .unwrap();
    ledger
        .append_batch((0..9).map(new_entry).collect())
        .unwrap();
    let checkpoint = ledger.checkpoint().unwrap();
    drop(ledger);

    let ledger = Ledger::with_store(
        Box::new(store),
        LedgerKey::from_seed(key_seed),
        LedgerOptions::default(),
    )
    .unwrap();
    assert_eq!(ledger.latest_checkpoint(), Some(checkpoint.clone()));
    ledger
        .inclusion_proof(7, 9)
        .unwrap()
        .verify(&checkpoint.root_hash)
        .unwrap();
    assert_eq!(
        ledger
            .entries(&EntryFilter {
                kind: Some(EntryKind::Accepted),
                ..EntryFilter::default()
            })
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn given_a_checkpoint_from_another_key_when_reopened_then_the_ledger_refuses() {
    let store = MemoryStore::new();
    let ledger = Ledger::with_store(
        Box::new(store.clone()),
        LedgerKey::from_seed([1; 32]),
        LedgerOptions::default(),
    )
    .unwrap();
    ledger.append(new_entry(0)).unwrap();
    ledger.checkpoint().unwrap();
    drop(ledger);
    let err = Ledger::with_store(
        Box::new(store),
        LedgerKey::from_seed([2; 32]),
        LedgerOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("key_id"), "{err}");
}

#[test]
fn given_a_shared_ledger_when_threads_append_concurrently_then_seqs_are_unique_and_the_file_verifies()
 {
    let (data, ledger, _) = ledger_with(0);
    let ledger = Arc::new(ledger);
    let handles: Vec<_> = (0..4)
        .map(|t| {
            let ledger = Arc::clone(&ledger);
            std::thread::spawn(move || {
                (0..25)
                    .map(|i| ledger.append(new_entry(t * 100 + i)).unwrap().seq)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seqs: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..100).collect::<Vec<_>>());
    ledger.checkpoint().unwrap();
    assert!(verify_dir(data.path()).is_ok());
}
