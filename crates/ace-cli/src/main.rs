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
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
