//! `ace-comms ledger …` end to end: `verify` on a ledger written by `ace-ledger`, checked by the
//! binary, then tampered with on disk; and against a real `ace-comms serve`, `checkpoint`,
//! `entries` and `proof`, then `verify` on the ledger that server wrote, edited, dropped,
//! reordered and appended to; `verify --postgres` on a ledger in a real PostgreSQL
//! (`ACE_TEST_POSTGRES_URL`, a fresh schema per test; unreachable: fails under `CI=true`,
//! otherwise skips loudly), intact and with rows updated, deleted and forged; and `verify
//! --checkpoint FILE` / `--witness-postgres URL` against checkpoints kept outside the ledger: a
//! rollback of entries with their checkpoints, a rewritten tail after the last local
//! checkpoint, a clean ledger, each file format, and unreadable files (exit 2).

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

/// Appends `n` entries to the ledger under `data` and signs a checkpoint; returns it.
fn grow(data: &std::path::Path, n: usize) -> ace_ledger::Checkpoint {
    let ledger = Ledger::open(data, LedgerOptions::default()).unwrap();
    for i in 0..n {
        let entry = NewEntry::new(
            EntryKind::Accepted,
            "agent-1",
            format!("ace.comms.grow.{i}"),
        )
        .decision("allow");
        ledger.append(entry).unwrap();
    }
    ledger.checkpoint().unwrap()
}

/// `ace-comms ledger verify --data DATA` with `extra` arguments.
fn verify_with(data: &std::path::Path, extra: &[&str]) -> crate::Run {
    let mut args = vec!["ledger", "verify", "--data", data.to_str().unwrap()];
    args.extend_from_slice(extra);
    ace(&args, b"")
}

#[test]
fn given_a_ledger_rolled_back_with_its_checkpoints_when_verified_against_a_saved_checkpoint_then_exit_1_naming_the_rollback()
 {
    let data = ledger_with(5);
    let ledger = data.path().join("ledger");
    let aside = tempfile::tempdir().unwrap();
    for file in ["entries.jsonl", "checkpoints.jsonl"] {
        std::fs::copy(ledger.join(file), aside.path().join(file)).unwrap();
    }
    let saved = grow(data.path(), 5);
    let saved_file = aside.path().join("saved-checkpoint.json");
    std::fs::write(&saved_file, serde_json::to_vec_pretty(&saved).unwrap()).unwrap();
    // Roll entries and checkpoints back together to the copy taken at 5 entries.
    for file in ["entries.jsonl", "checkpoints.jsonl"] {
        std::fs::copy(aside.path().join(file), ledger.join(file)).unwrap();
    }

    let alone = verify_with(data.path(), &[]);
    assert_eq!(
        alone.code, 0,
        "alone, the rollback verifies: {}",
        alone.stdout
    );
    let saved_arg = saved_file.to_str().unwrap();
    let run = verify_with(data.path(), &["--checkpoint", saved_arg]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("rolled back: the checkpoint covers 10 entries but the ledger holds only 5"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("FAILED: 0 of 1 saved checkpoints verified against the ledger of 5 entries"),
        "{}",
        run.stdout
    );
    let run = verify_with(data.path(), &["--checkpoint", saved_arg, "--json"]);
    assert_eq!(run.code, 1);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["problem"], Value::Null, "the ledger alone is fine");
    assert_eq!(report["anchors"]["checked"], 1);
    assert_eq!(report["anchors"]["problems"][0]["size"], 10);
    let problem = report["anchors"]["problems"][0]["problem"]
        .as_str()
        .unwrap();
    assert!(problem.starts_with("rolled back"), "{problem}");
}

#[test]
fn given_an_entry_rewritten_after_the_last_local_checkpoint_when_verified_against_a_witness_file_then_exit_1_naming_the_different_history()
 {
    let data = ledger_with(5);
    let first = ace_ledger::read_witness_file(&data.path().join("ledger/checkpoints.jsonl"))
        .unwrap()
        .remove(0);
    let later = grow(data.path(), 3);
    // The witness kept both checkpoints, as `ledger.witness.file` does.
    let witness_dir = tempfile::tempdir().unwrap();
    let witness = witness_dir.path().join("witness.jsonl");
    let mut file_witness = ace_ledger::FileWitness::new(&witness);
    for cp in [&first, &later] {
        ace_ledger::Witness::send(&mut file_witness, cp).unwrap();
    }
    // Rewrite entry 6, recompute the chain after it, and drop the local checkpoint at 8.
    let ledger = data.path().join("ledger");
    let text = std::fs::read_to_string(ledger.join("entries.jsonl")).unwrap();
    let mut prev = ace_ledger::Hash::ZERO;
    let mut lines = Vec::new();
    for line in text.lines() {
        let mut entry: ace_ledger::Entry = serde_json::from_str(line).unwrap();
        if entry.seq == 6 {
            entry.decision = "deny".to_owned();
        }
        entry.chain_hash = ace_ledger::entry::chain_hash(&prev, &entry.leaf_bytes());
        prev = entry.chain_hash;
        lines.push(String::from_utf8(entry.to_line()).unwrap());
    }
    std::fs::write(ledger.join("entries.jsonl"), lines.join("\n") + "\n").unwrap();
    std::fs::write(
        ledger.join("checkpoints.jsonl"),
        serde_json::to_string(&first).unwrap() + "\n",
    )
    .unwrap();

    let alone = verify_with(data.path(), &["--json"]);
    assert_eq!(
        alone.code, 0,
        "alone, the rewrite verifies: {}",
        alone.stdout
    );
    let report: Value = serde_json::from_str(&alone.stdout).unwrap();
    assert_eq!(report["uncovered"], 3);
    let run = verify_with(data.path(), &["--checkpoint", witness.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let failed = run
        .stdout
        .lines()
        .find(|l| l.starts_with("FAILED: checkpoint of size 8"))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(failed.contains("different history"), "{failed}");
    assert!(
        failed.contains(&format!("{} checkpoint 2", witness.display())),
        "the witness line is named: {failed}"
    );
    assert!(
        run.stdout.contains(
            "FAILED: 1 of 2 saved checkpoints verified against the ledger of 8 entries \
             (consistency proof); the ledger extends the one of size 5"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn given_a_clean_ledger_that_grew_when_verified_against_saved_checkpoints_in_each_format_then_exit_0()
 {
    let data = ledger_with(4);
    let saved = ace_ledger::read_witness_file(&data.path().join("ledger/checkpoints.jsonl"))
        .unwrap()
        .remove(0);
    grow(data.path(), 3);
    let aside = tempfile::tempdir().unwrap();
    // As `GET /api/v1/ledger/checkpoint` answers, as `ledger checkpoint --json` prints, and as
    // a witness file (JSON lines) keeps it.
    let bare = crate::write(
        aside.path(),
        "bare.json",
        &serde_json::to_string(&saved).unwrap(),
    );
    let wrapped = crate::write(
        aside.path(),
        "wrapped.json",
        &serde_json::json!({"checkpoint": saved, "signature_verified": true}).to_string(),
    );
    let lines = crate::write(
        aside.path(),
        "witness.jsonl",
        &format!(
            "{}\n{}\n",
            serde_json::to_string(&saved).unwrap(),
            serde_json::to_string(&saved).unwrap()
        ),
    );
    let run = verify_with(
        data.path(),
        &[
            "--checkpoint",
            &bare,
            "--checkpoint",
            &wrapped,
            "--checkpoint",
            &lines,
        ],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "OK: 4 of 4 saved checkpoints verified against the ledger of 7 entries \
             (consistency proof); the ledger extends the one of size 4"
        ),
        "{}",
        run.stdout
    );
}

#[test]
fn given_an_unreadable_or_malformed_checkpoint_file_when_verified_then_exit_2_naming_it() {
    let data = ledger_with(2);
    let run = verify_with(data.path(), &["--checkpoint", "/no/such/checkpoint.json"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("/no/such/checkpoint.json"),
        "{}",
        run.stderr
    );
    let aside = tempfile::tempdir().unwrap();
    let bad = crate::write(aside.path(), "bad.json", "{\"size\": 3}");
    let run = verify_with(data.path(), &["--checkpoint", &bad]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("bad.json") && run.stderr.contains("not a signed checkpoint"),
        "{}",
        run.stderr
    );
    let lines = crate::write(aside.path(), "lines.jsonl", "{}\n{}\n");
    let run = verify_with(data.path(), &["--checkpoint", &lines]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("line 1"), "{}", run.stderr);
    let run = verify_with(data.path(), &["--witness-schema", "x"]);
    assert_eq!(
        run.code, 2,
        "--witness-schema needs --witness-postgres: {}",
        run.stderr
    );
}

#[test]
fn given_a_postgres_witness_when_verified_against_it_then_its_checkpoints_anchor_the_ledger_and_a_rollback_fails()
 {
    let Some(url) = ace_testkit::postgres_url("cli_witness") else {
        return;
    };
    let schema = format!("ace_cli_witness_{}", std::process::id());
    let _cleanup = DropSchemaOnExit(url.clone(), schema.clone());
    let data = ledger_with(3);
    let ledger = data.path().join("ledger");
    let aside = tempfile::tempdir().unwrap();
    for file in ["entries.jsonl", "checkpoints.jsonl"] {
        std::fs::copy(ledger.join(file), aside.path().join(file)).unwrap();
    }
    let first = ace_ledger::read_witness_file(&ledger.join("checkpoints.jsonl"))
        .unwrap()
        .remove(0);
    let later = grow(data.path(), 2);
    let mut witness = ace_ledger::PostgresWitness::new(&url, &schema).unwrap();
    for cp in [&first, &later] {
        ace_ledger::Witness::send(&mut witness, cp).unwrap();
    }

    let run = verify_with(
        data.path(),
        &["--witness-postgres", &url, "--witness-schema", &schema],
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("OK: 2 of 2 saved checkpoints"),
        "{}",
        run.stdout
    );
    for file in ["entries.jsonl", "checkpoints.jsonl"] {
        std::fs::copy(aside.path().join(file), ledger.join(file)).unwrap();
    }
    let run = verify_with(
        data.path(),
        &["--witness-postgres", &url, "--witness-schema", &schema],
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("covers 5 entries but the ledger holds only 3"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("(schema {schema}) row 2")),
        "the witness row is named: {}",
        run.stdout
    );
    let run = verify_with(
        data.path(),
        &[
            "--witness-postgres",
            &url,
            "--witness-schema",
            "no_such_witness",
        ],
    );
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("no_such_witness"), "{}", run.stderr);
}

/// Drops a schema when the test ends, pass or fail.
struct DropSchemaOnExit(String, String);

impl Drop for DropSchemaOnExit {
    fn drop(&mut self) {
        if let Ok(mut client) = postgres::Client::connect(&self.0, postgres::NoTls) {
            let _ = client.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.1));
        }
    }
}
