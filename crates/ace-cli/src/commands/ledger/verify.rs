//! `ledger verify`: `ace_ledger::verify_dir` from the command line. The check is the library's;
//! this file only shapes its report for people (one line) and scripts (`--json`).

use std::io::Write;

use anyhow::{Result, bail};
use serde_json::json;

use crate::{args::VerifyArgs, commands::Outcome, output};

pub(super) fn run(args: &VerifyArgs, out: &mut dyn Write) -> Result<Outcome> {
    if !args.data.is_dir() {
        bail!(
            "{} is not a directory (name the server's data directory with --data)",
            args.data.display()
        );
    }
    let report = ace_ledger::verify_dir(&args.data);
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
