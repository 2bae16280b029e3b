//! [`Contracts`]: every schema the kernel checks a body against, compiled once — the types of
//! `contracts/ml/ml_schemas.json` and the events of `ml_events.json` from the embedded registry,
//! and the request bodies of `ml_api.json` (`components/schemas`), registered here with their
//! `ml_schemas.json` references pointed at the embedded document.

use ace_contracts::{Registry, ValidationError, Version};
use serde_json::Value;

use crate::MltError;

/// The ML API document as shipped (`contracts/ml/ml_api.json`).
pub fn api_document() -> &'static str {
    embedded("ml/ml_api.json")
}

/// `contracts/ml/ml_schemas.json`, which the API document's `$ref`s name beside it.
pub fn schemas_document() -> &'static str {
    embedded("ml/ml_schemas.json")
}

fn embedded(path: &str) -> &'static str {
    ace_contracts::embedded_files()
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
        .unwrap_or_else(|| panic!("contracts/{path} is embedded by ace-contracts"))
}

/// The subjects the API's own bodies are registered under here.
const API_BODIES: [(&str, &str); 4] = [
    ("mlt.api.snapshot_export_request", "SnapshotExportRequest"),
    ("mlt.api.rollback_request", "RollbackRequest"),
    ("mlt.api.iso8601", ""),
    ("mlt.api.uid", ""),
];

/// The compiled schemas.
#[derive(Debug)]
pub struct Contracts {
    registry: Registry,
}

impl Contracts {
    /// Compiles everything; fails only if the embedded contracts are broken (a build defect).
    pub fn load() -> Result<Self, String> {
        let mut registry = Registry::embedded().map_err(|e| e.to_string())?;
        let api: Value = serde_json::from_str(api_document()).map_err(|e| e.to_string())?;
        for (subject, component) in API_BODIES {
            let schema = match component {
                "" if subject.ends_with("iso8601") => {
                    serde_json::json!({"$ref": "ml/ml_schemas.json#/$defs/ISO8601"})
                }
                "" => serde_json::json!({"$ref": "ml/ml_schemas.json#/$defs/UID"}),
                name => rebase(&api["components"]["schemas"][name]),
            };
            registry
                .register(subject, Version::new(1, 0, 0), schema)
                .map_err(|e| format!("{subject}: {e}"))?;
        }
        Ok(Contracts { registry })
    }

    /// Checks `value` against `schema_ref`, as the `what` of the request.
    pub fn check(
        &self,
        what: &'static str,
        schema_ref: &str,
        value: &Value,
    ) -> Result<(), MltError> {
        match self.registry.validate(schema_ref, value) {
            Ok(()) => Ok(()),
            Err(ace_contracts::ContractError::Invalid { errors, .. }) => Err(MltError::Contract {
                what,
                schema: schema_ref.to_owned(),
                errors,
            }),
            Err(other) => Err(MltError::Contract {
                what,
                schema: schema_ref.to_owned(),
                errors: vec![ValidationError {
                    instance_pointer: String::new(),
                    schema_pointer: String::new(),
                    message: other.to_string(),
                }],
            }),
        }
    }

    /// Whether `value` is valid against `schema_ref`.
    pub fn is_valid(&self, schema_ref: &str, value: &Value) -> bool {
        self.registry.validate(schema_ref, value).is_ok()
    }
}

/// `schema` with every `ml_schemas.json#…` reference made relative to `contracts/`.
fn rebase(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) if r.starts_with("ml_schemas.json#") => {
                        (k.clone(), Value::String(format!("ml/{r}")))
                    }
                    _ => (k.clone(), rebase(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rebase).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn given_the_api_bodies_when_loaded_then_good_ones_pass_and_bad_ones_name_the_pointer() {
        let contracts = Contracts::load().unwrap();
        let rollback = "mlt.api.rollback_request@1.0.0";
        let good = json!({"target": "mlt", "to_snapshot": "snap_1234", "reason": "bad plan"});
        contracts.check("rollback", rollback, &good).unwrap();
        let model_without_version = json!({"target": "model", "model_key": "churn", "reason": "x"});
        assert!(!contracts.is_valid(rollback, &model_without_version));
        let bad_uid = json!({"target": "mlt", "to_snapshot": "Bad Id", "reason": "x"});
        let Err(MltError::Contract { errors, .. }) =
            contracts.check("rollback", rollback, &bad_uid)
        else {
            panic!("a bad UID is refused");
        };
        assert!(
            errors.iter().any(|e| e.instance_pointer == "/to_snapshot"),
            "{errors:?}"
        );
        assert!(contracts.is_valid("mlt.api.iso8601@1.0.0", &json!("2026-01-02T03:04:05Z")));
        assert!(!contracts.is_valid("mlt.api.iso8601@1.0.0", &json!("2026-01-02 03:04:05")));
    }
}
