//! API keys presented in the [`API_KEY_HEADER`] header: [`ApiKeyStore`] holds only the SHA-256
//! of each key (a stolen store file grants nothing) and compares in constant time, visiting
//! every entry, so neither the timing nor the position of a match leaks.
//!
//! File format (YAML or JSON):
//! ```yaml
//! keys:
//!   - sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!     principal: {id: ingest-svc, type: service, roles: [agent], clearance: 1}
//! ```
//! An entry whose principal is not valid — among others one naming a reserved principal id
//! ([`crate::RESERVED_PRINCIPAL_IDS`]: the server's own identity, the development principal) —
//! refuses the whole file at load, naming the file and the entry (`keys[i]`), so a reserved
//! identity can never be handed to a key holder.
//!
//! Keys are random strings of at least 32 bytes, so an unsalted fast hash is enough: there is
//! nothing to brute-force that a password hash would slow down.

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::error::{AuthFailure, PolicyError};
use crate::files::{parse_yaml, read_text};
use crate::principal::Principal;

/// The HTTP header carrying an API key.
pub const API_KEY_HEADER: &str = "X-ACE-API-Key";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFile {
    keys: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    sha256: String,
    principal: Principal,
}

#[derive(Debug, Clone)]
struct Entry {
    hash: [u8; 32],
    principal: Principal,
}

/// The configured API keys, by hash.
#[derive(Debug, Clone, Default)]
pub struct ApiKeyStore {
    entries: Vec<Entry>,
}

/// The hex SHA-256 of `key`, as written in the store file.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

impl ApiKeyStore {
    /// Reads a store file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        Self::from_yaml(&read_text(path)?, &path.display().to_string())
    }

    /// Parses a store document; `what` names it in errors, with the entry at fault (`keys[i]`).
    pub fn from_yaml(text: &str, what: &str) -> Result<Self, PolicyError> {
        let file: StoreFile = parse_yaml(text, what)?;
        let mut store = ApiKeyStore::default();
        for (i, entry) in file.keys.into_iter().enumerate() {
            let invalid = |reason: String| PolicyError::Invalid {
                key: format!("{what}: keys[{i}]"),
                reason,
            };
            let bytes = hex::decode(&entry.sha256).map_err(|e| invalid(e.to_string()))?;
            let hash: [u8; 32] = bytes
                .try_into()
                .map_err(|_| invalid("sha256 must be 64 hex digits".into()))?;
            entry
                .principal
                .check()
                .map_err(|e| invalid(e.to_string()))?;
            store.insert_hash(hash, entry.principal);
        }
        Ok(store)
    }

    /// Adds a key by its plain text (tests and provisioning tools; the text is not kept).
    pub fn insert(&mut self, key: &str, principal: Principal) {
        self.insert_hash(Sha256::digest(key.as_bytes()).into(), principal);
    }

    fn insert_hash(&mut self, hash: [u8; 32], principal: Principal) {
        self.entries.push(Entry { hash, principal });
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the store holds no key.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The principal owning `key`. Every entry is compared, in constant time.
    pub fn verify(&self, key: &str) -> Result<Principal, AuthFailure> {
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        let mut found: Option<&Principal> = None;
        for entry in &self.entries {
            let equal: Choice = entry.hash.ct_eq(&presented);
            if bool::from(equal) && found.is_none() {
                found = Some(&entry.principal);
            }
        }
        found.cloned().ok_or(AuthFailure::UnknownApiKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ace_envelope::SourceType;

    #[test]
    fn given_a_store_file_when_the_key_is_presented_then_its_principal_is_returned() {
        let yaml = format!(
            "keys:\n  - sha256: {}\n    principal: {{id: svc, type: service, roles: [agent], clearance: 1}}\n",
            hash_api_key("k-123")
        );
        let store = ApiKeyStore::from_yaml(&yaml, "test").unwrap();
        let p = store.verify("k-123").unwrap();
        assert_eq!(p.id, "svc");
        assert_eq!(p.kind, SourceType::Service);
        assert_eq!(store.verify("k-124"), Err(AuthFailure::UnknownApiKey));
        assert_eq!(store.verify(""), Err(AuthFailure::UnknownApiKey));
    }

    #[test]
    fn given_a_short_hash_when_loaded_then_the_entry_is_named() {
        let yaml = "keys:\n  - sha256: abcd\n    principal: {id: s, type: service}\n";
        let err = ApiKeyStore::from_yaml(yaml, "test").unwrap_err();
        assert!(err.to_string().contains("keys[0]"), "{err}");
    }

    #[test]
    fn given_an_entry_naming_a_reserved_principal_when_loaded_then_file_and_entry_are_named() {
        for id in [crate::SYSTEM_PRINCIPAL_ID, crate::DEVELOPMENT_PRINCIPAL_ID] {
            let yaml = format!(
                "keys:\n  - sha256: {}\n    principal: {{id: ok, type: service}}\n  - sha256: {}\n    \
                 principal: {{id: {id}, type: service, roles: [admin]}}\n",
                hash_api_key("k-1"),
                hash_api_key("k-2"),
            );
            let err = ApiKeyStore::from_yaml(&yaml, "/etc/ace/keys.yaml")
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "`/etc/ace/keys.yaml: keys[1]` is invalid: principal id `{id}` is reserved \
                     for the server itself and cannot be presented by a credential"
                )
            );
        }
    }

    #[test]
    fn given_the_store_file_when_read_then_it_does_not_hold_the_key_text() {
        let hash = hash_api_key("plain-secret");
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("plain-secret"));
    }
}
