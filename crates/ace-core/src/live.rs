//! Live (core pub/sub) subscriptions through the core: [`Core::subscribe`] authenticates and
//! authorizes like every other operation (steps 1 and 4 of the pipeline) before the bus hands
//! out the subscription, so an adapter (the WebSocket today) cannot listen around governance.
//!
//! The action authorized is [`Action::Subscribe`] naming the subject *pattern*.

use ace_bus::LiveSubscription;

use crate::context::RequestContext;
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::Action;
use crate::pipeline;

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
        let principal = pipeline::authenticate(&*self.hooks.authenticator, ctx)?;
        pipeline::permit(
            &*self.hooks.authorizer,
            &principal,
            Action::Subscribe(pattern),
            None,
        )?;
        Ok(self.bus.subscribe(pattern, queue).await?)
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
