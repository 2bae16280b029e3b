//! The one error type of the crate. Every variant names the subject, version, file or key at fault
//! so that a message read in a log is enough to find the problem.

use std::fmt;

use semver::Version;

use crate::{compat::CompatibilityMode, compat::Incompatibility, validate::ValidationError};

/// Everything that can go wrong when loading, registering, resolving or validating a contract.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ContractError {
    /// No schema is registered under the subject.
    #[error("unknown subject `{subject}`")]
    UnknownSubject {
        /// The subject asked for.
        subject: String,
    },
    /// The subject exists but not at this version.
    #[error("unknown version {version} of subject `{subject}`")]
    UnknownVersion {
        /// The subject asked for.
        subject: String,
        /// The version asked for.
        version: Version,
    },
    /// A schema reference is not `subject` or `subject@semver`.
    #[error("bad schema reference `{schema_ref}`: {reason}")]
    BadSchemaRef {
        /// The reference as given.
        schema_ref: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The schema is not a valid JSON Schema, or one of its `$ref`s does not resolve locally.
    #[error("schema {subject}@{version} does not compile: {reason}")]
    SchemaDoesNotCompile {
        /// The subject being registered.
        subject: String,
        /// The version being registered.
        version: Version,
        /// The compiler's reason.
        reason: String,
    },
    /// The new version breaks the subject's compatibility mode.
    #[error(
        "schema {subject}@{version} is not {mode} compatible: {}",
        Listed(incompatibilities)
    )]
    Incompatible {
        /// The subject being registered.
        subject: String,
        /// The version refused.
        version: Version,
        /// The subject's compatibility mode.
        mode: CompatibilityMode,
        /// Every incompatibility found, each with its pointer and reason.
        incompatibilities: Vec<Incompatibility>,
    },
    /// The version is not above the latest registered version of the subject.
    #[error("version {version} of subject `{subject}` is not above the latest, {latest}")]
    VersionNotIncreasing {
        /// The subject being registered.
        subject: String,
        /// The version refused.
        version: Version,
        /// The latest registered version.
        latest: Version,
    },
    /// The version is already registered with a different schema; versions are immutable.
    #[error("version {version} of subject `{subject}` is already registered with another schema")]
    VersionExists {
        /// The subject being registered.
        subject: String,
        /// The version refused.
        version: Version,
    },
    /// The manifest or a file it names cannot be read.
    #[error("contracts manifest: {file}: `{key}`: {reason}")]
    Manifest {
        /// The file at fault, relative to `contracts/`.
        file: String,
        /// The key or entry at fault (`schemas[3].pointer`, `compatibility.default`...).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The value does not conform to the schema; every error is listed with its pointers.
    #[error("value does not conform to `{schema_ref}`: {}", Listed(errors))]
    Invalid {
        /// The schema the value was validated against, as `subject@version`.
        schema_ref: String,
        /// Every validation error.
        errors: Vec<ValidationError>,
    },
}

/// Renders a list as `a; b; c` inside an error message.
struct Listed<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for Listed<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}
