//! Rego policies evaluated in-process with `regorus`: [`RegoPolicy`] loads `policies/*.rego`,
//! evaluates the package (default `ace.comms`) against the [`crate::policy_input`] document,
//! and turns its rules into a [`Decision`]:
//!
//! - `deny`: a set of reason strings (or a boolean, seed style) — any reason denies;
//! - `require_approval`: a set of reason strings (or a boolean) — any reason holds the message.
//!
//! RBAC grants and Rego restricts: a policy that wants an allow-list writes it as
//! `deny contains "…" if not …`. An undefined rule counts as empty.
//!
//! Decisions are cached by the SHA-256 of the input document's JSON text in a bounded FIFO map
//! (no policy can read the clock: the `time` builtins are not compiled in, so equal inputs
//! always get equal answers). The text is streamed into the hash as it is serialized, so a hit
//! costs a hash, one lock and one lookup; only a miss builds the document the engine reads,
//! from the same value, so the document hashed is the document evaluated.
//!
//! If evaluation fails or the result has the wrong shape, the answer is `Deny` with reason
//! [`POLICY_ENGINE_FAILURE`], logged at `error` and counted — the "failover to
//! default-deny" procedure — and never cached, so a recovered engine answers anew.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use regorus::Engine;
use regorus::utils::limits::ExecutionTimerConfig;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::decision::Decision;
use crate::error::PolicyError;
use crate::files::read_text;

/// The reason of a denial caused by a failing policy engine.
pub const POLICY_ENGINE_FAILURE: &str = "policy_engine_failure";

/// The default package evaluated.
pub const DEFAULT_PACKAGE: &str = "ace.comms";

/// The default number of cached decisions.
pub const DEFAULT_CACHE_CAPACITY: usize = 10_000;

/// The wall-clock budget of one evaluation: a runaway policy fails (and so denies).
const EVALUATION_LIMIT: Duration = Duration::from_millis(250);

/// Counters of one policy, readable at any time.
#[derive(Debug, Default)]
pub struct RegoStats {
    /// Decisions answered from the cache.
    pub cache_hits: AtomicU64,
    /// Decisions that needed an evaluation.
    pub cache_misses: AtomicU64,
    /// Evaluations that failed (each answered `Deny`).
    pub failures: AtomicU64,
}

/// Loaded Rego policies with their decision cache.
#[derive(Debug)]
pub struct RegoPolicy {
    engine: Mutex<Engine>,
    query: String,
    cache: Mutex<DecisionCache>,
    stats: RegoStats,
}

impl RegoPolicy {
    /// Loads every `*.rego` file of `dir` (in name order); `data` is the policies' `data`
    /// document (e.g. `{"ehi_threshold": 0.7}`). A directory without one is an error.
    pub fn load_dir(dir: &Path, data: Value) -> Result<Self, PolicyError> {
        let mut sources = Vec::new();
        for path in rego_files(dir)? {
            let text = read_text(&path)?;
            sources.push((path.display().to_string(), text));
        }
        Self::from_sources(sources, data)
    }

    /// Loads policies given as `(name, text)` pairs.
    pub fn from_sources(sources: Vec<(String, String)>, data: Value) -> Result<Self, PolicyError> {
        if sources.is_empty() {
            return Err(PolicyError::Invalid {
                key: "policies".into(),
                reason: "no .rego file to load".into(),
            });
        }
        let mut engine = Engine::new();
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: EVALUATION_LIMIT,
            check_interval: NonZeroU32::MIN,
        });
        for (name, text) in sources {
            engine
                .add_policy(name.clone(), text)
                .map_err(|e| PolicyError::Rego {
                    path: name,
                    reason: e.to_string(),
                })?;
        }
        engine
            .add_data(regorus::Value::from(data))
            .map_err(|e| PolicyError::Rego {
                path: "data".into(),
                reason: e.to_string(),
            })?;
        Ok(RegoPolicy {
            engine: Mutex::new(engine),
            query: format!("data.{DEFAULT_PACKAGE}"),
            cache: Mutex::new(DecisionCache::new(DEFAULT_CACHE_CAPACITY)),
            stats: RegoStats::default(),
        })
    }

    /// Evaluates package `package` instead of [`DEFAULT_PACKAGE`].
    pub fn with_package(mut self, package: &str) -> Self {
        self.query = format!("data.{package}");
        self
    }

    /// Keeps at most `capacity` decisions (0 disables the cache).
    pub fn with_cache_capacity(self, capacity: usize) -> Self {
        *self.cache.lock() = DecisionCache::new(capacity);
        self
    }

    /// The counters.
    pub fn stats(&self) -> &RegoStats {
        &self.stats
    }

    /// The decision for `input` (any document that serializes to a JSON object: the engine's
    /// [`crate::policy_input`] or a `serde_json::Value`), from the cache when its JSON text was
    /// seen before. Equal inputs must serialize to equal text (no `HashMap` inside) to hit.
    pub fn evaluate<I: Serialize + ?Sized>(&self, input: &I) -> Decision {
        match self.evaluate_cached(input) {
            Ok(decision) => decision,
            Err(reason) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::error!(
                    query = %self.query,
                    error = %reason,
                    "policy engine failure: denying by default until it evaluates again"
                );
                Decision::deny(POLICY_ENGINE_FAILURE)
            }
        }
    }

    fn evaluate_cached<I: Serialize + ?Sized>(&self, input: &I) -> Result<Decision, String> {
        let key = cache_key(input)?;
        if let Some(decision) = self.cache.lock().get(&key) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(decision);
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        let decision = self.evaluate_uncached(input)?;
        self.cache.lock().insert(key, decision.clone());
        Ok(decision)
    }

    /// One evaluation, bypassing the cache (a failure is an `Err` with the engine's message).
    pub fn evaluate_uncached<I: Serialize + ?Sized>(&self, input: &I) -> Result<Decision, String> {
        let input = serde_json::to_value(input).map_err(|e| e.to_string())?;
        let result = {
            let mut engine = self.engine.lock();
            engine.set_input(regorus::Value::from(input));
            engine
                .eval_query(self.query.clone(), false)
                .map_err(|e| e.to_string())?
        };
        let package = result
            .result
            .into_iter()
            .next()
            .and_then(|r| r.expressions.into_iter().next())
            .map(|e| e.value);
        let package = match package {
            Some(value) => serde_json::to_value(&value).map_err(|e| e.to_string())?,
            None => Value::Null,
        };
        let deny = reasons(&package, "deny")?;
        if !deny.is_empty() {
            return Ok(Decision::Deny { reasons: deny });
        }
        let hold = reasons(&package, "require_approval")?;
        if !hold.is_empty() {
            return Ok(Decision::RequireApproval { reasons: hold });
        }
        Ok(Decision::Allow)
    }
}

/// The `*.rego` files of `dir`, in name order.
pub fn rego_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let read_error = |source| PolicyError::Read {
        path: dir.to_owned(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.extension().is_some_and(|e| e == "rego") {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// The reasons of rule `rule` in the evaluated package: a set/array of strings, or a boolean.
fn reasons(package: &Value, rule: &str) -> Result<Vec<String>, String> {
    let wrong = || format!("rule `{rule}` is neither a boolean nor a set of strings");
    match package.get(rule) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(Vec::new()),
        Some(Value::Bool(true)) => Ok(vec![format!("rego: {rule}")]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned).ok_or_else(wrong))
            .collect(),
        Some(_) => Err(wrong()),
    }
}

/// The cache key of `input`: the SHA-256 of its compact JSON text, written straight into the
/// hash (no `String`, no `Value`).
fn cache_key<I: Serialize + ?Sized>(input: &I) -> Result<[u8; 32], String> {
    let mut hasher = HashWriter(Sha256::new());
    serde_json::to_writer(&mut hasher, input).map_err(|e| e.to_string())?;
    Ok(hasher.0.finalize().into())
}

/// An `io::Write` that feeds SHA-256 (`sha2` 0.11 has no `io` adapter of its own).
struct HashWriter(Sha256);

impl io::Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decisions by input hash, evicting the oldest entry when full.
#[derive(Debug)]
struct DecisionCache {
    capacity: usize,
    entries: HashMap<[u8; 32], Decision>,
    order: VecDeque<[u8; 32]>,
}

impl DecisionCache {
    fn new(capacity: usize) -> Self {
        DecisionCache {
            capacity,
            entries: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    fn get(&self, key: &[u8; 32]) -> Option<Decision> {
        self.entries.get(key).cloned()
    }

    fn insert(&mut self, key: [u8; 32], decision: Decision) {
        if self.capacity == 0 || self.entries.contains_key(&key) {
            return;
        }
        if self.entries.len() == self.capacity
            && let Some(oldest) = self.order.pop_front()
        {
            self.entries.remove(&oldest);
        }
        self.entries.insert(key, decision);
        self.order.push_back(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::Action;
    use crate::environments::Environments;
    use crate::input::{ENVIRONMENT_HEADER, PolicyInput, policy_input};
    use crate::principal::Principal;
    use ace_envelope::{Envelope, Kind, Source, SourceType};
    use serde_json::json;

    fn policy(rego: &str) -> RegoPolicy {
        RegoPolicy::from_sources(vec![("t.rego".into(), rego.into())], json!({})).unwrap()
    }

    #[test]
    fn given_a_full_cache_when_inserting_then_the_oldest_entry_is_evicted() {
        let mut cache = DecisionCache::new(2);
        cache.insert([1; 32], Decision::Allow);
        cache.insert([2; 32], Decision::Allow);
        cache.insert([3; 32], Decision::deny("x"));
        assert!(cache.get(&[1; 32]).is_none());
        assert_eq!(cache.get(&[3; 32]), Some(Decision::deny("x")));
        assert_eq!(cache.entries.len(), 2);
    }

    #[test]
    fn given_the_same_input_twice_when_evaluated_then_the_second_is_a_cache_hit() {
        let p = policy("package ace.comms\ndeny contains \"no\" if input.x == 1\n");
        assert_eq!(p.evaluate(&json!({"x": 1})), Decision::deny("no"));
        assert_eq!(p.evaluate(&json!({"x": 1})), Decision::deny("no"));
        assert!(p.evaluate(&json!({"x": 2})).is_allow());
        assert_eq!(p.stats().cache_hits.load(Ordering::Relaxed), 1);
        assert_eq!(p.stats().cache_misses.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn given_a_rule_that_errors_when_evaluated_then_deny_policy_engine_failure_uncached() {
        // Two values for one complete rule is a conflict error at evaluation time.
        let p = policy("package ace.comms\ndeny := true if input.x\ndeny := false if input.x\n");
        for _ in 0..2 {
            assert_eq!(
                p.evaluate(&json!({"x": true})),
                Decision::deny(POLICY_ENGINE_FAILURE)
            );
        }
        assert_eq!(p.stats().failures.load(Ordering::Relaxed), 2);
        assert_eq!(p.stats().cache_hits.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn given_a_wrongly_shaped_rule_when_evaluated_then_the_engine_fails_closed() {
        let p = policy("package ace.comms\ndeny := 42\n");
        assert_eq!(
            p.evaluate(&json!({})),
            Decision::deny(POLICY_ENGINE_FAILURE)
        );
    }

    fn agent(id: &str) -> Principal {
        Principal::new(id, SourceType::Agent, vec!["agent".into()], 1).unwrap()
    }

    fn envelope(subject: &str, ehi: f64) -> Envelope {
        let mut env = Envelope::builder(Kind::Command, subject)
            .header(ENVIRONMENT_HEADER, "production")
            .header("ace-action", "deploy")
            .ehi_score(ehi)
            .build_unchecked();
        env.source = Some(Source::new(SourceType::Agent, "a1"));
        env.governance.pii = vec!["email".into()];
        env
    }

    #[test]
    fn given_policy_inputs_when_keyed_then_the_key_is_the_sha256_of_the_policy_input_text() {
        let (a1, dev) = (agent("a1"), Principal::development());
        let cmd = "ace.comms.a2a.agent.b7.cmd.v1";
        let named = "ace.comms.mcp.service.s1.qry.tool_call.v2";
        let (env, bare) = (
            envelope(cmd, 0.4),
            Envelope::builder(Kind::Query, named).build_unchecked(),
        );
        let cases = [
            (&a1, Action::Publish, cmd, Some(&env)),
            (&a1, Action::Publish, named, Some(&bare)),
            (&a1, Action::Subscribe, "ace.comms.a2a.>", None),
            (&dev, Action::Subscribe, named, None),
            (&dev, Action::Publish, "not.ace", Some(&env)),
        ];
        for (principal, action, subject, envelope) in cases {
            let none = Environments::default();
            let streamed = cache_key(&PolicyInput::new(
                principal, action, subject, envelope, &none,
            ));
            let text = policy_input(principal, action, subject, envelope).to_string();
            let expected: [u8; 32] = Sha256::digest(text.as_bytes()).into();
            assert_eq!(streamed, Ok(expected), "{text}");
        }
    }

    #[test]
    fn given_equal_and_different_inputs_when_keyed_then_only_equal_ones_share_a_key() {
        let (a1, a2) = (agent("a1"), agent("a2"));
        let subject = "ace.comms.a2a.agent.b7.cmd.v1";
        let (low, high) = (envelope(subject, 0.3), envelope(subject, 0.9));
        let none = Environments::default();
        let key = |p, e| {
            cache_key(&PolicyInput::new(
                p,
                Action::Publish,
                subject,
                Some(e),
                &none,
            ))
        };
        let same = low.clone();
        assert_eq!(key(&a1, &low), key(&a1, &same));
        assert_ne!(key(&a1, &low), key(&a2, &low));
        assert_ne!(key(&a1, &low), key(&a1, &high));
        let subscribe = cache_key(&PolicyInput::new(
            &a1,
            Action::Subscribe,
            subject,
            None,
            &none,
        ));
        assert_ne!(key(&a1, &low), subscribe);
    }

    #[test]
    fn given_a_borrowed_input_then_its_value_when_evaluated_then_both_share_one_cache_entry() {
        let p = policy(
            "package ace.comms\nrequire_approval contains \"ehi\" if input.ehi_score > 0.5\n",
        );
        let a1 = agent("a1");
        let subject = "ace.comms.a2a.agent.b7.cmd.v1";
        let env = envelope(subject, 0.9);
        let none = Environments::default();
        let borrowed = PolicyInput::new(&a1, Action::Publish, subject, Some(&env), &none);
        let held = Decision::RequireApproval {
            reasons: vec!["ehi".into()],
        };
        assert_eq!(p.evaluate(&borrowed), held);
        assert_eq!(
            p.evaluate(&policy_input(&a1, Action::Publish, subject, Some(&env))),
            held
        );
        assert_eq!(p.stats().cache_misses.load(Ordering::Relaxed), 1);
        assert_eq!(p.stats().cache_hits.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn given_an_input_that_is_not_json_when_evaluated_then_the_engine_fails_closed_uncached() {
        let p = policy("package ace.comms\n");
        // A map keyed by byte strings has no JSON form.
        let input = std::collections::BTreeMap::from([(vec![1u8], 1)]);
        for _ in 0..2 {
            assert_eq!(p.evaluate(&input), Decision::deny(POLICY_ENGINE_FAILURE));
        }
        assert!(p.evaluate_uncached(&input).is_err());
        assert_eq!(p.stats().failures.load(Ordering::Relaxed), 2);
        assert_eq!(p.stats().cache_misses.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn given_a_syntax_error_when_loaded_then_the_file_is_named() {
        let err = RegoPolicy::from_sources(vec![("bad.rego".into(), "package".into())], json!({}))
            .unwrap_err();
        assert!(err.to_string().contains("bad.rego"), "{err}");
    }
}
