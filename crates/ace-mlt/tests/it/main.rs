//! Integration tests of the ML kernel over its embedded store (a temporary `mlt.redb`), with a
//! recording [`Publisher`] that checks every event against its contract in the embedded
//! registry before keeping it.
//!
//! Modules:
//! - `insights`: seeded synthetic experience streams whose answer is known — a metric drift
//!   (one insight and one `MODEL_DRIFT_ALERT`, none for the control stream), a p95 latency
//!   regression, a fairness gap, a compliance failure — and a lasting condition raised once.
//! - `plans`: a low-risk plan approved by policy and applied, a high-risk plan held, approved
//!   by a human and applied, one rejected by a human, one refused by policy, a conflicting
//!   re-proposal, and every contract refusal naming its pointer.
//! - `postgres`: the store over PostgreSQL (`ACE_TEST_POSTGRES_URL`, a schema per test): the
//!   versioned migrations applied once, then drift, a held plan approved and applied, and a
//!   rollback, as on the embedded store.
//! - `snapshots`: export and rollback of the MLT and governance states with their hashes, a
//!   model rolled back to a version, a snapshot whose hash does not verify failing the
//!   rollback and changing nothing, unknown snapshots 404.

mod insights;
mod plans;
mod postgres;
mod snapshots;

use std::sync::{Arc, Mutex};

use ace_contracts::Registry;
use ace_envelope::SystemClock;
use ace_mlt::{Event, Kernel, MltConfig, Publisher, RedbStore, Submitted};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

/// Records every event after checking it against its contract; answers submissions with
/// `verdict`.
pub(crate) struct Recorder {
    registry: Registry,
    pub(crate) events: Mutex<Vec<Event>>,
    pub(crate) verdict: Mutex<Submitted>,
}

impl Recorder {
    pub(crate) fn new() -> Arc<Recorder> {
        Arc::new(Recorder {
            registry: Registry::embedded().unwrap(),
            events: Mutex::new(Vec::new()),
            verdict: Mutex::new(Submitted::Accepted),
        })
    }

    fn check(&self, event: &Event) {
        if let Err(err) = self.registry.validate(event.kind.schema, &event.payload) {
            panic!(
                "{} breaks its contract: {err:?}\n{}",
                event.kind.name, event.payload
            );
        }
        assert!(
            event.subject.starts_with("ace.comms.internal.kernel."),
            "{}",
            event.subject
        );
    }

    /// The names of the events so far, in order.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.kind.name)
            .collect()
    }

    /// The payloads of the events named `name`.
    pub(crate) fn payloads(&self, name: &str) -> Vec<Value> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter(|e| e.kind.name == name)
            .map(|e| e.payload.clone())
            .collect()
    }
}

#[async_trait]
impl Publisher for Recorder {
    async fn publish(&self, event: Event) -> Result<(), String> {
        self.check(&event);
        self.events.lock().unwrap().push(event);
        Ok(())
    }

    async fn submit(&self, event: Event) -> Result<Submitted, String> {
        self.check(&event);
        self.events.lock().unwrap().push(event);
        Ok(self.verdict.lock().unwrap().clone())
    }

    fn caller(&self) -> Option<String> {
        Some("human:alice".to_owned())
    }
}

/// A kernel over a fresh store in `dir`, with small windows (10 and 10).
pub(crate) fn kernel(dir: &std::path::Path) -> Kernel {
    let config = MltConfig {
        baseline_window: 10,
        current_window: 10,
        ..MltConfig::default()
    };
    kernel_with(dir, config)
}

pub(crate) fn kernel_with(dir: &std::path::Path, config: MltConfig) -> Kernel {
    let store = RedbStore::open(&dir.join("mlt.redb")).unwrap();
    Kernel::new(Arc::new(store), config, Arc::new(SystemClock)).unwrap()
}

/// The `n`th experience of a stream, `seconds` after a fixed start.
pub(crate) fn experience(id: &str, model: &str, n: i64, signals: Value) -> Value {
    let start: DateTime<Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
    let mut doc = json!({
        "experience_id": id,
        "source": "inference",
        "task": "classification",
        "context": {"model_key": model, "env": "prod"},
        "timestamp": ace_mlt::iso(start + Duration::seconds(n)),
    });
    doc["signals"] = signals;
    doc
}
