//! `contracts list | show | validate | compat | register`: the built-in registry offline, and
//! the server's registry for `register` and `compat --subject`.

mod compat;
mod list;
mod register;
mod show;
mod validate;

use std::io::Write;

use ace_contracts::Registry;
use anyhow::{Context, Result};

use super::Outcome;
use crate::args::{ContractsCommand, ServerArgs};
use crate::output::Format;

/// Runs one `contracts` verb.
pub(crate) fn run(
    command: ContractsCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        ContractsCommand::List => list::run(&registry()?, format, out),
        ContractsCommand::Show(args) => show::run(&registry()?, &args, format, out),
        ContractsCommand::Validate(args) => validate::run(&registry()?, &args, format, out),
        ContractsCommand::Compat(args) => compat::run(&args, server, format, out),
        ContractsCommand::Register(args) => register::run(&args, server, format, out),
    }
}

/// The registry of the contracts built into this binary.
fn registry() -> Result<Registry> {
    Registry::embedded().context("loading the embedded contracts")
}
