//! The filters of a trigger, judged in order on the event's document (`{payload, event}`):
//! comparisons are pure ([`compare`]); deltas, token buckets, dedup and debounce windows keep
//! state per workflow, filter and key in [`State`] (so they survive a restart). Time is passed
//! in (`now_ms`), never read, so the windows are tested without sleeping.
//!
//! A filter that stops an event says why ([`Verdict`]), and the router counts it by reason.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::StateError;
use crate::format::{Compare, Debounce, Dedup, Delta, Op, RateLimit};
use crate::path::{key_of, lookup};
use crate::state::State;

/// What the filters say about one event for one workflow.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Run the workflow now.
    Pass,
    /// Dropped; the reason (`compare`, `delta`, `dedup`, `condition_pending`).
    Filtered(&'static str),
    /// Dropped by a token bucket.
    RateLimited,
    /// Held by a debounce window; it runs when the window closes ([`due_debounced`]).
    Debounced,
}

/// Whether `doc` passes `cmp`; `regex` is the compiled pattern of a `regex` comparison.
pub fn compare(cmp: &Compare, regex: Option<&Regex>, doc: &Value) -> bool {
    let field = lookup(doc, &cmp.field);
    let value = cmp.value.as_ref();
    match cmp.op {
        Op::Exists => {
            field.is_some_and(|v| !v.is_null()) == value.and_then(Value::as_bool).unwrap_or(true)
        }
        Op::Eq => field.zip(value).is_some_and(|(a, b)| equal(a, b)),
        Op::Ne => !field.zip(value).is_some_and(|(a, b)| equal(a, b)),
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
            let (Some(a), Some(b)) = (field.and_then(Value::as_f64), value.and_then(Value::as_f64))
            else {
                return false;
            };
            match cmp.op {
                Op::Gt => a > b,
                Op::Gte => a >= b,
                Op::Lt => a < b,
                _ => a <= b,
            }
        }
        Op::In => in_list(field, value),
        Op::NotIn => field.is_some() && !in_list(field, value),
        Op::Regex => match (field, regex) {
            (Some(Value::String(s)), Some(re)) => re.is_match(s),
            _ => false,
        },
        Op::Contains => match (field, value) {
            (Some(Value::String(s)), Some(Value::String(part))) => s.contains(part.as_str()),
            (Some(Value::Array(items)), Some(v)) => items.iter().any(|i| equal(i, v)),
            _ => false,
        },
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

fn in_list(field: Option<&Value>, list: Option<&Value>) -> bool {
    match (field, list) {
        (Some(v), Some(Value::Array(items))) => items.iter().any(|i| equal(i, v)),
        _ => false,
    }
}

/// The stateful filters of one workflow at one instant.
#[derive(Debug)]
pub struct Stateful<'a> {
    /// Where the state lives.
    pub state: &'a State,
    /// The workflow.
    pub workflow: &'a str,
    /// Now, in ms since the epoch.
    pub now_ms: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// A debounced event waiting for its quiet period to end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    /// The workflow.
    pub workflow: String,
    /// When it fires.
    pub due_ms: u64,
    /// The last event seen.
    pub event: crate::event::Event,
}

impl Stateful<'_> {
    fn key(&self, kind: &str, index: usize, key: &str) -> String {
        format!("f/{}/{index}/{kind}/{key}", self.workflow)
    }

    /// A delta against the last value of the key; the value is remembered either way.
    pub fn delta(&self, index: usize, delta: &Delta, doc: &Value) -> Result<bool, StateError> {
        let Some(value) = lookup(doc, &delta.field).and_then(Value::as_f64) else {
            return Ok(false);
        };
        let key = self.key("delta", index, &key_of(doc, delta.key.as_deref()));
        let last: Option<f64> = self.state.get(&key)?;
        self.state.put(&key, &value)?;
        let Some(last) = last else { return Ok(true) };
        let change = (value - last).abs();
        let abs_ok = delta.min_abs.is_some_and(|min| change >= min);
        let pct_ok = delta
            .min_pct
            .is_some_and(|min| last != 0.0 && change / last.abs() * 100.0 >= min);
        Ok(abs_ok || pct_ok)
    }

    /// Takes a token from the bucket; false when it is empty.
    pub fn rate(&self, index: usize, limit: &RateLimit, doc: &Value) -> Result<bool, StateError> {
        let key = self.key("rate", index, &key_of(doc, limit.key.as_deref()));
        self.take_token(
            &key,
            limit.per_minute,
            limit.burst.unwrap_or(limit.per_minute),
        )
    }

    /// The file-wide `rate_limiting` bucket of the workflow.
    pub fn file_rate(&self, per_minute: u32) -> Result<bool, StateError> {
        let key = format!("f/{}/file/rate", self.workflow);
        self.take_token(&key, per_minute, per_minute)
    }

    fn take_token(&self, key: &str, per_minute: u32, burst: u32) -> Result<bool, StateError> {
        let capacity = f64::from(burst.max(1));
        let mut bucket = self.state.get::<Bucket>(key)?.unwrap_or(Bucket {
            tokens: capacity,
            at_ms: self.now_ms,
        });
        let elapsed = self.now_ms.saturating_sub(bucket.at_ms) as f64;
        bucket.tokens = (bucket.tokens + elapsed * f64::from(per_minute) / 60_000.0).min(capacity);
        bucket.at_ms = self.now_ms;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        self.state.put(key, &bucket)?;
        Ok(allowed)
    }

    /// True for the first event of a key in the window (which then starts).
    pub fn dedup(&self, index: usize, dedup: &Dedup, doc: &Value) -> Result<bool, StateError> {
        let key = self.key("dedup", index, &key_of(doc, Some(&dedup.key)));
        if let Some(seen) = self.state.get::<u64>(&key)?
            && self.now_ms < seen.saturating_add(dedup.window_ms)
        {
            return Ok(false);
        }
        self.state.put(&key, &self.now_ms)?;
        Ok(true)
    }

    /// Holds `event` (replacing an earlier one of the key) until `quiet_ms` pass without another.
    pub fn debounce(
        &self,
        index: usize,
        debounce: &Debounce,
        event: &crate::event::Event,
        doc: &Value,
    ) -> Result<(), StateError> {
        let key = format!(
            "d/{}/{index}/{}",
            self.workflow,
            key_of(doc, debounce.key.as_deref())
        );
        let pending = Pending {
            workflow: self.workflow.to_owned(),
            due_ms: self.now_ms.saturating_add(debounce.quiet_ms),
            event: event.clone(),
        };
        self.state.put(&key, &pending)
    }
}

/// The debounced events whose quiet period ended by `now_ms`, with their record keys: the
/// caller removes each record once its run is recorded, so a crash in between fires it again
/// rather than never.
pub fn due_debounced(state: &State, now_ms: u64) -> Result<Vec<(String, Pending)>, StateError> {
    Ok(state
        .scan::<Pending>("d/")?
        .into_iter()
        .filter(|(_, pending)| pending.due_ms <= now_ms)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmp(field: &str, op: Op, value: Option<Value>) -> Compare {
        Compare {
            field: field.to_owned(),
            op,
            value,
        }
    }

    #[test]
    fn given_each_operator_when_compared_then_it_decides_as_named() {
        let doc = json!({"payload": {"s": "CRITICAL", "n": 45.0, "tags": ["a", "b"], "z": null}});
        let yes = |c: Compare| assert!(compare(&c, None, &doc), "{c:?}");
        let no = |c: Compare| assert!(!compare(&c, None, &doc), "{c:?}");
        yes(cmp("payload.s", Op::Eq, Some(json!("CRITICAL"))));
        yes(cmp("payload.n", Op::Eq, Some(json!(45))));
        no(cmp("payload.s", Op::Ne, Some(json!("CRITICAL"))));
        yes(cmp("payload.missing", Op::Ne, Some(json!(1))));
        yes(cmp("payload.n", Op::Gt, Some(json!(40))));
        no(cmp("payload.n", Op::Gt, Some(json!(45))));
        yes(cmp("payload.n", Op::Gte, Some(json!(45))));
        yes(cmp("payload.n", Op::Lt, Some(json!(50))));
        yes(cmp("payload.n", Op::Lte, Some(json!(45))));
        no(cmp("payload.s", Op::Lt, Some(json!(50))));
        yes(cmp(
            "payload.s",
            Op::In,
            Some(json!(["WARNING", "CRITICAL"])),
        ));
        no(cmp(
            "payload.s",
            Op::NotIn,
            Some(json!(["WARNING", "CRITICAL"])),
        ));
        yes(cmp("payload.s", Op::NotIn, Some(json!(["INFO"]))));
        yes(cmp("payload.s", Op::Exists, None));
        no(cmp("payload.z", Op::Exists, None));
        yes(cmp("payload.z", Op::Exists, Some(json!(false))));
        yes(cmp("payload.s", Op::Contains, Some(json!("RIT"))));
        yes(cmp("payload.tags", Op::Contains, Some(json!("b"))));
        no(cmp("payload.tags", Op::Contains, Some(json!("c"))));
        let re = Regex::new("^CRIT").unwrap();
        assert!(compare(
            &cmp("payload.s", Op::Regex, Some(json!("^CRIT"))),
            Some(&re),
            &doc
        ));
        assert!(!compare(
            &cmp("payload.n", Op::Regex, Some(json!("^CRIT"))),
            Some(&re),
            &doc
        ));
    }

    fn at(state: &State, now_ms: u64) -> Stateful<'_> {
        Stateful {
            state,
            workflow: "w",
            now_ms,
        }
    }

    #[test]
    fn given_a_series_when_deltas_are_judged_then_absolute_and_percent_changes_pass_per_key() {
        let state = State::memory();
        let abs = Delta {
            field: "payload.v".into(),
            key: Some("payload.k".into()),
            min_abs: Some(5.0),
            min_pct: None,
        };
        let doc = |k: &str, v: f64| json!({"payload": {"k": k, "v": v}});
        assert!(
            at(&state, 0).delta(0, &abs, &doc("a", 10.0)).unwrap(),
            "first value passes"
        );
        assert!(!at(&state, 0).delta(0, &abs, &doc("a", 12.0)).unwrap());
        assert!(at(&state, 0).delta(0, &abs, &doc("a", 17.0)).unwrap());
        assert!(
            at(&state, 0).delta(0, &abs, &doc("b", 17.0)).unwrap(),
            "own series"
        );
        let pct = Delta {
            field: "payload.v".into(),
            key: None,
            min_abs: None,
            min_pct: Some(10.0),
        };
        assert!(at(&state, 0).delta(1, &pct, &doc("a", 100.0)).unwrap());
        assert!(!at(&state, 0).delta(1, &pct, &doc("a", 105.0)).unwrap());
        assert!(
            at(&state, 0).delta(1, &pct, &doc("a", 94.0)).unwrap(),
            "105 → 94 is 10.5%"
        );
    }

    #[test]
    fn given_a_bucket_when_drained_then_it_refuses_until_refilled() {
        let state = State::memory();
        let limit = RateLimit {
            per_minute: 2,
            burst: None,
            key: Some("payload.k".into()),
        };
        let doc = json!({"payload": {"k": "a"}});
        assert!(at(&state, 0).rate(0, &limit, &doc).unwrap());
        assert!(at(&state, 1).rate(0, &limit, &doc).unwrap());
        assert!(!at(&state, 2).rate(0, &limit, &doc).unwrap());
        assert!(
            at(&state, 2)
                .rate(0, &limit, &json!({"payload": {"k": "b"}}))
                .unwrap()
        );
        assert!(
            at(&state, 30_002).rate(0, &limit, &doc).unwrap(),
            "one token in 30 s"
        );
        assert!(!at(&state, 30_003).rate(0, &limit, &doc).unwrap());
    }

    #[test]
    fn given_a_dedup_window_when_a_key_repeats_then_only_the_first_passes_until_it_ends() {
        let state = State::memory();
        let dedup = Dedup {
            key: "payload.k".into(),
            window_ms: 1_000,
        };
        let doc = json!({"payload": {"k": "a"}});
        assert!(at(&state, 0).dedup(0, &dedup, &doc).unwrap());
        assert!(!at(&state, 999).dedup(0, &dedup, &doc).unwrap());
        assert!(at(&state, 1_000).dedup(0, &dedup, &doc).unwrap());
    }

    #[test]
    fn given_a_burst_when_debounced_then_only_the_last_fires_after_the_quiet_period() {
        let state = State::memory();
        let debounce = Debounce {
            quiet_ms: 100,
            key: None,
        };
        let event = |id: &str| crate::event::Event {
            id: id.into(),
            name: "n".into(),
            subject: "s".into(),
            domain: None,
            source: None,
            hops: 0,
            correlation_id: None,
            payload: Value::Null,
        };
        at(&state, 0)
            .debounce(0, &debounce, &event("1"), &Value::Null)
            .unwrap();
        at(&state, 50)
            .debounce(0, &debounce, &event("2"), &Value::Null)
            .unwrap();
        assert!(due_debounced(&state, 149).unwrap().is_empty());
        let due = due_debounced(&state, 150).unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.event.id, "2");
        state.remove(&due[0].0).unwrap();
        assert!(
            due_debounced(&state, 1_000).unwrap().is_empty(),
            "fired once"
        );
    }
}
