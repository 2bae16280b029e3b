//! The schema registry: subjects with semver-ordered versions, each compiled once into a cached
//! validator and admitted only if it is compatible with its predecessors under the subject's mode.
//!
//! Loading the embedded manifest goes through the same [`Registry::register`] path as run-time
//! registration, so the shipped history of every subject is itself checked for compatibility.

use std::{collections::BTreeMap, fmt, str::FromStr, sync::Arc};

use semver::Version;
use serde_json::Value;

use crate::{
    compat::{self, CheckOptions, CompatibilityMode, Incompatibility, Located},
    documents::{self, Documents, Loc},
    error::ContractError,
    manifest::{MANIFEST, Manifest},
    validate::{self, ValidationError},
};

/// A parsed schema reference: `subject@1.2.3`, or `subject` for the latest version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SchemaRef {
    /// The subject (dotted name).
    pub subject: String,
    /// The exact version, or `None` for the latest.
    pub version: Option<Version>,
}

impl FromStr for SchemaRef {
    type Err = ContractError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ContractError::BadSchemaRef {
            schema_ref: s.to_owned(),
            reason,
        };
        let (subject, version) = match s.split_once('@') {
            Some((subject, version)) => {
                let version = Version::parse(version).map_err(|e| bad(format!("version: {e}")))?;
                (subject, Some(version))
            }
            None => (s, None),
        };
        check_subject(subject).map_err(bad)?;
        Ok(Self {
            subject: subject.to_owned(),
            version,
        })
    }
}

impl fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.subject),
            None => f.write_str(&self.subject),
        }
    }
}

/// Subjects are dotted tokens of `[A-Za-z0-9_-]+`, like bus subjects without wildcards.
fn check_subject(subject: &str) -> Result<(), String> {
    let token_ok = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if subject.split('.').all(token_ok) {
        Ok(())
    } else {
        Err(format!(
            "subject `{subject}` is not dotted tokens of [A-Za-z0-9_-]"
        ))
    }
}

/// Where a registered schema came from, which decides how its `$ref`s resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaSource {
    /// A sub-schema of an embedded file.
    File {
        /// Path relative to `contracts/`.
        file: String,
        /// JSON pointer inside the file (`""` for the whole file).
        pointer: String,
    },
    /// Registered at run time; relative `$ref`s resolve against `contracts/`.
    Registered,
}

/// One version of one subject, with its compiled validator.
pub struct RegisteredSchema {
    subject: String,
    version: Version,
    schema: Value,
    source: SchemaSource,
    validator: jsonschema::Validator,
}

impl fmt::Debug for RegisteredSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegisteredSchema")
            .field("subject", &self.subject)
            .field("version", &self.version)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl RegisteredSchema {
    /// The subject.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The version.
    pub fn version(&self) -> &Version {
        &self.version
    }

    /// The schema as registered (for a file entry, the sub-schema at its pointer).
    pub fn schema(&self) -> &Value {
        &self.schema
    }

    /// Where the schema came from.
    pub fn source(&self) -> &SchemaSource {
        &self.source
    }

    /// `subject@version`.
    pub fn schema_ref(&self) -> String {
        format!("{}@{}", self.subject, self.version)
    }

    /// Validates `value` with the cached validator, returning every error.
    pub fn validate(&self, value: &Value) -> Result<(), Vec<ValidationError>> {
        if self.validator.is_valid(value) {
            return Ok(());
        }
        Err(validate::errors(&self.validator, value))
    }

    /// Whether `value` conforms, without collecting errors.
    pub fn is_valid(&self, value: &Value) -> bool {
        self.validator.is_valid(value)
    }
}

/// What a successful [`Registry::register`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisterOutcome {
    /// The subject registered.
    pub subject: String,
    /// The version registered.
    pub version: Version,
    /// The mode it was checked under.
    pub mode: CompatibilityMode,
    /// The earlier versions it was checked against (empty for the first version or `none`).
    pub checked_against: Vec<Version>,
    /// True when this exact schema was already registered at this version (nothing changed).
    pub already_registered: bool,
    /// What the mode let through: incompatibilities with the previous latest version in the
    /// directions the mode does not enforce (all of them under `none`). Forward findings under
    /// `backward`, say, are the old consumers that will refuse new data until upgraded.
    pub advisories: Vec<Incompatibility>,
}

/// Subjects, their versions and compatibility modes; see the crate documentation.
///
/// Cloning is cheap next to compiling: the compiled schemas and the resolved resources are
/// shared, only the maps and the documents are copied. A server registering at run time clones,
/// registers into the clone, and swaps it in, so readers never wait on a registration.
#[derive(Clone)]
pub struct Registry {
    docs: Documents,
    resources: Arc<jsonschema::Registry<'static>>,
    default_mode: CompatibilityMode,
    modes: BTreeMap<String, CompatibilityMode>,
    subjects: BTreeMap<String, BTreeMap<Version, Arc<RegisteredSchema>>>,
    options: CheckOptions,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("default_mode", &self.default_mode)
            .field("modes", &self.modes)
            .field("subjects", &self.subjects)
            .finish_non_exhaustive()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

impl Registry {
    /// An empty registry with the `backward` default mode and no documents to reference.
    pub fn new() -> Self {
        Self::with_documents(Documents::new()).expect("an empty resource registry always builds")
    }

    /// The registry of the contracts embedded at compile time (`contracts/comms/registry.yaml`).
    pub fn embedded() -> Result<Self, ContractError> {
        Self::from_files(crate::embedded_files().iter().copied())
    }

    /// A registry from a contracts tree given as `(path relative to contracts/, text)`: every
    /// `.json` file outside `examples/` folders becomes a referenceable document, and the
    /// manifest `comms/registry.yaml`
    /// says which schemas to register, in order, and the compatibility modes.
    pub fn from_files<'f>(
        files: impl IntoIterator<Item = (&'f str, &'f str)>,
    ) -> Result<Self, ContractError> {
        let mut docs = Documents::new();
        let mut manifest = None;
        for (file, text) in files {
            if file == MANIFEST {
                manifest = Some(Manifest::parse(text)?);
            } else if file.ends_with(".json") && !is_example(file) {
                let doc = serde_json::from_str(text)
                    .map_err(|e| manifest_error(file, "", e.to_string()))?;
                docs.insert(file, doc);
            }
        }
        let manifest = manifest
            .ok_or_else(|| manifest_error(MANIFEST, "", "the manifest is missing".into()))?;
        let mut registry = Self::with_documents(docs)?;
        registry.default_mode = manifest.compatibility.default;
        registry.modes = manifest.compatibility.subjects;
        for (i, entry) in manifest.schemas.into_iter().enumerate() {
            let schema = registry
                .docs
                .get(&entry.file)
                .ok_or_else(|| {
                    manifest_error(
                        MANIFEST,
                        &format!("schemas[{i}].file"),
                        format!("no JSON file `{}` under contracts/", entry.file),
                    )
                })?
                .pointer(&entry.pointer)
                .ok_or_else(|| {
                    manifest_error(
                        MANIFEST,
                        &format!("schemas[{i}].pointer"),
                        format!("`{}` points at nothing in `{}`", entry.pointer, entry.file),
                    )
                })?
                .clone();
            let source = SchemaSource::File {
                file: entry.file,
                pointer: entry.pointer,
            };
            registry.insert(&entry.subject, entry.version, schema, source)?;
        }
        Ok(registry)
    }

    fn with_documents(docs: Documents) -> Result<Self, ContractError> {
        let resources =
            validate::resources(&docs).map_err(|reason| manifest_error("", "", reason))?;
        Ok(Self {
            docs,
            resources: Arc::new(resources),
            default_mode: CompatibilityMode::Backward,
            modes: BTreeMap::new(),
            subjects: BTreeMap::new(),
            options: CheckOptions::default(),
        })
    }

    /// Sets how open content models are read by compatibility checks (default: lenient).
    pub fn set_check_options(&mut self, options: CheckOptions) {
        self.options = options;
    }

    /// Sets the compatibility mode of `subject` (which need not be registered yet).
    pub fn set_compatibility(&mut self, subject: &str, mode: CompatibilityMode) {
        self.modes.insert(subject.to_owned(), mode);
    }

    /// Sets the mode of subjects without their own.
    pub fn set_default_compatibility(&mut self, mode: CompatibilityMode) {
        self.default_mode = mode;
    }

    /// The mode `subject` is checked under.
    pub fn compatibility(&self, subject: &str) -> CompatibilityMode {
        self.modes
            .get(subject)
            .copied()
            .unwrap_or(self.default_mode)
    }

    /// Every subject, sorted.
    pub fn subjects(&self) -> impl Iterator<Item = &str> {
        self.subjects.keys().map(String::as_str)
    }

    /// The versions of `subject`, oldest first.
    pub fn versions(&self, subject: &str) -> Result<Vec<Version>, ContractError> {
        Ok(self.versions_of(subject)?.keys().cloned().collect())
    }

    /// `subject` at `version`, or at its latest version when `version` is `None`.
    pub fn get(
        &self,
        subject: &str,
        version: Option<&Version>,
    ) -> Result<Arc<RegisteredSchema>, ContractError> {
        let versions = self.versions_of(subject)?;
        let found = match version {
            Some(v) => versions.get(v),
            None => versions.values().next_back(),
        };
        found.cloned().ok_or_else(|| ContractError::UnknownVersion {
            subject: subject.to_owned(),
            version: version.cloned().unwrap_or_else(|| Version::new(0, 0, 0)),
        })
    }

    /// The latest version of `subject`.
    pub fn latest(&self, subject: &str) -> Result<Arc<RegisteredSchema>, ContractError> {
        self.get(subject, None)
    }

    /// The schema a reference (`subject@1.2.3` or `subject`) names.
    pub fn resolve(&self, schema_ref: &str) -> Result<Arc<RegisteredSchema>, ContractError> {
        let parsed: SchemaRef = schema_ref.parse()?;
        self.get(&parsed.subject, parsed.version.as_ref())
    }

    /// Validates `value` against the schema `schema_ref` names; `ContractError::Invalid` lists
    /// every error with its pointers. Use [`Registry::resolve`] then
    /// [`RegisteredSchema::validate`] to validate many values against one schema.
    pub fn validate(&self, schema_ref: &str, value: &Value) -> Result<(), ContractError> {
        let schema = self.resolve(schema_ref)?;
        schema
            .validate(value)
            .map_err(|errors| ContractError::Invalid {
                schema_ref: schema.schema_ref(),
                errors,
            })
    }

    /// Registers `schema` as `version` of `subject` after compiling it and checking it against
    /// the earlier versions under the subject's mode. Relative `$ref`s resolve against
    /// `contracts/`, so `ml/ml_schemas.json#/$defs/UID` reaches an embedded definition.
    pub fn register(
        &mut self,
        subject: &str,
        version: Version,
        schema: Value,
    ) -> Result<RegisterOutcome, ContractError> {
        self.insert(subject, version, schema, SchemaSource::Registered)
    }

    fn insert(
        &mut self,
        subject: &str,
        version: Version,
        schema: Value,
        source: SchemaSource,
    ) -> Result<RegisterOutcome, ContractError> {
        check_subject(subject).map_err(|reason| ContractError::BadSchemaRef {
            schema_ref: subject.to_owned(),
            reason,
        })?;
        let mode = self.compatibility(subject);
        let already_registered = self.is_registered(subject, &version, &schema, &source)?;
        let mut outcome = RegisterOutcome {
            subject: subject.to_owned(),
            version: version.clone(),
            mode,
            checked_against: Vec::new(),
            already_registered,
            advisories: Vec::new(),
        };
        if already_registered {
            return Ok(outcome);
        }
        let candidate = self.compile(subject, version, schema, source)?;
        outcome.checked_against = self.check_against_history(&candidate, mode)?;
        outcome.advisories = self.advisories(&candidate, mode);
        let entry = Arc::new(candidate);
        self.subjects
            .entry(subject.to_owned())
            .or_default()
            .insert(entry.version.clone(), entry);
        Ok(outcome)
    }

    /// The version rules: `Ok(true)` when this exact schema is registered at `version` already,
    /// `Ok(false)` when `version` is new and above the latest, an error otherwise.
    fn is_registered(
        &self,
        subject: &str,
        version: &Version,
        schema: &Value,
        source: &SchemaSource,
    ) -> Result<bool, ContractError> {
        let Some(versions) = self.subjects.get(subject) else {
            return Ok(false);
        };
        if let Some(existing) = versions.get(version) {
            if existing.schema == *schema && existing.source == *source {
                return Ok(true);
            }
            let (subject, version) = (subject.to_owned(), version.clone());
            return Err(ContractError::VersionExists { subject, version });
        }
        match versions.keys().next_back() {
            Some(latest) if latest > version => Err(ContractError::VersionNotIncreasing {
                subject: subject.to_owned(),
                version: version.clone(),
                latest: latest.clone(),
            }),
            _ => Ok(false),
        }
    }

    fn compile(
        &self,
        subject: &str,
        version: Version,
        schema: Value,
        source: SchemaSource,
    ) -> Result<RegisteredSchema, ContractError> {
        // The compiled root gets its own URI so it never shadows the document it points into.
        let own_uri = format!("{}{}", documents::BASE, virtual_file(subject, &version));
        let compiled = match &source {
            SchemaSource::File { file, pointer } => {
                let base = documents::base_uri(file, self.docs.get(file).unwrap_or(&Value::Null));
                let reference = serde_json::json!({ "$ref": format!("{base}#{pointer}") });
                validate::compile(&self.resources, &own_uri, &reference)
            }
            SchemaSource::Registered => validate::compile(&self.resources, &own_uri, &schema),
        };
        let validator = compiled.map_err(|reason| ContractError::SchemaDoesNotCompile {
            subject: subject.to_owned(),
            version: version.clone(),
            reason,
        })?;
        Ok(RegisteredSchema {
            subject: subject.to_owned(),
            version,
            schema,
            source,
            validator,
        })
    }

    /// Checks `candidate` against the versions its mode requires; returns those versions.
    fn check_against_history(
        &self,
        candidate: &RegisteredSchema,
        mode: CompatibilityMode,
    ) -> Result<Vec<Version>, ContractError> {
        let (earlier, found) = self.incompatibilities(candidate, mode);
        if !found.is_empty() {
            return Err(ContractError::Incompatible {
                subject: candidate.subject.clone(),
                version: candidate.version.clone(),
                mode,
                incompatibilities: found,
            });
        }
        Ok(earlier)
    }

    /// The versions `mode` compares `candidate` with, and every incompatibility found.
    fn incompatibilities(
        &self,
        candidate: &RegisteredSchema,
        mode: CompatibilityMode,
    ) -> (Vec<Version>, Vec<Incompatibility>) {
        let history = self
            .subjects
            .get(&candidate.subject)
            .into_iter()
            .flat_map(BTreeMap::values);
        let earlier: Vec<&Arc<RegisteredSchema>> = match mode {
            CompatibilityMode::None => Vec::new(),
            m if m.is_transitive() => history.collect(),
            _ => history.last().into_iter().collect(),
        };
        let candidate_file = virtual_file(&candidate.subject, &candidate.version);
        let new = self.located(candidate, &candidate_file);
        let mut found = Vec::new();
        for old in &earlier {
            let old_file = virtual_file(&old.subject, &old.version);
            let old_located = self.located(old, &old_file);
            let incompatibilities = compat::check_located(
                &self.docs,
                old_located,
                new,
                mode.directions(),
                self.options,
            );
            found.extend(incompatibilities.into_iter().map(|i| Incompatibility {
                against: Some(old.version.clone()),
                ..i
            }));
        }
        (earlier.iter().map(|e| e.version.clone()).collect(), found)
    }

    /// Incompatibilities with the latest version in the directions `mode` does not enforce.
    fn advisories(
        &self,
        candidate: &RegisteredSchema,
        mode: CompatibilityMode,
    ) -> Vec<Incompatibility> {
        let (_, found) = self.incompatibilities(candidate, CompatibilityMode::Full);
        found
            .into_iter()
            .filter(|i| !mode.directions().contains(&i.direction))
            .collect()
    }

    /// A dry run of [`Registry::register`]: compiles `schema` and returns every incompatibility
    /// with the earlier versions under the subject's mode, or under `mode` when given (to ask
    /// whether a change would pass, say, `full_transitive`). Registers nothing; an empty list
    /// means the schema would be admitted (version order aside).
    pub fn check_compatibility(
        &self,
        subject: &str,
        version: &Version,
        schema: Value,
        mode: Option<CompatibilityMode>,
    ) -> Result<Vec<Incompatibility>, ContractError> {
        let mode = mode.unwrap_or_else(|| self.compatibility(subject));
        let candidate = self.compile(subject, version.clone(), schema, SchemaSource::Registered)?;
        Ok(self.incompatibilities(&candidate, mode).1)
    }

    /// The schema with the document its `$ref`s resolve in.
    fn located<'a>(&'a self, entry: &'a RegisteredSchema, virtual_file: &'a str) -> Located<'a> {
        match &entry.source {
            SchemaSource::File { file, .. } => {
                let root = self.docs.get(file).unwrap_or(&entry.schema);
                Located {
                    loc: Loc { file, root },
                    schema: &entry.schema,
                }
            }
            SchemaSource::Registered => Located {
                loc: Loc {
                    file: virtual_file,
                    root: &entry.schema,
                },
                schema: &entry.schema,
            },
        }
    }

    fn versions_of(
        &self,
        subject: &str,
    ) -> Result<&BTreeMap<Version, Arc<RegisteredSchema>>, ContractError> {
        self.subjects
            .get(subject)
            .ok_or_else(|| ContractError::UnknownSubject {
                subject: subject.to_owned(),
            })
    }
}

/// Examples are instances, not schemas: they are never referenceable documents (an instance
/// may well carry a `$id` or `$ref` field of its own).
fn is_example(file: &str) -> bool {
    file.starts_with("examples/") || file.contains("/examples/")
}

/// The path a run-time schema is given so its relative `$ref`s resolve against `contracts/`.
fn virtual_file(subject: &str, version: &Version) -> String {
    format!("{subject}@{version}.json")
}

fn manifest_error(file: &str, key: &str, reason: String) -> ContractError {
    ContractError::Manifest {
        file: file.to_owned(),
        key: key.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Guards the checker against false alarms on real schemas: every shipped schema, with its
    /// cross-file `$ref`s, `if`/`then` and `propertyNames`, is fully compatible with itself.
    #[test]
    fn given_every_embedded_schema_when_checked_against_itself_then_it_is_fully_compatible() {
        let registry = Registry::embedded().expect("embedded contracts load");
        let both = CompatibilityMode::Full.directions();
        for subject in registry.subjects() {
            for entry in registry.subjects[subject].values() {
                let file = virtual_file(subject, &entry.version);
                let here = registry.located(entry, &file);
                let found =
                    compat::check_located(&registry.docs, here, here, both, registry.options);
                assert!(found.is_empty(), "{}: {found:#?}", entry.schema_ref());
            }
        }
    }

    #[test]
    fn given_a_registry_when_shared_across_threads_then_it_is_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Registry>();
        shareable::<Arc<RegisteredSchema>>();
    }

    #[test]
    fn given_a_candidate_when_dry_run_then_incompatibilities_are_listed_and_nothing_is_registered()
    {
        let mut registry = Registry::new();
        let v1 = Version::new(1, 0, 0);
        registry
            .register("t.s", v1.clone(), json!({"type": "integer"}))
            .expect("first");
        let v2 = Version::new(2, 0, 0);
        let widened = json!({"type": "number"});
        let backward = registry
            .check_compatibility("t.s", &v2, widened.clone(), None)
            .expect("compiles");
        assert!(backward.is_empty(), "{backward:#?}");
        let full = registry
            .check_compatibility("t.s", &v2, widened, Some(CompatibilityMode::Full))
            .expect("compiles");
        assert_eq!(full.len(), 1);
        assert_eq!(
            (full[0].rule, full[0].against.as_ref()),
            (compat::Rule::TypeNarrowed, Some(&v1))
        );
        assert_eq!(registry.versions("t.s").expect("known"), [v1]);
    }

    #[test]
    fn given_schema_refs_when_parsed_then_subject_and_optional_version_are_split() {
        let pinned: SchemaRef = "mlt.experience@1.2.3".parse().expect("pinned");
        assert_eq!(
            (pinned.subject.as_str(), pinned.version.clone()),
            ("mlt.experience", Some(Version::new(1, 2, 3)))
        );
        assert_eq!(pinned.to_string(), "mlt.experience@1.2.3");
        let latest: SchemaRef = "mlt.experience".parse().expect("latest");
        assert_eq!(latest.version, None);
        for bad in ["", "a..b", "a.*", "a@", "a@1"] {
            assert!(bad.parse::<SchemaRef>().is_err(), "{bad}");
        }
    }
}
