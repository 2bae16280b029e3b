//! [`Environments`]: which environment a target subject is in, as the server knows it, so the
//! policies' `input.target.environment` is not only the publisher's claim.
//!
//! The file (`environments.yaml` in a policy directory, [`ENVIRONMENTS_FILE`]; the repository's
//! `policies/environments.yaml` is compiled in as [`EMBEDDED_ENVIRONMENTS`]):
//!
//! ```yaml
//! environments:
//!   - subjects: ["ace.comms.*.service.payments.>"]
//!     environment: production
//! ```
//!
//! [`Environments::target_environment`] decides `target.environment`:
//!
//! 1. the `environment` of the first entry one of whose `subjects` patterns matches the
//!    subject, whatever the envelope's [`crate::ENVIRONMENT_HEADER`] says: a header can neither
//!    lower nor otherwise change what the server was told (a missing header, `Production`,
//!    `PRODUCTION` or ` production ` on a production subject are all `production`);
//! 2. otherwise the header's value normalized ([`normalize_environment`]: trimmed, lowercased),
//!    so a rule comparing with `"production"` is not dodged by case or white space;
//! 3. otherwise none (`null`).
//!
//! Environment names in the file are normalized the same way when loaded; an empty one, or a
//! pattern that is not a subject pattern, refuses the file naming the entry.

use std::borrow::Cow;
use std::path::Path;

use ace_envelope::SubjectPattern;
use serde::Deserialize;

use crate::error::PolicyError;
use crate::files::{parse_yaml, read_text};

/// The environments file inside a policy directory.
pub const ENVIRONMENTS_FILE: &str = "environments.yaml";

/// The repository's `policies/environments.yaml`, compiled in.
pub const EMBEDDED_ENVIRONMENTS: &str = include_str!("../../../policies/environments.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvironmentsFile {
    environments: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    subjects: Vec<String>,
    environment: String,
}

/// The configured environments of subjects, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environments {
    entries: Vec<(Vec<SubjectPattern>, String)>,
}

/// An environment name as policies compare it: trimmed and lowercased.
pub fn normalize_environment(name: &str) -> Cow<'_, str> {
    let trimmed = name.trim();
    if trimmed.chars().any(char::is_uppercase) {
        Cow::Owned(trimmed.to_lowercase())
    } else {
        Cow::Borrowed(trimmed)
    }
}

impl Environments {
    /// Reads an environments file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        Self::from_yaml(&read_text(path)?, &path.display().to_string())
    }

    /// Parses an environments document; `what` names it in errors, with the entry at fault.
    pub fn from_yaml(text: &str, what: &str) -> Result<Self, PolicyError> {
        let file: EnvironmentsFile = parse_yaml(text, what)?;
        let mut entries = Vec::with_capacity(file.environments.len());
        for (i, entry) in file.environments.into_iter().enumerate() {
            let invalid = |field: &str, reason: String| PolicyError::Invalid {
                key: format!("{what}: environments[{i}].{field}"),
                reason,
            };
            let environment = normalize_environment(&entry.environment).into_owned();
            if environment.is_empty() {
                return Err(invalid("environment", "must not be empty".into()));
            }
            if entry.subjects.is_empty() {
                return Err(invalid("subjects", "must list at least one pattern".into()));
            }
            let patterns = entry
                .subjects
                .iter()
                .enumerate()
                .map(|(j, text)| {
                    SubjectPattern::new(text.as_str()).map_err(|e| {
                        invalid(
                            &format!("subjects[{j}]"),
                            format!("`{text}` is not a subject pattern: {e}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            entries.push((patterns, environment));
        }
        Ok(Environments { entries })
    }

    /// The shipped [`EMBEDDED_ENVIRONMENTS`].
    pub fn embedded() -> Result<Self, PolicyError> {
        Self::from_yaml(
            EMBEDDED_ENVIRONMENTS,
            "policies/environments.yaml (embedded)",
        )
    }

    /// Whether no subject has a configured environment.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The configured environment of `subject`: the first entry with a matching pattern.
    pub fn of(&self, subject: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(patterns, _)| patterns.iter().any(|p| p.matches(subject)))
            .map(|(_, environment)| environment.as_str())
    }

    /// `target.environment` of `subject` given the envelope's header value (module docs).
    pub fn target_environment<'a>(
        &'a self,
        subject: &str,
        header: Option<&'a str>,
    ) -> Option<Cow<'a, str>> {
        if let Some(configured) = self.of(subject) {
            return Some(Cow::Borrowed(configured));
        }
        header.map(normalize_environment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "environments:\n  - subjects: [\"ace.comms.*.service.payments.>\"]\n    \
                        environment: \" Production \"\n  - subjects: [\"ace.comms.>\"]\n    \
                        environment: staging\n";

    #[test]
    fn given_a_configured_subject_when_the_header_says_otherwise_then_the_file_wins() {
        let envs = Environments::from_yaml(FILE, "test").unwrap();
        let subject = "ace.comms.http.service.payments.cmd.refund.v1";
        for header in [
            None,
            Some("staging"),
            Some("Production"),
            Some(""),
            Some("dev"),
        ] {
            assert_eq!(
                envs.target_environment(subject, header).as_deref(),
                Some("production"),
                "{header:?}"
            );
        }
        assert_eq!(
            envs.target_environment("ace.comms.http.service.kpi.evt.v1", Some("production"))
                .as_deref(),
            Some("staging"),
            "first matching entry, in file order"
        );
    }

    #[test]
    fn given_an_unconfigured_subject_when_a_header_is_sent_then_it_is_normalized() {
        let envs = Environments::default();
        let subject = "ace.comms.http.service.kpi.evt.v1";
        for header in ["Production", "PRODUCTION", " production ", "production\t"] {
            assert_eq!(
                envs.target_environment(subject, Some(header)).as_deref(),
                Some("production"),
                "{header:?}"
            );
        }
        assert_eq!(envs.target_environment(subject, None), None);
    }

    #[test]
    fn given_bad_entries_when_loaded_then_the_entry_is_named() {
        let cases = [
            (
                "environments:\n  - {subjects: [\"a..b\"], environment: production}\n",
                "`f: environments[0].subjects[0]`",
            ),
            (
                "environments:\n  - {subjects: [a.b], environment: \"  \"}\n",
                "`f: environments[0].environment`",
            ),
            (
                "environments:\n  - {subjects: [], environment: production}\n",
                "`f: environments[0].subjects`",
            ),
        ];
        for (text, named) in cases {
            let err = Environments::from_yaml(text, "f").unwrap_err().to_string();
            assert!(err.contains(named), "{err}");
        }
        let unknown = Environments::from_yaml("environments: []\nextra: 1\n", "f").unwrap_err();
        assert!(unknown.to_string().contains("`f`"), "{unknown}");
    }

    #[test]
    fn given_the_shipped_file_when_loaded_then_it_parses() {
        assert!(Environments::embedded().is_ok());
    }
}
