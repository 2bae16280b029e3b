//! The ledger on [`PostgresStore`] against a real PostgreSQL (`ACE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), each test in its own schema, dropped afterwards.
//! Unreachable server: fails under `CI=true`, otherwise skips loudly on stderr.

use ace_ledger::{
    EntryFilter, EntryKind, Ledger, LedgerError, LedgerKey, LedgerSync, PostgresStore,
};

use crate::support::{new_entry, of_kind, options, seqs};

/// A fresh schema name and the URL, or `None` (after a loud notice) when there is no server.
fn database(test: &str) -> Option<(String, String)> {
    let url = std::env::var("ACE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    if let Err(e) = postgres::Client::connect(&url, postgres::NoTls) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "PostgreSQL at {url} is unreachable under CI=true: {e}"
        );
        eprintln!(
            "SKIPPED {test}: PostgreSQL at {url} is unreachable ({e}); set ACE_TEST_POSTGRES_URL"
        );
        return None;
    }
    let schema = format!("ace_ledger_it_{test}_{}", std::process::id());
    Some((url, schema))
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

fn open(url: &str, schema: &str) -> Result<Ledger, LedgerError> {
    let store = PostgresStore::connect(url, schema)?;
    Ledger::with_store(Box::new(store), LedgerKey::from_seed([5; 32]), options().0)
}

#[test]
fn given_a_postgres_ledger_when_reopened_then_entries_checkpoints_queries_and_proofs_survive() {
    let Some((url, schema)) = database("reopen") else {
        return;
    };
    let _cleanup = DropSchema(url.clone(), schema.clone());
    let ledger = open(&url, &schema).unwrap();
    ledger
        .append_batch((0..20).map(new_entry).collect())
        .unwrap();
    let checkpoint = ledger.checkpoint().unwrap();
    let head = ledger.chain_head();
    drop(ledger);

    let ledger = open(&url, &schema).unwrap();
    assert_eq!((ledger.size(), ledger.chain_head()), (20, head));
    assert_eq!(ledger.latest_checkpoint(), Some(checkpoint.clone()));
    ledger
        .inclusion_proof(13, 20)
        .unwrap()
        .verify(&checkpoint.root_hash)
        .unwrap();
    let next = ledger.append(new_entry(20)).unwrap();
    assert!(next.chains_from(&head));
    assert_eq!(ledger.entry(20).unwrap(), Some(next));
    assert_eq!(seqs(&ledger, &of_kind(EntryKind::Denied)), vec![1, 10, 19]);
    let page = ledger
        .entries(&EntryFilter {
            from_seq: 18,
            limit: Some(2),
            ..EntryFilter::default()
        })
        .unwrap();
    assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![18, 19]);
}

#[test]
fn given_a_row_edited_in_postgres_when_the_ledger_opens_then_it_refuses_naming_the_seq() {
    let Some((url, schema)) = database("edited") else {
        return;
    };
    let _cleanup = DropSchema(url.clone(), schema.clone());
    open(&url, &schema)
        .unwrap()
        .append_batch((0..5).map(new_entry).collect())
        .unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    client
        .batch_execute(&format!(
            "UPDATE {schema}.entries SET line = replace(line, 'agent-0', 'agent-7') WHERE seq = 3"
        ))
        .unwrap();
    let err = open(&url, &schema).unwrap_err();
    assert!(matches!(err, LedgerError::Corrupt { seq: 3, .. }), "{err}");
}

#[test]
fn given_a_schema_that_is_not_an_identifier_when_connecting_then_it_is_refused_by_name() {
    let err = PostgresStore::connect("postgres://unused", "x; DROP TABLE y").unwrap_err();
    assert!(
        err.to_string()
            .contains("`x; DROP TABLE y` is not a plain identifier"),
        "{err}"
    );
}

#[test]
fn given_interval_sync_on_postgres_when_appending_and_checkpointing_then_a_reopen_finds_everything()
{
    let Some((url, schema)) = database("interval") else {
        return;
    };
    let _cleanup = DropSchema(url.clone(), schema.clone());
    let (mut options, _) = options();
    options.sync = LedgerSync::Interval(std::time::Duration::from_millis(100));
    let store = PostgresStore::connect(&url, &schema).unwrap();
    let ledger =
        Ledger::with_store(Box::new(store), LedgerKey::from_seed([5; 32]), options).unwrap();
    ledger
        .append_batch((0..6).map(new_entry).collect())
        .unwrap();
    assert_eq!(ledger.durable_size(), 0, "committed asynchronously");
    let checkpoint = ledger.checkpoint().unwrap();
    assert_eq!((checkpoint.size, ledger.durable_size()), (6, 6));
    ledger.append(new_entry(6)).unwrap();
    drop(ledger);

    let reopened = open(&url, &schema).unwrap();
    assert_eq!(
        reopened.size(),
        7,
        "an asynchronous commit survives our process"
    );
    assert_eq!(reopened.latest_checkpoint(), Some(checkpoint));
}
