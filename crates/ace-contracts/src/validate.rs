//! Payload validation: compiling a registered schema once into a `jsonschema::Validator` that
//! resolves references among the embedded documents only, and turning its failures into
//! [`ValidationError`]s that carry JSON pointers into the instance and the schema.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::documents::Documents;

/// One reason a value does not conform to its schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationError {
    /// JSON pointer (RFC 6901) of the offending part of the value; `""` is the whole value. For a
    /// missing required property it is the object that lacks it.
    pub instance_pointer: String,
    /// JSON pointer of the failing keyword in the schema, following `$ref`s as written.
    pub schema_pointer: String,
    /// What is wrong, in words.
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at `{}`: {} (schema `{}`)",
            self.instance_pointer, self.message, self.schema_pointer
        )
    }
}

/// The `jsonschema` resource registry holding every embedded document under its URI, so that
/// compiled validators resolve `$ref`s without any retrieval.
pub(crate) fn resources(docs: &Documents) -> Result<jsonschema::Registry<'static>, String> {
    let owned: Vec<(String, Value)> = docs
        .resources()
        .map(|(uri, doc)| (uri, doc.clone()))
        .collect();
    jsonschema::Registry::new()
        .extend(owned)
        .and_then(|builder| builder.prepare())
        .map_err(|e| e.to_string())
}

/// Compiles `schema`, whose relative references resolve against `base_uri`. Formats are
/// asserted, not just annotated: a contract that says `date-time` means it.
pub(crate) fn compile(
    resources: &jsonschema::Registry<'static>,
    base_uri: &str,
    schema: &Value,
) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .offline()
        .with_registry(resources)
        .with_base_uri(base_uri)
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| e.to_string())
}

/// Every error of `value` against `validator`, in the validator's order.
pub(crate) fn errors(validator: &jsonschema::Validator, value: &Value) -> Vec<ValidationError> {
    validator
        .iter_errors(value)
        .map(|e| ValidationError {
            instance_pointer: e.instance_path().as_str().to_owned(),
            schema_pointer: e.schema_path().as_str().to_owned(),
            message: e.to_string(),
        })
        .collect()
}
