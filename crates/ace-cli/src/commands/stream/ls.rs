//! `stream ls`: one row per stream.

use std::io::Write;

use anyhow::Result;

use crate::args::OutputArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::{self, Table};

pub(super) fn run(session: &Session, output: OutputArgs, out: &mut dyn Write) -> Result<Outcome> {
    let streams = match session.block_on(session.client.list_streams()) {
        Ok(streams) => streams,
        Err(err) => return failed(err),
    };
    if output.json {
        output::json(out, &streams)?;
        return Ok(Outcome::Success);
    }
    let mut table = Table::new(&[
        "NAME",
        "SUBJECTS",
        "RETENTION",
        "MESSAGES",
        "BYTES",
        "LAST SEQ",
        "CONSUMERS",
    ]);
    for info in &streams {
        table.row(vec![
            info.config.name.clone(),
            info.config.subjects.join(","),
            super::info::word(&info.config.retention),
            info.messages.to_string(),
            info.bytes.to_string(),
            info.last_seq.to_string(),
            info.consumers.to_string(),
        ]);
    }
    table.write(out)?;
    Ok(Outcome::Success)
}
