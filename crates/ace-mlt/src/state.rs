//! The state the kernel governs and snapshots: the MLT state (specialist weights, the deployed
//! version of each model, the plans applied) and the governance state (thresholds and policy
//! values). Each hashes as `sha256:` over its canonical JSON (sorted keys, no spaces), which is
//! what a snapshot's `state_hash` is and what a restore recomputes.

use ace_envelope::canonical::to_canonical_vec;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::config::MltConfig;

/// The version of the snapshot documents this kernel writes.
pub const SNAPSHOT_VERSION: &str = "1.0.0";

/// Which state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    /// Specialist weights, active models, applied plans (`MLTSnapshot`).
    Mlt,
    /// Thresholds and policies (`GovernanceSnapshot`).
    Governance,
}

impl StateKind {
    /// `mlt` or `governance`: the store's state name and the snapshot `kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            StateKind::Mlt => "mlt",
            StateKind::Governance => "governance",
        }
    }

    /// The kind named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "mlt" => Some(StateKind::Mlt),
            "governance" => Some(StateKind::Governance),
            _ => None,
        }
    }

    /// The registry reference of its snapshot contract.
    pub fn snapshot_schema(self) -> &'static str {
        match self {
            StateKind::Mlt => "mlt.snapshot@1.0.0",
            StateKind::Governance => "governance.snapshot@1.0.0",
        }
    }

    /// The fields of a snapshot document that are the state (what the hash covers).
    fn fields(self) -> &'static [&'static str] {
        match self {
            StateKind::Mlt => &["specialist_weights", "active_models", "applied_plans"],
            StateKind::Governance => &["thresholds", "policies"],
        }
    }

    /// The state before anything was applied: empty, with the configured thresholds.
    pub fn initial(self, config: &MltConfig) -> Value {
        match self {
            StateKind::Mlt => {
                json!({"specialist_weights": {}, "active_models": {}, "applied_plans": []})
            }
            StateKind::Governance => json!({
                "thresholds": {
                    "fairness_delta_max": config.fairness_delta_max,
                    "drift_psi_max": config.drift_psi_max,
                    "ehi_hitl_threshold": config.ehi_hitl_threshold,
                },
                "policies": {},
            }),
        }
    }

    /// The state part of a snapshot document.
    pub fn state_of(self, document: &Value) -> Value {
        let mut state = Map::new();
        for field in self.fields() {
            if let Some(v) = document.get(*field) {
                state.insert((*field).to_owned(), v.clone());
            }
        }
        Value::Object(state)
    }
}

/// `sha256:<hex>` of the canonical JSON of `state`.
pub fn state_hash(state: &Value) -> String {
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(to_canonical_vec(state)))
    )
}

/// A snapshot document of `state`.
pub fn snapshot_document(kind: StateKind, id: &str, state: &Value, created_at: &str) -> Value {
    let mut doc = kind
        .state_of(state)
        .as_object()
        .cloned()
        .unwrap_or_default();
    doc.insert("snapshot_id".into(), json!(id));
    doc.insert("version".into(), json!(SNAPSHOT_VERSION));
    doc.insert("state_hash".into(), json!(state_hash(state)));
    doc.insert("created_at".into(), json!(created_at));
    Value::Object(doc)
}

/// Applies one action of a plan to the MLT and governance states; answers what changed.
pub fn apply_action(
    action: &Value,
    mlt: &mut Value,
    governance: &mut Value,
    plan_id: &str,
) -> String {
    match action["type"].as_str() {
        Some("reweight_specialists") => {
            if let (Some(weights), Some(into)) = (
                action["weights"].as_object(),
                mlt["specialist_weights"].as_object_mut(),
            ) {
                for (k, v) in weights {
                    into.insert(k.clone(), v.clone());
                }
            }
            "specialist weights set".to_owned()
        }
        Some("policy_delta") => {
            let path = action["path"].as_str().unwrap_or_default().to_owned();
            if let Some(policies) = governance["policies"].as_object_mut() {
                match &action["to"] {
                    Value::Null => {
                        policies.remove(&path);
                    }
                    to => {
                        policies.insert(path.clone(), to.clone());
                    }
                }
            }
            format!("policy `{path}` changed")
        }
        Some("canary") => format!(
            "canary of `{}` scheduled at steps {}",
            action["target_model"].as_str().unwrap_or_default(),
            action["steps"]
        ),
        Some("hpo") => format!(
            "hyper-parameter search of `{}` scheduled ({} trials)",
            action["target"].as_str().unwrap_or_default(),
            action["budget"]["trials"]
        ),
        _ => format!("unknown action in plan `{plan_id}` skipped"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_two_states_differing_in_key_order_when_hashed_then_the_hashes_are_equal() {
        let a = json!({"specialist_weights": {"a_spec": 0.5, "b_spec": 0.5}, "active_models": {}, "applied_plans": []});
        let b: Value = serde_json::from_str(
            r#"{"applied_plans":[],"active_models":{},"specialist_weights":{"b_spec":0.5,"a_spec":0.5}}"#,
        )
        .unwrap();
        assert_eq!(state_hash(&a), state_hash(&b));
        assert!(state_hash(&a).starts_with("sha256:") && state_hash(&a).len() == 71);
    }

    #[test]
    fn given_a_snapshot_document_when_its_state_is_taken_then_it_hashes_to_its_state_hash() {
        let state = StateKind::Governance.initial(&MltConfig::default());
        let doc = snapshot_document(
            StateKind::Governance,
            "snap_00001",
            &state,
            "2026-01-01T00:00:00Z",
        );
        assert_eq!(
            doc["state_hash"],
            json!(state_hash(&StateKind::Governance.state_of(&doc)))
        );
    }
}
