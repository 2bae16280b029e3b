//! [`PolicyEngine`]: the one object the server holds. It runs RBAC, then Rego, then the EHI
//! gate, and combines them into a single [`Decision`] with every reason: an RBAC denial stops
//! there (Rego never sees a request RBAC refused); a Rego denial stops there; otherwise Rego's
//! and EHI's approval requests are merged. Every decision is logged with the principal, action
//! and subject, and counted in [`PolicyCounters`] — plain atomics the server exports as
//! `ace_comms_policy_denials_total` and friends.
//!
//! The engine also holds the [`Environments`] of subjects (`environments.yaml` beside
//! `rbac.yaml`; optional in a policy directory, shipped empty) that decide the Rego input's
//! `target.environment`, so the environment a rule compares is the server's where it knows it.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ace_envelope::Envelope;
use serde_json::json;

use crate::decision::{Action, Decision};
use crate::ehi::{EhiConfig, EhiGate};
use crate::environments::{EMBEDDED_ENVIRONMENTS, ENVIRONMENTS_FILE, Environments};
use crate::error::PolicyError;
use crate::input::PolicyInput;
use crate::principal::Principal;
use crate::rbac::Rbac;
use crate::receive::can_receive;
use crate::rego::{RegoPolicy, rego_files};

/// The RBAC file inside a policy directory.
pub const RBAC_FILE: &str = "rbac.yaml";

/// The repository's `policies/rbac.yaml`, compiled in: [`PolicyEngine::embedded`] serves from
/// any working directory without a policy directory on disk.
pub const EMBEDDED_RBAC: &str = include_str!("../../../policies/rbac.yaml");

/// The repository's `policies/*.rego`, compiled in, as `(name, text)`.
pub const EMBEDDED_REGO: &[(&str, &str)] = &[(
    "policies/ace-comms.rego",
    include_str!("../../../policies/ace-comms.rego"),
)];

/// `dir/environments.yaml` when it exists ([`PolicyEngine::load`] reads it; a reload hashes it).
pub fn environments_file(dir: &Path) -> Option<std::path::PathBuf> {
    let path = dir.join(ENVIRONMENTS_FILE);
    path.exists().then_some(path)
}

/// Decision counters.
#[derive(Debug, Default)]
pub struct PolicyCounters {
    /// Requests allowed.
    pub allowed: AtomicU64,
    /// Requests denied (`ace_comms_policy_denials_total`).
    pub denied: AtomicU64,
    /// Requests held for approval.
    pub held: AtomicU64,
    /// Deliveries refused by [`PolicyEngine::can_receive`].
    pub receive_denied: AtomicU64,
}

/// RBAC -> Rego -> EHI, as one decision.
#[derive(Debug)]
pub struct PolicyEngine {
    rbac: Rbac,
    rego: Option<RegoPolicy>,
    ehi: EhiGate,
    environments: Environments,
    counters: PolicyCounters,
}

impl PolicyEngine {
    /// An engine from its parts; without Rego only RBAC and EHI decide. No subject has a
    /// configured environment ([`Self::with_environments`] sets them).
    pub fn new(rbac: Rbac, rego: Option<RegoPolicy>, ehi: EhiGate) -> Self {
        PolicyEngine {
            rbac,
            rego,
            ehi,
            environments: Environments::default(),
            counters: PolicyCounters::default(),
        }
    }

    /// Decides `target.environment` with `environments`.
    pub fn with_environments(mut self, environments: Environments) -> Self {
        self.environments = environments;
        self
    }

    /// Loads `dir/rbac.yaml`, every `dir/*.rego` (none is fine: then Rego is skipped) and
    /// `dir/environments.yaml` when present. The policies see `data.ehi_threshold` = the
    /// configured default threshold.
    pub fn load(dir: &Path, ehi: EhiConfig) -> Result<Self, PolicyError> {
        let rbac = Rbac::load(&dir.join(RBAC_FILE))?;
        let data = json!({ "ehi_threshold": ehi.default_threshold });
        let rego = if rego_files(dir)?.is_empty() {
            None
        } else {
            Some(RegoPolicy::load_dir(dir, data)?)
        };
        let environments = match environments_file(dir) {
            Some(path) => Environments::load(&path)?,
            None => Environments::default(),
        };
        Ok(Self::new(rbac, rego, EhiGate::new(ehi)?).with_environments(environments))
    }

    /// The shipped policies ([`EMBEDDED_RBAC`], [`EMBEDDED_REGO`] and
    /// [`EMBEDDED_ENVIRONMENTS`]) with `ehi`.
    pub fn embedded(ehi: EhiConfig) -> Result<Self, PolicyError> {
        let rbac = Rbac::from_yaml(EMBEDDED_RBAC, "policies/rbac.yaml (embedded)")?;
        let data = json!({ "ehi_threshold": ehi.default_threshold });
        let sources = EMBEDDED_REGO
            .iter()
            .map(|(name, text)| ((*name).to_owned(), (*text).to_owned()))
            .collect();
        let rego = RegoPolicy::from_sources(sources, data)?;
        let environments = Environments::from_yaml(
            EMBEDDED_ENVIRONMENTS,
            "policies/environments.yaml (embedded)",
        )?;
        Ok(Self::new(rbac, Some(rego), EhiGate::new(ehi)?).with_environments(environments))
    }

    /// The configured environments of subjects.
    pub fn environments(&self) -> &Environments {
        &self.environments
    }

    /// The RBAC table.
    pub fn rbac(&self) -> &Rbac {
        &self.rbac
    }

    /// The Rego policy, if any.
    pub fn rego(&self) -> Option<&RegoPolicy> {
        self.rego.as_ref()
    }

    /// The EHI gate.
    pub fn ehi(&self) -> &EhiGate {
        &self.ehi
    }

    /// The counters.
    pub fn counters(&self) -> &PolicyCounters {
        &self.counters
    }

    /// May `principal` do `action` on `subject`; `envelope` is the message of a publish.
    pub fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        subject: &str,
        envelope: Option<&Envelope>,
    ) -> Decision {
        let decision = self.decide(principal, action, subject, envelope);
        self.record(principal, action, subject, &decision);
        decision
    }

    fn decide(
        &self,
        principal: &Principal,
        action: Action,
        subject: &str,
        envelope: Option<&Envelope>,
    ) -> Decision {
        let rbac = self.rbac.authorize(principal, action, subject);
        if rbac.is_deny() {
            return rbac;
        }
        let rego = match &self.rego {
            Some(rego) => rego.evaluate(&PolicyInput::new(
                principal,
                action,
                subject,
                envelope,
                &self.environments,
            )),
            None => Decision::Allow,
        };
        if rego.is_deny() {
            return rego;
        }
        match (action, envelope) {
            (Action::Publish, Some(envelope)) => rego.and(self.ehi.evaluate(envelope)),
            _ => rego,
        }
    }

    fn record(&self, principal: &Principal, action: Action, subject: &str, decision: &Decision) {
        let (counter, verdict) = match decision {
            Decision::Allow => (&self.counters.allowed, "allow"),
            Decision::Deny { .. } => (&self.counters.denied, "deny"),
            Decision::RequireApproval { .. } => (&self.counters.held, "require_approval"),
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if decision.is_allow() {
            tracing::debug!(principal = %principal.id, action = action.as_str(), subject, "policy allow");
        } else {
            tracing::info!(
                principal = %principal.id,
                action = action.as_str(),
                subject,
                decision = verdict,
                reasons = ?decision.reasons(),
                "policy decision"
            );
        }
    }

    /// May `principal` receive `envelope` (its `rbac` permissions and label).
    pub fn can_receive(&self, principal: &Principal, envelope: &Envelope) -> Decision {
        let decision = can_receive(&self.rbac, principal, envelope);
        if decision.is_deny() {
            self.counters.receive_denied.fetch_add(1, Ordering::Relaxed);
        }
        decision
    }
}
