//! `ace-comms contracts …`: the schema registry from the command line.

use std::path::PathBuf;

use ace_contracts::CompatibilityMode;
use clap::{Args, Subcommand};

/// The verbs of `contracts`.
#[derive(Debug, Subcommand)]
pub(crate) enum ContractsCommand {
    /// List every registered subject with its versions and compatibility mode.
    #[command(
        after_help = "Examples:\n  ace-comms contracts list\n  ace-comms contracts list -o yaml"
    )]
    List,
    /// Print a registered schema.
    #[command(
        after_help = "Examples:\n  ace-comms contracts show mlt.experience\n  \
                            ace-comms contracts show comms.envelope@1.0.0"
    )]
    Show(ShowArgs),
    /// Validate a JSON document: an envelope (and its payload against the envelope's `schema`),
    /// or any document against `--schema`. Exit 0 valid, 1 invalid (every error printed), 2 usage.
    #[command(
        after_help = "Examples:\n  ace-comms contracts validate message.json\n  \
                            ace-comms contracts validate experience.json --schema mlt.experience@1.0.0\n  \
                            cat message.json | ace-comms contracts validate - --json"
    )]
    Validate(ValidateArgs),
    /// Check whether NEW may follow OLD under a compatibility mode; every incompatibility is
    /// printed with its JSON pointer and reason. Exit 0 compatible, 1 incompatible, 2 usage.
    #[command(
        after_help = "Examples:\n  ace-comms contracts compat v1.json v2.json\n  \
                            ace-comms contracts compat v1.json v2.json --mode full --json"
    )]
    Compat(CompatArgs),
}

/// `contracts show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// `subject` (latest version) or `subject@version`.
    pub(crate) schema: String,
}

/// `contracts validate`.
#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The JSON document to validate; `-` reads standard input.
    pub(crate) file: PathBuf,
    /// Validate against this contract (`subject` or `subject@version`) instead of as an envelope.
    #[arg(long, value_name = "NAME[@VER]")]
    pub(crate) schema: Option<String>,
}

/// `contracts compat`.
#[derive(Debug, Args)]
pub(crate) struct CompatArgs {
    /// The earlier schema (JSON Schema file).
    pub(crate) old: PathBuf,
    /// The later schema (JSON Schema file).
    pub(crate) new: PathBuf,
    /// backward, backward_transitive, forward, forward_transitive, full, full_transitive or none.
    #[arg(long, default_value = "backward", value_parser = parse_mode)]
    pub(crate) mode: CompatibilityMode,
}

fn parse_mode(s: &str) -> Result<CompatibilityMode, String> {
    s.parse()
}
