//! Streams, consumers and deliveries over HTTP: create/list/get/delete streams and consumers,
//! repair a damaged stream, fetch, ack/nak/term, and read one stored message (as JSON or as a
//! structured CloudEvent). Each handler
//! parses, calls one `Core` operation, and shapes the answer.

use std::time::Duration;

use ace_core::{AckKind, AckOutcome};
use ace_envelope::api::http::{
    AckAnswer, AckFailure, AckRequest, ConsumerConfig, ConsumerInfo, ConsumerList, FetchAnswer,
    FetchRequest, RepairRequest, StoredMessage, StreamConfig, StreamInfo, StreamList, StreamRepair,
};
use ace_envelope::codec::cloudevents::STRUCTURED_CONTENT_TYPE;
use ace_envelope::to_cloudevent_json;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::request::{self, Ctx, JsonBody};
use crate::error::ApiError;
use ace_envelope::ErrorBody;

/// `GET /api/v1/streams`.
#[utoipa::path(
    get,
    path = "/api/v1/streams",
    tag = "streams",
    responses(
        (status = 200, description = "Every stream, by name", body = StreamList),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn list_streams(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<StreamList>, ApiError> {
    let streams = state.core.list_streams(&ctx).await?;
    Ok(Json(StreamList { streams }))
}

/// `POST /api/v1/streams` with a stream config: 201 with the stream's info.
#[utoipa::path(
    post,
    path = "/api/v1/streams",
    tag = "streams",
    request_body = StreamConfig,
    responses(
        (status = 201, description = "Created", body = StreamInfo),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`, `INVALID_SUBJECT`: a bad configuration (the message names the key)", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: the name is taken or the subjects overlap another stream's", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn add_stream(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(config): JsonBody<StreamConfig>,
) -> Result<(StatusCode, Json<StreamInfo>), ApiError> {
    let info = state.core.add_stream(&ctx, config).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /api/v1/streams/{name}`.
#[utoipa::path(
    get,
    path = "/api/v1/streams/{stream}",
    tag = "streams",
    params(super::openapi::StreamPath),
    responses(
        (status = 200, description = "The stream's configuration, state and counters", body = StreamInfo),
        (status = 404, description = "`STREAM_NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_stream(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> Result<Json<StreamInfo>, ApiError> {
    Ok(Json(state.core.stream_info(&ctx, &name).await?))
}

/// `DELETE /api/v1/streams/{name}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v1/streams/{stream}",
    tag = "streams",
    params(super::openapi::StreamPath),
    responses(
        (status = 204, description = "Deleted with its messages and consumers"),
        (status = 404, description = "`STREAM_NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn delete_stream(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_stream(&ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/v1/streams/{name}/repair {accept_loss}`: what is damaged and what a repair keeps
/// and gives up; with `accept_loss`, the repair itself (the stream is cut to its last intact
/// record, what is cut moved under its `lost/` directory, and it takes writes again).
#[utoipa::path(
    post,
    path = "/api/v1/streams/{stream}/repair",
    tag = "streams",
    params(super::openapi::StreamPath),
    request_body = RepairRequest,
    responses(
        (status = 200, description = "The report: a dry run without `accept_loss` (nothing changed), the repair with it; `nothing to repair` for a healthy stream. A repair that changed the stream is a `stream_repaired` ledger entry", body = StreamRepair),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: a bad body", body = ErrorBody),
        (status = 404, description = "`STREAM_NOT_FOUND`", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn repair_stream(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
    JsonBody(ask): JsonBody<RepairRequest>,
) -> Result<Json<StreamRepair>, ApiError> {
    Ok(Json(
        state
            .core
            .repair_stream(&ctx, &name, ask.accept_loss)
            .await?,
    ))
}

/// `GET /api/v1/streams/{s}/consumers`.
#[utoipa::path(
    get,
    path = "/api/v1/streams/{stream}/consumers",
    tag = "consumers",
    params(super::openapi::StreamPath),
    responses(
        (status = 200, description = "Every consumer of the stream, by name", body = ConsumerList),
        (status = 404, description = "`STREAM_NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn list_consumers(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(stream): Path<String>,
) -> Result<Json<ConsumerList>, ApiError> {
    let consumers = state.core.list_consumers(&ctx, &stream).await?;
    Ok(Json(ConsumerList { consumers }))
}

/// `POST /api/v1/streams/{s}/consumers` with a consumer config: 201 with its info.
#[utoipa::path(
    post,
    path = "/api/v1/streams/{stream}/consumers",
    tag = "consumers",
    params(super::openapi::StreamPath),
    request_body = ConsumerConfig,
    responses(
        (status = 201, description = "Created", body = ConsumerInfo),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`, `INVALID_SUBJECT`: a bad configuration (the message names the key)", body = ErrorBody),
        (status = 404, description = "`STREAM_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: the name is taken", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn add_consumer(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(stream): Path<String>,
    JsonBody(config): JsonBody<ConsumerConfig>,
) -> Result<(StatusCode, Json<ConsumerInfo>), ApiError> {
    let info = state.core.add_consumer(&ctx, &stream, config).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /api/v1/streams/{s}/consumers/{c}`.
#[utoipa::path(
    get,
    path = "/api/v1/streams/{stream}/consumers/{consumer}",
    tag = "consumers",
    params(super::openapi::ConsumerPath),
    responses(
        (status = 200, description = "The consumer's configuration, state and counters", body = ConsumerInfo),
        (status = 404, description = "`STREAM_NOT_FOUND`, `CONSUMER_NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_consumer(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, consumer)): Path<(String, String)>,
) -> Result<Json<ConsumerInfo>, ApiError> {
    Ok(Json(
        state.core.consumer_info(&ctx, &stream, &consumer).await?,
    ))
}

/// `DELETE /api/v1/streams/{s}/consumers/{c}`: 204.
#[utoipa::path(
    delete,
    path = "/api/v1/streams/{stream}/consumers/{consumer}",
    tag = "consumers",
    params(super::openapi::ConsumerPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "`STREAM_NOT_FOUND`, `CONSUMER_NOT_FOUND`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn delete_consumer(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, consumer)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_consumer(&ctx, &stream, &consumer).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST …/consumers/{c}/fetch {batch, expires_ms}`: `{messages: [{seq, delivery, envelope}]}`.
#[utoipa::path(
    post,
    path = "/api/v1/streams/{stream}/consumers/{consumer}/fetch",
    tag = "consumers",
    params(super::openapi::ConsumerPath),
    request_body = FetchRequest,
    responses(
        (status = 200, description = "The deliveries, possibly none", body = FetchAnswer),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: the body or a parameter is invalid (the message names it)", body = ErrorBody),
        (status = 404, description = "`STREAM_NOT_FOUND`, `CONSUMER_NOT_FOUND`", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, consumer)): Path<(String, String)>,
    JsonBody(ask): JsonBody<FetchRequest>,
) -> Result<Json<FetchAnswer>, ApiError> {
    let expires = Duration::from_millis(ask.expires_ms);
    let delivered = state
        .core
        .fetch(&ctx, &stream, &consumer, ask.batch, expires)
        .await?;
    let messages = delivered.into_iter().map(Into::into).collect();
    Ok(Json(FetchAnswer { messages }))
}

/// Which of ack, nak, term a route is.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Ack,
    Nak,
    Term,
}

/// Route parameter of [`acknowledge`] for ack.
const ACK: u8 = 0;
/// Route parameter of [`acknowledge`] for nak.
const NAK: u8 = 1;
/// Route parameter of [`acknowledge`] for term.
const TERM: u8 = 2;

impl Verb {
    const fn of(code: u8) -> Verb {
        match code {
            ACK => Verb::Ack,
            NAK => Verb::Nak,
            _ => Verb::Term,
        }
    }
}

/// The sequences of an ack request and what to do with them, or why the request is refused.
fn ack_kind(ask: AckRequest, verb: Verb) -> Result<(Vec<u64>, AckKind), ApiError> {
    let misplaced = |field| ApiError::InvalidField {
        field,
        reason: format!("does not apply to {verb:?}").to_lowercase(),
    };
    let kind = match verb {
        Verb::Ack if ask.delay_ms.is_some() => return Err(misplaced("delay_ms")),
        Verb::Ack | Verb::Nak if ask.reason.is_some() => return Err(misplaced("reason")),
        Verb::Term if ask.delay_ms.is_some() => return Err(misplaced("delay_ms")),
        Verb::Ack => AckKind::Ack,
        Verb::Nak => AckKind::Nak(ask.delay_ms.map(Duration::from_millis)),
        Verb::Term => AckKind::Term(ask.reason.unwrap_or_else(|| "terminated".to_owned())),
    };
    Ok((ask.seqs, kind))
}

/// One settling route (`ack`, `nak` or `term`): its handler over [`acknowledge`] and its
/// operation in the OpenAPI document.
macro_rules! settle {
    ($name:ident, $verb:ident, $path:tt, $what:literal) => {
        #[doc = concat!("`POST …/consumers/{c}/", stringify!($name), "`: ", $what)]
        #[utoipa::path(
            post,
            path = $path,
            tag = "consumers",
            params(super::openapi::ConsumerPath),
            request_body = AckRequest,
            responses(
                (status = 200, description = "The sequences handled and those refused", body = AckAnswer),
                (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: a bad body, or an option of another verb; or the refusal of every sequence", body = ErrorBody),
                (status = 404, description = "`STREAM_NOT_FOUND`, `CONSUMER_NOT_FOUND`, or `NOT_FOUND` when no sequence is pending", body = ErrorBody),
                super::openapi::BodyRefusals,
                super::openapi::Refusals,
            )
        )]
        pub(crate) async fn $name(
            state: State<AppState>,
            ctx: Ctx,
            path: Path<(String, String)>,
            ask: JsonBody<AckRequest>,
        ) -> Result<Json<AckAnswer>, ApiError> {
            acknowledge::<$verb>(state, ctx, path, ask).await
        }
    };
}

settle!(
    ack,
    ACK,
    "/api/v1/streams/{stream}/consumers/{consumer}/ack",
    "acknowledges the deliveries."
);
settle!(
    nak,
    NAK,
    "/api/v1/streams/{stream}/consumers/{consumer}/nak",
    "redelivers them (after `delay_ms`)."
);
settle!(
    term,
    TERM,
    "/api/v1/streams/{stream}/consumers/{consumer}/term",
    "gives them up (dead-lettered with `reason`)."
);

/// `POST …/consumers/{c}/ack|nak|term {seqs, delay_ms?, reason?}`: 200 `{done, failed}`; when
/// no sequence could be handled, the first refusal is the answer.
async fn acknowledge<const VERB: u8>(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, consumer)): Path<(String, String)>,
    JsonBody(ask): JsonBody<AckRequest>,
) -> Result<Json<AckAnswer>, ApiError> {
    let (seqs, kind) = ack_kind(ask, Verb::of(VERB))?;
    let AckOutcome { done, failed } = state
        .core
        .acknowledge(&ctx, &stream, &consumer, &seqs, &kind)
        .await?;
    if done.is_empty() {
        if let Some((_, err)) = failed.into_iter().next() {
            return Err(err.into());
        }
        return Ok(Json(AckAnswer {
            done,
            failed: Vec::new(),
        }));
    }
    let failed = failed
        .iter()
        .map(|(seq, err)| AckFailure {
            seq: *seq,
            error: err.body().error,
        })
        .collect();
    Ok(Json(AckAnswer { done, failed }))
}

/// `GET /api/v1/streams/{s}/messages/{seq}`: `{seq, stored_at, envelope}`, or with
/// `Accept: application/cloudevents+json` the envelope as a structured CloudEvent (its
/// sequence in the `ACE-Seq` header).
#[utoipa::path(
    get,
    path = "/api/v1/streams/{stream}/messages/{seq}",
    tag = "streams",
    params(
        ("stream" = String, Path, description = "The stream name"),
        ("seq" = u64, Path, description = "The stream sequence"),
    ),
    responses(
        (status = 200, description = "The stored message; a structured CloudEvent of its envelope when `Accept` names `application/cloudevents+json` (the sequence in the `ACE-Seq` header)",
            content(
                (StoredMessage = "application/json"),
                (Object = "application/cloudevents+json"),
            )
        ),
        (status = 400, description = "`INVALID_REQUEST`: the sequence is not a number", body = ErrorBody),
        (status = 404, description = "`STREAM_NOT_FOUND`, or `NOT_FOUND` when no message has that sequence", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_message(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, seq)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let message = state.core.get_message(&ctx, &stream, seq).await?;
    if !request::accepts(&headers, STRUCTURED_CONTENT_TYPE) {
        return Ok(Json(message).into_response());
    }
    let event = to_cloudevent_json(&message.envelope).map_err(ApiError::CloudEvent)?;
    Ok((
        [
            (header::CONTENT_TYPE, STRUCTURED_CONTENT_TYPE.to_owned()),
            (
                header::HeaderName::from_static("ace-seq"),
                message.seq.to_string(),
            ),
        ],
        event,
    )
        .into_response())
}
