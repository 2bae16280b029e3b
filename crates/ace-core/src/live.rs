//! Live (core pub/sub) subscriptions through the core: [`Core::subscribe`] authenticates and
//! authorizes like every other operation (steps 1 and 4 of the pipeline) before the bus hands
//! out the subscription, so an adapter (the WebSocket today) cannot listen around governance.
//!
//! The action authorized is [`Action::Subscribe`] naming the subject *pattern*. Being allowed
//! the pattern is not enough to see every message on it: the subscription carries the
//! subscriber's [`Authorizer::can_receive`] (the envelope's `rbac` permissions and its label
//! against the subscriber's clearance) as its bus receive filter (`ace_bus::Accept`), which the
//! bus asks when it routes each message, before choosing who gets it:
//!
//! - a plain subscriber that may not receive a message does not get it; every other subscriber
//!   still does;
//! - in a queue group a member that may not receive a message is skipped and the message goes to
//!   a member that may (the bus's usual member choice among those); only when no member may is
//!   it not delivered to that group, counted by the bus (`LiveStats::refused`).
//!
//! Every refusal is counted by the authorizer (`ace_comms_policy_receive_denials_total`): it
//! counts refused offers, so a queue-group member skipped in favour of a cleared one counts too,
//! although the group got the message. Live delivery stays at most once: nothing is retried or
//! kept for a subscriber that joins later (a durable consumer's fetch passes the same filter to
//! the bus, which leaves a refused message undelivered and uncounted for a member that may).
//! The decision is taken when the message is routed, by the policy in force then. The server's
//! own internal subscriptions are not filtered.

use std::sync::Arc;

use ace_bus::{Accept, LiveSubscription};

use crate::context::{Principal, RequestContext};
use crate::core::Core;
use crate::error::CoreError;
use crate::governance::{Action, Authorizer};

impl Core {
    /// Subscribes live to `pattern` (optionally in a `queue` group: each message goes to one
    /// member that may receive it). Dropping the subscription unsubscribes. An invalid pattern
    /// is refused with `INVALID_SUBJECT`.
    pub async fn subscribe(
        &self,
        ctx: &RequestContext,
        pattern: &str,
        queue: Option<&str>,
    ) -> Result<Box<dyn LiveSubscription>, CoreError> {
        let principal = if queue.is_none() && is_private_inbox(pattern) {
            // A request inbox is a capability, like NATS's `_INBOX`: whoever chose its unguessable
            // token may listen there, with no subscribe rule of its own. Wildcards over inboxes,
            // short tokens and queue groups still need the subscribe rule.
            crate::pipeline::authenticate(&*self.hooks.authenticator, ctx)?
        } else {
            self.allow(ctx, Action::Subscribe(pattern)).await?
        };
        let accept = (!ctx.is_internal())
            .then(|| receivable_by(principal, Arc::clone(&self.hooks.authorizer)));
        Ok(self.bus.subscribe_filtered(pattern, queue, accept).await?)
    }
}

/// The fewest characters of a request inbox's token that any authenticated principal may
/// subscribe to without a subscribe rule: 32, a UUID's simple form, so a token made of 122 random
/// bits (UUIDv4) is not guessed.
pub(crate) const MIN_INBOX_TOKEN: usize = 32;

/// Whether `pattern` is one literal request inbox, `ace.comms.system.inbox.{token}`, whose one
/// token is at least [`MIN_INBOX_TOKEN`] subject characters long.
fn is_private_inbox(pattern: &str) -> bool {
    pattern
        .strip_prefix(crate::pipeline::INBOX_PREFIX)
        .is_some_and(|token| {
            token.len() >= MIN_INBOX_TOKEN
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// The bus receive filter of `principal`'s subscriptions: what the authorizer lets it receive.
/// Cheap enough for the bus's routing path (a clearance compare and the envelope's few `rbac`
/// permissions); it never calls back into the bus.
fn receivable_by(principal: Principal, authorizer: Arc<dyn Authorizer>) -> Accept {
    Arc::new(move |envelope| authorizer.can_receive(&principal, envelope))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use ace_bus::{EmbeddedBus, EmbeddedConfig, LiveSubscription};
    use ace_contracts::Registry;
    use ace_envelope::{Envelope, ErrorCode, Kind, Label, SourceType, SystemClock};
    use ace_policy::{EhiConfig, PolicyEngine};

    use crate::{
        Action, Authenticator, Authorizer, Core, CoreError, CoreLimits, Credentials, Decision,
        Hooks, PolicyAuthorizer, Principal, RequestContext,
    };

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

    /// Authenticates the API key `high` as a `human` of clearance 5, any other as clearance 1.
    #[derive(Debug)]
    struct ByKey;

    impl Authenticator for ByKey {
        fn authenticate(&self, ctx: &RequestContext) -> Result<Principal, CoreError> {
            let high = ctx.credentials == Credentials::ApiKey("high".to_owned());
            let (id, clearance) = if high { ("high", 5) } else { ("low", 1) };
            Ok(Principal::new(id, SourceType::Human, vec!["human".to_owned()], clearance).unwrap())
        }
    }

    /// A core enforcing the embedded RBAC (through `engine`) over `ByKey`'s two principals.
    fn cleared_core(dir: &std::path::Path, engine: &Arc<PolicyEngine>) -> Core {
        let hooks = Hooks {
            authenticator: Arc::new(ByKey),
            authorizer: Arc::new(PolicyAuthorizer::new(Arc::clone(engine))),
            ..Hooks::development()
        };
        core(dir, hooks)
    }

    fn as_key(key: &str) -> RequestContext {
        let mut ctx = RequestContext::new("test");
        ctx.credentials = Credentials::ApiKey(key.to_owned());
        ctx
    }

    /// A `low` and a `high` subscriber to `ace.comms.http.>`, in `queue` when given.
    async fn low_and_high(core: &Core, queue: Option<&str>) -> [Box<dyn LiveSubscription>; 2] {
        let pattern = "ace.comms.http.>";
        let low = core.subscribe(&as_key("low"), pattern, queue).await;
        let high = core.subscribe(&as_key("high"), pattern, queue).await;
        [low.unwrap(), high.unwrap()]
    }

    /// Publishes `n` confidential events (clearance 3 needed) as the server; their ids in order.
    async fn publish_confidential(core: &Core, n: usize) -> Vec<uuid::Uuid> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let env = Envelope::builder(Kind::Event, "ace.comms.http.service.kpi.evt.v1")
                .label(Label::Confidential)
                .payload_json(serde_json::json!({ "n": i }))
                .build()
                .unwrap();
            ids.push(env.id);
            core.publish(&RequestContext::internal(), env)
                .await
                .unwrap();
        }
        ids
    }

    /// The ids `sub` receives until it has been quiet for 200 ms.
    async fn received(sub: &mut dyn LiveSubscription) -> Vec<uuid::Uuid> {
        let mut ids = Vec::new();
        let quiet = std::time::Duration::from_millis(200);
        while let Ok(Some(m)) = tokio::time::timeout(quiet, sub.next()).await {
            ids.push(m.id);
        }
        ids
    }

    #[tokio::test]
    async fn given_a_queue_group_with_a_member_below_the_label_when_published_then_all_reach_the_cleared_member()
     {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(PolicyEngine::embedded(EhiConfig::default()).unwrap());
        let core = cleared_core(dir.path(), &engine);
        let [mut low, mut high] = low_and_high(&core, Some("workers")).await;
        let sent = publish_confidential(&core, 40).await;
        assert_eq!(received(&mut *high).await, sent, "none lost to the group");
        assert!(
            received(&mut *low).await.is_empty(),
            "nothing above clearance"
        );
    }

    #[tokio::test]
    async fn given_a_plain_subscriber_below_the_label_when_published_then_each_refusal_is_counted()
    {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(PolicyEngine::embedded(EhiConfig::default()).unwrap());
        let core = cleared_core(dir.path(), &engine);
        let [mut low, mut high] = low_and_high(&core, None).await;
        let sent = publish_confidential(&core, 5).await;
        assert_eq!(received(&mut *high).await, sent);
        assert!(received(&mut *low).await.is_empty());
        let denied = engine.counters().receive_denied.load(Ordering::Relaxed);
        assert_eq!(
            denied, 5,
            "ace_comms_policy_receive_denials_total counts each"
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

    #[tokio::test]
    async fn given_a_principal_without_subscribe_rights_when_it_listens_on_a_private_inbox_then_only_a_long_literal_token_passes()
     {
        let dir = tempfile::tempdir().unwrap();
        let hooks = Hooks {
            authorizer: Arc::new(DenyAll),
            ..Hooks::development()
        };
        let core = core(dir.path(), hooks);
        let ctx = RequestContext::new("test");
        let token = uuid::Uuid::new_v4().simple().to_string();
        let inbox = format!("ace.comms.system.inbox.{token}");
        let mut replies = core.subscribe(&ctx, &inbox, None).await.unwrap();
        let reply = Envelope::builder(Kind::Reply, inbox.as_str())
            .payload_json(serde_json::json!({"answer": 42}))
            .build()
            .unwrap();
        core.publish(&RequestContext::internal(), reply.clone())
            .await
            .unwrap();
        assert_eq!(replies.next().await.unwrap().id, reply.id);

        let short = "ace.comms.system.inbox.abc";
        let wildcard = "ace.comms.system.inbox.>";
        let nested = format!("{inbox}.more");
        for refused in [short, wildcard, nested.as_str()] {
            let err = core.subscribe(&ctx, refused, None).await.err().unwrap();
            assert_eq!(err.code(), ErrorCode::Forbidden, "{refused}");
        }
        let err = core.subscribe(&ctx, &inbox, Some("q")).await.err().unwrap();
        assert_eq!(
            err.code(),
            ErrorCode::Forbidden,
            "a queue group is a subscription rule's business"
        );
    }
}
