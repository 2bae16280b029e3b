//! The NATS side of the bench, through `async-nats`: JetStream publishes (`--durable`, each
//! awaiting its acknowledgement) or core publishes, subscribers on the subject.
//!
//! Its durability label says how the server syncs JetStream's files, from the server itself
//! when its monitor is given (`/varz`: `jetstream.config.sync_always`, and
//! `jetstream.config.sync_interval` in nanoseconds, which nats-server 2.10 and later report and
//! 2.9 does not), or from `--nats-sync`; with neither it is `unknown`, and a flag the monitor
//! contradicts is an error. NATS acknowledges a JetStream publish once it is written, before
//! the fsync, unless `sync_interval: always`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures::StreamExt;
use serde_json::Value;

use super::{Measured, Report, drive, locate, probe, receive, settle, stamp};
use crate::args::{BenchArgs, NatsSyncArg};

/// The NATS subject, and the JetStream stream capturing it for `--durable`.
const NATS_SUBJECT: &str = "bench.load";
const NATS_STREAM: &str = "ACE_BENCH";
/// The sync interval of nats-server when its configuration sets none.
const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_secs(120);

/// How a NATS server syncs JetStream's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NatsSync {
    /// Every write fsynced before its acknowledgement.
    Always,
    /// Acknowledged once written; fsynced in the background this often.
    Every(Duration),
}

/// Measures the NATS server at `url` with `args`'s workload.
pub(super) async fn run(args: &BenchArgs, url: &str) -> Result<Report> {
    let connect = || async {
        async_nats::connect(url)
            .await
            .with_context(|| format!("connecting to NATS at {url}"))
    };
    let admin = connect().await?;
    let js = async_nats::jetstream::new(admin.clone());
    let version = admin.server_info().version;
    let (durability, durability_source) = if args.durable {
        let reported = match &args.nats_monitor {
            Some(monitor) => Some(varz_sync(&fetch_varz(monitor).await?)?),
            None => None,
        };
        label(&version, resolve(args.nats_sync, reported)?)
    } else {
        ("live".to_owned(), "core publish: no stream".to_owned())
    };
    let found = locate(args.nats_pid, "--nats-pid", url, 4222);
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
    let probe = probe(found);
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
        // NATS publishes one message per `PUB`: with `--batch`, it keeps as many messages
        // outstanding as ACE::COMMS does (`--in-flight` batches of `--batch`).
        let (size, durable, in_flight) = (args.size, args.durable, args.in_flight * args.batch);
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
    let phase = settle(start, publishers, subscribers).await;
    if args.durable {
        // The stream was made for this run: the user's server is left as it was found.
        if let Err(err) = js.delete_stream(NATS_STREAM).await {
            eprintln!("warning: could not delete the JetStream stream {NATS_STREAM}: {err}");
        }
    }
    let phase = phase?;
    Ok(Measured {
        system: format!("nats-server {version}"),
        durability,
        durability_source,
        transport: "nats",
        batch: None,
        phase,
        probe,
    }
    .report(args))
}

/// `GET <monitor>/varz`, as JSON.
async fn fetch_varz(monitor: &str) -> Result<Value> {
    let url = format!("{}/varz", monitor.trim_end_matches('/'));
    let answer = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .with_context(|| format!("reading the NATS monitor at {url}"))?;
    answer
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON"))
}

/// How the server of a `/varz` document syncs JetStream, `None` when it does not say (2.9).
fn varz_sync(varz: &Value) -> Result<Option<NatsSync>> {
    let Some(config) = varz.get("jetstream").and_then(|js| js.get("config")) else {
        bail!("the NATS monitor's /varz has no jetstream.config: is JetStream enabled (-js)?");
    };
    if config.get("sync_always").and_then(Value::as_bool) == Some(true) {
        return Ok(Some(NatsSync::Always));
    }
    Ok(config
        .get("sync_interval")
        .and_then(Value::as_u64)
        .map(|ns| NatsSync::Every(Duration::from_nanos(ns))))
}

/// The sync mode from the flag and the monitor (`reported`: `Some` when a monitor was read,
/// holding what it said) and where it comes from; a flag the monitor contradicts is an error.
fn resolve(
    flag: Option<NatsSyncArg>,
    reported: Option<Option<NatsSync>>,
) -> Result<(Option<NatsSync>, &'static str)> {
    let stated = flag.map(|f| match f {
        NatsSyncArg::Always => NatsSync::Always,
        NatsSyncArg::Default => NatsSync::Every(DEFAULT_SYNC_INTERVAL),
    });
    match (stated, reported) {
        (Some(stated), Some(Some(seen))) if stated != seen => bail!(
            "--nats-sync says {} but the server's /varz says {}",
            describe(stated),
            describe(seen)
        ),
        (_, Some(Some(seen))) => Ok((Some(seen), "/varz")),
        (Some(stated), Some(None)) => Ok((Some(stated), "--nats-sync (/varz does not report it)")),
        (Some(stated), None) => Ok((Some(stated), "--nats-sync")),
        (None, Some(None)) => Ok((None, "nothing: /varz does not report it; give --nats-sync")),
        (None, None) => Ok((None, "nothing: give --nats-monitor or --nats-sync")),
    }
}

fn describe(sync: NatsSync) -> String {
    match sync {
        NatsSync::Always => "fsync always".to_owned(),
        NatsSync::Every(d) => format!("fsync every {}", humantime::format_duration(d)),
    }
}

/// The durability label (`nats-2.15-fsync-always`, `nats-2.15-fsync-every-2m`,
/// `nats-2.9-fsync-unknown`) and its source.
fn label(version: &str, (sync, source): (Option<NatsSync>, &str)) -> (String, String) {
    let major_minor: Vec<&str> = version.split('.').take(2).collect();
    let mode = match sync {
        Some(NatsSync::Always) => "fsync-always".to_owned(),
        Some(NatsSync::Every(d)) => format!("fsync-every-{}", humantime::format_duration(d)),
        None => "fsync-unknown".to_owned(),
    };
    (
        format!("nats-{}-{mode}", major_minor.join(".")),
        source.to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `jetstream` part of `/varz` of nats-server 2.15.1 started with `-js`.
    const VARZ_2_15_DEFAULT: &str = r#"{"version":"2.15.1","jetstream":{"config":{"max_memory":18957136896,"max_storage":61534083072,"store_dir":"s1/jetstream","sync_interval":120000000000,"strict":true}}}"#;
    /// The same with `jetstream { sync_interval: always }`.
    const VARZ_2_15_ALWAYS: &str = r#"{"version":"2.15.1","jetstream":{"config":{"max_memory":18957136896,"max_storage":61534080000,"store_dir":"/tmp/s2/jetstream","sync_interval":120000000000,"sync_always":true,"strict":true}}}"#;
    /// nats-server 2.9.10 with `-js`: no sync fields.
    const VARZ_2_9: &str = r#"{"version":"2.9.10","jetstream":{"config":{"max_memory":18957136896,"max_storage":61533901824,"store_dir":"s3/jetstream"}}}"#;
    /// Without `-js`.
    const VARZ_NO_JS: &str = r#"{"version":"2.15.1"}"#;

    fn varz(text: &str) -> Result<Option<NatsSync>> {
        varz_sync(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn given_varz_of_each_server_when_read_then_the_sync_mode_is_what_it_reports() {
        assert_eq!(
            varz(VARZ_2_15_DEFAULT).unwrap(),
            Some(NatsSync::Every(Duration::from_secs(120)))
        );
        assert_eq!(varz(VARZ_2_15_ALWAYS).unwrap(), Some(NatsSync::Always));
        assert_eq!(varz(VARZ_2_9).unwrap(), None, "2.9 does not report it");
        let err = varz(VARZ_NO_JS).unwrap_err().to_string();
        assert!(err.contains("is JetStream enabled"), "{err}");
    }

    #[test]
    fn given_modes_when_labelled_then_the_label_names_version_and_fsync() {
        let every = (Some(NatsSync::Every(Duration::from_secs(120))), "/varz");
        assert_eq!(label("2.15.1", every).0, "nats-2.15-fsync-every-2m");
        assert_eq!(
            label("2.15.1", (Some(NatsSync::Always), "/varz")).0,
            "nats-2.15-fsync-always"
        );
        let unknown = label("2.9.10", (None, "nothing"));
        assert_eq!(unknown, ("nats-2.9-fsync-unknown".into(), "nothing".into()));
    }

    #[test]
    fn given_the_flag_and_the_monitor_when_resolved_then_the_monitor_wins_and_a_contradiction_fails()
     {
        let default = Some(NatsSync::Every(DEFAULT_SYNC_INTERVAL));
        let always = Some(NatsSyncArg::Always);
        assert_eq!(
            resolve(None, Some(Some(NatsSync::Always))).unwrap(),
            (Some(NatsSync::Always), "/varz")
        );
        assert_eq!(
            resolve(Some(NatsSyncArg::Default), Some(default)).unwrap(),
            (default, "/varz")
        );
        let err = resolve(always, Some(default)).unwrap_err().to_string();
        assert!(
            err.contains(
                "--nats-sync says fsync always but the server's /varz says fsync every 2m"
            ),
            "{err}"
        );
        assert_eq!(
            resolve(always, Some(None)).unwrap(),
            (
                Some(NatsSync::Always),
                "--nats-sync (/varz does not report it)"
            )
        );
        assert_eq!(
            resolve(always, None).unwrap(),
            (Some(NatsSync::Always), "--nats-sync")
        );
        assert_eq!(resolve(None, None).unwrap().0, None, "never guessed");
        assert_eq!(resolve(None, Some(None)).unwrap().0, None, "never guessed");
    }
}
