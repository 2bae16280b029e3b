//! The `ace_comms_policy_*` counters: the policy engine's own atomic counters, copied at every
//! scrape from whichever engine the authorizer decides with now (see the parent module on
//! reloads).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use ace_core::PolicyAuthorizer;
use ace_policy::PolicyEngine;
use prometheus::{IntCounter, Registry};

/// The `ace_comms_policy_*` counters and the authorizer whose current engine they mirror.
#[derive(Debug, Clone)]
pub(super) struct PolicyMetrics {
    pub(super) authorizer: Option<PolicyAuthorizer>,
    /// The engine copied last and how much of each counter was copied from it; locked while
    /// copying, so two scrapes at once never add the same increase twice.
    followed: Arc<Mutex<Followed>>,
    allowed: IntCounter,
    denied: IntCounter,
    held: IntCounter,
    receive_denied: IntCounter,
    engine_failures: IntCounter,
}

/// The engine the counters follow and its counts already exported (in the order of
/// [`PolicyMetrics::counters`]).
#[derive(Debug, Default)]
struct Followed {
    engine: Option<Arc<PolicyEngine>>,
    copied: [u64; 5],
}

impl PolicyMetrics {
    pub(super) fn new(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        Ok(PolicyMetrics {
            authorizer: None,
            followed: Arc::default(),
            allowed: counter(
                "ace_comms_policy_allowed_total",
                "Requests the policy engine allowed.",
            )?,
            denied: counter(
                "ace_comms_policy_denials_total",
                "Requests the policy engine denied (RBAC, Rego or engine failure).",
            )?,
            held: counter(
                "ace_comms_policy_held_total",
                "Messages the policy engine held for approval.",
            )?,
            receive_denied: counter(
                "ace_comms_policy_receive_denials_total",
                "Deliveries withheld from a subscriber (envelope rbac permissions or label).",
            )?,
            engine_failures: counter(
                "ace_comms_policy_engine_failures_total",
                "Rego evaluations that failed (each answered as a denial).",
            )?,
        })
    }

    fn counters(&self) -> [&IntCounter; 5] {
        [
            &self.allowed,
            &self.denied,
            &self.held,
            &self.receive_denied,
            &self.engine_failures,
        ]
    }

    /// Adds what the current engine counted since the last copy; after a reload, first what
    /// the replaced engine counted since then.
    pub(super) fn sync(&self) {
        let Some(authorizer) = &self.authorizer else {
            return;
        };
        let current = authorizer.engine();
        let mut followed = self
            .followed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let replaced = followed
            .engine
            .take_if(|engine| !Arc::ptr_eq(engine, &current));
        if let Some(replaced) = replaced {
            self.copy(&mut followed.copied, &replaced);
            followed.copied = [0; 5];
        }
        self.copy(&mut followed.copied, &current);
        followed.engine = Some(current);
    }

    fn copy(&self, copied: &mut [u64; 5], engine: &PolicyEngine) {
        let counters = engine.counters();
        let load = |source: &AtomicU64| source.load(Ordering::Relaxed);
        let failures = engine.rego().map_or(0, |rego| load(&rego.stats().failures));
        let now = [
            load(&counters.allowed),
            load(&counters.denied),
            load(&counters.held),
            load(&counters.receive_denied),
            failures,
        ];
        for ((counter, seen), now) in self.counters().into_iter().zip(copied).zip(now) {
            counter.inc_by(now.saturating_sub(*seen));
            *seen = now.max(*seen);
        }
    }
}
