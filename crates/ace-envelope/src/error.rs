//! Errors of this crate, and the stable wire error codes of the whole project.
//!
//! [`EnvelopeError`] is what the functions of this crate return. [`ErrorCode`] and [`ErrorBody`]
//! are the one error vocabulary every ACE::COMMS API speaks on the wire; they live here, at the
//! bottom layer, so that every adapter and the Rust client share one definition.
//! `contracts/comms/errors.schema.json` lists the same codes (a test keeps both in step).
//! A retired code is never reused.

use serde::{Deserialize, Serialize};

use crate::validate::Violation;

/// A failure of an operation of this crate; each message names the field or subject at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The bytes are not JSON, or not JSON of the expected shape.
    #[error("{0}")]
    InvalidJson(#[source] serde_json::Error),
    /// The envelope breaks one or more rules of `gme/1`.
    #[error("{} rule(s) of gme/1 broken: {}", .0.len(), crate::validate::summary(.0))]
    Invalid(Vec<Violation>),
    /// A subject or subject pattern breaks the grammar.
    #[error("subject {subject:?} {reason}")]
    InvalidSubject {
        /// The subject as given.
        subject: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `traceparent` value is not a W3C trace context version 00 header.
    #[error("invalid traceparent {value:?}: {reason}")]
    InvalidTraceparent {
        /// The header as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Forwarding would take the envelope past the hop limit (a routing loop).
    #[error("`hops` {hops} reached the limit {limit}: the message is going round in a loop")]
    HopLimitExceeded {
        /// Hops already taken.
        hops: u32,
        /// The configured limit.
        limit: u32,
    },
    /// A field could not be converted between two wire forms.
    #[error("cannot convert field {field}: {reason}")]
    Codec {
        /// JSON-pointer path of the field (`/payload`, `/trace/traceparent`).
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Protobuf bytes could not be decoded.
    #[error("invalid protobuf: {0}")]
    Protobuf(#[source] prost::DecodeError),
    /// The envelope carries no signature to verify.
    #[error("envelope {id} is not signed")]
    Unsigned {
        /// Id of the envelope.
        id: uuid::Uuid,
    },
    /// The signature does not verify, or is malformed.
    #[error("bad signature on envelope {id}: {reason}")]
    BadSignature {
        /// Id of the envelope.
        id: uuid::Uuid,
        /// Why it was refused.
        reason: String,
    },
}

impl EnvelopeError {
    /// The wire code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidJson(_) => ErrorCode::InvalidJson,
            Self::InvalidSubject { .. } => ErrorCode::InvalidSubject,
            Self::HopLimitExceeded { .. } => ErrorCode::HopLimitExceeded,
            Self::Unsigned { .. } | Self::BadSignature { .. } => ErrorCode::Unauthenticated,
            Self::Invalid(_)
            | Self::InvalidTraceparent { .. }
            | Self::Codec { .. }
            | Self::Protobuf(_) => ErrorCode::InvalidEnvelope,
        }
    }
}

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $meaning:literal), )*) => {
        /// The stable wire error codes; `as_str()` is the code on the wire.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* #[serde(rename = $code)] $variant, )*
        }

        // By hand, not derived: the derive does not see the wire names through the macro.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for ErrorCode {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                let values = [$($code),*];
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(values))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for ErrorCode {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!(ErrorCode))
            }
        }

        impl ErrorCode {
            /// Every code, in the order of `errors.schema.json`.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it travels on the wire (`INVALID_ENVELOPE`).
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The HTTP status an HTTP adapter answers with.
            pub const fn http_status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }

            /// One line saying what the code means.
            pub const fn meaning(self) -> &'static str {
                match self { $(ErrorCode::$variant => $meaning,)* }
            }

            /// The code for its wire name, if there is one.
            pub fn parse(code: &str) -> Option<ErrorCode> {
                match code { $($code => Some(ErrorCode::$variant),)* _ => None }
            }

            /// Whether `message` opens by restating this code, written (`FORBIDDEN`) or spoken
            /// (`forbidden: …`, `invalid envelope on …`). An error body carries its code beside
            /// its message, so no message of this workspace does: each says what is wrong.
            pub fn is_restated_by(self, message: &str) -> bool {
                let spoken = self.as_str().replace('_', " ");
                let opening = message.get(..spoken.len()).unwrap_or_default();
                let rest = message.get(spoken.len()..).unwrap_or_default();
                (opening.eq_ignore_ascii_case(&spoken) || opening == self.as_str())
                    && !rest.starts_with(|c: char| c.is_ascii_alphanumeric())
            }
        }
    };
}

error_codes! {
    /// The body is not well-formed JSON.
    InvalidJson = ("INVALID_JSON", 400, "The request body is not well-formed JSON or not of the expected shape."),
    /// The envelope breaks a rule of gme/1.
    InvalidEnvelope = ("INVALID_ENVELOPE", 400, "The envelope breaks one or more rules of gme/1; details list every violation with its field path."),
    /// A subject or pattern breaks the subject grammar.
    InvalidSubject = ("INVALID_SUBJECT", 400, "A subject or subject pattern breaks the subject grammar, or a publish subject holds a wildcard."),
    /// The message or request is larger than allowed.
    PayloadTooLarge = ("PAYLOAD_TOO_LARGE", 413, "The message or request body is larger than the configured limit."),
    /// The content type is not accepted.
    UnsupportedMediaType = ("UNSUPPORTED_MEDIA_TYPE", 415, "The Content-Type of the request is not one the endpoint accepts."),
    /// The payload does not satisfy its registered schema.
    ContractViolation = ("CONTRACT_VIOLATION", 422, "The payload does not satisfy the contract registered for its schema."),
    /// The named schema is not registered.
    UnknownSchema = ("UNKNOWN_SCHEMA", 422, "The envelope names a schema (name@semver) that is not registered."),
    /// No valid credentials.
    Unauthenticated = ("UNAUTHENTICATED", 401, "No credentials, or credentials (token, key, certificate, signature) that do not verify."),
    /// The principal may not do this.
    Forbidden = ("FORBIDDEN", 403, "The authenticated principal is not allowed to do this by RBAC or policy."),
    /// Held for a human approval.
    PendingApproval = ("PENDING_APPROVAL", 202, "The message is held until a human approves or rejects it; details carry the approval id."),
    /// The resource does not exist.
    NotFound = ("NOT_FOUND", 404, "The addressed resource does not exist."),
    /// A version check failed.
    Conflict = ("CONFLICT", 409, "The resource changed since it was read (version or If-Match mismatch) or already exists."),
    /// A precondition of the request does not hold.
    PreconditionFailed = ("PRECONDITION_FAILED", 412, "A precondition of the request (If-Match, expected sequence) does not hold."),
    /// Too much load; retry later.
    Backpressure = ("BACKPRESSURE", 429, "A bounded buffer or stream is full; retry after the delay in details."),
    /// The message was already accepted.
    Duplicate = ("DUPLICATE", 409, "The idempotency key was already accepted inside the dedup window."),
    /// No such stream.
    StreamNotFound = ("STREAM_NOT_FOUND", 404, "The named stream does not exist."),
    /// No such consumer.
    ConsumerNotFound = ("CONSUMER_NOT_FOUND", 404, "The named consumer does not exist on the stream."),
    /// The message expired.
    MessageExpired = ("MESSAGE_EXPIRED", 400, "The message's ttl_ms or deadline, or the lifetime of its qos class, has passed."),
    /// Too many hops.
    HopLimitExceeded = ("HOP_LIMIT_EXCEEDED", 400, "The message was forwarded more times than the hop limit allows (a routing loop)."),
    /// The operation took too long.
    Timeout = ("TIMEOUT", 504, "No reply or completion arrived within the timeout."),
    /// A dependency is unavailable.
    Unavailable = ("UNAVAILABLE", 503, "The service or one of its dependencies is not available now; retry later."),
    /// Our fault.
    Internal = ("INTERNAL", 500, "An unexpected failure on the server side; the details are in its logs, not in the answer."),
    /// A well-formed request that asks for something invalid.
    InvalidRequest = ("INVALID_REQUEST", 400, "The request is well-formed but invalid: a bad stream or consumer configuration, an unsupported option, a bad parameter; the message names the key."),
    /// The route exists but not with this method.
    MethodNotAllowed = ("METHOD_NOT_ALLOWED", 405, "The route exists but does not accept this HTTP method."),
    /// A conditional request is required.
    PreconditionRequired = ("PRECONDITION_REQUIRED", 428, "The update must be conditional (If-Match with the current version) so that no concurrent change is lost."),
    /// The stream's storage is damaged or halted: writes are refused, what survived is served.
    StreamDamaged = ("STREAM_DAMAGED", 503, "The stream's storage is damaged (read_only) or a write or fsync failed (halted): writes are refused, the records before the damage are still served; the message names the stream, segment and offset, and stream info shows the state."),
    /// The stream's device is full: a temporary refusal.
    InsufficientStorage = ("INSUFFICIENT_STORAGE", 507, "The device holding the stream is full: nothing was stored and nothing acknowledged was lost; retry after Retry-After (details.retry_after_ms), writes resume by themselves once space is freed."),
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one error body every ACE::COMMS API answers with: `{"error": {code, message, details}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of an [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message; names the field, key or subject at fault.
    pub message: String,
    /// Structured detail (violations, retry delay, approval id); `null` when there is none.
    #[serde(default)]
    pub details: serde_json::Value,
}

impl ErrorBody {
    /// An error body without details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::with_details(code, message, serde_json::Value::Null)
    }

    /// An error body with structured details.
    pub fn with_details(
        code: ErrorCode,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Self {
            error: ErrorDetail {
                code,
                message: message.into(),
                details,
            },
        }
    }
}

impl From<&EnvelopeError> for ErrorBody {
    fn from(err: &EnvelopeError) -> Self {
        let details = match err {
            EnvelopeError::Invalid(violations) => serde_json::json!({ "violations": violations }),
            _ => serde_json::Value::Null,
        };
        ErrorBody::with_details(err.code(), err.to_string(), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_messages_when_asked_whether_they_restate_a_code_then_only_an_opening_code_counts() {
        assert!(ErrorCode::Forbidden.is_restated_by("forbidden: a may not b"));
        assert!(ErrorCode::Forbidden.is_restated_by("FORBIDDEN: a may not b"));
        assert!(ErrorCode::InvalidEnvelope.is_restated_by("Invalid envelope on `x`: bad"));
        assert!(ErrorCode::StreamNotFound.is_restated_by("STREAM_NOT_FOUND"));
        assert!(!ErrorCode::Forbidden.is_restated_by("a may not b: forbidden"));
        assert!(!ErrorCode::Conflict.is_restated_by("conflicting versions"));
        assert!(!ErrorCode::NotFound.is_restated_by("no session `s`"));
        assert!(!ErrorCode::Timeout.is_restated_by(""));
    }

    #[test]
    fn given_every_envelope_error_when_answered_then_its_message_does_not_restate_its_code() {
        let not_json = serde_json::from_str::<serde_json::Value>("{").unwrap_err();
        let errors = [
            EnvelopeError::InvalidJson(not_json),
            EnvelopeError::Invalid(vec![Violation {
                path: "/subject".into(),
                message: "has an empty token".into(),
            }]),
            EnvelopeError::InvalidSubject {
                subject: "a..b".into(),
                reason: "has an empty token",
            },
            EnvelopeError::InvalidTraceparent {
                value: "00-x".into(),
                reason: "is too short",
            },
            EnvelopeError::HopLimitExceeded { hops: 9, limit: 8 },
            EnvelopeError::Codec {
                field: "/payload".into(),
                reason: "not base64".into(),
            },
            EnvelopeError::Unsigned {
                id: uuid::Uuid::nil(),
            },
            EnvelopeError::BadSignature {
                id: uuid::Uuid::nil(),
                reason: "wrong key".into(),
            },
        ];
        for err in &errors {
            let body = ErrorBody::from(err);
            let error = &body.error;
            assert!(!error.code.is_restated_by(&error.message), "{error:?}");
        }
    }
}
