//! The governance hooks of the core, built from the configuration: [`Governance::from_config`]
//! reads the `auth` and `policy` sections (keys, API-key file, policy directory or the embedded
//! policies) once at start, so a bad file stops the server with its configuration key named.
//!
//! - `auth.mode: development`: `DevAuthenticator` (every caller is the development admin) and
//!   `DevAuthorizer` (RBAC and Rego off, every action allowed, EHI holds kept with the
//!   `policy.ehi` thresholds).
//! - `auth.mode: enforced`: `PolicyAuthenticator` over the configured methods (JWT through a
//!   cache of verified tokens, API keys, client certificates) and `PolicyAuthorizer` over one
//!   [`PolicyEngine`] (`policy.dir`, or the shipped `policies/` compiled in), whose counters the
//!   metrics export.
//!
//! The recorder is `NoRecord` here; the ledger's recorder is set where the ledger is opened.

use std::sync::Arc;

use ace_core::{
    DevAuthenticator, DevAuthorizer, Hooks, NoRecord, PolicyAuthenticator, PolicyAuthorizer,
};
use ace_policy::{ApiKeyStore, EhiGate, PolicyEngine, TokenVerifier};

use crate::config::{AuthMode, Config};
use crate::error::ServerError;

/// The hooks and, in enforced mode, the policy engine behind them.
#[derive(Debug, Clone)]
pub struct Governance {
    /// What the core runs for steps 1, 4 and 7.
    pub hooks: Hooks,
    /// The engine deciding (enforced mode only): its counters feed `/metrics`.
    pub policy: Option<Arc<PolicyEngine>>,
}

fn policy_error(key: &'static str) -> impl FnOnce(ace_policy::PolicyError) -> ServerError {
    move |source| ServerError::Policy { key, source }
}

impl Governance {
    /// Loads every file the `auth` and `policy` sections name and builds the hooks. Call after
    /// [`Config::validate`].
    pub fn from_config(config: &Config) -> Result<Governance, ServerError> {
        let ehi = config.policy.ehi.clone();
        if config.auth.mode == AuthMode::Development {
            let gate = EhiGate::new(ehi).map_err(policy_error("policy.ehi"))?;
            return Ok(Governance {
                hooks: Hooks {
                    authenticator: Arc::new(DevAuthenticator),
                    authorizer: Arc::new(DevAuthorizer::new(gate)),
                    recorder: Arc::new(NoRecord),
                },
                policy: None,
            });
        }
        let engine = match &config.policy.dir {
            Some(dir) => PolicyEngine::load(dir, ehi).map_err(policy_error("policy.dir"))?,
            None => PolicyEngine::embedded(ehi).map_err(policy_error("policy"))?,
        };
        let engine = Arc::new(engine);
        let tokens = match &config.auth.jwt {
            Some(jwt) => Some(TokenVerifier::from_config(jwt).map_err(policy_error("auth.jwt"))?),
            None => None,
        };
        let api_keys = match &config.auth.api_keys {
            Some(path) => Some(ApiKeyStore::load(path).map_err(policy_error("auth.api_keys"))?),
            None => None,
        };
        let authenticator = PolicyAuthenticator::new(tokens, api_keys, config.auth.mtls);
        tracing::info!(methods = ?authenticator.methods(), "authentication enforced");
        Ok(Governance {
            hooks: Hooks {
                authenticator: Arc::new(authenticator),
                authorizer: Arc::new(PolicyAuthorizer::new(Arc::clone(&engine))),
                recorder: Arc::new(NoRecord),
            },
            policy: Some(engine),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    #[test]
    fn given_development_mode_when_built_then_the_hooks_say_so_and_no_engine_is_loaded() {
        let governance = Governance::from_config(&Config::default()).unwrap();
        assert!(governance.hooks.is_development());
        assert!(governance.policy.is_none());
    }

    #[test]
    fn given_enforced_mode_with_a_missing_key_file_when_built_then_the_key_is_named() {
        let config = Config {
            auth: AuthConfig {
                mode: AuthMode::Enforced,
                api_keys: Some("/nonexistent/keys.yaml".into()),
                ..AuthConfig::default()
            },
            ..Config::default()
        };
        let err = Governance::from_config(&config).unwrap_err().to_string();
        assert!(err.contains("`auth.api_keys`"), "{err}");
    }

    #[test]
    fn given_enforced_mode_without_a_policy_dir_when_built_then_the_embedded_policies_decide() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys.yaml");
        std::fs::write(&keys, "keys: []\n").unwrap();
        let config = Config {
            auth: AuthConfig {
                mode: AuthMode::Enforced,
                api_keys: Some(keys),
                ..AuthConfig::default()
            },
            ..Config::default()
        };
        let governance = Governance::from_config(&config).unwrap();
        assert!(!governance.hooks.is_development());
        let engine = governance.policy.expect("an engine");
        assert!(engine.rbac().role("auditor").is_some());
        assert!(engine.rego().is_some());
    }
}
