//! [`Core`]: the one command path. It holds the injected parts (bus, contracts registry, clock,
//! governance hooks, limits) and runs every publish through the pipeline steps of `pipeline`,
//! in the pipeline's order. Stream, consumer and delivery operations live in `ops`.

use std::sync::Arc;
use std::time::Duration;

use ace_bus::{Bus, PublishAck};
use ace_contracts::Registry;
use ace_envelope::{Clock, Envelope, MAX_HOPS};
use ace_ledger::EntryKind;

use crate::agents::{Presence, PresenceConfig};
use crate::context::{Principal, RequestContext};
use crate::error::CoreError;
use crate::governance::{Action, Hooks};
use crate::integrity::{Integrity, LogSafe};
use crate::pipeline::{self, Admission};
use crate::sessions::{SessionStore, Sessions};

/// Bounds the core enforces whatever the adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoreLimits {
    /// Highest `hops` accepted (loop guard), at most [`MAX_HOPS`].
    pub max_hops: u32,
    /// Most messages one fetch may ask for.
    pub max_fetch_batch: usize,
    /// Longest a fetch may wait for its first message; longer asks are shortened to it.
    pub max_fetch_wait: Duration,
    /// Most sequences one ack, nak or term may name.
    pub max_ack_seqs: usize,
    /// How far in the future an envelope's `created_at` may be (clock skew between publisher
    /// and server); later is refused, since `ttl_ms` counts from it.
    pub max_clock_skew: Duration,
}

impl Default for CoreLimits {
    fn default() -> Self {
        CoreLimits {
            max_hops: MAX_HOPS,
            max_fetch_batch: 1_000,
            max_fetch_wait: Duration::from_secs(30),
            max_ack_seqs: 1_000,
            max_clock_skew: Duration::from_secs(60),
        }
    }
}

/// What a publisher gets back: the wire answer of `ace_envelope::api::http`, so every adapter
/// hands it on as it is.
pub use ace_envelope::api::http::Accepted;

/// The answer for `id` once the bus acknowledged it.
fn accepted(id: uuid::Uuid, ack: PublishAck) -> Accepted {
    Accepted {
        id,
        stream: ack.stream,
        seq: ack.seq,
        duplicate: ack.duplicate,
    }
}

/// The most instance pointers a contract refusal's ledger entry lists.
const MAX_RECORDED_POINTERS: usize = 16;

/// The command path of ACE::COMMS; cheap to clone (every part is shared).
#[derive(Clone)]
pub struct Core {
    pub(crate) bus: Arc<dyn Bus>,
    /// The schema registry in force, its store and requirements ([`Core::with_contracts`]).
    pub(crate) registry: Arc<crate::contracts::Contracts>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) hooks: Hooks,
    pub(crate) limits: CoreLimits,
    pub(crate) presence: Arc<Presence>,
    pub(crate) presence_config: PresenceConfig,
    pub(crate) sessions: Sessions,
    /// Held messages ([`Core::with_approvals`]); without a store every hold is refused.
    pub(crate) approvals: crate::approvals::Approvals,
    /// The ledger, when the core keeps one ([`Core::with_ledger`]).
    pub(crate) ledger: Option<Arc<crate::ledger::LedgerRecorder>>,
    /// Required signatures and stored-PII redaction ([`Core::with_integrity`]).
    pub(crate) integrity: Arc<Integrity>,
    /// Held messages and their outcomes ([`Core::counters`]).
    pub(crate) counters: Arc<crate::counters::Counters>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("hooks", &self.hooks)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core over these parts, with default presence ttls and sessions kept in memory (see
    /// [`Core::with_presence`] and [`Core::with_sessions`]).
    pub fn new(
        bus: Arc<dyn Bus>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        hooks: Hooks,
        limits: CoreLimits,
    ) -> Self {
        Core {
            bus,
            registry: Arc::new(crate::contracts::Contracts::new(registry)),
            clock,
            hooks,
            limits,
            presence: Arc::default(),
            presence_config: PresenceConfig::default(),
            sessions: Sessions::default(),
            approvals: crate::approvals::Approvals::default(),
            ledger: None,
            integrity: Arc::default(),
            counters: Arc::default(),
        }
    }

    /// The same core with these presence ttls.
    pub fn with_presence(mut self, config: PresenceConfig) -> Self {
        self.presence_config = config;
        self
    }

    /// The same core applying these signature and personal-data policies to every message
    /// from outside (see [`crate::integrity`]); the default requires no signature and stores
    /// payloads as sent.
    pub fn with_integrity(mut self, integrity: Integrity) -> Self {
        self.integrity = Arc::new(integrity);
        self
    }

    /// The same core keeping sessions in `store`, each at most `max_bytes` of compact JSON.
    pub fn with_sessions(mut self, store: Arc<dyn SessionStore>, max_bytes: usize) -> Self {
        self.sessions = Sessions { store, max_bytes };
        self
    }

    /// Whether authentication is the development pass-through (adapters announce it).
    pub fn is_development(&self) -> bool {
        self.hooks.is_development()
    }

    /// The limits in force.
    pub fn limits(&self) -> &CoreLimits {
        &self.limits
    }

    /// Runs one envelope through the whole pipeline. A refusal at any step leaves nothing
    /// appended (a policy denial is recorded in the ledger); a message held for approval answers
    /// `PENDING_APPROVAL` with its approval id; `Ok` means the message is durable per its
    /// stream's sync policy and its `accepted` entry is in the ledger.
    pub async fn publish(
        &self,
        ctx: &RequestContext,
        mut envelope: Envelope,
    ) -> Result<Accepted, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        match self.admit(ctx, &principal, &mut envelope).await? {
            Admission::Pass => {}
            Admission::Hold(reasons) => return Err(self.hold(&principal, envelope, reasons).await),
        }
        let id = envelope.id;
        pipeline::hop(&mut envelope);
        let entry = pipeline::accepted_entry(&*self.hooks.recorder, &principal, &envelope);
        let ack = pipeline::append(&*self.bus, envelope).await?;
        if let Some(entry) = entry {
            let entry = pipeline::acknowledged(entry, &ack);
            pipeline::record(&*self.hooks.recorder, vec![entry]).await;
        }
        Ok(accepted(id, ack))
    }

    /// Runs several envelopes through the pipeline, answering each in order. Each is judged
    /// alone (one refused envelope does not refuse the others); the admitted ones are appended
    /// together, so they share the bus's group commit, and recorded together, so they share
    /// the ledger's.
    pub async fn publish_batch(
        &self,
        ctx: &RequestContext,
        envelopes: Vec<Envelope>,
    ) -> Result<Vec<Result<Accepted, CoreError>>, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        let mut answers: Vec<Option<Result<Accepted, CoreError>>> = Vec::new();
        let mut admitted = Vec::new();
        for mut envelope in envelopes {
            match self.admit(ctx, &principal, &mut envelope).await {
                Ok(Admission::Pass) => {
                    pipeline::hop(&mut envelope);
                    admitted.push((answers.len(), envelope));
                    answers.push(None);
                }
                Ok(Admission::Hold(reasons)) => {
                    answers.push(Some(Err(self.hold(&principal, envelope, reasons).await)));
                }
                Err(err) => answers.push(Some(Err(err))),
            }
        }
        let recorder = &*self.hooks.recorder;
        let (slots, to_append): (Vec<_>, Vec<_>) = admitted
            .into_iter()
            .map(|(slot, envelope)| {
                let entry = pipeline::accepted_entry(recorder, &principal, &envelope);
                ((slot, envelope.id, entry), envelope)
            })
            .unzip();
        let acks = self.bus.publish_batch(to_append).await;
        let mut entries = Vec::new();
        for ((slot, id, entry), ack) in slots.into_iter().zip(acks) {
            let answer = match ack {
                Ok(ack) => {
                    entries.extend(entry.map(|e| pipeline::acknowledged(e, &ack)));
                    Ok(accepted(id, ack))
                }
                Err(err) => Err(CoreError::Bus(err)),
            };
            answers[slot] = Some(answer);
        }
        pipeline::record(&*self.hooks.recorder, entries).await;
        Ok(answers.into_iter().flatten().collect())
    }

    /// [`Core::judge`], with its outcome logged at debug level; the envelope is shown through
    /// [`LogSafe`], so personal data named by `governance.pii` never reaches the log.
    async fn admit(
        &self,
        ctx: &RequestContext,
        principal: &Principal,
        envelope: &mut Envelope,
    ) -> Result<Admission, CoreError> {
        let admission = self.judge(ctx, principal, envelope).await;
        match &admission {
            Ok(admission) => {
                tracing::debug!(envelope = %LogSafe(envelope), ?admission, "message admitted");
            }
            Err(err) => {
                tracing::debug!(envelope = %LogSafe(envelope), error = %err, "message refused");
            }
        }
        admission
    }

    /// The `denied` entry of a message its contract refused: the contract and the pointers at
    /// fault (at most [`MAX_RECORDED_POINTERS`]), never the messages, which may quote the payload.
    async fn record_contract_refusal(
        &self,
        ctx: &RequestContext,
        principal: &Principal,
        envelope: &Envelope,
        err: &CoreError,
    ) {
        let (schema, pointers) = match err {
            CoreError::ContractViolation { schema, errors } => (
                schema.clone(),
                errors
                    .iter()
                    .take(MAX_RECORDED_POINTERS)
                    .map(|e| e.instance_pointer.clone())
                    .collect(),
            ),
            CoreError::UnknownSchema { schema, .. } => (schema.clone(), Vec::new()),
            _ => return,
        };
        let details = serde_json::json!({
            "transport": ctx.transport,
            "code": err.code().as_str(),
            "schema": schema,
            "pointers": pointers,
        });
        let entry = pipeline::entry(
            EntryKind::Denied,
            principal,
            envelope,
            format!("deny: contract {schema}"),
            details,
        );
        pipeline::record(&*self.hooks.recorder, vec![entry]).await;
    }

    /// Steps 2 to 5 (after authentication, before the append): no side effect on the bus. A
    /// policy denial is recorded (`denied`) before it is returned. Internal requests (the
    /// server's own messages) are validated but neither signature-checked (the server holds no
    /// signing key) nor authorized again. With `pii.redact_stored` the payload is redacted right
    /// after its contract check, so every later step sees only the redacted form.
    async fn judge(
        &self,
        ctx: &RequestContext,
        principal: &Principal,
        envelope: &mut Envelope,
    ) -> Result<Admission, CoreError> {
        let source_stamped = envelope.source.is_none();
        pipeline::stamp_source(principal, envelope);
        pipeline::validate(envelope, &self.limits, self.clock.now())?;
        if !ctx.is_internal()
            && let Err(err) =
                pipeline::signature(&self.integrity.signatures, envelope, source_stamped)
        {
            // A refused signature is a decision on the message, kept like a policy denial.
            if let CoreError::Signature(refusal) = &err {
                let mut details = refusal.details();
                details["transport"] = serde_json::json!(ctx.transport);
                let entry = pipeline::entry(
                    EntryKind::Denied,
                    principal,
                    envelope,
                    format!("deny: signature {}", refusal.problem.as_str()),
                    details,
                );
                pipeline::record(&*self.hooks.recorder, vec![entry]).await;
            }
            return Err(err);
        }
        if let Err(err) = self.registry.check(envelope) {
            if !ctx.is_internal() {
                self.record_contract_refusal(ctx, principal, envelope, &err)
                    .await;
            }
            return Err(err);
        }
        pipeline::redact(&self.integrity.pii, envelope)?;
        if ctx.is_internal() {
            return Ok(Admission::Pass);
        }
        let admission = self.admission(principal, envelope);
        if let Err(CoreError::Forbidden { reasons, .. }) = &admission {
            let entry = pipeline::entry(
                EntryKind::Denied,
                principal,
                envelope,
                format!("deny: {}", reasons.join("; ")),
                serde_json::json!({ "reasons": reasons, "transport": ctx.transport }),
            );
            pipeline::record(&*self.hooks.recorder, vec![entry]).await;
        }
        admission
    }

    /// Step 4 for a message from outside: who it claims to be from, then the policy on its
    /// subject, then every address it asks the server to publish to on its behalf. Refusals
    /// are `FORBIDDEN` (the caller records them).
    fn admission(
        &self,
        principal: &Principal,
        envelope: &Envelope,
    ) -> Result<Admission, CoreError> {
        if !self.is_development() {
            pipeline::identity(principal, envelope)?;
        }
        if envelope.governance.approval_id.is_some() {
            // Only the server stamps an approval id, when it releases an approved message
            // (through the append step, never this one): a client's own would pass for one.
            return Err(CoreError::Forbidden {
                principal: principal.id.clone(),
                action: Action::Publish(&envelope.subject).to_string(),
                reasons: vec![
                    "`governance.approval_id` is set by the server when it releases an approved \
                     message; a publisher may not set it"
                        .to_owned(),
                ],
            });
        }
        let admission = pipeline::authorize(&*self.hooks.authorizer, principal, envelope)?;
        pipeline::reply_to(&*self.hooks.authorizer, principal, envelope)?;
        Ok(admission)
    }

    /// Flushes and closes the bus, then writes the ledger's queued entries and signs its final
    /// checkpoint; every later operation fails with `UNAVAILABLE`.
    pub async fn close(&self) -> Result<(), CoreError> {
        let bus = self.bus.close().await;
        self.close_ledger().await?;
        Ok(bus?)
    }
}
