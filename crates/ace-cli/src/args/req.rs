//! `ace-comms req`: send a query and wait for its reply.

use std::time::Duration;

use clap::Args;

use super::client::parse_duration;

/// `req`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    ace-comms req ace.comms.http.tool.search.qry.v1 '{\"q\":\"rust\"}'\n  \
    ace-comms req ace.comms.http.tool.search.qry.v1 '{\"q\":\"rust\"}' --timeout 10s --json")]
pub(crate) struct ReqArgs {
    /// Subject of the query (literal, no wildcards).
    pub(crate) subject: String,
    /// Payload: a JSON document (other text is refused unless `--raw`).
    pub(crate) payload: String,
    /// Send the payload text as a JSON string instead of parsing it as JSON.
    #[arg(long)]
    pub(crate) raw: bool,
    /// How long to wait for the reply.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
}
