//! The kernel's events — one [`EventKind`] per event of `contracts/ml/ml_events.json`, with the
//! subject, contract, priority and class the catalogue (`contracts/comms/events.master.yaml`)
//! gives it — and [`Publisher`], the injected way out: the kernel never touches a bus, the
//! server implements the trait over its governed command path.

use async_trait::async_trait;
use serde_json::Value;

/// One catalogued event of the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventKind {
    /// The envelope `name` (what workflows match on).
    pub name: &'static str,
    /// The envelope `domain`.
    pub domain: &'static str,
    /// The registry reference of its payload contract.
    pub schema: &'static str,
    /// Its default priority (`P0`..`P3`).
    pub priority: &'static str,
    /// Its default QoS class.
    pub qos: &'static str,
    /// The subject template; `*` is the kernel that emits it (`mlt` or `governance`).
    subject: &'static str,
}

impl EventKind {
    /// The subject the event travels on; `kernel` fills a `*` (rollback events name the kernel
    /// that rolled back).
    pub fn subject(&self, kernel: &str) -> String {
        self.subject.replace('*', kernel)
    }
}

const fn kind(
    name: &'static str,
    domain: &'static str,
    subject: &'static str,
    schema: &'static str,
    priority: &'static str,
    qos: &'static str,
) -> EventKind {
    EventKind {
        name,
        domain,
        schema,
        priority,
        qos,
        subject,
    }
}

/// `EXPERIENCE_INGESTED`.
pub const EXPERIENCE_INGESTED: EventKind = kind(
    "EXPERIENCE_INGESTED",
    "mlt",
    "ace.comms.internal.kernel.mlt.evt.experience_ingested.v1",
    "ml.event.experience_ingested@1.0.0",
    "P3",
    "bulk",
);
/// `MLT_INSIGHT_READY`.
pub const INSIGHT_READY: EventKind = kind(
    "MLT_INSIGHT_READY",
    "mlt",
    "ace.comms.internal.kernel.mlt.evt.mlt_insight_ready.v1",
    "ml.event.insight_ready@1.0.0",
    "P2",
    "standard",
);
/// `ADAPTATION_PLAN_PROPOSED`.
pub const PLAN_PROPOSED: EventKind = kind(
    "ADAPTATION_PLAN_PROPOSED",
    "mlt",
    "ace.comms.internal.kernel.mlt.evt.adaptation_plan_proposed.v1",
    "ml.event.adaptation_plan_proposed@1.0.0",
    "P1",
    "standard",
);
/// `GOVERNANCE_VALIDATION`.
pub const GOVERNANCE_VALIDATION: EventKind = kind(
    "GOVERNANCE_VALIDATION",
    "governance",
    "ace.comms.internal.kernel.governance.evt.governance_validation.v1",
    "ml.event.governance_validation@1.0.0",
    "P0",
    "standard",
);
/// `GOVERNANCE_APPROVED`.
pub const GOVERNANCE_APPROVED: EventKind = kind(
    "GOVERNANCE_APPROVED",
    "governance",
    "ace.comms.internal.kernel.governance.evt.governance_approved.v1",
    "ml.event.governance_approved@1.0.0",
    "P0",
    "standard",
);
/// `GOVERNANCE_REJECTED`.
pub const GOVERNANCE_REJECTED: EventKind = kind(
    "GOVERNANCE_REJECTED",
    "governance",
    "ace.comms.internal.kernel.governance.evt.governance_rejected.v1",
    "ml.event.governance_rejected@1.0.0",
    "P0",
    "standard",
);
/// `MLT_PLAN_APPLIED`.
pub const PLAN_APPLIED: EventKind = kind(
    "MLT_PLAN_APPLIED",
    "mlt",
    "ace.comms.internal.kernel.mlt.evt.mlt_plan_applied.v1",
    "ml.event.plan_applied@1.0.0",
    "P1",
    "standard",
);
/// `MODEL_DRIFT_ALERT`.
pub const MODEL_DRIFT_ALERT: EventKind = kind(
    "MODEL_DRIFT_ALERT",
    "mlt",
    "ace.comms.internal.kernel.mlt.evt.model_drift_alert.v1",
    "ml.event.model_drift_alert@1.0.0",
    "P1",
    "standard",
);
/// `ROLLBACK_REQUESTED`.
pub const ROLLBACK_REQUESTED: EventKind = kind(
    "ROLLBACK_REQUESTED",
    "mlt",
    "ace.comms.internal.kernel.*.evt.rollback_requested.v1",
    "ml.event.rollback_requested@1.0.0",
    "P0",
    "standard",
);
/// `ROLLBACK_COMPLETED`.
pub const ROLLBACK_COMPLETED: EventKind = kind(
    "ROLLBACK_COMPLETED",
    "mlt",
    "ace.comms.internal.kernel.*.evt.rollback_completed.v1",
    "ml.event.rollback_completed@1.0.0",
    "P0",
    "standard",
);

/// Every event of the kernel, in the contract's order.
pub const ALL: [EventKind; 10] = [
    EXPERIENCE_INGESTED,
    INSIGHT_READY,
    PLAN_PROPOSED,
    GOVERNANCE_VALIDATION,
    GOVERNANCE_APPROVED,
    GOVERNANCE_REJECTED,
    PLAN_APPLIED,
    MODEL_DRIFT_ALERT,
    ROLLBACK_REQUESTED,
    ROLLBACK_COMPLETED,
];

/// One event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Which event.
    pub kind: EventKind,
    /// Its subject (from [`EventKind::subject`]).
    pub subject: String,
    /// Its payload, valid against `kind.schema`.
    pub payload: Value,
    /// The EHI score the governance gate weighs (plans' validations only).
    pub ehi_score: Option<f64>,
    /// Whether the kernel asks for a human's approval itself.
    pub requires_approval: bool,
    /// What the message is about (a plan id, an experience id), for correlation.
    pub correlation_id: Option<String>,
}

impl Event {
    /// An event of `kind` from the kernel `kernel` (`mlt` or `governance`) with `payload`.
    pub fn new(kind: EventKind, kernel: &str, payload: Value) -> Self {
        Event {
            kind,
            subject: kind.subject(kernel),
            payload,
            ehi_score: None,
            requires_approval: false,
            correlation_id: None,
        }
    }
}

/// What became of an event [`Publisher::submit`] handed to governance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Admitted and stored.
    Accepted,
    /// Held for a human's approval under this approval id.
    Held {
        /// The approval's id.
        approval_id: String,
    },
    /// Refused by policy, with its reasons (recorded as a denial by the publisher).
    Refused {
        /// Why.
        reasons: Vec<String>,
    },
}

/// The kernel's way out. [`Publisher::publish`] states a fact as the kernel itself (validated
/// against its contract and recorded); [`Publisher::submit`] asks governance as the caller of
/// the current request (authorized, possibly held for approval, recorded).
#[async_trait]
pub trait Publisher: Send + Sync {
    /// Publishes `event` as the kernel; `Err` carries the reason it was not stored.
    async fn publish(&self, event: Event) -> Result<(), String>;
    /// Submits `event` as the caller, for governance to admit, hold or refuse; `Err` when it
    /// could not be judged at all (not a refusal).
    async fn submit(&self, event: Event) -> Result<Submitted, String>;
    /// The caller as a contract principal (`human:alice`), when there is one.
    fn caller(&self) -> Option<String>;
}
