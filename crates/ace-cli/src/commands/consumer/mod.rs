//! `consumer add | ls | next | ack`.

mod ack;
mod add;
mod ls;
mod next;

use std::io::Write;

use ace_envelope::Envelope;
use anyhow::Result;

use super::Outcome;
use super::client::Session;
use crate::args::{ConsumerCommand, ServerArgs};
use crate::output::Format;

/// Runs one `consumer` verb against the server at `server`.
pub(crate) fn run(
    command: ConsumerCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let session = Session::new(server)?;
    match command {
        ConsumerCommand::Add(args) => add::run(&session, *args, format, out),
        ConsumerCommand::Ls(args) => ls::run(&session, &args, format, out),
        ConsumerCommand::Next(args) => next::run(&session, &args, format, out),
        ConsumerCommand::Ack(args) => ack::run(&session, &args, format, out),
    }
}

/// `subject NAME payload` on one line: how `consumer next` and `sub` show a message.
pub(crate) fn describe(envelope: &Envelope) -> String {
    let payload = envelope
        .payload
        .as_ref()
        .map_or_else(String::new, ToString::to_string);
    format!(
        "{} {} {payload}",
        envelope.subject,
        envelope.name.as_deref().unwrap_or("-")
    )
}
