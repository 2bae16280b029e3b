//! `ace-comms ledger …`: the tamper-evident ledger — offline (`verify` reads the files) and
//! online (`checkpoint`, `entries`, `proof` ask the server and check what it answers).

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// The verbs of `ledger`.
#[derive(Debug, Subcommand)]
pub(crate) enum LedgerCommand {
    /// Check the ledger offline: every chain link, every checkpoint signature, every Merkle
    /// root. Names the first edited, dropped, reordered or appended entry. Reads the files under
    /// the data directory, or with --postgres the server's PostgreSQL ledger (`ledger.store:
    /// postgres`; the signing key still comes from the data directory's `ledger/`). With
    /// --checkpoint FILE or --witness-postgres URL, also checks the ledger against checkpoints
    /// kept outside it, which is the only way to catch a rollback of entries together with
    /// their checkpoints, or rewritten entries after the last local checkpoint. Exit 0 intact,
    /// 1 tampered or unreadable (every problem printed), 2 usage, an unreadable checkpoint file
    /// or database unreachable.
    #[command(after_help = "Examples:\n  \
        ace-comms ledger verify\n  \
        ace-comms ledger verify --data /var/lib/ace-comms --json\n  \
        ace-comms ledger verify --checkpoint saved-checkpoint.json\n  \
        ace-comms ledger verify --checkpoint /mnt/audit/ace-witness.jsonl\n  \
        ace-comms ledger verify --witness-postgres postgres://audit@witness-db/audit\n  \
        ace-comms ledger verify --postgres postgres://ace@db/ace --schema ace_ledger --data /var/lib/ace-comms")]
    Verify(VerifyArgs),
    /// Fetch the server's latest signed checkpoint and check its Ed25519 signature (against
    /// --public-key when given, else the key the server serves). Exit 1 when it does not verify.
    #[command(after_help = "Examples:\n  \
        ace-comms ledger checkpoint\n  \
        ace-comms ledger checkpoint --public-key $(cat data/ledger/signing.pub) --json")]
    Checkpoint(CheckpointArgs),
    /// List ledger entries, oldest first, optionally by kind and time; pages with --after.
    #[command(after_help = "Examples:\n  \
        ace-comms ledger entries --kind denied\n  \
        ace-comms ledger entries --since 2026-01-31T00:00:00Z --limit 1000 --json")]
    Entries(EntriesArgs),
    /// Prove an entry is in the ledger (SEQ), or that an older tree is a prefix of a newer one
    /// (--from/--to), and check the proof here against the signed checkpoint. Exit 1 when it
    /// does not verify.
    #[command(after_help = "Examples:\n  \
        ace-comms ledger proof 42\n  \
        ace-comms ledger proof --from 100 --to 250 --json")]
    Proof(ProofArgs),
}

/// `ledger checkpoint`.
#[derive(Debug, Args)]
pub(crate) struct CheckpointArgs {
    /// The ledger's public key you trust (64 hex characters, `{data}/ledger/signing.pub`);
    /// without it the signature is checked against the key the server serves.
    #[arg(long, value_name = "HEX")]
    pub(crate) public_key: Option<String>,
}

/// `ledger entries`.
#[derive(Debug, Args)]
pub(crate) struct EntriesArgs {
    /// Only this kind: accepted, denied, held, approved, rejected, expired, dead_lettered,
    /// config_changed, workflow_run, session_written, storage_recovered, storage_damaged,
    /// stream_repaired.
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// Only entries recorded at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub(crate) since: Option<String>,
    /// Only entries recorded before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub(crate) until: Option<String>,
    /// Only entries after this seq (the `next_after` of the previous page).
    #[arg(long, value_name = "SEQ")]
    pub(crate) after: Option<u64>,
    /// At most this many (1 to 1000; the server's default is 100).
    #[arg(long)]
    pub(crate) limit: Option<usize>,
}

/// `ledger proof`.
#[derive(Debug, Args)]
pub(crate) struct ProofArgs {
    /// The entry to prove included.
    #[arg(required_unless_present = "from", conflicts_with_all = ["from", "to"])]
    pub(crate) seq: Option<u64>,
    /// The tree size to prove inclusion in (default: the latest checkpoint's).
    #[arg(long, requires = "seq")]
    pub(crate) size: Option<u64>,
    /// Consistency: the older tree size.
    #[arg(long, requires = "to")]
    pub(crate) from: Option<u64>,
    /// Consistency: the newer tree size.
    #[arg(long, requires = "from")]
    pub(crate) to: Option<u64>,
    /// The ledger's public key you trust (64 hex characters); default: the served key.
    #[arg(long, value_name = "HEX")]
    pub(crate) public_key: Option<String>,
}

/// `ledger verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The server's data directory (the ledger is its `ledger/` folder).
    #[arg(long, default_value = "./data", env = "ACE_DATA")]
    pub(crate) data: PathBuf,
    /// Verify the PostgreSQL ledger at this URL (`ledger.postgres.url`) instead of the files;
    /// its password is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "ACE_LEDGER_POSTGRES_URL",
        hide_env_values = true
    )]
    pub(crate) postgres: Option<String>,
    /// The PostgreSQL schema holding the ledger (`ledger.postgres.schema`).
    #[arg(long, default_value = "ace_ledger", requires = "postgres")]
    pub(crate) schema: String,
    /// Also check the ledger against checkpoints saved outside it: a file holding one signed
    /// checkpoint (`GET /api/v1/ledger/checkpoint`, `ace-comms ledger checkpoint --json`) or
    /// JSON lines of them (a `ledger.witness.file`). Repeatable. Catches a ledger cut or
    /// rolled back (with its own checkpoints or not) and rewritten entries the checkpoint
    /// covers, with a consistency proof.
    #[arg(long = "checkpoint", value_name = "FILE")]
    pub(crate) checkpoints: Vec<PathBuf>,
    /// Also check the ledger against every checkpoint a PostgreSQL witness keeps
    /// (`ledger.witness.postgres.url`); its password is never printed.
    #[arg(
        long,
        value_name = "URL",
        env = "ACE_LEDGER_WITNESS_POSTGRES_URL",
        hide_env_values = true
    )]
    pub(crate) witness_postgres: Option<String>,
    /// The PostgreSQL witness's schema (`ledger.witness.postgres.schema`).
    #[arg(
        long,
        default_value = "ace_ledger_witness",
        requires = "witness_postgres"
    )]
    pub(crate) witness_schema: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn given_the_ledger_entry_kinds_then_the_kind_help_of_ledger_entries_names_every_one() {
        let mut cli = crate::args::Cli::command();
        let entries = cli
            .find_subcommand_mut("ledger")
            .and_then(|l| l.find_subcommand_mut("entries"))
            .expect("ledger entries");
        let help = entries
            .get_arguments()
            .find(|a| a.get_id() == "kind")
            .and_then(|a| a.get_help())
            .map(ToString::to_string)
            .expect("--kind has help");
        for kind in ace_ledger::EntryKind::ALL {
            assert!(
                help.contains(kind.as_str()),
                "`{kind}` missing from: {help}"
            );
        }
    }
}
