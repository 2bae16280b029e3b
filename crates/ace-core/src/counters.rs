//! [`Counters`]: what the core decided about held messages, counted as it happens so the server
//! can export it (`ace_comms_hitl_*`, `ace_comms_ehi_triggers_total`) without asking a store.
//!
//! Plain atomics, one increment per approval event: the hold path pays no lock and no
//! allocation, and a reader copies them at its own pace. They count from zero when the core is
//! built, like every Prometheus counter after a restart.

use std::sync::atomic::{AtomicU64, Ordering};

use ace_policy::HoldRule;

use crate::approvals::{Approval, ApprovalStatus};
use crate::core::Core;

/// Approval requests and their outcomes, and the rules behind the requests.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages held for approval (each `…evt.requested.v1`).
    requested: AtomicU64,
    /// Outcomes, in the order of [`Counters::OUTCOMES`].
    outcomes: [AtomicU64; 3],
    /// Reasons of holds, by the rule that gave them, in the order of [`HoldRule::ALL`].
    rules: [AtomicU64; 3],
}

impl Counters {
    /// The statuses an approval ends in.
    pub const OUTCOMES: [ApprovalStatus; 3] = [
        ApprovalStatus::Approved,
        ApprovalStatus::Rejected,
        ApprovalStatus::Expired,
    ];

    /// Counts the event announcing `approval` as it is now: a `pending` one was just
    /// requested (each distinct rule among its reasons counts once), any other just ended.
    pub(crate) fn approval_event(&self, approval: &Approval) {
        let counter = match Self::OUTCOMES.iter().position(|s| *s == approval.status) {
            Some(i) => &self.outcomes[i],
            None => {
                self.count_rules(&approval.reasons);
                &self.requested
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn count_rules(&self, reasons: &[String]) {
        let mut seen = [false; 3];
        for reason in reasons {
            let rule = HoldRule::of(reason);
            if let Some(i) = HoldRule::ALL.iter().position(|r| *r == rule) {
                seen[i] = true;
            }
        }
        for (counter, _) in self.rules.iter().zip(seen).filter(|(_, seen)| *seen) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Messages held for approval so far.
    pub fn requested(&self) -> u64 {
        self.requested.load(Ordering::Relaxed)
    }

    /// Approvals that ended in `status` so far (0 for `pending`).
    pub fn outcome(&self, status: ApprovalStatus) -> u64 {
        Self::OUTCOMES
            .iter()
            .position(|s| *s == status)
            .map_or(0, |i| self.outcomes[i].load(Ordering::Relaxed))
    }

    /// Holds one of whose reasons came from `rule` so far (a hold with reasons of two rules
    /// counts under both).
    pub fn rule(&self, rule: HoldRule) -> u64 {
        HoldRule::ALL
            .iter()
            .position(|r| *r == rule)
            .map_or(0, |i| self.rules[i].load(Ordering::Relaxed))
    }
}

impl Core {
    /// What the core counted about held messages since it was built.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::api::http::Requester;
    use ace_envelope::{Envelope, Kind};

    fn approval(status: ApprovalStatus, reasons: &[&str]) -> Approval {
        Approval {
            approval_id: "a1".into(),
            status,
            requested_by: Requester {
                id: "p".into(),
                roles: Vec::new(),
            },
            reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            created_at: chrono::DateTime::UNIX_EPOCH,
            expires_at: chrono::DateTime::UNIX_EPOCH,
            decided_by: None,
            decided_at: None,
            comment: None,
            envelope: Envelope::builder(Kind::Event, "ace.comms.http.a.b.evt.v1").build_unchecked(),
        }
    }

    #[test]
    fn given_approval_events_when_counted_then_requests_outcomes_and_rules_add_up() {
        let counters = Counters::default();
        let reasons = [
            ace_policy::SENDER_REQUEST_REASON,
            "ehi_score 0.95 reaches the threshold 0.9 of action `delete`",
            "a production target needs an approval",
            "a second policy reason",
        ];
        let event = |status, reasons: &[&str]| counters.approval_event(&approval(status, reasons));
        event(ApprovalStatus::Pending, &reasons);
        event(ApprovalStatus::Pending, &["policy says so"]);
        event(ApprovalStatus::Approved, &reasons);
        event(ApprovalStatus::Expired, &reasons);
        event(ApprovalStatus::Expired, &[]);
        assert_eq!(counters.requested(), 2);
        assert_eq!(counters.outcome(ApprovalStatus::Approved), 1);
        assert_eq!(counters.outcome(ApprovalStatus::Rejected), 0);
        assert_eq!(counters.outcome(ApprovalStatus::Expired), 2);
        assert_eq!(counters.outcome(ApprovalStatus::Pending), 0);
        assert_eq!(counters.rule(HoldRule::RequiresApproval), 1);
        assert_eq!(counters.rule(HoldRule::EhiThreshold), 1);
        assert_eq!(
            counters.rule(HoldRule::Policy),
            2,
            "once per hold, not per reason"
        );
    }
}
