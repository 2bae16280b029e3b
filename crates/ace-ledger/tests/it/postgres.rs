//! The ledger on [`PostgresStore`] against a real PostgreSQL (`ACE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`), each test in its own schema, dropped afterwards.
//! Unreachable server: fails under `CI=true`, otherwise skips loudly on stderr.

use ace_ledger::{
    Checkpoint, EntryFilter, EntryKind, Hash, Ledger, LedgerError, LedgerKey, LedgerSync,
    PostgresStore, Problem, VerifyReport, verify_postgres,
};

use crate::support::{new_entry, of_kind, options, seqs};

/// A fresh schema name and the URL, or `None` (after a loud notice) when there is no server.
fn database(test: &str) -> Option<(String, String)> {
    let url = ace_testkit::postgres_url(test)?;
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
    // Kinds rotate over `EntryKind::ALL`; `Denied` is the second.
    let denied: Vec<u64> = (0..21)
        .filter(|i| i % EntryKind::ALL.len() as u64 == 1)
        .collect();
    assert_eq!(seqs(&ledger, &of_kind(EntryKind::Denied)), denied);
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
fn given_a_writer_on_a_schema_when_a_second_connects_then_it_is_refused_until_the_first_closes() {
    let Some((url, schema)) = database("second_writer") else {
        return;
    };
    let _drop = DropSchema(url.clone(), schema.clone());
    let first = PostgresStore::connect(&url, &schema).unwrap();
    let err = PostgresStore::connect(&url, &schema)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("schema {schema} already has a writer")),
        "{err}"
    );
    // A reader is not a writer.
    PostgresStore::connect_existing(&url, &schema).unwrap();
    drop(first);
    PostgresStore::connect(&url, &schema).expect("the lock went with the first session");
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

/// A PostgreSQL ledger of 10 entries checkpointed at 6 and at 10, then 2 more, in a fresh
/// schema (dropped when the guard drops); `None` when there is no server.
fn written(test: &str) -> Option<(String, String, DropSchema)> {
    let (url, schema) = database(test)?;
    let cleanup = DropSchema(url.clone(), schema.clone());
    let ledger = open(&url, &schema).unwrap();
    ledger
        .append_batch((0..6).map(new_entry).collect())
        .unwrap();
    ledger.checkpoint().unwrap();
    ledger
        .append_batch((6..10).map(new_entry).collect())
        .unwrap();
    ledger.checkpoint().unwrap();
    ledger
        .append_batch((10..12).map(new_entry).collect())
        .unwrap();
    Some((url, schema, cleanup))
}

fn verify(url: &str, schema: &str) -> VerifyReport {
    let key = LedgerKey::from_seed([5; 32]).verifying_key();
    verify_postgres(url, schema, &key).unwrap()
}

fn sql(url: &str, statements: &str) {
    let mut client = postgres::Client::connect(url, postgres::NoTls).unwrap();
    client.batch_execute(statements).unwrap();
}

/// Replaces the stored line of the checkpoint of `size`.
fn replace_checkpoint(url: &str, schema: &str, size: u64, checkpoint: &Checkpoint) {
    let line = serde_json::to_string(checkpoint)
        .unwrap()
        .replace('\'', "''");
    sql(
        url,
        &format!("UPDATE {schema}.checkpoints SET line = '{line}' WHERE size = {size}"),
    );
}

#[test]
fn given_a_postgres_ledger_when_verified_then_every_entry_and_checkpoint_verifies() {
    let Some((url, schema, _cleanup)) = written("verify_ok") else {
        return;
    };
    let report = verify(&url, &schema);
    assert_eq!(report.problem, None, "{report}");
    assert_eq!(
        (
            report.entries,
            report.checkpoints_verified,
            report.uncovered
        ),
        (12, 2, 2)
    );
    assert!(
        report
            .dir
            .to_str()
            .unwrap()
            .ends_with(&format!("(schema {schema})")),
        "{}",
        report.dir.display()
    );
}

#[test]
fn given_more_rows_than_one_page_when_verified_then_every_row_is_read_across_pages() {
    let Some((url, schema)) = database("verify_pages") else {
        return;
    };
    let _cleanup = DropSchema(url.clone(), schema.clone());
    let ledger = open(&url, &schema).unwrap();
    ledger
        .append_batch((0..10_001).map(new_entry).collect())
        .unwrap();
    ledger.checkpoint().unwrap();
    let report = verify(&url, &schema);
    assert_eq!(report.problem, None, "{report}");
    assert_eq!(
        (report.entries, report.checkpoints_verified),
        (10_001, 1),
        "the first page holds 10 000 rows; the check must read past it"
    );
}

#[test]
fn given_a_decision_updated_in_postgres_when_verified_then_its_seq_is_named() {
    let Some((url, schema, _cleanup)) = written("verify_edited") else {
        return;
    };
    sql(
        &url,
        &format!(
            "UPDATE {schema}.entries SET line = replace(line, '\"deny: no role\"', '\"allow\"') \
             WHERE seq = 3"
        ),
    );
    let report = verify(&url, &schema);
    assert_eq!(report.problem, Some(Problem::Edited { seq: 3, line: 4 }));
    assert_eq!(report.entries, 3, "entries before the edited one verified");
}

#[test]
fn given_a_middle_row_deleted_in_postgres_when_verified_then_the_missing_seq_is_named() {
    let Some((url, schema, _cleanup)) = written("verify_dropped") else {
        return;
    };
    sql(&url, &format!("DELETE FROM {schema}.entries WHERE seq = 5"));
    let report = verify(&url, &schema);
    assert_eq!(report.problem, Some(Problem::Dropped { seq: 5, line: 6 }));
}

#[test]
fn given_a_checkpoint_row_with_a_forged_root_when_verified_then_its_signature_fails_by_row() {
    let Some((url, schema, _cleanup)) = written("verify_forged") else {
        return;
    };
    let mut store = PostgresStore::connect(&url, &schema).unwrap();
    let mut forged = ace_ledger::LedgerStore::checkpoints(&mut store).unwrap()[1].clone();
    forged.root_hash = Hash::ZERO;
    replace_checkpoint(&url, &schema, 10, &forged);

    let report = verify(&url, &schema);
    assert!(
        matches!(
            report.problem,
            Some(Problem::CheckpointSignature {
                line: 2,
                size: 10,
                ..
            })
        ),
        "{report}"
    );
}

#[test]
fn given_a_checkpoint_signed_over_a_wrong_root_when_verified_then_the_root_mismatch_is_named() {
    let Some((url, schema, _cleanup)) = written("verify_root") else {
        return;
    };
    let mut store = PostgresStore::connect(&url, &schema).unwrap();
    let genuine = ace_ledger::LedgerStore::checkpoints(&mut store).unwrap()[0].clone();
    let forged = LedgerKey::from_seed([5; 32]).sign(
        genuine.size,
        Hash::ZERO,
        genuine.chain_head,
        genuine.ts,
    );
    replace_checkpoint(&url, &schema, 6, &forged);

    let report = verify(&url, &schema);
    assert_eq!(
        report.problem,
        Some(Problem::CheckpointRootMismatch { line: 1, size: 6 })
    );
}

#[test]
fn given_a_schema_without_a_ledger_when_verified_then_an_error_names_it_and_nothing_is_created() {
    let Some((url, schema)) = database("verify_missing") else {
        return;
    };
    let _cleanup = DropSchema(url.clone(), schema.clone());
    let key = LedgerKey::from_seed([5; 32]).verifying_key();
    let err = verify_postgres(&url, &schema, &key).unwrap_err();
    assert!(
        matches!(err, LedgerError::Postgres { .. }) && err.to_string().contains(&schema),
        "{err}"
    );
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let found = client
        .query(
            "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
            &[&schema],
        )
        .unwrap();
    assert!(found.is_empty(), "verifying created schema {schema}");
}

#[test]
fn given_urls_with_passwords_when_shown_then_the_password_is_gone() {
    for (url, shown) in [
        (
            "postgres://ace:s3cret@db:5433/ledger?sslmode=disable",
            "postgres://ace@db:5433/ledger",
        ),
        (
            "postgresql://ace@db/ledger?password=s3cret",
            "postgres://ace@db:5432/ledger",
        ),
        (
            "host=db user=ace password=s3cret dbname=ledger",
            "postgres://ace@db:5432/ledger",
        ),
        ("not a url s3cret", "<unparsable PostgreSQL URL>"),
    ] {
        assert_eq!(PostgresStore::url_without_password(url), shown, "{url}");
    }
}
