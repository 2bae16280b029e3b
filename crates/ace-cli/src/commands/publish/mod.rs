//! `pub`: envelopes built from flags through the envelope builder, published over HTTP; one
//! answer line (or JSON) for one message; for `--count N`, batch publishes of 100 and a summary
//! (with a progress bar on a terminal past 1,000).

use std::io::{IsTerminal, Write};

use ace_client::ClientError;
use ace_envelope::api::http::Accepted;
use ace_envelope::{Envelope, EnvelopeError, ErrorBody};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::Outcome;
use super::client::{Session, failed, payload, refusal};
use crate::args::{PubArgs, ServerArgs};
use crate::output::Format;

/// Past this many messages a terminal gets a progress bar.
const PROGRESS_ABOVE: u64 = 1000;

/// Envelopes per batch request of `--count`: well under the server's default limit (1,000 per
/// batch) and its body limit for ordinary payloads.
const BATCH: u64 = 100;

/// What `pub --count N -o json|yaml` prints.
#[derive(Debug, Serialize)]
struct Summary {
    published: u64,
    duplicates: u64,
    /// Held for a human approval (`ace-comms approvals ls`): not published yet.
    held: u64,
    last: Accepted,
}

pub(crate) fn run(
    args: &PubArgs,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let payload = payload(args.payload.as_deref(), args.raw)?;
    let session = Session::new(server)?;
    if args.count > 1 {
        return run_many(&session, args, &payload, format, out);
    }
    let envelope = match build(args, payload) {
        Ok(envelope) => envelope,
        Err(err) => return refused_locally(&err),
    };
    match session.block_on(session.client.publish(&envelope)) {
        Ok(accepted) => {
            format.print(out, &accepted, |out| {
                Ok(writeln!(out, "published {}", line(&accepted))?)
            })?;
            Ok(Outcome::Success)
        }
        // Held is not refused: the server keeps it until an approver decides (exit 0).
        Err(ClientError::Held(pending)) => {
            format.print(out, &pending, |out| {
                Ok(writeln!(
                    out,
                    "held id={} approval_id={} (pending approval: ace-comms approvals approve {})",
                    pending.id, pending.approval_id, pending.approval_id
                )?)
            })?;
            Ok(Outcome::Success)
        }
        Err(err) => failed(err),
    }
}

/// `--count N`: batches of [`BATCH`] envelopes; the first refused envelope stops the run with
/// its code (exit 1), what went before stays published.
fn run_many(
    session: &Session,
    args: &PubArgs,
    payload: &serde_json::Value,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let bar = progress(args.count);
    let mut duplicates = 0;
    let mut held = 0;
    let mut last = None;
    let mut left = args.count;
    while left > 0 {
        let size = left.min(BATCH);
        let built: Result<Vec<Envelope>, EnvelopeError> =
            (0..size).map(|_| build(args, payload.clone())).collect();
        let envelopes = match built {
            Ok(envelopes) => envelopes,
            Err(err) => return refused_locally(&err),
        };
        let answer = match session.block_on(session.client.publish_batch(&envelopes)) {
            Ok(answer) => answer,
            Err(err) => return failed(err),
        };
        for item in &answer.results {
            match item.result() {
                Ok(Some(accepted)) => {
                    duplicates += u64::from(accepted.duplicate);
                    last = Some(accepted.clone());
                }
                Ok(None) => held += 1,
                Err(error) => {
                    bar.abandon();
                    return Err(refusal(error.clone()).into());
                }
            }
        }
        bar.inc(size);
        left -= size;
    }
    bar.finish_and_clear();
    let last = last.context("no message was published")?;
    let summary = Summary {
        published: args.count - held,
        duplicates,
        held,
        last,
    };
    format.print(out, &summary, |out| {
        Ok(writeln!(
            out,
            "published {} messages ({duplicates} duplicates, {held} held for approval); last: {}",
            summary.published,
            line(&summary.last)
        )?)
    })?;
    Ok(Outcome::Success)
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
/// details, exit 1.
pub(crate) fn refused_locally(err: &EnvelopeError) -> Result<Outcome> {
    Err(refusal(ErrorBody::from(err).error).into())
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
    if let Some(score) = args.ehi {
        builder = builder.ehi_score(score);
    }
    builder.build()
}
