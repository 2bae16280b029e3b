//! The thin operations every adapter goes through besides publishing: streams, consumers,
//! fetch, acknowledgements and reading one message. Each authenticates and authorizes like a
//! publish does (steps 1 and 4), checks its bounds, then calls the bus — so no adapter can reach
//! the bus around governance.

use std::time::Duration;

use ace_bus::{ConsumerConfig, ConsumerInfo, Delivered, StoredMessage, StreamConfig, StreamInfo};
use serde::Serialize;

use crate::context::{Principal, RequestContext};
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::Action;
use crate::pipeline;

/// How an acknowledgement of several sequences went: each sequence is judged alone.
#[derive(Debug, Default, Serialize)]
pub struct AckOutcome {
    /// Sequences acknowledged (or nak'ed, or termed).
    pub done: Vec<u64>,
    /// Sequences refused, each with its error.
    #[serde(skip)]
    pub failed: Vec<(u64, CoreError)>,
}

/// Which acknowledgement to apply to each sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckKind {
    /// Done: never deliver it to this consumer again.
    Ack,
    /// Redeliver after the delay (or the consumer's backoff schedule when `None`).
    Nak(Option<Duration>),
    /// Give up: move it to the stream's dead-letter subject with this reason.
    Term(String),
}

impl Core {
    /// Authenticates and authorizes `action` (steps 1 and 4 of the pipeline); the server's own
    /// internal requests are not authorized again. A refusal is recorded in the ledger
    /// ([`Core::judged`]).
    pub(crate) async fn allow(
        &self,
        ctx: &RequestContext,
        action: Action<'_>,
    ) -> Result<Principal, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        self.judged(ctx, &principal, action).await?;
        Ok(principal)
    }

    /// Step 4 for an authenticated `principal`, with the refusal recorded: every operation that
    /// is not a message (subscribe, read, manage, decide, sessions, presence) goes through here,
    /// so each of its denials is a `denied` ledger entry as a refused publish is. Internal
    /// requests pass.
    pub(crate) async fn judged(
        &self,
        ctx: &RequestContext,
        principal: &Principal,
        action: Action<'_>,
    ) -> Result<(), CoreError> {
        if ctx.is_internal() {
            return Ok(());
        }
        let judged = pipeline::permit(&*self.hooks.authorizer, principal, action, None);
        if let Err(CoreError::Forbidden { reasons, .. }) = &judged {
            self.record_denial(ctx, principal, action, reasons).await;
        }
        judged
    }

    /// The `denied` ledger entry of a refused operation on something other than a message.
    pub(crate) async fn record_denial(
        &self,
        ctx: &RequestContext,
        principal: &Principal,
        action: Action<'_>,
        reasons: &[String],
    ) {
        let entry = ace_ledger::NewEntry::new(
            ace_ledger::EntryKind::Denied,
            principal.id.clone(),
            crate::auth::action_subject(action),
        )
        .decision(format!("deny: {}", reasons.join("; ")))
        .details(serde_json::json!({
            "action": action.to_string(),
            "reasons": reasons,
            "transport": ctx.transport,
        }));
        pipeline::record(&*self.hooks.recorder, vec![entry]).await;
    }

    /// Records a `config_changed` entry by `principal` about `stream` (the change is made: a
    /// recording failure is logged, not returned).
    async fn config_changed(
        &self,
        principal: &Principal,
        stream: &str,
        details: serde_json::Value,
    ) {
        let decision = details["op"].as_str().unwrap_or("change").to_owned();
        let entry = ace_ledger::NewEntry::new(
            ace_ledger::EntryKind::ConfigChanged,
            principal.id.clone(),
            format!("stream.{stream}"),
        )
        .decision(decision)
        .details(details);
        pipeline::record(&*self.hooks.recorder, vec![entry]).await;
    }

    /// Authenticates and authorizes reading `stream`: a subscription to each of its subjects.
    async fn allow_read(&self, ctx: &RequestContext, stream: &str) -> Result<Principal, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        if !ctx.is_internal() {
            let info = self.bus.stream_info(stream).await?;
            let action = Action::Consume {
                stream,
                subjects: &info.config.subjects,
            };
            self.judged(ctx, &principal, action).await?;
        }
        Ok(principal)
    }

    /// Creates a stream (the identical config again is a no-op).
    pub async fn add_stream(
        &self,
        ctx: &RequestContext,
        config: StreamConfig,
    ) -> Result<StreamInfo, CoreError> {
        let principal = self.allow(ctx, Action::Manage(&config.name)).await?;
        // The bus publishes this stream's dead letters there on the creator's behalf, so the
        // creator must be allowed to publish there (a confused deputy otherwise).
        if let Some(dead_letter) = &config.dead_letter {
            self.judged(ctx, &principal, Action::Publish(dead_letter))
                .await?;
        }
        let details = serde_json::json!({ "op": "add_stream", "config": config });
        let info = self.bus.add_stream(config).await?;
        self.config_changed(&principal, &info.config.name, details)
            .await;
        Ok(info)
    }

    /// Creates each stream whose name does not exist yet; existing streams are left as they are
    /// (a restart keeps what an operator changed). Returns the names created.
    pub async fn ensure_streams(
        &self,
        ctx: &RequestContext,
        configs: &[StreamConfig],
    ) -> Result<Vec<String>, CoreError> {
        let existing = self.list_streams(ctx).await?;
        let mut created = Vec::new();
        for config in configs {
            if existing.iter().all(|s| s.config.name != config.name) {
                self.add_stream(ctx, config.clone()).await?;
                created.push(config.name.clone());
            }
        }
        Ok(created)
    }

    /// Every stream the caller may read.
    pub async fn list_streams(&self, ctx: &RequestContext) -> Result<Vec<StreamInfo>, CoreError> {
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        let mut streams = self.bus.list_streams().await?;
        if !ctx.is_internal() {
            streams.retain(|info| {
                let action = Action::Consume {
                    stream: &info.config.name,
                    subjects: &info.config.subjects,
                };
                pipeline::permit(&*self.hooks.authorizer, &principal, action, None).is_ok()
            });
        }
        Ok(streams)
    }

    /// One stream.
    pub async fn stream_info(
        &self,
        ctx: &RequestContext,
        stream: &str,
    ) -> Result<StreamInfo, CoreError> {
        self.allow_read(ctx, stream).await?;
        Ok(self.bus.stream_info(stream).await?)
    }

    /// Deletes a stream with its messages and consumers.
    pub async fn delete_stream(&self, ctx: &RequestContext, stream: &str) -> Result<(), CoreError> {
        let principal = self.allow(ctx, Action::Manage(stream)).await?;
        self.bus.delete_stream(stream).await?;
        let details = serde_json::json!({ "op": "delete_stream", "stream": stream });
        self.config_changed(&principal, stream, details).await;
        Ok(())
    }

    /// Creates a consumer (the identical config again keeps the existing one).
    pub async fn add_consumer(
        &self,
        ctx: &RequestContext,
        stream: &str,
        config: ConsumerConfig,
    ) -> Result<ConsumerInfo, CoreError> {
        let principal = self.allow(ctx, Action::Manage(stream)).await?;
        let details =
            serde_json::json!({ "op": "add_consumer", "stream": stream, "config": config });
        let info = self.bus.add_consumer(stream, config).await?;
        self.config_changed(&principal, stream, details).await;
        Ok(info)
    }

    /// Every consumer of a stream.
    pub async fn list_consumers(
        &self,
        ctx: &RequestContext,
        stream: &str,
    ) -> Result<Vec<ConsumerInfo>, CoreError> {
        self.allow_read(ctx, stream).await?;
        Ok(self.bus.list_consumers(stream).await?)
    }

    /// One consumer.
    pub async fn consumer_info(
        &self,
        ctx: &RequestContext,
        stream: &str,
        consumer: &str,
    ) -> Result<ConsumerInfo, CoreError> {
        self.allow_read(ctx, stream).await?;
        Ok(self.bus.consumer_info(stream, consumer).await?)
    }

    /// Deletes a consumer and its state.
    pub async fn delete_consumer(
        &self,
        ctx: &RequestContext,
        stream: &str,
        consumer: &str,
    ) -> Result<(), CoreError> {
        let principal = self.allow(ctx, Action::Manage(stream)).await?;
        self.bus.delete_consumer(stream, consumer).await?;
        let details =
            serde_json::json!({ "op": "delete_consumer", "stream": stream, "consumer": consumer });
        self.config_changed(&principal, stream, details).await;
        Ok(())
    }

    /// Pulls up to `batch` messages (1..=`max_fetch_batch`), waiting up to `expires` (shortened
    /// to `max_fetch_wait`) for the first one.
    pub async fn fetch(
        &self,
        ctx: &RequestContext,
        stream: &str,
        consumer: &str,
        batch: usize,
        expires: Duration,
    ) -> Result<Vec<Delivered>, CoreError> {
        let principal = self.allow_read(ctx, stream).await?;
        if batch == 0 || batch > self.limits.max_fetch_batch {
            return Err(CoreError::InvalidRequest {
                field: "batch",
                reason: format!("must be 1 to {}, got {batch}", self.limits.max_fetch_batch),
            });
        }
        let expires = expires.min(self.limits.max_fetch_wait);
        let accept = (!ctx.is_internal()).then(|| self.receivable_by(principal));
        Ok(self
            .bus
            .fetch_filtered(stream, consumer, batch, expires, accept)
            .await?)
    }

    /// The fetch filter of `principal`: the messages it may receive (`Authorizer::can_receive`:
    /// the envelope's `rbac` permissions and its label against the principal's clearance). The
    /// bus asks it before it counts a delivery, so a message a member of a shared consumer may
    /// not receive is never handed to that member, never counted toward the consumer's
    /// `max_deliver` and never dead-lettered on its account: it stays for a member that may
    /// receive it. The caller never learns what was passed over.
    fn receivable_by(&self, principal: Principal) -> ace_bus::Accept {
        let authorizer = std::sync::Arc::clone(&self.hooks.authorizer);
        std::sync::Arc::new(move |envelope| authorizer.can_receive(&principal, envelope))
    }

    /// Applies `kind` to each of `seqs` (1..=`max_ack_seqs` of them) and reports each one.
    pub async fn acknowledge(
        &self,
        ctx: &RequestContext,
        stream: &str,
        consumer: &str,
        seqs: &[u64],
        kind: &AckKind,
    ) -> Result<AckOutcome, CoreError> {
        self.allow_read(ctx, stream).await?;
        if seqs.is_empty() || seqs.len() > self.limits.max_ack_seqs {
            return Err(CoreError::InvalidRequest {
                field: "seqs",
                reason: format!(
                    "must name 1 to {} sequences, got {}",
                    self.limits.max_ack_seqs,
                    seqs.len()
                ),
            });
        }
        let mut outcome = AckOutcome::default();
        for &seq in seqs {
            let result = match kind {
                AckKind::Ack => self.bus.ack(stream, consumer, seq).await,
                AckKind::Nak(delay) => self.bus.nak(stream, consumer, seq, *delay).await,
                AckKind::Term(reason) => self.bus.term(stream, consumer, seq, reason).await,
            };
            match result {
                Ok(()) => outcome.done.push(seq),
                Err(err) => outcome.failed.push((seq, CoreError::Bus(err))),
            }
        }
        Ok(outcome)
    }

    /// Reads one stored message by sequence; one the caller may not receive is `NOT_FOUND`.
    pub async fn get_message(
        &self,
        ctx: &RequestContext,
        stream: &str,
        seq: u64,
    ) -> Result<StoredMessage, CoreError> {
        let principal = self.allow_read(ctx, stream).await?;
        let not_found = || CoreError::MessageNotFound {
            stream: stream.to_owned(),
            seq,
        };
        let message = self
            .bus
            .get_message(stream, seq)
            .await?
            .ok_or_else(not_found)?;
        // A message the caller may not receive (envelope `rbac`, label) is answered like a
        // missing one, as a fetch withholds it: its existence is not revealed either.
        if !ctx.is_internal()
            && !self
                .hooks
                .authorizer
                .can_receive(&principal, &message.envelope)
        {
            return Err(not_found());
        }
        Ok(message)
    }
}
