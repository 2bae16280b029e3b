//! The ACE::COMMS side of the bench, through `ace-client`: publishers over WebSocket `publish`
//! frames (`publish_batch` frames with `--batch`) or `POST /api/v1/messages` (`/batch`),
//! subscribers over `/ws`. Over HTTP the client's pool holds
//! one connection per publisher (`ClientBuilder::max_connections`), each kept alive, so the
//! run stays inside the server's per-address connection limit whatever `--in-flight` is.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Instant;

use ace_client::{Client, ClientError, SyncPolicy, WsConnection};
use ace_envelope::{Envelope, Kind};
use anyhow::{Context, Result};
use futures::StreamExt;

use super::{Measured, Report, drive, locate, probe, receive, settle, stamp};
use crate::args::{BenchArgs, ServerArgs, Transport};
use crate::commands::client::client_with;

/// Captured by the default `ACE_EVENTS` stream: durable.
const DURABLE_SUBJECT: &str = "ace.comms.http.service.bench.evt.v1";
/// The stream that captures [`DURABLE_SUBJECT`].
const DURABLE_STREAM: &str = "ACE_EVENTS";
/// Captured by no default stream: live delivery only.
const LIVE_SUBJECT: &str = "ace.comms.http.service.bench.qry.v1";

/// Measures the server at `--server` with `args`'s workload.
pub(super) async fn run(args: &BenchArgs, server: &ServerArgs) -> Result<Report> {
    let connections = NonZeroUsize::new(args.pubs).context("--pubs must be at least 1")?;
    let client = client_with(server, |b| b.max_connections(connections))?;
    let (durability, durability_source) = durability(&client, args.durable).await;
    let found = locate(args.server_pid, "--server-pid", &server.server, 8500);
    let subject = if args.durable {
        DURABLE_SUBJECT
    } else {
        LIVE_SUBJECT
    };
    let per_publisher = args.count / args.pubs;
    let expected = per_publisher * args.pubs;
    let start = Instant::now();
    let probe = probe(found);
    let mut subscribers = Vec::new();
    for _ in 0..args.subs {
        let ws = client.connect_ws().await?;
        let sub = ws.subscribe(subject, None).await?;
        subscribers.push(tokio::spawn(async move {
            let stamps = sub.map(|m| {
                let m = m?;
                let t = m.envelope.payload.as_ref().and_then(|p| p["t"].as_u64());
                t.context("a bench message without its send time")
            });
            let got = receive(Box::pin(stamps), expected, start).await;
            drop(ws);
            got
        }));
    }
    let pad = "x".repeat(args.size);
    let mut publishers = Vec::new();
    for _ in 0..args.pubs {
        let client = client.clone();
        let pad = pad.clone();
        let ws = match args.transport {
            Transport::Ws => Some(Arc::new(client.connect_ws().await?)),
            Transport::Http => None,
        };
        let (in_flight, batch) = (args.in_flight, args.batch);
        publishers.push(tokio::spawn(async move {
            drive(per_publisher.div_ceil(batch), in_flight, |frame| {
                let n = batch.min(per_publisher - frame * batch);
                let envelopes: Result<Vec<Envelope>> = (0..n)
                    .map(|_| bench_envelope(subject, &pad, stamp(start)))
                    .collect();
                let (client, ws) = (client.clone(), ws.clone());
                async move { send(&client, ws.as_deref(), envelopes?).await }
            })
            .await
        }));
    }
    let phase = settle(start, publishers, subscribers).await?;
    let transport = match args.transport {
        Transport::Ws => "ws",
        Transport::Http => "http",
    };
    let system = "ace-comms".to_owned();
    Ok(Measured {
        system,
        durability,
        durability_source,
        transport,
        batch: (args.batch > 1).then_some(args.batch),
        phase,
        probe,
    }
    .report(args))
}

/// One publish of the run: a single envelope as a `publish` frame (or `POST
/// /api/v1/messages`), several as one `publish_batch` frame (or one `POST
/// /api/v1/messages/batch`), every one of which must be accepted.
async fn send(
    client: &Client,
    ws: Option<&WsConnection>,
    envelopes: Vec<Envelope>,
) -> Result<bool> {
    if let [envelope] = envelopes.as_slice() {
        let sent: Result<_, ClientError> = match ws {
            Some(ws) => ws.publish(envelope).await,
            None => client.publish(envelope).await,
        };
        return sent.map(|_| true).map_err(anyhow::Error::new);
    }
    let answer = match ws {
        Some(ws) => ws.publish_batch(&envelopes).await?,
        None => client.publish_batch(&envelopes).await?,
    };
    anyhow::ensure!(
        answer.accepted == envelopes.len(),
        "a batch of {} was answered with {} accepted, {} held and {} refused",
        envelopes.len(),
        answer.accepted,
        answer.held,
        answer.refused
    );
    Ok(true)
}

/// The durability label of a run and where it comes from: the `sync` of the stream that
/// stores the bench's messages, as the server reports it.
async fn durability(client: &Client, durable: bool) -> (String, String) {
    if !durable {
        return ("live".to_owned(), "no stream stores the subject".to_owned());
    }
    let source = format!("stream {DURABLE_STREAM}");
    match client.stream_info(DURABLE_STREAM).await {
        Ok(info) => (sync_label(info.config.sync).to_owned(), source),
        Err(err) => (
            "ace-unknown".to_owned(),
            format!("{source} unreadable: {err}"),
        ),
    }
}

/// The label of a stream's sync policy.
fn sync_label(sync: SyncPolicy) -> &'static str {
    match sync {
        SyncPolicy::Always => "ace-fsync-always",
        SyncPolicy::Batch => "ace-fsync-group-commit",
        SyncPolicy::Never => "ace-no-fsync",
    }
}

fn bench_envelope(subject: &str, pad: &str, t: u64) -> Result<Envelope> {
    let kind = if subject == DURABLE_SUBJECT {
        Kind::Event
    } else {
        Kind::Query
    };
    Envelope::builder(kind, subject)
        .payload_json(serde_json::json!({ "t": t, "pad": pad }))
        .build()
        .context("building a bench envelope")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_sync_policy_when_labelled_then_the_label_says_whether_acks_wait_for_fsync() {
        assert_eq!(sync_label(SyncPolicy::Always), "ace-fsync-always");
        assert_eq!(sync_label(SyncPolicy::Batch), "ace-fsync-group-commit");
        assert_eq!(sync_label(SyncPolicy::Never), "ace-no-fsync");
    }
}
