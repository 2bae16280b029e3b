//! `consumer add`: a durable consumer configuration from flags (unset flags keep the defaults).

use std::io::Write;

use ace_envelope::api::http::{Backoff, ConsumerConfig, ConsumerInfo};
use anyhow::Result;

use crate::args::ConsumerAddArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::Format;

pub(super) fn run(
    session: &Session,
    args: ConsumerAddArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let stream = args.stream.clone();
    let config = config(args);
    match session.block_on(session.client.add_consumer(&stream, &config)) {
        Ok(info) => {
            print(&info, format, out)?;
            Ok(Outcome::Success)
        }
        Err(err) => failed(err),
    }
}

fn print(info: &ConsumerInfo, format: Format, out: &mut dyn Write) -> Result<()> {
    format.print(out, info, |out| {
        Ok(writeln!(
            out,
            "consumer {} added to stream {}",
            info.config.name, info.stream
        )?)
    })
}

fn config(args: ConsumerAddArgs) -> ConsumerConfig {
    let defaults = ConsumerConfig::new(args.name);
    let backoff = if args.backoff.is_empty() {
        Backoff::None
    } else {
        Backoff::List(args.backoff)
    };
    ConsumerConfig {
        filter: args.filter,
        deliver: args.deliver.unwrap_or(defaults.deliver),
        ack: args.ack.unwrap_or(defaults.ack),
        ack_wait: args.ack_wait.unwrap_or(defaults.ack_wait),
        max_deliver: args.max_deliver.or(defaults.max_deliver),
        backoff,
        max_ack_pending: args.max_ack_pending.unwrap_or(defaults.max_ack_pending),
        ordering: args.ordering.unwrap_or(defaults.ordering),
        priority_lanes: args.priority_lanes.unwrap_or(defaults.priority_lanes),
        ..defaults
    }
}
