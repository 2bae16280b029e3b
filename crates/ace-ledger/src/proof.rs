//! The proofs the ledger hands out (`GET /api/v1/ledger/proof/inclusion/{seq}` and
//! `…/proof/consistency?from=&to=`), self-describing so a client can check them with nothing but
//! a trusted root (normally from a signed [`crate::Checkpoint`]).

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::merkle::{self, ProofError};

/// Entry `seq` is leaf `seq` of the tree of `tree_size` entries whose head is `root_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InclusionProof {
    /// The entry (leaf index).
    pub seq: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// `SHA-256(0x00 || leaf_bytes)` of the entry.
    pub leaf_hash: Hash,
    /// The tree head at `tree_size`.
    pub root_hash: Hash,
    /// The audit path, leaf to root (RFC 6962 §2.1.1).
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// Checks the path against `trusted_root` (a root taken from a verified checkpoint; checking
    /// against the proof's own `root_hash` only shows the proof is self-consistent).
    pub fn verify(&self, trusted_root: &Hash) -> Result<(), ProofError> {
        merkle::verify_inclusion(
            &self.leaf_hash,
            self.seq,
            self.tree_size,
            &self.path,
            trusted_root,
        )
    }
}

/// The tree of `from` entries (head `from_root`) is a prefix of the tree of `to` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsistencyProof {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The tree head at `from`.
    pub from_root: Hash,
    /// The tree head at `to`.
    pub to_root: Hash,
    /// The proof nodes (RFC 6962 §2.1.2).
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// Checks the proof between two trusted roots.
    pub fn verify(&self, trusted_from: &Hash, trusted_to: &Hash) -> Result<(), ProofError> {
        merkle::verify_consistency(self.from, self.to, trusted_from, trusted_to, &self.path)
    }
}
