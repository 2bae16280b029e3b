//! `ace-comms envelope …`: make and convert gme/1 envelopes.

use std::path::PathBuf;

use ace_envelope::{Kind, Label, Priority, Qos, SourceType};
use clap::{Args, Subcommand, ValueEnum};

/// The verbs of `envelope`.
#[derive(Debug, Subcommand)]
pub(crate) enum EnvelopeCommand {
    /// Print a new, valid gme/1 envelope (UUIDv7 id, the contract defaults: P2, standard).
    #[command(after_help = "Examples:\n  \
        ace-comms envelope new --subject ace.comms.a2a.agent.planner.evt.task_done.v1 \\\n      \
        --name TASK_DONE --payload '{\"task\":\"t1\"}'\n  \
        ace-comms envelope new --kind command --subject ace.comms.http.tool.search.cmd.v1 \\\n      \
        --priority P0 --qos realtime --ttl-ms 5000 --header tenant=acme\n  \
        ace-comms envelope new --subject ace.comms.http.service.billing.cmd.refund.v1 \\\n      \
        --source-type service --source-id billing --payload '{\"email\":\"a@b.c\"}' \\\n      \
        --pii email --sign-key billing.key --key-id billing-2026")]
    New(Box<NewArgs>),
    /// Convert an envelope between JSON, protobuf and CloudEvents (the input format is detected).
    #[command(after_help = "Examples:\n  \
        ace-comms envelope convert message.json --to protobuf --out message.pb\n  \
        ace-comms envelope convert message.pb --to cloudevents\n  \
        ace-comms envelope convert message.json --to cloudevents --binary")]
    Convert(ConvertArgs),
}

/// `envelope new`.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// Routing subject (literal, no wildcards).
    #[arg(long)]
    pub(crate) subject: String,
    /// event, command, query, reply or error.
    #[arg(long, default_value = "event", value_parser = parse_with(Kind::parse, "event, command, query, reply, error"))]
    pub(crate) kind: Kind,
    /// Event type that workflows match on.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Business domain.
    #[arg(long)]
    pub(crate) domain: Option<String>,
    /// Sender type: agent, human, service, kernel or group (with --source-id).
    #[arg(long, requires = "source_id", value_parser = parse_with(SourceType::parse, "agent, human, service, kernel, group"))]
    pub(crate) source_type: Option<SourceType>,
    /// Sender id (with --source-type).
    #[arg(long, requires = "source_type")]
    pub(crate) source_id: Option<String>,
    /// Inline JSON payload.
    #[arg(long, conflicts_with = "payload_file")]
    pub(crate) payload: Option<String>,
    /// Read the JSON payload from a file.
    #[arg(long)]
    pub(crate) payload_file: Option<PathBuf>,
    /// Contract of the payload, `subject@version`.
    #[arg(long)]
    pub(crate) schema: Option<String>,
    /// P0 (most urgent) … P3.
    #[arg(long, value_parser = parse_with(Priority::parse, "P0, P1, P2, P3"))]
    pub(crate) priority: Option<Priority>,
    /// realtime, standard or bulk.
    #[arg(long, value_parser = parse_with(Qos::parse, "realtime, standard, bulk"))]
    pub(crate) qos: Option<Qos>,
    /// Governance label: public, internal, confidential or secret.
    #[arg(long, value_parser = parse_with(Label::parse, "public, internal, confidential, secret"))]
    pub(crate) label: Option<Label>,
    /// Dedup key.
    #[arg(long)]
    pub(crate) idempotency_key: Option<String>,
    /// Ordering key.
    #[arg(long)]
    pub(crate) partition_key: Option<String>,
    /// Correlation id.
    #[arg(long)]
    pub(crate) correlation_id: Option<String>,
    /// Time to live in milliseconds.
    #[arg(long)]
    pub(crate) ttl_ms: Option<u64>,
    /// Start a new W3C trace for the message.
    #[arg(long)]
    pub(crate) trace: bool,
    /// Extension header, `key=value` (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE", value_parser = parse_header)]
    pub(crate) headers: Vec<(String, String)>,
    /// A payload field holding personal data, put in `governance.pii` (a top-level name, a
    /// dotted path like `customer.email` or `items.*.name`, or a JSON pointer; repeatable): logs
    /// never show it, and a server with `pii.redact_stored` replaces it before storing.
    #[arg(long = "pii", value_name = "FIELD")]
    pub(crate) pii: Vec<String>,
    /// Sign the envelope with this Ed25519 private key: a PEM `PRIVATE KEY` file (`openssl
    /// genpkey -algorithm ed25519`) or the 32-byte seed in hex or base64. Needs --key-id and
    /// --source-id (`source` is inside the signed bytes).
    #[arg(long, value_name = "FILE", requires_all = ["key_id", "source_id"])]
    pub(crate) sign_key: Option<PathBuf>,
    /// The key id servers know the public half of --sign-key by (`signature.key_id`).
    #[arg(long, requires = "sign_key")]
    pub(crate) key_id: Option<String>,
    /// Print the envelope on one line.
    #[arg(long)]
    pub(crate) compact: bool,
}

/// `envelope convert`.
#[derive(Debug, Args)]
pub(crate) struct ConvertArgs {
    /// The envelope: gme/1 JSON, a structured CloudEvent, or protobuf bytes; `-` reads stdin.
    pub(crate) file: PathBuf,
    /// The format to write.
    #[arg(long, value_enum)]
    pub(crate) to: Format,
    /// With `--to cloudevents`: binary HTTP mode (`ce-*` headers, a blank line, then the body).
    #[arg(long)]
    pub(crate) binary: bool,
    /// Write here instead of standard output (protobuf is binary: prefer a file).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

/// The wire forms of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// gme/1 JSON, the canonical form.
    Json,
    /// `contracts/leyline/envelope.proto`.
    Protobuf,
    /// CloudEvents 1.0.
    Cloudevents,
}

/// A clap value parser over one of the envelope's `parse` functions, naming the accepted words.
pub(super) fn parse_with<T: Clone + Send + Sync + 'static>(
    parse: fn(&str) -> Option<T>,
    accepted: &'static str,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |s| parse(s).ok_or_else(|| format!("expected one of {accepted}"))
}

pub(super) fn parse_header(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}
