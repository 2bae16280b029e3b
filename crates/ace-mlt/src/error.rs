//! [`MltError`]: every way a kernel operation fails, each naming the field, id or store call at
//! fault; the server maps each variant to one wire code.

use ace_contracts::ValidationError;

/// A failed kernel operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MltError {
    /// The body breaks its contract; every violation with its JSON pointers.
    #[error("the {what} breaks its contract `{schema}` ({} violation(s))", errors.len())]
    Contract {
        /// What was checked (`experience`, `adaptation plan`, ...).
        what: &'static str,
        /// The schema it was checked against.
        schema: String,
        /// Every violation.
        errors: Vec<ValidationError>,
    },
    /// A malformed request outside any contract (a bad query parameter).
    #[error("`{field}` {reason}")]
    BadRequest {
        /// The field at fault.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// No such plan or snapshot.
    #[error("no {what} `{id}`")]
    NotFound {
        /// `plan` or `snapshot`.
        what: &'static str,
        /// The id asked for.
        id: String,
    },
    /// A plan with this id exists with different content.
    #[error("plan `{id}` exists with different content")]
    Conflict {
        /// The plan id.
        id: String,
    },
    /// The caller is not allowed (raised by the [`crate::Publisher`] of the caller).
    #[error("refused: {}", reasons.join("; "))]
    Forbidden {
        /// The policy's reasons.
        reasons: Vec<String>,
    },
    /// Publishing an event failed (the bus or the ledger refused it).
    #[error("publishing `{event}` failed: {reason}")]
    Publish {
        /// The event's name.
        event: &'static str,
        /// What the publisher said.
        reason: String,
    },
    /// The store failed.
    #[error("store {op} failed: {reason}")]
    Store {
        /// The store call.
        op: &'static str,
        /// The cause, as text (redb and PostgreSQL errors alike).
        reason: String,
    },
}

impl MltError {
    /// A store failure of `op`.
    pub fn store(op: &'static str, err: impl std::fmt::Display) -> Self {
        MltError::Store {
            op,
            reason: err.to_string(),
        }
    }
}
