//! `agents ls`: the agents present on the server.

use std::io::Write;

use ace_envelope::api::http::AgentPresence;
use anyhow::Result;

use super::Outcome;
use super::client::{Session, failed};
use crate::args::{AgentsCommand, ServerArgs};
use crate::output::{Format, Table};

/// Runs one `agents` verb against the server at `server`.
pub(crate) fn run(
    command: AgentsCommand,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let session = Session::new(server)?;
    match command {
        AgentsCommand::Ls => ls(&session, format, out),
    }
}

fn ls(session: &Session, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let agents = match session.block_on(session.client.agents(None)) {
        Ok(agents) => agents,
        Err(err) => return failed(err),
    };
    format.print(out, &agents, |out| table(&agents, out))?;
    Ok(Outcome::Success)
}

fn table(agents: &[AgentPresence], out: &mut dyn Write) -> Result<()> {
    let mut table = Table::new(&[
        "ID",
        "TYPE",
        "CAPABILITIES",
        "CLEARANCE",
        "LAST SEEN",
        "EXPIRES",
    ]);
    for agent in agents {
        table.row(vec![
            agent.id.clone(),
            agent.agent_type.clone().unwrap_or_else(|| "-".to_owned()),
            agent.capabilities.join(","),
            agent
                .clearance
                .map_or_else(|| "-".to_owned(), |c| c.to_string()),
            agent.last_seen.to_rfc3339(),
            agent.expires_at.to_rfc3339(),
        ]);
    }
    table.write(out)
}
