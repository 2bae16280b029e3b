//! The governance hooks of the core, built from the configuration: [`Governance::from_config`]
//! reads the `auth` and `policy` sections (keys, API-key file, policy directory or the embedded
//! policies) at start, so a bad file stops the server with its configuration key named; and
//! [`AppState::reload`] reads them again while the server runs (SIGHUP in `ace-comms serve`,
//! `POST /api/v1/admin/reload`).
//!
//! - `auth.mode: development`: `DevAuthenticator` (every caller is the development admin) and
//!   `DevAuthorizer` (RBAC and Rego off, every action allowed, EHI holds kept with the
//!   `policy.ehi` thresholds). Nothing to reload: a reload says so and changes nothing.
//! - `auth.mode: enforced`: `PolicyAuthenticator` over the configured methods (JWT through a
//!   cache of verified tokens, API keys, client certificates) and `PolicyAuthorizer` over one
//!   [`PolicyEngine`] (`policy.dir`, or the shipped `policies/` compiled in), whose counters the
//!   metrics export.
//!
//! # Reload
//!
//! A reload re-reads every file the `auth` and `policy` sections name — the JWT keys
//! (`auth.jwt.keys`: PEM, JWKS, HMAC secret files), `auth.api_keys`, and `policy.dir`
//! (`rbac.yaml`, every `*.rego`, and `environments.yaml` when present: the environments of
//! target subjects) — and builds the new authenticator state and engine
//! FIRST. Only when all of it loaded is the reload recorded in the ledger (a `config_changed`
//! entry by the requester naming what was reloaded and the SHA-256 of every file read) and then
//! swapped in; any error leaves the old state serving and is returned naming the configuration
//! key and the file. The swap drops the cache of verified tokens, so a removed JWT key or API
//! key stops working from the next request on, and every live WebSocket authenticates again
//! right after a successful reload (a connection whose key was removed is closed with 4001). Recording before swapping means no reloaded
//! policy decides before the ledger says it was loaded; the start's entry carries the same
//! hashes of the files it loaded. One limit: the files are read again to be hashed, so a file
//! rewritten while it is loaded may be hashed in its newer state.
//!
//! Not reloaded: the configuration file itself (its keys, `auth.mode` and `policy.ehi`
//! included), TLS certificates, the data directory and the listen address — those need a
//! restart. The embedded policies cannot change while the binary runs, so without `policy.dir`
//! only the `auth` files are reloaded.
//!
//! The recorder is `NoRecord` here; the ledger's recorder is set where the ledger is opened.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ace_core::{
    Core, DevAuthenticator, DevAuthorizer, Hooks, NoRecord, PolicyAuthenticator, PolicyAuthorizer,
};
use ace_ledger::{EntryKind, Hash, NewEntry};
use ace_policy::{
    ApiKeyStore, EhiGate, KeySource, PolicyEngine, PolicyError, RBAC_FILE, TokenVerifier,
    environments_file, rego_files,
};

use crate::config::{AuthConfig, AuthMode, Config, PolicyConfig};
use crate::error::ServerError;
use crate::http::AppState;

/// The hooks and, in enforced mode, the handles that reload them.
#[derive(Debug, Clone)]
pub struct Governance {
    /// What the core runs for steps 1, 4 and 7.
    pub hooks: Hooks,
    /// Enforced mode only: what a reload reads and swaps.
    enforced: Option<Enforced>,
}

/// The reloadable parts of enforced mode and the configuration sections naming their files.
#[derive(Debug, Clone)]
struct Enforced {
    /// The same authenticator the hooks hold (swapped in place).
    authenticator: Arc<PolicyAuthenticator>,
    /// A clone of the hooks' authorizer: clones share the engine slot.
    authorizer: PolicyAuthorizer,
    auth: AuthConfig,
    policy: PolicyConfig,
    /// The SHA-256 of every file the start loaded, by path (recorded by the start's ledger
    /// entry, as a reload's are by its own).
    started_files: BTreeMap<String, String>,
    /// One reload at a time: SIGHUP and the endpoint may race, and two overlapping reloads
    /// could swap in the older read last.
    reloading: Arc<tokio::sync::Mutex<()>>,
}

pub use ace_envelope::api::http::Reloaded;

/// The answer of development mode, which has no credentials or policies to reload.
fn nothing_to_reload() -> Reloaded {
    Reloaded {
        reloaded: Vec::new(),
        files: BTreeMap::new(),
        message: "development mode: no credentials or policies to reload".to_owned(),
    }
}

/// Everything the `auth` and `policy` files make, built before anything is swapped.
struct Loaded {
    tokens: Option<TokenVerifier>,
    api_keys: Option<ApiKeyStore>,
    /// `None` without `policy.dir` (the embedded policies).
    engine: Option<PolicyEngine>,
    reloaded: Vec<String>,
    files: BTreeMap<String, String>,
}

fn policy_error(key: &'static str) -> impl FnOnce(PolicyError) -> ServerError {
    move |source| ServerError::Policy { key, source }
}

impl Loaded {
    /// Reads and builds every file `auth` and `policy` name; the first failure names its key.
    fn read(auth: &AuthConfig, policy: &PolicyConfig) -> Result<Loaded, ServerError> {
        let mut loaded = Loaded {
            tokens: None,
            api_keys: None,
            engine: None,
            reloaded: Vec::new(),
            files: BTreeMap::new(),
        };
        if let Some(jwt) = &auth.jwt {
            loaded.tokens =
                Some(TokenVerifier::from_config(jwt).map_err(policy_error("auth.jwt"))?);
            let paths = jwt.keys.iter().map(|key| match key {
                KeySource::Pem { path, .. }
                | KeySource::Jwks { path }
                | KeySource::HmacSecret { path, .. } => path.clone(),
            });
            loaded.hash("auth.jwt", paths)?;
        }
        if let Some(path) = &auth.api_keys {
            loaded.api_keys = Some(ApiKeyStore::load(path).map_err(policy_error("auth.api_keys"))?);
            loaded.hash("auth.api_keys", [path.clone()])?;
        }
        if let Some(dir) = &policy.dir {
            let engine =
                PolicyEngine::load(dir, policy.ehi.clone()).map_err(policy_error("policy.dir"))?;
            loaded.engine = Some(engine);
            let rego = rego_files(dir).map_err(policy_error("policy.dir"))?;
            loaded.hash(
                "policy.dir",
                std::iter::once(dir.join(RBAC_FILE))
                    .chain(rego)
                    .chain(environments_file(dir)),
            )?;
        }
        Ok(loaded)
    }

    /// Records `key` as reloaded and the SHA-256 of each of `paths`.
    fn hash(
        &mut self,
        key: &'static str,
        paths: impl IntoIterator<Item = PathBuf>,
    ) -> Result<(), ServerError> {
        for path in paths {
            let digest = sha256_of(&path).map_err(policy_error(key))?;
            self.files.insert(path.display().to_string(), digest);
        }
        self.reloaded.push(key.to_owned());
        Ok(())
    }
}

/// The SHA-256 of a file's bytes, in lowercase hex.
fn sha256_of(path: &Path) -> Result<String, PolicyError> {
    let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })?;
    Ok(Hash::of(&[&bytes]).to_hex())
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
                enforced: None,
            });
        }
        let loaded = Loaded::read(&config.auth, &config.policy)?;
        let started_files = loaded.files;
        let engine = match loaded.engine {
            Some(engine) => engine,
            None => PolicyEngine::embedded(ehi).map_err(policy_error("policy"))?,
        };
        let authenticator = Arc::new(PolicyAuthenticator::new(
            loaded.tokens,
            loaded.api_keys,
            config.auth.mtls,
        ));
        tracing::info!(methods = ?authenticator.methods(), "authentication enforced");
        let authorizer = PolicyAuthorizer::new(Arc::new(engine));
        Ok(Governance {
            hooks: Hooks {
                authenticator: authenticator.clone(),
                authorizer: Arc::new(authorizer.clone()),
                recorder: Arc::new(NoRecord),
            },
            enforced: Some(Enforced {
                authenticator,
                authorizer,
                auth: config.auth.clone(),
                policy: config.policy.clone(),
                started_files,
                reloading: Arc::default(),
            }),
        })
    }

    /// The SHA-256 of every credential and policy file the start loaded, by path (empty in
    /// development mode and with only the embedded policies).
    pub fn started_files(&self) -> BTreeMap<String, String> {
        self.enforced
            .as_ref()
            .map(|e| e.started_files.clone())
            .unwrap_or_default()
    }

    /// The authorizer of enforced mode (its current engine's counters feed `/metrics`).
    pub fn authorizer(&self) -> Option<&PolicyAuthorizer> {
        self.enforced.as_ref().map(|e| &e.authorizer)
    }

    /// The engine deciding now (enforced mode only).
    pub fn policy(&self) -> Option<Arc<PolicyEngine>> {
        self.authorizer().map(PolicyAuthorizer::engine)
    }

    /// Re-reads every `auth` and `policy` file, records the reload in `core`'s ledger as a
    /// `config_changed` entry by `actor`, then swaps it in (see the module docs). A file that
    /// does not load is [`ServerError::Policy`] naming its key and file, a ledger that cannot
    /// record is [`ServerError::Core`]; either way the old state keeps serving.
    pub async fn reload(&self, core: &Core, actor: &str) -> Result<Reloaded, ServerError> {
        let Some(enforced) = &self.enforced else {
            return Ok(nothing_to_reload());
        };
        let _one_at_a_time = enforced.reloading.lock().await;
        // Read on this task: a few small files and a Rego compile, milliseconds, and rare.
        let loaded = Loaded::read(&enforced.auth, &enforced.policy)?;
        let message = if loaded.reloaded.is_empty() {
            "no file to reload: auth and policy name none (the embedded policies are compiled in)"
                .to_owned()
        } else {
            format!("reloaded {}", loaded.reloaded.join(", "))
        };
        let reloaded = Reloaded {
            message,
            reloaded: loaded.reloaded,
            files: loaded.files,
        };
        let entry = NewEntry::new(EntryKind::ConfigChanged, actor, "server.reload")
            .decision("reload")
            .details(serde_json::json!({
                "op": "reload",
                "reloaded": reloaded.reloaded,
                "files": reloaded.files,
            }));
        core.record(vec![entry])
            .await
            .map_err(|source| ServerError::Core {
                op: "recording the reload in the ledger",
                source,
            })?;
        enforced
            .authenticator
            .replace(loaded.tokens, loaded.api_keys, enforced.auth.mtls);
        if let Some(engine) = loaded.engine {
            enforced.authorizer.replace(Arc::new(engine));
        }
        Ok(reloaded)
    }
}

impl AppState {
    /// The one entry of both reload triggers (SIGHUP and `POST /api/v1/admin/reload`):
    /// [`Governance::reload`] by `actor`, counted in `ace_comms_reloads_total{result}`; a
    /// failure is logged at error with its reason. Without governance (a router built in a
    /// test) there is nothing to reload, as in development mode.
    pub async fn reload(&self, actor: &str) -> Result<Reloaded, ServerError> {
        let result = match &self.governance {
            Some(governance) => governance.reload(&self.core, actor).await,
            None => Ok(nothing_to_reload()),
        };
        let label = if result.is_ok() { "ok" } else { "error" };
        self.metrics.reloads.with_label_values(&[label]).inc();
        match &result {
            Ok(done) => {
                let (reloaded, files) = (&done.reloaded, &done.files);
                tracing::info!(actor, ?reloaded, ?files, "governance reloaded");
                // Every live WebSocket authenticates again with what was just loaded.
                self.reloads.send_modify(|generation| *generation += 1);
            }
            Err(err) => {
                let error = error_chain(err);
                tracing::error!(actor, %error, "reload refused; the old credentials and policies serve");
            }
        }
        result
    }
}

/// An error and its causes, `: `-separated (the file's I/O or parse error is a cause).
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthConfig;

    #[test]
    fn given_development_mode_when_built_then_the_hooks_say_so_and_no_engine_is_loaded() {
        let governance = Governance::from_config(&Config::default()).unwrap();
        assert!(governance.hooks.is_development());
        assert!(governance.policy().is_none());
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
        let engine = governance.policy().expect("an engine");
        assert!(engine.rbac().role("auditor").is_some());
        assert!(engine.rego().is_some());
    }
}
