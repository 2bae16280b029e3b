//! `pub`: envelopes built from flags through the envelope builder, published over HTTP; one
//! answer line (or JSON) for one message, a summary (and a progress bar on a terminal past
//! 1,000) for `--count N`.

use std::io::{IsTerminal, Write};

use ace_envelope::api::http::Accepted;
use ace_envelope::{Envelope, EnvelopeError};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::Outcome;
use super::client::{Session, failed, payload};
use crate::args::PubArgs;
use crate::output;

/// Past this many messages a terminal gets a progress bar.
const PROGRESS_ABOVE: u64 = 1000;

/// What `pub --count N --json` prints.
#[derive(Debug, Serialize)]
struct Summary {
    published: u64,
    duplicates: u64,
    last: Accepted,
}

pub(crate) fn run(args: &PubArgs, server: &str, out: &mut dyn Write) -> Result<Outcome> {
    let session = Session::new(server)?;
    let payload = payload(args.payload.as_deref());
    let bar = progress(args.count);
    let mut duplicates = 0;
    let mut last = None;
    for _ in 0..args.count {
        let envelope = match build(args, payload.clone()) {
            Ok(envelope) => envelope,
            Err(err) => return refused_locally(&err),
        };
        let accepted = match session.block_on(session.client.publish(&envelope)) {
            Ok(accepted) => accepted,
            Err(err) => return failed(err),
        };
        duplicates += u64::from(accepted.duplicate);
        bar.inc(1);
        last = Some(accepted);
    }
    bar.finish_and_clear();
    let last = last.context("no message was published")?;
    if args.count == 1 {
        print_one(&last, args.output.json, out)?;
    } else if args.output.json {
        output::json(
            out,
            &Summary {
                published: args.count,
                duplicates,
                last,
            },
        )?;
    } else {
        writeln!(
            out,
            "published {} messages ({duplicates} duplicates); last: {}",
            args.count,
            line(&last)
        )?;
    }
    Ok(Outcome::Success)
}

fn print_one(accepted: &Accepted, json: bool, out: &mut dyn Write) -> Result<()> {
    if json {
        return output::json(out, accepted);
    }
    writeln!(out, "published {}", line(accepted))?;
    Ok(())
}

/// `id=… stream=… seq=… duplicate=…`; `-` where no stream captured the subject.
fn line(accepted: &Accepted) -> String {
    let stream = accepted.stream.as_deref().unwrap_or("-");
    let seq = accepted
        .seq
        .map_or_else(|| "-".to_owned(), |s| s.to_string());
    format!(
        "id={} stream={stream} seq={seq} duplicate={}",
        accepted.id, accepted.duplicate
    )
}

/// A bar on standard error for long runs when a person watches; hidden otherwise.
fn progress(count: u64) -> ProgressBar {
    if count <= PROGRESS_ABOVE || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(count);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style);
    }
    bar
}

/// An envelope the builder refuses is refused like the server would refuse it: code, message,
/// exit 1.
fn refused_locally(err: &EnvelopeError) -> Result<Outcome> {
    eprintln!("error: {}: {err}", err.code());
    Ok(Outcome::Invalid)
}

/// One new envelope (a fresh UUIDv7 id each call) from the flags.
fn build(args: &PubArgs, payload: serde_json::Value) -> Result<Envelope, EnvelopeError> {
    let mut builder = Envelope::builder(args.kind, args.subject.clone()).payload_json(payload);
    if let Some(name) = &args.name {
        builder = builder.name(name.clone());
    }
    if let Some(priority) = args.priority {
        builder = builder.priority(priority);
    }
    if let Some(key) = &args.idempotency_key {
        builder = builder.idempotency_key(key.clone());
    }
    if let Some(key) = &args.partition_key {
        builder = builder.partition_key(key.clone());
    }
    if let Some(schema) = &args.schema {
        builder = builder.schema(schema.clone());
    }
    for (key, value) in &args.headers {
        builder = builder.header(key.clone(), value.clone());
    }
    builder.build()
}
