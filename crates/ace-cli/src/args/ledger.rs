//! `ace-comms ledger …`: the tamper-evident ledger, offline.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::OutputArgs;

/// The verbs of `ledger`.
#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Check the ledger under the data directory offline: every chain link, every checkpoint
    /// signature, every Merkle root. Names the first edited, dropped, reordered or appended
    /// entry. Exit 0 intact, 1 tampered or unreadable, 2 usage.
    #[command(
        after_help = "Examples:\n  ace-comms ledger verify\n  ace-comms ledger verify --data /var/lib/ace-comms --json"
    )]
    Verify(VerifyArgs),
}

/// `ledger verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The server's data directory (the ledger is its `ledger/` folder).
    #[arg(long, default_value = "./data", env = "ACE_DATA")]
    pub(crate) data: PathBuf,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}
