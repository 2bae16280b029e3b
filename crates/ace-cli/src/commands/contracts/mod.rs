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
use crate::output::Format;

/// Runs one `contracts` verb.
pub(crate) fn run(
    command: ContractsCommand,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    match command {
        ContractsCommand::List => list::run(&registry()?, format, out),
        ContractsCommand::Show(args) => show::run(&registry()?, &args, format, out),
        ContractsCommand::Validate(args) => validate::run(&registry()?, &args, format, out),
        ContractsCommand::Compat(args) => compat::run(&args, format, out),
    }
}

/// The registry of the contracts built into this binary.
fn registry() -> Result<Registry> {
    Registry::embedded().context("loading the embedded contracts")
}
