//! The one error type of the crate: every failure of opening, appending, proving and storing,
//! each naming the file, sequence number or size at fault.
//!
//! Problems found *in the data* by [`crate::verify_dir`] are not errors but findings of the
//! [`crate::VerifyReport`]; a [`LedgerError`] means the operation itself could not be done.

use std::path::PathBuf;

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Reading or writing a ledger file failed.
    #[error("ledger I/O on `{path}`: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A stored line or key file could not be decoded.
    #[error("ledger file `{path}` line {line}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 for a whole-file problem such as a key file).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// The stored entries do not form an unbroken chain; the ledger refuses to append onto it.
    /// Run `verify_dir` for the full diagnosis.
    #[error("ledger is corrupt at seq {seq}: {reason}")]
    Corrupt {
        /// The first entry that does not verify.
        seq: u64,
        /// What does not match.
        reason: String,
    },
    /// A proof or tree head was asked for a size or index the ledger does not have.
    #[error("{what} out of range: {value} (ledger size {size})")]
    OutOfRange {
        /// Which argument (`seq`, `tree_size`, `from`, `to`).
        what: &'static str,
        /// The value asked for.
        value: u64,
        /// The ledger's current number of entries.
        size: u64,
    },
    /// An entry could not be encoded (its `details` did not serialize).
    #[error("entry field `{field}` cannot be encoded: {source}")]
    Encode {
        /// The field at fault.
        field: &'static str,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A PostgreSQL store operation failed.
    #[error("ledger PostgreSQL {operation}: {reason}")]
    Postgres {
        /// What was being done (`connect`, `insert entry`, …).
        operation: &'static str,
        /// The server's or client's message.
        reason: String,
    },
    /// A proof does not verify.
    #[error("proof does not verify: {0}")]
    Proof(#[from] crate::merkle::ProofError),
}

impl LedgerError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        LedgerError::Io {
            path: path.into(),
            source,
        }
    }
}
