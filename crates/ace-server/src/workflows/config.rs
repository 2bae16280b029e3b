//! `workflows.*`: whether the server runs the workflows of a directory, and how.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;

/// The workflow engine's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowsConfig {
    /// Whether the server runs workflows.
    pub enabled: bool,
    /// The directory of workflow files (`*.yaml`, `*.yml`).
    pub dir: PathBuf,
    /// How often the directory is read again for changes, milliseconds.
    pub reload_interval_ms: u64,
    /// How often debounce windows are checked, milliseconds.
    pub tick_ms: u64,
    /// Triggers taken from `ACE_EVENTS` per fetch, and the most being run at once.
    pub fetch_batch: usize,
    /// How long a trigger may run before the bus delivers it again (a redelivery finds the
    /// run journaled and does not repeat it), milliseconds.
    pub ack_wait_ms: u64,
    /// How long an action held for a human's approval is waited for, milliseconds.
    pub approval_wait_ms: u64,
    /// Clearance of every workflow principal (0..=5): which labelled messages it may receive.
    pub clearance: u8,
}

impl Default for WorkflowsConfig {
    fn default() -> Self {
        WorkflowsConfig {
            enabled: false,
            dir: PathBuf::from("./workflows"),
            reload_interval_ms: 1_000,
            tick_ms: 250,
            fetch_batch: 64,
            ack_wait_ms: 600_000,
            approval_wait_ms: 24 * 3_600_000,
            clearance: 1,
        }
    }
}

impl WorkflowsConfig {
    /// Checks every value; the error names the key.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("workflows.reload_interval_ms", self.reload_interval_ms),
            ("workflows.tick_ms", self.tick_ms),
            ("workflows.ack_wait_ms", self.ack_wait_ms),
            ("workflows.approval_wait_ms", self.approval_wait_ms),
        ];
        let invalid = |key: &str, reason: &str| ConfigError::Invalid {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some((key, _)) = positive.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(key, "must be above 0"));
        }
        if self.fetch_batch == 0 || self.fetch_batch > 1_000 {
            return Err(invalid("workflows.fetch_batch", "must be 1 to 1000"));
        }
        if self.clearance > ace_policy::MAX_CLEARANCE {
            return Err(invalid("workflows.clearance", "must be 0 to 5"));
        }
        if self.enabled && self.dir.as_os_str().is_empty() {
            return Err(invalid("workflows.dir", "must not be empty"));
        }
        Ok(())
    }
}
