//! [`Kernel`]: the operations of the ML API over a [`Store`], the compiled [`Contracts`] and an
//! injected [`Publisher`] — experiences in, insights out, plans through governance, snapshots
//! and rollbacks. Transport-free: the server's HTTP adapter maps requests to these calls.
//!
//! Every write runs under one lock (`write`): the insight rules read a series and open or close
//! conditions, and plans and rollbacks read and replace the state, so two requests never
//! interleave their reads and writes.

use std::sync::Arc;

use ace_envelope::Clock;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::MltError;
use crate::config::MltConfig;
use crate::contracts::Contracts;
use crate::events::{self, Event, Publisher, Submitted};
use crate::insights::{self, Series};
use crate::state::{self, StateKind};
use crate::store::{ExperienceRecord, PlanRecord, SnapshotRecord, Store};

/// The approver named when policy alone admits a plan (no human needed).
pub const POLICY_APPROVER: &str = "kernel:governance";

/// How a held validation ended, as the approvals report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The approval's id.
    pub approval_id: String,
    /// Approved (else rejected or expired).
    pub approved: bool,
    /// Who decided, as `<type>:<id>`.
    pub decided_by: String,
    /// Their comment, or why it ended.
    pub reason: Option<String>,
}

/// The ML kernel.
pub struct Kernel {
    store: Arc<dyn Store>,
    contracts: Arc<Contracts>,
    config: MltConfig,
    clock: Arc<dyn Clock>,
    write: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kernel")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// RFC 3339 in UTC with a `Z`, as the contracts' `ISO8601` wants.
pub fn iso(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A new UID `<prefix>_<uuid v7 hex>`.
fn uid(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// `who` as a contract principal: kept when it fits `^(agent|human|service|kernel|group):…`,
/// otherwise its unfit characters replaced.
pub fn principal(who: &str) -> String {
    let (kind, id) = who.split_once(':').unwrap_or(("service", who));
    let kind = match kind {
        "agent" | "human" | "service" | "kernel" | "group" => kind,
        _ => "service",
    };
    let id: String = id
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.@-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{kind}:{}", if id.is_empty() { "unknown" } else { &id })
}

impl Kernel {
    /// A kernel over `store`, with `config` (validated by the caller) and `clock`.
    pub fn new(
        store: Arc<dyn Store>,
        config: MltConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        Ok(Kernel {
            store,
            contracts: Arc::new(Contracts::load()?),
            config,
            clock,
            write: tokio::sync::Mutex::new(()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &MltConfig {
        &self.config
    }

    /// Runs a store call off the async threads.
    async fn store<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Store) -> Result<T, MltError> + Send + 'static,
    ) -> Result<T, MltError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || call(&*store))
            .await
            .map_err(|e| MltError::store("task", e))?
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    async fn emit(&self, publisher: &dyn Publisher, event: Event) -> Result<(), MltError> {
        let name = event.kind.name;
        publisher
            .publish(event)
            .await
            .map_err(|reason| MltError::Publish {
                event: name,
                reason,
            })
    }

    /// `GET /health`.
    pub fn health(&self) -> Value {
        json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")})
    }

    /// `POST /experience`: validates, stores, publishes `EXPERIENCE_INGESTED`, then runs the
    /// insight rules over the experience's series (publishing `MLT_INSIGHT_READY` and, for a
    /// model's drift, `MODEL_DRIFT_ALERT`). A stored id answers `duplicate: true` and does
    /// nothing else.
    pub async fn submit_experience(
        &self,
        experience: Value,
        publisher: &dyn Publisher,
    ) -> Result<Value, MltError> {
        self.contracts
            .check("experience", "mlt.experience@1.0.0", &experience)?;
        let id = experience["experience_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let ts = DateTime::parse_from_rfc3339(experience["timestamp"].as_str().unwrap_or_default())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| MltError::BadRequest {
                field: "timestamp",
                reason: e.to_string(),
            })?;
        let series = Series::of(&experience);
        let _write = self.write.lock().await;
        let record = ExperienceRecord {
            experience_id: id.clone(),
            series: series.target.clone(),
            ts,
            document: experience.clone(),
        };
        if !self.store(move |s| s.insert_experience(&record)).await? {
            return Ok(json!({"experience_id": id, "duplicate": true}));
        }
        let ingested = json!({
            "experience_id": id,
            "source": experience["source"],
            "task": experience["task"],
            "ingested_at": iso(self.now()),
        });
        self.emit(
            publisher,
            Event::new(events::EXPERIENCE_INGESTED, "mlt", ingested),
        )
        .await?;
        self.run_rules(&series, &experience, publisher).await?;
        Ok(json!({"experience_id": id, "duplicate": false}))
    }

    async fn run_rules(
        &self,
        series: &Series,
        experience: &Value,
        publisher: &dyn Publisher,
    ) -> Result<(), MltError> {
        let (target, b, c) = (
            series.target.clone(),
            self.config.baseline_window,
            self.config.current_window,
        );
        let windows = self.store(move |s| s.windows(&target, b, c)).await?;
        let evaluation = insights::evaluate(&self.config, series, experience, &windows);
        for key in evaluation.clear {
            self.store(move |s| match s.open_alert(&key)? {
                Some(_) => s.set_alert(&key, None),
                None => Ok(()),
            })
            .await?;
        }
        for finding in evaluation.holding {
            if let Some(key) = finding.key.clone() {
                let open = self.store(move |s| s.open_alert(&key)).await?;
                if open.is_some() {
                    continue;
                }
            }
            self.raise(series, finding, publisher).await?;
        }
        Ok(())
    }

    async fn raise(
        &self,
        series: &Series,
        finding: insights::Finding,
        publisher: &dyn Publisher,
    ) -> Result<(), MltError> {
        let now = self.now();
        let id = uid("ins");
        let mut insight = finding.insight;
        insight["insight_id"] = json!(id);
        insight["timestamp"] = json!(iso(now));
        self.contracts
            .check("insight", "mlt.insight@1.0.0", &insight)?;
        let (doc, key, id2) = (insight.clone(), finding.key, id.clone());
        self.store(move |s| {
            s.insert_insight(&id2, now, &doc)?;
            match key {
                Some(key) => s.set_alert(&key, Some(&id2)),
                None => Ok(()),
            }
        })
        .await?;
        tracing::info!(insight = %id, kind = %insight["type"], target = %series.target, "insight raised");
        self.emit(
            publisher,
            Event::new(events::INSIGHT_READY, "mlt", json!({"insight": insight})),
        )
        .await?;
        if let Some(mut alert) = finding.drift {
            alert["model_key"] = json!(series.target);
            alert["detected_at"] = json!(iso(now));
            self.emit(
                publisher,
                Event::new(events::MODEL_DRIFT_ALERT, "mlt", alert),
            )
            .await?;
        }
        Ok(())
    }

    /// `GET /insights?since=&limit=`: `since` must be an `ISO8601`, `limit` 1..=1000 (100).
    pub async fn insights(
        &self,
        since: Option<&str>,
        limit: Option<&str>,
    ) -> Result<Vec<Value>, MltError> {
        let since = since.ok_or(MltError::BadRequest {
            field: "since",
            reason: "is required".into(),
        })?;
        if !self
            .contracts
            .is_valid("mlt.api.iso8601@1.0.0", &json!(since))
        {
            return Err(MltError::BadRequest {
                field: "since",
                reason: format!(
                    "`{since}` is not an RFC 3339 UTC timestamp (with `Z` or `+00:00`)"
                ),
            });
        }
        let since = DateTime::parse_from_rfc3339(since)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| MltError::BadRequest {
                field: "since",
                reason: e.to_string(),
            })?;
        let limit = match limit {
            None => 100,
            Some(text) => match text.parse::<usize>() {
                Ok(n @ 1..=1000) => n,
                _ => {
                    return Err(MltError::BadRequest {
                        field: "limit",
                        reason: format!("`{text}` is not an integer from 1 to 1000"),
                    });
                }
            },
        };
        self.store(move |s| s.insights_since(since, limit)).await
    }

    /// `GET /plans/{id}/status`.
    pub async fn plan_status(&self, id: &str) -> Result<Value, MltError> {
        let key = id.to_owned();
        let plan = self.store(move |s| s.plan(&key)).await?;
        plan.map(|p| status_of(&p))
            .ok_or_else(|| MltError::NotFound {
                what: "plan",
                id: id.to_owned(),
            })
    }

    /// Answers what `key` (an `Idempotency-Key` of operation `op`) was answered before.
    async fn remembered(&self, op: &str, key: Option<&str>) -> Result<Option<Value>, MltError> {
        let Some(key) = key else { return Ok(None) };
        let key = format!("{op}:{key}");
        self.store(move |s| s.remembered(&key)).await
    }

    async fn remember(&self, op: &str, key: Option<&str>, answer: &Value) -> Result<(), MltError> {
        let Some(key) = key else { return Ok(()) };
        let (key, answer) = (format!("{op}:{key}"), answer.clone());
        self.store(move |s| s.remember(&key, &answer)).await
    }

    /// `POST /plan/propose`: validates and stores the plan as pending, publishes
    /// `ADAPTATION_PLAN_PROPOSED`, then submits `GOVERNANCE_VALIDATION` as the caller with the
    /// plan's EHI score: policy admits it (approved and applied at once), holds it for a human
    /// (pending until [`Kernel::decided`]), or refuses it (rejected with the policy's reasons).
    pub async fn propose(
        &self,
        plan: Value,
        publisher: &dyn Publisher,
        idempotency_key: Option<&str>,
    ) -> Result<Value, MltError> {
        if let Some(answer) = self.remembered("propose", idempotency_key).await? {
            return Ok(answer);
        }
        self.contracts
            .check("adaptation plan", "mlt.adaptation_plan@1.0.0", &plan)?;
        let plan_id = plan["plan_id"].as_str().unwrap_or_default().to_owned();
        let _write = self.write.lock().await;
        let key = plan_id.clone();
        if let Some(existing) = self.store(move |s| s.plan(&key)).await? {
            if existing.plan != plan {
                return Err(MltError::Conflict { id: plan_id });
            }
            return Ok(status_of(&existing));
        }
        let now = self.now();
        let ehi = self
            .config
            .ehi_of(plan["risk_level"].as_str().unwrap_or("high"));
        let requires_approval = ehi >= self.config.ehi_hitl_threshold;
        let mut record = PlanRecord {
            plan_id: plan_id.clone(),
            status: "pending".into(),
            plan: plan.clone(),
            validation_id: uid("val"),
            approval_id: None,
            created_at: now,
            updated_at: now,
            decided_at: None,
        };
        self.put_plan(&record).await?;
        let proposed = json!({"plan": plan, "requires_approval": requires_approval});
        self.emit(
            publisher,
            Event::new(events::PLAN_PROPOSED, "mlt", proposed),
        )
        .await?;
        let mut validation = json!({
            "validation_id": record.validation_id,
            "target": {"kind": "adaptation_plan", "id": plan_id},
            "checks": ["policy", "ehi"],
            "requested_at": iso(now),
        });
        if let Some(caller) = publisher.caller() {
            validation["requested_by"] = json!(principal(&caller));
        }
        let mut event = Event::new(events::GOVERNANCE_VALIDATION, "governance", validation);
        event.ehi_score = Some(ehi);
        event.requires_approval = requires_approval;
        event.correlation_id = Some(plan_id.clone());
        let submitted = publisher
            .submit(event)
            .await
            .map_err(|reason| MltError::Publish {
                event: events::GOVERNANCE_VALIDATION.name,
                reason,
            })?;
        match submitted {
            Submitted::Accepted => {
                let reason = format!(
                    "allowed by policy; EHI {ehi} below the approval threshold {}",
                    self.config.ehi_hitl_threshold
                );
                self.approve(&mut record, POLICY_APPROVER, Some(reason), publisher)
                    .await?;
            }
            Submitted::Held { approval_id } => {
                tracing::info!(plan = %plan_id, approval = %approval_id, "plan held for a human");
                record.approval_id = Some(approval_id);
                self.put_plan(&record).await?;
            }
            Submitted::Refused { reasons } => {
                self.reject(&mut record, POLICY_APPROVER, reasons, publisher)
                    .await?;
            }
        }
        let answer = status_of(&record);
        self.remember("propose", idempotency_key, &answer).await?;
        Ok(answer)
    }

    async fn put_plan(&self, record: &PlanRecord) -> Result<(), MltError> {
        let record = record.clone();
        self.store(move |s| s.put_plan(&record)).await
    }

    /// A held validation was decided (the approvals' `approval_decided` event): approved
    /// plans are applied, rejected or expired ones rejected. An approval that holds no plan, or
    /// a plan no longer pending, is left alone (`Ok(false)`).
    pub async fn decided(
        &self,
        decision: Decision,
        publisher: &dyn Publisher,
    ) -> Result<bool, MltError> {
        let _write = self.write.lock().await;
        let approval = decision.approval_id.clone();
        let Some(plan_id) = self.store(move |s| s.plan_for_approval(&approval)).await? else {
            return Ok(false);
        };
        let key = plan_id.clone();
        let Some(mut record) = self.store(move |s| s.plan(&key)).await? else {
            return Ok(false);
        };
        if record.status != "pending" {
            return Ok(false);
        }
        if decision.approved {
            self.approve(
                &mut record,
                &decision.decided_by,
                decision.reason,
                publisher,
            )
            .await?;
        } else {
            let reason = decision
                .reason
                .filter(|r| !r.is_empty())
                .unwrap_or_else(|| format!("not approved by {}", decision.decided_by));
            self.reject(&mut record, &decision.decided_by, vec![reason], publisher)
                .await?;
        }
        Ok(true)
    }

    /// Records governance's decision on `record` (`approved` or `rejected`); answers its time.
    async fn settle(
        &self,
        record: &mut PlanRecord,
        status: &str,
    ) -> Result<DateTime<Utc>, MltError> {
        let now = self.now();
        record.status = status.into();
        record.updated_at = now;
        record.decided_at = Some(now);
        self.put_plan(record).await?;
        Ok(now)
    }

    async fn approve(
        &self,
        record: &mut PlanRecord,
        approver: &str,
        reason: Option<String>,
        publisher: &dyn Publisher,
    ) -> Result<(), MltError> {
        let now = self.settle(record, "approved").await?;
        let mut approved = json!({
            "validation_id": record.validation_id,
            "target": {"kind": "adaptation_plan", "id": record.plan_id},
            "approver": principal(approver),
            "decided_at": iso(now),
        });
        if let Some(reason) = reason.filter(|r| !r.is_empty()) {
            approved["reason"] = json!(reason.chars().take(2000).collect::<String>());
        }
        self.emit(
            publisher,
            Event::new(events::GOVERNANCE_APPROVED, "governance", approved),
        )
        .await?;
        self.apply(record, publisher).await
    }

    async fn reject(
        &self,
        record: &mut PlanRecord,
        approver: &str,
        reasons: Vec<String>,
        publisher: &dyn Publisher,
    ) -> Result<(), MltError> {
        let now = self.settle(record, "rejected").await?;
        let reasons: Vec<String> = reasons
            .into_iter()
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(2000).collect())
            .collect();
        let reasons = if reasons.is_empty() {
            vec!["refused by policy".to_owned()]
        } else {
            reasons
        };
        let rejected = json!({
            "validation_id": record.validation_id,
            "target": {"kind": "adaptation_plan", "id": record.plan_id},
            "approver": principal(approver),
            "reasons": reasons,
            "decided_at": iso(now),
        });
        self.emit(
            publisher,
            Event::new(events::GOVERNANCE_REJECTED, "governance", rejected),
        )
        .await
    }

    /// Applies an approved plan: snapshots the MLT state first (the rollback point), applies
    /// every action, marks the plan applied and publishes `MLT_PLAN_APPLIED`.
    async fn apply(
        &self,
        record: &mut PlanRecord,
        publisher: &dyn Publisher,
    ) -> Result<(), MltError> {
        let before = self.snapshot(StateKind::Mlt).await?;
        let mut mlt = self.current(StateKind::Mlt).await?;
        let mut governance = self.current(StateKind::Governance).await?;
        let actions = record.plan["actions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for action in &actions {
            let what = state::apply_action(action, &mut mlt, &mut governance, &record.plan_id);
            tracing::info!(plan = %record.plan_id, "{what}");
        }
        if let Some(applied) = mlt["applied_plans"].as_array_mut() {
            applied.push(json!(record.plan_id));
        }
        self.store(move |s| {
            s.put_state("mlt", &mlt)?;
            s.put_state("governance", &governance)
        })
        .await?;
        let now = self.now();
        record.status = "applied".into();
        record.updated_at = now;
        self.put_plan(record).await?;
        let applied = json!({
            "plan_id": record.plan_id,
            "snapshot_before": before.snapshot_id,
            "applied_actions": actions.len(),
            "applied_at": iso(now),
        });
        self.emit(publisher, Event::new(events::PLAN_APPLIED, "mlt", applied))
            .await
    }

    /// The current state of `kind` (its initial state before anything was applied).
    pub async fn current(&self, kind: StateKind) -> Result<Value, MltError> {
        let found = self.store(move |s| s.state(kind.as_str())).await?;
        Ok(found.unwrap_or_else(|| kind.initial(&self.config)))
    }

    /// Snapshots the current state of `kind`; the same state snapshotted twice is one snapshot.
    async fn snapshot(&self, kind: StateKind) -> Result<SnapshotRecord, MltError> {
        let state = self.current(kind).await?;
        let hash = state::state_hash(&state);
        let h = hash.clone();
        if let Some(existing) = self
            .store(move |s| s.snapshot_by_hash(kind.as_str(), &h))
            .await?
        {
            return Ok(existing);
        }
        let now = self.now();
        let id = uid("snap");
        let document = state::snapshot_document(kind, &id, &state, &iso(now));
        self.contracts
            .check("snapshot", kind.snapshot_schema(), &document)?;
        let record = SnapshotRecord {
            snapshot_id: id.clone(),
            kind: kind.as_str().to_owned(),
            state_hash: hash,
            uri: format!("mlt://snapshots/{id}"),
            document,
            created_at: now,
        };
        let stored = record.clone();
        self.store(move |s| s.insert_snapshot(&stored)).await?;
        Ok(record)
    }

    /// `POST /snapshot/export`.
    pub async fn export_snapshot(&self, request: Value) -> Result<Value, MltError> {
        let schema = "mlt.api.snapshot_export_request@1.0.0";
        self.contracts
            .check("snapshot export request", schema, &request)?;
        let kind = StateKind::parse(request["kind"].as_str().unwrap_or_default()).ok_or(
            MltError::BadRequest {
                field: "kind",
                reason: "is not governance or mlt".into(),
            },
        )?;
        let _write = self.write.lock().await;
        let record = self.snapshot(kind).await?;
        Ok(
            json!({"snapshot_id": record.snapshot_id, "uri": record.uri, "state_hash": record.state_hash}),
        )
    }

    /// The stored snapshot `id`, its hash checked against its state (`Err` text when not).
    pub async fn verified_snapshot(
        &self,
        id: &str,
    ) -> Result<Option<(SnapshotRecord, Result<Value, String>)>, MltError> {
        let key = id.to_owned();
        let Some(record) = self.store(move |s| s.snapshot(&key)).await? else {
            return Ok(None);
        };
        let kind = StateKind::parse(&record.kind).unwrap_or(StateKind::Mlt);
        let state = kind.state_of(&record.document);
        let recomputed = state::state_hash(&state);
        let verdict = if recomputed == record.state_hash
            && record.document["state_hash"] == json!(recomputed)
        {
            Ok(state)
        } else {
            Err(format!(
                "snapshot `{}` does not verify: recorded {}, recomputed {recomputed}",
                record.snapshot_id, record.state_hash
            ))
        };
        Ok(Some((record, verdict)))
    }

    /// `POST /rollback`: validates, publishes `ROLLBACK_REQUESTED`, restores (a snapshot only
    /// after its hash verifies; a model by setting its deployed version) and publishes
    /// `ROLLBACK_COMPLETED`, `completed` with the restored state's hash or `failed` with why.
    pub async fn rollback(
        &self,
        request: Value,
        publisher: &dyn Publisher,
        idempotency_key: Option<&str>,
    ) -> Result<Value, MltError> {
        if let Some(answer) = self.remembered("rollback", idempotency_key).await? {
            return Ok(answer);
        }
        self.contracts.check(
            "rollback request",
            "mlt.api.rollback_request@1.0.0",
            &request,
        )?;
        let target = request["target"].as_str().unwrap_or_default().to_owned();
        let kernel = if target == "governance" {
            "governance"
        } else {
            "mlt"
        };
        let _write = self.write.lock().await;
        let snapshot = match request["to_snapshot"]
            .as_str()
            .filter(|_| target != "model")
        {
            Some(id) => match self.verified_snapshot(id).await? {
                Some((record, verdict)) if record.kind == target => Some((record, verdict)),
                _ => {
                    return Err(MltError::NotFound {
                        what: "snapshot",
                        id: format!("{target}:{id}"),
                    });
                }
            },
            None => None,
        };
        let rollback_id = uid("rb");
        let mut requested = json!({
            "rollback_id": rollback_id,
            "target": target,
            "reason": request["reason"],
            "requested_by": principal(&publisher.caller().unwrap_or_else(|| "kernel:mlt".into())),
            "requested_at": iso(self.now()),
        });
        for field in ["to_snapshot", "model_key", "to_version"] {
            if let Some(v) = request
                .get(field)
                .filter(|_| (field == "to_snapshot") != (target == "model"))
            {
                requested[field] = v.clone();
            }
        }
        self.emit(
            publisher,
            Event::new(events::ROLLBACK_REQUESTED, kernel, requested),
        )
        .await?;
        let mut completed = json!({"rollback_id": rollback_id, "target": target});
        match (snapshot, target.as_str()) {
            (Some((record, Ok(state))), _) => {
                let (name, restored) = (record.kind.clone(), state.clone());
                self.store(move |s| s.put_state(&name, &restored)).await?;
                completed["status"] = json!("completed");
                completed["restored_snapshot"] = json!(record.snapshot_id);
                completed["state_hash"] = json!(state::state_hash(&state));
            }
            (Some((_, Err(why))), _) => {
                tracing::warn!(rollback = %rollback_id, "{why}");
                completed["status"] = json!("failed");
                completed["error"] = json!(why);
            }
            (None, _) => {
                let mut mlt = self.current(StateKind::Mlt).await?;
                let model = request["model_key"].as_str().unwrap_or_default().to_owned();
                mlt["active_models"][model] = request["to_version"].clone();
                let saved = mlt.clone();
                self.store(move |s| s.put_state("mlt", &saved)).await?;
                completed["status"] = json!("completed");
                completed["state_hash"] = json!(state::state_hash(&mlt));
            }
        }
        completed["completed_at"] = json!(iso(self.now()));
        self.emit(
            publisher,
            Event::new(events::ROLLBACK_COMPLETED, kernel, completed),
        )
        .await?;
        let answer = json!({"rollback_id": rollback_id, "status": "accepted"});
        self.remember("rollback", idempotency_key, &answer).await?;
        Ok(answer)
    }
}

/// The `PlanStatus` answer of a plan.
fn status_of(plan: &PlanRecord) -> Value {
    json!({"plan_id": plan.plan_id, "status": plan.status, "updated_at": iso(plan.updated_at)})
}
