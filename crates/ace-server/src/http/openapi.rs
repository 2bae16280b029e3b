//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API, generated from the code — the
//! `#[utoipa::path]` of every handler and the `ToSchema` of the `ace-envelope` wire types — and
//! built once. The tests (`tests/it/openapi.rs`) hold it and the router to each other both ways.
//!
//! `/ws` (the WebSocket upgrade) is not an OpenAPI operation and is left out (`/asyncapi.json`
//! describes it); `/openapi.json` describes itself.

use std::sync::LazyLock;

use ace_envelope::ErrorBody;
use ace_envelope::api::http::{Accepted, Pending};
use axum::http::header;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::{IntoParams, IntoResponses, OpenApi, ToSchema};

use super::{
    admin, agents, approvals, asyncapi, health, ledger, messages, registry, sessions, streams,
    workflows,
};

/// The 202 answer of a publish: where the envelope went, or the approval that holds it.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
pub(crate) enum PublishAnswer {
    /// Stored (or recognised as a duplicate).
    Accepted(Accepted),
    /// Held for a human approval: `{status: "pending_approval", id, approval_id}`.
    Pending(Pending),
}

/// The path of a stream's routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only its parameters are used
pub(crate) struct StreamPath {
    /// The stream name.
    stream: String,
}

/// The path of a consumer's routes.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // only its parameters are used
pub(crate) struct ConsumerPath {
    /// The stream name.
    stream: String,
    /// The consumer name.
    consumer: String,
}

/// The refusals every `/api/v1` operation may answer, with the one error body.
#[derive(IntoResponses)]
#[allow(dead_code)] // only its responses are used
pub(crate) enum Refusals {
    /// No or bad credentials.
    #[response(
        status = 401,
        description = "`UNAUTHENTICATED`: missing or bad credentials"
    )]
    Unauthenticated(ErrorBody),
    /// Not allowed.
    #[response(
        status = 403,
        description = "`FORBIDDEN`: not allowed by RBAC or policy"
    )]
    Forbidden(ErrorBody),
    /// Our failure.
    #[response(status = 500, description = "`INTERNAL`")]
    Internal(ErrorBody),
    /// Not available now.
    #[response(
        status = 503,
        description = "`UNAVAILABLE`: the engine or a dependency is not available"
    )]
    Unavailable(ErrorBody),
    /// Too slow.
    #[response(status = 504, description = "`TIMEOUT`: the request timeout passed")]
    Timeout(ErrorBody),
}

/// The refusals of an operation that reads a JSON body.
#[derive(IntoResponses)]
#[allow(dead_code)] // only its responses are used
pub(crate) enum BodyRefusals {
    /// Over the body limit.
    #[response(
        status = 413,
        description = "`PAYLOAD_TOO_LARGE`: the body is over the limit"
    )]
    TooLarge(ErrorBody),
    /// Not JSON.
    #[response(
        status = 415,
        description = "`UNSUPPORTED_MEDIA_TYPE`: the body is not `application/json`"
    )]
    UnsupportedMediaType(ErrorBody),
}

/// The document: every operation and the schemas they name.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ACE::COMMS",
        description = "The HTTP API of the ACE::COMMS server. Every error answers the `ErrorBody`."
    ),
    paths(
        health::health,
        health::ready,
        health::metrics,
        openapi_json,
        asyncapi::asyncapi_json,
        messages::publish,
        messages::publish_batch,
        agents::list,
        agents::get_agent,
        agents::heartbeat,
        approvals::list,
        approvals::get_approval,
        approvals::decide,
        approvals::decide_alias,
        sessions::get_session,
        sessions::put_session,
        streams::list_streams,
        streams::add_stream,
        streams::get_stream,
        streams::delete_stream,
        streams::repair_stream,
        streams::list_consumers,
        streams::add_consumer,
        streams::get_consumer,
        streams::delete_consumer,
        streams::fetch,
        streams::ack,
        streams::nak,
        streams::term,
        streams::get_message,
        ledger::checkpoint,
        ledger::key,
        ledger::entries,
        ledger::inclusion,
        ledger::consistency,
        admin::reload,
        registry::subjects,
        registry::versions,
        registry::version,
        registry::register,
        registry::check,
        registry::get_config,
        registry::put_config,
        workflows::list,
        workflows::get_workflow,
        workflows::enable,
        workflows::disable,
        workflows::reload,
        workflows::stats,
    ),
    components(schemas(PublishAnswer, ErrorBody)),
    modifiers(&Security)
)]
struct ApiDoc;

/// The credentials the server takes (any one of them), required on every `/api/v1` operation
/// and on none of the operational routes (`/health`, `/ready`, `/openapi.json`, `/asyncapi.json`); `/metrics`
/// takes them when `auth.metrics` is `authenticated`.
/// In development mode (`auth.mode: development`) nothing is checked.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "`Authorization: Bearer <jwt>`, verified against `auth.jwt` (issuer, \
                     audience, keys, lifetime)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-ACE-API-Key",
                "An API key listed (as its SHA-256) in `auth.api_keys`",
            ))),
        );
        components.add_security_scheme(
            "mutual_tls",
            SecurityScheme::MutualTls {
                description: Some(
                    "A client certificate verified against `tls.client_ca` (with `auth.mtls: true`)"
                        .to_owned(),
                ),
                extensions: None,
            },
        );
        let any_of = ["bearer", "api_key", "mutual_tls"]
            .map(|name| SecurityRequirement::new(name, Vec::<String>::new()));
        for (path, item) in doc.paths.paths.iter_mut() {
            let security = if path.starts_with("/api/") {
                any_of.to_vec()
            } else if path == "/metrics" {
                // `auth.metrics`: open (the default) or authenticated.
                std::iter::once(SecurityRequirement::default())
                    .chain(any_of.iter().cloned())
                    .collect()
            } else {
                vec![SecurityRequirement::default()]
            };
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                operation.security = Some(security.clone());
            }
        }
    }
}

/// The document as JSON, rendered on first use.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!(r#"{{"error":"openapi document: {e}"}}"#))
});

/// `GET /openapi.json`: the OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object, content_type = "application/json"))
)]
pub(crate) async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_ledger_entry_kinds_then_the_kind_parameter_of_ledger_entries_names_every_one() {
        let doc: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        let params = &doc["paths"]["/api/v1/ledger/entries"]["get"]["parameters"];
        let kind = params
            .as_array()
            .and_then(|p| p.iter().find(|p| p["name"] == "kind"))
            .expect("a `kind` parameter");
        let text = kind["description"].as_str().unwrap_or_default();
        for k in ace_ledger::EntryKind::ALL {
            assert!(text.contains(k.as_str()), "`{k}` missing from: {text}");
        }
    }
}
