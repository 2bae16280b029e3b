//! `GET /asyncapi.json`: the AsyncAPI 3.0 document of the `/ws` WebSocket, generated from the
//! frame types of `ace_envelope::api::ws` and built once.
//!
//! The JSON Schemas are the `ToSchema` derives of `ClientFrame` and `ServerFrame` (the same
//! machinery as `/openapi.json`), kept under `components.schemas` so their `$ref`s resolve in
//! this document too. Each variant of either enum — one branch of its `oneOf`, named by its
//! `type` tag — becomes one message: a client frame is an operation the server receives and
//! answers with `ok` or `error`, a `message` frame one it sends. A new variant therefore
//! appears here by itself; the tests (`tests/it/asyncapi.rs`) check that every variant is a
//! message and that frames serialized by the Rust types validate against their message's
//! schema.

use std::sync::LazyLock;

use ace_envelope::api::ws::{
    ACCESS_TOKEN_PARAM, BEARER_PROTOCOL_PREFIX, ClientFrame, PROTOCOL, ServerFrame, close,
};
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

/// The schemas of the frames and of everything they name.
#[derive(OpenApi)]
#[openapi(components(schemas(ClientFrame, ServerFrame)))]
struct Frames;

/// The server frame answering every client frame that succeeded, and the one for a failure.
const ANSWERS: [&str; 2] = ["ok", "error"];

/// The close codes of the protocol, for the document's description.
const CLOSE_CODES: [(u16, &str); 8] = [
    (close::GOING_AWAY, "the server is shutting down"),
    (
        close::PROTOCOL_ERROR,
        "the client broke the WebSocket protocol",
    ),
    (close::INVALID_DATA, "a text message was not UTF-8"),
    (close::POLICY, "the Origin is not allowed"),
    (close::TOO_BIG, "a message was larger than the limit"),
    (close::KEEPALIVE, "a keepalive went unanswered"),
    (
        close::CREDENTIALS,
        "the credentials expired or were revoked",
    ),
    (
        close::SLOW_CONSUMER,
        "the outgoing queue overflowed (a slow client)",
    ),
];

/// The `type` tag of one branch of a frame enum's `oneOf`: `properties.type.enum[0]` of the
/// branch or of one of its `allOf` parts.
fn tag_of(branch: &Value) -> Option<&str> {
    let own = branch["properties"]["type"]["enum"][0].as_str();
    own.or_else(|| {
        branch["allOf"]
            .as_array()?
            .iter()
            .find_map(|part| part["properties"]["type"]["enum"][0].as_str())
    })
}

/// The variants of the frame enum `name` as `(tag, schema)`, in declaration order.
fn variants<'s>(schemas: &'s Value, name: &str) -> Vec<(&'s str, &'s Value)> {
    schemas[name]["oneOf"]
        .as_array()
        .map(|branches| {
            branches
                .iter()
                .filter_map(|b| Some((tag_of(b)?, b)))
                .collect()
        })
        .unwrap_or_default()
}

/// One message of the channel.
fn message(tag: &str, direction: &str, payload: &Value, summary: &str) -> Value {
    json!({
        "name": tag,
        "title": format!("{direction} frame `{tag}`"),
        "summary": summary,
        "contentType": "application/json",
        "payload": payload,
    })
}

/// The first line of a variant's documentation, if the schema carries one.
fn summary_of(schema: &Value, fallback: &str) -> String {
    let text = schema["description"]
        .as_str()
        .or_else(|| {
            schema["allOf"]
                .as_array()?
                .iter()
                .find_map(|part| part["description"].as_str())
        })
        .unwrap_or(fallback);
    text.lines().next().unwrap_or(fallback).trim().to_owned()
}

/// The document.
pub(crate) fn document() -> Value {
    let components = Frames::openapi().components.unwrap_or_default();
    let schemas = serde_json::to_value(&components.schemas).unwrap_or(Value::Null);
    let channel_message = |tag: &str| json!({ "$ref": format!("#/channels/ws/messages/{tag}") });
    let mut messages = Map::new();
    let mut channel_messages = Map::new();
    let mut operations = Map::new();
    for (tag, schema) in variants(&schemas, "ClientFrame") {
        let summary = summary_of(schema, "A client frame.");
        messages.insert(tag.to_owned(), message(tag, "Client", schema, &summary));
        channel_messages.insert(
            tag.to_owned(),
            json!({ "$ref": format!("#/components/messages/{tag}") }),
        );
        operations.insert(
            format!("receive_{tag}"),
            json!({
                "action": "receive",
                "channel": { "$ref": "#/channels/ws" },
                "summary": summary,
                "messages": [channel_message(tag)],
                "reply": {
                    "channel": { "$ref": "#/channels/ws" },
                    "messages": ANSWERS.map(channel_message),
                },
            }),
        );
    }
    for (tag, schema) in variants(&schemas, "ServerFrame") {
        let summary = summary_of(schema, "A server frame.");
        messages.insert(tag.to_owned(), message(tag, "Server", schema, &summary));
        channel_messages.insert(
            tag.to_owned(),
            json!({ "$ref": format!("#/components/messages/{tag}") }),
        );
        if !ANSWERS.contains(&tag) {
            operations.insert(
                format!("send_{tag}"),
                json!({
                    "action": "send",
                    "channel": { "$ref": "#/channels/ws" },
                    "summary": summary,
                    "messages": [channel_message(tag)],
                }),
            );
        }
    }
    let closes: Vec<String> = CLOSE_CODES
        .iter()
        .map(|(code, what)| format!("{code} {what}"))
        .collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "ACE::COMMS WebSocket",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "The `/ws` endpoint of the ACE::COMMS server (subprotocol `{PROTOCOL}`). Every \
                 frame is one JSON object in one text message, discriminated by `type`. A client \
                 frame may carry an `id` that the server's `ok` or `error` answer repeats; a \
                 subscription is named by a client-chosen `sid`, which its `message` frames \
                 carry. Credentials are checked before the upgrade (401 with the error body): \
                 `Authorization: Bearer <jwt>`, `X-ACE-API-Key`, a TLS client certificate, or \
                 for a browser the subprotocol `{BEARER_PROTOCOL_PREFIX}<jwt>` offered next to \
                 `{PROTOCOL}` (answered with `{PROTOCOL}` only) or the query parameter \
                 `{ACCESS_TOKEN_PARAM}`. Close codes: {}.",
                closes.join("; ")
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "ace-comms": {
                "host": "localhost:8500",
                "protocol": "ws",
                "description": "A server as `ace-comms serve` starts it (`wss` with `tls`).",
                "security": [
                    { "$ref": "#/components/securitySchemes/bearer" },
                    { "$ref": "#/components/securitySchemes/access_token" },
                    { "$ref": "#/components/securitySchemes/api_key" },
                    { "$ref": "#/components/securitySchemes/mutual_tls" },
                ],
            },
        },
        "channels": {
            "ws": {
                "address": "/ws",
                "title": "The WebSocket",
                "messages": channel_messages,
                "bindings": {
                    "ws": {
                        "method": "GET",
                        "query": {
                            "type": "object",
                            "properties": {
                                ACCESS_TOKEN_PARAM: {
                                    "type": "string",
                                    "description": "A bearer JWT, for a client that cannot set headers; redacted in the server's logs",
                                },
                            },
                        },
                        "headers": {
                            "type": "object",
                            "properties": {
                                "Sec-WebSocket-Protocol": {
                                    "type": "string",
                                    "description": format!("`{PROTOCOL}`, and for a browser `{BEARER_PROTOCOL_PREFIX}<jwt>` next to it"),
                                },
                                "Origin": {
                                    "type": "string",
                                    "description": "Checked against `limits.ws.allowed_origins` (403 otherwise)",
                                },
                            },
                        },
                        "bindingVersion": "0.1.0",
                    },
                },
            },
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": format!("`Authorization: Bearer <jwt>`, or the subprotocol `{BEARER_PROTOCOL_PREFIX}<jwt>`"),
                },
                "access_token": {
                    "type": "httpApiKey",
                    "name": ACCESS_TOKEN_PARAM,
                    "in": "query",
                    "description": "A bearer JWT as a query parameter",
                },
                "api_key": {
                    "type": "httpApiKey",
                    "name": "X-ACE-API-Key",
                    "in": "header",
                    "description": "An API key listed (as its SHA-256) in `auth.api_keys`",
                },
                "mutual_tls": {
                    "type": "X509",
                    "description": "A client certificate verified against `tls.client_ca`",
                },
            },
        },
    })
}

/// The document as JSON, rendered on first use.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string_pretty(&document())
        .unwrap_or_else(|e| format!(r#"{{"error":"asyncapi document: {e}"}}"#))
});

/// `GET /asyncapi.json`: the AsyncAPI document of `/ws`.
#[utoipa::path(
    get,
    path = "/asyncapi.json",
    tag = "operations",
    responses((status = 200, description = "The AsyncAPI 3.0 document of the `/ws` WebSocket", body = Object, content_type = "application/json"))
)]
pub(crate) async fn asyncapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_frame_enums_when_documented_then_every_branch_has_a_type_tag() {
        let components = Frames::openapi().components.unwrap_or_default();
        let schemas = serde_json::to_value(&components.schemas).unwrap();
        for name in ["ClientFrame", "ServerFrame"] {
            let branches = schemas[name]["oneOf"].as_array().expect("a oneOf");
            assert_eq!(
                variants(&schemas, name).len(),
                branches.len(),
                "a branch of {name} without a type tag: {}",
                schemas[name]
            );
        }
        let doc = document();
        assert_eq!(doc["asyncapi"], "3.0.0");
        assert_eq!(doc["components"]["messages"]["ok"]["name"], "ok");
        assert_eq!(
            doc["operations"]["receive_subscribe"]["reply"]["messages"][1]["$ref"],
            "#/channels/ws/messages/error"
        );
    }
}
