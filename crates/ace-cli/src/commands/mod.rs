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
mod publish;
mod reload;
mod request;
pub(crate) mod serve;
mod stream;
mod subscribe;

use std::io::Write;

use anyhow::Result;

use crate::args::{Cli, Command};

/// How a command that ran to its end went; errors (exit 2) travel as `Err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done, or the input is valid (exit 0).
    Success,
    /// The input was read and is invalid; every problem was printed (exit 1).
    Invalid,
}

/// Runs the command the line names.
pub(crate) fn run(cli: Cli, out: &mut dyn Write) -> Result<Outcome> {
    match cli.command {
        Command::Contracts(command) => contracts::run(command, out),
        Command::Envelope(command) => envelope::run(command, out),
        Command::Serve(args) => serve::run(&args, out),
        Command::Pub(args) => publish::run(&args, &cli.server, out),
        Command::Sub(args) => subscribe::run(&args, &cli.server, out),
        Command::Req(args) => request::run(&args, &cli.server, out),
        Command::Stream(command) => stream::run(command, &cli.server, out),
        Command::Consumer(command) => consumer::run(command, &cli.server, out),
        Command::Agents(command) => agents::run(command, &cli.server, out),
        Command::Approvals(command) => approvals::run(command, &cli.server, out),
        Command::Ledger(command) => ledger::run(command, &cli.server, out),
        Command::Reload(output) => reload::run(output, &cli.server, out),
        Command::Bench(args) => bench::run(&args, &cli.server, out),
        Command::Completions { shell } => {
            let mut command = <crate::args::Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "ace-comms", out);
            Ok(Outcome::Success)
        }
    }
}
