//! `LedgerSync`: under `Always` every append is durable when it returns; under `Interval` an
//! append is written at once and synced once the interval has passed, and every checkpoint
//! syncs first — so after a power loss (`MemoryStore::power_loss`) the ledger reopens with
//! every entry a checkpoint covers, and loses only entries no checkpoint had covered.

use std::time::Duration;

use ace_ledger::{Ledger, LedgerKey, LedgerOptions, LedgerSync, MemoryStore, verify_dir};

use crate::support::{new_entry, options};

const INTERVAL: Duration = Duration::from_millis(100);

fn interval_options() -> (LedgerOptions, std::sync::Arc<ace_envelope::ManualClock>) {
    let (mut options, clock) = options();
    options.sync = LedgerSync::Interval(INTERVAL);
    (options, clock)
}

fn open_memory(store: &MemoryStore, options: LedgerOptions) -> Ledger {
    Ledger::with_store(
        Box::new(store.clone()),
        LedgerKey::from_seed([9; 32]),
        options,
    )
    .unwrap()
}

#[test]
fn given_always_when_appending_then_every_entry_is_durable_at_once() {
    let store = MemoryStore::new();
    let ledger = open_memory(&store, options().0);
    ledger
        .append_batch((0..3).map(new_entry).collect())
        .unwrap();
    assert_eq!(ledger.durable_size(), 3);
    assert_eq!(ledger.next_sync_in(), None, "nothing left to sync");
    drop(ledger);
    store.power_loss();
    assert_eq!(open_memory(&store, options().0).size(), 3);
}

#[test]
fn given_interval_when_appending_within_it_then_entries_are_written_and_synced_once_it_passed() {
    let store = MemoryStore::new();
    let (options, clock) = interval_options();
    let ledger = open_memory(&store, options);
    ledger
        .append_batch((0..3).map(new_entry).collect())
        .unwrap();
    assert_eq!((ledger.size(), ledger.durable_size()), (3, 0));
    assert_eq!(
        ledger.entry(2).unwrap().map(|e| e.seq),
        Some(2),
        "readable at once"
    );
    assert_eq!(ledger.next_sync_in(), Some(INTERVAL));
    assert!(!ledger.sync_if_due().unwrap(), "not due yet");

    clock.advance(Duration::from_millis(60));
    assert_eq!(ledger.next_sync_in(), Some(Duration::from_millis(40)));
    clock.advance(Duration::from_millis(40));
    assert!(ledger.sync_if_due().unwrap(), "due: an idle ledger syncs");
    assert_eq!(ledger.durable_size(), 3);
    assert_eq!(ledger.next_sync_in(), None);

    ledger.append(new_entry(3)).unwrap();
    assert_eq!(
        ledger.durable_size(),
        3,
        "the interval restarted at the sync"
    );
    clock.advance(INTERVAL);
    ledger.append(new_entry(4)).unwrap();
    assert_eq!(
        ledger.durable_size(),
        5,
        "the first append after the interval syncs"
    );
}

#[test]
fn given_interval_when_a_checkpoint_is_signed_then_it_syncs_first_and_a_power_loss_keeps_what_it_covers()
 {
    let store = MemoryStore::new();
    let (options, _) = interval_options();
    let ledger = open_memory(&store, options);
    ledger
        .append_batch((0..4).map(new_entry).collect())
        .unwrap();
    assert_eq!(ledger.durable_size(), 0);
    let checkpoint = ledger.checkpoint().unwrap();
    assert_eq!((checkpoint.size, ledger.durable_size()), (4, 4));
    ledger
        .append_batch((4..6).map(new_entry).collect())
        .unwrap();
    assert_eq!(ledger.maybe_checkpoint(checkpoint.ts).unwrap(), None);
    assert_eq!(ledger.durable_size(), 4, "no checkpoint, no sync");
    drop(ledger);

    store.power_loss();
    let (options, _) = interval_options();
    let reopened = open_memory(&store, options);
    assert_eq!(
        reopened.size(),
        4,
        "the two unsynced entries are lost, no covered one"
    );
    assert_eq!(reopened.latest_checkpoint(), Some(checkpoint));
    assert_eq!(reopened.append(new_entry(4)).unwrap().seq, 4);
}

#[test]
fn given_interval_when_a_checkpoint_is_due_then_maybe_checkpoint_syncs_before_signing() {
    let store = MemoryStore::new();
    let (mut options, clock) = interval_options();
    options.checkpoint_every_entries = 2;
    let ledger = open_memory(&store, options);
    ledger
        .append_batch((0..2).map(new_entry).collect())
        .unwrap();
    let signed = ledger
        .maybe_checkpoint(ace_envelope::Clock::now(&*clock))
        .unwrap()
        .unwrap();
    assert!(signed.size <= ledger.durable_size(), "{signed:?}");
    drop(ledger);
    store.power_loss();
    let (options, _) = interval_options();
    assert_eq!(open_memory(&store, options).size(), 2);
}

#[test]
fn given_interval_on_files_when_the_ledger_is_dropped_unsynced_and_reopened_then_nothing_is_lost() {
    let data = tempfile::tempdir().unwrap();
    let (options, _) = interval_options();
    let ledger = Ledger::open(data.path(), options).unwrap();
    ledger
        .append_batch((0..5).map(new_entry).collect())
        .unwrap();
    assert_eq!(ledger.durable_size(), 0, "written, not yet synced");
    drop(ledger);
    let (options, _) = interval_options();
    let reopened = Ledger::open(data.path(), options).unwrap();
    assert_eq!((reopened.size(), reopened.durable_size()), (5, 5));
    reopened.checkpoint().unwrap();
    drop(reopened);
    let report = verify_dir(data.path());
    assert!(report.is_ok(), "{report}");
    assert_eq!(report.uncovered, 0);
}
