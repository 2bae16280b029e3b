//! Versioned sessions over HTTP: `GET /api/v1/sessions/{id}` answers `{id, version, data,
//! updated_at}` with `ETag: "<version>"`; `PUT /api/v1/sessions/{id}` with `{data}` writes the
//! next version under HTTP's conditional-request rules, strictly:
//!
//! | session | header | answer |
//! |---|---|---|
//! | absent | none, or `If-None-Match: *` | 201, version 1 |
//! | absent | `If-Match` | 412 `PRECONDITION_FAILED` (`details.current_version: null`) |
//! | present | `If-Match: "<current>"` (or `*`) | 200, version + 1 |
//! | present | `If-Match` naming another version | 412 `PRECONDITION_FAILED` with `details.current_version` |
//! | present | `If-None-Match: *` | 412 `PRECONDITION_FAILED` |
//! | present | none | 428 `PRECONDITION_REQUIRED` with `details.current_version` |
//!
//! `If-Match` compares strongly: a weak tag (`W/"3"`) or one that is not a version never
//! matches. Giving both headers, or `If-None-Match` other than `*`, is 400 `INVALID_REQUEST`
//! naming the header. The rule itself is the core's (`ace_core::sessions::decide`).

use ace_core::{CoreError, Precondition, Session};
use ace_envelope::api::http::SessionWrite;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::request::{Ctx, JsonBody};
use crate::error::ApiError;
use ace_envelope::ErrorBody;

/// `GET /api/v1/sessions/{id}`: 200 with the session and its `ETag`, 404 `NOT_FOUND`.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    params(
        ("id" = String, Path, description = "The session id"),
    ),
    responses(
        (status = 200, description = "The session", body = Session, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 404, description = "`NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
) -> Result<Response, Response> {
    let session = state.core.session(&ctx, &id).await.map_err(refusal)?;
    Ok(answer(StatusCode::OK, session))
}

/// `PUT /api/v1/sessions/{id}`: 201 created, 200 replaced, 412 stale, 428 blind overwrite.
#[utoipa::path(
    put,
    path = "/api/v1/sessions/{id}",
    tag = "sessions",
    params(
        ("id" = String, Path, description = "The session id"),
        ("If-Match" = Option<String>, Header, description = "`\"<version>\"` (or `*`): replace only that version"),
        ("If-None-Match" = Option<String>, Header, description = "`*`: create only"),
    ),
    request_body = SessionWrite,
    responses(
        (status = 200, description = "Replaced: the next version", body = Session, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 201, description = "Created: version 1", body = Session, headers(("ETag" = String, description = "`\"<version>\"`"))),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: a bad body or conditional header", body = ErrorBody),
        (status = 412, description = "`PRECONDITION_FAILED`: `If-Match` names another version, or `If-None-Match: *` and it exists (`details.current_version`)", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`", body = ErrorBody),
        (status = 428, description = "`PRECONDITION_REQUIRED`: it exists and no `If-Match` was given (`details.current_version`)", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn put_session(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(write): JsonBody<SessionWrite>,
) -> Result<Response, Response> {
    let precondition = precondition(&headers).map_err(IntoResponse::into_response)?;
    let session = state
        .core
        .put_session(&ctx, &id, write.data, precondition)
        .await
        .map_err(refusal)?;
    let status = if session.version == 1 {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(answer(status, session))
}

fn answer(status: StatusCode, session: Session) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", session.version))
        .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
    (status, [(header::ETAG, etag)], Json(session)).into_response()
}

fn refusal(err: CoreError) -> Response {
    ApiError::from(err).into_response()
}

/// What `If-Match` / `If-None-Match` assert.
fn precondition(headers: &HeaderMap) -> Result<Precondition, ApiError> {
    let text = |name: header::HeaderName, field: &'static str| {
        headers
            .get(&name)
            .map(|v| {
                v.to_str()
                    .map(str::trim)
                    .map_err(|_| ApiError::InvalidField {
                        field,
                        reason: "is not visible ASCII".to_owned(),
                    })
            })
            .transpose()
    };
    let if_match = text(header::IF_MATCH, "If-Match")?;
    let if_none_match = text(header::IF_NONE_MATCH, "If-None-Match")?;
    match (if_match, if_none_match) {
        (Some(_), Some(_)) => Err(ApiError::InvalidField {
            field: "If-None-Match",
            reason: "cannot be combined with If-Match".to_owned(),
        }),
        (None, Some("*")) => Ok(Precondition::Absent),
        (None, Some(other)) => Err(ApiError::InvalidField {
            field: "If-None-Match",
            reason: format!("`{other}`: only `*` (create only) is meaningful for a PUT"),
        }),
        (Some("*"), None) => Ok(Precondition::Exists),
        (Some(tags), None) => Ok(Precondition::Version(versions(tags))),
        (None, None) => Ok(Precondition::None),
    }
}

/// The versions named by strong entity tags `"<n>"` of a list; other tags name none.
fn versions(tags: &str) -> Vec<u64> {
    tags.split(',')
        .filter_map(|tag| {
            tag.trim()
                .strip_prefix('"')?
                .strip_suffix('"')?
                .parse()
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn given_if_match_lists_when_parsed_then_only_strong_version_tags_count() {
        assert_eq!(versions(r#""3", W/"4", "x", "5""#), [3, 5]);
        let parsed = precondition(&with(header::IF_MATCH, r#""7""#)).unwrap();
        assert_eq!(parsed, Precondition::Version(vec![7]));
        let any = precondition(&with(header::IF_MATCH, "*")).unwrap();
        assert_eq!(any, Precondition::Exists);
    }

    #[test]
    fn given_conditional_headers_when_parsed_then_create_only_and_misuse_are_told_apart() {
        let create = precondition(&with(header::IF_NONE_MATCH, "*")).unwrap();
        assert_eq!(create, Precondition::Absent);
        assert_eq!(precondition(&HeaderMap::new()).unwrap(), Precondition::None);
        let err = precondition(&with(header::IF_NONE_MATCH, r#""1""#)).unwrap_err();
        assert_eq!(err.body().error.details["field"], "If-None-Match");
        let mut both = with(header::IF_MATCH, r#""1""#);
        both.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(precondition(&both).is_err());
    }
}
