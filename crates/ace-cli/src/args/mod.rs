//! The command line, as data: clap derive structs, one file per noun.

mod contracts;
mod envelope;
mod serve;

use clap::{Args, Parser, Subcommand};

pub(crate) use contracts::{CompatArgs, ContractsCommand, ShowArgs, ValidateArgs};
pub(crate) use envelope::{ConvertArgs, EnvelopeCommand, Format, NewArgs};
pub(crate) use serve::{LogFormat, ServeArgs};

/// ACE::COMMS — a governed message backbone for AI agents, humans and ML services.
#[derive(Debug, Parser)]
#[command(name = "ace-comms", version, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The nouns.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Inspect the embedded contracts, validate documents, check schema compatibility.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Make gme/1 envelopes and convert them between JSON, protobuf and CloudEvents.
    #[command(subcommand)]
    Envelope(EnvelopeCommand),
    /// Start the server: HTTP API on the embedded engine (auth off: development mode).
    Serve(ServeArgs),
}

/// `--json`: machine-readable output instead of a table.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct OutputArgs {
    /// Print JSON for scripts instead of text for people.
    #[arg(long)]
    pub(crate) json: bool,
}
