//! `envelope new | convert`.

mod convert;
mod new;

use std::io::Write;

use anyhow::Result;

use super::Outcome;
use crate::args::EnvelopeCommand;
use crate::output::Format;

/// Runs one `envelope` verb.
///
/// `new` prints the envelope as JSON (YAML with `-o yaml`); `convert` writes the wire form its
/// `--to` names, whatever `-o` says.
pub(crate) fn run(
    command: EnvelopeCommand,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        EnvelopeCommand::New(args) => new::run(*args, format, out),
        EnvelopeCommand::Convert(args) => convert::run(&args, out),
    }
}
