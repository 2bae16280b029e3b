//! Agent presence over HTTP: `POST /api/v1/agents/{id}/heartbeat`, `GET /api/v1/agents`
//! (`?capability=` filters), `GET /api/v1/agents/{id}`. Presence, its expiry and the
//! `agent.online`/`agent.offline` events are the core's (`ace_core::Core::heartbeat`); these
//! handlers only parse and shape.

use ace_core::{AgentPresence, Heartbeat};
use ace_envelope::api::http::AgentList;
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::AppState;
use super::request::{Ctx, JsonBody};
use crate::error::ApiError;
use ace_envelope::ErrorBody;

/// The query of `GET /api/v1/agents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgentsQuery {
    /// Only agents announcing this capability.
    capability: Option<String>,
}

/// `POST /api/v1/agents/{id}/heartbeat`: 200 with the agent's presence.
#[utoipa::path(
    post,
    path = "/api/v1/agents/{id}/heartbeat",
    tag = "agents",
    params(
        ("id" = String, Path, description = "The agent id"),
    ),
    request_body = Heartbeat,
    responses(
        (status = 200, description = "The agent's presence", body = AgentPresence),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: the body or a parameter is invalid (the message names it)", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn heartbeat(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    JsonBody(beat): JsonBody<Heartbeat>,
) -> Result<Json<AgentPresence>, ApiError> {
    Ok(Json(state.core.heartbeat(&ctx, &id, beat).await?))
}

/// `GET /api/v1/agents`: 200 `{agents: [...]}`, sorted by id.
#[utoipa::path(
    get,
    path = "/api/v1/agents",
    operation_id = "list_agents",
    tag = "agents",
    params(
        ("capability" = Option<String>, Query, description = "Only agents announcing this capability"),
    ),
    responses(
        (status = 200, description = "The present agents, by id", body = AgentList),
        (status = 400, description = "`INVALID_REQUEST`: an unknown query parameter", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(query): Query<AgentsQuery>,
) -> Result<Json<AgentList>, ApiError> {
    let agents = state.core.agents(&ctx, query.capability.as_deref()).await?;
    Ok(Json(AgentList { agents }))
}

/// `GET /api/v1/agents/{id}`: 200 with its presence, 404 `NOT_FOUND` when not present.
#[utoipa::path(
    get,
    path = "/api/v1/agents/{id}",
    tag = "agents",
    params(
        ("id" = String, Path, description = "The agent id"),
    ),
    responses(
        (status = 200, description = "Its presence", body = AgentPresence),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_agent(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Json<AgentPresence>, ApiError> {
    Ok(Json(state.core.agent(&ctx, &id).await?))
}
