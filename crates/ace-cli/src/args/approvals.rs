//! `ace-comms approvals …`: messages the server holds for a human's approval — list them,
//! approve or reject one.

use ace_envelope::api::http::ApprovalStatus;
use clap::{Args, Subcommand};

/// The verbs of `approvals`.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum ApprovalsCommand {
    /// List held messages (pending ones unless --status says otherwise).
    #[command(after_help = "Examples:\n  \
        ace-comms approvals ls\n  \
        ace-comms approvals ls --status all -o yaml")]
    Ls(LsArgs),
    /// Approve a pending approval: its message is published with `approval_id` set.
    #[command(after_help = "Examples:\n  \
        ace-comms approvals approve 019a4c1e-7b2f-7c4e-9a61-3f0c2b8d5e10 --comment 'checked backup'")]
    Approve(DecideArgs),
    /// Reject a pending approval: its message goes to the dead letters, its requester is told.
    #[command(after_help = "Examples:\n  \
        ace-comms approvals reject 019a4c1e-7b2f-7c4e-9a61-3f0c2b8d5e10 --comment 'not on a Friday'")]
    Reject(DecideArgs),
}

/// `approvals ls`.
#[derive(Debug, Clone, Args)]
pub(crate) struct LsArgs {
    /// pending, approved, rejected, expired or all.
    #[arg(long, default_value = "pending", value_parser = parse_status)]
    pub(crate) status: StatusFilter,
}

/// `approvals approve|reject`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DecideArgs {
    /// The approval id (`approvals ls` shows it; a held `pub` prints it).
    pub(crate) id: String,
    /// Why, in your words (kept with the approval, in the ledger and in a rejection's answer).
    #[arg(long)]
    pub(crate) comment: Option<String>,
}

/// What `--status` selects: one status, or every approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusFilter(pub(crate) Option<ApprovalStatus>);

fn parse_status(text: &str) -> Result<StatusFilter, String> {
    if text == "all" {
        return Ok(StatusFilter(None));
    }
    ApprovalStatus::parse(text)
        .map(|s| StatusFilter(Some(s)))
        .ok_or_else(|| format!("`{text}` is not one of pending, approved, rejected, expired, all"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_status_words_when_parsed_then_all_means_every_status_and_others_are_refused() {
        assert_eq!(parse_status("all"), Ok(StatusFilter(None)));
        assert_eq!(
            parse_status("rejected"),
            Ok(StatusFilter(Some(ApprovalStatus::Rejected)))
        );
        assert!(parse_status("done").unwrap_err().contains("`done`"));
    }
}
