# The ACE::COMMS example access policy, adapted to Rego v1 and to ace-policy's contract.
#
# Contract (ace-policy `RegoPolicy`): package `ace.comms`; `deny` is a set of reason strings
# (any reason denies), `require_approval` a set of reason strings (any reason holds the message
# for a human approver). RBAC (policies/rbac.yaml) has already allowed the request: Rego only
# restricts. Input document: see ace-policy `policy_input` (principal, action, subject, target,
# message, headers, governance, ehi_score, has_approval). Data: `data.ehi_threshold`.
#
# Adaptations from the original rules, rule by rule:
# - "Allow admins everything": admins are exempt from the agent rule below.
# - "Allow agents to communicate with each other": an agent's command or query must target an
#   agent (`input.target.entity_type`), written as a deny because RBAC grants.
# - "Require HITL for high EHI scores": `require_approval`, at the rule's `>` on the default
#   threshold (the EHI gate also holds per action at `>=`; both reasons are reported).
# - "Block access to production without approval": held for approval instead of refused
#   outright, which is what an approval is for; `has_approval` releases it. The environment is
#   `input.target.environment`: the server's own answer for the subjects of
#   policies/environments.yaml (a publisher's `ace-environment` header cannot lower it), else
#   the header trimmed and lowercased. The rule normalizes again so an input built by other
#   means compares the same way.
package ace.comms

is_admin if "admin" in input.principal.roles

deny contains msg if {
	not is_admin
	input.principal.type == "agent"
	input.action == "publish"
	input.target.verb in {"cmd", "qry"}
	input.target.entity_type != "agent"
	msg := sprintf("agents may only send commands and queries to agents, not to %s", [input.target.entity_type])
}

require_approval contains msg if {
	input.ehi_score > data.ehi_threshold
	msg := sprintf("ehi_score %v is above the policy threshold %v", [input.ehi_score, data.ehi_threshold])
}

production_target if {
	is_string(input.target.environment)
	lower(trim_space(input.target.environment)) == "production"
}

require_approval contains "a production target needs an approval" if {
	production_target
	not input.has_approval
}
