//! The EHI (Epistemic Humility Index) gate: a message whose `governance.ehi_score` is at or
//! above the threshold of its action, or that asks for approval itself
//! (`governance.requires_approval`), is held for a human.
//!
//! The action of a message is its [`ACTION_HEADER`] header when present (the tool an agent is
//! about to use: `delete`, `deploy`…), otherwise its envelope `name`. Its threshold is the
//! per-action entry of [`EhiConfig::tool_thresholds`], otherwise
//! [`EhiConfig::default_threshold`] (0.7). A score that is not a number is held: the gate
//! fails closed. A message without a score is not held by EHI.
//!
//! [`HoldRule::of`] tells which rule a hold's reason comes from (the sender's request, the
//! score threshold, or a policy), for the count of holds by rule.

use std::collections::BTreeMap;

use ace_envelope::Envelope;
use serde::{Deserialize, Serialize};

use crate::decision::Decision;
use crate::error::PolicyError;

/// The header naming the action (tool) a message asks for.
pub const ACTION_HEADER: &str = "ace-action";

/// The default threshold (`ehi.default_threshold`).
pub const DEFAULT_THRESHOLD: f64 = 0.7;

/// The reason of a hold the sender asked for (`governance.requires_approval`).
pub const SENDER_REQUEST_REASON: &str = "the sender requires approval";

/// How the reason of a hold by score starts, and what follows the score in it.
const SCORE_REASON: (&str, &str) = ("ehi_score ", " reaches the threshold ");

/// The rule behind one reason of a hold: a bounded set, so it can label a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldRule {
    /// The sender asked for an approval (`governance.requires_approval`).
    RequiresApproval,
    /// `governance.ehi_score` reached the threshold of the message's action.
    EhiThreshold,
    /// A policy (Rego `require_approval`) asked for an approval.
    Policy,
}

impl HoldRule {
    /// Every rule, in the order of their names.
    pub const ALL: [HoldRule; 3] = [
        HoldRule::EhiThreshold,
        HoldRule::Policy,
        HoldRule::RequiresApproval,
    ];

    /// The rule that gave `reason`: the gate's own two reasons are recognised by their form,
    /// anything else came from a policy.
    pub fn of(reason: &str) -> HoldRule {
        let (start, middle) = SCORE_REASON;
        if reason == SENDER_REQUEST_REASON {
            HoldRule::RequiresApproval
        } else if reason.starts_with(start) && reason.contains(middle) {
            HoldRule::EhiThreshold
        } else {
            HoldRule::Policy
        }
    }

    /// The label value: `requires_approval`, `ehi_threshold`, `policy`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HoldRule::RequiresApproval => "requires_approval",
            HoldRule::EhiThreshold => "ehi_threshold",
            HoldRule::Policy => "policy",
        }
    }
}

/// EHI configuration (the `ehi` block of the server config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EhiConfig {
    /// When false, scores are ignored (an explicit `requires_approval` still holds).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The threshold of actions without an entry.
    #[serde(default = "default_threshold")]
    pub default_threshold: f64,
    /// Per-action thresholds.
    #[serde(default)]
    pub tool_thresholds: BTreeMap<String, f64>,
}

fn yes() -> bool {
    true
}

fn default_threshold() -> f64 {
    DEFAULT_THRESHOLD
}

impl Default for EhiConfig {
    /// The shipped values: default 0.7; `delete` 0.9, `deploy` 0.8, `modify_prod` 0.85.
    fn default() -> Self {
        let seed = [("delete", 0.9), ("deploy", 0.8), ("modify_prod", 0.85)];
        EhiConfig {
            enabled: true,
            default_threshold: DEFAULT_THRESHOLD,
            tool_thresholds: seed.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        }
    }
}

impl EhiConfig {
    /// Refuses a threshold outside 0..=1, naming its key.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let check = |key: String, value: f64| {
            if (0.0..=1.0).contains(&value) {
                Ok(())
            } else {
                let reason = format!("{value} is not within 0..=1");
                Err(PolicyError::Invalid { key, reason })
            }
        };
        check("ehi.default_threshold".into(), self.default_threshold)?;
        for (action, value) in &self.tool_thresholds {
            check(format!("ehi.tool_thresholds.{action}"), *value)?;
        }
        Ok(())
    }
}

/// Holds messages for approval by EHI score; the default gate has the shipped thresholds.
#[derive(Debug, Clone, Default)]
pub struct EhiGate {
    config: EhiConfig,
}

impl EhiGate {
    /// A gate over a validated configuration.
    pub fn new(config: EhiConfig) -> Result<Self, PolicyError> {
        config.validate()?;
        Ok(EhiGate { config })
    }

    /// The configuration.
    pub fn config(&self) -> &EhiConfig {
        &self.config
    }

    /// The action of `envelope`: its [`ACTION_HEADER`], else its `name`.
    pub fn action_of(envelope: &Envelope) -> Option<&str> {
        envelope
            .headers
            .get(ACTION_HEADER)
            .map(String::as_str)
            .or(envelope.name.as_deref())
    }

    /// The threshold of `action` (the default for none or an unlisted one).
    pub fn threshold(&self, action: Option<&str>) -> f64 {
        action
            .and_then(|a| self.config.tool_thresholds.get(a))
            .copied()
            .unwrap_or(self.config.default_threshold)
    }

    /// Allow, or hold for approval with the reasons.
    pub fn evaluate(&self, envelope: &Envelope) -> Decision {
        let mut reasons = Vec::new();
        if envelope.governance.requires_approval {
            reasons.push(SENDER_REQUEST_REASON.to_owned());
        }
        if let (true, Some(score)) = (self.config.enabled, envelope.governance.ehi_score) {
            let action = Self::action_of(envelope);
            let threshold = self.threshold(action);
            // NaN is held too: it is not known to be below the threshold.
            if score.partial_cmp(&threshold) != Some(std::cmp::Ordering::Less) {
                let (start, middle) = SCORE_REASON;
                reasons.push(format!(
                    "{start}{score}{middle}{threshold} of action `{}`",
                    action.unwrap_or("<none>")
                ));
            }
        }
        Decision::hold_if_any(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::{Governance, Kind};

    fn message(action: Option<&str>, score: Option<f64>) -> Envelope {
        let mut b = Envelope::builder(Kind::Command, "ace.comms.agent.a.b.cmd.v1").name("op.run");
        if let Some(a) = action {
            b = b.header(ACTION_HEADER, a);
        }
        b.governance(Governance {
            ehi_score: score,
            ..Governance::default()
        })
        .build_unchecked()
    }

    #[test]
    fn given_seed_thresholds_when_scores_are_at_just_below_or_above_then_at_holds() {
        let gate = EhiGate::default();
        let table = [
            (Some("delete"), 0.9, true),
            (Some("delete"), 0.89, false),
            (Some("deploy"), 0.8, true),
            (Some("deploy"), 0.79, false),
            (Some("modify_prod"), 0.85, true),
            (Some("modify_prod"), 0.84, false),
            (None, 0.7, true),
            (None, 0.69, false),
            (Some("unlisted"), 0.7, true),
        ];
        for (action, score, held) in table {
            let d = gate.evaluate(&message(action, Some(score)));
            assert_eq!(!d.is_allow(), held, "{action:?} {score}");
        }
    }

    #[test]
    fn given_no_header_when_the_action_is_read_then_the_name_is_used() {
        let mut cfg = EhiConfig::default();
        cfg.tool_thresholds.insert("op.run".into(), 0.2);
        let gate = EhiGate::new(cfg).unwrap();
        assert!(!gate.evaluate(&message(None, Some(0.3))).is_allow());
    }

    #[test]
    fn given_nan_or_requires_approval_when_evaluated_then_the_message_is_held() {
        let gate = EhiGate::default();
        assert!(!gate.evaluate(&message(None, Some(f64::NAN))).is_allow());
        let mut m = message(None, None);
        assert!(gate.evaluate(&m).is_allow());
        m.governance.requires_approval = true;
        assert!(!gate.evaluate(&m).is_allow());
    }

    #[test]
    fn given_each_reason_of_a_hold_when_classified_then_its_rule_is_named() {
        let gate = EhiGate::default();
        let mut both = message(Some("delete"), Some(0.95));
        both.governance.requires_approval = true;
        let reasons = gate.evaluate(&both).reasons().to_vec();
        let rules: Vec<HoldRule> = reasons.iter().map(|r| HoldRule::of(r)).collect();
        assert_eq!(
            rules,
            [HoldRule::RequiresApproval, HoldRule::EhiThreshold],
            "{reasons:?}"
        );
        let nan = gate.evaluate(&message(None, Some(f64::NAN)));
        assert_eq!(HoldRule::of(&nan.reasons()[0]), HoldRule::EhiThreshold);
        // The shipped Rego policy's reasons, and anything else, are a policy's.
        for other in [
            "ehi_score 0.95 is above the policy threshold 0.7",
            "a production target needs an approval",
            "",
        ] {
            assert_eq!(HoldRule::of(other), HoldRule::Policy, "{other}");
        }
        let names: Vec<&str> = HoldRule::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names, ["ehi_threshold", "policy", "requires_approval"]);
    }

    #[test]
    fn given_a_threshold_above_one_when_validated_then_the_key_is_named() {
        let mut cfg = EhiConfig::default();
        cfg.tool_thresholds.insert("deploy".into(), 1.5);
        let err = EhiGate::new(cfg).unwrap_err();
        assert!(
            err.to_string().contains("ehi.tool_thresholds.deploy"),
            "{err}"
        );
    }
}
