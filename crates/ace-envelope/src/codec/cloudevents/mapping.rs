//! Where a foreign CloudEvent goes: the [`Mapping`] from its `type`, `source` and `subject` to
//! an ACE subject and kind.
//!
//! A foreign event is one without the `acekind` extension (an envelope's own CloudEvent always
//! carries it). The first [`Rule`] whose globs all match decides; when none does, the
//! [`Mapping::default`] target does. A glob is the attribute's whole text with `*` standing for
//! any run of characters (also none); a rule that names no glob for an attribute matches any
//! value, and one that names a `subject` glob matches only events that have a `subject`.
//!
//! A subject template is literal subject text with the placeholders `{type}`, `{source}` and
//! `{subject}`. Each is replaced by the attribute's value made subject-safe: every character
//! outside `[A-Za-z0-9_-]` and `.` becomes `_`, and an empty token becomes `_`, so the dots of
//! a reverse-DNS `type` stay token separators. The rendered text must be a valid literal
//! subject; a template naming `{subject}` refuses an event without one.
//!
//! The default target is [`DEFAULT_SUBJECT_TEMPLATE`], kind `event`: an event of the ACE
//! hierarchy (`ace.comms.{protocol}.{entity_type}.{entity_id}.{verb}…`) of the `http` protocol,
//! entity `service` `cloudevents`, so the default `ACE_EVENTS` stream stores it and the roles
//! that may publish `ace.comms.http.>` may send it (`com.example.order.created` →
//! `ace.comms.http.service.cloudevents.evt.com.example.order.created`).

use serde::{Deserialize, Serialize};

use crate::envelope::Kind;
use crate::subject::{Subject, is_token_byte};

/// The subject template of an event no rule matches.
pub const DEFAULT_SUBJECT_TEMPLATE: &str = "ace.comms.http.service.cloudevents.evt.{type}";

/// The placeholders a subject template may hold.
const PLACEHOLDERS: [&str; 3] = ["type", "source", "subject"];

/// Rules from a foreign CloudEvent's attributes to an ACE subject and kind.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    /// Tried in order; the first whose globs all match decides.
    pub rules: Vec<Rule>,
    /// Where an event goes that no rule matches.
    pub default: Target,
}

/// One rule: which events (`match`), and where they go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The globs the event's attributes must match (none: every event).
    #[serde(rename = "match", default)]
    pub matches: Match,
    /// The subject template.
    pub subject: String,
    /// The envelope kind.
    #[serde(default = "event_kind")]
    pub kind: Kind,
}

/// Globs over a CloudEvent's attributes; an absent glob matches anything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Match {
    /// Glob over `type`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub event_type: Option<String>,
    /// Glob over `source`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Glob over `subject`; an event without `subject` does not match it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// Where an event goes: a subject template and a kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Target {
    /// The subject template.
    pub subject: String,
    /// The envelope kind.
    pub kind: Kind,
}

impl Default for Target {
    fn default() -> Self {
        Target {
            subject: DEFAULT_SUBJECT_TEMPLATE.to_owned(),
            kind: Kind::Event,
        }
    }
}

fn event_kind() -> Kind {
    Kind::Event
}

/// The attributes a mapping reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attrs<'a> {
    pub(crate) event_type: &'a str,
    pub(crate) source: &'a str,
    pub(crate) subject: Option<&'a str>,
}

impl Mapping {
    /// Checks every glob and template; the error is `(key, reason)`, the key relative to the
    /// mapping (`rules[1].subject`, `default.subject`).
    pub fn check(&self) -> Result<(), (String, String)> {
        for (i, rule) in self.rules.iter().enumerate() {
            let globs = [
                ("type", &rule.matches.event_type),
                ("source", &rule.matches.source),
                ("subject", &rule.matches.subject),
            ];
            for (name, glob) in globs {
                if glob.as_deref().is_some_and(str::is_empty) {
                    return Err((
                        format!("rules[{i}].match.{name}"),
                        "must not be empty (leave it out to match anything)".to_owned(),
                    ));
                }
            }
            check_template(&rule.subject).map_err(|r| (format!("rules[{i}].subject"), r))?;
        }
        check_template(&self.default.subject).map_err(|r| ("default.subject".to_owned(), r))
    }

    /// The kind and subject of an event, or why it has none (the template's subject is not
    /// valid, or it needs a `subject` the event does not have).
    pub(crate) fn resolve(&self, attrs: Attrs<'_>) -> Result<(Kind, String), String> {
        let (kind, template, which) = match self.rules.iter().position(|r| r.matches(attrs)) {
            Some(i) => {
                let rule = &self.rules[i];
                (rule.kind, &rule.subject, format!("rule {i}"))
            }
            None => (
                self.default.kind,
                &self.default.subject,
                "the default target".to_owned(),
            ),
        };
        let subject = render(template, attrs).map_err(|r| format!("{which}: {r}"))?;
        Ok((kind, subject))
    }
}

impl Rule {
    fn matches(&self, attrs: Attrs<'_>) -> bool {
        let m = &self.matches;
        m.event_type
            .as_deref()
            .is_none_or(|g| glob_matches(g, attrs.event_type))
            && m.source
                .as_deref()
                .is_none_or(|g| glob_matches(g, attrs.source))
            && m.subject
                .as_deref()
                .is_none_or(|g| attrs.subject.is_some_and(|s| glob_matches(g, s)))
    }
}

/// Whether `text` is matched whole by `glob`, where `*` is any run of characters.
pub(crate) fn glob_matches(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut gi, mut ti) = (0, 0);
    // Where the last `*` was, and the text position it is currently taken to reach.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if gi < g.len() && g[gi] == t[ti] {
            gi += 1;
            ti += 1;
        } else if let Some((star_gi, star_ti)) = star {
            gi = star_gi + 1;
            ti = star_ti + 1;
            star = Some((star_gi, star_ti + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

/// The template's pieces: literal text and placeholder names, in order.
fn pieces(template: &str) -> Result<Vec<(bool, &str)>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            out.push((false, &rest[..open]));
        }
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("`{{` without `}}` in {template:?}"))?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{name}}}` in {template:?} (known: {{type}}, {{source}}, {{subject}})"
            ));
        }
        out.push((true, name));
        rest = &after[close + 1..];
    }
    if rest.contains('}') {
        return Err(format!("`}}` without `{{` in {template:?}"));
    }
    if !rest.is_empty() {
        out.push((false, rest));
    }
    Ok(out)
}

/// A template is valid when it renders a valid subject for any attribute values.
fn check_template(template: &str) -> Result<(), String> {
    let sample = Attrs {
        event_type: "t",
        source: "s",
        subject: Some("x"),
    };
    render(template, sample).map(drop)
}

fn render(template: &str, attrs: Attrs<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() + attrs.event_type.len());
    for (placeholder, text) in pieces(template)? {
        if !placeholder {
            out.push_str(text);
            continue;
        }
        let value = match text {
            "type" => attrs.event_type,
            "source" => attrs.source,
            _ => attrs.subject.ok_or_else(|| {
                format!("{template:?} needs the attribute subject, which the event does not have")
            })?,
        };
        out.push_str(&subject_safe(value));
    }
    Subject::new(out.as_str()).map_err(|e| format!("{template:?} renders {out:?}: {e}"))?;
    Ok(out)
}

/// `value` as subject tokens: `.` kept, every other character outside `[A-Za-z0-9_-]` as `_`,
/// every empty token as `_`.
fn subject_safe(value: &str) -> String {
    let replaced: String = value
        .chars()
        .map(|c| match u8::try_from(c) {
            Ok(b) if is_token_byte(b) || b == b'.' => c,
            _ => '_',
        })
        .collect();
    replaced
        .split('.')
        .map(|token| if token.is_empty() { "_" } else { token })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs<'a>(event_type: &'a str, source: &'a str, subject: Option<&'a str>) -> Attrs<'a> {
        Attrs {
            event_type,
            source,
            subject,
        }
    }

    fn rule(matches: Match, subject: &str, kind: Kind) -> Rule {
        Rule {
            matches,
            subject: subject.to_owned(),
            kind,
        }
    }

    #[test]
    fn given_globs_when_matched_then_star_is_any_run_and_the_rest_is_literal() {
        for (glob, text) in [
            ("*", ""),
            ("*", "anything/at all"),
            ("com.example.*", "com.example.order.created"),
            ("*.created", "com.example.order.created"),
            ("https://*/orders/*", "https://shop.example/orders/7"),
            ("a*b*c", "aXbYbZc"),
            ("exact", "exact"),
        ] {
            assert!(glob_matches(glob, text), "{glob} ~ {text}");
        }
        for (glob, text) in [
            ("com.example.*", "org.example.order"),
            ("*.created", "com.example.order.deleted"),
            ("exact", "exactly"),
            ("a*b*c", "aXbYbZ"),
            ("", "x"),
        ] {
            assert!(!glob_matches(glob, text), "{glob} !~ {text}");
        }
    }

    #[test]
    fn given_no_rule_when_resolved_then_the_default_puts_the_type_under_the_prefix() {
        let mapping = Mapping::default();
        let (kind, subject) = mapping
            .resolve(attrs("com.example.order.created", "/orders", None))
            .unwrap();
        assert_eq!(kind, Kind::Event);
        assert_eq!(
            subject,
            "ace.comms.http.service.cloudevents.evt.com.example.order.created"
        );
    }

    #[test]
    fn given_odd_characters_when_rendered_then_they_become_underscores_and_dots_stay() {
        let mapping = Mapping::default();
        let (_, subject) = mapping.resolve(attrs("urn:x/y z..é.", "/s", None)).unwrap();
        assert_eq!(
            subject,
            "ace.comms.http.service.cloudevents.evt.urn_x_y_z._._._"
        );
    }

    #[test]
    fn given_rules_when_resolved_then_the_first_matching_one_decides() {
        let mapping = Mapping {
            rules: vec![
                rule(
                    Match {
                        subject: Some("order-*".to_owned()),
                        ..Match::default()
                    },
                    "ace.comms.http.service.orders.evt.{subject}.v1",
                    Kind::Event,
                ),
                rule(
                    Match {
                        event_type: Some("com.example.*".to_owned()),
                        source: Some("https://shop.example/*".to_owned()),
                        subject: None,
                    },
                    "ace.comms.http.service.shop.cmd.{type}.v1",
                    Kind::Command,
                ),
            ],
            default: Target::default(),
        };
        let by_subject = mapping
            .resolve(attrs(
                "com.example.x",
                "https://shop.example/a",
                Some("order-7"),
            ))
            .unwrap();
        assert_eq!(
            by_subject,
            (
                Kind::Event,
                "ace.comms.http.service.orders.evt.order-7.v1".to_owned()
            )
        );
        let by_type = mapping
            .resolve(attrs("com.example.x", "https://shop.example/a", None))
            .unwrap();
        assert_eq!(
            by_type,
            (
                Kind::Command,
                "ace.comms.http.service.shop.cmd.com.example.x.v1".to_owned()
            )
        );
        let other_source = mapping
            .resolve(attrs("com.example.x", "https://elsewhere/a", None))
            .unwrap();
        assert_eq!(
            other_source.1,
            "ace.comms.http.service.cloudevents.evt.com.example.x"
        );
    }

    #[test]
    fn given_a_template_needing_subject_when_the_event_has_none_then_it_is_refused() {
        let mapping = Mapping {
            rules: vec![],
            default: Target {
                subject: "a.{subject}".to_owned(),
                kind: Kind::Event,
            },
        };
        let err = mapping.resolve(attrs("t", "s", None)).unwrap_err();
        assert!(err.contains("needs the attribute subject"), "{err}");
        assert!(err.contains("default target"), "{err}");
    }

    #[test]
    fn given_bad_templates_and_globs_when_checked_then_the_key_is_named() {
        let bad_default = |subject: &str| Mapping {
            rules: vec![],
            default: Target {
                subject: subject.to_owned(),
                kind: Kind::Event,
            },
        };
        for (template, says) in [
            ("a.{nope}", "unknown placeholder"),
            ("a.{type", "without"),
            ("a.type}", "without"),
            ("a..{type}", "renders"),
            ("a.*.{type}", "renders"),
            ("", "renders"),
        ] {
            let (key, reason) = bad_default(template).check().unwrap_err();
            assert_eq!(key, "default.subject", "{template}");
            assert!(reason.contains(says), "{template}: {reason}");
        }
        let empty_glob = Mapping {
            rules: vec![
                rule(Match::default(), "a.b", Kind::Event),
                rule(
                    Match {
                        source: Some(String::new()),
                        ..Match::default()
                    },
                    "a.b",
                    Kind::Event,
                ),
            ],
            default: Target::default(),
        };
        let (key, _) = empty_glob.check().unwrap_err();
        assert_eq!(key, "rules[1].match.source");
        assert_eq!(Mapping::default().check(), Ok(()));
    }

    #[test]
    fn given_yaml_shaped_rules_when_deserialized_then_unknown_keys_are_refused() {
        let mapping: Mapping = serde_json::from_value(serde_json::json!({
            "rules": [{"match": {"type": "com.*"}, "subject": "a.{type}", "kind": "command"}]
        }))
        .unwrap();
        assert_eq!(mapping.rules[0].kind, Kind::Command);
        assert_eq!(mapping.default, Target::default());
        let unknown = serde_json::from_value::<Mapping>(serde_json::json!({
            "rules": [{"match": {"typ": "x"}, "subject": "a.b"}]
        }));
        assert!(unknown.is_err());
    }
}
