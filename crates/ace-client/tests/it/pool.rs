//! The bounded connection pool, seen from the network: a counting TCP proxy between the client
//! and the real server records every connection the client opens and how many are open at
//! once, while many publishes run concurrently through one `Client` and its clones.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ace_client::{Client, ClientError};
use futures::future::join_all;
use tokio::net::{TcpListener, TcpStream};

use crate::{EVENT_SUBJECT, Server, event};

/// Connections seen by the proxy: opened in all, open now, and the most open at once.
#[derive(Debug, Default)]
struct Counts {
    opened: AtomicUsize,
    open: AtomicUsize,
    peak: AtomicUsize,
}

/// A proxy to `upstream` on a free port of its own; its URL and its counts.
async fn counting_proxy(upstream: String) -> (String, Arc<Counts>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let counts = Arc::new(Counts::default());
    let seen = Arc::clone(&counts);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            seen.opened.fetch_add(1, Ordering::SeqCst);
            let now = seen.open.fetch_add(1, Ordering::SeqCst) + 1;
            seen.peak.fetch_max(now, Ordering::SeqCst);
            let (seen, upstream) = (Arc::clone(&seen), upstream.clone());
            tokio::spawn(async move {
                if let Ok(mut server) = TcpStream::connect(&upstream).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
                seen.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, counts)
}

/// `publishes` publishes at once through clones of `client`; every one must be accepted.
async fn publish_at_once(client: &Client, publishes: u64) {
    let all = (0..publishes).map(|n| {
        let client = client.clone();
        async move { client.publish(&event(EVENT_SUBJECT, n)).await }
    });
    for (n, answer) in join_all(all).await.into_iter().enumerate() {
        let accepted = answer.unwrap_or_else(|e| panic!("publish {n}: {e}"));
        assert!(accepted.seq.is_some(), "publish {n} stored");
    }
}

#[tokio::test]
async fn given_a_pool_of_4_when_300_publishes_run_at_once_then_at_most_4_connections_are_open_and_kept_alive()
 {
    let server = Server::start().await;
    let upstream = server.base.trim_start_matches("http://").to_owned();
    let (url, counts) = counting_proxy(upstream).await;
    let client = Client::builder(&url)
        .max_connections(NonZeroUsize::new(4).unwrap())
        .build()
        .unwrap();
    publish_at_once(&client, 300).await;
    let (opened, peak) = (
        counts.opened.load(Ordering::SeqCst),
        counts.peak.load(Ordering::SeqCst),
    );
    eprintln!(
        "300 concurrent publishes over a pool of 4: {opened} connections opened, {peak} open at once"
    );
    assert!(peak <= 4, "{peak} connections open at once");
    assert!(
        opened < 300 / 4,
        "connections are kept alive and reused: {opened} opened for 300 requests"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_the_default_pool_when_400_publishes_run_at_once_then_no_more_than_its_bound_is_open()
{
    let server = Server::start().await;
    let upstream = server.base.trim_start_matches("http://").to_owned();
    let (url, counts) = counting_proxy(upstream).await;
    let client = Client::new(&url).unwrap();
    // more than the server's per-address limit (256) at once: without the bound, 429s
    publish_at_once(&client, 400).await;
    let peak = counts.peak.load(Ordering::SeqCst);
    assert!(
        peak <= ace_client::DEFAULT_MAX_CONNECTIONS.get(),
        "{peak} connections open at once"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_every_connection_busy_when_the_timeout_passes_then_the_waiting_request_times_out() {
    let server = Server::start().await;
    let config = ace_client::ConsumerConfig::new("pool-waiter");
    server
        .client
        .add_consumer("ACE_EVENTS", &config)
        .await
        .unwrap();
    let one = Client::builder(&server.base)
        .max_connections(NonZeroUsize::new(1).unwrap())
        .build()
        .unwrap();
    // the only connection waits 1 s in a fetch of an empty consumer...
    let patient = one.clone().with_timeout(Duration::from_secs(5));
    let busy = tokio::spawn(async move {
        patient
            .fetch("ACE_EVENTS", "pool-waiter", 1, Duration::from_secs(1))
            .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so a clone sharing the pool waits for it, and gives up after its own timeout
    let hasty = one.with_timeout(Duration::from_millis(200));
    let waited = hasty.health().await;
    assert!(
        matches!(&waited, Err(ClientError::Timeout { what, .. }) if what.contains("waiting for a free connection")),
        "{waited:?}"
    );
    let fetched = busy.await.unwrap().unwrap();
    assert!(fetched.is_empty(), "{fetched:?}");
    assert!(hasty.health().await.is_ok(), "the connection is free again");
    server.stop().await;
}
