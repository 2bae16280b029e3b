//! The input document every Rego policy sees, built in one place so that the policies, the
//! decision cache key and the documentation agree on it:
//!
//! ```json
//! {
//!   "principal":  {"id": "a1", "type": "agent", "roles": ["agent"], "clearance": 1},
//!   "action":     "publish",                       // or "subscribe"
//!   "subject":    "ace.comms.a2a.agent.b7.cmd.v1",
//!   "target":     {"protocol": "a2a", "entity_type": "agent", "entity_id": "b7",
//!                  "verb": "cmd", "name": null, "version": "v1",
//!                  "environment": "production"},  // from the `ace-environment` header
//!   "message":    {"kind": "command", "name": "deploy", "domain": null, "source": null},
//!   "headers":    {"ace-action": "deploy"},
//!   "governance": {"label": "internal", "ehi_score": 0.4, "requires_approval": false},
//!   "ehi_score":  0.4,                             // governance.ehi_score, seed spelling
//!   "has_approval": false                          // governance.approval_id is set
//! }
//! ```
//! `target` is `null` for a subject outside the ACE hierarchy (or a subscription pattern);
//! `message`, `headers`, `governance`, `ehi_score` are absent without an envelope.
//! `has_approval` only says the field is set. The server refuses any publish that carries one
//! (only the server stamps it, when it releases an approved message, and that release does not
//! go through the policy again), so policies can rely on it never being forged.
//!
//! The document is one borrowed, serializable [`PolicyInput`]: the decision cache hashes its
//! JSON as it is written, and only a cache miss turns it into a value for the engine, so a
//! warm decision allocates no document. Every object of it declares its keys in sorted order,
//! the order in which a `serde_json::Value` prints them: the text hashed for the cache is,
//! byte for byte, [`policy_input`]'s text, whatever serde_json's `preserve_order` says.

use std::collections::BTreeMap;

use ace_envelope::{AceSubject, Envelope, Governance, Label, SourceType};
use serde::Serialize;
use serde_json::Value;

use crate::decision::Action;
use crate::principal::Principal;

/// The header naming the target environment (`production`…), read into `target.environment`.
pub const ENVIRONMENT_HEADER: &str = "ace-environment";

/// The input document of one decision.
pub fn policy_input(
    principal: &Principal,
    action: Action,
    subject: &str,
    envelope: Option<&Envelope>,
) -> Value {
    PolicyInput::new(principal, action, subject, envelope).to_value()
}

/// The input document of one decision, borrowed from the request (module doc: its shape).
#[derive(Debug, Serialize)]
pub(crate) struct PolicyInput<'a> {
    action: &'static str,
    #[serde(flatten)]
    envelope: Option<EnvelopeFields<'a>>,
    principal: PrincipalFields<'a>,
    subject: &'a str,
    target: Option<Target<'a>>,
}

impl<'a> PolicyInput<'a> {
    /// The document of `principal` doing `action` on `subject` (with `envelope` on a publish).
    pub(crate) fn new(
        principal: &'a Principal,
        action: Action,
        subject: &'a str,
        envelope: Option<&'a Envelope>,
    ) -> Self {
        PolicyInput {
            action: action.as_str(),
            envelope: envelope.map(EnvelopeFields::new),
            principal: PrincipalFields::new(principal),
            subject,
            target: Target::new(subject, envelope),
        }
    }

    /// The document as a JSON value.
    pub(crate) fn to_value(&self) -> Value {
        // Cannot fail: every map of the document has string keys and every number is finite
        // or printed as `null`.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// `principal`: [`Principal`]'s own fields, keys sorted.
#[derive(Debug, Serialize)]
struct PrincipalFields<'a> {
    clearance: u8,
    id: &'a str,
    roles: &'a [String],
    #[serde(rename = "type")]
    kind: SourceType,
}

impl<'a> PrincipalFields<'a> {
    fn new(principal: &'a Principal) -> Self {
        PrincipalFields {
            clearance: principal.clearance,
            id: &principal.id,
            roles: &principal.roles,
            kind: principal.kind,
        }
    }
}

/// `target`: the parsed ACE subject and the environment header.
#[derive(Debug, Serialize)]
struct Target<'a> {
    entity_id: String,
    entity_type: String,
    environment: Option<&'a str>,
    name: Option<String>,
    protocol: String,
    verb: &'static str,
    version: String,
}

impl<'a> Target<'a> {
    fn new(subject: &str, envelope: Option<&'a Envelope>) -> Option<Self> {
        let ace = AceSubject::parse(subject).ok()?;
        let environment = envelope.and_then(|e| e.headers.get(ENVIRONMENT_HEADER));
        Some(Target {
            entity_id: ace.entity_id,
            entity_type: ace.entity_type,
            environment: environment.map(String::as_str),
            name: ace.name,
            protocol: ace.protocol,
            verb: ace.verb.as_str(),
            version: ace.version,
        })
    }
}

/// The top-level fields that come from the envelope of a publish.
#[derive(Debug, Serialize)]
struct EnvelopeFields<'a> {
    ehi_score: Option<f64>,
    governance: GovernanceFields<'a>,
    has_approval: bool,
    headers: &'a BTreeMap<String, String>,
    message: MessageFields<'a>,
}

impl<'a> EnvelopeFields<'a> {
    fn new(envelope: &'a Envelope) -> Self {
        EnvelopeFields {
            ehi_score: envelope.governance.ehi_score,
            governance: GovernanceFields::new(&envelope.governance),
            has_approval: envelope.governance.approval_id.is_some(),
            headers: &envelope.headers,
            message: MessageFields::new(envelope),
        }
    }
}

/// `governance`: [`Governance`] as the envelope serializes it (same fields, same skipped
/// empties), keys sorted.
#[derive(Debug, Serialize)]
struct GovernanceFields<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    approval_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent_scope: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ehi_score: Option<f64>,
    label: Label,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pii: &'a Vec<String>,
    requires_approval: bool,
}

impl<'a> GovernanceFields<'a> {
    fn new(governance: &'a Governance) -> Self {
        GovernanceFields {
            approval_id: governance.approval_id.as_deref(),
            consent_scope: governance.consent_scope.as_deref(),
            ehi_score: governance.ehi_score,
            label: governance.label,
            pii: &governance.pii,
            requires_approval: governance.requires_approval,
        }
    }
}

/// `message`: what kind of message, by whom.
#[derive(Debug, Serialize)]
struct MessageFields<'a> {
    domain: Option<&'a str>,
    kind: &'static str,
    name: Option<&'a str>,
    source: Option<SourceFields<'a>>,
}

impl<'a> MessageFields<'a> {
    fn new(envelope: &'a Envelope) -> Self {
        MessageFields {
            domain: envelope.domain.as_deref(),
            kind: envelope.kind.as_str(),
            name: envelope.name.as_deref(),
            source: envelope.source.as_ref().map(|s| SourceFields {
                id: &s.id,
                kind: s.source_type.as_str(),
            }),
        }
    }
}

/// `message.source`.
#[derive(Debug, Serialize)]
struct SourceFields<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::{Kind, Source};
    use serde_json::json;

    fn agent() -> Principal {
        Principal::new("a1", SourceType::Agent, vec!["agent".into()], 1).unwrap()
    }

    /// An envelope with every field the document reads set.
    fn full_envelope(subject: &str) -> Envelope {
        let mut env = Envelope::builder(Kind::Command, subject)
            .header(ENVIRONMENT_HEADER, "production")
            .header("ace-action", "deploy")
            .ehi_score(0.4)
            .build_unchecked();
        env.name = Some("deploy".into());
        env.domain = Some("ops".into());
        env.source = Some(Source::new(SourceType::Agent, "a1"));
        env.governance.label = Label::Confidential;
        env.governance.pii = vec!["email".into()];
        env.governance.consent_scope = Some("support".into());
        env.governance.requires_approval = true;
        env.governance.approval_id = Some("ap-1".into());
        env
    }

    #[test]
    fn given_an_ace_subject_and_envelope_when_built_then_target_and_governance_are_filled() {
        let p = agent();
        let subject = "ace.comms.a2a.agent.b7.cmd.v1";
        let env = Envelope::builder(Kind::Command, subject)
            .header(ENVIRONMENT_HEADER, "production")
            .ehi_score(0.4)
            .build_unchecked();
        let input = policy_input(&p, Action::Publish, subject, Some(&env));
        assert_eq!(input["principal"]["type"], "agent");
        assert_eq!(input["target"]["entity_type"], "agent");
        assert_eq!(input["target"]["verb"], "cmd");
        assert_eq!(input["target"]["environment"], "production");
        assert_eq!(input["ehi_score"], 0.4);
        assert_eq!(input["has_approval"], false);
    }

    #[test]
    fn given_a_pattern_without_envelope_when_built_then_target_is_null_and_no_message() {
        let p = Principal::development();
        let input = policy_input(&p, Action::Subscribe, "ace.comms.>", None);
        assert!(input["target"].is_null());
        assert!(input.get("message").is_none());
    }

    #[test]
    fn given_a_full_envelope_when_built_then_the_document_is_exactly_the_documented_one() {
        let p = agent();
        let subject = "ace.comms.mcp.service.s1.cmd.tool_call.v2";
        let input = policy_input(&p, Action::Publish, subject, Some(&full_envelope(subject)));
        let expected = json!({
            "principal": {"id": "a1", "type": "agent", "roles": ["agent"], "clearance": 1},
            "action": "publish",
            "subject": subject,
            "target": {"protocol": "mcp", "entity_type": "service", "entity_id": "s1",
                       "verb": "cmd", "name": "tool_call", "version": "v2",
                       "environment": "production"},
            "message": {"kind": "command", "name": "deploy", "domain": "ops",
                        "source": {"type": "agent", "id": "a1"}},
            "headers": {"ace-action": "deploy", "ace-environment": "production"},
            "governance": {"label": "confidential", "pii": ["email"], "consent_scope": "support",
                           "ehi_score": 0.4, "requires_approval": true, "approval_id": "ap-1"},
            "ehi_score": 0.4,
            "has_approval": true,
        });
        assert_eq!(input, expected);
        assert_eq!(input.to_string(), expected.to_string());
    }

    #[test]
    fn given_a_bare_envelope_when_built_then_nulls_stay_and_empty_governance_fields_go() {
        let p = agent();
        let subject = "ace.comms.a2a.agent.b7.evt.v1";
        let env = Envelope::builder(Kind::Event, subject).build_unchecked();
        let input = policy_input(&p, Action::Publish, subject, Some(&env));
        assert!(input["ehi_score"].is_null());
        assert!(input["target"]["environment"].is_null());
        assert!(input["target"]["name"].is_null());
        assert!(input["message"]["source"].is_null());
        assert!(input["message"]["domain"].is_null());
        assert_eq!(input["headers"], json!({}));
        assert_eq!(
            input["governance"],
            json!({"label": "internal", "requires_approval": false})
        );
    }

    #[test]
    fn given_an_envelope_and_principal_when_built_then_they_appear_as_they_serialize() {
        // Guards the sorted mirrors against a field added to `Principal` or `Governance`.
        let p = agent();
        let subject = "ace.comms.a2a.agent.b7.cmd.v1";
        let env = full_envelope(subject);
        let input = policy_input(&p, Action::Publish, subject, Some(&env));
        assert_eq!(input["principal"], serde_json::to_value(&p).unwrap());
        assert_eq!(
            input["governance"],
            serde_json::to_value(&env.governance).unwrap()
        );
    }

    #[test]
    fn given_a_non_finite_ehi_score_when_built_then_it_is_null_in_both_places() {
        let p = agent();
        let subject = "ace.comms.a2a.agent.b7.cmd.v1";
        let mut env = Envelope::builder(Kind::Command, subject).build_unchecked();
        env.governance.ehi_score = Some(f64::NAN);
        let input = policy_input(&p, Action::Publish, subject, Some(&env));
        assert!(input["ehi_score"].is_null());
        assert!(input["governance"]["ehi_score"].is_null());
        let streamed =
            serde_json::to_string(&PolicyInput::new(&p, Action::Publish, subject, Some(&env)))
                .unwrap();
        assert_eq!(streamed, input.to_string());
    }
}
