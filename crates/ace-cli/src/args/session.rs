//! `ace-comms session …`: a session's versioned state on the server (`GET`/`PUT
//! /api/v1/sessions/{id}`).

use clap::{Args, Subcommand};

/// The verbs of `session`.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionCommand {
    /// Print a session: its state, version, owner and last write.
    #[command(after_help = "Examples:\n  \
        ace-comms session get planner-42\n  \
        ace-comms session get planner-42 -o json | jq .data")]
    Get(SessionGetArgs),
    /// Write a session's state: creates it, or with --if-version replaces that version only.
    #[command(
        after_help = "Replacing an existing session without --if-version is refused \
                            (PRECONDITION_REQUIRED), and --if-version of a version that has moved on \
                            too (PRECONDITION_FAILED), so no concurrent write is lost.\n\n\
                            Examples:\n  \
                            ace-comms session put planner-42 '{\"step\":1}'\n  \
                            ace-comms session put planner-42 '{\"step\":2}' --if-version 1 -o yaml"
    )]
    Put(SessionPutArgs),
}

/// `session get`.
#[derive(Debug, Args)]
pub(crate) struct SessionGetArgs {
    /// The session id.
    pub(crate) id: String,
}

/// `session put`.
#[derive(Debug, Args)]
pub(crate) struct SessionPutArgs {
    /// The session id.
    pub(crate) id: String,
    /// The new state, a JSON document.
    pub(crate) data: String,
    /// Replace only this version (`If-Match`); without it the session must not exist yet.
    #[arg(long)]
    pub(crate) if_version: Option<u64>,
}
