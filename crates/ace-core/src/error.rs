//! The one error type of `ace-core`, and the one place where a failure becomes a wire
//! [`ErrorCode`] and an [`ErrorBody`]: every adapter (HTTP today, WebSocket, MCP and the CLI
//! later) answers with `CoreError::body()`, so the same refusal reads the same everywhere.

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
    #[error("unauthenticated: {reason}")]
    Unauthenticated {
        /// Why the credentials were refused.
        reason: String,
    },
    /// The envelope breaks one or more rules of `gme/1`.
    #[error("invalid envelope: {}", summary(.0))]
    InvalidEnvelope(Vec<Violation>),
    /// The envelope took more hops than the configured limit (a routing loop).
    #[error("hop limit exceeded: `hops` is {hops}, the limit is {limit}")]
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
    #[error("unknown schema `{schema}`: {reason}")]
    UnknownSchema {
        /// The `schema` field as given.
        schema: String,
        /// What the registry said.
        reason: String,
    },
    /// The payload does not satisfy its contract.
    #[error("payload does not conform to `{schema}`: {} error(s), first at `{}`", errors.len(), first_pointer(errors))]
    ContractViolation {
        /// The resolved contract, `subject@version`.
        schema: String,
        /// Every validation error with its JSON pointers.
        errors: Vec<ValidationError>,
    },
    /// The principal may not do this.
    #[error("forbidden: {principal} may not {action}: {}", reasons.join("; "))]
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
    #[error("invalid request: `{field}` {reason}")]
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
    #[error(transparent)]
    SessionStore(#[from] crate::sessions::StoreError),
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
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A signature is missing, by an unregistered key or does not verify.
    #[error("unauthenticated: {0}")]
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
            CoreError::SessionStore(_) => ErrorCode::Internal,
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
        BusError::NoResponders { .. } | BusError::Closed => ErrorCode::Unavailable,
        BusError::StreamDamaged { .. } => ErrorCode::StreamDamaged,
        BusError::NoSpace { .. } => ErrorCode::InsufficientStorage,
        _ => ErrorCode::Internal,
    }
}

fn summary(violations: &[Violation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|v| format!("{}: {}", v.path, v.message))
        .collect();
    parts.join("; ")
}

fn first_pointer(errors: &[ValidationError]) -> &str {
    errors.first().map_or("", |e| e.instance_pointer.as_str())
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
