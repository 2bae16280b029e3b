//! The schema registry over HTTP (`/api/v1/registry`), shaped like Confluent Schema Registry's
//! with semver versions; the table of routes and bodies is `ace_envelope::api::registry`'s.
//! Reads and dry-run checks need an authenticated caller; a registration or a mode change is
//! the core's (`ace_core::Core::register_contract`): judged, stored, recorded, then in force.

use ace_contracts::{CompatibilityMode, Version};
use ace_envelope::ErrorBody;
use ace_envelope::api::registry::{
    CompatibilityAnswer, CompatibilityRequest, Incompatibility, RegisterSchema, RegisteredSchema,
    SchemaVersion, SubjectConfig,
};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::AppState;
use super::request::{Ctx, JsonBody};
use crate::error::ApiError;

/// `GET /api/v1/registry/subjects`: every contract subject, sorted.
#[utoipa::path(
    get,
    path = "/api/v1/registry/subjects",
    tag = "registry",
    responses(
        (status = 200, description = "Every contract subject, sorted", body = Vec<String>),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn subjects(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
) -> Result<Json<Vec<String>>, ApiError> {
    let registry = state.core.contracts(&ctx)?;
    Ok(Json(registry.subjects().map(str::to_owned).collect()))
}

/// `GET /api/v1/registry/subjects/{subject}/versions`: its versions, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/registry/subjects/{subject}/versions",
    tag = "registry",
    params(("subject" = String, Path, description = "The contract's subject")),
    responses(
        (status = 200, description = "Its versions, oldest first", body = Vec<String>),
        (status = 404, description = "`NOT_FOUND`: no such subject", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn versions(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(subject): Path<String>,
) -> Result<Json<Vec<String>>, ApiError> {
    let versions = state
        .core
        .contracts(&ctx)?
        .versions(&subject)
        .map_err(ace_core::CoreError::Contract)?;
    Ok(Json(versions.iter().map(Version::to_string).collect()))
}

/// `GET /api/v1/registry/subjects/{subject}/versions/{version}`: one version (`latest` for
/// the newest) with its schema.
#[utoipa::path(
    get,
    path = "/api/v1/registry/subjects/{subject}/versions/{version}",
    tag = "registry",
    params(
        ("subject" = String, Path, description = "The contract's subject"),
        ("version" = String, Path, description = "A semver version, or `latest`"),
    ),
    responses(
        (status = 200, description = "The version and its schema", body = SchemaVersion),
        (status = 400, description = "`INVALID_REQUEST`: the version is not semver or `latest`", body = ErrorBody),
        (status = 404, description = "`NOT_FOUND`: no such subject or version", body = ErrorBody),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn version(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((subject, version)): Path<(String, String)>,
) -> Result<Json<SchemaVersion>, ApiError> {
    let registry = state.core.contracts(&ctx)?;
    let version = match version.as_str() {
        "latest" => None,
        given => Some(semver(given)?),
    };
    let found = registry
        .get(&subject, version.as_ref())
        .map_err(ace_core::CoreError::Contract)?;
    Ok(Json(SchemaVersion {
        subject: found.subject().to_owned(),
        version: found.version().to_string(),
        schema: found.schema().clone(),
        compatibility: registry.compatibility(&subject).to_string(),
    }))
}

/// `POST /api/v1/registry/subjects/{subject}/versions`: registers a version. 201 registered,
/// 200 when this exact schema is registered at this version already, 409 `CONFLICT` when the
/// subject's compatibility mode refuses it (`details.incompatibilities`, each with its pointer
/// and reason) or the version is not above the latest.
#[utoipa::path(
    post,
    path = "/api/v1/registry/subjects/{subject}/versions",
    tag = "registry",
    params(("subject" = String, Path, description = "The contract's subject")),
    request_body = RegisterSchema,
    responses(
        (status = 200, description = "Already registered: nothing changed", body = RegisteredSchema),
        (status = 201, description = "Registered, stored and recorded", body = RegisteredSchema),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: a bad body, version, subject, or a schema that does not compile", body = ErrorBody),
        (status = 409, description = "`CONFLICT`: incompatible under the subject's mode (`details.incompatibilities`), or the version exists or is not above the latest", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn register(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(subject): Path<String>,
    JsonBody(body): JsonBody<RegisterSchema>,
) -> Result<(StatusCode, Json<RegisteredSchema>), ApiError> {
    let version = semver(&body.version)?;
    let done = state
        .core
        .register_contract(&ctx, &subject, version, body.schema)
        .await?;
    let status = if done.already_registered {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(RegisteredSchema {
            subject: done.subject,
            version: done.version.to_string(),
            compatibility: done.compatibility.to_string(),
            checked_against: done
                .checked_against
                .iter()
                .map(Version::to_string)
                .collect(),
            already_registered: done.already_registered,
            advisories: done.advisories.iter().map(wire).collect(),
        }),
    ))
}

/// The query of a compatibility check.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckQuery {
    /// List every incompatibility.
    #[serde(default)]
    verbose: bool,
}

/// `POST /api/v1/registry/compatibility/subjects/{subject}/versions/{version}`: would the
/// schema be admitted as `version` of `subject`? Registers nothing.
#[utoipa::path(
    post,
    path = "/api/v1/registry/compatibility/subjects/{subject}/versions/{version}",
    tag = "registry",
    params(
        ("subject" = String, Path, description = "The contract's subject"),
        ("version" = String, Path, description = "The version the candidate would have"),
        ("verbose" = Option<bool>, Query, description = "List every incompatibility"),
    ),
    request_body = CompatibilityRequest,
    responses(
        (status = 200, description = "Whether it is compatible (and, verbose, why not)", body = CompatibilityAnswer),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: a bad body, version or mode, or a schema that does not compile", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn check(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path((subject, version)): Path<(String, String)>,
    Query(query): Query<CheckQuery>,
    JsonBody(body): JsonBody<CompatibilityRequest>,
) -> Result<Json<CompatibilityAnswer>, ApiError> {
    let version = semver(&version)?;
    let mode = body.compatibility.as_deref().map(mode).transpose()?;
    let found = state
        .core
        .check_contract(&ctx, &subject, &version, body.schema, mode)?;
    let (messages, incompatibilities) = if query.verbose {
        (
            found.iter().map(ToString::to_string).collect(),
            found.iter().map(wire).collect(),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Json(CompatibilityAnswer {
        is_compatible: found.is_empty(),
        messages,
        incompatibilities,
    }))
}

/// `GET /api/v1/registry/config/{subject}`: the subject's compatibility mode.
#[utoipa::path(
    get,
    path = "/api/v1/registry/config/{subject}",
    tag = "registry",
    params(("subject" = String, Path, description = "The contract's subject")),
    responses(
        (status = 200, description = "Its mode (the default when it has none of its own)", body = SubjectConfig),
        super::openapi::Refusals,
    )
)]
pub(crate) async fn get_config(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(subject): Path<String>,
) -> Result<Json<SubjectConfig>, ApiError> {
    let registry = state.core.contracts(&ctx)?;
    Ok(Json(SubjectConfig {
        compatibility: registry.compatibility(&subject).to_string(),
    }))
}

/// `PUT /api/v1/registry/config/{subject}`: sets the subject's compatibility mode (stored and
/// recorded like a registration).
#[utoipa::path(
    put,
    path = "/api/v1/registry/config/{subject}",
    tag = "registry",
    params(("subject" = String, Path, description = "The contract's subject")),
    request_body = SubjectConfig,
    responses(
        (status = 200, description = "The mode now in force", body = SubjectConfig),
        (status = 400, description = "`INVALID_JSON`, `INVALID_REQUEST`: a bad body, mode or subject", body = ErrorBody),
        super::openapi::BodyRefusals,
        super::openapi::Refusals,
    )
)]
pub(crate) async fn put_config(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    Path(subject): Path<String>,
    JsonBody(body): JsonBody<SubjectConfig>,
) -> Result<Json<SubjectConfig>, ApiError> {
    let mode = mode(&body.compatibility)?;
    state
        .core
        .set_contract_compatibility(&ctx, &subject, mode)
        .await?;
    Ok(Json(SubjectConfig {
        compatibility: mode.to_string(),
    }))
}

fn semver(given: &str) -> Result<Version, ApiError> {
    Version::parse(given).map_err(|err| ApiError::InvalidField {
        field: "version",
        reason: format!("`{given}` is not a semver version: {err}"),
    })
}

fn mode(given: &str) -> Result<CompatibilityMode, ApiError> {
    given.parse().map_err(|reason| ApiError::InvalidField {
        field: "compatibility",
        reason,
    })
}

fn wire(found: &ace_contracts::Incompatibility) -> Incompatibility {
    Incompatibility {
        direction: found.direction.to_string(),
        pointer: found.pointer.clone(),
        rule: found.rule.to_string(),
        reason: found.reason.clone(),
        against: found.against.as_ref().map(Version::to_string),
    }
}
