//! `contracts show`: one registered schema, as JSON.

use std::io::Write;

use ace_contracts::Registry;
use anyhow::Result;

use crate::{args::ShowArgs, commands::Outcome, output};

pub(super) fn run(registry: &Registry, args: &ShowArgs, out: &mut dyn Write) -> Result<Outcome> {
    let schema = registry.resolve(&args.schema)?;
    output::json(out, schema.schema())?;
    Ok(Outcome::Success)
}
