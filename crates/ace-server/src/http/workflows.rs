//! The workflows over HTTP: `GET /api/v1/workflows` (every loaded workflow and the problems of
//! the files that did not load), `GET /api/v1/workflows/{name}`, `POST …/{name}/enable` and
//! `…/disable` (a run-time switch that survives restarts), `POST /api/v1/workflows/reload` and
//! `GET /api/v1/workflows/stats`.
//!
//! Judged like everything else: reading them is a subscribe on `ace.comms.system.workflow.>`,
//! switching workflow `W` a publish on `ace.comms.system.workflow.W.cmd.manage.v1`, a reload a
//! publish on `ace.comms.system.workflow.registry.cmd.reload.v1` (with the shipped policies,
//! `admin` only); a refusal is a `denied` ledger entry. With `workflows.enabled` off every route
//! answers 404 saying so.

use std::sync::Arc;

use ace_core::Action;
use ace_envelope::ErrorBody;
use ace_workflows::{Problem, ReloadReport, StatsSnapshot};
use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::AppState;
use super::request::Ctx;
use crate::error::ApiError;
use crate::workflows::Workflows;

/// What reading workflows is judged as.
const READ_SUBJECT: &str = "ace.comms.system.workflow.>";
/// What a reload is judged as.
const RELOAD_SUBJECT: &str = "ace.comms.system.workflow.registry.cmd.reload.v1";

/// One loaded workflow.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkflowInfo {
    /// Its name; it acts as the principal `workflow:<name>`.
    name: String,
    /// The file it came from.
    file: String,
    /// Whether it runs now (the run-time switch, else the file's `enabled`).
    enabled: bool,
    /// Its definition, as loaded (the workflow file format).
    #[schema(value_type = Object)]
    definition: Value,
}

/// Every loaded workflow, and why any file did not load.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkflowList {
    /// In load order.
    workflows: Vec<WorkflowInfo>,
    /// Problems of files refused at the last reload (their last good version keeps running).
    problems: Vec<Problem>,
}

fn running(state: &AppState) -> Result<&Arc<Workflows>, ApiError> {
    state.workflows.as_ref().ok_or_else(|| {
        ApiError::Route("workflows are not enabled on this server (workflows.enabled)".to_owned())
    })
}

fn info(workflows: &Workflows, name: &str) -> Result<WorkflowInfo, ApiError> {
    let snapshot = workflows.registry.snapshot();
    let compiled = snapshot
        .get(name)
        .ok_or_else(|| ApiError::Route(format!("no workflow `{name}` is loaded")))?;
    Ok(WorkflowInfo {
        name: compiled.workflow.name.clone(),
        file: compiled.file.clone(),
        enabled: workflows.registry.is_enabled(compiled),
        definition: serde_json::to_value(&compiled.workflow).unwrap_or(Value::Null),
    })
}

/// A workflow name as the contracts spell it (so it is one subject token).
fn checked(name: &str) -> Result<&str, ApiError> {
    let ok = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(name)
    } else {
        Err(ApiError::Route(format!("no workflow `{name}` is loaded")))
    }
}

/// `GET /api/v1/workflows`.
#[utoipa::path(
    get,
    path = "/api/v1/workflows",
    operation_id = "list_workflows",
    tag = "workflows",
    responses(
        (status = 200, description = "Every loaded workflow and the problems of refused files", body = WorkflowList),
        (status = 404, description = "`NOT_FOUND`: workflows are not enabled", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<WorkflowList>, ApiError> {
    state
        .core
        .permit(&ctx, Action::Subscribe(READ_SUBJECT))
        .await?;
    let workflows = running(&state)?;
    let snapshot = workflows.registry.snapshot();
    let list = snapshot
        .all()
        .iter()
        .map(|c| info(workflows, &c.workflow.name))
        .collect::<Result<_, _>>()?;
    Ok(Json(WorkflowList {
        workflows: list,
        problems: workflows.registry.problems(),
    }))
}

/// `GET /api/v1/workflows/{name}`.
#[utoipa::path(
    get,
    path = "/api/v1/workflows/{name}",
    operation_id = "get_workflow",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow name")),
    responses(
        (status = 200, description = "The workflow", body = WorkflowInfo),
        (status = 404, description = "`NOT_FOUND`: no such workflow, or workflows are not enabled", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_workflow(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> Result<Json<WorkflowInfo>, ApiError> {
    state
        .core
        .permit(&ctx, Action::Subscribe(READ_SUBJECT))
        .await?;
    Ok(Json(info(running(&state)?, checked(&name)?)?))
}

async fn switch(
    state: &AppState,
    ctx: &ace_core::RequestContext,
    name: &str,
    enabled: bool,
) -> Result<Json<WorkflowInfo>, ApiError> {
    let name = checked(name)?;
    let subject = format!("ace.comms.system.workflow.{name}.cmd.manage.v1");
    let principal = state.core.permit(ctx, Action::Publish(&subject)).await?;
    let workflows = running(state)?;
    let found = workflows
        .registry
        .set_enabled(name, enabled)
        .map_err(|err| {
            tracing::error!(%err, workflow = name, "the workflow switch was not stored");
            ApiError::Internal
        })?;
    if !found {
        return Err(ApiError::Route(format!("no workflow `{name}` is loaded")));
    }
    tracing::info!(workflow = name, enabled, by = %principal.id, "workflow switched");
    let decision = if enabled {
        "workflow enabled"
    } else {
        "workflow disabled"
    };
    let details =
        serde_json::json!({"change": decision, "workflow": name, "transport": ctx.transport});
    record_change(state, &principal.id, &subject, decision, details).await;
    Ok(Json(info(workflows, name)?))
}

/// The `config_changed` entry of a workflow switch or reload, recorded once it is done; a
/// recording failure is logged (the change is made).
async fn record_change(
    state: &AppState,
    actor: &str,
    subject: &str,
    decision: &str,
    details: Value,
) {
    let mut entry = ace_ledger::NewEntry::new(ace_ledger::EntryKind::ConfigChanged, actor, subject);
    entry.decision = decision.to_owned();
    entry.details = details;
    if let Err(err) = state.core.record(vec![entry]).await {
        tracing::error!(%err, subject, "a workflow change was made but not recorded");
    }
}

/// `POST /api/v1/workflows/{name}/enable`.
#[utoipa::path(
    post,
    path = "/api/v1/workflows/{name}/enable",
    operation_id = "enable_workflow",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow name")),
    responses(
        (status = 200, description = "The workflow, now enabled (kept across restarts)", body = WorkflowInfo),
        (status = 404, description = "`NOT_FOUND`: no such workflow, or workflows are not enabled", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn enable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> Result<Json<WorkflowInfo>, ApiError> {
    switch(&state, &ctx, &name, true).await
}

/// `POST /api/v1/workflows/{name}/disable`.
#[utoipa::path(
    post,
    path = "/api/v1/workflows/{name}/disable",
    operation_id = "disable_workflow",
    tag = "workflows",
    params(("name" = String, Path, description = "The workflow name")),
    responses(
        (status = 200, description = "The workflow, now disabled (kept across restarts)", body = WorkflowInfo),
        (status = 404, description = "`NOT_FOUND`: no such workflow, or workflows are not enabled", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn disable(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> Result<Json<WorkflowInfo>, ApiError> {
    switch(&state, &ctx, &name, false).await
}

/// `POST /api/v1/workflows/reload`.
#[utoipa::path(
    post,
    path = "/api/v1/workflows/reload",
    operation_id = "reload_workflows",
    tag = "workflows",
    responses(
        (status = 200, description = "What the reload read: changed files, workflows loaded, problems of refused files (their last good version keeps running)", body = ReloadReport),
        (status = 404, description = "`NOT_FOUND`: workflows are not enabled", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn reload(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<ReloadReport>, ApiError> {
    let principal = state
        .core
        .permit(&ctx, Action::Publish(RELOAD_SUBJECT))
        .await?;
    let report = running(&state)?.reload();
    let details = serde_json::json!({
        "change": "workflows reloaded",
        "changed": report.changed,
        "workflows": report.workflows,
        "refused_files": report.problems.iter().map(|p| p.file.clone()).collect::<Vec<_>>(),
        "transport": ctx.transport,
    });
    record_change(
        &state,
        &principal.id,
        RELOAD_SUBJECT,
        "workflows reloaded",
        details,
    )
    .await;
    Ok(Json(report))
}

/// `GET /api/v1/workflows/stats`.
#[utoipa::path(
    get,
    path = "/api/v1/workflows/stats",
    operation_id = "workflow_stats",
    tag = "workflows",
    responses(
        (status = 200, description = "Events received, workflows triggered, completed and failed, events filtered (by reason) and rate limited, and per workflow the same with run latency percentiles", body = StatsSnapshot),
        (status = 404, description = "`NOT_FOUND`: workflows are not enabled", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<StatsSnapshot>, ApiError> {
    state
        .core
        .permit(&ctx, Action::Subscribe(READ_SUBJECT))
        .await?;
    Ok(Json(running(&state)?.stats.snapshot()))
}

/// The routes, merged into the router.
pub(crate) fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/v1/workflows", get(list))
        .route("/api/v1/workflows/stats", get(stats))
        .route("/api/v1/workflows/reload", post(reload))
        .route("/api/v1/workflows/{name}", get(get_workflow))
        .route("/api/v1/workflows/{name}/enable", post(enable))
        .route("/api/v1/workflows/{name}/disable", post(disable))
}
