//! `contracts register NAME@VERSION FILE`: a schema registered on the server's registry.

use std::io::Write;

use ace_contracts::SchemaRef;
use ace_envelope::api::registry::RegisteredSchema;
use anyhow::{Result, anyhow};

use crate::args::{RegisterArgs, ServerArgs};
use crate::commands::client::{Session, failed};
use crate::commands::{Outcome, input};
use crate::output::{Format, write_aligned};

pub(super) fn run(
    args: &RegisterArgs,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let (subject, version) = pinned(&args.schema)?;
    let schema = input::read_json(&args.file)?;
    let session = Session::new(server)?;
    let answer = session.block_on(session.client.register_contract(&subject, &version, schema));
    match answer {
        Ok(done) => {
            format.print(out, &done, |out| lines(&done, out))?;
            Ok(Outcome::Success)
        }
        Err(err) => failed(err),
    }
}

/// `subject@version`, the version required.
pub(super) fn pinned(given: &str) -> Result<(String, String)> {
    let parsed: SchemaRef = given.parse().map_err(|err| anyhow!("{err}"))?;
    let version = parsed
        .version
        .ok_or_else(|| anyhow!("`{given}` names no version: write it as subject@1.2.3"))?;
    Ok((parsed.subject, version.to_string()))
}

fn lines(done: &RegisteredSchema, out: &mut dyn Write) -> Result<()> {
    let checked = if done.checked_against.is_empty() {
        "-".to_owned()
    } else {
        done.checked_against.join(", ")
    };
    write_aligned(
        &[
            ("contract", format!("{}@{}", done.subject, done.version)),
            (
                "status",
                if done.already_registered {
                    "already registered (nothing changed)".to_owned()
                } else {
                    "registered".to_owned()
                },
            ),
            ("compatibility", done.compatibility.clone()),
            ("checked against", checked),
        ],
        out,
    )?;
    for advisory in &done.advisories {
        writeln!(
            out,
            "  advisory: {} at `{}`: {} [{}]",
            advisory.direction, advisory.pointer, advisory.reason, advisory.rule
        )?;
    }
    Ok(())
}
