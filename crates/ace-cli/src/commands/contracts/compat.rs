//! `contracts compat OLD NEW`: the structural compatibility check of two schema files.

use std::io::Write;

use ace_contracts::compat;
use anyhow::Result;
use serde_json::json;

use crate::{
    args::CompatArgs,
    commands::{Outcome, input},
    output::Format,
};

pub(super) fn run(args: &CompatArgs, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let old = input::read_json(&args.old)?;
    let new = input::read_json(&args.new)?;
    let found = compat::check(&old, &new, args.mode);
    let outcome = if found.is_empty() {
        Outcome::Success
    } else {
        Outcome::Invalid
    };
    let report = json!({
        "compatible": found.is_empty(),
        "mode": args.mode,
        "incompatibilities": found,
    });
    format.print(out, &report, |out| lines(args, &found, out))?;
    Ok(outcome)
}

/// The verdict, then one line per problem, for people.
fn lines(args: &CompatArgs, found: &[compat::Incompatibility], out: &mut dyn Write) -> Result<()> {
    if found.is_empty() {
        writeln!(
            out,
            "compatible ({}): {} may follow {}",
            args.mode,
            args.new.display(),
            args.old.display()
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "incompatible ({}): {} problem(s)",
        args.mode,
        found.len()
    )?;
    for problem in found {
        writeln!(out, "  {problem}")?;
    }
    Ok(())
}
