//! Subjects: the literal [`Subject`] a message is published to, the [`SubjectPattern`] that
//! subscriptions and stream filters match with, and the ACE naming hierarchy ([`AceSubject`]).
//!
//! Grammar: tokens of `[A-Za-z0-9_-]+` separated by `.`; in patterns only,
//! `*` is one whole token and `>` is a whole last token matching one or more remaining tokens.
//! Matching walks both strings token by token without allocating: it runs for every message
//! against every subscription, so it must stay cheap.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::envelope::Kind;
use crate::error::EnvelopeError;

/// Longest subject accepted, in bytes.
pub const MAX_SUBJECT_LEN: usize = 512;

/// Prefix of every ACE::COMMS subject.
pub const ACE_PREFIX: &str = "ace.comms";
/// Prefix of the system subjects.
pub const SYSTEM_PREFIX: &str = "ace.comms.system";
/// Dead letters of every stream.
pub const SYSTEM_DLQ: &str = "ace.comms.system.dlq.>";
/// Human-in-the-loop approval requests and decisions.
pub const SYSTEM_HITL: &str = "ace.comms.system.hitl.>";
/// Workflow run events (started, action, completed, failed).
pub const SYSTEM_WORKFLOW: &str = "ace.comms.system.workflow.>";

/// Checks `s` against the subject grammar; `wildcards` allows `*` and a final `>`.
pub(crate) fn check(s: &str, wildcards: bool) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if s.len() > MAX_SUBJECT_LEN {
        return Err("is longer than 512 bytes");
    }
    let mut tokens = s.split('.').peekable();
    while let Some(token) = tokens.next() {
        match token {
            "" => return Err("has an empty token"),
            "*" if wildcards => {}
            ">" if wildcards && tokens.peek().is_none() => {}
            ">" if wildcards => return Err("has '>' before the last token"),
            "*" | ">" => return Err("holds a wildcard, allowed in patterns only"),
            _ if !token.bytes().all(is_token_byte) => {
                return Err("has a character outside [A-Za-z0-9_-] in a token");
            }
            _ => {}
        }
    }
    Ok(())
}

/// The first token of `bytes` and what follows its `.`, if anything does.
fn split_token(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match bytes.iter().position(|b| *b == b'.') {
        Some(dot) => (&bytes[..dot], Some(&bytes[dot + 1..])),
        None => (bytes, None),
    }
}

pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn invalid(subject: &str, reason: &'static str) -> EnvelopeError {
    EnvelopeError::InvalidSubject {
        subject: subject.to_owned(),
        reason,
    }
}

macro_rules! subject_string_type {
    ($name:ident, $wildcards:expr) => {
        impl $name {
            /// Parses and checks against the grammar.
            pub fn new(s: impl Into<String>) -> Result<Self, EnvelopeError> {
                let s = s.into();
                match check(&s, $wildcards) {
                    Ok(()) => Ok(Self(s)),
                    Err(reason) => Err(invalid(&s, reason)),
                }
            }

            /// The subject text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The tokens, in order.
            pub fn tokens(&self) -> impl Iterator<Item = &str> + '_ {
                self.0.split('.')
            }
        }

        impl FromStr for $name {
            type Err = EnvelopeError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = EnvelopeError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(s: $name) -> String {
                s.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// A literal subject a message is published to: no wildcards.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subject(String);
subject_string_type!(Subject, false);

/// A subscription or filter pattern: a subject in which `*` matches one token and a final `>`
/// matches one or more tokens.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubjectPattern(String);
subject_string_type!(SubjectPattern, true);

impl SubjectPattern {
    /// Whether the literal `subject` matches this pattern. Allocation-free, one pass over the
    /// bytes of both; `subject` is not re-checked against the grammar (an invalid subject
    /// simply fails to match a valid pattern).
    pub fn matches(&self, subject: &str) -> bool {
        let mut pattern = Some(self.0.as_bytes());
        let mut rest = Some(subject.as_bytes());
        while let Some(p) = pattern {
            let (pattern_token, pattern_rest) = split_token(p);
            if pattern_token == b">" {
                return rest.is_some();
            }
            let Some(s) = rest else {
                return false;
            };
            let (token, subject_rest) = split_token(s);
            if pattern_token != b"*" && pattern_token != token {
                return false;
            }
            pattern = pattern_rest;
            rest = subject_rest;
        }
        rest.is_none()
    }

    /// Whether the pattern holds no wildcard (it matches exactly one subject).
    pub fn is_literal(&self) -> bool {
        self.tokens().all(|t| t != "*" && t != ">")
    }
}

impl From<Subject> for SubjectPattern {
    fn from(s: Subject) -> Self {
        SubjectPattern(s.0)
    }
}

/// The verb token of an ACE subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// A command.
    Cmd,
    /// An event.
    Evt,
    /// A query.
    Qry,
    /// A response (reply).
    Rsp,
    /// An error reply.
    Err,
}

impl Verb {
    /// The token (`cmd`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Verb::Cmd => "cmd",
            Verb::Evt => "evt",
            Verb::Qry => "qry",
            Verb::Rsp => "rsp",
            Verb::Err => "err",
        }
    }

    /// The verb for a token, if it is one.
    pub fn parse(token: &str) -> Option<Verb> {
        [Verb::Cmd, Verb::Evt, Verb::Qry, Verb::Rsp, Verb::Err]
            .into_iter()
            .find(|v| v.as_str() == token)
    }

    /// The verb naming messages of `kind`.
    pub const fn for_kind(kind: Kind) -> Verb {
        match kind {
            Kind::Command => Verb::Cmd,
            Kind::Event => Verb::Evt,
            Kind::Query => Verb::Qry,
            Kind::Reply => Verb::Rsp,
            Kind::Error => Verb::Err,
        }
    }
}

/// A subject of the ACE hierarchy:
/// `ace.comms.{protocol}.{entity_type}.{entity_id}.{verb}[.{name}].{version}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AceSubject {
    /// Adapter or protocol (`mcp`, `matrix`, `http`, `internal`, `a2a`).
    pub protocol: String,
    /// `agent`, `human`, `service`, ...
    pub entity_type: String,
    /// Id of the entity.
    pub entity_id: String,
    /// The verb.
    pub verb: Verb,
    /// Optional operation name (`tool_call`).
    pub name: Option<String>,
    /// Schema version token, `v` followed by digits (`v1`).
    pub version: String,
}

impl AceSubject {
    /// A subject without a name token.
    pub fn new(
        protocol: impl Into<String>,
        entity_type: impl Into<String>,
        entity_id: impl Into<String>,
        verb: Verb,
        version: impl Into<String>,
    ) -> Self {
        Self {
            protocol: protocol.into(),
            entity_type: entity_type.into(),
            entity_id: entity_id.into(),
            verb,
            name: None,
            version: version.into(),
        }
    }

    /// Sets the name token.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Builds the literal subject, checking every token.
    pub fn to_subject(&self) -> Result<Subject, EnvelopeError> {
        let text = self.to_string();
        if !is_version_token(&self.version) {
            return Err(invalid(&text, "has a version token that is not v<digits>"));
        }
        Subject::new(text)
    }

    /// Parses a literal subject of the hierarchy.
    pub fn parse(subject: &str) -> Result<AceSubject, EnvelopeError> {
        check(subject, false).map_err(|reason| invalid(subject, reason))?;
        let tokens: Vec<&str> = subject.split('.').collect();
        let (head, version) = match tokens.as_slice() {
            ["ace", "comms", head @ .., version] if head.len() == 4 || head.len() == 5 => {
                (head, *version)
            }
            _ => {
                return Err(invalid(
                    subject,
                    "is not ace.comms.{protocol}.{entity_type}.{entity_id}.{verb}[.{name}].{version}",
                ));
            }
        };
        let verb = Verb::parse(head[3])
            .ok_or_else(|| invalid(subject, "has a verb that is not cmd, evt, qry, rsp or err"))?;
        if !is_version_token(version) {
            return Err(invalid(
                subject,
                "has a version token that is not v<digits>",
            ));
        }
        Ok(AceSubject {
            protocol: head[0].to_owned(),
            entity_type: head[1].to_owned(),
            entity_id: head[2].to_owned(),
            verb,
            name: head.get(4).map(|n| (*n).to_owned()),
            version: version.to_owned(),
        })
    }
}

impl fmt::Display for AceSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{ACE_PREFIX}.{}.{}.{}.{}",
            self.protocol,
            self.entity_type,
            self.entity_id,
            self.verb.as_str()
        )?;
        if let Some(name) = &self.name {
            write!(f, ".{name}")?;
        }
        write!(f, ".{}", self.version)
    }
}

fn is_version_token(token: &str) -> bool {
    token.len() > 1 && token.starts_with('v') && token[1..].bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(p: &str) -> SubjectPattern {
        SubjectPattern::new(p).expect("valid pattern")
    }

    #[test]
    fn given_literal_subjects_when_checked_then_grammar_is_enforced() {
        assert!(Subject::new("ace.comms.mcp.agent.chuck.cmd.tool_call.v2").is_ok());
        assert!(Subject::new("a-b_c.D9").is_ok());
        for bad in ["", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a.é", "a/b"] {
            assert!(Subject::new(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(Subject::new("a".repeat(MAX_SUBJECT_LEN + 1)).is_err());
    }

    #[test]
    fn given_patterns_when_checked_then_gt_is_allowed_only_last() {
        assert!(SubjectPattern::new("a.*.c.>").is_ok());
        assert!(SubjectPattern::new(">").is_ok());
        assert!(SubjectPattern::new("a.>.c").is_err());
        assert!(SubjectPattern::new("a.b*").is_err());
    }

    #[test]
    fn given_a_star_when_matching_then_exactly_one_token_matches() {
        let p = pattern("a.*.c");
        assert!(p.matches("a.b.c"));
        assert!(!p.matches("a.c"));
        assert!(!p.matches("a.b.b.c"));
        assert!(!p.matches("a.b.c.d"));
    }

    #[test]
    fn given_a_gt_when_matching_then_one_or_more_tokens_match() {
        let p = pattern("ace.comms.>");
        assert!(p.matches("ace.comms.x"));
        assert!(p.matches("ace.comms.x.y.z"));
        assert!(!p.matches("ace.comms"));
        assert!(!p.matches("ace.other.x"));
        assert!(pattern(SYSTEM_DLQ).matches("ace.comms.system.dlq.orders"));
    }

    #[test]
    fn given_a_literal_pattern_when_matching_then_only_the_same_subject_matches() {
        let p = pattern("a.b");
        assert!(p.is_literal());
        assert!(p.matches("a.b"));
        assert!(!p.matches("a.b.c"));
        assert!(!p.matches("a"));
    }

    /// The matching rule stated over token lists, for the property below.
    fn reference(pattern: &[&str], subject: &[&str]) -> bool {
        match (pattern.split_first(), subject.split_first()) {
            (Some((&">", _)), Some(_)) => true,
            (Some((&p, p_rest)), Some((&s, s_rest))) => {
                (p == "*" || p == s) && reference(p_rest, s_rest)
            }
            (None, None) => true,
            _ => false,
        }
    }

    proptest::proptest! {
        #[test]
        fn byte_matching_agrees_with_the_token_rule(
            pattern in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "*"]), 1..5),
            gt in proptest::bool::ANY,
            subject in proptest::collection::vec(proptest::sample::select(vec!["a", "b", "ab"]), 1..6),
        ) {
            let mut pattern = pattern;
            if gt {
                pattern.push(">");
            }
            let compiled = SubjectPattern::new(pattern.join(".")).expect("valid");
            proptest::prop_assert_eq!(compiled.matches(&subject.join(".")), reference(&pattern, &subject));
        }
    }

    #[test]
    fn given_an_ace_subject_when_built_and_parsed_then_it_round_trips() {
        let s = AceSubject::new("mcp", "agent", "chuck", Verb::Cmd, "v2").with_name("tool_call");
        let subject = s.to_subject().expect("valid");
        assert_eq!(
            subject.as_str(),
            "ace.comms.mcp.agent.chuck.cmd.tool_call.v2"
        );
        assert_eq!(AceSubject::parse(subject.as_str()).expect("parses"), s);
        let plain = AceSubject::parse("ace.comms.matrix.human.kbroder.cmd.v1").expect("parses");
        assert_eq!(plain.name, None);
        assert_eq!(plain.verb, Verb::Cmd);
    }

    #[test]
    fn given_subjects_outside_the_hierarchy_when_parsed_then_they_are_refused() {
        for bad in [
            "ace.comms.system.health.qry.v1",
            "ace.comms.mcp.agent.chuck.say.v1",
            "ace.comms.mcp.agent.chuck.cmd.one",
            "other.comms.mcp.agent.chuck.cmd.v1",
        ] {
            assert!(AceSubject::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let bad_version = AceSubject::new("mcp", "agent", "x", Verb::Evt, "1");
        assert!(bad_version.to_subject().is_err());
    }
}
