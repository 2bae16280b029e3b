//! Streams, consumers and deliveries over HTTP: create/list/get/delete streams and consumers,
//! fetch, ack/nak/term, and read one stored message. Each handler parses, calls one `Core`
//! operation, and shapes the answer.

use std::time::Duration;

use ace_bus::{ConsumerConfig, ConsumerInfo, StreamConfig, StreamInfo};
use ace_core::{AckKind, AckOutcome};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::request::{Ctx, JsonBody};
use crate::error::ApiError;

/// `GET /api/v1/streams`.
pub(crate) async fn list_streams(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Value>, ApiError> {
    let streams = state.core.list_streams(&ctx).await?;
    Ok(Json(json!({ "streams": streams })))
}

/// `POST /api/v1/streams` with a stream config: 201 with the stream's info.
pub(crate) async fn add_stream(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    JsonBody(config): JsonBody<StreamConfig>,
) -> Result<(StatusCode, Json<StreamInfo>), ApiError> {
    let info = state.core.add_stream(&ctx, config).await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /api/v1/streams/{name}`.
pub(crate) async fn get_stream(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> Result<Json<StreamInfo>, ApiError> {
    Ok(Json(state.core.stream_info(&ctx, &name).await?))
}

/// `DELETE /api/v1/streams/{name}`: 204.
pub(crate) async fn delete_stream(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_stream(&ctx, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/streams/{s}/consumers`.
pub(crate) async fn list_consumers(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(stream): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let consumers = state.core.list_consumers(&ctx, &stream).await?;
    Ok(Json(json!({ "consumers": consumers })))
}

/// `POST /api/v1/streams/{s}/consumers` with a consumer config: 201 with its info.
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
pub(crate) async fn delete_consumer(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, consumer)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state.core.delete_consumer(&ctx, &stream, &consumer).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The body of a fetch.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FetchRequest {
    /// Most messages wanted (default 1).
    #[serde(default = "one")]
    batch: usize,
    /// Longest wait for the first message, milliseconds (default 0: answer at once).
    #[serde(default)]
    expires_ms: u64,
}

fn one() -> usize {
    1
}

/// `POST …/consumers/{c}/fetch {batch, expires_ms}`: `{messages: [{seq, delivery, envelope}]}`.
pub(crate) async fn fetch(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, consumer)): Path<(String, String)>,
    JsonBody(ask): JsonBody<FetchRequest>,
) -> Result<Json<Value>, ApiError> {
    let expires = Duration::from_millis(ask.expires_ms);
    let delivered = state
        .core
        .fetch(&ctx, &stream, &consumer, ask.batch, expires)
        .await?;
    let messages: Vec<Value> = delivered
        .into_iter()
        .map(|d| json!({ "seq": d.seq, "delivery": d.delivery_count, "envelope": d.envelope }))
        .collect();
    Ok(Json(json!({ "messages": messages })))
}

/// The body of an ack, nak or term.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AckRequest {
    /// The stream sequences of the deliveries.
    seqs: Vec<u64>,
    /// Nak only: redeliver after this many milliseconds.
    delay_ms: Option<u64>,
    /// Term only: why the message is given up.
    reason: Option<String>,
}

/// Which of ack, nak, term a route is.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Ack,
    Nak,
    Term,
}

/// Route parameter of [`acknowledge`] for ack.
pub(crate) const ACK: u8 = 0;
/// Route parameter of [`acknowledge`] for nak.
pub(crate) const NAK: u8 = 1;
/// Route parameter of [`acknowledge`] for term.
pub(crate) const TERM: u8 = 2;

impl Verb {
    const fn of(code: u8) -> Verb {
        match code {
            ACK => Verb::Ack,
            NAK => Verb::Nak,
            _ => Verb::Term,
        }
    }
}

impl AckRequest {
    fn kind(self, verb: Verb) -> Result<(Vec<u64>, AckKind), ApiError> {
        let misplaced = |field| ApiError::InvalidField {
            field,
            reason: format!("does not apply to {verb:?}").to_lowercase(),
        };
        let kind = match verb {
            Verb::Ack if self.delay_ms.is_some() => return Err(misplaced("delay_ms")),
            Verb::Ack | Verb::Nak if self.reason.is_some() => return Err(misplaced("reason")),
            Verb::Term if self.delay_ms.is_some() => return Err(misplaced("delay_ms")),
            Verb::Ack => AckKind::Ack,
            Verb::Nak => AckKind::Nak(self.delay_ms.map(Duration::from_millis)),
            Verb::Term => AckKind::Term(self.reason.unwrap_or_else(|| "terminated".to_owned())),
        };
        Ok((self.seqs, kind))
    }
}

/// `POST …/consumers/{c}/ack|nak|term {seqs, delay_ms?, reason?}`: 200 `{done, failed}`; when
/// no sequence could be handled, the first refusal is the answer.
pub(crate) async fn acknowledge<const VERB: u8>(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, consumer)): Path<(String, String)>,
    JsonBody(ask): JsonBody<AckRequest>,
) -> Result<Json<Value>, ApiError> {
    let (seqs, kind) = ask.kind(Verb::of(VERB))?;
    let AckOutcome { done, failed } = state
        .core
        .acknowledge(&ctx, &stream, &consumer, &seqs, &kind)
        .await?;
    if done.is_empty() {
        if let Some((_, err)) = failed.into_iter().next() {
            return Err(err.into());
        }
        return Ok(Json(json!({ "done": [], "failed": [] })));
    }
    let failed: Vec<Value> = failed
        .iter()
        .map(|(seq, err)| json!({ "seq": seq, "error": err.body().error }))
        .collect();
    Ok(Json(json!({ "done": done, "failed": failed })))
}

/// `GET /api/v1/streams/{s}/messages/{seq}`: `{seq, stored_at, envelope}`.
pub(crate) async fn get_message(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((stream, seq)): Path<(String, u64)>,
) -> Result<Json<Value>, ApiError> {
    let stored = state.core.get_message(&ctx, &stream, seq).await?;
    Ok(Json(json!({
        "seq": stored.seq,
        "stored_at": stored.stored_at,
        "envelope": stored.envelope,
    })))
}
