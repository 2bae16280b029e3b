//! The workflow file format: serde types of one YAML file (`configuration` and `workflows[]`).
//! `contracts/orchestration/workflow.schema.json` describes the same shape and is checked first
//! (see `validate`), so these types only ever see documents the schema accepts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One workflow file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowFile {
    /// Settings shared by the file's workflows.
    #[serde(default)]
    pub configuration: Configuration,
    /// The workflows, each with a unique name.
    #[serde(default)]
    pub workflows: Vec<Workflow>,
}

/// Settings of a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Configuration {
    /// Most runs of this file's workflows in flight at once.
    pub max_parallel_workflows: usize,
    /// Timeout of an action that names none.
    pub default_timeout_ms: u64,
    /// Retries of an action that names no policy of its own.
    pub retry_policy: RetryPolicy,
    /// A token bucket per workflow, on top of its own `rate_limit` filters.
    pub rate_limiting: RateLimiting,
}

impl Default for Configuration {
    fn default() -> Self {
        Configuration {
            max_parallel_workflows: 10,
            default_timeout_ms: 10_000,
            retry_policy: RetryPolicy::default(),
            rate_limiting: RateLimiting::default(),
        }
    }
}

/// How often and after how long a failed or timed-out action is tried again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub max_retries: u32,
    /// Wait before retry `n` is `backoff_ms[n-1]`, the last entry repeating; empty: no wait.
    pub backoff_ms: Vec<u64>,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> u64 {
        let index = (retry as usize).saturating_sub(1);
        self.backoff_ms
            .get(index)
            .or(self.backoff_ms.last())
            .copied()
            .unwrap_or(0)
    }
}

/// The file-wide rate limit of each workflow.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimiting {
    /// Off by default.
    pub enabled: bool,
    /// Runs per minute of each workflow.
    pub max_events_per_minute: u32,
}

/// One workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// Unique name (`^[a-z][a-z0-9_]{0,63}$`); the principal is `workflow:<name>`.
    pub name: String,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Disabled workflows are loaded and listed but never run.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// What starts it.
    pub trigger: Trigger,
    /// One group of actions run in parallel (or use `steps`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<Action>,
    /// Sequential steps, each a group of actions run in parallel.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Events emitted when every action succeeded (or failed with `continue_on_error`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<Emit>,
    /// Events emitted when the run failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<Emit>,
}

fn yes() -> bool {
    true
}

impl Workflow {
    /// The groups to run in order: `steps`, or `actions` as one step.
    pub fn groups(&self) -> Vec<Step> {
        if self.steps.is_empty() {
            vec![Step {
                name: None,
                actions: self.actions.clone(),
            }]
        } else {
            self.steps.clone()
        }
    }

    /// The principal id the workflow acts as.
    pub fn principal(&self) -> String {
        principal_of(&self.name)
    }
}

/// The principal id of workflow `name`.
pub fn principal_of(name: &str) -> String {
    format!("workflow:{name}")
}

/// One step: actions run in parallel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// A label, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The actions.
    pub actions: Vec<Action>,
}

/// What starts a workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Glob over the envelope's `name` (`*` any characters): `kpi.threshold_breach`, `kpi.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Subject pattern the envelope's subject must match (`*` one token, `>` the rest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Every filter must pass, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Several named events within a window instead of `event`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
}

/// A multi-event trigger: the workflow runs once `expression` over the named events seen within
/// `window_ms` (per `key`) is true; the events are then forgotten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    /// Named event triggers: each a glob over names and its own filters.
    pub events: BTreeMap<String, NamedEvent>,
    /// Boolean expression over the names: `breach && (degraded || crash)`.
    pub expression: String,
    /// How long a seen event counts.
    pub window_ms: u64,
    /// Field path whose value groups events (`payload.component_id`); none: one group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// One named event of [`Conditions`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedEvent {
    /// Glob over envelope names.
    pub event: String,
    /// Comparisons the event must pass to count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

/// A filter of a trigger: exactly one of its forms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Filter {
    /// A field compared with a value.
    Compare(Compare),
    /// A change against the last value per key.
    Delta {
        /// The delta.
        delta: Delta,
    },
    /// A token bucket.
    RateLimit {
        /// The bucket.
        rate_limit: RateLimit,
    },
    /// Fire once after a quiet period.
    Debounce {
        /// The period.
        debounce: Debounce,
    },
    /// Drop repeats of a key within a window.
    Dedup {
        /// The window.
        dedup: Dedup,
    },
}

/// `field op value`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Compare {
    /// Dotted path into `{payload, event}`: `payload.score`, `event.subject`.
    pub field: String,
    /// The operator.
    pub op: Op,
    /// The operand (absent for `exists`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Equal (numbers by value).
    Eq,
    /// Not equal.
    Ne,
    /// Greater than (numbers).
    Gt,
    /// Greater or equal.
    Gte,
    /// Less than.
    Lt,
    /// Less or equal.
    Lte,
    /// The field's value is one of the list.
    In,
    /// The field's value is none of the list.
    NotIn,
    /// The field is present (`value: false`: absent).
    Exists,
    /// The field is a string matching the regular expression.
    Regex,
    /// A string containing the value, or an array holding it.
    Contains,
}

/// Passes when the field moved from the last value seen for its key by at least `min_abs`
/// (absolute) or `min_pct` (percent of the last value). The first value of a key passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delta {
    /// Numeric field.
    pub field: String,
    /// Field path naming the series (`payload.component_id`); none: one series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Least absolute change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_abs: Option<f64>,
    /// Least change in percent of the last value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pct: Option<f64>,
}

/// A token bucket of `per_minute` tokens refilled evenly, holding at most `burst` (default
/// `per_minute`); one per key when `key` is given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Refill rate.
    pub per_minute: u32,
    /// Bucket size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Field path naming the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Holds events until none came for `quiet_ms` (per key), then runs once with the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Debounce {
    /// The quiet period.
    pub quiet_ms: u64,
    /// Field path naming the series.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Passes the first event of a key and drops the same key again within `window_ms`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dedup {
    /// Field path of the key.
    pub key: String,
    /// The window.
    pub window_ms: u64,
}

/// One action: exactly one of `kernel`, `webhook`, `emit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// Unique in its workflow; results are `steps.<name>.result`.
    pub name: String,
    /// `kernel.handler`: a command on `ace.comms.internal.kernel.{kernel}.cmd.{handler}.v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// An HTTP call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
    /// An event published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emit: Option<EmitTarget>,
    /// Templated parameters: the command's or event's payload, the webhook's JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Overrides `default_timeout_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Overrides the file's `retry_policy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy: Option<RetryPolicy>,
    /// A failure is counted but does not fail the run.
    #[serde(default)]
    pub continue_on_error: bool,
    /// The Ethical Harm Index of what the action does (0..1), set on its envelope's
    /// `governance.ehi_score`: at or above its threshold the command or event waits for a
    /// human's approval like any message, and the run with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ehi_score: Option<f64>,
}

/// What an action does, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionKind<'a> {
    /// Kernel and handler.
    Kernel(&'a str, &'a str),
    /// The webhook.
    Webhook(&'a Webhook),
    /// The event.
    Emit(&'a EmitTarget),
}

impl Action {
    /// Which kind this is; `None` when not exactly one is given (validation refuses that).
    pub fn kind(&self) -> Option<ActionKind<'_>> {
        match (&self.kernel, &self.webhook, &self.emit) {
            (Some(target), None, None) => target
                .split_once('.')
                .map(|(kernel, handler)| ActionKind::Kernel(kernel, handler)),
            (None, Some(hook), None) => Some(ActionKind::Webhook(hook)),
            (None, None, Some(emit)) => Some(ActionKind::Emit(emit)),
            _ => None,
        }
    }

    /// The contract's `kind` word and the action's target, for events.
    pub fn kind_and_target(&self) -> (&'static str, String) {
        match self.kind() {
            Some(ActionKind::Kernel(k, h)) => ("kernel", format!("{k}.{h}")),
            Some(ActionKind::Webhook(hook)) => ("webhook", hook.url.clone()),
            Some(ActionKind::Emit(emit)) => ("emit", emit.event.clone()),
            None => ("kernel", self.name.clone()),
        }
    }
}

/// An HTTP call; `url` and header values are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://`.
    pub url: String,
    /// Default `POST`.
    #[serde(default = "post")]
    pub method: String,
    /// Extra headers.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

fn post() -> String {
    "POST".to_owned()
}

/// Where an emitted event goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitTarget {
    /// The envelope's `name` (`healing.escalation_requested`); its first dotted token is the
    /// `domain`.
    pub event: String,
    /// The subject (a template): `ace.comms.internal.kernel.avn_core.evt.healing_escalation_requested.v1`.
    pub subject: String,
    /// Registry reference of the payload's contract (`orchestration.healing.escalation_requested@1.0.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
}

/// An event of `on_success` / `on_failure` (unknown keys are refused by the schema: serde's
/// `flatten` cannot).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Emit {
    /// Where it goes.
    #[serde(flatten)]
    pub target: EmitTarget,
    /// Templated payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
}
