//! `consumer ack`: acknowledge deliveries by stream sequence.

use std::io::Write;

use ace_envelope::api::http::AckAnswer;
use anyhow::Result;

use crate::args::AckArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::{Failure, Format};

pub(super) fn run(
    session: &Session,
    args: &AckArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let answer = match session.block_on(session.client.ack(&args.stream, &args.name, &args.seqs)) {
        Ok(answer) => answer,
        Err(err) => return failed(err),
    };
    format.print(out, &answer, |out| {
        Ok(writeln!(out, "acked {:?}", answer.done)?)
    })?;
    refusals(&answer)
}

/// The sequences the server refused to settle as one failure (exit 1): the code of the first
/// refusal, every refused sequence in the message and, one per line, in the details.
pub(super) fn refusals(answer: &AckAnswer) -> Result<Outcome> {
    let Some(first) = answer.failed.first() else {
        return Ok(Outcome::Success);
    };
    let each: Vec<String> = answer
        .failed
        .iter()
        .map(|f| format!("seq {} {}", f.seq, f.error.code))
        .collect();
    let message = format!(
        "{} of {} sequence(s) not settled: {}",
        answer.failed.len(),
        answer.failed.len() + answer.done.len(),
        each.join(", ")
    );
    let details = serde_json::json!({ "failed": answer.failed });
    Err(Failure::refused(first.error.code.as_str(), message)
        .details(details)
        .into())
}
