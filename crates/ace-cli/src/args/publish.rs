//! `ace-comms pub`: publish one envelope (or `--count` of them) built from flags.

use ace_envelope::{Kind, Priority};
use clap::Args;

use super::envelope::{parse_header, parse_with};

/// `pub`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    ace-comms pub ace.comms.a2a.agent.planner.evt.task_done.v1 '{\"task\":\"t1\"}'\n  \
    ace-comms pub ace.comms.a2a.agent.planner.evt.task_done.v1 '{\"task\":\"t2\"}' \\\n      \
    --name TASK_DONE --priority P1 --header tenant=acme --idempotency-key t2\n  \
    ace-comms pub ace.comms.http.service.load.evt.tick.v1 '{\"n\":1}' --count 10000\n  \
    ace-comms pub ace.comms.http.ops.db.evt.drop.v1 '{\"table\":\"users\"}' --ehi 0.95 --header ace-action=delete\n  \
    ace-comms --server 10.0.0.5:8500 pub ace.comms.matrix.human.ops.evt.note.v1 hello --raw --json")]
pub(crate) struct PubArgs {
    /// Routing subject (literal, no wildcards).
    pub(crate) subject: String,
    /// Payload: a JSON document (other text is refused unless `--raw`); `{}` when absent.
    pub(crate) payload: Option<String>,
    /// Send the payload text as a JSON string instead of parsing it as JSON.
    #[arg(long)]
    pub(crate) raw: bool,
    /// event, command, query, reply or error.
    #[arg(long, default_value = "event", value_parser = parse_with(Kind::parse, "event, command, query, reply, error"))]
    pub(crate) kind: Kind,
    /// Event type that workflows match on.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// P0 (most urgent) … P3.
    #[arg(long, value_parser = parse_with(Priority::parse, "P0, P1, P2, P3"))]
    pub(crate) priority: Option<Priority>,
    /// Extension header, `key=value` (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub(crate) headers: Vec<(String, String)>,
    /// Dedup key: a second publish with the same key inside the stream's window is a duplicate.
    #[arg(long)]
    pub(crate) idempotency_key: Option<String>,
    /// Ordering key (per-key ordered consumers keep its order).
    #[arg(long)]
    pub(crate) partition_key: Option<String>,
    /// Contract of the payload, `subject@version`.
    #[arg(long)]
    pub(crate) schema: Option<String>,
    /// Epistemic Humility Index 0..=1 (`governance.ehi_score`): at or above the threshold of
    /// the message's action (header `ace-action`) the server holds it for a human's approval.
    #[arg(long, value_name = "SCORE")]
    pub(crate) ehi: Option<f64>,
    /// Publish this many messages (each a new envelope; a progress bar past 1,000 on a terminal).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) count: u64,
}
