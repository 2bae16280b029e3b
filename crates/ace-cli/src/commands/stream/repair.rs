//! `stream repair`: what is damaged in a stream and what a repair keeps and gives up, or (with
//! `--accept-loss`) the repair. Online through the admin API by default; offline with `--data`
//! or `--config` (`ace_server::repair_offline`: the server must be stopped, since it holds the
//! data directory's lock, and the repair is recorded in its ledger with the operator named).
//! The report prints as aligned lines for people, or with `-o json|yaml` as the API's
//! `StreamRepair`.

use std::io::Write;

use ace_bus::BusError;
use ace_envelope::api::http::StreamRepair;
use ace_server::ServerError;
use anyhow::{Result, bail};

use super::info::{damage_text, word};
use crate::args::{RepairArgs, ServerArgs};
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::{Failure, Format, write_aligned};

pub(super) fn run(
    args: &RepairArgs,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    if args.data.is_some() || args.config.is_some() {
        return offline(args, format, out);
    }
    let session = Session::new(server)?;
    match session.block_on(session.client.repair_stream(&args.name, args.accept_loss)) {
        Ok(report) => print(&report, format, out),
        Err(err) => failed(err),
    }
}

/// The repair on the data directory, with the server stopped.
fn offline(args: &RepairArgs, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    let config = crate::commands::serve::load_config(args.config.as_deref(), args.data.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let repaired = runtime.block_on(ace_server::repair_offline(
        &config,
        &args.name,
        args.accept_loss,
        &operator(),
    ));
    match repaired {
        Ok(report) => print(&report, format, out),
        Err(ServerError::Engine {
            source: BusError::Locked { pid, .. },
            ..
        }) => {
            let pid = pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            bail!(
                "the server is running (pid {pid}): use the admin API `POST /api/v1/streams/{}/repair` \
                 (this command without --data and --config) or stop it",
                args.name
            )
        }
        Err(ServerError::Core {
            source: ace_core::CoreError::Bus(err @ BusError::StreamNotFound { .. }),
            ..
        }) => Err(Failure::refused(err.code().as_str(), err.to_string()).into()),
        Err(err) => Err(err.into()),
    }
}

/// Who ran the offline repair, for its ledger entry: the operating-system user on this host.
fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("local:{user}")
}

/// The report as the API answers it, or as aligned lines for people.
fn print(report: &StreamRepair, format: Format, out: &mut dyn Write) -> Result<Outcome> {
    format.print(out, report, |out| print_lines(report, out))?;
    Ok(Outcome::Success)
}

fn print_lines(report: &StreamRepair, out: &mut dyn Write) -> Result<()> {
    let range = |r: Option<ace_envelope::api::http::SeqRange>| {
        r.map_or_else(
            || "none".to_owned(),
            |r| format!("{} to {}", r.first, r.last),
        )
    };
    let state = match &report.damage {
        Some(d) => format!("{}: {}", word(&report.state), damage_text(d)),
        None => word(&report.state),
    };
    let segments: Vec<String> = report
        .segments
        .iter()
        .map(|s| match s.whole {
            true => format!("{} whole ({} bytes)", s.segment, s.bytes),
            false => format!("{} from byte {} ({} bytes)", s.segment, s.offset, s.bytes),
        })
        .collect();
    let consumers: Vec<String> = report
        .consumers
        .iter()
        .map(|c| format!("{} (ack floor {})", c.consumer, c.ack_floor))
        .collect();
    let none = |v: Vec<String>| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join("; ")
        }
    };
    let mut lines = vec![
        ("stream", report.stream.clone()),
        ("state", state),
        ("high water", report.high_water.to_string()),
        ("intact", range(report.intact)),
        ("lost", range(report.lost)),
        ("lost bytes", report.lost_bytes.to_string()),
        ("segments", none(segments)),
        ("consumers", none(consumers)),
        ("next seq", report.next_seq.to_string()),
    ];
    if let Some(to) = &report.moved_to {
        lines.push(("moved to", to.clone()));
    }
    lines.push(("state after", word(&report.state_after)));
    lines.push(("result", report.message.clone()));
    write_aligned(&lines, out)
}
