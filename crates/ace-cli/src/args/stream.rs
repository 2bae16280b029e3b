//! `ace-comms stream …`: create, list, inspect and delete streams.

use std::path::PathBuf;
use std::time::Duration;

use ace_envelope::api::http::{DiscardPolicy, RetentionPolicy, StorageKind, SyncPolicy};
use clap::{Args, Subcommand};

use super::client::{parse_duration, parse_word};

/// The verbs of `stream`.
#[derive(Debug, Subcommand)]
pub(crate) enum StreamCommand {
    /// Create a stream that durably records every message whose subject matches --subjects.
    #[command(after_help = "Examples:\n  \
        ace-comms stream add ORDERS --subjects 'ace.comms.service.orders.>'\n  \
        ace-comms stream add JOBS --subjects 'ace.comms.service.jobs.>' --retention workqueue \\\n      \
        --max-msgs 100000 --discard new --dead-letter ace.comms.system.dlq.JOBS\n  \
        ace-comms stream add METRICS --subjects 'ace.comms.metrics.>' \\\n      \
        --max-age 24h --sync never --storage memory --json")]
    Add(Box<StreamAddArgs>),
    /// List the streams with their message counts and sizes.
    #[command(after_help = "Examples:\n  \
        ace-comms stream ls\n  \
        ace-comms stream ls --json | jq '.[].config.name'")]
    Ls,
    /// Show one stream: configuration, state and counters.
    #[command(after_help = "Examples:\n  \
        ace-comms stream info ACE_EVENTS\n  \
        ace-comms stream info ACE_DLQ -o yaml")]
    Info(NameArgs),
    /// Delete a stream and every message in it (asks first unless --force).
    #[command(after_help = "Examples:\n  \
        ace-comms stream rm ORDERS\n  \
        ace-comms stream rm ORDERS --force")]
    Rm(RmArgs),
    /// Show what is damaged in a stream and what a repair keeps and gives up (changes
    /// nothing); with --accept-loss, cut it to its last intact record so it takes writes again.
    #[command(
        after_help = "Without --data or --config it asks the running server (POST \
        /api/v1/streams/NAME/repair, admin only). With either, it works on the data directory \
        while the server is stopped (a running server holds the directory's lock and is named); \
        the repair is recorded in the server's ledger either way. What a repair cuts is moved \
        under streams/NAME/lost/, never deleted, and no sequence at or below the high-water mark \
        is given again. Exit 0 with \"nothing to repair\" for a healthy stream, 1 for an unknown \
        one (STREAM_NOT_FOUND).\n\nExamples:\n  \
        ace-comms stream repair ORDERS\n  \
        ace-comms stream repair ORDERS --accept-loss\n  \
        ace-comms stream repair ORDERS --data /var/lib/ace-comms --json\n  \
        ace-comms stream repair ORDERS --config /etc/ace/ace-comms.yaml --accept-loss"
    )]
    Repair(RepairArgs),
}

/// `stream add`.
#[derive(Debug, Args)]
pub(crate) struct StreamAddArgs {
    /// Name: letters, digits, `_` and `-`.
    pub(crate) name: String,
    /// Subject patterns captured, comma separated (no two streams may overlap).
    #[arg(long, required = true, value_delimiter = ',')]
    pub(crate) subjects: Vec<String>,
    /// What is kept: limits, workqueue or interest.
    #[arg(long, value_parser = parse_word::<RetentionPolicy>)]
    pub(crate) retention: Option<RetentionPolicy>,
    /// Most messages kept.
    #[arg(long)]
    pub(crate) max_msgs: Option<u64>,
    /// Most bytes kept.
    #[arg(long)]
    pub(crate) max_bytes: Option<u64>,
    /// Oldest message kept (e.g. 24h).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) max_age: Option<Duration>,
    /// Largest message accepted, in bytes.
    #[arg(long)]
    pub(crate) max_msg_size: Option<u64>,
    /// When full: old (drop the oldest) or new (refuse the publish).
    #[arg(long, value_parser = parse_word::<DiscardPolicy>)]
    pub(crate) discard: Option<DiscardPolicy>,
    /// How long an idempotency key is remembered (default 2m).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) dedup_window: Option<Duration>,
    /// When a publish counts as durable: always, batch or never.
    #[arg(long, value_parser = parse_word::<SyncPolicy>)]
    pub(crate) sync: Option<SyncPolicy>,
    /// Where messages live: file or memory.
    #[arg(long, value_parser = parse_word::<StorageKind>)]
    pub(crate) storage: Option<StorageKind>,
    /// Dead-letter subject (default ace.comms.system.dlq.<NAME>).
    #[arg(long)]
    pub(crate) dead_letter: Option<String>,
}

/// A verb on one named stream.
#[derive(Debug, Args)]
pub(crate) struct NameArgs {
    /// The stream.
    pub(crate) name: String,
}

/// `stream repair`.
#[derive(Debug, Args)]
pub(crate) struct RepairArgs {
    /// The stream.
    pub(crate) name: String,
    /// Give up what the dry run lists as lost: cut the stream to its last intact record.
    #[arg(long)]
    pub(crate) accept_loss: bool,
    /// Work offline on this data directory, the server stopped (as `serve --data`).
    #[arg(long, visible_alias = "data-dir", value_name = "DIR")]
    pub(crate) data: Option<PathBuf>,
    /// Work offline with this config file's data directory and ledger (as `serve --config`).
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

/// `stream rm`.
#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The stream.
    pub(crate) name: String,
    /// Delete without asking (required when standard input is not a terminal).
    #[arg(long, short)]
    pub(crate) force: bool,
}
