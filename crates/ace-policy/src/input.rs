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

use ace_envelope::{AceSubject, Envelope};
use serde_json::{Value, json};

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
    let mut input = json!({
        "principal": principal,
        "action": action.as_str(),
        "subject": subject,
        "target": target(subject, envelope),
    });
    if let (Some(envelope), Some(object)) = (envelope, input.as_object_mut()) {
        let governance = serde_json::to_value(&envelope.governance).unwrap_or(Value::Null);
        object.insert("message".into(), message(envelope));
        object.insert("headers".into(), json!(envelope.headers));
        object.insert("governance".into(), governance);
        object.insert("ehi_score".into(), json!(envelope.governance.ehi_score));
        let approved = envelope.governance.approval_id.is_some();
        object.insert("has_approval".into(), json!(approved));
    }
    input
}

fn target(subject: &str, envelope: Option<&Envelope>) -> Value {
    let Ok(ace) = AceSubject::parse(subject) else {
        return Value::Null;
    };
    let environment = envelope.and_then(|e| e.headers.get(ENVIRONMENT_HEADER));
    json!({
        "protocol": ace.protocol,
        "entity_type": ace.entity_type,
        "entity_id": ace.entity_id,
        "verb": ace.verb.as_str(),
        "name": ace.name,
        "version": ace.version,
        "environment": environment,
    })
}

fn message(envelope: &Envelope) -> Value {
    json!({
        "kind": envelope.kind.as_str(),
        "name": envelope.name,
        "domain": envelope.domain,
        "source": envelope.source.as_ref().map(|s| json!({"type": s.source_type.as_str(), "id": s.id})),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::{Kind, SourceType};

    #[test]
    fn given_an_ace_subject_and_envelope_when_built_then_target_and_governance_are_filled() {
        let p = Principal::new("a1", SourceType::Agent, vec!["agent".into()], 1).unwrap();
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
}
