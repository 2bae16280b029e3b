//! `ace-comms consumer …`: durable cursors over a stream — create, list, fetch, acknowledge.

use std::time::Duration;

use ace_envelope::api::http::{AckPolicy, DeliverPolicy, Ordering};
use chrono::{DateTime, Utc};
use clap::{ArgAction, Args, Subcommand};

use super::client::{parse_duration, parse_word};

/// The verbs of `consumer`.
#[derive(Debug, Subcommand)]
pub(crate) enum ConsumerCommand {
    /// Create a durable consumer on a stream.
    #[command(after_help = "Examples:\n  \
        ace-comms consumer add ACE_EVENTS worker\n  \
        ace-comms consumer add ACE_EVENTS planner --filter 'ace.comms.a2a.agent.planner.>' \\\n      \
        --ack-wait 30s --max-deliver 5 --backoff 1s,5s,30s --ordering per_key\n  \
        ace-comms consumer add ACE_EVENTS replay --deliver by_seq:100 --ack none\n  \
        ace-comms consumer add ACE_EVENTS since --deliver by_time:2026-01-01T00:00:00Z")]
    Add(Box<ConsumerAddArgs>),
    /// List the consumers of a stream with their pending and acknowledged counts.
    #[command(after_help = "Examples:\n  \
        ace-comms consumer ls ACE_EVENTS\n  \
        ace-comms consumer ls ACE_EVENTS --json")]
    Ls(StreamArgs),
    /// Fetch the next messages of a consumer and print them (acknowledged unless --no-ack).
    #[command(after_help = "Examples:\n  \
        ace-comms consumer next ACE_EVENTS worker\n  \
        ace-comms consumer next ACE_EVENTS worker --count 10 --wait 5s --json\n  \
        ace-comms consumer next ACE_EVENTS worker --no-ack")]
    Next(NextArgs),
    /// Acknowledge deliveries by stream sequence.
    #[command(after_help = "Examples:\n  \
        ace-comms consumer ack ACE_EVENTS worker 42\n  \
        ace-comms consumer ack ACE_EVENTS worker 42 43 44")]
    Ack(AckArgs),
}

/// `consumer add`.
#[derive(Debug, Args)]
pub(crate) struct ConsumerAddArgs {
    /// The stream.
    pub(crate) stream: String,
    /// Name: letters, digits, `_` and `-`.
    pub(crate) name: String,
    /// Only messages whose subject matches this pattern.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// Where it starts: all, last, new, by_seq:N or by_time:RFC3339.
    #[arg(long, value_parser = parse_deliver)]
    pub(crate) deliver: Option<DeliverPolicy>,
    /// explicit (every delivery must be acked) or none.
    #[arg(long, value_parser = parse_word::<AckPolicy>)]
    pub(crate) ack: Option<AckPolicy>,
    /// How long a delivery waits for its ack before redelivery (default 30s).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) ack_wait: Option<Duration>,
    /// Deliveries before the message is dead-lettered (default 5).
    #[arg(long)]
    pub(crate) max_deliver: Option<u32>,
    /// Redelivery delays, comma separated; the n-th delivery waits the n-th, the last repeats.
    #[arg(long, value_delimiter = ',', value_parser = parse_duration)]
    pub(crate) backoff: Vec<Duration>,
    /// Most deliveries awaiting an ack at once (default 1000).
    #[arg(long)]
    pub(crate) max_ack_pending: Option<usize>,
    /// none, per_key (one in flight per partition key) or strict (one in flight at all).
    #[arg(long, value_parser = parse_word::<Ordering>)]
    pub(crate) ordering: Option<Ordering>,
    /// P0 before P1 before P2 before P3 with weighted turns (default true).
    #[arg(long, action = ArgAction::Set, value_name = "BOOL")]
    pub(crate) priority_lanes: Option<bool>,
}

/// A verb on one stream.
#[derive(Debug, Args)]
pub(crate) struct StreamArgs {
    /// The stream.
    pub(crate) stream: String,
}

/// `consumer next`.
#[derive(Debug, Args)]
pub(crate) struct NextArgs {
    /// The stream.
    pub(crate) stream: String,
    /// The consumer.
    pub(crate) name: String,
    /// Most messages to fetch.
    #[arg(long, default_value_t = 1)]
    pub(crate) count: usize,
    /// Longest wait for the first message (default: answer at once).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) wait: Option<Duration>,
    /// Acknowledge what was printed (the default).
    #[arg(long, overrides_with = "no_ack")]
    pub(crate) ack: bool,
    /// Leave what was printed unacknowledged: it is redelivered after the ack wait.
    #[arg(long)]
    pub(crate) no_ack: bool,
}

/// `consumer ack`.
#[derive(Debug, Args)]
pub(crate) struct AckArgs {
    /// The stream.
    pub(crate) stream: String,
    /// The consumer.
    pub(crate) name: String,
    /// Stream sequences of the deliveries to acknowledge.
    #[arg(required = true)]
    pub(crate) seqs: Vec<u64>,
}

/// `all`, `last`, `new`, `by_seq:N` or `by_time:RFC3339`.
fn parse_deliver(s: &str) -> Result<DeliverPolicy, String> {
    if let Some(seq) = s.strip_prefix("by_seq:") {
        return seq
            .parse()
            .map(DeliverPolicy::BySeq)
            .map_err(|_| format!("`{seq}` in `{s}` is not a sequence number"));
    }
    if let Some(time) = s.strip_prefix("by_time:") {
        return DateTime::parse_from_rfc3339(time)
            .map(|t| DeliverPolicy::ByTime(t.with_timezone(&Utc)))
            .map_err(|e| format!("`{time}` in `{s}` is not an RFC 3339 time: {e}"));
    }
    parse_word(s).map_err(|_| format!("`{s}` is not all, last, new, by_seq:N or by_time:RFC3339"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_deliver_form_when_parsed_then_the_policy_matches() {
        assert_eq!(parse_deliver("all").unwrap(), DeliverPolicy::All);
        assert_eq!(parse_deliver("new").unwrap(), DeliverPolicy::New);
        assert_eq!(parse_deliver("by_seq:7").unwrap(), DeliverPolicy::BySeq(7));
        let DeliverPolicy::ByTime(t) = parse_deliver("by_time:2026-01-01T00:00:00Z").unwrap()
        else {
            panic!("by_time expected");
        };
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00+00:00");
        assert!(parse_deliver("by_seq:x").unwrap_err().contains("sequence"));
        assert!(parse_deliver("sometimes").is_err());
    }
}
