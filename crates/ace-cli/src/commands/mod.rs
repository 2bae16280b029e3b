//! What each command does: one module per noun, one file per verb.

mod agents;
mod approvals;
mod bench;
mod client;
mod consumer;
mod contracts;
mod envelope;
mod input;
mod ledger;
mod mcp;
mod publish;
mod reload;
mod request;
pub(crate) mod serve;
mod session;
mod stream;
mod subscribe;
mod workflows;

use std::io::Write;

use anyhow::Result;

use crate::args::{Cli, Command};

/// How a command that ran to its end went; failures travel as `Err`, a
/// [`Failure`](crate::output::Failure) carrying its code and exit code (anything else is a
/// usage error, exit 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done, or the input is valid (exit 0).
    Success,
    /// The input was read and is invalid; every problem was printed (exit 1).
    Invalid,
}

/// Runs the command the line names, printing in the `-o` format asked for.
pub(crate) fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome> {
    let format = cli.output.format();
    let server = &cli.server;
    match cli.command {
        Command::Contracts(command) => contracts::run(command, server, format, out),
        Command::Envelope(command) => envelope::run(command, format, out),
        Command::Serve(args) => serve::run(&args, out),
        Command::Pub(args) => publish::run(&args, server, format, out),
        Command::Sub(args) => subscribe::run(&args, server, format, out),
        Command::Req(args) => request::run(&args, server, format, out),
        Command::Stream(command) => stream::run(command, server, format, out),
        Command::Consumer(command) => consumer::run(command, server, format, out),
        Command::Agents(command) => agents::run(command, server, format, out),
        Command::Approvals(command) => approvals::run(command, server, format, out),
        Command::Workflows(command) => workflows::run(command, server, format, out),
        Command::Session(command) => session::run(command, server, format, out),
        Command::Ledger(command) => ledger::run(command, server, format, out),
        Command::Reload => reload::run(server, format, out),
        Command::Mcp => mcp::run(server),
        Command::Bench(args) => bench::run(&args, server, format, out),
        Command::Completions { shell } => {
            let mut command = <crate::args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ace-comms", out);
            Ok(Outcome::Success)
        }
    }
}
