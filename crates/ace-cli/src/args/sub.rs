//! `ace-comms sub`: receive messages over the WebSocket — a live subscription to a pattern, or
//! the push deliveries of a durable consumer.

use std::time::Duration;

use clap::Args;

use super::client::parse_duration;

/// `sub`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    ace-comms sub 'ace.comms.a2a.>'\n  \
    ace-comms sub 'ace.comms.a2a.agent.*.evt.>' --queue workers --count 10\n  \
    ace-comms sub --stream ACE_EVENTS --consumer worker --ack --count 1\n  \
    ace-comms sub 'ace.comms.>' -o json --timeout 30s | jq .envelope.subject")]
pub(crate) struct SubArgs {
    /// Subject pattern (`*` one token, `>` the rest) for a live subscription.
    #[arg(required_unless_present = "consumer", conflicts_with = "consumer")]
    pub(crate) pattern: Option<String>,
    /// Queue group: each message goes to one member of the group.
    #[arg(long, requires = "pattern")]
    pub(crate) queue: Option<String>,
    /// Stream of the durable consumer to receive from (with --consumer).
    #[arg(long, requires = "consumer")]
    pub(crate) stream: Option<String>,
    /// Durable consumer to receive from (with --stream).
    #[arg(long, requires = "stream")]
    pub(crate) consumer: Option<String>,
    /// Acknowledge each consumer delivery once printed (without it, deliveries are redelivered
    /// after the consumer's ack wait).
    #[arg(long, requires = "consumer")]
    pub(crate) ack: bool,
    /// Exit after this many messages.
    #[arg(long)]
    pub(crate) count: Option<u64>,
    /// Exit 0 when no message arrived for this long (e.g. 10s); wait forever without it.
    #[arg(long, value_parser = parse_duration)]
    pub(crate) timeout: Option<Duration>,
}
