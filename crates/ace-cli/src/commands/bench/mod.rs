//! `ace-comms bench`: one load generator for ACE::COMMS (through `ace-client`, `ace.rs`) and,
//! with `--nats`, for NATS JetStream (through `async-nats`, `nats.rs`), so both are measured in
//! one run with the same shape.
//!
//! Every publisher keeps `--in-flight` publishes outstanding and records publish→acknowledgement
//! latency; every subscriber receives every message and records end-to-end latency from the
//! send time the payload carries. Figures: publish msgs/s, delivered msgs/s, the p50, p99,
//! p99.9 and max of both latencies (HDR histograms, microseconds), and what the server process
//! spent (`process.rs`): CPU-µs per message and its peak resident memory. NATS core publishes
//! (live, not `--durable`) have no acknowledgement, so their ack latency is absent.
//!
//! Durability is labelled from what the server says, never assumed: ace-comms's from the `sync`
//! of the stream that stores the messages, NATS's from its monitor's `/varz` or `--nats-sync`
//! (`unknown` when neither is given).

mod ace;
mod nats;
mod process;

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use hdrhistogram::Histogram;
use reqwest::Url;
use serde::Serialize;

use self::process::{Probe, ServerCost};
use super::Outcome;
use crate::args::{BenchArgs, ServerArgs};
use crate::output::Format;

/// How long subscribers wait for stragglers once publishing ended.
const DRAIN: Duration = Duration::from_secs(10);

/// What one system measured.
#[derive(Debug, Serialize)]
struct Report {
    system: String,
    durability: String,
    /// Where the durability label comes from (`stream ACE_EVENTS`, `/varz`, `--nats-sync`).
    durability_source: String,
    transport: &'static str,
    /// Envelopes per publish (ACE::COMMS `publish_batch`); absent for one per publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    batch: Option<usize>,
    published: u64,
    publish_seconds: f64,
    publish_rate: f64,
    ack_us: Option<Percentiles>,
    delivered: u64,
    delivered_rate: f64,
    end_to_end_us: Option<Percentiles>,
    /// The server process's CPU and peak memory over the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    server_process: Option<ServerCost>,
    /// Why the server process was not measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    server_process_unavailable: Option<String>,
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
pub(crate) fn run(
    args: &BenchArgs,
    server: &ServerArgs,
    format: Format,
    out: &mut dyn Write,
) -> Result<Outcome> {
    anyhow::ensure!(
        args.pubs > 0 && args.in_flight > 0 && args.batch > 0,
        "--pubs, --in-flight and --batch must be at least 1"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut reports = vec![runtime.block_on(ace::run(args, server))?];
    if let Some(url) = &args.nats {
        reports.push(runtime.block_on(nats::run(args, url))?);
    }
    for report in &reports {
        format.print_item(out, report, |out| print_report(report, out))?;
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
        "{} [{} over {}; durability from {}]\n  published {} in {:.2}s: {:.0} msgs/s; ack µs: {}\n  delivered {}: {:.0} msgs/s; end-to-end µs: {}",
        r.system,
        r.durability,
        r.transport,
        r.durability_source,
        r.published,
        r.publish_seconds,
        r.publish_rate,
        pct(&r.ack_us),
        r.delivered,
        r.delivered_rate,
        pct(&r.end_to_end_us)
    )?;
    match (&r.server_process, &r.server_process_unavailable) {
        (Some(c), _) => writeln!(
            out,
            "  server process {} ({}): {:.1} CPU-µs/msg ({:.2} CPU-s); peak RSS {:.1} MiB (since {})",
            c.pid,
            c.found_by,
            c.cpu_us_per_msg,
            c.cpu_seconds,
            c.peak_rss_kib as f64 / 1024.0,
            if c.peak_rss_since == "phase" {
                "the run began"
            } else {
                "the process started"
            }
        )?,
        (None, Some(why)) => writeln!(out, "  server process not measured: {why}")?,
        (None, None) => {}
    }
    Ok(())
}

/// The server process of one side, found before the run: the flag's pid, or the process
/// listening on `url`'s port (`default_port` when the URL has none); or why not.
fn locate(
    pid: Option<u32>,
    flag: &str,
    url: &str,
    default_port: u16,
) -> Result<(u32, String), String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let port = parsed.port_or_known_default().unwrap_or(default_port);
    process::locate(pid, flag, host, port).map_err(|e| format!("{e:#}"))
}

/// Starts measuring the located process (or carries on why it cannot be).
fn probe(found: Result<(u32, String), String>) -> Result<Probe, String> {
    let (pid, found_by) = found?;
    Probe::start(pid, found_by).map_err(|e| format!("{e:#}"))
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

/// What the publishers and subscribers of one run gave.
struct Phase {
    start: Instant,
    /// When the last publisher finished.
    published_at: Instant,
    acks: Histogram<u64>,
    received: Received,
}

/// Waits for every publisher (their ack latencies, merged), then for every subscriber.
async fn settle(
    start: Instant,
    publishers: Vec<tokio::task::JoinHandle<Result<Histogram<u64>>>>,
    subscribers: Vec<tokio::task::JoinHandle<Result<Received>>>,
) -> Result<Phase> {
    let mut acks = histogram();
    for publisher in publishers {
        acks.add(&publisher.await.context("a publisher task")??)?;
    }
    let published_at = Instant::now();
    let received = gather(subscribers, start).await?;
    Ok(Phase {
        start,
        published_at,
        acks,
        received,
    })
}

/// One system's run, as measured: who it was, how durable, and what the phase gave.
struct Measured {
    system: String,
    durability: String,
    durability_source: String,
    transport: &'static str,
    /// Envelopes per publish, when more than one.
    batch: Option<usize>,
    phase: Phase,
    probe: Result<Probe, String>,
}

impl Measured {
    /// The report of `args`'s workload: rates, percentiles and the server process's cost.
    fn report(self, args: &BenchArgs) -> Report {
        let Phase {
            start,
            published_at,
            acks,
            received,
        } = self.phase;
        let publish_seconds = published_at.duration_since(start).as_secs_f64();
        let deliver_seconds = received.last.duration_since(start).as_secs_f64().max(1e-9);
        let published = (args.count / args.pubs * args.pubs) as u64;
        let cost = self
            .probe
            .and_then(|p| p.finish(published).map_err(|e| format!("{e:#}")));
        Report {
            system: self.system,
            durability: self.durability,
            durability_source: self.durability_source,
            transport: self.transport,
            batch: self.batch,
            published,
            publish_seconds,
            publish_rate: published as f64 / publish_seconds.max(1e-9),
            ack_us: Percentiles::of(&acks),
            delivered: received.delivered,
            delivered_rate: received.delivered as f64 / deliver_seconds,
            end_to_end_us: Percentiles::of(&received.latency),
            server_process_unavailable: cost.as_ref().err().cloned(),
            server_process: cost.ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
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

    #[test]
    fn given_urls_when_located_then_the_port_is_the_urls_or_the_schemes_default() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}");
        let (pid, found_by) = locate(None, "--server-pid", &url, 0).unwrap();
        assert_eq!(
            (pid, found_by),
            (std::process::id(), format!("port {port}"))
        );
        let why = locate(None, "--nats-pid", "nats://comms.example", 4222).unwrap_err();
        assert!(why.contains("not on this machine"), "{why}");
        let why = locate(None, "--server-pid", "not a url", 0).unwrap_err();
        assert!(why.contains("not a url"), "{why}");
    }

    #[test]
    fn given_an_unmeasured_server_when_reported_then_the_reason_is_in_the_json_and_the_table() {
        let args = BenchArgs {
            pubs: 1,
            subs: 1,
            transport: crate::args::Transport::Ws,
            size: 8,
            count: 10,
            in_flight: 1,
            batch: 1,
            durable: false,
            nats: None,
            server_pid: None,
            nats_pid: None,
            nats_monitor: None,
            nats_sync: None,
        };
        let start = Instant::now();
        let measured = Measured {
            system: "ace-comms".into(),
            durability: "live".into(),
            durability_source: "no stream stores the subject".into(),
            transport: "ws",
            batch: None,
            phase: Phase {
                start,
                published_at: start,
                acks: histogram(),
                received: Received {
                    delivered: 10,
                    latency: histogram(),
                    last: start,
                },
            },
            probe: Err("the server at comms.example is not on this machine".into()),
        };
        let report = measured.report(&args);
        let json = serde_json::to_value(&report).unwrap();
        assert!(json.get("server_process").is_none(), "{json}");
        assert_eq!(
            json["server_process_unavailable"],
            "the server at comms.example is not on this machine"
        );
        let mut table = Vec::new();
        print_report(&report, &mut table).unwrap();
        let table = String::from_utf8(table).unwrap();
        assert!(
            table.contains("server process not measured: the server at"),
            "{table}"
        );
    }
}
