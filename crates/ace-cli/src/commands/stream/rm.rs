//! `stream rm`: delete a stream; asks on a terminal, requires `--force` otherwise so a script
//! never deletes by accident nor hangs on a prompt.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Result, bail};

use crate::args::RmArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};

pub(super) fn run(session: &Session, args: &RmArgs, out: &mut dyn Write) -> Result<Outcome> {
    if !args.force && !confirmed(&args.name)? {
        writeln!(out, "stream {} kept", args.name)?;
        return Ok(Outcome::Success);
    }
    match session.block_on(session.client.delete_stream(&args.name)) {
        Ok(()) => {
            writeln!(out, "stream {} deleted", args.name)?;
            Ok(Outcome::Success)
        }
        Err(err) => failed(err),
    }
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
