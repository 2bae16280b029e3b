//! `stream add | ls | info | rm | repair`.

mod add;
mod info;
mod ls;
mod repair;
mod rm;

use std::io::Write;

use anyhow::Result;

use super::Outcome;
use super::client::Session;
use crate::args::{ServerArgs, StreamCommand};
use crate::output::Format;

/// Runs one `stream` verb against the server at `server`.
pub(crate) fn run(
    command: StreamCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    // `repair` talks to the server only without --data/--config: it connects itself.
    let session = || Session::new(server);
    match command {
        StreamCommand::Add(args) => add::run(&session()?, *args, format, out),
        StreamCommand::Ls => ls::run(&session()?, format, out),
        StreamCommand::Info(args) => info::run(&session()?, &args, format, out),
        StreamCommand::Rm(args) => rm::run(&session()?, &args, format, out),
        StreamCommand::Repair(args) => repair::run(&args, server, format, out),
    }
}
