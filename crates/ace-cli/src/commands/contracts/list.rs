//! `contracts list`: every subject, its versions and its compatibility mode.

use std::io::Write;

use ace_contracts::Registry;
use anyhow::Result;
use serde::Serialize;

use crate::{
    commands::Outcome,
    output::{Format, Table},
};

#[derive(Serialize)]
struct Row {
    subject: String,
    versions: Vec<String>,
    latest: String,
    compatibility: String,
}

pub(super) fn run(registry: &Registry, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let mut rows = Vec::new();
    for subject in registry.subjects() {
        let versions: Vec<String> = registry
            .versions(subject)?
            .iter()
            .map(ToString::to_string)
            .collect();
        rows.push(Row {
            subject: subject.to_owned(),
            latest: versions.last().cloned().unwrap_or_default(),
            versions,
            compatibility: registry.compatibility(subject).to_string(),
        });
    }
    format.print(out, &rows, |out| {
        let mut table = Table::new(&["SUBJECT", "LATEST", "VERSIONS", "COMPATIBILITY"]);
        for row in &rows {
            table.row(vec![
                row.subject.clone(),
                row.latest.clone(),
                row.versions.len().to_string(),
                row.compatibility.clone(),
            ]);
        }
        table.write(out)
    })?;
    Ok(Outcome::Success)
}
