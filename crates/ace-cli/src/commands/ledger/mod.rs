//! `ledger verify` (offline, the files) and `ledger checkpoint|entries|proof` (online, the
//! server's answers checked here).

mod online;
mod verify;

use std::io::Write;

use anyhow::Result;

use super::Outcome;
use super::client::Session;
use crate::args::{LedgerCommand, ServerArgs};
use crate::output::Format;

/// Runs one `ledger` verb; only the online ones reach the server.
pub(crate) fn run(
    command: LedgerCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        LedgerCommand::Verify(args) => verify::run(&args, format, out),
        LedgerCommand::Checkpoint(args) => {
            online::checkpoint(&Session::new(server)?, &args, format, out)
        }
        LedgerCommand::Entries(args) => online::entries(&Session::new(server)?, &args, format, out),
        LedgerCommand::Proof(args) => online::proof(&Session::new(server)?, &args, format, out),
    }
}
