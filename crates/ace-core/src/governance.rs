//! The governance hooks of the pipeline — who is calling, may they, what goes in the ledger — as
//! small object-safe traits held by the core as `Arc<dyn …>`, and their development-mode
//! implementations.
//!
//! - [`Authenticator`] (step 1) turns a [`RequestContext`] into a [`Principal`].
//! - [`Authorizer`] (step 4) answers an [`Action`] with an `ace_policy` [`Decision`]: allow, deny
//!   with reasons, or require approval (step 5 then holds the message in the core's approvals).
//! - [`Recorder`] (step 7, and every other decision on a message) makes ledger entries durable.
//!
//! [`Hooks::development`] wires explicit pass-throughs: every caller is the loudly named
//! [`Principal::development`], everything is allowed, nothing is recorded.
//! [`Hooks::is_development`] lets the binary print its banner.

use std::sync::Arc;

use ace_envelope::Envelope;
use ace_ledger::NewEntry;
use async_trait::async_trait;

pub use ace_policy::Decision;

use crate::context::{Principal, RequestContext};
use crate::error::CoreError;

/// What a principal asks to do, as handed to [`Authorizer::authorize`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    /// Publish a message on this literal subject.
    Publish(&'a str),
    /// Subscribe live to this subject pattern.
    Subscribe(&'a str),
    /// Read a stream (fetch, get a message, ack/nak/term, list or read its consumers):
    /// `stream` is its name, `subjects` the subject patterns the read covers (the stream's
    /// subjects, or a consumer's filter). Judged as a subscription to each of them.
    Consume {
        /// The stream's name.
        stream: &'a str,
        /// The patterns read.
        subjects: &'a [String],
    },
    /// Create, change or delete a stream or one of its consumers; names the stream.
    Manage(&'a str),
    /// Decide (approve or reject) the pending approval with this id.
    Decide(&'a str),
    /// Read the ledger (entries, checkpoints, proofs).
    ReadLedger,
    /// Read session `id` (its owner, or a principal who may manage it).
    ReadSession(&'a str),
    /// Write session `id` (its owner, or a principal who may manage it).
    WriteSession(&'a str),
    /// Read or write session `id` although another principal owns it.
    ManageSession(&'a str),
    /// Act for agent `id` (heartbeat its presence) although the caller is not that agent.
    ManageAgent(&'a str),
}

impl std::fmt::Display for Action<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Publish(subject) => write!(f, "publish on `{subject}`"),
            Action::Subscribe(pattern) => write!(f, "subscribe to `{pattern}`"),
            Action::Consume { stream, .. } => write!(f, "consume from stream `{stream}`"),
            Action::Manage(stream) => write!(f, "manage stream `{stream}`"),
            Action::Decide(id) => write!(f, "decide approval `{id}`"),
            Action::ReadLedger => f.write_str("read the ledger"),
            Action::ReadSession(id) => write!(f, "read session `{id}`"),
            Action::WriteSession(id) => write!(f, "write session `{id}`"),
            Action::ManageSession(id) => write!(f, "manage session `{id}` of another principal"),
            Action::ManageAgent(id) => write!(f, "act for agent `{id}`"),
        }
    }
}

/// Step 1: who is calling.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// The principal behind the request's credentials.
    fn authenticate(&self, ctx: &RequestContext) -> Result<Principal, CoreError>;
    /// When the request's credentials stop being valid (a bearer token's `exp`, seconds since
    /// the Unix epoch), if they expire at all; asked after a successful [`authenticate`], so a
    /// long-lived connection can authenticate again at that moment. `None` by default (API keys
    /// and certificates end by revocation, which a reload brings).
    ///
    /// [`authenticate`]: Authenticator::authenticate
    fn expires_at(&self, _ctx: &RequestContext) -> Option<u64> {
        None
    }
    /// True for the development pass-through (the server announces it loudly).
    fn is_development(&self) -> bool {
        false
    }
}

/// Step 4: may this principal do this.
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// The decision; `envelope` is given for publishes. `RequireApproval` is only meaningful
    /// for a publish (step 5 holds the message); for any other action the core treats it as a
    /// denial.
    fn authorize(
        &self,
        principal: &Principal,
        action: Action<'_>,
        envelope: Option<&Envelope>,
    ) -> Decision;

    /// May `principal` receive `envelope` (its `rbac` permissions and clearance label); asked
    /// for every live delivery and every fetched message. Allows everything by default. For live
    /// delivery it is the bus's receive filter: it runs on the publisher's path while the bus
    /// routes the message, under its subscription lock, so keep it cheap and never call into the
    /// bus from it.
    fn can_receive(&self, _principal: &Principal, _envelope: &Envelope) -> bool {
        true
    }
}

/// Step 7, and every other decision on a message: ledger entries.
#[async_trait]
pub trait Recorder: Send + Sync + std::fmt::Debug {
    /// Makes `entries` durable, in order, before returning `Ok`.
    async fn record(&self, entries: Vec<NewEntry>) -> Result<(), CoreError>;

    /// Whether entries are kept at all: `false` lets the publish path skip building them (the
    /// content hash of every payload) when nothing records them.
    fn is_recording(&self) -> bool {
        true
    }
}

/// The governance hooks of the pipeline.
#[derive(Debug, Clone)]
pub struct Hooks {
    /// Step 1.
    pub authenticator: Arc<dyn Authenticator>,
    /// Step 4 (its `RequireApproval` drives step 5).
    pub authorizer: Arc<dyn Authorizer>,
    /// Step 7.
    pub recorder: Arc<dyn Recorder>,
}

impl Hooks {
    /// Development mode: the fixed development principal, allow everything, record nothing.
    /// Never for production: the server prints a banner saying so.
    pub fn development() -> Self {
        Hooks {
            authenticator: Arc::new(DevAuthenticator),
            authorizer: Arc::new(AllowAll),
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

/// Records nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRecord;

#[async_trait]
impl Recorder for NoRecord {
    async fn record(&self, _: Vec<NewEntry>) -> Result<(), CoreError> {
        Ok(())
    }

    fn is_recording(&self) -> bool {
        false
    }
}
