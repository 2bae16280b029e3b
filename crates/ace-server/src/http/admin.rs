//! Operating the running server over HTTP: `POST /api/v1/admin/reload` reloads the credentials
//! and policies (the same reload as SIGHUP, [`AppState::reload`]).
//!
//! Authorized as a publish on `ace.comms.system.config.cmd.reload.v1`
//! ([`ace_core::RELOAD_SUBJECT`]): with the shipped `policies/rbac.yaml` only `admin` may.
//! A file that does not load is the operator's input at fault, not the server: 400
//! `INVALID_REQUEST` naming the configuration key (`details.field`) and the file with its
//! error, so the caller knows what to fix, and nothing changed. A ledger that cannot record the
//! reload is the code of that failure (5xx); nothing changed either.

use ace_core::{Action, RELOAD_SUBJECT};
use ace_envelope::{ErrorBody, ErrorCode};
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::request::Ctx;
use crate::error::{ApiError, ServerError, error_response};
use crate::governance::{Reloaded, error_chain};

/// `POST /api/v1/admin/reload`: re-reads every `auth` and `policy` file, swaps them in only if
/// all loaded, and answers what was read.
#[utoipa::path(
    post,
    path = "/api/v1/admin/reload",
    tag = "operations",
    responses(
        (status = 200, description = "Reloaded: `{reloaded: [config keys], files: {path: sha256}, message}` (in development mode `reloaded` is empty: nothing to reload)", body = Reloaded),
        (status = 400, description = "`INVALID_REQUEST`: a file named by the configuration does not load; `details.field` is its configuration key and the message names the file and why. The previous credentials and policies keep serving", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn reload(State(state): State<AppState>, Ctx(ctx): Ctx) -> Response {
    let principal = match state
        .core
        .permit(&ctx, Action::Publish(RELOAD_SUBJECT))
        .await
    {
        Ok(principal) => principal,
        Err(err) => return ApiError::from(err).into_response(),
    };
    match state.reload(&principal.id).await {
        Ok(done) => Json(done).into_response(),
        Err(err) => refusal(err),
    }
}

/// The answer of a refused reload (already logged and counted by [`AppState::reload`]).
fn refusal(err: ServerError) -> Response {
    match err {
        ServerError::Policy { key, source } => ApiError::InvalidField {
            field: key,
            reason: error_chain(&source),
        }
        .into_response(),
        ServerError::Core { source, .. } => ApiError::Core(source).into_response(),
        _ => {
            let code = ErrorCode::Internal;
            error_response(code, &ErrorBody::new(code, "the reload failed"))
        }
    }
}
