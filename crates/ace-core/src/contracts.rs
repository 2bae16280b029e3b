//! The schema registry at run time: contracts registered, listed, read and checked through the
//! core ([`Core::contracts`], [`Core::contract_list`], [`Core::contract`],
//! [`Core::validate_payload`] for any authenticated caller, so no adapter reads the registry
//! around the core), kept in a [`ContractStore`], recorded in the ledger, and required by
//! subject.
//!
//! The registry the pipeline's step 3 reads is an `Arc<Registry>` swapped whole: a registration
//! clones the current registry (cheap: compiled schemas are shared), registers into the clone
//! under the subject's compatibility mode, stores the change durably, records it, and only then
//! swaps the clone in. A message being checked keeps the registry it started with; none waits.
//!
//! - Reads (subjects, versions, schemas, modes) and dry-run compatibility checks need only an
//!   authenticated caller: contracts are what every publisher must be able to read.
//! - A registration or a mode change is judged as a publish on [`REGISTER_SUBJECT`] (so with the
//!   shipped roles only `admin` may; a refusal is a `denied` entry like every other) and is a
//!   `config_changed` ledger entry naming the subject, version and the schema's SHA-256.
//! - Requirements ([`Requirement`]): a subject pattern may require a contract, so a message on a
//!   matching subject is checked against it whatever its publisher names: against the named
//!   version when `schema` names the required contract, against its latest version when it names
//!   none; a message naming another contract there (`/schema`) or carrying no inline JSON
//!   payload is refused.
//!
//! Changes are replayed in their order when the server starts ([`Core::with_contracts`]): a
//! change the shipped contracts no longer admit stops the start, naming it.

use std::path::Path;
use std::sync::Arc;

use ace_contracts::{CompatibilityMode, ContractError, Incompatibility, Registry, Version};
use ace_envelope::{Envelope, SubjectPattern};
use ace_ledger::{EntryKind, NewEntry};
use parking_lot::RwLock;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::context::RequestContext;
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::Action;
use crate::pipeline;
use crate::sessions::StoreError;

/// The subject a registration or a compatibility-mode change is judged as a publish on.
pub const REGISTER_SUBJECT: &str = "ace.comms.system.registry.cmd.register.v1";

/// One change of the registry, as stored and replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum RegistryChange {
    /// A schema registered as `version` of `subject`.
    Register {
        /// The contract's subject (dotted name).
        subject: String,
        /// Its version.
        version: Version,
        /// The JSON Schema.
        schema: Value,
    },
    /// The compatibility mode of `subject` set.
    Mode {
        /// The contract's subject.
        subject: String,
        /// The mode from now on.
        mode: CompatibilityMode,
    },
}

/// Where the registry's changes live, in the order they were made.
pub trait ContractStore: Send + Sync + std::fmt::Debug {
    /// Every change, oldest first.
    fn changes(&self) -> Result<Vec<RegistryChange>, StoreError>;
    /// Appends `change` durably.
    fn append(&self, change: &RegistryChange) -> Result<(), StoreError>;
}

/// Changes kept in memory (tests, and servers keeping nothing on disk).
#[derive(Debug, Default)]
pub struct MemoryContractStore {
    changes: parking_lot::Mutex<Vec<RegistryChange>>,
}

impl ContractStore for MemoryContractStore {
    fn changes(&self) -> Result<Vec<RegistryChange>, StoreError> {
        Ok(self.changes.lock().clone())
    }

    fn append(&self, change: &RegistryChange) -> Result<(), StoreError> {
        self.changes.lock().push(change.clone());
        Ok(())
    }
}

const CHANGES: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("registry_changes");

/// Changes in one redb file, one durable transaction each, numbered in order.
#[derive(Debug, Clone)]
pub struct RedbContractStore {
    db: Arc<Database>,
}

impl RedbContractStore {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::new("open", e);
        let db = Database::create(path).map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        txn.open_table(CHANGES).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        Ok(RedbContractStore { db: Arc::new(db) })
    }
}

impl ContractStore for RedbContractStore {
    fn changes(&self) -> Result<Vec<RegistryChange>, StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::new("read", e);
        let txn = self.db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(CHANGES).map_err(|e| err(&e))?;
        let mut changes = Vec::new();
        for row in table.iter().map_err(|e| err(&e))? {
            let (_, bytes) = row.map_err(|e| err(&e))?;
            let change =
                serde_json::from_slice(bytes.value()).map_err(|e| StoreError::new("decode", e))?;
            changes.push(change);
        }
        Ok(changes)
    }

    fn append(&self, change: &RegistryChange) -> Result<(), StoreError> {
        let err = |e: &dyn std::fmt::Display| StoreError::new("append", e);
        let bytes = serde_json::to_vec(change).map_err(|e| err(&e))?;
        let txn = self.db.begin_write().map_err(|e| err(&e))?;
        {
            let mut table = txn.open_table(CHANGES).map_err(|e| err(&e))?;
            let next = table
                .last()
                .map_err(|e| err(&e))?
                .map_or(0, |(key, _)| key.value() + 1);
            table.insert(next, bytes.as_slice()).map_err(|e| err(&e))?;
        }
        txn.commit().map_err(|e| err(&e))
    }
}

/// A subject pattern whose messages must satisfy a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The message subjects it covers.
    pub subjects: SubjectPattern,
    /// The contract's subject (`kpi.threshold_breach`), checked at the version the message
    /// names when it names this contract, at the latest otherwise.
    pub contract: String,
}

/// The registry the core reads, the store of its changes and the requirements.
#[derive(Debug)]
pub(crate) struct Contracts {
    current: RwLock<Arc<Registry>>,
    /// One registration at a time: each builds on the one before.
    writing: tokio::sync::Mutex<()>,
    store: Arc<dyn ContractStore>,
    requirements: Arc<[Requirement]>,
}

impl Contracts {
    pub(crate) fn new(registry: Arc<Registry>) -> Self {
        Contracts {
            current: RwLock::new(registry),
            writing: tokio::sync::Mutex::new(()),
            store: Arc::new(MemoryContractStore::default()),
            requirements: Arc::from([]),
        }
    }

    /// The registry in force.
    pub(crate) fn current(&self) -> Arc<Registry> {
        Arc::clone(&self.current.read())
    }

    /// Step 3 of the pipeline: every requirement the envelope's subject matches, then the
    /// contract it names (so a message naming the wrong contract where one is required is told
    /// so at `/schema`).
    pub(crate) fn check(&self, envelope: &Envelope) -> Result<(), CoreError> {
        let registry = self.current();
        for required in self
            .requirements
            .iter()
            .filter(|r| r.subjects.matches(envelope.subject.as_str()))
        {
            required_contract(&registry, required, envelope)?;
        }
        pipeline::contract(&registry, envelope)
    }
}

/// One requirement on `envelope`: its inline JSON payload valid against the required contract.
fn required_contract(
    registry: &Registry,
    required: &Requirement,
    envelope: &Envelope,
) -> Result<(), CoreError> {
    let named = envelope
        .schema
        .as_deref()
        .and_then(|s| s.parse::<ace_contracts::SchemaRef>().ok());
    if let Some(other) = named.as_ref().filter(|s| s.subject != required.contract) {
        return Err(CoreError::ContractViolation {
            schema: required.contract.clone(),
            errors: vec![ace_contracts::ValidationError {
                instance_pointer: "/schema".to_owned(),
                schema_pointer: String::new(),
                message: format!(
                    "messages on `{}` carry `{}`; this one names `{other}`",
                    required.subjects, required.contract
                ),
            }],
        });
    }
    let named = named.and_then(|s| s.version);
    let schema = registry
        .get(&required.contract, named.as_ref())
        .map_err(|err| CoreError::UnknownSchema {
            schema: required.contract.clone(),
            reason: err.to_string(),
        })?;
    let Some(payload) = pipeline::inline_json(envelope) else {
        return Err(CoreError::ContractViolation {
            schema: schema.schema_ref(),
            errors: vec![ace_contracts::ValidationError {
                instance_pointer: String::new(),
                schema_pointer: String::new(),
                message: format!(
                    "messages on `{}` must carry an inline JSON payload satisfying `{}`",
                    required.subjects,
                    schema.schema_ref()
                ),
            }],
        });
    };
    pipeline::conforms(&schema, payload)
}

/// What a registration did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Registered {
    /// The contract's subject.
    pub subject: String,
    /// The version registered.
    pub version: Version,
    /// The mode it was checked under.
    pub compatibility: CompatibilityMode,
    /// The earlier versions it was checked against.
    pub checked_against: Vec<Version>,
    /// True when this exact schema was registered at this version already (nothing changed).
    pub already_registered: bool,
    /// Incompatibilities the mode lets through (see `ace_contracts::RegisterOutcome`).
    pub advisories: Vec<Incompatibility>,
}

impl Core {
    /// The same core keeping the registry's changes in `store` (each replayed now, in order,
    /// over the registry it was built with) and enforcing `requirements`. A stored change the
    /// registry refuses (a shipped contract changed under it) is an error naming the change.
    pub fn with_contracts(
        mut self,
        store: Arc<dyn ContractStore>,
        requirements: Vec<Requirement>,
    ) -> Result<Self, CoreError> {
        let mut registry = (*self.registry.current()).clone();
        let changes = store.changes().map_err(CoreError::ContractStore)?;
        for change in changes {
            apply(&mut registry, &change).map_err(|err| CoreError::InvalidRequest {
                field: "contracts store",
                reason: format!("a stored registry change no longer applies: {err}"),
            })?;
        }
        for required in &requirements {
            registry
                .latest(&required.contract)
                .map_err(|err| CoreError::InvalidRequest {
                    field: "contracts.require",
                    reason: format!(
                        "`{}` requires `{}`: {err}",
                        required.subjects, required.contract
                    ),
                })?;
        }
        self.registry = Arc::new(Contracts {
            current: RwLock::new(Arc::new(registry)),
            writing: tokio::sync::Mutex::new(()),
            store,
            requirements: requirements.into(),
        });
        Ok(self)
    }

    /// The registry in force (a snapshot: later registrations do not change it).
    pub fn contracts(&self, ctx: &RequestContext) -> Result<Arc<Registry>, CoreError> {
        pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        Ok(self.registry.current())
    }

    /// Every registered contract, each subject's versions oldest first (subjects sorted).
    pub fn contract_list(
        &self,
        ctx: &RequestContext,
    ) -> Result<Vec<Arc<ace_contracts::RegisteredSchema>>, CoreError> {
        let registry = self.contracts(ctx)?;
        let mut all = Vec::new();
        for subject in registry.subjects() {
            for version in registry.versions(subject).unwrap_or_default() {
                if let Ok(schema) = registry.get(subject, Some(&version)) {
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
    ) -> Result<Arc<ace_contracts::RegisteredSchema>, CoreError> {
        self.contracts(ctx)?
            .resolve(schema_ref)
            .map_err(|err| CoreError::UnknownSchema {
                schema: schema_ref.to_owned(),
                reason: err.to_string(),
            })
    }

    /// Checks `payload` against the contract `schema_ref` names, as step 3 of a publish would,
    /// publishing nothing: `CONTRACT_VIOLATION` with every error's pointers, or `UNKNOWN_SCHEMA`.
    pub fn validate_payload(
        &self,
        ctx: &RequestContext,
        schema_ref: &str,
        payload: &Value,
    ) -> Result<Arc<ace_contracts::RegisteredSchema>, CoreError> {
        let schema = self.contract(ctx, schema_ref)?;
        pipeline::conforms(&schema, payload)?;
        Ok(schema)
    }

    /// Registers `schema` as `version` of `subject` under the subject's compatibility mode:
    /// judged as a publish on [`REGISTER_SUBJECT`], refused `CONFLICT` with every
    /// incompatibility (pointer and reason) when the mode forbids it, stored, recorded as a
    /// `config_changed` entry, then in force. Registering the same schema again changes nothing.
    pub async fn register_contract(
        &self,
        ctx: &RequestContext,
        subject: &str,
        version: Version,
        schema: Value,
    ) -> Result<Registered, CoreError> {
        let principal = self.allow(ctx, Action::Publish(REGISTER_SUBJECT)).await?;
        let _one_at_a_time = self.registry.writing.lock().await;
        let mut next = (*self.registry.current()).clone();
        let outcome = next
            .register(subject, version.clone(), schema.clone())
            .map_err(CoreError::Contract)?;
        let registered = Registered {
            subject: outcome.subject,
            version: outcome.version,
            compatibility: outcome.mode,
            checked_against: outcome.checked_against,
            already_registered: outcome.already_registered,
            advisories: outcome.advisories,
        };
        if registered.already_registered {
            return Ok(registered);
        }
        let sha256 = hex::encode(Sha256::digest(ace_envelope::canonical::to_canonical_vec(
            &schema,
        )));
        let change = RegistryChange::Register {
            subject: subject.to_owned(),
            version: version.clone(),
            schema,
        };
        self.store_change(change).await?;
        let details = json!({
            "change": "contract_registered",
            "contract": format!("{subject}@{version}"),
            "schema_sha256": sha256,
            "compatibility": registered.compatibility,
            "checked_against": registered.checked_against,
        });
        self.record_change(ctx, &principal.id, details).await;
        *self.registry.current.write() = Arc::new(next);
        Ok(registered)
    }

    /// Sets the compatibility mode of `subject` (registered or not), judged, stored and
    /// recorded as a registration is.
    pub async fn set_contract_compatibility(
        &self,
        ctx: &RequestContext,
        subject: &str,
        mode: CompatibilityMode,
    ) -> Result<(), CoreError> {
        let principal = self.allow(ctx, Action::Publish(REGISTER_SUBJECT)).await?;
        let parsed = subject
            .parse::<ace_contracts::SchemaRef>()
            .map_err(CoreError::Contract)?;
        if parsed.version.is_some() {
            return Err(CoreError::InvalidRequest {
                field: "subject",
                reason: format!("`{subject}` names a version; a mode belongs to a whole subject"),
            });
        }
        let _one_at_a_time = self.registry.writing.lock().await;
        let mut next = (*self.registry.current()).clone();
        next.set_compatibility(subject, mode);
        let change = RegistryChange::Mode {
            subject: subject.to_owned(),
            mode,
        };
        self.store_change(change).await?;
        let details = json!({
            "change": "contract_compatibility",
            "subject": subject,
            "compatibility": mode,
        });
        self.record_change(ctx, &principal.id, details).await;
        *self.registry.current.write() = Arc::new(next);
        Ok(())
    }

    /// A dry run of a registration: every incompatibility of `schema` as `version` of
    /// `subject` under `mode` (the subject's own when `None`). Registers nothing.
    pub fn check_contract(
        &self,
        ctx: &RequestContext,
        subject: &str,
        version: &Version,
        schema: Value,
        mode: Option<CompatibilityMode>,
    ) -> Result<Vec<Incompatibility>, CoreError> {
        self.contracts(ctx)?
            .check_compatibility(subject, version, schema, mode)
            .map_err(CoreError::Contract)
    }

    async fn store_change(&self, change: RegistryChange) -> Result<(), CoreError> {
        let store = Arc::clone(&self.registry.store);
        tokio::task::spawn_blocking(move || store.append(&change))
            .await
            .map_err(|e| CoreError::ContractStore(StoreError::new("append", e)))?
            .map_err(CoreError::ContractStore)
    }

    async fn record_change(&self, ctx: &RequestContext, actor: &str, details: Value) {
        let entry = NewEntry {
            kind: EntryKind::ConfigChanged,
            actor: actor.to_owned(),
            subject: REGISTER_SUBJECT.to_owned(),
            message_id: None,
            content_sha256: None,
            decision: format!(
                "{}: via {}",
                details["change"].as_str().unwrap_or_default(),
                ctx.transport
            ),
            details,
        };
        pipeline::record(&*self.hooks.recorder, vec![entry]).await;
    }
}

/// Replays one stored change.
fn apply(registry: &mut Registry, change: &RegistryChange) -> Result<(), ContractError> {
    match change {
        RegistryChange::Register {
            subject,
            version,
            schema,
        } => registry
            .register(subject, version.clone(), schema.clone())
            .map(drop),
        RegistryChange::Mode { subject, mode } => {
            registry.set_compatibility(subject, *mode);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ace_bus::{EmbeddedBus, EmbeddedConfig};
    use ace_contracts::{CompatibilityMode, Registry, Version};
    use ace_envelope::{Envelope, ErrorCode, Kind, SubjectPattern, SystemClock};
    use serde_json::json;

    use super::{ContractStore, RedbContractStore, Requirement};
    use crate::{Action, Authorizer, Core, CoreLimits, Decision, Hooks, Principal, RequestContext};

    /// Allows everything but a registration.
    #[derive(Debug)]
    struct NoRegistering;

    impl Authorizer for NoRegistering {
        fn authorize(&self, _: &Principal, action: Action<'_>, _: Option<&Envelope>) -> Decision {
            match action {
                Action::Publish(super::REGISTER_SUBJECT) => {
                    Decision::deny("registrations are admin's")
                }
                _ => Decision::Allow,
            }
        }
    }

    fn core(dir: &std::path::Path, hooks: Hooks) -> Core {
        Core::new(
            Arc::new(EmbeddedBus::open(EmbeddedConfig::new(dir.join("bus"))).unwrap()),
            Arc::new(Registry::embedded().unwrap()),
            Arc::new(SystemClock),
            hooks,
            CoreLimits::default(),
        )
    }

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    fn score() -> serde_json::Value {
        json!({"type": "object", "required": ["score"],
               "properties": {"score": {"type": "number"}}})
    }

    const SUBJECT: &str = "ace.comms.a2a.agent.scorer.evt.scored.v1";

    fn event(payload: serde_json::Value, schema: Option<&str>) -> Envelope {
        let mut builder = Envelope::builder(Kind::Event, SUBJECT).payload_json(payload);
        if let Some(schema) = schema {
            builder = builder.schema(schema);
        }
        builder.build().unwrap()
    }

    #[tokio::test]
    async fn given_a_stored_registration_when_the_core_starts_again_then_it_is_in_force_and_incompatible_ones_are_refused()
     {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contracts.redb");
        let ctx = RequestContext::new("test");
        {
            let store: Arc<dyn ContractStore> = Arc::new(RedbContractStore::open(&path).unwrap());
            let core = core(dir.path(), Hooks::development())
                .with_contracts(store, Vec::new())
                .unwrap();
            let done = core
                .register_contract(&ctx, "test.score", v("1.0.0"), score())
                .await
                .unwrap();
            assert!(!done.already_registered);
            core.set_contract_compatibility(&ctx, "test.score", CompatibilityMode::Full)
                .await
                .unwrap();
            core.close().await.unwrap();
        }
        let store: Arc<dyn ContractStore> = Arc::new(RedbContractStore::open(&path).unwrap());
        assert_eq!(store.changes().unwrap().len(), 2);
        let core = core(dir.path(), Hooks::development())
            .with_contracts(store, Vec::new())
            .unwrap();
        let registry = core.contracts(&ctx).unwrap();
        assert_eq!(registry.versions("test.score").unwrap(), [v("1.0.0")]);
        assert_eq!(
            registry.compatibility("test.score"),
            CompatibilityMode::Full
        );

        // Full: a new required field breaks backward compatibility.
        let narrowed = json!({"type": "object", "required": ["score", "why"],
                              "properties": {"score": {"type": "number"}, "why": {"type": "string"}}});
        let err = core
            .register_contract(&ctx, "test.score", v("2.0.0"), narrowed.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Conflict);
        let body = serde_json::to_value(err.body()).unwrap();
        let found = &body["error"]["details"]["incompatibilities"];
        assert!(found.as_array().is_some_and(|f| !f.is_empty()), "{body}");
        assert!(
            found[0]["pointer"].is_string() && found[0]["reason"].is_string(),
            "{body}"
        );
        let dry = core
            .check_contract(&ctx, "test.score", &v("2.0.0"), narrowed, None)
            .unwrap();
        assert!(!dry.is_empty());
        assert_eq!(
            core.contracts(&ctx)
                .unwrap()
                .versions("test.score")
                .unwrap(),
            [v("1.0.0")],
            "a refusal registers nothing"
        );
        let again = core
            .register_contract(&ctx, "test.score", v("1.0.0"), score())
            .await
            .unwrap();
        assert!(again.already_registered);
    }

    #[tokio::test]
    async fn given_a_required_contract_when_messages_arrive_then_only_valid_payloads_pass_whatever_they_name()
     {
        let dir = tempfile::tempdir().unwrap();
        let ctx = RequestContext::new("test");
        let store = Arc::new(super::MemoryContractStore::default());
        let mut registry = Registry::embedded().unwrap();
        registry
            .register("test.score", v("1.0.0"), score())
            .unwrap();
        let core = Core::new(
            Arc::new(EmbeddedBus::open(EmbeddedConfig::new(dir.path())).unwrap()),
            Arc::new(registry),
            Arc::new(SystemClock),
            Hooks::development(),
            CoreLimits::default(),
        );
        let required = Requirement {
            subjects: SubjectPattern::new("ace.comms.a2a.agent.scorer.>").unwrap(),
            contract: "test.score".to_owned(),
        };
        let core = core.with_contracts(store, vec![required]).unwrap();

        let refused = [
            event(json!({"nothing": true}), None),
            event(json!({"score": "high"}), Some("test.score@1.0.0")),
            event(json!({"nothing": true}), Some("comms.ping@1.0.0")),
        ];
        for envelope in refused {
            let err = core.publish(&ctx, envelope).await.unwrap_err();
            assert!(
                matches!(
                    err.code(),
                    ErrorCode::ContractViolation | ErrorCode::UnknownSchema
                ),
                "{err}"
            );
        }
        let by_reference = ace_envelope::PayloadRef {
            uri: "https://blobs.example/score/1".to_owned(),
            sha256: "0".repeat(64),
            size: 12,
        };
        let without = Envelope::builder(Kind::Event, SUBJECT)
            .payload_ref("application/json", by_reference)
            .build()
            .unwrap();
        let err = core.publish(&ctx, without).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ContractViolation, "{err}");
        core.publish(&ctx, event(json!({"score": 0.9}), None))
            .await
            .unwrap();

        let unknown = Requirement {
            subjects: SubjectPattern::new("ace.>").unwrap(),
            contract: "no.such".to_owned(),
        };
        let fresh = tempfile::tempdir().unwrap();
        let err = self::core(fresh.path(), Hooks::development())
            .with_contracts(
                Arc::new(super::MemoryContractStore::default()),
                vec![unknown],
            )
            .unwrap_err();
        assert!(err.to_string().contains("no.such"), "{err}");
    }

    #[test]
    fn given_the_embedded_registry_when_listed_then_every_subject_and_version_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), Hooks::development());
        let all = core.contract_list(&RequestContext::new("test")).unwrap();
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
        let core = core(dir.path(), Hooks::development());
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

    #[tokio::test]
    async fn given_a_principal_without_the_rule_when_registering_then_it_is_forbidden_and_nothing_changes()
     {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            authorizer: Arc::new(NoRegistering),
            ..Hooks::development()
        };
        let core = core(dir.path(), hooks);
        let ctx = RequestContext::new("test");
        let err = core
            .register_contract(&ctx, "test.score", v("1.0.0"), score())
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        let err = core
            .set_contract_compatibility(&ctx, "test.score", CompatibilityMode::None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        assert!(
            core.contracts(&ctx)
                .unwrap()
                .versions("test.score")
                .is_err()
        );
    }
}
