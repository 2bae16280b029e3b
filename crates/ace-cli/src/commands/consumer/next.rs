//! `consumer next`: fetch deliveries, print them, then acknowledge them (unless `--no-ack`) —
//! printed before acked, so a crash in between redelivers rather than loses.

use std::io::Write;

use ace_envelope::api::http::{AckPolicy, FetchedMessage};
use anyhow::Result;

use crate::args::NextArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::Format;

pub(super) fn run(
    session: &Session,
    args: &NextArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let wait = args.wait.unwrap_or_default();
    let fetched = session.block_on(session.client.fetch(
        &args.stream,
        &args.name,
        args.count,
        wait,
    ));
    let messages = match fetched {
        Ok(messages) => messages,
        Err(err) => return failed(err),
    };
    for message in &messages {
        print(message, format, out)?;
    }
    if messages.is_empty() && !format.is_data() {
        writeln!(out, "no message pending")?;
    }
    if args.no_ack || messages.is_empty() || !needs_acks(session, args)? {
        return Ok(Outcome::Success);
    }
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    match session.block_on(session.client.ack(&args.stream, &args.name, &seqs)) {
        Ok(answer) => super::ack::refusals(&answer),
        Err(err) => failed(err),
    }
}

/// Whether the consumer wants acks: one with `ack: none` counts deliveries acked when handed
/// out and refuses explicit acks.
fn needs_acks(session: &Session, args: &NextArgs) -> Result<bool> {
    let info = session.block_on(session.client.consumer_info(&args.stream, &args.name));
    Ok(info.map_or(true, |info| info.config.ack != AckPolicy::None))
}

/// One line per delivery for people; one document per delivery for scripts.
fn print(message: &FetchedMessage, format: Format, out: &mut dyn Write) -> Result<()> {
    format.print_item(out, message, |out| {
        Ok(writeln!(
            out,
            "[seq {} delivery {}] {}",
            message.seq,
            message.delivery,
            crate::commands::consumer::describe(&message.envelope)
        )?)
    })
}
