//! Step 5 of the pipeline: messages held for a human's approval (the human-in-the-loop workflow),
//! from the hold to the decision or the expiry.
//!
//! - [`ApprovalStore`]: where pending approvals live (object-safe, async, one atomic
//!   [`ApprovalStore::settle`] so two deciders never both win). [`RedbApprovalStore`] keeps them
//!   in one redb file under the data directory, so a pending approval survives a restart;
//!   [`MemoryApprovalStore`] is for tests. A [`Core`] without a store refuses every hold
//!   (`FORBIDDEN`, "approval required but approvals are not enabled"): nothing passes silently.
//! - `Core::hold` (called by [`Core::publish`] when the authorizer answers `RequireApproval`)
//!   stores the whole envelope, records a `held` ledger entry, publishes
//!   `ace.comms.system.hitl.{id}.evt.approval_requested.v1` (a summary, not the held payload)
//!   and answers `PENDING_APPROVAL` with the approval id.
//! - [`Core::decide_approval`] (authorized as [`Action::Decide`]): approving sets
//!   `governance.approval_id` and appends the held envelope as it is (it was authorized already;
//!   running the policy again would hold it again), recording `approved` then `accepted`;
//!   rejecting records `rejected`, moves the envelope to the dead letters and answers its
//!   requester on `headers["reply_to"]` when it named one. The dead letter is the bus's kind
//!   (`comms.dlq.dead_letter@1.1.0` on `ace.comms.system.dlq.{stream}.evt.dead_letter.v1` of the
//!   stream its subject belongs to, [`HITL_DEAD_LETTER_SUBJECT`] when none captures it; payload
//!   `original`, `ace-dlq-*` headers) with `reason` `rejected` or `expired`, `approval_id` and the
//!   decider's comment as `detail` instead of a stream sequence (it was never stored), plus the
//!   header `ace-dlq-approval-id`, by which the ledger's dead-letter consumer knows to leave it
//!   alone; this module records its `dead_lettered` entry, with the approval id, whether a
//!   stream keeps the letter or not. The requester's answer is the decision event's payload.
//! - [`Core::expire_approvals`] (the server's sweep, on the injected clock) treats every pending
//!   approval past `expires_at` like a rejection, recorded as `expired`. `expires_at` is the
//!   hold time plus the configured ttl, or the message's own expiry (`ttl_ms`, `deadline`) when
//!   that comes first; deciding expires the approval first when it is due, so a decision never
//!   lands after the expiry.
//! - [`Core::approvals`] and [`Core::approval`] read them, authorized as a subscription to
//!   `ace.comms.system.hitl.>` (who may watch approvals may list them).
//! - [`Core::purge_decided_approvals`] (the same sweep) forgets approvals decided or expired
//!   longer ago than the retention ([`DEFAULT_DECIDED_RETENTION`], a week, by default): a
//!   decided approval still holds its whole envelope, and the store would otherwise grow with
//!   every hold and slow every sweep. Pending ones are never purged. What was decided stays in
//!   the ledger (`held`, `approved`/`rejected`/`expired`, `accepted` or `dead_lettered`) and the
//!   message itself in its stream or the dead letters; only the approval record goes.
//!
//! Every hold publishes `ace.comms.system.hitl.{id}.evt.approval_requested.v1`
//! (`comms.hitl.approval_requested@1.1.0`) and every decision — approved, rejected, expired —
//! `ace.comms.system.hitl.{id}.evt.approval_decided.v1` (`comms.hitl.approval_decided@1.1.0`,
//! `decision` saying which), the catalogue's subjects, through [`Core::publish`] as the server
//! itself ([`RequestContext::internal`]), so the contract step checks them. Principals are
//! written `<type>:<id>`; a comment longer than the contract's 2,000 characters is cut there (the
//! approval and the ledger keep it whole).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use ace_envelope::api::http::{
    Approval, ApprovalDecision, ApprovalStatus, Decided, Pending, Requester, Verdict,
};
use ace_envelope::api::system::{
    self, APPROVAL_DECIDED_NAME, APPROVAL_REQUESTED_NAME, ApprovalDecided, ApprovalOutcome,
    ApprovalRequested, DeadLetterReason,
};
use ace_envelope::{Envelope, Kind, SubjectPattern, uuid_v7_at};
use ace_ledger::{EntryKind, NewEntry};
use chrono::{DateTime, Utc};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde_json::json;

use crate::context::{Principal, RequestContext, SYSTEM_PRINCIPAL_ID, system_principal};
use crate::core::{Accepted, Core};
use crate::error::CoreError;
use crate::governance::Action;
use crate::pipeline;

/// How long a held message waits for a decision by default: a day.
pub const DEFAULT_APPROVAL_TTL: Duration = Duration::from_secs(24 * 3_600);

/// How long a decided (or expired) approval stays readable by default: a week.
pub const DEFAULT_DECIDED_RETENTION: Duration = Duration::from_secs(7 * 24 * 3_600);

/// The subject pattern of every approval event; reading approvals is authorized as a
/// subscription to it.
pub const APPROVAL_EVENTS: &str = "ace.comms.system.hitl.>";

/// Where a held message goes when no stream captures its subject.
pub const HITL_DEAD_LETTER_SUBJECT: &str = "ace.comms.system.dlq.hitl.evt.dead_letter.v1";

/// The reason an approval request carries when the policy gave none (the contract wants one).
pub const UNSTATED_REASON: &str = "approval required by policy";

/// Longest decision comment accepted, bytes.
pub const MAX_COMMENT_BYTES: usize = 4_096;

/// The reason a hold is refused on a core without an approvals store.
pub const APPROVALS_DISABLED: &str = "approval required but approvals are not enabled";

const APPROVALS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("approvals");

pub use ace_envelope::api::system::approval_subject;

/// Why an approvals store failed (its own fault, not the caller's).
#[derive(Debug, thiserror::Error)]
#[error("approval store: {op}: {reason}")]
pub struct ApprovalStoreError {
    /// What was being done.
    pub op: &'static str,
    /// What the storage said.
    pub reason: String,
}

impl ApprovalStoreError {
    fn new(op: &'static str, err: impl std::fmt::Display) -> Self {
        ApprovalStoreError {
            op,
            reason: err.to_string(),
        }
    }
}

/// What [`ApprovalStore::settle`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// The approval was pending and now holds the decision.
    Done(Approval),
    /// No approval has that id.
    NotFound,
    /// It was decided already (or expired): unchanged, as it stands.
    NotPending(Approval),
}

/// The decision [`ApprovalStore::settle`] writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The new status (not `pending`).
    pub status: ApprovalStatus,
    /// Who decided.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// The decider's comment.
    pub comment: Option<String>,
}

pub(crate) fn apply(approval: &mut Approval, settlement: Settlement) {
    approval.status = settlement.status;
    approval.decided_by = Some(settlement.by);
    approval.decided_at = Some(settlement.at);
    approval.comment = settlement.comment;
}

/// Where approvals live. `settle` must check `pending` and write in one atomic step.
#[async_trait::async_trait]
pub trait ApprovalStore: Send + Sync + std::fmt::Debug {
    /// Stores `approval` under its id, replacing what was there.
    async fn put(&self, approval: Approval) -> Result<(), ApprovalStoreError>;
    /// The approval `id`, `None` when there is none.
    async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalStoreError>;
    /// Every approval of `status` (all when `None`), oldest first.
    async fn list(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, ApprovalStoreError>;
    /// Writes `settlement` on approval `id` if it is pending.
    async fn settle(&self, id: &str, settlement: Settlement)
    -> Result<Settled, ApprovalStoreError>;
    /// Removes every approval that is no longer pending and was decided before `cutoff`;
    /// returns their ids. A pending approval is never removed, however old.
    async fn purge_decided(&self, cutoff: DateTime<Utc>)
    -> Result<Vec<String>, ApprovalStoreError>;
}

/// Whether `approval` is settled and was settled before `cutoff`.
fn decided_before(approval: &Approval, cutoff: DateTime<Utc>) -> bool {
    approval.status != ApprovalStatus::Pending && approval.decided_at.is_some_and(|at| at < cutoff)
}

/// Approvals in memory (lost at exit): for tests.
#[derive(Debug, Default)]
pub struct MemoryApprovalStore {
    approvals: Mutex<BTreeMap<String, Approval>>,
}

impl MemoryApprovalStore {
    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Approval>> {
        // Each update is one insert, so a poisoned table is still consistent.
        self.approvals
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl ApprovalStore for MemoryApprovalStore {
    async fn put(&self, approval: Approval) -> Result<(), ApprovalStoreError> {
        self.table().insert(approval.approval_id.clone(), approval);
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalStoreError> {
        Ok(self.table().get(id).cloned())
    }

    async fn list(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, ApprovalStoreError> {
        Ok(self
            .table()
            .values()
            .filter(|a| status.is_none_or(|s| a.status == s))
            .cloned()
            .collect())
    }

    async fn settle(
        &self,
        id: &str,
        settlement: Settlement,
    ) -> Result<Settled, ApprovalStoreError> {
        let mut table = self.table();
        Ok(match table.get_mut(id) {
            None => Settled::NotFound,
            Some(a) if a.status != ApprovalStatus::Pending => Settled::NotPending(a.clone()),
            Some(a) => {
                apply(a, settlement);
                Settled::Done(a.clone())
            }
        })
    }

    async fn purge_decided(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<String>, ApprovalStoreError> {
        let mut table = self.table();
        let mut purged = Vec::new();
        table.retain(|id, a| {
            let keep = !decided_before(a, cutoff);
            if !keep {
                purged.push(id.clone());
            }
            keep
        });
        Ok(purged)
    }
}

/// Approvals in one redb file (each write one durable transaction), surviving restarts.
#[derive(Debug, Clone)]
pub struct RedbApprovalStore {
    db: Arc<Database>,
}

impl RedbApprovalStore {
    /// Opens (or creates) the store file at `path`.
    pub fn open(path: &Path) -> Result<Self, ApprovalStoreError> {
        let err = |e: &dyn std::fmt::Display| ApprovalStoreError::new("open", e);
        let db = Database::create(path).map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        txn.open_table(APPROVALS).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        Ok(RedbApprovalStore { db: Arc::new(db) })
    }

    fn decode(bytes: &[u8]) -> Result<Approval, ApprovalStoreError> {
        serde_json::from_slice(bytes).map_err(|e| ApprovalStoreError::new("decode", e))
    }

    fn write(db: &Database, approval: &Approval) -> Result<(), ApprovalStoreError> {
        let err = |e: &dyn std::fmt::Display| ApprovalStoreError::new("put", e);
        let bytes = serde_json::to_vec(approval).map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        {
            let mut table = txn.open_table(APPROVALS).map_err(|e| err(&e))?;
            table
                .insert(approval.approval_id.as_str(), bytes.as_slice())
                .map_err(|e| err(&e))?;
        }
        txn.commit().map_err(|e| err(&e))
    }

    fn read(db: &Database, id: &str) -> Result<Option<Approval>, ApprovalStoreError> {
        let err = |e: &dyn std::fmt::Display| ApprovalStoreError::new("get", e);
        let txn = db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(APPROVALS).map_err(|e| err(&e))?;
        let found = table.get(id).map_err(|e| err(&e))?;
        found.map(|bytes| Self::decode(bytes.value())).transpose()
    }

    fn scan(
        db: &Database,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, ApprovalStoreError> {
        let err = |e: &dyn std::fmt::Display| ApprovalStoreError::new("list", e);
        let txn = db.begin_read().map_err(|e| err(&e))?;
        let table = txn.open_table(APPROVALS).map_err(|e| err(&e))?;
        let mut found = Vec::new();
        for row in table.iter().map_err(|e| err(&e))? {
            let (_, bytes) = row.map_err(|e| err(&e))?;
            let approval = Self::decode(bytes.value())?;
            if status.is_none_or(|s| approval.status == s) {
                found.push(approval);
            }
        }
        Ok(found)
    }

    fn decide(
        db: &Database,
        id: &str,
        settlement: Settlement,
    ) -> Result<Settled, ApprovalStoreError> {
        let err = |e: &dyn std::fmt::Display| ApprovalStoreError::new("settle", e);
        let txn = db.begin_write().map_err(|e| err(&e))?;
        let settled = {
            let mut table = txn.open_table(APPROVALS).map_err(|e| err(&e))?;
            let current = match table.get(id).map_err(|e| err(&e))? {
                Some(bytes) => Some(Self::decode(bytes.value())?),
                None => None,
            };
            match current {
                None => Settled::NotFound,
                Some(a) if a.status != ApprovalStatus::Pending => Settled::NotPending(a),
                Some(mut a) => {
                    apply(&mut a, settlement);
                    let bytes = serde_json::to_vec(&a).map_err(|e| err(&e))?;
                    table.insert(id, bytes.as_slice()).map_err(|e| err(&e))?;
                    Settled::Done(a)
                }
            }
        };
        match settled {
            Settled::Done(_) => txn.commit().map_err(|e| err(&e))?,
            _ => txn.abort().map_err(|e| err(&e))?,
        }
        Ok(settled)
    }

    /// One write transaction: the ids to go are collected, then removed.
    fn purge(db: &Database, cutoff: DateTime<Utc>) -> Result<Vec<String>, ApprovalStoreError> {
        let err = |e: &dyn std::fmt::Display| ApprovalStoreError::new("purge", e);
        let txn = db.begin_write().map_err(|e| err(&e))?;
        let mut purged = Vec::new();
        {
            let mut table = txn.open_table(APPROVALS).map_err(|e| err(&e))?;
            for row in table.iter().map_err(|e| err(&e))? {
                let (id, bytes) = row.map_err(|e| err(&e))?;
                if decided_before(&Self::decode(bytes.value())?, cutoff) {
                    purged.push(id.value().to_owned());
                }
            }
            for id in &purged {
                table.remove(id.as_str()).map_err(|e| err(&e))?;
            }
        }
        if purged.is_empty() {
            txn.abort().map_err(|e| err(&e))?;
        } else {
            txn.commit().map_err(|e| err(&e))?;
        }
        Ok(purged)
    }
}

/// Runs a blocking storage call off the async workers.
async fn blocking<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, ApprovalStoreError> + Send + 'static,
) -> Result<T, ApprovalStoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApprovalStoreError::new(op, e))?
}

#[async_trait::async_trait]
impl ApprovalStore for RedbApprovalStore {
    async fn put(&self, approval: Approval) -> Result<(), ApprovalStoreError> {
        let db = self.db.clone();
        blocking("put", move || Self::write(&db, &approval)).await
    }

    async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalStoreError> {
        let (db, id) = (self.db.clone(), id.to_owned());
        blocking("get", move || Self::read(&db, &id)).await
    }

    async fn list(
        &self,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, ApprovalStoreError> {
        let db = self.db.clone();
        blocking("list", move || Self::scan(&db, status)).await
    }

    async fn settle(
        &self,
        id: &str,
        settlement: Settlement,
    ) -> Result<Settled, ApprovalStoreError> {
        let (db, id) = (self.db.clone(), id.to_owned());
        blocking("settle", move || Self::decide(&db, &id, settlement)).await
    }

    async fn purge_decided(
        &self,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<String>, ApprovalStoreError> {
        let db = self.db.clone();
        blocking("purge", move || Self::purge(&db, cutoff)).await
    }
}

/// The approvals store of a core, how long a hold lasts and how long a decided one is kept.
#[derive(Debug, Clone)]
pub(crate) struct Approvals {
    pub(crate) store: Option<Arc<dyn ApprovalStore>>,
    pub(crate) ttl: Duration,
    pub(crate) retain_decided: Duration,
}

impl Default for Approvals {
    fn default() -> Self {
        Approvals {
            store: None,
            ttl: DEFAULT_APPROVAL_TTL,
            retain_decided: DEFAULT_DECIDED_RETENTION,
        }
    }
}

/// The payload of `approval_requested`: a summary, never the held payload. `principal` is who
/// published the held message.
fn requested(principal: &Principal, approval: &Approval) -> ApprovalRequested {
    let mut reasons: Vec<String> = approval
        .reasons
        .iter()
        .filter(|r| !r.is_empty())
        .map(|r| system::clip(r, system::MAX_REASON_CHARS))
        .collect();
    if reasons.is_empty() {
        reasons.push(UNSTATED_REASON.to_owned());
    }
    ApprovalRequested {
        approval_id: approval.approval_id.clone(),
        message_id: approval.envelope.id.to_string(),
        subject: approval.envelope.subject.clone(),
        name: approval.envelope.name.clone(),
        requested_by: system::principal_ref(principal.kind, &principal.id),
        reasons,
        expires_at: approval.expires_at,
    }
}

/// The payload of `approval_decided` (and of the requester's answer): `principal` decided, the
/// server itself for an expiry.
fn decided(
    principal: &Principal,
    approval: &Approval,
    outcome: ApprovalOutcome,
) -> ApprovalDecided {
    ApprovalDecided {
        approval_id: approval.approval_id.clone(),
        message_id: approval.envelope.id.to_string(),
        decision: outcome,
        decided_by: Some(system::principal_ref(principal.kind, &principal.id)),
        reason: approval
            .comment
            .as_deref()
            .map(|c| system::clip(c, system::MAX_DETAIL_CHARS)),
        decided_at: approval.decided_at.unwrap_or(approval.created_at),
    }
}

/// A ledger entry about the held message of `approval`.
fn entry(kind: EntryKind, actor: &str, approval: &Approval, decision: &str) -> NewEntry {
    NewEntry::for_envelope(kind, actor, &approval.envelope)
        .decision(decision)
        .details(json!({
            "approval_id": approval.approval_id,
            "requested_by": approval.requested_by.id,
            "reasons": approval.reasons,
            "comment": approval.comment,
        }))
}

impl Core {
    /// The same core holding messages in `store` for at most `ttl` before they expire.
    pub fn with_approvals(mut self, store: Arc<dyn ApprovalStore>, ttl: Duration) -> Self {
        self.approvals.store = Some(store);
        self.approvals.ttl = ttl;
        self
    }

    /// The same core keeping decided and expired approvals readable for `retain` after their
    /// decision ([`DEFAULT_DECIDED_RETENTION`] otherwise); see [`Core::purge_decided_approvals`].
    pub fn with_decided_retention(mut self, retain: Duration) -> Self {
        self.approvals.retain_decided = retain;
        self
    }

    /// Holds `envelope` for approval and answers the error the publisher gets:
    /// `PENDING_APPROVAL` once it is stored, `FORBIDDEN` without an approvals store.
    pub(crate) async fn hold(
        &self,
        principal: &Principal,
        envelope: Envelope,
        reasons: Vec<String>,
    ) -> CoreError {
        let Some(store) = &self.approvals.store else {
            let mut all = vec![APPROVALS_DISABLED.to_owned()];
            all.extend(reasons);
            let entry = pipeline::entry(
                EntryKind::Denied,
                principal,
                &envelope,
                format!("deny: {}", all.join("; ")),
                serde_json::json!({ "reasons": all }),
            );
            pipeline::record(&*self.hooks.recorder, vec![entry]).await;
            return CoreError::Forbidden {
                principal: principal.id.clone(),
                action: Action::Publish(&envelope.subject).to_string(),
                reasons: all,
            };
        };
        let now = self.clock.now();
        let ttl = chrono::Duration::from_std(self.approvals.ttl).unwrap_or(chrono::TimeDelta::MAX);
        let until = now
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // A message that expires sooner (`ttl_ms`, `deadline`) cannot wait longer than itself.
        let expires_at = envelope.expires_at().map_or(until, |own| own.min(until));
        let approval = Approval {
            approval_id: uuid_v7_at(now).to_string(),
            status: ApprovalStatus::Pending,
            requested_by: Requester {
                id: principal.id.clone(),
                roles: principal.roles.clone(),
            },
            reasons,
            created_at: now,
            expires_at,
            decided_by: None,
            decided_at: None,
            comment: None,
            envelope,
        };
        if let Err(err) = store.put(approval.clone()).await {
            return err.into();
        }
        let decision = format!("hold: {}", approval.reasons.join("; "));
        let held = entry(EntryKind::Held, &principal.id, &approval, &decision);
        pipeline::record(&*self.hooks.recorder, vec![held]).await;
        let summary = serde_json::to_value(requested(principal, &approval));
        let schema = system::APPROVAL_REQUESTED_SCHEMA;
        self.announce_approval(&approval, APPROVAL_REQUESTED_NAME, schema, summary)
            .await;
        CoreError::PendingApproval {
            id: approval.envelope.id,
            approval_id: approval.approval_id,
        }
    }

    /// Approves or rejects the pending approval `id` (see the module docs). Only a pending
    /// approval can be decided: another answers `CONFLICT` naming its status; an unknown id
    /// `NOT_FOUND`.
    pub async fn decide_approval(
        &self,
        ctx: &RequestContext,
        id: &str,
        verdict: Verdict,
        comment: Option<String>,
    ) -> Result<Decided, CoreError> {
        let principal = self.allow(ctx, Action::Decide(id)).await?;
        if let Some(c) = &comment
            && c.len() > MAX_COMMENT_BYTES
        {
            return Err(CoreError::InvalidRequest {
                field: "comment",
                reason: format!("is {} bytes, more than {MAX_COMMENT_BYTES}", c.len()),
            });
        }
        let status = match verdict {
            Verdict::Approve => ApprovalStatus::Approved,
            Verdict::Reject => ApprovalStatus::Rejected,
        };
        // One past its time is expired, not decided (the sweep may not have run yet).
        self.expire_if_due(id).await;
        self.refuse_unseen_approval(ctx, &principal, id).await?;
        self.refuse_own_approval(&principal, id).await?;
        let approval = self.settle(id, status, &principal.id, comment).await?;
        match verdict {
            Verdict::Approve => self.release(&principal, approval).await,
            Verdict::Reject => {
                self.refuse(&principal, &approval).await;
                Ok(Decided {
                    approval,
                    accepted: None,
                })
            }
        }
    }

    /// Expires every pending approval past its `expires_at` on the injected clock, each like a
    /// rejection by the server (ledger `expired`, dead letter, requester answered,
    /// `…evt.expired.v1`); returns the approvals that expired. Failures are logged, not
    /// returned: the next sweep tries again.
    pub async fn expire_approvals(&self) -> Vec<Approval> {
        let Some(store) = &self.approvals.store else {
            return Vec::new();
        };
        let now = self.clock.now();
        let due = match store.list(Some(ApprovalStatus::Pending)).await {
            Ok(pending) => pending.into_iter().filter(|a| a.expires_at <= now),
            Err(err) => {
                tracing::error!(error = %err, "listing pending approvals to expire failed");
                return Vec::new();
            }
        };
        let mut expired = Vec::new();
        for approval in due {
            expired.extend(self.expire(&approval.approval_id).await);
        }
        expired
    }

    /// Forgets the approvals decided or expired longer ago than the retention, on the injected
    /// clock; returns how many went. Failures are logged, not returned: the next sweep tries
    /// again. The ledger keeps their decisions; `GET /api/v1/approvals/{id}` answers 404 after.
    pub async fn purge_decided_approvals(&self) -> usize {
        let Some(store) = &self.approvals.store else {
            return 0;
        };
        let retain = chrono::Duration::from_std(self.approvals.retain_decided)
            .unwrap_or(chrono::TimeDelta::MAX);
        let Some(cutoff) = self.clock.now().checked_sub_signed(retain) else {
            return 0; // a retention reaching before the epoch keeps everything
        };
        match store.purge_decided(cutoff).await {
            Ok(purged) => {
                if !purged.is_empty() {
                    tracing::debug!(ids = ?purged, "decided approvals past their retention purged");
                }
                purged.len()
            }
            Err(err) => {
                tracing::error!(error = %err, "purging decided approvals failed");
                0
            }
        }
    }

    /// Four eyes: nobody decides an approval of their own message, whatever their roles. In
    /// development mode every caller is the same principal, so the rule cannot apply there.
    async fn refuse_own_approval(&self, principal: &Principal, id: &str) -> Result<(), CoreError> {
        let Some(store) = &self.approvals.store else {
            return Ok(());
        };
        let own = store
            .get(id)
            .await
            .ok()
            .flatten()
            .is_some_and(|a| a.requested_by.id == principal.id);
        if own && !self.is_development() {
            return Err(CoreError::Forbidden {
                principal: principal.id.clone(),
                action: Action::Decide(id).to_string(),
                reasons: vec![format!(
                    "four eyes: `{}` requested this approval and may not decide it",
                    principal.id
                )],
            });
        }
        Ok(())
    }

    /// An approver who may not receive the held message decides nothing about it: the approval
    /// answers `NOT_FOUND` (as listing and reading it do), and the attempt is a `denied` entry.
    async fn refuse_unseen_approval(
        &self,
        ctx: &RequestContext,
        principal: &Principal,
        id: &str,
    ) -> Result<(), CoreError> {
        let Some(store) = &self.approvals.store else {
            return Ok(());
        };
        let unseen = store
            .get(id)
            .await?
            .is_some_and(|approval| !self.may_see(ctx, principal, &approval));
        if unseen {
            let reasons = vec!["the approver may not receive the held message".to_owned()];
            self.record_denial(ctx, principal, Action::Decide(id), &reasons)
                .await;
            return Err(CoreError::ApprovalNotFound { id: id.to_owned() });
        }
        Ok(())
    }

    /// Expires approval `id` if it is pending and past its `expires_at` (one read, not a sweep).
    async fn expire_if_due(&self, id: &str) {
        let Some(store) = &self.approvals.store else {
            return;
        };
        let due = store.get(id).await.ok().flatten().is_some_and(|a| {
            a.status == ApprovalStatus::Pending && a.expires_at <= self.clock.now()
        });
        if due {
            self.expire(id).await;
        }
    }

    /// Settles approval `id` as expired and applies the effects of a refusal; `None` when it
    /// was decided in the meantime or the store failed (logged).
    async fn expire(&self, id: &str) -> Option<Approval> {
        match self
            .settle(id, ApprovalStatus::Expired, SYSTEM_PRINCIPAL_ID, None)
            .await
        {
            Ok(approval) => {
                self.refuse(&system_principal(), &approval).await;
                Some(approval)
            }
            Err(CoreError::ApprovalNotPending { .. }) => None,
            Err(err) => {
                tracing::error!(approval = %id, error = %err, "expiring failed");
                None
            }
        }
    }

    /// The approvals of `status` (every status when `None`), oldest first; expired ones are
    /// swept first, so a listed `pending` approval can still be decided.
    pub async fn approvals(
        &self,
        ctx: &RequestContext,
        status: Option<ApprovalStatus>,
    ) -> Result<Vec<Approval>, CoreError> {
        let principal = self.allow(ctx, Action::Subscribe(APPROVAL_EVENTS)).await?;
        let Some(store) = &self.approvals.store else {
            return Ok(Vec::new());
        };
        self.expire_approvals().await;
        let mut approvals = store.list(status).await?;
        approvals.retain(|approval| self.may_see(ctx, &principal, approval));
        Ok(approvals)
    }

    /// The approval `id`; `NOT_FOUND` when there is none, or when the caller may not receive
    /// its held message (its existence is not revealed either, as for a stored message). The
    /// principal that published the held message may always read its own approval (it was
    /// answered the id, and polls it); anyone else must be allowed the approval events, and is
    /// judged before the store is asked, so a refused caller learns nothing of the id.
    pub async fn approval(&self, ctx: &RequestContext, id: &str) -> Result<Approval, CoreError> {
        let principal = crate::pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        let own = self
            .stored_approval(id)
            .await?
            .is_some_and(|approval| approval.requested_by.id == principal.id);
        if !own {
            self.judged(ctx, &principal, Action::Subscribe(APPROVAL_EVENTS))
                .await?;
        }
        self.expire_if_due(id).await;
        self.stored_approval(id)
            .await?
            .filter(|approval| own || self.may_see(ctx, &principal, approval))
            .ok_or_else(|| CoreError::ApprovalNotFound { id: id.to_owned() })
    }

    /// Whether `principal` may see `approval`: only one who may receive the held message
    /// (`Authorizer::can_receive`: its `rbac` list and label against the principal's
    /// clearance) sees it, in the list, by id, or to decide it.
    /// Approval `id` as stored, if there is a store and it holds one.
    async fn stored_approval(&self, id: &str) -> Result<Option<Approval>, CoreError> {
        match &self.approvals.store {
            Some(store) => Ok(store.get(id).await?),
            None => Ok(None),
        }
    }

    fn may_see(&self, ctx: &RequestContext, principal: &Principal, approval: &Approval) -> bool {
        ctx.is_internal()
            || self
                .hooks
                .authorizer
                .can_receive(principal, &approval.envelope)
    }

    /// Moves approval `id` from pending to `status`, atomically.
    async fn settle(
        &self,
        id: &str,
        status: ApprovalStatus,
        by: &str,
        comment: Option<String>,
    ) -> Result<Approval, CoreError> {
        let not_found = || CoreError::ApprovalNotFound { id: id.to_owned() };
        let store = self.approvals.store.as_ref().ok_or_else(not_found)?;
        let settlement = Settlement {
            status,
            by: by.to_owned(),
            at: self.clock.now(),
            comment,
        };
        match store.settle(id, settlement).await? {
            Settled::Done(approval) => Ok(approval),
            Settled::NotFound => Err(not_found()),
            Settled::NotPending(approval) => Err(CoreError::ApprovalNotPending {
                id: id.to_owned(),
                status: approval.status,
            }),
        }
    }

    /// Publishes an approved message with its approval id. If the append fails the approval
    /// goes back to pending (so it can be decided again) and the failure is the answer.
    async fn release(
        &self,
        principal: &Principal,
        approval: Approval,
    ) -> Result<Decided, CoreError> {
        let mut envelope = approval.envelope.clone();
        envelope.governance.approval_id = Some(approval.approval_id.clone());
        pipeline::hop(&mut envelope);
        let ack = match pipeline::append(&*self.bus, envelope.clone()).await {
            Ok(ack) => ack,
            Err(err) => {
                self.reopen(&approval).await;
                return Err(err);
            }
        };
        let approved = entry(EntryKind::Approved, &principal.id, &approval, "approve");
        let accepted = NewEntry::for_envelope(
            EntryKind::Accepted,
            approval.requested_by.id.clone(),
            &envelope,
        )
        .decision("allow: approved")
        .details(json!({
            "stream": ack.stream, "seq": ack.seq, "duplicate": ack.duplicate,
            "approval_id": approval.approval_id,
        }));
        pipeline::record(&*self.hooks.recorder, vec![approved, accepted]).await;
        self.announce_decision(principal, &approval, ApprovalOutcome::Approved)
            .await;
        Ok(Decided {
            approval,
            accepted: Some(Accepted {
                id: envelope.id,
                stream: ack.stream,
                seq: ack.seq,
                duplicate: ack.duplicate,
            }),
        })
    }

    /// Puts a settled approval back to pending after its release failed.
    async fn reopen(&self, approval: &Approval) {
        let Some(store) = &self.approvals.store else {
            return;
        };
        let pending = Approval {
            status: ApprovalStatus::Pending,
            decided_by: None,
            decided_at: None,
            comment: None,
            ..approval.clone()
        };
        if let Err(err) = store.put(pending).await {
            tracing::error!(approval = %approval.approval_id, error = %err,
                "approved but not published, and not reopened either");
        }
    }

    /// The effects of a rejection or an expiry: ledger, dead letter, requester, event.
    async fn refuse(&self, principal: &Principal, approval: &Approval) {
        let (kind, word, reason, outcome) = match approval.status {
            ApprovalStatus::Expired => (
                EntryKind::Expired,
                "expired",
                DeadLetterReason::Expired,
                ApprovalOutcome::Expired,
            ),
            _ => (
                EntryKind::Rejected,
                "rejected",
                DeadLetterReason::Rejected,
                ApprovalOutcome::Rejected,
            ),
        };
        let decision = match &approval.comment {
            Some(comment) => format!("reject: {comment}"),
            None if kind == EntryKind::Expired => "expire: not decided in time".to_owned(),
            None => "reject".to_owned(),
        };
        let refused = entry(kind, &principal.id, approval, &decision);
        pipeline::record(&*self.hooks.recorder, vec![refused]).await;
        self.dead_letter(approval, word, reason).await;
        self.answer_requester(principal, approval, outcome).await;
        self.announce_decision(principal, approval, outcome).await;
    }

    /// Publishes the held envelope as a dead letter (`comms.dlq.dead_letter`, see the module
    /// docs) on the dead-letter subject of the stream its subject belongs to, and records
    /// `dead_lettered`.
    async fn dead_letter(&self, approval: &Approval, word: &str, reason: DeadLetterReason) {
        let held = &approval.envelope;
        let streams = self.bus.list_streams().await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "listing streams for a dead letter failed");
            Vec::new()
        });
        let stream = streams.into_iter().find(|info| {
            info.config
                .subjects
                .iter()
                .any(|p| SubjectPattern::new(p.as_str()).is_ok_and(|p| p.matches(&held.subject)))
        });
        let name = stream.as_ref().map(|s| s.config.name.clone());
        let subject = stream.map_or_else(
            || HITL_DEAD_LETTER_SUBJECT.to_owned(),
            |s| s.config.dead_letter_subject(),
        );
        let said = match &approval.comment {
            Some(comment) => format!("approval {word}: {comment}"),
            None => format!("approval {word}"),
        };
        let letter = system::DeadLetter {
            message_id: held.id.to_string(),
            stream: name.clone(),
            seq: None,
            subject: held.subject.clone(),
            consumer: None,
            deliveries: None,
            reason,
            detail: approval
                .comment
                .as_deref()
                .map(|c| system::clip(c, system::MAX_DETAIL_CHARS)),
            dead_lettered_at: self.clock.now(),
            original: Some(Box::new(held.clone())),
            approval_id: Some(approval.approval_id.clone()),
        };
        let mut builder = Envelope::builder(Kind::Event, subject.clone())
            .clock(&*self.clock)
            .domain(system::DOMAIN)
            .name(system::DEAD_LETTER_NAME)
            .schema(system::DEAD_LETTER_SCHEMA)
            .priority(held.priority)
            .correlation_id(correlation(held))
            .causation_id(held.id.to_string())
            .hops(held.hops)
            .idempotency_key(format!("dlq:hitl:{}", approval.approval_id))
            .header("ace-dlq-reason", reason.as_str())
            .header("ace-dlq-approval-id", approval.approval_id.clone());
        if let Some(name) = &name {
            builder = builder.header("ace-dlq-stream", name.clone());
        }
        let built = match serde_json::to_value(&letter) {
            Ok(payload) => builder
                .payload_json(payload)
                .build()
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        let published = match built {
            Ok(letter) => self.publish(&RequestContext::internal(), letter).await,
            Err(reason) => Err(CoreError::InvalidRequest {
                field: "dead_letter",
                reason,
            }),
        };
        match published {
            Ok(ack) => {
                let dead =
                    NewEntry::for_envelope(EntryKind::DeadLettered, SYSTEM_PRINCIPAL_ID, held)
                        .decision(said)
                        .details(json!({
                            "approval_id": approval.approval_id,
                            "dead_letter_subject": subject,
                            "stream": ack.stream,
                            "seq": ack.seq,
                        }));
                pipeline::record(&*self.hooks.recorder, vec![dead]).await;
            }
            Err(err) => tracing::error!(approval = %approval.approval_id, error = %err,
                "dead-lettering a refused held message failed"),
        }
    }

    /// Tells the publisher of a refused message, when it named a `reply_to` subject: the
    /// decision event's payload, on that subject.
    async fn answer_requester(
        &self,
        principal: &Principal,
        approval: &Approval,
        outcome: ApprovalOutcome,
    ) {
        let held = &approval.envelope;
        let Some(reply_to) = held.headers.get(ace_bus::live::REPLY_TO_HEADER) else {
            return;
        };
        let payload = serde_json::to_value(decided(principal, approval, outcome));
        let built = payload.map_err(|e| e.to_string()).and_then(|payload| {
            Envelope::builder(Kind::Event, reply_to.clone())
                .clock(&*self.clock)
                .domain(system::DOMAIN)
                .name(APPROVAL_DECIDED_NAME)
                .schema(system::APPROVAL_DECIDED_SCHEMA)
                .correlation_id(held.id.to_string())
                .causation_id(held.id.to_string())
                .priority(held.priority)
                .hops(held.hops)
                .payload_json(payload)
                .build()
                .map_err(|e| e.to_string())
        });
        let published = match built {
            Ok(answer) => self.publish(&RequestContext::internal(), answer).await,
            Err(reason) => Err(CoreError::InvalidRequest {
                field: "reply_to",
                reason,
            }),
        };
        if let Err(err) = published {
            tracing::warn!(approval = %approval.approval_id, reply_to = %reply_to, error = %err,
                "answering the requester of a refused held message failed");
        }
    }

    /// Publishes `…hitl.{id}.evt.approval_decided.v1` for a decision by `principal`.
    async fn announce_decision(
        &self,
        principal: &Principal,
        approval: &Approval,
        outcome: ApprovalOutcome,
    ) {
        let payload = serde_json::to_value(decided(principal, approval, outcome));
        let schema = system::APPROVAL_DECIDED_SCHEMA;
        self.announce_approval(approval, APPROVAL_DECIDED_NAME, schema, payload)
            .await;
    }

    /// Publishes the approval event `name` (its payload under contract `schema`) on
    /// `…hitl.{id}.evt.{name}.v1`; a failure is logged (the approval itself is settled either
    /// way).
    async fn announce_approval(
        &self,
        approval: &Approval,
        name: &str,
        schema: &str,
        payload: serde_json::Result<serde_json::Value>,
    ) {
        self.counters.approval_event(approval);
        // The event reaches only those who may receive the held message itself (its label and
        // `rbac` list), as the approvals API shows it only to them.
        let held = &approval.envelope;
        let subject = approval_subject(&approval.approval_id, name);
        let built = payload.map_err(|e| e.to_string()).and_then(|payload| {
            Envelope::builder(Kind::Event, subject)
                .clock(&*self.clock)
                .domain(system::DOMAIN)
                .name(name)
                .schema(schema)
                .correlation_id(held.id.to_string())
                .label(held.governance.label)
                .rbac(held.rbac.iter().cloned())
                .payload_json(payload)
                .build()
                .map_err(|e| e.to_string())
        });
        let published = match built {
            // Boxed: `publish` → `hold` → here → `publish` is a cycle of async calls.
            Ok(event) => Box::pin(self.publish(&RequestContext::internal(), event))
                .await
                .map(drop),
            Err(reason) => Err(CoreError::InvalidRequest {
                field: "approval_id",
                reason,
            }),
        };
        if let Err(err) = published {
            tracing::warn!(approval = %approval.approval_id, event = name, error = %err,
                "publishing an approval event failed");
        }
    }
}

/// The correlation id of what `held` causes: its own, or its id when it has none.
fn correlation(held: &Envelope) -> String {
    held.correlation_id
        .clone()
        .unwrap_or_else(|| held.id.to_string())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    use ace_bus::{EmbeddedBus, EmbeddedConfig, StreamConfig};
    use ace_contracts::Registry;
    use ace_envelope::{ErrorCode, ManualClock};
    use async_trait::async_trait;
    use serde_json::Value;

    use crate::governance::{Authorizer, DevAuthenticator, Hooks, Recorder};
    use crate::{CoreLimits, Decision};

    const HELD: &str = "ace.comms.http.ops.db.cmd.delete.v1";
    const FREE: &str = "ace.comms.http.ops.db.evt.v1";

    /// Holds publishes on [`HELD`], refuses `Decide` when `deciders` is false.
    #[derive(Debug)]
    struct Gate {
        deciders: bool,
    }

    impl Authorizer for Gate {
        fn authorize(&self, _: &Principal, action: Action<'_>, _: Option<&Envelope>) -> Decision {
            match action {
                Action::Publish(s) if s.contains(".delete.") => Decision::RequireApproval {
                    reasons: vec!["ehi 0.95 >= delete threshold 0.9".into()],
                },
                Action::Decide(_) if !self.deciders => Decision::deny("approver role required"),
                _ => Decision::Allow,
            }
        }
    }

    /// Keeps every ledger entry in memory.
    #[derive(Debug, Default)]
    struct Entries(Mutex<Vec<NewEntry>>);

    #[async_trait]
    impl Recorder for Entries {
        async fn record(&self, entries: Vec<NewEntry>) -> Result<(), CoreError> {
            self.0.lock().unwrap().extend(entries);
            Ok(())
        }
    }

    impl Entries {
        /// The kinds of the entries about message `id` (the server's own events have theirs).
        fn kinds(&self, id: uuid::Uuid) -> Vec<EntryKind> {
            let id = Some(id.to_string());
            let entries = self.0.lock().unwrap();
            entries
                .iter()
                .filter(|e| e.message_id == id)
                .map(|e| e.kind)
                .collect()
        }
    }

    struct Fixture {
        core: Core,
        clock: Arc<ManualClock>,
        entries: Arc<Entries>,
        _dir: tempfile::TempDir,
    }

    async fn fixture(deciders: bool, with_store: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let bus = EmbeddedBus::open(EmbeddedConfig::new(dir.path())).unwrap();
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let entries = Arc::new(Entries::default());
        let hooks = Hooks {
            authenticator: Arc::new(DevAuthenticator),
            authorizer: Arc::new(Gate { deciders }),
            recorder: entries.clone(),
        };
        let mut core = Core::new(
            Arc::new(bus),
            Arc::new(Registry::embedded().unwrap()),
            clock.clone(),
            hooks,
            CoreLimits::default(),
        );
        if with_store {
            core = core.with_approvals(
                Arc::new(MemoryApprovalStore::default()),
                Duration::from_secs(60),
            );
        }
        let streams = [
            StreamConfig::new("OPS", &["ace.comms.http.>"]),
            StreamConfig::new("DLQ", &["ace.comms.system.dlq.>"]),
            StreamConfig::new("HITL", &["ace.comms.system.hitl.>"]),
        ];
        core.ensure_streams(&RequestContext::internal(), &streams)
            .await
            .unwrap();
        Fixture {
            core,
            clock,
            entries,
            _dir: dir,
        }
    }

    fn ctx() -> RequestContext {
        RequestContext::new("test")
    }

    fn held(f: &Fixture) -> Envelope {
        Envelope::builder(Kind::Command, HELD)
            .clock(&*f.clock)
            .header("reply_to", "ace.comms.system.inbox.t1")
            .payload_json(json!({"table": "users"}))
            .build()
            .unwrap()
    }

    async fn hold(f: &Fixture) -> (Envelope, String) {
        let envelope = held(f);
        let err = f.core.publish(&ctx(), envelope.clone()).await.unwrap_err();
        let CoreError::PendingApproval { id, approval_id } = err else {
            panic!("expected a hold, got {err}");
        };
        assert_eq!(id, envelope.id);
        (envelope, approval_id)
    }

    async fn stored(core: &Core, stream: &str, seq: u64) -> Envelope {
        core.get_message(&ctx(), stream, seq)
            .await
            .unwrap()
            .envelope
    }

    /// Asserts that `event` is the server's message `name` whose payload conforms to the
    /// contract it names, and answers its payload.
    fn conforming(event: &Envelope, name: &str) -> Value {
        assert_eq!(event.name.as_deref(), Some(name), "{event:?}");
        assert_eq!(event.domain.as_deref(), Some(system::DOMAIN));
        let schema = event.schema.as_deref().expect("names its contract");
        let contract = Registry::embedded().unwrap().resolve(schema).unwrap();
        let payload = event.payload.clone().expect("a payload");
        if let Err(errors) = contract.validate(&payload) {
            panic!("{name} breaks {schema}: {errors:?}\n{payload}");
        }
        payload
    }

    #[tokio::test]
    async fn given_no_approvals_store_when_a_message_is_held_then_it_is_refused_clearly() {
        let f = fixture(true, false).await;
        let err = f.core.publish(&ctx(), held(&f)).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        assert!(err.to_string().contains(APPROVALS_DISABLED), "{err}");
        let info = f.core.stream_info(&ctx(), "OPS").await.unwrap();
        assert_eq!(info.messages, 0);
    }

    #[tokio::test]
    async fn given_a_held_message_when_approved_then_it_is_published_with_its_approval_id() {
        let f = fixture(true, true).await;
        let (envelope, approval_id) = hold(&f).await;
        assert_eq!(f.core.stream_info(&ctx(), "OPS").await.unwrap().messages, 0);
        let pending = f
            .core
            .approvals(&ctx(), Some(ApprovalStatus::Pending))
            .await
            .unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].envelope.id, envelope.id);
        assert_eq!(pending[0].requested_by.id, crate::DEVELOPMENT_PRINCIPAL_ID);
        let requested = stored(&f.core, "HITL", 1).await;
        assert_eq!(
            requested.subject,
            format!("ace.comms.system.hitl.{approval_id}.evt.approval_requested.v1")
        );
        let summary = conforming(&requested, APPROVAL_REQUESTED_NAME);
        assert_eq!(summary["message_id"], json!(envelope.id));
        assert_eq!(
            summary["requested_by"],
            format!("service:{}", crate::DEVELOPMENT_PRINCIPAL_ID)
        );
        assert_eq!(
            summary["reasons"],
            json!(["ehi 0.95 >= delete threshold 0.9"])
        );
        assert!(
            summary.get("envelope").is_none(),
            "the payload is not in the event"
        );

        let decided = f
            .core
            .decide_approval(&ctx(), &approval_id, Verdict::Approve, Some("ok".into()))
            .await
            .unwrap();
        assert_eq!(decided.approval.status, ApprovalStatus::Approved);
        let accepted = decided.accepted.expect("released");
        assert_eq!(accepted.stream.as_deref(), Some("OPS"));
        let released = stored(&f.core, "OPS", accepted.seq.unwrap()).await;
        assert_eq!(released.id, envelope.id);
        assert_eq!(
            released.governance.approval_id.as_deref(),
            Some(approval_id.as_str())
        );
        assert_eq!(
            f.entries.kinds(envelope.id),
            vec![EntryKind::Held, EntryKind::Approved, EntryKind::Accepted]
        );
        let approved = stored(&f.core, "HITL", 2).await;
        assert_eq!(
            approved.subject,
            approval_subject(&approval_id, APPROVAL_DECIDED_NAME)
        );
        let said = conforming(&approved, APPROVAL_DECIDED_NAME);
        assert_eq!(
            (&said["decision"], &said["reason"]),
            (&json!("approved"), &json!("ok"))
        );

        let again = f
            .core
            .decide_approval(&ctx(), &approval_id, Verdict::Reject, None)
            .await
            .unwrap_err();
        assert_eq!(again.code(), ErrorCode::Conflict);
        assert!(again.to_string().contains("approved"), "{again}");
        let unknown = f
            .core
            .decide_approval(&ctx(), "no-such-approval", Verdict::Approve, None)
            .await
            .unwrap_err();
        assert_eq!(unknown.code(), ErrorCode::NotFound);
    }

    #[tokio::test]
    async fn given_a_held_message_when_rejected_then_it_is_dead_lettered_and_its_requester_told() {
        let f = fixture(true, true).await;
        let mut inbox = f
            .core
            .subscribe(&ctx(), "ace.comms.system.inbox.t1", None)
            .await
            .unwrap();
        let (envelope, approval_id) = hold(&f).await;
        let decided = f
            .core
            .decide_approval(
                &ctx(),
                &approval_id,
                Verdict::Reject,
                Some("too risky".into()),
            )
            .await
            .unwrap();
        assert_eq!(decided.approval.status, ApprovalStatus::Rejected);
        assert!(decided.accepted.is_none());
        assert_eq!(f.core.stream_info(&ctx(), "OPS").await.unwrap().messages, 0);

        let letter = stored(&f.core, "DLQ", 1).await;
        assert_eq!(
            letter.subject,
            "ace.comms.system.dlq.OPS.evt.dead_letter.v1"
        );
        assert_eq!(letter.headers["ace-dlq-approval-id"], approval_id);
        assert_eq!(letter.headers["ace-dlq-stream"], "OPS");
        assert_eq!(letter.headers["ace-dlq-reason"], "rejected");
        let payload = conforming(&letter, system::DEAD_LETTER_NAME);
        assert_eq!(payload["original"]["id"], json!(envelope.id));
        assert_eq!(payload["message_id"], json!(envelope.id));
        assert_eq!(payload["reason"], "rejected");
        assert_eq!(payload["detail"], "too risky");
        assert_eq!(payload["approval_id"], approval_id);

        let answer = tokio::time::timeout(Duration::from_secs(5), inbox.next())
            .await
            .unwrap()
            .expect("the requester is answered");
        assert_eq!(answer.correlation_id, Some(envelope.id.to_string()));
        let said = conforming(&answer, APPROVAL_DECIDED_NAME);
        assert_eq!(said["decision"], "rejected");
        assert_eq!(said["reason"], "too risky");
        assert_eq!(said["approval_id"], approval_id);
        assert_eq!(
            said["decided_by"],
            format!("service:{}", crate::DEVELOPMENT_PRINCIPAL_ID)
        );
        assert_eq!(
            f.entries.kinds(envelope.id),
            vec![
                EntryKind::Held,
                EntryKind::Rejected,
                EntryKind::DeadLettered
            ]
        );
    }

    #[tokio::test]
    async fn given_a_pending_approval_when_its_time_passes_then_it_expires_like_a_rejection() {
        let f = fixture(true, true).await;
        let (envelope, approval_id) = hold(&f).await;
        assert!(f.core.expire_approvals().await.is_empty(), "not yet due");
        f.clock.advance(Duration::from_secs(61));
        let expired = f.core.expire_approvals().await;
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].decided_by.as_deref(), Some(SYSTEM_PRINCIPAL_ID));
        let now = f.core.approval(&ctx(), &approval_id).await.unwrap();
        assert_eq!(now.status, ApprovalStatus::Expired);
        let letter = stored(&f.core, "DLQ", 1).await;
        assert_eq!(letter.headers["ace-dlq-approval-id"], approval_id);
        let payload = conforming(&letter, system::DEAD_LETTER_NAME);
        assert_eq!(payload["reason"], "expired");
        assert!(payload.get("detail").is_none(), "no comment: {payload}");
        let event = stored(&f.core, "HITL", 2).await;
        let said = conforming(&event, APPROVAL_DECIDED_NAME);
        assert_eq!(said["decision"], "expired");
        assert_eq!(said["decided_by"], "service:ace-comms-system");
        assert_eq!(
            f.entries.kinds(envelope.id),
            vec![EntryKind::Held, EntryKind::Expired, EntryKind::DeadLettered]
        );
        let late = f
            .core
            .decide_approval(&ctx(), &approval_id, Verdict::Approve, None)
            .await
            .unwrap_err();
        assert_eq!(late.code(), ErrorCode::Conflict);
        assert!(f.core.expire_approvals().await.is_empty(), "expires once");
    }

    #[tokio::test]
    async fn given_a_held_message_with_its_own_short_ttl_when_it_passes_then_approving_is_too_late()
    {
        let f = fixture(true, true).await;
        let envelope = Envelope::builder(Kind::Command, HELD)
            .clock(&*f.clock)
            .ttl(Duration::from_secs(10))
            .payload_json(json!({}))
            .build()
            .unwrap();
        let err = f.core.publish(&ctx(), envelope.clone()).await.unwrap_err();
        let CoreError::PendingApproval { approval_id, .. } = err else {
            panic!("expected a hold, got {err}");
        };
        let held = f.core.approval(&ctx(), &approval_id).await.unwrap();
        assert_eq!(
            Some(held.expires_at),
            envelope.expires_at(),
            "not the 60 s of the config"
        );
        f.clock.advance(Duration::from_secs(11));
        let late = f
            .core
            .decide_approval(&ctx(), &approval_id, Verdict::Approve, None)
            .await
            .unwrap_err();
        assert_eq!(late.code(), ErrorCode::Conflict, "{late}");
        assert!(late.to_string().contains("expired"), "{late}");
        assert_eq!(f.core.stream_info(&ctx(), "OPS").await.unwrap().messages, 0);
    }

    #[tokio::test]
    async fn given_a_principal_without_the_approver_role_when_deciding_then_it_is_forbidden() {
        let f = fixture(false, true).await;
        let (_, approval_id) = hold(&f).await;
        let err = f
            .core
            .decide_approval(&ctx(), &approval_id, Verdict::Approve, None)
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        let still = f.core.approval(&ctx(), &approval_id).await.unwrap();
        assert_eq!(still.status, ApprovalStatus::Pending);
        let long = "x".repeat(MAX_COMMENT_BYTES + 1);
        let f = fixture(true, true).await;
        let (_, approval_id) = hold(&f).await;
        let err = f
            .core
            .decide_approval(&ctx(), &approval_id, Verdict::Reject, Some(long))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("`comment`"), "{err}");
    }

    #[tokio::test]
    async fn given_a_batch_with_a_held_message_when_published_then_only_it_is_held() {
        let f = fixture(true, true).await;
        let free = Envelope::builder(Kind::Event, FREE)
            .clock(&*f.clock)
            .payload_json(json!({}))
            .build()
            .unwrap();
        let answers = f
            .core
            .publish_batch(&ctx(), vec![free, held(&f)])
            .await
            .unwrap();
        assert!(answers[0].is_ok());
        assert_eq!(
            answers[1].as_ref().unwrap_err().code(),
            ErrorCode::PendingApproval
        );
    }

    #[tokio::test]
    async fn given_no_stream_for_the_subject_nor_the_dead_letters_when_rejected_then_it_is_still_recorded()
     {
        let f = fixture(true, true).await;
        f.core.delete_stream(&ctx(), "DLQ").await.unwrap();
        let envelope = Envelope::builder(Kind::Command, "ace.comms.a2a.ops.db.cmd.delete.v1")
            .clock(&*f.clock)
            .payload_json(json!({}))
            .build()
            .unwrap();
        let err = f.core.publish(&ctx(), envelope.clone()).await.unwrap_err();
        let CoreError::PendingApproval { approval_id, .. } = err else {
            panic!("expected a hold, got {err}");
        };
        f.core
            .decide_approval(&ctx(), &approval_id, Verdict::Reject, None)
            .await
            .unwrap();
        assert_eq!(
            f.entries.kinds(envelope.id),
            vec![
                EntryKind::Held,
                EntryKind::Rejected,
                EntryKind::DeadLettered
            ]
        );
        let entries = f.entries.0.lock().unwrap();
        let dead = entries
            .iter()
            .find(|e| e.kind == EntryKind::DeadLettered)
            .unwrap();
        assert_eq!(
            dead.details["dead_letter_subject"],
            HITL_DEAD_LETTER_SUBJECT
        );
        assert_eq!(dead.details["stream"], Value::Null, "kept nowhere");
    }

    pub(crate) fn approval(id: &str) -> Approval {
        let envelope = Envelope::builder(Kind::Event, FREE)
            .payload_json(json!({}))
            .build()
            .unwrap();
        Approval {
            approval_id: id.to_owned(),
            status: ApprovalStatus::Pending,
            envelope,
            requested_by: Requester {
                id: "p".into(),
                roles: vec!["agent".into()],
            },
            reasons: vec!["r".into()],
            created_at: Utc::now(),
            expires_at: Utc::now(),
            decided_by: None,
            decided_at: None,
            comment: None,
        }
    }

    pub(crate) fn settlement(by: &str) -> Settlement {
        Settlement {
            status: ApprovalStatus::Approved,
            by: by.into(),
            at: Utc::now(),
            comment: None,
        }
    }

    #[tokio::test]
    async fn given_a_redb_store_when_reopened_then_pending_approvals_are_still_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("approvals.redb");
        {
            let store = RedbApprovalStore::open(&path).unwrap();
            store.put(approval("a")).await.unwrap();
            store.put(approval("b")).await.unwrap();
            assert!(matches!(
                store.settle("b", settlement("x")).await.unwrap(),
                Settled::Done(_)
            ));
        }
        let store = RedbApprovalStore::open(&path).unwrap();
        let pending = store.list(Some(ApprovalStatus::Pending)).await.unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].approval_id, "a");
        assert_eq!(pending[0].requested_by, approval("a").requested_by);
        assert_eq!(store.list(None).await.unwrap().len(), 2);
        assert_eq!(
            store.settle("zz", settlement("x")).await.unwrap(),
            Settled::NotFound
        );
        assert!(matches!(
            store.settle("b", settlement("y")).await.unwrap(),
            Settled::NotPending(a) if a.decided_by.as_deref() == Some("x")
        ));
    }

    #[tokio::test]
    async fn given_decided_approvals_when_their_retention_passes_then_they_are_purged_and_pending_ones_kept()
     {
        let f = fixture(true, true).await;
        let core = f
            .core
            .clone()
            .with_decided_retention(Duration::from_secs(3_600));
        let (_, rejected) = hold(&f).await;
        let (_, pending) = hold(&f).await;
        core.decide_approval(&ctx(), &rejected, Verdict::Reject, None)
            .await
            .unwrap();
        assert_eq!(core.purge_decided_approvals().await, 0, "within retention");
        assert!(core.approval(&ctx(), &rejected).await.is_ok());
        // Past the retention (the pending one expires on the way: 60 s ttl), then past it again
        // for the one that just expired.
        f.clock.advance(Duration::from_secs(3_601));
        assert_eq!(core.purge_decided_approvals().await, 1);
        let gone = core.approval(&ctx(), &rejected).await.unwrap_err();
        assert_eq!(gone.code(), ErrorCode::NotFound);
        assert_eq!(
            core.approval(&ctx(), &pending).await.unwrap().status,
            ApprovalStatus::Expired,
            "expired by the read, decided just now: kept"
        );
        f.clock.advance(Duration::from_secs(3_601));
        assert_eq!(core.purge_decided_approvals().await, 1);
        assert!(core.approvals(&ctx(), None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn given_a_redb_store_when_purging_then_only_settled_approvals_before_the_cutoff_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("approvals.redb");
        {
            let store = RedbApprovalStore::open(&path).unwrap();
            let mut old_pending = approval("old-pending");
            old_pending.created_at = Utc::now() - chrono::TimeDelta::days(30);
            store.put(old_pending).await.unwrap();
            for id in ["decided", "recent"] {
                store.put(approval(id)).await.unwrap();
            }
            let mut past = settlement("x");
            past.at = Utc::now() - chrono::TimeDelta::days(8);
            store.settle("decided", past).await.unwrap();
            store.settle("recent", settlement("x")).await.unwrap();
            let cutoff = Utc::now() - chrono::TimeDelta::days(7);
            assert_eq!(store.purge_decided(cutoff).await.unwrap(), vec!["decided"]);
            assert!(store.purge_decided(cutoff).await.unwrap().is_empty());
        }
        let store = RedbApprovalStore::open(&path).unwrap();
        let mut left: Vec<String> = store
            .list(None)
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.approval_id)
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec!["old-pending", "recent"],
            "durable across a reopen"
        );
    }

    #[tokio::test]
    async fn given_two_deciders_racing_when_settling_then_exactly_one_wins() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbApprovalStore::open(&dir.path().join("a.redb")).unwrap();
        store.put(approval("a")).await.unwrap();
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move { store.settle("a", settlement(&i.to_string())).await })
            })
            .collect();
        let mut wins = 0;
        for task in tasks {
            wins += usize::from(matches!(task.await.unwrap().unwrap(), Settled::Done(_)));
        }
        assert_eq!(wins, 1);
    }

    /// An agent principal named `id`, without roles (it bypasses `Principal::check`, as a
    /// certificate's or token's id reaches the core).
    fn agent(id: &str) -> Principal {
        Principal {
            id: id.to_owned(),
            kind: ace_envelope::SourceType::Agent,
            roles: vec![],
            clearance: 0,
        }
    }

    /// Validates `payload` against the registered contract `schema`.
    fn check(schema: &str, payload: &impl serde::Serialize) -> Result<Value, String> {
        let payload = serde_json::to_value(payload).unwrap();
        let contract = Registry::embedded().unwrap().resolve(schema).unwrap();
        contract
            .validate(&payload)
            .map(|()| payload.clone())
            .map_err(|errors| format!("{errors:?}: {payload}"))
    }

    #[test]
    fn given_a_policy_that_gave_no_reason_when_requested_then_the_event_still_states_one() {
        let mut held = approval("a");
        held.reasons = vec![String::new()];
        let requester = Principal::development();
        let payload = check(
            system::APPROVAL_REQUESTED_SCHEMA,
            &requested(&requester, &held),
        )
        .unwrap();
        assert_eq!(payload["reasons"], json!([UNSTATED_REASON]));
        held.reasons = vec!["x".repeat(5_000), "ehi".into()];
        let payload = check(
            system::APPROVAL_REQUESTED_SCHEMA,
            &requested(&requester, &held),
        )
        .unwrap();
        assert_eq!(payload["reasons"][0].as_str().unwrap().len(), 1_000);
        assert_eq!(payload["reasons"][1], "ehi");
    }

    #[test]
    fn given_principal_ids_outside_the_short_form_when_announced_then_the_events_conform() {
        let mut held = approval("a");
        held.status = ApprovalStatus::Rejected;
        held.decided_at = Some(Utc::now());
        held.comment = Some("é".repeat(MAX_COMMENT_BYTES / 2));
        for id in [
            "spiffe://ace.local/agent/chuck",
            "CN with spaces",
            "auth0|5f1",
        ] {
            let principal = agent(id);
            let payload = check(
                system::APPROVAL_REQUESTED_SCHEMA,
                &requested(&principal, &held),
            )
            .unwrap();
            assert_eq!(payload["requested_by"], format!("agent:{id}"));
            let outcome = ApprovalOutcome::Rejected;
            let payload = check(
                system::APPROVAL_DECIDED_SCHEMA,
                &decided(&principal, &held, outcome),
            )
            .unwrap();
            assert_eq!(payload["decided_by"], format!("agent:{id}"));
            let reason = payload["reason"].as_str().unwrap();
            assert_eq!(reason.chars().count(), system::MAX_DETAIL_CHARS, "cut");
        }
        let refused = check(
            system::APPROVAL_REQUESTED_SCHEMA,
            &requested(&agent("line\nbreak"), &held),
        );
        assert!(refused.is_err(), "a control character is no principal id");
    }
}
