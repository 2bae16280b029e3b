//! Live (core pub/sub) subscriptions through the core: [`Core::subscribe`] authenticates and
//! authorizes like every other operation (steps 1 and 4 of the pipeline) before the bus hands
//! out the subscription, so an adapter (the WebSocket today) cannot listen around governance.
//!
//! The action authorized is [`Action::Subscribe`] naming the subject *pattern*. Being allowed
//! the pattern is not enough to see every message on it: each delivery is also asked
//! [`Authorizer::can_receive`] (the envelope's `rbac` permissions and its label against the
//! subscriber's clearance), and a message the subscriber may not receive is dropped from its
//! subscription only — other plain subscribers still get it — and counted by the authorizer
//! (`ace_comms_policy_receive_denials_total`). In a queue group the bus has already chosen the
//! one member before this filter runs, so a message that member may not receive is lost to the
//! group: give a queue group's members the same clearance (live delivery is at most once
//! anyway; durable consumers withhold and redeliver instead). The server's own internal
//! subscriptions are not filtered.

use std::sync::Arc;

use ace_bus::LiveSubscription;
use ace_envelope::Envelope;
use async_trait::async_trait;

use crate::context::{Principal, RequestContext};
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::{Action, Authorizer};

impl Core {
    /// Subscribes live to `pattern` (optionally in a `queue` group: each message goes to one
    /// member). Dropping the subscription unsubscribes. An invalid pattern is refused with
    /// `INVALID_SUBJECT`.
    pub async fn subscribe(
        &self,
        ctx: &RequestContext,
        pattern: &str,
        queue: Option<&str>,
    ) -> Result<Box<dyn LiveSubscription>, CoreError> {
        let principal = self.allow(ctx, Action::Subscribe(pattern))?;
        let inner = self.bus.subscribe(pattern, queue).await?;
        if ctx.is_internal() {
            return Ok(inner);
        }
        Ok(Box::new(Receivable {
            inner,
            principal,
            authorizer: Arc::clone(&self.hooks.authorizer),
        }))
    }
}

/// A live subscription that only hands out what its principal may receive.
struct Receivable {
    inner: Box<dyn LiveSubscription>,
    principal: Principal,
    authorizer: Arc<dyn Authorizer>,
}

#[async_trait]
impl LiveSubscription for Receivable {
    fn id(&self) -> u64 {
        self.inner.id()
    }

    async fn next(&mut self) -> Option<Arc<Envelope>> {
        loop {
            let envelope = self.inner.next().await?;
            if self.authorizer.can_receive(&self.principal, &envelope) {
                return Some(envelope);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use ace_bus::{EmbeddedBus, EmbeddedConfig};
    use ace_contracts::Registry;
    use ace_envelope::{Envelope, ErrorCode, Kind, SystemClock};

    use crate::{Action, Authorizer, Core, CoreLimits, Decision, Hooks, Principal, RequestContext};

    #[derive(Debug)]
    struct DenyAll;

    impl Authorizer for DenyAll {
        fn authorize(&self, _: &Principal, _: Action<'_>, _: Option<&Envelope>) -> Decision {
            Decision::deny("test says no")
        }
    }

    fn core(dir: &std::path::Path, hooks: Hooks) -> Core {
        Core::new(
            Arc::new(EmbeddedBus::open(EmbeddedConfig::new(dir)).unwrap()),
            Arc::new(Registry::embedded().unwrap()),
            Arc::new(SystemClock),
            hooks,
            CoreLimits::default(),
        )
    }

    #[tokio::test]
    async fn given_a_live_subscription_when_a_message_is_published_then_it_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path(), Hooks::development());
        let ctx = RequestContext::new("test");
        let mut sub = core.subscribe(&ctx, "ace.comms.ws.>", None).await.unwrap();
        let env = Envelope::builder(Kind::Event, "ace.comms.ws.service.kpi.evt.v1")
            .payload_json(serde_json::json!({}))
            .build()
            .unwrap();
        core.publish(&ctx, env.clone()).await.unwrap();
        assert_eq!(sub.next().await.unwrap().id, env.id);
    }

    /// Lets everyone subscribe, but nobody receive a message labelled `secret`.
    #[derive(Debug)]
    struct NoSecrets;

    impl Authorizer for NoSecrets {
        fn authorize(&self, _: &Principal, _: Action<'_>, _: Option<&Envelope>) -> Decision {
            Decision::Allow
        }

        fn can_receive(&self, _: &Principal, envelope: &Envelope) -> bool {
            envelope.governance.label != ace_envelope::Label::Secret
        }
    }

    #[tokio::test]
    async fn given_a_message_the_subscriber_may_not_receive_when_published_then_it_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            authorizer: Arc::new(NoSecrets),
            ..Hooks::development()
        };
        let core = core(dir.path(), hooks);
        let ctx = RequestContext::new("test");
        let mut sub = core.subscribe(&ctx, "ace.comms.ws.>", None).await.unwrap();
        let mut internal = core
            .subscribe(&RequestContext::internal(), "ace.comms.ws.>", None)
            .await
            .unwrap();
        let subject = "ace.comms.ws.service.kpi.evt.v1";
        let secret = Envelope::builder(Kind::Event, subject)
            .label(ace_envelope::Label::Secret)
            .payload_json(serde_json::json!({}))
            .build()
            .unwrap();
        let open = Envelope::builder(Kind::Event, subject)
            .payload_json(serde_json::json!({}))
            .build()
            .unwrap();
        core.publish(&ctx, secret.clone()).await.unwrap();
        core.publish(&ctx, open.clone()).await.unwrap();
        assert_eq!(
            sub.next().await.unwrap().id,
            open.id,
            "the secret is skipped"
        );
        assert_eq!(
            internal.next().await.unwrap().id,
            secret.id,
            "the server sees all"
        );
    }

    #[tokio::test]
    async fn given_a_bad_pattern_or_a_denial_when_subscribing_then_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = RequestContext::new("test");
        let open = core(dir.path(), Hooks::development());
        let err = open.subscribe(&ctx, "ace..>", None).await.err().unwrap();
        assert_eq!(err.code(), ErrorCode::InvalidSubject);
        drop(open);
        let other = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            authorizer: Arc::new(DenyAll),
            ..Hooks::development()
        };
        let closed = core(other.path(), hooks);
        let err = closed.subscribe(&ctx, "ace.>", None).await.err().unwrap();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        assert!(err.to_string().contains("ace.>"), "{err}");
    }
}
