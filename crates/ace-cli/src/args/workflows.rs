//! `ace-comms workflows …`: the server's workflows — list, show, switch, reload, stats — and
//! `validate`, which checks workflow files offline.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The verbs of `workflows`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum WorkflowsCommand {
    /// List the loaded workflows, and the problems of files that did not load.
    #[command(
        after_help = "Examples:\n  ace-comms workflows list\n  ace-comms workflows list -o json"
    )]
    List,
    /// Show one workflow as loaded.
    #[command(after_help = "Examples:\n  ace-comms workflows show kpi_critical_healing -o yaml")]
    Show(WorkflowArgs),
    /// Let a workflow run again (kept across restarts).
    #[command(after_help = "Examples:\n  ace-comms workflows enable kpi_critical_healing")]
    Enable(WorkflowArgs),
    /// Stop a workflow from running (kept across restarts).
    #[command(after_help = "Examples:\n  ace-comms workflows disable kpi_warning_adaptation")]
    Disable(WorkflowArgs),
    /// Make the server read its workflow directory now.
    #[command(after_help = "Examples:\n  ace-comms workflows reload")]
    Reload,
    /// Events received, workflows triggered and failed, events filtered and rate limited, and
    /// per workflow the run latency percentiles.
    #[command(
        after_help = "Examples:\n  ace-comms workflows stats\n  ace-comms workflows stats --json"
    )]
    Stats,
    /// Check workflow files offline (no server): every problem with its file, workflow and
    /// JSON path; exit 1 when any.
    #[command(
        after_help = "Examples:\n  ace-comms workflows validate\n  ace-comms workflows validate ./workflows"
    )]
    Validate(ValidateDirArgs),
}

/// A workflow by name.
#[derive(Debug, Clone, Args)]
pub(crate) struct WorkflowArgs {
    /// The workflow's name.
    pub(crate) name: String,
}

/// `workflows validate`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ValidateDirArgs {
    /// The directory of workflow files.
    #[arg(default_value = "workflows")]
    pub(crate) dir: PathBuf,
}
