//! Reading the files commands are given: a path, or `-` for standard input.

use std::{io::Read, path::Path};

use anyhow::{Context, Result};

/// The bytes of `path`, or of standard input when it is `-`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .context("reading standard input")?;
        return Ok(bytes);
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// `path` parsed as JSON; a read failure or malformed JSON is an error naming the file.
pub(crate) fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = read(path)?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not valid JSON", path.display()))
}
