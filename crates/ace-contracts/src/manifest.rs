//! `contracts/comms/registry.yaml`: the compatibility table and the list of schemas the registry
//! loads at start, oldest version first. The format is agreed with the contracts' authors:
//!
//! ```yaml
//! compatibility:
//!   default: backward
//!   subjects: { intelligence.result: full, mlt.experience: none }
//! schemas:
//!   - { subject: mlt.experience, version: 1.0.0, file: ml/ml_schemas.json, pointer: /$defs/Experience }
//! ```
//!
//! Unknown keys are refused at every level, so a misspelt `pointr` fails loudly instead of being
//! ignored.

use std::collections::BTreeMap;

use semver::Version;
use serde::Deserialize;

use crate::{compat::CompatibilityMode, error::ContractError};

/// Where the manifest lives, relative to `contracts/`.
pub const MANIFEST: &str = "comms/registry.yaml";

/// The parsed manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    #[serde(default)]
    pub(crate) compatibility: Compatibility,
    #[serde(default)]
    pub(crate) schemas: Vec<SchemaEntry>,
}

/// The `compatibility` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Compatibility {
    #[serde(default = "default_mode")]
    pub(crate) default: CompatibilityMode,
    #[serde(default)]
    pub(crate) subjects: BTreeMap<String, CompatibilityMode>,
}

impl Default for Compatibility {
    fn default() -> Self {
        Self {
            default: default_mode(),
            subjects: BTreeMap::new(),
        }
    }
}

fn default_mode() -> CompatibilityMode {
    CompatibilityMode::Backward
}

/// One entry of `schemas`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SchemaEntry {
    pub(crate) subject: String,
    pub(crate) version: Version,
    pub(crate) file: String,
    #[serde(default)]
    pub(crate) pointer: String,
}

impl Manifest {
    /// Parses the manifest text; errors name the manifest file and serde's path to the key.
    pub(crate) fn parse(text: &str) -> Result<Self, ContractError> {
        serde_yaml_ng::from_str(text).map_err(|e| ContractError::Manifest {
            file: MANIFEST.to_owned(),
            key: e
                .location()
                .map_or_else(String::new, |l| format!("line {}", l.line())),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_the_agreed_format_when_parsed_then_modes_and_entries_are_read() {
        let manifest = Manifest::parse(
            "compatibility:\n  default: full\n  subjects:\n    mlt.experience: none\n\
             schemas:\n  - subject: mlt.experience\n    version: 1.0.0\n    file: ml/ml_schemas.json\n    pointer: /$defs/Experience\n",
        )
        .expect("parses");
        assert_eq!(manifest.compatibility.default, CompatibilityMode::Full);
        assert_eq!(
            manifest.compatibility.subjects["mlt.experience"],
            CompatibilityMode::None
        );
        assert_eq!(manifest.schemas[0].pointer, "/$defs/Experience");
        assert_eq!(manifest.schemas[0].version, Version::new(1, 0, 0));
    }

    #[test]
    fn given_a_misspelt_key_when_parsed_then_the_error_names_the_manifest_and_the_key() {
        let err = Manifest::parse(
            "schemas:\n  - subject: a\n    version: 1.0.0\n    file: x.json\n    pointr: /x\n",
        )
        .expect_err("unknown key");
        let text = err.to_string();
        assert!(text.contains(MANIFEST) && text.contains("pointr"), "{text}");
    }

    #[test]
    fn given_an_unknown_mode_when_parsed_then_it_is_refused() {
        let err = Manifest::parse("compatibility:\n  default: sideways\n").expect_err("bad mode");
        assert!(err.to_string().contains("sideways"), "{err}");
    }
}
