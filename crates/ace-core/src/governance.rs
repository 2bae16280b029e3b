//! The governance hooks of the pipeline — who is calling, may they, must a human decide, what
//! goes in the ledger — as small object-safe traits held by the core as `Arc<dyn …>`, and their
//! development-mode implementations.
//!
//! The real implementations (JWT/API-key/mTLS authentication, RBAC and Rego, EHI/HITL gating,
//! the ledger) come with the governance issue and plug in through [`Hooks`] without touching
//! the pipeline. Until then [`Hooks::development`] wires explicit pass-throughs: every caller is
//! the loudly named [`Principal::development`], everything is allowed, nothing is held, nothing
//! is recorded. [`Hooks::is_development`] lets the binary print its banner.

use std::sync::Arc;

use ace_bus::PublishAck;
use ace_envelope::Envelope;
use async_trait::async_trait;

use crate::context::{Principal, RequestContext};
use crate::error::CoreError;

/// What a principal asks to do, as handed to [`Authorizer::authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Publish a message on this subject.
    Publish(&'a str),
    /// Read from a stream (fetch, get a message, ack/nak/term, list its consumers).
    Consume(&'a str),
    /// Create, change or delete streams and consumers; `&str` names the stream.
    Manage(&'a str),
}

impl std::fmt::Display for Action<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Publish(subject) => write!(f, "publish on `{subject}`"),
            Action::Consume(stream) => write!(f, "consume from stream `{stream}`"),
            Action::Manage(stream) => write!(f, "manage stream `{stream}`"),
        }
    }
}

/// An authorization decision: a denial is a value with reasons, not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// Denied, with every reason.
    Deny(Vec<String>),
}

/// What the gate says about a message that passed authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateOutcome {
    /// Goes on to be appended.
    Pass,
    /// Held until a human decides; nothing is appended now.
    Hold {
        /// The approval that will release or reject it.
        approval_id: String,
    },
}

/// Step 1: who is calling.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The principal behind the request's credentials.
    fn authenticate(&self, ctx: &RequestContext) -> Result<Principal, CoreError>;
    /// True for the development pass-through (the server announces it loudly).
    fn is_development(&self) -> bool {
        false
    }
}

/// Step 4: may this principal do this.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// The decision; `envelope` is given for publishes.
    fn authorize(
        &self,
        principal: &Principal,
        action: Action<'_>,
        envelope: Option<&Envelope>,
    ) -> Decision;
}

/// Step 5: must a human approve this message first.
pub trait Gate: Send + Sync + std::fmt::Debug {
    /// Pass, or hold for approval.
    fn gate(&self, principal: &Principal, envelope: &Envelope) -> Result<GateOutcome, CoreError>;
}

/// Step 7: the ledger entry of an accepted message.
#[async_trait]
pub trait Recorder: Send + Sync + std::fmt::Debug {
    /// Records the accepted message with its append acknowledgement.
    async fn record(
        &self,
        principal: &Principal,
        envelope: &Envelope,
        ack: &PublishAck,
    ) -> Result<(), CoreError>;
}

/// The four governance hooks of the pipeline.
#[derive(Debug, Clone)]
pub struct Hooks {
    /// Step 1.
    pub authenticator: Arc<dyn Authenticator>,
    /// Step 4.
    pub authorizer: Arc<dyn Authorizer>,
    /// Step 5.
    pub gate: Arc<dyn Gate>,
    /// Step 7.
    pub recorder: Arc<dyn Recorder>,
}

impl Hooks {
    /// Development mode: the fixed development principal, allow everything, hold nothing,
    /// record nothing. Never for production: the server prints a banner saying so.
    pub fn development() -> Self {
        Hooks {
            authenticator: Arc::new(DevAuthenticator),
            authorizer: Arc::new(AllowAll),
            gate: Arc::new(PassGate),
            recorder: Arc::new(NoRecord),
        }
    }

    /// Whether authentication is the development pass-through.
    pub fn is_development(&self) -> bool {
        self.authenticator.is_development()
    }
}

/// Development authentication: every request is [`Principal::development`], credentials or not.
#[derive(Debug, Clone, Copy, Default)]
pub struct DevAuthenticator;

impl Authenticator for DevAuthenticator {
    fn authenticate(&self, _ctx: &RequestContext) -> Result<Principal, CoreError> {
        Ok(Principal::development())
    }

    fn is_development(&self) -> bool {
        true
    }
}

/// Development authorization: allows every action.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &Principal, _: Action<'_>, _: Option<&Envelope>) -> Decision {
        Decision::Allow
    }
}

/// Development gate: holds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassGate;

impl Gate for PassGate {
    fn gate(&self, _: &Principal, _: &Envelope) -> Result<GateOutcome, CoreError> {
        Ok(GateOutcome::Pass)
    }
}

/// Development recorder: records nothing (the ledger issue replaces it).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecord;

#[async_trait]
impl Recorder for NoRecord {
    async fn record(&self, _: &Principal, _: &Envelope, _: &PublishAck) -> Result<(), CoreError> {
        Ok(())
    }
}
