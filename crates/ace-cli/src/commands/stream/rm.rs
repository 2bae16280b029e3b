//! `stream rm`: delete a stream; asks on a terminal, requires `--force` otherwise so a script
//! never deletes by accident nor hangs on a prompt.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::args::RmArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::Format;

/// What `stream rm -o json|yaml` prints.
#[derive(Serialize)]
struct Removal<'a> {
    stream: &'a str,
    deleted: bool,
}

pub(super) fn run(
    session: &Session,
    args: &RmArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let deleted = args.force || confirmed(&args.name)?;
    if deleted && let Err(err) = session.block_on(session.client.delete_stream(&args.name)) {
        return failed(err);
    }
    let removal = Removal {
        stream: &args.name,
        deleted,
    };
    format.print(out, &removal, |out| {
        let done = if deleted { "deleted" } else { "kept" };
        Ok(writeln!(out, "stream {} {done}", args.name)?)
    })?;
    Ok(Outcome::Success)
}

/// Asks on the terminal; without one, refuses (exit 2) and names `--force`.
fn confirmed(name: &str) -> Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!("deleting stream {name} needs --force when standard input is not a terminal");
    }
    eprint!("delete stream {name} and every message in it? [y/N] ");
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
