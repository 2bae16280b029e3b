//! `contracts list | show | validate | compat`.

mod compat;
mod list;
mod show;
mod validate;

use std::io::Write;

use ace_contracts::Registry;
use anyhow::{Context, Result};

use super::Outcome;
use crate::args::ContractsCommand;

/// Runs one `contracts` verb.
pub(crate) fn run(command: ContractsCommand, out: &mut dyn Write) -> Result<Outcome> {
    match command {
        ContractsCommand::List(output) => list::run(&registry()?, output, out),
        ContractsCommand::Show(args) => show::run(&registry()?, &args, out),
        ContractsCommand::Validate(args) => validate::run(&registry()?, &args, out),
        ContractsCommand::Compat(args) => compat::run(&args, out),
    }
}

/// The registry of the contracts built into this binary.
fn registry() -> Result<Registry> {
    Registry::embedded().context("loading the embedded contracts")
}
