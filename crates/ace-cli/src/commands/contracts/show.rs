//! `contracts show`: one registered schema, as JSON (as YAML with `-o yaml`).

use std::io::Write;

use ace_contracts::Registry;
use anyhow::Result;

use crate::{
    args::ShowArgs,
    commands::Outcome,
    output::{self, Format},
};

pub(super) fn run(
    registry: &Registry,
    args: &ShowArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let schema = registry.resolve(&args.schema)?;
    // A schema is a JSON document: people read it as JSON too.
    let json = |out: &mut dyn Write| output::json(out, schema.schema());
    format.print(out, schema.schema(), json)?;
    Ok(Outcome::Success)
}
