//! The command line, as data: clap derive structs, one file per noun.

mod agents;
mod approvals;
mod bench;
mod client;
mod consumer;
mod contracts;
mod envelope;
mod ledger;
mod publish;
mod req;
mod serve;
mod session;
mod stream;
mod sub;
mod workflows;

use clap::{Args, Parser, Subcommand};

use crate::output::Format as OutputFormat;

pub(crate) use contracts::{CompatArgs, ContractsCommand, RegisterArgs, ShowArgs, ValidateArgs};
pub(crate) use envelope::{ConvertArgs, EnvelopeCommand, Format, NewArgs};
pub(crate) use ledger::{CheckpointArgs, EntriesArgs, LedgerCommand, ProofArgs, VerifyArgs};
pub(crate) use serve::{LogFormat, ServeArgs};

pub(crate) use agents::AgentsCommand;
pub(crate) use approvals::{ApprovalsCommand, DecideArgs, LsArgs};
pub(crate) use bench::{BenchArgs, NatsSyncArg, Transport};
pub(crate) use client::ServerArgs;
pub(crate) use consumer::{AckArgs, ConsumerAddArgs, ConsumerCommand, NextArgs, StreamArgs};
pub(crate) use publish::PubArgs;
pub(crate) use req::ReqArgs;
pub(crate) use session::SessionCommand;
pub(crate) use stream::{NameArgs, RepairArgs, RmArgs, StreamAddArgs, StreamCommand};
pub(crate) use sub::SubArgs;
pub(crate) use workflows::WorkflowsCommand;

/// ACE::COMMS — a governed message backbone for AI agents, humans and ML services.
#[derive(Debug, Parser)]
#[command(
    name = "ace-comms",
    version,
    propagate_version = true,
    after_help = "Exit codes: 0 done; 1 invalid input, or refused by the server (its error code and \
                  message are printed, e.g. STREAM_NOT_FOUND, TIMEOUT); 2 usage error, or the \
                  server could not be reached."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    #[command(flatten)]
    pub(crate) server: ServerArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

/// The nouns.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Inspect the embedded contracts, validate documents, check schema compatibility.
    #[command(subcommand)]
    Contracts(ContractsCommand),
    /// Make gme/1 envelopes and convert them between JSON, protobuf and CloudEvents.
    #[command(subcommand)]
    Envelope(EnvelopeCommand),
    /// Start the server: HTTP API on the embedded engine (auth off: development mode).
    Serve(ServeArgs),
    /// Publish an envelope built from flags; prints its stream and sequence.
    Pub(Box<PubArgs>),
    /// Receive messages over the WebSocket: a live pattern or a durable consumer.
    Sub(SubArgs),
    /// Send a query and print its reply.
    Req(ReqArgs),
    /// Create, list, inspect and delete streams.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Create, list, fetch from and acknowledge consumers.
    #[command(subcommand)]
    Consumer(ConsumerCommand),
    /// The agents present on the server.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// The server's workflows: list, show, enable, disable, reload, stats; validate files offline.
    #[command(subcommand)]
    Workflows(WorkflowsCommand),
    /// Messages held for a human's approval: list, approve, reject.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Read and write a session's versioned state.
    #[command(subcommand)]
    Session(SessionCommand),
    /// Check the tamper-evident ledger offline.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Make the server read its credential and policy files again (like SIGHUP); admin only.
    #[command(
        after_help = "Reloads the JWT keys, the API-key file, policy.dir's rbac.yaml and \
                            *.rego, all or nothing: a file that does not load is named and the \
                            previous ones keep serving. TLS certificates and the config file \
                            itself are read at start only.\n\nExamples:\n  \
                            ace-comms --api-key \"$ADMIN_KEY\" reload\n  \
                            ace-comms reload --json"
    )]
    Reload,
    /// Serve MCP on stdin/stdout for a desktop agent, carrying out every call on --server.
    #[command(
        after_help = "The same tools and resources as the server's /mcp endpoint (send_message, \
                            request, query_agent, fetch_messages, ack, list_agents, list_streams, \
                            request_approval, approval_status, validate_payload, ledger_proof), \
                            each call made on --server with --token or --api-key, so the server \
                            authenticates, authorizes and records it as that principal. Only MCP \
                            messages are written to standard output.\n\nExamples:\n  \
                            ace-comms mcp --server http://127.0.0.1:8500 --api-key \"$ACE_API_KEY\"\n  \
                            ACE_TOKEN=\"$JWT\" ace-comms mcp --server https://comms.example.com"
    )]
    Mcp,
    /// Measure a running server (and NATS JetStream with --nats): msgs/s and latency.
    Bench(Box<BenchArgs>),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Examples:\n  \
                            ace-comms completions bash > /etc/bash_completion.d/ace-comms\n  \
                            ace-comms completions zsh > \"${fpath[1]}/_ace-comms\"\n  \
                            ace-comms completions fish > ~/.config/fish/completions/ace-comms.fish")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// `-o/--output FORMAT` for every command, and `--json`, its alias for `-o json`.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct OutputArgs {
    /// How to print data and errors: table (for people), json or yaml (for scripts; errors
    /// as {"error": {...}} on standard error).
    #[arg(
        short = 'o',
        long = "output",
        global = true,
        value_enum,
        default_value_t = OutputFormat::Table,
        value_name = "FORMAT"
    )]
    pub(crate) format: OutputFormat,
    /// The same as `-o json`.
    #[arg(long, global = true, conflicts_with = "format")]
    pub(crate) json: bool,
}

impl OutputArgs {
    /// The format asked for.
    pub(crate) fn format(self) -> OutputFormat {
        if self.json {
            OutputFormat::Json
        } else {
            self.format
        }
    }
}
