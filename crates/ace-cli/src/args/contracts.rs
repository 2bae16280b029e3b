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
    /// Check whether NEW may follow OLD under a compatibility mode, offline; or, with
    /// `--subject NAME@VERSION`, whether the server's registry would admit NEW as that version
    /// (under the subject's own mode unless --mode says). Every incompatibility is printed with
    /// its JSON pointer and reason. Exit 0 compatible, 1 incompatible, 2 usage.
    #[command(
        after_help = "Examples:\n  ace-comms contracts compat v1.json v2.json\n  \
                            ace-comms contracts compat v1.json v2.json --mode full -o json\n  \
                            ace-comms contracts compat --subject test.score@2.0.0 v2.json --server http://127.0.0.1:8500"
    )]
    Compat(CompatArgs),
    /// Register a schema file on the server as NAME@VERSION (admin). Refused with every
    /// incompatibility when the subject's compatibility mode forbids it (exit 1).
    #[command(
        after_help = "Examples:\n  ace-comms contracts register test.score@1.0.0 score.json\n  \
                            ace-comms contracts register test.score@1.1.0 score.json --server https://ace.example:8500 --api-key $KEY"
    )]
    Register(RegisterArgs),
}

/// `contracts register`.
#[derive(Debug, Args)]
pub(crate) struct RegisterArgs {
    /// The contract and the version to register: `subject@version`.
    pub(crate) schema: String,
    /// The JSON Schema file; `-` reads standard input.
    pub(crate) file: PathBuf,
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
    /// OLD NEW (two JSON Schema files) offline; NEW alone with --subject.
    #[arg(required = true, num_args = 1..=2, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Ask the server: would NEW be admitted as this `subject@version` of its registry?
    #[arg(long, value_name = "NAME@VERSION")]
    pub(crate) subject: Option<String>,
    /// backward, backward_transitive, forward, forward_transitive, full, full_transitive or none
    /// (offline default: backward; with --subject: the subject's own mode).
    #[arg(long, value_parser = parse_mode)]
    pub(crate) mode: Option<CompatibilityMode>,
}

fn parse_mode(s: &str) -> Result<CompatibilityMode, String> {
    s.parse()
}
