//! Signed checkpoints and the ledger's Ed25519 key.
//!
//! # Signed form (stable)
//!
//! A checkpoint commits to a tree size, its RFC 6962 root, the chain hash of its last entry and a
//! time. The Ed25519 signature covers the bytes `ace-ledger/checkpoint/v1\n` followed by the
//! canonical JSON (`ace_envelope::canonical`) of
//! `{"chain_head": hex, "key_id": str, "root_hash": hex, "size": int, "ts": RFC 3339}` — every
//! field of [`Checkpoint`] except `signature`. The prefix keeps a ledger signature from ever
//! being valid as any other kind of signed document made with the same key.
//!
//! # Key files
//!
//! `<ledger dir>/signing.key` holds the 32-byte Ed25519 seed in hex (created with mode 0600 on
//! first open, never rewritten); `signing.pub` holds the public key in hex. `key_id` is the first
//! 16 hex characters of SHA-256(public key).

use std::fs;
use std::io::Write as _;
use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::LedgerError;
use crate::hash::Hash;

/// Domain-separation prefix of the signed bytes.
pub const CHECKPOINT_DOMAIN: &[u8] = b"ace-ledger/checkpoint/v1\n";
/// File name of the private seed.
pub const SIGNING_KEY_FILE: &str = "signing.key";
/// File name of the public key.
pub const PUBLIC_KEY_FILE: &str = "signing.pub";

/// A signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Number of entries covered (entries `0 .. size`).
    pub size: u64,
    /// RFC 6962 root of those entries.
    pub root_hash: Hash,
    /// Chain hash of entry `size - 1` ([`Hash::ZERO`] for size 0).
    pub chain_head: Hash,
    /// When it was made.
    pub ts: DateTime<Utc>,
    /// Which key signed it.
    pub key_id: String,
    /// Ed25519 signature over [`Checkpoint::signed_bytes`], hex (128 characters).
    pub signature: String,
}

impl Checkpoint {
    /// The exact bytes the signature covers (see the module documentation).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let body = json!({
            "chain_head": self.chain_head,
            "key_id": self.key_id,
            "root_hash": self.root_hash,
            "size": self.size,
            "ts": self.ts,
        });
        let mut out = CHECKPOINT_DOMAIN.to_vec();
        ace_envelope::canonical::write_canonical(&mut out, &body);
        out
    }

    /// Checks the key id and the signature against `key`; the error says which failed.
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), String> {
        let expected_id = key_id_of(key);
        if self.key_id != expected_id {
            return Err(format!(
                "key_id `{}` is not the ledger key `{expected_id}`",
                self.key_id
            ));
        }
        let mut bytes = [0u8; 64];
        hex::decode_to_slice(&self.signature, &mut bytes)
            .map_err(|e| format!("signature is not 64 hex bytes: {e}"))?;
        key.verify_strict(&self.signed_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| "Ed25519 signature does not verify".to_owned())
    }
}

/// `key_id` of a public key: the first 16 hex characters of its SHA-256.
pub fn key_id_of(key: &VerifyingKey) -> String {
    Hash::of(&[key.as_bytes()]).to_hex()[..16].to_owned()
}

/// The ledger's signing key.
pub struct LedgerKey {
    signing: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the seed.
        f.debug_struct("LedgerKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl LedgerKey {
    /// A key from a 32-byte seed (tests, or keys kept elsewhere).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let signing = SigningKey::from_bytes(&seed);
        let key_id = key_id_of(&signing.verifying_key());
        LedgerKey { signing, key_id }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_seed(rand::random())
    }

    /// Loads `dir/signing.key`, or creates it (mode 0600) and `dir/signing.pub` if absent.
    pub fn load_or_create(dir: &Path) -> Result<Self, LedgerError> {
        let path = dir.join(SIGNING_KEY_FILE);
        if path.exists() {
            let text = fs::read_to_string(&path).map_err(|e| LedgerError::io(&path, e))?;
            let mut seed = [0u8; 32];
            hex::decode_to_slice(text.trim(), &mut seed).map_err(|e| LedgerError::Malformed {
                path: path.clone(),
                line: 0,
                reason: format!("not a 32-byte hex Ed25519 seed: {e}"),
            })?;
            let key = Self::from_seed(seed);
            key.write_public(dir)?;
            return Ok(key);
        }
        let key = Self::generate();
        write_private(&path, &hex::encode(key.signing.to_bytes()))?;
        key.write_public(dir)?;
        Ok(key)
    }

    fn write_public(&self, dir: &Path) -> Result<(), LedgerError> {
        let path = dir.join(PUBLIC_KEY_FILE);
        let text = format!("{}\n", hex::encode(self.verifying_key().as_bytes()));
        if fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        fs::write(&path, text).map_err(|e| LedgerError::io(&path, e))
    }

    /// The public key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// The key id written into checkpoints.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Signs a checkpoint of these values.
    pub fn sign(
        &self,
        size: u64,
        root_hash: Hash,
        chain_head: Hash,
        ts: DateTime<Utc>,
    ) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            size,
            root_hash,
            chain_head,
            ts,
            key_id: self.key_id.clone(),
            signature: String::new(),
        };
        let signature = self.signing.sign(&checkpoint.signed_bytes());
        checkpoint.signature = hex::encode(signature.to_bytes());
        checkpoint
    }
}

/// Reads `dir/signing.pub`.
pub fn load_public_key(dir: &Path) -> Result<VerifyingKey, LedgerError> {
    let path = dir.join(PUBLIC_KEY_FILE);
    let text = fs::read_to_string(&path).map_err(|e| LedgerError::io(&path, e))?;
    let malformed = |reason: String| LedgerError::Malformed {
        path: path.clone(),
        line: 0,
        reason,
    };
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes)
        .map_err(|e| malformed(format!("not a 32-byte hex public key: {e}")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| malformed(format!("not an Ed25519 key: {e}")))
}

fn write_private(path: &Path, seed_hex: &str) -> Result<(), LedgerError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| LedgerError::io(path, e))?;
    file.write_all(format!("{seed_hex}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| LedgerError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_signed_checkpoint_when_any_field_changes_then_the_signature_fails() {
        let key = LedgerKey::from_seed([7; 32]);
        let cp = key.sign(
            3,
            Hash::of(&[b"r"]),
            Hash::of(&[b"c"]),
            DateTime::UNIX_EPOCH,
        );
        assert_eq!(cp.verify_signature(&key.verifying_key()), Ok(()));
        let mut bigger = cp.clone();
        bigger.size = 4;
        assert!(bigger.verify_signature(&key.verifying_key()).is_err());
        let other = LedgerKey::from_seed([8; 32]);
        assert!(
            cp.verify_signature(&other.verifying_key())
                .unwrap_err()
                .contains("key_id")
        );
    }

    #[test]
    fn given_an_empty_dir_when_loading_twice_then_the_same_key_is_kept_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let first = LedgerKey::load_or_create(dir.path()).unwrap();
        let second = LedgerKey::load_or_create(dir.path()).unwrap();
        assert_eq!(first.verifying_key(), second.verifying_key());
        assert_eq!(load_public_key(dir.path()).unwrap(), first.verifying_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.path().join(SIGNING_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
