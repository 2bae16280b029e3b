//! `session get | put`: a session's versioned state. A write without `--if-version` may only create
//! (an existing session answers `PRECONDITION_REQUIRED`); with it, it replaces exactly that
//! version (`If-Match`), so two writers never overwrite each other unseen: the loser is refused
//! `PRECONDITION_FAILED` (exit 1).

use std::io::Write;

use ace_client::Precondition;
use ace_envelope::api::http::Session as State;
use anyhow::Result;

use super::Outcome;
use super::client::{Session, failed};
use crate::args::{ServerArgs, SessionCommand};
use crate::output::{Format, write_aligned};

/// Runs one `session` verb against the server at `server`.
pub(crate) fn run(
    command: SessionCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let session = Session::new(server)?;
    let answer = match command {
        SessionCommand::Get(args) => session.block_on(session.client.session(&args.id)),
        SessionCommand::Put(args) => {
            let data = serde_json::from_str(&args.data)
                .map_err(|err| anyhow::anyhow!("the session data is not JSON: {err}"))?;
            let precondition = args
                .if_version
                .map_or(Precondition::None, Precondition::Version);
            session.block_on(session.client.put_session(&args.id, data, precondition))
        }
    };
    match answer {
        Ok(state) => {
            format.print(out, &state, |out| lines(&state, out))?;
            Ok(Outcome::Success)
        }
        Err(err) => failed(err),
    }
}

/// The session as aligned `key: value` lines, its state as compact JSON.
fn lines(state: &State, out: &mut dyn Write) -> Result<()> {
    write_aligned(
        &[
            ("id", state.id.clone()),
            ("version", state.version.to_string()),
            (
                "owner",
                state.owner.clone().unwrap_or_else(|| "-".to_owned()),
            ),
            ("updated", state.updated_at.to_rfc3339()),
            ("data", state.data.to_string()),
        ],
        out,
    )
}
