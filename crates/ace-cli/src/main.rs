//! `ace-comms`: the one binary of ACE::COMMS.
//!
//! `args/` holds what the command line says (clap derive, one file per noun); `commands/` holds
//! what runs (one file per verb). Every command writes its output to a `Write` it is handed, so the
//! end-to-end tests in `tests/it` and people see the same bytes.
//!
//! Exit codes follow the contract of the CLI for every command: `0` success (valid), `1` the input
//! was read and is invalid (every problem printed), `2` a usage error: bad arguments, an unreadable
//! file, an unknown schema (clap's own usage errors also exit 2).

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match commands::run(cli, &mut out) {
        Ok(commands::Outcome::Success) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Invalid) => ExitCode::from(1),
        // A reader that went away (`ace-comms stream ls | head -1`) ends the command quietly.
        Err(err) if closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether writing the output failed because its reader closed the pipe.
fn closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(serde_json::Error::io_error_kind)
                == Some(std::io::ErrorKind::BrokenPipe)
    })
}
