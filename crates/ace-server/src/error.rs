//! The errors of `ace-server`: [`ConfigError`] (loading and validating the configuration),
//! [`ServerError`] (starting and running), and [`ApiError`], the HTTP adapter's error with its
//! one `IntoResponse`: the caller's faults answer 4xx with a precise message, ours answer 5xx
//! with the generic meaning of the code and are logged in detail.

use ace_core::CoreError;
use ace_envelope::{EnvelopeError, ErrorBody, ErrorCode};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The YAML file is malformed or names an unknown key (the message has line and column).
    #[error("config file: {0}")]
    File(#[source] serde_yaml_ng::Error),
    /// An `ACE_*` variable holds a value its key cannot take.
    #[error("environment variable {var} (key `{key}`): {reason}")]
    Env {
        /// The variable (`ACE_LIMITS_MAX_HOPS`).
        var: String,
        /// The key it overrides (`limits.max_hops`).
        key: String,
        /// What the parser said.
        reason: String,
    },
    /// A value is out of its bounds.
    #[error("config key `{key}`: {reason}")]
    Invalid {
        /// The key at fault (`limits.max_body_bytes`).
        key: String,
        /// Why.
        reason: String,
    },
}

/// The server could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The engine could not open its data directory.
    #[error("opening the embedded engine under `{data_dir}`: {source}")]
    Engine {
        /// The data directory.
        data_dir: String,
        /// The engine's error.
        #[source]
        source: ace_bus::BusError,
    },
    /// The NATS JetStream engine (`engine: nats`) could not connect.
    #[error("connecting the NATS engine to `{url}`: {source}")]
    Nats {
        /// `nats.url`.
        url: String,
        /// The engine's error.
        #[source]
        source: ace_bus::BusError,
    },
    /// The embedded contracts did not load.
    #[error("loading the embedded contracts: {0}")]
    Contracts(#[source] ace_contracts::ContractError),
    /// Creating the default streams or closing the engine failed.
    #[error("{op}: {source}")]
    Core {
        /// What was being done.
        op: &'static str,
        /// The core's error.
        #[source]
        source: CoreError,
    },
    /// The ML kernel could not open its store or compile its contracts.
    #[error("opening the ML kernel: {reason}")]
    Mlt {
        /// Why.
        reason: String,
    },
    /// The metrics registry refused a metric (a duplicate name).
    #[error("registering metrics: {0}")]
    Metrics(#[source] prometheus::Error),
    /// The workflow engine could not start (its state or its consumer).
    #[error("starting the workflows: {message}")]
    Workflows {
        /// What failed.
        message: String,
    },
    /// A policy, key or API-key file named by the configuration cannot be used.
    #[error("config key `{key}`: {source}")]
    Policy {
        /// The configuration key naming the file (`policy.dir`, `auth.jwt`, `auth.api_keys`).
        key: &'static str,
        /// What ace-policy said.
        #[source]
        source: ace_policy::PolicyError,
    },
    /// The TLS certificate, key or client CA cannot be used.
    #[error("config key `{key}`: {reason}")]
    Tls {
        /// The configuration key at fault (`tls.cert`, `tls.key`, `tls.client_ca`).
        key: String,
        /// Why.
        reason: String,
    },
    /// The ledger could not be opened (a broken chain or a checkpoint that does not match its
    /// entries refuses to open: run `ace-comms ledger verify`).
    #[error("opening the ledger under `{data_dir}/ledger`: {source}")]
    Ledger {
        /// The data directory.
        data_dir: String,
        /// The ledger's error.
        #[source]
        source: ace_ledger::LedgerError,
    },
    /// The ledger's PostgreSQL store could not be opened (unreachable, refused, or its entries
    /// do not verify); `store` names the URL without its password, and the schema.
    #[error("opening the ledger in {store}: {source}")]
    LedgerStore {
        /// `PostgreSQL at <url without password> (schema <schema>)`.
        store: String,
        /// The ledger's error.
        #[source]
        source: ace_ledger::LedgerError,
    },
}

/// Why an HTTP request is answered with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body is not JSON.
    #[error("malformed JSON at line {line}, column {column}: {message}")]
    BadJson {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// The body is JSON but not of the shape the route expects.
    #[error("{what} at line {line}, column {column}: {message}")]
    BadShape {
        /// What was expected (`envelope`, `stream config`).
        what: &'static str,
        /// The code to answer with (`INVALID_ENVELOPE` for envelopes, else `INVALID_JSON`).
        code: ErrorCode,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message (names the field).
        message: String,
    },
    /// A CloudEvent could not be turned into an envelope.
    #[error("cloudevent: {0}")]
    CloudEvent(#[source] EnvelopeError),
    /// The body could not be read (not a size problem).
    #[error("request body could not be read: {0}")]
    Body(String),
    /// The body did not arrive whole within `limits.body_timeout_ms` of the request's headers
    /// (answered 408).
    #[error("request body did not arrive within limits.body_timeout_ms ({limit_ms} ms)")]
    BodyTimeout {
        /// The limit, milliseconds.
        limit_ms: u64,
    },
    /// The body is larger than `limits.max_body_bytes`.
    #[error("request body exceeds limits.max_body_bytes ({limit} bytes)")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A batch holds more envelopes than `limits.max_batch_messages`.
    #[error("batch of {count} envelopes exceeds limits.max_batch_messages ({max})")]
    BatchTooLarge {
        /// Envelopes sent.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The Content-Type is not one the route accepts.
    #[error("content type `{got}` is not accepted here; use {accepted}")]
    UnsupportedMediaType {
        /// What was sent (empty when absent).
        got: String,
        /// What the route accepts.
        accepted: &'static str,
    },
    /// A request field is invalid.
    #[error("`{field}`: {reason}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The server is not ready (starting or shutting down).
    #[error("the server is not ready")]
    NotReady,
    /// No route for the path, or no handler for the method.
    #[error("{0}")]
    Route(String),
    /// The core refused or failed.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A failure of ours outside the core (the workflow state); its detail is logged where it
    /// happened, never answered.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadJson { .. } | ApiError::Body(_) => ErrorCode::InvalidJson,
            ApiError::InvalidField { .. } => ErrorCode::InvalidRequest,
            ApiError::BadShape { code, .. } => *code,
            ApiError::CloudEvent(err) => err.code(),
            ApiError::TooLarge { .. } | ApiError::BatchTooLarge { .. } => {
                ErrorCode::PayloadTooLarge
            }
            ApiError::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            ApiError::NotReady => ErrorCode::Unavailable,
            ApiError::BodyTimeout { .. } => ErrorCode::Timeout,
            ApiError::Route(_) => ErrorCode::NotFound,
            ApiError::Core(err) => err.code(),
            ApiError::Internal => ErrorCode::Internal,
        }
    }

    /// The wire body.
    pub fn body(&self) -> ErrorBody {
        let code = self.code();
        let details = match self {
            ApiError::Core(err) => return err.body(),
            ApiError::CloudEvent(err) => return ErrorBody::from(err),
            ApiError::BadJson { line, column, .. } | ApiError::BadShape { line, column, .. } => {
                json!({ "line": line, "column": column })
            }
            ApiError::TooLarge { limit } => json!({ "limit": limit }),
            ApiError::BodyTimeout { limit_ms } => json!({ "limit_ms": limit_ms }),
            ApiError::BatchTooLarge { count, max } => json!({ "count": count, "max": max }),
            ApiError::InvalidField { field, .. } => json!({ "field": field }),
            _ => serde_json::Value::Null,
        };
        ErrorBody::with_details(code, self.to_string(), details)
    }

    /// From a JSON parse failure of a body meant to be `what`; `shape_code` answers a body that
    /// is JSON of the wrong shape.
    pub(crate) fn json(err: &serde_json::Error, what: &'static str, shape_code: ErrorCode) -> Self {
        use serde_json::error::Category;
        let (line, column, message) = (err.line(), err.column(), err.to_string());
        match err.classify() {
            Category::Data => ApiError::BadShape {
                what,
                code: shape_code,
                line,
                column,
                message,
            },
            Category::Syntax | Category::Eof | Category::Io => ApiError::BadJson {
                line,
                column,
                message,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A held message is not a failure of the request: 202 with the approval holding it.
        if let ApiError::Core(CoreError::PendingApproval { id, approval_id }) = self {
            let pending = ace_envelope::api::http::Pending::new(id, approval_id);
            return (StatusCode::ACCEPTED, axum::Json(pending)).into_response();
        }
        let code = self.code();
        if let ApiError::BodyTimeout { .. } = self {
            // The client was too slow, not an upstream: 408 rather than TIMEOUT's 504.
            let mut response = error_response(code, &self.body());
            *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
            return response;
        }
        if code.http_status() >= 500 {
            tracing::error!(code = %code, error = %self, "request failed on our side");
        }
        error_response(code, &self.body())
    }
}

/// The response for an error body: its code's status, the JSON body, and the code as a
/// response extension for the metrics layer.
pub(crate) fn error_response(code: ErrorCode, body: &ErrorBody) -> Response {
    let status =
        StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, axum::Json(body)).into_response();
    if code == ErrorCode::InsufficientStorage {
        // A full device is temporary: say when to come back.
        let secs = ace_core::NO_SPACE_RETRY_MS / 1000;
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    response.extensions_mut().insert(code);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_every_adapter_refusal_when_answered_then_its_message_does_not_restate_its_code() {
        let not_json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let wrong_shape = serde_json::from_str::<Vec<u8>>("{}").unwrap_err();
        let errors = [
            ApiError::json(&not_json, "envelope", ErrorCode::InvalidEnvelope),
            ApiError::json(&wrong_shape, "envelope", ErrorCode::InvalidEnvelope),
            ApiError::json(&wrong_shape, "stream config", ErrorCode::InvalidJson),
            ApiError::CloudEvent(EnvelopeError::InvalidSubject {
                subject: "a..b".into(),
                reason: "has an empty token",
            }),
            ApiError::Body("connection reset".into()),
            ApiError::BodyTimeout { limit_ms: 10 },
            ApiError::TooLarge { limit: 1 },
            ApiError::BatchTooLarge { count: 2, max: 1 },
            ApiError::UnsupportedMediaType {
                got: "text/plain".into(),
                accepted: "application/json",
            },
            ApiError::InvalidField {
                field: "status",
                reason: "`x` is not one of pending, all".into(),
            },
            ApiError::NotReady,
            ApiError::Route("no route GET /x".into()),
            ApiError::Core(CoreError::Forbidden {
                principal: "agent-1".into(),
                action: "publish ace.comms.x".into(),
                reasons: vec!["no role allows it".into()],
            }),
        ];
        for err in &errors {
            let body = err.body();
            let error = &body.error;
            assert!(!error.code.is_restated_by(&error.message), "{error:?}");
        }
    }

    #[test]
    fn given_a_full_device_when_answered_then_it_is_507_insufficient_storage_with_retry_after() {
        let err = ApiError::Core(CoreError::from(ace_bus::BusError::NoSpace {
            stream: "S".into(),
        }));
        let response = err.into_response();
        assert_eq!(response.status().as_u16(), 507);
        let retry = response.headers().get(axum::http::header::RETRY_AFTER);
        assert_eq!(retry.and_then(|v| v.to_str().ok()), Some("5"));
        assert_eq!(
            response.extensions().get::<ErrorCode>(),
            Some(&ErrorCode::InsufficientStorage)
        );
    }

    #[test]
    fn given_a_damaged_stream_when_answered_then_it_is_503_stream_damaged_without_retry_after() {
        let err = ApiError::Core(CoreError::from(ace_bus::BusError::StreamDamaged {
            stream: "S".into(),
            state: "halted",
            damage: Box::new(ace_bus::StreamDamage {
                reason: "a write or fsync failed (injected EIO)".into(),
                segment: Some("00000000000000000001.log".into()),
                offset: None,
            }),
        }));
        assert!(err.to_string().contains("`S` is halted"), "{err}");
        let response = err.into_response();
        assert_eq!(response.status().as_u16(), 503);
        assert!(
            response
                .headers()
                .get(axum::http::header::RETRY_AFTER)
                .is_none()
        );
    }
}
