//! `ledger verify` (offline, the files) and `ledger checkpoint|entries|proof` (online, the
//! server's answers checked here).

mod online;
mod verify;

use std::io::Write;

use anyhow::Result;

use super::Outcome;
use super::client::Session;
use crate::args::{LedgerCommand, ServerArgs};

/// Runs one `ledger` verb; only the online ones reach the server.
pub(crate) fn run(
    command: LedgerCommand,
    server: &ServerArgs,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        LedgerCommand::Verify(args) => verify::run(&args, out),
        LedgerCommand::Checkpoint(args) => online::checkpoint(&Session::new(server)?, &args, out),
        LedgerCommand::Entries(args) => online::entries(&Session::new(server)?, &args, out),
        LedgerCommand::Proof(args) => online::proof(&Session::new(server)?, &args, out),
    }
}
