//! Snapshots and rollbacks: hashes that verify, restores that bring the state back, a tampered
//! snapshot refused.

use ace_mlt::state::{self, StateKind};
use ace_mlt::store::{SnapshotRecord, Store};
use ace_mlt::{MltError, RedbStore};
use serde_json::json;

use crate::plans::plan;
use crate::{Recorder, kernel};

#[tokio::test]
async fn given_an_applied_plan_when_rolled_back_to_its_snapshot_then_the_state_and_hash_return() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let before = kernel
        .export_snapshot(json!({"kind": "mlt", "note": "before"}))
        .await
        .unwrap();
    assert!(
        before["uri"]
            .as_str()
            .unwrap()
            .starts_with("mlt://snapshots/")
    );
    kernel
        .propose(plan("plan_rb_00001", "low"), &*recorder, None)
        .await
        .unwrap();
    let changed = kernel.current(StateKind::Mlt).await.unwrap();
    assert_ne!(json!(state::state_hash(&changed)), before["state_hash"]);

    let request = json!({"target": "mlt", "to_snapshot": before["snapshot_id"], "reason": "the plan hurt accuracy"});
    let answer = kernel.rollback(request, &*recorder, None).await.unwrap();
    assert_eq!(answer["status"], "accepted");
    let restored = kernel.current(StateKind::Mlt).await.unwrap();
    assert_eq!(json!(state::state_hash(&restored)), before["state_hash"]);
    let completed = &recorder.payloads("ROLLBACK_COMPLETED")[0];
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["state_hash"], before["state_hash"]);
    assert_eq!(completed["restored_snapshot"], before["snapshot_id"]);
    assert_eq!(
        recorder.payloads("ROLLBACK_REQUESTED")[0]["requested_by"],
        "human:alice"
    );
    // The same state exported twice is one snapshot.
    let again = kernel
        .export_snapshot(json!({"kind": "mlt"}))
        .await
        .unwrap();
    assert_eq!(again["snapshot_id"], before["snapshot_id"]);
}

#[tokio::test]
async fn given_a_governance_snapshot_when_restored_then_the_policies_return() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let snap = kernel
        .export_snapshot(json!({"kind": "governance"}))
        .await
        .unwrap();
    kernel
        .propose(plan("plan_gov_0001", "low"), &*recorder, None)
        .await
        .unwrap();
    assert_eq!(
        kernel.current(StateKind::Governance).await.unwrap()["policies"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    let request =
        json!({"target": "governance", "to_snapshot": snap["snapshot_id"], "reason": "undo"});
    kernel.rollback(request, &*recorder, None).await.unwrap();
    assert_eq!(
        kernel.current(StateKind::Governance).await.unwrap()["policies"],
        json!({})
    );
    let requested = recorder
        .events
        .lock()
        .unwrap()
        .iter()
        .find(|e| e.kind.name == "ROLLBACK_COMPLETED")
        .unwrap()
        .subject
        .clone();
    assert_eq!(
        requested,
        "ace.comms.internal.kernel.governance.evt.rollback_completed.v1"
    );
    // A governance snapshot is not an MLT one.
    let wrong = json!({"target": "mlt", "to_snapshot": snap["snapshot_id"], "reason": "x"});
    assert!(matches!(
        kernel.rollback(wrong, &*recorder, None).await,
        Err(MltError::NotFound { .. })
    ));
}

#[tokio::test]
async fn given_a_model_rollback_when_requested_then_its_version_is_set() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = kernel(dir.path());
    let recorder = Recorder::new();
    let request = json!({"target": "model", "model_key": "churn_model", "to_version": "1.4.2", "reason": "regression"});
    kernel
        .rollback(request, &*recorder, Some("rb-key"))
        .await
        .unwrap();
    assert_eq!(
        kernel.current(StateKind::Mlt).await.unwrap()["active_models"]["churn_model"],
        "1.4.2"
    );
    let requested = &recorder.payloads("ROLLBACK_REQUESTED")[0];
    assert!(requested.get("to_snapshot").is_none());
    assert_eq!(requested["to_version"], "1.4.2");
}

#[tokio::test]
async fn given_a_snapshot_whose_hash_does_not_verify_when_restored_then_the_rollback_fails_and_nothing_changes()
 {
    let dir = tempfile::tempdir().unwrap();
    let recorder = Recorder::new();
    let forged = {
        let store = RedbStore::open(&dir.path().join("mlt.redb")).unwrap();
        let state = json!({"specialist_weights": {"spec_evil": 1.0}, "active_models": {}, "applied_plans": []});
        let honest = state::state_hash(
            &json!({"specialist_weights": {}, "active_models": {}, "applied_plans": []}),
        );
        let mut document = state::snapshot_document(
            StateKind::Mlt,
            "snap_forged01",
            &state,
            "2026-01-01T00:00:00Z",
        );
        document["state_hash"] = json!(honest);
        store
            .insert_snapshot(&SnapshotRecord {
                snapshot_id: "snap_forged01".into(),
                kind: "mlt".into(),
                state_hash: honest,
                uri: "mlt://snapshots/snap_forged01".into(),
                document,
                created_at: chrono::Utc::now(),
            })
            .unwrap();
        "snap_forged01"
    };
    let kernel = kernel(dir.path());
    let request = json!({"target": "mlt", "to_snapshot": forged, "reason": "restore"});
    kernel.rollback(request, &*recorder, None).await.unwrap();
    let completed = &recorder.payloads("ROLLBACK_COMPLETED")[0];
    assert_eq!(completed["status"], "failed");
    assert!(
        completed["error"]
            .as_str()
            .unwrap()
            .contains("does not verify")
    );
    assert_eq!(
        kernel.current(StateKind::Mlt).await.unwrap()["specialist_weights"],
        json!({})
    );
    let missing = json!({"target": "mlt", "to_snapshot": "snap_missing", "reason": "x"});
    assert!(matches!(
        kernel.rollback(missing, &*recorder, None).await,
        Err(MltError::NotFound { .. })
    ));
}
