//! The WebSocket adapter's cost on loopback: one `publish` frame answered `ok` (the pipeline on
//! a stream without fsync plus the frame codec and the socket), and one live message from an
//! in-process publish to a subscribed socket (fan-out through the hub, the connection queue
//! and the writer).
//!
//! `cargo bench -p ace-server --bench ws -- --warm-up-time 1 --measurement-time 3`

use std::time::Duration;

use ace_bus::{StreamConfig, SyncPolicy};
use ace_core::RequestContext;
use ace_envelope::{Envelope, Kind};
use ace_server::{App, Config};
use criterion::{Criterion, criterion_group, criterion_main};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn envelope(subject: &str) -> Envelope {
    Envelope::builder(Kind::Event, subject)
        .payload_json(json!({"kpi": "latency_ms", "value": 812, "tags": ["a", "b"]}))
        .build()
        .expect("valid")
}

/// The next text frame as JSON (pings are answered by the library and skipped).
async fn next<S>(socket: &mut S) -> Value
where
    S: futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        if let Message::Text(text) = socket.next().await.unwrap().unwrap() {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

fn bench_ws(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let (app, url) = runtime.block_on(async {
        let app = App::open(&config).await.unwrap();
        let stream = StreamConfig {
            sync: SyncPolicy::Never,
            ..StreamConfig::new("FAST", &["bench.fast.>"])
        };
        let ctx = RequestContext::new("bench");
        app.state().core().add_stream(&ctx, stream).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        tokio::spawn(app.clone().serve(listener, std::future::pending()));
        (app, url)
    });
    let (mut publisher, _) = runtime
        .block_on(tokio_tungstenite::connect_async(url.as_str()))
        .unwrap();
    let (mut subscriber, _) = runtime
        .block_on(tokio_tungstenite::connect_async(url.as_str()))
        .unwrap();
    runtime.block_on(async {
        let subscribe =
            json!({"type": "subscribe", "id": "s", "sid": "s", "pattern": "bench.live.>"});
        subscriber
            .send(Message::Text(subscribe.to_string().into()))
            .await
            .unwrap();
        assert_eq!(next(&mut subscriber).await["type"], "ok");
    });
    let core = app.state().core().clone();
    let ctx = RequestContext::new("bench");

    let mut group = c.benchmark_group("ws");
    group.measurement_time(Duration::from_secs(3));
    group.bench_function("publish_frame_sync_never", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let frame =
                    json!({"type": "publish", "id": "p", "envelope": envelope("bench.fast.x")});
                publisher
                    .send(Message::Text(frame.to_string().into()))
                    .await
                    .unwrap();
                assert_eq!(next(&mut publisher).await["type"], "ok");
            });
        });
    });
    group.bench_function("live_message_to_socket", |b| {
        b.iter(|| {
            runtime.block_on(async {
                core.publish(&ctx, envelope("bench.live.x")).await.unwrap();
                assert_eq!(next(&mut subscriber).await["type"], "message");
            });
        });
    });
    group.finish();
}

criterion_group!(benches, bench_ws);
criterion_main!(benches);
