//! The one error type of `ace-core`, and the one place where a failure becomes a wire
//! [`ErrorCode`] and an [`ErrorBody`]: every adapter (HTTP today, WebSocket, MCP and the CLI
//! later) answers with `CoreError::body()`, so the same refusal reads the same everywhere.
//!
//! A message says what is wrong and where, never what the code already says: the body carries
//! both, so `FORBIDDEN` comes with `agent-1 may not publish …`, not `forbidden: agent-1 …`
//! (a test walks every variant). The engine's errors that open with their kind are worded
//! here from their fields (`bus_message`).

use ace_bus::BusError;
use ace_contracts::ValidationError;
use ace_envelope::{ErrorBody, ErrorCode, Violation};
use chrono::{DateTime, Utc};
use serde_json::json;

/// Why an operation of the core refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    /// The caller could not be authenticated.
    #[error("{reason}")]
    Unauthenticated {
        /// Why the credentials were refused.
        reason: String,
    },
    /// The envelope breaks one or more rules of `gme/1`.
    #[error("{} rule(s) of gme/1 broken: {}", .0.len(), summary(.0))]
    InvalidEnvelope(Vec<Violation>),
    /// The envelope took more hops than the configured limit (a routing loop).
    #[error("`hops` is {hops}, the limit is {limit}: the message is going round in a loop")]
    HopLimitExceeded {
        /// The envelope's `hops`.
        hops: u32,
        /// The configured limit.
        limit: u32,
    },
    /// The envelope's `ttl_ms` or `deadline`, or the lifetime of its `qos` class, has passed.
    #[error("message {id} expired at {expired_at} (`ttl_ms`, `deadline` or `qos` lifetime)")]
    Expired {
        /// The envelope id.
        id: uuid::Uuid,
        /// When it expired.
        expired_at: DateTime<Utc>,
    },
    /// The envelope's `schema` names no registered contract.
    #[error("`{schema}` names no registered contract: {reason}")]
    UnknownSchema {
        /// The `schema` field as given.
        schema: String,
        /// What the registry said.
        reason: String,
    },
    /// The payload does not satisfy its contract.
    #[error("payload does not conform to `{schema}`: {} error(s), the first at {}", errors.len(), first_at(errors))]
    ContractViolation {
        /// The resolved contract, `subject@version`.
        schema: String,
        /// Every validation error with its JSON pointers.
        errors: Vec<ValidationError>,
    },
    /// The principal may not do this.
    #[error("{principal} may not {action}: {}", reasons.join("; "))]
    Forbidden {
        /// The principal id.
        principal: String,
        /// The action refused (`publish ace.comms.x`).
        action: String,
        /// Why.
        reasons: Vec<String>,
    },
    /// The message is held until a human decides.
    #[error("message {id} is held for approval {approval_id}")]
    PendingApproval {
        /// The envelope id.
        id: uuid::Uuid,
        /// The approval that will release or reject it.
        approval_id: String,
    },
    /// A request parameter is out of its bounds (`batch`, `seqs`...).
    #[error("`{field}` {reason}")]
    InvalidRequest {
        /// The field at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No message at that sequence (never stored, deleted or expired).
    #[error("no message {seq} in stream `{stream}`")]
    MessageNotFound {
        /// The stream name.
        stream: String,
        /// The sequence asked for.
        seq: u64,
    },
    /// No agent of that id is present (it never beat or its presence expired).
    #[error("agent `{id}` is not present")]
    AgentNotFound {
        /// The agent id.
        id: String,
    },
    /// No session of that id was ever written.
    #[error("no session `{id}`")]
    SessionNotFound {
        /// The session id.
        id: String,
    },
    /// The session's `data` is larger than the limit.
    #[error("session `{id}`: `data` is {size} bytes, more than the limit of {max}")]
    SessionTooLarge {
        /// The session id.
        id: String,
        /// Its size as compact JSON.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// `If-Match`/`If-None-Match` does not hold against the current version.
    #[error("session `{id}`: the precondition does not hold, the current version is {}", current.map_or_else(|| "none (it does not exist)".to_owned(), |v| v.to_string()))]
    SessionPreconditionFailed {
        /// The session id.
        id: String,
        /// The current version, `None` when it does not exist.
        current: Option<u64>,
    },
    /// Replacing an existing session without `If-Match` (a blind overwrite) is refused.
    #[error("session `{id}` exists at version {current}: replacing it requires `If-Match`")]
    SessionPreconditionRequired {
        /// The session id.
        id: String,
        /// The current version.
        current: u64,
    },
    /// The session store failed.
    #[error("session store: {0}")]
    SessionStore(#[from] crate::sessions::StoreError),
    /// A registration or compatibility check the registry refused (unknown subject or version,
    /// a schema that does not compile, an incompatible or out-of-order version).
    #[error("{0}")]
    Contract(ace_contracts::ContractError),
    /// The store of the registry's changes failed.
    #[error("contract store: {0}")]
    ContractStore(crate::sessions::StoreError),
    /// No approval of that id.
    #[error("no approval `{id}`")]
    ApprovalNotFound {
        /// The approval id.
        id: String,
    },
    /// The approval was decided already (or expired): only a pending one can be decided.
    #[error("approval `{id}` is {status}, not pending: it cannot be decided again")]
    ApprovalNotPending {
        /// The approval id.
        id: String,
        /// Its status.
        status: crate::approvals::ApprovalStatus,
    },
    /// The approvals store failed.
    #[error(transparent)]
    ApprovalStore(#[from] crate::approvals::ApprovalStoreError),
    /// The bus refused or failed.
    #[error("{}", bus_message(.0))]
    Bus(#[from] BusError),
    /// A signature is missing, by an unregistered key or does not verify.
    #[error("{0}")]
    Signature(#[from] crate::integrity::SignatureError),
    /// The ledger could not write, sign or read.
    #[error("ledger failed {op}: {source}")]
    Ledger {
        /// What was being done.
        op: &'static str,
        /// The ledger's error (shared: one failed group commit fails every waiter).
        #[source]
        source: std::sync::Arc<ace_ledger::LedgerError>,
    },
    /// The ledger is closed (the server is stopping): nothing more is recorded.
    #[error("the ledger is closed")]
    LedgerClosed,
    /// This server keeps no ledger.
    #[error("this server keeps no ledger (`ledger.enabled` is false)")]
    LedgerDisabled,
}

impl CoreError {
    /// The stable wire code of this error; the only mapping from failures to codes.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            CoreError::InvalidEnvelope(_) => ErrorCode::InvalidEnvelope,
            CoreError::HopLimitExceeded { .. } => ErrorCode::HopLimitExceeded,
            CoreError::Expired { .. } => ErrorCode::MessageExpired,
            CoreError::UnknownSchema { .. } => ErrorCode::UnknownSchema,
            CoreError::ContractViolation { .. } => ErrorCode::ContractViolation,
            CoreError::Forbidden { .. } => ErrorCode::Forbidden,
            CoreError::PendingApproval { .. } => ErrorCode::PendingApproval,
            CoreError::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            CoreError::MessageNotFound { .. }
            | CoreError::AgentNotFound { .. }
            | CoreError::SessionNotFound { .. }
            | CoreError::ApprovalNotFound { .. } => ErrorCode::NotFound,
            CoreError::ApprovalNotPending { .. } => ErrorCode::Conflict,
            CoreError::ApprovalStore(_) => ErrorCode::Internal,
            CoreError::SessionTooLarge { .. } => ErrorCode::PayloadTooLarge,
            CoreError::SessionPreconditionFailed { .. } => ErrorCode::PreconditionFailed,
            CoreError::SessionPreconditionRequired { .. } => ErrorCode::PreconditionRequired,
            CoreError::SessionStore(_) | CoreError::ContractStore(_) => ErrorCode::Internal,
            CoreError::Contract(err) => contract_code(err),
            CoreError::Bus(err) => bus_code(err),
            CoreError::Signature(_) => ErrorCode::Unauthenticated,
            CoreError::Ledger { .. } => ErrorCode::Internal,
            CoreError::LedgerClosed => ErrorCode::Unavailable,
            CoreError::LedgerDisabled => ErrorCode::NotFound,
        }
    }

    /// Whether the fault is ours (5xx): adapters log it in detail and answer generically.
    pub fn is_internal(&self) -> bool {
        self.code().http_status() >= 500
    }

    /// The wire error body: code, a message naming the field at fault, structured details.
    /// Internal failures carry a generic message; their detail belongs in the server's log.
    /// A damaged stream is the exception: its message names the stream, segment file and
    /// offset (never a directory), so a client knows the refusal is lasting.
    pub fn body(&self) -> ErrorBody {
        let code = self.code();
        let told = [ErrorCode::StreamDamaged, ErrorCode::InsufficientStorage];
        if self.is_internal() && !told.contains(&code) {
            return ErrorBody::new(code, code.meaning());
        }
        ErrorBody::with_details(code, self.to_string(), self.details())
    }

    fn details(&self) -> serde_json::Value {
        match self {
            CoreError::InvalidEnvelope(violations) => json!({ "violations": violations }),
            CoreError::ContractViolation { schema, errors } => {
                json!({ "schema": schema, "errors": errors })
            }
            CoreError::HopLimitExceeded { hops, limit } => json!({ "hops": hops, "limit": limit }),
            CoreError::Expired { expired_at, .. } => json!({ "expired_at": expired_at }),
            CoreError::UnknownSchema { schema, .. } => json!({ "schema": schema }),
            CoreError::Forbidden { reasons, .. } => json!({ "reasons": reasons }),
            CoreError::Contract(err) => contract_details(err),
            CoreError::PendingApproval { id, approval_id } => {
                json!({ "id": id, "approval_id": approval_id })
            }
            CoreError::InvalidRequest { field, .. } => json!({ "field": field }),
            CoreError::Signature(err) => err.details(),
            CoreError::AgentNotFound { id }
            | CoreError::SessionNotFound { id }
            | CoreError::ApprovalNotFound { id } => {
                json!({ "id": id })
            }
            CoreError::ApprovalNotPending { id, status } => {
                json!({ "id": id, "status": status })
            }
            CoreError::SessionTooLarge { size, max, .. } => json!({ "size": size, "max": max }),
            CoreError::SessionPreconditionFailed { current, .. } => {
                json!({ "current_version": current })
            }
            CoreError::SessionPreconditionRequired { current, .. } => {
                json!({ "current_version": current, "required": "If-Match" })
            }
            CoreError::Bus(BusError::StreamFull { stream, limit }) => {
                json!({ "stream": stream, "limit": limit, "retry_after_ms": 1000 })
            }
            CoreError::Bus(BusError::MessageTooLarge { size, max, .. }) => {
                json!({ "size": size, "max": max })
            }
            CoreError::Bus(BusError::NoSpace { stream }) => {
                json!({ "stream": stream, "retry_after_ms": NO_SPACE_RETRY_MS })
            }
            CoreError::Bus(BusError::StreamDamaged {
                stream,
                state,
                damage,
            }) => json!({
                "stream": stream,
                "state": state,
                "segment": damage.segment,
                "offset": damage.offset,
            }),
            _ => serde_json::Value::Null,
        }
    }
}

/// The retry hint of `INSUFFICIENT_STORAGE` (`details.retry_after_ms`; HTTP `Retry-After`).
pub const NO_SPACE_RETRY_MS: u64 = 5000;

/// The wire code of a registry refusal: unknown subjects and versions are `NOT_FOUND`, a
/// version the subject's history refuses is `CONFLICT`, a malformed one `INVALID_REQUEST`.
fn contract_code(err: &ace_contracts::ContractError) -> ErrorCode {
    use ace_contracts::ContractError as E;
    match err {
        E::UnknownSubject { .. } | E::UnknownVersion { .. } => ErrorCode::NotFound,
        E::Incompatible { .. } | E::VersionNotIncreasing { .. } | E::VersionExists { .. } => {
            ErrorCode::Conflict
        }
        _ => ErrorCode::InvalidRequest,
    }
}

/// The details of a registry refusal: what a client needs to fix it.
fn contract_details(err: &ace_contracts::ContractError) -> serde_json::Value {
    use ace_contracts::ContractError as E;
    match err {
        E::Incompatible {
            subject,
            version,
            mode,
            incompatibilities,
        } => json!({
            "subject": subject,
            "version": version.to_string(),
            "compatibility": mode,
            "incompatibilities": incompatibilities,
        }),
        E::VersionNotIncreasing {
            subject,
            version,
            latest,
        } => {
            json!({ "subject": subject, "version": version.to_string(), "latest": latest.to_string() })
        }
        E::VersionExists { subject, version } | E::UnknownVersion { subject, version } => {
            json!({ "subject": subject, "version": version.to_string() })
        }
        E::UnknownSubject { subject } => json!({ "subject": subject }),
        _ => json!({}),
    }
}

/// The wire code of a bus failure: the caller's faults keep their meaning, the engine's own
/// failures are `INTERNAL`.
fn bus_code(err: &BusError) -> ErrorCode {
    match err {
        BusError::StreamNotFound { .. } => ErrorCode::StreamNotFound,
        BusError::ConsumerNotFound { .. } => ErrorCode::ConsumerNotFound,
        BusError::Conflict { .. } => ErrorCode::Conflict,
        BusError::InvalidConfig { .. } | BusError::Unsupported { .. } => ErrorCode::InvalidRequest,
        BusError::InvalidSubject { .. } => ErrorCode::InvalidSubject,
        BusError::InvalidEnvelope { .. } => ErrorCode::InvalidEnvelope,
        BusError::StreamFull { .. }
        | BusError::SlowConsumer { .. }
        | BusError::TooManySubscriptions { .. } => ErrorCode::Backpressure,
        BusError::MessageTooLarge { .. } => ErrorCode::PayloadTooLarge,
        BusError::NotPending { .. } => ErrorCode::NotFound,
        BusError::Timeout { .. } => ErrorCode::Timeout,
        BusError::NoResponders { .. } | BusError::Closed | BusError::Engine { .. } => {
            ErrorCode::Unavailable
        }
        BusError::StreamDamaged { .. } => ErrorCode::StreamDamaged,
        BusError::NoSpace { .. } => ErrorCode::InsufficientStorage,
        _ => ErrorCode::Internal,
    }
}

/// A bus error in the words of its wire answer: the errors whose own text opens with their
/// kind (`invalid subject …`, `conflict on …`, `invalid envelope on …`) are worded from their
/// fields, the rest say what they say.
fn bus_message(err: &BusError) -> String {
    match err {
        // The reason is the subject grammar's own sentence, naming the subject.
        BusError::InvalidSubject { reason, .. } => reason.clone(),
        BusError::Conflict { what, reason } => format!("`{what}`: {reason}"),
        BusError::InvalidEnvelope { subject, reason } => {
            format!("the message on `{subject}`: {reason}")
        }
        other => other.to_string(),
    }
}

fn summary(violations: &[Violation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.path, v.message))
        .collect();
    parts.join("; ")
}

/// Where the first error is: its JSON pointer, or the payload's root for the empty pointer.
fn first_at(errors: &[ValidationError]) -> String {
    match errors.first().map(|e| e.instance_pointer.as_str()) {
        Some("") | None => "the payload's root".to_owned(),
        Some(pointer) => format!("`{pointer}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_stream_full_bus_error_when_mapped_then_it_is_backpressure_with_a_retry_hint() {
        let err = CoreError::from(BusError::StreamFull {
            stream: "S".into(),
            limit: "max_msgs 1".into(),
        });
        let body = err.body();
        assert_eq!(body.error.code, ErrorCode::Backpressure);
        assert_eq!(body.error.details["retry_after_ms"], 1000);
    }

    #[test]
    fn given_an_internal_failure_when_rendered_then_the_body_hides_the_detail() {
        let err = CoreError::from(BusError::Storage {
            stream: "S".into(),
            reason: "disk /secret/path failed".into(),
        });
        assert!(err.is_internal());
        let body = err.body();
        assert_eq!(body.error.code, ErrorCode::Internal);
        assert!(!body.error.message.contains("/secret/path"));
    }

    #[test]
    fn given_a_damaged_stream_when_rendered_then_it_is_stream_damaged_naming_segment_and_offset() {
        let err = CoreError::from(BusError::StreamDamaged {
            stream: "S".into(),
            state: "read_only",
            damage: Box::new(ace_bus::StreamDamage {
                reason: "record fails its crc32c".into(),
                segment: Some("00000000000000000001.log".into()),
                offset: Some(4242),
            }),
        });
        let body = err.body();
        assert_eq!(body.error.code, ErrorCode::StreamDamaged);
        assert_eq!(ErrorCode::StreamDamaged.http_status(), 503);
        assert!(body.error.message.contains("00000000000000000001.log"));
        assert!(body.error.message.contains("4242"));
        assert_eq!(body.error.details["state"], "read_only");
        assert_eq!(body.error.details["offset"], 4242);
    }

    #[test]
    fn given_a_full_device_when_rendered_then_it_is_insufficient_storage_507_with_a_retry_hint() {
        let err = CoreError::from(BusError::NoSpace { stream: "S".into() });
        let body = err.body();
        assert_eq!(body.error.code, ErrorCode::InsufficientStorage);
        assert_eq!(ErrorCode::InsufficientStorage.http_status(), 507);
        assert!(body.error.message.contains("`S`"), "{}", body.error.message);
        assert_eq!(body.error.details["retry_after_ms"], NO_SPACE_RETRY_MS);
    }

    /// One of each refusal the core answers with, and the bus errors it passes on.
    fn every_refusal() -> Vec<CoreError> {
        let uuid = uuid::Uuid::nil();
        let bus = [
            BusError::Timeout {
                subject: "s".into(),
                after: std::time::Duration::from_secs(1),
            },
            BusError::NoResponders {
                subject: "s".into(),
            },
            BusError::SlowConsumer { subscription: 1 },
            BusError::InvalidSubject {
                subject: "a..b".into(),
                reason: ace_envelope::Subject::new("a..b").unwrap_err().to_string(),
            },
            BusError::Closed,
            BusError::TooManySubscriptions { max: 1 },
            BusError::StreamNotFound { stream: "S".into() },
            BusError::ConsumerNotFound {
                stream: "S".into(),
                consumer: "c".into(),
            },
            BusError::Conflict {
                what: "S".into(),
                reason: "a stream of that name exists with another config".into(),
            },
            BusError::InvalidConfig {
                field: "stream.subjects[0]".into(),
                reason: "empty".into(),
            },
            BusError::StreamFull {
                stream: "S".into(),
                limit: "max_msgs 1".into(),
            },
            BusError::InvalidEnvelope {
                subject: "s".into(),
                reason: "no payload".into(),
            },
            BusError::NoSpace { stream: "S".into() },
            BusError::Unsupported {
                feature: "x".into(),
            },
        ];
        let mut all: Vec<CoreError> = bus.into_iter().map(CoreError::from).collect();
        all.extend([
            CoreError::Unauthenticated {
                reason: crate::auth::NO_CREDENTIALS.into(),
            },
            CoreError::InvalidEnvelope(vec![Violation {
                path: "/subject".into(),
                message: "bad".into(),
            }]),
            CoreError::HopLimitExceeded { hops: 9, limit: 8 },
            CoreError::Expired {
                id: uuid,
                expired_at: DateTime::<Utc>::UNIX_EPOCH,
            },
            CoreError::UnknownSchema {
                schema: "x@1.0.0".into(),
                reason: "unknown subject `x`".into(),
            },
            CoreError::ContractViolation {
                schema: "x@1.0.0".into(),
                errors: vec![ValidationError {
                    instance_pointer: "/task".into(),
                    schema_pointer: "/properties/task/type".into(),
                    message: "1 is not of type \"string\"".into(),
                }],
            },
            CoreError::Forbidden {
                principal: "agent-1".into(),
                action: "publish ace.comms.x".into(),
                reasons: vec!["no role allows it".into()],
            },
            CoreError::PendingApproval {
                id: uuid,
                approval_id: "a".into(),
            },
            CoreError::InvalidRequest {
                field: "batch",
                reason: "must not be empty".into(),
            },
            CoreError::MessageNotFound {
                stream: "S".into(),
                seq: 1,
            },
            CoreError::AgentNotFound { id: "a".into() },
            CoreError::SessionNotFound { id: "s".into() },
            CoreError::SessionTooLarge {
                id: "s".into(),
                size: 2,
                max: 1,
            },
            CoreError::SessionPreconditionFailed {
                id: "s".into(),
                current: None,
            },
            CoreError::SessionPreconditionRequired {
                id: "s".into(),
                current: 1,
            },
            CoreError::ApprovalNotFound { id: "a".into() },
            CoreError::ApprovalNotPending {
                id: "a".into(),
                status: crate::approvals::ApprovalStatus::Approved,
            },
            CoreError::Signature(crate::integrity::SignatureError {
                subject: "s".into(),
                pattern: None,
                problem: crate::integrity::SignatureProblem::Missing,
            }),
            CoreError::LedgerClosed,
            CoreError::LedgerDisabled,
        ]);
        all
    }

    #[test]
    fn given_every_refusal_when_answered_then_its_message_does_not_restate_its_code() {
        for err in every_refusal() {
            let body = err.body();
            let error = &body.error;
            assert!(!error.code.is_restated_by(&error.message), "{error:?}");
            assert!(!body.error.message.is_empty(), "{err:?}");
        }
    }

    #[test]
    fn given_an_engine_error_opening_with_its_kind_when_answered_then_it_is_worded_from_its_fields()
    {
        let conflict = CoreError::from(BusError::Conflict {
            what: "ORDERS".into(),
            reason: "retention and storage cannot change".into(),
        });
        assert_eq!(
            conflict.body().error.message,
            "`ORDERS`: retention and storage cannot change"
        );
        let subject = CoreError::from(BusError::InvalidSubject {
            subject: "a..b".into(),
            reason: ace_envelope::Subject::new("a..b").unwrap_err().to_string(),
        });
        assert_eq!(
            subject.body().error.message,
            "subject \"a..b\" has an empty token"
        );
        let whole = CoreError::ContractViolation {
            schema: "x@1.0.0".into(),
            errors: vec![ValidationError {
                instance_pointer: String::new(),
                schema_pointer: "/required".into(),
                message: "\"task\" is a required property".into(),
            }],
        };
        assert_eq!(
            whole.to_string(),
            "payload does not conform to `x@1.0.0`: 1 error(s), the first at the payload's root"
        );
    }

    #[test]
    fn given_violations_when_rendered_then_each_path_is_in_the_details() {
        let err = CoreError::InvalidEnvelope(vec![Violation {
            path: "/subject".into(),
            message: "bad".into(),
        }]);
        let body = err.body();
        assert_eq!(body.error.code, ErrorCode::InvalidEnvelope);
        assert_eq!(body.error.details["violations"][0]["path"], "/subject");
        assert!(body.error.message.contains("/subject"));
    }
}
