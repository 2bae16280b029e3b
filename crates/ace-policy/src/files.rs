//! Reading configuration files, in one place so every loader names the file at fault the same
//! way.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::PolicyError;

/// The bytes of `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PolicyError> {
    std::fs::read(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The text of `path`.
pub(crate) fn read_text(path: &Path) -> Result<String, PolicyError> {
    std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A YAML (or JSON) document; `what` names it in errors.
pub(crate) fn parse_yaml<T: DeserializeOwned>(text: &str, what: &str) -> Result<T, PolicyError> {
    serde_yaml_ng::from_str(text).map_err(|source| PolicyError::Parse {
        what: what.to_owned(),
        source,
    })
}
