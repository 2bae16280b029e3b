//! [`WsConnection`]: the `/ws` protocol of `ace_envelope::api::ws` from the client side — live
//! subscriptions, consumer push, publish, ack/nak/term and request/reply over one socket.
//!
//! Two tasks per connection: a writer that owns the socket's sending half (fed by an unbounded
//! channel, so a dropped [`Subscription`] can still send its `unsubscribe` without awaiting),
//! and a reader that routes `ok`/`error` frames to the call waiting on their `id` and `message`
//! frames to the [`Subscription`] named by their `sid`. Each subscription buffers
//! [`SUBSCRIPTION_BUFFER`] messages; when its owner reads slower than messages arrive, the
//! reader waits, the socket stops being read, and the server eventually closes the connection
//! with 4008 (slow consumer) — which every subscription then reports as
//! [`ClientError::Closed`].

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use ace_envelope::Envelope;
use ace_envelope::ErrorBody;
use ace_envelope::api::http::{Accepted, BatchAnswer};
use ace_envelope::api::ws::{
    Acknowledge, ClientFrame, Message, Publish, ServerFrame, Subscribe, Unsubscribe,
};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, Stream, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message as Frame};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;
use crate::http::Client;

/// Messages a [`Subscription`] holds before the connection's reader waits for its owner.
pub const SUBSCRIPTION_BUFFER: usize = 1024;

/// How long a frame waits for its `ok` or `error` when the client has no timeout of its own.
const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of request inboxes (one more token names the request), as the server's hub expects.
pub const INBOX_PREFIX: &str = "ace.comms.system.inbox.";

/// The header a request carries its reply subject in.
pub const REPLY_TO_HEADER: &str = "reply_to";

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Answer = Result<Option<serde_json::Value>, ClientError>;
type Delivery = Result<Message, ClientError>;

impl Client {
    /// Opens a WebSocket to the server's `/ws` (with this client's credentials).
    /// With several servers, one that cannot be reached is left for the next, each tried
    /// once (a refused upgrade is an answer, not a failover).
    pub async fn connect_ws(&self) -> Result<WsConnection, ClientError> {
        let first = self.servers().iter().position(|s| s == self.server());
        let first = first.unwrap_or(0);
        let n = self.servers().len();
        let mut last = None;
        for attempt in 0..n {
            let i = (first + attempt) % n;
            match self.connect_ws_at(i).await {
                Err(e @ ClientError::Transport { .. }) if attempt + 1 < n => {
                    self.fail_over(i);
                    last = Some(e);
                }
                other => return other,
            }
        }
        Err(last.unwrap_or(ClientError::InvalidUrl {
            url: String::new(),
            reason: "no server".to_owned(),
        }))
    }

    async fn connect_ws_at(&self, i: usize) -> Result<WsConnection, ClientError> {
        let mut url = self.url_at(i, &["ws"]);
        // http -> ws, https -> wss keep host, port and path; `Client::new` admits only these
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        let _ = url.set_scheme(scheme);
        let what = format!("connect {url}");
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| ClientError::transport(&what, e))?;
        if let Some((name, value)) = self.credentials().map(|c| c.header()) {
            let value = HeaderValue::from_str(&value).map_err(|e| ClientError::InvalidUrl {
                url: url.to_string(),
                reason: format!("credentials are not a valid header value: {e}"),
            })?;
            request.headers_mut().insert(name, value);
        }
        // the client's rustls configuration; a ws:// URL does not use it
        let tls = Connector::Rustls(Arc::clone(self.ws_tls()));
        let (socket, _) =
            tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(tls))
                .await
                .map_err(|e| handshake_error(e, &what))?;
        let timeout = self.timeout().unwrap_or(DEFAULT_ANSWER_TIMEOUT);
        Ok(WsConnection::start(socket, timeout))
    }
}

/// A refused upgrade carries the server's error body; anything else is a transport failure.
fn handshake_error(err: tungstenite::Error, what: &str) -> ClientError {
    if let tungstenite::Error::Http(response) = &err {
        let body = response
            .body()
            .as_deref()
            .and_then(|b| serde_json::from_slice::<ErrorBody>(b).ok());
        if let Some(body) = body {
            return ClientError::Api {
                status: response.status().as_u16(),
                body,
            };
        }
    }
    ClientError::transport(what, err)
}

/// One WebSocket connection to the server. Dropping it stops its tasks and closes the socket;
/// [`WsConnection::close`] closes it politely first.
#[derive(Debug)]
pub struct WsConnection {
    shared: Arc<Shared>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

/// What the connection's handle, its subscriptions and its reader share.
#[derive(Debug)]
struct Shared {
    /// Frames for the writer task.
    out: mpsc::UnboundedSender<Frame>,
    /// Calls waiting for their `ok`/`error`, by frame id.
    pending: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    /// Where `message` frames go, by sid.
    routes: Mutex<HashMap<String, mpsc::Sender<Delivery>>>,
    /// Set once the connection is over: the close code and reason.
    closed: Mutex<Option<(u16, String)>>,
    /// Source of frame ids and sids.
    next: AtomicU64,
    /// How long a call waits for its answer.
    timeout: Duration,
}

impl WsConnection {
    fn start(socket: Socket, timeout: Duration) -> WsConnection {
        let (sink, stream) = socket.split();
        let (out, outgoing) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            out,
            pending: Mutex::new(HashMap::new()),
            routes: Mutex::new(HashMap::new()),
            closed: Mutex::new(None),
            next: AtomicU64::new(1),
            timeout,
        });
        let writer = tokio::spawn(write_loop(sink, outgoing, Arc::clone(&shared)));
        let reader = tokio::spawn(read_loop(stream, Arc::clone(&shared)));
        WsConnection {
            shared,
            reader,
            writer,
        }
    }

    /// A live subscription to `pattern` (core pub/sub, nothing stored); with a `queue` group,
    /// each message goes to one member of the group.
    pub async fn subscribe(
        &self,
        pattern: &str,
        queue: Option<&str>,
    ) -> Result<Subscription, ClientError> {
        let sid = self.shared.fresh("s");
        let frame = Subscribe {
            queue: queue.map(str::to_owned),
            ..Subscribe::live(sid.clone(), pattern)
        };
        self.shared.open_subscription(sid, frame).await
    }

    /// Push deliveries from the durable `consumer` of `stream`: each message carries its stream
    /// sequence and delivery count and waits for [`Subscription::ack`] (or nak/term).
    pub async fn consume(&self, stream: &str, consumer: &str) -> Result<Subscription, ClientError> {
        let sid = self.shared.fresh("c");
        let frame = Subscribe::consumer(sid.clone(), stream, consumer);
        self.shared.open_subscription(sid, frame).await
    }

    /// Publishes `envelope`; the answer is the publish answer of HTTP.
    pub async fn publish(&self, envelope: &Envelope) -> Result<Accepted, ClientError> {
        self.shared.publish(envelope).await
    }

    /// Publishes `envelopes` in one `publish_batch` frame, answered by one frame: the batch
    /// answer of HTTP `POST /api/v1/messages/batch`, one result per envelope in order (a
    /// refused item does not fail the call). The admitted envelopes share one append on the
    /// server.
    pub async fn publish_batch(&self, envelopes: &[Envelope]) -> Result<BatchAnswer, ClientError> {
        self.shared.publish_batch(envelopes).await
    }

    /// Acknowledges the delivery `seq` of the consumer subscription `sid`.
    pub async fn ack(&self, sid: &str, seq: u64) -> Result<(), ClientError> {
        self.shared
            .acknowledge(Verb::Ack, sid, seq, None, None)
            .await
    }

    /// Redeliver `seq` of subscription `sid` after `delay` (per the consumer's backoff when
    /// `None`).
    pub async fn nak(
        &self,
        sid: &str,
        seq: u64,
        delay: Option<Duration>,
    ) -> Result<(), ClientError> {
        let delay_ms = delay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.shared
            .acknowledge(Verb::Nak, sid, seq, delay_ms, None)
            .await
    }

    /// Give up `seq` of subscription `sid`: it moves to the dead-letter subject with `reason`.
    pub async fn term(&self, sid: &str, seq: u64, reason: Option<&str>) -> Result<(), ClientError> {
        let reason = reason.map(str::to_owned);
        self.shared
            .acknowledge(Verb::Term, sid, seq, None, reason)
            .await
    }

    /// Sends `envelope` as a request and waits up to `timeout` for the first reply: subscribes
    /// to a fresh inbox `ace.comms.system.inbox.<uuid>` (122 random bits: any principal may listen
    /// on such an inbox, so its token is the capability), puts it in `headers["reply_to"]`, sets
    /// `correlation_id` to the envelope id when it has none, publishes, and awaits.
    pub async fn request(
        &self,
        mut envelope: Envelope,
        timeout: Duration,
    ) -> Result<Envelope, ClientError> {
        let inbox = format!("{INBOX_PREFIX}{}", uuid::Uuid::new_v4().simple());
        let mut replies = self.subscribe(&inbox, None).await?;
        envelope
            .headers
            .insert(REPLY_TO_HEADER.to_owned(), inbox.clone());
        if envelope.correlation_id.is_none() {
            envelope.correlation_id = Some(envelope.id.to_string());
        }
        self.publish(&envelope).await?;
        let reply = tokio::time::timeout(timeout, replies.next()).await;
        let unsubscribed = replies.unsubscribe().await;
        match reply {
            Ok(Some(Ok(message))) => {
                // the reply is what matters; a failed unsubscribe only leaks an inbox route
                if let Err(err) = unsubscribed {
                    tracing::debug!(%inbox, error = %err, "unsubscribing a request inbox failed");
                }
                Ok(*message.envelope)
            }
            Ok(Some(Err(err))) => Err(err),
            Ok(None) => Err(self.shared.closed_error()),
            Err(_) => Err(ClientError::Timeout {
                what: format!("request on {}", envelope.subject),
                after: timeout,
            }),
        }
    }

    /// The close code and reason once the connection is over (`None` while it is open).
    pub fn close_status(&self) -> Option<(u16, String)> {
        self.shared.closed_status()
    }

    /// Closes the connection with 1000 (normal) and waits for the server to answer.
    pub async fn close(mut self) -> Result<(), ClientError> {
        let frame = Frame::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "client closed".into(),
        }));
        if self.shared.out.send(frame).is_ok() {
            // the reader ends when the server's close answer arrives
            let reader = &mut self.reader;
            if tokio::time::timeout(self.shared.timeout, reader)
                .await
                .is_err()
            {
                return Err(ClientError::Timeout {
                    what: "the WebSocket close handshake".to_owned(),
                    after: self.shared.timeout,
                });
            }
        }
        Ok(())
    }
}

impl Drop for WsConnection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Which acknowledgement a frame is.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Ack,
    Nak,
    Term,
}

impl Shared {
    /// A fresh frame id or sid (`prefix` + a per-connection counter).
    fn fresh(&self, prefix: &str) -> String {
        format!("{prefix}{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn closed_status(&self) -> Option<(u16, String)> {
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn closed_error(&self) -> ClientError {
        let (code, reason) = self
            .closed_status()
            .unwrap_or((1006, "the connection dropped".to_owned()));
        ClientError::Closed { code, reason }
    }

    /// Registers the route first (the server may push before its `ok` arrives), then asks.
    async fn open_subscription(
        self: &Arc<Self>,
        sid: String,
        mut frame: Subscribe,
    ) -> Result<Subscription, ClientError> {
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_BUFFER);
        self.routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sid.clone(), tx);
        let id = self.fresh("f");
        frame.id = Some(id.clone());
        if let Err(err) = self.call(id, &ClientFrame::Subscribe(frame)).await {
            self.routes
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&sid);
            return Err(err);
        }
        Ok(Subscription {
            sid,
            rx,
            shared: Arc::clone(self),
            open: true,
        })
    }

    async fn publish(&self, envelope: &Envelope) -> Result<Accepted, ClientError> {
        let id = self.fresh("f");
        let frame = ClientFrame::Publish(Publish {
            id: Some(id.clone()),
            envelope: Box::new(envelope.clone()),
        });
        let result = self.call(id, &frame).await?.unwrap_or_default();
        let answer: crate::http::PublishAnswer =
            serde_json::from_value(result).map_err(|source| ClientError::Decode {
                what: "the ok frame of a publish".to_owned(),
                source,
            })?;
        answer.into_result()
    }

    async fn publish_batch(&self, envelopes: &[Envelope]) -> Result<BatchAnswer, ClientError> {
        /// The `publish_batch` frame over borrowed envelopes: the same JSON as
        /// `ClientFrame::PublishBatch` without copying them.
        #[derive(serde::Serialize)]
        struct Out<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            id: &'a str,
            envelopes: &'a [Envelope],
        }
        let id = self.fresh("f");
        let frame = Out {
            kind: "publish_batch",
            id: &id,
            envelopes,
        };
        let result = self.call(id.clone(), &frame).await?.unwrap_or_default();
        serde_json::from_value(result).map_err(|source| ClientError::Decode {
            what: "the ok frame of a publish_batch".to_owned(),
            source,
        })
    }

    async fn acknowledge(
        &self,
        verb: Verb,
        sid: &str,
        seq: u64,
        delay_ms: Option<u64>,
        reason: Option<String>,
    ) -> Result<(), ClientError> {
        let id = self.fresh("f");
        let ack = Acknowledge {
            id: Some(id.clone()),
            sid: sid.to_owned(),
            seq,
            delay_ms,
            reason,
        };
        let frame = match verb {
            Verb::Ack => ClientFrame::Ack(ack),
            Verb::Nak => ClientFrame::Nak(ack),
            Verb::Term => ClientFrame::Term(ack),
        };
        self.call(id, &frame).await.map(drop)
    }

    /// Sends `frame` (whose id is `id`) and waits for its `ok` result or `error`.
    async fn call(&self, id: String, frame: &impl serde::Serialize) -> Answer {
        let text = serde_json::to_string(frame).map_err(|source| ClientError::Decode {
            what: "a frame to send".to_owned(),
            source,
        })?;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.clone(), tx);
        // checked after registering, so a close racing this call is seen one way or the other
        if self.closed_status().is_some() || self.out.send(Frame::text(text)).is_err() {
            self.forget(&id);
            return Err(self.closed_error());
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                self.forget(&id);
                Err(ClientError::Timeout {
                    what: format!("the answer to frame {id}"),
                    after: self.timeout,
                })
            }
        }
    }

    fn forget(&self, id: &str) {
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Routes one server frame.
    async fn dispatch(&self, text: &str) {
        let frame = match serde_json::from_str::<ServerFrame>(text) {
            Ok(frame) => frame,
            Err(err) => {
                // Where and what kind, never serde's message: it can quote a value of the frame,
                // and a frame carries payloads (personal data named by `governance.pii`).
                tracing::warn!(
                    line = err.line(),
                    column = err.column(),
                    category = ?err.classify(),
                    "a server frame did not decode; skipped"
                );
                return;
            }
        };
        match frame {
            ServerFrame::Message(message) => self.deliver(message).await,
            ServerFrame::Ok { id, result } => self.answer(id.as_deref(), Ok(result)),
            ServerFrame::Error { id, error } => {
                self.answer(id.as_deref(), Err(ClientError::api(ErrorBody { error })));
            }
        }
    }

    async fn deliver(&self, message: Message) {
        let route = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&message.sid)
            .cloned();
        match route {
            // waits when the subscription's buffer is full: backpressure up to the server
            Some(tx) => drop(tx.send(Ok(message)).await),
            None => tracing::debug!(sid = %message.sid, "a message for a closed subscription"),
        }
    }

    fn answer(&self, id: Option<&str>, answer: Answer) {
        let waiting = id.and_then(|id| {
            self.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id)
        });
        match (waiting, answer) {
            (Some(tx), answer) => drop(tx.send(answer)),
            (None, Err(err)) => tracing::warn!(id = ?id, error = %err, "an unclaimed error frame"),
            (None, Ok(_)) => {}
        }
    }

    /// The connection is over: remember why, fail every waiting call, end every subscription.
    fn finish(&self, code: u16, reason: String) {
        self.closed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert((code, reason));
        let pending: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        for (_, tx) in pending {
            let _ = tx.send(Err(self.closed_error()));
        }
        let routes: Vec<_> = self
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .collect();
        for (_, tx) in routes {
            // a full buffer still ends: the sender drops and the stream yields `None`
            let _ = tx.try_send(Err(self.closed_error()));
        }
    }
}

async fn write_loop(
    mut sink: SplitSink<Socket, Frame>,
    mut outgoing: mpsc::UnboundedReceiver<Frame>,
    shared: Arc<Shared>,
) {
    while let Some(frame) = outgoing.recv().await {
        if let Err(err) = sink.send(frame).await {
            tracing::debug!(error = %err, "the WebSocket refused a frame");
            shared.finish(1006, format!("sending failed: {err}"));
            return;
        }
    }
}

async fn read_loop(mut stream: SplitStream<Socket>, shared: Arc<Shared>) {
    let (code, reason) = loop {
        match stream.next().await {
            Some(Ok(Frame::Text(text))) => shared.dispatch(text.as_str()).await,
            Some(Ok(Frame::Close(frame))) => {
                break frame.map_or((1005, String::new()), |f| {
                    (u16::from(f.code), f.reason.to_string())
                });
            }
            Some(Ok(Frame::Binary(_))) => tracing::warn!("a binary frame from the server; skipped"),
            Some(Ok(_)) => {} // ping, pong: tungstenite answers pings itself
            Some(Err(err)) => break (1006, err.to_string()),
            None => break (1006, "the connection dropped".to_owned()),
        }
    };
    shared.finish(code, reason);
}

/// The messages of one subscription, as a [`Stream`]. It ends with one
/// `Err(`[`ClientError::Closed`]`)` when the connection closes (the code says why: 4008 slow
/// consumer, 1001 server shutdown…). Dropping it unsubscribes (without waiting for the answer).
#[derive(Debug)]
pub struct Subscription {
    sid: String,
    rx: mpsc::Receiver<Delivery>,
    shared: Arc<Shared>,
    open: bool,
}

impl Subscription {
    /// The subscription id on its connection (the `sid` of its frames).
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// The next message; `None` once the subscription or its connection is over.
    pub async fn next(&mut self) -> Option<Delivery> {
        self.rx.recv().await
    }

    /// Acknowledges the delivery `seq` of this consumer subscription.
    pub async fn ack(&self, seq: u64) -> Result<(), ClientError> {
        self.shared
            .acknowledge(Verb::Ack, &self.sid, seq, None, None)
            .await
    }

    /// Redeliver `seq` after `delay` (per the consumer's backoff when `None`).
    pub async fn nak(&self, seq: u64, delay: Option<Duration>) -> Result<(), ClientError> {
        let delay_ms = delay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.shared
            .acknowledge(Verb::Nak, &self.sid, seq, delay_ms, None)
            .await
    }

    /// Give up `seq`: it moves to the dead-letter subject with `reason`.
    pub async fn term(&self, seq: u64, reason: Option<&str>) -> Result<(), ClientError> {
        let reason = reason.map(str::to_owned);
        self.shared
            .acknowledge(Verb::Term, &self.sid, seq, None, reason)
            .await
    }

    /// Ends the subscription and waits for the server to confirm.
    pub async fn unsubscribe(mut self) -> Result<(), ClientError> {
        self.open = false;
        self.shared
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.sid);
        let id = self.shared.fresh("f");
        let frame = ClientFrame::Unsubscribe(Unsubscribe {
            id: Some(id.clone()),
            sid: self.sid.clone(),
        });
        self.shared.call(id, &frame).await.map(drop)
    }
}

impl Stream for Subscription {
    type Item = Delivery;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let removed = self
            .shared
            .routes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.sid);
        if removed.is_some() && self.shared.closed_status().is_none() {
            let frame = ClientFrame::Unsubscribe(Unsubscribe {
                id: None,
                sid: self.sid.clone(),
            });
            if let Ok(text) = serde_json::to_string(&frame) {
                let _ = self.shared.out.send(Frame::text(text));
            }
        }
    }
}
