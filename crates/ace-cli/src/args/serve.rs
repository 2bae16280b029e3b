//! `ace-comms serve`: the flags that start the server. Flags win over `ACE_*` variables, which
//! win over the config file, which wins over the defaults.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

/// `serve`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    ace-comms serve\n  \
    ace-comms serve --listen 0.0.0.0:8500 --data /var/lib/ace-comms\n  \
    ace-comms serve --config config/ace-comms.example.yaml --log-format json\n  \
    ACE_LIMITS_MAX_BODY_BYTES=4194304 ACE_LOG=debug ace-comms serve")]
pub(crate) struct ServeArgs {
    /// YAML config file (every key: config/ace-comms.example.yaml).
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8500]; port 0 picks a free one.
    #[arg(long)]
    pub(crate) listen: Option<String>,
    /// Data directory [default: ./data].
    #[arg(long)]
    pub(crate) data: Option<PathBuf>,
    /// Log format on standard error; the filter comes from ACE_LOG or RUST_LOG (default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub(crate) log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per event.
    Json,
}
