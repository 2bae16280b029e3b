//! The real governance hooks over `ace-policy`: [`PolicyAuthenticator`] (step 1: JWT, API key,
//! client certificate), [`PolicyAuthorizer`] (step 4: RBAC → Rego → EHI through one
//! [`PolicyEngine`]) and [`DevAuthorizer`], the authorizer of development mode.
//!
//! # Authentication
//!
//! The credentials of the request decide which method runs, in this order: a bearer token is
//! verified as a JWT (through a [`TokenCache`]: a verified token is remembered until its `exp`,
//! checked on every hit, so RS256/ES256 signatures are not paid per request); an API key is
//! looked up in the [`ApiKeyStore`]; otherwise the verified mTLS client certificate (the TLS
//! acceptor puts its DER in [`RequestContext::peer_certificate`]) is mapped by
//! [`principal_from_certificate`]. Nothing at all is `UNAUTHENTICATED` with
//! [`NO_CREDENTIALS`]; a credential of a kind the server is not configured for is
//! `UNAUTHENTICATED` naming the configuration key; a refused credential is `UNAUTHENTICATED`
//! with its [`AuthFailure`](ace_policy::AuthFailure) text, which never contains the secret.
//!
//! # Authorization: every action is a subject
//!
//! RBAC and Rego only know `publish` and `subscribe` on subjects, so every [`Action`] maps to
//! one (the NATS `$JS.API.STREAM.*` idea: management is a command subject, so the patterns of
//! `policies/rbac.yaml` grant it):
//!
//! | action                      | judged as                                                    |
//! |-----------------------------|--------------------------------------------------------------|
//! | `Publish(s)`                | publish on `s`, with the envelope (RBAC → Rego → EHI)         |
//! | `Subscribe(p)`              | subscribe to `p`                                             |
//! | `Consume { subjects, .. }`  | subscribe to each subject; all must allow (none → denied)    |
//! | `Manage(stream)`            | publish on `ace.comms.system.stream.{stream}.cmd.manage.v1`  |
//! | `Decide(id)`                | publish on `ace.comms.system.hitl.approval.{id}.cmd.decide.v1` |
//! | `ReadLedger`                | subscribe to `ace.comms.system.ledger.>`                     |
//! | `ReadSession(id)`           | subscribe to `ace.comms.system.session.{id}.evt.written.v1`  |
//! | `WriteSession(id)`          | publish on `ace.comms.system.session.{id}.evt.written.v1`    |
//! | `ManageSession(id)`         | publish on `ace.comms.system.session.{id}.cmd.manage.v1`     |
//! | `ManageAgent(id)`           | publish on `ace.comms.system.agent.{id}.cmd.manage.v1`       |
//! | the server's reload         | publish on [`RELOAD_SUBJECT`] (`ace.comms.system.config.cmd.reload.v1`) |
//!
//! A stream name or approval id that is not one subject token (`[A-Za-z0-9_-]+`) cannot be
//! spliced into a subject without changing its meaning, so it is denied, never escaped into
//! some other subject. With the shipped roles, only `admin` manages streams; deciding is
//! `approver`-only (admin's deny on `ace.comms.system.hitl.>` wins: four eyes); the ledger is
//! read by `admin`, `approver` and `auditor`. Sessions are read and written by `agent` and
//! `human` — their own only: the core asks `ManageSession` as well when the session belongs to
//! another principal, which only `admin` holds; an agent heartbeats as itself, or needs
//! `ManageAgent`. A failing Rego engine denies with
//! [`ace_policy::POLICY_ENGINE_FAILURE`] among the reasons, which reach the 403 body.
//! [`Authorizer::can_receive`] is [`PolicyEngine::can_receive`] (the envelope's `rbac`
//! permissions and its label against the receiver's clearance).
//!
//! # Reload
//!
//! [`PolicyAuthenticator::replace`] and [`PolicyAuthorizer::replace`] swap the whole state
//! behind one pointer: a request reads it once and is judged entirely by the old state or
//! entirely by the new, and readers never wait on the work of a reload (the caller builds
//! everything first; the lock is held for the pointer swap only). Replacing the authenticator
//! drops the cache of verified tokens with it, so a JWT key or API key taken away stops working
//! from the next request on.
//!
//! # Development mode
//!
//! `DevAuthenticator` (every caller is the development admin) with [`DevAuthorizer`]: no RBAC,
//! no Rego, every action allowed — including `Decide`, which RBAC would refuse the development
//! admin — but EHI holds stay ON for publishes, so the approval flow can be exercised without
//! setting up credentials. A message without an EHI score and without `requires_approval` is
//! never held, so ordinary development traffic passes as before.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ace_envelope::Envelope;
use ace_policy::{
    Action as PolicyAction, ApiKeyStore, DEFAULT_TOKEN_CACHE_CAPACITY, EhiGate, PolicyEngine,
    TokenCache, TokenVerifier, principal_from_certificate,
};

use crate::context::{Credentials, Principal, RequestContext};
use crate::error::CoreError;
use crate::governance::{Action, Authenticator, Authorizer, Decision};

/// The 401 reason when a request carries no credentials at all.
pub const NO_CREDENTIALS: &str =
    "no credentials: send `Authorization: Bearer <jwt>`, `X-ACE-API-Key`, or a client certificate";

/// The subject pattern that stands for reading the ledger.
pub const LEDGER_SUBJECTS: &str = "ace.comms.system.ledger.>";

/// The subject that stands for reloading the server's credentials and policies (its admin
/// endpoint), judged as a publish: with the shipped roles only `admin` may.
pub const RELOAD_SUBJECT: &str = "ace.comms.system.config.cmd.reload.v1";

/// The subject that stands for managing `stream` (`None` when the name is not one token).
pub fn manage_subject(stream: &str) -> Option<String> {
    is_token(stream).then(|| format!("ace.comms.system.stream.{stream}.cmd.manage.v1"))
}

/// The subject that stands for deciding approval `id` (`None` when the id is not one token).
pub fn decide_subject(id: &str) -> Option<String> {
    is_token(id).then(|| format!("ace.comms.system.hitl.approval.{id}.cmd.decide.v1"))
}

/// The subject that stands for reading (`Subscribe`) or writing (`Publish`) session `id`.
pub fn session_subject(id: &str) -> Option<String> {
    is_token(id).then(|| format!("ace.comms.system.session.{id}.evt.written.v1"))
}

/// The subject that stands for managing session `id` of another principal.
pub fn manage_session_subject(id: &str) -> Option<String> {
    is_token(id).then(|| format!("ace.comms.system.session.{id}.cmd.manage.v1"))
}

/// The subject that stands for acting for agent `id` (heartbeating as it).
pub fn manage_agent_subject(id: &str) -> Option<String> {
    is_token(id).then(|| format!("ace.comms.system.agent.{id}.cmd.manage.v1"))
}

/// The subject `action` is judged as, for the ledger entry of a denial: the subject or pattern
/// of a message action, `stream.{name}` for a read of a stream, and the mapped subject (see the
/// module docs) for the others, or the action's description when a name is not one token.
pub fn action_subject(action: Action<'_>) -> String {
    let mapped = match action {
        Action::Publish(subject) | Action::Subscribe(subject) => Some(subject.to_owned()),
        Action::Consume { stream, .. } => Some(format!("stream.{stream}")),
        Action::Manage(stream) => manage_subject(stream),
        Action::Decide(id) => decide_subject(id),
        Action::ReadLedger => Some(LEDGER_SUBJECTS.to_owned()),
        Action::ReadSession(id) | Action::WriteSession(id) => session_subject(id),
        Action::ManageSession(id) => manage_session_subject(id),
        Action::ManageAgent(id) => manage_agent_subject(id),
    };
    mapped.unwrap_or_else(|| action.to_string())
}

fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl crate::core::Core {
    /// Step 1 alone: who the request's credentials name (the system principal for an internal
    /// request). For adapters that must refuse before any operation, like the WebSocket upgrade.
    pub fn authenticate(&self, ctx: &RequestContext) -> Result<Principal, CoreError> {
        crate::pipeline::authenticate(&*self.hooks.authenticator, ctx)
    }

    /// When the credentials of `ctx` lapse (seconds since the Unix epoch), for a connection that
    /// authenticated with them and lives on: it must call [`Core::authenticate`] again then (and
    /// after every reload, which may revoke a key). `None` for credentials without an expiry.
    pub fn credentials_expire_at(&self, ctx: &RequestContext) -> Option<u64> {
        if ctx.is_internal() {
            return None;
        }
        self.hooks.authenticator.expires_at(ctx)
    }

    /// Steps 1 and 4 for an operation the adapter carries out itself, like the server's
    /// reload (judged as `Action::Publish(RELOAD_SUBJECT)`): the principal, or
    /// `UNAUTHENTICATED` / `FORBIDDEN`.
    pub async fn permit(
        &self,
        ctx: &RequestContext,
        action: Action<'_>,
    ) -> Result<Principal, CoreError> {
        self.allow(ctx, action).await
    }
}

/// Step 1 over the configured methods (see the module docs for the order).
///
/// The methods live behind one pointer that [`PolicyAuthenticator::replace`] swaps: a request
/// reads it once, so it sees the old methods or the new ones, never half of each.
#[derive(Debug)]
pub struct PolicyAuthenticator {
    methods: Swap<Methods>,
}

/// The methods accepted at one time; replaced as a whole.
#[derive(Debug)]
struct Methods {
    tokens: Option<TokenCache>,
    api_keys: Option<ApiKeyStore>,
    mtls: bool,
}

impl PolicyAuthenticator {
    /// Accepts JWTs when `tokens` is given, API keys when `api_keys` is, and verified client
    /// certificates when `mtls`. Verified tokens are cached (up to
    /// [`DEFAULT_TOKEN_CACHE_CAPACITY`]).
    pub fn new(tokens: Option<TokenVerifier>, api_keys: Option<ApiKeyStore>, mtls: bool) -> Self {
        PolicyAuthenticator {
            methods: Swap::new(Methods::new(tokens, api_keys, mtls)),
        }
    }

    /// Replaces every method at once (a reload). The cache of verified tokens starts empty, so
    /// a token whose key was removed is refused from the next request on; an API key no longer
    /// in `api_keys` likewise. Requests already past authentication are not affected.
    pub fn replace(
        &self,
        tokens: Option<TokenVerifier>,
        api_keys: Option<ApiKeyStore>,
        mtls: bool,
    ) {
        self.methods.replace(Methods::new(tokens, api_keys, mtls));
    }

    /// The methods accepted, for the start-up log (`jwt`, `api_key`, `mtls`).
    pub fn methods(&self) -> Vec<&'static str> {
        let current = self.methods.load();
        let mut methods = Vec::new();
        if current.tokens.is_some() {
            methods.push("jwt");
        }
        if current.api_keys.is_some() {
            methods.push("api_key");
        }
        if current.mtls {
            methods.push("mtls");
        }
        methods
    }
}

impl Methods {
    fn new(tokens: Option<TokenVerifier>, api_keys: Option<ApiKeyStore>, mtls: bool) -> Self {
        Methods {
            tokens: tokens.map(|v| TokenCache::new(v, DEFAULT_TOKEN_CACHE_CAPACITY)),
            api_keys,
            mtls,
        }
    }
}

/// A value readers take a snapshot of and a reload replaces whole.
///
/// A `std::sync::RwLock` around an `Arc`: the lock is held only to clone or to swap the
/// pointer (never while a file is read, a policy compiled or a request judged), so readers
/// never wait on a reload's work, and the workspace needs no extra dependency for it.
#[derive(Debug)]
struct Swap<T> {
    current: RwLock<Arc<T>>,
}

impl<T> Swap<T> {
    fn new(value: impl Into<Arc<T>>) -> Self {
        Swap {
            current: RwLock::new(value.into()),
        }
    }

    /// The current value (a poisoned lock still holds a whole `Arc`: the swap cannot panic
    /// half-way).
    fn load(&self) -> Arc<T> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `value` in place and returns the value it replaces.
    fn replace(&self, value: impl Into<Arc<T>>) -> Arc<T> {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *current, value.into())
    }
}

fn unauthenticated(reason: impl Into<String>) -> CoreError {
    CoreError::Unauthenticated {
        reason: reason.into(),
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Authenticator for PolicyAuthenticator {
    fn expires_at(&self, ctx: &RequestContext) -> Option<u64> {
        match (&ctx.credentials, &self.methods.load().tokens) {
            (Credentials::Bearer(token), Some(cache)) => cache.expiry(token),
            _ => None,
        }
    }

    fn authenticate(&self, ctx: &RequestContext) -> Result<Principal, CoreError> {
        let refused = |method: &str, failure: ace_policy::AuthFailure| {
            unauthenticated(format!("{method} refused: {failure}"))
        };
        let methods = self.methods.load();
        match &ctx.credentials {
            Credentials::Bearer(token) => match &methods.tokens {
                Some(cache) => cache
                    .verify(token, now_secs())
                    .map_err(|f| refused("bearer token", f)),
                None => Err(unauthenticated(
                    "bearer tokens are not accepted here (auth.jwt is not configured)",
                )),
            },
            Credentials::ApiKey(key) => match &methods.api_keys {
                Some(store) => store.verify(key).map_err(|f| refused("API key", f)),
                None => Err(unauthenticated(
                    "API keys are not accepted here (auth.api_keys is not configured)",
                )),
            },
            Credentials::None => match (&ctx.peer_certificate, methods.mtls) {
                (Some(der), true) => {
                    principal_from_certificate(der).map_err(|f| refused("client certificate", f))
                }
                (Some(_), false) => Err(unauthenticated(
                    "client certificates are not accepted here (auth.mtls is false)",
                )),
                (None, _) => Err(unauthenticated(NO_CREDENTIALS)),
            },
        }
    }
}

/// Step 4 over a [`PolicyEngine`] (see the module docs for the mapping of actions).
///
/// Clones share one engine slot: [`PolicyAuthorizer::replace`] on any clone changes what every
/// clone decides with. A decision reads the slot once, so it is made whole by one engine.
#[derive(Debug, Clone)]
pub struct PolicyAuthorizer {
    engine: Arc<Swap<PolicyEngine>>,
}

impl PolicyAuthorizer {
    /// An authorizer deciding with `engine`.
    pub fn new(engine: Arc<PolicyEngine>) -> Self {
        PolicyAuthorizer {
            engine: Arc::new(Swap::new(engine)),
        }
    }

    /// The engine deciding now (its counters feed the server's metrics).
    pub fn engine(&self) -> Arc<PolicyEngine> {
        self.engine.load()
    }

    /// Decides with `engine` from the next request on (a reload); returns the engine it
    /// replaces, whose counters hold what it decided.
    pub fn replace(&self, engine: Arc<PolicyEngine>) -> Arc<PolicyEngine> {
        self.engine.replace(engine)
    }

    fn on(
        engine: &PolicyEngine,
        principal: &Principal,
        action: PolicyAction,
        subject: Option<String>,
        what: &str,
    ) -> Decision {
        match subject {
            Some(subject) => engine.authorize(principal, action, &subject, None),
            None => Decision::deny(format!("{what} is not one subject token ([A-Za-z0-9_-]+)")),
        }
    }
}

impl Authorizer for PolicyAuthorizer {
    fn authorize(
        &self,
        principal: &Principal,
        action: Action<'_>,
        envelope: Option<&Envelope>,
    ) -> Decision {
        let engine = &*self.engine.load();
        match action {
            Action::Publish(subject) => {
                engine.authorize(principal, PolicyAction::Publish, subject, envelope)
            }
            Action::Subscribe(pattern) => {
                engine.authorize(principal, PolicyAction::Subscribe, pattern, None)
            }
            Action::Consume { stream, subjects } => {
                if subjects.is_empty() {
                    return Decision::deny(format!("stream `{stream}` has no subjects to read"));
                }
                subjects
                    .iter()
                    .map(|s| engine.authorize(principal, PolicyAction::Subscribe, s, None))
                    .fold(Decision::Allow, Decision::and)
            }
            Action::Manage(stream) => Self::on(
                engine,
                principal,
                PolicyAction::Publish,
                manage_subject(stream),
                "the stream name",
            ),
            Action::Decide(id) => Self::on(
                engine,
                principal,
                PolicyAction::Publish,
                decide_subject(id),
                "the approval id",
            ),
            Action::ReadLedger => {
                engine.authorize(principal, PolicyAction::Subscribe, LEDGER_SUBJECTS, None)
            }
            Action::ReadSession(id) => Self::on(
                engine,
                principal,
                PolicyAction::Subscribe,
                session_subject(id),
                "the session id",
            ),
            Action::WriteSession(id) => Self::on(
                engine,
                principal,
                PolicyAction::Publish,
                session_subject(id),
                "the session id",
            ),
            Action::ManageSession(id) => Self::on(
                engine,
                principal,
                PolicyAction::Publish,
                manage_session_subject(id),
                "the session id",
            ),
            Action::ManageAgent(id) => Self::on(
                engine,
                principal,
                PolicyAction::Publish,
                manage_agent_subject(id),
                "the agent id",
            ),
        }
    }

    fn can_receive(&self, principal: &Principal, envelope: &Envelope) -> bool {
        let decision = self.engine.load().can_receive(principal, envelope);
        if !decision.is_allow() {
            tracing::debug!(
                principal = %principal.id,
                subject = %envelope.subject,
                reasons = ?decision.reasons(),
                "delivery withheld"
            );
        }
        decision.is_allow()
    }
}

/// Development authorization: every action allowed, but publishes still go through the EHI
/// gate, so a high score or `requires_approval` is held for approval as in production.
#[derive(Debug, Clone, Default)]
pub struct DevAuthorizer {
    ehi: EhiGate,
}

impl DevAuthorizer {
    /// Holds by `ehi` (the configured thresholds).
    pub fn new(ehi: EhiGate) -> Self {
        DevAuthorizer { ehi }
    }
}

impl Authorizer for DevAuthorizer {
    fn authorize(
        &self,
        _: &Principal,
        action: Action<'_>,
        envelope: Option<&Envelope>,
    ) -> Decision {
        match (action, envelope) {
            (Action::Publish(_), Some(envelope)) => self.ehi.evaluate(envelope),
            _ => Decision::Allow,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::{Kind, SourceType};
    use ace_policy::{EhiConfig, POLICY_ENGINE_FAILURE, Rbac, RegoPolicy};

    fn engine() -> Arc<PolicyEngine> {
        Arc::new(PolicyEngine::embedded(EhiConfig::default()).expect("embedded policies"))
    }

    fn who(roles: &[&str]) -> Principal {
        let roles = roles.iter().map(|r| (*r).to_owned()).collect();
        Principal::new("p", SourceType::Human, roles, 0).unwrap()
    }

    fn allowed(authorizer: &dyn Authorizer, roles: &[&str], action: Action<'_>) -> bool {
        authorizer.authorize(&who(roles), action, None).is_allow()
    }

    #[test]
    fn given_each_non_message_action_when_authorized_then_it_is_judged_as_its_subject() {
        let authz = PolicyAuthorizer::new(engine());
        let subjects = ["ace.comms.http.*.*.evt.>".to_owned()];
        let consume = Action::Consume {
            stream: "ACE_EVENTS",
            subjects: &subjects,
        };
        // (action, admin, human, approver, auditor)
        let table: [(Action<'_>, [bool; 4]); 5] = [
            (Action::Manage("ACE_EVENTS"), [true, false, false, false]),
            (Action::Decide("0190a1b2-aaaa"), [false, false, true, false]),
            (Action::ReadLedger, [true, false, true, true]),
            (consume, [true, true, false, false]),
            (
                Action::Subscribe("ace.comms.matrix.>"),
                [true, true, false, false],
            ),
        ];
        for (action, expected) in table {
            for (role, want) in ["admin", "human", "approver", "auditor"]
                .iter()
                .zip(expected)
            {
                assert_eq!(allowed(&authz, &[role], action), want, "{role} {action}");
            }
        }
    }

    #[test]
    fn given_a_name_that_is_not_a_token_when_managed_or_decided_then_it_is_denied() {
        let authz = PolicyAuthorizer::new(engine());
        for action in [
            Action::Manage("a.b"),
            Action::Decide("x.>"),
            Action::Manage(""),
        ] {
            let decision = authz.authorize(&who(&["admin", "approver"]), action, None);
            assert!(decision.is_deny(), "{action}");
            assert!(
                decision.reasons()[0].contains("subject token"),
                "{decision:?}"
            );
        }
    }

    #[test]
    fn given_a_stream_where_one_subject_is_denied_when_consumed_then_the_read_is_denied() {
        let authz = PolicyAuthorizer::new(engine());
        let subjects = [
            "ace.comms.http.*.*.evt.>".to_owned(),
            "ace.comms.agent.*.*.evt.>".to_owned(),
        ];
        let action = Action::Consume {
            stream: "MIXED",
            subjects: &subjects,
        };
        let decision = authz.authorize(&who(&["human"]), action, None);
        assert!(decision.is_deny());
        assert!(
            decision.reasons()[0].contains("ace.comms.agent"),
            "{decision:?}"
        );
        let none = Action::Consume {
            stream: "EMPTY",
            subjects: &[],
        };
        assert!(!allowed(&authz, &["admin"], none));
    }

    #[test]
    fn given_a_failing_rego_policy_when_publishing_then_the_denial_names_the_engine_failure() {
        let rego = RegoPolicy::from_sources(
            vec![(
                "broken.rego".into(),
                "package ace.comms\ndeny contains x if { x := to_number(input.subject) }".into(),
            )],
            serde_json::json!({}),
        )
        .unwrap();
        let rbac = Rbac::from_yaml(ace_policy::EMBEDDED_RBAC, "rbac").unwrap();
        let engine = PolicyEngine::new(rbac, Some(rego), EhiGate::default());
        let authz = PolicyAuthorizer::new(Arc::new(engine));
        let subject = "ace.comms.http.api.orders.evt.v1";
        let envelope = Envelope::builder(Kind::Event, subject).build_unchecked();
        let decision = authz.authorize(&who(&["human"]), Action::Publish(subject), Some(&envelope));
        assert!(decision.is_deny(), "{decision:?}");
        assert!(
            decision
                .reasons()
                .iter()
                .any(|r| r.contains(POLICY_ENGINE_FAILURE)),
            "{decision:?}"
        );
    }

    #[test]
    fn given_development_mode_when_authorizing_then_all_passes_but_ehi_still_holds() {
        let dev = DevAuthorizer::default();
        assert!(allowed(&dev, &[], Action::Decide("a1")));
        assert!(allowed(&dev, &[], Action::ReadLedger));
        let subject = "ace.comms.agent.ops.o1.cmd.v1";
        let mut risky = Envelope::builder(Kind::Command, subject).build_unchecked();
        risky.governance.ehi_score = Some(0.95);
        let held = dev.authorize(&who(&[]), Action::Publish(subject), Some(&risky));
        assert!(matches!(held, Decision::RequireApproval { .. }), "{held:?}");
        let plain = Envelope::builder(Kind::Command, subject).build_unchecked();
        assert!(
            dev.authorize(&who(&[]), Action::Publish(subject), Some(&plain))
                .is_allow()
        );
    }

    fn ctx(credentials: Credentials) -> RequestContext {
        let mut ctx = RequestContext::new("test");
        ctx.credentials = credentials;
        ctx
    }

    fn reason(result: Result<Principal, CoreError>) -> String {
        match result {
            Err(CoreError::Unauthenticated { reason }) => reason,
            other => panic!("expected a 401, got {other:?}"),
        }
    }

    #[test]
    fn given_unconfigured_or_missing_credentials_when_authenticating_then_401_says_which() {
        let mut keys = ApiKeyStore::default();
        keys.insert("k-0123456789abcdef0123456789abcdef", who(&["human"]));
        let only_keys = PolicyAuthenticator::new(None, Some(keys), false);
        assert_eq!(only_keys.methods(), ["api_key"]);
        let r = reason(only_keys.authenticate(&ctx(Credentials::Bearer("x".into()))));
        assert!(r.contains("auth.jwt"), "{r}");
        assert_eq!(
            reason(only_keys.authenticate(&ctx(Credentials::None))),
            NO_CREDENTIALS
        );
        let mut with_cert = ctx(Credentials::None);
        with_cert.peer_certificate = Some(Arc::from(&b"der"[..]));
        assert!(reason(only_keys.authenticate(&with_cert)).contains("auth.mtls"));
        let r = reason(only_keys.authenticate(&ctx(Credentials::ApiKey("nope".into()))));
        assert!(r.contains("unknown API key") && !r.contains("nope"), "{r}");
        let key = Credentials::ApiKey("k-0123456789abcdef0123456789abcdef".into());
        assert_eq!(only_keys.authenticate(&ctx(key)).unwrap().roles, ["human"]);
        let none = PolicyAuthenticator::new(None, None, true);
        let r = reason(none.authenticate(&ctx(Credentials::ApiKey("k".into()))));
        assert!(r.contains("auth.api_keys"), "{r}");
        assert!(reason(none.authenticate(&with_cert)).contains("client certificate refused"));
    }

    #[test]
    fn given_a_replaced_key_store_when_authenticating_then_only_the_new_keys_pass() {
        let (old, new) = (
            "k-old-0123456789abcdef0123456789abcdef",
            "k-new-0123456789abcdef0123456789abcdef",
        );
        let mut keys = ApiKeyStore::default();
        keys.insert(old, who(&["human"]));
        let authn = PolicyAuthenticator::new(None, Some(keys), false);
        let with_key = |key: &str| ctx(Credentials::ApiKey(key.into()));
        assert!(authn.authenticate(&with_key(old)).is_ok());
        assert!(authn.authenticate(&with_key(new)).is_err());
        let mut keys = ApiKeyStore::default();
        keys.insert(new, who(&["admin"]));
        authn.replace(None, Some(keys), true);
        assert!(reason(authn.authenticate(&with_key(old))).contains("unknown API key"));
        assert_eq!(authn.authenticate(&with_key(new)).unwrap().roles, ["admin"]);
        assert_eq!(authn.methods(), ["api_key", "mtls"]);
        authn.replace(None, None, false);
        assert!(reason(authn.authenticate(&with_key(new))).contains("auth.api_keys"));
    }

    #[test]
    fn given_a_replaced_engine_when_any_clone_authorizes_then_the_new_policy_decides() {
        let authz = PolicyAuthorizer::new(engine());
        let shared = authz.clone();
        assert!(allowed(
            &shared,
            &["human"],
            Action::Subscribe("ace.comms.matrix.>")
        ));
        let denies_matrix = "package ace.comms\n\
            deny contains \"matrix is closed\" if { startswith(input.subject, \"ace.comms.matrix.\") }";
        let rego = RegoPolicy::from_sources(
            vec![("closed.rego".into(), denies_matrix.into())],
            serde_json::json!({}),
        )
        .unwrap();
        let rbac = Rbac::from_yaml(ace_policy::EMBEDDED_RBAC, "rbac").unwrap();
        let closed = Arc::new(PolicyEngine::new(rbac, Some(rego), EhiGate::default()));
        let old = authz.replace(Arc::clone(&closed));
        assert!(Arc::ptr_eq(&shared.engine(), &closed));
        let decision = shared.authorize(
            &who(&["human"]),
            Action::Subscribe("ace.comms.matrix.>"),
            None,
        );
        assert!(
            decision.reasons().iter().any(|r| r == "matrix is closed"),
            "{decision:?}"
        );
        // The replaced engine keeps what it decided; the new one starts its own counts.
        assert_eq!(
            old.counters()
                .allowed
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
        assert_eq!(
            closed
                .counters()
                .denied
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}
