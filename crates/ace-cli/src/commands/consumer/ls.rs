//! `consumer ls`: one row per consumer of a stream.

use std::io::Write;

use ace_envelope::api::http::ConsumerInfo;
use anyhow::Result;

use crate::args::StreamArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::{Format, Table};

pub(super) fn run(
    session: &Session,
    args: &StreamArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let consumers = match session.block_on(session.client.list_consumers(&args.stream)) {
        Ok(consumers) => consumers,
        Err(err) => return failed(err),
    };
    format.print(out, &consumers, |out| table(&consumers, out))?;
    Ok(Outcome::Success)
}

fn table(consumers: &[ConsumerInfo], out: &mut dyn Write) -> Result<()> {
    let mut table = Table::new(&[
        "NAME",
        "FILTER",
        "ACK FLOOR",
        "PENDING",
        "DELIVERED",
        "ACKED",
        "DEAD LETTERED",
    ]);
    for info in consumers {
        table.row(vec![
            info.config.name.clone(),
            info.config.filter.clone().unwrap_or_else(|| "-".to_owned()),
            info.ack_floor.to_string(),
            info.ack_pending.to_string(),
            info.counters.delivered.to_string(),
            info.counters.acked.to_string(),
            info.counters.dead_lettered.to_string(),
        ]);
    }
    table.write(out)
}
