//! `ledger verify`: `ace_ledger::verify_dir` (the files) or `ace_ledger::verify_postgres`
//! (`--postgres`) from the command line. The check is the library's; this file only finds the
//! key and shapes its report for people (one line) and scripts (`--json`).

use std::io::Write;

use ace_ledger::{PostgresStore, VerifyReport, checkpoint::load_public_key, ledger_dir};
use anyhow::{Result, anyhow, bail};
use serde_json::json;

use crate::{args::VerifyArgs, commands::Outcome, output};

pub(super) fn run(args: &VerifyArgs, out: &mut dyn Write) -> Result<Outcome> {
    if !args.data.is_dir() {
        bail!(
            "{} is not a directory (name the server's data directory with --data)",
            args.data.display()
        );
    }
    let report = match &args.postgres {
        None => ace_ledger::verify_dir(&args.data),
        Some(url) => verify_postgres(args, url)?,
    };
    let outcome = if report.is_ok() {
        Outcome::Success
    } else {
        Outcome::Invalid
    };
    if args.output.json {
        let doc = json!({
            "ok": report.is_ok(),
            "dir": report.dir,
            "entries": report.entries,
            "checkpoints_verified": report.checkpoints_verified,
            "uncovered": report.uncovered,
            "torn_bytes_kept": report.torn_bytes_kept,
            "problem": report.problem.as_ref().map(ToString::to_string),
        });
        output::json(out, &doc)?;
    } else {
        writeln!(out, "{}: {report}", report.dir.display())?;
    }
    Ok(outcome)
}

/// The PostgreSQL ledger against the public key the server keeps in `{data}/ledger/` for
/// either store; an unreachable database or a missing key is a usage error (exit 2).
fn verify_postgres(args: &VerifyArgs, url: &str) -> Result<VerifyReport> {
    let dir = ledger_dir(&args.data);
    let key = load_public_key(&dir).map_err(|e| {
        anyhow!(
            "cannot read the ledger's public key in {} (the server writes it there for the \
             PostgreSQL store too; name the server's data directory with --data): {e}",
            dir.display()
        )
    })?;
    ace_ledger::verify_postgres(url, &args.schema, &key).map_err(|e| {
        anyhow!(
            "cannot read the ledger in PostgreSQL at {} (schema {}): {e}",
            PostgresStore::url_without_password(url),
            args.schema
        )
    })
}
