//! `envelope new | convert`.

mod convert;
mod new;

use std::io::Write;

use anyhow::Result;

use super::Outcome;
use crate::args::EnvelopeCommand;

/// Runs one `envelope` verb.
pub(crate) fn run(command: EnvelopeCommand, out: &mut dyn Write) -> Result<Outcome> {
    match command {
        EnvelopeCommand::New(args) => new::run(*args, out),
        EnvelopeCommand::Convert(args) => convert::run(&args, out),
    }
}
