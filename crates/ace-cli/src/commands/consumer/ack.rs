//! `consumer ack`: acknowledge deliveries by stream sequence.

use std::io::Write;

use ace_envelope::api::http::AckAnswer;
use anyhow::Result;

use crate::args::AckArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output;

pub(super) fn run(session: &Session, args: &AckArgs, out: &mut dyn Write) -> Result<Outcome> {
    let answer = match session.block_on(session.client.ack(&args.stream, &args.name, &args.seqs)) {
        Ok(answer) => answer,
        Err(err) => return failed(err),
    };
    if args.output.json {
        output::json(out, &answer)?;
    } else {
        writeln!(out, "acked {:?}", answer.done)?;
    }
    Ok(refusals(&answer))
}

/// Prints each sequence the server refused to settle; exit 1 when there is one.
pub(super) fn refusals(answer: &AckAnswer) -> Outcome {
    for failure in &answer.failed {
        eprintln!(
            "error: seq {}: {}: {}",
            failure.seq, failure.error.code, failure.error.message
        );
    }
    if answer.failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::Invalid
    }
}
