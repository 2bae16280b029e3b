//! `ledger verify`.

mod verify;

use std::io::Write;

use anyhow::Result;

use super::Outcome;
use crate::args::LedgerCommand;

/// Runs one `ledger` verb.
pub(crate) fn run(command: LedgerCommand, out: &mut dyn Write) -> Result<Outcome> {
    match command {
        LedgerCommand::Verify(args) => verify::run(&args, out),
    }
}
