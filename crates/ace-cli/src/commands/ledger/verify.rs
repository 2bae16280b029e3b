//! `ledger verify`: `ace_ledger::verify_dir` (the files) or `ace_ledger::verify_postgres`
//! (`--postgres`) from the command line, and with `--checkpoint FILE` / `--witness-postgres URL`
//! `ace_ledger::verify_anchors_dir` / `verify_anchors_postgres` against checkpoints kept
//! outside the ledger. The checks are the library's; this file only finds the key, reads the
//! saved checkpoints, and shapes the report for people (lines) and scripts (`-o json|yaml`).
//!
//! A checkpoint file is one JSON document — a checkpoint as `GET /api/v1/ledger/checkpoint`
//! answers it, or `{"checkpoint": …}` as `ace-comms ledger checkpoint --json` prints it — or
//! JSON lines of checkpoints (a `ledger.witness.file`, whose torn last line, if any, is
//! skipped). A file that cannot be read or holds anything else is a usage error (exit 2)
//! naming the file and line.

use std::io::Write;
use std::path::Path;

use ace_ledger::{
    Anchor, AnchorReport, Checkpoint, PostgresStore, VerifyReport, checkpoint::load_public_key,
    ledger_dir,
};
use anyhow::{Context as _, Result, anyhow, bail};
use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};

use crate::{args::VerifyArgs, commands::Outcome, output::Format};

pub(super) fn run(args: &VerifyArgs, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    if !args.data.is_dir() {
        bail!(
            "{} is not a directory (name the server's data directory with --data)",
            args.data.display()
        );
    }
    let anchors = anchors(args)?;
    let report = match &args.postgres {
        None => ace_ledger::verify_dir(&args.data),
        Some(url) => verify_postgres(args, url)?,
    };
    let anchored = if anchors.is_empty() {
        None
    } else {
        Some(verify_anchors(args, &anchors)?)
    };
    let ok = report.is_ok() && anchored.as_ref().is_none_or(AnchorReport::is_ok);
    let outcome = if ok {
        Outcome::Success
    } else {
        Outcome::Invalid
    };
    let mut doc = json!({
    "ok": ok,
    "dir": report.dir,
    "entries": report.entries,
    "checkpoints_verified": report.checkpoints_verified,
    "uncovered": report.uncovered,
    "torn_bytes_kept": report.torn_bytes_kept,
    "problem": report.problem.as_ref().map(ToString::to_string),
    });
    if let Some(anchored) = &anchored {
        doc["anchors"] = anchors_json(anchored);
    }
    format.print(out, &doc, |out| {
        writeln!(out, "{}: {report}", report.dir.display())?;
        match &anchored {
            Some(anchored) => write_anchors(out, anchored),
            None => Ok(()),
        }
    })?;
    Ok(outcome)
}

/// The saved checkpoints `--checkpoint` and `--witness-postgres` name, in that order.
fn anchors(args: &VerifyArgs) -> Result<Vec<Anchor>> {
    let mut anchors = Vec::new();
    for file in &args.checkpoints {
        anchors.extend(read_checkpoint_file(file)?);
    }
    if let Some(url) = &args.witness_postgres {
        let schema = &args.witness_schema;
        let source = format!(
            "witness {} (schema {schema})",
            PostgresStore::url_without_password(url)
        );
        let kept = ace_ledger::read_witness_postgres(url, schema)
            .map_err(|e| anyhow!("cannot read the checkpoints of the {source}: {e}"))?;
        if kept.is_empty() {
            bail!("the {source} holds no checkpoint yet");
        }
        anchors.extend(kept.into_iter().zip(1..).map(|(checkpoint, row)| Anchor {
            source: format!("{source} row {row}"),
            checkpoint,
        }));
    }
    Ok(anchors)
}

/// The checkpoints of one `--checkpoint FILE` (see the module documentation).
fn read_checkpoint_file(file: &Path) -> Result<Vec<Anchor>> {
    let text = std::fs::read(file)
        .with_context(|| format!("cannot read the checkpoint file {}", file.display()))?;
    let named = |checkpoint: Checkpoint, source: String| Anchor { source, checkpoint };
    if let Ok(doc) = serde_json::from_slice::<Value>(&text) {
        let inner = doc.get("checkpoint").cloned().unwrap_or(doc);
        let checkpoint: Checkpoint = serde_json::from_value(inner).map_err(|e| {
            anyhow!(
                "{} is not a signed checkpoint (nor {{\"checkpoint\": …}} from `ace-comms ledger \
                 checkpoint --json`): {e}",
                file.display()
            )
        })?;
        return Ok(vec![named(checkpoint, file.display().to_string())]);
    }
    let kept = ace_ledger::read_witness_file(file).map_err(|e| anyhow!("{e}"))?;
    if kept.is_empty() {
        bail!("{} holds no checkpoint", file.display());
    }
    Ok(kept
        .into_iter()
        .zip(1..)
        .map(|(checkpoint, n)| named(checkpoint, format!("{} checkpoint {n}", file.display())))
        .collect())
}

/// The ledger (files, or `--postgres`) against `anchors`, with the key of `{data}/ledger/`.
fn verify_anchors(args: &VerifyArgs, anchors: &[Anchor]) -> Result<AnchorReport> {
    let key = public_key(args)?;
    match &args.postgres {
        None => Ok(ace_ledger::verify_anchors_dir(&args.data, &key, anchors)),
        Some(url) => ace_ledger::verify_anchors_postgres(url, &args.schema, &key, anchors)
            .map_err(|e| unreachable_ledger(url, &args.schema, &e)),
    }
}

/// One line per failing checkpoint, then a summary line.
fn write_anchors(out: &mut dyn Write, anchored: &AnchorReport) -> Result<()> {
    let mut verified = 0;
    let mut largest = None;
    for check in &anchored.checks {
        let size = check.anchor.checkpoint.size;
        match &check.problem {
            None => {
                verified += 1;
                largest = largest.max(Some(size));
            }
            Some(problem) => writeln!(
                out,
                "FAILED: checkpoint of size {size} signed at {} ({}): {problem}",
                check.anchor.checkpoint.ts.to_rfc3339(),
                check.anchor.source
            )?,
        }
    }
    let total = anchored.checks.len();
    let verdict = if verified == total { "OK" } else { "FAILED" };
    write!(
        out,
        "{verdict}: {verified} of {total} saved checkpoints verified against the ledger of {} entries (consistency proof)",
        anchored.entries
    )?;
    if let Some(largest) = largest {
        write!(out, "; the ledger extends the one of size {largest}")?;
    }
    writeln!(out)?;
    Ok(())
}

fn anchors_json(anchored: &AnchorReport) -> Value {
    let problems: Vec<Value> = anchored
        .checks
        .iter()
        .filter_map(|check| {
            check.problem.as_ref().map(|problem| {
                json!({
                    "source": check.anchor.source,
                    "size": check.anchor.checkpoint.size,
                    "ts": check.anchor.checkpoint.ts,
                    "problem": problem.to_string(),
                })
            })
        })
        .collect();
    json!({
        "ok": anchored.is_ok(),
        "entries": anchored.entries,
        "checked": anchored.checks.len(),
        "verified": anchored.checks.len() - problems.len(),
        "largest_verified": anchored
            .checks
            .iter()
            .filter(|c| c.problem.is_none())
            .map(|c| c.anchor.checkpoint.size)
            .max(),
        "problems": problems,
    })
}

/// The public key the server keeps in `{data}/ledger/` for either store; a usage error
/// (exit 2) when it cannot be read.
fn public_key(args: &VerifyArgs) -> Result<VerifyingKey> {
    let dir = ledger_dir(&args.data);
    load_public_key(&dir).map_err(|e| {
        anyhow!(
            "cannot read the ledger's public key in {} (the server writes it there for the \
             PostgreSQL store too; name the server's data directory with --data): {e}",
            dir.display()
        )
    })
}

fn unreachable_ledger(url: &str, schema: &str, e: &ace_ledger::LedgerError) -> anyhow::Error {
    anyhow!(
        "cannot read the ledger in PostgreSQL at {} (schema {schema}): {e}",
        PostgresStore::url_without_password(url),
    )
}

/// The PostgreSQL ledger against the public key the server keeps in `{data}/ledger/` for
/// either store; an unreachable database or a missing key is a usage error (exit 2).
fn verify_postgres(args: &VerifyArgs, url: &str) -> Result<VerifyReport> {
    let key = public_key(args)?;
    ace_ledger::verify_postgres(url, &args.schema, &key)
        .map_err(|e| unreachable_ledger(url, &args.schema, &e))
}
