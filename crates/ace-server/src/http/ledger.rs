//! The ledger over HTTP, read-only and authorized as `Action::ReadLedger`: the latest signed
//! checkpoint, inclusion and consistency proofs, entries by kind and time, and the public key
//! that checks checkpoint signatures.
//!
//! The bodies are `ace-ledger`'s own serde shapes, hashes and signatures in lowercase hex:
//! - checkpoint: `{size, root_hash, chain_head, ts, key_id, signature}`; the signature is
//!   Ed25519 over `ace-ledger/checkpoint/v1\n` + the canonical JSON (sorted keys, no spaces) of
//!   every field but `signature`;
//! - inclusion proof: `{seq, tree_size, leaf_hash, root_hash, path}` (RFC 6962 §2.1.1 audit
//!   path, leaf to root);
//! - consistency proof: `{from, to, from_root, to_root, path}` (RFC 6962 §2.1.2);
//! - entries: `{entries: [{seq, ts, kind, actor, subject, message_id, content_sha256, decision,
//!   details, chain_hash}], next_after}`;
//! - key: `{algorithm: "ed25519", key_id, public_key}`.
//!
//! Query parameters are checked here and a bad one is answered 400 `INVALID_REQUEST` naming it.

use std::collections::HashMap;

use ace_core::EntryQuery;
use ace_envelope::ErrorBody;
use ace_ledger::{Checkpoint, ConsistencyProof, Entry, EntryKind, InclusionProof};
use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AppState;
use super::request::Ctx;
use crate::error::ApiError;

/// One page of entries and the cursor of the next (`after=`), absent on the last page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct EntryPage {
    /// The entries, oldest first.
    entries: Vec<Entry>,
    /// The `after=` of the next page; absent (null) on the last.
    next_after: Option<u64>,
}

type Params = Query<HashMap<String, String>>;

/// `GET /api/v1/ledger/checkpoint`: the latest signed checkpoint (one is made if there is none).
#[utoipa::path(
    get,
    path = "/api/v1/ledger/checkpoint",
    tag = "ledger",
    responses(
        (status = 200, description = "The latest signed tree head", body = Checkpoint),
        (status = 404, description = "`NOT_FOUND`: this server keeps no ledger", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Checkpoint>, ApiError> {
    Ok(Json(state.core.ledger_checkpoint(&ctx).await?))
}

/// `GET /api/v1/ledger/key`: the Ed25519 public key checkpoints are signed with.
#[utoipa::path(
    get,
    path = "/api/v1/ledger/key",
    tag = "ledger",
    responses(
        (status = 200, description = "The Ed25519 key checkpoints are signed with, in hex", body = ace_core::LedgerPublicKey),
        (status = 404, description = "`NOT_FOUND`: this server keeps no ledger", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn key(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<ace_core::LedgerPublicKey>, ApiError> {
    Ok(Json(state.core.ledger_key(&ctx).await?))
}

/// `GET /api/v1/ledger/proof/inclusion/{seq}?size=`: entry `seq` is in the tree of `size`
/// entries (default: the latest checkpoint's size).
#[utoipa::path(
    get,
    path = "/api/v1/ledger/proof/inclusion/{seq}",
    tag = "ledger",
    params(
        ("seq" = u64, Path, description = "The entry (0-based leaf index)"),
        ("size" = Option<u64>, Query, description = "The tree size to prove against; default the latest checkpoint's"),
    ),
    responses(
        (status = 200, description = "The audit path of the entry to the root of the tree of `size` entries", body = InclusionProof),
        (status = 400, description = "`INVALID_REQUEST`: `seq` or `size` is not a number or out of range (the message names it)", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: this server keeps no ledger", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn inclusion(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(seq): Path<String>,
    Query(params): Params,
) -> Result<Json<InclusionProof>, ApiError> {
    only(&params, &["size"])?;
    let seq = number("seq", &seq)?;
    let size = params.get("size").map(|s| number("size", s)).transpose()?;
    Ok(Json(
        state.core.ledger_inclusion_proof(&ctx, seq, size).await?,
    ))
}

/// `GET /api/v1/ledger/proof/consistency?from=&to=`: the tree of `from` entries is a prefix of
/// the tree of `to` entries.
#[utoipa::path(
    get,
    path = "/api/v1/ledger/proof/consistency",
    tag = "ledger",
    params(
        ("from" = u64, Query, description = "The older tree size"),
        ("to" = u64, Query, description = "The newer tree size"),
    ),
    responses(
        (status = 200, description = "The proof that the tree of `from` entries is a prefix of the tree of `to`", body = ConsistencyProof),
        (status = 400, description = "`INVALID_REQUEST`: `from` or `to` missing, not a number, out of range or `from > to`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: this server keeps no ledger", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn consistency(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(params): Params,
) -> Result<Json<ConsistencyProof>, ApiError> {
    only(&params, &["from", "to"])?;
    let from = number("from", required(&params, "from")?)?;
    let to = number("to", required(&params, "to")?)?;
    Ok(Json(
        state.core.ledger_consistency_proof(&ctx, from, to).await?,
    ))
}

/// `GET /api/v1/ledger/entries?kind=&since=&until=&after=&limit=`: entries oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/ledger/entries",
    tag = "ledger",
    params(
        ("kind" = Option<String>, Query, description = "Only this kind: accepted, denied, held, approved, rejected, expired, dead_lettered, config_changed, workflow_run, session_written, storage_recovered, storage_damaged, stream_repaired"),
        ("since" = Option<String>, Query, description = "Only entries recorded at or after this RFC 3339 time"),
        ("until" = Option<String>, Query, description = "Only entries recorded before this RFC 3339 time"),
        ("after" = Option<u64>, Query, description = "Only entries after this seq (the `next_after` of the previous page)"),
        ("limit" = Option<usize>, Query, description = "At most this many, 1 to 1000 (default 100)"),
    ),
    responses(
        (status = 200, description = "One page of entries; `next_after` is the cursor of the next page, null on the last", body = EntryPage),
        (status = 400, description = "`INVALID_REQUEST`: a bad parameter (the message names it)", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: this server keeps no ledger", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn entries(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Query(params): Params,
) -> Result<Json<EntryPage>, ApiError> {
    only(&params, &["kind", "since", "until", "after", "limit"])?;
    let kind = params
        .get("kind")
        .map(|k| {
            k.parse::<EntryKind>()
                .map_err(|reason| invalid("kind", reason))
        })
        .transpose()?;
    let query = EntryQuery {
        kind,
        since: params.get("since").map(|t| time("since", t)).transpose()?,
        until: params.get("until").map(|t| time("until", t)).transpose()?,
        after: params
            .get("after")
            .map(|a| number("after", a))
            .transpose()?,
        limit: params
            .get("limit")
            .map(|l| number("limit", l).map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
            .transpose()?,
    };
    let limit = query.limit.unwrap_or(100);
    let entries = state.core.ledger_entries(&ctx, query).await?;
    let next_after = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(EntryPage {
        entries,
        next_after,
    }))
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ApiError {
    ApiError::Core(ace_core::CoreError::InvalidRequest {
        field,
        reason: reason.into(),
    })
}

/// Refuses a parameter the route does not know (a typo would otherwise be silently ignored).
fn only(params: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    match params.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(invalid(
            "query",
            format!(
                "unknown parameter `{unknown}` (this route takes {})",
                known.join(", ")
            ),
        )),
        None => Ok(()),
    }
}

fn required<'a>(
    params: &'a HashMap<String, String>,
    field: &'static str,
) -> Result<&'a str, ApiError> {
    params
        .get(field)
        .map(String::as_str)
        .ok_or_else(|| invalid(field, "is required"))
}

fn number(field: &'static str, text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        invalid(
            field,
            format!("must be a non-negative integer, got `{text}`"),
        )
    })
}

fn time(field: &'static str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            invalid(
                field,
                format!("must be an RFC 3339 time (2026-01-31T12:00:00Z), got `{text}`: {e}"),
            )
        })
}
