//! `approvals ls|approve|reject`: the held messages of the server and the human decision on
//! them. A refusal (`NOT_FOUND`, `CONFLICT` when decided already, `FORBIDDEN` without the
//! approver role) prints its code and exits 1, like every client verb.

use std::io::Write;

use ace_envelope::api::http::{Approval, Decided, Verdict};
use anyhow::Result;

use super::Outcome;
use super::client::{Session, failed};
use crate::args::{ApprovalsCommand, DecideArgs, LsArgs, ServerArgs};
use crate::output::{Format, Table};

/// Runs one `approvals` verb against the server.
pub(crate) fn run(
    command: ApprovalsCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let session = Session::new(server)?;
    match command {
        ApprovalsCommand::Ls(args) => ls(&session, &args, format, out),
        ApprovalsCommand::Approve(args) => decide(&session, &args, Verdict::Approve, format, out),
        ApprovalsCommand::Reject(args) => decide(&session, &args, Verdict::Reject, format, out),
    }
}

fn ls(session: &Session, args: &LsArgs, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let approvals = match session.block_on(session.client.approvals(args.status.0)) {
        Ok(approvals) => approvals,
        Err(err) => return failed(err),
    };
    format.print(out, &approvals, |out| table(&approvals, out))?;
    Ok(Outcome::Success)
}

fn table(approvals: &[Approval], out: &mut dyn Write) -> Result<()> {
    let mut table = Table::new(&[
        "APPROVAL",
        "STATUS",
        "SUBJECT",
        "REQUESTED BY",
        "REASONS",
        "EXPIRES",
    ]);
    for approval in approvals {
        table.row(row(approval));
    }
    table.write(out)
}

fn row(approval: &Approval) -> Vec<String> {
    vec![
        approval.approval_id.clone(),
        approval.status.to_string(),
        approval.envelope.subject.clone(),
        approval.requested_by.id.clone(),
        approval.reasons.join("; "),
        approval.expires_at.to_rfc3339(),
    ]
}

fn decide(
    session: &Session,
    args: &DecideArgs,
    verdict: Verdict,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let call = session
        .client
        .decide(&args.id, verdict, args.comment.as_deref());
    let decided = match session.block_on(call) {
        Ok(decided) => decided,
        Err(err) => return failed(err),
    };
    format.print(out, &decided, |out| {
        Ok(writeln!(out, "{}", line(&decided))?)
    })?;
    Ok(Outcome::Success)
}

/// `approved 0190… message=… stream=ACE_EVENTS seq=7` or `rejected 0190… message=…`.
fn line(decided: &Decided) -> String {
    let approval = &decided.approval;
    let mut text = format!(
        "{} {} message={}",
        approval.status, approval.approval_id, approval.envelope.id
    );
    if let Some(accepted) = &decided.accepted {
        let stream = accepted.stream.as_deref().unwrap_or("-");
        let seq = accepted
            .seq
            .map_or_else(|| "-".to_owned(), |s| s.to_string());
        text.push_str(&format!(" stream={stream} seq={seq}"));
    }
    text
}
