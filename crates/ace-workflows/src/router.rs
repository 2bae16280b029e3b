//! [`Router`]: which workflows an event starts. It asks the registry's snapshot for the
//! candidates of the event's name, then per candidate: enabled, subject pattern, the trigger's
//! filters in order (or its multi-event conditions), then the file's `rate_limiting` bucket.
//! Every event a candidate drops is counted by reason.
//!
//! The decision for an event is recorded in [`State`] before it is returned (`x/{event id}`),
//! so a redelivered trigger (the process died before acknowledging it) gets the same answer
//! instead of being judged again by filters whose state it already changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::StateError;
use crate::event::Event;
use crate::filters::{Stateful, Verdict, compare, due_debounced};
use crate::format::{Conditions, Filter};
use crate::path::{glob_matches, key_of};
use crate::registry::Registry;
use crate::state::State;
use crate::stats::Stats;
use crate::validate::Compiled;

/// A workflow to run for an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fire {
    /// The workflow's name.
    pub workflow: String,
    /// The event that completed the trigger.
    pub event: Event,
    /// For multi-event conditions: the named events seen, by name (`events.<name>` in templates).
    #[serde(default)]
    pub events: Option<Value>,
}

/// How long a routing decision is remembered for redeliveries.
const DECISION_TTL_MS: u64 = 24 * 3_600_000;

#[derive(Debug, Serialize, Deserialize)]
struct Decision {
    at_ms: u64,
    fires: Vec<Fire>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Window {
    seen: BTreeMap<String, (u64, Event)>,
}

/// The router.
#[derive(Debug, Clone)]
pub struct Router {
    registry: Arc<Registry>,
    state: Arc<State>,
    stats: Arc<Stats>,
}

impl Router {
    /// A router over these parts.
    pub fn new(registry: Arc<Registry>, state: Arc<State>, stats: Arc<Stats>) -> Router {
        Router {
            registry,
            state,
            stats,
        }
    }

    /// The registry routed on.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The workflows `event` starts now (`now_ms`), its decision recorded. An event no workflow
    /// names costs one hash lookup and no state access.
    pub fn route(&self, event: &Event, now_ms: u64) -> Result<Vec<Fire>, StateError> {
        let snapshot = self.registry.snapshot();
        let candidates = snapshot.candidates(&event.name);
        if candidates.is_empty() {
            self.stats.received();
            return Ok(Vec::new());
        }
        let key = format!("x/{}", event.id);
        if let Some(decision) = self.state.get::<Decision>(&key)? {
            return Ok(decision.fires);
        }
        self.stats.received();
        let doc = event.doc();
        let mut fires = Vec::new();
        for compiled in candidates {
            if let Some(fire) = self.judge(compiled, event, &doc, now_ms)? {
                fires.push(fire);
            }
        }
        self.state.put(
            &key,
            &Decision {
                at_ms: now_ms,
                fires: fires.clone(),
            },
        )?;
        Ok(fires)
    }

    fn judge(
        &self,
        compiled: &Compiled,
        event: &Event,
        doc: &Value,
        now_ms: u64,
    ) -> Result<Option<Fire>, StateError> {
        let name = &compiled.workflow.name;
        let trigger = &compiled.workflow.trigger;
        if !self.registry.is_enabled(compiled) {
            self.stats.filtered(name, "disabled");
            return Ok(None);
        }
        if let Some(pattern) = &compiled.subject
            && !pattern.matches(&event.subject)
        {
            self.stats.filtered(name, "subject");
            return Ok(None);
        }
        let stateful = Stateful {
            state: &self.state,
            workflow: name,
            now_ms,
        };
        let verdict = match &trigger.conditions {
            Some(conditions) => self.conditions(compiled, conditions, event, doc, now_ms)?,
            None => self.filters(compiled, &stateful, event, doc)?,
        };
        let verdict = match verdict {
            Verdict::Pass => self.file_rate(compiled, &stateful)?,
            other => other,
        };
        Ok(match verdict {
            Verdict::Pass => Some(Fire {
                workflow: name.clone(),
                event: event.clone(),
                events: match &trigger.conditions {
                    Some(_) => self.take_window(compiled, doc)?,
                    None => None,
                },
            }),
            Verdict::Filtered(reason) => {
                self.stats.filtered(name, reason);
                None
            }
            Verdict::RateLimited => {
                self.stats.rate_limited(name);
                None
            }
            Verdict::Debounced => {
                self.stats.debounced();
                None
            }
        })
    }

    fn filters(
        &self,
        compiled: &Compiled,
        stateful: &Stateful<'_>,
        event: &Event,
        doc: &Value,
    ) -> Result<Verdict, StateError> {
        for (i, filter) in compiled.workflow.trigger.filters.iter().enumerate() {
            let verdict = match filter {
                Filter::Compare(c) => {
                    if compare(c, compiled.regexes[i].as_ref(), doc) {
                        continue;
                    }
                    Verdict::Filtered("compare")
                }
                Filter::Delta { delta } => {
                    if stateful.delta(i, delta, doc)? {
                        continue;
                    }
                    Verdict::Filtered("delta")
                }
                Filter::RateLimit { rate_limit } => {
                    if stateful.rate(i, rate_limit, doc)? {
                        continue;
                    }
                    Verdict::RateLimited
                }
                Filter::Dedup { dedup } => {
                    if stateful.dedup(i, dedup, doc)? {
                        continue;
                    }
                    Verdict::Filtered("dedup")
                }
                Filter::Debounce { debounce } => {
                    stateful.debounce(i, debounce, event, doc)?;
                    Verdict::Debounced
                }
            };
            return Ok(verdict);
        }
        Ok(Verdict::Pass)
    }

    fn file_rate(
        &self,
        compiled: &Compiled,
        stateful: &Stateful<'_>,
    ) -> Result<Verdict, StateError> {
        let limiting = &compiled.configuration.rate_limiting;
        if limiting.enabled && !stateful.file_rate(limiting.max_events_per_minute)? {
            return Ok(Verdict::RateLimited);
        }
        Ok(Verdict::Pass)
    }

    fn window_key(compiled: &Compiled, conditions: &Conditions, doc: &Value) -> String {
        format!(
            "c/{}/{}",
            compiled.workflow.name,
            key_of(doc, conditions.key.as_deref())
        )
    }

    /// Records `event` under each name it matches, forgets what left the window, and passes
    /// when the expression holds over what remains.
    fn conditions(
        &self,
        compiled: &Compiled,
        conditions: &Conditions,
        event: &Event,
        doc: &Value,
        now_ms: u64,
    ) -> Result<Verdict, StateError> {
        let key = Self::window_key(compiled, conditions, doc);
        let mut window: Window = self.state.get(&key)?.unwrap_or_default();
        window
            .seen
            .retain(|_, (at, _)| now_ms < at.saturating_add(conditions.window_ms));
        let mut matched = false;
        for (name, named) in &conditions.events {
            if !glob_matches(&named.event, &event.name) {
                continue;
            }
            let regexes = &compiled.condition_regexes[name];
            let passes = named.filters.iter().enumerate().all(|(i, f)| match f {
                Filter::Compare(c) => compare(c, regexes[i].as_ref(), doc),
                _ => true,
            });
            if passes {
                window.seen.insert(name.clone(), (now_ms, event.clone()));
                matched = true;
            }
        }
        self.state.put(&key, &window)?;
        if !matched {
            return Ok(Verdict::Filtered("compare"));
        }
        let holds = compiled
            .expression
            .as_ref()
            .is_some_and(|e| e.eval(&|n| window.seen.contains_key(n)));
        Ok(if holds {
            Verdict::Pass
        } else {
            Verdict::Filtered("condition_pending")
        })
    }

    /// The named events of a satisfied condition, as `{name: {payload, event}}`; the window is
    /// emptied so the next run needs the events again.
    fn take_window(&self, compiled: &Compiled, doc: &Value) -> Result<Option<Value>, StateError> {
        let Some(conditions) = &compiled.workflow.trigger.conditions else {
            return Ok(None);
        };
        let key = Self::window_key(compiled, conditions, doc);
        let window: Window = self.state.get(&key)?.unwrap_or_default();
        self.state.remove(&key)?;
        let named: serde_json::Map<String, Value> = window
            .seen
            .into_iter()
            .map(|(name, (_, e))| (name, e.doc()))
            .collect();
        Ok(Some(json!(named)))
    }

    /// The debounced events whose quiet period ended, as fires with the key of their record
    /// (remove it with [`Router::consumed`] once the run is recorded), and routing decisions
    /// older than a day forgotten.
    pub fn due(&self, now_ms: u64) -> Result<Vec<(String, Fire)>, StateError> {
        for (key, decision) in self.state.scan::<Decision>("x/")? {
            if now_ms.saturating_sub(decision.at_ms) > DECISION_TTL_MS {
                self.state.remove(&key)?;
            }
        }
        Ok(due_debounced(&self.state, now_ms)?
            .into_iter()
            .map(|(key, p)| {
                let fire = Fire {
                    workflow: p.workflow,
                    event: p.event,
                    events: None,
                };
                (key, fire)
            })
            .collect())
    }

    /// Forgets a debounced event whose run is recorded.
    pub fn consumed(&self, key: &str) -> Result<(), StateError> {
        self.state.remove(key)
    }
}
