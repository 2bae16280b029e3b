//! The seven ingress steps of DESIGN.md, one plain function each, in the order they run:
//! [`authenticate`] → [`validate`] → [`contract`] → [`authorize`] → [`gate`] → [`append`] →
//! [`record`].
//!
//! Each step takes only what it needs (a hook, the registry, the bus, the envelope), so it can be
//! tested alone; `Core::publish` strings them together. Steps 1–5 have no side effect, so a
//! message refused by any of them leaves nothing behind; only [`append`] writes.

use ace_bus::{Bus, PublishAck};
use ace_contracts::Registry;
use ace_envelope::{Envelope, Limits, Source};
use chrono::{DateTime, Utc};

use crate::context::{Principal, RequestContext};
use crate::error::CoreError;
use crate::governance::{Action, Authenticator, Authorizer, Decision, Gate, GateOutcome, Recorder};

/// Step 1: the principal behind the request.
pub fn authenticate(
    authenticator: &dyn Authenticator,
    ctx: &RequestContext,
) -> Result<Principal, CoreError> {
    authenticator.authenticate(ctx)
}

/// Gives an envelope without a `source` the authenticated principal as its source (part of
/// step 1: ingress stamps who sent it).
pub fn stamp_source(principal: &Principal, envelope: &mut Envelope) {
    if envelope.source.is_none() {
        envelope.source = Some(Source::new(principal.kind, principal.id.clone()));
    }
}

/// Step 2: the envelope's shape and rules, the hop limit (a loop guard with its own code) and
/// its TTL or deadline at `now`.
pub fn validate(envelope: &Envelope, max_hops: u32, now: DateTime<Utc>) -> Result<(), CoreError> {
    if envelope.hops > max_hops {
        return Err(CoreError::HopLimitExceeded {
            hops: envelope.hops,
            limit: max_hops,
        });
    }
    let violations = envelope.validate_with(&Limits { max_hops });
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
    let Some(payload) = envelope
        .payload
        .as_ref()
        .filter(|_| envelope.has_json_payload())
    else {
        return Ok(());
    };
    schema
        .validate(payload)
        .map_err(|errors| CoreError::ContractViolation {
            schema: schema.schema_ref(),
            errors,
        })
}

/// Step 4: may the principal publish on the envelope's subject.
pub fn authorize(
    authorizer: &dyn Authorizer,
    principal: &Principal,
    envelope: &Envelope,
) -> Result<(), CoreError> {
    permit(
        authorizer,
        principal,
        Action::Publish(&envelope.subject),
        Some(envelope),
    )
}

/// The decision of `authorizer` on any action, as a result.
pub fn permit(
    authorizer: &dyn Authorizer,
    principal: &Principal,
    action: Action<'_>,
    envelope: Option<&Envelope>,
) -> Result<(), CoreError> {
    match authorizer.authorize(principal, action, envelope) {
        Decision::Allow => Ok(()),
        Decision::Deny(reasons) => Err(CoreError::Forbidden {
            principal: principal.id.clone(),
            action: action.to_string(),
            reasons,
        }),
    }
}

/// Step 5: held messages stop here with `PENDING_APPROVAL`; the gate owns the held copy.
pub fn gate(gate: &dyn Gate, principal: &Principal, envelope: &Envelope) -> Result<(), CoreError> {
    match gate.gate(principal, envelope)? {
        GateOutcome::Pass => Ok(()),
        GateOutcome::Hold { approval_id } => Err(CoreError::PendingApproval {
            id: envelope.id,
            approval_id,
        }),
    }
}

/// Step 6: the one write — the bus persists the message (durable per the stream's sync
/// policy) and answers with its stream and sequence, or the original ones for a duplicate.
pub async fn append(bus: &dyn Bus, envelope: Envelope) -> Result<PublishAck, CoreError> {
    Ok(bus.publish(envelope).await?)
}

/// Step 7: the ledger entry. The message is already durable, so a failure here cannot undo it:
/// it is logged with the message id (and surfaces in the ledger's own verification), not
/// returned to a publisher who would then retry a message that was accepted.
pub async fn record(
    recorder: &dyn Recorder,
    principal: &Principal,
    envelope: &Envelope,
    ack: &PublishAck,
) {
    if let Err(err) = recorder.record(principal, envelope, ack).await {
        tracing::error!(id = %envelope.id, subject = %envelope.subject, error = %err, "ledger record failed for an accepted message");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::governance::{AllowAll, DevAuthenticator, PassGate};
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
            Decision::Deny(vec!["no role allows it".into()])
        }
    }

    #[derive(Debug)]
    struct HoldAll;
    impl Gate for HoldAll {
        fn gate(&self, _: &Principal, _: &Envelope) -> Result<GateOutcome, CoreError> {
            Ok(GateOutcome::Hold {
                approval_id: "apr-1".into(),
            })
        }
    }

    #[test]
    fn given_development_mode_when_authenticating_then_the_loud_development_principal_is_returned()
    {
        let principal = authenticate(&DevAuthenticator, &RequestContext::new("test")).unwrap();
        assert_eq!(principal.id, crate::DEVELOPMENT_PRINCIPAL_ID);
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
        assert!(validate(&env, 32, Utc::now()).is_ok());
    }

    #[test]
    fn given_a_valid_envelope_when_validated_then_it_passes() {
        assert!(validate(&envelope(), 32, Utc::now()).is_ok());
    }

    #[test]
    fn given_too_many_hops_when_validated_then_hop_limit_exceeded() {
        let mut env = envelope();
        env.hops = 9;
        let err = validate(&env, 8, Utc::now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::HopLimitExceeded);
    }

    #[test]
    fn given_a_bad_subject_when_validated_then_invalid_envelope_names_the_field() {
        let mut env = envelope();
        env.subject = "ace..bad".into();
        let err = validate(&env, 32, Utc::now()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidEnvelope);
        assert!(err.to_string().contains("/subject"), "{err}");
    }

    #[test]
    fn given_a_passed_ttl_when_validated_then_message_expired() {
        let mut env = envelope();
        env.ttl_ms = Some(1_000);
        let later = env.created_at + chrono::Duration::seconds(5);
        let err = validate(&env, 32, later).unwrap_err();
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
    fn given_a_holding_gate_when_gated_then_pending_approval_with_its_id() {
        let p = Principal::development();
        assert!(gate(&PassGate, &p, &envelope()).is_ok());
        let err = gate(&HoldAll, &p, &envelope()).unwrap_err();
        assert_eq!(err.code(), ErrorCode::PendingApproval);
        assert_eq!(err.body().error.details["approval_id"], "apr-1");
    }
}
