//! [`Registry`]: every `*.yaml`/`*.yml` file of the workflows directory, loaded and checked
//! (`validate`), indexed by trigger for routing, reloaded on demand with the last good version
//! of a broken file kept running, and the run-time enable/disable switches (kept in [`State`],
//! so they survive a restart and win over the file's `enabled`).
//!
//! Routing reads an immutable [`Snapshot`] behind an `Arc` swapped as a whole by a reload, so a
//! router never sees half a reload and never waits for one. The index: exact event names in a
//! hash map (one lookup, whatever the number of workflows), globs by the first dotted token of
//! their literal prefix (a second lookup, then only the globs that can match; globs starting
//! with `*` are tried for every name); a workflow with multi-event conditions is indexed under
//! each of its events' globs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use crate::error::{LoadError, Problem, StateError};
use crate::path::{glob_matches, is_glob};
use crate::state::State;
use crate::validate::{Compiled, load};

/// The loaded workflows at one time, indexed for routing.
#[derive(Debug, Default)]
pub struct Snapshot {
    workflows: Vec<Arc<Compiled>>,
    exact: HashMap<String, Vec<usize>>,
    /// Globs by the first dotted token of their literal prefix (`kpi` for `kpi.*`); globs whose
    /// first token holds a `*` are under the empty key and tried for every name.
    globs: HashMap<String, Vec<(String, usize)>>,
    by_name: HashMap<String, usize>,
}

impl Snapshot {
    fn build(workflows: Vec<Arc<Compiled>>) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (i, compiled) in workflows.iter().enumerate() {
            snapshot.by_name.insert(compiled.workflow.name.clone(), i);
            let trigger = &compiled.workflow.trigger;
            let globs: Vec<&String> = match &trigger.conditions {
                Some(c) => c.events.values().map(|e| &e.event).collect(),
                None => trigger.event.iter().collect(),
            };
            for glob in globs {
                if is_glob(glob) {
                    let first = glob.split('.').next().unwrap_or_default();
                    let key = if first.contains('*') { "" } else { first };
                    let bucket = snapshot.globs.entry(key.to_owned()).or_default();
                    bucket.push((glob.clone(), i));
                } else {
                    let list = snapshot.exact.entry(glob.clone()).or_default();
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
        }
        snapshot.workflows = workflows;
        snapshot
    }

    /// The workflows whose trigger may match an event named `name`, each once, in load order.
    pub fn candidates(&self, name: &str) -> Vec<&Arc<Compiled>> {
        let mut hits: Vec<usize> = match self.exact.get(name) {
            Some(exact) => exact.clone(),
            None => Vec::new(),
        };
        let first = name.split('.').next().unwrap_or_default();
        let buckets = [self.globs.get(first), self.globs.get("")];
        for (glob, i) in buckets.into_iter().flatten().flatten() {
            if glob_matches(glob, name) && !hits.contains(i) {
                hits.push(*i);
            }
        }
        hits.sort_unstable();
        hits.iter().map(|&i| &self.workflows[i]).collect()
    }

    /// Every workflow, in load order.
    pub fn all(&self) -> &[Arc<Compiled>] {
        &self.workflows
    }

    /// The workflow called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Compiled>> {
        self.by_name.get(name).map(|&i| &self.workflows[i])
    }
}

/// One file as last read.
#[derive(Debug, Clone, Default)]
struct FileEntry {
    loaded: bool,
    text: String,
    good: Vec<Arc<Compiled>>,
    error: Option<LoadError>,
}

/// What a reload did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ReloadReport {
    /// Files read again because they changed, appeared or went away.
    pub changed: Vec<String>,
    /// Workflows loaded now.
    pub workflows: usize,
    /// Problems of files that did not load (their last good version keeps running).
    pub problems: Vec<Problem>,
}

/// The workflow registry.
#[derive(Debug)]
pub struct Registry {
    dir: Option<PathBuf>,
    state: Arc<State>,
    files: Mutex<BTreeMap<String, FileEntry>>,
    current: RwLock<Arc<Snapshot>>,
    toggles: RwLock<HashMap<String, bool>>,
}

const TOGGLE_PREFIX: &str = "t/";

impl Registry {
    /// A registry over `dir`, loaded once; the switches come from `state`. A missing directory
    /// is an empty registry (and an error of the reload report), never a refusal to start.
    pub fn open(dir: &Path, state: Arc<State>) -> Result<(Registry, ReloadReport), StateError> {
        let registry = Registry::empty(Some(dir.to_owned()), state)?;
        let report = registry.reload();
        Ok((registry, report))
    }

    /// A registry of the given `(file name, text)` pairs, not backed by a directory.
    pub fn from_texts(
        texts: &[(&str, &str)],
        state: Arc<State>,
    ) -> Result<(Registry, ReloadReport), StateError> {
        let registry = Registry::empty(None, state)?;
        let report = registry.apply(
            texts
                .iter()
                .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
                .collect(),
        );
        Ok((registry, report))
    }

    fn empty(dir: Option<PathBuf>, state: Arc<State>) -> Result<Registry, StateError> {
        let toggles = state
            .scan::<bool>(TOGGLE_PREFIX)?
            .into_iter()
            .map(|(k, v)| (k[TOGGLE_PREFIX.len()..].to_owned(), v))
            .collect();
        Ok(Registry {
            dir,
            state,
            files: Mutex::default(),
            current: RwLock::default(),
            toggles: RwLock::new(toggles),
        })
    }

    /// The directory it reads, if any.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    /// Reads the directory again; files whose text did not change are not parsed again.
    pub fn reload(&self) -> ReloadReport {
        let Some(dir) = &self.dir else {
            return self.report(Vec::new());
        };
        match read_dir(dir) {
            Ok(texts) => self.apply(texts),
            Err(message) => {
                let mut report = self.report(Vec::new());
                report.problems.push(Problem {
                    file: dir.display().to_string(),
                    workflow: None,
                    path: String::new(),
                    message,
                });
                report
            }
        }
    }

    fn apply(&self, texts: BTreeMap<String, String>) -> ReloadReport {
        let mut files = self.files.lock();
        let mut changed: Vec<String> = files
            .keys()
            .filter(|name| !texts.contains_key(*name))
            .cloned()
            .collect();
        files.retain(|name, _| texts.contains_key(name));
        for (name, text) in texts {
            let entry = files.entry(name.clone()).or_default();
            if entry.loaded && entry.text == text {
                continue;
            }
            changed.push(name.clone());
            entry.loaded = true;
            entry.text = text;
            match load(&name, &entry.text) {
                Ok(compiled) => {
                    entry.good = compiled.into_iter().map(Arc::new).collect();
                    entry.error = None;
                }
                Err(err) => entry.error = Some(err),
            }
        }
        let mut seen: HashMap<String, String> = HashMap::new();
        let mut workflows = Vec::new();
        let mut duplicates = Vec::new();
        for (file, entry) in files.iter() {
            for compiled in &entry.good {
                let name = &compiled.workflow.name;
                match seen.get(name) {
                    Some(first) => duplicates.push(Problem {
                        file: file.clone(),
                        workflow: Some(name.clone()),
                        path: "/workflows".to_owned(),
                        message: format!(
                            "workflow `{name}` is already defined in {first}; this one is ignored"
                        ),
                    }),
                    None => {
                        seen.insert(name.clone(), file.clone());
                        workflows.push(Arc::clone(compiled));
                    }
                }
            }
        }
        *self.current.write() = Arc::new(Snapshot::build(workflows));
        let problems = files
            .values()
            .filter_map(|e| e.error.as_ref())
            .flat_map(|e| e.problems.iter().cloned())
            .chain(duplicates)
            .collect();
        drop(files);
        for problem in &problems {
            tracing::warn!(%problem, "workflow file refused; its last good version keeps running");
        }
        ReloadReport {
            changed,
            workflows: self.snapshot().all().len(),
            problems,
        }
    }

    fn report(&self, changed: Vec<String>) -> ReloadReport {
        ReloadReport {
            changed,
            workflows: self.snapshot().all().len(),
            problems: self.problems(),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.current.read())
    }

    /// The problems of the files that did not load at the last reload.
    pub fn problems(&self) -> Vec<Problem> {
        self.files
            .lock()
            .values()
            .filter_map(|e| e.error.as_ref())
            .flat_map(|e| e.problems.iter().cloned())
            .collect()
    }

    /// Whether `name` runs: the run-time switch if one was set, else the file's `enabled`.
    pub fn is_enabled(&self, compiled: &Compiled) -> bool {
        self.toggles
            .read()
            .get(&compiled.workflow.name)
            .copied()
            .unwrap_or(compiled.workflow.enabled)
    }

    /// Sets the run-time switch of `name`, durably; `Ok(false)` when no such workflow is loaded.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<bool, StateError> {
        if self.snapshot().get(name).is_none() {
            return Ok(false);
        }
        self.state
            .put(&format!("{TOGGLE_PREFIX}{name}"), &enabled)?;
        self.toggles.write().insert(name.to_owned(), enabled);
        Ok(true)
    }
}

/// The workflow files of `dir` (`*.yaml`, `*.yml`), by file name.
fn read_dir(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot read the directory: {e}"))?;
    let mut texts = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let is_yaml = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e == "yaml" || e == "yml");
        if !is_yaml || !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
        texts.insert(name, text);
    }
    Ok(texts)
}

/// Loads every file of `dir` without a registry: the offline check of `ace-comms workflows
/// validate`. The number of workflows, or every problem.
pub fn validate_dir(dir: &Path) -> Result<usize, Vec<Problem>> {
    let (registry, report) = Registry::open(dir, Arc::new(State::memory())).map_err(|e| {
        vec![Problem {
            file: dir.display().to_string(),
            workflow: None,
            path: String::new(),
            message: e.to_string(),
        }]
    })?;
    if report.problems.is_empty() {
        Ok(registry.snapshot().all().len())
    } else {
        Err(report.problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, event: &str) -> String {
        format!(
            "workflows:\n  - name: {name}\n    trigger: {{ event: \"{event}\" }}\n    actions: [ {{ name: a, kernel: k.h }} ]\n"
        )
    }

    #[test]
    fn given_exact_and_glob_triggers_when_routed_then_candidates_are_found_once_in_order() {
        let a = file("a", "kpi.threshold_breach");
        let b = file("b", "kpi.*");
        let c = file("c", "trust.score_updated");
        let (reg, report) = Registry::from_texts(
            &[("a.yaml", &a), ("b.yaml", &b), ("c.yaml", &c)],
            Arc::new(State::memory()),
        )
        .unwrap();
        assert!(report.problems.is_empty());
        let snap = reg.snapshot();
        let names = |n: &str| -> Vec<String> {
            snap.candidates(n)
                .iter()
                .map(|c| c.workflow.name.clone())
                .collect()
        };
        assert_eq!(names("kpi.threshold_breach"), ["a", "b"]);
        assert_eq!(names("kpi.metric_updated"), ["b"]);
        assert!(names("db.table_updated").is_empty());
    }

    #[test]
    fn given_a_broken_edit_when_reloaded_then_the_last_good_version_keeps_running() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.yaml"), file("w", "a.b")).unwrap();
        let (reg, report) = Registry::open(dir.path(), Arc::new(State::memory())).unwrap();
        assert_eq!(report.workflows, 1);
        std::fs::write(dir.path().join("w.yaml"), "workflows: [ { name: w } ]").unwrap();
        let report = reg.reload();
        assert_eq!(report.changed, ["w.yaml"]);
        assert!(!report.problems.is_empty());
        assert_eq!(report.problems[0].file, "w.yaml");
        assert_eq!(
            reg.snapshot().candidates("a.b").len(),
            1,
            "last good version routes"
        );
        std::fs::write(dir.path().join("w.yaml"), file("w", "c.d")).unwrap();
        let report = reg.reload();
        assert!(report.problems.is_empty());
        assert!(reg.snapshot().candidates("a.b").is_empty());
        assert_eq!(reg.snapshot().candidates("c.d").len(), 1);
        std::fs::remove_file(dir.path().join("w.yaml")).unwrap();
        assert_eq!(reg.reload().workflows, 0);
    }

    #[test]
    fn given_a_switch_when_set_then_it_wins_over_the_file_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.redb");
        let text = file("w", "a.b");
        {
            let (reg, _) =
                Registry::from_texts(&[("w.yaml", &text)], Arc::new(State::open(&db).unwrap()))
                    .unwrap();
            assert!(reg.is_enabled(reg.snapshot().get("w").unwrap()));
            assert!(reg.set_enabled("w", false).unwrap());
            assert!(!reg.set_enabled("nope", false).unwrap());
        }
        let (reg, _) =
            Registry::from_texts(&[("w.yaml", &text)], Arc::new(State::open(&db).unwrap()))
                .unwrap();
        assert!(!reg.is_enabled(reg.snapshot().get("w").unwrap()));
    }

    #[test]
    fn given_the_same_name_in_two_files_when_loaded_then_the_second_is_reported_and_ignored() {
        let a = file("w", "a.b");
        let b = file("w", "c.d");
        let (reg, report) =
            Registry::from_texts(&[("1.yaml", &a), ("2.yaml", &b)], Arc::new(State::memory()))
                .unwrap();
        assert_eq!(report.workflows, 1);
        assert_eq!(report.problems[0].file, "2.yaml");
        assert_eq!(reg.snapshot().candidates("a.b").len(), 1);
    }
}
