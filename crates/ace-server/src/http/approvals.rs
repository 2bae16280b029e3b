//! Held messages over HTTP: `GET /api/v1/approvals?status=` (default `pending`),
//! `GET /api/v1/approvals/{id}`, and `POST /api/v1/approval/{id}` with
//! `{decision: "approve"|"reject", comment}` (also accepted on `POST /api/v1/approvals/{id}`).
//! Holding, deciding, expiring and their events and ledger entries are the core's
//! (`ace_core::approvals`); these handlers only parse and shape.

use ace_core::{Approval, ApprovalStatus, Decided};
use ace_envelope::ErrorBody;
use ace_envelope::api::http::{ApprovalDecision, ApprovalList};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::AppState;
use super::request::{Ctx, JsonBody};
use crate::error::ApiError;

/// What `status=` accepts besides the statuses themselves.
const ALL: &str = "all";

/// The query of `GET /api/v1/approvals`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApprovalsQuery {
    /// `pending` (the default), `approved`, `rejected`, `expired` or `all`.
    status: Option<String>,
}

/// The status filter of `status=`, `None` for `all`.
fn status_filter(status: Option<&str>) -> Result<Option<ApprovalStatus>, ApiError> {
    match status {
        None => Ok(Some(ApprovalStatus::Pending)),
        Some(ALL) => Ok(None),
        Some(name) => ApprovalStatus::parse(name)
            .map(Some)
            .ok_or_else(|| ApiError::InvalidField {
                field: "status",
                reason: format!("`{name}` is not one of pending, approved, rejected, expired, all"),
            }),
    }
}

/// `GET /api/v1/approvals`: 200 `{approvals: [...]}`, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/approvals",
    operation_id = "list_approvals",
    tag = "approvals",
    params(
        ("status" = Option<String>, Query, description = "`pending` (default), `approved`, `rejected`, `expired` or `all`"),
    ),
    responses(
        (status = 200, description = "The approvals of that status, oldest first", body = ApprovalList),
        (status = 400, description = "`INVALID_REQUEST`: an unknown status or query parameter", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(query): Query<ApprovalsQuery>,
) -> Result<Json<ApprovalList>, ApiError> {
    let status = status_filter(query.status.as_deref())?;
    let approvals = state.core.approvals(&ctx, status).await?;
    Ok(Json(ApprovalList { approvals }))
}

/// `GET /api/v1/approvals/{id}`: 200 with the approval, 404 `NOT_FOUND` when there is none.
#[utoipa::path(
    get,
    path = "/api/v1/approvals/{id}",
    tag = "approvals",
    params(
        ("id" = String, Path, description = "The approval id"),
    ),
    responses(
        (status = 200, description = "The approval, with the held envelope", body = Approval),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_approval(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Json<Approval>, ApiError> {
    Ok(Json(state.core.approval(&ctx, &id).await?))
}

/// `POST /api/v1/approval/{id}`: decides a pending approval; 200 with the approval and, when
/// approved, where the released message was stored.
#[utoipa::path(
    post,
    path = "/api/v1/approval/{id}",
    tag = "approvals",
    params(
        ("id" = String, Path, description = "The approval id"),
    ),
    request_body = ApprovalDecision,
    responses(
        (status = 200, description = "Decided", body = Decided),
        (status = 400, description = "`INVALID_JSON`: not a decision (`decision` must be `approve` or `reject`); `INVALID_REQUEST`: the comment is too long", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no approval of that id", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: decided already, or expired", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn decide(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ApprovalDecision>,
) -> Result<Json<Decided>, ApiError> {
    let decided = state
        .core
        .decide_approval(&ctx, &id, body.decision, body.comment)
        .await?;
    Ok(Json(decided))
}

/// `POST /api/v1/approvals/{id}`: the same as `POST /api/v1/approval/{id}`.
#[utoipa::path(
    post,
    path = "/api/v1/approvals/{id}",
    tag = "approvals",
    params(
        ("id" = String, Path, description = "The approval id"),
    ),
    request_body = ApprovalDecision,
    responses(
        (status = 200, description = "Decided (an alias of `POST /api/v1/approval/{id}`)", body = Decided),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: decided already, or expired", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn decide_alias(
    state: State<AppState>,
    ctx: Ctx,
    id: Path<String>,
    body: JsonBody<ApprovalDecision>,
) -> Result<Json<Decided>, ApiError> {
    decide(state, ctx, id, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_status_filters_when_parsed_then_pending_is_the_default_and_all_is_none() {
        assert_eq!(status_filter(None).unwrap(), Some(ApprovalStatus::Pending));
        assert_eq!(status_filter(Some("all")).unwrap(), None);
        assert_eq!(
            status_filter(Some("expired")).unwrap(),
            Some(ApprovalStatus::Expired)
        );
        let err = status_filter(Some("done")).unwrap_err();
        assert!(err.to_string().contains("`done`"), "{err}");
    }
}
