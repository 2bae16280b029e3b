//! `ace-comms ledger …` end to end: `verify` on a ledger written by `ace-ledger`, checked by the
//! binary, then tampered with on disk; and against a real `ace-comms serve`, `checkpoint`,
//! `entries` and `proof`, then `verify` on the ledger that server wrote, edited, dropped,
//! reordered and appended to; `verify --postgres` on a ledger in a real PostgreSQL
//! (`ACE_TEST_POSTGRES_URL`, a fresh schema per test; unreachable: fails under `CI=true`,
//! otherwise skips loudly), intact and with rows updated, deleted and forged.

use ace_ledger::{EntryKind, Ledger, LedgerKey, LedgerOptions, NewEntry, PostgresStore};
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
    assert_five_verified(|extra| {
        let mut args = vec!["ledger", "verify", "--data", data];
        args.extend(extra);
        ace(&args, b"")
    });
}

/// Checks that `verify` (given extra arguments) reports 5 entries and 1 checkpoint verified,
/// as a line and as `--json`; returns the line.
fn assert_five_verified(verify: impl Fn(&[&str]) -> crate::Run) -> String {
    let run = verify(&[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("OK: 5 entries verified, 1 checkpoints verified"),
        "{}",
        run.stdout
    );
    let report: Value = serde_json::from_str(&verify(&["--json"]).stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["entries"], 5);
    assert_eq!(report["problem"], Value::Null);
    run.stdout
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

/// `ace-comms --server URL ARGS` against `addr`.
fn online(addr: &str, args: &[&str]) -> crate::Run {
    let url = format!("http://{addr}");
    let mut all = vec!["--server", url.as_str()];
    all.extend_from_slice(args);
    ace(&all, b"")
}

/// The seq of the first line of `text` holding `needle`.
fn first_line_with(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle}"))
}

#[test]
fn given_a_real_server_when_the_online_verbs_run_then_checkpoints_and_proofs_verify_and_the_files_verify_offline()
 {
    let data = tempfile::tempdir().unwrap();
    let etc = tempfile::tempdir().unwrap();
    // A checkpoint after every batch, so the latest covers the messages just published.
    let config = crate::write(
        etc.path(),
        "ace.yaml",
        "ledger:\n  checkpoint_every_entries: 1\n",
    );
    let serving = crate::serve::start(data.path(), &["--config", &config]);
    let addr = serving.addr.clone();
    for n in 0..3 {
        let payload = format!(r#"{{"n":{n}}}"#);
        let run = online(
            &addr,
            &["pub", "ace.comms.a2a.agent.a1.evt.done.v1", &payload],
        );
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    }

    let run = online(
        &addr,
        &["ledger", "entries", "--kind", "accepted", "--json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let page: Value = serde_json::from_str(&run.stdout).unwrap();
    let accepted = page["entries"].as_array().unwrap();
    assert_eq!(accepted.len(), 3);
    let first_seq = accepted[0]["seq"].as_u64().unwrap();
    let run = online(&addr, &["ledger", "entries", "--kind", "accepted"]);
    assert!(run.stdout.starts_with("SEQ"), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches(" accepted ").count(),
        3,
        "{}",
        run.stdout
    );

    let run = online(&addr, &["ledger", "checkpoint", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let signed: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(signed["signature_verified"], true);
    let size = signed["checkpoint"]["size"].as_u64().unwrap();
    assert!(size > first_seq + 2, "the checkpoint covers the messages");

    // Pinned to the key on disk it verifies; pinned to another key it does not.
    let key = std::fs::read_to_string(data.path().join("ledger/signing.pub")).unwrap();
    let run = online(&addr, &["ledger", "checkpoint", "--public-key", key.trim()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("signature verified with --public-key"),
        "{}",
        run.stdout
    );
    let other = hex::encode(
        ace_ledger::LedgerKey::from_seed([9; 32])
            .verifying_key()
            .as_bytes(),
    );
    let run = online(&addr, &["ledger", "checkpoint", "--public-key", &other]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("does not verify"), "{}", run.stderr);

    let seq = first_seq.to_string();
    let run = online(&addr, &["ledger", "proof", &seq]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("verified against the checkpoint"),
        "{}",
        run.stdout
    );
    // An inclusion in an older tree is anchored through a consistency proof.
    let older = (first_seq + 1).to_string();
    let run = online(&addr, &["ledger", "proof", &seq, "--size", &older]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let (from, to) = ((size / 2).max(1).to_string(), size.to_string());
    let run = online(
        &addr,
        &["ledger", "proof", "--from", &from, "--to", &to, "--json"],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        serde_json::from_str::<Value>(&run.stdout).unwrap()["verified"],
        true
    );

    // Refusals: the server's code and the parameter named, exit 1; bad usage exit 2.
    let run = online(&addr, &["ledger", "proof", "99999", "--size", "99999"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let run = online(&addr, &["ledger", "entries", "--kind", "bogus"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("INVALID_REQUEST") && run.stderr.contains("`kind`"),
        "{}",
        run.stderr
    );
    let run = online(&addr, &["ledger", "proof", "--from", "1"]);
    assert_eq!(run.code, 2, "--from needs --to: {}", run.stderr);

    let (code, _, stderr) = serving.terminate();
    assert_eq!(code, 0, "{stderr}");

    // The ledger the server wrote verifies offline, its last checkpoint covering every entry.
    let dir = data.path().to_str().unwrap();
    let run = ace(&["ledger", "verify", "--data", dir, "--json"], b"");
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["uncovered"], 0, "{report}");

    // Each kind of tampering is found and its entry named.
    let file = data.path().join("ledger/entries.jsonl");
    let original = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = original.lines().collect();
    let at = first_line_with(&original, "\"kind\":\"accepted\"");
    let edited = original.replacen("\"decision\":\"allow\"", "\"decision\":\"deny\"", 1);
    let mut dropped = lines.clone();
    dropped.remove(at);
    let mut reordered = lines.clone();
    reordered.swap(at, at + 1);
    let mut appended = lines.clone();
    appended.push(lines[at]);
    let cases = [
        ("edited", edited, at),
        ("dropped", dropped.join("\n") + "\n", at),
        ("reordered", reordered.join("\n") + "\n", at),
        ("appended", appended.join("\n") + "\n", lines.len()),
    ];
    for (what, text, seq) in cases {
        std::fs::write(&file, text).unwrap();
        let run = ace(&["ledger", "verify", "--data", dir, "--json"], b"");
        assert_eq!(run.code, 1, "{what}: {}{}", run.stdout, run.stderr);
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        let problem = report["problem"].as_str().unwrap();
        assert!(
            problem.contains(&format!("seq {seq}")),
            "{what}: the entry at seq {seq} is named: {problem}"
        );
        std::fs::write(&file, &original).unwrap();
    }
    let run = ace(&["ledger", "verify", "--data", dir], b"");
    assert_eq!(run.code, 0, "restored: {}", run.stdout);
}

/// A data directory holding the ledger's signing key and a PostgreSQL ledger of `n` entries
/// (each `allow`, seq 2 `deny`) and one checkpoint over them, in a fresh schema dropped with the
/// returned guard; `None` (after a loud notice) when there is no server.
fn postgres_ledger_with(test: &str, n: u64) -> Option<PostgresLedger> {
    let url = ace_testkit::postgres_url(test)?;
    let client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let schema = format!("ace_cli_it_{test}_{}", std::process::id());
    let data = tempfile::tempdir().unwrap();
    let dir = ace_ledger::ledger_dir(data.path());
    std::fs::create_dir_all(&dir).unwrap();
    let key = LedgerKey::load_or_create(&dir).unwrap();
    let store = PostgresStore::connect(&url, &schema).unwrap();
    let ledger = Ledger::with_store(Box::new(store), key, LedgerOptions::default()).unwrap();
    for i in 0..n {
        let decision = if i == 2 { "deny" } else { "allow" };
        let entry = NewEntry::new(EntryKind::Accepted, "agent-1", format!("ace.comms.e{i}"))
            .decision(decision);
        ledger.append(entry).unwrap();
    }
    ledger.checkpoint().unwrap();
    Some(PostgresLedger {
        data,
        url,
        schema,
        client,
    })
}

/// A PostgreSQL ledger under test; drops its schema when the test ends, pass or fail.
struct PostgresLedger {
    data: tempfile::TempDir,
    url: String,
    schema: String,
    client: postgres::Client,
}

impl PostgresLedger {
    fn verify(&self, extra: &[&str]) -> crate::Run {
        let data = self.data.path().to_str().unwrap();
        let mut args = vec!["ledger", "verify", "--data", data, "--postgres", &self.url];
        args.extend(["--schema", &self.schema]);
        args.extend(extra);
        ace(&args, b"")
    }

    fn sql(&mut self, statement: &str) {
        let statement = statement.replace("{schema}", &self.schema);
        self.client.batch_execute(&statement).unwrap();
    }
}

impl Drop for PostgresLedger {
    fn drop(&mut self) {
        let _ = self
            .client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema));
    }
}

#[test]
fn given_an_intact_postgres_ledger_when_verified_then_exit_0_with_the_counts() {
    let Some(ledger) = postgres_ledger_with("pg_intact", 5) else {
        return;
    };
    let line = assert_five_verified(|extra| ledger.verify(extra));
    assert!(
        line.contains(&format!("(schema {}): OK", ledger.schema)),
        "{line}"
    );
}

/// Writes a PostgreSQL ledger of 5 entries, runs `statement` on it, and checks that `verify
/// --postgres` exits 1 with `named` in its report.
fn assert_tampering_named(test: &str, statement: &str, named: &str) {
    let Some(mut ledger) = postgres_ledger_with(test, 5) else {
        return;
    };
    ledger.sql(statement);
    let run = ledger.verify(&[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("FAILED: {named}")),
        "{}",
        run.stdout
    );
}

#[test]
fn given_a_decision_updated_in_postgres_when_verified_then_exit_1_naming_its_seq() {
    assert_tampering_named(
        "pg_edited",
        "UPDATE {schema}.entries SET line = replace(line, '\"deny\"', '\"allow\"') WHERE seq = 2",
        "entry seq 2 (line 3) was edited",
    );
}

#[test]
fn given_a_middle_row_deleted_in_postgres_when_verified_then_exit_1_naming_the_missing_seq() {
    assert_tampering_named(
        "pg_dropped",
        "DELETE FROM {schema}.entries WHERE seq = 2",
        "entry seq 2 is missing",
    );
}

#[test]
fn given_a_checkpoint_row_with_a_forged_root_when_verified_then_exit_1_naming_the_checkpoint() {
    let zero = "0".repeat(64);
    assert_tampering_named(
        "pg_forged",
        &format!(
            "UPDATE {{schema}}.checkpoints SET line = \
             jsonb_set(line::jsonb, '{{root_hash}}', '\"{zero}\"')::text"
        ),
        "checkpoint line 1 (size 5) signature invalid",
    );
}

/// `ace-comms ledger verify --data DATA --postgres URL`.
fn verify_postgres_at(data: &std::path::Path, url: &str) -> crate::Run {
    let data = data.to_str().unwrap();
    ace(
        &["ledger", "verify", "--data", data, "--postgres", url],
        b"",
    )
}

#[test]
fn given_an_unreachable_database_when_verified_then_exit_2_naming_the_url_without_its_password() {
    let data = tempfile::tempdir().unwrap();
    let dir = ace_ledger::ledger_dir(data.path());
    std::fs::create_dir_all(&dir).unwrap();
    LedgerKey::load_or_create(&dir).unwrap();
    let run = verify_postgres_at(data.path(), "postgres://ace:s3cret@127.0.0.1:1/ledger");
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("postgres://ace@127.0.0.1:1/ledger (schema ace_ledger)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("s3cret"), "{}", run.stderr);
}

#[test]
fn given_no_signing_key_in_the_data_directory_when_verifying_postgres_then_exit_2_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let run = verify_postgres_at(data.path(), "postgres://ace@127.0.0.1:1/ledger");
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cannot read the ledger's public key"),
        "{}",
        run.stderr
    );
}
