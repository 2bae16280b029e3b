//! The contracts registry as adapters see it: [`Core::contracts`] lists the registered
//! contracts, [`Core::contract`] reads one, [`Core::validate_payload`] checks a payload against
//! one without publishing anything. Each authenticates first (contracts are read by any
//! authenticated caller, as the `schema` of an envelope is checked for any publisher), so an
//! adapter never reads the registry around the core.

use std::sync::Arc;

use ace_contracts::RegisteredSchema;
use serde_json::Value;

use crate::context::RequestContext;
use crate::core::Core;
use crate::error::CoreError;
use crate::pipeline;

impl Core {
    /// Every registered contract, each subject's versions oldest first.
    pub fn contracts(&self, ctx: &RequestContext) -> Result<Vec<Arc<RegisteredSchema>>, CoreError> {
        pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        let mut subjects: Vec<&str> = self.registry.subjects().collect();
        subjects.sort_unstable();
        let mut all = Vec::new();
        for subject in subjects {
            for version in self.registry.versions(subject).unwrap_or_default() {
                if let Ok(schema) = self.registry.get(subject, Some(&version)) {
                    all.push(schema);
                }
            }
        }
        Ok(all)
    }

    /// The contract `schema_ref` names (`name@version`, or `name` for its latest version);
    /// `UNKNOWN_SCHEMA` when there is none.
    pub fn contract(
        &self,
        ctx: &RequestContext,
        schema_ref: &str,
    ) -> Result<Arc<RegisteredSchema>, CoreError> {
        pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        self.resolve_contract(schema_ref)
    }

    /// Checks `payload` against the contract `schema_ref` names, as step 3 of a publish would:
    /// `CONTRACT_VIOLATION` with every error's pointers, or `UNKNOWN_SCHEMA`.
    pub fn validate_payload(
        &self,
        ctx: &RequestContext,
        schema_ref: &str,
        payload: &Value,
    ) -> Result<Arc<RegisteredSchema>, CoreError> {
        pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        let schema = self.resolve_contract(schema_ref)?;
        schema
            .validate(payload)
            .map_err(|errors| CoreError::ContractViolation {
                schema: schema.schema_ref(),
                errors,
            })?;
        Ok(schema)
    }

    fn resolve_contract(&self, schema_ref: &str) -> Result<Arc<RegisteredSchema>, CoreError> {
        self.registry
            .resolve(schema_ref)
            .map_err(|err| CoreError::UnknownSchema {
                schema: schema_ref.to_owned(),
                reason: err.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ace_bus::{EmbeddedBus, EmbeddedConfig};
    use ace_contracts::Registry;
    use ace_envelope::{ErrorCode, SystemClock};
    use serde_json::json;

    use crate::{Core, CoreLimits, Hooks, RequestContext};

    fn core(dir: &std::path::Path) -> Core {
        Core::new(
            Arc::new(EmbeddedBus::open(EmbeddedConfig::new(dir)).unwrap()),
            Arc::new(Registry::embedded().unwrap()),
            Arc::new(SystemClock),
            Hooks::development(),
            CoreLimits::default(),
        )
    }

    #[test]
    fn given_the_embedded_registry_when_listed_then_every_subject_and_version_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path());
        let all = core.contracts(&RequestContext::new("test")).unwrap();
        let refs: Vec<String> = all.iter().map(|s| s.schema_ref()).collect();
        assert!(
            refs.contains(&"comms.dlq.dead_letter@1.1.0".to_owned()),
            "{refs:?}"
        );
        let latest = core
            .contract(&RequestContext::new("test"), "comms.dlq.dead_letter")
            .unwrap();
        assert_eq!(latest.subject(), "comms.dlq.dead_letter");
    }

    #[test]
    fn given_a_payload_when_validated_then_violations_and_unknown_contracts_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path());
        let ctx = RequestContext::new("test");
        let bad = core
            .validate_payload(
                &ctx,
                "mlt.experience@1.0.0",
                &json!({"not": "an experience"}),
            )
            .unwrap_err();
        assert_eq!(bad.code(), ErrorCode::ContractViolation);
        let unknown = core
            .validate_payload(&ctx, "no.such.contract@1.0.0", &json!({}))
            .unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::UnknownSchema);
    }
}
