//! One upgraded WebSocket connection: the reader loop that turns client frames into `Core`
//! calls, one writer task fed by a bounded queue, and one task per subscription.
//!
//! - **Bounded queue, in frames and in bytes.** Everything for the client (answers, messages,
//!   pings) goes through one `mpsc` of `limits.ws.queue` frames that the writer drains, and every
//!   frame is charged to the byte [`Budget`] of the connection, its principal and the server
//!   (`limits.ws.max_queued_bytes`, `_per_principal`, `_total`; see `budget`) until it is written.
//!   A live message that finds the queue full or does not fit under a byte bound closes the
//!   connection with 4008 (slow consumer, counted, the reason naming the bound): live messages
//!   cannot wait, and memory must not grow for a client that does not read. Consumer deliveries
//!   instead wait for room (frames and bytes) before fetching, and fetch no more than fits, so a
//!   durable consumer is flow-controlled by the client's reading speed (and its
//!   `max_ack_pending`), never dropped.
//! - **Credentials are judged again** when a bearer token reaches its `exp`
//!   (`Core::credentials_expire_at`) and after every successful reload (the app state's reload
//!   generation): a connection whose credentials no longer authenticate (expired token, removed
//!   key, rotated secret) is closed with 4001 and the reason, counted under `credentials`.
//! - **Protocol errors** close with 1002 (an unmasked frame, a reserved opcode or bit, a bad
//!   fragment) and a text message that is not UTF-8 with 1007 (RFC 6455 7.4.1), each with the
//!   library's reason.
//! - **Closing.** Whoever decides to close (the reader: too big, keepalive, shutdown; a
//!   subscription task: slow consumer) sets the one [`Closer`]; the first reason wins and is
//!   counted. The writer then sends the close frame ahead of anything still queued, giving a
//!   blocked client [`CLOSE_GRACE`] to take it.
//! - **Pipelined publishes.** `publish` frames do not wait for each other: each one runs as its
//!   own task on the connection's [`JoinSet`] (through `Core::publish`, like the HTTP adapter),
//!   and its `ok` or `error` answer is queued with the frame's `id` when it completes — so
//!   answers may come **out of order**, and the `id` is how a client matches them. At most
//!   `limits.ws.max_inflight_publishes` publishes (and `limits.ws.max_inflight_publish_bytes` of
//!   their frames) are in flight per connection; at either limit the reader stops reading frames
//!   until one completes (backpressure through TCP, never unbounded
//!   memory). This is what lets one connection fill a durable group commit instead of paying
//!   one fsync per frame. A `publish_batch` frame is one such task (one of
//!   `max_inflight_publishes`, its whole frame charged to the byte bound): its envelopes go
//!   through `Core::publish_batch` together — one append, one ledger write — and are answered
//!   by one `ok` frame, in their order. `publish` frames that are already read off the socket
//!   when the reader takes the first of them (a client pipelining faster than the core answers)
//!   are coalesced the same way — one task, one append, one ledger write, up to
//!   `limits.max_batch_messages` and within the byte bound — and each is still answered by its
//!   own frame; the reader never waits for more, and the first other message it meets is handled
//!   next, in its order.
//! - **Ordering of pipelined publishes.** Like NATS JetStream's async publish, publishes that are
//!   in flight together on one connection are **not ordered relative to each other**, even with
//!   the same subject or `partition_key`: their appends (and so their stream `seq`s) may land in
//!   any order. A client that needs order waits for each `ok` before sending the next publish (or
//!   runs with `limits.ws.max_inflight_publishes: 1`). Other frames (`subscribe`, `ack`, …) are
//!   still applied one at a time in arrival order, but they do not wait for publishes sent before
//!   them.
//! - **Errors keep the connection.** A malformed or refused frame is answered with an `error`
//!   frame carrying the error body of `contracts/comms/errors.schema.json`; only the close codes
//!   above end a connection.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ace_bus::{Delivered, LiveSubscription};
use ace_core::{Accepted, AckKind, CoreError, RequestContext};
use ace_envelope::api::http::Pending;
use ace_envelope::api::ws::{
    Acknowledge, ClientFrame, Message as MessageFrame, Publish, ServerFrame, Subscribe,
    SubscribeTarget, close,
};
use ace_envelope::{Envelope, ErrorBody, ErrorCode};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::SplitSink;
use futures::{FutureExt as _, SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite;

use super::Lifetime;
use super::budget::{Budget, Charge};
use crate::config::WsLimits;
use crate::error::ApiError;
use crate::http::AppState;
use crate::http::messages::{batch_answer, held};

/// How long a closing connection waits for its client to take the close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Most deliveries one consumer fetch asks for.
const PUSH_BATCH: usize = 64;
/// How long one consumer fetch waits for a message before asking again.
const PUSH_WAIT: Duration = Duration::from_secs(5);
/// The frame types a client may send, for the error naming an unknown one.
const CLIENT_TYPES: &str = "subscribe, unsubscribe, publish, publish_batch, ack, nak, term";

/// The one close decision of a connection: the first reason wins.
#[derive(Debug, Clone)]
struct Closer {
    tx: watch::Sender<Option<(u16, String)>>,
    metrics: crate::metrics::Metrics,
}

impl Closer {
    /// Closes with `code`, counted under `label`; later calls are ignored.
    fn close(&self, code: u16, label: &'static str, reason: String) {
        let mut reason = Some(reason);
        let first = self.tx.send_if_modified(|current| {
            if current.is_some() {
                return false;
            }
            *current = Some((code, reason.take().unwrap_or_default()));
            true
        });
        if first {
            tracing::debug!(code, label, "closing a WebSocket");
            self.metrics.ws_closes.with_label_values(&[label]).inc();
        }
    }
}

/// One subscription: its task (aborted when dropped) and, for a consumer, what acks address.
struct Sub {
    task: JoinHandle<()>,
    consumer: Option<(String, String)>,
}

impl Drop for Sub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One frame on its way to the client and the bytes it holds of the budget (given back when
/// it is dropped: written, or dropped with the queue).
#[derive(Debug)]
struct Queued {
    message: Message,
    _charge: Charge,
}

/// The connection's queue: frames for the writer, each charged to the byte budget.
#[derive(Debug, Clone)]
struct Outbox {
    tx: mpsc::Sender<Queued>,
    budget: Arc<Budget>,
}

/// Why a frame could not be queued.
enum Refused {
    /// The queue or a byte bound is full: the reason of the 4008 close.
    Full(String),
    /// The writer is gone.
    Closed,
}

impl Outbox {
    /// Queues `message` at once, or says which bound it did not fit.
    fn try_send(&self, message: Message, frames: usize) -> Result<(), Refused> {
        let charge = self
            .budget
            .try_charge(size_of_message(&message))
            .map_err(|over| {
                Refused::Full(format!(
                    "slow consumer: frames waiting for the client passed {}",
                    over.key()
                ))
            })?;
        self.tx
            .try_send(Queued {
                message,
                _charge: charge,
            })
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => Refused::Full(format!(
                    "slow consumer: {frames} frames waited for the client (limits.ws.queue)"
                )),
                mpsc::error::TrySendError::Closed(_) => Refused::Closed,
            })
    }

    /// Queues `message`, waiting for room in frames and bytes; false once the writer is gone.
    async fn send(&self, message: Message) -> bool {
        let charge = self.budget.charge(size_of_message(&message)).await;
        self.tx
            .send(Queued {
                message,
                _charge: charge,
            })
            .await
            .is_ok()
    }
}

/// The bytes a queued message holds.
fn size_of_message(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(data) | Message::Ping(data) | Message::Pong(data) => data.len(),
        Message::Close(frame) => frame.as_ref().map_or(0, |f| f.reason.len()),
    }
}

/// The state of one connection as the reader sees it.
struct Session {
    state: AppState,
    ctx: RequestContext,
    limits: WsLimits,
    outbox: Outbox,
    closer: Closer,
    subs: HashMap<String, Sub>,
    /// The publishes in flight, each resolving to its answer and the size of its frame (at
    /// most `limits.ws.max_inflight_publishes` of them and
    /// `limits.ws.max_inflight_publish_bytes` of frames).
    publishes: JoinSet<(Vec<ServerFrame>, usize)>,
    /// Bytes of the frames of `publishes`.
    inflight_bytes: usize,
}

/// Serves one upgraded socket until the client leaves or the server closes it.
pub(super) async fn run(
    socket: WebSocket,
    state: AppState,
    ctx: RequestContext,
    limits: WsLimits,
    lifetime: Option<Lifetime>,
    budget: Arc<Budget>,
) {
    state.metrics.ws_connections.inc();
    let (sink, mut incoming) = socket.split();
    let (tx, queued) = mpsc::channel(limits.queue);
    let outbox = Outbox { tx, budget };
    let mut reloads = state.reloads.subscribe();
    reloads.mark_unchanged();
    let mut expires = state.core.credentials_expire_at(&ctx);
    let (close_tx, mut closing) = watch::channel(None);
    let closer = Closer {
        tx: close_tx,
        metrics: state.metrics.clone(),
    };
    let writer = tokio::spawn(write(sink, queued, closing.clone()));
    let (mut stop, _done) = match lifetime {
        Some(Lifetime { stop, done }) => (Some(stop), Some(done)),
        None => (None, None),
    };
    let mut ping = tokio::time::interval(Duration::from_millis(limits.ping_interval_ms));
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    let mut missed = 0u32;
    let mut session = Session {
        state: state.clone(),
        ctx,
        limits,
        outbox,
        closer: closer.clone(),
        subs: HashMap::new(),
        publishes: JoinSet::new(),
        inflight_bytes: 0,
    };
    let max_inflight = session.limits.max_inflight_publishes.max(1);
    let mut stash: Stash = None;
    let max_inflight_bytes = session.limits.max_inflight_publish_bytes;
    loop {
        let reading = session.publishes.len() < max_inflight
            && (session.inflight_bytes < max_inflight_bytes || session.publishes.is_empty());
        tokio::select! {
            _ = closing.changed() => break,
            () = sleep_until(expires) => {
                expires = session.expired(expires);
            }
            changed = reloads.changed() => {
                if changed.is_ok() {
                    expires = session.recheck("a reload revoked the credentials");
                } else {
                    // The state is gone (shutting down): no more reloads to follow.
                    reloads = watch::channel(0).1;
                }
            }
            () = stopped(stop.as_mut()) => {
                closer.close(close::GOING_AWAY, "shutdown", "the server is shutting down".into());
            }
            _ = ping.tick() => {
                if missed >= session.limits.max_missed_pongs {
                    closer.close(
                        close::KEEPALIVE,
                        "keepalive",
                        format!("{missed} pings went unanswered"),
                    );
                } else {
                    missed += 1;
                    session.offer(Message::Ping(bytes::Bytes::from_static(b"ace")));
                }
            }
            Some(done) = session.publishes.join_next(), if !session.publishes.is_empty() => {
                session.published(done);
            }
            // At the limit the reader stops here: the client's frames wait in TCP (backpressure).
            frame = next_message(&mut stash, &mut incoming), if reading => match frame {
                Some(Ok(Message::Text(text))) => {
                    session.handle(text.as_str(), &mut incoming, &mut stash).await;
                }
                Some(Ok(Message::Binary(_))) => session.answer(&ServerFrame::error(
                    None,
                    ErrorBody::new(
                        ErrorCode::InvalidJson,
                        "binary messages are not part of the protocol: send one JSON frame per text message",
                    ),
                )),
                Some(Ok(Message::Pong(_))) => missed = 0,
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(err)) => match read_failure(&err) {
                    Some(ReadFailure::TooBig) => closer.close(
                        close::TOO_BIG,
                        "too_big",
                        format!(
                            "message larger than limits.ws.max_message_bytes ({} bytes)",
                            session.limits.max_message_bytes
                        ),
                    ),
                    Some(ReadFailure::Protocol(reason)) => closer.close(
                        close::PROTOCOL_ERROR,
                        "protocol_error",
                        format!("protocol error: {reason}"),
                    ),
                    Some(ReadFailure::Utf8(reason)) => closer.close(
                        close::INVALID_DATA,
                        "invalid_utf8",
                        format!("a text message is not valid UTF-8: {reason}"),
                    ),
                    None => {
                        tracing::debug!(error = %err, "WebSocket read failed");
                        break;
                    }
                },
            },
        }
    }
    // Publishes still in flight finish (their answers go out if the writer still runs) rather
    // than being cut off halfway through the core.
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(done) = session.publishes.join_next().await {
            session.published(done);
        }
    })
    .await;
    drop(session);
    if closing.borrow().is_some() {
        // The closing handshake: read (and drop) what the client still sends until its close
        // reply, so the socket is not torn down under a client that is still writing.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(message)) = incoming.next().await {
                if let Message::Close(_) = message {
                    break;
                }
            }
        })
        .await;
    }
    drop(closer);
    if tokio::time::timeout(CLOSE_GRACE + Duration::from_secs(1), writer)
        .await
        .is_err()
    {
        tracing::debug!("WebSocket writer did not finish in time");
    }
    state.metrics.ws_connections.dec();
}

/// The next message: the one a coalescing publish left in `stash`, else the socket's next.
async fn next_message(
    stash: &mut Stash,
    incoming: &mut Incoming,
) -> Option<Result<Message, axum::Error>> {
    match stash.take() {
        Some(message) => message,
        None => incoming.next().await,
    }
}

/// Completes when the server starts shutting down (never without a lifetime).
async fn stopped(stop: Option<&mut watch::Receiver<bool>>) {
    match stop {
        Some(stop) => {
            if stop.wait_for(|stopping| *stopping).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

/// Why a read failed, when it is the client's fault and has its own close code.
enum ReadFailure {
    /// The message or frame passed the configured size (1009).
    TooBig,
    /// The client broke the protocol (1002), with the library's reason.
    Protocol(String),
    /// A text message is not UTF-8 (1007).
    Utf8(String),
}

/// The client's fault behind a failed read, found among the error's causes (the WebSocket
/// library's error travels inside axum's).
fn read_failure(err: &axum::Error) -> Option<ReadFailure> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        match current.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(_)) => return Some(ReadFailure::TooBig),
            Some(tungstenite::Error::Protocol(protocol)) => {
                return Some(ReadFailure::Protocol(protocol.to_string()));
            }
            Some(tungstenite::Error::Utf8(reason)) => {
                return Some(ReadFailure::Utf8(reason.clone()));
            }
            _ => {}
        }
        source = current.source();
    }
    None
}

/// Seconds since the Unix epoch, as `exp` counts them.
fn unix_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Completes when the clock reaches `exp` (seconds since the epoch; never without one).
async fn sleep_until(exp: Option<u64>) {
    match exp {
        Some(exp) => {
            let left = Duration::from_secs(exp).saturating_sub(unix_now());
            tokio::time::sleep(left).await;
        }
        None => std::future::pending().await,
    }
}

/// At most this many queued frames are written between two flushes of the socket.
const WRITE_BATCH: usize = 64;

/// The writer: drains the queue into the socket; once a close is decided it sends the close
/// frame ahead of whatever is still queued and stops.
///
/// Frames already queued are written together: each is fed to the socket's buffer and the
/// buffer is flushed once for up to [`WRITE_BATCH`] of them, so a busy connection costs one
/// `send(2)` per batch rather than one per frame. An idle connection's lone frame is flushed
/// at once — batching never waits for more frames to come.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut queued: mpsc::Receiver<Queued>,
    mut closing: watch::Receiver<Option<(u16, String)>>,
) {
    let mut charges = Vec::with_capacity(WRITE_BATCH);
    loop {
        let next = tokio::select! {
            biased;
            _ = closing.changed() => None,
            next = queued.recv() => next,
        };
        let Some(first) = next else {
            break;
        };
        // Each charge is given back once its frame is written (or the write is abandoned).
        let written = tokio::select! {
            written = write_batch(&mut sink, &mut queued, first, &mut charges) => Some(written),
            _ = closing.changed() => None,
        };
        // A closing connection gives its frames' bytes back before the close handshake, which
        // may wait for a client that does not read.
        charges.clear();
        match written {
            Some(Ok(())) => {}
            Some(Err(_)) => return,
            None => break,
        }
    }
    let frame = closing.borrow().clone().map(|(code, reason)| CloseFrame {
        code,
        reason: reason.into(),
    });
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        let _ = sink.send(Message::Close(frame)).await;
        let _ = sink.close().await;
    })
    .await;
}

/// Writes `first` and whatever else is already queued (up to [`WRITE_BATCH`] frames), then
/// flushes once; the frames' charges are kept in `charges` until the flush is done.
async fn write_batch(
    sink: &mut SplitSink<WebSocket, Message>,
    queued: &mut mpsc::Receiver<Queued>,
    first: Queued,
    charges: &mut Vec<Charge>,
) -> Result<(), axum::Error> {
    let mut next = Some(first);
    while let Some(Queued {
        message,
        _charge: charge,
    }) = next.take()
    {
        sink.feed(message).await?;
        charges.push(charge);
        if charges.len() < WRITE_BATCH {
            next = queued.try_recv().ok();
        }
    }
    sink.flush().await
}

impl Session {
    /// Queues a frame for the client; a full queue (frames or bytes) means the client does not
    /// read: 4008.
    fn offer(&self, message: Message) {
        if let Err(Refused::Full(reason)) = self.outbox.try_send(message, self.limits.queue) {
            slow(&self.closer, reason);
        }
    }

    /// The credentials' `exp` came: the connection is closed with 4001 (the verifier's leeway
    /// is for a new request whose issuer's clock is a little ahead, not for keeping a connection
    /// open past the token's end). Returns the next expiry when the clock has not reached it
    /// yet (a timer that fired early).
    fn expired(&self, exp: Option<u64>) -> Option<u64> {
        let exp = exp?;
        if unix_now() < Duration::from_secs(exp) {
            return Some(exp);
        }
        self.closer.close(
            close::CREDENTIALS,
            "credentials",
            format!("the bearer token expired (exp {exp}): connect again with a new token"),
        );
        None
    }

    /// Authenticates the connection's credentials again (after a reload): closes it with 4001
    /// when they fail, else returns when they lapse.
    fn recheck(&self, why: &str) -> Option<u64> {
        match self.state.core.authenticate(&self.ctx) {
            Ok(_) => self.state.core.credentials_expire_at(&self.ctx),
            Err(err) => {
                let reason = err.body().error.message;
                self.closer.close(
                    close::CREDENTIALS,
                    "credentials",
                    format!("{why}: {reason}"),
                );
                None
            }
        }
    }

    /// Queues an answer, counting error codes like the HTTP adapter does.
    fn answer(&self, frame: &ServerFrame) {
        if let ServerFrame::Error { error, .. } = frame {
            self.state
                .metrics
                .errors
                .with_label_values(&[error.code.as_str()])
                .inc();
        }
        self.offer(text(frame));
    }

    /// Answers a publish that completed (a task that panicked is answered without an `id`).
    fn published(&mut self, done: Result<(Vec<ServerFrame>, usize), tokio::task::JoinError>) {
        let answers = match done {
            Ok((answers, bytes)) => {
                self.inflight_bytes = self.inflight_bytes.saturating_sub(bytes);
                answers
            }
            Err(err) => {
                tracing::error!(error = %err, "a WebSocket publish task failed");
                // The task's frame size is lost with it: recount from what is still in flight.
                if self.publishes.is_empty() {
                    self.inflight_bytes = 0;
                }
                vec![ServerFrame::error(
                    None,
                    ErrorBody::new(ErrorCode::Internal, ErrorCode::Internal.meaning()),
                )]
            }
        };
        for answer in &answers {
            self.answer(answer);
        }
    }

    /// Parses one client frame, applies it, and answers `ok` or `error`; a publish (or a
    /// batch of them) is started on the connection's task set and answered when it completes.
    /// A `publish` frame takes along the `publish` frames already read off the socket behind it
    /// (see [`Session::coalesce`]); the first other message found there is left in `stash` for
    /// the reader loop.
    async fn handle(&mut self, raw: &str, incoming: &mut Incoming, stash: &mut Stash) {
        let answer = match parse(raw, self.state.limits.max_batch_messages) {
            Err((id, body)) => ServerFrame::error(id, body),
            Ok(Parsed::Frame(ClientFrame::Publish(Publish { id, envelope }))) => {
                let first = (id, *envelope, raw.len());
                let mut publishes = self.coalesce(first, incoming, stash);
                let bytes = publishes.iter().map(|p| p.2).sum();
                self.inflight_bytes += bytes;
                let (state, ctx) = (self.state.clone(), self.ctx.clone());
                if publishes.len() == 1 {
                    let (id, envelope, _) = publishes.remove(0);
                    self.publishes.spawn(async move {
                        let answer = match state.publish(&ctx, envelope).await {
                            Ok(accepted) => ServerFrame::Ok {
                                id,
                                result: Some(json!(accepted)),
                            },
                            // Held for approval: answered like the HTTP 202, not as an error.
                            Err(CoreError::PendingApproval {
                                id: held,
                                approval_id,
                            }) => ServerFrame::Ok {
                                id,
                                result: Some(json!(Pending::new(held, approval_id))),
                            },
                            Err(err) => ServerFrame::error(id, core_body(&err)),
                        };
                        (vec![answer], bytes)
                    });
                } else {
                    self.publishes.spawn(async move {
                        let (ids, envelopes): (Vec<_>, Vec<_>) =
                            publishes.into_iter().map(|(id, e, _)| (id, Ok(e))).unzip();
                        let answers =
                            match state.publish_parsed(&ctx, ctx.transport, envelopes).await {
                                Ok(results) => ids
                                    .into_iter()
                                    .zip(results)
                                    .map(|(id, result)| publish_answer(id, result))
                                    .collect(),
                                Err(err) => {
                                    let body = core_body(&err);
                                    ids.into_iter()
                                        .map(|id| ServerFrame::error(id, body.clone()))
                                        .collect()
                                }
                            };
                        (answers, bytes)
                    });
                }
                return;
            }
            Ok(Parsed::Batch { id, envelopes }) => {
                let (state, ctx) = (self.state.clone(), self.ctx.clone());
                let bytes = raw.len();
                self.inflight_bytes += bytes;
                self.publishes.spawn(async move {
                    let answer = match state.publish_parsed(&ctx, ctx.transport, envelopes).await {
                        Ok(results) => ServerFrame::Ok {
                            id,
                            result: Some(json!(batch_answer(results))),
                        },
                        Err(err) => ServerFrame::error(id, core_body(&err)),
                    };
                    (vec![answer], bytes)
                });
                return;
            }
            Ok(Parsed::Frame(frame)) => {
                let id = frame.id().map(str::to_owned);
                match self.apply(frame).await {
                    Ok(result) => ServerFrame::Ok { id, result },
                    Err(body) => ServerFrame::error(id, body),
                }
            }
        };
        self.answer(&answer);
    }

    /// `first` and the `publish` frames that are already read off the socket behind it (the
    /// client pipelined them), up to `limits.max_batch_messages` envelopes and within the
    /// connection's in-flight byte bound: they go through the core as one batch — one append,
    /// one group commit, one ledger write — and each is still answered by its own `ok` or
    /// `error` frame. Nothing waits for more: what is not there yet is not taken. The first
    /// other message read (another frame type, a malformed frame, a ping, a close) goes to
    /// `stash`, so the reader handles it next, in its order.
    fn coalesce(
        &self,
        first: (Option<String>, Envelope, usize),
        incoming: &mut Incoming,
        stash: &mut Stash,
    ) -> Vec<(Option<String>, Envelope, usize)> {
        let max = self.state.limits.max_batch_messages.max(1);
        let mut bytes = self.inflight_bytes + first.2;
        let mut publishes = vec![first];
        while publishes.len() < max && bytes < self.limits.max_inflight_publish_bytes {
            let Some(next) = incoming.next().now_or_never() else {
                break;
            };
            if let Some(Ok(Message::Text(text))) = &next
                && let Ok(Parsed::Frame(ClientFrame::Publish(Publish { id, envelope }))) =
                    parse(text.as_str(), max)
            {
                bytes += text.len();
                publishes.push((id, *envelope, text.len()));
                continue;
            }
            *stash = Some(next);
            break;
        }
        publishes
    }

    async fn apply(&mut self, frame: ClientFrame) -> Result<Option<Value>, ErrorBody> {
        match frame {
            ClientFrame::Subscribe(subscribe) => self.subscribe(subscribe).await.map(|()| None),
            ClientFrame::Unsubscribe(unsubscribe) => match self.subs.remove(&unsubscribe.sid) {
                Some(_) => Ok(None),
                None => Err(no_such_sid(&unsubscribe.sid)),
            },
            ClientFrame::Publish(Publish { envelope, .. }) => {
                // `handle` spawns publishes; this path answers one in place all the same.
                match self.state.publish(&self.ctx, *envelope).await {
                    Ok(accepted) => Ok(Some(json!(accepted))),
                    Err(CoreError::PendingApproval { id, approval_id }) => {
                        Ok(Some(json!(Pending::new(id, approval_id))))
                    }
                    Err(err) => Err(core_body(&err)),
                }
            }
            ClientFrame::PublishBatch(batch) => {
                let envelopes = batch.envelopes.into_iter().map(Ok).collect();
                match self
                    .state
                    .publish_parsed(&self.ctx, self.ctx.transport, envelopes)
                    .await
                {
                    Ok(results) => Ok(Some(json!(batch_answer(results)))),
                    Err(err) => Err(core_body(&err)),
                }
            }
            ClientFrame::Ack(ack) => self.acknowledge(&ack, AckKind::Ack).await,
            ClientFrame::Nak(nak) => {
                let kind = AckKind::Nak(nak.delay_ms.map(Duration::from_millis));
                self.acknowledge(&nak, kind).await
            }
            ClientFrame::Term(term) => {
                let reason = term
                    .reason
                    .clone()
                    .unwrap_or_else(|| "terminated".to_owned());
                self.acknowledge(&term, AckKind::Term(reason)).await
            }
        }
    }

    async fn subscribe(&mut self, subscribe: Subscribe) -> Result<(), ErrorBody> {
        let sid = subscribe.sid.clone();
        if sid.is_empty() {
            return Err(invalid("`sid` must not be empty".to_owned()));
        }
        if self.subs.contains_key(&sid) {
            return Err(ErrorBody::with_details(
                ErrorCode::Conflict,
                format!("subscription `{sid}` already exists on this connection"),
                json!({ "sid": sid }),
            ));
        }
        let max = self.limits.max_subscriptions;
        if self.subs.len() >= max {
            return Err(ErrorBody::with_details(
                ErrorCode::Backpressure,
                format!("this connection holds {max} subscriptions (limits.ws.max_subscriptions)"),
                json!({ "limit": max }),
            ));
        }
        let target = subscribe.target().map_err(invalid)?;
        let (outbox, closer) = (self.outbox.clone(), self.closer.clone());
        let max_body = self.state.limits.max_body_bytes;
        let sub = match target {
            SubscribeTarget::Live { pattern, queue } => {
                let live = self
                    .state
                    .core
                    .subscribe(&self.ctx, pattern, queue)
                    .await
                    .map_err(|err| core_body(&err))?;
                let queue = self.limits.queue;
                Sub {
                    task: tokio::spawn(forward_live(sid.clone(), live, outbox, closer, queue)),
                    consumer: None,
                }
            }
            SubscribeTarget::Consumer { stream, consumer } => {
                self.state
                    .core
                    .consumer_info(&self.ctx, stream, consumer)
                    .await
                    .map_err(|err| core_body(&err))?;
                let pusher = Pusher {
                    sid: sid.clone(),
                    state: self.state.clone(),
                    ctx: self.ctx.clone(),
                    stream: stream.to_owned(),
                    consumer: consumer.to_owned(),
                    outbox,
                    max_body,
                };
                Sub {
                    task: tokio::spawn(pusher.run()),
                    consumer: Some((stream.to_owned(), consumer.to_owned())),
                }
            }
        };
        self.subs.insert(sid, sub);
        Ok(())
    }

    async fn acknowledge(
        &self,
        frame: &Acknowledge,
        kind: AckKind,
    ) -> Result<Option<Value>, ErrorBody> {
        let sub = self
            .subs
            .get(&frame.sid)
            .ok_or_else(|| no_such_sid(&frame.sid))?;
        let Some((stream, consumer)) = &sub.consumer else {
            return Err(invalid(format!(
                "`sid` `{}` is a live subscription: only consumer deliveries are acknowledged",
                frame.sid
            )));
        };
        let mut outcome = self
            .state
            .core
            .acknowledge(&self.ctx, stream, consumer, &[frame.seq], &kind)
            .await
            .map_err(|err| core_body(&err))?;
        match outcome.failed.pop() {
            Some((_, err)) => Err(core_body(&err)),
            None => Ok(None),
        }
    }
}

/// Forwards a live subscription into the queue; a full queue (frames or bytes) closes the
/// connection (4008).
async fn forward_live(
    sid: String,
    mut live: Box<dyn LiveSubscription>,
    outbox: Outbox,
    closer: Closer,
    queue: usize,
) {
    while let Some(envelope) = live.next().await {
        // Serialized from the shared envelope: no copy of it per subscriber.
        let frame = text_of(&LiveMessage {
            kind: "message",
            sid: &sid,
            envelope: &envelope,
        });
        match outbox.try_send(frame, queue) {
            Ok(()) => {}
            Err(Refused::Full(reason)) => return slow(&closer, reason),
            Err(Refused::Closed) => return,
        }
    }
    // The hub cut the subscription off: it fell behind even before the queue.
    slow(
        &closer,
        "slow consumer: the subscription fell behind the bus's per-subscriber buffer".to_owned(),
    );
}

/// A live `message` frame over a borrowed envelope: the same JSON as
/// `ServerFrame::Message` without `stream`, `seq` and `delivery`.
#[derive(serde::Serialize)]
struct LiveMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sid: &'a str,
    envelope: &'a Envelope,
}

fn slow(closer: &Closer, reason: String) {
    closer.close(close::SLOW_CONSUMER, "slow_consumer", reason);
}

/// Pushes a durable consumer's deliveries, waiting for room in the queue before each fetch.
struct Pusher {
    sid: String,
    state: AppState,
    ctx: RequestContext,
    stream: String,
    consumer: String,
    outbox: Outbox,
    /// The largest envelope a delivery can carry (`limits.max_body_bytes`): fetches ask for no
    /// more deliveries than the byte room holds of those.
    max_body: usize,
}

impl Pusher {
    async fn run(self) {
        loop {
            let bytes = self.outbox.budget.room().await;
            let Ok(room) = self.outbox.tx.reserve().await else {
                return;
            };
            let batch = (self.outbox.tx.capacity() + 1)
                .min(PUSH_BATCH)
                .min((bytes / self.max_body.max(1)).max(1));
            let fetched = self
                .state
                .core
                .fetch(&self.ctx, &self.stream, &self.consumer, batch, PUSH_WAIT)
                .await;
            let delivered = match fetched {
                Ok(delivered) => delivered,
                Err(err) => {
                    // The stream or consumer went away: say so once and stop pushing.
                    drop(room);
                    let _ = self
                        .outbox
                        .send(text(&ServerFrame::error(None, core_body(&err))))
                        .await;
                    return;
                }
            };
            drop(room);
            for delivery in delivered {
                if !self.outbox.send(text(&self.frame(delivery))).await {
                    return;
                }
            }
        }
    }

    fn frame(&self, delivered: Delivered) -> ServerFrame {
        let place = (delivered.stream, delivered.seq, delivered.delivery_count);
        message(&self.sid, delivered.envelope, Some(place))
    }
}

/// A `message` frame; `delivery` is `(stream, seq, delivery count)` for consumer pushes.
fn message(sid: &str, envelope: Envelope, delivery: Option<(String, u64, u32)>) -> ServerFrame {
    let (stream, seq, delivery) = match delivery {
        Some((stream, seq, count)) => (Some(stream), Some(seq), Some(count)),
        None => (None, None, None),
    };
    ServerFrame::Message(MessageFrame {
        sid: sid.to_owned(),
        envelope: Box::new(envelope),
        stream,
        seq,
        delivery,
    })
}

fn text(frame: &ServerFrame) -> Message {
    text_of(frame)
}

fn text_of(frame: &impl serde::Serialize) -> Message {
    // A frame of serde data always serializes; the fallback keeps the protocol's shape.
    let text = serde_json::to_string(frame).unwrap_or_else(|err| {
        tracing::error!(error = %err, "serializing a WebSocket frame");
        r#"{"type":"error","error":{"code":"INTERNAL","message":"frame serialization failed","details":null}}"#.to_owned()
    });
    Message::Text(text.into())
}

/// The reading half of the socket.
type Incoming = futures::stream::SplitStream<WebSocket>;

/// A message read off the socket ahead of its turn, as `incoming.next()` gave it.
type Stash = Option<Option<Result<Message, axum::Error>>>;

/// The answer to one `publish` of a coalesced batch: what a lone publish would have answered
/// (`ok` with the publish answer, `ok` with the approval holding it, or `error`).
fn publish_answer(id: Option<String>, result: Result<Accepted, ErrorBody>) -> ServerFrame {
    match result {
        Ok(accepted) => ServerFrame::Ok {
            id,
            result: Some(json!(accepted)),
        },
        Err(body) => match held(&body) {
            Some(pending) => ServerFrame::Ok {
                id,
                result: Some(json!(pending)),
            },
            None => ServerFrame::error(id, body),
        },
    }
}

/// The fields every client frame is routed by, borrowed from the frame's text: the envelopes
/// of `publish` and `publish_batch` are decoded straight from their text, once, never through a
/// `serde_json::Value` tree.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", default, borrow)]
    kind: Option<&'a RawValue>,
    #[serde(default, borrow)]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    envelope: Option<&'a RawValue>,
    #[serde(default, borrow)]
    envelopes: Option<&'a RawValue>,
}

/// A client frame as the reader hands it on: a `publish_batch` keeps each envelope's decoding
/// result, so one malformed envelope refuses only its own place in the batch.
enum Parsed {
    Frame(ClientFrame),
    Batch {
        id: Option<String>,
        envelopes: Vec<Result<Envelope, ErrorBody>>,
    },
}

/// A client frame, or the error answer (with the frame's `id` when it could be read).
fn parse(raw: &str, max_batch: usize) -> Result<Parsed, (Option<String>, ErrorBody)> {
    let head: Head<'_> = serde_json::from_str(raw).map_err(|err| {
        (
            None,
            ApiError::json(&err, "frame", ErrorCode::InvalidJson).body(),
        )
    })?;
    let id = head
        .id
        .and_then(|id| serde_json::from_str::<String>(id.get()).ok());
    let fail = |body| (id.clone(), body);
    let kind = match head
        .kind
        .map(|kind| serde_json::from_str::<&str>(kind.get()))
    {
        Some(Ok(kind)) => kind,
        Some(Err(_)) => return Err(fail(invalid("`type` must be a string".to_owned()))),
        None => {
            return Err(fail(invalid(format!(
                "`type` is missing; one of {CLIENT_TYPES}"
            ))));
        }
    };
    match kind {
        "publish" => {
            let envelope = head
                .envelope
                .ok_or_else(|| fail(invalid("`envelope` is missing".to_owned())))?;
            let envelope = decode_envelope(envelope).map_err(|message| {
                fail(ErrorBody::new(
                    ErrorCode::InvalidEnvelope,
                    format!("`envelope`: {message}"),
                ))
            })?;
            Ok(Parsed::Frame(ClientFrame::Publish(Publish {
                id,
                envelope: Box::new(envelope),
            })))
        }
        "publish_batch" => {
            let envelopes = head
                .envelopes
                .ok_or_else(|| fail(invalid("`envelopes` is missing".to_owned())))?;
            let items: Vec<&RawValue> = serde_json::from_str(envelopes.get())
                .map_err(|err| fail(invalid(format!("`envelopes` must be an array: {err}"))))?;
            if items.is_empty() {
                return Err(fail(invalid("`envelopes` holds no envelope".to_owned())));
            }
            if items.len() > max_batch {
                return Err(fail(
                    ApiError::BatchTooLarge {
                        count: items.len(),
                        max: max_batch,
                    }
                    .body(),
                ));
            }
            let envelopes = items
                .into_iter()
                .enumerate()
                .map(|(index, item)| {
                    decode_envelope(item).map_err(|message| batch_refusal(index, &message))
                })
                .collect();
            Ok(Parsed::Batch { id, envelopes })
        }
        kind if CLIENT_TYPES.split(", ").any(|known| known == kind) => {
            serde_json::from_str::<ClientFrame>(raw)
                .map(Parsed::Frame)
                .map_err(|err| {
                    fail(invalid(format!(
                        "`{kind}` frame: {}",
                        without_position(&err)
                    )))
                })
        }
        kind => Err(fail(ErrorBody::with_details(
            ErrorCode::InvalidJson,
            format!("unknown frame type `{kind}`; one of {CLIENT_TYPES}"),
            json!({ "type": kind }),
        ))),
    }
}

/// One envelope of a frame, decoded from its text.
fn decode_envelope(raw: &RawValue) -> Result<Envelope, String> {
    serde_json::from_str(raw.get()).map_err(|err| without_position(&err))
}

/// serde's message without the line and column it adds when decoding text: positions inside
/// one field of a frame mean nothing to the client, which sent the frame as one line.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) if err.line() > 0 => text[..at].to_owned(),
        _ => text,
    }
}

/// The refusal of the batch item at `index` that did not decode.
fn batch_refusal(index: usize, message: &str) -> ErrorBody {
    ErrorBody::with_details(
        ErrorCode::InvalidEnvelope,
        format!("envelopes[{index}]: {message}"),
        json!({ "index": index }),
    )
}

fn invalid(message: String) -> ErrorBody {
    ErrorBody::new(ErrorCode::InvalidJson, message)
}

fn no_such_sid(sid: &str) -> ErrorBody {
    ErrorBody::with_details(
        ErrorCode::NotFound,
        format!("no subscription `{sid}` on this connection"),
        json!({ "sid": sid }),
    )
}

/// The body of a core refusal; failures on our side are logged here.
fn core_body(err: &CoreError) -> ErrorBody {
    if err.is_internal() {
        tracing::error!(error = %err, "WebSocket operation failed on our side");
    }
    err.body()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Parsed, (Option<String>, ErrorBody)> {
        super::parse(raw, 4)
    }

    fn code(raw: &str) -> (Option<String>, ErrorCode) {
        let Err((id, body)) = parse(raw) else {
            panic!("{raw} parsed");
        };
        (id, body.error.code)
    }

    #[test]
    fn given_malformed_or_unknown_frames_when_parsed_then_each_gets_its_code_and_id() {
        assert_eq!(code("{nope"), (None, ErrorCode::InvalidJson));
        assert_eq!(
            code(r#"{"type":"dance","id":"7"}"#),
            (Some("7".into()), ErrorCode::InvalidJson)
        );
        assert_eq!(
            code(r#"{"type":"publish","id":"8","envelope":{"subject":1}}"#),
            (Some("8".into()), ErrorCode::InvalidEnvelope)
        );
        assert_eq!(
            code(r#"{"type":"ack","id":"9","sid":"s"}"#),
            (Some("9".into()), ErrorCode::InvalidJson)
        );
        let Err((_, body)) = parse(r#"{"id":"1"}"#) else {
            panic!("a frame without a type parsed");
        };
        assert!(body.error.message.contains("`type`"), "{body:?}");
    }

    #[test]
    fn given_a_well_formed_frame_when_parsed_then_it_is_the_frame() {
        let Ok(Parsed::Frame(frame)) = parse(r#"{"type":"unsubscribe","id":"3","sid":"s1"}"#)
        else {
            panic!("a well-formed frame was refused");
        };
        assert_eq!(frame.id(), Some("3"));
    }

    fn envelope_text() -> String {
        let envelope = Envelope::builder(ace_envelope::Kind::Event, "ace.comms.a2a.x.evt.v1")
            .payload_json(json!({"n": 1}))
            .build()
            .unwrap();
        serde_json::to_string(&envelope).unwrap()
    }

    #[test]
    fn given_a_publish_frame_when_parsed_then_the_envelope_is_decoded_from_its_text() {
        let env = envelope_text();
        let Ok(Parsed::Frame(ClientFrame::Publish(publish))) = parse(&format!(
            r#"{{"type":"publish","id":"p","envelope":{env}}}"#
        )) else {
            panic!("a publish frame was refused");
        };
        assert_eq!(publish.id.as_deref(), Some("p"));
        assert_eq!(serde_json::to_string(&publish.envelope).unwrap(), env);
        let (id, code) = code(r#"{"type":"publish","id":"q"}"#);
        assert_eq!((id.as_deref(), code), (Some("q"), ErrorCode::InvalidJson));
    }

    #[test]
    fn given_publish_batch_frames_when_parsed_then_each_envelope_keeps_its_own_result() {
        let env = envelope_text();
        let raw = format!(
            r#"{{"type":"publish_batch","id":"b","envelopes":[{env},{{"subject":1}},{env}]}}"#
        );
        let Ok(Parsed::Batch { id, envelopes }) = parse(&raw) else {
            panic!("a batch was refused");
        };
        assert_eq!(id.as_deref(), Some("b"));
        assert_eq!(envelopes.len(), 3);
        assert!(envelopes[0].is_ok() && envelopes[2].is_ok());
        let refused = envelopes[1].as_ref().unwrap_err();
        assert_eq!(refused.error.code, ErrorCode::InvalidEnvelope);
        assert!(
            refused.error.message.starts_with("envelopes[1]: "),
            "{refused:?}"
        );
        assert_eq!(refused.error.details["index"], 1);
    }

    #[test]
    fn given_bad_publish_batch_frames_when_parsed_then_the_frame_is_refused_with_its_id() {
        let env = envelope_text();
        for (raw, expected) in [
            (
                r#"{"type":"publish_batch","id":"1"}"#.to_owned(),
                ErrorCode::InvalidJson,
            ),
            (
                r#"{"type":"publish_batch","id":"1","envelopes":{}}"#.to_owned(),
                ErrorCode::InvalidJson,
            ),
            (
                r#"{"type":"publish_batch","id":"1","envelopes":[]}"#.to_owned(),
                ErrorCode::InvalidJson,
            ),
            (
                format!(
                    r#"{{"type":"publish_batch","id":"1","envelopes":[{env},{env},{env},{env},{env}]}}"#
                ),
                ErrorCode::PayloadTooLarge,
            ),
        ] {
            assert_eq!(code(&raw), (Some("1".to_owned()), expected), "{raw}");
        }
    }

    #[test]
    fn given_a_non_string_type_or_id_when_parsed_then_the_type_is_refused_and_the_id_dropped() {
        assert_eq!(
            code(r#"{"type":7,"id":"x"}"#),
            (Some("x".to_owned()), ErrorCode::InvalidJson)
        );
        assert_eq!(
            code(r#"{"type":"dance","id":7}"#),
            (None, ErrorCode::InvalidJson)
        );
    }
}
