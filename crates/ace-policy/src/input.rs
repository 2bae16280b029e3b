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
//!                  "environment": "production"},  // see below
//!   "message":    {"kind": "command", "name": "deploy", "domain": null, "source": null},
//!   "headers":    {"ace-action": "deploy"},
//!   "governance": {"label": "internal", "ehi_score": 0.4, "requires_approval": false},
//!   "ehi_score":  0.4,                             // governance.ehi_score, seed spelling
//!   "has_approval": false                          // governance.approval_id is set
//! }
//! ```
//! `target.environment` is the subject's environment as the server knows it
//! ([`crate::Environments`], `policies/environments.yaml`) when configured — the publisher's
//! [`ENVIRONMENT_HEADER`] can then neither lower nor change it — and otherwise the header's value
//! trimmed and lowercased, or `null` without one.
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

use std::borrow::Cow;
use std::collections::BTreeMap;

use ace_envelope::{AceSubject, Envelope, Governance, Label, SourceType};
use serde::Serialize;
use serde_json::Value;

use crate::decision::Action;
use crate::environments::Environments;
use crate::principal::Principal;

/// The header naming the target environment (`production`…), read into `target.environment`
/// for a subject without a configured environment (module docs).
pub const ENVIRONMENT_HEADER: &str = "ace-environment";

/// The input document of one decision, with no configured environments (the header alone,
/// normalized, gives `target.environment`); [`policy_input_with`] takes them.
pub fn policy_input(
    principal: &Principal,
    action: Action,
    subject: &str,
    envelope: Option<&Envelope>,
) -> Value {
    policy_input_with(
        principal,
        action,
        subject,
        envelope,
        &Environments::default(),
    )
}

/// The input document of one decision, `target.environment` decided by `environments`.
pub fn policy_input_with(
    principal: &Principal,
    action: Action,
    subject: &str,
    envelope: Option<&Envelope>,
    environments: &Environments,
) -> Value {
    PolicyInput::new(principal, action, subject, envelope, environments).to_value()
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
    /// The document of `principal` doing `action` on `subject` (with `envelope` on a publish),
    /// `target.environment` decided by `environments`.
    pub(crate) fn new(
        principal: &'a Principal,
        action: Action,
        subject: &'a str,
        envelope: Option<&'a Envelope>,
        environments: &'a Environments,
    ) -> Self {
        PolicyInput {
            action: action.as_str(),
            envelope: envelope.map(EnvelopeFields::new),
            principal: PrincipalFields::new(principal),
            subject,
            target: Target::new(subject, envelope, environments),
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

/// `target`: the parsed ACE subject and its environment.
#[derive(Debug, Serialize)]
struct Target<'a> {
    entity_id: String,
    entity_type: String,
    environment: Option<Cow<'a, str>>,
    name: Option<String>,
    protocol: String,
    verb: &'static str,
    version: String,
}

impl<'a> Target<'a> {
    fn new(
        subject: &str,
        envelope: Option<&'a Envelope>,
        environments: &'a Environments,
    ) -> Option<Self> {
        let ace = AceSubject::parse(subject).ok()?;
        let header = envelope
            .and_then(|e| e.headers.get(ENVIRONMENT_HEADER))
            .map(String::as_str);
        Some(Target {
            entity_id: ace.entity_id,
            entity_type: ace.entity_type,
            environment: environments.target_environment(subject, header),
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
    fn given_a_configured_production_subject_when_the_header_differs_or_is_missing_then_production()
    {
        let envs = Environments::from_yaml(
            "environments:\n  - {subjects: [\"ace.comms.*.agent.b7.>\"], environment: production}\n",
            "test",
        )
        .unwrap();
        let p = agent();
        let subject = "ace.comms.a2a.agent.b7.cmd.v1";
        for header in [None, Some("staging"), Some("PRODUCTION")] {
            let mut builder = Envelope::builder(Kind::Command, subject);
            if let Some(value) = header {
                builder = builder.header(ENVIRONMENT_HEADER, value);
            }
            let env = builder.build_unchecked();
            let input = policy_input_with(&p, Action::Publish, subject, Some(&env), &envs);
            assert_eq!(input["target"]["environment"], "production", "{header:?}");
            let streamed = serde_json::to_string(&PolicyInput::new(
                &p,
                Action::Publish,
                subject,
                Some(&env),
                &envs,
            ))
            .unwrap();
            assert_eq!(
                streamed,
                input.to_string(),
                "the cache key text is the document"
            );
        }
        // Subscribing to a configured subject: no envelope, the server's answer all the same.
        let input = policy_input_with(&p, Action::Subscribe, subject, None, &envs);
        assert_eq!(input["target"]["environment"], "production");
        // Elsewhere the header, normalized.
        let other = "ace.comms.a2a.agent.c1.cmd.v1";
        let env = Envelope::builder(Kind::Command, other)
            .header(ENVIRONMENT_HEADER, " Production ")
            .build_unchecked();
        let input = policy_input_with(&p, Action::Publish, other, Some(&env), &envs);
        assert_eq!(input["target"]["environment"], "production");
        assert_eq!(
            input["headers"][ENVIRONMENT_HEADER], " Production ",
            "headers as sent"
        );
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
        let none = Environments::default();
        let streamed = serde_json::to_string(&PolicyInput::new(
            &p,
            Action::Publish,
            subject,
            Some(&env),
            &none,
        ))
        .unwrap();
        assert_eq!(streamed, input.to_string());
    }
}
