//! Role-based access control from `policies/rbac.yaml`: per role, allow and deny subject
//! patterns for publish and for subscribe, and the message permissions the role grants (the
//! envelope's `rbac` list, checked by [`crate::receive`]).
//!
//! Rules: a principal may act when at least one of its roles allows the subject and none of
//! its roles denies it — deny wins across roles; no matching allow is a denial (deny by
//! default); unknown roles grant nothing. A subscription pattern is allowed only when an allow
//! pattern covers every subject it can match and no deny pattern can match any of them.

use std::collections::BTreeMap;
use std::path::Path;

use ace_envelope::SubjectPattern;
use serde::Deserialize;

use crate::decision::{Action, Decision};
use crate::error::PolicyError;
use crate::files::{parse_yaml, read_text};
use crate::principal::Principal;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RbacFile {
    roles: BTreeMap<String, RoleFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    publish: RulesFile,
    #[serde(default)]
    subscribe: RulesFile,
    #[serde(default)]
    permissions: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    allow: Vec<String>,
    #[serde(default)]
    deny: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Rules {
    allow: Vec<SubjectPattern>,
    deny: Vec<SubjectPattern>,
}

/// One role: its subject rules and the message permissions it grants.
#[derive(Debug, Clone, Default)]
pub struct Role {
    /// What the role is for.
    pub description: Option<String>,
    publish: Rules,
    subscribe: Rules,
    permissions: Vec<String>,
}

impl Role {
    fn rules(&self, action: Action) -> &Rules {
        match action {
            Action::Publish => &self.publish,
            Action::Subscribe => &self.subscribe,
        }
    }

    /// Whether the role grants message permission `permission`: an exact entry, `*`, or a
    /// prefix entry `intel.*` (matching `intel.read`, `intel.raw.read`).
    pub fn grants(&self, permission: &str) -> bool {
        self.permissions.iter().any(|grant| {
            grant == "*"
                || grant == permission
                || grant
                    .strip_suffix('*')
                    .is_some_and(|prefix| prefix.ends_with('.') && permission.starts_with(prefix))
        })
    }
}

/// The role table.
#[derive(Debug, Clone, Default)]
pub struct Rbac {
    roles: BTreeMap<String, Role>,
}

impl Rbac {
    /// Reads an RBAC file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        Self::from_yaml(&read_text(path)?, &path.display().to_string())
    }

    /// Parses an RBAC document; `what` names it in errors.
    pub fn from_yaml(text: &str, what: &str) -> Result<Self, PolicyError> {
        let file: RbacFile = parse_yaml(text, what)?;
        let mut roles = BTreeMap::new();
        for (name, role) in file.roles {
            let compiled = Role {
                description: role.description,
                publish: compile(&name, role.publish)?,
                subscribe: compile(&name, role.subscribe)?,
                permissions: role.permissions,
            };
            roles.insert(name, compiled);
        }
        Ok(Rbac { roles })
    }

    /// The role named `name`.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The names of every role.
    pub fn role_names(&self) -> impl Iterator<Item = &str> {
        self.roles.keys().map(String::as_str)
    }

    /// Whether `principal` may `action` on `subject` (a literal subject, or for subscribe a
    /// pattern).
    pub fn authorize(&self, principal: &Principal, action: Action, subject: &str) -> Decision {
        if action == Action::Publish && subject.split('.').any(|t| t == "*" || t == ">") {
            return Decision::deny(format!("rbac: cannot publish to the pattern `{subject}`"));
        }
        let mut allowed = false;
        let mut reasons = Vec::new();
        for (name, role) in self.roles_of(principal) {
            let rules = role.rules(action);
            if let Some(deny) = rules.deny.iter().find(|d| overlaps(d.as_str(), subject)) {
                reasons.push(format!(
                    "rbac: role `{name}` denies {} on `{deny}`",
                    action.as_str()
                ));
            }
            allowed |= rules.allow.iter().any(|a| covers(a.as_str(), subject));
        }
        if !reasons.is_empty() {
            return Decision::Deny { reasons };
        }
        if allowed {
            return Decision::Allow;
        }
        Decision::deny(format!(
            "rbac: no role of `{}` allows {} on `{subject}`",
            principal.id,
            action.as_str()
        ))
    }

    /// Whether some role of `principal` grants message permission `permission`.
    pub fn grants(&self, principal: &Principal, permission: &str) -> bool {
        self.roles_of(principal)
            .any(|(_, role)| role.grants(permission))
    }

    fn roles_of<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> impl Iterator<Item = (&'a str, &'a Role)> + 'a {
        principal
            .roles
            .iter()
            .filter_map(|name| self.roles.get_key_value(name))
            .map(|(name, role)| (name.as_str(), role))
    }
}

fn compile(role: &str, rules: RulesFile) -> Result<Rules, PolicyError> {
    let parse = |patterns: Vec<String>| {
        patterns
            .into_iter()
            .map(|p| {
                SubjectPattern::new(p.clone()).map_err(|_| PolicyError::Pattern {
                    role: role.to_owned(),
                    pattern: p,
                })
            })
            .collect::<Result<Vec<_>, _>>()
    };
    Ok(Rules {
        allow: parse(rules.allow)?,
        deny: parse(rules.deny)?,
    })
}

/// Whether every subject matched by `inner` is matched by `outer` (both patterns; a literal
/// subject is a pattern matching only itself).
pub(crate) fn covers(outer: &str, inner: &str) -> bool {
    let mut outer = outer.split('.');
    let mut inner = inner.split('.');
    loop {
        match (outer.next(), inner.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some(_), Some(">")) | (None, Some(_)) | (Some(_), None) => return false,
            (Some("*"), Some(_)) => {}
            (Some(o), Some(i)) if o == i => {}
            _ => return false,
        }
    }
}

/// Whether some subject is matched by both patterns.
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (None, Some(_)) | (Some(_), None) => return false,
            (Some("*"), Some(_)) | (Some(_), Some("*")) => {}
            (Some(x), Some(y)) if x == y => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::SourceType;

    #[test]
    fn given_pattern_pairs_when_covering_is_asked_then_wildcards_are_respected() {
        assert!(covers("ace.comms.>", "ace.comms.agent.>"));
        assert!(covers("ace.comms.>", "ace.comms.agent.x.y.cmd.v1"));
        assert!(covers("ace.*.agent", "ace.comms.agent"));
        assert!(covers("ace.*.agent", "ace.*.agent"));
        assert!(!covers("ace.comms.agent", "ace.*.agent"));
        assert!(!covers("ace.comms.agent.>", "ace.comms.>"));
        assert!(!covers("ace.comms.agent.>", "ace.comms.agent"));
        assert!(!covers("ace.*", "ace.>"));
    }

    #[test]
    fn given_pattern_pairs_when_overlap_is_asked_then_any_shared_subject_counts() {
        assert!(overlaps("ace.comms.system.>", "ace.comms.>"));
        assert!(overlaps("ace.comms.*.x", "ace.comms.system.*"));
        assert!(overlaps("a.b", "a.b"));
        assert!(!overlaps("ace.comms.system.>", "ace.comms.agent.>"));
        assert!(!overlaps("a.b", "a.b.c"));
        assert!(!overlaps("a.>", "a"));
    }

    /// Every pattern of 1..=3 tokens over `a`, `b`, `*` (and `>` last).
    fn all_patterns() -> Vec<String> {
        let mut patterns: Vec<String> = Vec::new();
        let mut prefixes = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for prefix in &prefixes {
                let join = |t: &str| {
                    if prefix.is_empty() {
                        t.to_owned()
                    } else {
                        format!("{prefix}.{t}")
                    }
                };
                patterns.push(join(">"));
                for t in ["a", "b", "*"] {
                    next.push(join(t));
                }
            }
            patterns.extend(next.iter().cloned());
            prefixes = next;
        }
        patterns
    }

    /// Every literal subject of 1..=4 tokens over `a`, `b`, `c` (`c` appears in no pattern).
    fn all_subjects() -> Vec<String> {
        let mut subjects = Vec::new();
        let mut level = vec![String::new()];
        for _ in 0..4 {
            level = level
                .iter()
                .flat_map(|p| {
                    ["a", "b", "c"].map(|t| {
                        if p.is_empty() {
                            t.to_owned()
                        } else {
                            format!("{p}.{t}")
                        }
                    })
                })
                .collect();
            subjects.extend(level.iter().cloned());
        }
        subjects
    }

    #[test]
    fn given_every_small_pattern_pair_when_compared_with_matching_then_covers_and_overlaps_are_exact()
     {
        let patterns: Vec<SubjectPattern> = all_patterns()
            .into_iter()
            .map(|p| SubjectPattern::new(p).unwrap())
            .collect();
        let subjects = all_subjects();
        for p in &patterns {
            for q in &patterns {
                let matched_by_q = subjects.iter().filter(|s| q.matches(s));
                let covered = matched_by_q.clone().all(|s| p.matches(s));
                let shared = matched_by_q.clone().any(|s| p.matches(s));
                assert_eq!(covers(p.as_str(), q.as_str()), covered, "covers({p}, {q})");
                assert_eq!(
                    overlaps(p.as_str(), q.as_str()),
                    shared,
                    "overlaps({p}, {q})"
                );
            }
        }
    }

    #[test]
    fn given_a_role_with_deny_when_another_role_allows_then_deny_wins() {
        let rbac = Rbac::from_yaml(
            "roles:\n  wide: {publish: {allow: ['a.>']}}\n  narrow: {publish: {deny: ['a.secret.>']}}\n",
            "t",
        )
        .unwrap();
        let p = Principal::new(
            "p",
            SourceType::Agent,
            vec!["wide".into(), "narrow".into()],
            0,
        )
        .unwrap();
        assert!(rbac.authorize(&p, Action::Publish, "a.open.x").is_allow());
        assert!(rbac.authorize(&p, Action::Publish, "a.secret.x").is_deny());
    }

    #[test]
    fn given_an_invalid_pattern_when_loaded_then_role_and_pattern_are_named() {
        let err = Rbac::from_yaml("roles:\n  r: {publish: {allow: ['a..b']}}\n", "t").unwrap_err();
        assert!(
            err.to_string().contains("`r`") && err.to_string().contains("a..b"),
            "{err}"
        );
    }

    #[test]
    fn given_prefix_and_star_grants_when_asked_then_only_matching_permissions_are_granted() {
        let rbac = Rbac::from_yaml(
            "roles:\n  a: {permissions: ['intel.*']}\n  b: {permissions: ['*']}\n",
            "t",
        )
        .unwrap();
        let a = rbac.role("a").unwrap();
        assert!(a.grants("intel.read"));
        assert!(!a.grants("intelx.read"));
        assert!(!a.grants("ops.read"));
        assert!(rbac.role("b").unwrap().grants("anything"));
    }
}
