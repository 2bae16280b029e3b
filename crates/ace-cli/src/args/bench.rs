//! `ace-comms bench`: the load generator's knobs — publishers, subscribers, transport, message
//! size, durability, total count —, `--nats` for the same workload on NATS JetStream, and what
//! tells the bench about the servers: their processes (`--server-pid`, `--nats-pid`) and how
//! NATS syncs (`--nats-monitor`, `--nats-sync`).

use clap::{Args, ValueEnum};

/// Measure a running server: N publishers and M subscribers, then the same on NATS.
#[derive(Debug, Clone, Args)]
#[command(after_help = "Examples:
  ace-comms bench --pubs 2 --subs 1 --count 20000 --size 256
  ace-comms bench --transport http --durable --count 10000
  ace-comms bench --durable --batch 64 --in-flight 4 --count 100000
  ace-comms bench --durable --nats nats://127.0.0.1:4222 --nats-monitor http://127.0.0.1:8222 --json
  ace-comms bench --durable --server-pid 4242 --nats nats://127.0.0.1:4222 --nats-sync always

The server processes' CPU time and peak memory are read from /proc on this machine: the process
is the one --server-pid/--nats-pid names, else the one listening on the URL's port.")]
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
    /// Publishes in flight per publisher (each waits for its acknowledgement); with `--batch`,
    /// batches in flight.
    #[arg(long, default_value_t = 64)]
    pub(crate) in_flight: usize,
    /// Envelopes per publish on ACE::COMMS: above 1, each publish is one `publish_batch`
    /// WebSocket frame (or one `POST /api/v1/messages/batch`) answered by one frame. NATS
    /// publishes one message per `PUB` whatever this says, with `--in-flight` × `--batch` of
    /// them outstanding, so both servers have as many messages in flight.
    #[arg(long, default_value_t = 1)]
    pub(crate) batch: usize,
    /// Store every message in a stream (ACE_EVENTS, group-commit fsync; a JetStream file stream
    /// on NATS) instead of live delivery only.
    #[arg(long)]
    pub(crate) durable: bool,
    /// Also run the workload against this NATS server (JetStream enabled for `--durable`).
    #[arg(long, value_name = "URL")]
    pub(crate) nats: Option<String>,
    /// The ace-comms server's process id, for its CPU time and peak memory (default: the
    /// process listening on the `--server` port, when that is this machine).
    #[arg(long, value_name = "PID")]
    pub(crate) server_pid: Option<u32>,
    /// The NATS server's process id (default: the process listening on the `--nats` port).
    #[arg(long, value_name = "PID", requires = "nats")]
    pub(crate) nats_pid: Option<u32>,
    /// The NATS server's monitoring URL (`-m PORT`): its `/varz` says how JetStream syncs,
    /// which labels the durable NATS figures.
    #[arg(long, value_name = "URL", requires = "nats")]
    pub(crate) nats_monitor: Option<String>,
    /// How the NATS server syncs JetStream files, when no monitor is given (or to check it):
    /// `always` (`sync_interval: always`) or `default` (every 2 minutes, acknowledged before).
    #[arg(long, value_enum, value_name = "MODE", requires = "nats")]
    pub(crate) nats_sync: Option<NatsSyncArg>,
}

/// How publishers reach ACE::COMMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// `POST /api/v1/messages`.
    Http,
    /// `publish` frames on `/ws`.
    Ws,
}

/// How a NATS server syncs JetStream's files, as the operator states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum NatsSyncArg {
    /// `jetstream { sync_interval: always }`: every write is fsynced before it is acknowledged.
    Always,
    /// The server's default: acknowledged once written, fsynced every 2 minutes.
    Default,
}
