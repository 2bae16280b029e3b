//! The errors of the workflow layer: a file that does not load ([`LoadError`], naming file,
//! workflow and JSON path), the state store ([`StateError`]) and a run ([`RunError`]).

use std::path::PathBuf;

/// One problem of a workflow file: where, and what.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{file}: {}{path}: {message}", workflow.as_deref().map(|w| format!("workflow `{w}` at ")).unwrap_or_default())]
pub struct Problem {
    /// The file.
    pub file: String,
    /// The workflow, when the problem is inside one.
    pub workflow: Option<String>,
    /// JSON pointer into the file's document (`/workflows/2/trigger/filters/0/op`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// A file that does not load: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} problem(s); first: {}", problems.len(), problems.first().map(ToString::to_string).unwrap_or_default())]
pub struct LoadError {
    /// At least one.
    pub problems: Vec<Problem>,
}

/// The persistent state (filters, runs, toggles) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// redb refused an operation.
    #[error("workflow state {path}: {message}")]
    Store {
        /// The database file.
        path: PathBuf,
        /// redb's reason.
        message: String,
    },
    /// A stored record does not decode.
    #[error("workflow state: record `{key}` does not decode: {source}")]
    Decode {
        /// The record.
        key: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// Why an action or a run failed, as `workflow.failed` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RunError {
    /// A wire code (`TIMEOUT`, `FORBIDDEN`) or an engine reason (`template_error`).
    pub code: String,
    /// Details.
    pub message: String,
}

impl RunError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        RunError {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Whether the engine may try again (everything but a policy refusal or a template error).
    pub fn retryable(&self) -> bool {
        !matches!(
            self.code.as_str(),
            "FORBIDDEN" | "UNAUTHENTICATED" | "template_error" | "APPROVAL_REJECTED"
        )
    }
}
