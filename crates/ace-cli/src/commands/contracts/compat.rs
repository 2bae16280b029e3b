//! `contracts compat OLD NEW`: the structural compatibility check of two schema files.

use std::io::Write;

use ace_contracts::compat;
use anyhow::Result;
use serde_json::json;

use crate::{
    args::CompatArgs,
    commands::{Outcome, input},
    output,
};

pub(super) fn run(args: &CompatArgs, out: &mut dyn Write) -> Result<Outcome> {
    let old = input::read_json(&args.old)?;
    let new = input::read_json(&args.new)?;
    let found = compat::check(&old, &new, args.mode);
    let outcome = if found.is_empty() {
        Outcome::Success
    } else {
        Outcome::Invalid
    };
    if args.output.json {
        let report = json!({
            "compatible": found.is_empty(),
            "mode": args.mode,
            "incompatibilities": found,
        });
        output::json(out, &report)?;
        return Ok(outcome);
    }
    if found.is_empty() {
        writeln!(
            out,
            "compatible ({}): {} may follow {}",
            args.mode,
            args.new.display(),
            args.old.display()
        )?;
        return Ok(outcome);
    }
    writeln!(
        out,
        "incompatible ({}): {} problem(s)",
        args.mode,
        found.len()
    )?;
    for problem in &found {
        writeln!(out, "  {problem}")?;
    }
    Ok(outcome)
}
