//! `stream add`: a stream configuration from flags (unset flags keep the server's defaults).

use std::io::Write;

use ace_envelope::api::http::StreamConfig;
use anyhow::Result;

use super::info::print_info;
use crate::args::StreamAddArgs;
use crate::commands::Outcome;
use crate::commands::client::{Session, failed};
use crate::output::Format;

pub(super) fn run(
    session: &Session,
    args: StreamAddArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let config = config(args);
    match session.block_on(session.client.add_stream(&config)) {
        Ok(info) => {
            print_info(&info, format, out)?;
            Ok(Outcome::Success)
        }
        Err(err) => failed(err),
    }
}

fn config(args: StreamAddArgs) -> StreamConfig {
    let defaults = StreamConfig::default();
    StreamConfig {
        name: args.name,
        subjects: args.subjects,
        retention: args.retention.unwrap_or(defaults.retention),
        max_msgs: args.max_msgs,
        max_bytes: args.max_bytes,
        max_age: args.max_age,
        max_msg_size: args.max_msg_size,
        discard: args.discard.unwrap_or(defaults.discard),
        dedup_window: args.dedup_window.unwrap_or(defaults.dedup_window),
        storage: args.storage.unwrap_or(defaults.storage),
        sync: args.sync.unwrap_or(defaults.sync),
        dead_letter: args.dead_letter,
    }
}
