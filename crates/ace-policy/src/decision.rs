//! [`Decision`] and [`Action`]: what every layer (RBAC, Rego, EHI, receive checks) answers and
//! what it is asked about. A denial is a value carrying every reason, never an error, so the
//! caller can log, count and return it without a `match` on error kinds.

use serde::Serialize;

/// What a principal asks to do with a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Publish a message on a literal subject.
    Publish,
    /// Subscribe to (or read a stream by) a subject or pattern.
    Subscribe,
}

impl Action {
    /// The wire name (`publish`, `subscribe`), as Rego sees it in `input.action`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Subscribe => "subscribe",
        }
    }
}

/// The answer of a policy layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused, with every reason.
    Deny {
        /// Why, one entry per rule that refused.
        reasons: Vec<String>,
    },
    /// Allowed only once a principal with the approver role says so; the message is held.
    RequireApproval {
        /// Why, one entry per rule that asked for approval.
        reasons: Vec<String>,
    },
}

impl Decision {
    /// A denial with one reason.
    pub fn deny(reason: impl Into<String>) -> Self {
        Decision::Deny {
            reasons: vec![reason.into()],
        }
    }

    /// A denial with `reasons`, or an allow when there are none.
    pub fn deny_if_any(reasons: Vec<String>) -> Self {
        if reasons.is_empty() {
            Decision::Allow
        } else {
            Decision::Deny { reasons }
        }
    }

    /// An approval request with `reasons`, or an allow when there are none.
    pub fn hold_if_any(reasons: Vec<String>) -> Self {
        if reasons.is_empty() {
            Decision::Allow
        } else {
            Decision::RequireApproval { reasons }
        }
    }

    /// Whether this is [`Decision::Allow`].
    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// Whether this is a [`Decision::Deny`].
    pub fn is_deny(&self) -> bool {
        matches!(self, Decision::Deny { .. })
    }

    /// The reasons of a denial or an approval request; empty for an allow.
    pub fn reasons(&self) -> &[String] {
        match self {
            Decision::Allow => &[],
            Decision::Deny { reasons } | Decision::RequireApproval { reasons } => reasons,
        }
    }

    /// Both decisions together: a denial wins over an approval request, which wins over an
    /// allow; reasons of the winning kind are kept from both sides.
    pub fn and(self, other: Decision) -> Decision {
        match (self, other) {
            (Decision::Deny { mut reasons }, Decision::Deny { reasons: more }) => {
                reasons.extend(more);
                Decision::Deny { reasons }
            }
            (deny @ Decision::Deny { .. }, _) | (_, deny @ Decision::Deny { .. }) => deny,
            (
                Decision::RequireApproval { mut reasons },
                Decision::RequireApproval { reasons: more },
            ) => {
                reasons.extend(more);
                Decision::RequireApproval { reasons }
            }
            (hold @ Decision::RequireApproval { .. }, Decision::Allow)
            | (Decision::Allow, hold @ Decision::RequireApproval { .. }) => hold,
            (Decision::Allow, Decision::Allow) => Decision::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(reason: &str) -> Decision {
        Decision::RequireApproval {
            reasons: vec![reason.into()],
        }
    }

    #[test]
    fn given_deny_and_hold_when_combined_then_deny_wins_with_its_reasons() {
        let d = hold("ehi").and(Decision::deny("rbac"));
        assert_eq!(d, Decision::deny("rbac"));
    }

    #[test]
    fn given_two_holds_when_combined_then_both_reasons_are_kept() {
        let d = hold("a").and(hold("b"));
        assert_eq!(d.reasons(), ["a".to_owned(), "b".to_owned()]);
    }

    #[test]
    fn given_allow_and_hold_when_combined_then_the_message_is_held() {
        assert_eq!(Decision::Allow.and(hold("x")), hold("x"));
        assert!(Decision::Allow.and(Decision::Allow).is_allow());
    }
}
