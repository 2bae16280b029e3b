//! `ace-comms bench`: the load generator's knobs — publishers, subscribers, transport, message
//! size, durability, total count — and `--nats` for the same workload on NATS JetStream.

use clap::{Args, ValueEnum};

/// Measure a running server: N publishers and M subscribers, then the same on NATS.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  ace-comms bench --pubs 2 --subs 1 --count 20000 --size 256
  ace-comms bench --transport http --durable --count 10000
  ace-comms bench --durable --nats nats://127.0.0.1:4222 --json")]
pub(crate) struct BenchArgs {
    /// Publishers, each on its own connection.
    #[arg(long, default_value_t = 1)]
    pub(crate) pubs: usize,
    /// Subscribers, each on its own connection; each receives every message.
    #[arg(long, default_value_t = 1)]
    pub(crate) subs: usize,
    /// How publishers reach the server (subscribers always use the WebSocket).
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    pub(crate) transport: Transport,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 256)]
    pub(crate) size: usize,
    /// Messages in all, shared among the publishers.
    #[arg(long, default_value_t = 10_000)]
    pub(crate) count: usize,
    /// Publishes in flight per publisher (each waits for its acknowledgement).
    #[arg(long, default_value_t = 64)]
    pub(crate) in_flight: usize,
    /// Store every message in a stream (ACE_EVENTS, group-commit fsync; a JetStream file stream
    /// on NATS) instead of live delivery only.
    #[arg(long)]
    pub(crate) durable: bool,
    /// Also run the workload against this NATS server (JetStream enabled for `--durable`).
    #[arg(long, value_name = "URL")]
    pub(crate) nats: Option<String>,
    /// One JSON object per measured system instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// How publishers reach ACE::COMMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// `POST /api/v1/messages`.
    Http,
    /// `publish` frames on `/ws`.
    Ws,
}
