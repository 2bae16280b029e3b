//! `ace-comms`: the one binary of ACE::COMMS.
//!
//! `args/` holds what the command line says (clap derive, one file per noun); `commands/` holds
//! what runs (one file per verb); `output` how data and failures print (`-o table|json|yaml`).
//! Every command writes its output to a `Write` it is handed, so the end-to-end tests in
//! `tests/it` and people see the same bytes.
//!
//! Exit codes follow the contract of the CLI for every command: `0` success (valid), `1` the input
//! was read and is invalid (every problem printed), or the server refused; `2` a usage error: bad
//! arguments, an unreadable file, an unknown schema, a server that cannot be reached (clap's own
//! usage errors also exit 2, as `{"error": {"code": "USAGE", …}}` under `-o json`).

mod args;
mod commands;
mod output;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use output::{Failure, Format};

fn main() -> ExitCode {
    let cli = match args::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage(&err),
    };
    let format = cli.output.format();
    // `mcp` writes MCP messages to standard output from its runtime's threads, so no lock on it
    // may be held here; every other command prints through one locked handle.
    let result = if matches!(cli.command, args::Command::Mcp) {
        commands::run(cli, &mut std::io::sink())
    } else {
        commands::run(cli, &mut std::io::stdout().lock())
    };
    match result {
        Ok(commands::Outcome::Success) => ExitCode::SUCCESS,
        Ok(commands::Outcome::Invalid) => ExitCode::from(1),
        // A reader that went away (`ace-comms stream ls | head -1`) ends the command quietly.
        Err(err) if closed_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let failure = Failure::of(&err);
            // Standard error is where the failure goes; if that fails too, the exit code says it.
            let _ = failure.print(format, &mut std::io::stderr().lock());
            ExitCode::from(failure.exit)
        }
    }
}

/// A command line clap refused: help and version print as clap prints them; a usage error
/// prints as clap prints it, or as a `USAGE` failure when the line asks for JSON or YAML.
fn usage(err: &clap::Error) -> ExitCode {
    let format = asked_format(std::env::args().skip(1));
    let shown = matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    );
    if shown || !format.is_data() {
        err.exit();
    }
    let (message, tip) = clap_message(&err.render().to_string());
    let hint = tip.unwrap_or_else(|| {
        "`ace-comms help` lists the commands, `ace-comms COMMAND --help` their arguments".into()
    });
    let failure = Failure::usage(message).hint(hint);
    let _ = failure.print(format, &mut std::io::stderr().lock());
    ExitCode::from(failure.exit)
}

/// clap's rendered error as one line, and its `tip:` if it gives one: the first paragraph
/// without `error: `, its lines joined (`the following required arguments were not provided:
/// <NAME>`); the usage and `--help` paragraphs are left to the hint.
fn clap_message(text: &str) -> (String, Option<String>) {
    let mut paragraphs = text.split("\n\n");
    let first = paragraphs.next().unwrap_or_default();
    let message = first
        .trim_start_matches("error: ")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let tip = paragraphs
        .flat_map(str::lines)
        .find_map(|line| line.trim().strip_prefix("tip: "))
        .map(str::to_owned);
    (message, tip)
}

/// The `-o`/`--output`/`--json` of a command line clap could not parse: the last one given
/// before `--`, `table` when none is.
fn asked_format(args: impl Iterator<Item = String>) -> Format {
    let mut format = Format::Table;
    let mut args = args.peekable();
    let word = |value: &str| clap::ValueEnum::from_str(value, false).ok();
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--" => break,
            "--json" => Some(Format::Json),
            "-o" | "--output" => args.peek().and_then(|v| word(v)),
            other => other
                .strip_prefix("--output=")
                .or_else(|| other.strip_prefix("-o="))
                .or_else(|| other.strip_prefix("-o"))
                .and_then(word),
        };
        format = value.unwrap_or(format);
    }
    format
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

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(line: &[&str]) -> Format {
        asked_format(line.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn given_clap_errors_when_made_one_line_then_the_whole_first_paragraph_and_the_tip_stay() {
        let (message, tip) = clap_message(
            "error: the following required arguments were not provided:\n  <NAME>\n\n\
             Usage: ace-comms stream info <NAME>\n\nFor more information, try '--help'.\n",
        );
        assert_eq!(
            message,
            "the following required arguments were not provided: <NAME>"
        );
        assert_eq!(tip, None);
        let (message, tip) = clap_message(
            "error: unexpected argument '--jsn' found\n\n  tip: a similar argument exists: \
             '--json'\n\nUsage: ace-comms stream ls\n",
        );
        assert_eq!(message, "unexpected argument '--jsn' found");
        assert_eq!(tip.as_deref(), Some("a similar argument exists: '--json'"));
    }

    #[test]
    fn given_a_line_clap_refused_when_its_format_is_read_then_every_spelling_counts() {
        assert_eq!(format_of(&["stream", "ls", "--bad"]), Format::Table);
        assert_eq!(
            format_of(&["--json", "stream", "ls", "--bad"]),
            Format::Json
        );
        assert_eq!(format_of(&["stream", "-o", "yaml", "--bad"]), Format::Yaml);
        assert_eq!(format_of(&["-ojson", "x"]), Format::Json);
        assert_eq!(format_of(&["--output=yaml", "x"]), Format::Yaml);
        assert_eq!(format_of(&["-o=json", "x"]), Format::Json);
        assert_eq!(
            format_of(&["-o", "xml"]),
            Format::Table,
            "unknown words are no format"
        );
        assert_eq!(format_of(&["pub", "--", "--json"]), Format::Table);
    }
}
