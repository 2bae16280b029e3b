//! Plans through governance: the verdict of the recording publisher plays the policy and the
//! approvals; the kernel's events, statuses and state are checked at each step.

use ace_mlt::state::StateKind;
use ace_mlt::{Decision, MltError, Submitted};
use serde_json::{Value, json};

use crate::{Recorder, kernel};

pub(crate) fn plan(id: &str, risk: &str) -> Value {
    json!({
        "plan_id": id,
        "derived_from": ["ins_drift_000001"],
        "actions": [
            {"type": "reweight_specialists", "weights": {"spec_gbm": 0.7, "spec_mlp": 0.3}},
            {"type": "policy_delta", "path": "governance.thresholds.min_calibration", "from": 0.9, "to": 0.85}
        ],
        "expected_effect": {"accuracy": 0.02},
        "risk_level": risk,
        "timestamp": "2026-06-01T00:00:00Z"
    })
}

#[tokio::test]
async fn given_a_low_risk_plan_when_policy_admits_it_then_it_is_approved_and_applied() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = crate::Recorder::new();
    let status = kernel
        .propose(plan("plan_low_0001", "low"), &*recorder, None)
        .await
        .unwrap();
    assert_eq!(status["status"], "applied");
    assert_eq!(
        recorder.names(),
        [
            "ADAPTATION_PLAN_PROPOSED",
            "GOVERNANCE_VALIDATION",
            "GOVERNANCE_APPROVED",
            "MLT_PLAN_APPLIED"
        ]
    );
    assert_eq!(
        recorder.payloads("ADAPTATION_PLAN_PROPOSED")[0]["requires_approval"],
        false
    );
    let validation = recorder.events.lock().unwrap()[1].clone();
    assert_eq!(validation.ehi_score, Some(0.2));
    assert!(!validation.requires_approval);
    assert_eq!(validation.payload["requested_by"], "human:alice");
    assert_eq!(
        recorder.payloads("GOVERNANCE_APPROVED")[0]["approver"],
        ace_mlt::POLICY_APPROVER
    );
    let applied = &recorder.payloads("MLT_PLAN_APPLIED")[0];
    assert_eq!(applied["applied_actions"], 2);
    let mlt = kernel.current(StateKind::Mlt).await.unwrap();
    assert_eq!(
        mlt["specialist_weights"],
        json!({"spec_gbm": 0.7, "spec_mlp": 0.3})
    );
    assert_eq!(mlt["applied_plans"], json!(["plan_low_0001"]));
    let governance = kernel.current(StateKind::Governance).await.unwrap();
    assert_eq!(
        governance["policies"]["governance.thresholds.min_calibration"],
        0.85
    );
    // The snapshot taken before applying is the empty state, and verifies.
    let before = applied["snapshot_before"].as_str().unwrap();
    let (record, verdict) = kernel.verified_snapshot(before).await.unwrap().unwrap();
    assert_eq!(record.kind, "mlt");
    assert_eq!(verdict.unwrap()["applied_plans"], json!([]));
    // Proposing it again is answered with its status; different content is a conflict.
    let again = kernel
        .propose(plan("plan_low_0001", "low"), &*recorder, None)
        .await
        .unwrap();
    assert_eq!(again["status"], "applied");
    assert_eq!(recorder.names().len(), 4, "nothing published again");
    let err = kernel
        .propose(plan("plan_low_0001", "medium"), &*recorder, None)
        .await
        .unwrap_err();
    assert!(matches!(err, MltError::Conflict { .. }), "{err}");
}

#[tokio::test]
async fn given_a_high_risk_plan_when_held_then_pending_until_a_human_approves_then_applied() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    *recorder.verdict.lock().unwrap() = Submitted::Held {
        approval_id: "appr-1".into(),
    };
    let status = kernel
        .propose(plan("plan_high_001", "high"), &*recorder, None)
        .await
        .unwrap();
    assert_eq!(status["status"], "pending");
    let validation = &recorder.events.lock().unwrap()[1].clone();
    assert_eq!(validation.ehi_score, Some(0.9));
    assert!(validation.requires_approval);
    assert_eq!(
        kernel.plan_status("plan_high_001").await.unwrap()["status"],
        "pending"
    );
    // A decision on an approval that holds no plan changes nothing.
    let stray = Decision {
        approval_id: "other".into(),
        approved: true,
        decided_by: "human:bob".into(),
        reason: None,
    };
    assert!(!kernel.decided(stray, &*recorder).await.unwrap());
    let approve = Decision {
        approval_id: "appr-1".into(),
        approved: true,
        decided_by: "human:bob".into(),
        reason: Some("looks right".into()),
    };
    assert!(kernel.decided(approve.clone(), &*recorder).await.unwrap());
    assert_eq!(
        kernel.plan_status("plan_high_001").await.unwrap()["status"],
        "applied"
    );
    let approved = &recorder.payloads("GOVERNANCE_APPROVED")[0];
    assert_eq!(
        (approved["approver"].as_str(), approved["reason"].as_str()),
        (Some("human:bob"), Some("looks right"))
    );
    assert_eq!(recorder.payloads("MLT_PLAN_APPLIED").len(), 1);
    // The same decision delivered twice applies nothing twice.
    assert!(!kernel.decided(approve, &*recorder).await.unwrap());
    assert_eq!(recorder.payloads("MLT_PLAN_APPLIED").len(), 1);
}

#[tokio::test]
async fn given_a_held_plan_when_a_human_rejects_it_then_rejected_with_the_reason_and_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    *recorder.verdict.lock().unwrap() = Submitted::Held {
        approval_id: "appr-2".into(),
    };
    kernel
        .propose(plan("plan_high_002", "high"), &*recorder, None)
        .await
        .unwrap();
    let reject = Decision {
        approval_id: "appr-2".into(),
        approved: false,
        decided_by: "human:bob".into(),
        reason: Some("too risky".into()),
    };
    kernel.decided(reject, &*recorder).await.unwrap();
    assert_eq!(
        kernel.plan_status("plan_high_002").await.unwrap()["status"],
        "rejected"
    );
    let rejected = &recorder.payloads("GOVERNANCE_REJECTED")[0];
    assert_eq!(rejected["reasons"], json!(["too risky"]));
    assert!(recorder.payloads("MLT_PLAN_APPLIED").is_empty());
    assert_eq!(
        kernel.current(StateKind::Mlt).await.unwrap()["applied_plans"],
        json!([])
    );
}

#[tokio::test]
async fn given_a_plan_policy_refuses_when_proposed_then_rejected_with_the_policy_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    *recorder.verdict.lock().unwrap() = Submitted::Refused {
        reasons: vec!["rbac: no rule allows".into()],
    };
    let status = kernel
        .propose(plan("plan_denied_1", "low"), &*recorder, None)
        .await
        .unwrap();
    assert_eq!(status["status"], "rejected");
    assert_eq!(
        recorder.payloads("GOVERNANCE_REJECTED")[0]["reasons"],
        json!(["rbac: no rule allows"])
    );
}

#[tokio::test]
async fn given_bad_plans_when_proposed_then_refused_with_pointers_and_nothing_published() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let mut bad = plan("plan_bad_0001", "low");
    bad["actions"][0]["weights"]["spec_gbm"] = json!(1.7);
    let Err(MltError::Contract { errors, .. }) = kernel.propose(bad, &*recorder, None).await else {
        panic!("a weight above 1 is refused");
    };
    assert!(
        errors
            .iter()
            .any(|e| e.instance_pointer == "/actions/0/weights/spec_gbm"),
        "{errors:?}"
    );
    let Err(MltError::Contract { .. }) = kernel
        .propose(json!({"plan_id": "x"}), &*recorder, None)
        .await
    else {
        panic!("an incomplete plan is refused");
    };
    assert!(recorder.names().is_empty());
    assert!(matches!(
        kernel.plan_status("plan_nowhere").await,
        Err(MltError::NotFound { .. })
    ));
}

#[tokio::test]
async fn given_an_idempotency_key_when_a_proposal_is_repeated_then_the_first_answer_returns() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let first = kernel
        .propose(plan("plan_idem_001", "low"), &*recorder, Some("k-1"))
        .await
        .unwrap();
    let again = kernel
        .propose(plan("plan_idem_001", "low"), &*recorder, Some("k-1"))
        .await
        .unwrap();
    assert_eq!(first, again);
    assert_eq!(recorder.names().len(), 4);
}
