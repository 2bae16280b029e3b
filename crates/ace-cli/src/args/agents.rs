//! `ace-comms agents …`: the agents present on the server (heartbeats within their expiry).

use clap::Subcommand;

/// The verbs of `agents`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum AgentsCommand {
    /// List the agents present, with their capabilities, clearance and last heartbeat.
    #[command(after_help = "Examples:\n  \
        ace-comms agents ls\n  \
        ace-comms agents ls -o yaml")]
    Ls,
}
