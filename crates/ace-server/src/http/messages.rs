//! `POST /api/v1/messages` and `POST /api/v1/messages/batch`: turn what arrived (an envelope,
//! or a CloudEvent in structured or binary mode) into envelopes and hand them to the core.
//! A CloudEvent from any producer is accepted: one without the `acekind` extension is placed by
//! the `cloudevents` mapping of the configuration (see `ace_envelope`'s "Foreign CloudEvents").

use std::time::Instant;

use ace_core::{Accepted, CoreError, RequestContext};
use ace_envelope::api::http::{BatchAnswer, BatchItem, Pending};
use ace_envelope::{
    Envelope, ErrorBody, ErrorCode, Kind, from_binary_mapped, from_cloudevent_json_mapped,
};
use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::json;
use serde_json::value::RawValue;

use super::request::{self, Ctx};
use super::{AppState, CloudEventsIngest};
use crate::error::ApiError;

const SINGLE_TYPES: &str =
    "application/json (an envelope), application/cloudevents+json, or CloudEvents binary mode";
const BATCH_TYPES: &str =
    "application/json (an array of envelopes) or application/cloudevents-batch+json";

/// `POST /api/v1/messages`: 202 `{id, stream, seq, duplicate}`.
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    request_body(
        description = "One envelope, a structured CloudEvent, or a CloudEvent in binary mode (`ce-*` headers, the payload as body). A CloudEvent from any producer is accepted: one without the `acekind` extension gets its subject and kind from the server's `cloudevents` rules, its `id`, `source` and `subject` kept in `headers` (`ce-id`, `ce-source`, `ce-subject`); the sender is always the authenticated caller",
        content(
            (Envelope = "application/json"),
            (Object = "application/cloudevents+json"),
        )
    ),
    responses(
        (status = 202, description = "Stored (or a duplicate inside the dedup window), or held for approval (`{status: \"pending_approval\", id, approval_id}`)", body = super::openapi::PublishAnswer),
        (status = 400, description = "`INVALID_JSON`, `INVALID_ENVELOPE`, `INVALID_SUBJECT`, `MESSAGE_EXPIRED`, `HOP_LIMIT_EXCEEDED`", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`", body = ErrorBody),
        (status = 422, description = "`CONTRACT_VIOLATION`, `UNKNOWN_SCHEMA`", body = ErrorBody),
        (status = 429, description = "`BACKPRESSURE`: the stream is full", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn publish(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let bytes = request::body(body, state.limits.max_body_bytes)?;
    let (envelope, cloudevent) = envelope(&state.cloudevents, &headers, &bytes)?;
    let protocol = if cloudevent {
        CLOUDEVENTS
    } else {
        ctx.transport
    };
    let accepted = state.publish_as(&ctx, protocol, envelope).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// The `protocol` of `ace_comms_messages_total` for a CloudEvent, whatever its mode.
const CLOUDEVENTS: &str = "cloudevents";

/// One envelope from a single-message body, and whether it came as a CloudEvent (a foreign
/// one placed by `ce`).
fn envelope(
    ce: &CloudEventsIngest,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<(Envelope, bool), ApiError> {
    if headers.contains_key("ce-specversion") {
        let pairs = headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)));
        return from_binary_mapped(pairs, bytes, &ce.mapping, ce.clock.now())
            .map(|e| (e, true))
            .map_err(ApiError::CloudEvent);
    }
    match request::media_type(headers).as_str() {
        "application/json" => serde_json::from_slice(bytes)
            .map(|e| (e, false))
            .map_err(|e| ApiError::json(&e, "envelope", ErrorCode::InvalidEnvelope)),
        "application/cloudevents+json" => {
            from_cloudevent_json_mapped(bytes, &ce.mapping, ce.clock.now())
                .map(|e| (e, true))
                .map_err(ApiError::CloudEvent)
        }
        other => Err(ApiError::UnsupportedMediaType {
            got: other.to_owned(),
            accepted: SINGLE_TYPES,
        }),
    }
}

/// `POST /api/v1/messages/batch`: 200 `{accepted, refused, results: [...]}`, one result per
/// envelope in order — `{status: 202, id, stream, seq, duplicate}` or `{status, error}`.
#[utoipa::path(
    post,
    path = "/api/v1/messages/batch",
    tag = "messages",
    request_body(
        description = "An array of envelopes, or a CloudEvents batch (each event placed as in a single publish)",
        content(
            (Vec<Envelope> = "application/json"),
            (Vec<Object> = "application/cloudevents-batch+json"),
        )
    ),
    responses(
        (status = 200, description = "One result per envelope, in order", body = BatchAnswer),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: not an array, empty, or more envelopes than allowed", body = ErrorBody),
        (status = 413, description = "`PAYLOAD_TOO_LARGE`", body = ErrorBody),
        (status = 415, description = "`UNSUPPORTED_MEDIA_TYPE`", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn publish_batch(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchAnswer>, ApiError> {
    let bytes = request::body(body, state.limits.max_body_bytes)?;
    let media = request::media_type(&headers);
    let cloudevents = match media.as_str() {
        "application/json" => false,
        "application/cloudevents-batch+json" => true,
        _ => {
            return Err(ApiError::UnsupportedMediaType {
                got: media,
                accepted: BATCH_TYPES,
            });
        }
    };
    let items: Vec<&RawValue> = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::json(&e, "batch (an array)", ErrorCode::InvalidJson))?;
    let max = state.limits.max_batch_messages;
    if items.len() > max {
        return Err(ApiError::BatchTooLarge {
            count: items.len(),
            max,
        });
    }
    if items.is_empty() {
        return Err(ApiError::InvalidField {
            field: "batch",
            reason: "holds no envelope".to_owned(),
        });
    }
    let parsed: Vec<Result<Envelope, ErrorBody>> = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| decode_item(i, item, cloudevents.then_some(&*state.cloudevents)))
        .collect();
    let protocol = if cloudevents {
        CLOUDEVENTS
    } else {
        ctx.transport
    };
    let results = state.publish_parsed(&ctx, protocol, parsed).await?;
    Ok(Json(batch_answer(results)))
}

/// One batch item, decoded once from its own text: an envelope, or (with `cloudevents`) a
/// structured CloudEvent.
fn decode_item(
    index: usize,
    item: &RawValue,
    cloudevents: Option<&CloudEventsIngest>,
) -> Result<Envelope, ErrorBody> {
    let decoded = match cloudevents {
        Some(ce) => from_cloudevent_json_mapped(item.get().as_bytes(), &ce.mapping, ce.clock.now())
            .map_err(|e| (e.code(), e.to_string())),
        None => serde_json::from_str(item.get())
            .map_err(|e| (ErrorCode::InvalidEnvelope, e.to_string())),
    };
    decoded.map_err(|(code, message)| {
        ErrorBody::with_details(
            code,
            format!("batch[{index}]: {message}"),
            json!({ "index": index }),
        )
    })
}

/// The answer to a batch: each result in its place, and the counts of each kind.
pub(crate) fn batch_answer(results: Vec<Result<Accepted, ErrorBody>>) -> BatchAnswer {
    let results: Vec<BatchItem> = results
        .into_iter()
        .map(|r| match r {
            Ok(a) => BatchItem::Accepted {
                status: StatusCode::ACCEPTED.as_u16(),
                accepted: a,
            },
            Err(body) => match held(&body) {
                Some(pending) => BatchItem::Held {
                    status: StatusCode::ACCEPTED.as_u16(),
                    held: pending,
                },
                None => BatchItem::Refused {
                    status: body.error.code.http_status(),
                    error: body.error,
                },
            },
        })
        .collect();
    let count = |f: fn(&BatchItem) -> bool| results.iter().filter(|i| f(i)).count();
    BatchAnswer {
        accepted: count(|i| matches!(i, BatchItem::Accepted { .. })),
        refused: count(|i| matches!(i, BatchItem::Refused { .. })),
        held: count(|i| matches!(i, BatchItem::Held { .. })),
        results,
    }
}

/// The approval holding a batch item, read back from its `PENDING_APPROVAL` body.
pub(crate) fn held(body: &ErrorBody) -> Option<Pending> {
    if body.error.code != ErrorCode::PendingApproval {
        return None;
    }
    let details = &body.error.details;
    let id = details["id"].as_str()?.parse().ok()?;
    Some(Pending::new(id, details["approval_id"].as_str()?))
}

impl AppState {
    /// One publish through the core, counted (under the request's transport) and timed.
    pub(crate) async fn publish(
        &self,
        ctx: &RequestContext,
        envelope: Envelope,
    ) -> Result<Accepted, CoreError> {
        self.publish_as(ctx, ctx.transport, envelope).await
    }

    /// [`AppState::publish`] counted under `protocol`.
    async fn publish_as(
        &self,
        ctx: &RequestContext,
        protocol: &str,
        envelope: Envelope,
    ) -> Result<Accepted, CoreError> {
        let kind = envelope.kind;
        let started = Instant::now();
        let accepted = self.core.publish(ctx, envelope).await?;
        self.metrics
            .latency
            .observe(started.elapsed().as_secs_f64());
        self.count_published(&accepted, protocol, kind);
        Ok(accepted)
    }

    /// Publishes the envelopes that decoded, keeping every answer in its place (the
    /// envelopes move into the core's batch; none is copied).
    pub(crate) async fn publish_parsed(
        &self,
        ctx: &RequestContext,
        protocol: &str,
        parsed: Vec<Result<Envelope, ErrorBody>>,
    ) -> Result<Vec<Result<Accepted, ErrorBody>>, CoreError> {
        let mut envelopes = Vec::with_capacity(parsed.len());
        let mut kinds = Vec::with_capacity(parsed.len());
        let mut answers: Vec<Option<Result<Accepted, ErrorBody>>> = parsed
            .into_iter()
            .map(|item| match item {
                Ok(envelope) => {
                    kinds.push(envelope.kind);
                    envelopes.push(envelope);
                    None
                }
                Err(body) => Some(Err(body)),
            })
            .collect();
        let started = Instant::now();
        let mut published = self.core.publish_batch(ctx, envelopes).await?.into_iter();
        let elapsed = started.elapsed().as_secs_f64();
        let mut kinds = kinds.into_iter();
        for answer in &mut answers {
            if answer.is_none() {
                let kind = kinds.next();
                *answer = Some(match published.next() {
                    Some(Ok(accepted)) => {
                        self.metrics.latency.observe(elapsed);
                        if let Some(kind) = kind {
                            self.count_published(&accepted, protocol, kind);
                        }
                        Ok(accepted)
                    }
                    Some(Err(err)) => Err(self.refusal(&err)),
                    None => Err(ErrorBody::new(
                        ErrorCode::Internal,
                        ErrorCode::Internal.meaning(),
                    )),
                });
            }
            // A held item is answered 202 like a single held publish, so it is not an error
            // (holds are counted by `ace_comms_policy_held_total`).
            if let Some(Err(body)) = answer
                && held(body).is_none()
            {
                self.metrics
                    .errors
                    .with_label_values(&[body.error.code.as_str()])
                    .inc();
            }
        }
        Ok(answers.into_iter().flatten().collect())
    }

    pub(crate) fn count_published(&self, accepted: &Accepted, protocol: &str, kind: Kind) {
        let stream = accepted.stream.as_deref().unwrap_or("none");
        let duplicate = if accepted.duplicate { "true" } else { "false" };
        self.metrics
            .published
            .with_label_values(&[stream, duplicate])
            .inc();
        self.metrics
            .messages
            .with_label_values(&[protocol, kind.as_str()])
            .inc();
    }

    /// The body of one refused batch item; internal failures are logged here.
    fn refusal(&self, err: &CoreError) -> ErrorBody {
        if err.is_internal() {
            tracing::error!(error = %err, "batch item failed on our side");
        }
        err.body()
    }
}
