//! The ML kernel's HTTP API under `/api/ml/v1` — exactly `contracts/ml/ml_api.json`, which is
//! served as it is at `/api/ml/v1/openapi.json` (with `ml_schemas.json` beside it, where its
//! `$ref`s point) — and [`CorePublisher`], the kernel's events published through the core.
//!
//! Every route but `/health` and the two documents authenticates and authorizes the caller
//! through `Core::permit`: writes as a publish on `ace.comms.internal.kernel.mlt.cmd.<op>.v1`,
//! reads as a subscription to the kernel's events. The kernel's own events go through
//! `Core::publish` as the server (validated against their contracts, recorded in the ledger);
//! a plan's `GOVERNANCE_VALIDATION` goes as the caller, so policy judges it and the EHI gate
//! holds it for a human when its score reaches the threshold. `listen_for_decisions` hands the
//! approvals' decisions back to the kernel.

use std::sync::Arc;

use ace_core::{Action, Core, CoreError, RequestContext};
use ace_envelope::api::system::{ApprovalDecided, ApprovalOutcome, principal_ref};
use ace_envelope::{Clock, Envelope, ErrorBody, ErrorCode, Kind, Priority, Qos};
use ace_mlt::{Decision, Event, Kernel, MltError, Publisher, Submitted};
use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::AppState;
use super::request::{self, Ctx};
use crate::error::{ApiError, error_response};

/// Where the API is mounted (the `servers` URL of `ml_api.json`).
pub(crate) const BASE: &str = "/api/ml/v1";

/// What readers of the kernel (insights, plan status) are judged as subscribing to.
pub(crate) const MLT_EVENTS: &str = "ace.comms.internal.kernel.mlt.evt.>";

/// The subject a write operation `op` is judged as publishing on.
pub(crate) fn command_subject(op: &str) -> String {
    format!("ace.comms.internal.kernel.mlt.cmd.{op}.v1")
}

/// The approvals' decisions, which release or refuse held plan validations.
const DECISIONS: &str = "ace.comms.system.hitl.*.evt.approval_decided.v1";

/// The routes, to merge into the server's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(&format!("{BASE}/openapi.json"), get(openapi))
        .route(&format!("{BASE}/ml_schemas.json"), get(schemas))
        .route(&format!("{BASE}/health"), get(health))
        .route(&format!("{BASE}/experience"), post(experience))
        .route(&format!("{BASE}/insights"), get(insights))
        .route(&format!("{BASE}/plan/propose"), post(propose))
        .route(&format!("{BASE}/plans/{{id}}/status"), get(plan_status))
        .route(&format!("{BASE}/snapshot/export"), post(export))
        .route(&format!("{BASE}/rollback"), post(rollback))
}

/// A kernel failure as the error body (`CONTRACT_VIOLATION` lists every violation).
fn mlt_error(err: &MltError) -> Response {
    error_as(err, ErrorCode::ContractViolation)
}

/// [`mlt_error`], answering a contract violation with `violation` (`POST /snapshot/export`
/// documents no 422: its body's violations are a 400 `INVALID_REQUEST`, with the same details).
fn error_as(err: &MltError, violation: ErrorCode) -> Response {
    let (code, details) = match err {
        MltError::Contract { schema, errors, .. } => {
            (violation, json!({"schema": schema, "errors": errors}))
        }
        MltError::BadRequest { field, .. } => (ErrorCode::InvalidRequest, json!({"field": field})),
        MltError::NotFound { id, .. } => (ErrorCode::NotFound, json!({"id": id})),
        MltError::Conflict { id } => (ErrorCode::Conflict, json!({"plan_id": id})),
        MltError::Forbidden { reasons } => (ErrorCode::Forbidden, json!({"reasons": reasons})),
        _ => {
            tracing::error!(error = %err, "ML kernel operation failed");
            let body = ErrorBody::new(ErrorCode::Internal, ErrorCode::Internal.meaning());
            return error_response(ErrorCode::Internal, &body);
        }
    };
    error_response(
        code,
        &ErrorBody::with_details(code, err.to_string(), details),
    )
}

/// An error answer, boxed: a `Response` is too large to travel in every `Err`.
pub(crate) struct Refused(Box<Response>);

impl From<Response> for Refused {
    fn from(response: Response) -> Self {
        Refused(Box::new(response))
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        *self.0
    }
}

type Answer = Result<Response, Refused>;

fn api(err: impl Into<ApiError>) -> Response {
    err.into().into_response()
}

/// The kernel, or 503 when this server runs without one.
fn kernel(state: &AppState) -> Result<Arc<Kernel>, Refused> {
    state.mlt.clone().ok_or_else(|| {
        let body = ErrorBody::new(ErrorCode::Unavailable, "the ML kernel is not enabled");
        Refused::from(error_response(ErrorCode::Unavailable, &body))
    })
}

/// Authorizes `action` for the caller; answers the publisher acting as them.
async fn permit(
    state: &AppState,
    ctx: RequestContext,
    action: Action<'_>,
) -> Result<CorePublisher, Refused> {
    let principal = state.core.permit(&ctx, action).await.map_err(api)?;
    Ok(CorePublisher {
        core: state.core.clone(),
        clock: state.cloudevents.clock.clone(),
        ctx,
        caller: Some(principal_ref(principal.kind, &principal.id)),
    })
}

/// The JSON body, or 400 naming where it breaks.
fn json_body(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Value, Refused> {
    let bytes = request::body(body, state.limits.max_body_bytes).map_err(api)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| api(ApiError::json(&e, "body", ErrorCode::InvalidJson)).into())
}

/// The `Idempotency-Key` header (1 to 256 characters), or 400.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, Refused> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if (1..=256).contains(&key.chars().count()) => Ok(Some(key.to_owned())),
        _ => Err(api(ApiError::InvalidField {
            field: "Idempotency-Key",
            reason: "must be 1 to 256 visible ASCII characters".to_owned(),
        })
        .into()),
    }
}

fn document(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

async fn openapi() -> Response {
    document(ace_mlt::api_document())
}

async fn schemas() -> Response {
    document(ace_mlt::schemas_document())
}

async fn health(State(state): State<AppState>) -> Answer {
    Ok(Json(kernel(&state)?.health()).into_response())
}

fn accepted(result: Result<Value, MltError>) -> Answer {
    let value = result.map_err(|e| mlt_error(&e))?;
    Ok((StatusCode::ACCEPTED, Json(value)).into_response())
}

/// A write: the kernel, the caller authorized for `op` as its publisher, the
/// `Idempotency-Key`, and the JSON body.
struct Write {
    kernel: Arc<Kernel>,
    publisher: CorePublisher,
    key: Option<String>,
    body: Value,
}

impl Write {
    async fn of(
        state: &AppState,
        ctx: RequestContext,
        op: &str,
        headers: &HeaderMap,
        body: Result<Bytes, BytesRejection>,
    ) -> Result<Write, Refused> {
        let kernel = kernel(state)?;
        let publisher = permit(state, ctx, Action::Publish(&command_subject(op))).await?;
        let key = idempotency_key(headers)?;
        let body = json_body(state, body)?;
        Ok(Write {
            kernel,
            publisher,
            key,
            body,
        })
    }
}

/// `POST /experience` (a repeated `experience_id` is the idempotency: `duplicate: true`).
async fn experience(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let w = Write::of(&state, ctx, "submit_experience", &headers, body).await?;
    accepted(w.kernel.submit_experience(w.body, &w.publisher).await)
}

#[derive(Debug, serde::Deserialize)]
struct InsightsQuery {
    since: Option<String>,
    limit: Option<String>,
}

async fn insights(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    query: Result<Query<InsightsQuery>, axum::extract::rejection::QueryRejection>,
) -> Answer {
    let kernel = kernel(&state)?;
    permit(&state, ctx, Action::Subscribe(MLT_EVENTS)).await?;
    let Query(query) = query.map_err(|e| {
        api(ApiError::InvalidField {
            field: "query",
            reason: e.body_text(),
        })
    })?;
    let found = kernel
        .insights(query.since.as_deref(), query.limit.as_deref())
        .await
        .map_err(|e| mlt_error(&e))?;
    Ok(Json(found).into_response())
}

async fn propose(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let w = Write::of(&state, ctx, "propose_plan", &headers, body).await?;
    accepted(
        w.kernel
            .propose(w.body, &w.publisher, w.key.as_deref())
            .await,
    )
}

async fn plan_status(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Answer {
    let kernel = kernel(&state)?;
    permit(&state, ctx, Action::Subscribe(MLT_EVENTS)).await?;
    let status = kernel.plan_status(&id).await.map_err(|e| mlt_error(&e))?;
    Ok(Json(status).into_response())
}

async fn export(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let kernel = kernel(&state)?;
    permit(
        &state,
        ctx,
        Action::Publish(&command_subject("export_snapshot")),
    )
    .await?;
    let request = json_body(&state, body)?;
    let exported = kernel
        .export_snapshot(request)
        .await
        .map_err(|e| error_as(&e, ErrorCode::InvalidRequest))?;
    Ok((StatusCode::CREATED, Json(exported)).into_response())
}

async fn rollback(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Answer {
    let w = Write::of(&state, ctx, "rollback", &headers, body).await?;
    accepted(
        w.kernel
            .rollback(w.body, &w.publisher, w.key.as_deref())
            .await,
    )
}

/// The kernel's [`Publisher`] over the core: facts as the server, submissions as `ctx`.
pub(crate) struct CorePublisher {
    core: Core,
    clock: Arc<dyn Clock>,
    ctx: RequestContext,
    caller: Option<String>,
}

impl CorePublisher {
    /// The server itself (no caller): for events that follow an approval's decision.
    pub(crate) fn internal(core: Core, clock: Arc<dyn Clock>) -> Self {
        CorePublisher {
            core,
            clock,
            ctx: RequestContext::internal(),
            caller: None,
        }
    }

    fn envelope(&self, event: &Event) -> Result<Envelope, String> {
        let mut builder = Envelope::builder(Kind::Event, event.subject.clone())
            .clock(&*self.clock)
            .domain(event.kind.domain)
            .name(event.kind.name)
            .schema(event.kind.schema)
            .priority(Priority::parse(event.kind.priority).unwrap_or_default())
            .qos(Qos::parse(event.kind.qos).unwrap_or_default())
            .payload_json(event.payload.clone());
        if let Some(id) = &event.correlation_id {
            builder = builder.correlation_id(id.clone());
        }
        let mut envelope = builder.build().map_err(|e| e.to_string())?;
        envelope.governance.ehi_score = event.ehi_score;
        envelope.governance.requires_approval = event.requires_approval;
        Ok(envelope)
    }
}

#[async_trait]
impl Publisher for CorePublisher {
    async fn publish(&self, event: Event) -> Result<(), String> {
        let envelope = self.envelope(&event)?;
        let internal = RequestContext::internal();
        self.core
            .publish(&internal, envelope)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn submit(&self, event: Event) -> Result<Submitted, String> {
        let envelope = self.envelope(&event)?;
        match self.core.publish(&self.ctx, envelope).await {
            Ok(_) => Ok(Submitted::Accepted),
            Err(CoreError::PendingApproval { approval_id, .. }) => {
                Ok(Submitted::Held { approval_id })
            }
            Err(CoreError::Forbidden { reasons, .. }) => Ok(Submitted::Refused { reasons }),
            Err(err) => Err(err.to_string()),
        }
    }

    fn caller(&self) -> Option<String> {
        self.caller.clone()
    }
}

/// Opens the kernel over `{data_dir}/mlt.redb` and starts handing it the approvals' decisions.
pub(crate) async fn open(
    config: &crate::Config,
    core: &Core,
    clock: Arc<dyn Clock>,
) -> Result<(Arc<Kernel>, Decisions), crate::ServerError> {
    let failed = |reason: String| crate::ServerError::Mlt { reason };
    let store: Arc<dyn ace_mlt::Store> = match config.mlt.store {
        ace_mlt::StoreKind::Embedded => Arc::new(
            ace_mlt::RedbStore::open(&config.data_dir.join("mlt.redb"))
                .map_err(|e| failed(e.to_string()))?,
        ),
        ace_mlt::StoreKind::Postgres => {
            let pg = config.mlt.postgres.clone();
            let opened = tokio::task::spawn_blocking(move || {
                ace_mlt::PostgresStore::open(&pg.url, &pg.schema)
            })
            .await
            .map_err(|e| failed(e.to_string()))?;
            Arc::new(opened.map_err(|e| failed(e.to_string()))?)
        }
    };
    let kernel = Kernel::new(store, config.mlt.clone(), clock.clone()).map_err(failed)?;
    let kernel = Arc::new(kernel);
    let decisions = Decisions::subscribe(core.clone(), kernel.clone(), clock)
        .await
        .map_err(|source| crate::ServerError::Core {
            op: "subscribing the ML kernel to approval decisions",
            source,
        })?;
    Ok((kernel, decisions))
}

/// The approvals' decisions, subscribed to (as the server) when the kernel opens, so none made
/// once the server accepts requests is missed; [`Decisions::spawn`] hands each to the kernel,
/// which applies or rejects the plan whose validation the approval held.
pub(crate) struct Decisions {
    subscription: Box<dyn ace_bus::LiveSubscription>,
    core: Core,
    kernel: Arc<Kernel>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Decisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decisions").finish_non_exhaustive()
    }
}

/// The running task of [`Decisions`] and how to stop it.
pub(crate) struct DecisionsTask {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl DecisionsTask {
    /// Stops taking decisions (one being applied is finished first) and waits for the task,
    /// so the core it holds is released before the core closes.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

impl Decisions {
    async fn subscribe(
        core: Core,
        kernel: Arc<Kernel>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CoreError> {
        let subscription = core
            .subscribe(&RequestContext::internal(), DECISIONS, None)
            .await?;
        Ok(Decisions {
            subscription,
            core,
            kernel,
            clock,
        })
    }

    /// Runs until stopped or the bus closes.
    pub(crate) fn spawn(mut self) -> DecisionsTask {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let publisher = CorePublisher::internal(self.core.clone(), self.clock.clone());
            loop {
                let message = tokio::select! {
                    _ = &mut stopped => break,
                    message = self.subscription.next() => message,
                };
                let Some(message) = message else { break };
                if let Some(decision) = decision_of(&message) {
                    let approval = decision.approval_id.clone();
                    if let Err(err) = self.kernel.decided(decision, &publisher).await {
                        tracing::error!(approval = %approval, error = %err, "the ML kernel could not act on a decision");
                    }
                }
            }
        });
        DecisionsTask { stop, task }
    }
}

/// The kernel's view of an `approval_decided` event.
fn decision_of(message: &Envelope) -> Option<Decision> {
    let decided: ApprovalDecided = serde_json::from_value(message.payload.clone()?).ok()?;
    let expired = decided.decision == ApprovalOutcome::Expired;
    Some(Decision {
        approval_id: decided.approval_id,
        approved: decided.decision == ApprovalOutcome::Approved,
        decided_by: decided
            .decided_by
            .unwrap_or_else(|| "service:ace-comms-system".into()),
        reason: decided
            .reason
            .or_else(|| expired.then(|| "the approval expired".to_owned())),
    })
}
