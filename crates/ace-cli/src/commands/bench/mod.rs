//! `ace-comms bench`: one load generator for ACE::COMMS (through `ace-client`) and, with
//! `--nats`, for NATS JetStream (through `async-nats`), so both are measured in one run with the
//! same shape (BENCHMARKING.md: same generator on both sides, durability labelled).
//!
//! Every publisher keeps `--in-flight` publishes outstanding and records publish→acknowledgement
//! latency; every subscriber receives every message and records end-to-end latency from the
//! send time the payload carries. Figures: publish msgs/s, delivered msgs/s, and the p50, p99,
//! p99.9 and max of both latencies (HDR histograms, microseconds). NATS core publishes (live,
//! not `--durable`) have no acknowledgement, so their ack latency is absent.

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ace_client::{Client, ClientError};
use ace_envelope::{Envelope, Kind};
use anyhow::{Context, Result};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use serde::Serialize;

use super::Outcome;
use super::client::client;
use crate::args::{BenchArgs, ServerArgs, Transport};

/// Captured by the default `ACE_EVENTS` stream: durable.
const DURABLE_SUBJECT: &str = "ace.comms.http.service.bench.evt.v1";
/// Captured by no default stream: live delivery only.
const LIVE_SUBJECT: &str = "ace.comms.http.service.bench.qry.v1";
/// The NATS subject, and the JetStream stream capturing it for `--durable`.
const NATS_SUBJECT: &str = "bench.load";
const NATS_STREAM: &str = "ACE_BENCH";
/// How long subscribers wait for stragglers once publishing ended.
const DRAIN: Duration = Duration::from_secs(10);

/// What one system measured.
#[derive(Debug, Serialize)]
struct Report {
    system: String,
    durability: String,
    transport: &'static str,
    published: u64,
    publish_seconds: f64,
    publish_rate: f64,
    ack_us: Option<Percentiles>,
    delivered: u64,
    delivered_rate: f64,
    end_to_end_us: Option<Percentiles>,
}

#[derive(Debug, Serialize)]
struct Percentiles {
    p50: u64,
    p99: u64,
    p999: u64,
    max: u64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        (!h.is_empty()).then(|| Percentiles {
            p50: h.value_at_quantile(0.50),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        })
    }
}

/// Runs the bench: ACE::COMMS at `server`, then NATS when asked.
pub(crate) fn run(args: &BenchArgs, server: &ServerArgs, out: &mut dyn Write) -> Result<Outcome> {
    anyhow::ensure!(
        args.pubs > 0 && args.in_flight > 0,
        "--pubs and --in-flight must be at least 1"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut reports = vec![runtime.block_on(ace(args, client(server)?))?];
    if let Some(url) = &args.nats {
        reports.push(runtime.block_on(nats(args, url))?);
    }
    for report in &reports {
        if args.json {
            writeln!(out, "{}", serde_json::to_string(report)?)?;
        } else {
            print_report(report, out)?;
        }
    }
    Ok(Outcome::Success)
}

fn print_report(r: &Report, out: &mut dyn Write) -> Result<()> {
    let pct = |p: &Option<Percentiles>| {
        p.as_ref().map_or_else(
            || "n/a".to_owned(),
            |p| format!("p50 {} p99 {} p99.9 {} max {}", p.p50, p.p99, p.p999, p.max),
        )
    };
    writeln!(
        out,
        "{} [{} over {}]\n  published {} in {:.2}s: {:.0} msgs/s; ack µs: {}\n  delivered {}: {:.0} msgs/s; end-to-end µs: {}",
        r.system,
        r.durability,
        r.transport,
        r.published,
        r.publish_seconds,
        r.publish_rate,
        pct(&r.ack_us),
        r.delivered,
        r.delivered_rate,
        pct(&r.end_to_end_us)
    )?;
    Ok(())
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 minutes at 3 significant digits
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("static bounds are valid")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Nanoseconds since `start`, as the payload's send time.
fn stamp(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Runs `per_publisher` publishes with up to `in_flight` outstanding; the ack latency of each.
async fn drive<F, Fut>(
    per_publisher: usize,
    in_flight: usize,
    mut publish: F,
) -> Result<Histogram<u64>>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<bool>>,
{
    let mut acks = histogram();
    let mut running = FuturesUnordered::new();
    let mut next = 0;
    loop {
        while next < per_publisher && running.len() < in_flight {
            let sent = Instant::now();
            let fut = publish(next);
            running.push(async move { fut.await.map(|acked| (acked, sent.elapsed())) });
            next += 1;
        }
        match running.next().await {
            Some(result) => {
                let (acked, took) = result?;
                if acked {
                    acks.record(micros(took))?;
                }
            }
            None => return Ok(acks),
        }
    }
}

/// What the subscribers saw, merged.
struct Received {
    delivered: u64,
    latency: Histogram<u64>,
    last: Instant,
}

/// Waits for every subscriber; they stop at `expected` messages or `DRAIN` after `published`.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<Result<Received>>>,
    start: Instant,
) -> Result<Received> {
    let mut all = Received {
        delivered: 0,
        latency: histogram(),
        last: start,
    };
    for task in tasks {
        let got = task.await.context("a subscriber task")??;
        all.delivered += got.delivered;
        all.latency.add(&got.latency)?;
        all.last = all.last.max(got.last);
    }
    Ok(all)
}

/// One subscriber's loop over any stream of send stamps.
async fn receive<S>(mut stamps: S, expected: usize, start: Instant) -> Result<Received>
where
    S: futures::Stream<Item = Result<u64>> + Unpin,
{
    let mut got = Received {
        delivered: 0,
        latency: histogram(),
        last: Instant::now(),
    };
    while got.delivered < expected as u64 {
        let Ok(next) = tokio::time::timeout(DRAIN, stamps.next()).await else {
            break;
        };
        let Some(sent) = next else { break };
        let now = stamp(start);
        got.latency
            .record((now.saturating_sub(sent?) / 1_000).max(1))?;
        got.delivered += 1;
        got.last = Instant::now();
    }
    Ok(got)
}

#[allow(clippy::too_many_arguments)]
fn report(
    system: String,
    args: &BenchArgs,
    durability: String,
    transport: &'static str,
    start: Instant,
    published_at: Instant,
    acks: &Histogram<u64>,
    received: &Received,
) -> Report {
    let publish_seconds = published_at.duration_since(start).as_secs_f64();
    let deliver_seconds = received.last.duration_since(start).as_secs_f64().max(1e-9);
    let published = (args.count / args.pubs * args.pubs) as u64;
    Report {
        system,
        durability,
        transport,
        published,
        publish_seconds,
        publish_rate: published as f64 / publish_seconds.max(1e-9),
        ack_us: Percentiles::of(acks),
        delivered: received.delivered,
        delivered_rate: received.delivered as f64 / deliver_seconds,
        end_to_end_us: Percentiles::of(&received.latency),
    }
}

// -- ACE::COMMS

async fn ace(args: &BenchArgs, client: Client) -> Result<Report> {
    let subject = if args.durable {
        DURABLE_SUBJECT
    } else {
        LIVE_SUBJECT
    };
    let per_publisher = args.count / args.pubs;
    let expected = per_publisher * args.pubs;
    let start = Instant::now();
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
        let in_flight = args.in_flight;
        publishers.push(tokio::spawn(async move {
            drive(per_publisher, in_flight, |_| {
                let env = bench_envelope(subject, &pad, stamp(start));
                let (client, ws) = (client.clone(), ws.clone());
                async move {
                    let env = env?;
                    let sent: Result<_, ClientError> = match &ws {
                        Some(ws) => ws.publish(&env).await,
                        None => client.publish(&env).await,
                    };
                    sent.map(|_| true).map_err(anyhow::Error::new)
                }
            })
            .await
        }));
    }
    let mut acks = histogram();
    for publisher in publishers {
        acks.add(&publisher.await.context("a publisher task")??)?;
    }
    let published_at = Instant::now();
    let received = gather(subscribers, start).await?;
    let transport = match args.transport {
        Transport::Ws => "ws",
        Transport::Http => "http",
    };
    let durability = if args.durable { "ace-fsync" } else { "live" }.to_owned();
    let system = "ace-comms".to_owned();
    Ok(report(
        system,
        args,
        durability,
        transport,
        start,
        published_at,
        &acks,
        &received,
    ))
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

// -- NATS JetStream

async fn nats(args: &BenchArgs, url: &str) -> Result<Report> {
    let connect = || async {
        async_nats::connect(url)
            .await
            .with_context(|| format!("connecting to NATS at {url}"))
    };
    let admin = connect().await?;
    let js = async_nats::jetstream::new(admin.clone());
    if args.durable {
        // a fresh stream per run, so runs do not pile up stored messages
        let _ = js.delete_stream(NATS_STREAM).await;
        js.create_stream(async_nats::jetstream::stream::Config {
            name: NATS_STREAM.to_owned(),
            subjects: vec![NATS_SUBJECT.to_owned()],
            ..Default::default()
        })
        .await
        .context("creating the JetStream stream (is JetStream enabled: nats-server -js?)")?;
    }
    let per_publisher = args.count / args.pubs;
    let expected = per_publisher * args.pubs;
    let start = Instant::now();
    let mut subscribers = Vec::new();
    for _ in 0..args.subs {
        let nc = connect().await?;
        let sub = nc.subscribe(NATS_SUBJECT).await?;
        nc.flush().await?;
        subscribers.push(tokio::spawn(async move {
            let stamps = sub.map(|m| {
                let head: [u8; 8] = m
                    .payload
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .context("a short bench message")?;
                Ok(u64::from_be_bytes(head))
            });
            let got = receive(Box::pin(stamps), expected, start).await;
            drop(nc);
            got
        }));
    }
    let mut publishers = Vec::new();
    for _ in 0..args.pubs {
        let nc = connect().await?;
        let js = async_nats::jetstream::new(nc.clone());
        let (size, durable, in_flight) = (args.size, args.durable, args.in_flight);
        publishers.push(tokio::spawn(async move {
            let acks = drive(per_publisher, in_flight, |_| {
                let mut payload = stamp(start).to_be_bytes().to_vec();
                payload.resize(size.max(8), b'x');
                let (nc, js) = (nc.clone(), js.clone());
                async move {
                    if durable {
                        js.publish(NATS_SUBJECT, payload.into()).await?.await?;
                        Ok(true)
                    } else {
                        nc.publish(NATS_SUBJECT, payload.into()).await?;
                        Ok(false)
                    }
                }
            })
            .await?;
            nc.flush().await?;
            Ok::<_, anyhow::Error>(acks)
        }));
    }
    let mut acks = histogram();
    for publisher in publishers {
        acks.add(&publisher.await.context("a publisher task")??)?;
    }
    let published_at = Instant::now();
    let received = gather(subscribers, start).await?;
    let version = admin.server_info().version;
    // NATS acknowledges before its data reaches disk and fsyncs every two minutes
    let major_minor: Vec<&str> = version.split('.').take(2).collect();
    let durability = if args.durable {
        format!("nats-{}-lazy(2m)", major_minor.join("."))
    } else {
        "live".to_owned()
    };
    let system = format!("nats-server {version}");
    Ok(report(
        system,
        args,
        durability,
        "nats",
        start,
        published_at,
        &acks,
        &received,
    ))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn given_a_window_when_driven_then_every_publish_runs_and_only_acked_ones_are_timed() {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let acks = drive(100, 8, |n| {
            let (in_flight, peak) = (Arc::clone(&in_flight), Arc::clone(&peak));
            async move {
                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::task::yield_now().await;
                in_flight.fetch_sub(1, Ordering::SeqCst);
                Ok(n % 2 == 0)
            }
        })
        .await
        .expect("drives");
        assert_eq!(acks.len(), 50, "only acknowledged publishes are timed");
        assert!(peak.load(Ordering::SeqCst) <= 8, "the window is respected");
    }

    #[tokio::test]
    async fn given_stamps_when_received_then_each_is_counted_with_its_latency() {
        let start = Instant::now();
        let stamps = futures::stream::iter((0..5).map(|_| Ok(stamp(start))));
        let got = receive(stamps, 5, start).await.expect("receives");
        assert_eq!(got.delivered, 5);
        assert_eq!(got.latency.len(), 5);
    }
}
