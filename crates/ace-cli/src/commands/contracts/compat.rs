//! `contracts compat OLD NEW`: the structural compatibility check of two schema files, offline;
//! `contracts compat --subject NAME@VERSION NEW`: the server's registry asked whether it would
//! admit NEW as that version (registering nothing).

use std::io::Write;

use ace_contracts::{CompatibilityMode, compat};
use anyhow::{Result, bail};
use serde_json::json;

use crate::{
    args::{CompatArgs, ServerArgs},
    commands::client::{Session, failed},
    commands::{Outcome, input},
    output::Format,
};

pub(super) fn run(
    args: &CompatArgs,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match (&args.subject, args.files.as_slice()) {
        (None, [old, new]) => offline(args, old, new, format, out),
        (Some(subject), [new]) => remote(args, subject, new, server, format, out),
        (None, _) => {
            bail!("give two schema files, OLD and NEW (or --subject NAME@VERSION and NEW)")
        }
        (Some(_), _) => bail!("with --subject, give one schema file: the candidate NEW"),
    }
}

fn offline(
    args: &CompatArgs,
    old: &std::path::Path,
    new: &std::path::Path,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let mode = args.mode.unwrap_or(CompatibilityMode::Backward);
    let found = compat::check(&input::read_json(old)?, &input::read_json(new)?, mode);
    let report = json!({
        "compatible": found.is_empty(),
        "mode": mode,
        "incompatibilities": found,
    });
    let problems: Vec<String> = found.iter().map(ToString::to_string).collect();
    let what = format!("{} may follow {}", new.display(), old.display());
    format.print(out, &report, |out| {
        lines(&mode.to_string(), &what, &problems, out)
    })?;
    Ok(verdict(found.is_empty()))
}

fn remote(
    args: &CompatArgs,
    subject: &str,
    new: &std::path::Path,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let (name, version) = super::register::pinned(subject)?;
    let schema = input::read_json(new)?;
    let session = Session::new(server)?;
    let mode = args.mode.map(|m| m.to_string());
    let answer = session.block_on(session.client.check_contract(&name, &version, schema, mode));
    let answer = match answer {
        Ok(answer) => answer,
        Err(err) => return failed(err),
    };
    let said = args
        .mode
        .map_or_else(|| "the subject's mode".to_owned(), |m| m.to_string());
    let report = json!({
        "compatible": answer.is_compatible,
        "mode": said,
        "incompatibilities": answer.incompatibilities,
    });
    let what = format!("{} may be registered as {name}@{version}", new.display());
    format.print(out, &report, |out| {
        lines(&said, &what, &answer.messages, out)
    })?;
    Ok(verdict(answer.is_compatible))
}

fn verdict(compatible: bool) -> Outcome {
    if compatible {
        Outcome::Success
    } else {
        Outcome::Invalid
    }
}

/// The verdict, then one line per problem, for people.
fn lines(mode: &str, what: &str, problems: &[String], out: &mut dyn Write) -> Result<()> {
    if problems.is_empty() {
        writeln!(out, "compatible ({mode}): {what}")?;
        return Ok(());
    }
    writeln!(out, "incompatible ({mode}): {} problem(s)", problems.len())?;
    for problem in problems {
        writeln!(out, "  {problem}")?;
    }
    Ok(())
}
