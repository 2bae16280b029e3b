//! Starting, serving and stopping: [`App::open`] builds the parts from a [`Config`] (engine,
//! contracts, core, metrics, default streams); [`App::serve`] runs the accept loop on a listener
//! the caller bound; [`run`] does both and closes the engine.
//!
//! Connections are served by hyper directly (not `axum::serve`) because the limits need it: a
//! semaphore caps open connections, a census caps them per client address (one past it is
//! answered 429 and closed), hyper's header read timeout stops slow-header clients, an idle
//! watchdog closes quiet connections, and every request body must arrive whole within one
//! deadline from its headers (`limits.body_timeout_ms`, not a timeout per chunk; 408 past it).
//!
//! Slow clients cannot make others wait: when every slot is taken, the accept loop closes an
//! idle connection — one with no request in progress (TLS handshake, headers still arriving,
//! or keep-alive between requests) — of the address that holds the most connections, and the
//! new connection takes its slot (counted in `ace_comms_http_evictions_total`). Only when every
//! open connection is serving a request does a new one wait for a slot. The handshake, the
//! header read and every request run on the connection's own task, never on the accept loop. Shutdown follows one pattern: a watch notice tells
//! every connection to finish its in-flight request and close, and completion is known when the
//! last connection task drops its handle of an mpsc channel.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ace_bus::{Bus, Durability, EmbeddedBus, EmbeddedConfig, HealthChange, NatsBus, OsDurability};
use ace_contracts::Registry;
use ace_core::{
    ApprovalStore, Core, CoreError, PostgresApprovalStore, PostgresSessionStore, RedbApprovalStore,
    RedbContractStore, RedbSessionStore, RequestContext, SessionStore,
};
use ace_envelope::{Clock, ErrorBody, ErrorCode, SystemClock};
use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc, watch};
use tower::ServiceExt;

use crate::census::Census;
use crate::config::{Config, Engine, LimitsConfig, SessionsStoreKind};
use crate::error::ServerError;
use crate::governance::Governance;
use crate::http::request::Deadline;
use crate::http::{AppState, router};
use crate::metrics::Metrics;
use crate::tls::{PeerCertificate, Tls};
use crate::ws::Lifetime;

/// What the engine announces about streams that stop taking writes.
type HealthWatch = tokio::sync::broadcast::Receiver<HealthChange>;

/// A started server: its state (for the router) and the limits of its connections.
#[derive(Debug, Clone)]
pub struct App {
    state: AppState,
    /// The streams that stop taking writes, until `serve` records them in the ledger.
    damage: Arc<std::sync::Mutex<Option<HealthWatch>>>,
    limits: LimitsConfig,
    /// TLS of the listener (`tls`); `None` serves plain TCP.
    tls: Option<Tls>,
    agent_sweep_ms: u64,
    ledger_checkpoint_ms: u64,
    approval_sweep_ms: u64,
    /// The approvals' decisions for the ML kernel, subscribed at open, handed over by `serve`.
    decisions: Arc<std::sync::Mutex<Option<crate::http::mlt::Decisions>>>,
}

/// The session store `state.sessions` names.
async fn open_sessions(config: &Config) -> Result<Arc<dyn SessionStore>, ServerError> {
    let op = "opening the session store";
    Ok(match config.state.sessions {
        SessionsStoreKind::Redb => {
            let store = RedbSessionStore::open(&config.data_dir.join("sessions.redb"));
            Arc::new(store.map_err(|e| core_failed(op, e))?)
        }
        SessionsStoreKind::Postgres => {
            let store = on_state_db(config, op, PostgresSessionStore::connect).await?;
            Arc::new(store.map_err(|e| core_failed(op, e))?)
        }
    })
}

/// The approval store `approvals.store` names.
async fn open_approvals(config: &Config) -> Result<Arc<dyn ApprovalStore>, ServerError> {
    let op = "opening the approvals store";
    Ok(match config.approvals.store {
        SessionsStoreKind::Redb => {
            let store = RedbApprovalStore::open(&config.data_dir.join("approvals.redb"));
            Arc::new(store.map_err(|e| core_failed(op, e))?)
        }
        SessionsStoreKind::Postgres => {
            let store = on_state_db(config, op, PostgresApprovalStore::connect).await?;
            Arc::new(store.map_err(|e| core_failed(op, e))?)
        }
    })
}

fn core_failed(op: &'static str, err: impl Into<CoreError>) -> ServerError {
    ServerError::Core {
        op,
        source: err.into(),
    }
}

/// Runs a store's blocking `connect` to `state.postgres` off the async workers.
async fn on_state_db<T: Send + 'static>(
    config: &Config,
    op: &'static str,
    connect: fn(&str, &str) -> T,
) -> Result<T, ServerError> {
    let (url, schema) = (
        config.state.postgres.url.clone(),
        config.state.postgres.schema.clone(),
    );
    tokio::task::spawn_blocking(move || connect(&url, &schema))
        .await
        .map_err(|e| {
            core_failed(
                op,
                ace_core::StoreError {
                    op: "connect",
                    reason: e.to_string(),
                },
            )
        })
}

/// Connects the NATS JetStream engine of `engine: nats` (`nats.*`).
async fn open_nats(config: &Config, clock: Arc<dyn Clock>) -> Result<NatsBus, ServerError> {
    let mut nats = ace_bus::NatsConfig::new(config.nats.url.clone());
    nats.stream_prefix = config.nats.stream_prefix.clone();
    nats.subject_prefix = config.nats.subject_prefix.clone();
    nats.request_timeout = Duration::from_millis(config.nats.request_timeout_ms);
    nats.clock = clock;
    // As for the embedded engine: a live buffer holds no more than its connection's queue.
    nats.live.subscriber_buffer_bytes = config.limits.ws.max_queued_bytes;
    NatsBus::connect(nats)
        .await
        .map_err(|source| ServerError::Nats {
            url: config.nats.url.clone(),
            source,
        })
}

impl App {
    /// Validates `config`, loads the TLS files and the governance (`auth`, `policy`: keys,
    /// API keys, policies), opens the embedded engine under `data_dir`, loads the contracts,
    /// builds the core and creates the default streams that do not exist yet.
    pub async fn open(config: &Config) -> Result<App, ServerError> {
        App::open_with_clock(config, Arc::new(SystemClock)).await
    }

    /// [`App::open`] with an injected clock (tests move a `ManualClock` to expire presence).
    /// Sessions are kept in `{data_dir}/sessions.redb`.
    pub async fn open_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<App, ServerError> {
        App::open_with(config, clock, Arc::new(OsDurability)).await
    }

    /// [`App::open_with_clock`] with the streams' storage seam injected (tests make a device
    /// fail an fsync or fill up under a running server).
    pub async fn open_with(
        config: &Config,
        clock: Arc<dyn Clock>,
        durability: Arc<dyn Durability>,
    ) -> Result<App, ServerError> {
        config.validate()?;
        let tls = config.tls.as_ref().map(Tls::load).transpose()?;
        let governance = Governance::from_config(config)?;
        // The registered signature keys are read before anything is opened.
        let integrity = config.integrity()?;
        let bus: Arc<dyn Bus> = match config.engine {
            Engine::Embedded => {
                let mut engine = EmbeddedConfig {
                    dedup_max_entries: config.streams.dedup_max_entries,
                    durability,
                    ..EmbeddedConfig::new(&config.data_dir)
                };
                // A live subscription's buffer in the bus holds no more bytes than its
                // connection's queue may (`limits.ws.max_queued_bytes`).
                engine.live.subscriber_buffer_bytes = config.limits.ws.max_queued_bytes;
                let bus = EmbeddedBus::open(engine).map_err(|source| ServerError::Engine {
                    data_dir: config.data_dir.display().to_string(),
                    source,
                })?;
                Arc::new(bus)
            }
            Engine::Nats => Arc::new(open_nats(config, clock.clone()).await?),
        };
        let registry = Registry::embedded().map_err(ServerError::Contracts)?;
        let sessions = open_sessions(config).await?;
        let approvals = open_approvals(config).await?;
        let core = Core::new(
            bus,
            Arc::new(registry),
            clock.clone(),
            governance.hooks.clone(),
            config.limits.core(),
        )
        .with_presence(config.state.presence())
        .with_sessions(sessions, config.state.max_session_bytes)
        .with_approvals(approvals, config.approvals.ttl())
        .with_decided_retention(config.approvals.retain_decided())
        .with_integrity(integrity);
        let core = crate::ledger::attach(config, clock.clone(), core)?;
        // After the ledger: registrations made from now on are recorded.
        let contracts =
            RedbContractStore::open(&config.data_dir.join("contracts.redb")).map_err(|err| {
                ServerError::Core {
                    op: "opening the contract store",
                    source: CoreError::ContractStore(err),
                }
            })?;
        let core = core
            .with_contracts(Arc::new(contracts), config.contracts.requirements()?)
            .map_err(|source| ServerError::Core {
                op: "replaying the registered contracts",
                source,
            })?;
        if config.streams.create_defaults {
            let created = core
                .ensure_streams(&RequestContext::internal(), &config.streams.defaults)
                .await
                .map_err(|source| ServerError::Core {
                    op: "creating the default streams",
                    source,
                })?;
            if !created.is_empty() {
                tracing::info!(streams = ?created, "created default streams");
            }
        }
        crate::ledger::record_start(&core, config, governance.started_files()).await?;
        crate::recovery::record_recovery(&core).await?;
        // Watched from now on, recorded by `serve`: nothing that halts a stream in between is
        // missed.
        let damage = Arc::new(std::sync::Mutex::new(core.watch_stream_health()));
        let metrics = Metrics::new()
            .map_err(ServerError::Metrics)?
            .with_policy(governance.authorizer().cloned())
            .with_ledger(core.ledger().map(|recorder| recorder.ledger().clone()));
        let (mlt, decisions) = crate::http::mlt::open(config, &core, clock.clone()).await?;
        let workflows = crate::workflows::Workflows::open(config, &core, clock.clone()).await?;
        let state = AppState::new(core, metrics, config.limits.clone())
            .with_mlt(mlt)
            .with_workflows(workflows)
            .with_governance(governance)
            .with_ready_strict(config.streams.ready_strict)
            .with_metrics_access(config.auth.metrics)
            .with_cloudevents(config.cloudevents.clone(), clock);
        state.set_ready(true);
        Ok(App {
            state,
            damage,
            limits: config.limits.clone(),
            tls,
            agent_sweep_ms: config.state.agent_sweep_ms,
            ledger_checkpoint_ms: config.ledger.checkpoint_interval_ms,
            approval_sweep_ms: config.approvals.sweep_ms,
            decisions: Arc::new(std::sync::Mutex::new(Some(decisions))),
        })
    }

    /// The shared state (the core, metrics, readiness).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves `listener` until `shutdown` completes, then stops accepting, lets in-flight
    /// requests finish (up to `limits.shutdown_timeout_ms`) and closes the engine.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), ServerError> {
        let routes = router(self.state.clone());
        let sweep = tokio::spawn(sweep_agents(
            self.state.core.clone(),
            Duration::from_millis(self.agent_sweep_ms),
        ));
        let expiry = tokio::spawn(sweep_approvals(
            self.state.core.clone(),
            Duration::from_millis(self.approval_sweep_ms),
        ));
        let ledger_tasks = crate::ledger::spawn_tasks(
            &self.state.core,
            Duration::from_millis(self.ledger_checkpoint_ms),
        );
        let workflow_tasks = self
            .state
            .workflows
            .as_ref()
            .map(crate::workflows::Workflows::spawn)
            .unwrap_or_default();
        let watch = self
            .damage
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let damage =
            watch.map(|w| tokio::spawn(crate::recovery::record_damage(self.state.core.clone(), w)));
        let decisions = self
            .decisions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .map(crate::http::mlt::Decisions::spawn);
        let slots = Arc::new(Semaphore::new(self.limits.max_connections));
        let per_address = Arc::new(Census::default());
        let open = Arc::new(OpenConnections::default());
        let (stop_tx, stop_rx) = watch::channel(false);
        let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => accepted,
            };
            let (stream, remote) = match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let limit = self.limits.max_connections_per_address;
            let Ok(seat) = per_address.take(Some(remote.ip()), usize::MAX, limit) else {
                self.state
                    .metrics
                    .errors
                    .with_label_values(&[ErrorCode::Backpressure.as_str()])
                    .inc();
                // Over TLS a plain-text answer would be noise: the connection is just closed.
                if self.tls.is_none() {
                    tokio::spawn(refuse_busy_address(stream, remote, limit));
                }
                continue;
            };
            // Every slot taken: an idle connection (no request in progress) of the address
            // holding the most makes room, so slow clients cannot queue everyone else.
            let slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    if open.evict_one() {
                        self.state.metrics.evictions.inc();
                    }
                    let slot = tokio::select! {
                        () = &mut shutdown => break,
                        slot = slots.clone().acquire_owned() => slot,
                    };
                    let Ok(slot) = slot else { break };
                    slot
                }
            };
            let registration = open.register(remote.ip());
            let connection = Connection {
                routes: routes.clone(),
                limits: self.limits.clone(),
                metrics: self.state.metrics.clone(),
                stop: stop_rx.clone(),
                _done: done_tx.clone(),
                tls: self.tls.clone(),
                registration,
            };
            tokio::spawn(async move {
                connection.serve(stream, remote).await;
                drop((slot, seat));
            });
        }
        drop(listener);
        if let Some(workflows) = &self.state.workflows {
            workflows.shutdown(workflow_tasks).await;
        }
        sweep.abort();
        ledger_tasks.abort();
        expiry.abort();
        if let Some(damage) = damage {
            damage.abort();
        }
        self.drain(stop_tx, done_tx, &mut done_rx).await;
        if let Some(decisions) = decisions {
            decisions.stop().await;
        }
        self.state
            .core
            .close()
            .await
            .map_err(|source| ServerError::Core {
                op: "closing the engine",
                source,
            })
    }

    async fn drain(
        &self,
        stop: watch::Sender<bool>,
        done: mpsc::Sender<()>,
        done_rx: &mut mpsc::Receiver<()>,
    ) {
        self.state.set_ready(false);
        self.state.end_mcp_sessions();
        tracing::info!("shutting down: finishing in-flight requests");
        let _ = stop.send(true);
        drop(done);
        let grace = Duration::from_millis(self.limits.shutdown_timeout_ms);
        if tokio::time::timeout(grace, done_rx.recv()).await.is_err() {
            tracing::warn!(?grace, "connections still open after the shutdown timeout");
        }
    }
}

/// Answers a connection past `limits.max_connections_per_address` with 429 and the error body,
/// then closes it. The request (if it arrives within a second) is read first so that the client
/// sees the answer rather than a reset.
async fn refuse_busy_address(mut stream: TcpStream, remote: SocketAddr, limit: usize) {
    tracing::debug!(%remote, limit, "connection refused: too many from this address");
    let body = ErrorBody::with_details(
        ErrorCode::Backpressure,
        format!(
            "too many connections from {} (limits.max_connections_per_address = {limit})",
            remote.ip()
        ),
        serde_json::json!({ "limit": limit }),
    );
    let json = serde_json::to_string(&body).unwrap_or_default();
    let answer = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{json}",
        json.len()
    );
    let mut request = [0u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut request)).await;
    let _ = stream.write_all(answer.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Expires agent presence every `every` (publishing `agent.offline`) until aborted.
async fn sweep_agents(core: Core, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        core.sweep_agents().await;
    }
}

/// How often decided approvals past their retention are looked for.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// Expires approvals past their time every `every` (each like a rejection), and forgets the
/// decided ones past their retention, until aborted.
async fn sweep_approvals(core: Core, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The purge scans every approval in a write transaction: once a minute is plenty for a
    // retention counted in days, and keeps holds and decisions from queueing behind it.
    let mut last_purge: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let expired = core.expire_approvals().await;
        if !expired.is_empty() {
            tracing::info!(count = expired.len(), "approvals expired undecided");
        }
        if last_purge.is_some_and(|at| at.elapsed() < PURGE_EVERY) {
            continue;
        }
        last_purge = Some(tokio::time::Instant::now());
        let purged = core.purge_decided_approvals().await;
        if purged > 0 {
            tracing::info!(
                count = purged,
                "decided approvals past their retention forgotten"
            );
        }
    }
}

/// Opens the server described by `config`, serves `listener` until `shutdown` completes, then
/// drains and closes. The library never binds sockets or reads the environment: the caller does.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    App::open(&config).await?.serve(listener, shutdown).await
}

/// One accepted connection and what it needs to be served and stopped.
struct Connection {
    routes: Router,
    limits: LimitsConfig,
    metrics: Metrics,
    stop: watch::Receiver<bool>,
    /// Dropped when the connection ends: the drain waits for every one.
    _done: mpsc::Sender<()>,
    /// The TLS handshake to run first, if the listener has TLS.
    tls: Option<Tls>,
    /// Its place among the open connections: whether it is serving a request, and the notice
    /// that closes it to make room while it is not.
    registration: Registration,
}

impl Connection {
    /// Serves `stream`, after a TLS handshake (bounded by `limits.header_timeout_ms`) when the
    /// listener has TLS; a failed handshake (no valid client certificate where one is required,
    /// not TLS at all) closes the connection.
    async fn serve(self, stream: TcpStream, remote: SocketAddr) {
        let Some(tls) = self.tls.clone() else {
            return self.serve_io(stream, remote, None).await;
        };
        let limit = Duration::from_millis(self.limits.header_timeout_ms);
        let evicted = Arc::clone(&self.registration.evict);
        let handshake = tokio::select! {
            handshake = tokio::time::timeout(limit, tls.accept(stream)) => handshake,
            () = evicted.notified() => {
                tracing::debug!(%remote, "TLS handshake closed to make room");
                return;
            }
        };
        match handshake {
            Ok(Ok((stream, peer))) => self.serve_io(stream, remote, peer).await,
            Ok(Err(err)) => tracing::debug!(%remote, error = %err, "TLS handshake failed"),
            Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
        }
    }

    async fn serve_io<S>(mut self, stream: S, remote: SocketAddr, peer: Option<PeerCertificate>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.metrics.connections.inc();
        let activity = Activity::new();
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: activity.clone(),
        });
        let body_timeout = Duration::from_millis(self.limits.body_timeout_ms);
        let routes = self.routes.clone();
        let (stop, done) = (self.stop.clone(), self._done.clone());
        let busy = Arc::clone(&self.registration.busy);
        let evict = Arc::clone(&self.registration.evict);
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            let working = Busy::start(&busy);
            request.extensions_mut().insert(ConnectInfo(remote));
            if let Some(peer) = &peer {
                request.extensions_mut().insert(peer.clone());
            }
            // A WebSocket outlives this connection task: it takes the stop notice and a drain
            // handle along, so shutdown closes it (1001) and waits for it.
            request.extensions_mut().insert(Lifetime {
                stop: stop.clone(),
                done: done.clone(),
            });
            // One deadline for the whole body, from now (the headers are read).
            let request =
                request.map(|body| axum::body::Body::new(Deadline::new(body, body_timeout)));
            let answer = routes.clone().oneshot(request);
            async move {
                let answer = answer.await;
                drop(working);
                answer
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_millis(self.limits.header_timeout_ms));
        let conn = builder.serve_connection(io, service).with_upgrades();
        tokio::pin!(conn);
        let idle = Duration::from_millis(self.limits.idle_timeout_ms);
        let mut closing = *self.stop.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(err) = result {
                        tracing::debug!(%remote, error = %err, "connection ended with an error");
                    }
                    break;
                }
                _ = self.stop.changed(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = activity.idle_for(idle), if !closing => {
                    tracing::debug!(%remote, "closing an idle connection");
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = evict.notified() => {
                    if self.registration.busy.load(Ordering::Acquire) == 0 {
                        // No request in progress (still sending headers, or between requests):
                        // nothing is lost by closing now.
                        tracing::debug!(%remote, "closing an idle connection to make room");
                        break;
                    }
                    // It started a request since it was picked: let that request finish.
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
        self.metrics.connections.dec();
    }
}

/// When a connection last moved a byte, as milliseconds since it opened.
#[derive(Debug, Clone)]
struct Activity {
    opened: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            opened: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn touch(&self) {
        let now = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// Completes once no byte moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let quiet_until = self.opened + last + idle;
            if Instant::now() >= quiet_until {
                return;
            }
            tokio::time::sleep_until(quiet_until.into()).await;
        }
    }
}

/// A stream (TCP, or TLS over TCP) that records its activity for the idle watchdog.
struct Tracked<S> {
    inner: S,
    activity: Activity,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The open HTTP connections, for choosing one to close when every slot is taken.
#[derive(Debug, Default)]
struct OpenConnections {
    next: AtomicU64,
    open: std::sync::Mutex<std::collections::HashMap<u64, Entry>>,
}

/// One open connection as the registry sees it.
#[derive(Debug)]
struct Entry {
    ip: std::net::IpAddr,
    busy: Arc<std::sync::atomic::AtomicUsize>,
    evict: Arc<tokio::sync::Notify>,
}

/// A connection's place in [`OpenConnections`]; dropping it removes it.
#[derive(Debug)]
struct Registration {
    id: u64,
    open: Arc<OpenConnections>,
    /// Requests in progress on the connection.
    busy: Arc<std::sync::atomic::AtomicUsize>,
    /// Notified when the connection is picked to make room.
    evict: Arc<tokio::sync::Notify>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.open.lock().remove(&self.id);
    }
}

impl OpenConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, Entry>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a new connection from `ip`.
    fn register(self: &Arc<Self>, ip: std::net::IpAddr) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let evict = Arc::new(tokio::sync::Notify::new());
        self.lock().insert(
            id,
            Entry {
                ip,
                busy: Arc::clone(&busy),
                evict: Arc::clone(&evict),
            },
        );
        Registration {
            id,
            open: Arc::clone(self),
            busy,
            evict,
        }
    }

    /// Tells one idle connection (no request in progress) to close: the oldest of the address
    /// holding the most connections. False when every connection is serving a request.
    fn evict_one(&self) -> bool {
        let open = self.lock();
        let mut per_address: std::collections::HashMap<std::net::IpAddr, usize> =
            std::collections::HashMap::new();
        for entry in open.values() {
            *per_address.entry(entry.ip).or_default() += 1;
        }
        let victim = open
            .iter()
            .filter(|(_, entry)| entry.busy.load(Ordering::Acquire) == 0)
            .max_by_key(|(id, entry)| (per_address[&entry.ip], std::cmp::Reverse(**id)));
        match victim {
            Some((_, entry)) => {
                entry.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

/// One request in progress on a connection, counted until dropped.
struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    fn start(busy: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        busy.fetch_add(1, Ordering::AcqRel);
        Busy(Arc::clone(busy))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
