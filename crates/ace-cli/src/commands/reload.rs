//! `reload`: the server reads its credential and policy files again (`POST /api/v1/admin/reload`,
//! the same reload as SIGHUP).

use std::io::Write;

use ace_envelope::api::http::Reloaded;
use anyhow::Result;

use super::Outcome;
use super::client::{Session, failed};
use crate::args::ServerArgs;
use crate::output::{Format, Table};

/// Asks the server at `server` to reload; prints what it read.
pub(crate) fn run(server: &ServerArgs, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let session = Session::new(server)?;
    let reloaded: Reloaded = match session.block_on(session.client.reload()) {
        Ok(reloaded) => reloaded,
        Err(err) => return failed(err),
    };
    format.print(out, &reloaded, |out| table(&reloaded, out))?;
    Ok(Outcome::Success)
}

/// The server's message, then one row per file it read.
fn table(reloaded: &Reloaded, out: &mut dyn Write) -> Result<()> {
    writeln!(out, "{}", reloaded.message)?;
    if !reloaded.files.is_empty() {
        let mut table = Table::new(&["FILE", "SHA-256"]);
        for (path, sha256) in &reloaded.files {
            table.row(vec![path.clone(), sha256.clone()]);
        }
        table.write(out)?;
    }
    Ok(())
}
