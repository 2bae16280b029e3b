//! The seven ingress steps, one plain function each, in the order they run:
//! [`authenticate`] → [`validate`] → [`contract`] → [`authorize`] → gate → [`append`] →
//! [`record`].
//!
//! Two integrity steps (`crate::integrity`) ride along: [`signature`] right after
//! [`validate`] (a signature says who sent it, so it belongs to authentication: a required one
//! missing, by an unknown key or not verifying is `UNAUTHENTICATED`), and [`redact`] right after
//! [`contract`] (with `pii.redact_stored`, the fields `governance.pii` names are replaced before
//! any later step — policy, held approvals, the bus, the ledger's content hash — keeps them).
//!
//! Each step takes only what it needs (a hook, the registry, the bus, the envelope), so it can be
//! tested alone; `Core::publish` strings them together. Steps 1–4 have no side effect, so a
//! message refused by any of them leaves nothing behind on the bus (a denial is recorded in the
//! ledger). Step 5, the gate, is [`authorize`] answering [`Admission::Hold`]: the core then
//! keeps the message as a pending approval (`Core::hold`) instead of appending it. Only
//! [`append`] writes a message.

use ace_bus::{Bus, PublishAck};
use ace_contracts::Registry;
use ace_envelope::{Envelope, Limits, Source};
use chrono::{DateTime, Utc};

use ace_ledger::{EntryKind, NewEntry};
use serde_json::Value;

use crate::context::{Principal, RequestContext, system_principal};
use crate::error::CoreError;
use crate::governance::{Action, Authenticator, Authorizer, Decision, Recorder};
use crate::integrity::{PiiPolicy, SignatureCheck, SignaturePolicy};

/// Step 1: the principal behind the request; an internal request is the server's own
/// [`system_principal`] and an actor of the server ([`RequestContext::acting_as`]) its own
/// principal, neither reaching the authenticator.
pub fn authenticate(
    authenticator: &dyn Authenticator,
    ctx: &RequestContext,
) -> Result<Principal, CoreError> {
    if ctx.is_internal() {
        return Ok(system_principal());
    }
    if let Some(principal) = ctx.acting() {
        return Ok(principal.clone());
    }
    authenticator.authenticate(ctx)
}

/// What steps 4 and 5 say about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Goes on to be appended.
    Pass,
    /// Must be approved by a human first; the reasons of every rule that asked.
    Hold(Vec<String>),
}

/// Gives an envelope without a `source` the authenticated principal as its source (part of
/// step 1: ingress stamps who sent it).
pub fn stamp_source(principal: &Principal, envelope: &mut Envelope) {
    if envelope.source.is_none() {
        envelope.source = Some(Source::new(principal.kind, principal.id.clone()));
    }
}

/// Step 2: the envelope's shape and rules, the hop limit (a loop guard with its own code), a
/// `created_at` no further in the future than `limits.max_clock_skew` (a `ttl_ms` counts from
/// it, so a far-future one would never expire), and its TTL or deadline at `now`.
pub fn validate(
    envelope: &Envelope,
    limits: &crate::core::CoreLimits,
    now: DateTime<Utc>,
) -> Result<(), CoreError> {
    let max_hops = limits.max_hops;
    if envelope.hops > max_hops {
        return Err(CoreError::HopLimitExceeded {
            hops: envelope.hops,
            limit: max_hops,
        });
    }
    let mut violations = envelope.validate_with(&Limits { max_hops });
    let skew = chrono::Duration::from_std(limits.max_clock_skew).unwrap_or(chrono::TimeDelta::MAX);
    if now
        .checked_add_signed(skew)
        .is_some_and(|latest| envelope.created_at > latest)
    {
        violations.push(ace_envelope::Violation {
            path: "/created_at".to_owned(),
            message: format!(
                "{} is more than {} s ahead of the server's clock ({})",
                envelope.created_at.to_rfc3339(),
                limits.max_clock_skew.as_secs(),
                now.to_rfc3339()
            ),
        });
    }
    if !violations.is_empty() {
        return Err(CoreError::InvalidEnvelope(violations));
    }
    match envelope.expires_at() {
        Some(expired_at) if envelope.is_expired(now) => Err(CoreError::Expired {
            id: envelope.id,
            expired_at,
        }),
        _ => Ok(()),
    }
}

/// Step 2, continued: the envelope's signature under `policy` (required on some subjects,
/// verified whenever its key is registered; the rules are in [`crate::integrity`]).
/// `source_stamped` says that [`stamp_source`] gave the envelope its `source`, which a signer
/// cannot have signed. Refusals are `UNAUTHENTICATED`.
pub fn signature(
    policy: &SignaturePolicy,
    envelope: &Envelope,
    source_stamped: bool,
) -> Result<SignatureCheck, CoreError> {
    Ok(policy.check(envelope, source_stamped)?)
}

/// Step 3, continued: with `pii.redact_stored`, the payload fields `governance.pii` names are
/// replaced before anything keeps the message (policy input, held approvals, the bus, the
/// ledger's content hash). A signed envelope holding named fields, a non-JSON payload naming
/// some, or a named path that matches nothing in the payload (a mistyped path would store the
/// data it meant to redact) is refused `INVALID_REQUEST` rather than stored unredacted.
pub fn redact(policy: &PiiPolicy, envelope: &mut Envelope) -> Result<usize, CoreError> {
    policy
        .apply(envelope)
        .map_err(|err| CoreError::InvalidRequest {
            field: "governance.pii",
            reason: err.to_string(),
        })
}

/// Step 3: the inline JSON payload against the contract its `schema` names. Envelopes without
/// a `schema`, with referenced content (`payload_ref`) or with non-JSON content pass: there is
/// no inline JSON to check.
pub fn contract(registry: &Registry, envelope: &Envelope) -> Result<(), CoreError> {
    let Some(schema_ref) = envelope.schema.as_deref() else {
        return Ok(());
    };
    // resolve fails only for a malformed reference or an unregistered subject or version.
    let schema = registry
        .resolve(schema_ref)
        .map_err(|err| CoreError::UnknownSchema {
            schema: schema_ref.to_owned(),
            reason: err.to_string(),
        })?;
    match inline_json(envelope) {
        Some(payload) => conforms(&schema, payload),
        None => Ok(()),
    }
}

/// The envelope's inline JSON payload, if it has one (not `payload_ref`, not other content).
pub(crate) fn inline_json(envelope: &Envelope) -> Option<&serde_json::Value> {
    envelope
        .payload
        .as_ref()
        .filter(|_| envelope.has_json_payload())
}

/// `payload` against `schema`: `CONTRACT_VIOLATION` with every error and its pointers.
pub(crate) fn conforms(
    schema: &ace_contracts::RegisteredSchema,
    payload: &serde_json::Value,
) -> Result<(), CoreError> {
    schema
        .validate(payload)
        .map_err(|errors| CoreError::ContractViolation {
            schema: schema.schema_ref(),
            errors,
        })
}

/// Steps 4 and 5: may the principal publish on the envelope's subject, and must a human approve
/// it first. A denial is `FORBIDDEN`; an approval request is [`Admission::Hold`].
pub fn authorize(
    authorizer: &dyn Authorizer,
    principal: &Principal,
    envelope: &Envelope,
) -> Result<Admission, CoreError> {
    let action = Action::Publish(&envelope.subject);
    match authorizer.authorize(principal, action, Some(envelope)) {
        Decision::Allow => Ok(Admission::Pass),
        Decision::RequireApproval { reasons } => Ok(Admission::Hold(reasons)),
        Decision::Deny { reasons } => Err(forbidden(principal, action, reasons)),
    }
}

/// Step 4, first: identity comes from authentication, never from the body. An envelope's
/// `source` (stamped from the principal when absent) must name the authenticated principal —
/// its type and id — or the message is refused `FORBIDDEN`, never rewritten: a rewritten source
/// would break the signature over it, and a publisher that claims to be someone else should
/// learn so. The core skips this in development mode, where nobody is authenticated.
pub fn identity(principal: &Principal, envelope: &Envelope) -> Result<(), CoreError> {
    let Some(source) = &envelope.source else {
        return Ok(());
    };
    if source.id == principal.id && source.source_type == principal.kind {
        return Ok(());
    }
    Err(forbidden(
        principal,
        Action::Publish(&envelope.subject),
        vec![format!(
            "`source` {{type: {}, id: {}}} is not the authenticated principal {{type: {}, id: {}}}; \
             leave `source` out and the server fills it in",
            source.source_type, source.id, principal.kind, principal.id
        )],
    ))
}

/// The prefix of request inboxes: a `reply_to` here is an answer address, never a command.
pub const INBOX_PREFIX: &str = ace_bus::live::INBOX_PREFIX;

/// Step 4, last: a `headers.reply_to` is an address the server publishes to on the publisher's
/// behalf (it answers there when it rejects a held message or the message expires), so it is
/// authorized as the publisher when it is given: a literal subject, and either a request inbox
/// (`ace.comms.system.inbox.{token}`, which only carries answers) or a subject the publisher
/// may publish on itself. Otherwise `FORBIDDEN` (or `INVALID_REQUEST` for a malformed subject).
pub fn reply_to(
    authorizer: &dyn Authorizer,
    principal: &Principal,
    envelope: &Envelope,
) -> Result<(), CoreError> {
    let Some(reply_to) = envelope.headers.get(ace_bus::live::REPLY_TO_HEADER) else {
        return Ok(());
    };
    if let Err(err) = ace_envelope::Subject::new(reply_to.as_str()) {
        return Err(CoreError::InvalidRequest {
            field: "headers.reply_to",
            reason: err.to_string(),
        });
    }
    let inbox = reply_to
        .strip_prefix(INBOX_PREFIX)
        .is_some_and(|token| !token.is_empty() && !token.contains('.'));
    if inbox {
        return Ok(());
    }
    match authorizer.authorize(principal, Action::Publish(reply_to), None) {
        Decision::Allow => Ok(()),
        Decision::Deny { reasons } | Decision::RequireApproval { reasons } => Err(forbidden(
            principal,
            Action::Publish(&envelope.subject),
            std::iter::once(format!(
                "`headers.reply_to` names `{reply_to}`, where the server would answer on the \
                 publisher's behalf, and the publisher may not publish there"
            ))
            .chain(reasons)
            .collect(),
        )),
    }
}

/// The decision of `authorizer` on any action but a publish, as a result: an approval request
/// is a denial here (only messages can be held).
pub fn permit(
    authorizer: &dyn Authorizer,
    principal: &Principal,
    action: Action<'_>,
    envelope: Option<&Envelope>,
) -> Result<(), CoreError> {
    match authorizer.authorize(principal, action, envelope) {
        Decision::Allow => Ok(()),
        Decision::Deny { reasons } | Decision::RequireApproval { reasons } => {
            Err(forbidden(principal, action, reasons))
        }
    }
}

fn forbidden(principal: &Principal, action: Action<'_>, reasons: Vec<String>) -> CoreError {
    CoreError::Forbidden {
        principal: principal.id.clone(),
        action: action.to_string(),
        reasons,
    }
}

/// Step 6, first: the message passes through the backbone once more, so `hops` counts one
/// more. Every admitted message — from a client or re-published by the server (dead letters,
/// answers to `reply_to`, released approvals, which start from their cause's count) — is counted
/// here, so a loop of consumers that forward what they receive is stopped by [`validate`]'s hop
/// limit without any client counting.
pub fn hop(envelope: &mut Envelope) {
    envelope.hops = envelope.hops.saturating_add(1);
}

/// Step 6: the one write — the bus persists the message (durable per the stream's sync
/// policy) and answers with its stream and sequence, or the original ones for a duplicate.
pub async fn append(bus: &dyn Bus, envelope: Envelope) -> Result<PublishAck, CoreError> {
    Ok(bus.publish(envelope).await?)
}

/// The ledger entry of one decision on `envelope` by (or about) `principal`.
pub fn entry(
    kind: EntryKind,
    principal: &Principal,
    envelope: &Envelope,
    decision: impl Into<String>,
    details: Value,
) -> NewEntry {
    NewEntry::for_envelope(kind, principal.id.clone(), envelope)
        .decision(decision)
        .details(details)
}

/// The ledger entry of an accepted message, built before the append (which takes the envelope)
/// when `recorder` keeps entries; [`acknowledged`] adds what the bus answered.
pub fn accepted_entry(
    recorder: &dyn Recorder,
    principal: &Principal,
    envelope: &Envelope,
) -> Option<NewEntry> {
    recorder.is_recording().then(|| {
        entry(
            EntryKind::Accepted,
            principal,
            envelope,
            "allow",
            Value::Null,
        )
    })
}

/// An accepted entry with the bus's answer: its stream, sequence and whether it was a duplicate.
pub fn acknowledged(entry: NewEntry, ack: &PublishAck) -> NewEntry {
    entry.details(
        serde_json::json!({"stream": ack.stream, "seq": ack.seq, "duplicate": ack.duplicate}),
    )
}

/// Step 7 (and every other decision on a message): the ledger entries. For an accepted message
/// the message is already durable, so a failure here cannot undo it: it is logged with the
/// message ids (and surfaces in the ledger's own verification), not returned to a publisher who
/// would then retry a message that was accepted.
pub async fn record(recorder: &dyn Recorder, entries: Vec<NewEntry>) {
    if entries.is_empty() {
        return;
    }
    let ids: Vec<Option<String>> = entries.iter().map(|e| e.message_id.clone()).collect();
    if let Err(err) = recorder.record(entries).await {
        tracing::error!(ids = ?ids, error = %err, "ledger record failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::CoreLimits;
    use crate::governance::{AllowAll, DevAuthenticator};
    use ace_envelope::{ErrorCode, Kind};
    use serde_json::json;

    fn envelope() -> Envelope {
        Envelope::builder(Kind::Event, "ace.comms.http.service.kpi.evt.v1")
            .payload_json(json!({"x": 1}))
            .build()
            .expect("valid")
    }

    #[derive(Debug)]
    struct DenyAll;
    impl Authorizer for DenyAll {
        fn authorize(&self, _: &Principal, _: Action<'_>, _: Option<&Envelope>) -> Decision {
            Decision::deny("no role allows it")
        }
    }

    #[derive(Debug)]
    struct HoldAll;
    impl Authorizer for HoldAll {
        fn authorize(&self, _: &Principal, _: Action<'_>, _: Option<&Envelope>) -> Decision {
            Decision::RequireApproval {
                reasons: vec!["ehi".into()],
            }
        }
    }

    #[test]
    fn given_development_mode_when_authenticating_then_the_loud_development_principal_is_returned()
    {
        let principal = authenticate(&DevAuthenticator, &RequestContext::new("test")).unwrap();
        assert_eq!(principal.id, crate::DEVELOPMENT_PRINCIPAL_ID);
    }

    #[test]
    fn given_an_actor_of_the_server_when_authenticating_then_its_own_principal_is_returned() {
        let workflow = Principal {
            id: "workflow:heal".into(),
            kind: ace_envelope::SourceType::Service,
            roles: vec!["workflow".into()],
            clearance: 1,
        };
        let ctx = RequestContext::acting_as("workflow", workflow.clone());
        assert!(!ctx.is_internal(), "authorized like any client");
        assert_eq!(authenticate(&DevAuthenticator, &ctx).unwrap(), workflow);
    }

    #[test]
    fn given_no_source_when_stamped_then_the_principal_becomes_the_source_and_validation_passes() {
        let mut env = envelope();
        env.source = None;
        stamp_source(&Principal::development(), &mut env);
        assert_eq!(
            env.source.as_ref().map(|s| s.id.as_str()),
            Some(crate::DEVELOPMENT_PRINCIPAL_ID)
        );
        assert!(validate(&env, &CoreLimits::default(), Utc::now()).is_ok());
    }

    #[test]
    fn given_a_valid_envelope_when_validated_then_it_passes() {
        assert!(validate(&envelope(), &CoreLimits::default(), Utc::now()).is_ok());
    }

    #[test]
    fn given_too_many_hops_when_validated_then_hop_limit_exceeded() {
        let mut env = envelope();
        env.hops = 9;
        let limits = CoreLimits {
            max_hops: 8,
            ..CoreLimits::default()
        };
        let err = validate(&env, &limits, Utc::now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::HopLimitExceeded);
    }

    #[test]
    fn given_a_bad_subject_when_validated_then_invalid_envelope_names_the_field() {
        let mut env = envelope();
        env.subject = "ace..bad".into();
        let err = validate(&env, &CoreLimits::default(), Utc::now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidEnvelope);
        assert!(err.to_string().contains("/subject"), "{err}");
    }

    #[test]
    fn given_a_passed_ttl_when_validated_then_message_expired() {
        let mut env = envelope();
        env.ttl_ms = Some(1_000);
        let later = env.created_at + chrono::Duration::seconds(5);
        let err = validate(&env, &CoreLimits::default(), later).unwrap_err();
        assert_eq!(err.code(), ErrorCode::MessageExpired);
    }

    #[test]
    fn given_an_unknown_schema_when_checked_then_unknown_schema() {
        let registry = Registry::embedded().unwrap();
        let mut env = envelope();
        env.schema = Some("no.such.thing@1.0.0".into());
        let err = contract(&registry, &env).unwrap_err();
        assert_eq!(err.code(), ErrorCode::UnknownSchema);
    }

    #[test]
    fn given_a_payload_breaking_its_schema_when_checked_then_contract_violation_with_pointers() {
        let registry = Registry::embedded().unwrap();
        let mut env = envelope();
        env.schema = Some("comms.tool_call@1.0.0".into());
        env.payload = Some(json!({"unexpected": true}));
        let err = contract(&registry, &env).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ContractViolation);
        let CoreError::ContractViolation { errors, .. } = err else {
            unreachable!()
        };
        assert!(!errors.is_empty());
    }

    #[test]
    fn given_no_schema_when_checked_then_it_passes() {
        let registry = Registry::embedded().unwrap();
        assert!(contract(&registry, &envelope()).is_ok());
    }

    #[test]
    fn given_allow_all_when_authorizing_then_it_passes_and_a_denial_is_forbidden() {
        let p = Principal::development();
        assert!(authorize(&AllowAll, &p, &envelope()).is_ok());
        let err = authorize(&DenyAll, &p, &envelope()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        assert!(err.to_string().contains("no role allows it"));
    }

    #[test]
    fn given_a_holding_policy_when_authorized_then_the_message_is_held_and_other_actions_denied() {
        let p = Principal::development();
        assert_eq!(
            authorize(&AllowAll, &p, &envelope()).unwrap(),
            Admission::Pass
        );
        assert_eq!(
            authorize(&HoldAll, &p, &envelope()).unwrap(),
            Admission::Hold(vec!["ehi".into()])
        );
        let err = permit(&HoldAll, &p, Action::Manage("S"), None).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
    }

    #[test]
    fn given_an_internal_request_when_authenticating_then_the_system_principal_is_returned() {
        let principal = authenticate(&DevAuthenticator, &RequestContext::internal()).unwrap();
        assert_eq!(principal.id, crate::context::SYSTEM_PRINCIPAL_ID);
    }
    fn agent() -> Principal {
        Principal {
            id: "agent-1".into(),
            kind: ace_envelope::SourceType::Agent,
            roles: vec!["agent".into()],
            clearance: 1,
        }
    }

    #[test]
    fn given_a_source_that_is_not_the_principal_when_checked_then_forbidden_names_both() {
        let mut env = envelope();
        env.source = Some(Source::new(ace_envelope::SourceType::Human, "ops-alice"));
        let err = identity(&agent(), &env).unwrap_err();
        assert_eq!(err.code(), ErrorCode::Forbidden);
        assert!(err.to_string().contains("ops-alice") && err.to_string().contains("agent-1"));
        // Same id, other type: still someone else.
        env.source = Some(Source::new(ace_envelope::SourceType::Service, "agent-1"));
        assert!(identity(&agent(), &env).is_err());
        env.source = Some(Source::new(ace_envelope::SourceType::Agent, "agent-1"));
        assert!(identity(&agent(), &env).is_ok());
    }

    #[test]
    fn given_reply_to_headers_when_checked_then_only_inboxes_and_allowed_subjects_pass() {
        let with = |reply_to: &str| {
            let mut env = envelope();
            env.headers.insert("reply_to".into(), reply_to.into());
            env
        };
        assert!(
            reply_to(&DenyAll, &agent(), &envelope()).is_ok(),
            "none given"
        );
        assert!(reply_to(&DenyAll, &agent(), &with("ace.comms.system.inbox.abc")).is_ok());
        for denied in [
            "ace.comms.system.inbox.a.b",
            "ace.comms.http.ops.db.cmd.drop.v1",
        ] {
            let err = reply_to(&DenyAll, &agent(), &with(denied)).unwrap_err();
            assert_eq!(err.code(), ErrorCode::Forbidden, "{denied}");
        }
        assert!(reply_to(&AllowAll, &agent(), &with("ace.comms.a2a.x.evt.v1")).is_ok());
        let err = reply_to(&AllowAll, &agent(), &with("ace.comms.>")).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidRequest);
    }

    #[test]
    fn given_a_created_at_beyond_the_skew_when_validated_then_the_field_is_named() {
        let now = Utc::now();
        let mut env = envelope();
        env.created_at = now + chrono::Duration::seconds(61);
        let err = validate(&env, &CoreLimits::default(), now).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidEnvelope);
        assert!(err.to_string().contains("/created_at"), "{err}");
        env.created_at = now + chrono::Duration::seconds(59);
        assert!(validate(&env, &CoreLimits::default(), now).is_ok());
    }
}
