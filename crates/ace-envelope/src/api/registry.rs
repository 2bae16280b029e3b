//! The wire types of the schema registry's HTTP API (`/api/v1/registry`), shaped like
//! Confluent Schema Registry's where it fits, with semver versions:
//!
//! | route | body | answer |
//! |---|---|---|
//! | `GET /api/v1/registry/subjects` | | `["subject", …]` |
//! | `GET …/subjects/{s}/versions` | | `["1.0.0", …]` |
//! | `GET …/subjects/{s}/versions/{v}` (`v`: a version or `latest`) | | [`SchemaVersion`] |
//! | `POST …/subjects/{s}/versions` | [`RegisterSchema`] | [`RegisteredSchema`] |
//! | `POST …/compatibility/subjects/{s}/versions/{v}?verbose=` | [`CompatibilityRequest`] | [`CompatibilityAnswer`] |
//! | `GET`, `PUT …/config/{s}` | [`SubjectConfig`] | [`SubjectConfig`] |

use serde::{Deserialize, Serialize};

/// One version of one contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaVersion {
    /// The contract's subject (dotted name).
    pub subject: String,
    /// Its version (semver).
    pub version: String,
    /// The JSON Schema.
    pub schema: serde_json::Value,
    /// The subject's compatibility mode.
    pub compatibility: String,
}

/// The body of a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterSchema {
    /// The version to register (semver, above the subject's latest).
    pub version: String,
    /// The JSON Schema.
    pub schema: serde_json::Value,
}

/// One way a schema breaks its subject's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Incompatibility {
    /// Which way the data would flow to be refused: `backward` or `forward`.
    pub direction: String,
    /// JSON pointer of the schema location at fault.
    pub pointer: String,
    /// The rule broken (`required_added`, `type_narrowed`, …).
    pub rule: String,
    /// A sentence naming both schemas and what one admits that the other refuses.
    pub reason: String,
    /// The earlier version compared against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisteredSchema {
    /// The contract's subject.
    pub subject: String,
    /// The version registered.
    pub version: String,
    /// The mode it was checked under.
    pub compatibility: String,
    /// The earlier versions it was checked against.
    pub checked_against: Vec<String>,
    /// True when this exact schema was registered at this version already (nothing changed).
    pub already_registered: bool,
    /// Incompatibilities the mode lets through (e.g. forward ones under `backward`).
    pub advisories: Vec<Incompatibility>,
}

/// The body of a compatibility check: the candidate schema, and optionally the mode to check
/// under (the subject's own otherwise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompatibilityRequest {
    /// The candidate JSON Schema.
    pub schema: serde_json::Value,
    /// `backward`, `backward_transitive`, `forward`, `forward_transitive`, `full`,
    /// `full_transitive` or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<String>,
}

/// The answer of a compatibility check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CompatibilityAnswer {
    /// Whether the candidate would be admitted (version order aside).
    pub is_compatible: bool,
    /// With `?verbose=true`: each incompatibility as a sentence, Confluent's `messages`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<String>,
    /// With `?verbose=true`: each incompatibility with its pointer and rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incompatibilities: Vec<Incompatibility>,
}

/// A subject's compatibility mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SubjectConfig {
    /// The mode (see [`CompatibilityRequest::compatibility`]).
    pub compatibility: String,
}
