//! A client of several servers: `Client::new("http://a,http://b")` sends to the first and moves
//! on to the next when one cannot be reached (no connection: nothing was sent, so nothing is
//! done twice), over HTTP and for a new WebSocket.

use std::time::Duration;

use ace_client::Client;

use crate::{EVENT_SUBJECT, Server, event};

/// A loopback URL nothing listens on.
fn dead_url() -> String {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = probe.local_addr().expect("bound");
    drop(probe);
    format!("http://{addr}")
}

#[tokio::test]
async fn given_a_dead_first_server_when_publishing_then_the_client_moves_on_to_the_next() {
    let server = Server::start().await;
    let client = Client::new(&format!("{},{}", dead_url(), server.base)).expect("two URLs");
    assert_eq!(client.servers().len(), 2);
    let accepted = client
        .publish(&event(EVENT_SUBJECT, 1))
        .await
        .expect("published on the second");
    assert_eq!(accepted.stream.as_deref(), Some("ACE_EVENTS"));
    assert_eq!(client.server().as_str().trim_end_matches('/'), server.base);
    let ws = client.connect_ws().await;
    assert!(ws.is_ok(), "the WebSocket goes to the live server too");
    let fresh = Client::new(&format!("{},{}", dead_url(), server.base)).expect("two URLs");
    let query = ace_client::LedgerQuery {
        kind: Some("accepted".to_owned()),
        ..ace_client::LedgerQuery::default()
    };
    let page: serde_json::Value = fresh
        .ledger_entries(&query)
        .await
        .expect("read on the second");
    let kinds: Vec<&str> = page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["accepted"],
        "the query went along to the next server"
    );
    server.stop().await;
}

#[tokio::test]
async fn given_only_dead_servers_when_publishing_then_the_error_is_unreachable_after_each_was_tried()
 {
    let client = Client::new(&format!("{},{}", dead_url(), dead_url())).expect("two URLs");
    let err = client
        .publish(&event(EVENT_SUBJECT, 1))
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(err, ace_client::ClientError::Transport { .. }),
        "{err:?}"
    );
    assert!(
        Client::new("http://ok:1,ftp://bad").is_err(),
        "each URL is checked"
    );
}

/// Two servers on one NATS; the client publishes through the first, the first stops, and the
/// client carries on with the second, which reads back every message the client published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_two_servers_on_nats_when_the_first_stops_then_the_client_carries_on_and_loses_nothing()
 {
    let Some(url) = ace_testkit::nats_url("client failover on nats") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let tag = format!("c{:x}{}", nanos % (1 << 48), std::process::id());
    let on_nats = |c: &mut ace_server::Config| {
        c.engine = ace_server::Engine::Nats;
        c.nats.url = url.clone();
        c.nats.stream_prefix = format!("{tag}_");
        c.nats.subject_prefix = format!("{tag}.");
    };
    let a = Server::start_with(on_nats).await;
    let b = Server::start_with(on_nats).await;
    let client = Client::new(&format!("{},{}", a.base, b.base))
        .expect("two URLs")
        .with_timeout(Duration::from_secs(10));
    let mut seqs = Vec::new();
    for n in 0..5 {
        seqs.push(
            client
                .publish(&event(EVENT_SUBJECT, n))
                .await
                .expect("on A")
                .seq,
        );
    }
    a.stop().await;
    for n in 5..10 {
        seqs.push(
            client
                .publish(&event(EVENT_SUBJECT, n))
                .await
                .expect("on B")
                .seq,
        );
    }
    assert_eq!(client.server().as_str().trim_end_matches('/'), b.base);
    for seq in seqs {
        let seq = seq.expect("stored");
        let stored = b.client.get_message("ACE_EVENTS", seq).await;
        assert!(stored.is_ok(), "message {seq} published through A is on B");
    }
    assert!(
        client.connect_ws().await.is_ok(),
        "a new WebSocket goes to B"
    );
    b.stop().await;
    ace_testkit::delete_nats_streams(&url, &format!("{tag}_")).await;
}
